"""The BILL adapter against its sandbox: create, bulk, session, limits, faults, native client."""

from __future__ import annotations

import logging
from decimal import Decimal
from pathlib import Path

import anyio
import httpx
import pytest

import billkit
from billkit import BillStatus, Client, ItemStatus
from billkit.clock import VirtualClock
from billkit.errors import (
    AuthenticationError,
    BulkRejected,
    NotFoundError,
    OutcomeUnknownError,
    RateLimitError,
)
from billkit.providers.billcom import BillcomBulkRejected, BillcomError
from billkit.providers.billcom.sandbox import (
    UNKNOWN_VENDOR,
    VENDOR_ACME,
    VENDOR_GLOBEX,
    VENDOR_INITECH,
    BillcomSandbox,
)
from billkit.sandboxing import Fault, Faults

from .builders import client, fixture, payable

SEED_TWO = (("USB audio interface", "149.00"), ("Drum foot pedal", "79.99"))


@pytest.mark.anyio
async def test_create_sends_the_seed_request_once_and_reads_the_bill(box: BillcomSandbox) -> None:
    async with client(box) as c:
        bill = await c.create(payable("202401", lines=SEED_TWO))
    assert [r.path for r in box.requests] == ["/v3/login", f"/v3/vendors/{VENDOR_ACME}", "/v3/bills", "/v3/logout"]
    assert box.received("POST", "/v3/bills")[0].body == fixture("create_request.json")
    assert bill.provider_id is not None and bill.provider_id.startswith("00n")
    assert bill.status is BillStatus.OPEN and bill.provider_status == "UNPAID"
    assert bill.total == billkit.Money("228.99", "USD")
    assert bill.amount_due == billkit.Money("228.99", "USD")
    assert box.bills[bill.provider_id]["invoice"]["invoiceNumber"] == "202401"
    assert box.logins == 1 and box.logouts == 1 and box.sessions == {}


@pytest.mark.anyio
async def test_submit_is_an_operation_already_done(box: BillcomSandbox) -> None:
    async with client(box) as c:
        op = await c.submit(payable("S-1"))
        assert op.done()
        bill = await op
        again = await c.resume(op.token, bulk=False)
        reread = await again
    assert bill.provider_id == op.id == reread.provider_id
    assert reread.status is BillStatus.OPEN
    assert len(box.bills) == 1


@pytest.mark.anyio
async def test_bulk_of_two_as_in_the_seed(box: BillcomSandbox) -> None:
    box.reverse_bulk_answers = True  # BILL does not promise the order: answers are matched by invoice number
    bills = [
        payable("202412311", description="USB audio interface bill", lines=(SEED_TWO[0],)),
        payable("202412312", description="Drum foot pedal bill", lines=(SEED_TWO[1],)),
    ]
    async with client(box) as c:
        result = await (await c.submit_many(bills))
    (sent,) = box.received("POST", "/v3/bills/bulk")
    assert sent.body == fixture("bulk_request.json")
    assert [i.status for i in result] == [ItemStatus.SUCCEEDED, ItemStatus.SUCCEEDED]
    assert [i.bill.reference for i in result if i.bill] == ["202412311", "202412312"]
    assert [i.bill.total for i in result if i.bill] == [billkit.Money("149.00", "USD"), billkit.Money("79.99", "USD")]
    assert len(box.bills) == 2


@pytest.mark.anyio
async def test_bulk_with_one_bad_vendor_is_rejected_whole(box: BillcomSandbox) -> None:
    bills = [payable("B-1"), payable("B-2", vendor=UNKNOWN_VENDOR), payable("B-3", vendor=VENDOR_GLOBEX)]
    async with client(box) as c:
        with pytest.raises(BulkRejected) as info:
            await c.submit_many(bills)
    err = info.value
    assert isinstance(err, BillcomBulkRejected)
    assert box.bills == {}  # nothing created
    assert list(err.item_errors) == [1]
    assert isinstance(err.item_errors[1], NotFoundError) and err.item_errors[1].code == "BDC_1205"
    assert [e.code for e in err.entries] == ["BDC_1205", "BDC_1246"]
    assert len(box.received("POST", "/v3/bills/bulk")) == 1


@pytest.mark.anyio
async def test_isolation_of_three_bad_items_among_two_hundred(box: BillcomSandbox) -> None:
    bad = {17: "00901NOSUCHVENDOR017", 101: "00901NOSUCHVENDOR101", 188: "00901NOSUCHVENDOR188"}
    bills = [payable(f"I-{i:03d}", vendor=bad.get(i, VENDOR_ACME if i % 2 else VENDOR_GLOBEX)) for i in range(200)]
    async with client(box) as c:
        c.native.bulk_isolation = True
        result = await (await c.submit_many(bills))
        calls = c.native.last_bulk_calls
    print(f"isolating 3 bad bills among 200 took {calls} bulk calls")
    assert len(box.bills) == 197
    assert max(box.invoice_counts().values()) == 1  # every good bill created exactly once
    assert [i.index for i in result.failed] == [17, 101, 188]
    for item in result.failed:
        assert isinstance(item.error, NotFoundError) and bad[item.index] in str(item.error)
    assert [i.index for i in result.succeeded] == [i for i in range(200) if i not in bad]
    assert calls == len(box.received("POST", "/v3/bills/bulk")) == 5  # 2 batches of 100: 3 + 2 calls


@pytest.mark.anyio
async def test_isolation_bisects_when_bill_names_no_item(box: BillcomSandbox) -> None:
    async with client(box) as c:
        box.fail_next("BDC_1001", status=400, match="/v3/bills/bulk")  # a rejection that names nobody
        result = await c.native.create_bills([payable(f"N-{i}") for i in range(4)], isolate=True)
        calls = c.native.last_bulk_calls
    assert len(result.succeeded) == 4 and len(box.bills) == 4
    assert calls == 3  # whole batch refused, then two halves


@pytest.mark.anyio
async def test_bulk_rejected_once_then_accepted(box: BillcomSandbox) -> None:
    box.reject_vendor_once(VENDOR_GLOBEX)
    bills = [payable("O-1"), payable("O-2", vendor=VENDOR_GLOBEX)]
    async with client(box) as c:
        with pytest.raises(BulkRejected):
            await c.submit_many(bills)
        assert box.bills == {}
        result = await (await c.submit_many(bills))
    assert len(result.succeeded) == 2 and len(box.bills) == 2


@pytest.mark.anyio
async def test_bulk_is_sent_in_batches_of_one_hundred(box: BillcomSandbox) -> None:
    async with client(box) as c:
        result = await (await c.submit_many([payable(f"P-{i}") for i in range(250)]))
    assert [len(r.body) for r in box.received("POST", "/v3/bills/bulk")] == [100, 100, 50]
    assert len(result.succeeded) == 250 and [i.index for i in result] == list(range(250))


@pytest.mark.anyio
async def test_a_later_rejected_batch_does_not_hide_created_bills(box: BillcomSandbox) -> None:
    bills = [payable(f"L-{i}") for i in range(150)]
    bills[120] = payable("L-120", vendor=UNKNOWN_VENDOR)
    async with client(box) as c:
        result = await (await c.submit_many(bills))
    assert len(result.succeeded) == 100 and len(result.failed) == 50
    assert isinstance(result[120].error, NotFoundError)
    assert isinstance(result[121].error, BillcomBulkRejected)
    assert len(box.bills) == 100


@pytest.mark.anyio
async def test_session_expiry_under_concurrency_means_exactly_one_new_login(
    box: BillcomSandbox, clock: VirtualClock
) -> None:
    async with client(box) as c:
        created = [await c.create(payable(f"E-{i}")) for i in range(3)]
        assert box.logins == 1
        await clock.sleep(36 * 60)  # 35 idle minutes kill the session
        results: list[billkit.Bill] = []

        async def read(bill_id: str) -> None:
            results.append(await c.get(bill_id))

        async with anyio.create_task_group() as tg:
            for i in range(12):
                tg.start_soon(read, created[i % 3].provider_id or "")
    assert len(results) == 12
    assert box.logins == 2
    refused = [r for r in box.requests if r.path.startswith("/v3/bills/")]
    assert len(refused) == 12 + 3  # only the 3 in flight met the dead session; the others used the new one


@pytest.mark.anyio
async def test_invalid_session_answer_on_create_is_survived_without_doubling(box: BillcomSandbox) -> None:
    async with client(box) as c:
        await c.get((await c.create(payable("V-1"))).provider_id or "")
        box.fail_next("BDC_1109", match="POST /v3/bills")
        bill = await c.create(payable("V-2"))
    assert bill.reference == "V-2"
    assert box.logins == 2
    assert box.invoice_counts()[(VENDOR_ACME, "V-2")] == 1
    assert len(box.received("POST", "/v3/bills")) == 3  # V-1, V-2 refused (401), V-2 again


@pytest.mark.anyio
async def test_twenty_concurrent_calls_one_login_at_most_three_in_flight(box: BillcomSandbox) -> None:
    box.latency = 0.5
    async with client(box) as c:
        done: list[billkit.Bill] = []

        async def make(i: int) -> None:
            done.append(await c.create(payable(f"C-{i:02d}")))

        async with anyio.create_task_group() as tg:
            for i in range(20):
                tg.start_soon(make, i)
    assert len(done) == 20 and len(box.bills) == 20
    assert box.logins == 1
    assert box.peak_in_flight == 3
    assert box.refused_concurrent == 0


@pytest.mark.anyio
async def test_sandbox_refuses_a_fourth_concurrent_request(box: BillcomSandbox) -> None:
    box.latency = 1.0
    statuses: list[tuple[int, str]] = []
    async with httpx.AsyncClient(transport=box, base_url=box.base_url) as raw:
        login = await raw.post("/v3/login", json={"username": box.credentials["username"],
                                                  "password": box.credentials["password"],
                                                  "organizationId": box.credentials["organization_id"],
                                                  "devKey": box.credentials["dev_key"]})  # fmt: skip
        headers = {"devKey": box.credentials["dev_key"], "sessionId": login.json()["sessionId"]}

        async def get() -> None:
            answer = await raw.get(f"/v3/vendors/{VENDOR_ACME}", headers=headers)
            body = answer.json()
            statuses.append((answer.status_code, body[0]["code"] if isinstance(body, list) else "ok"))

        async with anyio.create_task_group() as tg:
            for _ in range(5):
                tg.start_soon(get)
    assert sorted(statuses) == [(200, "ok")] * 3 + [(400, "BDC_1322")] * 2
    assert box.peak_in_flight > 3 and box.refused_concurrent == 2  # a refused request leaves at once
    assert "sandbox-password" not in repr(box.requests[0].body)  # the recorded login is redacted


@pytest.mark.anyio
async def test_concurrency_refusal_is_retried_even_for_a_create(box: BillcomSandbox) -> None:
    async with client(box) as c:
        box.fail_next("BDC_1322", match="POST /v3/bills")
        bill = await c.create(payable("R-1"))
    assert bill.reference == "R-1"
    assert len(box.received("POST", "/v3/bills")) == 2
    assert len(box.bills) == 1


@pytest.mark.anyio
async def test_hourly_limit_is_raised_not_retried(box: BillcomSandbox) -> None:
    async with client(box) as c:
        box.fail_next("BDC_1144", match="POST /v3/bills")
        with pytest.raises(RateLimitError) as info:
            await c.create(payable("H-1"))
    assert info.value.code == "BDC_1144"
    assert len(box.received("POST", "/v3/bills")) == 1 and box.bills == {}


@pytest.mark.anyio
async def test_lost_create_answer_is_not_retried_but_found_by_a_read(clock: VirtualClock) -> None:
    box = BillcomSandbox(clock, Faults().once(Fault.DROP_AFTER, match="POST /v3/bills"))
    async with client(box) as c:
        bill = await c.create(payable("U-1"))
    assert len(box.received("POST", "/v3/bills")) == 1  # not retried
    assert len(box.bills) == 1 and bill.provider_id in box.bills and bill.reference == "U-1"
    assert len(box.received("GET", "/v3/bills")) == 1  # the one safe read that found it


@pytest.mark.anyio
async def test_lost_create_whose_bill_cannot_be_found_says_how_to_check(clock: VirtualClock) -> None:
    faults = Faults().once(Fault.DROP_AFTER, match="POST /v3/bills")
    for _ in range(billkit.RetryPolicy().max_attempts):  # the look-up read fails through all its retries
        faults.once(Fault.SERVER_ERROR, match="GET /v3/bills")
    box = BillcomSandbox(clock, faults)
    async with client(box) as c:
        with pytest.raises(OutcomeUnknownError) as info:
            await c.create(payable("U-2"))
        found = await c.native.find_bills_by_invoice(VENDOR_ACME, "U-2")
    assert len(box.received("POST", "/v3/bills")) == 1 and len(box.bills) == 1  # BILL did create it
    assert "invoice number 'U-2'" in str(info.value) and VENDOR_ACME in str(info.value)
    assert info.value.reference == "U-2"
    assert [b.invoice_number for b in found] == ["U-2"]


@pytest.mark.anyio
async def test_lost_bulk_answer_is_not_retried_and_its_bills_are_found(clock: VirtualClock) -> None:
    box = BillcomSandbox(clock, Faults().once(Fault.DROP_AFTER, match="POST /v3/bills/bulk"))
    async with client(box) as c:
        result = await (await c.submit_many([payable("UB-1"), payable("UB-2")]))
    assert len(box.received("POST", "/v3/bills/bulk")) == 1 and len(box.bills) == 2
    assert [item.bill.reference for item in result if item.bill] == ["UB-1", "UB-2"]


@pytest.mark.anyio
async def test_bulk_refused_with_a_5xx_stays_unknown(clock: VirtualClock) -> None:
    box = BillcomSandbox(clock, Faults().once(Fault.SERVER_ERROR, match="POST /v3/bills/bulk"))
    async with client(box) as c:
        with pytest.raises(OutcomeUnknownError):
            await c.submit_many([payable("UC-1"), payable("UC-2")])
    assert len(box.received("POST", "/v3/bills/bulk")) == 1 and box.bills == {}  # looked for, never re-sent


@pytest.mark.anyio
async def test_server_error_on_create_is_outcome_unknown_but_connect_error_is_retried(clock: VirtualClock) -> None:
    faults = Faults().once(Fault.SERVER_ERROR, match="POST /v3/bills").once(Fault.DROP_BEFORE, match="POST /v3/bills")
    box = BillcomSandbox(clock, faults)
    async with client(box) as c:
        with pytest.raises(OutcomeUnknownError):
            await c.create(payable("F-1"))
        bill = await c.create(payable("F-2"))  # refused connection: provably never arrived, so retried
    assert bill.reference == "F-2"
    assert len(box.bills) == 1


@pytest.mark.anyio
async def test_wait_for_paid(box: BillcomSandbox) -> None:
    async with client(box) as c:
        bill = await c.create(payable("W-1"))
        box.pay(bill.provider_id or "", scheduled_after=30, paid_after=600)
        op = await c.wait_for(bill.provider_id or "", until=BillStatus.PAID)
        paid = await op
    assert paid.status is BillStatus.PAID and paid.provider_status == "PAID"
    assert paid.amount_paid == billkit.Money("149.00", "USD") and paid.amount_due == billkit.Money("0.00", "USD")
    assert box.logins == 1


@pytest.mark.anyio
async def test_scheduled_and_partial_states(box: BillcomSandbox, clock: VirtualClock) -> None:
    async with client(box) as c:
        bill = await c.create(payable("W-2", lines=(("a", "100.00"),)))
        bill_id = bill.provider_id or ""
        box.pay(bill_id, scheduled_after=10, paid_after=100, amount="40.00")
        await clock.sleep(20)
        scheduled = await c.get(bill_id)
        await clock.sleep(100)
        partial = await c.get(bill_id)
    assert (scheduled.status, scheduled.provider_status) == (BillStatus.OPEN, "SCHEDULED")
    assert (partial.status, partial.provider_status) == (BillStatus.PARTIALLY_PAID, "PARTIAL")
    assert partial.amount_due == billkit.Money("60.00", "USD")


@pytest.mark.anyio
async def test_archive_is_void_and_restore_reopens(box: BillcomSandbox) -> None:
    async with client(box) as c:
        bill = await c.create(payable("A-1"))
        archived = await c.native.archive_bill(bill.provider_id or "")
        void = await c.get(bill.provider_id or "")
        await c.native.restore_bill(bill.provider_id or "")
        reopened = await c.get(bill.provider_id or "")
        with pytest.raises(NotFoundError):
            await c.get("00n01NOSUCHBILL00000")
    assert archived.archived is True
    assert void.status is BillStatus.VOID
    assert reopened.status is BillStatus.OPEN


@pytest.mark.anyio
async def test_list_pages_filters_and_sort(box: BillcomSandbox) -> None:
    async with client(box) as c:
        await c.submit_many([payable(f"G-{i:02d}", vendor=VENDOR_GLOBEX if i % 3 == 0 else VENDOR_ACME)
                             for i in range(45)])  # fmt: skip
        everything = [b async for b in c.native.list_bills(max=20)]
        pages = [p async for p in c.native.list_bill_pages(max=20)]
        globex = [b async for b in c.native.list_bills(max=5, filters=[("vendorId", "eq", VENDOR_GLOBEX)],
                                                       sort="createdTime:desc")]  # fmt: skip
        with pytest.raises(billkit.ValidationError):
            _ = [b async for b in c.native.list_bills(max=101)]
    assert len(everything) == 45 and len({b.id for b in everything}) == 45
    assert [len(p.results) for p in pages] == [20, 20, 5] and pages[-1].next_page is None
    assert len(globex) == 15 and {b.vendor_id for b in globex} == {VENDOR_GLOBEX}
    assert [r.params.get("max") for r in box.received("GET", "/v3/bills")][:3] == ["20", "20", "20"]


@pytest.mark.anyio
async def test_vendors_and_foreign_currency(box: BillcomSandbox) -> None:
    async with client(box) as c:
        vendor = await c.native.create_vendor({"name": "Umbrella", "accountType": "BUSINESS", "billCurrency": "GBP"})
        assert vendor.id.startswith("009")
        same = await c.native.get_vendor(vendor.id)
        names = [v.name async for v in c.native.list_vendors()]
        bill = await c.create(payable("GB-1", vendor=vendor.id, currency="GBP"))
        eur = await c.create(payable("EU-1", vendor=VENDOR_INITECH, currency="EUR"))
    assert same.bill_currency == "GBP" and "Umbrella" in names
    assert bill.total == billkit.Money("149.00", "GBP")
    assert eur.raw is not None and eur.raw["fundingAmount"] == Decimal("160.92")


@pytest.mark.anyio
async def test_wrong_credentials(box: BillcomSandbox) -> None:
    async with billkit.AsyncClient("billcom", sandbox=box, password="wrong") as c:
        with pytest.raises(AuthenticationError) as info:
            await c.get("00n01ANYTHING0000000")
    assert info.value.code == "BDC_1101" and isinstance(info.value, BillcomError)


@pytest.mark.anyio
async def test_secrets_never_leak(box: BillcomSandbox, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, logger="billkit")
    secrets = [box.credentials["password"], box.credentials["dev_key"], "sandbox-session-"]
    async with client(box) as c:
        op = await c.submit(payable("K-1"))
        box.fail_next("BDC_1109")
        bill = await c.get(op.id)
        box.fail_next("BDC_1144")
        with pytest.raises(RateLimitError) as info:
            await c.get(op.id)
        texts = [repr(c), repr(c._adapter), repr(c.native), op.token, str(info.value), repr(info.value.raw),
                 repr(bill), caplog.text, repr(box.requests)]  # fmt: skip
    for text in texts:
        for secret in secrets:
            assert secret not in text


def test_blocking_client_and_native_lists() -> None:
    with Client("billcom", sandbox=True) as c:
        bill = c.create(payable("BL-1"))
        listed = c.native.list_bills()
        result = c.submit_many([payable("BL-2"), payable("BL-3")]).result()
    assert bill.status is BillStatus.OPEN
    assert [b.invoice_number for b in listed] == ["BL-1"]
    assert len(result.succeeded) == 2


@pytest.mark.anyio
async def test_bulk_token_resumes_in_another_client_on_a_saved_sandbox(box: BillcomSandbox, tmp_path: Path) -> None:
    bills = [payable("T-1"), payable("T-2", vendor=VENDOR_GLOBEX)]
    async with client(box) as c:
        c.native.bulk_isolation = True
        bills.append(payable("T-3", vendor=UNKNOWN_VENDOR))
        bulk = await c.submit_many(bills)
        token = bulk.token
    box.save(tmp_path / "billcom.json")
    loaded = BillcomSandbox.load(tmp_path / "billcom.json")
    assert isinstance(loaded, BillcomSandbox) and loaded.bills == box.bills
    async with client(loaded) as other:
        resumed = await (await other.resume(token, bulk=True))
    assert [i.status for i in resumed] == [ItemStatus.SUCCEEDED, ItemStatus.SUCCEEDED, ItemStatus.FAILED]
    assert [i.bill.reference for i in resumed if i.bill] == ["T-1", "T-2"]
    assert "BDC_1205" in str(resumed[2].error)
    assert loaded.logins == 2  # the saved session is not reused blindly: the new client logged in itself


@pytest.mark.anyio
async def test_with_options_retry_holds_for_bill(box: BillcomSandbox) -> None:
    async with client(box) as c:
        bill = await c.create(payable("WO-1"))
        assert bill.provider_id is not None
        box.fail_next("BDC_1001", status=503, match="GET /v3/bills/")
        with pytest.raises(billkit.ServerError):
            await c.with_options(retry=billkit.RetryPolicy.none()).get(bill.provider_id)
        box.fail_next("BDC_1001", status=503, match="GET /v3/bills/")
        assert (await c.get(bill.provider_id)).provider_id == bill.provider_id  # the default policy retries
    assert len(box.received("GET", f"/v3/bills/{bill.provider_id}")) == 3


@pytest.mark.anyio
async def test_bills_status_reads_use_the_poll_policys_read_retry(box: BillcomSandbox) -> None:
    reads = billkit.PollPolicy(first_delay=2, jitter=0, read_retry=billkit.RetryPolicy(initial_delay=0.1, jitter=0))
    async with billkit.AsyncClient("billcom", sandbox=box, retry=billkit.RetryPolicy.none(), poll=reads) as c:
        bill = await c.create(payable("RR-1"))
        assert bill.provider_id is not None
        box.pay(bill.provider_id, paid_after=1)
        box.fail_next("BDC_1001", status=503, match="GET /v3/bills/")
        paid = await (await c.wait_for(bill.provider_id, until=BillStatus.PAID))
    times = [r.at for r in box.received("GET", f"/v3/bills/{bill.provider_id}")]
    assert paid.status is BillStatus.PAID and times[1] - times[0] < 1  # within the read, not at the next poll


@pytest.mark.anyio
async def test_a_login_that_may_have_arrived_is_not_sent_again(box: BillcomSandbox) -> None:
    box.faults.once(Fault.DROP_AFTER, match="POST /v3/login")
    async with client(box) as c:
        with pytest.raises(billkit.APIConnectionError):
            await c.get("00n01AAAAAAAAAAAAAAA")
    assert len(box.received("POST", "/v3/login")) == 1 and box.logins == 1

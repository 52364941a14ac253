"""The Facturapi adapter end to end on its sandbox (virtual clock): create, submit, recovery, idempotency,
webhooks, bulk, native calls, and bad input that never leaves the process."""

from __future__ import annotations

import datetime as dt
import io
import itertools
import zipfile
from decimal import Decimal
from typing import Any

import anyio
import pytest

import billkit
from billkit import Bill, BillStatus, LineItem, Money, Party
from billkit.clock import VirtualClock
from billkit.errors import (
    MoneyError,
    NotFoundError,
    OperationFailed,
    OutcomeUnknownError,
    ValidationError,
)
from billkit.providers.facturapi import FacturapiAsyncClient
from billkit.providers.facturapi.sandbox import FAIL_TAX_ID, RECOVERY_FAIL_TAX_ID, RECOVERY_TAX_ID, FacturapiSandbox
from billkit.sandboxing import Fault, Faults

from .conftest import invoice, party

pytestmark = pytest.mark.anyio
MINUTE = 60.0


async def test_sync_create_is_stamped(client: FacturapiAsyncClient, box: FacturapiSandbox) -> None:
    bill = await client.create(invoice("FA-1"))
    assert (bill.status, bill.provider_status, bill.reference) == (BillStatus.OPEN, "valid", "FA-1")
    assert bill.total == Money("1160.00", "MXN")
    assert bill.raw is not None and bill.raw["uuid"] and bill.raw["stamp"]
    [sent] = box.received("POST", "/invoices")
    assert sent.params == {} and sent.body["idempotency_key"].startswith("bk-")


async def test_async_create_awaited_to_valid(client: FacturapiAsyncClient, box: FacturapiSandbox,
                                             clock: VirtualClock) -> None:  # fmt: skip
    op = await client.submit(invoice("FA-2"))
    assert op.status is BillStatus.PENDING and op.provider_status == "pending"
    bill = await op
    assert bill.status is BillStatus.OPEN and bill.provider_id == op.id
    assert clock.now() >= box.async_delay
    assert [r.params for r in box.received("POST", "/invoices")] == [{"async": "true"}]
    assert 1 <= len(box.received("GET", f"/invoices/{op.id}")) <= 3


async def test_async_failure_raises_operation_failed(client: FacturapiAsyncClient) -> None:
    op = await client.submit(invoice("FA-3", tax_id=FAIL_TAX_ID))
    with pytest.raises(OperationFailed) as err:
        await op
    assert err.value.provider_status == "failed" and err.value.operation_id == op.id
    assert "invoice.status_updated" in err.value.message  # says where Facturapi puts the reason


async def test_recovery_202_ends_valid_after_30_minutes(client: FacturapiAsyncClient, box: FacturapiSandbox,
                                                        clock: VirtualClock) -> None:  # fmt: skip
    bill = await client.create(invoice("FA-4", tax_id=RECOVERY_TAX_ID))
    assert bill.status is BillStatus.PENDING and bill.raw is not None and bill.raw["uuid"] is None
    assert bill.provider_id is not None
    op = await client.wait_for(bill.provider_id, until=BillStatus.OPEN)
    done = await op
    assert done.status is BillStatus.OPEN
    assert 30 * MINUTE <= clock.now() <= 36 * MINUTE  # overshoot bounded by the growing poll interval
    reads = len(box.received("GET", f"/invoices/{bill.provider_id}"))
    assert reads <= 50, reads  # the growing interval: about 45 reads for 30 minutes, not 225 at 8 s


async def test_recovery_202_ends_failed_after_50_minutes(client: FacturapiAsyncClient, clock: VirtualClock) -> None:
    op = await client.submit(invoice("FA-5", tax_id=RECOVERY_FAIL_TAX_ID))
    with pytest.raises(OperationFailed):
        await op
    assert 50 * MINUTE <= clock.now() <= 57 * MINUTE


async def test_lost_answer_after_the_server_acted_gives_one_invoice(box: FacturapiSandbox) -> None:
    box.faults.once(Fault.DROP_AFTER, match="POST /invoices")
    async with billkit.AsyncClient("facturapi", sandbox=box) as client:
        bill = await client.create(invoice("FA-6"))
    posts = box.received("POST", "/invoices")
    assert len(posts) == 2 and posts[0].fault == "drop_after"
    assert posts[0].body["idempotency_key"] == posts[1].body["idempotency_key"]
    assert box.count_idempotency_key(posts[0].body["idempotency_key"]) == 1
    assert box.count_external_id("FA-6") == 1 and bill.status is BillStatus.OPEN


async def test_submit_after_lost_answers_and_server_errors_still_one_invoice(box: FacturapiSandbox) -> None:
    box.faults.once(Fault.DROP_AFTER, match="POST").once(Fault.SERVER_ERROR, match="POST")
    async with billkit.AsyncClient("facturapi", sandbox=box) as client:
        bill = await (await client.submit(invoice("FA-7")))
    assert bill.status is BillStatus.OPEN and box.count_external_id("FA-7") == 1


async def test_replayed_key_returns_the_existing_invoice(client: FacturapiAsyncClient, box: FacturapiSandbox) -> None:
    first = await client.create(invoice("FA-8", provider_options={"idempotency_key": "order-8"}))
    op = await client.submit(invoice("FA-8", provider_options={"idempotency_key": "order-8"}))
    assert op.done()  # the replay answered with the finished invoice: nothing to poll
    again = await op
    assert again.provider_id == first.provider_id and box.count_idempotency_key("order-8") == 1


async def test_key_in_use_is_retried_then_reported(client: FacturapiAsyncClient, box: FacturapiSandbox) -> None:
    box.key_in_use("order-9", times=1)
    bill = await client.create(invoice("FA-9", provider_options={"idempotency_key": "order-9"}))
    assert bill.status is BillStatus.OPEN and len(box.received("POST", "/invoices")) == 2
    box.key_in_use("order-10", times=50)
    with pytest.raises(OutcomeUnknownError) as err:
        await client.create(invoice("FA-10", provider_options={"idempotency_key": "order-10"}))
    assert err.value.reference == "order-10" and "order-10" in err.value.how_to_check
    assert box.count_idempotency_key("order-10") == 0


async def test_when_every_retry_fails_the_outcome_is_unknown_not_failed(box: FacturapiSandbox) -> None:
    for _ in range(4):
        box.faults.once(Fault.DROP_AFTER, match="POST")
    async with billkit.AsyncClient("facturapi", sandbox=box) as client:
        with pytest.raises(OutcomeUnknownError) as err:
            await client.create(invoice("FA-11", provider_options={"idempotency_key": "order-11"}))
        assert box.count_idempotency_key("order-11") == 1  # it does exist: "failed" would have been wrong
        again = await client.create(invoice("FA-11", provider_options={"idempotency_key": "order-11"}))
    assert "idempotency_key" in err.value.how_to_check
    assert again.status is BillStatus.OPEN and box.count_idempotency_key("order-11") == 1


#: webhooks first, polling as the safety net (the first read a minute after submitting), as the demo runs it
WEBHOOKS_FIRST = billkit.PollPolicy(first_delay=60)


async def test_a_signed_webhook_finishes_the_future_without_a_read(box: FacturapiSandbox, clock: VirtualClock) -> None:
    async with billkit.AsyncClient("facturapi", sandbox=box, poll=WEBHOOKS_FIRST) as client:
        op = await client.submit(invoice("FA-12"))
        await clock.advance(box.async_delay + 1)
        [event] = [e for e in box.events() if e["data"]["object"]["id"] == op.id]
        body, headers = box.webhook_request(event)
        verified = client.verify_webhook(body, headers, box.webhook_secret)
        assert client.handle_webhook_event(verified) == 1
        bill = await op
    assert bill.status is BillStatus.OPEN and box.received("GET", f"/invoices/{op.id}") == []


async def test_a_failed_event_fails_the_future_with_facturapis_message(box: FacturapiSandbox,
                                                                       clock: VirtualClock) -> None:  # fmt: skip
    async with billkit.AsyncClient("facturapi", sandbox=box, poll=WEBHOOKS_FIRST) as client:
        op = await client.submit(invoice("FA-13", tax_id=FAIL_TAX_ID))
        await clock.advance(box.async_delay + 1)
        [event] = [e for e in box.events() if e["data"]["object"]["id"] == op.id]
        body, headers = box.webhook_request(event)
        client.handle_webhook_event(client.verify_webhook(body, headers, box.webhook_secret))
        with pytest.raises(OperationFailed) as err:
            await op
    assert err.value.message == box.failure_message(op.id)


async def test_bulk_of_100_with_progress_and_one_failure(client: FacturapiAsyncClient, box: FacturapiSandbox) -> None:
    bills = [invoice(f"FA-B{i:03d}", tax_id=FAIL_TAX_ID if i == 42 else party().tax_id or "") for i in range(100)]
    seen: list[tuple[int, int]] = []
    bulk = await client.submit_many(bills, on_progress=lambda done, total: seen.append((done, total)))
    result = await bulk
    assert [item.index for item in result] == list(range(100))
    assert [item.index for item in result.failed] == [42] and len(result.succeeded) == 99
    assert all(item.bill is not None and item.bill.reference == f"FA-B{item.index:03d}" for item in result.succeeded)
    assert seen[-1] == (100, 100) and all(a <= b for (a, _), (b, _) in itertools.pairwise(seen))
    assert len(box.invoices) == 100


async def test_bulk_validates_everything_before_sending(client: FacturapiAsyncClient, box: FacturapiSandbox) -> None:
    bills = [invoice("ok"), invoice("bad", tax_id="nope"), invoice("dup", provider_options={"idempotency_key": "k"}),
             invoice("dup2", provider_options={"idempotency_key": "k"})]  # fmt: skip
    with pytest.raises(ValidationError) as err:
        await client.submit_many(bills)
    assert err.value.fields == ["[1].counterparty.tax_id", "[3].provider_options.idempotency_key"]
    assert box.requests == []


async def test_bad_input_lists_each_problem_and_sends_nothing(client: FacturapiAsyncClient,
                                                              box: FacturapiSandbox) -> None:  # fmt: skip
    bad = Bill(counterparty=Party(name="Sin RFC", provider_options={"tax_system": "601"}), line_items=(),
               provider_options={"payment_form": "03"})  # fmt: skip
    with pytest.raises(ValidationError) as err:
        await client.create(bad)
    assert set(err.value.fields) == {"counterparty.tax_id", "counterparty.address.postal_code", "line_items"}
    with pytest.raises(MoneyError, match="float"):
        LineItem(description="x", unit_price=Money(99.9, "MXN"))  # type: ignore[arg-type]
    with pytest.raises(MoneyError, match="unknown currency"):
        await client.submit(invoice(currency="ZZZ"))
    assert box.requests == []


async def test_resume_from_a_token_in_a_new_client(box: FacturapiSandbox) -> None:
    async with billkit.AsyncClient("facturapi", sandbox=box) as first:
        op = await first.submit(invoice("FA-14", tax_id=RECOVERY_TAX_ID))
        token = op.token
    assert "sk_test" not in token
    async with billkit.AsyncClient("facturapi", sandbox=box) as second:
        bill = await (await second.resume(token, bulk=False))
    assert bill.status is BillStatus.OPEN and bill.provider_id == op.id


async def test_cancel_download_and_email(client: FacturapiAsyncClient, box: FacturapiSandbox) -> None:
    bill = await client.create(invoice("FA-15"))
    assert bill.provider_id is not None
    pdf = await client.native.download_pdf(bill.provider_id)
    xml = await client.native.download_xml(bill.provider_id)
    archive = zipfile.ZipFile(io.BytesIO(await client.native.download_zip(bill.provider_id)))
    assert pdf.startswith(b"%PDF") and bill.raw is not None and str(bill.raw["uuid"]).encode() in xml
    assert len(archive.namelist()) == 2
    with pytest.raises(ValidationError, match="substitution"):
        await client.native.cancel(bill.provider_id, "01")
    canceled = await client.native.cancel(bill.provider_id, "02")
    assert canceled.status == "canceled" and canceled.cancellation_status == "accepted"
    assert (await client.get(bill.provider_id)).status is BillStatus.VOID
    assert [r.params for r in box.received("DELETE")] == [{"motive": "02"}]


async def test_cancel_whose_answer_was_lost_is_not_an_error(box: FacturapiSandbox) -> None:
    async with billkit.AsyncClient("facturapi", sandbox=box) as client:
        bill = await client.create(invoice("FA-16"))
        assert bill.provider_id is not None
        box.faults.once(Fault.DROP_AFTER, match="DELETE")
        canceled = await client.native.cancel(bill.provider_id, "03")
    # a DELETE is not repeated once it may have arrived: one safe read shows that it took
    assert canceled.status == "canceled" and len(box.received("DELETE")) == 1
    assert box.received("GET", f"/invoices/{bill.provider_id}")


async def test_paging_through_250_invoices(client: FacturapiAsyncClient, box: FacturapiSandbox) -> None:
    async with anyio.create_task_group() as tg:
        for i in range(250):
            tg.start_soon(client.create, invoice(f"FA-P{i:03d}"))
    pages = [page async for page in client.native.list_invoice_pages(limit=100)]
    assert [len(p.data) for p in pages] == [100, 100, 50] and pages[0].total_results == 250
    ids = [inv.id async for inv in client.native.list_invoices()]
    assert len(set(ids)) == 250 == len(ids)
    with pytest.raises(ValidationError):
        [p async for p in client.native.list_invoice_pages(limit=101)]


async def test_customers(client: FacturapiAsyncClient) -> None:
    saved = await client.native.create_customer(party())
    assert saved.id and saved.tax_id == "EKU9003173C9"
    again = await client.native.create_customer(party())
    assert again.id == saved.id
    assert (await client.native.get_customer(saved.id)).legal_name == "ESCUELA KEMPER URGATE"
    assert [c.id async for c in client.native.list_customers("KEMPER")] == [saved.id]
    bill = await client.create(invoice("FA-17", counterparty=Party(provider_id=saved.id)))
    assert bill.counterparty is not None and bill.counterparty.tax_id == "EKU9003173C9"


async def test_provider_errors_are_typed_with_the_log_id(client: FacturapiAsyncClient) -> None:
    with pytest.raises(NotFoundError) as err:
        await client.get("000000000000000000000000")
    assert err.value.code == "invoice_not_found" and err.value.request_id and err.value.status_code == 404


async def test_bad_key_is_an_authentication_error(box: FacturapiSandbox) -> None:
    async with billkit.AsyncClient("facturapi", sandbox=box, api_key="sk_test_wrong") as client:
        with pytest.raises(billkit.errors.AuthenticationError) as err:
            await client.create(invoice())
    assert "sk_test_wrong" not in str(err.value) and "sk_test_wrong" not in repr(client)


async def test_rate_limit_is_waited_out_with_retry_after(box: FacturapiSandbox, clock: VirtualClock) -> None:
    box.faults.retry_after = 7
    box.faults.once(Fault.RATE_LIMIT, match="POST")
    async with billkit.AsyncClient("facturapi", sandbox=box) as client:
        bill = await client.create(invoice("FA-18"))
    assert bill.status is BillStatus.OPEN and clock.now() >= 7


async def test_other_currency_round_trip(client: FacturapiAsyncClient) -> None:
    bill = await client.create(invoice("FA-19", currency="USD", provider_options={"exchange": Decimal("17.25")}))
    assert bill.total is not None and bill.total.currency == "USD"


def test_blocking_client_on_the_sandbox() -> None:
    with billkit.Client("facturapi", sandbox=True) as client:
        op = client.submit(invoice("FA-20"))
        assert op.result().status is BillStatus.OPEN
        assert client.capabilities.idempotency and client.capabilities.async_create


async def test_under_faults_every_outcome_is_reported_rightly(clock: VirtualClock) -> None:
    box = FacturapiSandbox(clock, Faults(server_error=0.1, rate_limit=0.05, drop_after=0.05, slow=0.02, seed=3))
    async with billkit.AsyncClient("facturapi", sandbox=box) as client:
        result = await (await client.submit_many([invoice(f"FA-S{i:03d}") for i in range(60)]))
    counts = [box.count_external_id(f"FA-S{i:03d}") for i in range(60)]
    assert max(counts) == 1  # never twice
    for item in result:
        if item.ok:
            assert counts[item.index] == 1
        elif not isinstance(item.error, OutcomeUnknownError):
            assert counts[item.index] == 0, item.error
    assert box.faults.injected  # faults did happen


async def test_cancelling_a_bulk_of_300_invoices_cancels_every_one(client: FacturapiAsyncClient) -> None:
    bulk = await client.submit_many([invoice(f"FA-X{i:03d}") for i in range(300)])
    bulk.cancel()
    with pytest.raises(billkit.OperationCancelled):
        await bulk
    partial = bulk.partial
    assert partial is not None and [i.index for i in partial] == list(range(300))
    assert all(isinstance(i.error, billkit.OperationCancelled) for i in partial)
    assert bulk.progress == (300, 300) and client.scheduler.pending_count == 0


# -- what the spec forbids is refused before anything is sent -----------------------------------------------------

FORBIDDEN_CREATES = {
    "a malformed customer email": (invoice(counterparty=party(email="not-an-address")), "counterparty.email"),
    "an empty conditions": (invoice(provider_options={"conditions": ""}), "provider_options.conditions"),
    "a global invoice without year": (
        invoice(provider_options={"global": {"periodicity": "month", "months": "01"}}),
        "provider_options.global",
    ),
    "an unknown export code": (invoice(provider_options={"export": "05"}), "provider_options.export"),
    "an external_id over 100 characters": (invoice("F" * 101), "reference"),
    "a folio number below 1": (invoice(provider_options={"folio_number": 0}), "provider_options.folio_number"),
}


@pytest.mark.parametrize("name", sorted(FORBIDDEN_CREATES))
async def test_a_create_the_spec_forbids_is_refused_before_sending(
    client: FacturapiAsyncClient, box: FacturapiSandbox, name: str
) -> None:
    bill, field = FORBIDDEN_CREATES[name]
    with pytest.raises(billkit.ValidationError) as info:
        await client.create(bill)
    assert field in info.value.fields and box.requests == []


FORBIDDEN_LISTS: dict[str, tuple[dict[str, Any], str]] = {
    "a naive date": ({"date_from": dt.datetime(2026, 11, 1)}, "date_from"),
    "a limit over 100": ({"limit": 101}, "limit"),
    "an unknown type": ({"type": "X"}, "type"),
    "an unknown cancellation status": ({"cancellation_status": ["pending", "gone"]}, "cancellation_status"),
    "a series over 25 characters": ({"series": "S" * 26}, "series"),
    "an external_id over 100 characters": ({"external_id": "E" * 101}, "external_id"),
    "an unknown filter": ({"colour": "red"}, "colour"),
    "a uuid that is not one": ({"uuid": "abc"}, "uuid"),
}


@pytest.mark.parametrize("name", sorted(FORBIDDEN_LISTS))
async def test_a_search_the_spec_forbids_is_refused_before_sending(
    client: FacturapiAsyncClient, box: FacturapiSandbox, name: str
) -> None:
    filters, field = FORBIDDEN_LISTS[name]
    with pytest.raises(billkit.ValidationError) as info:
        [i async for i in client.native.list_invoices(**filters)]
    assert field in info.value.fields and box.requests == []


async def test_send_by_email_refuses_a_bad_address(client: FacturapiAsyncClient, box: FacturapiSandbox) -> None:
    with pytest.raises(billkit.ValidationError) as info:
        await client.native.send_by_email("inv_1", ["ok@example.mx", "not an address"])
    assert info.value.fields == ["email[1]"] and box.requests == []


async def test_paging_never_asks_for_a_page_beyond_the_thirtieth(
    client: FacturapiAsyncClient, box: FacturapiSandbox
) -> None:
    for i in range(31):
        await client.create(invoice(f"FA-PG{i:02d}"))
    pages: list[Any] = []
    with pytest.raises(billkit.ValidationError, match="narrow"):
        async for page in client.native.list_invoice_pages(limit=1):
            pages.append(page)
    asked = sorted(int(r.params["page"]) for r in box.received("GET", "/invoices") if r.path == "/invoices")
    assert len(pages) == 30 and asked == list(range(1, 31))


async def test_dates_and_lists_go_out_as_the_spec_says(client: FacturapiAsyncClient, box: FacturapiSandbox) -> None:
    since = dt.datetime(2026, 11, 1, tzinfo=dt.timezone(dt.timedelta(hours=-6)))
    [i async for i in client.native.list_invoices(date_from=since, cancellation_status=["pending", "accepted"])]
    [query] = [r for r in box.received("GET") if r.path == "/invoices"]
    assert query.params["date[gte]"] == "2026-11-01T00:00:00-06:00"


@pytest.mark.parametrize("blocking", [False, True])
async def test_a_download_streams_to_a_file_whole_or_not_at_all(
    box: FacturapiSandbox, tmp_path: Any, blocking: bool
) -> None:
    target = tmp_path / "invoice.zip"
    async with billkit.AsyncClient("facturapi", sandbox=box) as maker:
        made = await maker.create(invoice("FA-DL"))
    assert made.provider_id is not None
    small = 32  # smaller than the ZIP: read into memory it is refused, streamed to a file it is not
    if blocking:
        with billkit.Client("facturapi", sandbox=box, max_response_bytes=small) as sync:
            with pytest.raises(billkit.ResponseTooLargeError):
                sync.native.download(made.provider_id, "zip")
            assert sync.native.download_to(made.provider_id, "zip", target) == str(target)
    else:
        async with billkit.AsyncClient("facturapi", sandbox=box, max_response_bytes=small) as client:
            with pytest.raises(billkit.ResponseTooLargeError):
                await client.native.download(made.provider_id, "zip")
            assert await client.native.download_to(made.provider_id, "zip", target) == str(target)
    with zipfile.ZipFile(target) as archive:
        assert archive.namelist()
    assert target.stat().st_size > small and not (tmp_path / "invoice.zip.part").exists()


async def test_a_bulk_token_packs_the_invoice_ids_and_resumes_every_item(box: FacturapiSandbox) -> None:
    bills = [invoice(f"FA-T{i:03d}") for i in range(300)]
    bills.insert(7, invoice("FA-BAD", tax_id="not-an-rfc"))
    async with billkit.AsyncClient("facturapi", sandbox=box) as first:
        with pytest.raises(billkit.ValidationError):
            await first.submit_many(bills)  # one bad bill: nothing is sent
        bulk = await first.submit_many([b for b in bills if b.reference != "FA-BAD"])
        token = bulk.token
    assert len(token) <= 17 * 300 + 256, len(token)
    async with billkit.AsyncClient("facturapi", sandbox=box) as second:
        result = await (await second.resume(token, bulk=True))
    assert [i.index for i in result] == list(range(300)) and len(result.succeeded) == 300
    assert {i.bill.reference for i in result if i.bill} == {f"FA-T{i:03d}" for i in range(300)}

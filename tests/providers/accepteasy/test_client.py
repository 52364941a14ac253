"""The adapter against the sandbox: sync, async, bulk, lost answers, PATCH, search, webhooks, resume."""

from __future__ import annotations

import datetime as dt
from typing import Any

import httpx
import pytest

import billkit
from billkit import BillStatus
from billkit.clock import VirtualClock
from billkit.errors import AuthenticationError, OperationFailed, WebhookVerificationError
from billkit.models import ItemStatus
from billkit.providers.accepteasy import AcceptEasyAsyncClient
from billkit.providers.accepteasy.sandbox import BAD_TEMPLATE_ID, AcceptEasySandbox
from billkit.providers.accepteasy.webhooks import (
    BulkCompletedEvent,
    CreationFailedEvent,
    PaidEvent,
    check_source_ip,
    parse_event,
)
from billkit.providers.accepteasy.wire import format_datetime
from billkit.sandboxing import Fault, Faults

from .conftest import bill, fixture

pytestmark = pytest.mark.anyio


async def test_sync_create(client: AcceptEasyAsyncClient, box: AcceptEasySandbox) -> None:
    created = await client.create(bill())
    assert created.status is BillStatus.OPEN and created.provider_status == "Open"
    assert created.total == billkit.Money("12.95", "EUR")
    assert created.provider_id in box.bills
    sent = box.received("POST", "/v2/Bill")[0].body
    assert sent["Amount"] == 1295 and sent["SRRID"].startswith("bk-") and len(sent["SRRID"]) <= 36
    assert (await client.get(created.provider_id or "")).provider_id == created.provider_id


async def test_async_submit_is_awaited(client: AcceptEasyAsyncClient, box: AcceptEasySandbox) -> None:
    op = await client.submit(bill())
    done = await op
    assert done.status is BillStatus.OPEN and done.provider_id in box.bills
    assert len(box.received("GET", "/status")) >= 1
    assert box.received("GET", f"/v2/Bill/{done.provider_id}")[-1].path == f"/v2/Bill/{done.provider_id}"


async def test_async_creation_failed_raises_app0224(client: AcceptEasyAsyncClient, box: AcceptEasySandbox) -> None:
    soon = dt.datetime.fromtimestamp(box.clock.wall() + 1, tz=dt.timezone.utc)  # expires while queued
    op = await client.submit(bill(provider_options={"ExpiryDate": format_datetime(soon)}))
    with pytest.raises(OperationFailed) as info:
        await op
    assert info.value.code == "APP0224" and "must be in the future" in info.value.message
    assert info.value.provider_status == "CreationFailed" and box.bills == {}


async def test_bulk_of_1000_with_7_failures(client: AcceptEasyAsyncClient, box: AcceptEasySandbox) -> None:
    bad = {3, 150, 151, 402, 640, 777, 999}
    for i in (150, 640):
        box.fail_references[f"LI-{i:04d}"] = "APP0999 - Sandbox refused this reference."
    bills = [
        bill(f"LI-{i:04d}", provider_options={"AETemplateID": BAD_TEMPLATE_ID} if i in bad - {150, 640} else {})
        for i in range(1000)
    ]
    progress: list[tuple[int, int]] = []
    op = await client.submit_many(bills, on_progress=lambda a, b: progress.append((a, b)))
    result = await op
    assert len(result) == 1000 and len(result.succeeded) == 993 and len(result.failed) == 7
    assert [item.index for item in result.failed] == sorted(bad)
    assert [item.index for item in result] == list(range(1000))
    assert all(item.reference == f"LI-{item.index:04d}" for item in result)
    for item in result.failed:
        assert isinstance(item.error, OperationFailed)
        expected = "Sandbox refused" if item.index in (150, 640) else "Invalid banner template reference"
        assert expected in item.error.message
    assert result[150].error is not None and getattr(result[150].error, "code", None) == "APP0999"
    assert len(box.bills) == 993
    # one bulk status read per poll, whatever the size; no per-bill reads
    polls = box.received("GET", "/v2/Bill/bulk/")
    assert 1 <= len(polls) <= 10 and all(r.path.endswith("/status") for r in polls)
    assert box.received("GET", "/v2/Bill/") == polls
    assert progress[-1] == (1000, 1000)


async def test_bulk_progress_and_partial_result(box: AcceptEasySandbox) -> None:
    box.report_partial = True
    box.bulk_rate = 10.0  # 100 bills take 10 s after a 2 s start
    async with billkit.AsyncClient("accepteasy", sandbox=box, poll=billkit.PollPolicy.fixed(3.0)) as client:
        seen: list[tuple[int, int]] = []
        op = await client.submit_many(
            [bill(f"P-{i}") for i in range(100)], on_progress=lambda a, b: seen.append((a, b))
        )
        result = await op
    assert len(result.succeeded) == 100
    assert any(0 < done < 100 for done, _ in seen) and seen[-1] == (100, 100)
    assert len(box.received("GET", "/v2/Bill/bulk/")) == 4  # at 3, 6, 9 and 12 s: one read per poll


async def test_bulk_top_level_failure_fails_every_item(client: AcceptEasyAsyncClient, box: AcceptEasySandbox) -> None:
    box.fail_next_bulk = "Bulk processing failed: storage unavailable"
    result = await (await client.submit_many([bill("A"), bill("B")]))
    assert [i.status for i in result] == [ItemStatus.FAILED, ItemStatus.FAILED]
    assert all("storage unavailable" in str(i.error) for i in result)


async def test_lost_answer_after_the_server_acted_gives_one_bill(box: AcceptEasySandbox) -> None:
    box.faults.once(Fault.DROP_AFTER, match="POST /v2/Bill")
    async with billkit.AsyncClient("accepteasy", sandbox=box) as client:
        created = await client.create(bill("LOST-1"))
    assert len(box.bills) == 1 and created.provider_id in box.bills
    assert len(box.received("POST")) == 1  # found by its SRRID, not sent again
    assert box.count_srrid(box.received("POST")[0].body["SRRID"]) == 1


async def test_5xx_before_acting_is_looked_up_then_resent_once(box: AcceptEasySandbox) -> None:
    box.faults.once(Fault.SERVER_ERROR, match="POST /v2/Bill")
    async with billkit.AsyncClient("accepteasy", sandbox=box) as client:
        created = await client.create(bill("FIVE-1"))
    posts = box.received("POST")
    assert len(posts) == 2 and posts[0].body["SRRID"] == posts[1].body["SRRID"]
    assert len(box.bills) == 1 and created.provider_id in box.bills


async def test_async_lost_answer_while_processing_resolves_to_the_one_bill(box: AcceptEasySandbox) -> None:
    box.faults.once(Fault.DROP_AFTER, match="POST /v2/Bill/async")
    async with billkit.AsyncClient("accepteasy", sandbox=box) as client:
        done = await (await client.submit(bill("LOST-2")))
    assert len(box.bills) == 1 and done.provider_id in box.bills
    assert len(box.received("POST")) == 2  # resent with the same SRRID, refused as a duplicate


async def test_async_lost_answer_and_failing_searches_still_wait_for_the_one_bill(clock: VirtualClock) -> None:
    """Found by the soak: a lost async answer, a resend refused as a duplicate SRRID, and then a search that fails
    through all its retries must not end as a plain ServerError (the bill exists)."""

    class FlakySearch(AcceptEasySandbox):
        failed = 0

        def handle(self, request: httpx.Request, body: Any) -> httpx.Response:
            retries = billkit.RetryPolicy().max_attempts
            if request.url.path.startswith("/v2/Search") and len(self.received("POST")) >= 2 and self.failed < retries:
                self.failed += 1
                return self.fault_response(Fault.SERVER_ERROR)
            return super().handle(request, body)

    box = FlakySearch(clock)
    box.faults.once(Fault.DROP_AFTER, match="POST /v2/Bill/async")
    async with billkit.AsyncClient("accepteasy", sandbox=box) as client:
        done = await (await client.submit(bill("LOST-3")))
    assert len(box.bills) == 1 and done.provider_id in box.bills
    assert len(box.received("POST")) == 2 and box.failed == billkit.RetryPolicy().max_attempts


async def test_duplicate_srrid_resolves_to_the_existing_bill(
    client: AcceptEasyAsyncClient, box: AcceptEasySandbox
) -> None:
    first = await client.create(bill("DUP", provider_options={"SRRID": "order-42"}))
    again = await client.create(bill("DUP", provider_options={"SRRID": "order-42"}))
    assert again.provider_id == first.provider_id and len(box.bills) == 1
    with pytest.raises(billkit.errors.APIError, match="already exists"):
        await client.create(bill("DUP", amount="99.00", provider_options={"SRRID": "order-42"}))


async def test_cancel_via_patch(client: AcceptEasyAsyncClient, box: AcceptEasySandbox) -> None:
    created = await client.create(bill())
    assert created.provider_id is not None
    answer = await client.native.cancel(created.provider_id)
    assert answer.Status == "Succeeded" and answer.Bill is not None and answer.Bill.Status == "Canceled"
    assert box.received("PATCH")[0].body == {"Status": "Canceled"}
    assert (await client.get(created.provider_id)).status is BillStatus.VOID
    with pytest.raises(billkit.errors.APIError, match="only be changed while it is open"):
        await client.native.mark_paid(created.provider_id)
    other = (await client.create(bill("B"))).provider_id
    assert other is not None
    updated = await client.native.update_address(other, email="a@b.nl")
    assert updated.Bill is not None and updated.Bill.Address is not None and updated.Bill.Address.Email == "a@b.nl"


async def test_search_paging(client: AcceptEasyAsyncClient, box: AcceptEasySandbox) -> None:
    for _ in range(120):
        await client.create(bill("SAME-REF"))
    before = len(box.requests)
    found = [b async for b in client.native.search_bills("SAME-REF", count=50)]
    assert len(found) == 120 and len({b.ATID for b in found}) == 120
    pages = box.requests[before:]
    assert [r.params.get("page", "1") for r in pages] == ["1", "2", "3"]
    assert all(r.params["paymentReference"] == "SAME-REF" for r in pages)


async def test_payments_bounces_and_methods(client: AcceptEasyAsyncClient, box: AcceptEasySandbox) -> None:
    created = await client.create(bill())
    atid = created.provider_id or ""
    box.mark_paid(atid)
    box.bounce(atid)
    now = dt.datetime.fromtimestamp(box.clock.wall(), tz=dt.timezone.utc)
    paid = [b async for b in client.native.search_payments(now - dt.timedelta(hours=1), now + dt.timedelta(hours=1))]
    assert [b.ATID for b in paid] == [atid] and paid[0].Status == "Paid"
    bounced = [b async for b in client.native.search_bounces(now.date(), now.date())]
    assert bounced[0].Bounce is not None and bounced[0].Bounce.Message == "550 mailbox unavailable"
    methods = await client.native.payment_methods(atid)
    assert methods[0].PaymentMethodName == "iDEAL" and methods[0].SubPaymentMethods


async def test_wait_for_paid_finishes_after_mark_paid(client: AcceptEasyAsyncClient, box: AcceptEasySandbox) -> None:
    created = await client.create(bill())
    op = await client.wait_for(created.provider_id or "", until=BillStatus.PAID)
    await op.refresh()
    assert not op.done()
    box.mark_paid(created.provider_id or "")
    assert (await op).status is BillStatus.PAID


async def test_bad_credentials() -> None:
    box = AcceptEasySandbox()
    async with billkit.AsyncClient("accepteasy", sandbox=box, key_name="x", key="wrong") as client:
        with pytest.raises(AuthenticationError, match="denied"):
            await client.get("nope")


def test_webhook_bodies_parse_in_both_error_formats() -> None:
    as_object = parse_event(fixture("webhook_creation_failed_object"))
    as_string = parse_event(fixture("webhook_creation_failed_string"))
    assert isinstance(as_object, CreationFailedEvent) and isinstance(as_string, CreationFailedEvent)
    assert as_object.ERROR is not None and as_object.ERROR.code == "APP0224"
    assert as_string.ERROR is not None and as_string.ERROR.code == "APP0225"
    assert isinstance(parse_event(fixture("webhook_paid")), PaidEvent)
    assert isinstance(parse_event(fixture("webhook_bulk_completed")), BulkCompletedEvent)
    assert type(parse_event({"ATID": "a", "STATUS": "Revoked"})).__name__ == "OtherBillEvent"
    with pytest.raises(WebhookVerificationError):
        parse_event(b"not json")
    check_source_ip("104.40.179.234")
    with pytest.raises(WebhookVerificationError):
        check_source_ip("198.51.100.7")


async def test_webhooks_verify_and_finish_operations(client: AcceptEasyAsyncClient, box: AcceptEasySandbox) -> None:
    op = await client.submit(bill(provider_options={"AETemplateID": BAD_TEMPLATE_ID}))
    await box.clock.sleep(box.async_delay)
    body, headers = box.webhook_request(box.notifications()[-1])
    with pytest.raises(WebhookVerificationError):
        client.verify_webhook(body, headers, "webhook-user:guess")
    with pytest.raises(WebhookVerificationError):
        client.verify_webhook(body, {}, "webhook-user:webhook-password")
    event = client.verify_webhook(body, headers, "webhook-user:webhook-password")
    assert isinstance(event, CreationFailedEvent)
    assert client.handle_webhook_event(event) == 1
    assert op.done()
    with pytest.raises(OperationFailed, match="banner template"):
        await op


async def test_bulk_token_resumes_in_another_client(box: AcceptEasySandbox) -> None:
    async with billkit.AsyncClient("accepteasy", sandbox=box) as first:
        op = await first.submit_many([bill("R-1"), bill("R-2", provider_options={"AETemplateID": BAD_TEMPLATE_ID})])
        token = op.token
    async with billkit.AsyncClient("accepteasy", sandbox=box) as second:
        result = await (await second.resume(token, bulk=True))
    assert [i.status for i in result] == [ItemStatus.SUCCEEDED, ItemStatus.FAILED]
    assert "key" not in token


def test_blocking_client(box: AcceptEasySandbox) -> None:
    with billkit.Client("accepteasy", sandbox=box) as client:
        done = client.submit(bill()).result(timeout=600)
        assert done.status is BillStatus.OPEN
        assert len(client.native.search_bills(done.reference)) == 1


def test_sandbox_faults_are_injectable() -> None:
    box = AcceptEasySandbox(faults=Faults(server_error=1.0, seed=1))
    client = billkit.Client("accepteasy", sandbox=box, retry=billkit.RetryPolicy.none())
    with client, pytest.raises(billkit.errors.ServerError):
        client.get("x")
    assert box.faults.injected == {"server_error": 1}


async def test_a_bulk_of_10000_has_a_small_token_that_resumes_every_item(box: AcceptEasySandbox) -> None:
    bills = [bill(f"TK-{i:05d}") for i in range(10_000)]
    bills[7] = bills[7].model_copy(update={"provider_options": {"SRRID": "my-own-srrid-7"}})
    async with billkit.AsyncClient("accepteasy", sandbox=box) as first:
        bulk = await first.submit_many(bills)
        token = bulk.token
    assert len(token) <= 16 * 10_000 + 256, len(token)
    async with billkit.AsyncClient("accepteasy", sandbox=box) as second:
        again = await second.resume(token, bulk=True)
        result = await again
    assert [i.index for i in result] == list(range(10_000)) and len(result.succeeded) == 10_000
    assert [i.reference for i in result][:3] == ["TK-00000", "TK-00001", "TK-00002"]
    assert result[7].bill is not None and result[7].bill.raw is not None
    assert result[7].bill.raw.get("SRRID") == "my-own-srrid-7"


async def test_a_search_page_size_below_one_is_refused_before_sending(
    client: AcceptEasyAsyncClient, box: AcceptEasySandbox
) -> None:
    with pytest.raises(billkit.ValidationError, match="count"):
        [b async for b in client.native.search_bills("X", count=0)]
    assert box.requests == []


async def test_during_maintenance_creates_are_outcome_unknown_and_reads_server_errors(
    client: AcceptEasyAsyncClient, box: AcceptEasySandbox
) -> None:
    box.maintenance = True  # every request answers 503, as docs/providers/accepteasy.md says
    for create in (client.create, client.submit):
        with pytest.raises(billkit.OutcomeUnknownError) as info:
            await create(bill())
        assert isinstance(info.value.cause, billkit.ServerError) and info.value.cause.status_code == 503
        assert "SRRID" in info.value.how_to_check
    with pytest.raises(billkit.OutcomeUnknownError) as bulk:
        await client.submit_many([bill("LI-1"), bill("LI-2")])
    assert "SRRIDs" in bulk.value.how_to_check
    with pytest.raises(billkit.ServerError):
        await client.get("no-such-atid")
    assert box.bills == {}

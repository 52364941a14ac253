"""BILL's bill updates (PUT / PATCH /v3/bills/{id}) and bulk vendor create (POST /v3/vendors/bulk): checked before
anything is sent, never sent twice after they may have reached BILL, settled by reading back; against the sandbox
and, on the wire, respx."""

from __future__ import annotations

import datetime as dt
import json
import pickle
from decimal import Decimal
from typing import Any

import httpx
import pytest
import respx

import billkit
from billkit import Bill, Client, Direction, LineItem, Money, Party
from billkit.clock import VirtualClock
from billkit.errors import APIError, OutcomeUnknownError, UnsupportedFeatureError, ValidationError
from billkit.providers.billcom import BillcomBulkRejected, BillcomError
from billkit.providers.billcom.sandbox import VENDOR_ACME, VENDOR_GLOBEX, VENDOR_INITECH, BillcomSandbox
from billkit.providers.billcom.updates import MAX_VENDOR_BULK, VendorBulkOutcomeUnknown, holds, replaced
from billkit.providers.billcom.wire import BillCreate
from billkit.providers.billcom.wire_updates import BillLineItemPatch, BillPatch
from billkit.sandboxing import Fault, Faults

from .builders import client, payable

PROD = "https://gateway.prod.bill.com/connect"
CREDS: dict[str, Any] = {"username": "u@example.com", "password": "pw", "organization_id": "00801ORG", "dev_key": "dk"}


async def raw_client(box: BillcomSandbox) -> tuple[httpx.AsyncClient, dict[str, str]]:
    http = httpx.AsyncClient(transport=box, base_url=box.base_url)
    login = await http.post("/v3/login", json={"username": box.credentials["username"],
                                               "password": box.credentials["password"],
                                               "organizationId": box.credentials["organization_id"],
                                               "devKey": box.credentials["dev_key"]})  # fmt: skip
    return http, {"devKey": box.credentials["dev_key"], "sessionId": login.json()["sessionId"]}


# -- PATCH -------------------------------------------------------------------------------------------------------


@pytest.mark.anyio
async def test_a_patch_from_a_bill_sends_only_the_fields_set(box: BillcomSandbox) -> None:
    async with client(box) as c:
        created = await c.create(payable("UP-1", description="desk"))
        bill_id = created.provider_id or ""
        updated = await c.native.update_bill(bill_id, Bill(direction=Direction.PAYABLE, due_date=dt.date(2025, 2, 1),
                                                           reference="UP-1b"))  # fmt: skip
    [sent] = box.received("PATCH", "/v3/bills/")
    assert sent.body == {"dueDate": "2025-02-01", "invoice": {"invoiceNumber": "UP-1b"}}
    assert updated.due_date == "2025-02-01" and updated.invoice_number == "UP-1b"
    record = box.bills[bill_id]
    assert record["description"] == "desk" and record["invoice"]["invoiceDate"] == "2024-12-31"  # untouched
    assert record["amount"] == Decimal("149.00")
    assert [e["metadata"]["eventType"] for e in box.events()] == ["bill.updated"]  # the implicit subscription's


@pytest.mark.anyio
async def test_a_patch_of_lines_reads_the_bill_and_replaces_the_list(box: BillcomSandbox) -> None:
    async with client(box) as c:
        created = await c.create(payable("UP-2", vendor=VENDOR_INITECH, currency="EUR",
                                         lines=(("a", "10.00"), ("b", "20.00"))))  # fmt: skip
        bill_id = created.provider_id or ""
        first_line = box.bills[bill_id]["billLineItems"][0]["id"]
        lines = (LineItem(description="c", quantity=3, unit_price=Money("5.50", "EUR")),)
        updated = await c.native.update_bill(bill_id, Bill(line_items=lines, total=Money("16.50", "EUR")))
        with pytest.raises(ValidationError) as usd:  # Initech bills in EUR
            usd_line = LineItem(description="d", unit_price=Money("1.00", "USD"))
            await c.native.update_bill(bill_id, Bill(line_items=(usd_line,)))
        kept = await c.native.update_bill(bill_id, {"billLineItems": [
            {"id": updated.line_item_ids[0], "amount": Decimal("7.00")}]})  # fmt: skip
    patches = [r.body for r in box.received("PATCH", "/v3/bills/")]
    assert patches[0] == {"billLineItems": [{"quantity": 3, "price": Decimal("5.50"), "amount": Decimal("16.50"),
                                             "description": "c"}]}  # fmt: skip
    assert updated.amount == Decimal("16.50") and len(updated.bill_line_items) == 1
    assert updated.funding_amount == Decimal("17.82")  # the EUR vendor's USD amount follows
    assert first_line not in updated.line_item_ids  # a line without an id is a new line
    assert [p.field for p in usd.value.problems] == ["line_items"] and "EUR" in str(usd.value)
    assert len(patches) == 2  # the USD one was never sent
    assert kept.line_item_ids == updated.line_item_ids and kept.amount == Decimal("7.00")
    assert len(box.received("GET", f"/v3/bills/{bill_id}")) == 3  # each change of lines reads the vendor first


@pytest.mark.anyio
async def test_every_problem_of_a_patch_is_listed_before_anything_is_sent(box: BillcomSandbox) -> None:
    async with client(box) as c:
        with pytest.raises(ValidationError) as wire:
            await c.native.update_bill("12345", {"dueDate": "2025-02-30", "invoice": {"invoiceNumber": " "},
                                                 "billLineItems": [{"quantity": Decimal(2), "price": Decimal("1.00"),
                                                                    "amount": Decimal("3.00")}, {"description": "x"}],
                                                 "vendorId": VENDOR_GLOBEX})  # fmt: skip
        with pytest.raises(ValidationError) as floats:
            await c.native.update_bill("00n01X", {"billLineItems": [{"amount": 1.5}]})
        with pytest.raises(ValidationError) as common:
            await c.native.update_bill("00n01X", Bill(counterparty=Party(provider_id=VENDOR_GLOBEX), description=None,
                                                      reference="", total=Money("1.00", "USD"),
                                                      provider_options={"nickname": "typo"}))  # fmt: skip
        with pytest.raises(ValidationError) as empty:
            await c.native.update_bill("00n01X", Bill())
        with pytest.raises(UnsupportedFeatureError) as receivable:
            await c.native.update_bill("00n01X", Bill(direction=Direction.RECEIVABLE))
        with pytest.raises(ValidationError) as lines:
            await c.native.update_bill("00n01X", BillPatch(bill_line_items=[BillLineItemPatch(amount=Decimal("-1"))]))
    assert {p.field for p in wire.value.problems} == {"bill_id", "dueDate", "vendorId"}  # the wire model first
    assert {p.field for p in floats.value.problems} == {"billLineItems[0].amount"}
    assert "float" in floats.value.problems[0].message
    assert {p.field for p in common.value.problems} == {"counterparty", "description", "reference", "total",
                                                        "provider_options.nickname"}  # fmt: skip
    assert [p.field for p in empty.value.problems] == ["changes"]
    assert receivable.value.feature == "direction=receivable"
    assert [p.field for p in lines.value.problems] == ["billLineItems"]  # a total that is not positive
    assert box.requests == []  # not even a login


@pytest.mark.anyio
async def test_bills_line_rules_are_checked_on_its_own_fields(box: BillcomSandbox) -> None:
    async with client(box) as c:
        with pytest.raises(ValidationError) as info:
            await c.native.update_bill("00n01X", {"invoice": {"invoiceNumber": "  "}, "billLineItems": [
                {"quantity": Decimal(2), "price": Decimal("1.00"), "amount": Decimal("3.00")},
                {"description": "no amount"}, {"amount": Decimal("1.001")}]})  # fmt: skip
    assert {p.field for p in info.value.problems} == {"billLineItems[0].amount", "billLineItems[1].amount",
                                                      "billLineItems[2].amount", "invoice.invoiceNumber"}  # fmt: skip
    assert "quantity x price" in str(info.value) and "two decimals" in str(info.value)
    assert box.requests == []


@pytest.mark.anyio
async def test_amounts_must_be_exact_in_the_vendors_currency(box: BillcomSandbox) -> None:
    yen = box.add_vendor("Tokyo Parts", bill_currency="JPY")
    async with client(box) as c:
        created = await c.create(payable("JP-1", vendor=yen, currency="JPY", lines=(("bolts", "1500"),)))
        with pytest.raises(ValidationError) as info:
            await c.native.update_bill(created.provider_id or "", {"billLineItems": [{"amount": Decimal("10.50")}]})
        with pytest.raises(ValidationError) as put:
            await c.native.replace_bill(created.provider_id or "", {
                "vendorId": yen, "dueDate": "2025-01-01", "invoice": {"invoiceNumber": "JP-1",
                                                                      "invoiceDate": "2024-12-31"},
                "billLineItems": [{"amount": Decimal("0.99")}]})  # fmt: skip
    assert [p.field for p in info.value.problems] == ["billLineItems[0].amount"] and "JPY" in str(info.value)
    assert [p.field for p in put.value.problems] == ["billLineItems[0].amount"]
    assert box.received("PATCH") == [] and box.received("PUT") == []


# -- PUT ---------------------------------------------------------------------------------------------------------


@pytest.mark.anyio
async def test_a_put_replaces_the_bill_and_clears_what_it_leaves_out(box: BillcomSandbox) -> None:
    async with client(box) as c:
        created = await c.create(payable("PUT-1", description="old", lines=(("a", "10.00"), ("b", "5.00"))))
        bill_id = created.provider_id or ""
        replacement = payable("PUT-1", lines=(("c", "99.99"),), due=dt.date(2025, 3, 1))
        replaced_bill = await c.native.replace_bill(bill_id, replacement)
        with pytest.raises(ValidationError) as other:
            await c.native.replace_bill(bill_id, replacement.model_copy(update={"provider_id": "00n01OTHER"}))
        with pytest.raises(ValidationError) as currency:
            await c.native.replace_bill(bill_id, payable("PUT-1", currency="EUR"))
        with pytest.raises(APIError) as moved:  # BILL's side: a bill keeps its vendor
            await c.native.replace_bill(bill_id, payable("PUT-1", vendor=VENDOR_GLOBEX))
        typed = await c.native.replace_bill(bill_id, BillCreate.model_validate(
            {"vendorId": VENDOR_ACME, "dueDate": "2025-03-02", "invoice": {"invoiceNumber": "PUT-1",
                                                                         "invoiceDate": "2024-12-31"},
             "billLineItems": [{"amount": Decimal("1.00")}], "purchaseOrderNumber": "PO-9"}))  # fmt: skip
    [first, *_] = box.received("PUT", "/v3/bills/")
    assert first.body == {"vendorId": VENDOR_ACME, "dueDate": "2025-03-01", "billLineItems": [
        {"amount": Decimal("99.99"), "description": "c"}], "invoice": {"invoiceNumber": "PUT-1",
                                                                      "invoiceDate": "2024-12-31"}}  # fmt: skip
    assert replaced_bill.description is None and replaced_bill.amount == Decimal("99.99")
    assert "description" not in box.bills[bill_id] and replaced_bill.created_time == created.raw["createdTime"]  # type: ignore[index]
    assert [p.field for p in other.value.problems] == ["provider_id"]
    assert [p.field for p in currency.value.problems] == ["line_items"]
    assert moved.value.status_code == 400 and "vendor" in moved.value.message
    assert typed.purchase_order_number == "PO-9" and typed.due_date == "2025-03-02"
    assert len(box.received("PUT")) == 3  # the provider_id and currency problems were never sent


@pytest.mark.anyio
@pytest.mark.parametrize("state", ["paid", "scheduled", "archived", "approved", "approving"])
async def test_a_bill_paid_scheduled_archived_or_approved_is_refused_and_left_as_it_was(
    box: BillcomSandbox, clock: VirtualClock, state: str
) -> None:
    if state in ("approved", "approving"):
        box.set_approval_policy(0, approvers=2)
    async with client(box) as c:
        created = await c.create(payable(f"ST-{state}"))
        bill_id = created.provider_id or ""
        if state in ("approved", "approving"):
            box.approve(bill_id)
            if state == "approved":
                box.approve(bill_id)
        elif state == "archived":
            await c.native.archive_bill(bill_id)
        else:
            box.pay(bill_id, scheduled_after=0, paid_after=0 if state == "paid" else 600)
            await clock.sleep(1)
        with pytest.raises(APIError) as info:
            await c.native.update_bill(bill_id, Bill(description="changed"))
    assert info.value.status_code == 422 and isinstance(info.value, BillcomError)
    assert "description" not in box.bills[bill_id]


@pytest.mark.anyio
async def test_a_bill_awaiting_or_denied_approval_can_change(box: BillcomSandbox) -> None:
    box.set_approval_policy(0)
    async with client(box) as c:
        assigned = await c.create(payable("AS-1"))
        denied = await c.create(payable("AS-2"))
        box.deny(denied.provider_id or "")
        one = await c.native.update_bill(assigned.provider_id or "", Bill(description="ok"))
        two = await c.native.update_bill(denied.provider_id or "", Bill(description="ok"))
    assert (one.approval_status, two.approval_status) == ("ASSIGNED", "DENIED")


@pytest.mark.anyio
async def test_the_sandbox_checks_an_update_the_way_bill_does(box: BillcomSandbox) -> None:
    async with client(box) as c:
        bill_id = (await c.create(payable("SB-1"))).provider_id or ""
    http, headers = await raw_client(box)
    try:
        empty = await http.patch(f"/v3/bills/{bill_id}", json={}, headers=headers)
        null = await http.patch(f"/v3/bills/{bill_id}", json={"description": None}, headers=headers)
        unknown = await http.patch(f"/v3/bills/{bill_id}", json={"memo": "x"}, headers=headers)
        line = await http.patch(f"/v3/bills/{bill_id}", json={"billLineItems": [{"id": "00l01NOPE", "amount": 1}]},
                                headers=headers)  # fmt: skip
        missing = await http.put("/v3/bills/00n01NOSUCHBILL", json={}, headers=headers)
        incomplete = await http.put(f"/v3/bills/{bill_id}", json={"vendorId": VENDOR_ACME}, headers=headers)
        bulk_empty = await http.post("/v3/vendors/bulk", json=[], headers=headers)
        bulk_big = await http.post("/v3/vendors/bulk", json=[{"name": f"V{i}"} for i in range(101)], headers=headers)
    finally:
        await http.aclose()
    assert empty.status_code == 400 and null.status_code == 400 and "null" in null.json()[0]["message"]
    assert unknown.status_code == 400 and unknown.json()[0]["code"] == "BDC_1002"
    assert line.status_code == 404 and line.json()[0]["code"] == "BDC_1205"
    assert missing.status_code == 404 and incomplete.status_code == 400
    assert bulk_empty.status_code == 400 and bulk_big.status_code == 400
    assert box.bills[bill_id]["amount"] == Decimal("149.00") and len(box.vendors) == 3


# -- lost answers ------------------------------------------------------------------------------------------------


@pytest.mark.anyio
async def test_a_lost_patch_is_not_sent_again_and_is_settled_by_one_read(clock: VirtualClock) -> None:
    box = BillcomSandbox(clock, Faults().once(Fault.DROP_AFTER, match="PATCH /v3/bills"))
    async with client(box) as c:
        bill_id = (await c.create(payable("LP-1"))).provider_id or ""
        done = await c.native.update_bill(bill_id, Bill(description="applied", due_date=dt.date(2025, 4, 1)))
    assert len(box.received("PATCH")) == 1 and done.description == "applied" and done.due_date == "2025-04-01"
    assert len(box.received("GET", f"/v3/bills/{bill_id}")) == 1  # the read that settled it


@pytest.mark.anyio
async def test_a_patch_a_read_cannot_prove_stays_unknown(clock: VirtualClock) -> None:
    box = BillcomSandbox(clock, Faults().once(Fault.SERVER_ERROR, match="PATCH /v3/bills"))
    async with client(box) as c:
        bill_id = (await c.create(payable("LP-2"))).provider_id or ""
        with pytest.raises(OutcomeUnknownError) as info:
            await c.native.update_bill(bill_id, Bill(description="maybe"))
    assert len(box.received("PATCH")) == 1  # a 5xx may have acted: never sent again
    assert f"get_bill({bill_id!r})" in info.value.how_to_check and info.value.reference == bill_id
    assert "description" not in box.bills[bill_id]


@pytest.mark.anyio
async def test_a_lost_put_is_settled_by_reading_the_whole_replacement(clock: VirtualClock) -> None:
    faults = Faults().once(Fault.DROP_AFTER, match="PUT /v3/bills").once(Fault.SERVER_ERROR, match="PUT /v3/bills")
    box = BillcomSandbox(clock, faults)
    async with client(box) as c:
        bill_id = (await c.create(payable("LU-1", description="old"))).provider_id or ""
        done = await c.native.replace_bill(bill_id, payable("LU-1", lines=(("new", "12.00"),)))
        with pytest.raises(OutcomeUnknownError):  # refused before acting, but billkit cannot tell: the read decides
            await c.native.replace_bill(bill_id, payable("LU-1", lines=(("newer", "13.00"),)))
    assert done.amount == Decimal("12.00") and done.description is None
    assert len(box.received("PUT")) == 2 and box.bills[bill_id]["amount"] == Decimal("12.00")


def test_reading_back_compares_numbers_exactly_and_lists_whole() -> None:
    sent = {"dueDate": "2025-01-01", "billLineItems": [{"amount": Decimal("149.00"), "description": "a"}]}
    assert holds({"dueDate": "2025-01-01", "billLineItems": [{"id": "00l1", "amount": 149, "description": "a"}]},
                 sent)  # fmt: skip
    assert not holds({"dueDate": "2025-01-01", "billLineItems": [{"amount": "149.01", "description": "a"}]}, sent)
    assert not holds({"dueDate": "2025-01-01", "billLineItems": []}, sent)
    assert not holds({"billLineItems": [{"amount": True, "description": "a"}]}, {"billLineItems": [{"amount": 1,
                                                                                  "description": "a"}]})  # fmt: skip
    assert replaced({"dueDate": "2025-01-01"}, {"dueDate": "2025-01-01"})
    assert not replaced({"dueDate": "2025-01-01", "description": "left"}, {"dueDate": "2025-01-01"})


# -- bulk vendors ------------------------------------------------------------------------------------------------


def vendors(n: int, prefix: str = "Bulk") -> list[Party]:
    return [Party(name=f"{prefix} {i}", email=f"v{i}@bulk.test", provider_options={"billCurrency": "USD"})
            for i in range(n)]  # fmt: skip


@pytest.mark.anyio
async def test_a_bulk_of_vendors_is_one_request_and_one_result_per_input_in_order(box: BillcomSandbox) -> None:
    box.reverse_bulk_answers = True  # BILL does not promise the order: matched by name
    async with client(box) as c:
        results = await c.native.create_vendors([*vendors(2), {"name": "Raw", "billCurrency": "EUR"}])
        bill = await c.create(payable("BV-1", vendor=results[2].vendor.id if results[2].vendor else "",
                                      currency="EUR"))  # fmt: skip
    [sent] = box.received("POST", "/v3/vendors/bulk")
    assert sent.body == [{"name": "Bulk 0", "email": "v0@bulk.test", "billCurrency": "USD"},
                         {"name": "Bulk 1", "email": "v1@bulk.test", "billCurrency": "USD"},
                         {"name": "Raw", "billCurrency": "EUR"}]  # fmt: skip
    assert [r.index for r in results] == [0, 1, 2] and all(r.ok for r in results)
    assert [r.vendor.name for r in results if r.vendor] == ["Bulk 0", "Bulk 1", "Raw"]
    assert bill.total == Money("149.00", "EUR") and not box.received("GET", "/v3/vendors/")  # the cache knew


@pytest.mark.anyio
async def test_every_problem_of_a_bulk_is_listed_before_anything_is_sent(box: BillcomSandbox) -> None:
    async with client(box) as c:
        with pytest.raises(ValidationError) as info:
            await c.native.create_vendors([Party(name="A"), Party(name="A"), {"name": "B", "billCurrency": "XXX"},
                                           Party(name="C", provider_id=VENDOR_ACME)])  # fmt: skip
        with pytest.raises(ValidationError) as big:
            await c.native.create_vendors(vendors(MAX_VENDOR_BULK + 1))
        with pytest.raises(ValidationError) as none:
            await c.native.create_vendors([])
        with pytest.raises(UnsupportedFeatureError) as tax:
            await c.native.create_vendors([Party(name="T", tax_id="12-3456789")])
    assert {p.field for p in info.value.problems} == {"vendors[1].name", "vendors[2].billCurrency",
                                                      "vendors[3].provider_id"}  # fmt: skip
    assert [p.field for p in big.value.problems] == ["vendors"] and "at most 100" in str(big.value)
    assert [p.field for p in none.value.problems] == ["vendors"]
    assert tax.value.feature == "vendors[0].tax_id"
    assert box.requests == []


@pytest.mark.anyio
async def test_a_refused_bulk_with_a_rollback_created_nothing(box: BillcomSandbox) -> None:
    async with client(box) as c:
        with pytest.raises(BillcomBulkRejected) as info:  # the sandbox's check, not billkit's: a blank name
            await c.native.create_vendors([{"name": "Good"}, {"name": " "}])
    assert [e.code for e in info.value.entries] == [None, "BDC_1246"]
    assert len(box.vendors) == 3 and len(box.received("GET", "/v3/vendors")) == 0  # the rollback entry proves it


@pytest.mark.anyio
async def test_a_lost_bulk_is_never_sent_again_and_every_vendor_is_found(clock: VirtualClock) -> None:
    box = BillcomSandbox(clock, Faults().once(Fault.DROP_AFTER, match="POST /v3/vendors/bulk"))
    async with client(box) as c:
        results = await c.native.create_vendors(vendors(3))
    assert len(box.received("POST", "/v3/vendors/bulk")) == 1
    assert [r.vendor.name for r in results if r.vendor] == ["Bulk 0", "Bulk 1", "Bulk 2"]
    assert len([v for v in box.vendors.values() if v["name"].startswith("Bulk")]) == 3


@pytest.mark.anyio
async def test_a_lost_bulk_names_the_vendors_a_read_cannot_prove(clock: VirtualClock) -> None:
    box = BillcomSandbox(clock, Faults().once(Fault.DROP_AFTER, match="POST /v3/vendors/bulk"))
    twin = box.add_vendor("Bulk 1")  # made meanwhile in BILL's web app, with the same fields
    box.vendors[twin]["email"] = "v1@bulk.test"
    async with client(box) as c:
        with pytest.raises(VendorBulkOutcomeUnknown) as info:
            await c.native.create_vendors(vendors(3))
    assert info.value.indexes == (1,) and sorted(info.value.found) == [0, 2]
    assert "find_vendors_by_name" in info.value.how_to_check and "[1]" in str(info.value)
    assert len(box.received("POST", "/v3/vendors/bulk")) == 1
    again = pickle.loads(pickle.dumps(info.value))
    assert type(again) is VendorBulkOutcomeUnknown and again.indexes == (1,)


@pytest.mark.anyio
async def test_a_bulk_answered_with_a_5xx_stays_unknown_for_every_vendor(clock: VirtualClock) -> None:
    box = BillcomSandbox(clock, Faults().once(Fault.SERVER_ERROR, match="POST /v3/vendors/bulk"))
    async with client(box) as c:
        with pytest.raises(VendorBulkOutcomeUnknown) as info:
            await c.native.create_vendors(vendors(2))
    assert info.value.indexes == (0, 1) and info.value.found == {}
    assert len(box.received("POST", "/v3/vendors/bulk")) == 1


# -- on the wire -------------------------------------------------------------------------------------------------


def _wire(router: respx.Router) -> Any:
    router.post(f"{PROD}/v3/login").respond(200, json={"sessionId": "sid-1", "organizationId": "00801ORG"})
    router.post(f"{PROD}/v3/logout").respond(200)
    return billkit.AsyncClient("billcom", transport=httpx.MockTransport(router.async_handler), clock=VirtualClock(),
                               base_url=PROD, **CREDS)  # fmt: skip


ERROR = {"timestamp": "2026-01-01T00:00:00.000+00:00", "severity": "ERROR", "category": "REQUEST",
         "message": "email: must be a well-formed email address"}  # fmt: skip


@pytest.mark.anyio
async def test_on_the_wire_a_refusal_without_a_rollback_is_checked_by_reading() -> None:
    router = respx.Router(assert_all_called=False)
    router.post(f"{PROD}/v3/vendors/bulk").respond(400, json=[ERROR])
    kept = {
        "id": "00901WIRE00000000001",
        "name": "Bulk 0",
        "email": "v0@bulk.test",
        "billCurrency": "USD",
        "createdTime": "2100-01-01T00:00:00.000+00:00",
    }
    reads: list[int] = []

    def listed(request: httpx.Request) -> httpx.Response:  # one listing per name: 2 for the first call, 2 after
        reads.append(1)
        return httpx.Response(200, json={"results": [kept] if len(reads) > 2 else []})

    listing = router.get(f"{PROD}/v3/vendors").mock(side_effect=listed)
    async with _wire(router) as c:
        with pytest.raises(BillcomBulkRejected):  # nothing found: nothing was created
            await c.native.create_vendors(vendors(2))
        partial = await c.native.create_vendors(vendors(2))  # one found: BILL kept it, so it is reported created
    assert len(listing.calls) == 4
    assert partial[0].vendor is not None and partial[0].vendor.id == "00901WIRE00000000001"
    assert isinstance(partial[1].error, BillcomBulkRejected) and not partial[1].ok


@pytest.mark.anyio
async def test_on_the_wire_a_patch_carries_the_session_and_unknown_fields_are_kept() -> None:
    router = respx.Router(assert_all_called=False)
    route = router.patch(f"{PROD}/v3/bills/00n01WIRE").respond(200, json={
        "id": "00n01WIRE", "dueDate": "2025-05-01", "paymentStatus": "NEWSTATE", "approvalFlow": "x"})  # fmt: skip
    async with _wire(router) as c:
        bill = await c.native.update_bill("00n01WIRE", {"dueDate": "2025-05-01"})
    [call] = route.calls
    assert call.request.headers["sessionId"] == "sid-1"
    assert json.loads(call.request.content) == {"dueDate": "2025-05-01"}
    assert bill.payment_status == "NEWSTATE" and bill.model_extra == {"approvalFlow": "x"}


def test_updates_and_a_bulk_through_the_blocking_client() -> None:
    with Client("billcom", sandbox=True) as c:
        bill = c.create(payable("BL-UP"))
        updated = c.native.update_bill(bill.provider_id or "", Bill(description="blocking"))
        made = c.native.create_vendors(vendors(2, "Blocking"))
    assert updated.description == "blocking" and [r.ok for r in made] == [True, True]

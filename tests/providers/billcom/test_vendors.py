"""BILL vendors (created and updated from a common Party or BILL's own fields, fail closed) and the approval and
payment states of a bill, from approved to scheduled to paid: against the sandbox and, on the wire, respx."""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

import httpx
import pytest
import respx

import billkit
from billkit import Address, BillStatus, Client, Money, Party
from billkit.clock import VirtualClock
from billkit.errors import NotFoundError, OutcomeUnknownError, UnsupportedFeatureError, ValidationError
from billkit.providers.billcom import BillcomAsyncClient, BillcomError
from billkit.providers.billcom.mapping import APPROVAL_STATUS, ApprovalStatus, approval_of, to_bill
from billkit.providers.billcom.sandbox import VENDOR_ACME, BillcomSandbox
from billkit.providers.billcom.wire import BillResponse, VendorUpdate
from billkit.sandboxing import Fault, Faults

from .builders import client, payable

PROD = "https://gateway.prod.bill.com/connect"
CREDS: dict[str, Any] = {"username": "u@example.com", "password": "pw", "organization_id": "00801ORG", "dev_key": "dk"}
ADDRESS = Address(line1="123 Main Street", city="San Jose", region="CA", postal_code="95002", country="us")


def umbrella(**changes: Any) -> Party:
    fields: dict[str, Any] = {"name": "Umbrella Supplies", "email": "ap@umbrella.test", "phone": "9876543210",
                              "address": ADDRESS, "provider_options": {"accountType": "BUSINESS"}}  # fmt: skip
    return Party(**{**fields, **changes})


# -- vendors: create ---------------------------------------------------------------------------------------


@pytest.mark.anyio
async def test_a_vendor_is_created_from_a_party_in_bills_own_names(box: BillcomSandbox) -> None:
    async with client(box) as c:
        vendor = await c.native.create_vendor(umbrella(provider_options={"accountType": "BUSINESS",
                                                                         "billCurrency": "EUR"}))  # fmt: skip
        party = await c.native.get_vendor_party(vendor.id)
        bill = await c.create(payable("V-1", vendor=vendor.id, currency="EUR"))  # no vendor read: the create told
    [sent] = box.received("POST", "/v3/vendors")
    assert sent.body == {"name": "Umbrella Supplies", "email": "ap@umbrella.test", "phone": "9876543210",
                         "accountType": "BUSINESS", "billCurrency": "EUR",
                         "address": {"line1": "123 Main Street", "city": "San Jose", "stateOrProvince": "CA",
                                     "zipOrPostalCode": "95002", "country": "US"}}  # fmt: skip
    assert vendor.id.startswith("009") and vendor.bill_currency == "EUR" and box.vendors[vendor.id]["name"] == (
        "Umbrella Supplies")  # fmt: skip
    assert party.provider_id == vendor.id and party.name == "Umbrella Supplies"
    assert party.address == Address(line1="123 Main Street", city="San Jose", region="CA", postal_code="95002",
                                    country="US")  # fmt: skip
    assert bill.total == Money("149.00", "EUR")
    assert box.received("GET", f"/v3/vendors/{vendor.id}") and len(box.received("GET", "/v3/vendors/")) == 1


@pytest.mark.anyio
async def test_every_problem_is_listed_before_anything_is_sent(box: BillcomSandbox) -> None:
    bad = Party(name="x" * 101, email="not-an-address", address=Address(country="USA"),
                provider_options={"accountType": "COMPANY", "billCurrency": "XXX", "shortName": "s" * 41,
                                  "nickname": "typo"})  # fmt: skip
    async with client(box) as c:
        with pytest.raises(ValidationError) as info:
            await c.native.create_vendor(bad)
        with pytest.raises(ValidationError) as raw:
            await c.native.create_vendor({"accountType": "BUSINESS"})
        with pytest.raises(ValidationError) as existing:
            await c.native.create_vendor(umbrella(provider_id=VENDOR_ACME))
        with pytest.raises(UnsupportedFeatureError) as tax:
            await c.native.create_vendor(umbrella(tax_id="12-3456789"))
    fields = {p.field for p in info.value.problems}
    assert fields == {"name", "email", "address.country", "provider_options.accountType",
                      "provider_options.billCurrency", "provider_options.shortName",
                      "provider_options.nickname"}  # fmt: skip
    assert [p.field for p in raw.value.problems] == ["name"]
    assert [p.field for p in existing.value.problems] == ["provider_id"]
    assert tax.value.feature == "tax_id"
    assert box.requests == []  # not even a login


@pytest.mark.anyio
async def test_the_sandbox_checks_a_vendor_the_way_bill_does(box: BillcomSandbox) -> None:
    async with httpx.AsyncClient(transport=box, base_url=box.base_url) as http:
        login = await http.post("/v3/login", json={"username": box.credentials["username"],
                                                   "password": box.credentials["password"],
                                                   "organizationId": box.credentials["organization_id"],
                                                   "devKey": box.credentials["dev_key"]})  # fmt: skip
        headers = {"devKey": box.credentials["dev_key"], "sessionId": login.json()["sessionId"]}
        nameless = await http.post("/v3/vendors", json={"accountType": "BUSINESS"}, headers=headers)
        unknown = await http.post("/v3/vendors", json={"name": "A", "nickname": "B"}, headers=headers)
        bank = await http.patch(f"/v3/vendors/{VENDOR_ACME}", json={"paymentInformation": {}}, headers=headers)
        missing = await http.patch("/v3/vendors/00901NOSUCHVENDOR000", json={"name": "A"}, headers=headers)
    assert nameless.status_code == 400 and nameless.json()[0]["message"] == "name: must not be blank"
    assert unknown.status_code == 400 and unknown.json()[0]["code"] == "BDC_1002"
    assert bank.status_code == 400 and "bank-account" in bank.json()[0]["message"]
    assert missing.status_code == 404 and missing.json()[0]["code"] == "BDC_1205"


@pytest.mark.anyio
async def test_a_lost_create_is_not_sent_again_and_is_found_by_one_read(clock: VirtualClock) -> None:
    box = BillcomSandbox(clock, Faults().once(Fault.DROP_AFTER, match="POST /v3/vendors"))
    async with client(box) as c:
        vendor = await c.native.create_vendor(umbrella())
    assert len(box.received("POST", "/v3/vendors")) == 1  # never repeated
    assert list(box.vendors).count(vendor.id) == 1 and vendor.name == "Umbrella Supplies"
    assert len(box.received("GET", "/v3/vendors")) == 1  # the safe read that found it


@pytest.mark.anyio
async def test_a_lost_create_that_cannot_be_told_apart_stays_unknown(clock: VirtualClock) -> None:
    box = BillcomSandbox(clock, Faults().once(Fault.DROP_AFTER, match="POST /v3/vendors"))
    box.vendors[box.add_vendor("Umbrella Supplies")]["email"] = "ap@umbrella.test"  # the same vendor, just made
    async with client(box) as c:
        with pytest.raises(OutcomeUnknownError) as info:
            await c.native.create_vendor(umbrella(phone=None, address=None, provider_options={}))
        named = await c.native.find_vendors_by_name("Umbrella Supplies")
    assert len(box.received("POST", "/v3/vendors")) == 1
    assert info.value.reference == "Umbrella Supplies" and "find_vendors_by_name" in info.value.how_to_check
    assert len(named) == 2  # two match: billkit does not pick one


@pytest.mark.anyio
async def test_a_create_answered_with_a_5xx_and_not_found_stays_unknown(clock: VirtualClock) -> None:
    box = BillcomSandbox(clock, Faults().once(Fault.SERVER_ERROR, match="POST /v3/vendors"))
    async with client(box) as c:
        with pytest.raises(OutcomeUnknownError):
            await c.native.create_vendor(umbrella())
        assert await c.native.find_vendors_by_name("Umbrella Supplies") == []
    assert len(box.received("POST", "/v3/vendors")) == 1  # a 5xx may have acted: never sent again


@pytest.mark.anyio
async def test_a_create_refused_before_it_arrived_is_retried(clock: VirtualClock) -> None:
    box = BillcomSandbox(clock, Faults().once(Fault.DROP_BEFORE, match="POST /v3/vendors"))
    async with client(box) as c:
        vendor = await c.native.create_vendor(umbrella())
    assert len([v for v in box.vendors.values() if v["name"] == "Umbrella Supplies"]) == 1 and vendor.id


# -- vendors: update, archive ------------------------------------------------------------------------------


@pytest.mark.anyio
async def test_an_update_sends_only_what_the_party_set_and_refreshes_the_currency(box: BillcomSandbox) -> None:
    async with client(box) as c:
        vendor = await c.native.create_vendor(umbrella())
        await c.create(payable("U-1", vendor=vendor.id))
        moved = await c.native.update_vendor(vendor.id, Party(email="billing@umbrella.test",
                                                              provider_options={"billCurrency": "GBP"}))  # fmt: skip
        renamed = await c.native.update_vendor(vendor.id, {"name": "Umbrella Corp", "shortName": "UMB"})
        typed = await c.native.update_vendor(vendor.id, VendorUpdate(phone="5550100"))
        bill = await c.create(payable("U-2", vendor=vendor.id, currency="GBP"))
        with pytest.raises(ValidationError) as usd:
            await c.create(payable("U-3", vendor=vendor.id, currency="USD"))
    patches = [r.body for r in box.received("PATCH", "/v3/vendors/")]
    assert patches == [{"email": "billing@umbrella.test", "billCurrency": "GBP"},
                       {"name": "Umbrella Corp", "shortName": "UMB"}, {"phone": "5550100"}]  # fmt: skip
    assert moved.email == "billing@umbrella.test" and renamed.short_name == "UMB" and typed.phone == "5550100"
    assert box.vendors[vendor.id]["address"]["city"] == "San Jose"  # untouched
    assert bill.total == Money("149.00", "GBP") and "GBP" in str(usd.value)


@pytest.mark.anyio
async def test_an_update_is_checked_first(box: BillcomSandbox) -> None:
    async with client(box) as c:
        with pytest.raises(ValidationError) as info:
            await c.native.update_vendor("12345", {"paymentInformation": {"payeeName": "x"}, "name": ""})
        with pytest.raises(ValidationError) as other:
            await c.native.update_vendor(VENDOR_ACME, Party(provider_id="00901OTHERVENDOR0001", name="A"))
        with pytest.raises(ValidationError) as empty:
            await c.native.update_vendor(VENDOR_ACME, Party())
    assert {p.field for p in info.value.problems} == {"vendor_id", "paymentInformation", "name"}
    assert [p.field for p in other.value.problems] == ["provider_id"]
    assert [p.field for p in empty.value.problems] == ["changes"]
    assert box.requests == []


@pytest.mark.anyio
async def test_a_lost_update_is_settled_by_one_read(clock: VirtualClock) -> None:
    faults = Faults().once(Fault.DROP_AFTER, match="PATCH /v3/vendors").once(Fault.DROP_AFTER, match="PATCH /v3/")
    box = BillcomSandbox(clock, faults)
    async with client(box) as c:
        done = await c.native.update_vendor(VENDOR_ACME, Party(email="ap@acme.test"))
        with pytest.raises(OutcomeUnknownError) as info:  # an address a read cannot confirm (BILL normalises it)
            await c.native.update_vendor(VENDOR_ACME, Party(address=ADDRESS))
    assert done.email == "ap@acme.test" and len(box.received("PATCH", "/v3/vendors/")) == 2
    assert f"get_vendor({VENDOR_ACME!r})" in info.value.how_to_check


@pytest.mark.anyio
async def test_an_archived_vendor_takes_no_bills_until_restored(box: BillcomSandbox) -> None:
    async with client(box) as c:
        await c.create(payable("AR-0"))  # the currency of Acme is read and cached
        archived = await c.native.archive_vendor(VENDOR_ACME)
        with pytest.raises(NotFoundError) as info:
            await c.create(payable("AR-1"))
        restored = await c.native.restore_vendor(VENDOR_ACME)
        bill = await c.create(payable("AR-2"))
    assert archived.archived is True and restored.archived is False
    assert isinstance(info.value, BillcomError) and info.value.code == "BDC_1205"
    assert bill.reference == "AR-2"


def test_vendors_through_the_blocking_client() -> None:
    with Client("billcom", sandbox=True) as c:
        vendor = c.native.create_vendor(umbrella())
        updated = c.native.update_vendor(vendor.id, Party(phone="5550199"))
        found = c.native.find_vendors_by_name("Umbrella Supplies")
        party = c.native.get_vendor_party(vendor.id)
    assert updated.phone == "5550199" and [v.id for v in found] == [vendor.id] and party.phone == "5550199"


# -- on the wire -------------------------------------------------------------------------------------------


def _wire(router: respx.Router) -> BillcomAsyncClient:
    router.post(f"{PROD}/v3/login").respond(200, json={"sessionId": "sid-1", "organizationId": "00801ORG"})
    router.post(f"{PROD}/v3/logout").respond(200)
    transport = httpx.MockTransport(router.async_handler)
    return billkit.AsyncClient("billcom", transport=transport, clock=VirtualClock(), base_url=PROD, **CREDS)


@pytest.mark.anyio
async def test_on_the_wire_a_patch_carries_the_session_and_unknown_answer_fields_are_kept() -> None:
    router = respx.Router(assert_all_called=False)
    route = router.patch(f"{PROD}/v3/vendors/00901WIREVENDOR00001").respond(
        200, json={"id": "00901WIREVENDOR00001", "name": "Wire", "email": "w@wire.test", "vendorNetworkId": "n-1"}
    )
    async with _wire(router) as c:
        vendor = await c.native.update_vendor("00901WIREVENDOR00001", Party(email="w@wire.test"))
    [call] = route.calls
    assert call.request.headers["sessionId"] == "sid-1" and call.request.headers["devKey"] == "dk"
    assert json.loads(call.request.content) == {"email": "w@wire.test"}
    assert vendor.model_extra == {"vendorNetworkId": "n-1"}


def test_on_the_wire_bills_refusal_is_typed_and_a_5xx_create_is_never_repeated_blocking() -> None:
    router = respx.Router(assert_all_called=False)
    router.post(f"{PROD}/v3/login").respond(200, json={"sessionId": "sid-1"})
    router.post(f"{PROD}/v3/logout").respond(200)
    errors = [{"timestamp": "2026-01-01T00:00:00.000+00:00", "severity": "ERROR", "category": "REQUEST",
               "message": "address: must not be null"}]  # fmt: skip
    create = router.post(f"{PROD}/v3/vendors").mock(side_effect=[httpx.Response(400, json=errors),
                                                                 httpx.Response(503, json=[])])  # fmt: skip
    router.get(f"{PROD}/v3/vendors").respond(200, json={"results": []})
    with Client("billcom", transport=httpx.MockTransport(router.handler), clock=VirtualClock(), base_url=PROD,
                **CREDS) as c:  # fmt: skip
        with pytest.raises(billkit.APIError) as refused:
            c.native.create_vendor({"name": "No Address"})
        with pytest.raises(OutcomeUnknownError):
            c.native.create_vendor({"name": "Lost"})
    assert isinstance(refused.value, BillcomError) and refused.value.status_code == 400
    assert [e.message for e in refused.value.entries] == ["address: must not be null"]
    assert len(create.calls) == 2  # one each: the 5xx is not retried


# -- approval and payment states ---------------------------------------------------------------------------


def test_every_approval_status_is_mapped_and_an_unknown_one_is_kept() -> None:
    for raw, expected in APPROVAL_STATUS.items():
        assert approval_of({"approvalStatus": raw}) == (expected, raw)
    wire = BillResponse.model_validate({"id": "00n1", "paymentStatus": "ESCALATED", "approvalStatus": "ESCALATED"})
    bill = to_bill(wire, "USD", {"id": "00n1", "paymentStatus": "ESCALATED", "approvalStatus": "ESCALATED"})
    assert (bill.status, bill.provider_status) == (BillStatus.UNKNOWN, "ESCALATED")
    assert approval_of(bill) == (ApprovalStatus.UNKNOWN, "ESCALATED") and approval_of(wire)[1] == "ESCALATED"
    assert approval_of({}) == (ApprovalStatus.UNKNOWN, None)
    assert ApprovalStatus.APPROVED.payable and ApprovalStatus.UNASSIGNED.payable and ApprovalStatus.APPROVING.pending
    assert not ApprovalStatus.DENIED.payable and not ApprovalStatus.DENIED.pending


@pytest.mark.anyio
async def test_approved_then_scheduled_then_paid_is_waited_for(box: BillcomSandbox, clock: VirtualClock) -> None:
    box.set_approval_policy("100.00", approvers=2)
    async with client(box) as c:
        small = await c.create(payable("AP-0", lines=(("pens", "20.00"),)))
        bill = await c.create(payable("AP-1", lines=(("desk", "1500.00"),)))
        bill_id = bill.provider_id or ""
        with pytest.raises(ValueError, match="ASSIGNED"):
            box.pay(bill_id)  # BILL pays only approved bills
        op = await c.wait_for(bill_id, until=BillStatus.PAID)
        states = [approval_of(bill)[1]]
        for step in (box.approve, box.approve):
            step(bill_id)
            states.append(approval_of(await c.get(bill_id))[1])
        box.pay(bill_id, scheduled_after=60, paid_after=1800)
        await clock.sleep(120)
        scheduled = await c.get(bill_id)
        paid = await op
    assert approval_of(small)[0] is ApprovalStatus.UNASSIGNED  # under the threshold
    assert states == ["ASSIGNED", "APPROVING", "APPROVED"]
    assert bill.status is BillStatus.OPEN and bill.raw is not None and len(bill.raw["approvers"]) == 2
    assert (scheduled.status, scheduled.provider_status) == (BillStatus.OPEN, "SCHEDULED")
    assert (paid.status, paid.provider_status) == (BillStatus.PAID, "PAID")
    assert paid.amount_paid == Money("1500.00", "USD") and approval_of(paid)[0] is ApprovalStatus.APPROVED
    assert paid.raw is not None and [a["status"] for a in paid.raw["approvers"]] == ["APPROVED", "APPROVED"]


@pytest.mark.anyio
async def test_a_denied_bill_is_still_open_and_auto_pay_waits_for_approval(box: BillcomSandbox) -> None:
    box.set_approval_policy(0)
    box.auto_pay = (30, 300)
    async with client(box) as c:
        bill = await c.create(payable("DN-1"))
        bill_id = bill.provider_id or ""
        assert box.deny(bill_id) == "DENIED"
        denied = await c.get(bill_id)
        assert bill_id not in box.payments  # auto_pay does not pay an unapproved bill
        assert box.approve(bill_id) == "APPROVED"  # a denied bill can be approved later
        paid = await (await c.wait_for(bill_id, until=BillStatus.PAID))
    assert denied.status is BillStatus.OPEN and approval_of(denied) == (ApprovalStatus.DENIED, "DENIED")
    assert paid.status is BillStatus.PAID
    with pytest.raises(ValueError, match="no approval"):
        box.approve(bill_id)
    updates = [e for e in box.events() if e["bill"]["id"] == bill_id]
    assert [e["bill"]["approvalStatus"] for e in updates][:2] == ["DENIED", "APPROVED"]
    assert updates[-1]["bill"]["paymentStatus"] == "PAID"


def test_approved_to_paid_through_the_blocking_client() -> None:
    box = BillcomSandbox(VirtualClock())
    box.set_approval_policy(Money("10.00", "USD"))
    with Client("billcom", sandbox=box) as c:
        bill = c.create(payable("BL-AP"))
        box.approve(bill.provider_id or "")
        box.pay(bill.provider_id or "", scheduled_after=10, paid_after=100, amount=Decimal("49.00"))
        partial = c.wait_for(bill.provider_id or "", until=BillStatus.PARTIALLY_PAID).result()
    assert partial.provider_status == "PARTIAL" and partial.amount_due == Money("100.00", "USD")

"""Payments, credits and parties through the common model (``record_payment``, ``create_credit``, ``create_party``,
``get_party``, ``update_party``, ``delete_party``) on each provider's sandbox, async and blocking: what each provider
does, the checks made before anything is sent, and the calls a provider cannot make refused with nothing sent."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

import pytest

import billkit
from billkit import Address, Bill, BillStatus, Direction, LineItem, Money, Party, Payment, Tax
from billkit.client import Adapter, adapter_class
from billkit.errors import NotFoundError, UnsupportedFeatureError, ValidationError
from billkit.providers.facturapi.sandbox import FacturapiSandbox
from billkit.sandboxing import Fault

MXN = "MXN"
CALLS = ("record_payment", "create_credit", "create_party", "get_party", "update_party", "delete_party")
SUPPORTED = {
    "accepteasy": {"record_payment"},
    "billcom": {"create_party", "get_party", "update_party", "delete_party"},
    "facturapi": set(CALLS),
}
CAPABILITY = {"record_payment": "payments", "create_credit": "credits"}


def customer(**changes: Any) -> Party:
    fields: dict[str, Any] = {"name": "ESCUELA KEMPER URGATE", "tax_id": "EKU9003173C9",
                              "email": "facturas@example.mx", "address": Address(postal_code="42501"),
                              "provider_options": {"tax_system": "601"}}  # fmt: skip
    return Party(**{**fields, **changes})


def vendor(**changes: Any) -> Party:
    address = Address(line1="123 Main Street", city="San Jose", region="CA", postal_code="95002", country="US")
    fields: dict[str, Any] = {"name": "Umbrella Supplies", "email": "ap@umbrella.test", "address": address,
                              "provider_options": {"accountType": "BUSINESS"}}  # fmt: skip
    return Party(**{**fields, **changes})


def cfdi(reference: str, *, ppd: bool = False, price: str = "1000.00") -> Bill:
    options = {"payment_form": "99", "payment_method": "PPD"} if ppd else {"payment_form": "03"}
    item = LineItem(description="Servicio de consultoría", unit_price=Money(price, MXN),
                    taxes=(Tax(type="IVA", rate="0.16"),), provider_options={"product_key": "80111600"})  # fmt: skip
    return Bill(reference=reference, counterparty=customer(), line_items=(item,),
                provider_options={"use": "G03", **options})  # fmt: skip


def payment_request(reference: str = "CL-1") -> Bill:
    return Bill(reference=reference, description="Membership", total=Money("25.00", "EUR"))


def payable(vendor_id: str) -> Bill:
    item = LineItem(description="USB audio interface", unit_price=Money("149.00", "USD"))
    return Bill(direction=Direction.PAYABLE, counterparty=Party(provider_id=vendor_id), reference="CL-B1",
                issue_date=dt.date(2024, 12, 31), due_date=dt.date(2025, 1, 30), line_items=(item,))  # fmt: skip


# -- capabilities and the calls a provider cannot make ---------------------------------------------------------------


def test_capabilities_say_what_each_provider_supports() -> None:
    for provider, calls in SUPPORTED.items():
        caps = adapter_class(provider).capabilities
        assert caps.payments is ("record_payment" in calls)
        assert caps.credits is ("create_credit" in calls)
        assert caps.parties is ("create_party" in calls)
    assert adapter_class("facturapi").capabilities.partial_payments
    assert not adapter_class("accepteasy").capabilities.partial_payments


def _args(call: str) -> tuple[Any, ...]:
    money = Money("10.00", "EUR")
    return {
        "record_payment": ("bill-1", money),
        "create_credit": ("bill-1", money),
        "create_party": (Party(name="Someone"),),
        "get_party": ("party-1",),
        "update_party": ("party-1", Party(email="a@example.com")),
        "delete_party": ("party-1",),
    }[call]


UNSUPPORTED = [(p, c) for p in sorted(SUPPORTED) for c in CALLS if c not in SUPPORTED[p]]


@pytest.mark.parametrize(("provider", "call"), UNSUPPORTED, ids=[f"{p}-{c}" for p, c in UNSUPPORTED])
def test_an_unsupported_call_raises_before_any_request_blocking(provider: str, call: str) -> None:
    with billkit.Client(provider, sandbox=True) as client:
        with pytest.raises(UnsupportedFeatureError) as err:
            getattr(client, call)(*_args(call))
        assert client.sandbox is not None and client.sandbox.requests == [] and client.requests_made == 0
    assert err.value.provider == provider and provider in str(err.value) and call in str(err.value)


@pytest.mark.anyio
@pytest.mark.parametrize(("provider", "call"), UNSUPPORTED, ids=[f"{p}-{c}" for p, c in UNSUPPORTED])
async def test_an_unsupported_call_raises_before_any_request_async(provider: str, call: str) -> None:
    async with billkit.AsyncClient(provider, sandbox=True) as client:
        with pytest.raises(UnsupportedFeatureError):
            await getattr(client, call)(*_args(call))
        assert client.sandbox is not None and client.sandbox.requests == []


@pytest.mark.parametrize("call", CALLS)
def test_the_adapter_hooks_refuse_by_default(call: str) -> None:
    """The base adapter's hooks refuse when run, before their first effect (nothing to send)."""
    with billkit.Client("accepteasy", sandbox=True) as client:
        args: tuple[Any, ...] = _args(call)
        keywords: dict[str, Any] = {"record_payment": {"paid_at": None, "method": None, "options": {}},
                    "create_credit": {"reason": None, "options": {}}}.get(call, {})  # fmt: skip
        flow = getattr(Adapter, call)(client._adapter, *args, **keywords)
        with pytest.raises(UnsupportedFeatureError) as err:
            next(flow)
    assert err.value.provider == "accepteasy" and call in str(err.value)


@pytest.mark.parametrize(
    ("args", "kwargs", "field"),
    [
        (("", Money("1.00", MXN)), {}, "bill_id"),
        (("inv", Decimal("1.00")), {}, "amount"),
        (("inv", Money("0.00", MXN)), {}, "amount"),
        (("inv", Money("1.00", MXN)), {"paid_at": dt.datetime(2026, 1, 1)}, "paid_at"),
        (("inv", Money("1.00", MXN)), {"provider_options": {"colour": "red"}}, "provider_options.colour"),
        (("inv", Money("1.00", MXN)), {}, "method"),
    ],
)
def test_bad_payment_input_is_refused_before_sending(args: tuple[Any, ...], kwargs: dict[str, Any],
                                                     field: str) -> None:  # fmt: skip
    with billkit.Client("facturapi", sandbox=True) as client:
        with pytest.raises(ValidationError) as err:
            client.record_payment(*args, **({"method": "03"} if field != "method" else {}) | kwargs)
        assert client.sandbox is not None and client.sandbox.requests == []
    assert err.value.provider == "facturapi" and field in err.value.fields


# -- Facturapi: payment complements, credit notes, customers ----------------------------------------------------------


@pytest.mark.anyio
async def test_facturapi_payments_credits_and_customers_async() -> None:
    box = FacturapiSandbox()
    async with billkit.AsyncClient("facturapi", sandbox=box) as client:
        bill = await client.create(cfdi("CL-PPD", ppd=True))
        assert bill.provider_id is not None and bill.total == Money("1160.00", MXN)
        first = await client.record_payment(bill.provider_id, Money("500.00", MXN), method="03",
                                            paid_at=dt.date(2026, 1, 1))  # fmt: skip
        assert isinstance(first, Payment) and first.provider == "facturapi" and first.bill_id == bill.provider_id
        assert first.provider_id and first.amount == Money("500.00", MXN) and first.method == "03"
        assert first.balance_after == Money("660.00", MXN) and first.paid_at is not None
        assert first.paid_at.date() == dt.date(2026, 1, 1) and first.raw is not None and first.raw["type"] == "P"
        balance = await client.native.payment_balance(bill.provider_id)
        assert balance.balance == Money("660.00", MXN) and balance.next_installment == 2
        # another currency, or more than the balance: refused before sending
        sent = len(box.received("POST", "/invoices"))
        for amount in (Money("10.00", "USD"), Money("660.01", MXN)):
            with pytest.raises(ValidationError) as err:
                await client.record_payment(bill.provider_id, amount, method="03")
            assert err.value.fields == ["amount"]
        assert len(box.received("POST", "/invoices")) == sent
        last = await client.record_payment(bill.provider_id, Money("660.00", MXN), method="28",
                                           provider_options={"installment": 2})  # fmt: skip
        assert last.balance_after == Money("0.00", MXN)
        assert (await client.get(bill.provider_id)).status is BillStatus.PAID

        # a credit note of 580.00 (IVA included, the invoice's tax), related to the invoice
        sold = await client.create(cfdi("CL-CN"))
        assert sold.provider_id is not None
        note = await client.create_credit(sold.provider_id, Money("580.00", MXN), reason="Descuento")
        assert note.provider == "facturapi" and note.total == Money("580.00", MXN) and note.raw is not None
        assert note.raw["type"] == "E" and note.response is not None
        assert note.raw["related_documents"][0]["documents"] == [box.invoices[sold.provider_id]["uuid"]]
        sent_body = box.received("POST", "/invoices")[-1].body
        assert sent_body["items"][0]["product"]["description"] == "Descuento"
        with pytest.raises(ValidationError) as err:  # 580 of 1,160 is left
            await client.create_credit(sold.provider_id, Money("580.01", MXN))
        assert "amount" in err.value.fields
        with pytest.raises(ValidationError) as err:
            await client.create_credit(sold.provider_id, Money("5.00", "USD"))
        assert err.value.fields == ["amount"]

        # customers
        saved = await client.create_party(customer())
        assert saved.provider == "facturapi" and saved.provider_id and saved.raw is not None
        assert saved.name == "ESCUELA KEMPER URGATE" and saved.provider_options == {"tax_system": "601"}
        assert (await client.get_party(saved.provider_id)).tax_id == "EKU9003173C9"
        changed = await client.update_party(saved.provider_id, Party(email="pagos@example.mx"))
        assert changed.email == "pagos@example.mx" and changed.name == "ESCUELA KEMPER URGATE"
        assert box.received("PUT", "/customers")[-1].body == {"email": "pagos@example.mx"}
        whole = await client.update_party(saved.provider_id, customer(phone="5555555555"))
        assert whole.phone == "5555555555"
        # a party read back is billed by its id
        billed = await client.create(cfdi("CL-SAVED").model_copy(update={"counterparty": saved.as_counterparty()}))
        assert billed.counterparty is not None and billed.counterparty.provider_id == saved.provider_id
        gone = await client.delete_party(saved.provider_id)
        assert gone.provider_id == saved.provider_id
        with pytest.raises(NotFoundError):
            await client.get_party(saved.provider_id)


def test_facturapi_blocking_and_a_lost_answer_makes_one_complement() -> None:
    box = FacturapiSandbox()
    with billkit.Client("facturapi", sandbox=box) as client:
        bill = client.create(cfdi("CL-PPD-B", ppd=True))
        assert bill.provider_id is not None
        box.faults.once(Fault.DROP_AFTER, match="POST /invoices")
        paid = client.with_options(timeout=30).record_payment(bill.provider_id, Money("300.00", MXN), method="03")
        assert paid.balance_after == Money("860.00", MXN)
        complements = [inv for inv in box.invoices.values() if inv["type"] == "P"]
        assert len(complements) == 1 and complements[0]["id"] == paid.provider_id
        sold = client.create(cfdi("CL-CN-B"))
        assert sold.provider_id is not None
        note = client.create_credit(sold.provider_id, Money("116.00", MXN), provider_options={"relationship": "03"})
        assert note.raw is not None and note.raw["related_documents"][0]["relationship"] == "03"
        saved = client.create_party(customer())
        assert saved.provider_id is not None
        assert client.delete_party(saved.provider_id).provider == "facturapi"


# -- BILL: vendors ----------------------------------------------------------------------------------------------------


@pytest.mark.anyio
async def test_billcom_vendors_async() -> None:
    async with billkit.AsyncClient("billcom", sandbox=True) as client:
        box = client.sandbox
        assert box is not None
        saved = await client.create_party(vendor())
        assert saved.provider == "billcom" and saved.provider_id is not None and saved.provider_id.startswith("009")
        assert saved.raw is not None and saved.raw["name"] == "Umbrella Supplies"
        assert (await client.get_party(saved.provider_id)).email == "ap@umbrella.test"
        changed = await client.update_party(saved.provider_id, Party(email="billing@umbrella.test"))
        assert changed.email == "billing@umbrella.test" and changed.name == "Umbrella Supplies"
        assert box.received("PATCH", "/v3/vendors")[-1].body == {"email": "billing@umbrella.test"}
        bill = await client.create(payable(saved.as_counterparty().provider_id or ""))
        assert bill.provider_id is not None
        archived = await client.delete_party(saved.provider_id)
        assert archived.raw is not None and archived.raw["archived"] is True
        assert box.received("POST", "/archive")
        with pytest.raises(ValidationError):  # the vendor id's shape, checked by the native rules
            await client.update_party("not-a-vendor", Party(email="x@example.com"))


def test_billcom_vendors_blocking() -> None:
    with billkit.Client("billcom", sandbox=True) as client:
        saved = client.create_party(vendor(name="Initech"))
        assert saved.provider_id is not None
        assert client.get_party(saved.provider_id).name == "Initech"
        assert client.update_party(saved.provider_id, {"phone": "5551234567"}).phone == "5551234567"
        assert client.delete_party(saved.provider_id).raw is not None
        with pytest.raises(ValidationError):  # a vendor needs a name (checked before sending)
            client.create_party(Party(email="nobody@example.com"))


# -- AcceptEasy: a bill marked paid ----------------------------------------------------------------------------------


@pytest.mark.anyio
async def test_accepteasy_marks_an_open_bill_paid_async() -> None:
    async with billkit.AsyncClient("accepteasy", sandbox=True) as client:
        box = client.sandbox
        assert box is not None
        bill = await client.create(payment_request())
        assert bill.provider_id is not None
        with pytest.raises(UnsupportedFeatureError) as unsupported:  # no partial payments
            await client.record_payment(bill.provider_id, Money("10.00", "EUR"))
        assert "partial payments" in str(unsupported.value)
        for kwargs in ({"paid_at": dt.date(2026, 1, 1)}, {"method": "iDEAL"}, {"provider_options": {"x": 1}}):
            with pytest.raises(UnsupportedFeatureError):
                await client.record_payment(bill.provider_id, Money("25.00", "EUR"), **kwargs)
        with pytest.raises(ValidationError) as err:
            await client.record_payment(bill.provider_id, Money("25.00", "USD"))
        assert err.value.fields == ["amount"]
        assert box.received("PATCH") == []
        paid = await client.record_payment(bill.provider_id, Money("25.00", "EUR"))
        assert paid.provider == "accepteasy" and paid.provider_id is None and paid.bill_id == bill.provider_id
        assert paid.balance_after == Money("0.00", "EUR") and paid.raw is not None
        assert [r.body for r in box.received("PATCH")] == [{"Status": "Paid"}]
        assert (await client.get(bill.provider_id)).status is BillStatus.PAID
        with pytest.raises(ValidationError) as err:  # paid now: not marked again, nothing sent
            await client.record_payment(bill.provider_id, Money("25.00", "EUR"))
        assert err.value.fields == ["bill_id"] and len(box.received("PATCH")) == 1


def test_accepteasy_blocking_and_a_lost_answer_is_not_repeated() -> None:
    with billkit.Client("accepteasy", sandbox=True) as client:
        box = client.sandbox
        assert box is not None
        bill = client.create(payment_request("CL-2"))
        assert bill.provider_id is not None
        box.faults.once(Fault.DROP_AFTER, match="PATCH /v2/Bill")
        with pytest.raises(billkit.OutcomeUnknownError):
            client.record_payment(bill.provider_id, Money("25.00", "EUR"))
        assert len(box.received("PATCH")) == 1  # sent once: AcceptEasy documents no idempotency for a PATCH
        assert client.get(bill.provider_id).status is BillStatus.PAID  # it did take: the read says so

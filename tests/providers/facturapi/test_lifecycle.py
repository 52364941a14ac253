"""Facturapi's invoice lifecycle through the native client, on the sandbox: payment complements of a PPD invoice
(balance, installments, idempotency), credit notes, drafts, customers and products, status and the cancellation
receipt; the request bodies checked against the official OpenAPI file when it is on this machine."""

from __future__ import annotations

import copy
import datetime as dt
from decimal import Decimal
from typing import Any

import httpx
import pytest

import billkit
from billkit import BillStatus, LineItem, Money, Tax
from billkit.errors import APIError, ConflictError, NotFoundError, ValidationError
from billkit.providers.facturapi import FacturapiAsyncClient
from billkit.providers.facturapi.sandbox import FacturapiSandbox
from billkit.providers.facturapi.wire import ProductInput
from billkit.providers.facturapi.wire_lifecycle import ProductUpdate
from billkit.sandboxing import Fault
from billkit.transport import dumps

from .conftest import invoice, party
from .test_spec import SPEC, as_json, spec

pytestmark = pytest.mark.anyio
MXN = "MXN"


def ppd(reference: str = "FA-PPD", price: str = "1000.00") -> billkit.Bill:
    """An income invoice paid later in installments: PPD, payment form 99 (to be defined), total 1,160.00."""
    return invoice(reference, price, provider_options={"payment_method": "PPD", "payment_form": "99"})


def complements(box: FacturapiSandbox) -> list[dict[str, Any]]:
    return [inv for inv in box.invoices.values() if inv["type"] == "P"]


def posts(box: FacturapiSandbox) -> int:
    return len(box.received("POST", "/invoices"))


# -- payment complements ----------------------------------------------------------------------------------------------


async def test_a_ppd_invoice_paid_in_two_installments(client: FacturapiAsyncClient, box: FacturapiSandbox) -> None:
    bill = await client.create(ppd())
    assert bill.provider_id is not None and bill.total == Money("1160.00", MXN)
    first = await client.native.record_payment(
        bill.provider_id, amount=Money("500.00", MXN), payment_form="03", date=dt.date(2026, 1, 1)
    )
    assert first.type == "P" and first.status == "valid" and first.uuid
    after_one = await client.native.payment_balance(bill.provider_id)
    assert after_one.balance == Money("660.00", MXN) and after_one.next_installment == 2
    assert (await client.get(bill.provider_id)).status is BillStatus.PARTIALLY_PAID
    second = await client.native.record_payment(
        bill.provider_id, amount=Money("660.00", MXN), payment_form="28", installment=2
    )
    done = await client.native.payment_balance(bill.provider_id)
    assert done.balance == Money("0.00", MXN) and done.paid == Money("1160.00", MXN)
    assert [(i.installment, i.amount, i.last_balance) for i in done.installments] == [
        (1, Money("500.00", MXN), Money("1160.00", MXN)),
        (2, Money("660.00", MXN), Money("660.00", MXN)),
    ]
    assert (await client.get(bill.provider_id)).status is BillStatus.PAID
    detail = await client.native.get_invoice(bill.provider_id)
    assert detail.model_extra is not None and detail.model_extra["received_payment_ids"] == [first.id, second.id]
    # a third payment is refused before anything is sent
    sent = posts(box)
    with pytest.raises(ValidationError) as err:
        await client.native.record_payment(bill.provider_id, amount=Money("1.00", MXN), payment_form="03")
    assert "paid in full" in str(err.value) and posts(box) == sent and len(complements(box)) == 2
    # the payment's taxes are the invoice's in proportion: 500 / 1.16 is the IVA base
    paid = first.complements[0]["data"][0]["related_documents"][0] if first.complements else {}
    assert paid["taxes"] == [{"base": Decimal("431.03"), "type": "IVA", "rate": Decimal("0.16")}]
    assert paid["installment"] == 1 and paid["last_balance"] == Decimal("1160.00")


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"amount": Money("1160.01", MXN)}, "amount"),
        ({"amount": Money("0.00", MXN)}, "amount"),
        ({"amount": Money("10.00", "USD")}, "amount"),
        ({"installment": 2}, "installment"),
        ({"payment_form": "99"}, "payment_form"),
        ({"payment_form": "3"}, "payment_form"),
        ({"date": dt.datetime(2030, 1, 1, tzinfo=dt.timezone.utc)}, "date"),
        ({"date": dt.datetime(2026, 1, 1)}, "date"),
    ],
)
async def test_a_payment_the_rules_forbid_is_refused_locally(
    client: FacturapiAsyncClient, box: FacturapiSandbox, kwargs: dict[str, Any], field: str
) -> None:
    bill = await client.create(ppd())
    assert bill.provider_id is not None
    args: dict[str, Any] = {"amount": Money("100.00", MXN), "payment_form": "03", **kwargs}
    with pytest.raises(ValidationError) as err:
        await client.native.record_payment(bill.provider_id, **args)
    assert [p.field for p in err.value.problems] == [field]
    assert posts(box) == 1  # only the invoice's own create


async def test_a_pue_invoice_takes_no_payment_complement(client: FacturapiAsyncClient, box: FacturapiSandbox) -> None:
    bill = await client.create(invoice("FA-PUE"))
    assert bill.provider_id is not None
    with pytest.raises(ValidationError) as err:
        await client.native.record_payment(bill.provider_id, amount=Money("10.00", MXN), payment_form="03")
    assert "PPD" in str(err.value) and posts(box) == 1


async def test_a_lost_answer_never_makes_a_second_complement(box: FacturapiSandbox) -> None:
    async with billkit.AsyncClient("facturapi", sandbox=box) as client:
        bill = await client.create(ppd())
        assert bill.provider_id is not None
        box.faults.once(Fault.DROP_AFTER, match="POST /invoices")
        paid = await client.native.record_payment(bill.provider_id, amount=Money("300.00", MXN), payment_form="03")
    attempts = box.received("POST", "/invoices")[1:]
    assert len(attempts) == 2 and attempts[0].fault == "drop_after"
    assert attempts[0].body["idempotency_key"] == attempts[1].body["idempotency_key"]
    assert [p["id"] for p in complements(box)] == [paid.id]
    assert box.count_idempotency_key(str(paid.idempotency_key)) == 1


async def test_the_callers_key_returns_the_recorded_complement_without_sending(
    client: FacturapiAsyncClient, box: FacturapiSandbox
) -> None:
    bill = await client.create(ppd())
    assert bill.provider_id is not None
    amount = Money("200.00", MXN)
    first = await client.native.record_payment(
        bill.provider_id, amount=amount, payment_form="03", idempotency_key="pay-77"
    )
    sent = posts(box)
    again = await client.native.record_payment(
        bill.provider_id, amount=amount, payment_form="03", idempotency_key="pay-77"
    )
    assert again.id == first.id and posts(box) == sent
    with pytest.raises(ConflictError):  # the same key for another amount is not the same payment
        await client.native.record_payment(
            bill.provider_id, amount=Money("1.00", MXN), payment_form="03", idempotency_key="pay-77"
        )


async def test_a_replayed_key_answering_another_payment_raises(
    client: FacturapiAsyncClient, box: FacturapiSandbox
) -> None:
    bill = await client.create(ppd())
    assert bill.provider_id is not None
    first = await client.native.record_payment(bill.provider_id, amount=Money("100.00", MXN), payment_form="03")
    other = await client.create(ppd("FA-PPD-2"))
    assert other.provider_id is not None
    # a key already used by another document: Facturapi answers with that one, which is not this payment
    with pytest.raises(ConflictError) as err:
        await client.native.record_payment(
            other.provider_id,
            amount=Money("100.00", MXN),
            payment_form="03",
            idempotency_key=str(first.idempotency_key),
        )
    assert err.value.code == "installment_taken" and len(complements(box)) == 1


async def test_a_cancelled_complement_gives_its_amount_back(client: FacturapiAsyncClient) -> None:
    bill = await client.create(ppd())
    assert bill.provider_id is not None
    paid = await client.native.record_payment(bill.provider_id, amount=Money("400.00", MXN), payment_form="03")
    assert paid.id is not None
    await client.native.cancel(paid.id, "02")
    balance = await client.native.payment_balance(bill.provider_id)
    assert balance.balance == Money("1160.00", MXN) and balance.next_installment == 1
    again = await client.native.record_payment(bill.provider_id, amount=Money("400.00", MXN), payment_form="03")
    assert again.id != paid.id and again.idempotency_key != paid.idempotency_key  # a new key: a new payment


async def test_a_balance_that_does_not_add_up_is_not_guessed(
    client: FacturapiAsyncClient, box: FacturapiSandbox
) -> None:
    bill = await client.create(ppd())
    assert bill.provider_id is not None
    await client.native.record_payment(bill.provider_id, amount=Money("100.00", MXN), payment_form="03")
    box.records[bill.provider_id]["invoice"]["total"] = Decimal("999.00")  # the ledger no longer agrees
    with pytest.raises(ConflictError) as err:
        await client.native.payment_balance(bill.provider_id)
    assert err.value.code == "balance_inconsistent"


async def test_the_sandbox_checks_balances_and_installments_itself(box: FacturapiSandbox) -> None:
    async with billkit.AsyncClient("facturapi", sandbox=box) as client:
        bill = await client.create(ppd())
    stored = box.invoices[str(bill.provider_id)]
    doc = {
        "uuid": stored["uuid"],
        "amount": Decimal("2000.00"),
        "installment": 2,
        "last_balance": Decimal("1000"),
        "taxes": [],
    }
    payment: dict[str, Any] = {"payment_form": "99", "related_documents": [doc]}
    body: dict[str, Any] = {
        "type": "P",
        "customer": {
            "legal_name": "ESCUELA KEMPER URGATE",
            "tax_id": "EKU9003173C9",
            "tax_system": "601",
            "address": {"zip": "42501"},
        },
        "complements": [{"type": "pago", "data": [payment]}],
    }
    headers = {"authorization": f"Bearer {box.credentials['api_key']}", "content-type": "application/json"}
    async with httpx.AsyncClient(transport=box, base_url=box.base_url, headers=headers) as http:
        answer = await http.post("/invoices", content=dumps(body))
        at = "complements[0].data[0]"
        assert answer.status_code == 400
        assert [e["path"] for e in answer.json()["errors"]] == [f"{at}.payment_form"]
        payment["payment_form"] = "03"
        answer = await http.post("/invoices", content=dumps(body))
        assert sorted(e["path"] for e in answer.json()["errors"]) == [
            f"{at}.related_documents[0].amount",
            f"{at}.related_documents[0].installment",
            f"{at}.related_documents[0].last_balance",
        ]
        doc["uuid"] = "00000000-0000-4000-8000-000000000000"
        answer = await http.post("/invoices", content=dumps(body))
        assert answer.json()["errors"][0]["code"] == "not_found"
    assert complements(box) == []


# -- credit notes ---------------------------------------------------------------------------------------------------


def discount(price: str = "100.00") -> LineItem:
    return LineItem(
        description="Descuento por pronto pago", unit_price=Money(price, MXN), taxes=(Tax(type="IVA", rate="0.16"),)
    )


async def test_a_credit_note_related_to_the_invoice(client: FacturapiAsyncClient, box: FacturapiSandbox) -> None:
    bill = await client.create(invoice("FA-CN"))
    assert bill.provider_id is not None
    original = box.invoices[bill.provider_id]
    note = await client.native.create_credit_note(bill.provider_id, [discount("500.00")])
    assert note.type == "E" and note.status == "valid" and note.total == Decimal("580.00")
    assert note.related_documents is not None and note.related_documents[0].relationship == "01"
    assert note.related_documents[0].documents == [original["uuid"]]
    sent = box.received("POST", "/invoices")[-1].body
    assert sent["payment_form"] == "03" and sent["use"] == "G02" and sent["items"][0]["product"]["product_key"]
    # 580 of 1,160 is credited: 580.01 more is refused before sending, 580 is accepted
    count = posts(box)
    with pytest.raises(ValidationError) as err:
        await client.native.create_credit_note(bill.provider_id, [discount("500.01")])
    assert "left to credit" in str(err.value) and posts(box) == count
    last = await client.native.create_credit_note(bill.provider_id, [discount("500.00")], relationship="03")
    assert last.total == Decimal("580.00")


async def test_a_credit_note_for_a_draft_or_another_currency_is_refused(
    client: FacturapiAsyncClient, box: FacturapiSandbox
) -> None:
    bill = await client.create(invoice("FA-CN2"))
    assert bill.provider_id is not None
    with pytest.raises(ValidationError) as err:
        await client.native.create_credit_note(
            bill.provider_id, [LineItem(description="x", unit_price=Money("1.00", "USD"))]
        )
    assert [p.field for p in err.value.problems] == ["items[0].unit_price"]
    draft = await client.native.create_draft({"type": "I"})
    assert draft.id is not None
    with pytest.raises(ValidationError):
        await client.native.create_credit_note(draft.id, [discount()])


async def test_the_sandbox_refuses_a_credit_note_related_to_no_invoice(box: FacturapiSandbox) -> None:
    body = {
        "type": "E",
        "customer": {
            "legal_name": "ESCUELA KEMPER URGATE",
            "tax_id": "EKU9003173C9",
            "tax_system": "601",
            "address": {"zip": "42501"},
        },
        "payment_form": "03",
        "items": [{"product": {"description": "Descuento", "price": Decimal("10")}}],
        "related_documents": [{"relationship": "01", "documents": ["00000000-0000-4000-8000-000000000000"]}],
    }
    headers = {"authorization": f"Bearer {box.credentials['api_key']}", "content-type": "application/json"}
    async with httpx.AsyncClient(transport=box, base_url=box.base_url, headers=headers) as http:
        answer = await http.post("/invoices", content=dumps(body))
    assert answer.status_code == 400 and answer.json()["errors"][0]["path"] == "related_documents[0].documents[0]"


# -- drafts ----------------------------------------------------------------------------------------------------------


async def test_a_draft_edited_then_stamped(client: FacturapiAsyncClient, box: FacturapiSandbox) -> None:
    customer = {
        "legal_name": "ESCUELA KEMPER URGATE",
        "tax_id": "EKU9003173C9",
        "tax_system": "601",
        "address": {"zip": "42501"},
    }
    draft = await client.native.create_draft({"type": "I", "customer": customer, "use": "G03"})
    assert draft.id is not None and draft.status == "draft" and draft.is_ready_to_stamp is False
    with pytest.raises(APIError) as err:
        await client.native.stamp_draft(draft.id)
    assert err.value.code == "draft_not_ready_to_stamp"
    item = {
        "quantity": 2,
        "product": {
            "description": "Consultoría",
            "product_key": "80111600",
            "price": Decimal("500.00"),
            "tax_included": False,
        },
    }
    edited = await client.native.update_draft(draft.id, {"items": [item], "payment_form": "03"})
    assert edited.is_ready_to_stamp is True and edited.status == "draft"
    stamped = await client.native.stamp_draft(draft.id)
    assert stamped.status == "valid" and stamped.uuid and stamped.total == Decimal("1160.00")
    assert (await client.get(draft.id)).status is BillStatus.OPEN
    # stamping again: Facturapi's 409 is settled by a read, the stamped invoice comes back
    again = await client.native.stamp_draft(draft.id)
    assert again.uuid == stamped.uuid
    with pytest.raises(ConflictError):
        await client.native.update_draft(draft.id, {"series": "B"})
    copy_ = await client.native.copy_to_draft(draft.id)
    assert copy_.status == "draft" and copy_.id != draft.id and copy_.is_ready_to_stamp is True
    assert copy_.idempotency_key is None


async def test_draft_fields_are_checked_and_a_retried_draft_is_saved_once(box: FacturapiSandbox) -> None:
    async with billkit.AsyncClient("facturapi", sandbox=box) as client:
        with pytest.raises(ValidationError) as err:
            await client.native.create_draft({"type": "I", "colour": "red", "status": "pending"})
        assert [p.field for p in err.value.problems] == ["changes.colour", "changes.status"]
        box.faults.once(Fault.DROP_AFTER, match="POST /invoices")
        draft = await client.native.create_draft(ppd("FA-D"))
    assert draft.status == "draft" and draft.is_ready_to_stamp is True
    assert len(box.received("POST", "/invoices")) == 2 and len(box.invoices) == 1


async def test_a_stamp_whose_answer_was_lost_is_read_back(box: FacturapiSandbox) -> None:
    async with billkit.AsyncClient("facturapi", sandbox=box) as client:
        draft = await client.native.create_draft(invoice("FA-L"))
        assert draft.id is not None
        box.faults.once(Fault.DROP_AFTER, match="/stamp")
        stamped = await client.native.stamp_draft(draft.id)
    assert stamped.status == "valid" and len(box.received("POST", "/stamp")) == 1


# -- customers, products, status and the cancellation receipt --------------------------------------------------------


async def test_customers_are_updated_and_deleted(client: FacturapiAsyncClient) -> None:
    saved = await client.native.create_customer(party())
    assert saved.id is not None
    changed = await client.native.update_customer(saved.id, {"email": "pagos@example.mx"})
    assert changed.email == "pagos@example.mx" and changed.legal_name == "ESCUELA KEMPER URGATE"
    whole = await client.native.update_customer(saved.id, party(phone="5555555555"))
    assert whole.phone == "5555555555"
    with pytest.raises(ValidationError):
        await client.native.update_customer(saved.id, {"colour": "red"})
    assert (await client.native.delete_customer(saved.id)).id == saved.id
    with pytest.raises(NotFoundError):
        await client.native.get_customer(saved.id)


async def test_products_crud(client: FacturapiAsyncClient, box: FacturapiSandbox) -> None:
    made = await client.native.create_product(
        ProductInput(description="Ukelele", product_key="60131324", price=Decimal("345.60"), sku="UKE-1")
    )
    assert made.id is not None and made.price == Decimal("345.60") and made.unit_key == "H87"
    assert (await client.native.get_product(made.id)).sku == "UKE-1"
    assert [p.id async for p in client.native.list_products("ukel")] == [made.id]
    assert [p.id async for p in client.native.list_products(sku="UKE-1")] == [made.id]
    updated = await client.native.update_product(made.id, ProductUpdate(price=Decimal("399.00")))
    assert updated.price == Decimal("399.00") and updated.description == "Ukelele"
    with pytest.raises(ValidationError):
        await client.native.create_product(ProductInput(description="x", product_key="123", price=Decimal(1)))
    box.faults.once(Fault.DROP_AFTER, match="DELETE")
    gone = await client.native.delete_product(made.id)  # the lost answer is settled by a read (404)
    assert gone.id == made.id and box.products == {}


async def test_status_refresh_and_the_cancellation_receipt(client: FacturapiAsyncClient) -> None:
    bill = await client.create(invoice("FA-R"))
    assert bill.provider_id is not None
    assert (await client.native.refresh_status(bill.provider_id)).status == "valid"
    with pytest.raises(APIError) as err:
        await client.native.download_cancellation_receipt(bill.provider_id, "xml")
    assert err.value.code == "invoice_not_canceled"
    await client.native.cancel(bill.provider_id, "02")
    xml = await client.native.download_cancellation_receipt(bill.provider_id, "xml")
    pdf = await client.native.download_cancellation_receipt(bill.provider_id, "pdf")
    assert b"<Acuse" in xml and pdf.startswith(b"%PDF")


def test_the_blocking_client_records_a_payment() -> None:
    with billkit.Client("facturapi", sandbox=True) as client:
        bill = client.create(ppd())
        assert bill.provider_id is not None
        paid = client.native.record_payment(bill.provider_id, amount=Money("1160.00", MXN), payment_form="03")
        assert paid.type == "P"
        assert client.native.payment_balance(bill.provider_id).balance == Money("0.00", MXN)


# -- the request bodies against the official OpenAPI file ------------------------------------------------------------


def _checker(schema_name: str) -> Any:
    """A validator of ``schema_name`` with the file's known defects mended (each is in ../shared/specs/README.md or
    found here): the complement's ``type`` enum says ``nomina`` for ``pago``, and its ``data`` is typed only in the
    schema the discriminator selects (``PagoComplementInput``), which jsonschema ignores; ``RelatedDocumentInput``
    requires a ``related`` field that no schema defines (the relation's UUIDs are ``documents``); a paid document's
    ``folio_number`` is typed ``int``, not a JSON Schema type; the product edit body requires every field of a
    partial update; ``unit_key`` is required but defaulted."""
    from jsonschema import Draft202012Validator

    document = copy.deepcopy(spec())
    schemas = document["components"]["schemas"]
    schemas["PagoOrCustomComplementInput"]["properties"]["type"]["enum"] = ["pago", "custom"]
    complements = schemas["InvoicePagoInput"]["allOf"][0]["properties"]["complements"]
    complements["items"] = {"$ref": "#/components/schemas/PagoComplementInput"}  # what the discriminator selects
    schemas["RelatedDocumentInput"]["allOf"][0]["required"] = ["relationship"]
    paid = schemas["PaymentInput"]["properties"]["related_documents"]["items"]["properties"]
    paid["folio_number"]["type"] = "integer"
    schemas["ProductProperties"]["required"] = ["description", "product_key", "price"]
    if schema_name == "ProductUpdate":
        schemas["ProductProperties"]["required"] = []
        schema_name = "ProductProperties"
    return Draft202012Validator({"$ref": f"#/components/schemas/{schema_name}", "components": document["components"]})


@pytest.mark.skipif(not SPEC.exists(), reason=f"{SPEC} is not on this machine")
async def test_every_lifecycle_body_validates_against_the_spec(
    client: FacturapiAsyncClient, box: FacturapiSandbox
) -> None:
    bill = await client.create(ppd())
    assert bill.provider_id is not None
    await client.native.record_payment(
        bill.provider_id,
        amount=Money("100.00", MXN),
        payment_form="03",
        date=dt.date(2026, 1, 1),
        operation_number="SPEI-123",
        series="P",
    )
    await client.native.record_payment(bill.provider_id, amount=Money("1060.00", MXN), payment_form="03")
    stamped = await client.create(invoice("FA-S"))
    assert stamped.provider_id is not None
    await client.native.create_credit_note(stamped.provider_id, [discount()], external_id="NC-1")
    draft = await client.native.create_draft({"type": "I", "use": "G03"})
    assert draft.id is not None
    await client.native.update_draft(draft.id, {"payment_form": "03", "series": "D"})
    await client.native.create_product(
        ProductInput(description="Ukelele", product_key="60131324", price=Decimal("345.60"))
    )
    product = next(iter(box.products))
    await client.native.update_product(product, ProductUpdate(price=Decimal("1.50")))
    schema_of = {"P": "InvoicePagoInput", "E": "InvoiceEgresoInput"}
    checked = 0
    for request in box.requests:
        body = as_json(request.body) if isinstance(request.body, dict) else {}
        if request.method == "POST" and request.path == "/invoices" and body.get("type") in schema_of:
            name = schema_of[body["type"]]
        elif (request.method, request.path, body.get("status")) in (
            ("POST", "/invoices", "draft"),
            ("PUT", f"/invoices/{draft.id}", None),
        ):
            name = "InvoiceIngresoEditInput"
        elif request.method == "POST" and request.path == "/products":
            name = "ProductProperties"
        elif request.method == "PUT" and request.path.startswith("/products/"):
            name = "ProductUpdate"
        else:
            continue
        errors = sorted(_checker(name).iter_errors(body), key=str)
        assert errors == [], (name, [f"{list(e.absolute_path)}: {e.message}" for e in errors])
        checked += 1
    assert checked == 7


def test_the_checker_does_reject_what_the_spec_forbids() -> None:
    if not SPEC.exists():
        pytest.skip(f"{SPEC} is not on this machine")
    bad = {
        "type": "P",
        "customer": "58e93bd8e86eb318b0197456",
        "complements": [{"type": "pago", "data": [{"payment_form": "03", "related_documents": [{"uuid": "x"}]}]}],
    }
    found = {tuple(e.absolute_path)[-1] for e in _checker("InvoicePagoInput").iter_errors(bad)}
    assert found == {0}  # the related document lacks amount, taxes, installment and last_balance
    messages = " ".join(e.message for e in _checker("InvoicePagoInput").iter_errors(bad))
    assert all(name in messages for name in ("amount", "taxes", "installment", "last_balance"))

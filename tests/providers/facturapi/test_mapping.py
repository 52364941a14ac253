"""Mapping, validation, status table, error parsing and webhook verification (no HTTP)."""

from __future__ import annotations

import datetime as dt
import json
from decimal import Decimal
from typing import Any

import httpx
import pytest

from billkit import Address, Bill, BillStatus, Direction, LineItem, Money, Party, Tax
from billkit.errors import (
    ConflictError,
    MoneyError,
    NotFoundError,
    RateLimitError,
    ServerError,
    UnsupportedFeatureError,
    ValidationError,
    WebhookVerificationError,
)
from billkit.providers.facturapi.mapping import MAX_ITEMS, build_request, error_from_response, to_bill, to_status
from billkit.providers.facturapi.webhooks import sign, verify
from billkit.transport import Response, dumps

from .conftest import invoice

TODAY = dt.date(2026, 11, 24)


def body(bill: Bill, **kwargs: Any) -> dict[str, Any]:
    return build_request(bill, today=TODAY, **kwargs).to_json()


# -- Bill -> body ------------------------------------------------------------------------------------------


def test_a_bill_becomes_an_income_invoice_body() -> None:
    sent = body(invoice(reference="FA-9", quantity="2"))
    assert sent["customer"] == {"legal_name": "ESCUELA KEMPER URGATE", "tax_id": "EKU9003173C9", "tax_system": "601",
                                "email": "facturas@example.mx", "address": {"zip": "42501"}}  # fmt: skip
    item = sent["items"][0]
    assert item["quantity"] == Decimal(2)
    assert item["product"] == {"description": "Servicio de consultoría", "product_key": "80111600",
                               "price": Decimal("1000.00"), "tax_included": False,
                               "taxes": [{"type": "IVA", "rate": Decimal("0.16")}]}  # fmt: skip
    assert (sent["payment_form"], sent["use"], sent["currency"], sent["external_id"]) == ("03", "G03", "MXN", "FA-9")
    assert "date" not in sent and "exchange" not in sent


def test_every_create_carries_an_idempotency_key_the_callers_when_given() -> None:
    first, second = body(invoice()), body(invoice())
    assert first["idempotency_key"] != second["idempotency_key"]
    assert body(invoice(provider_options={"idempotency_key": "order-77"}))["idempotency_key"] == "order-77"


def test_included_taxes_and_withholdings() -> None:
    item = LineItem(description="Honorarios", unit_price=Money("1160.00", "MXN"),
                    taxes=(Tax(type="iva", rate="0.16", included=True), Tax(type="ISR", rate="0.10", withholding=True)),
                    provider_options={"product_key": "80111600", "discount": Decimal("5")})  # fmt: skip
    sent = body(invoice(line_items=(item,)))["items"][0]
    assert sent["discount"] == Decimal(5)
    assert sent["product"]["tax_included"] is True
    assert sent["product"]["taxes"] == [{"type": "IVA", "rate": Decimal("0.16")},
                                        {"type": "ISR", "rate": Decimal("0.10"), "withholding": True}]  # fmt: skip


def test_an_item_without_taxes_is_sent_as_not_subject_to_tax() -> None:
    item = LineItem(description="Libro", unit_price=Money("250", "MXN"), provider_options={"product_key": "55101500"})
    product = body(invoice(line_items=(item,)))["items"][0]["product"]
    assert (product["taxes"], product["taxability"]) == ([], "01")


def test_other_currency_needs_an_exact_exchange_rate() -> None:
    with pytest.raises(ValidationError) as err:
        body(invoice(currency="USD"))
    assert err.value.fields == ["provider_options.exchange"]
    with pytest.raises(ValidationError):
        body(invoice(currency="USD", provider_options={"exchange": 17.5}))
    sent = body(invoice(currency="USD", provider_options={"exchange": "17.2345"}))
    assert (sent["currency"], sent["exchange"]) == ("USD", Decimal("17.2345"))


def test_issue_date_within_72_hours() -> None:
    assert "date" not in body(invoice(issue_date=TODAY))
    assert body(invoice(issue_date=dt.date(2026, 11, 22)))["date"] == "2026-11-22T23:59:59-06:00"
    with pytest.raises(ValidationError, match="72 hours"):
        body(invoice(issue_date=dt.date(2026, 11, 20)))
    with pytest.raises(ValidationError, match="future"):
        body(invoice(issue_date=dt.date(2026, 11, 25)))


def test_a_saved_customer_is_sent_by_id() -> None:
    assert body(invoice(counterparty=Party(provider_id="cus_1")))["customer"] == "cus_1"
    with pytest.raises(ValidationError, match="either provider_id"):
        body(invoice(counterparty=Party(provider_id="cus_1", tax_id="EKU9003173C9")))


def test_bad_input_lists_every_problem_with_its_path() -> None:
    bill = Bill(
        counterparty=Party(name="", tax_id=None, address=Address(postal_code="4250")),
        line_items=(),
        provider_options={"payment_form": "3", "payment_method": "CASH"},
    )
    with pytest.raises(ValidationError) as err:
        body(bill)
    assert set(err.value.fields) == {
        "counterparty.name", "counterparty.tax_id", "counterparty.provider_options.tax_system",
        "counterparty.address.postal_code", "line_items", "provider_options.payment_form",
        "provider_options.payment_method",
    }  # fmt: skip
    assert err.value.provider == "facturapi"


@pytest.mark.parametrize(
    ("tax_id", "ok"),
    [("EKU9003173C9", True), ("GODE561231GR8", True), ("XAXX010101000", True), ("eku9003173c9", False),
     ("EKU900317", False), ("EKU9003173C9X1", False)],
)  # fmt: skip
def test_rfc_shapes(tax_id: str, ok: bool) -> None:
    if ok:
        assert body(invoice(tax_id=tax_id))["customer"]["tax_id"] == tax_id
    else:
        with pytest.raises(ValidationError) as err:
            body(invoice(tax_id=tax_id))
        assert err.value.fields == ["counterparty.tax_id"]


def test_item_problems_are_numbered() -> None:
    good = invoice().line_items[0]
    bad = LineItem(description=" ", quantity=0, unit_price=Money("-1", "MXN"), taxes=(Tax(type="VAT", rate="0.2"),))
    with pytest.raises(ValidationError) as err:
        body(invoice(line_items=(good, bad)))
    assert set(err.value.fields) == {"line_items[1].provider_options.product_key", "line_items[1].description",
                                     "line_items[1].quantity", "line_items[1].unit_price",
                                     "line_items[1].taxes[0].type"}  # fmt: skip


def test_too_many_items() -> None:
    items = invoice().line_items * (MAX_ITEMS + 1)
    with pytest.raises(ValidationError, match="at most 5000"):
        body(invoice(line_items=items))


def test_floats_and_unknown_currencies_never_reach_a_bill() -> None:
    with pytest.raises(MoneyError, match="float"):
        Money(1000.5, "MXN")  # type: ignore[arg-type]
    with pytest.raises(MoneyError, match="unknown currency"):
        Money("10", "MXP")


@pytest.mark.parametrize(
    ("change", "feature"),
    [({"total": Money("1160", "MXN")}, "total"), ({"description": "x"}, "description"),
     ({"due_date": TODAY}, "due_date")],
)  # fmt: skip
def test_common_fields_facturapi_cannot_express_raise(change: dict[str, Any], feature: str) -> None:
    with pytest.raises(UnsupportedFeatureError) as err:
        body(invoice(**change))
    assert err.value.feature == feature


def test_payable_bills_are_not_supported() -> None:
    with pytest.raises(UnsupportedFeatureError, match="receivable"):
        body(invoice(direction=Direction.PAYABLE))


_PLAIN_CASES: list[dict[str, Any]] = [
    {},
    {"provider_options": {"payment_method": "PPD", "series": "A", "folio_number": 7, "conditions": "30 días"}},
    {"provider_options": {"type": "I", "idempotency_key": "order-1"}},
    {"provider_options": {"exchange": Decimal("17.2345")}, "currency": "USD"},
    {"provider_options": {"exchange": "17.2345"}, "currency": "USD"},  # a str exchange: the wire model reads it
    {"provider_options": {"export": "01", "pdf_options": {"codes": True}}},  # options the models carry as extras
    {"provider_options": {"series": None}},
    {"issue_date": TODAY - dt.timedelta(days=1), "quantity": "2.5", "reference": "Ref \"quoted\" \\ ñ \x00"},
    {"counterparty": Party(provider_id="cus_123")},
    {"reference": "\x00"},  # a string that is the encoder's placeholder: written the general way
    {"reference": "tab\tnew\nline\r\x1f\x7f\u2028\ufeff \U0001f600 \\u0000"},  # escapes as dumps writes them
    {"reference": "\ud800"},  # a lone surrogate cannot be sent: refused the same way on both paths
    {"provider_options": {"folio_number": 10**30}},  # beyond what the plain path writes
    {"counterparty": Party(name="ACME", tax_id="AAA010101AAA", phone="+52 55 1234 5678",
                           address=Address(postal_code="01000", line1="Calle 1", city="CDMX", region="CDMX",
                                           country="MX"),
                           provider_options={"tax_system": 601, "exterior": "12", "neighborhood": "Centro"})},
    {"counterparty": Party(name="ACME", tax_id="AAA010101AAA", address=Address(postal_code="01000"),
                           provider_options={"tax_system": "601", "street": None, "zip_extra": 1})},
    {"line_items": (LineItem(description="A", unit_price=Money("0.50", "MXN"), quantity="0.000001",
                             provider_options={"product_key": "01010101", "unit_key": "H87", "sku": "S-1"}),
                    LineItem(description="B", unit_price=Money("10", "MXN"),
                             taxes=(Tax(type="iva", rate="0.16", included=True),
                                    Tax(type="ISR", rate="0.10", withholding=True)),
                             provider_options={"product_key": "01010101", "taxability": "02"}))},
    {"line_items": (LineItem(description="C", unit_price=Money("1", "MXN"),
                             provider_options={"product_key": "01010101", "discount": Decimal("0.5"),
                                               "unit_name": 5}),)},
]  # fmt: skip


@pytest.mark.parametrize("kwargs", _PLAIN_CASES)
def test_the_plain_path_sends_what_the_wire_model_would(kwargs: dict[str, Any]) -> None:
    """prepare_request writes simple bodies without the wire models: the bytes must be the model's, exactly."""
    from billkit.providers.facturapi.mapping import prepare_request

    one = invoice(**kwargs)
    try:
        model = build_request(one, today=TODAY, idempotency_key="bk-plain")
    except ValidationError as refused:
        with pytest.raises(ValidationError) as again:
            prepare_request(one, today=TODAY, idempotency_key="bk-plain")
        assert again.value.problems == refused.problems
        return
    prepared = prepare_request(one, today=TODAY, idempotency_key="bk-plain")
    assert prepared.body == dumps(model.to_json())
    assert (prepared.idempotency_key, prepared.external_id) == (model.idempotency_key, model.external_id)
    assert prepared.request.to_json() == model.to_json()


def test_provider_options_cannot_overwrite_what_billkit_writes() -> None:
    with pytest.raises(ValidationError) as err:
        body(invoice(provider_options={"customer": "cus_1", "async": True}))
    assert set(err.value.fields) == {"provider_options.customer", "provider_options.async"}


def test_bulk_prefix() -> None:
    with pytest.raises(ValidationError) as err:
        body(invoice(tax_id="bad"), prefix="[3].")
    assert err.value.fields == ["[3].counterparty.tax_id"]


# -- answer -> Bill ------------------------------------------------------------------------------------------

VALID = {
    "id": "58e93bd8e86eb318b019743d", "created_at": "2026-11-24T16:00:00.000Z", "livemode": False, "status": "valid",
    "cancellation_status": "none", "verification_url": "https://verificacfdi.facturaelectronica.sat.gob.mx/x",
    "date": "2026-11-24T16:00:00.000Z", "type": "I", "total": Decimal("1160.00"), "currency": "MXN",
    "uuid": "39C4A2D1-0B5C-4F0E-9E1A-6C7D5E2F1A3B", "folio_number": 914, "series": "A", "external_id": "FA-1",
    "customer": {"id": "cus_1", "legal_name": "ESCUELA KEMPER URGATE", "tax_id": "EKU9003173C9",
                 "tax_system": "601", "address": {"zip": "42501", "country": "MEX"}},
    "items": [{"quantity": 1, "product": {"description": "Servicio", "product_key": "80111600",
                                          "price": Decimal("1000"), "tax_included": False,
                                          "taxes": [{"type": "IVA", "rate": Decimal("0.16")}]}}],
    "stamp": {"date": "2021-03-30T00:57:48", "signature": "abc"}, "brand_new_field": {"kept": True},
}  # fmt: skip


def test_a_stamped_invoice_becomes_an_open_bill_with_everything_kept() -> None:
    bill = to_bill(VALID)
    assert (bill.status, bill.provider_status, bill.provider_id) == (BillStatus.OPEN, "valid", VALID["id"])
    assert bill.total == Money("1160.00", "MXN") and bill.amount_due == Money("1160.00", "MXN")
    assert bill.reference == "FA-1" and bill.counterparty is not None and bill.counterparty.tax_id == "EKU9003173C9"
    assert bill.line_items[0].unit_price == Money("1000", "MXN") and bill.line_items[0].taxes[0].rate == Decimal("0.16")
    assert bill.links["verification_url"].startswith("https://verificacfdi")
    assert bill.created_at == dt.datetime(2026, 11, 24, 16, tzinfo=dt.timezone.utc)
    assert bill.raw is not None and bill.raw["brand_new_field"] == {"kept": True}


def test_pending_invoices_have_no_uuid_or_stamp() -> None:
    bill = to_bill({**VALID, "status": "pending", "uuid": None, "stamp": None, "verification_url": None,
                    "folio_number": None})  # fmt: skip
    assert bill.status is BillStatus.PENDING and "verification_url" not in bill.links


@pytest.mark.parametrize(
    ("status", "extra", "expected"),
    [("pending", {}, BillStatus.PENDING), ("valid", {}, BillStatus.OPEN), ("canceled", {}, BillStatus.VOID),
     ("failed", {}, BillStatus.FAILED), ("draft", {}, BillStatus.DRAFT), ("archived", {}, BillStatus.UNKNOWN),
     ("valid", {"amount_due": Decimal(0)}, BillStatus.PAID),
     ("valid", {"amount_due": Decimal("500")}, BillStatus.PARTIALLY_PAID)],
)  # fmt: skip
def test_status_table(status: str, extra: dict[str, Any], expected: BillStatus) -> None:
    bill = to_bill({**VALID, "status": status, **extra})
    assert bill.status is expected and bill.provider_status == status


def test_status_table_without_data() -> None:
    assert to_status(None) is BillStatus.UNKNOWN
    assert to_status(" Valid ") is BillStatus.OPEN


def test_lenient_reads() -> None:
    bill = to_bill({"id": "x", "status": "valid", "folio_number": "A-12", "total": "12.50", "currency": "XXQ",
                    "payment_form": 6, "items": [{"product": "prod_1"}], "customer": "cus_9"})  # fmt: skip
    assert bill.total is None and bill.raw is not None and bill.raw["total"] == "12.50"  # unknown currency: raw only
    assert bill.line_items == () and bill.counterparty == Party(provider_id="cus_9")


# -- errors --------------------------------------------------------------------------------------------------


def response(status: int, payload: Any, headers: dict[str, str] | None = None) -> Response:
    content = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
    return Response(status, httpx.Headers(headers or {}), content, (headers or {}).get("x-facturapi-log-id"))


def test_generic_error_becomes_a_typed_api_error() -> None:
    err = error_from_response(response(
        400, {"ok": False, "message": "El campo es requerido", "status": 400, "code": "invalid_request",
              "location": "body", "path": "customer.email",
              "errors": [{"message": "required", "code": "required", "path": "customer.email"}]},
        {"x-facturapi-log-id": "log_123"},
    ))  # fmt: skip
    assert (err.provider, err.status_code, err.code, err.request_id) == ("facturapi", 400, "invalid_request", "log_123")
    assert "customer.email" in err.message and "El campo es requerido" in err.message
    assert "log_123" in str(err)


@pytest.mark.parametrize(
    ("status", "payload", "cls", "code"),
    [(404, {"ok": False, "message": "No encontrado", "status": 404, "code": "invoice_not_found"}, NotFoundError,
      "invoice_not_found"),
     (409, {"ok": False, "message": "En uso", "status": 409, "code": "idempotency_key_in_use"}, ConflictError,
      "idempotency_key_in_use"),
     (500, b"<html>Bad Gateway</html>", ServerError, None),
     (400, {"message": "viejo formato", "code": 1234}, None, "1234")],
)  # fmt: skip
def test_error_shapes(status: int, payload: Any, cls: type[Exception] | None, code: str | None) -> None:
    err = error_from_response(response(status, payload))
    if cls is not None:
        assert isinstance(err, cls)
    assert err.code == code and err.message


def test_key_in_use_is_retryable_and_429_carries_retry_after() -> None:
    assert error_from_response(response(409, {"code": "idempotency_key_in_use", "message": "x"})).retryable is True
    limited = error_from_response(response(429, {"code": "rate_limit_exceeded", "message": "x"}, {"retry-after": "7"}))
    assert isinstance(limited, RateLimitError) and limited.retry_after == 7


# -- webhooks ------------------------------------------------------------------------------------------------

VECTOR_BODY = b'{"id":"evt_123","type":"invoice.status_updated"}'
VECTOR_SIGNATURE = "a4f6e787d17e95365156b7aa02c7e52314d52aa9f23fd6f96a3cd2c50f575bf1"


def test_signature_matches_the_published_test_vector() -> None:
    assert sign(VECTOR_BODY, "wh_sec_example") == VECTOR_SIGNATURE
    event = verify(VECTOR_BODY, {"facturapi-signature": VECTOR_SIGNATURE}, "wh_sec_example")
    assert (event.id, event.type) == ("evt_123", "invoice.status_updated")
    assert verify(VECTOR_BODY, {"Facturapi-Signature": f" sha256={VECTOR_SIGNATURE.upper()} "}, "wh_sec_example")


@pytest.mark.parametrize(
    ("body", "headers", "secret", "why"),
    [(VECTOR_BODY, {}, "wh_sec_example", "missing"),
     (VECTOR_BODY, {"Facturapi-Signature": "zz"}, "wh_sec_example", "not a hex"),
     (VECTOR_BODY, {"Facturapi-Signature": VECTOR_SIGNATURE}, "another_secret", "does not match"),
     (VECTOR_BODY.replace(b"123", b"124"), {"Facturapi-Signature": VECTOR_SIGNATURE}, "wh_sec_example",
      "does not match"),
     (VECTOR_BODY, {"Facturapi-Signature": VECTOR_SIGNATURE}, "", "no webhook secret"),
     (b"[1]", {"Facturapi-Signature": sign(b"[1]", "s")}, "s", "not a JSON object"),
     (b"{", {"Facturapi-Signature": sign(b"{", "s")}, "s", "not JSON")],
)  # fmt: skip
def test_bad_webhooks_are_refused(body: bytes, headers: dict[str, str], secret: str, why: str) -> None:
    with pytest.raises(WebhookVerificationError, match=why):
        verify(body, headers, secret)


def test_failed_event_carries_the_reason() -> None:
    payload = {"id": "evt_9", "type": "invoice.status_updated",
               "data": {"type": "invoice", "object": {**VALID, "status": "failed", "total": "1160.00"}},
               "related_resource_messages": [{"severity": "error", "message": "CFDI40145: RFC no válido"},
                                             {"severity": "info", "message": "retrying"}]}  # fmt: skip
    raw = dumps(payload)
    event = verify(raw, {"Facturapi-Signature": sign(raw, "s")}, "s")
    assert event.error_message() == "CFDI40145: RFC no válido"
    assert event.invoice is not None and event.invoice.status == "failed"


@pytest.mark.parametrize("value", [1.5, Decimal("NaN"), object()])
def test_an_option_that_cannot_be_sent_is_refused_before_sending(value: object) -> None:
    with pytest.raises(ValidationError, match="pdf_options"):
        build_request(invoice(provider_options={"pdf_options": {"x": value}}), today=TODAY)

"""The seed's requests and answers parse into the wire models, and billkit builds the seed's requests."""

from __future__ import annotations

from decimal import Decimal

import httpx
import pytest

from billkit import BillStatus
from billkit.errors import AuthenticationError, NotFoundError, RateLimitError, ServerError
from billkit.money import loads_decimal
from billkit.providers.billcom.mapping import (
    BillcomConcurrencyLimitError,
    BillcomError,
    BillcomSessionError,
    attribute_errors,
    build_bill,
    error_from_response,
    status_of,
    to_bill,
)
from billkit.providers.billcom.wire import (
    BillCreate,
    BillList,
    BillResponse,
    LoginResponse,
    parse_errors,
)
from billkit.transport import Response, dumps

from .builders import fixture, payable


def _response(status: int, body: object, headers: dict[str, str] | None = None) -> Response:
    return Response(status, httpx.Headers(headers or {}), dumps(body))


def test_seed_create_request_parses_and_is_built_field_for_field() -> None:
    seed = fixture("create_request.json")
    assert BillCreate.model_validate(seed).to_json() == seed
    bill = payable("202401", lines=(("USB audio interface", "149.00"), ("Drum foot pedal", "79.99")))
    request, currency = build_bill(bill)
    assert currency == "USD"
    assert loads_decimal(dumps(request.to_json())) == seed
    assert b'"amount":149.00' in dumps(request.to_json())  # exact decimals on the wire, never a float


def test_seed_bulk_request_is_built_item_for_item() -> None:
    seed = fixture("bulk_request.json")
    bills = [
        payable("202412311", description="USB audio interface bill", lines=(("USB audio interface", "149.00"),)),
        payable("202412312", description="Drum foot pedal bill", lines=(("Drum foot pedal", "79.99"),)),
    ]
    built = [loads_decimal(dumps(build_bill(b)[0].to_json())) for b in bills]
    assert built == seed
    assert [BillCreate.model_validate(item).to_json() for item in seed] == seed


def test_seed_create_response_parses_and_maps() -> None:
    raw = fixture("create_response.json")
    wire = BillResponse.model_validate(raw)
    assert wire.amount == Decimal("228.99")
    assert wire.line_item_ids == ["00l01SEEDLINE0000001", "00l01SEEDLINE0000002"]
    assert wire.payment_status is None  # keys without a value are omitted: everything but id is optional
    bill = to_bill(wire, "USD", raw)
    assert bill.provider_id == "00n01SEEDBILL0000001"
    assert bill.total is not None and bill.total.amount == Decimal("228.99") and bill.total.currency == "USD"
    assert bill.reference == "202401"
    assert [li.unit_price.amount for li in bill.line_items] == [Decimal("149.00"), Decimal("79.99")]
    assert bill.counterparty is not None and bill.counterparty.provider_id == "00901SANDBOXACME0001"
    assert bill.created_at is not None and bill.created_at.microsecond == 127000
    assert bill.raw == raw
    assert bill.status is BillStatus.UNKNOWN  # no paymentStatus in the seed's answer


def test_seed_bulk_response_and_list_and_login_parse() -> None:
    bills = [BillResponse.model_validate(item) for item in fixture("bulk_response.json")]
    assert [b.invoice_number for b in bills] == ["202412311", "202412312"]
    page = BillList.model_validate(fixture("list_response.json"))
    assert page.next_page == "ZXhhbXBsZQ" and page.prev_page is None
    first = page.results[0]
    assert first.model_extra == {"futureField": {"kept": True}}  # lenient on read: unknown fields survive
    assert status_of(first) == (BillStatus.OPEN, "SCHEDULED")
    login = LoginResponse.model_validate(fixture("login_response.json"))
    assert login.session_id == "seed-session-0001"
    assert "seed-session-0001" not in repr(login)


@pytest.mark.parametrize(
    ("payment", "archived", "expected"),
    [
        ("UNPAID", False, BillStatus.OPEN),
        ("PARTIAL", False, BillStatus.PARTIALLY_PAID),
        ("SCHEDULED", False, BillStatus.OPEN),
        ("PAID", False, BillStatus.PAID),
        ("UNDEFINED", False, BillStatus.UNKNOWN),
        ("IN_SOME_NEW_STATE", False, BillStatus.UNKNOWN),
        ("PAID", True, BillStatus.VOID),
        ("UNPAID", True, BillStatus.VOID),
    ],
)
def test_status_table(payment: str, archived: bool, expected: BillStatus) -> None:
    wire = BillResponse.model_validate({"id": "00n1", "paymentStatus": payment, "archived": archived})
    assert status_of(wire) == (expected, payment)


def test_error_array_keeps_every_entry() -> None:
    err = error_from_response(_response(404, fixture("bulk_error.json")))
    assert isinstance(err, NotFoundError) and isinstance(err, BillcomError)
    assert err.code == "BDC_1205"
    assert [e.code for e in err.entries] == ["BDC_1205", "BDC_1246"]
    assert err.entries[0].category == "DOWNSTREAM" and err.entries[0].severity == "ERROR"
    assert err.entries[0].timestamp == "2024-12-30T23:15:27.000+00:00"
    assert "BDC_1246" in str(err)


def test_errors_are_classified_by_code_whatever_the_status() -> None:
    session = error_from_response(_response(401, fixture("session_error.json")))
    assert isinstance(session, BillcomSessionError) and isinstance(session, AuthenticationError)
    busy = error_from_response(_response(400, [{"code": "BDC_1322", "message": "Max number of concurrent"}]))
    assert isinstance(busy, BillcomConcurrencyLimitError) and busy.retryable
    assert not isinstance(busy, RateLimitError)  # the transport raises a non-429 RateLimitError at once
    busy429 = error_from_response(_response(429, [{"code": "BDC_1322", "message": "x"}], {"retry-after": "3"}))
    assert isinstance(busy429, RateLimitError) and busy429.retryable and busy429.retry_after == 3
    hourly = error_from_response(_response(400, [{"code": "BDC_1144", "message": "Max number of allowed"}]))
    assert isinstance(hourly, RateLimitError) and not hourly.retryable and hourly.code == "BDC_1144"
    server = error_from_response(_response(500, [{"code": "BDC_1001", "message": "System error occurred."}]))
    assert isinstance(server, ServerError)
    nocode = error_from_response(_response(400, [{"severity": "ERROR", "message": "dueDate: must not be null"}]))
    assert nocode.code is None and "dueDate" in nocode.message
    garbage = error_from_response(_response(502, "<html>bad gateway</html>"))
    assert isinstance(garbage, ServerError)


def test_attribution_only_where_unambiguous() -> None:
    items = [build_bill(payable(f"inv-{i}", vendor=v))[0] for i, v in
             enumerate(["00901SANDBOXACME0001", "00901NOSUCHVENDOR000", "00901SANDBOXACME0001"])]  # fmt: skip
    named = attribute_errors(parse_errors(fixture("bulk_error.json")), items, status_code=404)
    assert list(named) == [1]  # the BDC_1246 rollback is never attributed
    prefixed = parse_errors([{"code": "BDC_9999", "message": "inv-2 : amount is wrong"}])
    assert list(attribute_errors(prefixed, items, status_code=400)) == [2]
    vague = parse_errors([{"code": "BDC_1001", "message": "System error occurred."}])
    assert attribute_errors(vague, items, status_code=400) == {}

"""Mapping: status table, exact cents, local validation of every documented limit, errors, bulk matching."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

import httpx
import pytest

import billkit
from billkit import Bill, BillStatus, Money
from billkit.errors import (
    AuthenticationError,
    MoneyError,
    ServerError,
    UnsupportedFeatureError,
    ValidationError,
)
from billkit.models import Direction, LineItem, Party
from billkit.providers.accepteasy.mapping import (
    build_request,
    error_from_response,
    match_bulk,
    to_bill,
    to_status,
)
from billkit.providers.accepteasy.sandbox import AcceptEasySandbox
from billkit.providers.accepteasy.wire import BulkBillStatus
from billkit.transport import Response

from .conftest import bill, fixture

NOW = dt.datetime(2026, 1, 15, 12, 0, tzinfo=dt.timezone.utc)


def test_status_table() -> None:
    assert to_status("Open") is BillStatus.OPEN
    assert to_status("CountDown") is BillStatus.OPEN
    assert to_status("Countdown") is BillStatus.OPEN
    assert to_status("Pending") is BillStatus.OPEN  # not confirmed: see STATUS_TABLE's docstring
    assert to_status("Done") is BillStatus.OPEN
    assert to_status("Paid") is BillStatus.PAID
    assert to_status("Expired") is BillStatus.VOID
    assert to_status("Canceled") is BillStatus.VOID
    assert to_status("All") is BillStatus.UNKNOWN
    assert to_status("Teleported") is BillStatus.UNKNOWN


def test_amount_is_sent_in_exact_cents() -> None:
    assert build_request(bill(amount="12.95"), now=NOW).Amount == 1295
    assert build_request(bill(amount="1000000.10"), now=NOW).Amount == 100000010


def test_response_maps_back_in_decimal_euros() -> None:
    common = to_bill(fixture("seed001_sync_response"))
    assert common.total == Money("12.99", "EUR")
    assert common.status is BillStatus.OPEN and common.provider_status == "Open"
    assert common.provider_id == "120b6125-fdfa-4124-a08c-dbf63f38e162"
    assert common.links["short_url"] == "http://trx.ae/JWELEvr9JEGgjNv2PzjhYg"
    assert common.raw == fixture("seed001_sync_response")
    assert to_bill({"ATID": "a", "Status": "Gone", "Amount": Decimal("1")}).provider_status == "Gone"


def test_every_problem_is_listed() -> None:
    bad = Bill(
        reference="R" * 37, description="D" * 33, total=Money("1.00", "EUR"),
        provider_options={"ExpiryDate": NOW + dt.timedelta(days=400), "SRRID": "S" * 37,
                          "RecordData": {"Note": "x" * 501, "PaymentReference": "y"},
                          "Communication": [{"Channel": "Fax"}], "CommunicationPlanId": "plan"},
    )  # fmt: skip
    with pytest.raises(ValidationError) as info:
        build_request(bad, now=NOW)
    fields = info.value.fields
    for expected in ("reference", "description", "due_date", "provider_options.SRRID",
                     "provider_options.RecordData.Note", "provider_options.RecordData.PaymentReference",
                     "provider_options.Communication", "provider_options.Communication[0].Channel"):  # fmt: skip
        assert expected in fields
    assert any("APP0225" in p.message for p in info.value.problems)
    assert info.value.provider == "accepteasy"


def test_expiry_rules() -> None:
    with pytest.raises(ValidationError, match="APP0224"):
        build_request(bill(due_date=dt.date(2026, 1, 14)), now=NOW)
    with pytest.raises(ValidationError, match="APP0225"):
        build_request(bill(due_date=dt.date(2027, 1, 16)), now=NOW)
    assert build_request(bill(due_date=dt.date(2027, 1, 14)), now=NOW).ExpiryDate is not None
    with pytest.raises(ValidationError, match="PartialPaymentPlanID"):
        build_request(bill(provider_options={"PartialPaymentPlanID": "partialpay_3_30", "CommunicationPlanId": "p"}),
                      now=NOW)  # fmt: skip


def test_another_currency_is_a_validation_problem_listed_with_the_others() -> None:
    with pytest.raises(ValidationError) as info:
        build_request(bill(currency="USD", description="x" * 33), now=NOW)
    assert info.value.fields == ["total.currency", "description"] and "EUR only; got USD" in str(info.value)
    assert not isinstance(info.value, UnsupportedFeatureError)


def test_unsupported_fields_raise() -> None:
    with pytest.raises(UnsupportedFeatureError, match="line_items"):
        build_request(Bill(reference="r", description="d", line_items=(
            LineItem(description="x", unit_price=Money("1", "EUR")),)), now=NOW)  # fmt: skip
    with pytest.raises(UnsupportedFeatureError, match=r"counterparty\.name"):
        build_request(bill(counterparty=Party(name="Jan")), now=NOW)
    with pytest.raises(UnsupportedFeatureError, match="direction"):
        build_request(bill(direction=Direction.PAYABLE), now=NOW)


def test_money_cannot_be_inexact_or_float() -> None:
    with pytest.raises(MoneyError):
        Money("12.345", "EUR")
    with pytest.raises(MoneyError):
        Money(12.95, "EUR")  # type: ignore[arg-type]
    with pytest.raises(ValidationError, match="integer cents"):
        build_request(bill(provider_options={"Amount": 12.95}), now=NOW)


@pytest.mark.anyio
async def test_bad_input_sends_nothing(box: AcceptEasySandbox) -> None:
    async with billkit.AsyncClient("accepteasy", sandbox=box) as client:
        with pytest.raises(ValidationError, match="at most 32"):
            await client.create(bill(description="x" * 33))
        with pytest.raises(ValidationError, match="APP0225"):
            await client.submit(bill(due_date=dt.date.today() + dt.timedelta(days=400)))
        with pytest.raises(ValidationError) as currency:
            await client.submit_many([bill(), bill(currency="USD")])
        assert currency.value.fields == ["[1].total.currency"]
        with pytest.raises(ValidationError, match="integer cents"):
            await client.create(bill(provider_options={"Amount": Decimal("1234.5")}))
        with pytest.raises(ValidationError) as info:
            await client.submit_many([bill(), bill(description="y" * 40), bill(reference="")])
        assert info.value.fields == ["[1].description", "[2].reference"]
    assert box.requests == []


def _response(status: int, content: bytes, content_type: str = "application/json") -> Response:
    return Response(status, httpx.Headers({"content-type": content_type}), content)


def test_error_parser_accepts_every_shape() -> None:
    err = error_from_response(_response(400, b'{"Message": "APP0224 - Expiry date must be in the future."}'))
    assert (err.status_code, err.code, err.message) == (400, "APP0224", "APP0224 - Expiry date must be in the future.")
    err = error_from_response(_response(400, b'{"ERROR": {"Message": "APP0225 - too far"}}'))
    assert err.code == "APP0225"
    err = error_from_response(_response(400, b'{"ERROR": "plain"}'))
    assert err.message == "plain"
    body = b'{"Message": "The request is invalid.", "ModelState": {"bill.Amount": ["bad"]}}'
    err = error_from_response(_response(400, body))
    assert "bill.Amount: bad" in err.message
    err = error_from_response(_response(503, b"Service Unavailable", "text/plain"))
    assert isinstance(err, ServerError) and err.raw == "Service Unavailable" and err.message == "Service Unavailable"
    err = error_from_response(_response(401, b""))
    assert isinstance(err, AuthenticationError) and "empty body" in err.message


def test_bulk_matching_by_srrid_position_and_unique_reference() -> None:
    partial = [BulkBillStatus.model_validate(e) for e in fixture("seed002_bulk_partial")["Bills"]]
    # the seed: the failed entry (no SRRID) comes first, the input order was LI-748925, LI-748937
    matched, ambiguous = match_bulk(partial, ["r220401140452075", "bk-2"], ["LI-748925", "LI-748937"])
    assert matched[0].STATUS == "CreationSucceeded" and matched[1].STATUS == "CreationFailed"
    assert ambiguous == {}
    same_ref = [
        BulkBillStatus(STATUS="CreationFailed", PaymentReference="X", ERROR={"Message": "a"}),
        BulkBillStatus(STATUS="CreationFailed", PaymentReference="X", ERROR={"Message": "b"}),
    ]
    matched, ambiguous = match_bulk(list(reversed(same_ref)), ["s1", "s2"], ["X", "X"])
    assert matched == {0: same_ref[1], 1: same_ref[0]}  # by position: entry i carries input i's reference
    matched, ambiguous = match_bulk(same_ref, ["s1", "s2", "s3"], ["Y", "X", "X"])
    assert matched == {} and set(ambiguous) == {1, 2}  # outcomes differ and positions do not line up: no guess


@pytest.mark.parametrize(
    "options",
    [{}, {"SRRID": "own-1", "CountdownDays": 5}, {"AETemplateID": "t-1", "CommunicationPlanId": "p-1"},
     {"Address": {"PhoneNumber": "+31 20 261 00 20"}}, {"RecordData": {"Name": "Jan"}},
     {"ExpiryDate": "2026-12-24T10:00:00Z"}, {"Extras": {"ReturnBannerPaidURL": "https://x.example/paid"}}],
)  # fmt: skip
def test_the_plain_path_sends_what_the_wire_model_would(options: dict[str, Any]) -> None:
    """prepare_request writes simple bodies without the wire model: the bytes must say what the model says."""
    from billkit.money import loads_decimal
    from billkit.providers.accepteasy.mapping import prepare_request

    one = bill(due_date=NOW.date() + dt.timedelta(days=30), counterparty=Party(email="jan@example.nl"),
               provider_options=options)  # fmt: skip
    prepared = prepare_request(one, now=NOW, srrid="bk-plain")
    assert loads_decimal(prepared.body) == build_request(one, now=NOW, srrid="bk-plain").to_json()
    assert (prepared.payment_reference, prepared.cents) == (one.reference, 1295)


# -- a bulk's fast path: what prepare_request would send, or the refusal it would give ------------------------

_DUE = NOW.date() + dt.timedelta(days=30)
_BULK_CASES: list[dict[str, Any]] = [
    {},
    {"due_date": _DUE},
    {"due_date": NOW.date()},  # 23:59:59 today: still in the future
    {"due_date": NOW.date() - dt.timedelta(days=1)},  # APP0224
    {"due_date": NOW.date() + dt.timedelta(days=366)},  # APP0225
    {"due_date": NOW.date() + dt.timedelta(days=364)},
    {"reference": "R" * 36}, {"reference": "R" * 37}, {"reference": ""}, {"reference": None},
    {"description": "d" * 32}, {"description": "d" * 33}, {"description": ""}, {"description": None},
    {"reference": 'q"uote\\back\nline\ttab\x01\x7f'}, {"description": "Zoë € 🧾 日本 \u2028"},
    {"amount": "0"}, {"amount": "-1.00"}, {"amount": "123456789.99"}, {"amount": "12.9"},
    {"currency": "USD"}, {"currency": "JPY", "amount": "12"},
    {"counterparty": Party(email="jan@example.nl")}, {"counterparty": Party(name="Jan")},
    {"counterparty": None},
    {"direction": Direction.PAYABLE}, {"direction": Direction.RECEIVABLE},
    {"provider_options": {}}, {"provider_options": {"SRRID": "own-1"}}, {"provider_options": {"CountdownDays": 5}},
    {"provider_options": {"SRRID": ""}}, {"provider_options": {"Amount": 12.95}},
    # a batch's pinned key alone (the fast path too), at and over the limit, of another type, needing escapes, or
    # the very SRRID the bulk would have given
    {"provider_options": {"SRRID": "S" * 36}}, {"provider_options": {"SRRID": "S" * 37}},
    {"provider_options": {"SRRID": 7}}, {"provider_options": {"SRRID": 'q"ué\\ 🧾'}},
    {"provider_options": {"SRRID": "bk-0123456789abcdef0123-0"}},
    {"provider_options": {"SRRID": "own-2", "CountdownDays": 5}},
    {"provider_options": {"SRRID": "own-3"}, "due_date": _DUE},
    {"provider_options": {"SRRID": "own-4"}, "description": "d" * 33},
    {"provider_options": {"SRRID": "own-5"}, "counterparty": Party(email="jan@example.nl")},
    {"line_items": ()}, {"line_items": (LineItem(description="x", unit_price=Money("1", "EUR")),)},
    {"issue_date": None}, {"issue_date": NOW.date()},
    {"provider_id": "ATID-1", "status": BillStatus.OPEN, "raw": {"Status": "Open"}},  # a bill read back
]  # fmt: skip


def _bulk_bill(case: dict[str, Any]) -> Bill:
    kwargs = dict(case)
    if "reference" in kwargs and kwargs["reference"] is None:
        kwargs.pop("reference")
        return Bill(description="Insurance deductible", total=Money("12.95", "EUR"), **kwargs)
    return bill(**kwargs)


def _slow_bulk(bills: list[Bill], now: dt.datetime, seed: str) -> Any:
    """The bulk preparation as submit_many did it before the fast path: prepare_request for every bill."""
    from billkit.errors import Problem
    from billkit.providers.accepteasy.mapping import PreparedBulk, bulk_srrid, prepare_request

    problems: list[Problem] = []
    reqs = []
    for i, one in enumerate(bills):
        try:
            reqs.append(prepare_request(one, now=now, srrid=bulk_srrid(seed, i), prefix=f"[{i}]."))
        except ValidationError as exc:
            problems.extend(exc.problems)
    seen: dict[str, int] = {}
    for i, req in enumerate(reqs):
        if req.srrid in seen:
            problems.append(Problem(f"[{i}].provider_options.SRRID", f"same SRRID as bill {seen[req.srrid]}"))
        seen.setdefault(req.srrid or "", i)
    if problems:
        raise ValidationError(problems, provider="accepteasy")
    srrids = [r.srrid for r in reqs]
    own = {str(i): s for i, s in enumerate(srrids) if s != bulk_srrid(seed, i) and s is not None}
    return PreparedBulk([r.body for r in reqs], srrids, [r.payment_reference for r in reqs], own)


def _outcome(fn: Any) -> Any:
    try:
        return fn()
    except Exception as exc:  # the refusal itself is compared
        return type(exc), str(exc), getattr(exc, "problems", None)


def _agree(bills: list[Bill], now: dt.datetime = NOW) -> Any:
    from billkit.providers.accepteasy.mapping import prepare_bulk

    fast = _outcome(lambda: prepare_bulk(bills, now=now, seed="0123456789abcdef0123"))
    assert fast == _outcome(lambda: _slow_bulk(bills, now, "0123456789abcdef0123"))
    return fast


@pytest.mark.parametrize("case", _BULK_CASES)
def test_a_bulk_sends_what_prepare_request_would(case: dict[str, Any]) -> None:
    """prepare_bulk writes plain bills' bodies itself: the bytes, SRRIDs, references and refusals must be
    prepare_request's, exactly, alone and among valid bills."""
    one = _bulk_bill(case)
    _agree([one])
    _agree([bill("A-1", due_date=_DUE), one, bill("A-3"), one])


def test_a_bulk_of_mixed_bills_agrees_with_the_slow_path() -> None:
    import random

    rng = random.Random(17)
    cases = [_bulk_bill(c) for c in _BULK_CASES]
    for _ in range(200):
        _agree(rng.choices(cases, k=rng.randint(1, 8)))
    valid = [
        c
        for c in cases
        if "SRRID" not in c.provider_options and not isinstance(_outcome(lambda c=c: _agree([c])), tuple)
    ]
    assert len(valid) > 15
    for _ in range(50):
        made = _agree(rng.choices(valid, k=rng.randint(1, 8)))
        assert not isinstance(made, tuple), made
    # a repeated SRRID the caller gave, numbered as before
    _agree([bill(provider_options={"SRRID": "own-1"}), bill(), bill(provider_options={"SRRID": "own-1"})])
    _agree([bill(description="x" * 40), bill(provider_options={"SRRID": "own-1"}),
            bill(provider_options={"SRRID": "own-1"})])  # fmt: skip

    # a Bill subclass takes the full path
    class MyBill(Bill):
        pass

    _agree([MyBill(reference="r", description="d", total=Money("1", "EUR"))])


def test_a_plain_bulk_takes_the_fast_path(monkeypatch: pytest.MonkeyPatch) -> None:
    """The shape is checked once per bulk: plain bills never reach prepare_request (or check_supported)."""
    from billkit.providers.accepteasy import mapping

    def refuse(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("the full path")

    monkeypatch.setattr(mapping, "prepare_request", refuse)
    monkeypatch.setattr(mapping, "check_supported", refuse)
    made = mapping.prepare_bulk([bill(f"R-{i}", due_date=_DUE) for i in range(3)], now=NOW, seed="s")
    assert made.srrids == ["bk-s-0", "bk-s-1", "bk-s-2"] and made.own == {}
    assert made.bodies[2] == (
        b'{"PaymentReference":"R-2","Description":"Insurance deductible","Amount":1295,'
        b'"ExpiryDate":"2026-02-14T23:59:59Z","SRRID":"bk-s-2"}'
    )


def test_a_bulk_of_pinned_bills_takes_the_fast_path(monkeypatch: pytest.MonkeyPatch) -> None:
    """A batch's bills carry their pinned SRRID as their only option: that shape is plain too, and each body
    carries its own SRRID, listed in the token's own SRRIDs."""
    from billkit.providers.accepteasy import mapping
    from billkit.providers.accepteasy.client import AcceptEasyAdapter

    def refuse(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("the full path")

    pinned = [AcceptEasyAdapter.pin_key(bill(f"R-{i}", due_date=_DUE), "seed", 40 + i)[0] for i in range(3)]
    expected = _agree(pinned)
    monkeypatch.setattr(mapping, "prepare_request", refuse)
    monkeypatch.setattr(mapping, "check_supported", refuse)
    made = mapping.prepare_bulk(pinned, now=NOW, seed="0123456789abcdef0123")
    assert made == expected
    assert made.srrids == ["bk-seed-28", "bk-seed-29", "bk-seed-2a"]
    assert made.own == {"0": "bk-seed-28", "1": "bk-seed-29", "2": "bk-seed-2a"}
    assert made.bodies[2] == (
        b'{"PaymentReference":"R-2","Description":"Insurance deductible","Amount":1295,'
        b'"ExpiryDate":"2026-02-14T23:59:59Z","SRRID":"bk-seed-2a"}'
    )


def test_ref_key_is_the_blake2b_digest() -> None:
    """Tokens made before keep matching: the key is BLAKE2b with an 8-byte digest of the UTF-8 reference."""
    import hashlib

    from billkit.providers.accepteasy.mapping import ref_key

    for ref in ("LI-748925", "", "Zoë 🧾"):
        assert ref_key(ref) == hashlib.blake2b(ref.encode(), digest_size=8).digest()
    assert ref_key(None) == ref_key("")

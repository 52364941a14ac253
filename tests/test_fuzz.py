"""Fuzzing: whatever goes in, only billkit's own errors come out.

Every property here feeds random input to one public entry point and accepts exactly two outcomes: a result of
the documented type, or an exception that is a :class:`billkit.errors.BillkitError`. Anything else escaping
(``KeyError``, ``TypeError``, ``pydantic.ValidationError``, ``decimal.InvalidOperation``, ``RecursionError``, ...)
fails the test. Covered: ``Money`` (construction from anything, minor units, arithmetic), the common models, the
three request builders, every wire parser (``to_bill``, ``read``, the BILL reader, ``error_from_response``, both
webhook parsers and verifiers) on random JSON, realistic bodies cut at every offset, realistic bodies with wrong
types in known fields, huge numbers and unicode.

Size: ``BILLKIT_SOAK=full`` runs each property :data:`SOAK_EXAMPLES` times (at least :data:`SOAK_TOTAL` examples
over the module, checked by :func:`test_soak_profile_runs_at_least_10000_examples`); otherwise
:data:`QUICK_EXAMPLES` times. Both profiles are derandomized and use no example database, so a run is
reproducible. The profiles are applied per test (``@fuzz``), never loaded globally, so other modules keep
Hypothesis' defaults.

The 14 bugs this module found when it was written (Money rounding in the 28-digit context, unbounded
quantities, RecursionError and pydantic errors escaping the readers, unsendable provider_options, JSON numbers
with huge exponents) are fixed; the properties now cover those shapes too.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import decimal
import functools
import json
import os
import string
from collections.abc import Callable, Iterator, Mapping, Sequence
from decimal import Decimal
from pathlib import Path
from typing import Any, TypeVar

import anyio
import httpx
import pydantic
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from billkit import (
    Address,
    APIError,
    Bill,
    BillkitError,
    LineItem,
    Money,
    MoneyError,
    Party,
    Tax,
    UnsupportedFeatureError,
    ValidationError,
    WebhookVerificationError,
)
from billkit.clock import VirtualClock
from billkit.errors import Problem
from billkit.models import check_supported, set_fields
from billkit.money import CURRENCY_EXPONENTS, MAX_DIGITS, loads_decimal, to_decimal
from billkit.providers.accepteasy import mapping as ae_mapping
from billkit.providers.accepteasy import webhooks as ae_webhooks
from billkit.providers.accepteasy import wire as ae_wire
from billkit.providers.accepteasy.sandbox import AcceptEasySandbox
from billkit.providers.billcom import mapping as bc_mapping
from billkit.providers.billcom import wire as bc_wire
from billkit.providers.facturapi import mapping as fa_mapping
from billkit.providers.facturapi import webhooks as fa_webhooks
from billkit.providers.facturapi import wire as fa_wire
from billkit.providers.facturapi.sandbox import FAIL_TAX_ID, FacturapiSandbox
from billkit.transport import Response, dumps, read_model

# -- profiles --------------------------------------------------------------------------------------------------

FUZZ_PROFILE = "billkit-fuzz"
SOAK_PROFILE = "billkit-fuzz-soak"
QUICK_EXAMPLES = 100
SOAK_EXAMPLES = 1_000
#: the soak run must execute at least this many examples over the module (see the last test)
SOAK_TOTAL = 10_000
_QUIET = [HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.large_base_example]

settings.register_profile(
    FUZZ_PROFILE, max_examples=QUICK_EXAMPLES, deadline=None, derandomize=True, database=None,
    suppress_health_check=_QUIET,
)  # fmt: skip
settings.register_profile(
    SOAK_PROFILE, max_examples=SOAK_EXAMPLES, deadline=None, derandomize=True, database=None,
    suppress_health_check=_QUIET,
)  # fmt: skip

SOAK = os.environ.get("BILLKIT_SOAK") == "full"
ACTIVE = settings.get_profile(SOAK_PROFILE if SOAK else FUZZ_PROFILE)

#: the names of the fuzz properties, registered by :func:`fuzz`
FUZZ_TESTS: list[str] = []

T = TypeVar("T", bound=Callable[..., None])


def fuzz(test: T) -> T:
    """Apply the active profile to a property and register it for the example-count check."""
    FUZZ_TESTS.append(test.__name__)
    return ACTIVE(test)


# -- helpers ---------------------------------------------------------------------------------------------------

#: a context in which products and sums of the generated values are exact
EXACT = decimal.Context(prec=decimal.MAX_PREC, Emax=decimal.MAX_EMAX, Emin=decimal.MIN_EMIN, traps=[])
DEFAULT = decimal.getcontext().copy()
CODES = sorted(CURRENCY_EXPONENTS)
TODAY = dt.date(2025, 6, 16)
NOW = dt.datetime(2025, 6, 16, 12, 0, tzinfo=dt.timezone.utc)
FIXTURES = Path(__file__).parent / "providers"


def exponent_of(value: Decimal) -> int:
    exp = value.as_tuple().exponent
    return exp if isinstance(exp, int) else 0


def exact(value: Decimal) -> Decimal:
    """``value`` without trailing zeros, so that exact sums of zeros with odd exponents stay small."""
    return value.normalize(EXACT)


def walk(value: Any) -> Iterator[Any]:
    """Every value inside a JSON-like structure (mappings, sequences, models' dumps), depth first."""
    yield value
    if isinstance(value, Mapping):
        for item in value.values():
            yield from walk(item)
    elif isinstance(value, (list, tuple)):
        for item in value:
            yield from walk(item)


def unsendable(value: Any) -> bool:
    """Whether transport.dumps cannot (or should not) encode ``value``: a float, a non-finite Decimal, an object
    that is not JSON, an int over 4300 digits, or a Decimal whose fixed-point form is megabytes long."""
    for item in walk(value):
        if isinstance(item, float) or (isinstance(item, Decimal) and not item.is_finite()):
            return True
        if isinstance(item, Decimal) and (exponent_of(item) < -2_000_000 or (item and exponent_of(item) > 2_000_000)):
            return True  # its fixed-point form (what dumps writes) would be megabytes long
        if isinstance(item, int) and not isinstance(item, bool) and item.bit_length() > 14_000:
            return True
        if not isinstance(item, (str, int, Decimal, Mapping, list, tuple, type(None))):
            return True
    return False


def nesting(body: bytes) -> int:
    """The deepest ``[``/``{`` nesting of a JSON text, ignoring brackets inside strings."""
    depth = deepest = 0
    in_string = escaped = False
    for byte in body:
        if in_string:
            if escaped:
                escaped = False
            elif byte == 0x5C:
                escaped = True
            elif byte == 0x22:
                in_string = False
        elif byte == 0x22:
            in_string = True
        elif byte in (0x5B, 0x7B):
            depth += 1
            deepest = max(deepest, depth)
        elif byte in (0x5D, 0x7D):
            depth = max(0, depth - 1)
    return deepest


def encode(value: Any, *, spaced: bool = False, ascii_only: bool = True) -> bytes:
    """JSON text of ``value`` with Decimals written as they print (``NaN``, ``1E+999999``): invalid JSON for the
    non-finite ones, which is what a broken provider would send."""
    sep, colon = (", ", ": ") if spaced else (",", ":")

    def enc(item: Any) -> str:
        if isinstance(item, Decimal):
            return str(item)
        if isinstance(item, Mapping):
            return (
                "{"
                + sep.join(json.dumps(str(k), ensure_ascii=ascii_only) + colon + enc(v) for k, v in item.items())
                + "}"
            )
        if isinstance(item, (list, tuple)):
            return "[" + sep.join(enc(v) for v in item) + "]"
        return json.dumps(item, ensure_ascii=ascii_only)

    return enc(value).encode("utf-8")


def _basic(credentials: bytes) -> str:
    return base64.b64encode(credentials).decode()


def response(status: int, content: bytes, headers: Sequence[tuple[bytes, bytes]] = ()) -> Response:
    return Response(status, httpx.Headers(list(headers)), content, request_id="fuzz-request")


def outcome(call: Callable[[], Any]) -> tuple[Any, BillkitError | None]:
    """Run ``call``: its result, or the BillkitError it raised. Any other exception propagates (fails the test)."""
    try:
        return call(), None
    except BillkitError as exc:
        assert str(exc)  # every billkit error prints
        return None, exc


# -- realistic bodies: fixtures and sandbox answers (computed once, lazily) ------------------------------------


def _fa_invoice(tax_id: str = "EKU9003173C9") -> Bill:
    return Bill(
        reference="FA-FUZZ-1",
        counterparty=Party(name="ESCUELA KEMPER URGATE", tax_id=tax_id, email="facturas@example.mx",
                           address=Address(postal_code="42501"), provider_options={"tax_system": "601"}),
        line_items=(LineItem(description="Servicio de consultoría", quantity=2, unit_price=Money("1000.00", "MXN"),
                             taxes=(Tax(type="IVA", rate="0.16"),), provider_options={"product_key": "80111600"}),),
        provider_options={"payment_form": "03", "use": "G03"},
    )  # fmt: skip


@functools.cache
def samples() -> tuple[tuple[str, str, bytes], ...]:
    """``(provider, kind, body)`` for every realistic body: the fixture files and live sandbox answers.

    ``kind`` is ``bill`` (a bill/invoice answer), ``error``, ``webhook`` or ``other``.
    """
    out: list[tuple[str, str, bytes]] = []
    kinds = {"webhook": "webhook", "sync_response": "bill", "create_response": "bill", "error": "error"}
    for path in sorted(FIXTURES.glob("*/fixtures/*.json")):
        provider = path.parent.parent.name
        kind = next((k for needle, k in kinds.items() if needle in path.name), "other")
        out.append((provider, kind, path.read_bytes()))

    # Facturapi: answers of its sandbox, and the signed webhook events it sends
    clock = VirtualClock(wall_start=NOW.timestamp())  # fixed wall time and ids: the same bytes on every run
    fbox = FacturapiSandbox(clock)
    auth = {"authorization": f"Bearer {fbox.credentials['api_key']}"}
    root = "https://sandbox.facturapi.test"

    def fcall(method: str, path: str, body: Any = None, headers: Mapping[str, str] = auth,
              params: Mapping[str, str] | None = None) -> bytes:  # fmt: skip
        return fbox.handle(httpx.Request(method, root + path, params=params, headers=headers), body).content

    def wire_body(bill: Bill, key: str) -> Any:
        request = fa_mapping.build_request(bill, today=TODAY, idempotency_key=f"bk-fuzz-{key}")
        return loads_decimal(dumps(request.to_json()))

    out.append(("facturapi", "bill", fcall("POST", "/invoices", wire_body(_fa_invoice(), "1"))))
    out.append(
        ("facturapi", "bill", fcall("POST", "/invoices", wire_body(_fa_invoice(), "2"), params={"async": "true"}))
    )
    fcall("POST", "/invoices", wire_body(_fa_invoice(FAIL_TAX_ID), "3"), params={"async": "true"})
    out.append(("facturapi", "error", fcall("POST", "/invoices", wire_body(_fa_invoice(FAIL_TAX_ID), "4"))))
    out.append(("facturapi", "error", fcall("POST", "/invoices", {"items": 5})))
    out.append(("facturapi", "error", fcall("GET", "/invoices/nope")))
    out.append(("facturapi", "error", fcall("GET", "/invoices", headers={})))
    out.append(("facturapi", "other", fcall("GET", "/invoices")))
    anyio.run(clock.advance, fbox.async_delay + 1)
    out.extend(("facturapi", "webhook", fbox.webhook_request(e)[0]) for e in fbox.events())

    # AcceptEasy: a sync create, errors, and the notifications of an async create
    aclock = VirtualClock(wall_start=NOW.timestamp())
    abox = AcceptEasySandbox(aclock)
    creds = f"{abox.credentials['key_name']}:{abox.credentials['key']}"
    aauth = {"authorization": f"Basic {_basic(creds.encode())}"}
    aroot = "https://sandbox.accepteasy.test"

    def acall(method: str, path: str, body: Any = None, headers: Mapping[str, str] = aauth) -> bytes:
        return abox.handle(httpx.Request(method, aroot + path, headers=headers), body).content

    bill = Bill(reference="LI-748925", description="Insurance deductible", total=Money("12.95", "EUR"),
                counterparty=Party(email="payer@example.nl"))  # fmt: skip
    body = loads_decimal(dumps(ae_mapping.build_request(bill, now=NOW, srrid="bk-fuzz-1").to_json()))
    out.append(("accepteasy", "bill", acall("POST", "/v2/Bill", body)))
    out.append(("accepteasy", "other", acall("POST", "/v2/Bill/async", {**body, "SRRID": "bk-fuzz-2"})))
    out.append(("accepteasy", "error", acall("POST", "/v2/Bill", {**body, "Amount": "x", "SRRID": "bk-fuzz-3"})))
    out.append(("accepteasy", "error", acall("GET", "/v2/Bill/nope", headers={})))
    out.append(("accepteasy", "error", acall("GET", "/v2/Bill/nope")))
    anyio.run(aclock.advance, abox.async_delay + 1)
    out.extend(("accepteasy", "webhook", abox.webhook_request(n)[0]) for n in abox.notifications())
    return tuple(out)


def sample_bodies(provider: str | None = None, kind: str | None = None) -> list[bytes]:
    return [b for p, k, b in samples() if provider in (None, p) and kind in (None, k)]


# -- strategies ------------------------------------------------------------------------------------------------

#: Exponents stay within +-10**6 here on purpose (the random ones within +-10**4): an int field of a response model
#: given 1E+30000000 spends a minute building the int (loads_decimal refuses such numbers in a body; these
#: strategies also build Decimals directly, so they stay small); 1E+999999 costs 0.2 s.
SPECIAL_DECIMALS = [
    Decimal(text)
    for text in (
        "NaN", "-NaN", "sNaN", "-sNaN", "Infinity", "-Infinity", "0", "-0", "0E-999999999", "0E+999999999",
        "1E+999999", "-1E+999999", "1E-999999", "1E-1000000000", "1E+14", "999999999999999.999", "1E+15", "1E+30",
        "0.1", "0.001", "0.005", "-0.01", "1.0000000000000000000000000000001", "12345678901234567890123456789",
    )
]  # fmt: skip
#: ints a JSON body can carry (loads_decimal refuses more than 4300 digits)
BIG_INTS = [10**400, -(10**400), 2**63, -(2**63) - 1, 2**64, 10**4299 - 1, 0, -1]
WEIRD_STRINGS = [
    "", " ", "NaN", "Infinity", "-inf", "sNaN", "1e999999", "1e-999999", "1E+999999999", "1e-1000000000",
    "١٢٣.٤٥", "\uff11\uff12\uff13", "߁߂", "1_000", "0x1F", "1,50", " 12.50 ", "2024-13-45", "2024-02-30T25:61:61Z",
    "9999-12-31T23:59:59-23:59", "0001-01-01T00:00:00+23:59", "2018-04-01T09:00:00.1234567Z", "2024-12-31",
    "\x00", "😀", "\u202e", "null", "true", "APP0224 - Expiry date must be in the future.", "BDC_1322", "BDC_1109",
    "valid", "pending", "failed", "canceled", "draft", "Paid", "CreationFailed", "CreationSucceeded", "PAID",
    "UNPAID", "PARTIAL", "SCHEDULED", "invoice", "invoice.status_updated", "MXN", "EUR", "usd", "ZZZ",
]  # fmt: skip

FA_KEYS = sorted(
    set(fa_wire.Invoice.model_fields) | set(fa_wire.Customer.model_fields) | set(fa_wire.ErrorBody.model_fields)
    | set(fa_wire.WebhookEvent.model_fields) | set(fa_wire.SearchResult.model_fields)
    | set(fa_wire.InvoiceProduct.model_fields) | set(fa_wire.ResourceMessage.model_fields) | {"object", "product"}
)  # fmt: skip
AE_KEYS = sorted(
    set(ae_wire.BillResponse.model_fields) | set(ae_wire.AsyncStatus.model_fields)
    | set(ae_wire.BulkStatus.model_fields) | set(ae_wire.Links.model_fields) | set(ae_wire.Address.model_fields)
    | {"Message", "message", "Error", "error", "ExceptionMessage", "ModelState"}
)  # fmt: skip
BC_KEYS = sorted(
    {f.alias or n for n, f in bc_wire.BillResponse.model_fields.items()}
    | {f.alias or n for n, f in bc_wire.BillLineItemResponse.model_fields.items()}
    | {f.alias or n for n, f in bc_wire.ErrorEntry.model_fields.items()}
    | {"invoiceNumber", "invoiceDate", "results", "nextPage"}
)  # fmt: skip
ALL_KEYS = sorted(set(FA_KEYS) | set(AE_KEYS) | set(BC_KEYS))


def _decimal_from(coefficient: int, exp: int) -> Decimal:
    return Decimal(coefficient).scaleb(exp, EXACT)


finite_decimals: st.SearchStrategy[Decimal] = st.one_of(
    st.decimals(allow_nan=False, allow_infinity=False),
    st.sampled_from([d for d in SPECIAL_DECIMALS if d.is_finite()]),
    st.builds(_decimal_from, st.integers(-(10**30), 10**30), st.integers(-10_000, 10_000)),
)
decimals: st.SearchStrategy[Decimal] = st.one_of(
    finite_decimals, st.decimals(allow_nan=True, allow_infinity=True), st.sampled_from(SPECIAL_DECIMALS)
)
texts: st.SearchStrategy[str] = st.one_of(st.text(max_size=40), st.sampled_from(WEIRD_STRINGS))
scalars: st.SearchStrategy[Any] = st.one_of(
    st.none(), st.booleans(), st.integers(), st.sampled_from(BIG_INTS), texts, decimals
)


def json_values(keys: Sequence[str] = ALL_KEYS, max_leaves: int = 12) -> st.SearchStrategy[Any]:
    """Random JSON-like values (no floats: billkit parses every JSON number as int or Decimal)."""
    key = st.one_of(st.sampled_from(keys), st.text(max_size=10))
    return st.recursive(
        scalars,
        lambda kids: st.one_of(st.lists(kids, max_size=4), st.dictionaries(key, kids, max_size=6)),
        max_leaves=max_leaves,
    )


#: Python values a caller could hand billkit (json values, plus floats, dates, bytes and models)
wild: st.SearchStrategy[Any] = st.one_of(
    json_values(),
    st.floats(),
    st.dates(),
    st.datetimes(timezones=st.none() | st.just(dt.timezone.utc)),
    st.binary(max_size=8),
    st.builds(object),
    st.builds(lambda c, u: Money.from_minor_units(u, c), st.sampled_from(CODES), st.integers(-(10**12), 10**12)),
)


def _paths(value: Any, prefix: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    if isinstance(value, dict):
        for k, v in value.items():
            yield (*prefix, k)
            yield from _paths(v, (*prefix, k))
    elif isinstance(value, list):
        for i, v in enumerate(value):
            yield (*prefix, i)
            yield from _paths(v, (*prefix, i))


def _replace(value: Any, path: tuple[Any, ...], new: Any) -> Any:
    if not path:
        return new
    head, rest = path[0], path[1:]
    if isinstance(value, dict):
        return {**value, head: _replace(value[head], rest, new)}
    copy = list(value)
    copy[head] = _replace(copy[head], rest, new)
    return copy


@st.composite
def mutated(draw: st.DrawFn, provider: str | None = None) -> Any:
    """A realistic body (parsed) with one field, at any depth, replaced by a value of a wrong type."""
    parsed = [loads_decimal(b) for b in sample_bodies(provider)]
    value = draw(st.sampled_from(parsed))
    paths = list(_paths(value))
    if not paths:
        return value
    return _replace(value, draw(st.sampled_from(paths)), draw(json_values(max_leaves=4)))


@st.composite
def truncated(draw: st.DrawFn, provider: str | None = None, kind: str | None = None) -> bytes:
    """A realistic body cut at a random byte offset (the whole body included)."""
    body = draw(st.sampled_from(sample_bodies(provider, kind)))
    return body[: draw(st.integers(0, len(body)))]


def bodies(provider: str | None = None) -> st.SearchStrategy[bytes]:
    """Raw bodies: random JSON (compact or spaced, ASCII or UTF-8), truncated and mutated realistic bodies, random
    bytes, unicode text, UTF-16, and very deep nesting."""
    return st.one_of(
        st.builds(encode, json_values(), spaced=st.booleans(), ascii_only=st.booleans()),
        truncated(provider),
        st.builds(encode, mutated(provider)),
        st.binary(max_size=64),
        st.text(max_size=40).map(lambda s: s.encode("utf-8")),
        st.builds(encode, json_values()).map(lambda b: b.decode().encode("utf-16")),
        st.sampled_from([b"[" * 100_000, b'{"a":' * 5_000, b"[" * 400 + b"]" * 400, b"\xef\xbb\xbf{}", b"{}"]),
    )


def half_and_half(first: st.SearchStrategy[Any], second: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    """Draw from each strategy half of the time (``one_of`` flattens nested ``one_of`` into equal branches)."""
    return st.booleans().flatmap(lambda pick: first if pick else second)


def raw_values(provider: str | None = None) -> st.SearchStrategy[Any]:
    """Parsed bodies: random JSON values, realistic bodies, realistic bodies with a field of the wrong type."""
    keys = {"facturapi": FA_KEYS, "accepteasy": AE_KEYS, "billcom": BC_KEYS}.get(provider or "", ALL_KEYS)
    realistic = st.deferred(lambda: st.sampled_from(sample_bodies(provider))).map(loads_decimal)
    return st.one_of(json_values(keys), st.dictionaries(st.sampled_from(keys), scalars), realistic, mutated(provider))


money_amounts: st.SearchStrategy[Any] = st.one_of(
    decimals,
    st.integers(),
    st.sampled_from([*BIG_INTS, 10**5000]),
    texts,
    st.from_regex(r"\s*[+-]?\d{0,20}(\.\d{0,20})?([eE][+-]?\d{1,20})?\s*", fullmatch=True),
    st.text(alphabet=st.characters(categories=["Nd"]), min_size=1, max_size=20),
    st.builds(
        lambda a, b: f"{a}.{b}",
        st.text(st.characters(categories=["Nd"]), min_size=1, max_size=8),
        st.text(st.characters(categories=["Nd"]), min_size=1, max_size=4),
    ),
    st.floats(),
    st.booleans(),
    st.none(),
    st.lists(st.integers(), max_size=2),
    st.builds(object),
)
currencies: st.SearchStrategy[Any] = st.one_of(
    st.sampled_from(CODES),
    st.sampled_from(CODES).map(lambda c: f"  {c.lower()} "),
    st.text(max_size=5),
    st.sampled_from(["\uff45\uff55\uff52", "ß", "MNX", "XXX", "", "EUR\x00"]),
    st.none(),
    st.integers(),
    st.binary(max_size=3),
)


@st.composite
def moneys(draw: st.DrawFn, codes: Sequence[str] = CODES) -> Money:
    """Valid Money of one of ``codes``: from exact minor units, and now and then a zero with an odd exponent."""
    code = draw(st.sampled_from(codes))
    places = CURRENCY_EXPONENTS[code]
    units = draw(
        st.one_of(st.integers(-(10**12), 10**12), st.integers(-(10 ** (15 + places)) + 1, 10 ** (15 + places) - 1))
    )
    kind = draw(st.integers(0, 19))
    if kind == 0:
        return Money(Decimal("0").scaleb(draw(st.integers(-999_999_999, 999_999_999)), EXACT), code)
    return Money.from_minor_units(units, code)


# -- Money -----------------------------------------------------------------------------------------------------


@fuzz
@given(amount=money_amounts, currency=currencies)
def test_money_construction_returns_money_or_money_error(amount: Any, currency: Any) -> None:
    try:
        money = Money(amount, currency)
    except MoneyError as exc:
        assert str(exc)
        return
    assert not isinstance(amount, (float, bool)), "a float or a bool was accepted as money"
    assert isinstance(currency, str) and money.currency in CURRENCY_EXPONENTS
    assert money.amount.is_finite() and money.amount == to_decimal(amount)
    assert money.amount == 0 or money.amount.adjusted() < MAX_DIGITS
    assert Money(str(money.amount), money.currency) == money
    assert repr(money) and str(money) and isinstance(hash(money), int)


@fuzz
@given(units=st.one_of(st.integers(), st.sampled_from([*BIG_INTS, 10**5000]), money_amounts), currency=currencies)
def test_money_from_minor_units_is_exact_or_refused(units: Any, currency: Any) -> None:
    money, error = outcome(lambda: Money.from_minor_units(units, currency))
    if not isinstance(currency, str):
        assert isinstance(error, MoneyError), f"currency {currency!r} was accepted"
        return
    if isinstance(units, bool) or not isinstance(units, int):
        assert isinstance(error, MoneyError), f"minor units {units!r} were accepted"
        return
    if error is not None:
        assert isinstance(error, MoneyError)
        code = currency.strip().upper()
        if code in CURRENCY_EXPONENTS:  # refused only because it is too large
            assert Decimal(units).scaleb(-CURRENCY_EXPONENTS[code], EXACT).adjusted() >= MAX_DIGITS
        return
    assert isinstance(money, Money)
    assert money.amount == Decimal(units).scaleb(-CURRENCY_EXPONENTS[money.currency], EXACT)
    assert money.to_minor_units() == units


@fuzz
@given(amount=money_amounts, currency=st.sampled_from(CODES))
def test_money_conversions_are_exact_or_refused(amount: Any, currency: str) -> None:
    money, error = outcome(lambda: Money(amount, currency))
    if error is not None:
        assert isinstance(error, MoneyError)
        return
    assert isinstance(money, Money)
    places = CURRENCY_EXPONENTS[currency]
    minor = money.to_minor_units()
    assert Decimal(minor).scaleb(-places, EXACT) == money.amount
    assert Money.from_minor_units(minor, currency) == money
    quantized = money.quantized()
    assert quantized == money.amount and (quantized == 0 or exponent_of(quantized) == -places)


@fuzz
@given(
    a=moneys(),
    b=moneys(),
    factor=st.one_of(st.integers(), st.sampled_from(BIG_INTS), decimals, st.floats(), st.booleans(), texts, st.none()),
)
def test_money_arithmetic_is_exact_or_refused(a: Money, b: Money, factor: Any) -> None:
    same = a.currency == b.currency
    x, y = exact(a.amount), exact(b.amount)
    for op, expected in (
        (lambda: a + b, EXACT.add(x, y)),
        (lambda: a - b, EXACT.subtract(x, y)),
        (lambda: -a, EXACT.minus(x)),
    ):
        result, error = outcome(op)
        if error is not None:
            assert isinstance(error, MoneyError)
            assert not same or expected.adjusted() >= MAX_DIGITS, f"refused {expected} {a.currency}"
        else:
            assert isinstance(result, Money) and result.currency == a.currency and result.amount == expected
    for compare in (lambda: a < b, lambda: a <= b, lambda: a > b, lambda: a >= b):
        ordered, error = outcome(compare)
        assert (isinstance(ordered, bool) and same) or (isinstance(error, MoneyError) and not same)
    assert (a == b) == (same and a.amount == b.amount)

    numeric = isinstance(factor, (int, Decimal)) and not isinstance(factor, bool)
    expected_product = EXACT.multiply(x, Decimal(factor)) if numeric else None
    for product in (lambda: a * factor, lambda: factor * a):
        result, error = outcome(product)
        if error is not None:
            assert isinstance(error, MoneyError)
            continue
        assert expected_product is not None, f"Money * {factor!r} was accepted"
        assert isinstance(result, Money) and result.amount == expected_product
        assert result.amount.adjusted() < MAX_DIGITS or result.amount == 0


# -- models ----------------------------------------------------------------------------------------------------

MODELS: dict[str, type[pydantic.BaseModel]] = {
    "Bill": Bill, "LineItem": LineItem, "Party": Party, "Address": Address, "Tax": Tax,
}  # fmt: skip


def _money_like() -> st.SearchStrategy[Any]:
    return st.one_of(
        moneys(),
        st.fixed_dictionaries({"amount": money_amounts, "currency": currencies}),
        st.dictionaries(st.sampled_from(["amount", "currency", "x"]), scalars, max_size=3),
        wild,
    )


def model_dicts(name: str, depth: int = 0) -> st.SearchStrategy[dict[str, Any]]:
    """Keyword arguments for one of the models: its own field names (and a stranger), with values of the right
    shape, of a wrong one, or wild."""
    model = MODELS[name]

    def value(field: str) -> st.SearchStrategy[Any]:
        nested: st.SearchStrategy[Any]
        if field in ("unit_price", "total", "amount_due", "amount_paid"):
            nested = _money_like()
        elif field in ("quantity", "rate"):
            nested = st.one_of(finite_decimals, decimals, st.integers(), texts, st.floats())
        elif field in ("issue_date", "due_date", "created_at", "updated_at"):
            nested = st.one_of(st.dates(), st.datetimes(), texts, st.integers())
        elif field == "line_items" and depth < 2:
            nested = st.lists(model_dicts("LineItem", depth + 1), max_size=3)
        elif field == "taxes" and depth < 3:
            nested = st.lists(model_dicts("Tax", depth + 1), max_size=3)
        elif field == "counterparty" and depth < 2:
            nested = model_dicts("Party", depth + 1)
        elif field == "address" and depth < 3:
            nested = model_dicts("Address", depth + 1)
        elif field in ("provider_options", "links", "raw"):
            nested = st.dictionaries(st.text(max_size=12), json_values(max_leaves=6), max_size=4)
        elif field in ("direction", "status"):
            nested = st.sampled_from(["payable", "receivable", "paid", "open", "PAID", "nope"])
        else:
            nested = st.one_of(texts, st.booleans())
        return st.one_of(nested, nested, nested, wild)

    fields = list(model.model_fields)
    return st.fixed_dictionaries({}, optional={**{f: value(f) for f in fields}, "not_a_field": wild})


@fuzz
@given(name=st.sampled_from(sorted(MODELS)), data=st.data())
def test_models_return_or_raise_validation_error(name: str, data: st.DataObject) -> None:
    kwargs = data.draw(model_dicts(name), label="kwargs")
    model = MODELS[name]
    built, error = outcome(lambda: model(**kwargs))
    if error is not None:
        assert isinstance(error, ValidationError) and error.problems
        assert all(isinstance(p, Problem) for p in error.problems)
        return
    assert type(built) is model
    assert set(kwargs) <= set(model.model_fields)
    if isinstance(built, Bill):
        assert all(isinstance(path, str) for path in set_fields(built))
        paths = ["direction", "reference", "line_items", "line_items[].*", "counterparty.*", "total", "x"]
        supported = data.draw(st.lists(st.sampled_from(paths)), label="supported")
        _, refused = outcome(lambda: check_supported(built, "fuzz", supported))
        assert refused is None or isinstance(refused, UnsupportedFeatureError)
        wildcards = tuple(p[:-1] for p in supported if p.endswith(".*"))  # the definition, path by path
        assert (refused is None) == all(p in supported or p.startswith(wildcards) for p in set_fields(built))
        assert built.currency is None or built.currency in CURRENCY_EXPONENTS
        total = Decimal(0)
        for item in built.line_items:
            total = EXACT.add(total, exact(EXACT.multiply(item.quantity, item.unit_price.amount)))
        assert built.line_total() == total
    if isinstance(built, LineItem):
        assert built.amount == EXACT.multiply(built.quantity, built.unit_price.amount)
    assert built.model_copy(update={}) == built and repr(built)


# -- request builders ------------------------------------------------------------------------------------------

options_values: st.SearchStrategy[Any] = st.one_of(json_values(max_leaves=6), st.floats(), st.builds(object))


@st.composite
def facturapi_bills(draw: st.DrawFn) -> dict[str, Any]:
    """Bill keyword arguments near a valid Facturapi invoice, each part perturbed now and then."""
    rfcs = ["EKU9003173C9", "XAXX010101000", FAIL_TAX_ID, "eku9003173c9", "ÑAND9003173C9"]
    tax_ids = st.one_of(st.sampled_from(rfcs), st.from_regex(r"[A-ZÑ&]{3,4}\d{6}[A-Z0-9]{3}", fullmatch=True), texts)
    party = st.one_of(
        st.fixed_dictionaries(
            {"name": st.one_of(st.just("ESCUELA KEMPER URGATE"), texts), "tax_id": tax_ids},
            optional={
                "address": st.fixed_dictionaries(
                    {"postal_code": st.one_of(st.from_regex(r"\d{5}", fullmatch=True), texts)},
                    optional={"line1": texts, "city": texts, "region": texts,
                              "country": st.sampled_from(["MX", "MEX", "USA", "", "x", "ÑÑÑ"])},
                ),
                "email": texts, "phone": texts,
                "provider_options": st.dictionaries(
                    st.sampled_from(["tax_system", "exterior", "interior", "neighborhood", "municipality", "street",
                                     "legal_name", "zzz"]), st.one_of(st.just("601"), options_values), max_size=4),
            },
        ),
        st.fixed_dictionaries({"provider_id": texts}, optional={"name": texts}),
    )  # fmt: skip
    tax = st.fixed_dictionaries(
        {"type": st.one_of(st.sampled_from(["IVA", "ISR", "IEPS", "iva", "VAT"]), texts),
         "rate": st.one_of(st.sampled_from([Decimal("0.16"), Decimal("0.08"), Decimal(0)]), finite_decimals)},
        optional={"withholding": st.booleans(), "included": st.booleans()},
    )  # fmt: skip
    item = st.fixed_dictionaries(
        {
            "description": st.one_of(st.just("Servicio"), texts),
            "unit_price": moneys(["MXN", "MXN", "USD", "EUR", "JPY", "KWD"]),
            "provider_options": st.dictionaries(
                st.sampled_from(["product_key", "taxability", "discount", "unit_key", "sku", "customs_keys", "zzz"]),
                st.one_of(st.sampled_from(["80111600", "01", "08", "09", "H87", 80111600]), options_values),
                max_size=4,
            ).map(lambda o: {"product_key": "80111600", **o}),
        },
        optional={"quantity": st.one_of(st.integers(-2, 10), finite_decimals), "taxes": st.lists(tax, max_size=3)},
    )
    options = st.dictionaries(
        st.sampled_from(["payment_form", "payment_method", "use", "exchange", "series", "folio_number", "conditions",
                         "idempotency_key", "type", "async", "customer", "pdf_options", "zzz"]),
        st.one_of(st.sampled_from(["03", "99", "PUE", "PPD", "G03", "I", "E", "18.5", 3, Decimal("17.25")]),
                  options_values),
        max_size=5,
    ).map(lambda o: {"payment_form": "03", **o})  # fmt: skip
    kwargs: dict[str, Any] = {
        "counterparty": draw(party),
        "line_items": draw(st.lists(item, min_size=0, max_size=3)),
        "provider_options": draw(options),
    }
    kwargs.update(draw(st.fixed_dictionaries({}, optional={
        "reference": texts, "direction": st.sampled_from(["receivable", "payable"]),
        "issue_date": st.one_of(st.dates(TODAY - dt.timedelta(days=5), TODAY + dt.timedelta(days=2)), st.dates()),
        "total": moneys(), "description": texts,
    })))  # fmt: skip
    return kwargs


positive_quantities: st.SearchStrategy[Any] = st.one_of(
    st.integers(1, 1000), finite_decimals.filter(lambda d: d > 0), st.sampled_from(["0.5", "1.25", "3"])
)
extra_options: st.SearchStrategy[dict[str, Any]] = st.dictionaries(
    st.sampled_from(["zzz", "notes", "pdf_options", "addenda"]), options_values, max_size=2
)


@st.composite
def facturapi_valid_bills(draw: st.DrawFn) -> dict[str, Any]:
    """Bill keyword arguments of a valid Facturapi invoice, random wherever the rules leave room (texts, amounts,
    quantities, taxes, extra options, which are sent as they are)."""
    included = draw(st.booleans())
    taxes = st.lists(
        st.fixed_dictionaries({"type": st.sampled_from(["IVA", "ISR", "IEPS", "iva"]),
                               "rate": st.decimals(0, 1, places=draw(st.integers(0, 6))),
                               "withholding": st.booleans(), "included": st.just(included)}),
        max_size=3,
    )  # fmt: skip
    item = st.fixed_dictionaries({
        "description": st.text(min_size=1).filter(str.strip),
        "quantity": positive_quantities,
        "unit_price": moneys(["MXN"]).map(lambda m: Money(abs(m.amount), m.currency)),
        "taxes": taxes,
        "provider_options": st.fixed_dictionaries(
            {"product_key": st.from_regex(r"\d{8}", fullmatch=True)},
            optional={"unit_key": st.sampled_from(["E48", "H87"]), "sku": texts,
                      "discount": st.decimals(0, 10, places=2), "taxability": st.sampled_from(["01", "02", "08"])},
        ),
    })  # fmt: skip
    party = st.one_of(
        st.fixed_dictionaries({
            "name": st.text(min_size=1), "tax_id": st.from_regex(r"[A-Z&]{3,4}\d{6}[A-Z0-9]{3}", fullmatch=True),
            "address": st.fixed_dictionaries({"postal_code": st.from_regex(r"\d{5}", fullmatch=True)},
                                             optional={"line1": texts, "city": texts, "country": st.just("MX")}),
            "provider_options": st.fixed_dictionaries({"tax_system": st.sampled_from(["601", "612", "616"])},
                                                      optional={"exterior": texts, "neighborhood": texts}),
        }, optional={"email": texts, "phone": texts}),
        st.fixed_dictionaries({"provider_id": st.text(min_size=1)}),
    )  # fmt: skip
    options = st.fixed_dictionaries(
        {"payment_form": st.sampled_from(["03", "28", "99"])},
        optional={"payment_method": st.sampled_from(["PUE", "PPD"]), "use": st.sampled_from(["G01", "G03", "S01"]),
                  "series": st.text(max_size=25), "conditions": texts, "folio_number": st.integers(1, 10**9)},
    ).map(lambda o: {**o, **draw(extra_options)})  # fmt: skip
    kwargs: dict[str, Any] = {
        "counterparty": draw(party), "line_items": draw(st.lists(item, min_size=1, max_size=3)),
        "provider_options": draw(options),
    }  # fmt: skip
    kwargs.update(draw(st.fixed_dictionaries({}, optional={
        "reference": texts, "issue_date": st.sampled_from([TODAY, TODAY - dt.timedelta(days=1)]),
    })))  # fmt: skip
    return kwargs


def _check_request(built: Any, error: BillkitError | None,
                   model: type[fa_wire.InvoiceRequest] | type[ae_wire.BillRequest], bill: Bill) -> None:  # fmt: skip
    event(f"outcome: {type(error).__name__ if error is not None else 'built'}")
    if error is not None:
        assert isinstance(error, (ValidationError, UnsupportedFeatureError))
        if isinstance(error, ValidationError):
            assert error.problems and all(isinstance(p, Problem) and isinstance(p.field, str) for p in error.problems)
        return
    assert isinstance(built, model)
    body = built.to_json()
    assert isinstance(body, dict)
    assert not unsendable(body), "the builder accepted a body the transport cannot send"
    assert isinstance(dumps(body), bytes)  # what the transport does before sending


def _bill(kwargs: dict[str, Any]) -> Bill | None:
    bill, error = outcome(lambda: Bill(**kwargs))
    assert error is None or isinstance(error, ValidationError)
    if error is not None:
        event("outcome: the Bill itself was refused")
    return bill if isinstance(bill, Bill) else None


@fuzz
@given(
    kwargs=st.one_of(facturapi_valid_bills(), facturapi_bills()),
    today=st.one_of(st.just(TODAY), st.dates(dt.date(1970, 1, 1), dt.date(2200, 1, 1))),
)
def test_facturapi_build_request(kwargs: dict[str, Any], today: dt.date) -> None:
    bill = _bill(kwargs)
    if bill is None:
        return
    built, error = outcome(lambda: fa_mapping.build_request(bill, today=today, idempotency_key="bk-fuzz"))
    _check_request(built, error, fa_wire.InvoiceRequest, bill)
    if isinstance(built, fa_wire.InvoiceRequest):
        assert built.currency in CURRENCY_EXPONENTS and built.items and built.payment_form
    party = bill.counterparty
    if party is not None:
        customer, refused = outcome(lambda: fa_mapping.customer_input(party))
        assert isinstance(customer, fa_wire.CustomerInput) or isinstance(refused, ValidationError)


AE_OPTION_KEYS = sorted(set(ae_wire.BillRequest.model_fields) | {"Status", "ATID", "zzz"})


def _ae_option_value(key: str) -> st.SearchStrategy[Any]:
    realistic: dict[str, st.SearchStrategy[Any]] = {
        "Communication": st.lists(st.fixed_dictionaries({"Channel": st.sampled_from(["Email", "Text", "PDF", "Fax"])},
                                                        optional={"Template": texts}), max_size=3),
        "RecordData": st.dictionaries(st.one_of(st.sampled_from(["Name", "PaymentReference", "Amount"]), texts),
                                      st.one_of(texts, st.text(min_size=500, max_size=510), st.integers()), max_size=3),
        "AmountScheme": st.fixed_dictionaries({}, optional={
            "List": st.lists(st.fixed_dictionaries({"Amount": st.one_of(st.integers(-10, 10**6), decimals, texts)},
                                                   optional={"Label": texts}), max_size=3),
            "Range": st.fixed_dictionaries({}, optional={"MinimumAmount": st.one_of(st.integers(), decimals),
                                                         "MaximumAmount": st.one_of(st.integers(), decimals)}),
        }),
        "ExpiryDate": st.one_of(st.datetimes(timezones=st.none() | st.just(dt.timezone.utc)), texts),
        "SRRID": st.one_of(st.text(max_size=40), st.integers()),
        "CountdownDays": st.one_of(st.integers(-5, 30), decimals),
    }  # fmt: skip
    return st.one_of(realistic.get(key, options_values), options_values)


@st.composite
def accepteasy_bills(draw: st.DrawFn) -> dict[str, Any]:
    keys = draw(st.lists(st.sampled_from(AE_OPTION_KEYS), max_size=4, unique=True))
    options = {k: draw(_ae_option_value(k)) for k in keys}
    kwargs: dict[str, Any] = {
        "reference": draw(st.one_of(st.just("LI-748925"), st.text(max_size=40))),
        "description": draw(st.one_of(st.just("Insurance deductible"), st.text(max_size=40))),
        "total": draw(moneys(["EUR", "EUR", "EUR", "USD", "JPY"])),
        "provider_options": options,
    }
    kwargs.update(draw(st.fixed_dictionaries({}, optional={
        "due_date": st.one_of(st.dates(TODAY - dt.timedelta(days=2), TODAY + dt.timedelta(days=400)), st.dates()),
        "counterparty": st.fixed_dictionaries({}, optional={"email": texts, "phone": texts, "name": texts}),
        "direction": st.sampled_from(["receivable", "payable"]),
        "line_items": st.lists(st.just({"description": "x", "unit_price": Money("1", "EUR")}), max_size=1),
    })))  # fmt: skip
    for key in ("reference", "description"):
        if draw(st.integers(0, 9)) == 0:
            kwargs.pop(key)
    return kwargs


@st.composite
def accepteasy_valid_bills(draw: st.DrawFn) -> dict[str, Any]:
    """Bill keyword arguments of a valid AcceptEasy bill (for ``NOW``), random wherever the rules leave room."""
    options = draw(st.fixed_dictionaries({}, optional={
        "SRRID": st.text(min_size=1, max_size=36), "AETemplateID": texts, "CountdownDays": st.integers(0, 60),
        "RecordData": st.dictionaries(st.sampled_from(["Name", "Policy", "Street"]), st.text(max_size=50), max_size=3),
        "Communication": st.lists(st.fixed_dictionaries({"Channel": st.sampled_from(["Email", "Text", "PDF"])}),
                                  max_size=2),
        "AmountScheme": st.fixed_dictionaries({"List": st.lists(st.fixed_dictionaries(
            {"Amount": st.integers(0, 10**6)}, optional={"Label": texts}), max_size=3)}),
        "NotificationURLs": st.fixed_dictionaries({"PaidURL": texts}),
    }))  # fmt: skip
    kwargs: dict[str, Any] = {
        "reference": draw(st.text(min_size=1, max_size=36)),
        "description": draw(st.text(min_size=1, max_size=32)),
        "total": draw(moneys(["EUR"]).map(lambda m: Money(abs(m.amount), "EUR"))),
        "provider_options": {**options, **draw(extra_options)},
    }
    kwargs.update(draw(st.fixed_dictionaries({}, optional={
        "due_date": st.dates(TODAY + dt.timedelta(days=1), TODAY + dt.timedelta(days=300)),
        "counterparty": st.fixed_dictionaries({}, optional={"email": texts, "phone": texts}),
    })))  # fmt: skip
    return kwargs


@fuzz
@given(
    kwargs=st.one_of(accepteasy_valid_bills(), accepteasy_bills()),
    now=st.one_of(
        st.just(NOW), st.datetimes(dt.datetime(1970, 1, 1), dt.datetime(2200, 1, 1), timezones=st.just(dt.timezone.utc))
    ),
    data=st.dictionaries(st.sampled_from(AE_OPTION_KEYS), options_values, max_size=6),
)
def test_accepteasy_build_request_and_validate(kwargs: dict[str, Any], now: dt.datetime, data: dict[str, Any]) -> None:
    problems = ae_mapping.validate_request(data, now)  # documented to return problems, never to raise
    assert isinstance(problems, list) and all(isinstance(p, Problem) for p in problems)
    bill = _bill(kwargs)
    if bill is None:
        return
    built, error = outcome(lambda: ae_mapping.build_request(bill, now=now, srrid="bk-fuzz"))
    _check_request(built, error, ae_wire.BillRequest, bill)
    if isinstance(built, ae_wire.BillRequest):
        assert bill.total is not None and built.Amount == bill.total.to_minor_units()


@st.composite
def billcom_bills(draw: st.DrawFn) -> dict[str, Any]:
    line = st.fixed_dictionaries(
        {"description": st.one_of(st.just("USB audio interface"), texts, st.just("x" * 4001)),
         "unit_price": moneys(["USD", "USD", "EUR", "JPY", "KWD"])},
        optional={"quantity": st.one_of(st.integers(-2, 10), finite_decimals),
                  "provider_options": st.dictionaries(st.sampled_from(["classifications", "description", "zzz"]),
                                                      options_values, max_size=2)},
    )  # fmt: skip
    kwargs: dict[str, Any] = {
        "direction": draw(st.sampled_from(["payable", "payable", "payable", "receivable"])),
        "counterparty": {"provider_id": draw(st.one_of(st.from_regex(r"009[0-9A-Za-z]{1,37}", fullmatch=True), texts))},
        "line_items": draw(st.lists(line, max_size=3)),
    }
    kwargs.update(draw(st.fixed_dictionaries({}, optional={
        "reference": texts, "description": st.one_of(texts, st.just("d" * 4001)),
        "issue_date": st.dates(), "due_date": st.dates(), "total": moneys(["USD", "EUR"]),
        "provider_options": st.dictionaries(
            st.sampled_from(["purchaseOrderNumber", "classifications", "payFromChartOfAccountId", "invoice", "dueDate",
                             "vendorId", "zzz"]), options_values, max_size=3),
    })))  # fmt: skip
    return kwargs


@st.composite
def billcom_valid_bills(draw: st.DrawFn) -> dict[str, Any]:
    """Bill keyword arguments of a valid BILL payable, random wherever the rules leave room."""
    line = st.fixed_dictionaries(
        {"description": st.text(max_size=100),
         "unit_price": st.integers(1, 10**9).map(lambda u: Money.from_minor_units(u, "USD"))},
        optional={"quantity": st.one_of(st.integers(1, 100), st.sampled_from(["1", "2.0", "0.5"])),
                  "provider_options": st.fixed_dictionaries(
                      {"classifications": st.fixed_dictionaries({}, optional={"itemId": texts, "departmentId": texts})}
                  )},
    )  # fmt: skip
    return {
        "direction": "payable",
        "counterparty": {"provider_id": draw(st.from_regex(r"009[0-9A-Za-z]{1,37}", fullmatch=True))},
        "reference": draw(st.text(min_size=1, max_size=40)),
        "issue_date": draw(st.dates()),
        "due_date": draw(st.dates()),
        "line_items": draw(st.lists(line, min_size=1, max_size=3)),
        "provider_options": draw(
            st.fixed_dictionaries(
                {},
                optional={
                    "purchaseOrderNumber": texts,
                    "classifications": st.fixed_dictionaries({"chartOfAccountId": texts}),
                },
            )
        ),
    }


@fuzz
@given(kwargs=st.one_of(billcom_valid_bills(), billcom_bills()))
def test_billcom_build_bill(kwargs: dict[str, Any]) -> None:
    bill = _bill(kwargs)
    if bill is None:
        return
    built, error = outcome(lambda: bc_mapping.build_bill(bill))
    event(f"outcome: {type(error).__name__ if error is not None else 'built'}")
    if error is not None:
        assert isinstance(error, (ValidationError, UnsupportedFeatureError))
        return
    request, currency = built
    assert isinstance(request, bc_wire.BillCreate) and (currency is None or currency in CURRENCY_EXPONENTS)
    body = request.to_json()
    assert not unsendable(body), "the builder accepted a body the transport cannot send"
    assert isinstance(dumps(body), bytes)


# -- wire parsers ----------------------------------------------------------------------------------------------

FA_MODELS: list[type[pydantic.BaseModel]] = [
    fa_wire.Invoice, fa_wire.Customer, fa_wire.SearchResult, fa_wire.ErrorBody, fa_wire.WebhookEvent,
    fa_wire.InvoiceItem, fa_wire.Stamp, fa_wire.ResourceMessage, fa_wire.EventData,
]  # fmt: skip


@fuzz
@given(raw=st.one_of(raw_values("facturapi"), raw_values()), model=st.sampled_from(FA_MODELS))
def test_facturapi_to_bill_and_read(raw: Any, model: type[pydantic.BaseModel]) -> None:
    bill, error = outcome(lambda: fa_mapping.to_bill(raw))
    assert error is None or isinstance(error, (APIError, ValidationError))
    if bill is not None:
        assert isinstance(bill, Bill) and bill.provider == "facturapi"
        assert bill.total is None or bill.total.currency == bill.currency
    read, error = outcome(lambda: fa_mapping.read(model, raw))
    assert isinstance(read, model) or isinstance(error, APIError)


amounts_on_the_wire: st.SearchStrategy[Any] = st.one_of(
    finite_decimals, st.integers(), st.sampled_from(BIG_INTS), st.none()
)
datetime_texts: st.SearchStrategy[Any] = st.one_of(
    texts, st.datetimes().map(lambda d: d.isoformat() + "Z"), st.datetimes().map(lambda d: d.isoformat() + "1234567Z")
)
accepteasy_wire_dicts: st.SearchStrategy[dict[str, Any]] = st.fixed_dictionaries(
    {},
    optional={
        "ATID": texts, "PaymentReference": texts, "Description": texts, "SRRID": texts,
        "Amount": st.one_of(amounts_on_the_wire, st.sampled_from(["12.95", "1e999999", "١٢", " 3 "])),
        "Status": st.one_of(st.sampled_from(["Open", "CountDown", "countdown", "Paid", "Expired", "Canceled", "Done",
                                             "Pending", "All"]), texts),
        "ExpiryDate": datetime_texts, "CreationDate": datetime_texts, "PendingPaymentDate": datetime_texts,
        "Address": st.one_of(st.none(), st.just({}), st.fixed_dictionaries({}, optional={"Email": texts,
                                                                                         "PhoneNumber": texts})),
        "Links": st.fixed_dictionaries({}, optional={"TransactionURL": texts, "ShortURL": texts, "Images":
                                                     st.fixed_dictionaries({}, optional={"ImageURL1": texts})}),
        "CountdownDays": st.integers(-(10**6), 10**6), "zzz": json_values(max_leaves=4),
    },
)  # fmt: skip


@fuzz
@given(raw=half_and_half(accepteasy_wire_dicts, st.one_of(raw_values("accepteasy"), raw_values())))
def test_accepteasy_to_bill(raw: Any) -> None:
    bill, error = outcome(lambda: ae_mapping.to_bill(raw))
    if error is not None:
        assert isinstance(error, (MoneyError, ValidationError, APIError))
        return
    assert isinstance(bill, Bill) and bill.provider == "accepteasy"
    assert bill.total is None or bill.total.currency == "EUR"


billcom_wire_dicts: st.SearchStrategy[dict[str, Any]] = st.fixed_dictionaries(
    {"id": st.text(max_size=24)},
    optional={
        "archived": st.booleans(), "vendorId": texts, "vendorName": texts, "description": texts,
        "amount": amounts_on_the_wire, "dueAmount": amounts_on_the_wire, "paidAmount": amounts_on_the_wire,
        "dueDate": texts, "createdTime": texts, "updatedTime": texts,
        "paymentStatus": st.one_of(st.sampled_from(["PAID", "UNPAID", "PARTIAL", "SCHEDULED", "paid", "NEW"]), texts),
        "invoice": st.fixed_dictionaries({}, optional={"invoiceNumber": texts, "invoiceDate": texts}),
        "billLineItems": st.lists(st.fixed_dictionaries({}, optional={
            "amount": amounts_on_the_wire, "quantity": amounts_on_the_wire, "price": amounts_on_the_wire,
            "description": texts, "id": texts}), max_size=3),
        "zzz": json_values(max_leaves=4),
    },
)  # fmt: skip


@fuzz
@given(
    raw=half_and_half(billcom_wire_dicts, st.one_of(raw_values("billcom"), raw_values())),
    currency=st.one_of(st.sampled_from(CODES), texts),
)
def test_billcom_readers(raw: Any, currency: str) -> None:
    entries = bc_wire.parse_errors(raw)  # documented never to raise
    assert isinstance(entries, list) and all(isinstance(e, bc_wire.ErrorEntry) for e in entries)
    assert all(isinstance(str(e), str) for e in entries)
    err = bc_mapping.error_from_entries(entries, status_code=400, raw=raw)
    assert isinstance(err, APIError) and isinstance(err, bc_mapping.BillcomError) and str(err)
    wire, refused = outcome(lambda: read_model(bc_wire.BillResponse, raw, provider="billcom"))
    if refused is not None:
        assert isinstance(refused, APIError) and refused.provider == "billcom"
        return
    assert isinstance(wire, bc_wire.BillResponse)
    bill, error = outcome(lambda: bc_mapping.to_bill(wire, currency, raw if isinstance(raw, Mapping) else None))
    assert error is None or isinstance(error, ValidationError)
    if bill is not None:
        assert isinstance(bill, Bill) and bill.provider == "billcom" and bill.provider_id == wire.id


ERROR_PARSERS: dict[str, Callable[[Response], APIError]] = {
    "facturapi": fa_mapping.error_from_response,
    "accepteasy": ae_mapping.error_from_response,
    "billcom": bc_mapping.error_from_response,
}
RETRY_AFTER = [
    b"5", b"0", b"-1", b"1e999", b"nan", b"inf", b"", b"  7 ", b"Wed, 21 Oct 2015 07:28:00 GMT",
    b"Fri, 31 Dec 9999 23:59:59 GMT", b"Mon, 01 Jan 0001 00:00:00 +2359", b"Mon, 99 Foo 2015", b"\xff\xfe",
]  # fmt: skip


@fuzz
@given(
    provider=st.sampled_from(sorted(ERROR_PARSERS)),
    status=st.one_of(st.integers(400, 599), st.sampled_from([0, -1, 100, 200, 202, 999, 10**6])),
    content=st.one_of(bodies(), st.deferred(lambda: st.sampled_from(sample_bodies(kind="error")))),
    retry_after=st.one_of(
        st.none(),
        st.sampled_from(RETRY_AFTER),
        st.binary(max_size=12).filter(lambda b: b"\n" not in b and b"\r" not in b),
    ),
)
def test_error_from_response_always_returns_an_api_error(provider: str, status: int, content: bytes,
                                                        retry_after: bytes | None) -> None:  # fmt: skip
    headers = [(b"retry-after", retry_after)] if retry_after is not None else []
    headers.append((b"x-facturapi-log-id", b"log-1"))
    err = ERROR_PARSERS[provider](response(status, content, headers))
    assert isinstance(err, APIError) and err.provider == provider and err.status_code == status
    assert isinstance(str(err), str) and err.message
    assert err.retryable in (None, True, False)


# -- webhooks --------------------------------------------------------------------------------------------------

FA_SECRET = FacturapiSandbox.webhook_secret


@st.composite
def signature_headers(draw: st.DrawFn, body: bytes, secret: str) -> dict[str, str]:
    """Facturapi-Signature headers: missing, random, of the right length, and right (decorated as verify allows
    or not)."""
    good = fa_webhooks.sign(body, secret)
    value = draw(st.one_of(
        st.just(good),
        st.builds(lambda p, up, ws: f"{ws}{p}{good.upper() if up else good}{ws}",
                  st.sampled_from(["", "sha256=", "SHA256="]), st.booleans(), st.sampled_from(["", " ", "\t"])),
        st.from_regex(r"[0-9a-f]{64}", fullmatch=True),
        st.text(max_size=70),
        st.text(alphabet=string.hexdigits + "gxyz=", min_size=63, max_size=65),
        st.just(good[:-1]), st.just(good + "0"), st.just("sha256=" + good[1:] + "g"),
    ))  # fmt: skip
    name = draw(st.sampled_from(["Facturapi-Signature", "facturapi-signature", "FACTURAPI-SIGNATURE", "X-Signature"]))
    headers = draw(st.dictionaries(st.sampled_from(["content-type", "x-other"]), st.text(max_size=10), max_size=2))
    if draw(st.integers(0, 9)):
        headers[name] = value
    return headers


def _normalised(headers: Mapping[str, str]) -> str | None:
    value = next((v for k, v in headers.items() if k.lower() == "facturapi-signature"), None)
    if value is None:
        return None
    value = value.strip().lower()
    return value.removeprefix("sha256=")


@fuzz
@given(body=st.one_of(bodies("facturapi"),
                      st.deferred(lambda: st.sampled_from(sample_bodies("facturapi", "webhook")))),
       secret=st.one_of(st.just(FA_SECRET), st.text(max_size=20)), data=st.data())  # fmt: skip
def test_facturapi_webhook_verify_and_parse(body: bytes, secret: str, data: st.DataObject) -> None:
    headers = data.draw(signature_headers(body, secret or "x"), label="headers")
    verified, error = outcome(lambda: fa_webhooks.verify(body, headers, secret))
    if error is not None:
        assert isinstance(error, WebhookVerificationError)
    else:
        assert isinstance(verified, fa_wire.WebhookEvent)
        assert secret and _normalised(headers) == fa_webhooks.sign(body, secret), "a wrong signature was accepted"
    parsed, error = outcome(lambda: fa_webhooks.parse_event(body))
    if error is not None:
        assert isinstance(error, WebhookVerificationError)
        return
    assert isinstance(parsed, fa_wire.WebhookEvent)
    assert parsed.error_message() is None or isinstance(parsed.error_message(), str)
    invoice = parsed.invoice
    assert invoice is None or isinstance(invoice, fa_wire.Invoice)
    bill, refused = outcome(lambda: fa_mapping.to_bill(parsed.data.object))
    assert isinstance(bill, Bill) or isinstance(refused, (APIError, ValidationError))


AE_CREDENTIALS = "webhook-user:webhook-password"
AE_EVENTS = (
    ae_webhooks.CreationSucceededEvent, ae_webhooks.CreationFailedEvent, ae_webhooks.PaidEvent,
    ae_webhooks.BouncedEvent, ae_webhooks.OtherBillEvent, ae_webhooks.BulkCompletedEvent,
)  # fmt: skip


@st.composite
def authorization_headers(draw: st.DrawFn, credentials: str) -> dict[str, str]:
    good = _basic(credentials.encode())
    value = draw(st.one_of(
        st.just(f"Basic {good}"), st.just(f"basic {good}  "), st.just(f"BASIC {good}"),
        st.builds(lambda c: f"Basic {_basic(c)}", st.binary(max_size=30)),
        st.builds(lambda c: f"Basic {_basic(c.encode())}", st.text(max_size=30)),
        st.builds(lambda s, t: f"{s} {t}", st.sampled_from(["Bearer", "Digest", "Basic", "", "Basic:"]),
                  st.text(max_size=30)),
        st.text(max_size=40),
        st.just(f"Basic {good[:-1]}"), st.just(f"Basic {good}="), st.just("Basic "), st.just("Basic"),
    ))  # fmt: skip
    name = draw(st.sampled_from(["Authorization", "authorization", "AUTHORIZATION", "Proxy-Authorization"]))
    headers = {"content-type": "application/json"}
    if draw(st.integers(0, 9)):
        headers[name] = value
    return headers


def _accepted_credentials(headers: Mapping[str, str]) -> bytes | None:
    value = next((v for k, v in headers.items() if k.lower() == "authorization"), None)
    if value is None or value[:6].lower() != "basic ":
        return None
    try:
        return base64.b64decode(value[6:].strip(), validate=True)
    except (binascii.Error, ValueError):
        return None


@fuzz
@given(body=st.one_of(bodies("accepteasy"),
                      st.deferred(lambda: st.sampled_from(sample_bodies("accepteasy", "webhook")))),
       credentials=st.one_of(st.just(AE_CREDENTIALS), st.text(max_size=20)), data=st.data())  # fmt: skip
def test_accepteasy_webhook_verify_and_parse(body: bytes, credentials: str, data: st.DataObject) -> None:
    headers = data.draw(authorization_headers(credentials or "x:y"), label="headers")
    verified, error = outcome(lambda: ae_webhooks.verify(body, headers, credentials))
    if error is not None:
        assert isinstance(error, WebhookVerificationError)
    else:
        assert isinstance(verified, AE_EVENTS)
        assert credentials and _accepted_credentials(headers) == credentials.encode(), "wrong credentials accepted"
    for given_body in (body, body.decode("utf-8", errors="replace")):
        parsed, error = outcome(functools.partial(ae_webhooks.parse_event, given_body))
        assert isinstance(parsed, AE_EVENTS) or isinstance(error, WebhookVerificationError)
    if isinstance(parsed, AE_EVENTS):
        assert isinstance(ae_webhooks.parse_event(parsed.model_dump()), type(parsed))


# -- realistic bodies cut everywhere ---------------------------------------------------------------------------


@fuzz
@given(data=st.data())
def test_every_parser_on_truncated_realistic_bodies(data: st.DataObject) -> None:
    provider, kind, whole = data.draw(st.sampled_from(samples()), label="sample")
    cut = data.draw(st.integers(0, len(whole)), label="cut")
    body = whole[:cut]
    complete = cut == len(whole)
    for name, parser in ERROR_PARSERS.items():
        err = parser(response(400, body))
        assert isinstance(err, APIError) and err.provider == name
    parsed = loads_decimal(body) if complete else None
    if provider == "facturapi":
        event_, error = outcome(
            lambda: fa_webhooks.verify(body, {"Facturapi-Signature": fa_webhooks.sign(body, FA_SECRET)}, FA_SECRET)
        )
        assert isinstance(event_, fa_wire.WebhookEvent) or isinstance(error, WebhookVerificationError)
        if complete and kind == "webhook":
            assert isinstance(event_, fa_wire.WebhookEvent) and event_.invoice is not None
            assert isinstance(fa_mapping.to_bill(event_.data.object), Bill)
        if complete and kind == "bill":
            assert isinstance(fa_mapping.to_bill(parsed), Bill)
    if provider == "accepteasy":
        headers = {"authorization": f"Basic {_basic(AE_CREDENTIALS.encode())}"}
        event_, error = outcome(lambda: ae_webhooks.verify(body, headers, AE_CREDENTIALS))
        assert isinstance(event_, AE_EVENTS) or isinstance(error, WebhookVerificationError)
        if complete and kind == "webhook":
            assert isinstance(event_, AE_EVENTS)
        if complete and kind == "bill":
            assert isinstance(parsed, dict) and isinstance(ae_mapping.to_bill(parsed), Bill)
    if provider == "billcom" and complete and kind == "bill":
        assert isinstance(bc_mapping.to_bill(bc_wire.BillResponse.model_validate(parsed), "USD", parsed), Bill)
    if complete and kind == "error":
        assert ERROR_PARSERS[provider](response(400, body)).message


# -- the size of the soak --------------------------------------------------------------------------------------


def test_soak_profile_runs_at_least_10000_examples() -> None:
    module = globals()
    hypothesis_tests = sorted(
        n for n, f in module.items() if n.startswith("test_") and getattr(f, "is_hypothesis_test", False)
    )
    assert hypothesis_tests == sorted(FUZZ_TESTS), "every property goes through @fuzz (the profile and this count)"
    for name in FUZZ_TESTS:
        applied = getattr(module[name], "_hypothesis_internal_use_settings", None)
        assert applied is not None and applied.max_examples == ACTIVE.max_examples, name
    soak = settings.get_profile(SOAK_PROFILE)
    assert len(FUZZ_TESTS) >= 10
    assert soak.max_examples * len(FUZZ_TESTS) >= SOAK_TOTAL, (soak.max_examples, len(FUZZ_TESTS))
    assert settings.get_profile(FUZZ_PROFILE).max_examples == QUICK_EXAMPLES
    assert ACTIVE.max_examples == (SOAK_EXAMPLES if SOAK else QUICK_EXAMPLES)
    assert ACTIVE.derandomize and ACTIVE.deadline is None and ACTIVE.database is None

"""AcceptEasy mapping: the common :class:`~billkit.models.Bill` to a :class:`BillRequest` and back, the status
table, local validation of every documented limit, and the lenient error parser.

**What maps** (anything else the caller set raises :class:`UnsupportedFeatureError`, never dropped):

======================  ============================================================================
common field            AcceptEasy
======================  ============================================================================
``direction``           ``receivable`` only (AcceptEasy sends payment requests)
``reference``           ``PaymentReference`` (required, at most 36; the vendor advises at most 16)
``description``         ``Description`` (required, at most 32)
``total``               ``Amount`` in integer cents, EUR only, through ``Money.to_minor_units`` (exact)
``due_date``            ``ExpiryDate`` at 23:59:59 UTC of that day (future, at most one year ahead)
``counterparty.email``  ``Address.Email``
``counterparty.phone``  ``Address.PhoneNumber``
``provider_options``    merged last under their wire names (``SRRID``, ``AETemplateID``, ``CountdownDays``,
                        ``Communication``, ``CommunicationPlanId``, ``RecordData``, ``Attachment``,
                        ``AmountScheme``, ``PartialPaymentPlanID``, ``Extras``, ``NotificationURLs``,
                        ``ExpiryDate``, or any other key the Swagger file knows, sent as given)
======================  ============================================================================

Line items, issue dates, tax ids and party names have no AcceptEasy field; pass template variables through
``provider_options={"RecordData": {...}}``.
"""

from __future__ import annotations

import datetime as dt
import functools
import hashlib
import json
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from types import MappingProxyType
from typing import Any, Protocol, TypeVar

import pydantic
import pydantic_core

from billkit.errors import APIError, Problem, UnsupportedFeatureError, ValidationError
from billkit.isodates import datetime_from_iso
from billkit.models import Bill, BillStatus, Direction, Party, check_supported, flat_fields
from billkit.money import Money
from billkit.providers.accepteasy.wire import (
    APP_CODE,
    BillRequest,
    BillResponse,
    BulkBillStatus,
    ErrorInfo,
    format_datetime,
    parse_datetime_text,
)
from billkit.transport import Response, check_sendable, default_error, encode_body, read_model

__all__ = [
    "CREATION_STATUS",
    "DOCUMENTED_TRANSACTION_URL",
    "MAX_DESCRIPTION",
    "MAX_PAYMENT_REFERENCE",
    "MAX_RECORD_DATA_VALUE",
    "MAX_SRRID",
    "PROVIDER",
    "STATUS_TABLE",
    "SUPPORTED_FIELDS",
    "BulkEntry",
    "build_request",
    "bulk_entries_from_bytes",
    "bulk_item_bill",
    "creation_status",
    "error_from_response",
    "expiry_limit",
    "how_to_check",
    "is_duplicate_srrid",
    "match_bulk",
    "new_srrid",
    "prepare_bulk",
    "to_bill",
    "to_status",
    "validate_request",
]

PROVIDER = "accepteasy"
CURRENCY = "EUR"
MAX_DESCRIPTION = 32
MAX_PAYMENT_REFERENCE = 36
MAX_SRRID = 36
MAX_RECORD_DATA_VALUE = 500
CHANNELS = frozenset({"Email", "Text", "PDF"})

#: Bill ``Status`` -> common status. Documented values (glossary): Open, CountDown, Paid, Expired, Canceled,
#: Pending, Done, and All ("technical status, should never happen").
#:
#: * ``Pending`` (the payer scheduled a transfer, no confirmation yet) and ``Done`` (the payer paid, the payment
#:   provider has not confirmed it yet) map to **OPEN**: no money is confirmed, the payment can still fail, and
#:   the bill stays payable as far as anyone can promise. Mapping them to PAID would let ``wait_for(PAID)``
#:   finish on money that may never arrive; PENDING is billkit's word for "not finished creating". The raw
#:   word stays in ``provider_status``, so a caller who wants to act on ``Done`` can.
#: * ``Expired`` and ``Canceled`` (also the spelling ``Cancelled``) map to VOID: the bill can no longer be paid.
#: * ``All`` and any other string map to UNKNOWN, keeping the raw string; nothing raises.
STATUS_TABLE: Mapping[str, BillStatus] = {
    "Open": BillStatus.OPEN,
    "CountDown": BillStatus.OPEN,
    "Pending": BillStatus.OPEN,
    "Done": BillStatus.OPEN,
    "Paid": BillStatus.PAID,
    "Expired": BillStatus.VOID,
    "Canceled": BillStatus.VOID,
    "Cancelled": BillStatus.VOID,
    "CreationFailed": BillStatus.FAILED,
}
_STATUS_FOLDED = {k.lower(): v for k, v in STATUS_TABLE.items()}

#: Async / bulk-entry ``STATUS`` -> common status. ``CreationSucceded`` is a 2018 doc misspelling, mapped too.
CREATION_STATUS: Mapping[str, BillStatus] = {
    "Processing": BillStatus.PENDING,
    "CreationSucceeded": BillStatus.OPEN,
    "CreationSucceded": BillStatus.OPEN,
    "CreationFailed": BillStatus.FAILED,
}

SUPPORTED_FIELDS = (
    "direction", "reference", "description", "total", "due_date", "counterparty", "counterparty.email",
    "counterparty.phone",
)  # fmt: skip

#: Record fields that RecordData keys must not shadow (the vendor's example: PaymentReference).
_RESERVED_RECORD_KEYS = frozenset(BillRequest.model_fields) | {"ATID", "Status", "Links", "CreationDate"}

#: where a wire field came from, for problem paths
_COMMON_PATH = {
    "PaymentReference": "reference",
    "Description": "description",
    "Amount": "total",
    "ExpiryDate": "due_date",
}


def to_status(raw: str | None) -> BillStatus:
    """The common status of a bill ``Status`` (case-insensitive fallback: ``Countdown`` too)."""
    if raw is None:
        return BillStatus.UNKNOWN
    return STATUS_TABLE.get(raw) or _STATUS_FOLDED.get(raw.lower(), BillStatus.UNKNOWN)


def creation_status(raw: str | None) -> BillStatus:
    """The common status of an async or bulk-entry ``STATUS``."""
    if raw is None:
        return BillStatus.UNKNOWN
    return CREATION_STATUS.get(raw, BillStatus.UNKNOWN)


def new_srrid() -> str:
    """An SRRID for one logical create (``bk-`` + 32 hex digits: 35 characters, within the 36 allowed)."""
    return "bk-" + uuid.uuid4().hex


def new_bulk_seed() -> str:
    """The random part the SRRIDs of one bulk share (80 bits: two bulks never share it)."""
    return uuid.uuid4().hex[:20]


def bulk_srrid(seed: str, index: int) -> str:
    """The SRRID billkit gives input ``index`` of the bulk with ``seed``: ``bk-<seed>-<index in hex>`` (at most 32
    characters for a million bills, within the 36 allowed). Derived, so a bulk's token need not store it."""
    return f"bk-{seed}-{index:x}"


def ref_key(payment_reference: str | None) -> bytes:
    """8 bytes standing for a PaymentReference in a bulk's token (a BLAKE2b digest: two different references
    give the same key with odds of 1 in 2^64), so the token need not store the references themselves."""
    digest = _REF_HASH.copy()  # a copy of the empty state: the same digest as a new hasher, made cheaper
    digest.update((payment_reference or "").encode())
    return digest.digest()


_REF_HASH = hashlib.blake2b(digest_size=8)


def how_to_check(payment_reference: str | None, srrid: str | None) -> str:
    if payment_reference is None:
        return (
            f"Search the bill with SRRID {srrid} among those with its PaymentReference (client.native.find_by_srrid"
            "(payment_reference, srrid)); resend with the same SRRID only if it is absent."
        )
    return (
        f"Search the bill with GET /v2/Search/Bill?paymentReference={payment_reference} and look for "
        f"SRRID {srrid} (client.native.find_by_srrid(...)); resend with the same SRRID only if it is absent."
    )


@functools.lru_cache(maxsize=16)
def expiry_limit(now: dt.datetime) -> dt.datetime:
    """The latest allowed ExpiryDate: one year from ``now`` (the stricter of 365 days and the calendar year)."""
    try:
        calendar = now.replace(year=now.year + 1)
    except ValueError:  # 29 February
        calendar = now.replace(year=now.year + 1, day=28)
    return min(calendar, now + dt.timedelta(days=365))


def _as_datetime(value: Any) -> dt.datetime | None:
    if isinstance(value, dt.datetime):
        return value if value.tzinfo else value.replace(tzinfo=dt.timezone.utc)
    if isinstance(value, str):
        try:
            parsed = datetime_from_iso(str(parse_datetime_text(value)).replace("Z", "+00:00"))
        except ValueError:
            return None
        return parsed if parsed.tzinfo else parsed.replace(tzinfo=dt.timezone.utc)
    return None


def _path(key: str) -> str:
    return _COMMON_PATH.get(key, f"provider_options.{key}")


def validate_request(data: Mapping[str, Any], now: dt.datetime, *, prefix: str = "") -> list[Problem]:
    """Every documented limit of a bill body (wire names), as problems; ``now`` is an aware UTC datetime.

    Checked: PaymentReference and Description present and at most 36 / 32 characters, SRRID at most 36,
    Amount an integer number of cents and not negative, ExpiryDate in the future (APP0224) and at most one
    year ahead (APP0225), RecordData values strings of at most 500 characters whose keys do not shadow record
    fields, Communication channels, Communication not combined with CommunicationPlanId, and
    PartialPaymentPlanID without Communication or CommunicationPlanId.
    """
    problems: list[Problem] = []

    def add(key: str, message: str) -> None:
        problems.append(Problem(prefix + _path(key), message))

    for key, limit in (("PaymentReference", MAX_PAYMENT_REFERENCE), ("Description", MAX_DESCRIPTION)):
        value = data.get(key)
        if value is None or value == "":
            add(key, f"required by AcceptEasy ({key})")
        elif not isinstance(value, str):
            add(key, f"{key} must be a string")
        elif len(value) > limit:
            add(key, f"{key} is at most {limit} characters; got {len(value)}")
    srrid = data.get("SRRID")
    if srrid is not None and (not isinstance(srrid, str) or not srrid or len(srrid) > MAX_SRRID):
        add("SRRID", f"SRRID must be a non-empty string of at most {MAX_SRRID} characters")
    amount = data.get("Amount")
    if amount is None:
        add("Amount", "required: set the bill's total (EUR)")
    elif isinstance(amount, bool) or not isinstance(amount, int):
        add("Amount", f"Amount is in integer cents; got {amount!r}")
    elif amount < 0:
        add("Amount", "Amount must not be negative")
    expiry = data.get("ExpiryDate")
    if expiry is not None:
        when = _as_datetime(expiry)
        if when is None:
            add("ExpiryDate", f"not an ISO-8601 date-time: {expiry!r}")
        elif when <= now:
            add("ExpiryDate", "APP0224 - Expiry date must be in the future.")
        elif when > expiry_limit(now):
            add("ExpiryDate", "APP0225 - Expiry date cannot exceed 1 year from now.")
    record = data.get("RecordData")
    if record is not None:
        if not isinstance(record, Mapping):
            add("RecordData", "RecordData must be an object of string values")
        else:
            for k, v in record.items():
                if k in _RESERVED_RECORD_KEYS:
                    add(f"RecordData.{k}", f"{k} is a record field and cannot be a RecordData key")
                if not isinstance(v, str):
                    add(f"RecordData.{k}", "RecordData values must be strings")
                elif len(v) > MAX_RECORD_DATA_VALUE:
                    add(f"RecordData.{k}", f"at most {MAX_RECORD_DATA_VALUE} characters; got {len(v)}")
    comms = data.get("Communication")
    if comms:
        if data.get("CommunicationPlanId"):
            add("Communication", "Communication cannot be combined with CommunicationPlanId")
        for i, comm in enumerate(comms if isinstance(comms, list) else []):
            channel = comm.get("Channel") if isinstance(comm, Mapping) else getattr(comm, "Channel", None)
            if channel not in CHANNELS:
                add(f"Communication[{i}].Channel", f"Channel must be one of {sorted(CHANNELS)}; got {channel!r}")
    if data.get("PartialPaymentPlanID") and (comms or data.get("CommunicationPlanId")):
        add("PartialPaymentPlanID", "PartialPaymentPlanID cannot be sent with Communication or CommunicationPlanId")
    countdown = data.get("CountdownDays")
    if countdown is not None and (isinstance(countdown, bool) or not isinstance(countdown, int) or countdown < 0):
        add("CountdownDays", "CountdownDays must be a non-negative integer")
    return problems


def _expiry_from_due(due: dt.date) -> dt.datetime:
    return dt.datetime.combine(due, dt.time(23, 59, 59), tzinfo=dt.timezone.utc)


def build_request(bill: Bill, *, now: dt.datetime, srrid: str | None = None, prefix: str = "") -> BillRequest:
    """The request body for ``bill`` as the wire model; raises UnsupportedFeatureError or ValidationError (every
    problem). ``srrid`` is used unless ``provider_options`` carries one. ``now`` (aware, UTC) is the clock's wall
    time, for the expiry rules."""
    return _model(_wire_fields(bill, now, srrid, prefix), prefix)


@dataclass(frozen=True, slots=True)
class Prepared:
    """A create ready to send: what the adapter needs of it, and its JSON bytes (encoded once)."""

    payment_reference: str
    srrid: str | None
    cents: int
    body: bytes


def prepare_request(bill: Bill, *, now: dt.datetime, srrid: str | None = None, prefix: str = "") -> Prepared:
    """:func:`build_request`'s checks, then the body's bytes, each made once. When every field is one
    :func:`validate_request` checks whole (the common case), the body is written from those checked values;
    otherwise (nested or unknown ``provider_options``) the wire model checks their shapes first."""
    data = _wire_fields(bill, now, srrid, prefix)
    body = _plain_body(data)
    if body is not None:  # strings and ints only: the C encoder writes them exactly
        encoded = _ENCODER.encode(body).encode()
    else:
        # what provider_options brought must be sendable: checked while it is encoded
        encoded = encode_body(_model(data, prefix, check=False).to_json(), provider=PROVIDER, prefix=prefix)
    return Prepared(data["PaymentReference"], data.get("SRRID"), data["Amount"], encoded)


_ENCODER = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"))


@dataclass(frozen=True, slots=True)
class PreparedBulk:
    """The bills of a bulk ready to send: each body's JSON bytes, SRRID and PaymentReference, in input order, and
    the SRRIDs the caller gave (``{index: srrid}``, those that are not ``bk-<seed>-<index>``)."""

    bodies: list[bytes]
    srrids: list[str | None]
    refs: list[str]
    own: dict[str, str]


_MISSING: Any = object()


def prepare_bulk(bills: Sequence[Bill], *, now: dt.datetime, seed: str, start: int = 0) -> PreparedBulk:
    """:func:`prepare_request` for every bill of a bulk (bill ``i`` gets the SRRID ``bk-<seed>-<start + i>`` unless
    it brings one), judged at one ``now``; raises ValidationError with every bill's problems (``[i].`` paths) and
    duplicate SRRIDs.

    The shape of a bill (which fields are set) is checked once per bulk, not per bill: a plain :class:`Bill`
    whose set fields are all ones AcceptEasy maps flat (reference, description, total, due date, the read side),
    without provider_options, passes :func:`check_supported` whatever its values. For those, every value is still
    checked here (the same limits as :func:`validate_request`, each expiry once per due date) and the body is
    written directly, byte for byte what :func:`prepare_request` writes (a test proves it). Any bill of another
    shape, or with any value out of bounds, takes :func:`prepare_request` itself, so a refusal is always the
    one it gives, with the same messages."""
    flat = _flat_fields()
    enc = _ENCODE_STRING
    receivable = Direction.RECEIVABLE
    expiries: dict[dt.date, str | None] = {}  # due date -> the encoded ExpiryDate, None when out of bounds
    limit = expiry_limit(now)
    bodies: list[bytes] = []
    srrids: list[str | None] = []
    refs: list[str] = []
    own: dict[str, str] = {}
    problems: list[Problem] = []
    pinned = flat | {"provider_options"}
    for i, bill in enumerate(bills):
        srrid = f"bk-{seed}-{start + i:x}"  # bulk_srrid(seed, start + i)
        options = bill.provider_options
        # a plain bill, or one whose only option is its own SRRID (a batch's pinned key: ``pin_key``)
        own_srrid = options.get("SRRID") if len(options) == 1 else None
        if type(bill) is Bill and (
            (not options and bill.model_fields_set <= flat)
            or (type(own_srrid) is str and 0 < len(own_srrid) <= MAX_SRRID and bill.model_fields_set <= pinned)
        ):
            ref, desc, total, due = bill.reference, bill.description, bill.total, bill.due_date
            if (
                bill.direction is receivable
                and type(ref) is str
                and 0 < len(ref) <= MAX_PAYMENT_REFERENCE
                and type(desc) is str
                and 0 < len(desc) <= MAX_DESCRIPTION
                and total is not None
                and total.currency == CURRENCY
            ):
                cents = total.to_minor_units()  # exact, or raises as prepare_request would
                expiry: str | None
                if due is None:
                    expiry = ""
                else:
                    expiry = expiries.get(due, _MISSING)
                    if expiry is _MISSING:
                        when = _expiry_from_due(due)
                        expiry = expiries[due] = (
                            f',"ExpiryDate":{enc(_format_cached(when))}' if now < when <= limit else None
                        )
                if cents >= 0 and expiry is not None:
                    if own_srrid is None:
                        tail = f'"SRRID":"{srrid}"}}'
                    else:
                        tail = f'"SRRID":{enc(own_srrid)}}}'
                        if own_srrid != srrid:
                            own[str(i)] = own_srrid
                        srrid = own_srrid
                    head = f'{{"PaymentReference":{enc(ref)},"Description":{enc(desc)},"Amount":{cents}{expiry},'
                    bodies.append((head + tail).encode())
                    srrids.append(srrid)
                    refs.append(ref)
                    continue
        try:
            req = prepare_request(bill, now=now, srrid=srrid, prefix=f"[{i}].")
        except ValidationError as exc:
            problems.extend(exc.problems)
            continue
        bodies.append(req.body)
        srrids.append(req.srrid)
        refs.append(req.payment_reference)
        if req.srrid != srrid and req.srrid is not None:
            own[str(i)] = req.srrid
    if own:  # bk-<seed>-<start + i> are distinct: only SRRIDs the caller gave can repeat one (numbered as prepared)
        seen: dict[str, int] = {}
        for n, s in enumerate(srrids):
            if s in seen:
                problems.append(Problem(f"[{n}].provider_options.SRRID", f"same SRRID as bill {seen[s]}"))
            seen.setdefault(s or "", n)
    if problems:
        raise ValidationError(problems, provider=PROVIDER)
    return PreparedBulk(bodies, srrids, refs, own)


_ENCODE_STRING: Callable[[str], str] = json.encoder.encode_basestring  # the C encoder json.dumps uses


@functools.cache
def _flat_fields() -> frozenset[str]:
    return flat_fields(Bill, SUPPORTED_FIELDS)


#: the body's fields in the wire model's order, with the type each must already have for the plain path
_PLAIN: tuple[tuple[str, type], ...] = (
    ("PaymentReference", str), ("Description", str), ("Amount", int), ("ExpiryDate", dt.datetime), ("SRRID", str),
    ("AETemplateID", str), ("CountdownDays", int), ("Address", dict), ("CommunicationPlanId", str),
    ("PartialPaymentPlanID", str),
)  # fmt: skip
_PLAIN_KEYS = frozenset(k for k, _ in _PLAIN)


def _plain_body(data: Mapping[str, Any]) -> dict[str, Any] | None:
    if not data.keys() <= _PLAIN_KEYS:
        return None
    body: dict[str, Any] = {}
    for key, kind in _PLAIN:
        value: Any = data.get(key)
        if value is None:
            if key in data:
                return None
            continue
        if type(value) is not kind:
            return None
        if isinstance(value, dt.datetime):
            body[key] = _format_cached(value)
            continue
        if kind is dict and not _plain_address(value):
            return None
        body[key] = value
    return body


_format_cached = functools.lru_cache(maxsize=256)(format_datetime)  # a bulk's bills mostly share a due date


def _plain_address(value: Any) -> bool:
    return bool(value.keys() <= {"Email", "PhoneNumber"} and all(type(v) is str for v in value.values()))


def _wire_fields(bill: Bill, now: dt.datetime, srrid: str | None, prefix: str) -> dict[str, Any]:
    """The wire fields of ``bill``, every documented limit checked (ValidationError lists every problem)."""
    check_supported(bill, PROVIDER, SUPPORTED_FIELDS)
    if bill.direction is not Direction.RECEIVABLE:
        raise UnsupportedFeatureError(PROVIDER, f"direction {bill.direction.value!r}", "bills are receivable only")
    data: dict[str, Any] = {}
    problems: list[Problem] = []
    if bill.reference is not None:
        data["PaymentReference"] = bill.reference
    if bill.description is not None:
        data["Description"] = bill.description
    if bill.total is not None:
        if bill.total.currency != CURRENCY:  # a limit like the others, listed with them
            problems.append(Problem(f"{prefix}total.currency", f"EUR only; got {bill.total.currency}"))
        data["Amount"] = bill.total.to_minor_units()
    if bill.due_date is not None:
        data["ExpiryDate"] = _expiry_from_due(bill.due_date)
    party = bill.counterparty
    if party is not None and (party.email or party.phone):
        data["Address"] = {k: v for k, v in (("Email", party.email), ("PhoneNumber", party.phone)) if v}
    for key, value in bill.provider_options.items():
        if key == "Address" and isinstance(value, Mapping) and isinstance(data.get("Address"), dict):
            data["Address"] = {**data["Address"], **value}
        else:
            data[key] = value
    if srrid is not None and data.get("SRRID") is None:
        data["SRRID"] = srrid
    problems += validate_request(data, now, prefix=prefix)
    if problems:
        raise ValidationError(problems, provider=PROVIDER)
    return data


def _model(data: Mapping[str, Any], prefix: str, *, check: bool = True) -> BillRequest:
    try:
        request = BillRequest.model_validate(data)
    except pydantic.ValidationError as exc:
        raise ValidationError(
            [Problem(prefix + _path(".".join(str(p) for p in e["loc"])), e["msg"]) for e in exc.errors()],
            provider=PROVIDER,
        ) from None
    if check:
        check_sendable(request.to_json(), provider=PROVIDER, prefix=prefix)
    return request


def to_bill(raw: Mapping[str, Any]) -> Bill:
    """A common Bill from an AcceptEasy bill body (``raw`` is kept whole)."""
    resp = read_model(BillResponse, raw, provider=PROVIDER)
    status = to_status(resp.Status) if resp.Status is not None else None
    total = Money(resp.Amount, CURRENCY) if resp.Amount is not None else None
    links: dict[str, str] = {}
    if resp.Links is not None:
        candidates = {
            "transaction_url": resp.Links.TransactionURL,
            "short_url": resp.Links.ShortURL,
            "image_1": resp.Links.Images.ImageURL1 if resp.Links.Images else None,
            "image_2": resp.Links.Images.ImageURL2 if resp.Links.Images else None,
            "button": resp.Links.Images.Button if resp.Links.Images else None,
        }
        links = {k: v for k, v in candidates.items() if v}
    party = None
    if resp.Address is not None and (resp.Address.Email or resp.Address.PhoneNumber):
        party = Party(email=resp.Address.Email or None, phone=resp.Address.PhoneNumber or None)
    return Bill(
        counterparty=party,
        reference=resp.PaymentReference,
        description=resp.Description,
        due_date=resp.ExpiryDate.date() if resp.ExpiryDate else None,
        total=total,
        provider=PROVIDER,
        provider_id=resp.ATID,
        status=status,
        provider_status=resp.Status,
        amount_due=total if total is not None and status not in (BillStatus.PAID, BillStatus.VOID) else None,
        amount_paid=total if total is not None and status is BillStatus.PAID else None,
        created_at=resp.CreationDate,
        links=links,
        raw=dict(raw),
    )


def error_from_response(response: Response) -> APIError:
    """AcceptEasy's error body is undocumented: accept ``{"Message"}``, ``{"ERROR": str | {Message}}``, ASP.NET's
    ``ModelState``, plain text and empty bodies. The APPnnnn code, when a message carries one, becomes ``code``;
    the raw text is kept in ``raw`` when the body is not JSON."""
    text = response.text.strip()
    body = response.json_or_none()
    message: str | None = None
    if isinstance(body, Mapping):
        for key in ("Message", "message", "ERROR", "Error", "error", "ExceptionMessage"):
            value = body.get(key)
            if isinstance(value, Mapping):
                value = value.get("Message") or value.get("message")
            if isinstance(value, str) and value:
                message = value
                break
        state = body.get("ModelState")
        if isinstance(state, Mapping):
            details = "; ".join(
                f"{k}: {' '.join(str(m) for m in v) if isinstance(v, list) else v}" for k, v in state.items()
            )
            message = f"{message} ({details})" if message else details
    elif isinstance(body, str) and body:
        message = body
    elif body is None and text:
        message = text[:1000]
    found = APP_CODE.search(message or text)
    error = default_error(
        PROVIDER,
        response,
        code=found.group(0) if found else None,
        message=message or f"HTTP {response.status_code} with an empty body",
    )
    if error.raw is None and text:
        error.raw = text
    return error


def is_duplicate_srrid(message: str | None) -> bool:
    """Whether an error message reads like a duplicate-SRRID refusal. The real wording is undocumented: billkit
    treats a message naming the SRRID together with "exist", "unique", "duplicate", "already" or "in use" as one."""
    text = (message or "").lower()
    return "srrid" in text and any(w in text for w in ("exist", "unique", "duplicate", "already", "in use"))


class EntryLike(Protocol):
    """What :func:`match_bulk` reads of a bulk-status entry: a :class:`BulkBillStatus` or a :class:`BulkEntry`."""

    @property
    def STATUS(self) -> str | None: ...
    @property
    def PaymentReference(self) -> str | None: ...
    @property
    def SRRID(self) -> str | None: ...
    @property
    def ERROR(self) -> ErrorInfo | None: ...


E = TypeVar("E", bound=EntryLike)

#: the keys a bulk-status entry has in AcceptEasy's documents (billBulk.md), and those of the status itself
_ENTRY_KEYS = frozenset({"ATID", "STATUS", "Location", "PaymentReference", "SRRID", "ERROR"})
_STATUS_KEYS = frozenset({"BulkId", "STATUS", "Bills", "ERROR"})


class BulkEntry:
    """One entry of a bulk status, read from the decoded JSON without a pydantic model: a 10,000-bill bulk's
    final status is 10,000 of these, made in one pass. Same attributes as :class:`BulkBillStatus` (``ERROR`` is
    an :class:`ErrorInfo`, made only for failed entries); ``raw`` is the entry as AcceptEasy sent it."""

    __slots__ = ("ATID", "ERROR", "Location", "PaymentReference", "SRRID", "STATUS", "raw")

    def __init__(self, raw: dict[str, Any]) -> None:
        get = raw.get
        self.raw = raw
        self.ATID: str | None = get("ATID")
        self.STATUS: str | None = get("STATUS")
        self.Location: str | None = get("Location")
        self.PaymentReference: str | None = get("PaymentReference")
        self.SRRID: str | None = get("SRRID")
        error = get("ERROR")
        self.ERROR: ErrorInfo | None = (
            None if error is None or error == "" else ErrorInfo(Message=error) if isinstance(error, str)
            else ErrorInfo.model_validate(error)
        )  # fmt: skip


def _plain_error(value: Any) -> bool:
    return value is None or type(value) is str or (
        type(value) is dict and value.keys() <= {"Message"} and type(value.get("Message", "")) in (str, type(None))
    )  # fmt: skip


def bulk_entries_from_bytes(content: bytes) -> tuple[dict[str, Any], list[BulkEntry]] | None:
    """A bulk status decoded once from its bytes (pydantic-core's reader), its entries as :class:`BulkEntry`:
    ``(status, entries)``. None when the answer has anything AcceptEasy does not document (another key, a
    number, another type), or is not JSON: the caller then reads it the exact way (Decimal numbers, the wire
    model's errors)."""
    try:
        data = pydantic_core.from_json(content)
    except ValueError:
        return None
    if type(data) is not dict or not data.keys() <= _STATUS_KEYS or not _plain_error(data.get("ERROR")):
        return None
    if type(data.get("STATUS", "")) is not str or type(data.get("BulkId", "")) is not str:
        return None
    bills = data.get("Bills")
    if bills is None:
        return data, []
    if type(bills) is not list:
        return None
    keys, text = _ENTRY_KEYS, str
    for raw in bills:
        if type(raw) is not dict or not raw.keys() <= keys:
            return None
        for key, value in raw.items():
            if type(value) is not text and (key != "ERROR" or not _plain_error(value)):
                return None
    return data, [BulkEntry(raw) for raw in bills]


def match_bulk(
    entries: Sequence[E],
    srrids: Sequence[str | None],
    refs: Sequence[Any],
    ref_of: Callable[[str | None], Any] = lambda ref: ref,
) -> tuple[dict[int, E], dict[int, list[E]]]:
    """Attribute bulk-status entries to inputs: ``(matched, ambiguous)`` by input index. Never by guess:

    1. by SRRID (billkit sends one with every bill; succeeded entries echo it);
    2. by position, only when the status lists exactly one entry per input and every entry *i* carries input
       *i*'s PaymentReference (and SRRID, where it has one): evidence that the provider kept the input order,
       which it does not promise (the vendor's own sample lists a failed entry first);
    3. by PaymentReference when it names exactly one unmatched input and one unmatched entry, or when k inputs
       and k entries share it and every one of those entries says the same (same STATUS and message), so the
       outcome does not depend on which is which.

    Inputs whose candidates disagree are returned in ``ambiguous`` with those candidates; inputs with no entry
    at all are in neither. ``refs`` are the inputs' references as ``ref_of`` gives them for an entry's
    PaymentReference (the references themselves, or their :func:`ref_key`).
    """
    matched: dict[int, E] = {}
    aligned = len(entries) == len(refs) and all(
        ref_of(e.PaymentReference) == refs[i] and (e.SRRID is None or srrids[i] == e.SRRID)
        for i, e in enumerate(entries)
    )
    if aligned:
        return dict(enumerate(entries)), {}
    by_srrid = {s: i for i, s in enumerate(srrids) if s}
    rest: list[tuple[int, E]] = []
    for pos, entry in enumerate(entries):
        index = by_srrid.get(entry.SRRID or "")
        if index is not None and index not in matched:
            matched[index] = entry
        else:
            rest.append((pos, entry))
    later = [entry for _, entry in rest]
    groups: dict[Any, list[E]] = {}
    for entry in later:
        groups.setdefault(ref_of(entry.PaymentReference), []).append(entry)
    ambiguous: dict[int, list[E]] = {}
    for ref, group in groups.items():
        inputs = [i for i, r in enumerate(refs) if r == ref and i not in matched]
        if not inputs:
            continue
        outcomes = {(e.STATUS, e.ERROR.Message if e.ERROR else None) for e in group}
        if len(group) == len(inputs) and len(outcomes) == 1:
            matched.update(zip(inputs, group, strict=True))
        else:
            for i in inputs:
                ambiguous[i] = group
    return matched, ambiguous


#: The transaction (payment) page of a bill as AcceptEasy's documents show it for the default domain
#: ([SER] examples: ``https://transaction.accepteasy.com/Landing?id={ATID}&detail=true``). **Unverified** as a rule:
#: the docs present it as a URL the API returns, and an AE Template may have a custom domain
#: (``https://pay.yourcompany.com/{ATID}``), so billkit derives a link from it only when asked
#: (``client.native.derive_payment_links(...)``).
DOCUMENTED_TRANSACTION_URL = "https://transaction.accepteasy.com/Landing?id={ATID}&detail=true"


def bulk_item_bill(entry: BulkEntry | BulkBillStatus, sent: Mapping[str, Any] | None, link_form: str | None) -> Bill:
    """The Bill of a succeeded bulk entry, without reading the bill: what the bulk status says (ATID, SRRID,
    PaymentReference, Location, ``CreationSucceeded``) and what billkit sent for it (``sent``, the request body
    AcceptEasy echoes in a bill: Description, Amount as an exact total, ExpiryDate, Address). Status is OPEN (a
    created bill is open until it counts down, is paid or expires; ``provider_status`` keeps the bulk's
    ``CreationSucceeded``). ``links`` has ``location`` and, when ``link_form`` is given, ``transaction_url`` made
    from the ATID. ShortURL, image links and CreationDate exist only in a read of the bill."""
    atid = entry.ATID
    links: dict[str, str] = {}
    if entry.Location:
        links["location"] = entry.Location
    if link_form is not None and atid:
        links["transaction_url"] = link_form.replace("{ATID}", atid)
    raw = entry.raw if isinstance(entry, BulkEntry) else entry.model_dump(mode="python", exclude_none=True)
    # every value below is checked already (billkit's own request, the status's strings): built without
    # validating again, so reading 10,000 items stays cheap
    if sent is None:
        return construct_checked(Bill, reference=entry.PaymentReference, provider=PROVIDER, provider_id=atid,
                                    status=BillStatus.OPEN, provider_status=entry.STATUS, links=links, raw=raw,
                                    provider_options=_NO_OPTIONS)  # fmt: skip
    cents = sent.get("Amount")
    total = Money(_CENT * cents, CURRENCY) if type(cents) is int else None
    expiry = sent.get("ExpiryDate")
    due = _date_of(expiry) if isinstance(expiry, str) else None
    address = sent.get("Address")
    party = None
    if isinstance(address, Mapping) and (address.get("Email") or address.get("PhoneNumber")):
        party = Party(email=address.get("Email") or None, phone=address.get("PhoneNumber") or None)
    return construct_checked(Bill, counterparty=party, reference=entry.PaymentReference or sent.get("PaymentReference"),
                                description=sent.get("Description"), due_date=due, total=total, provider=PROVIDER,
                                provider_id=atid, status=BillStatus.OPEN, provider_status=entry.STATUS,
                                amount_due=total, links=links, raw=raw, provider_options=_NO_OPTIONS)  # fmt: skip


@functools.lru_cache(maxsize=256)  # a bulk's bills mostly share an expiry
def _date_of(expiry: str) -> dt.date | None:
    try:
        return dt.date.fromisoformat(expiry[:10])
    except ValueError:
        return None


_CENT = Decimal("0.01")

_M = TypeVar("_M", bound=pydantic.BaseModel)
_DEFAULTS: dict[type[pydantic.BaseModel], dict[str, Any]] = {}


def construct_checked(cls: type[_M], **values: Any) -> _M:
    """``cls.model_construct(**values)`` for models without private attributes or extras, with the defaults read
    once per class (pydantic's own looks each default up, and copies it, per call: most of an item's cost). Every
    field whose default is mutable must be given."""
    defaults = _DEFAULTS.get(cls)
    if defaults is None:
        defaults = _DEFAULTS[cls] = {
            name: field.get_default(call_default_factory=True) for name, field in cls.model_fields.items()
        }
    made = cls.__new__(cls)
    object.__setattr__(made, "__dict__", {**defaults, **values})
    object.__setattr__(made, "__pydantic_fields_set__", set(values))
    object.__setattr__(made, "__pydantic_extra__", None)
    object.__setattr__(made, "__pydantic_private__", None)
    return made


_NO_OPTIONS: Mapping[str, Any] = MappingProxyType({})  # a read bill has none; shared, read-only

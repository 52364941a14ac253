"""BILL <-> the common model: the bill request, the bill answer, the status table and the error array.

Pure functions, no I/O. The client does the requests; everything it sends is built here and everything it
reads is interpreted here.

**Write side** (:func:`build_bill`): only payable bills (``direction=payable``); the counterparty's
``provider_id`` is the ``vendorId``; ``reference`` is the invoice number; ``issue_date`` the invoice date;
``due_date`` the due date; each line item becomes ``{amount, description}`` (quantity 1, as in BILL's own
examples) or ``{quantity, price, amount, description}``. BILL has no currency on a bill (it is the vendor's
``billCurrency``): the line items must share one currency, and the client checks it against the vendor.
``provider_options`` are merged last into the body (``purchaseOrderNumber``, ``classifications``,
``payFromChartOfAccountId``; per line: ``classifications``) and checked by the strict wire model. A common
field BILL cannot express (taxes, the counterparty's name or address, ...) raises
:class:`~billkit.errors.UnsupportedFeatureError`. Every problem is listed in one
:class:`~billkit.errors.ValidationError` before anything is sent.

**Status table** (:data:`PAYMENT_STATUS`): ``archived`` -> VOID (BILL's soft delete, checked first);
UNPAID -> OPEN; PARTIAL -> PARTIALLY_PAID; SCHEDULED -> OPEN (a scheduled payment has not moved money yet and
can still be cancelled: the bill is still owed, so it is not PAID, and it is created, so it is not PENDING);
PAID -> PAID; anything else (UNDEFINED, a value BILL adds later) -> UNKNOWN, with the raw string kept in
``provider_status``. The approval status does not change the billkit status (a DENIED bill can be
re-approved); it is in ``raw``, and :func:`approval_of` reads it through :data:`APPROVAL_STATUS` as an
:class:`ApprovalStatus` (an unknown value is UNKNOWN, its raw string kept).

**Vendors** (:func:`vendor_create`, :func:`vendor_update`, :func:`vendor_party`): a common :class:`Party` <-> BILL's
vendor, checked before anything is sent (see ``docs/providers/billcom.md``, "Vendors").
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Mapping, Sequence
from decimal import Decimal
from enum import Enum
from typing import Any

import pydantic

from billkit.errors import (
    APIError,
    AuthenticationError,
    BillkitError,
    BulkRejected,
    ConflictError,
    MoneyError,
    NotFoundError,
    PermissionDeniedError,
    Problem,
    RateLimitError,
    ServerError,
    UnsupportedFeatureError,
    ValidationError,
)
from billkit.isodates import datetime_from_iso
from billkit.models import Address, Bill, BillStatus, Direction, LineItem, Party, check_supported
from billkit.money import Money
from billkit.providers.billcom.wire import (
    BillCreate,
    BillResponse,
    ErrorEntry,
    VendorCreate,
    VendorResponse,
    VendorUpdate,
    parse_errors,
)
from billkit.transport import Response, json_problems

__all__ = [
    "APPROVAL_STATUS",
    "PAYMENT_STATUS",
    "PROVIDER",
    "SUPPORTED_FIELDS",
    "ApprovalStatus",
    "BillcomAPIError",
    "BillcomAuthenticationError",
    "BillcomBulkRejected",
    "BillcomConcurrencyLimitError",
    "BillcomConflictError",
    "BillcomError",
    "BillcomNotFoundError",
    "BillcomPermissionDeniedError",
    "BillcomRateLimitError",
    "BillcomServerError",
    "BillcomSessionError",
    "approval_of",
    "attribute_errors",
    "build_bill",
    "error_from_entries",
    "error_from_response",
    "how_to_check",
    "how_to_check_vendor",
    "status_of",
    "to_bill",
    "vendor_create",
    "vendor_party",
    "vendor_update",
]

PROVIDER = "billcom"

#: BILL's paymentStatus -> billkit's status (``archived`` wins over all of these: VOID).
PAYMENT_STATUS: dict[str, BillStatus] = {
    "UNPAID": BillStatus.OPEN,
    "PARTIAL": BillStatus.PARTIALLY_PAID,
    "SCHEDULED": BillStatus.OPEN,
    "PAID": BillStatus.PAID,
    "UNDEFINED": BillStatus.UNKNOWN,
}


class ApprovalStatus(str, Enum):
    """A BILL bill's ``approvalStatus`` (an open enum: a value BILL adds later reads as UNKNOWN, the raw string kept).

    It never changes the common :class:`~billkit.BillStatus`: an unapproved or DENIED bill is still owed (OPEN),
    and a DENIED bill can be approved later. BILL pays a bill through the API only once its approvals are complete
    (H), so :attr:`payable` tells whether a payment can be made now.
    """

    UNASSIGNED = "unassigned"  # no approval policy applies: payable as it is
    ASSIGNED = "assigned"  # approvers are assigned; none has acted yet
    APPROVING = "approving"  # some approvers have approved, others have not yet
    APPROVED = "approved"  # every approver approved: payable
    DENIED = "denied"  # an approver denied it: not payable until approved
    UNKNOWN = "unknown"  # UNDEFINED, absent, or a value billkit does not know

    @property
    def payable(self) -> bool:
        """True when BILL lets the bill be paid now (no approval needed, or every approval given)."""
        return self in (ApprovalStatus.UNASSIGNED, ApprovalStatus.APPROVED)

    @property
    def pending(self) -> bool:
        """True while approvals are awaited (ASSIGNED, APPROVING)."""
        return self in (ApprovalStatus.ASSIGNED, ApprovalStatus.APPROVING)


#: BILL's approvalStatus -> :class:`ApprovalStatus` (anything else, UNDEFINED included, is UNKNOWN)
APPROVAL_STATUS: dict[str, ApprovalStatus] = {
    "UNASSIGNED": ApprovalStatus.UNASSIGNED,
    "ASSIGNED": ApprovalStatus.ASSIGNED,
    "APPROVING": ApprovalStatus.APPROVING,
    "APPROVED": ApprovalStatus.APPROVED,
    "DENIED": ApprovalStatus.DENIED,
    "UNDEFINED": ApprovalStatus.UNKNOWN,
}


def approval_of(bill: Bill | BillResponse | Mapping[str, Any]) -> tuple[ApprovalStatus, str | None]:
    """A bill's approval state and BILL's own word for it (``approvalStatus``), from a common :class:`Bill` (its
    ``raw``), a :class:`BillResponse` or a raw answer. Never raises: an unknown value is UNKNOWN, kept raw."""
    raw: Any
    if isinstance(bill, BillResponse):
        raw = bill.approval_status
    elif isinstance(bill, Bill):
        raw = (bill.raw or {}).get("approvalStatus")
    else:
        raw = bill.get("approvalStatus")
    if not isinstance(raw, str) or not raw:
        return ApprovalStatus.UNKNOWN, None
    return APPROVAL_STATUS.get(raw.upper(), ApprovalStatus.UNKNOWN), raw


#: The common fields BILL can express (everything else the caller sets raises UnsupportedFeatureError).
SUPPORTED_FIELDS = (
    "direction",
    "counterparty",
    "counterparty.provider_id",
    "reference",
    "description",
    "issue_date",
    "due_date",
    "line_items",
    "line_items[].description",
    "line_items[].quantity",
    "line_items[].unit_price",
    "total",  # not sent (BILL sums the lines); checked against the lines
)

VENDOR_ID = re.compile(r"^009[0-9A-Za-z]{1,37}$")
MAX_TEXT = 4000
_CENT = Decimal("0.01")


def how_to_check(vendor_id: str | None, invoice_numbers: Sequence[str | None]) -> str:
    """What a person does when a create's outcome is unknown (BILL cannot filter on the invoice number)."""
    numbers = ", ".join(repr(n) for n in invoice_numbers if n) or "the invoice number"
    vendor = f"vendor {vendor_id}" if vendor_id else "each vendor"
    return (
        f"BILL has no idempotency key and cannot filter bills by invoice number: list the recent bills of {vendor} "
        f'(GET /v3/bills?filters=vendorId:eq:<id>,createdTime:gte:"<time of the attempt>", or '
        f"client.native.find_bills_by_invoice(vendor_id, invoice_number)) and look for invoice number {numbers} "
        "before creating it again."
    )


# -- write side -------------------------------------------------------------------------------------------


def _two_decimals(value: Decimal) -> bool:
    return value == value.quantize(_CENT)


def build_bill(bill: Bill) -> tuple[BillCreate, str | None]:
    """The ``POST /v3/bills`` body for ``bill`` and the currency its lines are in; raises on any problem.

    Raises :class:`UnsupportedFeatureError` for a receivable bill or a field BILL cannot express, else
    :class:`ValidationError` listing every problem (vendor id shape, missing or impossible dates, no line
    items, amounts with more than two decimals, no invoice number, texts over 4000 characters, an unknown
    ``provider_options`` key).
    """
    if bill.direction is not Direction.PAYABLE:
        raise UnsupportedFeatureError(
            PROVIDER, f"direction={bill.direction.value}",
            "BILL's bills are payables (bills you pay to a vendor); set direction='payable'",
        )  # fmt: skip
    check_supported(bill, PROVIDER, SUPPORTED_FIELDS)
    problems: list[Problem] = []
    vendor_id = bill.counterparty.provider_id if bill.counterparty else None
    if not vendor_id:
        problems.append(Problem("counterparty.provider_id", "the BILL vendorId is required (it begins with 009)"))
    elif not VENDOR_ID.match(vendor_id):
        problems.append(Problem("counterparty.provider_id", f"{vendor_id!r} is not a BILL vendorId (begins with 009)"))
    if not bill.reference:
        problems.append(Problem("reference", "the invoice number is required"))
    if bill.issue_date is None and "invoice" not in bill.provider_options:
        problems.append(Problem("issue_date", "the invoice date is required (yyyy-MM-dd)"))
    if bill.due_date is None and "dueDate" not in bill.provider_options:
        problems.append(Problem("due_date", "the due date is required (yyyy-MM-dd)"))
    if bill.description and len(bill.description) > MAX_TEXT:
        problems.append(Problem("description", f"at most {MAX_TEXT} characters ({len(bill.description)} given)"))
    if not bill.line_items:
        problems.append(Problem("line_items", "at least one line item is required"))
    currencies = {item.unit_price.currency for item in bill.line_items}
    if len(currencies) > 1:
        problems.append(Problem("line_items", f"all lines must share one currency, got {sorted(currencies)}"))
    currency = next(iter(currencies)) if len(currencies) == 1 else None

    lines: list[dict[str, Any]] = []
    for i, item in enumerate(bill.line_items):
        where = f"line_items[{i}]"
        price = item.unit_price.amount
        if not _two_decimals(price):
            problems.append(Problem(f"{where}.unit_price", f"{price} has more than two decimals (BILL's limit)"))
        amount = item.quantity * price
        if item.quantity <= 0:
            problems.append(Problem(f"{where}.quantity", "must be positive"))
        if _two_decimals(price) and not _two_decimals(amount):
            problems.append(Problem(f"{where}.quantity", f"quantity x price = {amount} has more than two decimals"))
        if len(item.description) > MAX_TEXT:
            problems.append(Problem(f"{where}.description", f"at most {MAX_TEXT} characters"))
        line: dict[str, Any] = {}
        if item.quantity == 1:
            line["amount"] = price
        else:
            line["quantity"] = item.quantity
            line["price"] = price
            line["amount"] = amount.quantize(_CENT) if _two_decimals(amount) else amount
        if item.description:
            line["description"] = item.description
        line.update(item.provider_options)
        lines.append(line)
    line_total = bill.line_total()
    if bill.line_items and line_total <= 0:
        problems.append(Problem("line_items", f"the bill's total {line_total} must be positive"))
    if bill.total is not None and currency is not None:
        if bill.total.currency != currency:
            problems.append(Problem("total", f"total is in {bill.total.currency}, the lines in {currency}"))
        elif bill.total.amount != line_total:
            problems.append(Problem("total", f"total {bill.total.amount} differs from the lines' sum {line_total}"))

    body: dict[str, Any] = {}
    if vendor_id:
        body["vendorId"] = vendor_id
    if bill.due_date is not None:
        body["dueDate"] = bill.due_date.isoformat()
    if bill.description:
        body["description"] = bill.description
    body["billLineItems"] = lines
    invoice: dict[str, Any] = {}
    if bill.reference:
        invoice["invoiceNumber"] = bill.reference
    if bill.issue_date is not None:
        invoice["invoiceDate"] = bill.issue_date.isoformat()
    body["invoice"] = invoice
    options = dict(bill.provider_options)
    body.update(options)
    try:
        request = BillCreate.model_validate(body)
    except pydantic.ValidationError as exc:
        option_keys = set(options) | {"billLineItems"}
        for err in exc.errors(include_url=False):
            loc = [str(p) for p in err["loc"]]
            if problems and loc and loc[0] not in option_keys:
                continue  # already reported in the common model's words
            if loc and loc[0] == "billLineItems" and len(loc) > 2 and not any(
                    loc[2] in li.provider_options for li in bill.line_items):  # fmt: skip
                continue
            prefix = "provider_options." if loc and loc[0] in options else "request."
            problems.append(Problem(prefix + ".".join(loc), _pydantic_message(err)))
        if not problems:  # pragma: no cover - every wire rule has a common-model twin above
            problems.append(Problem("request", str(exc)))
        raise ValidationError(problems, provider=PROVIDER) from None
    problems.extend(Problem(f"provider_options: {where}", why) for where, why in json_problems(request.to_json()))
    if problems:
        raise ValidationError(problems, provider=PROVIDER)
    return request, currency


def _pydantic_message(err: Any) -> str:
    inner = (err.get("ctx") or {}).get("error")
    return str(inner) if isinstance(inner, BaseException) else str(err["msg"])


# -- read side --------------------------------------------------------------------------------------------


def status_of(bill: BillResponse) -> tuple[BillStatus, str | None]:
    """billkit's status and the provider's own word for it (``paymentStatus``; archived bills are VOID)."""
    raw = bill.payment_status
    if bill.archived:
        return BillStatus.VOID, raw
    if raw is None:
        return BillStatus.UNKNOWN, None
    return PAYMENT_STATUS.get(raw.upper(), BillStatus.UNKNOWN), raw


def _date(value: str | None) -> dt.date | None:
    if not value:
        return None
    try:
        return dt.date.fromisoformat(value[:10])
    except ValueError:
        return None


def _timestamp(value: str | None) -> dt.datetime | None:
    if not value:
        return None
    text = value[:-1] + "+00:00" if value.endswith("Z") else value
    try:
        return datetime_from_iso(text)
    except ValueError:
        return None


def _money(value: Decimal | None, currency: str) -> Money | None:
    if value is None:
        return None
    try:
        return Money(value, currency)
    except MoneyError:
        return None


def to_bill(wire: BillResponse, currency: str, raw: Mapping[str, Any] | None = None) -> Bill:
    """The common Bill for a BILL answer. ``currency`` is the vendor's ``billCurrency`` (BILL's bills have none)."""
    status, provider_status = status_of(wire)
    lines: list[LineItem] = []
    for item in wire.bill_line_items:
        if item.quantity is not None and item.price is not None:
            quantity, price = item.quantity, item.price
        elif item.amount is not None:
            quantity, price = Decimal(1), item.amount
        else:
            continue
        try:
            lines.append(LineItem(description=item.description or "", quantity=quantity,
                                  unit_price=Money(price, currency)))  # fmt: skip
        except BillkitError:
            continue
    party = Party(provider_id=wire.vendor_id, name=wire.vendor_name) if wire.vendor_id else None
    return Bill(
        direction=Direction.PAYABLE,
        counterparty=party,
        reference=wire.invoice_number,
        description=wire.description,
        issue_date=_date(wire.invoice.invoice_date if wire.invoice else None),
        due_date=_date(wire.due_date),
        line_items=tuple(lines),
        total=_money(wire.amount, currency),
        provider=PROVIDER,
        provider_id=wire.id,
        status=status,
        provider_status=provider_status,
        amount_due=_money(wire.due_amount, currency),
        amount_paid=_money(wire.paid_amount, currency),
        created_at=_timestamp(wire.created_time),
        updated_at=_timestamp(wire.updated_time),
        raw=dict(raw) if raw is not None else wire.model_dump(by_alias=True, exclude_none=True),
    )


# -- vendors ----------------------------------------------------------------------------------------------

#: BILL's vendor field -> the common Party field it comes from (for error paths in the caller's words)
_PARTY_PATHS = {
    "name": "name",
    "email": "email",
    "phone": "phone",
    "address": "address",
    "address.line1": "address.line1",
    "address.line2": "address.line2",
    "address.city": "address.city",
    "address.stateOrProvince": "address.region",
    "address.zipOrPostalCode": "address.postal_code",
    "address.country": "address.country",
}
#: the Party fields a BILL vendor holds (tax_id has no documented v3 vendor field: it raises)
_PARTY_FIELDS = frozenset({"name", "email", "phone", "address", "provider_id", "provider_options"})


def how_to_check_vendor(name: str) -> str:
    """What a person does when a vendor create's outcome is unknown (BILL has no idempotency key for it)."""
    return (
        "BILL has no idempotency key for vendors: list the vendors created since the attempt "
        f"(client.native.find_vendors_by_name({name!r}, created_since=...), or GET /v3/vendors) and look for "
        f"{name!r} before creating it again."
    )


def _party_body(party: Party, *, only_set: bool) -> tuple[dict[str, Any], set[str]]:
    """The vendor fields of ``party`` (all, or only those the caller set) and the option keys merged last."""
    unsupported = sorted(f for f in party.model_fields_set if f not in _PARTY_FIELDS and getattr(party, f))
    if unsupported:
        raise UnsupportedFeatureError(PROVIDER, unsupported[0], "BILL's v3 vendor has no documented field for it; "
                                      "pass BILL's own field through provider_options")  # fmt: skip
    chosen = party.model_fields_set if only_set else _PARTY_FIELDS
    body: dict[str, Any] = {}
    for name in ("name", "email", "phone"):
        value = getattr(party, name)
        if name in chosen and value is not None:
            body[name] = value
    if "address" in chosen and party.address is not None:
        body["address"] = _address_body(party.address)
    options = dict(party.provider_options)
    body.update(options)
    return body, set(options)


def _address_body(address: Address) -> dict[str, Any]:
    country = address.country.upper() if isinstance(address.country, str) else address.country
    fields = {"line1": address.line1, "line2": address.line2, "city": address.city, "stateOrProvince": address.region,
              "zipOrPostalCode": address.postal_code, "country": country}  # fmt: skip
    return {k: v for k, v in fields.items() if v is not None}


def _wire_problems(exc: pydantic.ValidationError, options: set[str] | None) -> list[Problem]:
    """pydantic's errors as billkit problems: in the Party's words when the body came from a Party (``options`` is
    then the set of provider_options keys), else in BILL's field names."""
    problems: list[Problem] = []
    for err in exc.errors(include_url=False):
        loc = [str(p) for p in err["loc"]]
        wire_path = ".".join(loc) or "vendor"
        if options is None:
            path = wire_path
        elif loc and loc[0] in options:
            path = "provider_options." + wire_path
        else:
            path = _PARTY_PATHS.get(wire_path, "provider_options." + wire_path)
        message = "unknown field (BILL's wire models are strict on write)" if err["type"] == "extra_forbidden" else (
            _pydantic_message(err))  # fmt: skip
        problems.append(Problem(path, message))
    return problems


def vendor_create(vendor: VendorCreate | Mapping[str, Any] | Party) -> VendorCreate:
    """The ``POST /v3/vendors`` body for a :class:`Party`, a mapping in BILL's names, or a :class:`VendorCreate`.

    A Party maps ``name`` -> ``name``, ``email``, ``phone``, ``address`` (``line1``, ``line2``, ``city``,
    ``region`` -> ``stateOrProvince``, ``postal_code`` -> ``zipOrPostalCode``, ``country`` as ISO alpha-2), and
    ``provider_options`` merged last (``accountType``, ``billCurrency``, ``shortName``, ``accountNumber``,
    ``paymentInformation``, ``additionalInfo``...). ``tax_id`` raises :class:`UnsupportedFeatureError`; a Party
    that already has a ``provider_id`` is an existing vendor and is refused (update it instead). Every problem is
    listed in one :class:`ValidationError` (name 1 to 100 characters, shortName at most 40, accountType, e-mail
    shape, country and currency codes, unknown fields) before anything is sent.
    """
    if isinstance(vendor, VendorCreate):
        return vendor
    options: set[str] | None = None
    problems: list[Problem] = []
    if isinstance(vendor, Party):
        if vendor.provider_id:
            problems.append(Problem("provider_id", f"this party is already BILL vendor {vendor.provider_id}: "
                                    "update it with client.native.update_vendor(vendor_id, party)"))  # fmt: skip
        body, options = _party_body(vendor, only_set=False)
        if not vendor.name:
            problems.append(Problem("name", "the vendor's name is required (1 to 100 characters)"))
            body.pop("name", None)
    else:
        body = dict(vendor)
    try:
        request = VendorCreate.model_validate(body)
    except pydantic.ValidationError as exc:
        problems.extend(p for p in _wire_problems(exc, options) if p.field not in {q.field for q in problems})
        raise ValidationError(problems, provider=PROVIDER) from None
    if problems:
        raise ValidationError(problems, provider=PROVIDER)
    return request


def vendor_update(vendor_id: str, changes: VendorUpdate | Mapping[str, Any] | Party) -> VendorUpdate:
    """The ``PATCH /v3/vendors/{id}`` body: only what is given (for a Party, only the fields the caller set).

    Refused before anything is sent (one :class:`ValidationError`): a vendor id that does not begin with 009, a
    Party whose ``provider_id`` names another vendor, no change at all, ``paymentInformation`` (BILL moved bank
    details to ``/v3/vendors/{id}/bank-account``) and every rule of :func:`vendor_create` for the fields given.
    """
    problems: list[Problem] = []
    if not isinstance(vendor_id, str) or not VENDOR_ID.match(vendor_id):
        problems.append(Problem("vendor_id", f"{vendor_id!r} is not a BILL vendorId (begins with 009)"))
    options: set[str] | None = None
    if isinstance(changes, VendorUpdate):
        body = changes.to_json()
    elif isinstance(changes, Party):
        if changes.provider_id and changes.provider_id != vendor_id:
            problems.append(Problem("provider_id", f"the party is vendor {changes.provider_id}, not {vendor_id}"))
        body, options = _party_body(changes, only_set=True)
    else:
        body = dict(changes)
    if "paymentInformation" in body:
        where = "provider_options.paymentInformation" if options is not None else "paymentInformation"
        problems.append(Problem(where, "BILL does not change bank details with PATCH /v3/vendors/{id}: delete and "
                                "create them with /v3/vendors/{id}/bank-account"))  # fmt: skip
        body.pop("paymentInformation")
    if not body and not problems:
        problems.append(Problem("changes", "nothing to update"))
    try:
        request = VendorUpdate.model_validate(body)
    except pydantic.ValidationError as exc:
        problems.extend(_wire_problems(exc, options))
        raise ValidationError(problems, provider=PROVIDER) from None
    if problems:
        raise ValidationError(problems, provider=PROVIDER)
    return request


def vendor_party(vendor: VendorResponse) -> Party:
    """A BILL vendor as a common :class:`Party` (``provider_id`` is the vendorId, so it can be billed at once).

    Read leniently: an address field BILL sends that the common Address cannot hold stays in ``vendor`` (its extra
    fields are kept); a country or e-mail the common model would refuse is left out rather than raising.
    """
    address: Address | None = None
    if isinstance(vendor.address, Mapping):
        a = vendor.address
        fields = {"line1": a.get("line1"), "line2": a.get("line2"), "city": a.get("city"),
                  "region": a.get("stateOrProvince"), "postal_code": a.get("zipOrPostalCode"),
                  "country": a.get("country")}  # fmt: skip
        fields = {k: v for k, v in fields.items() if isinstance(v, str) and v}
        try:
            address = Address(**fields) if fields else None
        except ValidationError:
            address = None
    return Party(name=vendor.name, email=vendor.email, phone=vendor.phone, address=address, provider_id=vendor.id)


# -- errors -----------------------------------------------------------------------------------------------


class BillcomError:
    """Mixed into every APIError the BILL adapter raises: ``entries`` keeps BILL's whole error array."""

    entries: tuple[ErrorEntry, ...] = ()

    @property
    def codes(self) -> list[str]:
        return [e.code for e in self.entries if e.code]


class BillcomAPIError(BillcomError, APIError):
    """A BILL error with no more specific class (400 validation, 422 business rules)."""


class BillcomAuthenticationError(BillcomError, AuthenticationError):
    """401, ``BDC_1101`` (username or password) or ``BDC_1102`` (devKey, or the other environment's)."""


class BillcomSessionError(BillcomAuthenticationError):
    """``BDC_1109``: the session is invalid or expired. The adapter logs in again once and repeats the call."""


class BillcomPermissionDeniedError(BillcomError, PermissionDeniedError):
    """403 (``BDC_1361`` untrusted or expired MFA session, among others)."""


class BillcomNotFoundError(BillcomError, NotFoundError):
    """404: ``BDC_1205`` (no object with that id) or ``BDC_1121`` (unknown path)."""


class BillcomConflictError(BillcomError, ConflictError):
    """409."""


class BillcomRateLimitError(BillcomError, RateLimitError):
    """``BDC_1144``: the hourly limit (20,000 requests, or 200 logins, per devKey). Wait for the next hour."""


class BillcomConcurrencyLimitError(BillcomError, APIError):
    """``BDC_1322``: more than 3 requests in flight per devKey and organization. Refused before acting.

    Marked ``retryable`` so the transport retries it with backoff, a create included. It is not a
    :class:`RateLimitError` on a non-429 status on purpose: the shared transport raises such errors at once.
    """


class BillcomServerError(BillcomError, ServerError):
    """5xx."""


class BillcomBulkRejected(BillcomError, BulkRejected):
    """``POST /v3/bills/bulk`` refused whole: nothing of the batch was created.

    ``entries`` holds every error BILL returned (the faulty items' and the ``BDC_1246`` rollbacks');
    ``item_errors`` maps input index -> error only where the answer names the item unambiguously.
    """


_BY_STATUS: dict[int, type[APIError]] = {
    401: BillcomAuthenticationError,
    402: BillcomPermissionDeniedError,
    403: BillcomPermissionDeniedError,
    404: BillcomNotFoundError,
    409: BillcomConflictError,
    429: BillcomRateLimitError,
}


def _message(entries: Sequence[ErrorEntry], status: int) -> str:
    if not entries:
        return f"HTTP {status}"
    first = entries[0].message or "no message"
    rest = [str(e) for e in entries[1:]]
    return first + (f" (and {'; '.join(rest)})" if rest else "")


def error_from_entries(entries: Sequence[ErrorEntry], *, status_code: int, raw: Any = None,
                       request_id: str | None = None) -> APIError:  # fmt: skip
    """The typed error for BILL's error array, classified by code first, then by HTTP status."""
    codes = [e.code for e in entries if e.code]
    code = codes[0] if codes else None
    cls: type[APIError]
    retryable: bool | None = None  # None: the HTTP status decides
    if "BDC_1322" in codes:
        cls = BillcomRateLimitError if status_code == 429 else BillcomConcurrencyLimitError
        retryable = True
        code = "BDC_1322"
    elif "BDC_1144" in codes:
        cls, code = BillcomRateLimitError, "BDC_1144"
        retryable = False  # the hourly limit: never retried, whatever the status
    elif "BDC_1109" in codes:
        cls, code = BillcomSessionError, "BDC_1109"
    elif code in ("BDC_1101", "BDC_1102"):
        cls = BillcomAuthenticationError
    elif status_code >= 500:
        cls = BillcomServerError
    else:
        cls = _BY_STATUS.get(status_code, BillcomAPIError)
    kwargs: dict[str, Any] = {"provider": PROVIDER, "status_code": status_code, "code": code,
                              "request_id": request_id, "raw": raw, "retryable": retryable}  # fmt: skip
    message = _message(entries, status_code)
    err = cls(message, retry_after=None, **kwargs) if issubclass(cls, RateLimitError) else cls(message, **kwargs)
    assert isinstance(err, BillcomError)
    err.entries = tuple(entries)
    return err


def error_from_response(response: Response) -> APIError:
    """BILL's error array (``[{timestamp, code, severity, category, message}]``) as a typed APIError."""
    raw = response.json_or_none()
    entries = parse_errors(raw)
    if not entries and raw is None and response.content:
        entries = [ErrorEntry(message=response.text[:500])]
    err = error_from_entries(entries, status_code=response.status_code, raw=raw, request_id=response.request_id)
    if isinstance(err, RateLimitError) and err.retry_after is None:
        err.retry_after = response.retry_after
    return err


_ID_TOKEN = re.compile(r"[0-9A-Za-z]+")


def attribute_errors(entries: Sequence[ErrorEntry], items: Sequence[BillCreate], *, status_code: int,
                     ) -> dict[int, BillkitError]:  # fmt: skip
    """Per-item errors of a rejected bulk, only where BILL's answer names the item unambiguously.

    BILL does not promise how an error names its item (L). Two shapes are trusted: an id in the message that
    equals an item's ``vendorId`` (``BDC_1205`` "No data found for object with id <vendorId>.", which then
    concerns every item of that vendor: they all fail for the same reason), and a ``"<id> : message"``
    prefix naming exactly one item's invoice number or vendor. ``BDC_1246`` (rolled back because of another
    item) is never attributed: those items are innocent. Anything else stays unattributed (it is still in
    the BulkRejected's ``entries``).
    """
    by_vendor: dict[str, list[int]] = {}
    by_invoice: dict[str, list[int]] = {}
    for i, item in enumerate(items):
        by_vendor.setdefault(item.vendor_id, []).append(i)
        by_invoice.setdefault(item.invoice.invoice_number, []).append(i)
    out: dict[int, BillkitError] = {}
    for entry in entries:
        if entry.code == "BDC_1246" or not entry.message:
            continue
        hits: list[int] = []
        head, sep, _ = entry.message.partition(" : ")
        if sep and head.strip() in by_invoice and len(by_invoice[head.strip()]) == 1:
            hits = by_invoice[head.strip()]
        else:
            tokens = set(_ID_TOKEN.findall(entry.message))
            vendors = [v for v in by_vendor if v in tokens]
            if len(vendors) == 1:
                hits = by_vendor[vendors[0]]
        for index in hits:
            if index not in out:
                out[index] = error_from_entries([entry], status_code=status_code, raw=[entry.model_dump()])
    return out

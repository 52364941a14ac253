"""BILL v3 wire models: exactly what goes over the wire, with BILL's camelCase names.

* **Strict on write** (``extra="forbid"``): a request model refuses a field BILL does not know, so a typo in
  ``provider_options`` is a :class:`~billkit.errors.ValidationError` before anything is sent.
* **Lenient on read** (``extra="allow"``): every answer field but ``id`` is optional (live answers omit keys
  without a value), unknown fields are kept, and open enums (``paymentStatus``, ``approvalStatus``) are plain
  strings so a value BILL adds tomorrow survives.
* **Amounts are Decimal both ways**: answers are parsed with :func:`billkit.money.loads_decimal` (never through
  float) and requests are dumped with :func:`billkit.transport.dumps`, which writes Decimals exactly.
* Dates are ``yyyy-MM-dd`` strings on write (checked as real calendar dates); timestamps are kept as BILL's
  strings on read (``2024-12-15T22:53:15.127+00:00``) and parsed by the mapping.
* **Webhook subscriptions** (the webhooks API, see :mod:`billkit.providers.billcom.subscriptions`): the
  ``securityKey`` BILL returns once, when a subscription is created, is read as a :class:`pydantic.SecretStr`, so
  it shows as ``**********`` in a repr, a ``str()`` and a JSON dump; ``get_secret_value()`` gives it.
"""

from __future__ import annotations

import datetime as dt
import re
from decimal import Decimal
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator
from pydantic.alias_generators import to_camel

from billkit.money import CURRENCY_EXPONENTS

__all__ = [
    "VENDOR_ACCOUNT_TYPES",
    "VENDOR_NAME_MAX",
    "VENDOR_SHORT_NAME_MAX",
    "Approver",
    "BillClassifications",
    "BillCreate",
    "BillLineItemCreate",
    "BillLineItemResponse",
    "BillList",
    "BillResponse",
    "ErrorEntry",
    "EventNotification",
    "EventSpec",
    "InvoiceInfo",
    "LoginRequest",
    "LoginResponse",
    "SubscribedEvent",
    "Subscription",
    "SubscriptionPatch",
    "SubscriptionRequest",
    "SubscriptionStatus",
    "SubscriptionStatusInfo",
    "VendorAddress",
    "VendorCreate",
    "VendorList",
    "VendorResponse",
    "VendorUpdate",
    "check_bill_currency",
    "check_country",
    "check_date",
    "parse_errors",
]

_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")


def check_date(value: str) -> str:
    """``value`` if it is a real calendar date written ``yyyy-MM-dd``; else ``ValueError``."""
    if not isinstance(value, str) or not _DATE.match(value):
        raise ValueError(f"{value!r} is not a date written yyyy-MM-dd")
    try:
        dt.date.fromisoformat(value)
    except ValueError:
        raise ValueError(f"{value!r} is not a real calendar date") from None
    return value


class _Write(BaseModel):
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="forbid", frozen=True)

    def to_json(self) -> dict[str, Any]:
        """The request body: BILL's names, no null keys, Decimals kept (dumped exactly by the transport)."""
        return self.model_dump(by_alias=True, exclude_none=True, mode="python")


class _Read(BaseModel):
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="allow", frozen=True)


# -- requests ---------------------------------------------------------------------------------------------


class LoginRequest(_Write):
    """``POST /v3/login``. Every field is a secret or close to one: never logged, never in a repr."""

    username: str = Field(repr=False)
    password: str = Field(repr=False)
    organization_id: str = Field(repr=False)
    dev_key: str = Field(repr=False)


class BillClassifications(_Write):
    chart_of_account_id: str | None = None
    accounting_class_id: str | None = None
    department_id: str | None = None
    location_id: str | None = None
    item_id: str | None = None


class InvoiceInfo(_Write):
    invoice_number: str = Field(min_length=1)
    invoice_date: str

    @field_validator("invoice_date")
    @classmethod
    def _date(cls, value: str) -> str:
        return check_date(value)


class BillLineItemCreate(_Write):
    """A line: ``amount``, or ``quantity`` and ``price`` (when all three are set, BILL uses ``amount``)."""

    amount: Decimal | None = None
    quantity: Decimal | None = None
    price: Decimal | None = None
    description: str | None = Field(default=None, max_length=4000)
    classifications: BillClassifications | None = None


class BillCreate(_Write):
    """``POST /v3/bills`` (and one element of the ``POST /v3/bills/bulk`` array)."""

    vendor_id: str
    due_date: str
    bill_line_items: list[BillLineItemCreate] = Field(min_length=1)
    invoice: InvoiceInfo
    description: str | None = Field(default=None, max_length=4000)
    pay_from_chart_of_account_id: str | None = None
    classifications: BillClassifications | None = None
    purchase_order_number: str | None = None

    @field_validator("due_date")
    @classmethod
    def _date(cls, value: str) -> str:
        return check_date(value)


#: BILL's vendor ``accountType`` values (H: BILL's vendor guides)
VENDOR_ACCOUNT_TYPES = ("BUSINESS", "PERSON", "NONE")
#: BILL's limits on vendor texts (H: the create and update references): name 1 to 100, shortName at most 40
VENDOR_NAME_MAX = 100
VENDOR_SHORT_NAME_MAX = 40
_COUNTRY = re.compile(r"^[A-Z]{2}$")
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")


def check_country(value: str | None) -> str | None:
    """An ISO 3166-1 alpha-2 code (``US``), as BILL's v3 examples write it; else ``ValueError``.

    BILL's v3 reference does not spell the format out (L): its examples use ``"US"`` (its v2 API took country
    names). billkit sends alpha-2 only, so ``"USA"`` or ``"United States"`` is refused here, not guessed at.
    """
    if value is not None and not _COUNTRY.match(value):
        raise ValueError(f"{value!r} is not an ISO 3166-1 alpha-2 country code such as 'US' (BILL's v3 format)")
    return value


def check_bill_currency(value: str | None) -> str | None:
    """An ISO 4217 code billkit knows (BILL's ``billCurrency`` is an ISO 4217 enum); else ``ValueError``."""
    if value is not None and value not in CURRENCY_EXPONENTS:
        raise ValueError(f"{value!r} is not an ISO 4217 currency code billkit knows (such as 'USD' or 'EUR')")
    return value


def check_email(value: str | None) -> str | None:
    if value is not None and not _EMAIL.match(value):
        raise ValueError(f"{value!r} is not an e-mail address")
    return value


def check_account_type(value: str | None) -> str | None:
    if value is not None and value not in VENDOR_ACCOUNT_TYPES:
        raise ValueError(f"{value!r} is not one of {', '.join(VENDOR_ACCOUNT_TYPES)}")
    return value


class VendorAddress(_Write):
    """A vendor's address. BILL needs ``line1``, ``city``, ``zipOrPostalCode`` and ``country`` to pay by check or
    to invite the vendor to its network (H), not to create it, so none is required here."""

    line1: str | None = None
    line2: str | None = None
    city: str | None = None
    state_or_province: str | None = None
    zip_or_postal_code: str | None = None
    country: str | None = None

    @field_validator("country")
    @classmethod
    def _country(cls, value: str | None) -> str | None:
        return check_country(value)


class _VendorFields(_Write):
    """What a vendor create and a vendor update share, checked as BILL's references state them."""

    short_name: str | None = Field(default=None, max_length=VENDOR_SHORT_NAME_MAX)
    account_number: str | None = None
    account_type: str | None = None  # BUSINESS | PERSON | NONE
    email: str | None = None
    phone: str | None = None
    address: VendorAddress | None = None
    bill_currency: str | None = None
    additional_info: dict[str, Any] | None = None
    payment_purpose: dict[str, Any] | None = None  # international vendors (see BILL's configuration endpoints)
    regulatory_fields: list[dict[str, Any]] | None = None

    @field_validator("account_type")
    @classmethod
    def _account_type(cls, value: str | None) -> str | None:
        return check_account_type(value)

    @field_validator("email")
    @classmethod
    def _email(cls, value: str | None) -> str | None:
        return check_email(value)

    @field_validator("bill_currency")
    @classmethod
    def _currency(cls, value: str | None) -> str | None:
        return check_bill_currency(value)


class VendorCreate(_VendorFields):
    """``POST /v3/vendors``: ``name`` (1 to 100 characters) is required; the rest is optional.

    BILL's reference also marks ``address`` required on create, while one of its guides lists it only as needed to
    pay by check (the notes call the minimal set L): billkit leaves that to BILL, which refuses a vendor it cannot
    create with a 400 before acting, so nothing is created twice either way.
    """

    name: str = Field(min_length=1, max_length=VENDOR_NAME_MAX)
    payment_information: dict[str, Any] | None = None


class VendorUpdate(_VendorFields):
    """``PATCH /v3/vendors/{id}``: only the fields set are sent. BILL removed bank details from this endpoint
    (they have their own ``/v3/vendors/{id}/bank-account`` calls), so ``paymentInformation`` is refused."""

    name: str | None = Field(default=None, min_length=1, max_length=VENDOR_NAME_MAX)


class EventSpec(_Write):
    """One event of a subscription: ``{"type": "bill.created", "version": "1"}`` (both required by BILL)."""

    type: str = Field(min_length=1)
    version: str = Field(default="1", min_length=1)


class SubscriptionStatus(_Write):
    enabled: bool


class SubscriptionRequest(_Write):
    """``POST /v3/subscriptions`` and ``PUT /v3/subscriptions/{id}`` (every field required by BILL)."""

    name: str = Field(min_length=1)
    status: SubscriptionStatus
    events: list[EventSpec] = Field(min_length=1)
    notification_url: str = Field(min_length=1)


class SubscriptionPatch(_Write):
    """``PATCH /v3/subscriptions/{id}``: only the fields set are sent."""

    name: str | None = Field(default=None, min_length=1)
    status: SubscriptionStatus | None = None
    events: list[EventSpec] | None = Field(default=None, min_length=1)
    notification_url: str | None = Field(default=None, min_length=1)


# -- answers ----------------------------------------------------------------------------------------------


class LoginResponse(_Read):
    organization_id: str | None = None
    session_id: str = Field(repr=False)
    trusted: bool | None = None
    user_id: str | None = None


class BillLineItemResponse(_Read):
    id: str | None = None
    amount: Decimal | None = None
    quantity: Decimal | None = None
    price: Decimal | None = None
    description: str | None = None
    classifications: dict[str, Any] | None = None


class InvoiceResponse(_Read):
    invoice_number: str | None = None
    invoice_date: str | None = None  # a date-time in webhook payloads (M): kept as sent


class Approver(_Read):
    user_id: str | None = None
    status: str | None = None
    approver_order: int | None = None
    status_changed_time: str | None = None


class BillResponse(_Read):
    """A bill as BILL returns it. Only ``id`` is certain to be present."""

    id: str
    archived: bool | None = None
    vendor_id: str | None = None
    vendor_name: str | None = None
    amount: Decimal | None = None
    funding_amount: Decimal | None = None
    exchange_rate: Decimal | None = None
    paid_amount: Decimal | None = None
    due_amount: Decimal | None = None
    scheduled_amount: Decimal | None = None
    credit_amount: Decimal | None = None
    description: str | None = None
    due_date: str | None = None
    invoice: InvoiceResponse | None = None
    bill_line_items: list[BillLineItemResponse] = Field(default_factory=list)
    pay_from_chart_of_account_id: str | None = None
    payment_status: str | None = None  # open enum: PAID UNPAID PARTIAL SCHEDULED UNDEFINED ...
    approval_status: str | None = None  # open enum: UNASSIGNED ASSIGNED APPROVING APPROVED DENIED UNDEFINED
    approvers: list[Approver] = Field(default_factory=list)
    purchase_order_number: str | None = None
    created_time: str | None = None
    updated_time: str | None = None

    @property
    def line_item_ids(self) -> list[str]:
        return [item.id for item in self.bill_line_items if item.id]

    @property
    def invoice_number(self) -> str | None:
        return self.invoice.invoice_number if self.invoice else None


class BillList(_Read):
    """``GET /v3/bills``: pass ``nextPage`` back as ``page``; stop when it is absent (not when a page is empty)."""

    results: list[BillResponse] = Field(default_factory=list)
    next_page: str | None = None
    prev_page: str | None = None


class VendorResponse(_Read):
    """A vendor as BILL returns it. Only ``id`` is certain to be present; unknown fields are kept."""

    id: str
    archived: bool | None = None
    name: str | None = None
    short_name: str | None = None
    account_type: str | None = None
    email: str | None = None
    phone: str | None = None
    address: dict[str, Any] | None = None
    bill_currency: str | None = None
    created_time: str | None = None
    updated_time: str | None = None


class VendorList(_Read):
    results: list[VendorResponse] = Field(default_factory=list)
    next_page: str | None = None
    prev_page: str | None = None


class SubscribedEvent(_Read):
    type: str | None = None
    version: str | None = None


class SubscriptionStatusInfo(_Read):
    enabled: bool | None = None


class Subscription(_Read):
    """A webhook subscription as BILL returns it. Only ``id`` is certain to be present.

    ``security_key`` is set only in the answer to the create (BILL returns the ``securityKey`` once; later reads do
    not carry it): keep it, it is what :func:`billkit.providers.billcom.webhooks.verify` needs. It is a
    :class:`~pydantic.SecretStr`: ``**********`` in a repr, a ``str()`` and a JSON dump.
    """

    id: str
    name: str | None = None
    organization_id: str | None = None
    status: SubscriptionStatusInfo | None = None
    events: list[SubscribedEvent] = Field(default_factory=list)
    notification_url: str | None = None
    security_key: SecretStr | None = None
    created_time: str | None = None
    updated_time: str | None = None

    @property
    def enabled(self) -> bool | None:
        return self.status.enabled if self.status else None

    @property
    def event_types(self) -> list[str]:
        return [e.type for e in self.events if e.type]


class EventNotification(_Read):
    """One entry of a subscription's event history (``GET /v3/events/subscription/{id}``).

    BILL does not document the shape of an entry (L), so nothing is required and everything is kept;
    :attr:`event_id` and :attr:`event_type` look in the places a notification carries them (``metadata`` as in a
    delivery, or the top level).
    """

    metadata: dict[str, Any] | None = None

    def _find(self, *names: str) -> str | None:
        extra = self.model_extra or {}
        for where in (self.metadata or {}, extra):
            for name in names:
                value = where.get(name)
                if isinstance(value, str) and value:
                    return value
        return None

    @property
    def event_id(self) -> str | None:
        return self._find("eventId", "id")

    @property
    def event_type(self) -> str | None:
        return self._find("eventType", "type")


class ErrorEntry(_Read):
    """One element of BILL's error array. Field-validation entries may have no ``code`` (M)."""

    timestamp: str | None = None
    code: str | None = None
    severity: str | None = None  # ERROR | WARNING | INFORMATION
    category: str | None = None  # REQUEST | APPLICATION | SERVER | DOWNSTREAM
    message: str | None = None
    params: Any = None
    detail: Any = None
    help: Any = None

    def __str__(self) -> str:
        return f"{self.code or 'no code'}: {self.message or ''}".strip()


def parse_errors(body: Any) -> list[ErrorEntry]:
    """BILL's error array (or a lone object, or anything else) as entries; never raises."""
    items = body if isinstance(body, list) else [body] if isinstance(body, dict) else []
    entries: list[ErrorEntry] = []
    for item in items:
        if isinstance(item, dict):
            try:
                entries.append(ErrorEntry.model_validate(item))
            except ValueError:
                entries.append(ErrorEntry(message=str(item)))
    return entries

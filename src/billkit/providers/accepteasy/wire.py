"""AcceptEasy v2 wire models: the JSON bodies exactly as the vendor documents them.

Field names are the wire names (PascalCase, with the documented oddities: ``ATID``, ``SRRID``, ``STATUS``,
``ERROR``, ``AETemplateID``, ``CommunicationPlanId`` next to ``PartialPaymentPlanID``, and the lower-case
``filename`` / ``binary`` of an attachment), so a model prints and validates the way the provider spells it.

* **Requests** carry money in integer cents (``Amount: 1295`` is 12.95 EUR); a float or a bool is refused.
  Extra keys are kept and sent (they come from ``provider_options``, for fields only the Swagger file knows).
* **Responses** carry money in decimal euros (``Amount: 12.95``), parsed as ``Decimal`` (never through float).
  Every response field is optional, unknown fields are kept (``model_extra``), unknown status strings survive
  as plain strings, and ``ERROR`` may be ``null``, a string (2018-2019 docs) or ``{"Message": ...}`` (current
  docs): it is normalised to :class:`ErrorInfo` either way.
"""

from __future__ import annotations

import datetime as dt
import re
from decimal import Decimal
from typing import Any

from pydantic import BaseModel, ConfigDict, field_serializer, field_validator

from billkit.money import decimals

__all__ = [
    "APP_CODE",
    "Address",
    "AmountOption",
    "AmountRange",
    "AmountScheme",
    "AsyncAccepted",
    "AsyncStatus",
    "Attachment",
    "BillRequest",
    "BillResponse",
    "BillSearchResponse",
    "BounceInfo",
    "BounceSearchResponse",
    "BulkAccepted",
    "BulkBillStatus",
    "BulkRequest",
    "BulkStatus",
    "Communication",
    "ErrorInfo",
    "Event",
    "Extras",
    "Images",
    "Links",
    "MultiSelectOption",
    "NotificationURLs",
    "PatchRequest",
    "PatchResponse",
    "PaymentMethod",
    "PaymentSearchResponse",
    "SearchMetadata",
    "SubPaymentMethod",
    "format_datetime",
    "parse_datetime_text",
]

#: An AcceptEasy application error code inside a message (``APP0224 - Expiry date must be in the future.``).
APP_CODE = re.compile(r"\bAPP\d{4}\b")


def format_datetime(value: dt.datetime) -> str:
    """ISO-8601 in UTC with ``Z`` as the docs write it (``2018-04-01T09:00:00Z``); naive values are UTC."""
    if value.tzinfo is not None and value.utcoffset():
        value = value.astimezone(dt.timezone.utc)
    text = value.replace(tzinfo=None, microsecond=0).isoformat()
    if value.microsecond:
        text += f".{value.microsecond:06d}".rstrip("0")
    return text + "Z"


def parse_datetime_text(value: Any) -> Any:
    """Accept 7-digit fractions (``11:10:17.7245913Z``) that Python's parser refuses: keep 6 digits."""
    if isinstance(value, str):
        match = re.match(r"^(.*T\d\d:\d\d:\d\d\.\d{6})\d+(.*)$", value)
        if match:
            return match.group(1) + match.group(2)
    return value


class _Wire(BaseModel):
    """Lenient base: unknown fields are kept, nothing is coerced silently into another meaning."""

    model_config = ConfigDict(extra="allow", frozen=True)

    def to_json(self) -> dict[str, Any]:
        """The body to send: wire names, ``None`` left out, datetimes as ``...Z`` strings."""
        result: dict[str, Any] = _clean(self.model_dump(mode="python", exclude_none=True))
        return result


def _clean(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _clean(v) for k, v in value.items() if v is not None}
    if isinstance(value, (list, tuple)):
        return [_clean(v) for v in value]
    if isinstance(value, dt.datetime):
        return format_datetime(value)
    return value


def _cents(value: Any, field: str) -> Any:
    if isinstance(value, (bool, float)):
        raise ValueError(f"{field} is in integer cents; got {value!r} (use an int: 1295 for 12.95 EUR)")
    if isinstance(value, Decimal):
        if not value.is_finite() or (value and value.adjusted() > 12):
            raise ValueError(f"{field} is in integer cents; got {value}, not a finite amount below 10^13 cents")
        if decimals(value):
            raise ValueError(f"{field} is in integer cents; got {value} with a fraction")
        return int(value)
    return value


# -- request side ------------------------------------------------------------------------------------------


class Address(_Wire):
    Email: str | None = None
    PhoneNumber: str | None = None


_Address = Address


class Communication(_Wire):
    """One scheduled e-mail, text or PDF (``Channel``: ``Email`` | ``Text`` | ``PDF``)."""

    Channel: str | None = None
    Template: str | None = None
    ScheduledDate: dt.datetime | None = None
    PaymentStatus: str | None = None
    MandateStatus: str | None = None
    MessageStatus: str | None = None

    @field_validator("ScheduledDate", mode="before")
    @classmethod
    def _date(cls, value: Any) -> Any:
        return parse_datetime_text(value)


_Communication = Communication


class Attachment(_Wire):
    """A PDF attached to every e-mail of the record (lower-case keys, as documented)."""

    filename: str
    binary: str


_Attachment = Attachment


class AmountOption(_Wire):
    Amount: int
    Label: str | None = None

    @field_validator("Amount", mode="before")
    @classmethod
    def _amount(cls, value: Any) -> Any:
        return _cents(value, "AmountScheme.List[].Amount")


class AmountRange(_Wire):
    MinimumAmount: int | None = None
    MaximumAmount: int | None = None

    @field_validator("MinimumAmount", "MaximumAmount", mode="before")
    @classmethod
    def _amount(cls, value: Any) -> Any:
        return _cents(value, "AmountScheme.Range")


class MultiSelectOption(_Wire):
    Label: str | None = None
    Amount: int
    PaymentReference: str | None = None

    @field_validator("Amount", mode="before")
    @classmethod
    def _amount(cls, value: Any) -> Any:
        return _cents(value, "AmountScheme.MultiSelectList[].Amount")


class AmountScheme(_Wire):
    List: list[AmountOption] | None = None
    Range: AmountRange | None = None
    MultiSelectList: list[MultiSelectOption] | None = None


_AmountScheme = AmountScheme


class Extras(_Wire):
    ReturnBannerOpenURL: str | None = None
    ReturnBannerPaidURL: str | None = None


_Extras = Extras


class NotificationURLs(_Wire):
    PaidURL: str | None = None


_NotificationURLs = NotificationURLs


class BillRequest(_Wire):
    """The body of ``POST /v2/Bill`` (also ``/v2/Bill/async`` and each element of a bulk's ``Bills``)."""

    PaymentReference: str
    Description: str
    Amount: int
    ExpiryDate: dt.datetime | None = None
    SRRID: str | None = None
    AETemplateID: str | None = None
    CountdownDays: int | None = None
    Address: _Address | None = None
    Communication: list[_Communication] | None = None
    CommunicationPlanId: str | None = None
    RecordData: dict[str, str] | None = None
    Attachment: _Attachment | None = None
    AmountScheme: _AmountScheme | None = None
    PartialPaymentPlanID: str | None = None
    Extras: _Extras | None = None
    NotificationURLs: _NotificationURLs | None = None

    @field_validator("Amount", mode="before")
    @classmethod
    def _amount(cls, value: Any) -> Any:
        return _cents(value, "Amount")

    @field_validator("ExpiryDate", mode="before")
    @classmethod
    def _expiry(cls, value: Any) -> Any:
        return parse_datetime_text(value)

    @field_serializer("ExpiryDate")
    def _ser_expiry(self, value: dt.datetime | None) -> str | None:
        return None if value is None else format_datetime(value)


class BulkRequest(_Wire):
    """The body of ``POST /v2/Bill/bulk``."""

    Bills: list[BillRequest]


class PatchRequest(_Wire):
    """The body of ``PATCH /v2/Bill/{ATID}``: the address, and/or the status of an open bill."""

    Address: _Address | None = None
    Status: str | None = None


# -- response side -----------------------------------------------------------------------------------------


class ErrorInfo(_Wire):
    """The ``ERROR`` of a status, bulk entry or webhook; ``code`` is the APP code found in the message."""

    Message: str | None = None

    @property
    def code(self) -> str | None:
        match = APP_CODE.search(self.Message or "")
        return match.group(0) if match else None


def _error(value: Any) -> Any:
    if value is None or value == "":
        return None
    if isinstance(value, str):
        return {"Message": value}
    return value


class Images(_Wire):
    ImageURL1: str | None = None
    ImageURL2: str | None = None
    Button: str | None = None


_Images = Images


class Links(_Wire):
    TransactionURL: str | None = None
    ShortURL: str | None = None
    Images: _Images | None = None


_Links = Links


class Event(_Wire):
    """A record event (``Type``: View, Click, Attempt, Payment). The containing property's name is undocumented."""

    Type: str | None = None
    DateTime: dt.datetime | None = None
    Status: str | None = None
    UserAgent: str | None = None
    Ip: str | None = None
    PaymentMethodId: str | None = None
    PaymentMethodName: str | None = None
    SubPaymentMethodId: str | None = None

    @field_validator("DateTime", mode="before")
    @classmethod
    def _date(cls, value: Any) -> Any:
        return parse_datetime_text(value)


class BounceInfo(_Wire):
    DateReceived: dt.datetime | None = None
    Message: str | None = None
    StatusCode: str | int | None = None
    CommunicationID: str | None = None

    @field_validator("DateReceived", mode="before")
    @classmethod
    def _date(cls, value: Any) -> Any:
        return parse_datetime_text(value)


class BillResponse(_Wire):
    """A bill as AcceptEasy returns it (sync create, GET, PATCH, search). Amounts are decimal euros."""

    ATID: str | None = None
    SRRID: str | None = None
    AETemplateID: str | None = None
    PaymentReference: str | None = None
    Amount: Decimal | None = None
    Description: str | None = None
    ExpiryDate: dt.datetime | None = None
    CreationDate: dt.datetime | None = None
    PendingPaymentDate: dt.datetime | None = None
    Status: str | None = None
    CountdownDays: int | None = None
    Address: _Address | None = None
    Communication: list[dict[str, Any]] | None = None
    CommunicationPlanId: str | None = None
    RecordData: dict[str, Any] | None = None
    Links: _Links | None = None
    Events: list[Event] | None = None
    Bounce: BounceInfo | None = None

    @field_validator("ExpiryDate", "CreationDate", "PendingPaymentDate", mode="before")
    @classmethod
    def _dates(cls, value: Any) -> Any:
        return parse_datetime_text(value)

    @field_validator("Amount", mode="before")
    @classmethod
    def _amount(cls, value: Any) -> Any:
        if isinstance(value, float):  # only when a caller parsed JSON through float; keep its shortest repr
            return Decimal(repr(value))
        return value

    @field_validator("Address", mode="before")
    @classmethod
    def _address(cls, value: Any) -> Any:
        return value or None


class AsyncAccepted(_Wire):
    """The 202 answer of ``POST /v2/Bill/async``."""

    ATID: str


class AsyncStatus(_Wire):
    """``GET /v2/Bill/{ATID}/status``: ``STATUS`` is Processing, CreationSucceeded or CreationFailed.

    The same flat shape is the body of the create, paid and bounce webhooks (``STATUS`` Paid / Bounced).
    """

    ATID: str | None = None
    STATUS: str | None = None
    PaymentReference: str | None = None
    SRRID: str | None = None
    Location: str | None = None
    ERROR: ErrorInfo | None = None

    @field_validator("ERROR", mode="before")
    @classmethod
    def _err(cls, value: Any) -> Any:
        return _error(value)


class BulkAccepted(_Wire):
    """The answer of ``POST /v2/Bill/bulk``."""

    BulkId: str


class BulkBillStatus(_Wire):
    """One entry of a bulk status: failed entries carry ``ERROR`` and no ``SRRID`` or ``Location``."""

    ATID: str | None = None
    STATUS: str | None = None
    Location: str | None = None
    PaymentReference: str | None = None
    SRRID: str | None = None
    ERROR: ErrorInfo | None = None

    @field_validator("ERROR", mode="before")
    @classmethod
    def _err(cls, value: Any) -> Any:
        return _error(value)


class BulkStatus(_Wire):
    """``GET /v2/Bill/bulk/{BulkId}/status`` and the bulk webhook: Processing, ProcessingCompleted or
    CreationFailed (the whole job failed)."""

    BulkId: str | None = None
    STATUS: str | None = None
    Bills: list[BulkBillStatus] | None = None
    ERROR: ErrorInfo | None = None

    @field_validator("ERROR", mode="before")
    @classmethod
    def _err(cls, value: Any) -> Any:
        return _error(value)


class SearchMetadata(_Wire):
    """Paging of a search: ``NextResults`` is a ready query string (``?count=50&page=2&...``) or absent."""

    CompletedIn: Decimal | None = None
    Count: int | None = None
    Page: int | None = None
    TotalNumberOfResults: int | None = None
    NextResults: str | None = None


_SearchMetadata = SearchMetadata


class BillSearchResponse(_Wire):
    """``GET /v2/Search/Bill``."""

    Bills: list[BillResponse] | None = None
    SearchMetadata: _SearchMetadata | None = None


class PaymentSearchResponse(_Wire):
    """``GET /v2/Search/Payment``. Its schema is undocumented ("see Swagger"): billkit reads it like the other
    searches (``Bills`` / ``Mandates`` / ``SearchMetadata``) and keeps anything else in ``model_extra``."""

    Bills: list[BillResponse] | None = None
    Mandates: list[dict[str, Any]] | None = None
    SearchMetadata: _SearchMetadata | None = None


class BounceSearchResponse(_Wire):
    """``GET /v2/Search/Bounces``: records with their ``Bounce``."""

    Bills: list[BillResponse] | None = None
    Mandates: list[dict[str, Any]] | None = None
    SearchMetadata: _SearchMetadata | None = None


class PatchResponse(_Wire):
    """``PATCH /v2/Bill/{ATID}``: ``{"Status": "Succeeded", "Bill": {...}}`` (other Status values undocumented)."""

    Status: str | None = None
    Bill: BillResponse | None = None


class SubPaymentMethod(_Wire):
    SubPaymentMethodId: str | None = None
    SubPaymentMethodName: str | None = None


class PaymentMethod(_Wire):
    """One entry of ``GET /v2/Bill/{ATID}/PaymentMethods``."""

    PaymentMethodId: str | None = None
    PaymentMethodName: str | None = None
    PaymentLogo: str | None = None
    SubPaymentMethods: list[SubPaymentMethod] | None = None

"""Facturapi v2 wire models: the JSON bodies with Facturapi's own field names (snake_case, SAT codes as strings).

* **Requests** are strict: money and rates are ``Decimal`` (a float or a bool is refused, so nothing is rounded
  on the way), codes are strings, ``None`` is left out of the body. Extra keys are allowed and sent: they come
  from ``provider_options``, for the fields of the official OpenAPI file that billkit does not type (complements,
  addenda, ``pdf_options``, ...). The income invoice (type ``I``) is the one billkit builds.
* **Responses** are lenient: every field is optional, unknown fields are kept (``model_extra``), ``status`` and
  ``cancellation_status`` are open strings (``failed`` arrived in 2024, ``verifying`` in 2026), ``folio_number``
  may be an int or a string, ``code`` in an error may be a string, an int or missing, and dates stay strings
  (the docs show ``stamp.date`` without a zone) until :func:`parse_datetime` reads them without ever raising.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

import pydantic
from pydantic import BaseModel, ConfigDict, Field, field_validator

from billkit.isodates import datetime_from_iso

__all__ = [
    "AddressInput",
    "Customer",
    "CustomerAddress",
    "CustomerInput",
    "ErrorBody",
    "ErrorDetail",
    "EventData",
    "Invoice",
    "InvoiceItem",
    "InvoiceProduct",
    "InvoiceRequest",
    "ItemInput",
    "ProductInput",
    "ResourceMessage",
    "SearchResult",
    "Stamp",
    "TaxInput",
    "WebhookEvent",
    "parse_datetime",
]


def parse_datetime(value: Any) -> dt.datetime | None:
    """An ISO-8601 date-time as Facturapi writes it (``...Z``, an offset, or none: then UTC), else ``None``."""
    if not isinstance(value, str) or not value:
        return None
    text = value.strip().replace("Z", "+00:00").replace("z", "+00:00")
    try:
        parsed = datetime_from_iso(text)
    except ValueError:
        return None
    return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=dt.timezone.utc)


def _no_float(value: Any) -> Any:
    if isinstance(value, (float, bool)):
        raise ValueError("a float or bool is not an exact amount; use Decimal or a decimal string")
    return value


class _Request(BaseModel):
    """Strict write side: declared fields are validated, extra keys (provider options) are kept and sent."""

    model_config = ConfigDict(extra="allow", frozen=True)

    def to_json(self) -> dict[str, Any]:
        """The body to send: wire names, ``None`` left out, Decimals kept exact."""
        return self.model_dump(mode="python", exclude_none=True)


class _Response(BaseModel):
    """Lenient read side: everything optional, unknown fields kept, a bare number where a code string belongs
    (``payment_form: 6`` in some of the spec's own examples) read as that string."""

    model_config = ConfigDict(extra="allow", frozen=True, coerce_numbers_to_str=True)


# -- requests --------------------------------------------------------------------------------------------


class AddressInput(_Request):
    zip: str
    street: str | None = None
    exterior: str | None = None
    interior: str | None = None
    neighborhood: str | None = None
    city: str | None = None
    municipality: str | None = None
    state: str | None = None
    country: str | None = Field(default=None, description="ISO 3166-1 alpha-3; Facturapi's default is MEX")


class CustomerInput(_Request):
    """``CustomerCreateInput``: an inline customer on an invoice, or ``POST /customers``."""

    legal_name: str
    tax_id: str
    tax_system: str
    address: AddressInput
    email: str | None = None
    phone: str | None = None


class TaxInput(_Request):
    """``BaseTax``: ``rate`` is a fraction (``0.16``); ``factor`` Tasa, Cuota or Exento."""

    type: str = "IVA"
    rate: Decimal
    factor: str | None = None
    withholding: bool | None = None
    ieps_mode: str | None = None

    _rate = field_validator("rate", mode="before")(_no_float)


class ProductInput(_Request):
    description: str
    product_key: str
    price: Decimal
    tax_included: bool | None = None
    taxability: str | None = None
    taxes: list[TaxInput] | None = None
    unit_key: str | None = None
    unit_name: str | None = None
    sku: str | None = None

    _price = field_validator("price", mode="before")(_no_float)


class ItemInput(_Request):
    quantity: Decimal | None = None
    discount: Decimal | None = None
    product: ProductInput | str

    _numbers = field_validator("quantity", "discount", mode="before")(_no_float)


class InvoiceRequest(_Request):
    """The income invoice body of ``POST /invoices`` (``InvoiceIngresoInput``)."""

    customer: CustomerInput | str
    items: list[ItemInput]
    payment_form: str
    payment_method: str | None = None
    use: str | None = None
    type: str | None = None
    currency: str | None = None
    exchange: Decimal | None = None
    conditions: str | None = None
    date: str | None = None
    series: str | None = None
    folio_number: int | None = None
    external_id: str | None = None
    idempotency_key: str | None = None

    _exchange = field_validator("exchange", mode="before")(_no_float)


# -- responses -------------------------------------------------------------------------------------------


class CustomerAddress(_Response):
    zip: str | None = None
    street: str | None = None
    city: str | None = None
    state: str | None = None
    country: str | None = None


class Customer(_Response):
    """``Customer`` (and the ``CustomerInfo`` embedded in an invoice)."""

    id: str | None = None
    created_at: str | None = None
    livemode: bool | None = None
    legal_name: str | None = None
    tax_id: str | None = None
    tax_system: str | None = None
    email: str | None = None
    phone: str | None = None
    address: CustomerAddress | None = None


class InvoiceProduct(_Response):
    description: str | None = None
    product_key: str | None = None
    price: Decimal | None = None
    tax_included: bool | None = None
    taxes: list[dict[str, Any]] | None = None


class InvoiceItem(_Response):
    quantity: Decimal | None = None
    discount: Decimal | None = None
    product: InvoiceProduct | str | None = None


class Stamp(_Response):
    signature: str | None = None
    date: str | None = None
    sat_cert_number: str | None = None
    sat_signature: str | None = None


class Invoice(_Response):
    """``Invoice``: ``uuid``, ``stamp``, ``verification_url`` and ``folio_number`` are null until stamped."""

    id: str | None = None
    created_at: str | None = None
    livemode: bool | None = None
    status: str | None = None
    cancellation_status: str | None = None
    canceled_at: str | None = None
    verification_url: str | None = None
    date: str | None = None
    type: str | None = None
    customer: Customer | str | None = None
    total: Decimal | None = None
    amount_due: Decimal | None = None
    uuid: str | None = None
    folio_number: int | str | None = None
    series: str | None = None
    external_id: str | None = None
    idempotency_key: str | None = None
    payment_form: str | None = None
    payment_method: str | None = None
    use: str | None = None
    currency: str | None = None
    exchange: Decimal | None = None
    items: list[InvoiceItem] | None = None
    stamp: Stamp | None = None

    @field_validator("total", "amount_due", "exchange", mode="before")
    @classmethod
    def _lenient_number(cls, value: Any) -> Any:
        # numbers arrive as Decimal (billkit's JSON); a provider that sends "12.50" is read too; anything else
        # (a bool, an object) is dropped rather than failing the whole invoice: it stays in ``raw``
        if isinstance(value, bool) or not isinstance(value, (int, Decimal, str)):
            return None
        try:
            return Decimal(value) if isinstance(value, str) else value
        except ArithmeticError:
            return None


class SearchResult(_Response):
    """A page of a list: page mode (``page``, ``total_pages``) or cursor mode (``next_cursor``)."""

    page: int | None = None
    total_pages: int | None = None
    total_results: int | None = None
    next_cursor: str | None = None
    previous_cursor: str | None = None
    totals_are_capped: bool | None = None
    data: list[dict[str, Any]] = Field(default_factory=list)


class ErrorDetail(_Response):
    message: str | None = None
    code: str | int | None = None
    source: str | None = None
    location: str | None = None
    path: str | None = None


class ErrorBody(_Response):
    """``GenericError``. ``message`` is Spanish and may change: branch on ``code``."""

    ok: bool | None = None
    message: str | None = None
    status: int | None = None
    code: str | int | None = None
    location: str | None = None
    path: str | None = None
    errors: list[ErrorDetail] | None = None


class ResourceMessage(_Response):
    """One ``related_resource_messages`` entry of an event (why async stamping failed)."""

    resource_type: str | None = None
    resource_id: str | None = None
    source: str | None = None
    severity: str | None = None
    message: str | None = None
    created_at: str | None = None


class EventData(_Response):
    type: str | None = None
    object: dict[str, Any] = Field(default_factory=dict)


class WebhookEvent(_Response):
    """``EventBase``: ``type`` such as ``invoice.status_updated``; ``data.object`` the full resource."""

    id: str | None = None
    created_at: str | None = None
    livemode: bool | None = None
    organization: str | None = None
    type: str | None = None
    data: EventData = Field(default_factory=EventData)
    related_resource_messages: list[ResourceMessage] = Field(default_factory=list)

    @property
    def invoice(self) -> Invoice | None:
        """The invoice the event is about (``data.object``), when it is one."""
        if self.data.type not in (None, "invoice") or not self.data.object:
            return None
        try:
            return Invoice.model_validate(self.data.object)
        except pydantic.ValidationError:
            return None  # an object of another shape is not an invoice billkit can read (it stays in data.object)

    def error_message(self) -> str | None:
        """The error message(s) Facturapi attached (async stamping or recovery failures)."""
        texts = [m.message for m in self.related_resource_messages if m.message and m.severity in (None, "error")]
        return "; ".join(texts) or None

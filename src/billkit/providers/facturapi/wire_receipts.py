"""Facturapi v2 wire models of e-receipts ("recibos", notes of sale a customer may later invoice themselves) and of
the invoices made from them: one receipt to a customer, several receipts by ``key``, and the global invoice of a
period's open receipts.

The same rules as :mod:`billkit.providers.facturapi.wire`: requests are strict (amounts are ``Decimal``, a float or
a bool is refused, ``None`` is left out of the body), responses are lenient (every field optional, unknown fields
kept in ``model_extra``, numbers read as ``Decimal``). Schema names are the spec's: ``ReceiptInput``,
``ReceiptAssignCustomerInput``, ``InvoiceReceiptInput``, ``ToInvoiceInput``, ``ToInvoicePreviewInput``,
``GlobalInvoiceInput``, ``Receipt``, ``ToInvoiceSummary``.

``Receipt.status`` is an open string (the spec's enum is ``open``, ``canceled``, ``invoiced_to_customer``,
``invoiced_globally``); :attr:`Receipt.receipt_status` reads it as :class:`ReceiptStatus`, ``UNKNOWN`` for any other
value (the raw string stays in ``status``).
"""

from __future__ import annotations

import enum
from decimal import Decimal
from typing import Any, Literal

from pydantic import field_validator

from billkit.errors import BillkitError
from billkit.money import Money
from billkit.providers.facturapi.wire import (
    AddressInput,
    Customer,
    CustomerInput,
    InvoiceItem,
    ItemInput,
    _no_float,
    _Request,
    _Response,
)

__all__ = [
    "GLOBAL_PERIODICITIES",
    "GlobalInvoiceRequest",
    "Receipt",
    "ReceiptCustomerRequest",
    "ReceiptInvoiceRequest",
    "ReceiptRequest",
    "ReceiptStatus",
    "ToInvoicePreviewRequest",
    "ToInvoiceRequest",
    "ToInvoiceSummary",
]

#: ``GlobalInvoiceInput.periodicity``
GLOBAL_PERIODICITIES = ("day", "week", "fortnight", "month", "two_months")
Periodicity = Literal["day", "week", "fortnight", "month", "two_months"]


def _lenient_decimal(value: Any) -> Any:
    """A response number as Decimal; a bool or an object is dropped (it stays in the raw body)."""
    if isinstance(value, bool) or not isinstance(value, (int, Decimal, str)):
        return None
    try:
        return Decimal(value) if isinstance(value, str) else value
    except ArithmeticError:
        return None


class ReceiptStatus(str, enum.Enum):
    """A receipt's ``status``: ``open`` (may still be invoiced), ``canceled``, ``invoiced_to_customer`` (one invoice
    to a customer: the self-invoice portal or ``invoice_receipt``), ``invoiced_globally`` (in a global invoice);
    ``UNKNOWN`` for a value Facturapi adds later."""

    OPEN = "open"
    CANCELED = "canceled"
    INVOICED_TO_CUSTOMER = "invoiced_to_customer"
    INVOICED_GLOBALLY = "invoiced_globally"
    UNKNOWN = "unknown"

    @classmethod
    def of(cls, raw: str | None) -> ReceiptStatus:
        """The status of a raw string (never raises)."""
        text = (raw or "").strip().lower()
        if text == cls.UNKNOWN.value:
            return cls.UNKNOWN
        try:
            return cls(text)
        except ValueError:
            return cls.UNKNOWN


# -- requests ----------------------------------------------------------------------------------------------------


class ReceiptRequest(_Request):
    """``ReceiptInput``: the body of ``POST /receipts`` (``items`` at most 5,000, ``payment_form`` required)."""

    items: list[ItemInput]
    payment_form: str
    customer: CustomerInput | str | None = None
    address: AddressInput | None = None
    date: str | None = None
    folio_number: int | None = None
    currency: str | None = None
    exchange: Decimal | None = None
    branch: str | None = None
    external_id: str | None = None
    idempotency_key: str | None = None

    _exchange = field_validator("exchange", mode="before")(_no_float)


class ReceiptCustomerRequest(_Request):
    """``ReceiptAssignCustomerInput``: the body of ``PUT /receipts/{id}``."""

    customer: CustomerInput | str


class ReceiptInvoiceRequest(_Request):
    """``InvoiceReceiptInput``: the body of ``POST /receipts/{id}/invoice`` (no ``idempotency_key`` in the spec)."""

    customer: CustomerInput | str | None = None
    use: str | None = None
    conditions: str | None = None
    folio_number: int | None = None
    series: str | None = None


class ToInvoiceRequest(_Request):
    """``ToInvoiceInput``: the body of ``POST /receipts/to-invoice`` (1 to 1,000 receipt ``keys``)."""

    keys: list[str]
    customer: CustomerInput | str | None = None
    use: str | None = None
    dry_run: bool | None = None
    payment_form: str | None = None


class ToInvoicePreviewRequest(_Request):
    """``ToInvoicePreviewInput``: the body of ``POST /receipts/to-invoice/preview``."""

    keys: list[str]
    customer: CustomerInput | str | None = None
    use: str | None = None


class GlobalInvoiceRequest(_Request):
    """``GlobalInvoiceInput``: the body of ``POST /receipts/global-invoice``. ``from`` is a Python keyword, so the
    field is ``from_`` here and ``from`` on the wire (:meth:`to_json` / :meth:`from_json` rename it). The spec gives
    it no ``idempotency_key`` (see :mod:`billkit.providers.facturapi.receipts` for how billkit keeps it from being
    issued twice)."""

    periodicity: Periodicity
    months: str
    year: int
    from_: str | None = None
    to: str | None = None
    receipts: list[str] | None = None
    payment_form: str | None = None
    folio_number: int | None = None
    series: str | None = None
    date: str | None = None

    def to_json(self) -> dict[str, Any]:
        body = self.model_dump(mode="python", exclude_none=True)
        if "from_" in body:
            body["from"] = body.pop("from_")
        return body

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> GlobalInvoiceRequest:
        """The model of a wire body (``from`` read into ``from_``)."""
        copy = dict(data)
        if "from" in copy:
            copy["from_"] = copy.pop("from")
        return cls.model_validate(copy)


# -- responses ---------------------------------------------------------------------------------------------------


class Receipt(_Response):
    """``Receipt``: a sale note; ``key`` and ``self_invoice_url`` let the customer invoice it themselves until
    ``expires_at``; ``invoice`` is the id of the invoice that took it (to a customer or global)."""

    id: str | None = None
    created_at: str | None = None
    livemode: bool | None = None
    organization: str | None = None
    date: str | None = None
    expires_at: str | None = None
    status: str | None = None
    self_invoice_url: str | None = None
    total: Decimal | None = None
    invoice: str | None = None
    customer: Customer | str | None = None
    key: str | None = None
    items: list[InvoiceItem] | None = None
    external_id: str | None = None
    idempotency_key: str | None = None
    payment_form: str | None = None
    folio_number: int | str | None = None
    currency: str | None = None
    exchange: Decimal | None = None
    branch: str | None = None

    _numbers = field_validator("total", "exchange", mode="before")(_lenient_decimal)

    @property
    def receipt_status(self) -> ReceiptStatus:
        return ReceiptStatus.of(self.status)

    @property
    def customer_id(self) -> str | None:
        """The assigned customer's id (the spec types ``customer`` as the id; an object is read too)."""
        if isinstance(self.customer, Customer):
            return self.customer.id
        return self.customer

    @property
    def amount(self) -> Money | None:
        """``total`` with its currency (MXN when none is given), or None when either cannot be read."""
        if self.total is None:
            return None
        try:
            return Money(self.total, (self.currency or "MXN").upper())
        except BillkitError:
            return None


class ToInvoiceSummary(_Response):
    """``ToInvoiceSummary``: the answer of a ``dry_run`` of ``POST /receipts/to-invoice``. The spec gives it no
    fields ("summary object"): everything Facturapi sends is in ``model_extra``."""

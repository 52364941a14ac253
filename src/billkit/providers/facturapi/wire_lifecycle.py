"""Facturapi v2 wire models of the invoice lifecycle: payment complements (CFDI type ``P``), credit notes (type
``E``, egreso), drafts, products, and the invoice fields these flows read (``related_documents``,
``received_payment_ids``, ``complements``, ``is_ready_to_stamp``).

The same rules as :mod:`billkit.providers.facturapi.wire`: requests are strict (amounts are ``Decimal``, a float or a
bool is refused, ``None`` is left out of the body, extra keys are sent as they are), responses are lenient (every
field optional, unknown fields kept in ``model_extra``, numbers read as ``Decimal``). Field names are Facturapi's,
camelCase included where the spec has it (``numOperacion``).
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any, Literal

from pydantic import Field, field_validator

from billkit.providers.facturapi.wire import (
    CustomerInput,
    Invoice,
    TaxInput,
    _no_float,
    _Request,
    _Response,
)

__all__ = [
    "CreditNoteItem",
    "CreditNoteProduct",
    "CreditNoteRequest",
    "InvoiceDetail",
    "PaidDocument",
    "Payment",
    "PaymentComplement",
    "PaymentInvoiceRequest",
    "PaymentTax",
    "Product",
    "ProductUpdate",
    "RelatedDocument",
    "RelatedDocuments",
]


def _lenient_decimal(value: Any) -> Any:
    """A response number as Decimal; a bool or an object is dropped (it stays in the raw body)."""
    if isinstance(value, bool) or not isinstance(value, (int, Decimal, str)):
        return None
    try:
        return Decimal(value) if isinstance(value, str) else value
    except ArithmeticError:
        return None


# -- requests: payment complements (InvoicePagoInput) -------------------------------------------------------------


class PaymentTax(_Request):
    """One tax of the paid document that applies to this payment (``PaymentInput.related_documents[].taxes[]``):
    ``base`` is the part of the payment the tax is computed on, ``rate`` a fraction (``0.16``)."""

    base: Decimal
    type: Literal["IVA", "ISR", "IEPS"]
    rate: Decimal
    factor: Literal["Tasa", "Cuota", "Exento"] | None = None
    withholding: bool | None = None

    _numbers = field_validator("base", "rate", mode="before")(_no_float)


class PaidDocument(_Request):
    """The income invoice a payment settles (part of): its ``uuid``, the ``amount`` paid, the ``installment``
    number and the balance before the payment (``last_balance``), in the invoice's ``currency``."""

    uuid: str
    amount: Decimal
    taxes: list[PaymentTax]
    installment: int
    last_balance: Decimal
    currency: str | None = None
    exchange: Decimal | None = None
    taxability: str | None = None

    _numbers = field_validator("amount", "last_balance", "exchange", mode="before")(_no_float)


class Payment(_Request):
    """``PaymentInput``: one payment received (``payment_form`` SAT code, ``date`` it was received)."""

    payment_form: str
    related_documents: list[PaidDocument]
    currency: str | None = None
    exchange: Decimal | None = None
    date: str | None = None
    numOperacion: str | None = Field(default=None, description="the bank's operation or tracking number")

    _exchange = field_validator("exchange", mode="before")(_no_float)


class PaymentComplement(_Request):
    """``PagoComplementInput``: ``{"type": "pago", "data": [payments]}`` (the spec's enum says ``nomina`` where it
    means ``pago``, a known defect of the file)."""

    type: Literal["pago"] = "pago"
    data: list[Payment]


class PaymentInvoiceRequest(_Request):
    """``InvoicePagoInput``: the body of ``POST /invoices`` for a payment complement (CFDI type ``P``)."""

    type: Literal["P"] = "P"
    customer: CustomerInput | str
    complements: list[PaymentComplement]
    external_id: str | None = None
    idempotency_key: str | None = None
    series: str | None = None
    folio_number: int | None = None


# -- requests: credit notes (InvoiceEgresoInput) ------------------------------------------------------------------


class RelatedDocuments(_Request):
    """``RelatedDocumentInput``: the SAT relation key (``01`` credit note of the related documents, ``03``
    return of goods, ...) and the UUIDs it relates."""

    relationship: str
    documents: list[str]


class CreditNoteProduct(_Request):
    """``LineItemProductEgresoInput``: what is returned, discounted or credited (``product_key`` defaults to
    ``84111506`` at Facturapi)."""

    description: str
    price: Decimal
    product_key: str | None = None
    tax_included: bool | None = None
    taxability: str | None = None
    taxes: list[TaxInput] | None = None
    unit_key: str | None = None
    unit_name: str | None = None
    sku: str | None = None

    _price = field_validator("price", mode="before")(_no_float)


class CreditNoteItem(_Request):
    quantity: Decimal | None = None
    discount: Decimal | None = None
    product: CreditNoteProduct | str

    _numbers = field_validator("quantity", "discount", mode="before")(_no_float)


class CreditNoteRequest(_Request):
    """``InvoiceEgresoInput``: the body of ``POST /invoices`` for a credit note (CFDI type ``E``)."""

    type: Literal["E"] = "E"
    customer: CustomerInput | str
    items: list[CreditNoteItem]
    payment_form: str
    payment_method: Literal["PUE"] | None = None
    use: str | None = None
    related_documents: list[RelatedDocuments]
    currency: str | None = None
    exchange: Decimal | None = None
    external_id: str | None = None
    idempotency_key: str | None = None
    series: str | None = None
    folio_number: int | None = None

    _exchange = field_validator("exchange", mode="before")(_no_float)


# -- requests: products ---------------------------------------------------------------------------------------


class ProductUpdate(_Request):
    """``PUT /products/{id}``: a partial update (only the fields sent change)."""

    description: str | None = None
    product_key: str | None = None
    price: Decimal | None = None
    tax_included: bool | None = None
    taxability: str | None = None
    taxes: list[TaxInput] | None = None
    unit_key: str | None = None
    unit_name: str | None = None
    sku: str | None = None

    _price = field_validator("price", mode="before")(_no_float)


# -- responses --------------------------------------------------------------------------------------------------


class RelatedDocument(_Response):
    relationship: str | None = None
    documents: list[str] | None = None


class InvoiceDetail(Invoice):
    """An ``Invoice`` (any CFDI type, draft or stamped) with the lifecycle fields typed: the relations, the payment
    complements that paid it (``received_payment_ids``, type I) or that it pays (``target_invoice_ids``, type P),
    its ``complements`` as Facturapi returns them, and ``is_ready_to_stamp`` (drafts)."""

    related_documents: list[RelatedDocument] | None = None
    received_payment_ids: list[str] | None = None
    target_invoice_ids: list[str] | None = None
    complements: list[dict[str, Any]] | None = None
    is_ready_to_stamp: bool | None = None
    total_payment_amount: Decimal | None = None
    total_payment_amount_converted: Decimal | None = None

    _amounts = field_validator("total_payment_amount", "total_payment_amount_converted", mode="before")(
        _lenient_decimal
    )


class Product(_Response):
    """``Product``: a saved product or service of the organization's catalog."""

    id: str | None = None
    created_at: str | None = None
    livemode: bool | None = None
    description: str | None = None
    product_key: str | None = None
    price: Decimal | None = None
    tax_included: bool | None = None
    taxability: str | None = None
    taxes: list[dict[str, Any]] | None = None
    local_taxes: list[dict[str, Any]] | None = None
    unit_key: str | None = None
    unit_name: str | None = None
    sku: str | None = None

    _price = field_validator("price", mode="before")(_lenient_decimal)

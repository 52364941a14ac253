"""BILL v3 wire models of the bill updates (``PUT`` / ``PATCH /v3/bills/{id}``), strict on write like the rest.

BILL's notes name both calls (200, the bill) without their bodies. billkit's reading, with the safe choice where the
notes are silent (L):

* ``PUT`` replaces the bill: its body is the create's (:class:`~billkit.providers.billcom.wire.BillCreate`), every
  required field included; an optional field left out is cleared.
* ``PATCH`` (:class:`BillPatch`) sends only the fields given; ``invoice`` may carry either of its two fields, and
  ``billLineItems``, when given, is the bill's whole new list of lines (a line naming an existing line ``id`` keeps
  that id). A field cannot be cleared with a PATCH (nulls are never sent); use ``PUT`` for that. ``vendorId`` is
  not part of a PATCH: billkit never moves a bill to another vendor (its amounts are in the vendor's currency).
"""

from __future__ import annotations

from decimal import Decimal

from pydantic import Field, field_validator

from billkit.providers.billcom.wire import BillClassifications, _Write, check_date

__all__ = ["BillLineItemPatch", "BillPatch", "InvoicePatch"]


class InvoicePatch(_Write):
    """``invoice`` in a PATCH: the invoice number, the invoice date, or both."""

    invoice_number: str | None = Field(default=None, min_length=1)
    invoice_date: str | None = None

    @field_validator("invoice_date")
    @classmethod
    def _date(cls, value: str | None) -> str | None:
        return None if value is None else check_date(value)


class BillLineItemPatch(_Write):
    """A line of a PATCH: as on create (``amount``, or ``quantity`` and ``price``), optionally the ``id`` of one of
    the bill's lines, which then keeps its id."""

    id: str | None = Field(default=None, min_length=1)
    amount: Decimal | None = None
    quantity: Decimal | None = None
    price: Decimal | None = None
    description: str | None = Field(default=None, max_length=4000)
    classifications: BillClassifications | None = None


class BillPatch(_Write):
    """``PATCH /v3/bills/{id}``: only the fields set are sent."""

    due_date: str | None = None
    bill_line_items: list[BillLineItemPatch] | None = Field(default=None, min_length=1)
    invoice: InvoicePatch | None = None
    description: str | None = Field(default=None, max_length=4000)
    pay_from_chart_of_account_id: str | None = None
    classifications: BillClassifications | None = None
    purchase_order_number: str | None = None

    @field_validator("due_date")
    @classmethod
    def _date(cls, value: str | None) -> str | None:
        return None if value is None else check_date(value)

"""Shared setup of the Facturapi examples: the in-process sandbox by default, Facturapi's test mode when
FACTURAPI_API_KEY (an ``sk_test_...`` key) is set."""

from __future__ import annotations

import os
import uuid

import billkit
from billkit import Address, Bill, LineItem, Money, Party, Tax
from billkit.providers.facturapi import FacturapiAsyncClient


def live() -> bool:
    return bool(os.environ.get("FACTURAPI_API_KEY"))


def make_client() -> FacturapiAsyncClient:
    if live():
        print("using Facturapi (FACTURAPI_API_KEY); a sk_test_ key stamps test invoices without fiscal validity")
        return billkit.AsyncClient("facturapi")
    print("using billkit's in-process Facturapi sandbox (set FACTURAPI_API_KEY to use Facturapi's test mode)")
    return billkit.AsyncClient("facturapi", sandbox=True)


def customer(tax_id: str = "EKU9003173C9") -> Party:
    """SAT's published test customer (works in Facturapi's test mode too)."""
    return Party(
        name="ESCUELA KEMPER URGATE",
        tax_id=tax_id,
        email="facturas@example.mx",
        address=Address(postal_code="42501"),
        provider_options={"tax_system": "601"},  # General de Ley Personas Morales
    )


def invoice(reference: str, price: str = "1000.00", *, party: Party | None = None) -> Bill:
    """A consulting invoice: one line, IVA 16 % on top, paid by transfer, CFDI use G03 (general expenses)."""
    return Bill(
        reference=reference,  # external_id: your own id, searchable
        counterparty=party or customer(),
        line_items=(
            LineItem(
                description="Servicio de consultoría",
                unit_price=Money(price, "MXN"),
                taxes=(Tax(type="IVA", rate="0.16"),),
                provider_options={"product_key": "80111600"},  # SAT ClaveProdServ
            ),
        ),
        provider_options={"payment_form": "03", "use": "G03"},
    )


def run_id() -> str:
    """A short prefix that keeps references unique across runs against a real account."""
    return uuid.uuid4().hex[:6].upper()

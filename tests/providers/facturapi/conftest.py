"""Fixtures of the Facturapi adapter tests: a sandbox on a virtual clock, a client on it, a bill builder."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any

import pytest

import billkit
from billkit import Address, Bill, LineItem, Money, Party, Tax
from billkit.clock import VirtualClock
from billkit.providers.facturapi import FacturapiAsyncClient

if TYPE_CHECKING:
    from billkit.providers.facturapi.sandbox import FacturapiSandbox

RFC = "EKU9003173C9"


def party(tax_id: str = RFC, **kwargs: Any) -> Party:
    return Party(
        name=kwargs.pop("name", "ESCUELA KEMPER URGATE"),
        tax_id=tax_id,
        email=kwargs.pop("email", "facturas@example.mx"),
        address=kwargs.pop("address", Address(postal_code="42501")),
        provider_options=kwargs.pop("provider_options", {"tax_system": "601"}),
        **kwargs,
    )


def invoice(reference: str = "FA-0001", price: str = "1000.00", *, tax_id: str = RFC, **kwargs: Any) -> Bill:
    """A valid income invoice: one consulting line with IVA 16 % on top, paid by transfer."""
    items = kwargs.pop("line_items", None) or (
        LineItem(
            description="Servicio de consultoría",
            quantity=kwargs.pop("quantity", 1),
            unit_price=Money(price, kwargs.pop("currency", "MXN")),
            taxes=(Tax(type="IVA", rate="0.16"),),
            provider_options={"product_key": "80111600"},
        ),
    )
    options = {"payment_form": "03", "use": "G03", **kwargs.pop("provider_options", {})}
    return Bill(reference=reference, counterparty=kwargs.pop("counterparty", None) or party(tax_id),
                line_items=items, provider_options=options, **kwargs)  # fmt: skip


@pytest.fixture
def box(clock: VirtualClock) -> FacturapiSandbox:
    from billkit.providers.facturapi.sandbox import FacturapiSandbox

    return FacturapiSandbox(clock)


@pytest.fixture
async def client(box: FacturapiSandbox) -> AsyncIterator[FacturapiAsyncClient]:
    async with billkit.AsyncClient("facturapi", sandbox=box) as c:
        yield c

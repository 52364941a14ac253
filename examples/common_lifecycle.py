"""Payments, credits and parties through the common model, on all three providers with one piece of code: what a
provider cannot do is read from ``client.capabilities`` (and would raise UnsupportedFeatureError before a request).

* Facturapi: a PPD invoice paid in two installments (payment complements), a credit note, a customer saved,
  changed, billed by its id and deleted;
* AcceptEasy: a payment request marked paid for its whole amount;
* BILL: a vendor saved, changed, billed and archived (BILL's delete).

Runs on the in-process sandboxes (no keys needed).
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import anyio

import billkit
from billkit import Address, Bill, Direction, LineItem, Money, Party, Tax


def customer() -> Party:
    """SAT's published test customer."""
    return Party(
        name="ESCUELA KEMPER URGATE",
        tax_id="EKU9003173C9",
        email="facturas@example.mx",
        address=Address(postal_code="42501"),
        provider_options={"tax_system": "601"},
    )


def cfdi(reference: str, counterparty: Party, *, ppd: bool = False) -> Bill:
    terms = {"payment_form": "99", "payment_method": "PPD"} if ppd else {"payment_form": "03"}
    return Bill(
        reference=reference,
        counterparty=counterparty,
        line_items=(
            LineItem(
                description="Servicio de consultoría",
                unit_price=Money("1000.00", "MXN"),
                taxes=(Tax(type="IVA", rate="0.16"),),
                provider_options={"product_key": "80111600"},
            ),
        ),
        provider_options={"use": "G03", **terms},
    )


async def parties(client: billkit.AsyncClient[Any, Any], party: Party, change: Party) -> Party:
    """Save a party, read it back and change it: the same code for a Facturapi customer and a BILL vendor."""
    saved = await client.create_party(party)
    assert saved.provider_id is not None
    again = await client.get_party(saved.provider_id)
    changed = await client.update_party(saved.provider_id, change)
    print(f"{client.provider}: party {saved.provider_id} {again.name!r}, now {changed.email}")
    return changed


async def facturapi() -> None:
    async with billkit.AsyncClient("facturapi", sandbox=True) as client:
        caps = client.capabilities
        assert caps.payments and caps.partial_payments and caps.credits and caps.parties
        invoice = await client.create(cfdi("CL-PPD-1", customer(), ppd=True))
        assert invoice.provider_id is not None and invoice.total is not None
        first = await client.record_payment(
            invoice.provider_id, Money("500.00", "MXN"), method="03", paid_at=dt.date(2026, 1, 2)
        )
        print(f"facturapi: complement {first.provider_id}, balance {first.balance_after}")
        assert first.balance_after is not None
        last = await client.record_payment(invoice.provider_id, first.balance_after, method="03")
        print(f"facturapi: complement {last.provider_id}, balance {last.balance_after}")
        try:
            await client.record_payment(invoice.provider_id, Money("1.00", "MXN"), method="03")
        except billkit.ValidationError as exc:
            print(f"facturapi: a third payment refused locally ({exc.problems[0].field})")

        sold = await client.create(cfdi("CL-CN-1", customer()))
        assert sold.provider_id is not None
        note = await client.create_credit(sold.provider_id, Money("116.00", "MXN"), reason="Descuento")
        print(f"facturapi: credit note {note.provider_id} of {note.total} ({note.provider_status})")

        saved = await parties(client, customer(), Party(email="pagos@example.mx"))
        billed = await client.create(cfdi("CL-SAVED-1", saved.as_counterparty()))
        print(f"facturapi: invoice {billed.provider_id} for the saved customer")
        assert saved.provider_id is not None
        await client.delete_party(saved.provider_id)


async def accepteasy() -> None:
    async with billkit.AsyncClient("accepteasy", sandbox=True) as client:
        caps = client.capabilities
        assert caps.payments and not caps.partial_payments and not caps.credits and not caps.parties
        request = await client.create(Bill(reference="CL-AE-1", description="Membership", total=Money("25.00", "EUR")))
        assert request.provider_id is not None and request.total is not None
        paid = await client.record_payment(request.provider_id, request.total)  # the whole amount: marked paid
        print(f"accepteasy: {paid.bill_id} marked paid, balance {paid.balance_after}")
        print(f"accepteasy: the bill reads {(await client.get(request.provider_id)).status}")


async def billcom() -> None:
    async with billkit.AsyncClient("billcom", sandbox=True) as client:
        caps = client.capabilities
        assert caps.parties and not caps.payments and not caps.credits
        address = Address(line1="123 Main Street", city="San Jose", region="CA", postal_code="95002", country="US")
        vendor = Party(name="Umbrella Supplies", email="ap@umbrella.test", address=address,
                       provider_options={"accountType": "BUSINESS"})  # fmt: skip
        saved = await parties(client, vendor, Party(email="billing@umbrella.test"))
        assert saved.provider_id is not None
        bill = await client.create(
            Bill(
                direction=Direction.PAYABLE,
                counterparty=saved.as_counterparty(),
                reference="CL-B-1",
                issue_date=dt.date(2026, 1, 2),
                due_date=dt.date(2026, 2, 1),
                line_items=(LineItem(description="USB audio interface", unit_price=Money("149.00", "USD")),),
            )
        )
        print(f"billcom: bill {bill.provider_id} for the saved vendor")
        archived = await client.delete_party(saved.provider_id)
        print(f"billcom: vendor archived ({archived.raw.get('archived') if archived.raw else None})")
        if not caps.payments:
            print("billcom: record_payment would raise UnsupportedFeatureError (BILL's payments need MFA sessions)")


async def main() -> None:
    await facturapi()
    await accepteasy()
    await billcom()


if __name__ == "__main__":
    anyio.run(main)

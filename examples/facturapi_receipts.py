"""E-receipts ("recibos") and the global invoice: sales noted as receipts, one invoiced to a customer who asked
for it, one cancelled, and last month's open receipts put into one global invoice to PUBLICO EN GENERAL, which a
second call does not issue again.

Runs on the in-process sandbox by default; on Facturapi's API when FACTURAPI_API_KEY is set (receipts and global
invoices then need the organization's receipt settings; last month may already have a global invoice there).
"""

from __future__ import annotations

import datetime as dt

import anyio
from facturapi_common import customer, live, make_client

from billkit import LineItem, Money, Tax
from billkit.errors import ValidationError
from billkit.providers.facturapi.receipts import MEXICO_CITY, GlobalPeriod


def sale(description: str, price: str) -> LineItem:
    """One item with IVA 16 % on top."""
    return LineItem(
        description=description,
        unit_price=Money(price, "MXN"),
        taxes=(Tax(type="IVA", rate="0.16"),),
        provider_options={"product_key": "90101501"},  # SAT ClaveProdServ: restaurant services
    )


async def main() -> None:
    async with make_client() as facturapi:
        native = facturapi.native
        today = dt.datetime.now(MEXICO_CITY).date()
        first_of_month = today.replace(day=1)
        last = first_of_month - dt.timedelta(days=1)
        period = GlobalPeriod.month(last.year, last.month)

        # 1. three sales of last month, noted as receipts (each carries an idempotency key: retried safely)
        when = period.start.replace(day=10, hour=13)
        made = [
            await native.create_receipt([sale("Comida corrida", "150.00")], payment_form="01", date=when),
            await native.create_receipt([sale("Café y pan", "60.00")], payment_form="04", date=when),
            await native.create_receipt([sale("Pastel", "420.00")], payment_form="04", date=when),
        ]
        for receipt in made:
            print(
                f"receipt {receipt.id} ({receipt.receipt_status.value}): {receipt.amount}, {receipt.self_invoice_url}"
            )

        # 2. a sale of today, invoiced to the customer who asked for an invoice
        today_receipt = await native.create_receipt([sale("Desayuno", "95.00")], payment_form="28")
        assert today_receipt.id is not None
        invoice = await native.invoice_receipt(today_receipt.id, customer(), use="G03")
        print(f"receipt {today_receipt.id} invoiced to the customer: invoice {invoice.id}, total {invoice.total}")

        # 3. one of last month's sales was returned: its receipt is cancelled and no invoice will take it
        returned = made[1]
        assert returned.id is not None
        cancelled = await native.cancel_receipt(returned.id)
        print(f"receipt {returned.id} is {cancelled.receipt_status.value}")

        # 4. the global invoice of last month: the receipts still open (150 + 420, plus IVA)
        global_invoice = await native.create_global_invoice(period, series="G")
        print(f"global invoice {global_invoice.id} for {period.months}/{period.year}: total {global_invoice.total}")
        if not live():
            assert global_invoice.total is not None and str(global_invoice.total) == "661.20"
        for receipt in made:
            assert receipt.id is not None
            now = await native.get_receipt(receipt.id)
            print(f"  receipt {receipt.id}: {now.receipt_status.value}")

        # 5. running the month's job again issues nothing: no receipt of the period is open any more
        try:
            await native.create_global_invoice(period)
        except ValidationError as exc:
            print(f"second run refused locally: {exc.problems[0].message}")
        else:
            raise AssertionError("a second global invoice was issued for the same receipts")


if __name__ == "__main__":
    anyio.run(main)

"""A PPD invoice paid in two installments (two payment complements, balance down to zero, a third refused before
anything is sent), a credit note related to another invoice, and a draft edited then stamped.

Runs on the in-process sandbox by default; on Facturapi's API when FACTURAPI_API_KEY is set.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import anyio
from facturapi_common import customer, invoice, make_client, run_id

from billkit import BillStatus, LineItem, Money, Tax
from billkit.errors import ValidationError


async def main() -> None:
    async with make_client() as facturapi:
        native = facturapi.native
        # 1. an invoice paid later: PPD, payment form 99 ("to be defined"); 1,000 + IVA = 1,160.00 MXN
        ppd = invoice(f"FA-{run_id()}-PPD")
        ppd = ppd.model_copy(
            update={"provider_options": {**ppd.provider_options, "payment_method": "PPD", "payment_form": "99"}}
        )
        bill = await facturapi.create(ppd)
        assert bill.provider_id is not None
        first = await native.record_payment(
            bill.provider_id, amount=Money("500.00", "MXN"), payment_form="03", date=dt.datetime.now(dt.timezone.utc)
        )
        balance = await native.payment_balance(bill.provider_id)
        print(f"complement {first.id} (installment 1): balance {balance.balance}")
        second = await native.record_payment(
            bill.provider_id, amount=balance.balance, payment_form="03", installment=balance.next_installment
        )
        balance = await native.payment_balance(bill.provider_id)
        print(f"complement {second.id} (installment 2): balance {balance.balance}")
        assert balance.balance == Money("0.00", "MXN")
        assert (await facturapi.get(bill.provider_id)).status in (BillStatus.PAID, BillStatus.OPEN)
        try:
            await native.record_payment(bill.provider_id, amount=Money("1.00", "MXN"), payment_form="03")
        except ValidationError as exc:
            print(f"third payment refused locally: {exc.problems[0].message}")
        else:
            raise AssertionError("a payment on a paid invoice was sent")

        # 2. a credit note (type E, relation 01) for a discount on another invoice
        sold = await facturapi.create(invoice(f"FA-{run_id()}-CN"))
        assert sold.provider_id is not None
        discount = LineItem(
            description="Descuento por pronto pago",
            unit_price=Money("100.00", "MXN"),
            taxes=(Tax(type="IVA", rate="0.16"),),
        )
        note = await native.create_credit_note(sold.provider_id, [discount])
        assert note.related_documents and note.total == Decimal("116.00")
        print(f"credit note {note.id}: {note.total} MXN, relation {note.related_documents[0].relationship}")

        # 3. a draft saved incomplete, edited, then stamped
        who = customer()
        draft = await native.create_draft(
            {
                "type": "I",
                "use": "G03",
                "customer": {
                    "legal_name": who.name,
                    "tax_id": who.tax_id,
                    "tax_system": "601",
                    "address": {"zip": "42501"},
                },
            }
        )
        assert draft.id is not None
        print(f"draft {draft.id}: ready to stamp {draft.is_ready_to_stamp}")
        item = {
            "quantity": 1,
            "product": {
                "description": "Servicio de consultoría",
                "product_key": "80111600",
                "price": Decimal("1000.00"),
                "tax_included": False,
            },
        }
        edited = await native.update_draft(draft.id, {"items": [item], "payment_form": "03"})
        print(f"edited: ready to stamp {edited.is_ready_to_stamp}")
        stamped = await native.stamp_draft(draft.id)
        assert stamped.status == "valid"
        print(f"stamped {stamped.id}: uuid {stamped.uuid}, total {stamped.total}")


if __name__ == "__main__":
    anyio.run(main)

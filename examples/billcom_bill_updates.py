"""Changing bills at BILL, and creating vendors in bulk, through the native client.

1. ``client.native.create_vendors([...])``: one ``POST /v3/vendors/bulk`` for several vendors, one result per input
   in input order (never sent twice: a lost answer is settled by reading the vendors back).
2. ``client.native.update_bill(bill_id, Bill(due_date=...))``: a ``PATCH`` with only the fields set.
3. ``client.native.update_bill(bill_id, Bill(line_items=[...]))``: new lines, checked against the vendor's currency.
4. ``client.native.replace_bill(bill_id, bill)``: a ``PUT``, the whole bill (optional fields left out are cleared).
5. A paid bill refuses changes (in the in-process sandbox: 422).

Runs on billkit's in-process sandbox by default; against BILL's sandbox when the four BILL_* variables are set.
"""

from __future__ import annotations

import datetime as dt

import anyio
from billcom_common import make_client, payable, run_id

import billkit
from billkit import Bill, LineItem, Money, Party
from billkit.providers.billcom import BillcomSandbox


async def main() -> None:
    async with make_client() as client:
        tag = run_id()
        results = await client.native.create_vendors(
            [
                Party(name=f"Northwind {tag}", email="ap@northwind.example.com",
                      provider_options={"accountType": "BUSINESS", "billCurrency": "USD"}),
                Party(name=f"Contoso {tag}", email="ap@contoso.example.com",
                      provider_options={"accountType": "BUSINESS", "billCurrency": "USD"}),
            ]
        )  # fmt: skip
        for result in results:
            assert result.vendor is not None, result.error
            print(f"vendor {result.index}: {result.vendor.id} ({result.vendor.name})")
        vendor_id = results[0].vendor.id if results[0].vendor else ""

        bill = await client.create(payable(vendor_id, f"UPD-{tag}", "149.00", "USB audio interface"))
        bill_id = bill.provider_id or ""
        print(f"created bill {bill_id}: {bill.total}, due {bill.due_date}")

        later = (bill.due_date or dt.date.today()) + dt.timedelta(days=15)
        patched = await client.native.update_bill(bill_id, Bill(due_date=later, description="rescheduled"))
        print(f"PATCH: due {patched.due_date}, description {patched.description!r}")
        assert patched.due_date == later.isoformat() and patched.amount == Money("149.00", "USD").amount

        lines = (
            LineItem(description="USB audio interface", unit_price=Money("149.00", "USD")),
            LineItem(description="Drum foot pedal", quantity=2, unit_price=Money("39.99", "USD")),
        )
        relined = await client.native.update_bill(bill_id, Bill(line_items=lines, total=Money("228.98", "USD")))
        print(f"PATCH lines: {len(relined.bill_line_items)} lines, amount {relined.amount}")
        assert relined.amount == Money("228.98", "USD").amount

        whole = payable(vendor_id, f"UPD-{tag}", "199.00", "Audio interface, replaced")
        put = await client.native.replace_bill(bill_id, whole)
        print(f"PUT: amount {put.amount}, description {put.description!r} (cleared: the PUT did not carry it)")
        assert put.amount == Money("199.00", "USD").amount and put.description is None

        box = client.sandbox
        if isinstance(box, BillcomSandbox):
            box.pay(bill_id, scheduled_after=0, paid_after=0)
            await client.clock.sleep(1)
            try:
                await client.native.update_bill(bill_id, Bill(description="too late"))
            except billkit.APIError as refused:
                print(f"a paid bill cannot change: HTTP {refused.status_code}: {refused.message}")
            else:
                raise AssertionError("the sandbox changed a paid bill")


if __name__ == "__main__":
    anyio.run(main)

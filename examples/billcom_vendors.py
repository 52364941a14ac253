"""A vendor's whole path at BILL: created from a common Party, updated, billed, approved, scheduled, paid.

1. ``client.native.create_vendor(party)``: the Party becomes BILL's vendor (checked before anything is sent; a
   create whose answer is lost is never sent again, see docs/providers/billcom.md).
2. ``client.native.update_vendor(vendor_id, Party(email=...))``: only the fields set are sent (PATCH).
3. A bill for it, then its approval and payment states until PAID with ``client.wait_for(until=PAID)``.

In the in-process sandbox an approval policy makes the bill wait for two approvers, and the approvals and the
payment are simulated on virtual time, so this takes milliseconds. Against BILL's sandbox (the four BILL_*
variables set) the vendor is created and updated for real; approving and paying happen in BILL's web app (paying
needs an MFA-trusted session), so the example shows the bill's states and waits a few seconds.
"""

from __future__ import annotations

import anyio
from billcom_common import make_client, payable, run_id

import billkit
from billkit import Address, BillStatus, Party
from billkit.providers.billcom import BillcomSandbox
from billkit.providers.billcom.mapping import approval_of


async def main() -> None:
    async with make_client() as client:
        party = Party(
            name=f"Umbrella Supplies {run_id()}",
            email="ap@umbrella.example.com",
            phone="9876543210",
            address=Address(line1="123 Main Street", city="San Jose", region="CA", postal_code="95002", country="US"),
            provider_options={"accountType": "BUSINESS", "billCurrency": "USD"},
        )
        vendor = await client.native.create_vendor(party)
        print(f"created vendor {vendor.id} ({vendor.name}), billed in {vendor.bill_currency}")
        vendor = await client.native.update_vendor(vendor.id, Party(email="billing@umbrella.example.com"))
        print(f"updated its e-mail to {vendor.email}")
        as_party = await client.native.get_vendor_party(vendor.id)
        print(f"read back as a Party: {as_party.name}, {as_party.address.city if as_party.address else '-'}")

        box = client.sandbox
        if isinstance(box, BillcomSandbox):
            box.set_approval_policy("1000.00", approvers=2)  # bills of 1000.00 or more need two approvals
        bill = await client.create(payable(vendor.id, f"VND-{run_id()}", "1500.00", "Standing desks"))
        bill_id = bill.provider_id or ""
        approval, raw = approval_of(bill)
        print(f"bill {bill_id}: {bill.status.value if bill.status else None} ({bill.provider_status}), "
              f"approval {raw}")  # fmt: skip
        if isinstance(box, BillcomSandbox):
            op = await client.wait_for(bill_id, until=BillStatus.PAID)
            for _ in range(2):  # each approver approves, as they would in BILL
                box.approve(bill_id)
                print(f"approval: {approval_of(await client.get(bill_id))[1]}")
            box.pay(bill_id, scheduled_after=60, paid_after=1800)
            await client.clock.sleep(120)
            scheduled = await client.get(bill_id)
            status = scheduled.status.value if scheduled.status else None
            print(f"payment: {scheduled.provider_status} (billkit: {status})")
            paid = await op
            print(f"PAID: {paid.amount_paid} paid, {paid.amount_due} due, approval {approval_of(paid)[1]}")
        else:
            if approval.pending:
                print("the bill waits for its approvers in BILL before it can be paid")
            op = await client.wait_for(bill_id, until=BillStatus.PAID, deadline=5)
            try:
                await op
            except billkit.OperationTimeout as timeout:
                print(f"not paid yet (last status {timeout.status}); resume later with the token")


if __name__ == "__main__":
    anyio.run(main)

"""Wait until a bill is PAID: billkit reads the bill on a backoff schedule until BILL says PAID.

In the in-process sandbox the payment is simulated on virtual time (scheduled after 1 minute, paid after
30 minutes), so this takes milliseconds. Against BILL, paying needs an MFA-trusted session, so the example only
shows the bill's current status and waits a few seconds.
"""

from __future__ import annotations

import anyio
from billcom_common import demo_vendor, make_client, payable, run_id

import billkit
from billkit import BillStatus
from billkit.providers.billcom import BillcomSandbox


async def main() -> None:
    async with make_client() as client:
        vendor = await demo_vendor(client)
        bill = await client.create(payable(vendor, f"PAY-{run_id()}", "80.00"))
        print(f"created {bill.provider_id}: {bill.status.value if bill.status else None} ({bill.provider_status})")
        box = client.sandbox
        if isinstance(box, BillcomSandbox):
            box.pay(bill.provider_id or "", scheduled_after=60, paid_after=1800)
            started = client.clock.now()
            op = await client.wait_for(bill.provider_id or "", until=BillStatus.PAID)
            paid = await op
            print(f"PAID after {client.clock.now() - started:.0f} virtual seconds; amount paid {paid.amount_paid}")
        else:
            op = await client.wait_for(bill.provider_id or "", until=BillStatus.PAID, deadline=5)
            try:
                await op
            except billkit.OperationTimeout as timeout:
                print(f"not paid yet (last status {timeout.status}); resume later with the token: "
                      f"{timeout.token[:32]}...")  # fmt: skip


if __name__ == "__main__":
    anyio.run(main)

"""Create one payable bill at BILL and read it back."""

from __future__ import annotations

import anyio
from billcom_common import demo_vendor, make_client, payable, run_id


async def main() -> None:
    async with make_client() as client:
        vendor = await demo_vendor(client)
        bill = await client.create(payable(vendor, f"INV-{run_id()}-1", "228.99"))
        print(f"created {bill.provider_id}: {bill.total} for {bill.counterparty.name if bill.counterparty else '?'}"
              f", status {bill.status.value if bill.status else None} ({bill.provider_status})")  # fmt: skip
        again = await client.get(bill.provider_id or "")
        print(f"read back: invoice {again.reference}, due {again.due_date}, amount due {again.amount_due}")
        print(f"requests sent: {client.requests_made} (one login, shared by every call)")


if __name__ == "__main__":
    anyio.run(main)

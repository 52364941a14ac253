"""A bulk of 50 payables with one unknown vendor: BILL rejects it whole, then billkit isolates the bad one.

BILL's POST /v3/bills/bulk is all-or-nothing: one bad bill (here a vendor id BILL does not know) and none is
created. By default billkit raises BulkRejected with every BILL error. With isolation on, it resubmits
without the item BILL named (or bisects when BILL names none), so the 49 good bills are created exactly once.
"""

from __future__ import annotations

import anyio
from billcom_common import demo_vendor, make_client, payable, run_id

import billkit
from billkit.providers.billcom.sandbox import UNKNOWN_VENDOR, BillcomSandbox


async def main() -> None:
    async with make_client() as client:
        vendor = await demo_vendor(client)
        prefix = run_id()
        bills = [payable(UNKNOWN_VENDOR if i == 23 else vendor, f"BULK-{prefix}-{i:02d}", f"{10 + i}.00")
                 for i in range(50)]  # fmt: skip
        try:
            await client.submit_many(bills)
        except billkit.BulkRejected as rejected:
            print(f"rejected whole: {rejected}")
            for index, error in rejected.item_errors.items():
                print(f"  item {index}: {error}")
        client.native.bulk_isolation = True
        result = await (await client.submit_many(bills))
        print(f"with isolation: {len(result.succeeded)} created, {len(result.failed)} failed, "
              f"in {client.native.last_bulk_calls} bulk calls")  # fmt: skip
        for item in result.failed:
            print(f"  item {item.index} ({bills[item.index].reference}): {item.error}")
        if isinstance(client.sandbox, BillcomSandbox):
            counts = client.sandbox.invoice_counts()
            print(f"the sandbox holds {sum(counts.values())} bills, none twice: {max(counts.values()) == 1}")


if __name__ == "__main__":
    anyio.run(main)

"""A bulk of 100 Facturapi invoices: validated together, sent as async creates under a concurrency limit, awaited
as one BulkOperation with progress, every input accounted for in order.

Runs on the in-process sandbox by default; on Facturapi's API when FACTURAPI_API_KEY is set.
"""

from __future__ import annotations

import anyio
from facturapi_common import invoice, make_client, run_id


async def main() -> None:
    async with make_client() as facturapi:
        run = run_id()
        bills = [invoice(f"FA-{run}-{i:03d}", price=f"{100 + i}.00") for i in range(100)]

        def progress(done: int, total: int) -> None:
            if done % 25 == 0:
                print(f"  {done}/{total} stamped")

        bulk = await facturapi.submit_many(bills, on_progress=progress)
        result = await bulk
        print(f"{len(result.succeeded)} stamped, {len(result.failed)} failed, {facturapi.requests_made} requests")
        for item in result.failed:
            print(f"  #{item.index} {item.reference}: {item.error}")


if __name__ == "__main__":
    anyio.run(main)

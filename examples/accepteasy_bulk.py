"""A bulk of 1,000 AcceptEasy bills with progress, where a few fail: one BulkResult item per input, in order.

On the sandbox (default) 5 items carry a bad template (a sandbox trigger) and the status reports partial
progress. On the real API (ACCEPTEASY_KEY_NAME and ACCEPTEASY_KEY set) it sends BULK_SIZE good bills (default 10).
"""

from __future__ import annotations

import datetime as dt
import os

import anyio

import billkit
from billkit import Bill, Money
from billkit.providers.accepteasy.sandbox import BAD_TEMPLATE_ID, AcceptEasySandbox

REAL = bool(os.environ.get("ACCEPTEASY_KEY_NAME") and os.environ.get("ACCEPTEASY_KEY"))


async def main() -> None:
    size = int(os.environ.get("BULK_SIZE", "10")) if REAL else 1000
    bad = set() if REAL else {7, 250, 251, 600, 999}
    due = dt.date.today() + dt.timedelta(days=45)
    bills = [
        Bill(reference=f"INV-{i:05d}", description=f"Invoice {i}", total=Money(f"{10 + i % 90}.50", "EUR"),
             due_date=due, provider_options={"AETemplateID": BAD_TEMPLATE_ID} if i in bad else {})
        for i in range(size)
    ]  # fmt: skip
    box = None if REAL else AcceptEasySandbox(report_partial=True, bulk_rate=100.0)
    async with billkit.AsyncClient("accepteasy", sandbox=box) as accepteasy:
        last = [-1]

        def progress(done: int, total: int) -> None:
            if done // 250 != last[0]:
                last[0] = done // 250
                print(f"  {done}/{total} processed")

        op = await accepteasy.submit_many(bills, on_progress=progress)
        result = await op
        print(f"{len(result.succeeded)} created, {len(result.failed)} failed")
        for item in result.failed:
            print(f"  #{item.index} {item.reference}: {item.error.message if item.error else '?'}")
        if box is not None:
            print(f"bulk status reads: {len(box.received('GET', '/v2/Bill/bulk/'))} for {size} bills")


if __name__ == "__main__":
    anyio.run(main)

"""Cancel an open AcceptEasy bill (PATCH /v2/Bill/{ATID} with Status Canceled) and read it back as VOID.

Runs on the in-process sandbox by default; on the real API when ACCEPTEASY_KEY_NAME and ACCEPTEASY_KEY are set.
"""

from __future__ import annotations

import os

import anyio

import billkit
from billkit import Bill, Money

REAL = bool(os.environ.get("ACCEPTEASY_KEY_NAME") and os.environ.get("ACCEPTEASY_KEY"))


async def main() -> None:
    async with billkit.AsyncClient("accepteasy", sandbox=None if REAL else True) as accepteasy:
        bill = await accepteasy.create(Bill(reference="LI-CANCEL", description="Order 1001", total=Money("5", "EUR")))
        assert bill.provider_id is not None
        answer = await accepteasy.native.cancel(bill.provider_id)
        print(f"PATCH {answer.Status}: {answer.Bill.Status if answer.Bill else '?'}")
        again = await accepteasy.get(bill.provider_id)
        print(f"{again.provider_id} is now {again.status.value if again.status else '?'} ({again.provider_status})")
        async for found in accepteasy.native.search_bills("LI-CANCEL"):
            print(f"search: {found.ATID} {found.Status}")


if __name__ == "__main__":
    anyio.run(main)

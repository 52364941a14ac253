"""One AcceptEasy bill, created synchronously: the transaction page is ready the moment the answer arrives.

Runs on the in-process sandbox by default; on the real API when ACCEPTEASY_KEY_NAME and ACCEPTEASY_KEY are set.
"""

from __future__ import annotations

import datetime as dt
import os

import anyio

import billkit
from billkit import Bill, Money, Party


def client() -> billkit.AsyncClient:
    if os.environ.get("ACCEPTEASY_KEY_NAME") and os.environ.get("ACCEPTEASY_KEY"):
        return billkit.AsyncClient("accepteasy")  # credentials from the environment
    return billkit.AsyncClient("accepteasy", sandbox=True)


async def main() -> None:
    async with client() as accepteasy:
        bill = await accepteasy.create(
            Bill(
                reference="LI-748925",
                description="Insurance deductible",  # at most 32 characters
                total=Money("12.95", "EUR"),  # sent as "Amount": 1295
                due_date=dt.date.today() + dt.timedelta(days=30),
                counterparty=Party(email="customer@example.com"),
                provider_options={"RecordData": {"RecipientDisplayName": "Arjan"}},
            )
        )
        print(f"{bill.provider_id} {bill.status.value if bill.status else '?'} {bill.total}")
        print(f"pay at {bill.links.get('short_url')}")


if __name__ == "__main__":
    anyio.run(main)

"""One AcceptEasy bill created asynchronously (POST /v2/Bill/async) and awaited, plus one that fails.

Runs on the in-process sandbox by default (virtual time: no real waiting); on the real API when
ACCEPTEASY_KEY_NAME and ACCEPTEASY_KEY are set.
"""

from __future__ import annotations

import datetime as dt
import os

import anyio

import billkit
from billkit import Bill, Money
from billkit.errors import OperationFailed
from billkit.providers.accepteasy.sandbox import BAD_TEMPLATE_ID

REAL = bool(os.environ.get("ACCEPTEASY_KEY_NAME") and os.environ.get("ACCEPTEASY_KEY"))


async def main() -> None:
    async with billkit.AsyncClient("accepteasy", sandbox=None if REAL else True) as accepteasy:
        bill = Bill(reference="LI-748926", description="Insurance deductible", total=Money("28.44", "EUR"),
                    due_date=dt.date.today() + dt.timedelta(days=60))  # fmt: skip
        op = await accepteasy.submit(bill)  # 202 with an ATID; the bill is queued
        print(f"queued {op.id}; token {op.token[:24]}...")
        done = await op  # polls GET /v2/Bill/{ATID}/status, then reads the bill
        print(f"created {done.provider_id}: {done.provider_status}, {done.links.get('transaction_url')}")

        if not REAL:  # a sandbox trigger: this template makes creation fail
            bad = bill.model_copy(update={"reference": "LI-BAD", "provider_options": {"AETemplateID": BAD_TEMPLATE_ID}})
            try:
                await (await accepteasy.submit(bad))
            except OperationFailed as exc:
                print(f"failed as expected: {exc.message}")


if __name__ == "__main__":
    anyio.run(main)

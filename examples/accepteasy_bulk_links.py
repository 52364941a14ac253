"""The payment links of a bulk without a read per bill: one POST, then one status read per poll.

AcceptEasy's bulk status carries ATID, SRRID, PaymentReference and Location per bill, not the links; billkit's
items echo what was sent (total, description, expiry) and, when asked, derive each TransactionURL from the ATID
with the form your AE Template uses (unverified as a rule: see docs/providers/accepteasy.md). The ShortURL exists
only in a read of the bill: ``client.native.bulk_bills(bulk_id)`` reads them all (one GET per bill).

On the sandbox (default) 200 bills; on the real API (ACCEPTEASY_KEY_NAME and ACCEPTEASY_KEY set) BULK_SIZE
(default 3) bills, and TRANSACTION_URL_FORM (default the documented one) must be your template's form.
"""

from __future__ import annotations

import datetime as dt
import os

import anyio

import billkit
from billkit import Bill, Money
from billkit.providers.accepteasy.mapping import DOCUMENTED_TRANSACTION_URL
from billkit.providers.accepteasy.sandbox import AcceptEasySandbox

REAL = bool(os.environ.get("ACCEPTEASY_KEY_NAME") and os.environ.get("ACCEPTEASY_KEY"))


async def main() -> None:
    size = int(os.environ.get("BULK_SIZE", "3")) if REAL else 200
    due = dt.date.today() + dt.timedelta(days=30)
    bills = [
        Bill(reference=f"LNK-{i:04d}", description=f"Invoice {i}", total=Money(f"{20 + i}.95", "EUR"), due_date=due)
        for i in range(size)
    ]
    box = None if REAL else AcceptEasySandbox()
    async with billkit.AsyncClient("accepteasy", sandbox=box) as accepteasy:
        accepteasy.native.derive_payment_links(os.environ.get("TRANSACTION_URL_FORM", DOCUMENTED_TRANSACTION_URL))
        op = await accepteasy.submit_many(bills)
        result = await op
        for item in result.succeeded[:3]:
            assert item.bill is not None
            print(f"{item.bill.reference}: {item.bill.total} due {item.bill.due_date} -> "
                  f"{item.bill.links['transaction_url']}")  # fmt: skip
        print(f"{len(result.succeeded)} links, {len(result.failed)} failed")
        if box is not None:
            reads = box.received("GET", "/v2/Bill/")
            assert all(r.path.endswith("/status") for r in reads), "no read per bill"
            print(f"requests: {len(box.requests)} (1 POST + {len(reads)} status reads) for {size} bills")
            first = result.succeeded[0].bill
            assert first is not None and first.provider_id is not None
            read = await accepteasy.get(first.provider_id)
            assert read.links["transaction_url"] == first.links["transaction_url"] and read.total == first.total
            print(f"a read of {first.reference} agrees; its ShortURL (only in a read): {read.links['short_url']}")


if __name__ == "__main__":
    anyio.run(main)

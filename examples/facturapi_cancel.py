"""Stamp a Facturapi invoice, then cancel it (motive 02: errors without relation) and read it back as VOID.

Runs on the in-process sandbox by default; on Facturapi's API when FACTURAPI_API_KEY is set.
"""

from __future__ import annotations

import anyio
from facturapi_common import invoice, make_client, run_id

from billkit import BillStatus


async def main() -> None:
    async with make_client() as facturapi:
        bill = await facturapi.create(invoice(f"FA-{run_id()}-C"))
        assert bill.provider_id is not None
        answer = await facturapi.native.cancel(bill.provider_id, "02")  # DELETE /invoices/{id}?motive=02
        print(f"cancel {bill.provider_id}: status {answer.status}, cancellation {answer.cancellation_status}")
        if answer.status != "canceled":  # the customer must accept: wait until the SAT says so
            await (await facturapi.wait_for(bill.provider_id, until=BillStatus.VOID))
        print(f"now {(await facturapi.get(bill.provider_id)).status}")


if __name__ == "__main__":
    anyio.run(main)

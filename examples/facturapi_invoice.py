"""One Facturapi invoice stamped synchronously (POST /invoices), then downloaded as PDF and XML.

Runs on the in-process sandbox by default; on Facturapi's API when FACTURAPI_API_KEY is set.
"""

from __future__ import annotations

import anyio
from facturapi_common import invoice, make_client, run_id

from billkit import BillStatus


async def main() -> None:
    async with make_client() as facturapi:
        bill = await facturapi.create(invoice(f"FA-{run_id()}-1"))  # waits for the SAT stamp
        assert bill.provider_id is not None and bill.raw is not None
        print(f"invoice {bill.provider_id}: {bill.provider_status} (UUID {bill.raw.get('uuid')}), total {bill.total}")
        if bill.status is BillStatus.PENDING:  # a 202: Facturapi's recovery path, up to ~50 minutes
            print("the PAC/SAT had a temporary failure; Facturapi retries it. Waiting...")
            bill = await (await facturapi.wait_for(bill.provider_id, until=BillStatus.OPEN))
        assert bill.provider_id is not None
        pdf = await facturapi.native.download_pdf(bill.provider_id)
        xml = await facturapi.native.download_xml(bill.provider_id)
        print(f"PDF {len(pdf)} bytes, XML {len(xml)} bytes; verify at {bill.links.get('verification_url')}")


if __name__ == "__main__":
    anyio.run(main)

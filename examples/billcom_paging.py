"""List bills page by page (max / nextPage), filtered by vendor and sorted by creation time."""

from __future__ import annotations

import anyio
from billcom_common import demo_vendor, make_client, payable, run_id


async def main() -> None:
    async with make_client() as client:
        vendor = await demo_vendor(client)
        prefix = run_id()
        await client.submit_many([payable(vendor, f"PAGE-{prefix}-{i:02d}", f"{i + 1}.00") for i in range(45)])
        filters = [("vendorId", "eq", vendor)]
        pages = 0
        total = 0
        async for page in client.native.list_bill_pages(max=20, filters=filters, sort="createdTime:desc"):
            pages += 1
            total += len(page.results)
            print(f"page {pages}: {len(page.results)} bills, next page: {'yes' if page.next_page else 'no'}")
        print(f"{total} bills of vendor {vendor} in {pages} pages")
        mine = [b async for b in client.native.list_bills(filters=filters)
                if (b.invoice_number or "").startswith(f"PAGE-{prefix}")]  # fmt: skip
        print(f"{len(mine)} of them from this run (the invoice number is matched locally: BILL cannot filter on it)")


if __name__ == "__main__":
    anyio.run(main)

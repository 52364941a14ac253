"""One Facturapi invoice stamped in the background (POST /invoices?async=true) and awaited, one that goes through
Facturapi's 202 recovery path (about 30 minutes of provider time), and one that fails.

Runs on the in-process sandbox by default (virtual time: no real waiting); on Facturapi's API when
FACTURAPI_API_KEY is set (then only the first invoice is made: the triggers exist only in the sandbox).
"""

from __future__ import annotations

import anyio
from facturapi_common import customer, invoice, live, make_client, run_id

from billkit.errors import OperationFailed


async def main() -> None:
    async with make_client() as facturapi:
        run = run_id()
        op = await facturapi.submit(invoice(f"FA-{run}-A"))  # 200 pending; stamped in the background
        print(f"submitted {op.id}: {op.status.value if op.status else '?'}; token {op.token[:24]}...")
        bill = await op  # polls GET /invoices/{id} with a growing interval until valid or failed
        print(f"stamped {bill.provider_id}: {bill.provider_status}, total {bill.total}")
        if live():
            return

        from billkit.providers.facturapi.sandbox import FAIL_TAX_ID, RECOVERY_TAX_ID

        clock = facturapi.clock
        started = clock.now()
        slow = await (await facturapi.submit(invoice(f"FA-{run}-R", party=customer(RECOVERY_TAX_ID))))
        print(f"recovered {slow.provider_id}: {slow.provider_status} after {(clock.now() - started) / 60:.0f} "
              "minutes of provider time")  # fmt: skip
        try:
            await (await facturapi.submit(invoice(f"FA-{run}-F", party=customer(FAIL_TAX_ID))))
        except OperationFailed as exc:
            print(f"failed as expected: {exc.message[:80]}...")


if __name__ == "__main__":
    anyio.run(main)

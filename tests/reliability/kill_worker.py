"""The process that test_kill_and_resume starts, kills and starts again (not a test module).

``submit``: submits a 2,000-item AcceptEasy bulk and 200 async Facturapi invoices to the sandbox servers,
appending each token to ``tokens.txt`` as soon as it has it, then waits for them (it is killed before it
finishes). ``resume``: reads the tokens, resumes every operation it has a token for, submits again (same
idempotency key) each invoice that has none, waits for all, and prints a JSON summary.

Usage: ``python kill_worker.py submit|resume FOLDER AE_URL FA_URL`` with the sandbox credentials in the
environment (ACCEPTEASY_KEY_NAME, ACCEPTEASY_KEY, FACTURAPI_API_KEY).
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any

import anyio

import billkit
from billkit import Address, Bill, LineItem, Money, Party, Tax

AE_ITEMS = 2000
FA_ITEMS = 200
FAST_POLL = billkit.PollPolicy(first_delay=0.1, max_delay=0.5, deadline=120)
FAST_RETRY = billkit.RetryPolicy(initial_delay=0.05, max_delay=0.3, max_attempts=6)


def ae_bills() -> list[Bill]:
    return [Bill(reference=f"KR-AE-{i:04d}", description=f"Kill test {i}", total=Money("12.50", "EUR"),
                 counterparty=Party(email=f"p{i}@example.nl"), provider_options={"SRRID": f"kr-ae-{i:04d}"})
            for i in range(AE_ITEMS)]  # fmt: skip


def fa_bill(i: int) -> Bill:
    customer = Party(name="ESCUELA KEMPER URGATE", tax_id="EKU9003173C9", address=Address(postal_code="42501"),
                     provider_options={"tax_system": "601"})  # fmt: skip
    item = LineItem(description=f"Kill test {i}", unit_price=Money("100.00", "MXN"),
                    taxes=(Tax(type="IVA", rate="0.16"),), provider_options={"product_key": "80111600"})  # fmt: skip
    return Bill(reference=f"KR-FA-{i:03d}", counterparty=customer, line_items=(item,),
                provider_options={"payment_form": "03", "idempotency_key": f"kr-fa-{i:03d}"})  # fmt: skip


def clients(ae_url: str, fa_url: str) -> tuple[billkit.AsyncClient, billkit.AsyncClient]:
    ae = billkit.AsyncClient("accepteasy", base_url=ae_url, poll=FAST_POLL, retry=FAST_RETRY)
    fa = billkit.AsyncClient("facturapi", base_url=fa_url, poll=FAST_POLL, retry=FAST_RETRY)
    return ae, fa


def record(tokens: Path, line: str) -> None:
    with tokens.open("a") as fh:
        fh.write(line + "\n")
        fh.flush()
        os.fsync(fh.fileno())


async def submit(folder: Path, ae_url: str, fa_url: str) -> None:
    tokens = folder / "tokens.txt"
    ae, fa = clients(ae_url, fa_url)
    async with ae, fa:
        bulk = await ae.submit_many(ae_bills())
        record(tokens, f"ae {bulk.token}")
        ops: list[Any] = [bulk]
        gate = anyio.CapacityLimiter(4)

        async def one(i: int) -> None:
            async with gate:
                op = await fa.submit(fa_bill(i))
                record(tokens, f"fa {i} {op.token}")
                ops.append(op)

        async with anyio.create_task_group() as tg:
            for i in range(FA_ITEMS):
                tg.start_soon(one, i)
        await billkit.gather(*ops)
    print("submit finished without being killed", flush=True)


async def resume(folder: Path, ae_url: str, fa_url: str) -> None:
    lines = (folder / "tokens.txt").read_text().splitlines()
    ae_token = next(line.split()[1] for line in lines if line.startswith("ae "))
    fa_tokens = {int(p[1]): p[2] for p in (line.split() for line in lines if line.startswith("fa ")) if len(p) == 3}
    ae, fa = clients(ae_url, fa_url)
    async with ae, fa:
        bulk = await ae.resume(ae_token, bulk=True)
        ops: list[Any] = [None] * FA_ITEMS

        async def one(i: int) -> None:
            ops[i] = await fa.resume(fa_tokens[i], bulk=False) if i in fa_tokens else await fa.submit(fa_bill(i))

        async with anyio.create_task_group() as tg:
            for i in range(FA_ITEMS):
                tg.start_soon(one, i)
        result = await bulk
        invoices = await billkit.gather(*ops)
    print(json.dumps({"resumed": len(fa_tokens), "resubmitted": FA_ITEMS - len(fa_tokens),
                      "ae_succeeded": len(result.succeeded), "ae_failed": len(result.failed),
                      "fa_statuses": sorted({str(b.provider_status) for b in invoices})}))  # fmt: skip


if __name__ == "__main__":
    phase, folder, ae_url, fa_url = sys.argv[1], Path(sys.argv[2]), sys.argv[3], sys.argv[4]
    anyio.run(submit if phase == "submit" else resume, folder, ae_url, fa_url)

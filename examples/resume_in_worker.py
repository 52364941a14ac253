"""Submit in one process, wait in another: an operation's token is all a worker needs.

The web process submits a Facturapi invoice and a bulk of AcceptEasy payment requests, stores the two tokens
(here: a JSON file; in your app: a database row or a queue message) and exits without waiting. A second
process (a worker, started here with ``subprocess``) resumes both operations from their tokens and awaits them.

Tokens carry no secrets: the worker brings its own credentials. On the sandboxes the providers' state lives in
files (``Sandbox.save`` / ``Sandbox.load``) so the worker sees what the web process created, on the same virtual
clock; with FACTURAPI_API_KEY / ACCEPTEASY_KEY_NAME + ACCEPTEASY_KEY set, both processes use the real APIs.

Run: ``.venv/bin/python examples/resume_in_worker.py``
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import anyio
from facturapi_common import invoice, run_id

import billkit
from billkit import Bill, Money, Party
from billkit.sandboxing import Sandbox
from billkit.testing import VirtualClock, sandbox

LIVE = {"facturapi": ("FACTURAPI_API_KEY",), "accepteasy": ("ACCEPTEASY_KEY_NAME", "ACCEPTEASY_KEY")}


def live(provider: str) -> bool:
    return all(os.environ.get(v) for v in LIVE[provider])


def client(provider: str, state: Path) -> billkit.AsyncClient:
    """The real API when its keys are set; else the sandbox saved in ``state`` (or a fresh one)."""
    if live(provider):
        return billkit.AsyncClient(provider)
    box = Sandbox.load(state) if state.exists() else sandbox(provider, clock=VirtualClock())
    return billkit.AsyncClient(provider, sandbox=box)


def save(c: billkit.AsyncClient, state: Path) -> None:
    if c.sandbox is not None:
        c.sandbox.save(state)  # the "server side" outlives this process


async def web_process(folder: Path) -> None:
    run = run_id()
    async with client("facturapi", folder / "facturapi.box") as fa, client("accepteasy", folder / "ae.box") as ae:
        op = await fa.submit(invoice(f"WEB-{run}-1"))
        bills = [Bill(reference=f"WEB-{run}-{i:03d}", description=f"Order {i}", total=Money("19.95", "EUR"),
                      counterparty=Party(email=f"buyer{i}@example.nl")) for i in range(50)]  # fmt: skip
        bulk = await ae.submit_many(bills)
        tokens = {"facturapi": op.token, "accepteasy": bulk.token}
        save(fa, folder / "facturapi.box")
        save(ae, folder / "ae.box")
    (folder / "tokens.json").write_text(json.dumps(tokens))
    print(f"web   (pid {os.getpid()}): submitted invoice {op.id} ({op.provider_status}) and a bulk of {len(bills)}; "
          f"tokens saved, not waiting")  # fmt: skip


async def worker(folder: Path) -> None:
    tokens = json.loads((folder / "tokens.json").read_text())
    async with client("facturapi", folder / "facturapi.box") as fa, client("accepteasy", folder / "ae.box") as ae:
        invoice_op = await fa.resume(tokens["facturapi"])
        bulk_op = await ae.resume(tokens["accepteasy"])
        stamped, result = await billkit.gather(invoice_op, bulk_op)
        print(f"worker (pid {os.getpid()}): invoice {stamped.provider_id} is {stamped.provider_status}; "
              f"bulk: {len(result.succeeded)} created, {len(result.failed)} failed")  # fmt: skip


def main() -> None:
    if len(sys.argv) == 3 and sys.argv[1] == "--worker":
        anyio.run(worker, Path(sys.argv[2]))
        return
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        anyio.run(web_process, folder)
        subprocess.run([sys.executable, __file__, "--worker", str(folder)], check=True)


if __name__ == "__main__":
    main()

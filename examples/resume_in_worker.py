"""Submit in one process, wait in another: an operation's token is all a worker needs.

Three processes, as in a deployment:

* **the providers**: this process serves the Facturapi and AcceptEasy sandboxes over HTTP on loopback
  (``billkit.testing.served.serve``, on the real clock), so, as with a real API, the bills live in one place that
  every other process reaches over the network;
* **the web process** (started here with ``subprocess``) submits a Facturapi invoice and a bulk of 50 AcceptEasy
  payment requests, stores the two tokens (here: a JSON file; in your app: a database row or a queue message) and
  exits without waiting;
* **the worker** (another ``subprocess``) resumes both operations from their tokens and awaits them.

Both are configured the way deployed code is, by the environment (``FACTURAPI_BASE_URL`` and
``FACTURAPI_API_KEY``; ``ACCEPTEASY_BASE_URL``, ``ACCEPTEASY_KEY_NAME`` and ``ACCEPTEASY_KEY``): their code is
the same against the sandboxes and the real APIs. Tokens carry no secrets: the worker brings its own credentials.
With FACTURAPI_API_KEY / ACCEPTEASY_KEY_NAME + ACCEPTEASY_KEY already set, that provider is not served and both
processes use its real API. ``billkit sandbox serve PROVIDER`` serves a sandbox the same way from a shell.

Needs only ``pip install billkit``. Run: ``.venv/bin/python examples/resume_in_worker.py``
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from contextlib import ExitStack
from pathlib import Path

import anyio
from facturapi_common import invoice, run_id

import billkit
from billkit import Bill, BulkResult, Money, Party
from billkit.clock import SystemClock
from billkit.sandboxing import Sandbox
from billkit.testing import sandbox
from billkit.testing.served import serve

LIVE = {"facturapi": ("FACTURAPI_API_KEY",), "accepteasy": ("ACCEPTEASY_KEY_NAME", "ACCEPTEASY_KEY")}
CREDENTIAL_ENV = {"api_key": "FACTURAPI_API_KEY", "key_name": "ACCEPTEASY_KEY_NAME", "key": "ACCEPTEASY_KEY"}


def live(provider: str) -> bool:
    return all(os.environ.get(v) for v in LIVE[provider])


async def web_process(folder: Path) -> None:
    run = run_id()
    # the provider, its URL and credentials: from the environment, as in production
    async with billkit.AsyncClient("facturapi") as fa, billkit.AsyncClient("accepteasy") as ae:
        op = await fa.submit(invoice(f"WEB-{run}-1"))
        bills = [Bill(reference=f"WEB-{run}-{i:03d}", description=f"Order {i}", total=Money("19.95", "EUR"),
                      counterparty=Party(email=f"buyer{i}@example.nl")) for i in range(50)]  # fmt: skip
        bulk = await ae.submit_many(bills)
        tokens = {"facturapi": op.token, "accepteasy": bulk.token}
    (folder / "tokens.json").write_text(json.dumps(tokens))
    print(f"web    (pid {os.getpid()}): submitted invoice {op.id} ({op.provider_status}) and a bulk of {len(bills)}; "
          f"tokens saved, not waiting", flush=True)  # fmt: skip


async def worker(folder: Path) -> None:
    tokens = json.loads((folder / "tokens.json").read_text())
    async with billkit.AsyncClient("facturapi") as fa, billkit.AsyncClient("accepteasy") as ae:
        invoice_op = await fa.resume(tokens["facturapi"], bulk=False)  # typed Operation[Bill]
        bulk_op = await ae.resume(tokens["accepteasy"], bulk=True)  # typed BulkOperation
        print(f"worker (pid {os.getpid()}): resumed {invoice_op.id} and bulk {bulk_op.id}; waiting", flush=True)
        stamped, result = await billkit.gather(invoice_op, bulk_op)  # each typed Bill | BulkResult: narrow
        assert isinstance(stamped, Bill) and isinstance(result, BulkResult)
        print(f"worker (pid {os.getpid()}): invoice {stamped.provider_id} is {stamped.provider_status}; "
              f"bulk: {len(result.succeeded)} created, {len(result.failed)} failed", flush=True)  # fmt: skip


def sandboxes() -> dict[str, Sandbox]:
    """The sandboxes to serve (a provider whose keys are set is used for real), on the real clock, with the
    asynchronous work shortened so the example takes seconds: Facturapi stamps after 1 s, AcceptEasy starts a
    bulk after 1 s."""
    boxes: dict[str, Sandbox] = {}
    if not live("facturapi"):
        facturapi = sandbox("facturapi", clock=SystemClock())
        facturapi.async_delay = 1.0
        boxes["facturapi"] = facturapi
    if not live("accepteasy"):
        accepteasy = sandbox("accepteasy", clock=SystemClock())
        accepteasy.bulk_delay = 1.0
        boxes["accepteasy"] = accepteasy
    return boxes


def main() -> None:
    if len(sys.argv) == 3 and sys.argv[1] in ("--web", "--worker"):
        anyio.run(web_process if sys.argv[1] == "--web" else worker, Path(sys.argv[2]))
        return
    env = dict(os.environ)
    boxes = sandboxes()
    with ExitStack() as stack:
        for provider, box in boxes.items():
            served = stack.enter_context(serve(box))
            env[f"{provider.upper()}_BASE_URL"] = served.url
            env.update({CREDENTIAL_ENV[name]: value for name, value in box.credentials.items()})
            print(f"provider (pid {os.getpid()}): the {provider} sandbox is served at {served.url}", flush=True)
        folder = Path(stack.enter_context(tempfile.TemporaryDirectory()))
        for role in ("--web", "--worker"):
            subprocess.run([sys.executable, __file__, role, str(folder)], env=env, check=True)
    for provider, box in boxes.items():
        print(f"provider (pid {os.getpid()}): {provider} received {len(box.received('POST'))} submit(s) and "
              f"{len(box.received('GET'))} status read(s) over HTTP")  # fmt: skip
    print("done: the worker finished what the web process started, from the tokens alone")


if __name__ == "__main__":
    main()

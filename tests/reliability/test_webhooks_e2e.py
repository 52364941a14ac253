"""End to end: a sandbox served by ``billkit sandbox serve`` in its own process sends signed webhooks to a
receiver in this process, and pending operations finish from them, with no status read after the submit.

The served sandbox runs on the real clock (Facturapi stamps an async invoice after 4 s); the waiting client's
polling is pushed out of the way (a first read after an hour), so what finishes each operation is its webhook.
Waits are on the operations themselves (with a timeout), never a fixed sleep.
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

import billkit
from billkit import BillStatus
from billkit.webhooks import Receiver
from tests.test_batch import bills_for

pytestmark = pytest.mark.soak
ROOT = Path(__file__).resolve().parents[2]


@contextmanager
def receiving(receiver: Receiver) -> Iterator[str]:
    """The receiver behind a plain HTTP server on loopback; yields its URL."""

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: object) -> None:
            return

        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("content-length") or 0))
            done = receiver.receive(body, dict(self.headers.items()))
            self.send_response(done.status)
            self.send_header("content-length", "0")
            self.end_headers()

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/hooks"
    finally:
        server.shutdown()
        server.server_close()


def test_a_served_sandbox_s_webhooks_finish_pending_operations_in_another_process(tmp_path: Path) -> None:
    script = Path(sys.executable).with_name("billkit")
    command = [str(script)] if script.exists() else [sys.executable, "-m", "billkit.cli"]
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    seen: list[str] = []
    holder: dict[str, billkit.Client] = {}

    class Forward:  # the receiver's client is made once the server's URL is known
        provider = "facturapi"

        def verify_webhook(self, body: bytes, headers: dict[str, str], secret: object) -> object:
            return holder["client"].verify_webhook(body, headers, secret)  # type: ignore[arg-type]

        def handle_webhook_event(self, event: object) -> int:
            return holder["client"].handle_webhook_event(event)

    receiver = Receiver(Forward(), secret="whsec_billkit_sandbox", on_event=lambda e: seen.append(e.id))
    with receiving(receiver) as hook_url:
        proc = subprocess.Popen([*command, "sandbox", "serve", "facturapi", "--state", str(tmp_path / "box"),
                                 "--webhook-url", hook_url], env=env, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True)  # fmt: skip
        try:
            assert proc.stdout is not None
            first = proc.stdout.readline()
            assert " sandbox at http://127.0.0.1:" in first, first + (proc.stderr.read() if proc.stderr else "")
            url = first.split(" sandbox at ", 1)[1].strip()
            key = next(line.split("=", 1)[1].strip() for line in iter(proc.stdout.readline, "")
                       if line.startswith("export FACTURAPI_API_KEY="))  # fmt: skip
            waiting = billkit.Client("facturapi", base_url=url, api_key=key,
                                     poll=billkit.PollPolicy(first_delay=3600, max_delay=3600))  # fmt: skip
            holder["client"] = waiting
            ops = [waiting.submit(b) for b in bills_for("facturapi", 3)]
            results = [op.result(timeout=60) for op in ops]
            assert [r.status for r in results] == [BillStatus.OPEN] * 3
            assert len(seen) == 3, "each operation finished from its webhook, processed once"
            assert waiting.requests_made == 3, "the submits only: no status read"
            waiting.close()
        finally:
            proc.terminate()
            proc.communicate(timeout=30)

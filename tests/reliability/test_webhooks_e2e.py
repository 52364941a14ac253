"""End to end in three processes: served sandboxes send signed webhooks to a receiver in another process, which
hands them on to a third process whose pending operations finish from them, with no status read after the submit.

1. **the providers**: ``billkit sandbox serve facturapi`` and ``billkit sandbox serve billcom``, each its own
   process, on the real clock (Facturapi stamps an async invoice after 4 s; BILL pays each new bill after 1.5 s,
   set in the state file the server starts from), each POSTing its signed webhooks to the receiver;
2. **the receiver** (``tests/reliability/webhook_edge.py``): a Flask app with a ``Receiver`` per provider that
   verifies, de-duplicates and forwards each delivery, unchanged, through a ``Relay`` to the waiting process;
3. **the waiting process** (this one): blocking clients that submitted the bills and hold the pending operations,
   behind a small endpoint where a ``Receiver`` per client verifies each relayed delivery again and hands it to
   its client. Its polling is pushed out of the way (a first read after an hour), so what finishes each operation
   is its webhook.

Asserted: every operation ends with the right status (two invoices stamped, one refused by the SAT with the
reason only its webhook carries, two BILL bills paid); each event reaches the waiting process once, and a
duplicate delivery (a provider's redelivery) or a forged one stops at the receiver; the waiting clients made only
their submit requests, and the providers' own records (their state files) hold no status read. Waits are on
operations and conditions with timeouts, never a fixed sleep.
"""

from __future__ import annotations

import json
import os
import queue
import signal
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator, Mapping
from contextlib import ExitStack, contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import IO, Any

import httpx
import pytest

import billkit
from billkit import Address, BillkitError, BillStatus, ConfigurationError, OperationFailed, Party
from billkit.client import adapter_class
from billkit.clock import SystemClock
from billkit.providers.billcom.sandbox import BillcomSandbox
from billkit.providers.facturapi.sandbox import FAIL_TAX_ID, SAT_REFUSAL, FacturapiSandbox
from billkit.sandboxing import Sandbox
from billkit.webhooks import Receiver, Relay
from tests.test_batch import bills_for

pytestmark = pytest.mark.soak
ROOT = Path(__file__).resolve().parents[2]
WAIT = 30.0  # seconds: a generous bound on each wait (the whole test takes about 6 s)
SECRETS = {"facturapi": FacturapiSandbox.webhook_secret, "billcom": BillcomSandbox.webhook_security_key}
SANDBOXES: dict[str, type[Sandbox]] = {"facturapi": FacturapiSandbox, "billcom": BillcomSandbox}
#: a first status read after an hour: the webhooks are what finish the operations
LATE = billkit.PollPolicy(first_delay=3600, max_delay=3600)


def credentials_env() -> dict[str, str]:
    """Every provider's sandbox credentials as its environment variables (what ``sandbox serve`` prints)."""
    env = {}
    for provider, box in SANDBOXES.items():
        for cred in adapter_class(provider).credentials:
            if cred.name in box.credentials:
                env[cred.env] = box.credentials[cred.name]
        env[f"{provider.upper()}_WEBHOOK_SECRET"] = SECRETS[provider]
    return env


class Child:
    """A child process whose stdout is read by a thread, so a line can be waited for with a timeout."""

    def __init__(self, args: list[str], *, env: Mapping[str, str], stderr: Path) -> None:
        self._err: IO[str] = stderr.open("w")
        self.stderr = stderr
        self.proc = subprocess.Popen(args, cwd=ROOT, env=dict(env), stdout=subprocess.PIPE, stderr=self._err,
                                     text=True)  # fmt: skip
        self._lines: queue.Queue[str | None] = queue.Queue()
        self._back: str | None = None  # a line read one too far
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self._lines.put(line.rstrip("\n"))
        self._lines.put(None)

    def _next(self, waiting_for: str) -> str:
        if self._back is not None:
            back, self._back = self._back, None
            return back
        try:
            line = self._lines.get(timeout=WAIT)
        except queue.Empty:
            raise AssertionError(f"no {waiting_for} in {WAIT:g} s: {self.stderr.read_text()}") from None
        if line is None:
            raise AssertionError(f"exited ({self.proc.wait()}) before {waiting_for}: {self.stderr.read_text()}")
        return line

    def expect(self, prefix: str) -> str:
        """The rest of the first line (from now) that starts with ``prefix``."""
        while not (line := self._next(repr(prefix))).startswith(prefix):
            pass
        return line[len(prefix) :].strip()

    def printed_credentials(self) -> dict[str, str]:
        """The ``export NAME=VALUE`` lines a served sandbox prints next (after its URL)."""
        found = {}
        while (line := self._next("its credentials")).startswith("export "):
            name, _, value = line.removeprefix("export ").partition("=")
            found[name] = value
        self._back = line
        return found

    def send(self, sig: int) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(sig)

    def stop(self, sig: int = signal.SIGTERM) -> None:
        """Signal it (if it still runs) and wait for it to exit; killed if it does not in time."""
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout=WAIT)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._err.close()


@contextmanager
def child(args: list[str], *, env: Mapping[str, str], stderr: Path, stop: int = signal.SIGTERM) -> Iterator[Child]:
    started = Child(args, env=env, stderr=stderr)
    try:
        yield started
    finally:
        started.stop(stop)


class WorkerEndpoint:
    """The waiting process's own endpoint: relayed deliveries arrive at ``/<provider>``, where a Receiver over the
    waiting client verifies each again and hands it to that client. Records what arrived, in order."""

    def __init__(self) -> None:
        self.receivers: dict[str, Receiver] = {}
        #: (provider, event id, what the receiver here did, how many operations it reached) per delivery
        self.arrived: list[tuple[str, str, str, int]] = []
        #: the raw deliveries, as relayed, by event id
        self.deliveries: dict[str, tuple[bytes, dict[str, str]]] = {}
        self._changed = threading.Condition()

    def handle(self, path: str, body: bytes, headers: dict[str, str]) -> int:
        receiver = self.receivers.get(path.strip("/"))
        if receiver is None:
            return 404
        done = receiver.receive(body, headers)
        data = json.loads(body)
        key = str(data.get("id") or data["metadata"]["eventId"])
        with self._changed:
            self.arrived.append((receiver.client.provider, key, done.message, done.matched))
            self.deliveries[key] = (body, headers)
            self._changed.notify_all()
        return done.status

    def wait_until(self, condition: Callable[[], bool]) -> None:
        with self._changed:
            assert self._changed.wait_for(condition, timeout=WAIT), f"not met in {WAIT:g} s: {self.arrived}"

    @contextmanager
    def serving(self) -> Iterator[str]:
        endpoint = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: object) -> None:
                return

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("content-length") or 0))
                status = endpoint.handle(self.path, body, dict(self.headers.items()))
                self.send_response(status)
                self.send_header("content-length", "0")
                self.end_headers()

        server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True).start()
        try:
            yield f"http://127.0.0.1:{server.server_address[1]}"
        finally:
            server.shutdown()
            server.server_close()


def test_served_sandboxes_webhooks_finish_operations_in_a_third_process_through_a_receiver(tmp_path: Path) -> None:
    script = Path(sys.executable).with_name("billkit")
    billkit_command = [str(script)] if script.exists() else [sys.executable, "-m", "billkit.cli"]
    env = {**os.environ, **credentials_env(), "PYTHONPATH": os.pathsep.join([str(ROOT / "src"), str(ROOT)])}
    states = {provider: tmp_path / f"{provider}.state" for provider in SANDBOXES}
    bill_box = BillcomSandbox(SystemClock())
    bill_box.auto_pay = (0.5, 1.5)  # every new bill: payment scheduled after 0.5 s, paid after 1.5 s
    bill_box.save(states["billcom"])  # what `billkit sandbox serve billcom --state ...` starts from
    worker = WorkerEndpoint()

    with ExitStack() as stack:
        worker_url = stack.enter_context(worker.serving())
        edge = stack.enter_context(child(
            [sys.executable, "-m", "tests.reliability.webhook_edge",
             *(f"{provider}={worker_url}/{provider}" for provider in SANDBOXES)],
            env=env, stderr=tmp_path / "edge.err"))  # fmt: skip
        edge_url = edge.expect("receiving at ")
        servers: dict[str, Child] = {}
        for provider in SANDBOXES:  # stopped with SIGINT: a served sandbox saves its state as it stops
            serve = [*billkit_command, "sandbox", "serve", provider, "--state", str(states[provider]),
                     "--webhook-url", f"{edge_url}/{provider}"]  # fmt: skip
            servers[provider] = stack.enter_context(
                child(serve, env=env, stderr=tmp_path / f"{provider}.err", stop=signal.SIGINT)
            )
        clients: dict[str, billkit.Client] = {}
        for provider, server in servers.items():
            url = server.expect(f"{provider} sandbox at ")
            printed = server.printed_credentials()
            assert server.expect("webhook secret: ") == SECRETS[provider]
            creds: dict[str, Any] = {
                c.name: printed[c.env] for c in adapter_class(provider).credentials if c.env in printed
            }
            clients[provider] = stack.enter_context(billkit.Client(provider, base_url=url, poll=LATE, **creds))
        for provider, client in clients.items():
            worker.receivers[provider] = Receiver(client, secret=SECRETS[provider])

        # -- submit, in the waiting process ----------------------------------------------------------------------
        fa, bc = clients["facturapi"], clients["billcom"]
        invoices = bills_for("facturapi", 3)
        refused = Party(name="SAT refuses", tax_id=FAIL_TAX_ID, address=Address(postal_code="86991"),
                        provider_options={"tax_system": "601"})  # fmt: skip
        invoices[2] = invoices[2].model_copy(update={"counterparty": refused})
        invoice_ops = [fa.submit(b) for b in invoices]
        assert not any(op.done() for op in invoice_ops), "async invoices are pending when submitted"
        payment_ops = []
        for bill in bills_for("billcom", 2):
            created = bc.submit(bill).result(timeout=WAIT)  # BILL creates synchronously: done at once
            assert created.status is BillStatus.OPEN and created.provider_id
            payment_ops.append(bc.wait_for(created.provider_id, until=BillStatus.PAID))
        submitted = {provider: client.requests_made for provider, client in clients.items()}
        assert submitted["facturapi"] == 3, "one request per invoice"

        # -- the webhooks finish them ----------------------------------------------------------------------------
        assert [op.result(timeout=WAIT).status for op in invoice_ops[:2]] == [BillStatus.OPEN] * 2
        with pytest.raises(OperationFailed) as failed:
            invoice_ops[2].result(timeout=WAIT)
        assert SAT_REFUSAL in str(failed.value), "the reason is only in the webhook event"
        assert [op.result(timeout=WAIT).status for op in payment_ops] == [BillStatus.PAID] * 2
        assert {provider: client.requests_made for provider, client in clients.items()} == submitted, "no read"

        # -- each event reached this process once ----------------------------------------------------------------
        expected = {"facturapi": 3, "billcom": 4}  # one per invoice; per bill: payment scheduled, then paid
        worker.wait_until(lambda: len(worker.arrived) == sum(expected.values()))
        for provider, count in expected.items():
            keys = [key for p, key, _, _ in worker.arrived if p == provider]
            assert len(keys) == len(set(keys)) == count, (provider, worker.arrived)
        outcomes = {(message, matched) for _, _, message, matched in worker.arrived}
        assert outcomes == {("processed", 1)}, "each processed here once, and each reached its operation"

        # -- a provider's redelivery, and a forgery, stop at the receiver ----------------------------------------
        with httpx.Client(timeout=WAIT) as http:
            for provider in SANDBOXES:
                key = next(k for p, k, _, _ in worker.arrived if p == provider)
                body, headers = worker.deliveries[key]
                sent = {k: v for k, v in headers.items() if k.lower() not in ("host", "content-length")}
                again = http.post(f"{edge_url}/{provider}", content=body, headers=sent)
                assert (again.status_code, again.json()) == (200, {"message": "already processed"})
                forged = http.post(f"{edge_url}/{provider}", content=body.replace(b'"', b' "', 1), headers=sent)
                assert forged.status_code == 400, forged.text
        assert len(worker.arrived) == sum(expected.values()), "nothing more was relayed"

        # -- the providers' own records: the submits, and no status read -----------------------------------------
        for client in clients.values():
            client.close()  # (BILL's logout is sent while its server is up)
        for server in servers.values():
            server.send(signal.SIGINT)  # both at once: each takes a moment to stop
        for server in servers.values():
            server.stop(signal.SIGINT)
        for provider, state in states.items():
            reads = [r for r in Sandbox.load(state).requests if r.method == "GET" and "/vendors/" not in r.path]
            assert reads == [], (provider, reads)  # (a BILL submit reads the vendor's currency: part of the submit)


def test_a_delivery_the_relay_cannot_hand_on_is_answered_500_and_its_redelivery_goes_through() -> None:
    box = FacturapiSandbox()
    body, headers = box.webhook_request({"id": "evt_1", "type": "invoice.status_updated", "data": {"object": {}}})
    headers = {**headers, "Host": "edge.example", "Content-Length": str(len(body))}
    answers = iter([httpx.Response(503), httpx.Response(204)])  # the worker is not ready, then it is
    relayed: list[httpx.Request] = []

    def worker(request: httpx.Request) -> httpx.Response:
        relayed.append(request)
        return next(answers)

    def refused(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("refused", request=request)

    relay = Relay("http://worker/hooks", transport=httpx.MockTransport(worker))
    with billkit.Client("facturapi", sandbox=box) as client, relay:
        edge = Receiver(client, secret=box.webhook_secret, forward=relay)
        first = edge.receive(body, headers)
        assert (first.status, first.message) == (500, "forward failed: BillkitError"), "the provider delivers again"
        again = edge.receive(body, headers)
        assert (again.status, again.message) == (200, "processed"), "not marked seen when it failed"
        assert edge.receive(body, headers).duplicate, "then a duplicate, not relayed"
    assert [r.content for r in relayed] == [body, body], "the raw body, as it arrived"
    sent = relayed[-1].headers
    assert sent["facturapi-signature"] == headers["Facturapi-Signature"] and sent["host"] == "worker"
    down = Relay("http://user:pw@worker:1/x", transport=httpx.MockTransport(refused))
    with down, pytest.raises(BillkitError, match=r"relay to http://worker:1/x failed: ConnectError"):
        down(body, headers)  # (the URL's credentials are not in the message)
    with pytest.raises(ConfigurationError):
        Relay()

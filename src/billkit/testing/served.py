"""A sandbox served over real HTTP on loopback, so other processes (a web app, a worker, a teammate's service)
can use it, and so its state outlives the processes that call it.

::

    with billkit.testing.served.serve(box, webhook_url="http://127.0.0.1:8000/webhooks/facturapi") as served:
        client = billkit.Client("facturapi", base_url=served.url, api_key=box.credentials["api_key"])

or from a shell: ``billkit sandbox serve facturapi --port 8088 --state box.json --webhook-url URL``.

* Each request is handed to the sandbox under one lock (sandboxes are not thread-safe) and answered; an injected
  "dropped connection" closes the socket without an answer, which is what a client sees when the server acted
  and the connection broke.
* ``state``: the sandbox is loaded from this file if it exists, and saved to it after every request that may
  change it, before the answer goes out (a killed server loses nothing it answered).
* ``webhook_url``: the webhooks the sandbox would send (Facturapi's and BILL's events, AcceptEasy's
  notifications) are POSTed there, signed, as the sandbox's clock reaches them; each until it is answered 2xx.
* ``hold(method, path)`` / ``release`` and ``in_flight`` are for tests: stall chosen requests until released;
  count the requests being served.
"""

from __future__ import annotations

import contextlib
import os
import threading
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx

from billkit.sandboxing import Sandbox

__all__ = ["Served", "serve"]


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request: object, client_address: object) -> None:
        return  # a client killed mid-request resets its connection: expected here, not worth a traceback


@dataclass
class Served:
    """A running served sandbox: ``url`` is the base URL to give clients."""

    box: Sandbox
    url: str
    webhooks_sent: list[str] = field(default_factory=list)


def _events(box: Sandbox) -> list[dict[str, Any]]:
    """The webhooks ``box`` would have sent by now, oldest first (each provider names them its own way)."""
    for name in ("events", "notifications"):
        method = getattr(box, name, None)
        if callable(method):
            found: list[dict[str, Any]] = method()
            return found
    return []


def _key(event: dict[str, Any]) -> str:
    import hashlib
    import json

    own = event.get("id") or (event.get("metadata") or {}).get("eventId")
    return str(own) if own else hashlib.sha256(json.dumps(event, sort_keys=True, default=str).encode()).hexdigest()


@contextlib.contextmanager
def serve(box: Sandbox, *, host: str = "127.0.0.1", port: int = 0, state: str | os.PathLike[str] | None = None,
          webhook_url: str | None = None, hold: Callable[[str, str], bool] | None = None,
          release: threading.Event | None = None, in_flight: Counter[str] | None = None,
          tick: float = 0.05) -> Iterator[Served]:  # fmt: skip
    """Serve ``box`` while the block runs (see the module)."""
    lock = threading.Lock()
    prefix = httpx.URL(box.base_url).path.rstrip("/")
    saved = Path(state) if state is not None else None

    def save() -> None:
        if saved is not None:
            box.save(saved)

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        counted = False

        def log_message(self, format: str, *args: object) -> None:
            return

        def _any(self) -> None:
            if in_flight is not None:
                with lock:
                    in_flight["now"] += 1
                    in_flight["requests"] += 1
                    in_flight["peak"] = max(in_flight["peak"], in_flight["now"])
                self.counted = True
            try:
                self._serve()
            finally:
                self._answered()

        def _answered(self) -> None:
            """A request stops counting just before its answer goes out: a client may send its next request as
            soon as it has the answer, before this thread has finished writing."""
            if in_flight is not None and self.counted:
                self.counted = False
                with lock:
                    in_flight["now"] -= 1

        def _serve(self) -> None:
            length = int(self.headers.get("content-length") or 0)
            body = self.rfile.read(length) if length else b""
            url = httpx.URL(box.base_url).copy_with(raw_path=self.path.encode())
            request = httpx.Request(self.command, url, headers=list(self.headers.items()), content=body)
            if hold is not None and release is not None:
                with lock:
                    stall = hold(self.command, url.path)
                if stall:
                    release.wait()
            try:
                with lock:
                    try:
                        response = box.handle_request(request)
                        content = response.read()
                    finally:
                        if self.command != "GET":
                            save()
            except httpx.TransportError:
                self.close_connection = True  # an injected drop: no answer at all
                return
            self._answered()
            self.send_response(response.status_code)
            for name, value in response.headers.items():
                if name.lower() not in ("content-length", "transfer-encoding", "connection"):
                    self.send_header(name, value)
            self.send_header("content-length", str(len(content)))
            self.end_headers()
            self.wfile.write(content)

        do_GET = do_POST = do_PATCH = do_DELETE = do_PUT = _any

    server = _Server((host, port), Handler)
    served = Served(box, f"http://{host}:{server.server_address[1]}{prefix}")
    stop = threading.Event()
    threads = [threading.Thread(target=server.serve_forever, daemon=True)]
    if webhook_url is not None:
        threads.append(threading.Thread(target=_send_webhooks, args=(box, lock, webhook_url, served, stop, tick),
                                        daemon=True))  # fmt: skip
    for thread in threads:
        thread.start()
    try:
        yield served
    finally:
        stop.set()
        server.shutdown()
        server.server_close()
        with lock:
            save()


def _send_webhooks(box: Sandbox, lock: threading.Lock, url: str, served: Served, stop: threading.Event,
                   tick: float) -> None:  # fmt: skip
    """POST every webhook the sandbox's clock has reached, signed, until each is answered 2xx."""
    delivered: set[str] = set()
    with httpx.Client(timeout=5.0) as http:
        while not stop.wait(tick):
            with lock:
                due = [(key, event) for event in _events(box) if (key := _key(event)) not in delivered]
                requests = [(key, box.webhook_request(event)) for key, event in due]  # type: ignore[attr-defined]
            for key, (body, headers) in requests:
                try:
                    answer = http.post(url, content=body, headers=headers)
                except httpx.HTTPError:
                    continue  # the receiver is down: delivered again next tick
                if 200 <= answer.status_code < 300:
                    delivered.add(key)
                    served.webhooks_sent.append(key)

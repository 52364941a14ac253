"""A billkit sandbox served over real HTTP on 127.0.0.1, so its state outlives the processes that call it.

Each request is decoded, handed to the sandbox's transport under one lock (the sandboxes are not
thread-safe), and the answer written back. An injected "dropped connection" closes the socket without an
answer, which is what a client sees when the server acted and the connection broke.
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import anyio
import httpx

from billkit.sandboxing import Sandbox


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request: object, client_address: object) -> None:
        return  # a client killed mid-request resets its connection: expected here, not worth a traceback


@contextmanager
def serve(box: Sandbox, *, hold: Callable[[str, str], bool] | None = None,
          release: threading.Event | None = None, in_flight: Counter[str] | None = None) -> Iterator[str]:  # fmt: skip
    """Serve ``box`` on a free port of 127.0.0.1 while the block runs; yields the base URL to give clients.

    ``hold(method, path)``: a request for which it answers True waits (before reaching the sandbox) until
    ``release`` is set, like a server that stalls: the test decides what is in flight when it kills a client.
    ``in_flight``: kept up to date with the requests being served (``now``), the most at once (``peak``) and
    how many in all (``requests``); the sandbox itself answers one at a time, slowly enough that clients overlap.
    """
    lock = threading.Lock()
    prefix = httpx.URL(box.base_url).path.rstrip("/")

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: object) -> None:
            return

        def _any(self) -> None:
            if in_flight is None:
                return self._serve()
            with lock:
                in_flight["now"] += 1
                in_flight["requests"] += 1
                in_flight["peak"] = max(in_flight["peak"], in_flight["now"])
            self.counted = True
            try:
                return self._serve()
            finally:
                self._answered()

        def _answered(self) -> None:
            """The request stops counting just before its answer goes out: a client may send its next request as
            soon as it has the answer, before this thread has finished writing."""
            if in_flight is not None and getattr(self, "counted", False):
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
                    response = anyio.run(box.handle_async_request, request)
                    content = anyio.run(response.aread)
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

    server = _Server(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}{prefix}"
    finally:
        server.shutdown()
        server.server_close()

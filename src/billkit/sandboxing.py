"""The shared base of the provider sandboxes: an in-process fake HTTP API mounted as an httpx transport.

A provider's ``sandbox.py`` subclasses :class:`Sandbox`, sets ``provider``, ``base_url`` and
``credentials`` (the test credentials it accepts) and implements :meth:`Sandbox.handle`. This base records
every request, injects :class:`Faults`, and runs on a :class:`~billkit.clock.Clock` (virtual by default) so
background jobs (async creation, bulks, recovery paths) are computed from the clock when they are read,
with no task of their own.

Faults are decided before the handler runs (5xx, 429, dropped before the server acts, slow) or after it
ran (dropped after the server acted: the state changed but the client sees a connection error), which is
exactly the case that tests "nothing lost, nothing doubled".
"""

from __future__ import annotations

import enum
import os
import random
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote

import httpx

from billkit.clock import Clock, VirtualClock
from billkit.flows import on_fork
from billkit.money import loads_decimal
from billkit.transport import dumps

__all__ = ["Fault", "Faults", "RecordedRequest", "Sandbox", "json_response", "path_segments"]


class Fault(str, enum.Enum):
    SERVER_ERROR = "server_error"  # 500/502/503 before acting
    RATE_LIMIT = "rate_limit"  # 429 with Retry-After, before acting
    DROP_BEFORE = "drop_before"  # connection refused: the server never saw the request
    DROP_AFTER = "drop_after"  # the server acted, then the connection dropped before the answer
    SLOW = "slow"  # the answer comes after ``slow_seconds`` of (virtual) time


@dataclass(eq=False)  # compared by identity: each holds its own queue and random state
class Faults:
    """Fault injection for a sandbox: random rates plus one-shot faults queued with :meth:`once`.

    ``Faults(server_error=0.1, rate_limit=0.05, drop_after=0.05, slow=0.02, seed=7)``.

    * ``server_error``, ``rate_limit``, ``drop_before``, ``drop_after``, ``slow``: the share (0 to 1) of requests
      that get a 5xx, a 429, a connection dropped before the server acted, one dropped after it acted, or a slow
      answer.
    * ``retry_after``: the seconds a 429 asks for (its ``Retry-After``); ``slow_seconds``: how long a slow answer
      takes (virtual time).
    * ``seed``: the random faults' seed (``None``: a different run each time); ``only``: random faults only for
      requests whose ``METHOD /path`` contains one of these strings.

    ``injected`` counts the faults injected so far, by :class:`Fault` value.
    """

    server_error: float = 0.0
    rate_limit: float = 0.0
    drop_before: float = 0.0
    drop_after: float = 0.0
    slow: float = 0.0
    retry_after: float = 2.0
    slow_seconds: float = 5.0
    seed: int | None = 0
    only: tuple[str, ...] = ()
    injected: dict[str, int] = field(default_factory=dict, init=False)

    def __post_init__(self) -> None:
        # state, not configuration: kept off the fields so that neither the signature nor help() shows it
        self._queue: list[tuple[Fault, str | None]] = []
        self._rng = random.Random(self.seed)

    def once(self, fault: Fault | str, *, match: str | None = None) -> Faults:
        """Inject ``fault`` into the next request (whose ``METHOD /path`` contains ``match``, if given)."""
        self._queue.append((Fault(fault), match))
        return self

    def pick(self, method: str, path: str) -> Fault | None:
        """The fault for one request, if any (a queued one-shot first, then the random rates); the sandbox asks."""
        label = f"{method} {path}"
        for i, (fault, match) in enumerate(self._queue):
            if match is None or match in label:
                del self._queue[i]
                return self._count(fault)
        if self.only and not any(o in label for o in self.only):
            return None
        roll = self._rng.random()
        for fault, rate in (
            (Fault.SERVER_ERROR, self.server_error),
            (Fault.RATE_LIMIT, self.rate_limit),
            (Fault.DROP_BEFORE, self.drop_before),
            (Fault.DROP_AFTER, self.drop_after),
            (Fault.SLOW, self.slow),
        ):
            if roll < rate:
                return self._count(fault)
            roll -= rate
        return None

    def _count(self, fault: Fault) -> Fault:
        self.injected[fault.value] = self.injected.get(fault.value, 0) + 1
        return fault


@dataclass(frozen=True)
class RecordedRequest:
    """One request a sandbox received (after auth headers were checked; secrets are not kept)."""

    method: str
    path: str
    params: dict[str, str]
    body: Any
    at: float
    fault: str | None = None

    def __repr__(self) -> str:
        return f"RecordedRequest({self.method} {self.path} at={self.at:g} fault={self.fault})"


def json_response(status: int, payload: Any, headers: Mapping[str, str] | None = None) -> httpx.Response:
    """A JSON response whose Decimals are written exactly."""
    return httpx.Response(
        status, content=dumps(payload), headers={"content-type": "application/json", **(headers or {})}
    )


class Sandbox(httpx.AsyncBaseTransport, httpx.BaseTransport):
    """Base of every provider sandbox. Subclasses implement :meth:`handle`.

    A sandbox is both an async and a blocking httpx transport, so ``AsyncClient`` and ``Client`` both run on it;
    one lock serialises its handler, so threads sharing a blocking client see one consistent provider.
    """

    provider: str = ""
    base_url: str = "https://sandbox.invalid"
    #: the credentials this sandbox accepts; clients in sandbox mode use them when none are given
    credentials: Mapping[str, str] = {}

    def __init__(self, clock: Clock | None = None, faults: Faults | None = None) -> None:
        self.clock: Clock = clock or VirtualClock()
        self.faults = faults or Faults()
        self.requests: list[RecordedRequest] = []
        self._lock = threading.Lock()
        on_fork(self, Sandbox._new_lock)

    def _new_lock(self) -> None:
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"<{type(self).__name__} requests={len(self.requests)}>"

    # -- what subclasses implement ----------------------------------------------------------------------
    def handle(self, request: httpx.Request, body: Any) -> httpx.Response:
        """Answer one request (``body`` is the decoded JSON or None). Runs synchronously on the clock."""
        raise NotImplementedError

    def error(self, status: int, payload: Any, headers: Mapping[str, str] | None = None) -> httpx.Response:
        """The provider's error shape; subclasses override for their own."""
        return json_response(status, payload, headers)

    def fault_response(self, fault: Fault) -> httpx.Response:
        """The answer to an injected 5xx or 429; subclasses may override to use their error body."""
        if fault is Fault.RATE_LIMIT:
            return self.error(429, {"message": "rate limited"}, {"retry-after": f"{self.faults.retry_after:g}"})
        return self.error(503, {"message": "service unavailable"})

    # -- the transport ------------------------------------------------------------------------------------
    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        early, fault, routed, body = self._receive(request, await request.aread())
        if early is not None:
            return early
        if fault is Fault.SLOW:
            await self.clock.sleep(self.faults.slow_seconds)
        return self._answer(request, routed, body, fault)

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        early, fault, routed, body = self._receive(request, request.read())
        if early is not None:
            return early
        if fault is Fault.SLOW:
            self.clock.sleep_sync(self.faults.slow_seconds)
        return self._answer(request, routed, body, fault)

    def _receive(self, request: httpx.Request, content: bytes
                 ) -> tuple[httpx.Response | None, Fault | None, httpx.Request, Any]:  # fmt: skip
        """Record the request and pick its fault; an answer when the fault decides it before the handler."""
        body: Any = None
        if content:
            try:
                body = loads_decimal(content)
            except (ValueError, UnicodeDecodeError):
                body = content
        path = request.url.raw_path.decode("ascii").partition("?")[0]  # as sent: an escaped id stays one segment
        prefix = httpx.URL(self.base_url).raw_path.decode("ascii").rstrip("/")
        if prefix and path.startswith(prefix):
            path = path[len(prefix) :] or "/"
        with self._lock:
            fault = self.faults.pick(request.method, path)
            self.requests.append(RecordedRequest(request.method, path, dict(request.url.params), body,
                                                 self.clock.now(), fault.value if fault else None))  # fmt: skip
        if fault is Fault.DROP_BEFORE:
            raise httpx.ConnectError("sandbox: connection refused (injected)", request=request)
        if fault in (Fault.SERVER_ERROR, Fault.RATE_LIMIT):
            return self.fault_response(fault), fault, request, body
        routed = request if prefix == "" else _strip_prefix(request, path)
        return None, fault, routed, body

    def _answer(self, request: httpx.Request, routed: httpx.Request, body: Any, fault: Fault | None) -> httpx.Response:
        with self._lock:
            response = self.handle(routed, body)
        if fault is Fault.DROP_AFTER:
            raise httpx.RemoteProtocolError("sandbox: connection dropped after the server acted (injected)",
                                            request=request)  # fmt: skip
        return response

    # -- persistence (for examples and tests that resume in another process) -----------------------------
    def save(self, path: str | os.PathLike[str]) -> None:
        """Write the sandbox's whole state (bills, jobs, faults, clock) to ``path``, to :meth:`load` in another
        process.

        The file is JSON data (:mod:`billkit.sandbox_state` describes it), never code. Atomic: written beside
        ``path``, then moved over it, so a process killed while saving leaves the previous state whole. A value the
        format cannot hold raises :class:`~billkit.errors.SandboxStateError` naming where it is, before anything is
        written.
        """
        from billkit import sandbox_state

        text = sandbox_state.dumps(self)
        tmp = f"{os.fspath(path)}.tmp"
        with open(tmp, "w", encoding="utf-8") as fh:
            fh.write(text)
        os.replace(tmp, path)

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> Sandbox:
        """Read a sandbox written by :meth:`save` (its clock continues from where it was).

        ``Sandbox.load`` reads any provider's file; ``FacturapiSandbox.load`` only a Facturapi one. A file that is
        not a billkit sandbox state file, of another format version or sandbox kind, or with a value outside the
        format's allow-list raises :class:`~billkit.errors.SandboxStateError`; loading never runs code from the file.
        """
        from billkit import sandbox_state

        with open(path, "rb") as fh:
            data = fh.read()
        return sandbox_state.loads(data, cls, source=os.fspath(path))

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        state.pop("_lock", None)
        clock = state.get("clock")
        if isinstance(clock, VirtualClock):
            fresh = VirtualClock(clock.now(), autojump=clock.autojump, wall_start=clock.wall())
            state["clock"] = fresh
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._new_lock()
        on_fork(self, Sandbox._new_lock)

    def received(self, method: str | None = None, path_contains: str | None = None) -> list[RecordedRequest]:
        """The recorded requests, filtered."""
        return [
            r for r in self.requests
            if (method is None or r.method == method) and (path_contains is None or path_contains in r.path)
        ]  # fmt: skip


def _strip_prefix(request: httpx.Request, path: str) -> httpx.Request:
    query = request.url.query
    url = request.url.copy_with(raw_path=path.encode("ascii") + (b"?" + query if query else b""))
    return httpx.Request(request.method, url, headers=request.headers, content=b"")


def path_segments(request: httpx.Request) -> list[str]:
    """The request's path as the server sees it: split on ``/`` as sent, then each segment unescaped, so an id
    with a ``/`` (sent as ``%2F``) is one segment and can only name its own resource."""
    raw = request.url.raw_path.decode("ascii").partition("?")[0]
    return [unquote(part) for part in raw.split("/") if part]


def decimal_json(payload: Any) -> Any:
    """Round-trip a payload through billkit's JSON so sandboxes store exactly what a server would."""
    return loads_decimal(dumps(payload))

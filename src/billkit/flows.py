"""Flows: every provider operation written once, as a sans-I/O generator, and the two drivers that run it.

A *flow* is a generator that yields **effects** (what it needs done) and receives their results; it returns the
operation's value or raises a :class:`~billkit.errors.BillkitError`. It never touches a socket, a clock or an
event loop itself, so the same flow runs under both drivers:

* :class:`AsyncIO` runs flows on ``httpx.AsyncClient`` with anyio sleeps (asyncio and trio);
* :class:`SyncIO` runs flows on ``httpx.Client`` in the calling thread: no event loop, no portal thread.

The effects (design notes: docs/design.md, "One source, two drivers"):

=====================  ==================================================================================
``Exchange``           one HTTP attempt; the result is an :class:`Answer` or a :class:`Failure` (never an
                       exception, so the retry decision sees every outcome as data)
``Sleep``              sleep on the client's clock (virtual in tests)
``CURRENT_POLICY``     the :class:`~billkit.transport.RetryPolicy` in force for this run (per client, per
                       ``with_options`` copy, ``PollPolicy.read_retry`` for status reads)
``Gather``             run sub-flows concurrently under a limit; one value or BillkitError per flow, in order
``Acquire``            wait for a lock or semaphore made by :func:`new_lock` / :func:`new_semaphore` (the flow
                       releases it with ``release()`` in a ``finally``)
``Emit``               a *stream* (paged listing) hands one item to its consumer
=====================  ==================================================================================

Drivers never throw into a flow: a cancelled or interrupted run closes the generator (its ``finally`` blocks
run) and re-raises. A flow composes others with ``yield from``.

Native clients bind flows to a driver with the :class:`operation` and :class:`stream` descriptors, typed per
mode: on ``AsyncClient(...).native`` a method returns an awaitable (a stream an async iterator); on
``Client(...).native`` the value itself (a stream a list).
"""

from __future__ import annotations

import contextlib
import enum
import functools
import os
import threading
import time
import weakref
from collections.abc import AsyncIterator, Awaitable, Callable, Generator, Iterable, Iterator, Mapping, Sequence
from functools import update_wrapper
from typing import TYPE_CHECKING, Any, Concatenate, Generic, ParamSpec, TypeVar, overload

import httpx

from billkit import tracing
from billkit.errors import BillkitError
from billkit.httpstack import Stack, failure_classes, stack_of

if TYPE_CHECKING:
    import anyio

    from billkit.clock import Clock
    from billkit.transport import RetryPolicy

__all__ = [
    "CURRENT_POLICY",
    "Acquire",
    "Answer",
    "AsyncIO",
    "AsyncMode",
    "CallOptions",
    "Emit",
    "Exchange",
    "Failure",
    "FailureKind",
    "Flow",
    "Gather",
    "Lane",
    "Native",
    "Seen",
    "Sleep",
    "Stream",
    "SyncIO",
    "SyncMode",
    "collect",
    "expand",
    "first",
    "new_lock",
    "new_semaphore",
    "on_fork",
    "operation",
    "stream",
    "stream_of",
]

T = TypeVar("T")
P = ParamSpec("P")

#: a flow: yields effects, receives their results, returns T
Flow = Generator[Any, Any, T]
#: a stream: a flow that also yields :class:`Emit` items (a paged listing)
Stream = Generator[Any, Any, None]


class LazyModule:
    """A module imported when first used: ``anyio = LazyModule("anyio")``, so code that never runs an event loop
    (the blocking client) never imports one. Type checkers see the real module (import it under TYPE_CHECKING)."""

    __slots__ = ("_module", "_name")

    def __init__(self, name: str) -> None:
        self._name = name
        self._module: Any = None

    def __getattr__(self, attr: str) -> Any:
        if self._module is None:
            import importlib

            self._module = importlib.import_module(self._name)
        return getattr(self._module, attr)


if not TYPE_CHECKING:
    anyio = LazyModule("anyio")


# -- effects -------------------------------------------------------------------------------------------------


# Effects are plain slotted classes, not dataclasses: one is made per request, and a class statement is cheaper
# to import than a dataclass decorator.


class Exchange:
    """One HTTP attempt, fully built (URL, headers, body). ``max_bytes`` bounds the answer's body; ``timeout`` is
    set when what is left of the request's total budget is tighter than the client's timeouts."""

    __slots__ = ("content", "headers", "max_bytes", "method", "params", "stream_to", "timeout", "url")

    def __init__(
        self,
        method: str,
        url: str,
        params: Mapping[str, Any] | None,
        headers: Mapping[str, str],
        content: bytes | None,
        max_bytes: int,
        timeout: httpx.Timeout | None = None,
        stream_to: str | None = None,
    ) -> None:
        self.method = method
        self.url = url
        self.params = params
        self.headers = headers
        self.content = content
        self.max_bytes = max_bytes
        self.timeout = timeout
        self.stream_to = stream_to  # a 2xx body goes to this file (whole, or not at all), not into memory

    def __repr__(self) -> str:
        return f"Exchange({self.method} {self.url})"


class Answer:
    """The server answered (any status); ``content`` is the whole body (within ``max_bytes``)."""

    __slots__ = ("content", "headers", "status_code")

    def __init__(self, status_code: int, headers: httpx.Headers, content: bytes) -> None:
        self.status_code = status_code
        self.headers = headers
        self.content = content

    def __repr__(self) -> str:
        return f"Answer({self.status_code}, {len(self.content)} bytes)"


class FailureKind(enum.Enum):
    NOT_SENT = "not_sent"  # connect error, connect or pool timeout: the server never saw the request
    TIMEOUT = "timeout"  # sent, no answer in time: it may have arrived and acted
    DROPPED = "dropped"  # the connection broke after sending: it may have arrived and acted
    TOO_LARGE = "too_large"  # answered, but the body is larger than ``max_bytes`` (the rest was not read)


class Failure:
    """No usable answer came back. ``status_code`` is set for TOO_LARGE (the answer's status line)."""

    __slots__ = ("detail", "kind", "status_code")

    def __init__(self, kind: FailureKind, detail: str, status_code: int | None = None) -> None:
        self.kind = kind
        self.detail = detail
        self.status_code = status_code

    def __repr__(self) -> str:
        return f"Failure({self.kind.value}: {self.detail})"


class Sleep:
    __slots__ = ("seconds",)

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds


class _CurrentPolicy:
    __slots__ = ()

    def __repr__(self) -> str:
        return "CURRENT_POLICY"


#: yield it to get the RetryPolicy of the running driver
CURRENT_POLICY = _CurrentPolicy()


class Gather:
    """Run ``flows`` concurrently, at most ``limit`` at once; the result lists each flow's value or BillkitError."""

    __slots__ = ("flows", "limit")

    def __init__(self, flows: Sequence[Flow[Any]], limit: int) -> None:
        self.flows = flows
        self.limit = limit


class Acquire:
    __slots__ = ("lock",)

    def __init__(self, lock: _AsyncLock | _AsyncSemaphore | _SyncLock) -> None:
        self.lock = lock


class Emit:
    __slots__ = ("item",)

    def __init__(self, item: Any) -> None:
        self.item = item


# -- primitives that follow the client's mode --------------------------------------------------------------


class _AsyncLock:
    """An anyio lock made on first use (inside the event loop that uses it)."""

    __slots__ = ("_lock",)

    def __init__(self) -> None:
        self._lock: anyio.Lock | None = None

    async def acquire(self) -> None:
        if self._lock is None:
            self._lock = anyio.Lock()
        await self._lock.acquire()

    def release(self) -> None:
        assert self._lock is not None
        self._lock.release()


class _AsyncSemaphore:
    __slots__ = ("_sem", "_value")

    def __init__(self, value: int) -> None:
        self._value = value
        self._sem: anyio.Semaphore | None = None

    async def acquire(self) -> None:
        if self._sem is None:
            self._sem = anyio.Semaphore(self._value)
        await self._sem.acquire()

    def release(self) -> None:
        assert self._sem is not None
        self._sem.release()


class _SyncLock:
    """A threading lock or bounded semaphore that is made anew in a forked child (a lock held by another thread
    at ``fork()`` would otherwise stay held forever there)."""

    __slots__ = ("__weakref__", "_lock", "_value")

    def __init__(self, value: int | None = None) -> None:
        self._value = value
        self._lock: threading.Lock | threading.BoundedSemaphore = self._make()
        on_fork(self, _SyncLock._after_fork)

    def _make(self) -> threading.Lock | threading.BoundedSemaphore:
        return threading.Lock() if self._value is None else threading.BoundedSemaphore(self._value)

    def _after_fork(self) -> None:
        self._lock = self._make()

    def acquire(self) -> None:
        self._lock.acquire()

    def release(self) -> None:
        self._lock.release()


def new_lock(blocking: bool) -> _AsyncLock | _SyncLock:
    """A lock for flows run by the blocking (``blocking=True``) or the async driver."""
    return _SyncLock() if blocking else _AsyncLock()


def new_semaphore(value: int, blocking: bool) -> _AsyncSemaphore | _SyncLock:
    return _SyncLock(value) if blocking else _AsyncSemaphore(value)


# -- fork safety -----------------------------------------------------------------------------------------------

_FORK_HOOKS: weakref.WeakKeyDictionary[Any, Callable[[Any], None]] = weakref.WeakKeyDictionary()


def on_fork(owner: Any, hook: Callable[[Any], None]) -> None:
    """Call ``hook(owner)`` in the child after ``os.fork()`` while ``owner`` lives (gunicorn --preload, Celery
    prefork, multiprocessing with fork): locks, pollers and connection pools are made anew there."""
    _FORK_HOOKS[owner] = hook


def _after_fork_in_child() -> None:
    for owner, hook in list(_FORK_HOOKS.items()):
        hook(owner)


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)


# -- flow combinators --------------------------------------------------------------------------------------------


def collect(items: Stream) -> Flow[list[Any]]:
    """Inside a flow: every item a stream emits, as a list."""
    out: list[Any] = []
    value: Any = None
    try:
        while True:
            try:
                effect = items.send(value)
            except StopIteration:
                return out
            if type(effect) is Emit:
                value = None
                out.append(effect.item)
            else:
                value = yield effect
    finally:
        items.close()


def first(items: Stream, match: Callable[[Any], bool]) -> Flow[Any]:
    """Inside a flow: the first item of a stream for which ``match`` is true (the rest is not read), or None."""
    value: Any = None
    try:
        while True:
            try:
                effect = items.send(value)
            except StopIteration:
                return None
            if type(effect) is Emit:
                value = None
                if match(effect.item):
                    return effect.item
            else:
                value = yield effect
    finally:
        items.close()


def expand(items: Stream, each: Callable[[Any], Iterable[Any]]) -> Stream:
    """A stream of everything ``each(item)`` gives for every item of ``items`` (pages into their records)."""
    value: Any = None
    try:
        while True:
            try:
                effect = items.send(value)
            except StopIteration:
                return
            value = None
            if type(effect) is Emit:
                for out in each(effect.item):
                    yield Emit(out)
            else:
                value = yield effect
    finally:
        items.close()


# -- the drivers -------------------------------------------------------------------------------------------------


class _IO:
    """What both drivers share: the clock, the retry policy of this run, the body cap."""

    def __init__(self, clock: Clock, retry: RetryPolicy, max_in_flight: int | None) -> None:
        self.clock = clock
        self.retry = retry
        self.max_in_flight = max_in_flight
        #: what a ``with_options`` copy adds to each attempt (headers, timeouts); kept by :meth:`with_retry`
        self.call: CallOptions | None = None
        #: every answer of the one call this driver runs (a :meth:`capturing` copy), in the order they came
        self.seen: list[Seen] | None = None

    def _copied(self, twin: _D) -> _D:
        twin.call = self.call
        return twin


_D = TypeVar("_D", bound=_IO)


class CallOptions:
    """What a client's ``with_options(headers=..., timeout=...)`` copy adds to each HTTP attempt: ``headers`` over
    the request's own (the client refuses auth headers and the ones httpx writes, so these never replace them) and
    ``timeout``, the tighter of it and the attempt's own when the request's total budget already cut that."""

    __slots__ = ("headers", "timeout")

    def __init__(self, headers: Mapping[str, str], timeout: httpx.Timeout | None) -> None:
        self.headers = headers
        self.timeout = timeout

    def apply(self, ex: Exchange) -> Exchange:
        headers = {**ex.headers, **self.headers} if self.headers else ex.headers
        timeout = ex.timeout
        if self.timeout is not None:
            timeout = self.timeout if timeout is None else _tighter(timeout, self.timeout)
        return Exchange(ex.method, ex.url, ex.params, headers, ex.content, ex.max_bytes, timeout, ex.stream_to)


def _tighter(a: httpx.Timeout, b: httpx.Timeout) -> httpx.Timeout:
    def low(x: float | None, y: float | None) -> float | None:
        return y if x is None else x if y is None else min(x, y)

    return httpx.Timeout(
        connect=low(a.connect, b.connect),
        read=low(a.read, b.read),
        write=low(a.write, b.write),
        pool=low(a.pool, b.pool),
    )


class Seen:
    """One answer a capturing driver saw: the attempt, the answer, and how long the attempt took (seconds)."""

    __slots__ = ("answer", "elapsed", "exchange")

    def __init__(self, exchange: Exchange, answer: Answer, elapsed: float) -> None:
        self.exchange = exchange
        self.answer = answer
        self.elapsed = elapsed


def _failure(exc: Exception) -> Failure:
    """An exception from the HTTP layer (or from a user's transport) as data for the retry decision."""
    name = type(exc).__name__
    not_sent, timed_out, transport = failure_classes()  # httpx's, and httpx2's once loaded
    if isinstance(exc, not_sent):
        return Failure(FailureKind.NOT_SENT, name)
    if isinstance(exc, timed_out):
        return Failure(FailureKind.TIMEOUT, name)
    if isinstance(exc, transport):
        return Failure(FailureKind.DROPPED, name)
    # anything else from a transport (a user's mock, a bug below us): the request may have gone out
    return Failure(FailureKind.DROPPED, f"{name}: {exc}")


def _too_large(status: int, limit: int) -> Failure:
    return Failure(FailureKind.TOO_LARGE, f"the answer is larger than {limit} bytes", status)


def _declared_too_large(headers: httpx.Headers, limit: int) -> bool:
    declared = headers.get("content-length")
    return declared is not None and declared.isdigit() and int(declared) > limit


class Lane:
    """How a driver reaches the server, shared by its copies (and replaced whole in a forked child).

    ``direct`` is the transport of an httpx client billkit made itself, for its base URL: requests are then built
    once, with the client's own default headers already merged by the Transport, and handed to that transport, so
    none of httpx's per-request client work (merging, cookie jars, hooks) is paid for features billkit does not use.
    A client the caller passed in is always used through its ``send``, hooks, auth and cookies included.
    ``stack`` is the client's library (httpx or httpx2, :mod:`billkit.httpstack`): requests are built with its
    classes.
    """

    __slots__ = ("direct", "http", "stack", "timeout")

    def __init__(self, http: Any, direct: Any = None) -> None:
        self.http: Any = http  # an httpx(2).Client for SyncIO, an httpx(2).AsyncClient for AsyncIO
        self.direct: Any = direct  # that client's transport for the base URL
        self.stack = stack_of(http)
        self.timeout = http.timeout.as_dict()


class _Download:
    """A body streamed to ``path``: written to ``path.part``, which replaces ``path`` only once it is whole (an
    attempt that breaks off leaves the previous file, or none, never half of one)."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.part = path + ".part"
        self._file: Any = None

    def __enter__(self) -> Any:
        self._file = open(self.part, "wb")
        return self._file

    def __exit__(self, kind: object, *rest: object) -> None:
        self._file.close()
        if kind is None:
            os.replace(self.part, self.path)
        else:
            with contextlib.suppress(OSError):
                os.remove(self.part)


@functools.lru_cache(maxsize=512)
def _parsed_url(url: str, stack: Stack) -> tuple[Any, bytes | None]:
    """``url`` parsed once (an ``httpx.URL`` is immutable) with its ``Host`` header value, as httpx would add it."""
    parsed = stack.URL(url)
    return parsed, parsed.netloc if parsed.host else None


#: headers httpx writes itself when it encodes a body: a request that sets one of them goes the general way
_AUTO_HEADERS = frozenset({"host", "content-length", "transfer-encoding"})
#: POST/PUT/PATCH without a body still say ``Content-Length: 0`` (as httpx does)
_EMPTY_LENGTH = frozenset({"POST", "PUT", "PATCH"})


def _request(ex: Exchange, lane: Lane) -> Any:
    """The ``httpx.Request`` of ``ex`` (``httpx2.Request`` on an httpx2 lane), with the headers and body httpx itself
    would give it (same order: ``Host``, billkit's headers, ``Content-Length``), built without httpx's per-request
    parsing: the URL is parsed once per distinct URL, the headers are encoded straight to bytes, and the body is
    handed over as a ready stream."""
    stack = lane.stack
    extensions = {"timeout": ex.timeout.as_dict() if ex.timeout is not None else lane.timeout}
    content = ex.content
    if content is None or type(content) is bytes:
        raw: list[tuple[bytes, bytes]] = []
        try:
            url, host = _parsed_url(ex.url, stack)
            if host is not None:
                raw.append((b"Host", host))
            if not content and ex.method in _EMPTY_LENGTH:
                raw.append((b"Content-Length", b"0"))
            for key, value in ex.headers.items():
                if type(key) is not str or type(value) is not str or key.lower() in _AUTO_HEADERS:
                    raise LookupError  # not the common case: let httpx handle it
                raw.append((key.encode("ascii"), value.encode("ascii")))
        except (LookupError, UnicodeEncodeError, stack.InvalidURL):
            pass  # httpx's own construction below raises (or copes) as it always did
        else:
            if content:
                raw.append((b"Content-Length", str(len(content)).encode()))
            request = stack.Request(ex.method, url, params=ex.params, headers=stack.Headers(raw),
                                    stream=stack.ByteStream(content or b""), extensions=extensions)  # fmt: skip
            request.read()
            return request
    return stack.Request(
        ex.method,
        ex.url,
        params=ex.params,
        headers=ex.headers,
        content=ex.content,
        extensions=extensions,
    )


class AsyncIO(_IO):
    """Runs flows on an ``httpx.AsyncClient`` (asyncio or trio, through anyio)."""

    def __init__(
        self,
        http: httpx.AsyncClient | Lane,
        clock: Clock,
        retry: RetryPolicy,
        max_in_flight: int | None = None,
        limiter: list[anyio.Semaphore] | None = None,
    ) -> None:
        super().__init__(clock, retry, max_in_flight)
        self._lane = http if isinstance(http, Lane) else Lane(http)
        self._limiter = limiter if limiter is not None else []  # shared by copies with another retry policy

    @property
    def http(self) -> httpx.AsyncClient:
        http: httpx.AsyncClient = self._lane.http
        return http

    def with_retry(self, retry: RetryPolicy) -> AsyncIO:
        return self._copied(AsyncIO(self._lane, self.clock, retry, self.max_in_flight, self._limiter))

    def with_call(self, call: CallOptions | None) -> AsyncIO:
        """A copy whose every attempt carries ``call`` (a ``with_options`` copy of a client); same lane."""
        twin = self.with_retry(self.retry)
        twin.call = call
        return twin

    def capturing(self) -> tuple[AsyncIO, list[Seen]]:
        """A copy for one call that records every answer it gets (``raw.responses``), and that list."""
        twin = self.with_retry(self.retry)
        twin.seen = []
        return twin, twin.seen

    async def run(self, flow: Flow[T]) -> T:
        """Run ``flow`` to its end; its value, or the BillkitError it raised."""
        value: Any = None
        while True:
            try:
                effect = flow.send(value)
            except StopIteration as stop:
                return stop.value  # type: ignore[no-any-return]
            try:
                value = await self._perform(effect)
            except BaseException:
                flow.close()
                raise

    async def iterate(self, items: Stream) -> AsyncIterator[Any]:
        """The items a stream emits, as an async iterator (pages are read as the consumer goes)."""
        value: Any = None
        try:
            while True:
                try:
                    effect = items.send(value)
                except StopIteration:
                    return
                if type(effect) is Emit:
                    value = None
                    yield effect.item
                else:
                    value = await self._perform(effect)
        finally:
            items.close()

    async def _perform(self, effect: Any) -> Any:
        kind = type(effect)
        if kind is Exchange:
            if self.max_in_flight is None:
                return await self._exchange(effect)
            if not self._limiter:
                self._limiter.append(anyio.Semaphore(self.max_in_flight))
            async with self._limiter[0]:
                return await self._exchange(effect)
        if effect is CURRENT_POLICY:
            return self.retry
        if kind is Sleep:
            await self.clock.sleep(effect.seconds)
            return None
        if kind is Acquire:
            await effect.lock.acquire()
            return None
        if kind is Gather:
            return await self._gather(effect)
        raise TypeError(f"a flow yielded {effect!r}, which is not an effect")

    async def _exchange(self, ex: Exchange) -> Answer | Failure:
        if self.call is not None:
            ex = self.call.apply(ex)
        if self.seen is None:
            return await self._attempt(ex)
        started = time.perf_counter()
        outcome = await self._attempt(ex)
        if type(outcome) is Answer:
            self.seen.append(Seen(ex, outcome, time.perf_counter() - started))
        return outcome

    async def _attempt(self, ex: Exchange) -> Answer | Failure:
        lane = self._lane
        try:
            if lane.direct is not None:
                response = await lane.direct.handle_async_request(_request(ex, lane))
            else:
                request = lane.http.build_request(
                    ex.method,
                    ex.url,
                    params=ex.params,
                    content=ex.content,
                    headers=ex.headers,
                    timeout=lane.stack.USE_CLIENT_DEFAULT if ex.timeout is None else lane.stack.timeout(ex.timeout),
                )
                response = await lane.http.send(request, stream=True)
            try:
                if ex.stream_to is not None and response.status_code < 300:
                    with _Download(ex.stream_to) as file:
                        async for chunk in response.aiter_bytes():
                            file.write(chunk)
                    return Answer(response.status_code, response.headers, b"")
                if _declared_too_large(response.headers, ex.max_bytes):
                    return _too_large(response.status_code, ex.max_bytes)
                parts: list[bytes] = []
                size = 0
                async for chunk in response.aiter_bytes():
                    size += len(chunk)
                    if size > ex.max_bytes:
                        return _too_large(response.status_code, ex.max_bytes)
                    parts.append(chunk)
            finally:
                await response.aclose()
        except Exception as exc:
            return _failure(exc)
        return Answer(response.status_code, response.headers, b"".join(parts))

    async def _gather(self, effect: Gather) -> list[Any]:
        flows = list(effect.flows)
        results: list[Any] = [None] * len(flows)
        foreign: list[BaseException] = []
        queue = list(range(len(flows) - 1, -1, -1))

        async def worker() -> None:
            while queue:
                i = queue.pop()
                try:
                    results[i] = await self.run(flows[i])
                except BillkitError as exc:
                    results[i] = exc
                except Exception as exc:  # not billkit's: re-raised once every flow ended, never as a group
                    foreign.append(exc)

        async with anyio.create_task_group() as tg:
            for _ in range(max(1, min(effect.limit, len(flows)))):
                tg.start_soon(worker)
        if foreign:
            raise foreign[0]
        return results


class SyncIO(_IO):
    """Runs flows on an ``httpx.Client`` in the calling thread (any thread; safe to share between threads)."""

    def __init__(
        self,
        http: httpx.Client | list[Lane],
        clock: Clock,
        retry: RetryPolicy,
        max_in_flight: int | None = None,
        limiter: _SyncLock | None = None,
    ) -> None:
        super().__init__(clock, retry, max_in_flight)
        # one slot shared by the copies, so a lane made anew after fork() serves them all
        self._lanes = http if isinstance(http, list) else [Lane(http)]
        self._limiter = limiter if limiter is not None or max_in_flight is None else _SyncLock(max_in_flight)

    @property
    def http(self) -> httpx.Client:
        http: httpx.Client = self._lanes[0].http
        return http

    def replace_lane(self, lane: Lane) -> None:
        """Serve this driver and every copy of it through ``lane`` from now on (used in a forked child)."""
        self._lanes[0] = lane

    def with_retry(self, retry: RetryPolicy) -> SyncIO:
        return self._copied(SyncIO(self._lanes, self.clock, retry, self.max_in_flight, self._limiter))

    def with_call(self, call: CallOptions | None) -> SyncIO:
        """A copy whose every attempt carries ``call`` (a ``with_options`` copy of a client); same lanes."""
        twin = self.with_retry(self.retry)
        twin.call = call
        return twin

    def capturing(self) -> tuple[SyncIO, list[Seen]]:
        """A copy for one call that records every answer it gets (``raw.responses``), and that list."""
        twin = self.with_retry(self.retry)
        twin.seen = []
        return twin, twin.seen

    def run(self, flow: Flow[T]) -> T:
        value: Any = None
        while True:
            try:
                effect = flow.send(value)
            except StopIteration as stop:
                return stop.value  # type: ignore[no-any-return]
            try:
                value = self._perform(effect)
            except BaseException:
                flow.close()
                raise

    def collect(self, items: Stream) -> list[Any]:
        """Every item a stream emits, as a list (the blocking twin of :meth:`AsyncIO.iterate`)."""
        return self.run(collect(items))

    def iterate(self, items: Stream) -> Iterator[Any]:
        value: Any = None
        try:
            while True:
                try:
                    effect = items.send(value)
                except StopIteration:
                    return
                if type(effect) is Emit:
                    value = None
                    yield effect.item
                else:
                    value = self._perform(effect)
        finally:
            items.close()

    def _perform(self, effect: Any) -> Any:
        kind = type(effect)
        if kind is Exchange:
            limiter = self._limiter
            if limiter is None:
                return self._exchange(effect)
            limiter.acquire()
            try:
                return self._exchange(effect)
            finally:
                limiter.release()
        if effect is CURRENT_POLICY:
            return self.retry
        if kind is Sleep:
            self.clock.sleep_sync(effect.seconds)
            return None
        if kind is Acquire:
            lock = effect.lock
            assert isinstance(lock, _SyncLock), "an async lock in a blocking flow"
            lock.acquire()
            return None
        if kind is Gather:
            return self._gather(effect)
        raise TypeError(f"a flow yielded {effect!r}, which is not an effect")

    def _exchange(self, ex: Exchange) -> Answer | Failure:
        if self.call is not None:
            ex = self.call.apply(ex)
        if self.seen is None:
            return self._attempt(ex)
        started = time.perf_counter()
        outcome = self._attempt(ex)
        if type(outcome) is Answer:
            self.seen.append(Seen(ex, outcome, time.perf_counter() - started))
        return outcome

    def _attempt(self, ex: Exchange) -> Answer | Failure:
        lane = self._lanes[0]
        try:
            if lane.direct is not None:
                response = lane.direct.handle_request(_request(ex, lane))
            else:
                request = lane.http.build_request(
                    ex.method,
                    ex.url,
                    params=ex.params,
                    content=ex.content,
                    headers=ex.headers,
                    timeout=lane.stack.USE_CLIENT_DEFAULT if ex.timeout is None else lane.stack.timeout(ex.timeout),
                )
                response = lane.http.send(request, stream=True)
            try:
                if ex.stream_to is not None and response.status_code < 300:
                    with _Download(ex.stream_to) as file:
                        for chunk in response.iter_bytes():
                            file.write(chunk)
                    return Answer(response.status_code, response.headers, b"")
                if _declared_too_large(response.headers, ex.max_bytes):
                    return _too_large(response.status_code, ex.max_bytes)
                parts: list[bytes] = []
                size = 0
                for chunk in response.iter_bytes():
                    size += len(chunk)
                    if size > ex.max_bytes:
                        return _too_large(response.status_code, ex.max_bytes)
                    parts.append(chunk)
            finally:
                response.close()
        except Exception as exc:
            return _failure(exc)
        return Answer(response.status_code, response.headers, b"".join(parts))

    def _one(self, flow: Flow[Any]) -> Any:
        try:
            return self.run(flow)
        except BillkitError as exc:
            return exc

    def _gather(self, effect: Gather) -> list[Any]:
        flows = list(effect.flows)
        workers = max(1, min(effect.limit, len(flows)))
        if workers == 1:
            return [self._one(f) for f in flows]
        from concurrent.futures import ThreadPoolExecutor  # only blocking code that gathers needs it

        # threads, not a loop: the blocking driver has none; a pool per call, so nothing outlives it (or a fork)
        with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="billkit-gather") as pool:
            return list(pool.map(self._one, flows))


# -- native clients: one definition per operation, typed for both drivers ---------------------------------------


class AsyncMode:
    """Marks a native client bound to :class:`AsyncIO` (its methods return awaitables)."""


class SyncMode:
    """Marks a native client bound to :class:`SyncIO` (its methods return values)."""


M = TypeVar("M", AsyncMode, SyncMode)


class Native(Generic[M]):
    """Base of the providers' native clients: ``client.native``. The driver is the client's."""

    def __init__(self, io: AsyncIO | SyncIO) -> None:
        self._io = io


class operation(Generic[P, T]):
    """Decorates a native client's flow method: ``await native.m(...)`` under AsyncClient, ``native.m(...)``
    under Client. ``Cls.m.flow(native, ...)`` is the flow itself, for use inside other flows."""

    def __init__(self, fn: Callable[Concatenate[Any, P], Flow[T]]) -> None:
        self.flow = fn
        update_wrapper(self, fn)  # type: ignore[arg-type]

    @overload
    def __get__(self, obj: None, owner: type[Any]) -> operation[P, T]: ...
    @overload
    def __get__(self, obj: Native[AsyncMode], owner: type[Any]) -> Callable[P, Awaitable[T]]: ...
    @overload
    def __get__(self, obj: Native[SyncMode], owner: type[Any]) -> Callable[P, T]: ...
    def __get__(self, obj: Any, owner: type[Any]) -> Any:
        if obj is None:
            return self
        fn, io = self.flow, obj._io
        run = io.run
        # one span per call, as for the shared clients' calls: billkit.<provider>.<method> (billkit.api=native)
        provider, method = getattr(getattr(obj, "_adapter", None), "name", None) or "native", fn.__name__

        async def acall(*args: Any, **kwargs: Any) -> Any:
            with tracing.call(provider, method) as span:
                span.set("billkit.api", "native")
                return await run(fn(obj, *args, **kwargs))

        def call(*args: Any, **kwargs: Any) -> Any:
            with tracing.call(provider, method) as span:
                span.set("billkit.api", "native")
                return run(fn(obj, *args, **kwargs))

        chosen = acall if isinstance(io, AsyncIO) else call
        update_wrapper(chosen, fn)
        return chosen


class stream(Generic[P, T]):
    """Decorates a native client's stream method (a paged listing that yields ``Emit(item)``): an async iterator
    under AsyncClient, a list under Client."""

    def __init__(self, fn: Callable[Concatenate[Any, P], Stream]) -> None:
        self.flow = fn
        update_wrapper(self, fn)  # type: ignore[arg-type]

    @overload
    def __get__(self, obj: None, owner: type[Any]) -> stream[P, T]: ...
    @overload
    def __get__(self, obj: Native[AsyncMode], owner: type[Any]) -> Callable[P, AsyncIterator[T]]: ...
    @overload
    def __get__(self, obj: Native[SyncMode], owner: type[Any]) -> Callable[P, list[T]]: ...
    def __get__(self, obj: Any, owner: type[Any]) -> Any:
        if obj is None:
            return self
        fn, io = self.flow, obj._io
        out = io.iterate if isinstance(io, AsyncIO) else io.collect

        def call(*args: Any, **kwargs: Any) -> Any:
            return out(fn(obj, *args, **kwargs))

        update_wrapper(call, fn)
        return call


def stream_of(item: type[T]) -> Callable[[Callable[Concatenate[Any, P], Stream]], stream[P, T]]:
    """``@stream_of(Invoice)`` on a native stream method: a :class:`stream` whose items are ``Invoice``."""

    def wrap(fn: Callable[Concatenate[Any, P], Stream]) -> stream[P, T]:
        return stream(fn)

    return wrap

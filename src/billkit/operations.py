"""Operations: futures over work a provider finishes later (async creation, bulks, waiting until PAID).

The design (design.md section 3):

* An :class:`Operation` is a handle over an ``_Core`` record; the core is plain data (id, kind, state, last
  status, outcome) so the async :class:`Operation` and the blocking :class:`BlockingOperation` share it and
  no logic is written twice.
* One :class:`Scheduler` per client drives every pending core of that client. It owns no background task:
  whichever coroutine is awaiting becomes the *driver* and polls every due operation (not only its own),
  with at most ``PollPolicy.max_concurrent_reads`` reads in flight; when it is done it hands the driver role
  to another waiter. So 10,000 pending operations cost one heap entry each, not a task or a thread.
* The next poll is at the caller's fixed ``interval`` if given, else the server's ``Retry-After`` hint, else
  exponential backoff with jitter from ``first_delay`` to ``max_delay``. Every operation has a deadline
  (default 65 minutes, longer than Facturapi's ~50-minute recovery path); when it passes the operation
  raises :class:`OperationTimeout` carrying the resume token.
* Status reads use ``PollPolicy.read_retry``; a read that still fails with a transient error is simply
  tried again at the next poll. A definitive error (404, 401) ends the operation with that error.
* Tokens are ``base64url(JSON)`` with a version, the provider, the kind and the adapter's state. The
  adapter puts ids in the state, never credentials.
"""

from __future__ import annotations

import base64
import binascii
import enum
import heapq
import itertools
import json
import random
from collections.abc import AsyncIterator, Awaitable, Callable, Generator, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar, overload

import anyio
import anyio.abc

from billkit.clock import Clock
from billkit.errors import (
    APIConnectionError,
    APIError,
    BillkitError,
    OperationCancelled,
    OperationFailed,
    OperationTimeout,
    RateLimitError,
    ServerError,
    TokenError,
)
from billkit.models import Bill, BillStatus, BulkResult, ItemResult, ItemStatus
from billkit.transport import RetryPolicy

__all__ = [
    "BlockingBulkOperation",
    "BlockingOperation",
    "BulkOperation",
    "Operation",
    "OperationState",
    "PollPolicy",
    "PollResult",
    "Scheduler",
    "Started",
    "as_completed",
    "decode_token",
    "encode_token",
    "gather",
]

T = TypeVar("T")
TOKEN_VERSION = 1
DEFAULT_DEADLINE = 65 * 60.0


@dataclass(frozen=True)
class PollPolicy:
    """When to read an operation's status again, and for how long to keep trying.

    * ``interval``: a fixed delay between reads (disables backoff and server hints), or ``None``.
    * ``first_delay``, ``multiplier``, ``max_delay``, ``jitter``: exponential backoff with +/- ``jitter``.
    * ``age_factor``, ``long_max_delay``: for long jobs the cap grows to ``age_factor`` x the operation's age
      (at most ``long_max_delay``), so a 50-minute recovery costs tens of reads, not hundreds, while the
      overshoot stays within ~10 % of the job's duration.
    * ``deadline``: seconds from submission after which the operation raises :class:`OperationTimeout`.
    * ``max_concurrent_reads``: status reads in flight at once, per client.
    * ``read_retry``: the retry policy of each status read (small: polling itself is the outer retry).
    """

    first_delay: float = 2.0
    multiplier: float = 2.0
    max_delay: float = 8.0
    jitter: float = 0.2
    age_factor: float = 0.1
    long_max_delay: float = 300.0
    deadline: float = DEFAULT_DEADLINE
    interval: float | None = None
    max_concurrent_reads: int = 8
    read_retry: RetryPolicy = field(
        default_factory=lambda: RetryPolicy(max_attempts=3, initial_delay=0.5, max_delay=4.0, total_budget=20.0)
    )

    def __post_init__(self) -> None:
        if self.deadline <= 0:
            raise ValueError("deadline must be positive")
        if self.interval is not None and self.interval <= 0:
            raise ValueError("interval must be positive")
        if self.max_concurrent_reads < 1:
            raise ValueError("max_concurrent_reads must be at least 1")

    @classmethod
    def fixed(cls, interval: float, *, deadline: float = DEFAULT_DEADLINE) -> PollPolicy:
        return cls(interval=interval, deadline=deadline)

    def next_delay(self, polls: int, hint: float | None, rng: random.Random, age: float = 0.0) -> float:
        """Delay before the read following the ``polls``-th one, ``age`` seconds after submission."""
        if self.interval is not None:
            return self.interval
        if hint is not None:
            return max(0.0, hint)
        cap = min(max(self.max_delay, age * self.age_factor), max(self.max_delay, self.long_max_delay))
        base = min(cap, self.first_delay * self.multiplier ** min(max(0, polls - 1), 64))
        if self.jitter:
            base *= 1 + rng.uniform(-self.jitter, self.jitter)
        return max(0.01, base)


class OperationState(str, enum.Enum):
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    TIMED_OUT = "timed_out"
    CANCELLED = "cancelled"


@dataclass(frozen=True)
class PollResult:
    """What one status read (or a webhook) says about an operation. Adapters return these.

    ``done`` with ``value`` is success; ``done`` with ``error`` is a terminal failure (usually
    :class:`OperationFailed`). ``state`` replaces the operation's token state when given.
    """

    status: BillStatus | None = None
    provider_status: str | None = None
    done: bool = False
    value: Bill | BulkResult | None = None
    error: BillkitError | None = None
    retry_after: float | None = None
    progress: tuple[int, int] | None = None
    partial: BulkResult | None = None
    state: Mapping[str, Any] | None = None


@dataclass(frozen=True)
class Started:
    """What an adapter's submit returns: the operation's kind, id and token state, and maybe a first answer."""

    kind: str
    id: str
    state: Mapping[str, Any]
    first: PollResult | None = None
    total: int | None = None  # bulk size


class _Waiter:
    __slots__ = ("event",)

    def __init__(self) -> None:
        self.event = anyio.Event()

    def wake(self) -> None:
        self.event.set()


class _Core:
    """The shared record of one operation."""

    __slots__ = (
        "children", "deadline", "error", "id", "kind", "listeners", "parent", "partial", "polls", "progress",
        "provider", "provider_status", "scheduler", "seq", "started", "state", "status", "token_state", "total",
        "value", "waiters",
    )  # fmt: skip

    def __init__(self, scheduler: Scheduler, kind: str, id: str, state: Mapping[str, Any], deadline: float) -> None:
        self.scheduler = scheduler
        self.provider = scheduler.provider
        self.kind = kind
        self.id = id
        self.token_state: dict[str, Any] = dict(state)
        self.deadline = deadline
        self.started = scheduler.clock.now()
        self.state = OperationState.RUNNING
        self.status: BillStatus | None = BillStatus.PENDING
        self.provider_status: str | None = None
        self.value: Any = None
        self.error: BillkitError | None = None
        self.polls = 0
        self.progress: tuple[int, int] | None = None
        self.partial: BulkResult | None = None
        self.total: int | None = None
        self.waiters: list[_Waiter] = []
        self.listeners: list[Callable[[_Core], None]] = []
        self.parent: _Core | None = None
        self.children: list[_Core | BillkitError] | None = None
        self.seq = 0

    @property
    def done(self) -> bool:
        return self.state is not OperationState.RUNNING

    def token(self) -> str:
        return encode_token(self.provider, self.kind, self.id, self._token_body())

    def _token_body(self) -> dict[str, Any]:
        if self.children is None:
            return self.token_state
        items: list[dict[str, Any]] = []
        for child in self.children:
            if isinstance(child, _Core):
                items.append({"kind": child.kind, "id": child.id, "state": child._token_body()})
            else:
                items.append({"error": {"type": type(child).__name__, "message": str(child)}})
        return {"items": items}


def encode_token(provider: str, kind: str, id: str, state: Mapping[str, Any]) -> str:
    body = {"v": TOKEN_VERSION, "provider": provider, "kind": kind, "id": id, "state": state}
    raw = json.dumps(body, separators=(",", ":"), sort_keys=True).encode()
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def decode_token(token: str, *, provider: str | None = None) -> dict[str, Any]:
    """Decode and check a resume token. Raises :class:`TokenError` with the reason."""
    if not isinstance(token, str) or not token:
        raise TokenError("a resume token must be a non-empty string")
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
        body = json.loads(raw)
    except (binascii.Error, ValueError, UnicodeDecodeError):
        raise TokenError("not a billkit resume token (it does not decode)") from None
    if not isinstance(body, dict) or "v" not in body:
        raise TokenError("not a billkit resume token (no version)")
    if body["v"] != TOKEN_VERSION:
        raise TokenError(f"resume token version {body['v']!r} is not supported by this billkit (knows {TOKEN_VERSION})")
    for key, kind in (("provider", str), ("kind", str), ("id", str), ("state", dict)):
        if not isinstance(body.get(key), kind):
            raise TokenError(f"resume token has no valid {key!r}")
    if provider is not None and body["provider"] != provider:
        raise TokenError(f"this token belongs to {body['provider']!r}, not to this {provider!r} client")
    return body


PollFn = Callable[[str, Mapping[str, Any]], Awaitable[PollResult]]
BatchPollFn = Callable[[Sequence[tuple[str, Mapping[str, Any]]]], Awaitable[Sequence[PollResult] | None]]


class Scheduler:
    """Drives every pending operation of one client. See the module docstring."""

    def __init__(
        self,
        *,
        provider: str,
        poll: PollFn,
        clock: Clock,
        policy: PollPolicy,
        batch_poll: BatchPollFn | None = None,
        rng: random.Random | None = None,
    ) -> None:
        self.provider = provider
        self._poll = poll
        self._batch_poll = batch_poll
        self.clock = clock
        self.policy = policy
        self._rng = rng or random.Random()
        self._heap: list[tuple[float, int, _Core]] = []
        self._timers: list[tuple[float, int, _Waiter]] = []
        self._seq = itertools.count()
        self._pending: dict[str, list[_Core]] = {}
        self._driving = False
        self._idle_waiters: set[_Waiter] = set()
        self._kick: anyio.Event | None = None
        self.reads = 0  #: status reads made (for benchmarks and demos)
        self.peak_reads_in_flight = 0
        self._in_flight = 0

    def __repr__(self) -> str:
        return f"Scheduler(provider={self.provider!r}, pending={self.pending_count})"

    @property
    def pending_count(self) -> int:
        return sum(len(v) for v in self._pending.values())

    # -- registration -----------------------------------------------------------------------------------
    def new_core(self, kind: str, id: str, state: Mapping[str, Any], deadline: float | None) -> _Core:
        limit = self.policy.deadline if deadline is None else deadline
        return _Core(self, kind, id, state, self.clock.now() + limit)

    def start(self, core: _Core, first: PollResult | None = None) -> None:
        """Register a running core; apply the adapter's first answer if it gave one."""
        self._pending.setdefault(core.id, []).append(core)
        if first is not None:
            self._apply(core, first)
            if core.done:
                return
        else:
            self._schedule(core, self.policy.next_delay(0, None, self._rng) if self.policy.interval is None
                           else self.policy.interval)  # fmt: skip

    def _delay(self, core: _Core, hint: float | None) -> float:
        return self.policy.next_delay(core.polls, hint, self._rng, self.clock.now() - core.started)

    def _schedule(self, core: _Core, delay: float) -> None:
        due = min(self.clock.now() + delay, core.deadline)
        core.seq = next(self._seq)
        heapq.heappush(self._heap, (due, core.seq, core))
        if self._kick is not None:
            self._kick.set()

    # -- outcomes -------------------------------------------------------------------------------------
    def _apply(self, core: _Core, result: PollResult) -> None:
        if core.done:
            return
        if result.status is not None:
            core.status = result.status
        if result.provider_status is not None:
            core.provider_status = result.provider_status
        if result.progress is not None:
            core.progress = result.progress
        if result.partial is not None:
            core.partial = result.partial
        if result.state is not None:
            core.token_state = dict(result.state)
        if result.done:
            if result.error is not None:
                self._finish(core, OperationState.FAILED, error=result.error)
            else:
                self._finish(core, OperationState.SUCCEEDED, value=result.value)
            return
        for listener in list(core.listeners):
            listener(core)
        self._schedule(core, self._delay(core, result.retry_after))

    def _finish(
        self, core: _Core, state: OperationState, *, value: Any = None, error: BillkitError | None = None
    ) -> None:
        if core.done:
            return
        core.state = state
        core.value = value
        core.error = error
        same = self._pending.get(core.id)
        if same is not None:
            if core in same:
                same.remove(core)
            if not same:
                del self._pending[core.id]
        for waiter in core.waiters:
            waiter.wake()
        core.waiters.clear()
        for listener in list(core.listeners):
            listener(core)

    def cancel(self, core: _Core) -> None:
        if core.children is not None:
            for child in core.children:
                if isinstance(child, _Core):
                    self.cancel(child)
        self._finish(core, OperationState.CANCELLED, error=OperationCancelled(
            f"polling of operation {core.id} was cancelled locally; the provider was not told",
            provider=core.provider, token=core.token()))  # fmt: skip

    def complete(self, id: str, result: PollResult) -> int:
        """Apply a webhook's news to every pending operation with this id. Returns how many matched."""
        cores = list(self._pending.get(id, ()))
        for core in cores:
            self._apply(core, result)
        return len(cores)

    # -- composites (bulk of single operations) ---------------------------------------------------------
    def composite(self, id: str, children: Sequence[_Core | BillkitError], deadline: float | None) -> _Core:
        parent = self.new_core("composite", id, {}, deadline)
        parent.children = list(children)
        parent.total = len(children)
        self._pending.setdefault(parent.id, []).append(parent)

        def child_changed(child: _Core) -> None:
            if child.done:
                self._update_composite(parent)

        for child in children:
            if isinstance(child, _Core):
                child.parent = parent
                child.deadline = parent.deadline
                child.listeners.append(child_changed)
        self._update_composite(parent)
        return parent

    def _update_composite(self, parent: _Core) -> None:
        """Called when a child changes: count finished children; finish the parent when all are."""
        if parent.done or parent.children is None:
            return
        finished = 0
        for child in parent.children:
            if not isinstance(child, _Core):
                finished += 1
                continue
            if child.state is OperationState.TIMED_OUT:
                self._time_out(parent)
                return
            if child.state is OperationState.CANCELLED:
                self.cancel(parent)
                return
            if child.done:
                finished += 1
        changed = parent.progress != (finished, len(parent.children))
        parent.progress = (finished, len(parent.children))
        if finished == len(parent.children):
            result = composite_result(parent)
            parent.status = BillStatus.OPEN if result.succeeded else BillStatus.FAILED
            self._finish(parent, OperationState.SUCCEEDED, value=result)
        elif changed:
            for listener in list(parent.listeners):
                listener(parent)

    # -- waiting and driving ----------------------------------------------------------------------------
    async def wait(self, cores: Sequence[_Core], until: float | None, *, any_done: bool = False) -> None:
        """Return when all (or any) of ``cores`` are done, or at ``until`` on the clock."""

        def satisfied() -> bool:
            if any_done:
                return any(c.done for c in cores)
            return all(c.done for c in cores)

        while not satisfied():
            if until is not None and self.clock.now() >= until:
                return
            if not self._driving:
                self._driving = True
                try:
                    await self._drive(satisfied, until)
                finally:
                    self._driving = False
                    self._handoff()
                continue
            waiter = _Waiter()
            for c in cores:
                if not c.done:
                    c.waiters.append(waiter)
            self._idle_waiters.add(waiter)
            if until is not None:
                heapq.heappush(self._timers, (until, next(self._seq), waiter))
                if self._kick is not None:
                    self._kick.set()
            try:
                await waiter.event.wait()
            finally:
                self._idle_waiters.discard(waiter)
                for c in cores:
                    if waiter in c.waiters:
                        c.waiters.remove(waiter)

    def _handoff(self) -> None:
        for waiter in list(self._idle_waiters):
            waiter.wake()
            return

    async def _drive(self, satisfied: Callable[[], bool], until: float | None) -> None:
        while not satisfied():
            now = self.clock.now()
            if until is not None and now >= until:
                return
            while self._timers and self._timers[0][0] <= now:
                heapq.heappop(self._timers)[2].wake()
            due: list[_Core] = []
            expired = False
            while self._heap and self._heap[0][0] <= now:
                _, seq, core = heapq.heappop(self._heap)
                if core.done or seq != core.seq:
                    continue
                if now >= core.deadline:
                    self._time_out(core)
                    expired = True
                    continue
                due.append(core)
            if due:
                await self._poll_many(due)
                continue
            if expired:
                continue
            wake_at = [t for t in (
                self._heap[0][0] if self._heap else None,
                self._timers[0][0] if self._timers else None,
                until,
            ) if t is not None]  # fmt: skip
            if not wake_at:
                # nothing to poll and no deadline: only a webhook or refresh can finish these cores
                self._kick = anyio.Event()
                await self._kick.wait()
                continue
            self._kick = anyio.Event()
            await self.clock.sleep_until(min(wake_at), self._kick)
            self._kick = None

    def _time_out(self, core: _Core) -> None:
        last = core.status.value if core.status else None
        err = OperationTimeout(
            f"operation {core.id} was not finished by its deadline; last status {last!r} "
            f"(provider status {core.provider_status!r}); resume it later with client.resume(err.token)",
            provider=core.provider, status=last, provider_status=core.provider_status, token=core.token(),
        )  # fmt: skip
        self._finish(core, OperationState.TIMED_OUT, error=err)

    async def _poll_many(self, due: list[_Core]) -> None:
        queue = list(reversed(due))
        try:
            if self._batch_poll is not None:
                batch = [(c.kind, c.token_state) for c in due]
                answers = await self._batch_poll(batch)
                if answers is not None:
                    queue.clear()
                    self.reads += 1
                    for core, answer in zip(due, answers, strict=False):
                        core.polls += 1
                        self._apply(core, answer)
                    return

            async def worker() -> None:
                while queue:
                    core = queue.pop()
                    await self.poll_once(core)

            workers = min(len(queue), self.policy.max_concurrent_reads)
            async with anyio.create_task_group() as tg:
                for _ in range(workers):
                    tg.start_soon(worker)
        finally:
            for core in queue:  # cancelled mid-way: what was not polled goes back on the heap
                if not core.done:
                    self._schedule(core, 0.0)

    async def poll_once(self, core: _Core) -> None:
        """One status read of ``core`` (with the read retry policy), applied to it."""
        if core.done:
            return
        core.polls += 1
        self.reads += 1
        self._in_flight += 1
        self.peak_reads_in_flight = max(self.peak_reads_in_flight, self._in_flight)
        try:
            result = await self._poll(core.kind, core.token_state)
        except (APIConnectionError, ServerError, RateLimitError) as exc:
            hint = exc.retry_after if isinstance(exc, RateLimitError) else None
            if not core.done:
                self._schedule(core, self._delay(core, hint))
            return
        except BillkitError as exc:
            if isinstance(exc, APIError) and exc.status_code in (408,):
                self._schedule(core, self._delay(core, None))
                return
            self._finish(core, OperationState.FAILED, error=exc)
            return
        finally:
            self._in_flight -= 1
        self._apply(core, result)


def composite_result(parent: _Core) -> BulkResult:
    """The per-item picture of a composite bulk (pending children marked PENDING)."""
    items = []
    for index, child in enumerate(parent.children or ()):
        if not isinstance(child, _Core):
            items.append(ItemResult(index=index, status=ItemStatus.FAILED, error=child))
        elif child.state is OperationState.SUCCEEDED:
            bill = child.value if isinstance(child.value, Bill) else None
            items.append(ItemResult(index=index, status=ItemStatus.SUCCEEDED, bill=bill,
                                    reference=bill.reference if bill else None))  # fmt: skip
        elif child.state is OperationState.FAILED:
            items.append(ItemResult(index=index, status=ItemStatus.FAILED, error=child.error))
        else:
            items.append(ItemResult(index=index, status=ItemStatus.PENDING))
    return BulkResult(items=tuple(items), provider=parent.provider, provider_id=parent.id)


# -- the public handles --------------------------------------------------------------------------------


class _Handle(Generic[T]):
    __slots__ = ("_core",)

    def __init__(self, core: _Core) -> None:
        self._core = core

    @property
    def id(self) -> str:
        """The provider's id for this work (invoice id, ATID, BulkId, bill id)."""
        return self._core.id

    @property
    def provider(self) -> str:
        return self._core.provider

    @property
    def state(self) -> OperationState:
        return self._core.state

    @property
    def status(self) -> BillStatus | None:
        """The last status seen (no I/O)."""
        return self._core.status

    @property
    def provider_status(self) -> str | None:
        return self._core.provider_status

    @property
    def token(self) -> str:
        """A resume token (no secrets): ``client.resume(token)`` rebuilds this operation anywhere."""
        return self._core.token()

    @property
    def deadline(self) -> float:
        return self._core.deadline

    def done(self) -> bool:
        """True once the operation finished (succeeded, failed, timed out or cancelled). No I/O."""
        return self._core.done

    def exception(self) -> BillkitError | None:
        """The error the operation ended with, if it ended with one."""
        return self._core.error

    def _outcome(self) -> T:
        core = self._core
        if core.state is OperationState.SUCCEEDED:
            return core.value  # type: ignore[no-any-return]
        assert core.error is not None
        raise core.error

    def _local_timeout(self) -> OperationTimeout:
        core = self._core
        last = core.status.value if core.status else None
        return OperationTimeout(
            f"operation {core.id} still running after the wait's timeout; last status {last!r}. "
            "It keeps its place: wait again, or resume it later from err.token",
            provider=core.provider, status=last, provider_status=core.provider_status, token=core.token(),
        )  # fmt: skip

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.provider} {self.id} {self.state.value} status={self.status}>"


class Operation(_Handle[T]):
    """An awaitable future over provider work: ``bill = await op``."""

    __slots__ = ()

    def __await__(self) -> Generator[Any, None, T]:
        return self.result().__await__()

    async def result(self, timeout: float | None = None) -> T:
        """The result; raises the failure, or :class:`OperationTimeout` if ``timeout`` passes first."""
        core = self._core
        until = None if timeout is None else core.scheduler.clock.now() + timeout
        await core.scheduler.wait([core], until)
        if not core.done:
            raise self._local_timeout()
        return self._outcome()

    async def wait(self, timeout: float | None = None) -> bool:
        """Wait until done or ``timeout``; never raises the operation's error. Returns ``done()``."""
        core = self._core
        until = None if timeout is None else core.scheduler.clock.now() + timeout
        await core.scheduler.wait([core], until)
        return core.done

    async def refresh(self) -> BillStatus | None:
        """Read the status once now and return it."""
        core = self._core
        if core.children is not None:
            for child in core.children:
                if isinstance(child, _Core):
                    await core.scheduler.poll_once(child)
        else:
            await core.scheduler.poll_once(core)
        return core.status

    def cancel(self) -> None:
        """Stop polling locally; awaiting raises :class:`OperationCancelled`. The provider is not told."""
        self._core.scheduler.cancel(self._core)


class BulkOperation(Operation[BulkResult]):
    """An operation over many bills; resolves to a :class:`BulkResult`, one item per input, in order."""

    __slots__ = ()

    @property
    def progress(self) -> tuple[int, int]:
        """(items finished, total), without I/O."""
        core = self._core
        if core.progress is not None:
            return core.progress
        return (0, core.total or 0)

    @property
    def partial(self) -> BulkResult | None:
        """The per-item picture so far (pending items marked PENDING), without I/O."""
        return _partial(self._core)


def _partial(core: _Core) -> BulkResult | None:
    if core.done and isinstance(core.value, BulkResult):
        return core.value
    if core.children is not None:
        return composite_result(core)
    return core.partial


class _Portal:
    """One event-loop thread shared by every blocking client, so blocking operations of any clients mix."""

    def __init__(self) -> None:
        self._cm: Any = None
        self.portal: anyio.from_thread.BlockingPortal | None = None
        self.users = 0

    def acquire(self) -> anyio.from_thread.BlockingPortal:
        if self.portal is None:
            import anyio.from_thread  # only blocking code needs the portal thread

            self._cm = anyio.from_thread.start_blocking_portal()
            self.portal = self._cm.__enter__()
        self.users += 1
        assert self.portal is not None
        return self.portal

    def release(self) -> None:
        self.users -= 1
        if self.users <= 0 and self._cm is not None:
            cm, self._cm, self.portal = self._cm, None, None
            self.users = 0
            cm.__exit__(None, None, None)


PORTAL = _Portal()


class BlockingOperation(_Handle[T]):
    """The blocking twin of :class:`Operation`, over the same core: ``bill = op.result(timeout=600)``."""

    __slots__ = ("_async", "_portal")

    def __init__(self, op: Operation[T], portal: anyio.from_thread.BlockingPortal) -> None:
        super().__init__(op._core)
        self._async = op
        self._portal = portal

    def result(self, timeout: float | None = None) -> T:
        return self._portal.call(self._async.result, timeout)

    def wait(self, timeout: float | None = None) -> bool:
        return self._portal.call(self._async.wait, timeout)

    def refresh(self) -> BillStatus | None:
        return self._portal.call(self._async.refresh)

    def cancel(self) -> None:
        self._portal.call(self._async.cancel)

    @property
    def async_operation(self) -> Operation[T]:
        return self._async


class BlockingBulkOperation(BlockingOperation[BulkResult]):
    __slots__ = ()

    @property
    def progress(self) -> tuple[int, int]:
        return BulkOperation.progress.fget(self)  # type: ignore[attr-defined,no-any-return]

    @property
    def partial(self) -> BulkResult | None:
        return _partial(self._core)


# -- gather and as_completed ---------------------------------------------------------------------------

AnyOperation = Operation[Any]


def _groups(cores: Sequence[_Core]) -> dict[int, tuple[Scheduler, list[_Core]]]:
    groups: dict[int, tuple[Scheduler, list[_Core]]] = {}
    for core in cores:
        groups.setdefault(id(core.scheduler), (core.scheduler, []))[1].append(core)
    return groups


def _clock_of(cores: Sequence[_Core]) -> Clock | None:
    return cores[0].scheduler.clock if cores else None


async def _wait_all(cores: Sequence[_Core], timeout: float | None, *, any_done: bool) -> None:
    groups = list(_groups(cores).values())
    clock = _clock_of(cores)
    if clock is None:
        return

    def until_for(s: Scheduler) -> float | None:
        return None if timeout is None else s.clock.now() + timeout

    if len(groups) == 1:
        sched, members = groups[0]
        await sched.wait(members, until_for(sched), any_done=any_done)
        return
    async with anyio.create_task_group() as tg:

        async def one(s: Scheduler, members: list[_Core]) -> None:
            await s.wait(members, until_for(s), any_done=any_done)
            if any_done:
                tg.cancel_scope.cancel()

        for sched, members in groups:
            tg.start_soon(one, sched, members)


async def _gather(ops: Sequence[_Handle[Any]], timeout: float | None, return_exceptions: bool) -> list[Any]:
    cores = [op._core for op in ops]
    await _wait_all(cores, timeout, any_done=False)
    results: list[Any] = []
    for op in ops:
        if not op.done():
            raise op._local_timeout()
        try:
            results.append(op._outcome())
        except BillkitError as exc:
            if not return_exceptions:
                raise
            results.append(exc)
    return results


@overload
def gather(*ops: Operation[T], timeout: float | None = ..., return_exceptions: bool = ...) -> Awaitable[list[T]]: ...
@overload
def gather(*ops: BlockingOperation[T], timeout: float | None = ..., return_exceptions: bool = ...) -> list[T]: ...
def gather(
    *ops: Operation[Any] | BlockingOperation[Any],
    timeout: float | None = None,
    return_exceptions: bool = False,
) -> Awaitable[list[Any]] | list[Any]:
    """Wait for every operation (any mix of providers) within one shared ``timeout``; results in order.

    With async operations, ``await billkit.gather(...)``; with blocking ones, call it directly. The first
    failure is raised unless ``return_exceptions=True`` (then errors take their place in the list). If the
    timeout passes first, :class:`OperationTimeout` is raised for the first unfinished operation; every
    operation keeps running and keeps its own token.
    """
    blocking = [op for op in ops if isinstance(op, BlockingOperation)]
    if blocking:
        if len(blocking) != len(ops):
            raise TypeError("gather: do not mix blocking and async operations")
        portal = blocking[0]._portal
        result: list[Any] = portal.call(_gather, list(ops), timeout, return_exceptions)
        return result
    return _gather(list(ops), timeout, return_exceptions)


class _AsCompleted(Generic[T]):
    def __init__(self, ops: Sequence[_Handle[T]], timeout: float | None) -> None:
        self._left = list(ops)
        self._ready: list[_Handle[T]] = []
        self._timeout = timeout
        self._until: float | None = None

    def _take(self) -> _Handle[T] | None:
        for op in self._left:
            if op.done():
                self._left.remove(op)
                return op
        return None

    async def next(self) -> _Handle[T]:
        if not self._left:
            raise StopAsyncIteration
        clock = self._left[0]._core.scheduler.clock
        if self._timeout is not None and self._until is None:
            self._until = clock.now() + self._timeout
        while True:
            ready = self._take()
            if ready is not None:
                return ready
            remaining = None if self._until is None else self._until - clock.now()
            if remaining is not None and remaining <= 0:
                raise self._left[0]._local_timeout()
            await _wait_all([op._core for op in self._left], remaining, any_done=True)


class AsyncAsCompleted(AsyncIterator[Operation[T]]):
    def __init__(self, ops: Sequence[Operation[T]], timeout: float | None) -> None:
        self._it = _AsCompleted(ops, timeout)

    def __aiter__(self) -> AsyncAsCompleted[T]:
        return self

    async def __anext__(self) -> Operation[T]:
        return await self._it.next()  # type: ignore[return-value]


class BlockingAsCompleted(Iterator[BlockingOperation[T]]):
    def __init__(self, ops: Sequence[BlockingOperation[T]], timeout: float | None) -> None:
        self._it = _AsCompleted(ops, timeout)
        self._portal = ops[0]._portal if ops else None

    def __iter__(self) -> BlockingAsCompleted[T]:
        return self

    def __next__(self) -> BlockingOperation[T]:
        if self._portal is None:
            raise StopIteration
        try:
            op = self._portal.call(self._it.next)
        except StopAsyncIteration:
            raise StopIteration from None
        assert isinstance(op, BlockingOperation)
        return op


@overload
def as_completed(ops: Sequence[BlockingOperation[T]], *, timeout: float | None = ...) -> BlockingAsCompleted[T]: ...
@overload
def as_completed(ops: Sequence[Operation[T]], *, timeout: float | None = ...) -> AsyncAsCompleted[T]: ...
def as_completed(
    ops: Sequence[Operation[Any]] | Sequence[BlockingOperation[Any]], *, timeout: float | None = None
) -> AsyncAsCompleted[Any] | BlockingAsCompleted[Any]:
    """Yield operations as they finish (``async for`` for async ones, ``for`` for blocking ones).

    Each yielded operation is done: ``await op`` / ``op.result()`` gives its result or raises its error.
    When the shared ``timeout`` passes, :class:`OperationTimeout` is raised for an unfinished one.
    """
    items: list[Any] = list(ops)
    if items and all(isinstance(op, BlockingOperation) for op in items):
        return BlockingAsCompleted(items, timeout)
    if any(isinstance(op, BlockingOperation) for op in items):
        raise TypeError("as_completed: do not mix blocking and async operations")
    return AsyncAsCompleted(items, timeout)


def _failed(provider: str, message: str, **kwargs: Any) -> OperationFailed:
    return OperationFailed(message, provider=provider, **kwargs)

"""Operations: futures over work a provider finishes later (async creation, bulks, waiting until PAID).

The design (design.md section 3, "waiting is not polling"):

* An :class:`Operation` (async) or :class:`BlockingOperation` is a handle over a ``_Core``: plain data (id, kind,
  token state, last status, outcome) that both handles share.
* **One poller per client** polls every pending core of that client: a background task for ``AsyncClient``
  (asyncio or trio), a background thread for the blocking ``Client``. Both run the same :class:`Scheduler` logic;
  only how they sleep and read differs. A poller exists only while operations are pending and ends with them.
* **Waiters only wait**: ``await op`` / ``op.result()`` waits on an event that finishing the operation sets, by a
  poll, a webhook, ``cancel()`` or closing the client. Cancelling a waiter never cancels, loses or stalls its
  operation; a status read the poller could not finish is put back on the schedule.
* The next poll is at the caller's fixed ``interval`` if given, else the server's ``Retry-After`` hint (capped at
  ``PollPolicy.max_hint``), else exponential backoff with jitter from ``first_delay`` to ``max_delay`` (growing
  with the job's age for long jobs). Every operation has a deadline (default 65 minutes, longer than Facturapi's
  ~50-minute recovery path); when it passes the operation raises :class:`OperationTimeout` carrying the token.
* Status reads run with ``PollPolicy.read_retry``, for every provider; a read that still fails with a transient
  error is tried again at the next poll. A definitive error (404, 401) ends the operation with that error; an
  exception that is not billkit's ends it with :class:`OperationFailed` (the exception as ``cause``).
* A bulk made of single operations (Facturapi) is a composite core: each child's end is counted (O(1)), the
  :class:`BulkResult` is built once at the end, and cancelling it cancels every child without recursion.
* Tokens (:mod:`billkit.tokens`) hold the provider, the kind and the adapter's state, versioned and optionally
  signed; they are built when read, never on the hot path. The adapter puts ids in the state, never credentials.
"""

from __future__ import annotations

import base64
import contextlib
import enum
import heapq
import itertools
import logging
import random
import re
import threading
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine, Generator, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Generic, Literal, TypeVar

from typing_extensions import overload  # registered for get_overloads on every Python

from billkit import tracing
from billkit.clock import Clock, VirtualClock
from billkit.errors import (
    BillkitError,
    ClientClosedError,
    OperationCancelled,
    OperationFailed,
    OperationTimeout,
    RateLimitError,
)
from billkit.flows import AsyncIO, Flow, LazyModule, SyncIO, on_fork
from billkit.models import Bill, BillStatus, BulkResult, ItemResult, ItemStatus
from billkit.responses import attach
from billkit.tokens import TokenKey, decode_token, encode_token
from billkit.transport import RetryPolicy, is_transient

if TYPE_CHECKING:
    from concurrent.futures import ThreadPoolExecutor

    import anyio

    from billkit.flows import Seen
    from billkit.responses import ResponseInfo
else:
    anyio = LazyModule("anyio")  # blocking code never needs it

__all__ = [
    "AsyncPoller",
    "BlockingBulkOperation",
    "BlockingOperation",
    "BulkOperation",
    "Operation",
    "OperationState",
    "PollPolicy",
    "PollResult",
    "Scheduler",
    "Started",
    "ThreadPoller",
    "as_completed",
    "decode_token",
    "encode_token",
    "gather",
]

T = TypeVar("T")
T_co = TypeVar("T_co", covariant=True)  # an operation only gives its value: Operation[Bill] is an Operation[object]
T1 = TypeVar("T1")
T2 = TypeVar("T2")
DEFAULT_DEADLINE = 65 * 60.0
logger = logging.getLogger("billkit")


@dataclass(frozen=True)
class PollPolicy:
    """When to read an operation's status again, and for how long to keep trying.

    * ``interval``: a fixed delay between reads (disables backoff and server hints), or ``None``.
    * ``first_delay``, ``multiplier``, ``max_delay``, ``jitter``: exponential backoff with +/- ``jitter``.
    * ``age_factor``, ``long_max_delay``: for long jobs the cap grows to ``age_factor`` x the operation's age
      (at most ``long_max_delay``), so a 50-minute recovery costs tens of reads, not hundreds, while the
      overshoot stays within ~10 % of the job's duration.
    * ``max_hint``: the longest server hint (Retry-After on a status answer) followed; a longer one is cut to it.
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
    max_hint: float = 300.0
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
        if self.max_hint <= 0:
            raise ValueError("max_hint must be positive")

    @classmethod
    def fixed(cls, interval: float, *, deadline: float = DEFAULT_DEADLINE) -> PollPolicy:
        return cls(interval=interval, deadline=deadline)

    def next_delay(self, polls: int, hint: float | None, rng: random.Random, age: float = 0.0) -> float:
        """Delay before the read following the ``polls``-th one, ``age`` seconds after submission."""
        if self.interval is not None:
            return self.interval
        if hint is not None:
            return min(max(0.0, hint), self.max_hint)
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
    #: a webhook event's place in time (its event time or version, as a number): an event older than one already
    #: applied to an operation is ignored, so a late delivery never replaces newer state
    order: float | None = None


@dataclass(frozen=True)
class Started:
    """What an adapter's submit returns: the operation's kind, id and token state, and maybe a first answer."""

    kind: str
    id: str
    state: Mapping[str, Any]
    first: PollResult | None = None
    total: int | None = None  # bulk size


# -- waiters ---------------------------------------------------------------------------------------------------


class _Waiter:
    """One wait over some cores: fires when ``need`` of them have ended (or at its timeout)."""

    __slots__ = ("ended", "need")

    def __init__(self, need: int) -> None:
        self.need = need
        self.ended: deque[_Core] | None = None  # as_completed collects the ended cores here

    def core_ended(self, core: _Core) -> None:
        if self.ended is not None:
            self.ended.append(core)
        self.need -= 1
        if self.need <= 0:
            self.fire()

    def fire(self) -> None:
        raise NotImplementedError


class _AsyncWaiter(_Waiter):
    __slots__ = ("event",)

    def __init__(self, need: int) -> None:
        super().__init__(need)
        self.event = anyio.Event()

    def fire(self) -> None:
        self.event.set()


class _ThreadWaiter(_Waiter):
    __slots__ = ("event",)

    def __init__(self, need: int) -> None:
        super().__init__(need)
        self.event = threading.Event()

    def fire(self) -> None:
        self.event.set()


# -- the shared record -----------------------------------------------------------------------------------------


class _Core:
    """The shared record of one operation (composite bulks: ``children`` and the counters)."""

    __slots__ = (
        "cancelling",
        "children",
        "deadline",
        "error",
        "event_order",
        "finished",
        "id",
        "kind",
        "link",
        "listeners",
        "parent",
        "partial",
        "polls",
        "progress",
        "provider",
        "provider_status",
        "scheduler",
        "seq",
        "started",
        "state",
        "status",
        "token_state",
        "total",
        "value",
        "waiters",
    )

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
        self.finished = 0  # composites: children that ended
        self.cancelling = False
        self.seq = -1  # the heap entry that is current (older entries are skipped)
        self.event_order: float | None = None  # the order of the newest webhook event applied
        self.link = tracing.link()  # the span of the call that started it, for its status reads to link to

    @property
    def done(self) -> bool:
        return self.state is not OperationState.RUNNING

    def token(self) -> str:
        trace = tracing.traceparent(self.link) if self.link is not None else None
        return encode_token(self.provider, self.kind, self.id, self._token_body(), self.scheduler.token_key, trace)

    def _token_body(self) -> dict[str, Any]:
        if self.children is None:
            return self.token_state
        return composite_state(self.children)


def composite_state(children: Sequence[_Core | BillkitError]) -> dict[str, Any]:
    """A composite's token state, columnar: the children's common kind once, their ids in order, and only the
    states that are not just ``{"id": id}`` (a few bytes per item once deflated)."""
    cores = [c for c in children if isinstance(c, _Core)]
    common = cores[0].kind if cores and all(c.kind == cores[0].kind for c in cores) else ""
    ids: list[str | None] = []
    states: dict[str, dict[str, Any]] = {}
    kinds: dict[str, str] = {}
    errors: dict[str, str] = {}
    for index, child in enumerate(children):
        if not isinstance(child, _Core):
            ids.append(None)
            errors[str(index)] = str(child)
            continue
        ids.append(child.id)
        if child.token_state != {"id": child.id}:
            states[str(index)] = child.token_state
        if child.kind != common:
            kinds[str(index)] = child.kind
    state: dict[str, Any] = {"kind": common, "ids": ids, "states": states, "kinds": kinds, "errors": errors}
    present = [i for i in ids if i is not None]
    if present and all(len(i) == 24 and _HEX.fullmatch(i) for i in present):
        # ids of 24 hex digits (Facturapi's): 12 bytes each instead of 26 characters of JSON
        packed = b"".join(bytes.fromhex(i) if i is not None else bytes(12) for i in ids)
        state["ids"] = None
        state["hex_ids"] = base64.urlsafe_b64encode(packed).decode()
    return state


_HEX = re.compile(r"[0-9a-f]+")


PollFlow = Callable[[str, Mapping[str, Any]], Flow[PollResult]]


class Scheduler:
    """The pending operations of one client and every transition between their states (no I/O here).

    :class:`AsyncPoller` and :class:`ThreadPoller` add the loop that reads due operations. Every method that
    changes state runs under ``self._guard`` (a no-op for the async poller, whose callers share one thread; an
    ``RLock`` for the thread poller, whose callers are any threads).
    """

    def __init__(
        self,
        *,
        provider: str,
        poll: PollFlow,
        clock: Clock,
        policy: PollPolicy,
        rng: random.Random | None = None,
        token_key: TokenKey | None = None,
        answers: Callable[[list[Seen]], tuple[ResponseInfo, ...]] | None = None,
    ) -> None:
        self.provider = provider
        self.token_key = token_key
        self._poll = poll
        self.clock = clock
        self.policy = policy
        self._rng = rng or random.Random()
        self._heap: list[tuple[float, int, _Core]] = []
        self._seq = itertools.count()
        self._by_id: dict[str, list[_Core]] = {}
        self._count = 0  # cores not yet done
        self._closed = False
        self.reads = 0  #: status reads made (for benchmarks and demos)
        self.peak_reads_in_flight = 0
        self._in_flight = 0
        self._guard: contextlib.AbstractContextManager[Any] = contextlib.nullcontext()
        #: the ResponseInfo of a read's answers (the client's), so a bill a read ends in has ``bill.response``
        self.answers = answers
        tracing.track(self)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(provider={self.provider!r}, pending={self._count})"

    @property
    def pending_count(self) -> int:
        return self._count

    @property
    def closed(self) -> bool:
        return self._closed

    # -- what the pollers provide -----------------------------------------------------------------------
    def _wake(self) -> None:
        """Tell the poller that the schedule changed (a new core, an earlier due time, an end)."""

    def ensure_running(self) -> None:
        """Start the poller if operations are pending and it is not running."""

    # -- registration -----------------------------------------------------------------------------------
    def new_core(self, kind: str, id: str, state: Mapping[str, Any], deadline: float | None) -> _Core:
        if self._closed:
            raise ClientClosedError("the client is closed", provider=self.provider)
        limit = self.policy.deadline if deadline is None else deadline
        return _Core(self, kind, id, state, self.clock.now() + limit)

    def start(self, core: _Core, first: PollResult | None = None) -> None:
        """Register a running core; apply the adapter's first answer if it gave one."""
        with self._guard:
            self._register(core)
            if first is not None:
                self._apply(core, first)
            else:
                self._schedule(core, self.policy.next_delay(0, None, self._rng))
        self.ensure_running()

    def _register(self, core: _Core) -> None:
        self._by_id.setdefault(core.id, []).append(core)
        self._count += 1

    def _delay(self, core: _Core, hint: float | None) -> float:
        return self.policy.next_delay(core.polls, hint, self._rng, self.clock.now() - core.started)

    def _schedule(self, core: _Core, delay: float) -> None:
        due = min(self.clock.now() + delay, core.deadline)
        core.seq = next(self._seq)
        top = self._heap[0][0] if self._heap else None
        heapq.heappush(self._heap, (due, core.seq, core))
        if top is None or due < top:
            self._wake()

    # -- outcomes ---------------------------------------------------------------------------------------
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
        core.seq = -1
        same = self._by_id.get(core.id)
        if same is not None:
            with contextlib.suppress(ValueError):
                same.remove(core)
            if not same:
                del self._by_id[core.id]
        self._count -= 1
        waiters, core.waiters = core.waiters, []
        for waiter in waiters:
            waiter.core_ended(core)
        for listener in list(core.listeners):
            listener(core)
        if core.parent is not None:
            self._child_ended(core.parent, core)
        if self._count == 0:
            self._wake()  # the poller may end

    def _time_out(self, core: _Core) -> None:
        last = core.status.value if core.status else None
        err = OperationTimeout(
            f"operation {core.id} was not finished by its deadline; last status {last!r} "
            f"(provider status {core.provider_status!r}); resume it later with client.resume(err.token)",
            provider=core.provider,
            status=last,
            provider_status=core.provider_status,
            token=core.token,
        )
        self._finish(core, OperationState.TIMED_OUT, error=err)

    def cancel(self, core: _Core, why: str = "was cancelled locally") -> None:
        """End ``core`` (and, for a composite, every child) with :class:`OperationCancelled`. Not recursive."""
        with self._guard:
            self._cancel(core, why)

    def _cancel(self, core: _Core, why: str) -> None:
        if core.done:
            return
        core.cancelling = True
        for child in core.children or ():
            if isinstance(child, _Core) and not child.done:
                child.cancelling = True
                child.scheduler._finish(child, OperationState.CANCELLED, error=self._cancelled(child, why))
        core.scheduler._finish(core, OperationState.CANCELLED, error=self._cancelled(core, why))

    @staticmethod
    def _cancelled(core: _Core, why: str) -> OperationCancelled:
        return OperationCancelled(
            f"polling of operation {core.id} {why}; the provider was not told", provider=core.provider, token=core.token
        )

    def complete(self, id: str, result: PollResult,
                 interpret: Callable[[_Core, PollResult], PollResult] | None = None) -> int:  # fmt: skip
        """Apply a webhook's news to every pending operation with this id, each through ``interpret`` (which reads
        the news the way a poll of that kind of operation would). An event older than the newest already applied
        to an operation (``result.order``) is ignored. Returns how many operations it was applied to."""
        applied = 0
        with self._guard:
            for core in list(self._by_id.get(id, ())):
                if result.order is not None:
                    if core.event_order is not None and result.order < core.event_order:
                        continue  # a late delivery of older news
                    core.event_order = result.order
                self._apply(core, interpret(core, result) if interpret is not None else result)
                applied += 1
        return applied

    def close(self) -> None:
        """End every pending operation with :class:`OperationCancelled`; no operation can start afterwards."""
        with self._guard:
            self._closed = True
            for cores in list(self._by_id.values()):
                for core in list(cores):
                    self._cancel(core, "stopped: the client was closed")
            self._heap.clear()
            self._wake()

    # -- composites (a bulk of single operations) -----------------------------------------------------------
    def composite(self, id: str, children: Sequence[_Core | BillkitError], deadline: float | None) -> _Core:
        parent = self.new_core("composite", id, {}, deadline)
        parent.children = list(children)
        parent.total = len(children)
        with self._guard:
            self._register(parent)
            for child in children:
                if not isinstance(child, _Core):
                    parent.finished += 1
                    continue
                child.deadline = parent.deadline
                if child.done:
                    parent.finished += 1
                    if child.state in (OperationState.CANCELLED, OperationState.TIMED_OUT):
                        parent.cancelling = child.state is OperationState.CANCELLED
                else:
                    child.parent = parent
            parent.progress = (parent.finished, len(children))
            if parent.finished == len(children):
                self._finish_composite(parent)
        return parent

    def _child_ended(self, parent: _Core, child: _Core) -> None:
        """O(1): count the child; end the parent when every child has ended."""
        if parent.done:
            return
        parent.finished += 1
        total = len(parent.children or ())
        parent.progress = (parent.finished, total)
        if parent.cancelling:
            return
        if child.state is OperationState.TIMED_OUT:
            self._time_out(parent)
        elif child.state is OperationState.CANCELLED:
            self._cancel(parent, "was cancelled locally (one of its items was)")
        elif parent.finished >= total:
            self._finish_composite(parent)
        else:
            for listener in list(parent.listeners):
                listener(parent)

    def _finish_composite(self, parent: _Core) -> None:
        result = composite_result(parent)
        parent.status = BillStatus.OPEN if result.succeeded else BillStatus.FAILED
        self._finish(parent, OperationState.SUCCEEDED, value=result)

    # -- what the pollers share --------------------------------------------------------------------------------
    def _take_due(self, now: float) -> list[_Core]:
        """Pop every core due by ``now``; time out those past their deadline."""
        due: list[_Core] = []
        heap = self._heap
        while heap and heap[0][0] <= now:
            _, seq, core = heapq.heappop(heap)
            if core.done or seq != core.seq:
                continue
            core.seq = -1  # being read: a webhook may still finish it, but nothing schedules it twice
            if now >= core.deadline:
                self._time_out(core)
                continue
            due.append(core)
        return due

    def _next_due(self) -> float | None:
        heap = self._heap
        while heap and (heap[0][2].done or heap[0][1] != heap[0][2].seq):
            heapq.heappop(heap)
        return heap[0][0] if heap else None

    def _put_back(self, core: _Core) -> None:
        """A read that was interrupted (cancelled poller, fork): the core is due again at once."""
        if not core.done and core.seq == -1 and not self._closed:
            self._schedule(core, 0.0)

    def _with_answers(self, outcome: PollResult, seen: list[Seen]) -> PollResult:
        """``outcome``, its bill (if the read ended in one) saying which answers it was read from
        (``bill.response``, as for a bill from ``create``)."""
        value = outcome.value
        if seen and isinstance(value, Bill) and self.answers is not None:
            attach(value, self.answers(seen))
        return outcome

    def _read_started(self, core: _Core) -> None:
        core.polls += 1
        self.reads += 1
        self._in_flight += 1
        self.peak_reads_in_flight = max(self.peak_reads_in_flight, self._in_flight)

    def _read_ended(self, core: _Core, outcome: PollResult | BaseException) -> None:
        """Apply one read's outcome: a result, a transient error (read again later) or a terminal one."""
        self._in_flight -= 1
        if core.done:
            return
        if isinstance(outcome, PollResult):
            self._apply(core, outcome)
        elif isinstance(outcome, BillkitError):
            if is_transient(None, outcome):
                hint = outcome.retry_after if isinstance(outcome, RateLimitError) else None
                self._schedule(core, self._delay(core, hint))
            else:
                self._finish(core, OperationState.FAILED, error=outcome)
        else:
            logger.warning("status read of %s operation %s raised %r", self.provider, core.id, outcome)
            error = OperationFailed(
                f"reading the status of operation {core.id} failed: {outcome!r}",
                provider=self.provider,
                operation_id=core.id,
                cause=outcome,
            )
            self._finish(core, OperationState.FAILED, error=error)


class AsyncPoller(Scheduler):
    """The scheduler of an ``AsyncClient``: one background task polls while operations are pending.

    The task is started with the event loop's own primitive (``asyncio`` ``create_task``, trio's
    ``spawn_system_task``), so it belongs to no caller's cancel scope: cancelling a waiter never reaches it.
    """

    def __init__(
        self,
        *,
        provider: str,
        poll: PollFlow,
        clock: Clock,
        policy: PollPolicy,
        io: AsyncIO,
        rng: random.Random | None = None,
        token_key: TokenKey | None = None,
        answers: Callable[[list[Seen]], tuple[ResponseInfo, ...]] | None = None,
    ) -> None:
        super().__init__(provider=provider, poll=poll, clock=clock, policy=policy, rng=rng, token_key=token_key,
                         answers=answers)  # fmt: skip
        self._io = io
        self._running = False
        self._kick: anyio.Event | None = None
        self._scope: anyio.CancelScope | None = None
        self._stopped: anyio.Event | None = None
        self._task: Any = None  # asyncio: keep a reference, or the task may be collected mid-run

    def _wake(self) -> None:
        if self._kick is not None:
            self._kick.set()

    def ensure_running(self) -> None:
        if self._running or self._closed or self._count == 0:
            return
        self._running = True
        self._stopped = anyio.Event()
        try:
            self._task = _spawn(self._loop)
        except BaseException:
            self._running = False
            raise

    async def _loop(self) -> None:
        clock = self.clock
        try:
            with anyio.CancelScope() as scope:
                self._scope = scope
                while self._count and not self._closed:
                    due = self._take_due(clock.now())
                    if due:
                        await self._read_all(due)
                        continue
                    wake = self._next_due()
                    self._kick = anyio.Event()
                    if wake is None:
                        await self._kick.wait()
                    else:
                        await clock.sleep_until(wake, self._kick)
                    self._kick = None
        except Exception as exc:  # a bug here must not hang every waiter: end what is pending, visibly
            logger.exception("the %s poller stopped", self.provider)
            for cores in list(self._by_id.values()):
                for core in list(cores):
                    self._finish(
                        core,
                        OperationState.FAILED,
                        error=OperationFailed(
                            f"the poller stopped: {exc!r}", provider=self.provider, operation_id=core.id, cause=exc
                        ),
                    )
        finally:
            self._running = False
            self._scope = None
            self._kick = None
            self._task = None
            if self._stopped is not None:
                self._stopped.set()

    async def _read_all(self, due: list[_Core]) -> None:
        queue = deque(due)

        async def worker() -> None:
            while queue:
                await self._read(queue.popleft())

        try:
            workers = min(len(due), self.policy.max_concurrent_reads)
            if workers == 1:
                await worker()
            else:
                async with anyio.create_task_group() as tg:
                    for _ in range(workers):
                        tg.start_soon(worker)
        finally:
            for core in queue:  # interrupted before these were read: due again at once
                self._put_back(core)

    async def _poll_once(self, core: _Core) -> PollResult:
        if self.answers is None:
            return await self._io.run(self._poll(core.kind, core.token_state))
        io, seen = self._io.capturing()
        return self._with_answers(await io.run(self._poll(core.kind, core.token_state)), seen)

    async def _read(self, core: _Core) -> None:
        if core.done:
            return
        self._read_started(core)
        with tracing.status_read(core, background=True) as span:
            try:
                outcome: PollResult | BaseException = await self._poll_once(core)
            except Exception as exc:
                outcome = exc
            except BaseException:
                self._in_flight -= 1
                self._put_back(core)
                raise
            self._read_ended(core, outcome)
            span.read_ended(core, outcome)

    async def read_now(self, core: _Core) -> None:
        """One status read of ``core`` in the caller's task (``op.refresh()``)."""
        if core.done:
            return
        self._read_started(core)
        with tracing.status_read(core, background=False) as span:
            try:
                outcome: PollResult | BaseException = await self._poll_once(core)
            except Exception as exc:
                outcome = exc
            except BaseException:
                self._in_flight -= 1
                raise
            self._read_ended(core, outcome)
            span.read_ended(core, outcome)

    async def aclose(self) -> None:
        """Stop the poller and end every pending operation with :class:`OperationCancelled`."""
        self.close()
        if self._scope is not None:
            self._scope.cancel()
        if self._running and self._stopped is not None:
            with anyio.CancelScope(shield=True):
                await self._stopped.wait()


def _spawn(loop: Callable[[], Coroutine[Any, Any, None]]) -> Any:
    """Start ``loop`` as a task of the running event loop that no caller's cancel scope contains; returns the
    asyncio task (to be kept referenced), or None under trio (system tasks are held by trio itself)."""
    import asyncio

    try:
        running = asyncio.get_running_loop()
    except RuntimeError:
        running = None
    if running is not None:
        return running.create_task(loop())
    import trio  # anyio's other backend; only imported when it is the one running

    trio.lowlevel.spawn_system_task(loop)
    return None


class ThreadPoller(Scheduler):
    """The scheduler of a blocking ``Client``: a daemon thread polls while operations are pending.

    Fork-safe: in a child process the lock, the thread and the read pool are made anew, and reads that were in
    flight in the parent are due again. On a virtual clock with autojump the thread moves time only while a
    caller waits (``result()``, ``gather``), so code between calls sees the time it left.
    """

    def __init__(
        self,
        *,
        provider: str,
        poll: PollFlow,
        clock: Clock,
        policy: PollPolicy,
        io: SyncIO,
        rng: random.Random | None = None,
        token_key: TokenKey | None = None,
        answers: Callable[[list[Seen]], tuple[ResponseInfo, ...]] | None = None,
    ) -> None:
        super().__init__(provider=provider, poll=poll, clock=clock, policy=policy, rng=rng, token_key=token_key,
                         answers=answers)  # fmt: skip
        self._io = io
        self._cond = threading.Condition(threading.RLock())
        self._guard = self._cond
        self._thread: threading.Thread | None = None
        self._timers: list[tuple[float, int, _ThreadWaiter]] = []
        self._waiters: set[_ThreadWaiter] = set()  # threads blocked on this client's operations
        self._reading: set[_Core] = set()
        self._pool: ThreadPoolExecutor | None = None
        on_fork(self, ThreadPoller._after_fork)

    def _after_fork(self) -> None:
        self._cond = threading.Condition(threading.RLock())
        self._guard = self._cond
        self._thread = None
        self._pool = None
        self._waiters = set()
        self._timers = []
        self._in_flight = 0
        reading, self._reading = self._reading, set()
        for core in reading:
            self._put_back(core)

    def _wake(self) -> None:
        with self._cond:
            self._cond.notify_all()

    def ensure_running(self) -> None:
        with self._cond:
            if self._closed or (self._count == 0 and not self._timers):
                return
            if self._thread is not None and self._thread.is_alive():
                return
            thread = threading.Thread(target=self._loop, name=f"billkit-{self.provider}-poller", daemon=True)
            self._thread = thread
            thread.start()

    def _somebody_waits(self) -> bool:
        return any(not w.event.is_set() for w in self._waiters)

    def _loop(self) -> None:
        me = threading.current_thread()
        cond = self._cond
        clock = self.clock
        virtual = isinstance(clock, VirtualClock) and clock.autojump
        with cond:
            try:
                while (self._count or self._timers) and not self._closed and self._thread is me:
                    now = clock.now()
                    timers = self._timers
                    while timers and (timers[0][0] <= now or timers[0][2].event.is_set()):
                        heapq.heappop(timers)[2].fire()
                    due = self._take_due(now)
                    if due:
                        self._reading.update(due)
                        cond.release()
                        try:
                            self._read_batch(due)
                        finally:
                            cond.acquire()
                        continue
                    wake = self._next_due()
                    if self._timers and (wake is None or self._timers[0][0] < wake):
                        wake = self._timers[0][0]
                    if virtual and isinstance(clock, VirtualClock):
                        if not self._somebody_waits():
                            clock.leave(cond)
                            cond.wait()  # nobody waits: virtual time stands still until somebody does
                            continue
                        clock.take_part(cond)
                    clock.wait_sync(cond, wake)
            except Exception:
                logger.exception("the %s poller thread stopped", self.provider)
            finally:
                if isinstance(clock, VirtualClock):
                    clock.leave(cond, force=True)  # this thread ends: it must never hold the others' time still
                if self._thread is me:
                    self._thread = None

    def _read_batch(self, due: list[_Core]) -> None:
        workers = min(len(due), self.policy.max_concurrent_reads)
        if workers == 1:
            for core in due:
                self._read(core)
            return
        if self._pool is None:
            from concurrent.futures import ThreadPoolExecutor

            self._pool = ThreadPoolExecutor(
                max_workers=self.policy.max_concurrent_reads, thread_name_prefix=f"billkit-{self.provider}-read"
            )
        list(self._pool.map(self._read, due))

    def _read(self, core: _Core) -> None:
        self._read_one(core, background=True)

    def read_now(self, core: _Core) -> None:
        """One status read of ``core`` in the calling thread (``op.refresh()``)."""
        self._read_one(core, background=False)

    def _poll_once(self, core: _Core) -> PollResult:
        if self.answers is None:
            return self._io.run(self._poll(core.kind, core.token_state))
        io, seen = self._io.capturing()
        return self._with_answers(io.run(self._poll(core.kind, core.token_state)), seen)

    def _read_one(self, core: _Core, *, background: bool) -> None:
        """A read by the poller thread (``background``: the core is in ``_reading``, and goes back to the schedule
        if the read is interrupted) or by a caller's thread."""
        with self._cond:
            if core.done:
                if background:
                    self._reading.discard(core)
                return
            self._read_started(core)
        with tracing.status_read(core, background=background) as span:
            try:
                outcome: PollResult | BaseException = self._poll_once(core)
            except Exception as exc:
                outcome = exc
            except BaseException:
                with self._cond:
                    self._in_flight -= 1
                    if background:
                        self._reading.discard(core)
                        self._put_back(core)
                raise
            with self._cond:
                if background:
                    self._reading.discard(core)
                self._read_ended(core, outcome)
                span.read_ended(core, outcome)

    # -- blocking waits ------------------------------------------------------------------------------------------
    def add_waiter(self, waiter: _ThreadWaiter, until: float | None) -> None:
        with self._cond:
            self._waiters.add(waiter)
            if until is not None:
                heapq.heappush(self._timers, (until, next(self._seq), waiter))
            if isinstance(self.clock, VirtualClock) and (self._count or self._timers):
                self.clock.take_part(self._cond)  # somebody waits: this poller moves virtual time with the others
            self._cond.notify_all()
        self.ensure_running()

    def remove_waiter(self, waiter: _ThreadWaiter) -> None:
        with self._cond:
            self._waiters.discard(waiter)
            if any(w is waiter for _, _, w in self._timers):
                self._timers = [t for t in self._timers if t[2] is not waiter]
                heapq.heapify(self._timers)
            self._cond.notify_all()

    def shutdown(self) -> None:
        """End every pending operation (OperationCancelled) and let the thread and the read pool go."""
        self.close()
        pool, self._pool = self._pool, None
        if pool is not None:
            pool.shutdown(wait=False, cancel_futures=True)


def composite_result(parent: _Core) -> BulkResult:
    """The per-item picture of a composite bulk (pending children marked PENDING); items made when first read."""
    children = list(parent.children or ())

    def item(index: int) -> ItemResult:
        child = children[index]
        if not isinstance(child, _Core):
            return ItemResult(index=index, status=ItemStatus.FAILED, error=child)
        if child.state is OperationState.SUCCEEDED:
            bill = child.value if isinstance(child.value, Bill) else None
            return ItemResult(index=index, status=ItemStatus.SUCCEEDED, bill=bill,
                              reference=bill.reference if bill else None)  # fmt: skip
        if child.done:
            return ItemResult(index=index, status=ItemStatus.FAILED, error=child.error)
        return ItemResult(index=index, status=ItemStatus.PENDING)

    if not parent.done and any(isinstance(c, _Core) and not c.done for c in children):
        # a snapshot of a running bulk: its children still change
        items = tuple(item(i) for i in range(len(children)))
        return BulkResult(items=items, provider=parent.provider, provider_id=parent.id)
    return BulkResult.lazy(len(children), item, provider=parent.provider, provider_id=parent.id)


# -- waiting -----------------------------------------------------------------------------------------------------


def _attach(cores: Sequence[_Core], waiter: _Waiter) -> list[_Core]:
    """Hang ``waiter`` on every unfinished core (under each core's scheduler guard); the cores it hangs on."""
    attached: list[_Core] = []
    for core in cores:
        with core.scheduler._guard:
            if core.done:
                waiter.core_ended(core)
            else:
                core.waiters.append(waiter)
                attached.append(core)
    return attached


def _detach(cores: Sequence[_Core], waiter: _Waiter) -> None:
    for core in cores:
        with core.scheduler._guard, contextlib.suppress(ValueError):
            core.waiters.remove(waiter)


def _need(cores: Sequence[_Core], any_done: bool) -> int:
    return 1 if any_done else len(cores)


async def _wait(cores: Sequence[_Core], timeout: float | None, *, any_done: bool = False) -> None:
    """Return when all (or any) of ``cores`` have ended, or after ``timeout`` on their clock. Waits only."""
    if not cores:
        return
    waiter = _AsyncWaiter(_need(cores, any_done))
    attached = _attach(cores, waiter)
    try:
        if waiter.event.is_set():
            return
        for scheduler in {id(c.scheduler): c.scheduler for c in attached}.values():
            scheduler.ensure_running()
        if timeout is None:
            await waiter.event.wait()
        else:
            clock = cores[0].scheduler.clock
            await clock.sleep_until(clock.now() + timeout, waiter.event)
    finally:
        _detach(attached, waiter)


def _take_parts(pollers: Sequence[ThreadPoller]) -> list[ThreadPoller]:
    """Before a wait over several clients' operations: every poller with work is claimed for virtual time's
    autojump at once, before any is told of the wait, and stays claimed until the wait ends (:func:`_give_parts`).
    So the first poller told cannot jump time past the others' reads while they are still being told, nor while one
    that has not yet seen the wait leaves autojump ("nobody waits for me"). Two clients on one VirtualClock finished
    out of order without this (1 run in 100; 8 in 100 under load). Returns the pollers claimed."""
    claimed = []
    for poller in pollers:
        with poller._cond:
            if isinstance(poller.clock, VirtualClock) and (poller._count or poller._timers):
                poller.clock.claim(poller._cond)
                claimed.append(poller)
    return claimed


def _give_parts(claimed: list[ThreadPoller]) -> None:
    for poller in claimed:
        assert isinstance(poller.clock, VirtualClock)
        poller.clock.release(poller._cond)


def _wait_sync(
    cores: Sequence[_Core], timeout: float | None, *, any_done: bool = False, ended: deque[_Core] | None = None
) -> None:
    if not cores:
        return
    waiter = _ThreadWaiter(_need(cores, any_done))
    waiter.ended = ended
    attached = _attach(cores, waiter)
    pollers = [s for s in {id(c.scheduler): c.scheduler for c in attached}.values() if isinstance(s, ThreadPoller)]
    if not pollers:
        if attached:
            raise TypeError("a blocking wait over operations of an AsyncClient: await them instead")
        return
    until = None if timeout is None else pollers[0].clock.now() + timeout
    claimed = _take_parts(pollers)
    try:
        for i, poller in enumerate(pollers):
            poller.add_waiter(waiter, until if i == 0 else None)
        while not waiter.event.wait(1.0):  # a heartbeat: a poller lost to a fork is started again
            for poller in pollers:
                poller.ensure_running()
    finally:
        for poller in pollers:
            poller.remove_waiter(waiter)
        _give_parts(claimed)
        _detach(attached, waiter)


# -- the public handles --------------------------------------------------------------------------------


class _Handle(Generic[T_co]):
    __slots__ = ("_core", "_responses")

    def __init__(self, core: _Core, responses: tuple[ResponseInfo, ...] = ()) -> None:
        self._core = core
        self._responses = responses

    @property
    def response(self) -> ResponseInfo | None:
        """The HTTP answer of the call that started this operation (``submit``'s create, a bulk's POST; for a bulk
        of many creates, the last to arrive), with its status, headers and request id; None for an operation that
        ``resume`` or ``wait_for`` made (no answer started it). Status reads are not recorded here."""
        return self._responses[-1] if self._responses else None

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

    def cancel(self) -> None:
        """Stop polling locally; waiting raises :class:`OperationCancelled` at once. The provider is not told."""
        with tracing.call(self._core.provider, "cancel") as span:
            span.operation(self._core)
            self._core.scheduler.cancel(self._core)

    def _outcome(self) -> T_co:
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
            provider=core.provider,
            status=last,
            provider_status=core.provider_status,
            token=core.token,
        )

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.provider} {self.id} {self.state.value} status={self.status}>"


class Operation(_Handle[T_co]):
    """An awaitable future over provider work: ``bill = await op``."""

    __slots__ = ()

    def __await__(self) -> Generator[Any, None, T_co]:
        return self.result().__await__()

    async def result(self, timeout: float | None = None) -> T_co:
        """The result; raises the failure, or :class:`OperationTimeout` if ``timeout`` passes first."""
        core = self._core
        if not core.done:
            await _wait([core], timeout)
            if not core.done:
                raise self._local_timeout()
        return self._outcome()

    async def wait(self, timeout: float | None = None) -> bool:
        """Wait until done or ``timeout``; never raises the operation's error. Returns ``done()``."""
        if not self._core.done:
            await _wait([self._core], timeout)
        return self._core.done

    async def refresh(self) -> BillStatus | None:
        """Read the status once now and return it."""
        core = self._core
        scheduler = core.scheduler
        assert isinstance(scheduler, AsyncPoller)
        for one in [c for c in core.children or () if isinstance(c, _Core)] if core.children is not None else [core]:
            await scheduler.read_now(one)
        return core.status


class BulkOperation(Operation[BulkResult]):
    """An operation over many bills; resolves to a :class:`BulkResult`, one item per input, in order."""

    __slots__ = ()

    @property
    def progress(self) -> tuple[int, int]:
        """(items finished, total), without I/O."""
        return _progress(self._core)

    @property
    def partial(self) -> BulkResult:
        """The per-item picture so far, without I/O; never ``None``. One item per input, in input order: those not
        finished are PENDING (all of them before the provider has reported anything) and, once the bulk has ended
        with an error (cancelled, timed out), FAILED with that error. It has no items only while the bulk's size is
        unknown: a bulk resumed from its token, before its first status read."""
        return _partial(self._core)


def _progress(core: _Core) -> tuple[int, int]:
    if core.progress is not None:
        return core.progress
    return (0, core.total or 0)


def _partial(core: _Core) -> BulkResult:
    if core.done and isinstance(core.value, BulkResult):
        return core.value
    if core.children is not None:
        return composite_result(core)
    known, ended = core.partial, core.error if core.done else None
    if known is not None and ended is None:
        return known
    count = len(known) if known is not None else _progress(core)[1]

    def item(index: int) -> ItemResult:
        if known is not None and known[index].status is not ItemStatus.PENDING:
            return known[index]
        if ended is not None:
            return ItemResult(index=index, status=ItemStatus.FAILED, error=ended)
        return ItemResult(index=index, status=ItemStatus.PENDING)

    return BulkResult.lazy(count, item, provider=core.provider, provider_id=core.id)


class BlockingOperation(_Handle[T_co]):
    """The blocking twin of :class:`Operation`, over the same kind of core: ``bill = op.result(timeout=600)``."""

    __slots__ = ()

    def result(self, timeout: float | None = None) -> T_co:
        core = self._core
        if not core.done:
            _wait_sync([core], timeout)
            if not core.done:
                raise self._local_timeout()
        return self._outcome()

    def wait(self, timeout: float | None = None) -> bool:
        if not self._core.done:
            _wait_sync([self._core], timeout)
        return self._core.done

    def refresh(self) -> BillStatus | None:
        core = self._core
        scheduler = core.scheduler
        assert isinstance(scheduler, ThreadPoller)
        for one in [c for c in core.children or () if isinstance(c, _Core)] if core.children is not None else [core]:
            scheduler.read_now(one)
        return core.status


class BlockingBulkOperation(BlockingOperation[BulkResult]):
    __slots__ = ()

    @property
    def progress(self) -> tuple[int, int]:
        return _progress(self._core)

    @property
    def partial(self) -> BulkResult:
        """The per-item picture so far (see :attr:`BulkOperation.partial`), without I/O."""
        return _partial(self._core)


# -- gather and as_completed ---------------------------------------------------------------------------


def _results(ops: Sequence[_Handle[Any]], return_exceptions: bool) -> list[Any]:
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


async def _gather(ops: Sequence[Operation[Any]], timeout: float | None, return_exceptions: bool) -> list[Any]:
    await _wait([op._core for op in ops], timeout)
    return _results(ops, return_exceptions)


# Typed results: operations of one kind give ``list[T]``; two of different kinds (an invoice and a bulk) give
# ``list[T1 | T2]`` (unpack and narrow with isinstance); ``return_exceptions=True`` adds ``BillkitError``.
@overload
def gather(
    op1: Operation[T1], op2: Operation[T2], /, *, timeout: float | None = ..., return_exceptions: Literal[False] = ...
) -> Awaitable[list[T1 | T2]]: ...
@overload
def gather(
    *ops: Operation[T], timeout: float | None = ..., return_exceptions: Literal[False] = ...
) -> Awaitable[list[T]]: ...
@overload
def gather(
    *ops: Operation[T], timeout: float | None = ..., return_exceptions: bool
) -> Awaitable[list[T | BillkitError]]: ...
@overload
def gather(
    op1: BlockingOperation[T1],
    op2: BlockingOperation[T2],
    /,
    *,
    timeout: float | None = ...,
    return_exceptions: Literal[False] = ...,
) -> list[T1 | T2]: ...
@overload
def gather(
    *ops: BlockingOperation[T], timeout: float | None = ..., return_exceptions: Literal[False] = ...
) -> list[T]: ...
@overload
def gather(
    *ops: BlockingOperation[T], timeout: float | None = ..., return_exceptions: bool
) -> list[T | BillkitError]: ...
def gather(
    *ops: Operation[Any] | BlockingOperation[Any],
    timeout: float | None = None,
    return_exceptions: bool = False,
) -> Awaitable[list[Any]] | list[Any]:
    """Wait for every operation (any mix of providers and clients) within one shared ``timeout``; results in order.

    With async operations, ``await billkit.gather(...)``; with blocking ones, call it directly. The first
    failure is raised unless ``return_exceptions=True`` (then errors take their place in the list). If the
    timeout passes first, :class:`OperationTimeout` is raised for the first unfinished operation; every
    operation keeps running and keeps its own token.
    """
    blocking = [op for op in ops if isinstance(op, BlockingOperation)]
    if blocking:
        if len(blocking) != len(ops):
            raise TypeError("gather: do not mix blocking and async operations")
        _wait_sync([op._core for op in blocking], timeout)
        return _results(blocking, return_exceptions)
    return _gather([op for op in ops if isinstance(op, Operation)], timeout, return_exceptions)


class AsyncAsCompleted(AsyncIterator[Operation[T]]):
    """``async for op in billkit.as_completed(ops)``: one waiter over all of them, O(1) per operation."""

    def __init__(self, ops: Sequence[Operation[T]], timeout: float | None) -> None:
        self._handles = {id(op._core): op for op in ops}
        self._cores = [op._core for op in ops]
        self._ended: deque[_Core] = deque()
        self._left = len(ops)
        self._timeout = timeout
        self._until: float | None = None
        self._waiter: _AsyncWaiter | None = None
        self._attached: list[_Core] = []

    def __aiter__(self) -> AsyncAsCompleted[T]:
        return self

    async def __anext__(self) -> Operation[T]:
        if self._left == 0:
            self._close()
            raise StopAsyncIteration
        clock = self._cores[0].scheduler.clock
        if self._waiter is None:
            self._waiter = _AsyncWaiter(1)
            self._waiter.ended = self._ended
            self._attached = _attach(self._cores, self._waiter)
            if self._timeout is not None:
                self._until = clock.now() + self._timeout
        while not self._ended:
            for scheduler in {id(c.scheduler): c.scheduler for c in self._attached if not c.done}.values():
                scheduler.ensure_running()
            if self._until is None:
                await self._waiter.event.wait()
            else:
                if clock.now() >= self._until:
                    pending = next(op for op in self._handles.values() if not op.done())
                    raise pending._local_timeout()
                await clock.sleep_until(self._until, self._waiter.event)
            self._waiter.event = anyio.Event()
        self._left -= 1
        return self._handles[id(self._ended.popleft())]

    def _close(self) -> None:
        if self._waiter is not None:
            _detach(self._attached, self._waiter)


class BlockingAsCompleted(Iterator[BlockingOperation[T]]):
    """``for op in billkit.as_completed(ops)``: one waiter over all of them, O(1) per operation."""

    def __init__(self, ops: Sequence[BlockingOperation[T]], timeout: float | None) -> None:
        self._handles = {id(op._core): op for op in ops}
        self._cores = [op._core for op in ops]
        self._ended: deque[_Core] = deque()
        self._left = len(ops)
        self._timeout = timeout
        self._until: float | None = None
        self._waiter: _ThreadWaiter | None = None
        self._attached: list[_Core] = []

    def __iter__(self) -> BlockingAsCompleted[T]:
        return self

    def __next__(self) -> BlockingOperation[T]:
        if self._left == 0:
            self._close()
            raise StopIteration
        if self._waiter is None:
            self._waiter = _ThreadWaiter(1)
            self._waiter.ended = self._ended
            self._attached = _attach(self._cores, self._waiter)
            if self._timeout is not None:
                self._until = self._cores[0].scheduler.clock.now() + self._timeout
        waiter = self._waiter
        waiter.event.clear()
        if not self._ended:
            pending = [c for c in self._attached if not c.done]
            pollers = [
                s for s in {id(c.scheduler): c.scheduler for c in pending}.values() if isinstance(s, ThreadPoller)
            ]
            claimed = _take_parts(pollers)
            try:
                for i, poller in enumerate(pollers):
                    poller.add_waiter(waiter, self._until if i == 0 else None)
                while not self._ended:
                    if self._until is not None and pollers and pollers[0].clock.now() >= self._until:
                        break
                    if waiter.event.wait(1.0):
                        waiter.event.clear()
                    else:
                        for poller in pollers:
                            poller.ensure_running()
            finally:
                for poller in pollers:
                    poller.remove_waiter(waiter)
                _give_parts(claimed)
            if not self._ended:
                unfinished = next(op for op in self._handles.values() if not op.done())
                raise unfinished._local_timeout()
        self._left -= 1
        return self._handles[id(self._ended.popleft())]

    def _close(self) -> None:
        if self._waiter is not None:
            _detach(self._attached, self._waiter)


@overload
def as_completed(ops: Sequence[BlockingOperation[T]], *, timeout: float | None = ...) -> BlockingAsCompleted[T]: ...
@overload
def as_completed(ops: Sequence[Operation[T]], *, timeout: float | None = ...) -> AsyncAsCompleted[T]: ...
def as_completed(
    ops: Sequence[Operation[Any]] | Sequence[BlockingOperation[Any]], *, timeout: float | None = None
) -> AsyncAsCompleted[Any] | BlockingAsCompleted[Any]:
    """Yield operations as they finish (``async for`` for async ones, ``for`` for blocking ones), of any clients.

    Each yielded operation is done: ``await op`` / ``op.result()`` gives its result or raises its error.
    When the shared ``timeout`` passes, :class:`OperationTimeout` is raised for an unfinished one.
    """
    items: list[Any] = list(ops)
    if items and all(isinstance(op, BlockingOperation) for op in items):
        return BlockingAsCompleted(items, timeout)
    if any(isinstance(op, BlockingOperation) for op in items):
        raise TypeError("as_completed: do not mix blocking and async operations")
    return AsyncAsCompleted(items, timeout)

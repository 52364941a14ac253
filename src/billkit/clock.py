"""Clocks: the one place billkit reads time and sleeps, so tests and sandboxes can run on virtual time.

:class:`SystemClock` is the default. :class:`VirtualClock` (also exported by :mod:`billkit.testing`) runs
polling, backoff and the sandboxes' background jobs on virtual time: with ``autojump=True`` (the default)
time jumps to the next sleeper as soon as every task is waiting on the clock, so an hour of polling takes
milliseconds; with ``autojump=False`` a test moves time itself with :meth:`VirtualClock.advance`.
Both work under asyncio and trio (through anyio), and in blocking code (``sleep_sync``, ``wait_sync``). There a
virtual clock with ``autojump=True`` jumps when every blocking client's poller that somebody waits for is waiting on
the clock (the pollers *take part*, see :meth:`VirtualClock.take_part`), to the earliest of their deadlines, so
operations of several clients on one clock finish in the order of their virtual times; any other thread's sleep
jumps at once. A clock with ``autojump=False`` moves only with :meth:`VirtualClock.advance_sync` (or
:meth:`VirtualClock.advance`).
"""

from __future__ import annotations

import heapq
import math
import threading
import time
from typing import TYPE_CHECKING, Protocol, runtime_checkable

from billkit.flows import LazyModule, on_fork

if TYPE_CHECKING:
    import anyio
else:
    anyio = LazyModule("anyio")  # blocking code never needs it

__all__ = ["Clock", "SystemClock", "VirtualClock"]


@runtime_checkable
class Clock(Protocol):
    """What billkit needs of a clock."""

    def now(self) -> float:
        """Seconds on a monotonic scale."""
        ...

    def wall(self) -> float:
        """Seconds since the epoch (for HTTP dates and timestamps)."""
        ...

    async def sleep(self, seconds: float) -> None: ...

    async def sleep_until(self, deadline: float, wake: anyio.Event | None = None) -> None:
        """Sleep until ``deadline`` (on the ``now()`` scale), or until ``wake`` is set, whichever is first."""
        ...

    def sleep_sync(self, seconds: float) -> None:
        """Block the calling thread for ``seconds``."""
        ...

    def wait_sync(self, condition: threading.Condition, deadline: float | None) -> None:
        """``condition.wait()`` (the caller holds it) until notified or ``deadline`` on the ``now()`` scale."""
        ...


class SystemClock:
    """Real time: ``time.monotonic`` and anyio sleeps."""

    def now(self) -> float:
        return time.monotonic()

    def wall(self) -> float:
        return time.time()

    async def sleep(self, seconds: float) -> None:
        await anyio.sleep(max(0.0, seconds))

    async def sleep_until(self, deadline: float, wake: anyio.Event | None = None) -> None:
        delay = max(0.0, deadline - self.now())
        if wake is None:
            await anyio.sleep(delay)
            return
        with anyio.move_on_after(delay):
            await wake.wait()

    def sleep_sync(self, seconds: float) -> None:
        time.sleep(max(0.0, seconds))

    def wait_sync(self, condition: threading.Condition, deadline: float | None) -> None:
        condition.wait(None if deadline is None else max(0.0, deadline - time.monotonic()))

    def __repr__(self) -> str:
        return "SystemClock()"


class _Sleeper:
    __slots__ = ("deadline", "event", "fired")

    def __init__(self, deadline: float, event: anyio.Event | None = None) -> None:
        self.deadline = deadline
        self.fired = False
        self.event = event  # autojump=False: the sleeper blocks on it; firing sets it

    def __lt__(self, other: _Sleeper) -> bool:
        return False  # heap entries are (deadline, seq, sleeper): two threads may take one seq, then either is first


class _Part:
    """A thread that takes part in blocking autojump: idle (waiting on the clock until ``deadline``) or busy.
    ``claims``: how many waits across several clients hold it in (:meth:`VirtualClock.claim`)."""

    __slots__ = ("claims", "deadline", "idle")

    def __init__(self) -> None:
        self.idle = False
        self.deadline: float | None = None
        self.claims = 0


class VirtualClock:
    """Virtual time for tests and sandboxes.

    ``autojump=True``: when every task is blocked on this clock (no task made progress through
    ``settle_checkpoints`` scheduler rounds), time jumps to the earliest sleeper's deadline. The clock never
    moves backwards and never jumps while a task can still run, so virtual durations are those the code asked
    for: ten polls 30 s apart take 300 virtual seconds whatever the machine does.

    ``autojump=False``: time only moves with :meth:`advance` (for step-by-step tests); a sleeper then blocks (it
    does not spin), so ``anyio.wait_all_tasks_blocked()`` sees it as blocked.
    """

    def __init__(self, start: float = 0.0, *, autojump: bool = True, wall_start: float | None = None,
                 settle_checkpoints: int = 24) -> None:  # fmt: skip
        self._now = float(start)
        # virtual wall time starts at the real time (so "due in the future" checks agree), or where told
        self._wall_offset = (time.time() if wall_start is None else wall_start) - start
        self.autojump = autojump
        self._heap: list[tuple[float, int, _Sleeper]] = []
        self._seq = 0  # ties in the heap break by arrival (a plain int: copies and saves as data)
        self._activity = 0
        self._settle = settle_checkpoints
        self.sleeps = 0  #: how many sleeps were requested (for tests and benchmarks)
        self._thread_lock = threading.Lock()  # blocking code moves time from several threads
        self._blocked: set[threading.Condition] = set()  # threads waiting for advance_sync (autojump=False)
        self._parts: dict[threading.Condition, _Part] = {}  # blocking pollers taking part in autojump
        on_fork(self, VirtualClock._after_fork)

    def _after_fork(self) -> None:
        self._thread_lock = threading.Lock()
        self._blocked = set()
        self._parts = {}

    def __getstate__(self) -> dict[str, object]:
        state = dict(self.__dict__)
        del state["_thread_lock"], state["_blocked"], state["_parts"]
        return state

    def __setstate__(self, state: dict[str, object]) -> None:
        self.__dict__.update(state)
        self._after_fork()
        on_fork(self, VirtualClock._after_fork)

    def now(self) -> float:
        return self._now

    def wall(self) -> float:
        return self._now + self._wall_offset

    async def sleep(self, seconds: float) -> None:
        await self.sleep_until(self._now + max(0.0, seconds))

    def _push(self, deadline: float, sleeper: _Sleeper) -> None:
        self._seq += 1
        heapq.heappush(self._heap, (deadline, self._seq, sleeper))

    async def sleep_until(self, deadline: float, wake: anyio.Event | None = None) -> None:
        self.sleeps += 1
        if deadline <= self._now:
            await anyio.lowlevel.checkpoint()
            return
        if not self.autojump:
            event = wake if wake is not None else anyio.Event()
            sleeper = _Sleeper(deadline, event)
            self._push(deadline, sleeper)
            try:
                await event.wait()  # set by advance() once the deadline is reached, or by the caller's wake
            finally:
                sleeper.fired = True
            return
        sleeper = _Sleeper(deadline)
        self._push(deadline, sleeper)
        self._activity += 1
        try:
            while not sleeper.fired:
                if wake is not None and wake.is_set():
                    return
                seen = self._activity
                for _ in range(self._settle):
                    await anyio.lowlevel.checkpoint()
                    if sleeper.fired or (wake is not None and wake.is_set()) or self._activity != seen:
                        break
                else:
                    if self.autojump:
                        self._jump()
        finally:
            sleeper.fired = True  # a cancelled or woken sleeper is dropped lazily from the heap
            self._activity += 1

    def _jump(self) -> None:
        while self._heap and self._heap[0][2].fired:
            heapq.heappop(self._heap)
        if not self._heap:
            return
        self._fire_until(self._heap[0][0])

    def _fire_until(self, t: float) -> None:
        self._now = max(self._now, t)
        while self._heap and (self._heap[0][0] <= self._now or self._heap[0][2].fired):
            _, _, sleeper = heapq.heappop(self._heap)
            if not sleeper.fired and sleeper.event is not None:
                sleeper.event.set()
            sleeper.fired = True
        self._activity += 1

    async def advance(self, seconds: float) -> None:
        """Move time forward by ``seconds``, waking every sleeper due on the way, in order."""
        if seconds < 0 or math.isnan(seconds):
            raise ValueError("time only moves forward")
        target = self._now + seconds
        for _ in range(self._settle):  # let tasks started just now reach their sleeps first
            await anyio.lowlevel.checkpoint()
        while self._heap:
            deadline, _, sleeper = self._heap[0]
            if sleeper.fired:
                heapq.heappop(self._heap)
                continue
            if deadline > target:
                break
            self._fire_until(deadline)
            for _ in range(self._settle):
                await anyio.lowlevel.checkpoint()
        self._now = max(self._now, target)
        self._activity += 1
        self._notify_blocked()
        for _ in range(self._settle):
            await anyio.lowlevel.checkpoint()

    # -- blocking code ------------------------------------------------------------------------------------
    def _jump_to(self, target: float) -> None:
        with self._thread_lock:
            if target > self._now:
                self._fire_until(target)

    def sleep_sync(self, seconds: float) -> None:
        """A blocking sleep: with autojump, time jumps by ``seconds`` at once; without, the thread waits until
        :meth:`advance_sync` (or :meth:`advance`) has moved time past the end of the sleep."""
        self.sleeps += 1
        target = self._now + max(0.0, seconds)
        if self.autojump:
            self._jump_to(target)
            return
        condition = threading.Condition()
        with condition:
            while self._now < target:
                self._wait_blocked(condition)

    def wait_sync(self, condition: threading.Condition, deadline: float | None) -> None:
        """Wait on ``condition`` (held by the caller) until notified or until ``deadline`` in virtual time.

        With autojump: a thread that takes part (:meth:`take_part`) waits until every part is waiting, then time
        jumps to the earliest deadline among them; any other thread with a deadline jumps to it at once."""
        if deadline is not None and deadline <= self._now:
            return
        if not self.autojump:
            self._wait_blocked(condition)
            return
        part = self._parts.get(condition)
        if part is None:
            if deadline is not None:
                self._jump_to(deadline)
            else:
                condition.wait()
            return
        with self._thread_lock:
            part.idle, part.deadline = True, deadline
            due = self._jump_when_quiet()
        try:
            self._notify_parts(due, condition)
            if condition not in due:
                condition.wait()
        finally:
            with self._thread_lock:
                part.idle = False

    def take_part(self, condition: threading.Condition) -> None:
        """Make the thread that waits on ``condition`` a part of blocking autojump (a poller somebody waits for)."""
        with self._thread_lock:
            self._parts.setdefault(condition, _Part())

    def claim(self, condition: threading.Condition) -> None:
        """Hold the poller that waits on ``condition`` in autojump for a wait over several clients' operations,
        from before any of their pollers is told of the wait until :meth:`release`: until then a poller that has
        not yet seen the wait cannot :meth:`leave`, so the others cannot jump time past its reads meanwhile."""
        with self._thread_lock:
            self._parts.setdefault(condition, _Part()).claims += 1

    def release(self, condition: threading.Condition) -> None:
        """The end of a :meth:`claim`: the part leaves once no claim holds it."""
        with self._thread_lock:
            part = self._parts.get(condition)
            if part is None:
                return
            part.claims = max(0, part.claims - 1)
            if part.claims:
                return
        self.leave(condition)

    def leave(self, condition: threading.Condition, *, force: bool = False) -> None:
        """The poller that waits on ``condition`` takes no part in autojump any more (nobody waits for it; with
        ``force``, its thread ends, claimed or not, so that it never holds the others' time still)."""
        with self._thread_lock:
            part = self._parts.get(condition)
            if part is not None and part.claims and not force:
                return
            self._parts.pop(condition, None)
            due = self._jump_when_quiet()
        self._notify_parts(due, None)

    def _jump_when_quiet(self) -> list[threading.Condition]:
        """(Under the thread lock.) When every part waits on the clock: jump to the earliest deadline and return
        the conditions of the parts now due."""
        parts = self._parts
        if not parts or not all(p.idle for p in parts.values()):
            return []
        deadlines = [p.deadline for p in parts.values() if p.deadline is not None]
        if not deadlines:
            return []
        target = min(deadlines)
        if target > self._now:
            self._fire_until(target)
        return [c for c, p in parts.items() if p.deadline is not None and p.deadline <= self._now]

    @staticmethod
    def _notify_parts(due: list[threading.Condition], mine: threading.Condition | None) -> None:
        for condition in due:
            if condition is not mine:
                with condition:  # the part waits on it, so it is free to take
                    condition.notify_all()

    def _wait_blocked(self, condition: threading.Condition) -> None:
        with self._thread_lock:
            self._blocked.add(condition)
        try:
            condition.wait()
        finally:
            with self._thread_lock:
                self._blocked.discard(condition)

    def advance_sync(self, seconds: float) -> None:
        """Move time forward by ``seconds`` from blocking code, waking the threads whose waits are due."""
        if seconds < 0 or math.isnan(seconds):
            raise ValueError("time only moves forward")
        self._jump_to(self._now + seconds)
        self._notify_blocked()

    def _notify_blocked(self) -> None:
        with self._thread_lock:
            blocked = list(self._blocked)
        for condition in blocked:
            with condition:
                condition.notify_all()

    def __repr__(self) -> str:
        return f"VirtualClock(now={self._now:g}, autojump={self.autojump})"

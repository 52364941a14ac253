"""Durable batches: many bills from a file (or any iterable) created exactly once, across kills and restarts.

::

    import billkit.batch

    billkit.batch.create("march.journal", bills, provider="facturapi")     # the journal: every item, keyed
    summary = billkit.batch.run("march.journal", sandbox=True)              # runs (or resumes) to the end
    summary.counts   # {'done': 4998, 'failed': 2, ...}

or, in async code, ``await billkit.batch.arun(journal, client)`` with your own :class:`~billkit.AsyncClient`.

How an item is never created twice (the journal, :mod:`billkit.journal`, holds the states):

* every bill gets the key that identifies it at the provider **when it is journaled** (Facturapi's idempotency
  key, AcceptEasy's SRRID, BILL's vendor and invoice number: ``client.pin_key``), so every send of it, from any
  process, carries the same key;
* the intent (``sending``) is committed before the request goes out;
* an item whose send may have reached the provider without an answer (a lost answer, or a process killed with
  the item ``sending``) is **reconciled**: looked up by its key (``client.find_existing``, a safe read). Found,
  it is done; proven absent (the look-up found nothing, at least the provider's ``reconcile_settle`` seconds
  after the send), it is sent again with the same key. Only when no look-up can be made in ``rounds`` tries is an
  item left ``unknown``;
* a submission the provider accepted is resumed from its token, never sent again.

Sends go out in chunks through ``submit_many`` (AcceptEasy's and BILL's bulks, Facturapi's concurrent creates),
``workers`` chunks at once; the provider's own in-flight limit holds per client, and across processes that share
a journal through :class:`Slots` (lock files next to the journal, released by the OS when a process dies).
"""

from __future__ import annotations

import contextlib
import functools
import os
import time
from collections.abc import AsyncIterator, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

import httpx
from pydantic import TypeAdapter
from pydantic_core import to_json

from billkit.durable import proves_not_created as _definite
from billkit.durable import refused
from billkit.errors import (
    BillkitError,
    BulkRejected,
    OperationCancelled,
    OperationFailed,
    OperationTimeout,
    ValidationError,
)
from billkit.flows import LazyModule
from billkit.journal import BLOCK, TERMINAL, Block, Fresh, Item, Journal, JournalError
from billkit.models import Bill, BillStatus, BulkResult

if TYPE_CHECKING:
    import anyio

    from billkit.client import AsyncClient
    from billkit.clock import Clock
    from billkit.sandboxing import Sandbox
else:
    anyio = LazyModule("anyio")

__all__ = ["DEFAULT_CHUNK", "Slots", "Summary", "arun", "create", "open_client", "run"]

#: items per submission by provider (AcceptEasy's bulk takes many; BILL's at most 100; Facturapi's are creates)
DEFAULT_CHUNK = {"accepteasy": 500, "billcom": 100, "facturapi": 50}
#: chunks in flight at once, per process, by provider (BILL allows 3 requests in flight per devKey and org)
DEFAULT_WORKERS = {"accepteasy": 4, "billcom": 3, "facturapi": 4}
_NOT_CREATING = (BillStatus.OPEN, BillStatus.PARTIALLY_PAID, BillStatus.PAID, BillStatus.VOID, BillStatus.DRAFT)


@dataclass
class Summary:
    """Where a batch stands: items by state, and how many requests this run made."""

    journal: Path
    counts: dict[str, int]
    requests: int = 0
    seconds: float = 0.0
    failures: dict[str, list[int]] = field(default_factory=dict)

    @property
    def total(self) -> int:
        return sum(self.counts.values())

    @property
    def finished(self) -> bool:
        """Every item done, failed, invalid or unknown (nothing left to send or wait for)."""
        return sum(self.counts.get(s, 0) for s in TERMINAL) == self.total

    @property
    def ok(self) -> bool:
        """Every item done."""
        return self.counts.get("done", 0) == self.total


# -- loading ---------------------------------------------------------------------------------------------------
@functools.cache
def _bill_list() -> TypeAdapter[list[Bill | None]]:
    """The serializer of a block of bills (one call for the whole block)."""
    return TypeAdapter(list[Bill | None])


def create(path: str | os.PathLike[str], bills: Iterable[Bill | tuple[int, Bill | None, str | None]], *,
           provider: str, source: str | None = None, options: Mapping[str, Any] | None = None) -> Journal:  # fmt: skip
    """A new journal at ``path`` holding ``bills`` (or ``(row, bill or None, error)`` triples from a file: an
    error makes the item ``invalid``, never sent), each with its provider key pinned. Returns the open journal."""
    from billkit.client import adapter_class

    journal = Journal.create(path, provider=provider, source=source, options=dict(options or {}))
    try:
        adapter = adapter_class(provider)
        seed, memo, memo_keys, dump = journal.seed, journal.memo, journal.memo_keys, _bill_list().dump_json
        blocks: list[Block] = []
        pinned: list[Bill | None] = []
        keys: list[str | None] = []
        rows: list[int] = []
        invalid: dict[int, str | None] = {}
        for index, entry in enumerate(bills):
            row, bill, error = (index + 1, entry, None) if isinstance(entry, Bill) else entry
            rows.append(row)
            if bill is None or error is not None:
                invalid[len(keys)] = error or "unreadable row"
                pinned.append(None)
                keys.append(None)
            else:
                # the caller's bill is kept (sent as it is where the adapter derives its key, else pinned again
                # when sent); the pinned copy lives only until its block is written, so the copies of a whole
                # batch are never alive at once (10,000 of them cost the run a full garbage collection)
                copy, key = adapter.pin_key(bill, seed, index)
                memo[index] = bill
                memo_keys[index] = key
                pinned.append(copy)
                keys.append(key)
            if len(keys) >= BLOCK:  # the block's bills as JSON in one call
                blocks.append(Block(dump(pinned, exclude_defaults=True), keys, rows, invalid))
                pinned, keys, rows, invalid = [], [], [], {}
                if len(blocks) >= 10:
                    journal.add_blocks(blocks)
                    blocks = []
        if keys:
            blocks.append(Block(dump(pinned, exclude_defaults=True), keys, rows, invalid))
        journal.add_blocks(blocks)
    except BaseException:
        journal.close()
        with contextlib.suppress(OSError):
            for suffix in ("", "-wal", "-shm"):
                os.unlink(f"{path}{suffix}")
        raise
    return journal


# -- budgets across processes ------------------------------------------------------------------------------------
class Slots:
    """At most ``n`` requests in flight across every process using the same ``prefix`` (lock files, ``flock``).

    The OS releases a dead process's locks, so a killed run never holds a slot.
    """

    def __init__(self, prefix: str | os.PathLike[str], n: int) -> None:
        self._fds = []
        for k in range(n):
            fd = os.open(f"{prefix}.slot-{k}", os.O_RDWR | os.O_CREAT, 0o600)
            self._fds.append(fd)
        self._free = list(self._fds)

    def _try(self) -> int | None:
        import fcntl  # POSIX; imported when a batch first limits its requests

        for fd in list(self._free):
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                continue
            self._free.remove(fd)
            return fd
        return None

    @contextlib.asynccontextmanager
    async def slot(self) -> AsyncIterator[None]:
        delay = 0.001
        while (fd := self._try()) is None:
            await anyio.sleep(delay)
            delay = min(delay * 2, 0.05)
        try:
            yield
        finally:
            import fcntl

            fcntl.flock(fd, fcntl.LOCK_UN)
            self._free.append(fd)

    def close(self) -> None:
        for fd in self._fds:
            with contextlib.suppress(OSError):
                os.close(fd)
        self._fds = []


class _BudgetTransport(httpx.AsyncBaseTransport):
    """The provider's budgets, shared by every process of the batch: each request holds one of the shared slots
    while it is in flight; a login waits (on ``clock``) until the journal's count of recent logins allows it."""

    def __init__(self, inner: httpx.AsyncBaseTransport, slots: Slots | None, journal: Journal,
                 logins: tuple[str, int, float] | None, clock: Clock) -> None:  # fmt: skip
        self._inner = inner
        self._slots = slots
        self._journal = journal
        self._logins = logins
        self._clock = clock

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        if self._logins is not None and request.method == "POST" and request.url.path.endswith(self._logins[0]):
            _, limit, window = self._logins
            while (wait := self._journal.take_login(self._clock.wall(), limit, window)) > 0:
                await self._clock.sleep(wait)
        if self._slots is None:
            return await self._inner.handle_async_request(request)
        async with self._slots.slot():
            response = await self._inner.handle_async_request(request)
            await response.aread()
            return response

    async def aclose(self) -> None:
        if self._slots is not None:
            self._slots.close()
        await self._inner.aclose()


class _SavedSandbox(httpx.AsyncBaseTransport):
    """A sandbox whose state is written next to the journal after every request that may change it, before the
    answer is returned (like a server that commits before it answers), so a killed run resumes against it."""

    def __init__(self, box: Sandbox, path: Path) -> None:
        self.box = box
        self.path = path

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        try:
            return await self.box.handle_async_request(request)
        finally:
            if request.method != "GET":
                self.save()

    async def aclose(self) -> None:
        self.save()  # the time the run's reads moved the sandbox's clock on

    def save(self) -> None:
        self.box.save(self.path)


def sandbox_path(journal: str | os.PathLike[str]) -> Path:
    """Where ``--sandbox`` keeps the sandbox's state for ``journal``."""
    return Path(f"{os.fspath(journal)}.sandbox")


def open_client(journal: Journal, *, sandbox: bool = False, base_url: str | None = None, share_budget: bool = True,
                credentials: Mapping[str, str | None] | None = None) -> AsyncClient:  # fmt: skip
    """The client a batch runs with: on the journal's provider; with ``sandbox=True`` on a sandbox whose state is
    kept next to the journal (:func:`sandbox_path`); requests limited across processes by :class:`Slots` when the
    provider has an in-flight limit."""
    from billkit.client import AsyncClient, adapter_class
    from billkit.clock import SystemClock
    from billkit.sandboxing import Sandbox

    provider = journal.provider
    cls = adapter_class(provider)
    inner: httpx.AsyncBaseTransport | None = None
    box: Sandbox | None = None
    if sandbox:
        saved = sandbox_path(journal.path)
        box = Sandbox.load(saved) if saved.exists() else cls.make_sandbox()
        keeper = _SavedSandbox(box, saved)
        keeper.save()
        inner = keeper
    limit = cls.max_in_flight
    if share_budget and (limit or cls.login_budget):
        slots = Slots(journal.path, limit) if limit else None
        clock = box.clock if box is not None else SystemClock()
        inner = _BudgetTransport(inner or httpx.AsyncHTTPTransport(), slots, journal, cls.login_budget, clock)
    return AsyncClient(
        provider, sandbox=box, base_url=base_url, transport=inner, **cast("dict[str, Any]", dict(credentials or {}))
    )


# -- running -----------------------------------------------------------------------------------------------------
def run(journal: Journal | str | os.PathLike[str], *, sandbox: bool = False, base_url: str | None = None,
        workers: int | None = None, chunk: int | None = None, rounds: int = 12, settle: float | None = None,
        on_progress: Callable[[Mapping[str, int]], None] | None = None,
        credentials: Mapping[str, str | None] | None = None) -> Summary:  # fmt: skip
    """Run (or resume) the batch in ``journal`` (a path, or an open :class:`Journal`, left open) to the end, from
    blocking code; see :func:`arun`."""

    async def main(j: Journal) -> Summary:
        async with open_client(j, sandbox=sandbox, base_url=base_url, credentials=credentials) as client:
            return await arun(
                j, client, workers=workers, chunk=chunk, rounds=rounds, settle=settle, on_progress=on_progress
            )

    if isinstance(journal, Journal):
        return anyio.run(main, journal)
    with Journal(journal) as j:
        return anyio.run(main, j)


async def arun(journal: Journal | str | os.PathLike[str], client: AsyncClient, *, workers: int | None = None,
               chunk: int | None = None, rounds: int = 12, settle: float | None = None,
               on_progress: Callable[[Mapping[str, int]], None] | None = None) -> Summary:  # fmt: skip
    """Take the journal's unfinished items (with any other processes sharing it), send, reconcile and wait until
    none is left; returns the :class:`Summary`. Cancelling it (Ctrl-C) leaves the journal consistent: run again to
    resume.

    ``workers``: submissions in flight at once; ``chunk``: items per submission; ``rounds``: look-ups of an item
    before it is left unknown; ``settle``: seconds after a send before a look-up that finds nothing proves the item
    absent (default: the provider's ``reconcile_settle``, 120 s for BILL; 0 only where listings are immediate, such
    as a sandbox)."""
    own = not isinstance(journal, Journal)
    j = Journal(journal) if not isinstance(journal, Journal) else journal
    try:
        if j.provider != client.provider:
            raise JournalError(f"{j.path} is a {j.provider} batch, not {client.provider}")
        j.wall = client.clock.wall  # the time of each send, in the provider's time
        runner = _Runner(j, client, chunk or DEFAULT_CHUNK.get(client.provider, 100), rounds, on_progress)
        if settle is not None:
            runner.settle = settle
        started, before = time.monotonic(), client.requests_made
        async with anyio.create_task_group() as tg:
            tg.start_soon(runner.beat)
            async with anyio.create_task_group() as work:
                for _ in range(workers or DEFAULT_WORKERS.get(client.provider, 4)):
                    work.start_soon(runner.work)
            tg.cancel_scope.cancel()
        return Summary(j.path, j.counts(), client.requests_made - before, time.monotonic() - started, j.failures())
    finally:
        if own:
            j.close()


async def _submit_derived(client: AsyncClient, bills: list[Bill], seed: str, start: int) -> Any:
    """``client.submit_many(bills)`` for an adapter whose bulk derives bill ``i``'s key from ``seed`` and
    ``start + i`` exactly as ``pin_key`` does (``bulk_derives_pinned_keys``): the caller's bills are sent as they
    are, each carrying the key the journal holds for it."""
    from billkit import tracing
    from billkit.operations import BulkOperation

    client._check_open()
    with tracing.call(client.provider, "submit_many") as span:
        io, seen = client._io.capturing()
        started = await io.run(client._adapter.submit_many(bills, seed=seed, start=start))  # type: ignore[call-arg]
        core = client._bulk(started, len(bills), None, None)
        span.operation(core)
    return BulkOperation(core, client._answers(seen))


def _idxs(items: Sequence[Item]) -> list[int]:
    return list(items.span) if isinstance(items, Fresh) else [i.idx for i in items]


#: what the journal records of an item: (idx, state, provider id, status, result json, error type, error)
Outcome = tuple[int, str, str | None, str | None, str | None, str | None, str | None]


def _error(exc: BaseException) -> tuple[str, str]:
    return type(exc).__name__, (exc.message if isinstance(exc, BillkitError) else str(exc))


class _Runner:
    def __init__(self, journal: Journal, client: AsyncClient, chunk: int, rounds: int,
                 on_progress: Callable[[Mapping[str, int]], None] | None) -> None:  # fmt: skip
        self.j = journal
        self.client = client
        self.chunk = chunk
        self.rounds = rounds
        self.on_progress = on_progress
        self.settle = client._adapter.reconcile_settle
        self.seed = journal.seed
        #: the adapter's bulk gives bill ``i`` the key ``pin_key(bill, seed, start + i)`` when told ``seed, start``
        self.derives_keys = bool(getattr(client._adapter_cls, "bulk_derives_pinned_keys", False))

    async def beat(self) -> None:
        while True:
            self.j.heartbeat()
            await anyio.sleep(self.j.lease / 4)

    def _progress(self) -> None:
        if self.on_progress is not None:
            self.on_progress(self.j.counts())

    async def work(self) -> None:
        while True:
            items = self.j.claim(self.chunk)
            if not items:
                if not self.j.others_active():
                    return
                await anyio.sleep(0.2)
                continue
            try:
                await self._chunk(items)
            finally:
                # whatever this run did not finish (a deadline, a cancel) goes back for the next run
                self.j.release(_idxs(items))
            self._progress()

    async def _chunk(self, items: Sequence[Item]) -> None:
        if isinstance(items, Fresh):  # pending items never sent (the common case): one submission
            return await self._send(items)
        fresh = [i for i in items if i.state == "pending"]
        doubt = [i for i in items if i.state == "sending"]
        subs: dict[int, list[Item]] = {}
        for i in items:
            if i.state == "submitted" and i.submission is not None:
                subs.setdefault(i.submission, []).append(i)
        async with anyio.create_task_group() as tg:
            if fresh:
                tg.start_soon(self._send, fresh)
            for sub, members in subs.items():
                tg.start_soon(self._resume, sub, members)
            if doubt:
                tg.start_soon(self._reconcile, doubt)

    # -- sending ---------------------------------------------------------------------------------------------
    async def _send(self, items: Sequence[Item]) -> None:
        idxs = _idxs(items)
        try:  # the claim wrote their intent
            op = await self._submit(items, idxs)
        except ValidationError as exc:
            return self._refused_items(items, exc)
        except BulkRejected as exc:
            return self._refused_items(items, exc)
        except BillkitError as exc:
            if _definite(exc):  # refused whole, nothing created: every item failed, with the reason
                kind, message = _error(exc)
                self.j.finish((i.idx, "failed", None, None, None, kind, message) for i in items)
                return None
            # a lost answer, a connection or server error: each item may exist; look each one up
            await self._reconcile(items)
            return None
        submission = self.j.submitted(idxs, op.token)
        await self._settle(items, op, submission)
        return None

    def _refused_items(self, items: Sequence[Item], exc: ValidationError | BulkRejected) -> None:
        """A submission refused before anything was created: the items named fail, the others go back (to be sent
        without them); see :func:`billkit.durable.refused`."""
        failed = refused(exc, len(items))
        self.j.finish(
            (item.idx, "failed", None, None, None, *failed[pos]) if pos in failed
            else (item.idx, "pending", None, None, None, None, None)
            for pos, item in enumerate(items)
        )  # fmt: skip

    async def _resume(self, submission: int, items: Sequence[Item]) -> None:
        try:
            op = await self.client.resume(self.j.token(submission))
        except BillkitError:  # a token this billkit cannot read: look every item up instead
            await self._reconcile(items)
            return
        await self._settle(items, op, submission, self.j.positions(submission))

    async def _settle(self, items: Sequence[Item], op: Any, submission: int,
                      positions: Mapping[int, int] | None = None) -> None:  # fmt: skip
        """Record what the submission's operation ends with; ``positions``: each item's position in it (None: the
        items are the submission's, in order)."""
        try:
            result = await op
        except (OperationTimeout, OperationCancelled):
            return  # still submitted: the next run resumes the token
        except BillkitError as exc:
            result = exc if _definite(exc) else None
        idxs = _idxs(items)
        whole = positions is None or len(positions) == len(items)  # every item of the submission is here
        done: list[tuple[str | None, str | None, Mapping[str, str] | None]] = []  # while every one is done
        outcomes: list[Outcome] = []
        doubtful: list[Item] = []
        for n, idx in enumerate(idxs):  # each result read once, only what is journaled kept (not the bills)
            if isinstance(result, BulkResult):
                entry = result[positions[idx] if positions is not None else n]
                value: Bill | BaseException | None = entry.bill if entry.ok else entry.error
            else:
                value = result
            if isinstance(value, Bill):
                if outcomes or doubtful or not whole:
                    outcomes.append(self._done(idx, value))
                else:
                    done.append((value.provider_id, value.status.value if value.status else None, value.links or None))
                continue
            if done:  # not every one is done: the done ones so far are recorded one by one
                outcomes.extend((i, "done", pid, st, to_json({"links": links}).decode() if links else None, None, None)
                                for i, (pid, st, links) in zip(idxs, done, strict=False))  # fmt: skip
                done = []
            if value is None or not _definite(value) or self._taken(value):
                doubtful.append(items[n])  # maybe created, or its key is already held: look it up
            else:
                kind, message = _error(value) if value is not None else ("OperationFailed", "failed")
                outcomes.append((idx, "failed", getattr(value, "operation_id", None), "failed", None, kind,
                                 message))  # fmt: skip
        del result
        if done:  # the common case: every item done, the results in one row
            self.j.finish_submission(submission, idxs, done)
            return
        self.j.finish(outcomes)
        if doubtful:
            await self._reconcile(doubtful)

    async def _submit(self, items: Sequence[Item], idxs: list[int]) -> Any:
        """``submit_many`` of the items' bills, each with its pinned key. Consecutive items this process journaled
        go to an adapter that derives each key from the batch's seed and the item's index (AcceptEasy's SRRIDs,
        ``bk-<seed>-<idx>``) as they are, told the seed and the first index: no pinned copy is made."""
        memo, keys, first = self.j.memo, self.j.memo_keys, idxs[0]
        if self.derives_keys and idxs[-1] - first + 1 == len(idxs) and all(i in memo for i in idxs):
            bills = [memo.pop(i) for i in idxs]
            for i in idxs:
                keys.pop(i, None)
            return await _submit_derived(self.client, bills, self.seed, first)
        return await self.client.submit_many([self._bill(i) for i in items])

    def _bill(self, item: Item) -> Bill:
        """The item's bill with its key pinned: the one this process journaled, pinned again (the key checked
        against the journaled one), else read back from the journal."""
        bill = self.j.memo.pop(item.idx, None)
        key = self.j.memo_keys.pop(item.idx, None)
        if bill is not None:
            pinned, again = self.client.pin_key(bill, self.seed, item.idx)
            if again == key:
                return pinned
        return Bill.model_validate_json(self.j.bill(item.idx) or "{}")

    def _taken(self, error: BaseException) -> bool:
        return isinstance(error, BillkitError) and self.client._adapter_cls.key_taken(error)

    @staticmethod
    def _done(idx: int, bill: Bill) -> Outcome:
        result = to_json({"links": dict(bill.links)}).decode() if bill.links else None
        status = bill.status.value if bill.status else None
        return (idx, "done", bill.provider_id, status, result, None, None)

    # -- reconciling -------------------------------------------------------------------------------------------
    async def _reconcile(self, items: Sequence[Item]) -> None:
        """Look the items up by their keys; found: done; proven absent: sent again one by one (same key); repeat
        for those still open, backing off. An item no look-up could settle in ``rounds`` is left unknown."""
        clock = self.client.clock
        open_ = {i.idx: (i, self._bill(i)) for i in items}
        sent = [i.first_sent for i in items if i.first_sent is not None]
        since = min(sent) if sent else None
        last: dict[int, BaseException] = {}
        delay = 1.0
        for _ in range(self.rounds):
            if not open_:
                return
            latest = max((i.first_sent or 0.0 for i, _ in open_.values()), default=0.0)
            if latest and self.settle and (wait := latest + self.settle - clock.wall()) > 0:
                await clock.sleep(wait)
            try:
                found = await self._look_up([bill for _, bill in open_.values()], since)
            except BillkitError as exc:
                last.update(dict.fromkeys(open_, exc))
                await clock.sleep(delay)
                delay = min(delay * 2, 60.0)
                continue
            absent = []
            for (item, bill), hit in zip(list(open_.values()), found, strict=True):
                if isinstance(hit, BillkitError):  # this one's look-up failed: again next round
                    last[item.idx] = hit
                elif hit is not None:
                    await self._found(item, hit, open_, last)
                else:
                    absent.append((item, bill))
            if absent:
                self.j.intent([item.idx for item, _ in absent])
                since = since or clock.wall()
                gate = anyio.CapacityLimiter(8)
                async with anyio.create_task_group() as tg:
                    for item, bill in absent:
                        tg.start_soon(self._resend, item, bill, open_, last, gate)
            if open_:
                await clock.sleep(delay)
                delay = min(delay * 2, 60.0)
        for idx in open_:
            error = last.get(idx)
            kind, message = _error(error) if error is not None else ("OutcomeUnknownError", "not found")
            self.j.finish([(idx, "unknown", None, None, None, kind, message)])

    async def _look_up(self, bills: Sequence[Bill], since: float | None) -> list[Bill | BillkitError | None]:
        """Every bill looked up: in one pass where the provider can (raising when it fails), else one by one,
        eight at once (a failed look-up is that bill's error)."""
        if self.client._adapter_cls.finds_in_bulk:
            return list(await self.client.find_existing_many(bills, since=since))
        found: list[Bill | BillkitError | None] = [None] * len(bills)
        gate = anyio.CapacityLimiter(8)

        async def one(k: int) -> None:
            async with gate:
                try:
                    found[k] = await self.client.find_existing(bills[k], since=since)
                except BillkitError as exc:
                    found[k] = exc

        async with anyio.create_task_group() as tg:
            for k in range(len(bills)):
                tg.start_soon(one, k)
        return found

    async def _resend(self, item: Item, bill: Bill, open_: dict[int, tuple[Item, Bill]],
                      last: dict[int, BaseException], gate: anyio.CapacityLimiter) -> None:  # fmt: skip
        async with gate:
            try:
                created = await self.client.create(bill)
            except BillkitError as exc:
                if not _definite(exc) or self._taken(exc):
                    last[item.idx] = exc  # the answer was lost, or the key is held by a send still in progress
                    return
                kind, message = _error(exc)
                self.j.finish([(item.idx, "failed", None, None, None, kind, message)])
                del open_[item.idx]
                return
            await self._found(item, created, open_, last)

    async def _found(self, item: Item, bill: Bill, open_: dict[int, tuple[Item, Bill]],
                     last: dict[int, BaseException]) -> None:  # fmt: skip
        """A found or created bill: recorded, once its creation is over (a read that fails leaves it open)."""
        try:
            outcome = await self._finished(item, bill)
        except BillkitError as exc:
            last[item.idx] = exc
            return
        self.j.finish([outcome])
        del open_[item.idx]

    async def _finished(self, item: Item, found: Bill) -> Outcome:
        """A found or created bill still being created (Facturapi stamping) is waited for."""
        if found.status in (BillStatus.PENDING, BillStatus.UNKNOWN) and found.provider_id:
            try:
                op = await self.client.wait_for(found.provider_id, until=_NOT_CREATING)
                found = await op
            except OperationFailed as exc:
                return (item.idx, "failed", found.provider_id, "failed", None, "OperationFailed", exc.message)
        if found.status is BillStatus.FAILED:
            return (item.idx, "failed", found.provider_id, "failed", None, "OperationFailed", "creation failed")
        return self._done(item.idx, found)

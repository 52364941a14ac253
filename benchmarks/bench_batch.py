"""A 10,000-row AcceptEasy batch through the durable batch runner and its sqlite journal, against the same bills
through ``AsyncClient.submit_many`` without a journal.

batch: ``journal = billkit.batch.create(path, bills, provider="accepteasy")`` (every bill journaled with its
SRRID pinned), ``await billkit.batch.arun(journal, client)`` (chunks of ``DEFAULT_CHUNK["accepteasy"]`` = 500,
``DEFAULT_WORKERS["accepteasy"]`` = 4 chunks at once: claim, intent, ``submit_many``, submitted, await, finish,
each a committed sqlite transaction) and ``journal.close()``; the journal's work is all in the figure.

Floor, in the same run: the same bills in the same chunks through ``client.submit_many(chunk)``, each
BulkOperation awaited, 4 chunks at once (an anyio task group and a ``CapacityLimiter``), no journal, and each
item's outcome read (its provider id). The reading is in the floor because a BulkResult makes its items only when
they are read, and the runner reads every one to journal it; the floor without it (the awaits alone) is printed
too, for information.

Both run on a fresh :class:`AcceptEasySandbox` per round on a :class:`VirtualClock` (bulks processed at the
sandbox's default 200 bills per virtual second, so polling costs no real waiting) with
``PollPolicy(deadline=6 h)``; the sandbox's own time (decoding each bulk, keeping the records, encoding the
statuses: a real server's work) is measured around each request it answers and taken out of both sides, as
bench_bulk does. Both sides are checked: 10,000 bills held by the sandbox, every batch item ``done``, every
bulk item succeeded.

Rounds are interleaved (batch, floor; then floor, batch), ``ROUNDS`` rounds after a check run (also the
warm-up); the figure is the median over rounds of the per-round ratio, with its spread (lowest-highest round).
Prints:

* time, batch / submit_many floor           (target <= 1.3)
* the same against the floor's awaits alone (results not read), for information
* time per item of each (median)
* the journal's size per item: the file plus its ``-wal`` after the run (still open; sqlite checkpoints the wal
  at ~1000 pages, so its size does not grow with the batch), and the file once closed (checkpointed); no target

Run: ``make bench`` (or ``.venv/bin/python benchmarks/bench_batch.py [bills]``).
"""

from __future__ import annotations

import gc
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import anyio
import httpx
from bench_bulk import make_bills  # the same bills as the bulk benchmark

import billkit
import billkit.batch
from billkit import Bill
from billkit.clock import VirtualClock
from billkit.providers.accepteasy.sandbox import AcceptEasySandbox

BILLS = 10_000
ROUNDS = 5
TARGET = 1.3
DEADLINE = 6 * 3600.0
CHUNK = billkit.batch.DEFAULT_CHUNK["accepteasy"]
WORKERS = billkit.batch.DEFAULT_WORKERS["accepteasy"]


class _Counter(httpx.AsyncBaseTransport):
    """Passes requests to the sandbox; counts the requests and the time the sandbox itself spends answering (a
    real server's work, which is not billkit's)."""

    def __init__(self, inner: httpx.AsyncBaseTransport) -> None:
        self.inner = inner
        self.requests = 0
        self.server_seconds = 0.0

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        self.requests += 1
        await request.aread()
        started = time.perf_counter()
        response = await self.inner.handle_async_request(request)
        body = await response.aread()
        self.server_seconds += time.perf_counter() - started
        return httpx.Response(response.status_code, headers=response.headers, content=body)


def journal_bytes(path: Path) -> tuple[int, int]:
    """``(bytes of the journal file, bytes of its -wal file, 0 if none)``."""
    wal = Path(f"{path}-wal")
    return path.stat().st_size, wal.stat().st_size if wal.exists() else 0


class BatchRun:
    """One batch round: billkit's seconds (the sandbox's taken out), requests, and the journal's sizes."""

    def __init__(self, seconds: float, requests: int, db: int, wal: int, closed: int) -> None:
        self.seconds = seconds
        self.requests = requests
        self.db, self.wal, self.closed = db, wal, closed


async def run_batch(bills: list[Bill], path: Path) -> BatchRun:
    box = AcceptEasySandbox(VirtualClock())
    counter = _Counter(box)
    poll = billkit.PollPolicy(deadline=DEADLINE)
    async with billkit.AsyncClient("accepteasy", sandbox=box, transport=counter, poll=poll) as client:
        start = time.perf_counter()
        journal = billkit.batch.create(path, bills, provider="accepteasy")
        try:
            summary = await billkit.batch.arun(journal, client)
            db, wal = journal_bytes(path)
        finally:
            journal.close()
        elapsed = time.perf_counter() - start
    closed = sum(journal_bytes(path))
    n = len(bills)
    assert summary.counts["done"] == n and summary.ok, summary.counts
    assert len(box.bills) == n, len(box.bills)
    return BatchRun(elapsed - counter.server_seconds, counter.requests, db, wal, closed)


async def run_floor(bills: list[Bill]) -> tuple[float, float, int]:
    """``(seconds billkit spent, of which reading the results, requests)``: the same chunks through
    ``submit_many``, ``WORKERS`` at once, each item's outcome read (the runner reads every one to journal it; a
    BulkResult makes its items when first read)."""
    box = AcceptEasySandbox(VirtualClock())
    counter = _Counter(box)
    poll = billkit.PollPolicy(deadline=DEADLINE)
    created: list[str] = []
    reading = 0.0
    async with billkit.AsyncClient("accepteasy", sandbox=box, transport=counter, poll=poll) as client:
        limiter = anyio.CapacityLimiter(WORKERS)

        async def one(chunk: list[Bill]) -> None:
            nonlocal reading
            async with limiter:
                op = await client.submit_many(chunk)
                result = await op
                started = time.perf_counter()  # no await below: this time is the reading's alone
                for item in result:
                    assert item.ok and item.bill is not None and item.bill.provider_id, item
                    created.append(item.bill.provider_id)
                reading += time.perf_counter() - started

        start = time.perf_counter()
        async with anyio.create_task_group() as tg:
            for k in range(0, len(bills), CHUNK):
                tg.start_soon(one, bills[k : k + CHUNK])
        elapsed = time.perf_counter() - start
    n = len(bills)
    assert len(created) == n and len(set(created)) == n, len(created)
    assert len(box.bills) == n, len(box.bills)
    return elapsed - counter.server_seconds, reading, counter.requests


class Ratio:
    """The per-round ratio of two sides: its median and its spread (as bench_create)."""

    def __init__(self, top: list[float], bottom: list[float]) -> None:
        self.rounds = sorted(a / b for a, b in zip(top, bottom, strict=True))
        self.median = statistics.median(self.rounds)

    def __str__(self) -> str:
        return f"{self.median:.2f}x (rounds {self.rounds[0]:.2f}-{self.rounds[-1]:.2f})"


def main(n: int = BILLS, rounds: int = ROUNDS) -> None:
    bills = make_bills(n)
    with tempfile.TemporaryDirectory(prefix="bench_batch-") as folder:
        paths = (Path(folder) / f"round-{r}.journal" for r in range(rounds + 1))

        def batch() -> BatchRun:
            path = next(paths)
            try:
                return anyio.run(run_batch, bills, path)
            finally:
                for suffix in ("", "-wal", "-shm"):
                    with_suffix = f"{path}{suffix}"
                    if os.path.exists(with_suffix):
                        os.unlink(with_suffix)

        # check run (also the warm-up): both sides end with every bill created (asserted in each run)
        check = batch()
        _, _, floor_requests = anyio.run(run_floor, bills)

        runs: list[BatchRun] = []
        times: dict[str, list[float]] = {"batch": [], "floor": [], "await_only": []}
        for r in range(rounds):
            order = ["batch", "floor"] if r % 2 == 0 else ["floor", "batch"]
            for name in order:
                gc.collect()
                if name == "batch":
                    runs.append(batch())
                    times[name].append(runs[-1].seconds)
                else:
                    seconds, reading, _ = anyio.run(run_floor, bills)
                    times[name].append(seconds)
                    times["await_only"].append(seconds - reading)

    ratio = Ratio(times["batch"], times["floor"])
    await_only = Ratio(times["batch"], times["await_only"])
    per_item = {name: statistics.median(v) / n * 1e6 for name, v in times.items()}
    db, wal, closed = (statistics.median(getattr(run, a) for run in runs) for a in ("db", "wal", "closed"))
    print(f"batch: {n} AcceptEasy bills, chunks of {CHUNK}, {WORKERS} at once, through the sandbox on a "
          f"VirtualClock, {rounds} interleaved rounds, median of per-round ratios (spread)")  # fmt: skip
    print(f"  requests: batch {check.requests}, floor {floor_requests}; the sandbox's own time is taken out of both")
    print(f"ratio time batch (create journal + arun + close) / submit_many floor (no journal, results read) = "
          f"{ratio}  (target <= {TARGET:g})")  # fmt: skip
    print(f"ratio time batch / submit_many floor counting only the awaits (results not read) = {await_only}")
    print(f"time per item: batch {per_item['batch']:.1f} us, floor {per_item['floor']:.1f} us "
          f"({per_item['await_only']:.1f} us without reading the results); the journal and runner add "
          f"{per_item['batch'] - per_item['floor']:.1f} us")  # fmt: skip
    print(f"journal per item after the run: {(db + wal) / n:.0f} B (file {db / n:.0f} B + wal {wal / n:.0f} B, "
          f"the wal {wal / 2**20:.1f} MiB: sqlite checkpoints it at ~4 MiB, so it does not grow with the batch); "
          f"once closed (checkpointed, no wal): {closed / n:.0f} B")  # fmt: skip
    print(f"target batch/floor <= {TARGET:g}x: {'PASS' if ratio.median <= TARGET else 'MISSED'} "
          f"({ratio.median:.2f}x)")  # fmt: skip


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else BILLS)

"""Polling cost and latency of the operations layer: 10,000 operations whose jobs finish uniformly in 1-60 s.

Runs the real poller (an AsyncClient's) on virtual time with a status read that answers from a table (so the
figures are the scheduler's own), under three policies in the same run: billkit's default (backoff with jitter),
a fixed 30 s interval and a fixed 1 s interval. Prints, per policy: reads per operation, median and p95
overshoot (time from the job finishing to the future resolving), peak tasks and tracemalloc bytes per
pending operation; then the ratios the issue sets targets for:

* mean overshoot, default / fixed-30 s      (target <= 0.33)
* reads per op, default / fixed-1 s         (target <= 0.25)
* peak tasks independent of the number of operations

Run: ``make bench`` (or ``.venv/bin/python benchmarks/bench_operations.py [n]``).
"""

from __future__ import annotations

import asyncio
import random
import statistics
import sys
import tracemalloc
from collections.abc import Mapping
from typing import Any

import anyio
import httpx

from billkit import Bill, BillStatus, PollPolicy, RetryPolicy
from billkit.clock import VirtualClock
from billkit.flows import AsyncIO, Flow
from billkit.operations import AsyncPoller, Operation, PollResult, gather


async def run(policy: PollPolicy, n: int, seed: int = 1) -> dict[str, float]:
    rng = random.Random(seed)
    clock = VirtualClock()
    finish = {f"op{i}": rng.uniform(1, 60) for i in range(n)}
    peak_tasks = 0

    def poll(kind: str, state: Mapping[str, Any]) -> Flow[PollResult]:
        nonlocal peak_tasks
        peak_tasks = max(peak_tasks, len(asyncio.all_tasks()))
        op_id = str(state["id"])
        if clock.now() >= finish[op_id]:
            return PollResult(status=BillStatus.OPEN, done=True, value=Bill(provider_id=op_id))
        return PollResult(status=BillStatus.PENDING)
        yield  # a flow that needs no effect: the status comes from the table

    io = AsyncIO(httpx.AsyncClient(), clock, RetryPolicy())
    scheduler = AsyncPoller(provider="bench", poll=poll, clock=clock, policy=policy, io=io, rng=random.Random(seed))
    tracemalloc.start()
    before = tracemalloc.take_snapshot()
    ops: list[Operation[Bill]] = []
    for op_id in finish:
        core = scheduler.new_core("job", op_id, {"id": op_id}, None)
        scheduler.start(core)
        ops.append(Operation(core))
    after = tracemalloc.take_snapshot()
    tracemalloc.stop()
    per_op = sum(s.size_diff for s in after.compare_to(before, "filename")) / n

    overshoot: list[float] = []

    def done(core: Any) -> None:
        if core.done:
            overshoot.append(clock.now() - finish[core.id])

    for op in ops:
        op._core.listeners.append(done)
    await gather(*ops)
    overshoot.sort()
    return {
        "reads_per_op": scheduler.reads / n,
        "overshoot_mean": statistics.fmean(overshoot),
        "overshoot_median": statistics.median(overshoot),
        "overshoot_p95": overshoot[int(0.95 * (len(overshoot) - 1))],
        "peak_tasks": peak_tasks,
        "bytes_per_op": per_op,
    }


async def main(n: int) -> None:
    policies = {
        "default": PollPolicy(),
        "fixed-30s": PollPolicy.fixed(30),
        "fixed-1s": PollPolicy.fixed(1),
    }
    results = {name: await run(p, n) for name, p in policies.items()}
    small = await run(PollPolicy(), max(100, n // 10))
    print(f"operations: {n} jobs finishing uniformly in 1-60 s, virtual time")
    for name, r in results.items():
        print(
            f"  {name:<10} reads/op {r['reads_per_op']:6.2f}  overshoot median {r['overshoot_median']:5.2f}s "
            f"p95 {r['overshoot_p95']:5.2f}s  peak tasks {r['peak_tasks']:3.0f}  {r['bytes_per_op']:6.0f} B/pending op"
        )
    d, f30, f1 = results["default"], results["fixed-30s"], results["fixed-1s"]
    print(
        f"ratio overshoot mean default/fixed-30s = {d['overshoot_mean'] / f30['overshoot_mean']:.3f}  (target <= 0.33)"
    )
    print(f"ratio reads/op default/fixed-1s       = {d['reads_per_op'] / f1['reads_per_op']:.3f}  (target <= 0.25)")
    print(
        f"ratio peak tasks {n} ops / {max(100, n // 10)} ops = {d['peak_tasks'] / max(1, small['peak_tasks']):.2f}"
        "  (target 1.0: constant)"
    )
    print(f"bytes per pending op (tracemalloc)     = {d['bytes_per_op']:.0f}  (target <= 4096)")


if __name__ == "__main__":
    anyio.run(main, int(sys.argv[1]) if len(sys.argv) > 1 else 10_000)

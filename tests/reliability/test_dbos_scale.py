"""Scale-out on DBOS against a real PostgreSQL server: worker processes (``billkit worker``), the three providers'
sandboxes served over loopback, one worker killed with SIGKILL mid-run and its work recovered by the others.

Every bill created exactly once and accounted for, and BILL never more than 3 requests in flight at its server.
``make test`` runs 150 bills per provider; ``make scale`` (BILLKIT_SCALE=full) runs 5,000 per provider and prints
the throughput with 1, 2 and 4 workers. The server is installed and started by tests/reliability/postgres.py.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path

import pytest

pytest.importorskip("dbos")

from billkit.client import adapter_class
from billkit.clock import SystemClock
from billkit.contrib.dbos import Engine
from billkit.sandboxing import Sandbox
from billkit.testing.served import serve
from tests.reliability import postgres
from tests.test_batch import bills_for, held

pytestmark = pytest.mark.soak
ROOT = Path(__file__).resolve().parents[2]
FULL = os.environ.get("BILLKIT_SCALE") == "full"
SIZE = 5000 if FULL else 150
PROVIDERS = tuple(os.environ.get("BILLKIT_SCALE_PROVIDERS", "accepteasy,billcom,facturapi").split(","))


@pytest.fixture(scope="module")
def database() -> Iterator[str]:
    try:
        with postgres.server() as url:
            yield url
    except postgres.NoPostgres as exc:
        if os.environ.get("BILLKIT_REQUIRE_POSTGRES"):
            raise
        pytest.skip(str(exc))


@dataclass
class Run:
    seconds: float
    items: int
    bill_peak: int
    killed: bool


def run_scale(database: str, *, size: int, workers: int, kill: bool, tag: str) -> Run:
    """Submit ``size`` bills per provider, run ``workers`` worker processes (killing the first once a quarter of
    the items are done, if ``kill``), and check every bill is held once and reported done."""
    boxes: dict[str, Sandbox] = {}
    counters: dict[str, Counter[str]] = {}
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src"), "BILLKIT_DBOS_LOG_LEVEL": "ERROR"}
    saved = dict(os.environ)
    with ExitStack() as stack:
        urls = {}
        for provider in PROVIDERS:
            box = adapter_class(provider).make_sandbox(clock=SystemClock())
            if hasattr(box, "async_delay"):
                box.async_delay = 0.5
            counters[provider] = Counter()
            served = stack.enter_context(serve(box, in_flight=counters[provider]))
            boxes[provider], urls[provider] = box, served.url
            for cred in adapter_class(provider).credentials:
                value = box.credentials.get(cred.name)
                if value:
                    env[cred.env] = value
        os.environ.update(env)  # the submitting process partitions BILL's queue by the same credentials
        try:
            engine = Engine(database)
            batches = {p: engine.submit(bills_for(p, size), provider=p, base_url=urls[p], batch=f"{tag}-{p}")
                       for p in PROVIDERS}  # fmt: skip
            started = time.monotonic()
            command = [sys.executable, "-m", "billkit.cli", "worker", "--database", database, "--lease", "3"]
            procs = [
                subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
                for _ in range(workers)
            ]
            killed = False
            try:
                deadline = started + (1800 if FULL else 300)
                while True:
                    counts = Counter[str]()
                    for b in batches.values():
                        counts.update(engine.summary(b).counts)
                    ended = counts["done"] + counts["failed"] + counts["unknown"]
                    if kill and not killed and ended >= size * len(PROVIDERS) // 4:
                        procs[0].send_signal(signal.SIGKILL)
                        killed = True
                    if ended == size * len(PROVIDERS):
                        break
                    dead = [p for p in procs[1 if killed else 0 :] if p.poll() is not None]
                    assert not dead, dead[0].stderr.read().decode()[-3000:] if dead[0].stderr else "a worker died"
                    assert time.monotonic() < deadline, f"unfinished: {dict(counts)}"
                    time.sleep(0.5)
                seconds = time.monotonic() - started
            finally:
                for p in procs:
                    if p.poll() is None:
                        p.send_signal(signal.SIGINT)
                for p in procs:
                    try:
                        p.wait(timeout=30)
                    except subprocess.TimeoutExpired:
                        p.kill()
            for provider, batch in batches.items():
                summary = engine.summary(batch)
                rows = list(engine.rows(batch))
                errors = [(r["error_type"], r["error"]) for r in rows if r["state"] != "done"][:2]
                assert summary.ok, (provider, dict(summary.counts), errors)
                holding = held(boxes[provider])
                assert [r["idx"] for r in rows] == list(range(size))
                for bill, row in zip(bills_for(provider, size), rows, strict=True):
                    ids = holding.get(bill.reference or "", [])
                    assert len(ids) == 1, f"{provider} {bill.reference}: held {len(ids)} times"
                    assert row["provider_id"] == ids[0]
            engine.shutdown()
        finally:
            os.environ.clear()
            os.environ.update(saved)
    return Run(seconds, size * len(PROVIDERS), counters["billcom"]["peak"], killed)


def test_four_workers_one_killed_create_every_bill_exactly_once(database: str) -> None:
    run = run_scale(database, size=SIZE, workers=4, kill=True, tag=f"kill{time.time_ns()}")
    assert run.killed
    assert run.bill_peak <= 3, f"BILL saw {run.bill_peak} requests in flight"
    print(f"\n4 workers, one killed: {run.items} bills in {run.seconds:.1f} s ({run.items / run.seconds:.0f}/s); "
          f"BILL peak in flight {run.bill_peak}")  # fmt: skip


@pytest.mark.skipif(not FULL, reason="throughput is measured by make scale")
def test_throughput_with_one_two_and_four_workers(database: str) -> None:
    rates = {}
    for n in (1, 2, 4):
        run = run_scale(database, size=SIZE // 5, workers=n, kill=False, tag=f"rate{n}-{time.time_ns()}")
        rates[n] = run.items / run.seconds
        assert run.bill_peak <= 3
    print("\nthroughput (items/s, ratio to 1 worker): " + ", ".join(
        f"{n} workers {r:.0f}/s ({r / rates[1]:.2f}x)" for n, r in rates.items()))  # fmt: skip

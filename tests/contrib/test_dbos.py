"""billkit.contrib.dbos on DBOS with SQLite: one durable workflow per bill, in this process.

DBOS sleeps and waits on the real clock, so the sandboxes here run on the system clock with short provider
delays (half a second of stamping) and the poll policy starts at a fifth of a second; every wait is on the
batch's table with a timeout, never a fixed sleep. The timeouts are generous (minutes, where a quiet machine
takes seconds) because they bound a real-time wait on a machine that may be running other suites. The
multi-process and PostgreSQL runs are in tests/reliability/test_dbos_scale.py.
"""

from __future__ import annotations

import gc
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("dbos")

import sqlalchemy as sa

import billkit
import billkit.testing
from billkit.clock import SystemClock
from billkit.contrib import dbos as bd
from billkit.errors import ConfigurationError
from billkit.sandboxing import Sandbox
from tests.test_batch import bills_for, held

FAST = billkit.PollPolicy(first_delay=0.2, max_delay=0.5, jitter=0.0)


def real_box(provider: str) -> Sandbox:
    box = billkit.testing.sandbox(provider, clock=SystemClock())
    if hasattr(box, "async_delay"):
        box.async_delay = 0.5
    return box


@pytest.fixture
def database(tmp_path: Path) -> str:
    url = f"sqlite:///{tmp_path / 'billkit-dbos.sqlite'}"
    problem = bd.sqlite_problem(url)
    if problem is not None:  # Python 3.12+ linked to SQLite < 3.42 (pyenv's 3.13 on Debian 12)
        pytest.skip(problem)
    return url


def test_an_engine_on_a_sqlite_dbos_cannot_use_is_refused_before_it_starts(monkeypatch: pytest.MonkeyPatch) -> None:
    import sqlite3
    import sys

    monkeypatch.setattr(sys, "version_info", (3, 13, 0, "final", 0))
    monkeypatch.setattr(sqlite3, "sqlite_version_info", (3, 40, 1))
    with pytest.raises(ConfigurationError, match=r"DBOS on SQLite needs SQLite 3\.42 or newer on Python 3\.13"):
        bd.Engine("sqlite:///never-made.sqlite")
    assert bd.sqlite_problem("postgresql://billing@db/billing") is None
    monkeypatch.setattr(sqlite3, "sqlite_version_info", (3, 45, 0))
    assert bd.sqlite_problem("sqlite:///ok.sqlite") is None


@pytest.fixture
def engine_for(database: str) -> Iterator[Any]:
    made: list[bd.Engine] = []

    def make(box: Sandbox, poll: billkit.PollPolicy = FAST, **options: Any) -> bd.Engine:
        def client(provider: str, base_url: str | None) -> billkit.AsyncClient:
            return billkit.AsyncClient(provider, sandbox=box, poll=poll)

        engine = bd.Engine(database, client_factory=client, **options)
        made.append(engine)
        return engine

    yield make
    for engine in made:
        engine.shutdown()
    gc.collect()  # the coroutines of workflows still waiting at shutdown end here, not in a later test


def sent_by_a_dead_worker(engine: bd.Engine, box: Sandbox, batch: str, idx: int, *, sent_ago: float) -> None:
    """Item ``idx`` as a worker killed mid-request leaves it: its intent written (one attempt, ``sent_ago``
    seconds ago) and the bill created at the provider, the answer lost."""
    with engine.sql.begin() as c:
        where = (bd._items.c.batch == batch, bd._items.c.idx == idx)
        row = c.execute(sa.select(bd._items).where(*where)).one()
        c.execute(sa.update(bd._items).where(*where).values(state="sending", attempts=1,
                                                            first_sent=time.time() - sent_ago))  # fmt: skip
    with billkit.Client(box.provider, sandbox=box) as direct:
        direct.create(billkit.Bill.model_validate_json(row.bill))


@pytest.mark.parametrize("provider", ["accepteasy", "billcom", "facturapi"])
def test_every_bill_is_created_once_and_accounted_for_in_order(provider: str, engine_for: Any) -> None:
    box = real_box(provider)
    engine = engine_for(box)
    bills = bills_for(provider, 12)
    batch = engine.submit(bills, provider=provider)
    assert engine.submit(bills, provider=provider, batch=batch) == batch, "submitting again enqueues nothing twice"
    engine.launch([provider])
    summary = engine.wait(batch, timeout=180)
    assert summary.ok, summary
    rows = list(engine.rows(batch))
    assert [r["idx"] for r in rows] == list(range(12))
    assert all(r["attempts"] == 1 and r["provider_id"] for r in rows)
    assert len({r["provider_id"] for r in rows}) == 12
    holding = held(box)
    assert all(len(holding[b.reference or ""]) == 1 for b in bills), "one bill at the provider per input"
    assert sorted(r["provider_id"] for r in rows) == sorted(i for ids in holding.values() for i in ids)


def test_a_send_that_may_have_reached_the_provider_is_looked_up_not_sent_again(engine_for: Any) -> None:
    """A worker died after the intent was written: the bill exists at Facturapi; the step finds it by its
    idempotency key and does not create a second one."""
    box = real_box("facturapi")
    engine = engine_for(box)
    bills = bills_for("facturapi", 3)
    batch = engine.submit(bills, provider="facturapi")
    sent_by_a_dead_worker(engine, box, batch, 1, sent_ago=0.0)
    assert sum(map(len, held(box).values())) == 1
    engine.launch(["facturapi"])
    assert engine.wait(batch, timeout=180).ok
    rows = list(engine.rows(batch))
    assert sorted(map(len, held(box).values())) == [1, 1, 1], "the item found was not created again"
    assert [r["attempts"] for r in rows] == [1, 1, 1], "the looked-up item was not sent again"


def test_a_refused_bill_fails_with_its_reason_and_the_rest_are_created(engine_for: Any) -> None:
    box = real_box("accepteasy")
    engine = engine_for(box)
    bills = bills_for("accepteasy", 3)
    bills[1] = bills[1].model_copy(update={"description": "x" * 40})  # AcceptEasy takes at most 32 characters
    batch = engine.submit(bills, provider="accepteasy")
    engine.launch(["accepteasy"])
    summary = engine.wait(batch, timeout=180)
    assert summary.finished and dict(summary.counts) == {"done": 2, "failed": 1}, summary
    failed = next(r for r in engine.rows(batch) if r["state"] == "failed")
    assert failed["idx"] == 1 and failed["error_type"] == "ValidationError" and "32" in failed["error"]
    assert sorted(held(box)) == [bills[0].reference, bills[2].reference]


def test_a_webhook_finishes_a_waiting_bill_without_a_status_read(engine_for: Any) -> None:
    box = real_box("facturapi")
    slow = billkit.PollPolicy(first_delay=3600, max_delay=3600)  # a status read would come only in an hour
    engine = engine_for(box, poll=slow)
    batch = engine.submit(bills_for("facturapi", 2), provider="facturapi")
    engine.launch(["facturapi"])
    waiting = engine.summary(batch)
    end = time.monotonic() + 120
    while waiting.counts.get("waiting", 0) < 2 and time.monotonic() < end:
        waiting = engine.wait(batch, timeout=0.05, every=0.05)
    assert waiting.counts.get("waiting") == 2, waiting
    sent_before = len(box.requests)
    deadline = time.monotonic() + 120
    delivered = 0
    while delivered < 2 and time.monotonic() < deadline:  # stamping finishes half a second after the create
        delivered = 0
        for event in box.events():  # type: ignore[attr-defined]
            body, headers = box.webhook_request(event)  # type: ignore[attr-defined]
            target = engine.receiver_target("facturapi")
            verified = target.verify_webhook(body, headers, box.webhook_secret)  # type: ignore[attr-defined]
            delivered += target.handle_webhook_event(verified)
            target.handle_webhook_event(verified)  # a duplicate delivery changes nothing
    assert delivered == 2
    assert engine.wait(batch, timeout=120, every=0.05).ok
    assert len(box.requests) == sent_before, "finished by the events: no status read"


def test_waiting_bills_hold_no_threads(engine_for: Any) -> None:
    box = real_box("facturapi")
    box.async_delay = 3600  # type: ignore[attr-defined]
    engine = engine_for(box, poll=billkit.PollPolicy(first_delay=3600, max_delay=3600))
    batch = engine.submit(bills_for("facturapi", 300), provider="facturapi")
    engine.launch(["facturapi"])
    before = peak = threading.active_count()
    summary = engine.summary(batch)
    end = time.monotonic() + 180
    while summary.counts.get("waiting", 0) < 300 and time.monotonic() < end:
        summary = engine.wait(batch, timeout=0.2, every=0.1)
        peak = max(peak, threading.active_count())
    assert summary.counts.get("waiting") == 300, summary
    # DBOS's and asyncio's fixed pools, not one thread per waiting bill
    assert max(peak, threading.active_count()) - before < 48, "300 waiting bills held a thread each"


def test_a_dead_worker_s_workflows_are_claimed_once(engine_for: Any, database: str) -> None:
    box = real_box("accepteasy")
    engine = engine_for(box, lease=2.0)
    engine.launch(["accepteasy"])
    with engine.sql.begin() as c:
        c.execute(sa.insert(bd._workers).values(executor="gone", host="h", pid=1, beat=time.time() - 60))
        c.execute(sa.insert(bd._workers).values(executor="alive", host="h", pid=2, beat=time.time()))
    assert engine.recover_dead() == ["gone"]
    assert engine.recover_dead() == [], "claimed once"
    with engine.sql.connect() as c:
        left = {r[0] for r in c.execute(sa.select(bd._workers.c.executor))}
    assert "alive" in left and "gone" not in left


def test_tables_of_another_format_are_refused(engine_for: Any) -> None:
    engine = engine_for(real_box("accepteasy"))
    engine.setup()
    with engine.sql.begin() as c:
        c.execute(sa.update(bd._info).where(bd._info.c.name == "format").values(value="99"))
    with pytest.raises(ConfigurationError, match="format 99"):
        engine.setup()


def test_the_database_is_a_url_and_its_password_is_not_shown() -> None:
    with pytest.raises(ConfigurationError, match="database is a URL"):
        bd.Engine("billing.sqlite")
    engine = bd.Engine("postgresql://billing:hunter2@db.example/billing")
    assert "hunter2" not in repr(engine)


def test_bill_s_chunk_looks_up_the_items_in_doubt_together_and_sends_the_rest_in_one_bulk(engine_for: Any) -> None:
    """BILL runs 100 bills per workflow as one bulk; an item a dead worker may have sent is found by the
    vendor listing (once BILL's settling time is over), never created twice."""
    box = real_box("billcom")
    engine = engine_for(box)
    bills = bills_for("billcom", 5)
    batch = engine.submit(bills, provider="billcom")
    sent_by_a_dead_worker(engine, box, batch, 3, sent_ago=600.0)  # BILL's 120 s settling time is over
    engine.launch(["billcom"])
    assert engine.wait(batch, timeout=180).ok
    assert sorted(map(len, held(box).values())) == [1] * 5, "each bill held once"
    bulk_creates = [r for r in box.requests if r.method == "POST" and "bulk" in r.path]
    assert len(bulk_creates) == 1, "the four others went in one bulk"
    assert [r["attempts"] for r in engine.rows(batch)] == [1, 1, 1, 1, 1]


def test_a_provider_left_out_of_chunks_gets_a_workflow_per_bill(engine_for: Any) -> None:
    box = real_box("billcom")
    engine = engine_for(box, chunks={})
    batch = engine.submit(bills_for("billcom", 3), provider="billcom")
    engine.launch(["billcom"])
    assert engine.wait(batch, timeout=180).ok
    assert not [r for r in box.requests if r.method == "POST" and "bulk" in r.path]
    assert sorted(map(len, held(box).values())) == [1, 1, 1]

"""Batches across many worker processes and machines, on DBOS (``pip install 'billkit[dbos]'``).

DBOS (https://docs.dbos.dev) is a library: workflows and queues persisted in PostgreSQL (SQLite for local work),
with queue-wide concurrency limits and recovery of a dead worker's workflows by another. billkit runs one
durable workflow per bill on it::

    engine = Engine("postgresql://billing@db/billing")
    batch = engine.submit(bills, provider="billcom")          # any process: enqueues, needs no worker code
    engine.work()                                              # each worker process (or `billkit worker`)
    engine.wait(batch); engine.rows(batch)                     # results, from any process

**What a bill's workflow does.** ``billkit.create`` runs on the provider's queue: a create-or-reconcile step
writes the intent (an attempt counter) in billkit's table *before* the request goes out, then sends the bill
with its pinned key (Facturapi's idempotency key, AcceptEasy's SRRID, BILL's vendor and invoice number: the same
``pin_key`` the embedded journal uses). A step that finds an attempt already counted is running again after a
worker died mid-request: it looks the bill up first (``find_existing``, after the provider's
``reconcile_settle``) and sends again only when the bill is proven absent. A bill still being worked on by the
provider (Facturapi stamping, AcceptEasy's asynchronous create) is then waited for by ``billkit.wait`` on
another queue: durable sleeps that follow the client's :class:`~billkit.PollPolicy` (backoff, jitter, the
server's Retry-After), woken early by a webhook (a DBOS message); a waiting bill holds no thread and no slot of
the provider's queue. The terminal result is written to billkit's table, one row per input, in order.

**Limits.** The provider's queue admits ``max_in_flight`` creates at once across every worker (BILL: 3 per
devKey and organization, one queue partition per set of credentials), and ``per_worker`` per worker. Status
reads of waiting bills are limited per worker by the poll policy's ``max_concurrent_reads``.

**A worker that dies** (SIGKILL, a lost machine) stops beating in ``billkit_workers``; after ``lease`` seconds
another worker takes its PENDING workflows back onto their queues (what DBOS Conductor does when it is used),
and they run again from their last recorded step.

**What is stored.** billkit's tables (``billkit_batches``, ``billkit_items``, ``billkit_workers``) hold the bills,
their keys, operation ids and token states, results and errors: never credentials (workers read those from the
environment, the way :class:`~billkit.Client` does). Workflow arguments and outputs are plain strings and
numbers, serialised as JSON, not pickled, so a database row can never run code in a worker.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import os
import random
import re
import socket
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

try:
    import sqlalchemy as sa
    from dbos import DBOS, DBOSClient, DBOSConfig, DBOSPortableJSONSerializer, EnqueueOptions, SetWorkflowID
    from dbos import error as dbos_errors
except ModuleNotFoundError as exc:  # pragma: no cover - exercised by the plain-install check
    from billkit.errors import ConfigurationError

    raise ConfigurationError(
        f"billkit.contrib.dbos needs the dbos extra: pip install 'billkit[dbos]' ({exc})"
    ) from None

from billkit import durable
from billkit.client import AsyncClient, adapter_class
from billkit.durable import Stage
from billkit.errors import BillkitError, BulkRejected, ConfigurationError, ValidationError
from billkit.models import Bill
from billkit.operations import PollPolicy

__all__ = ["TOPIC", "Engine", "Summary", "sqlite_problem"]

FORMAT = 1
_BATCH_ID = re.compile(r"[A-Za-z0-9._-]{1,64}")
#: the DBOS message topic a webhook's news is sent on
TOPIC = "billkit.event"
CREATE = "billkit.create"
CREATE_MANY = "billkit.create_many"
#: bills per workflow where a provider's bulk answers at once: BILL's bulk takes at most 100
DEFAULT_CHUNKS = {"billcom": 100}
WAIT = "billkit.wait"
WAITS_QUEUE = "billkit-waits"
ROUNDS = 12


def sqlite_problem(database: str) -> str | None:
    """Why DBOS cannot keep its tables in ``database`` on this Python, or None (always None for PostgreSQL).

    DBOS stamps its SQLite rows with ``unixepoch('subsec')`` on Python 3.12+, which SQLite has only from 3.42 on;
    an older library (Python builds that link the system's SQLite, 3.40 on Debian 12) gives NULL there and every
    enqueue fails with ``NOT NULL constraint failed: workflow_status.created_at``."""
    import sqlite3
    import sys

    if not database.startswith("sqlite") or sys.version_info < (3, 12) or sqlite3.sqlite_version_info >= (3, 42):
        return None
    return (f"DBOS on SQLite needs SQLite 3.42 or newer on Python {sys.version_info[0]}.{sys.version_info[1]} "
            f"(this Python has SQLite {sqlite3.sqlite_version}): use PostgreSQL, or a Python 3.10 / 3.11, or a "
            "Python built with a newer SQLite")  # fmt: skip


TERMINAL = ("done", "failed", "unknown")
STATES = ("pending", "sending", "waiting", "done", "failed", "unknown")

_meta = sa.MetaData()
_batches = sa.Table(
    "billkit_batches",
    _meta,
    sa.Column("batch", sa.String(64), primary_key=True),
    sa.Column("provider", sa.String(32), nullable=False),
    sa.Column("base_url", sa.Text),
    sa.Column("account", sa.String(32), nullable=False),
    sa.Column("size", sa.Integer, nullable=False),
    sa.Column("created", sa.Float, nullable=False),
)
_items = sa.Table(
    "billkit_items",
    _meta,
    sa.Column("batch", sa.String(64), primary_key=True),
    sa.Column("idx", sa.Integer, primary_key=True),
    sa.Column("key", sa.Text, nullable=False),
    sa.Column("bill", sa.Text, nullable=False),
    sa.Column("state", sa.String(16), nullable=False),
    sa.Column("attempts", sa.Integer, nullable=False, default=0),
    sa.Column("first_sent", sa.Float),
    sa.Column("op_id", sa.String(128), index=True),
    sa.Column("stage", sa.Text),
    sa.Column("provider_id", sa.String(128)),
    sa.Column("status", sa.String(32)),
    sa.Column("error_type", sa.String(64)),
    sa.Column("error", sa.Text),
    sa.Column("updated", sa.Float, nullable=False),
)
_workers = sa.Table(
    "billkit_workers",
    _meta,
    sa.Column("executor", sa.String(128), primary_key=True),
    sa.Column("host", sa.String(255), nullable=False),
    sa.Column("pid", sa.Integer, nullable=False),
    sa.Column("beat", sa.Float, nullable=False),
)
_info = sa.Table(
    "billkit_meta",
    _meta,
    sa.Column("name", sa.String(32), primary_key=True),
    sa.Column("value", sa.Text, nullable=False),
)


@dataclass(frozen=True)
class Summary:
    """Counts of a batch's items by state (``pending``, ``sending``, ``waiting``, ``done``, ``failed``,
    ``unknown``)."""

    batch: str
    counts: Mapping[str, int]

    @property
    def total(self) -> int:
        return sum(self.counts.values())

    @property
    def finished(self) -> bool:
        return all(self.counts.get(s, 0) == 0 for s in STATES if s not in TERMINAL)

    @property
    def ok(self) -> bool:
        return self.finished and self.counts.get("done", 0) == self.total


def _sa_url(url: str) -> str:
    """The SQLAlchemy URL of billkit's own tables: psycopg 3 (DBOS's driver) for PostgreSQL."""
    if url.startswith("postgresql://") or url.startswith("postgres://"):
        return "postgresql+psycopg://" + url.split("://", 1)[1]
    return url


def _account(provider: str) -> str:
    """A fingerprint of the provider credentials in this process's environment (the queue partition that shares
    one provider account's limit); never reversible to the credentials."""
    cls = adapter_class(provider)
    values = [os.environ.get(c.env, "") for c in cls.credentials]
    if not any(values):
        return "default"
    return hashlib.sha256("\x00".join(values).encode()).hexdigest()[:16]


ClientFactory = Callable[[str, "str | None"], AsyncClient]


def _default_client(provider: str, base_url: str | None) -> AsyncClient:
    return AsyncClient(provider, base_url=base_url)


@dataclass
class _Worker:
    """What this process's workflow steps use: the engine, one client per (provider, base URL), read gates."""

    engine: Engine
    clients: dict[tuple[str, str | None], AsyncClient] = field(default_factory=dict)
    gates: dict[tuple[str, str | None], asyncio.Semaphore] = field(default_factory=dict)

    def client(self, provider: str, base_url: str | None) -> AsyncClient:
        key = (provider, base_url)
        if key not in self.clients:
            self.clients[key] = self.engine.client_factory(provider, base_url)
            self.gates[key] = asyncio.Semaphore(self.clients[key].poll_policy.max_concurrent_reads)
        return self.clients[key]


_WORKER: _Worker | None = None


def _worker() -> _Worker:
    if _WORKER is None:
        raise ConfigurationError("a billkit workflow ran in a process that is not a billkit worker (Engine.work)")
    return _WORKER


class Engine:
    """billkit batches on DBOS, over one database (``postgresql://...`` for many machines, ``sqlite:///file``
    for one).

    * ``client_factory(provider, base_url)``: the client a worker uses (default: ``AsyncClient(provider,
      base_url=...)`` with credentials from the environment).
    * ``per_worker``: creates one worker runs at once per provider; ``max_in_flight`` caps them across all
      workers (default: the adapter's own limit, BILL's 3).
    * ``lease``: seconds without a heartbeat after which a worker is taken for dead and its work recovered.
    * ``chunks``: bills per workflow, sent as one bulk, for providers whose bulk answers at once (default: BILL,
      100; a provider left out gets one workflow per bill). BILL allows 3 requests in flight, so one bill per
      workflow caps it near 3 bills per request time; a bulk of 100 per workflow does not.
    """

    def __init__(
        self,
        database: str,
        *,
        client_factory: ClientFactory | None = None,
        per_worker: int = 8,
        max_in_flight: Mapping[str, int] | None = None,
        lease: float = 10.0,
        chunks: Mapping[str, int] | None = None,
        app: str = "billkit",
    ) -> None:
        if not isinstance(database, str) or "://" not in database:
            raise ConfigurationError("database is a URL: postgresql://user@host/db or sqlite:///path")
        problem = sqlite_problem(database)
        if problem is not None:
            raise ConfigurationError(problem)
        self.database = database
        self.client_factory = client_factory or _default_client
        self.per_worker = per_worker
        self.limits = dict(max_in_flight or {})
        self.lease = lease
        self.chunks = dict(DEFAULT_CHUNKS if chunks is None else chunks)
        self.app = app
        self.executor = f"billkit-{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:8]}"
        self.sql = sa.create_engine(_sa_url(database), pool_pre_ping=True)
        self._stop = threading.Event()
        self._launched = False
        self._hooks: dict[str, AsyncClient] = {}

    def __repr__(self) -> str:
        return f"<billkit.contrib.dbos.Engine {sa.make_url(_sa_url(self.database)).render_as_string()}>"

    # -- tables ----------------------------------------------------------------------------------------------------
    def setup(self) -> None:
        """Create (or check) billkit's tables and DBOS's own; refuse tables of another billkit format."""
        DBOS.migrate(self.database)
        _meta.create_all(self.sql)
        with self.sql.begin() as c:
            row = c.execute(sa.select(_info.c.value).where(_info.c.name == "format")).first()
            if row is None:
                c.execute(sa.insert(_info).values(name="format", value=str(FORMAT)))
            elif row[0] != str(FORMAT):
                raise ConfigurationError(
                    f"the billkit tables in this database are format {row[0]}; this billkit reads format {FORMAT}"
                )

    def _queue(self, provider: str) -> str:
        return f"billkit-{adapter_class(provider).name}"

    def _limit(self, provider: str) -> int | None:
        cls = adapter_class(provider)
        return self.limits.get(cls.name, cls.max_in_flight)

    # -- submitting (any process) ----------------------------------------------------------------------------------
    def submit(self, bills: Iterable[Bill], *, provider: str, batch: str | None = None,
               base_url: str | None = None) -> str:  # fmt: skip
        """Write the bills (keys pinned) and enqueue one workflow each; returns the batch id. Submitting the same
        batch id again enqueues nothing twice (workflow ids are the batch id and the item's index)."""
        cls = adapter_class(provider)
        batch = batch or uuid.uuid4().hex[:16]
        if not _BATCH_ID.fullmatch(batch):
            raise ConfigurationError(f"a batch id is 1 to 64 letters, digits, '.', '_' or '-', not {batch!r}")
        self.setup()
        # the keys' seed: short and fixed by the batch id, so the keys fit every provider's limits (AcceptEasy's
        # SRRID is at most 36 characters) and a second submit of the batch pins the same keys
        seed = batch if len(batch) <= 16 else hashlib.sha256(batch.encode()).hexdigest()[:16]
        now = time.time()
        rows = []
        for idx, bill in enumerate(bills):
            pinned, key = cls.pin_key(bill, seed, idx)
            rows.append({"batch": batch, "idx": idx, "key": key, "bill": pinned.model_dump_json(),
                         "state": "pending", "attempts": 0, "updated": now})  # fmt: skip
        account = _account(cls.name)
        with self.sql.begin() as c:
            exists = c.execute(sa.select(_batches.c.size).where(_batches.c.batch == batch)).first()
            if exists is None:
                c.execute(sa.insert(_batches).values(batch=batch, provider=cls.name, base_url=base_url,
                                                     account=account, size=len(rows), created=now))  # fmt: skip
                for start in range(0, len(rows), 1000):
                    c.execute(sa.insert(_items), rows[start : start + 1000])
            elif exists[0] != len(rows):
                raise ConfigurationError(f"batch {batch} exists with {exists[0]} items, not {len(rows)}")
        client = DBOSClient(system_database_url=self.database, serializer=DBOSPortableJSONSerializer())
        chunk = self.chunks.get(cls.name, 1)
        try:
            for first in range(0, len(rows), chunk):
                name, args = (CREATE, (batch, first)) if chunk == 1 else (CREATE_MANY, (batch, first, chunk))
                options: EnqueueOptions = {"workflow_name": name, "queue_name": self._queue(cls.name),
                                           "workflow_id": f"{name}:{batch}:{first}"}  # fmt: skip
                if self._limit(cls.name):
                    options["queue_partition_key"] = account
                client.enqueue(options, *args)
        finally:
            client.destroy()
        return batch

    # -- results (any process) -------------------------------------------------------------------------------------
    def summary(self, batch: str) -> Summary:
        with self.sql.connect() as c:
            got = c.execute(
                sa.select(_items.c.state, sa.func.count()).where(_items.c.batch == batch).group_by(_items.c.state)
            ).all()
        return Summary(batch, {str(s): int(n) for s, n in got})

    def wait(self, batch: str, *, timeout: float | None = None, every: float = 0.5,
             on_progress: Callable[[Summary], None] | None = None) -> Summary:  # fmt: skip
        """Until every item of ``batch`` is done, failed or unknown (reads the table every ``every`` seconds)."""
        end = None if timeout is None else time.monotonic() + timeout
        while True:
            s = self.summary(batch)
            if on_progress is not None:
                on_progress(s)
            if s.finished or (end is not None and time.monotonic() >= end):
                return s
            time.sleep(every)

    def rows(self, batch: str) -> Iterator[dict[str, Any]]:
        """One row per input, in order: index, key, state, provider id, status, error type and message."""
        cols = [_items.c.idx, _items.c.key, _items.c.state, _items.c.provider_id, _items.c.status,
                _items.c.error_type, _items.c.error, _items.c.attempts]  # fmt: skip
        with self.sql.connect() as c:
            for r in c.execute(sa.select(*cols).where(_items.c.batch == batch).order_by(_items.c.idx)):
                yield dict(r._mapping)

    # -- webhooks (any process) ------------------------------------------------------------------------------------
    def webhook_client(self, provider: str) -> AsyncClient:
        """The client this engine reads webhook events with (made once per provider by the client factory)."""
        name = adapter_class(provider).name
        if name not in self._hooks:
            self._hooks[name] = self.client_factory(name, None)
        return self._hooks[name]

    def receiver_target(self, provider: str) -> _Target:
        """What a :class:`billkit.webhooks.Receiver` takes as its client: it verifies with this engine's client
        and hands each verified event to :meth:`deliver`."""
        return _Target(self, self.webhook_client(provider))

    def deliver(self, provider: str, event: Any) -> int:
        """Hand a *verified* webhook event to the bills waiting on the operations it names (a DBOS message to each
        one's wait workflow, sent once per event id); returns how many it reached. A bill not yet waiting (or whose
        wait workflow is still being enqueued) is not reached: a redelivery, or its first status read, finds what
        the event said."""
        cls = adapter_class(provider)
        news = durable.updates(self.webhook_client(cls.name), event)
        if not news:
            return 0
        event_id = str(getattr(event, "id", "") or "")
        reached = 0
        mine = self._launched
        sender: Any = DBOS if mine else DBOSClient(system_database_url=self.database,
                                                   serializer=DBOSPortableJSONSerializer())  # fmt: skip
        try:
            with self.sql.connect() as c:
                for op_id, stage in news:
                    of_provider = sa.select(_batches.c.batch).where(_batches.c.provider == cls.name)
                    q = sa.select(_items.c.batch, _items.c.idx).where(
                        _items.c.op_id == op_id, _items.c.state == "waiting", _items.c.batch.in_(of_provider)
                    )
                    for b, i in c.execute(q).all():
                        key = f"{event_id}:{b}:{i}" if event_id else None
                        try:
                            sender.send(f"{WAIT}:{b}:{i}", stage.to_json(), TOPIC, idempotency_key=key)
                        except dbos_errors.DBOSNonExistentWorkflowError:
                            continue  # its wait is being enqueued: not reached (a redelivery or its next read is)
                        reached += 1
        finally:
            if not mine:
                sender.destroy()
        return reached

    # -- working (each worker process) -----------------------------------------------------------------------------
    def launch(self, providers: Sequence[str] | None = None) -> None:
        """Start this process's DBOS worker on the providers' queues (default: all three) and the waits queue."""
        global _WORKER
        if self._launched:
            return
        self.setup()
        names = [adapter_class(p).name for p in (providers or ("accepteasy", "billcom", "facturapi"))]
        config: DBOSConfig = {
            "name": self.app,
            "system_database_url": self.database,
            "executor_id": self.executor,
            "log_level": os.environ.get("BILLKIT_DBOS_LOG_LEVEL", "WARNING"),
            "serializer": DBOSPortableJSONSerializer(),
            "notification_listener_polling_interval_sec": 0.2,
        }
        _WORKER = _Worker(self)
        DBOS(config=config)
        DBOS.listen_queues([self._queue(n) for n in names] + [WAITS_QUEUE])
        DBOS.launch()
        self._launched = True
        for name in names:
            limit = self._limit(name)
            if limit:
                DBOS.register_queue(self._queue(name), worker_concurrency=min(self.per_worker, limit),
                                    partition_concurrency=limit, polling_interval_sec=0.05)  # fmt: skip
            else:
                DBOS.register_queue(self._queue(name), worker_concurrency=self.per_worker, polling_interval_sec=0.2)
        DBOS.register_queue(WAITS_QUEUE, worker_concurrency=10_000, polling_interval_sec=0.2)
        self._beat_once()
        threading.Thread(target=self._keeper, name="billkit-dbos-keeper", daemon=True).start()

    def work(self, providers: Sequence[str] | None = None, *, until: Callable[[], bool] | None = None) -> None:
        """:meth:`launch`, then serve until ``until()`` is true or :meth:`stop` is called (Ctrl-C stops too)."""
        self.launch(providers)
        try:
            while not self._stop.wait(0.2):
                if until is not None and until():
                    break
        except KeyboardInterrupt:
            pass
        finally:
            self.shutdown()

    def stop(self) -> None:
        self._stop.set()

    def shutdown(self) -> None:
        """Stop this worker (its unfinished workflows stay PENDING and are recovered once its lease runs out)."""
        global _WORKER
        self._stop.set()
        if self._launched:
            with contextlib.suppress(Exception), self.sql.begin() as c:
                c.execute(sa.delete(_workers).where(_workers.c.executor == self.executor))
            DBOS.destroy(workflow_completion_timeout_sec=0)
            self._launched = False
        worker, _WORKER = _WORKER, None
        clients = [*(worker.clients.values() if worker is not None else ()), *self._hooks.values()]
        self._hooks.clear()
        if clients:
            for client in clients:
                with contextlib.suppress(Exception):
                    asyncio.run(client.aclose())
        self.sql.dispose()

    def _beat_once(self) -> None:
        now = time.time()
        with self.sql.begin() as c:
            done = c.execute(sa.update(_workers).where(_workers.c.executor == self.executor).values(beat=now))
            if done.rowcount == 0:
                c.execute(sa.insert(_workers).values(executor=self.executor, host=socket.gethostname(),
                                                     pid=os.getpid(), beat=now))  # fmt: skip

    def _keeper(self) -> None:
        """Beat, and take back the workflows of workers whose lease ran out (one worker claims each dead one)."""
        while not self._stop.wait(self.lease / 4):
            try:
                self._beat_once()
                self.recover_dead()
            except Exception:  # a database hiccup: beat again next time
                continue

    def recover_dead(self) -> list[str]:
        """The executors found dead (lease expired) and claimed by this worker: their PENDING workflows are put
        back on their queues."""
        cutoff = time.time() - self.lease
        with self.sql.connect() as c:
            dead = [r[0] for r in c.execute(sa.select(_workers.c.executor).where(_workers.c.beat < cutoff))]
        claimed = []
        for executor in dead:
            with self.sql.begin() as c:
                gone = c.execute(sa.delete(_workers).where(_workers.c.executor == executor, _workers.c.beat < cutoff))
            if gone.rowcount == 1:
                # DBOS's own recovery of an executor's PENDING workflows (what Conductor calls when a worker is
                # lost); underscored in DBOS 3.4, so billkit pins dbos<4 and a test exercises it
                DBOS._recover_pending_workflows([executor])
                claimed.append(executor)
        return claimed


@dataclass
class _Target:
    """A Receiver's client for an engine: verification by a billkit client, events to :meth:`Engine.deliver`."""

    engine: Engine
    client: AsyncClient

    @property
    def provider(self) -> str:
        return self.client.provider

    def verify_webhook(self, body: bytes, headers: Mapping[str, str], secret: str | Sequence[str]) -> Any:
        return self.client.verify_webhook(body, headers, secret)

    def handle_webhook_event(self, event: Any) -> int:
        return self.engine.deliver(self.client.provider, event)


# -- the steps and workflows (module level: DBOS registers them once, by name) ----------------------------------------


def _row(batch: str, idx: int) -> tuple[Any, Any]:
    sql = _worker().engine.sql
    with sql.connect() as c:
        item = c.execute(sa.select(_items).where(_items.c.batch == batch, _items.c.idx == idx)).one()
        meta = c.execute(sa.select(_batches).where(_batches.c.batch == batch)).one()
    return item, meta


def _write(batch: str, idx: int, **values: Any) -> None:
    with _worker().engine.sql.begin() as c:
        c.execute(sa.update(_items).where(_items.c.batch == batch, _items.c.idx == idx)
                  .values(updated=time.time(), **values))  # fmt: skip


def _record(batch: str, idx: int, stage: Stage) -> str:
    """Write where ``stage`` leaves the item; returns the workflow's next move (done, failed or wait)."""
    if stage.done and stage.error is None:
        bill = stage.value()
        _write(batch, idx, state="done", provider_id=bill.provider_id if bill else stage.id, status=stage.status,
               op_id=stage.id, stage=None, error_type=None, error=None)  # fmt: skip
        return "done"
    if stage.done:
        assert stage.error is not None
        _write(batch, idx, state="failed", provider_id=stage.id, status=stage.status or "failed", op_id=stage.id,
               stage=None, error_type=stage.error[0], error=stage.error[1])  # fmt: skip
        return "failed"
    _write(batch, idx, state="waiting", op_id=stage.id, stage=stage.to_json(), status=stage.status)
    return "wait"


def _error(exc: BaseException) -> tuple[str, str]:
    return type(exc).__name__, str(getattr(exc, "message", exc))


def _again(attempt: int) -> dict[str, Any]:
    return {"next": "again", "delay": min(60.0, 2.0 ** min(attempt, 6))}


@DBOS.step(name="billkit.send")
async def _send_step(batch: str, idx: int) -> dict[str, Any]:
    """Create the item, or find it: a step that starts with an attempt already counted looks the bill up first
    (its earlier run may have reached the provider) and sends again only once the bill is proven absent."""
    item, meta = _row(batch, idx)
    if item.state in TERMINAL:
        return {"next": item.state}
    if item.state == "waiting":
        return {"next": "wait"}
    w = _worker()
    client = w.client(meta.provider, meta.base_url)
    bill = Bill.model_validate_json(item.bill)
    if item.attempts > 0:  # an earlier send may have reached the provider
        settle = client._adapter.reconcile_settle
        if item.first_sent is not None and (left := item.first_sent + settle - time.time()) > 0:
            return {"next": "again", "delay": left}
        try:
            hit = await client.find_existing(bill, since=item.first_sent)
        except BillkitError as exc:
            _write(batch, idx, error_type=_error(exc)[0], error=_error(exc)[1])
            return _again(item.attempts)
        if hit is not None:
            return {"next": _record(batch, idx, durable.found(hit))}
    _write(batch, idx, state="sending", attempts=item.attempts + 1,
           first_sent=item.first_sent if item.first_sent is not None else time.time())  # fmt: skip
    try:
        stage = await durable.send(client, bill)
    except BillkitError as exc:
        kind, message = _error(exc)
        if durable.proves_not_created(exc) and not client._adapter_cls.key_taken(exc):
            _write(batch, idx, state="failed", error_type=kind, error=message)
            return {"next": "failed"}
        _write(batch, idx, error_type=kind, error=message)  # maybe created: looked up before any resend
        return _again(item.attempts + 1)
    return {"next": _record(batch, idx, stage)}


@DBOS.step(name="billkit.give_up")
async def _give_up_step(batch: str, idx: int) -> str:
    item, _ = _row(batch, idx)
    _write(batch, idx, state="unknown", error_type=item.error_type or "OutcomeUnknownError",
           error=item.error or "no look-up could settle it")  # fmt: skip
    return "unknown"


@DBOS.workflow(name=CREATE)
async def _create_workflow(batch: str, idx: int) -> str:
    for _ in range(ROUNDS):
        out = await _send_step(batch, idx)
        if out["next"] == "again":
            await DBOS.sleep_async(float(out["delay"]))
            continue
        if out["next"] == "wait":
            await _start_wait(batch, idx)
        return str(out["next"])
    return await _give_up_step(batch, idx)


def _range(batch: str, first: int, count: int) -> tuple[list[Any], Any]:
    sql = _worker().engine.sql
    with sql.connect() as c:
        q = sa.select(_items).where(_items.c.batch == batch, _items.c.idx >= first, _items.c.idx < first + count)
        items = list(c.execute(q.order_by(_items.c.idx)).all())
        meta = c.execute(sa.select(_batches).where(_batches.c.batch == batch)).one()
    return items, meta


@DBOS.step(name="billkit.send_many")
async def _send_many_step(batch: str, first: int, count: int) -> dict[str, Any]:
    """:func:`_send_step` for a chunk sent as one bulk: the items in doubt looked up together (BILL: one listing
    per vendor), the absent and the fresh sent in one bulk; items a refusal names fail, the others go again."""
    items, meta = _range(batch, first, count)
    open_ = [i for i in items if i.state not in TERMINAL and i.state != "waiting"]
    w = _worker()
    client = w.client(meta.provider, meta.base_url)
    doubt = [i for i in open_ if i.attempts > 0]
    send = [i for i in open_ if i.attempts == 0]
    if doubt:
        sent = [i.first_sent for i in doubt if i.first_sent is not None]
        settle = client._adapter.reconcile_settle
        if sent and (left := max(sent) + settle - time.time()) > 0:
            return {"next": "again", "delay": left}
        try:
            hits = await client.find_existing_many([Bill.model_validate_json(i.bill) for i in doubt],
                                                   since=min(sent) if sent else None)  # fmt: skip
        except BillkitError as exc:
            for i in doubt:
                _write(batch, i.idx, error_type=_error(exc)[0], error=_error(exc)[1])
            return _again(max(i.attempts for i in doubt))
        for i, hit in zip(doubt, hits, strict=True):
            if hit is not None:
                _record(batch, i.idx, durable.found(hit))
            else:
                send.append(i)
    if send:
        send.sort(key=lambda i: i.idx)
        now = time.time()
        with w.engine.sql.begin() as c:  # the intent of every send, before the bulk goes out
            for i in send:
                c.execute(sa.update(_items).where(_items.c.batch == batch, _items.c.idx == i.idx).values(
                    state="sending", attempts=i.attempts + 1, updated=now,
                    first_sent=i.first_sent if i.first_sent is not None else now))  # fmt: skip
        try:
            stages = await durable.send_many(client, [Bill.model_validate_json(i.bill) for i in send])
        except (ValidationError, BulkRejected) as exc:  # refused whole, nothing created: the named items fail
            failed = durable.refused(exc, len(send))
            for pos, i in enumerate(send):
                if pos in failed:
                    _write(batch, i.idx, state="failed", error_type=failed[pos][0], error=failed[pos][1])
                else:  # not sent: back to pending, so the next round sends it without a look-up
                    _write(batch, i.idx, state="pending", attempts=i.attempts)
            return _again(0) if len(failed) < len(send) else {"next": "done", "waits": []}
        except BillkitError as exc:
            kind, message = _error(exc)
            for i in send:
                if durable.proves_not_created(exc):
                    _write(batch, i.idx, state="failed", error_type=kind, error=message)
                else:
                    _write(batch, i.idx, error_type=kind, error=message)  # maybe created: looked up next round
            if durable.proves_not_created(exc):
                return {"next": "done", "waits": []}
            return _again(max(i.attempts for i in send) + 1)
        for i, stage in zip(send, stages, strict=True):
            _record(batch, i.idx, stage)
    items, _ = _range(batch, first, count)
    return {"next": "done", "waits": [i.idx for i in items if i.state == "waiting"]}


@DBOS.step(name="billkit.give_up_many")
async def _give_up_many_step(batch: str, first: int, count: int) -> str:
    items, _ = _range(batch, first, count)
    for i in items:
        if i.state not in TERMINAL and i.state != "waiting":
            _write(batch, i.idx, state="unknown", error_type=i.error_type or "OutcomeUnknownError",
                   error=i.error or "no look-up could settle it")  # fmt: skip
    return "unknown"


async def _start_wait(batch: str, idx: int) -> None:
    with SetWorkflowID(f"{WAIT}:{batch}:{idx}"):
        queue = await DBOS.retrieve_queue_async(WAITS_QUEUE)
        assert queue is not None
        await queue.enqueue_async(_wait_workflow, batch, idx)


@DBOS.workflow(name=CREATE_MANY)
async def _create_many_workflow(batch: str, first: int, count: int) -> str:
    for _ in range(ROUNDS):
        out = await _send_many_step(batch, first, count)
        if out["next"] == "again":
            await DBOS.sleep_async(float(out["delay"]))
            continue
        for idx in out["waits"]:
            await _start_wait(batch, int(idx))
        return "done"
    return await _give_up_many_step(batch, first, count)


@DBOS.step(name="billkit.plan")
async def _plan_step(batch: str, idx: int, polls: int) -> dict[str, Any]:
    """The delay before the next status read: the client's poll policy (backoff with jitter, the server's hint,
    growing with the operation's age), or the end of its deadline."""
    item, meta = _row(batch, idx)
    if item.state != "waiting":
        return {"next": item.state}
    policy: PollPolicy = _worker().client(meta.provider, meta.base_url).poll_policy
    stage = Stage.from_json(item.stage)
    age = time.time() - (item.first_sent or time.time())
    if age >= policy.deadline:
        why = f"still {stage.status or 'pending'} after the poll deadline of {policy.deadline:.0f} s"
        _write(batch, idx, state="unknown", error_type="OperationTimeout", error=why)
        return {"next": "unknown"}
    hint = stage.retry_after if polls > 0 else None
    delay = policy.next_delay(polls + 1, hint, random.Random(f"{batch}:{idx}:{polls}"), age)
    return {"next": "wait", "delay": min(delay, policy.deadline - age)}


@DBOS.step(name="billkit.read")
async def _read_step(batch: str, idx: int, news: str | None) -> str:
    """Apply a webhook's news (a finished operation), or read the status once (any other news only hastens the
    read: an event is read the way a poll of the operation is)."""
    item, meta = _row(batch, idx)
    if item.state != "waiting":
        return str(item.state)
    stage = Stage.from_json(item.stage)
    if news is not None:
        told = Stage.from_json(news)
        if told.done and stage.kind != "watch" and (told.order or 0) >= (stage.order or 0):
            return _record(batch, idx, told)
    w = _worker()
    client = w.client(meta.provider, meta.base_url)
    try:
        async with w.gates[(meta.provider, meta.base_url)]:
            new = await durable.read(client, stage)
    except BillkitError as exc:
        if durable.proves_not_created(exc) and not isinstance(exc, ConfigurationError):
            return _record(batch, idx, Stage(done=True, id=stage.id, error=_error(exc)))
        _write(batch, idx, error_type=_error(exc)[0], error=_error(exc)[1])
        return "wait"  # a failed read: read again later
    return _record(batch, idx, new)


@DBOS.workflow(name=WAIT)
async def _wait_workflow(batch: str, idx: int) -> str:
    polls = 0
    while True:
        plan = await _plan_step(batch, idx, polls)
        if plan["next"] != "wait":
            return str(plan["next"])
        news = await DBOS.recv_async(TOPIC, timeout_seconds=float(plan["delay"]))
        polls += 1 if news is None else 0
        out = await _read_step(batch, idx, news if isinstance(news, str) else None)
        if out != "wait":
            return out

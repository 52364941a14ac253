"""The batch journal: one SQLite file (standard library ``sqlite3``, WAL mode) that holds every item of a batch.

For each input item it holds the bill (with the key that identifies it at the provider pinned into it), then its
state as it moves on::

    pending --claim--> (owned) --intent--> sending --answer--> submitted --result--> done | failed
                                              \\--lost answer--> reconciled by a look-up --> done | pending again
    invalid: a row that could not be read; never sent.   unknown: a look-up could not be made in time.

**The intent is written, and committed, before the request goes out**, so a process killed at any point leaves
either an item never sent (``pending``), one that may have been sent (``sending``: looked up before it is ever
sent again), one the provider accepted (``submitted``, with the resume token of its submission) or a result.

**Claims are transactional** (``BEGIN IMMEDIATE``): a process takes items only when they are pending and
unowned, or owned by a process that is gone (on this machine, a pid that is not alive; anywhere, an owner whose
heartbeat is older than its lease). So several processes can share one journal and none sends an item another
holds.

**Versions**: the file carries ``PRAGMA user_version`` and an ``application_id``. A file of another application, or
of a newer journal format, is refused (:class:`JournalError`); an older format is migrated in one transaction when
it is opened (format 1, which kept the bills in a table of their own, becomes format 2).

**Format 2** keeps each item in one row (its bill inline, written once with the row) and no index beside the
items' own order (every index on a state costs a delete and an insert for each item at each change of state), and
lists each submission's items in the submission's row: a chunk costs one insert per item, two range updates (the
claim with its intent, the submission) and one update per item for its result. A claim scans in idx order from
where this process's last claim ended, and from the start before it answers that nothing is left.
"""

from __future__ import annotations

import json
import os
import socket
import sqlite3
import time
import uuid
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, NamedTuple

from billkit.errors import JournalError

__all__ = ["FORMAT", "STATES", "TERMINAL", "Item", "Journal", "JournalError"]

#: the journal format this billkit writes (``PRAGMA user_version``)
FORMAT = 2
#: ``PRAGMA application_id`` of a billkit journal ("bkj1")
APPLICATION_ID = 0x626B6A31
STATES = ("pending", "sending", "submitted", "done", "failed", "unknown", "invalid")
TERMINAL = frozenset({"done", "failed", "unknown", "invalid"})
_OPEN = "state IN ('pending', 'sending', 'submitted')"

_SCHEMA = """
CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE owners (id TEXT PRIMARY KEY, host TEXT NOT NULL, pid INTEGER NOT NULL, heartbeat REAL NOT NULL);
-- items: the submission's items (their idx, a JSON array), in the order sent: an item's position in it is its
-- position in the submission's result
CREATE TABLE submissions (id INTEGER PRIMARY KEY, token TEXT NOT NULL, created REAL NOT NULL,
                          items TEXT NOT NULL DEFAULT '[]');
CREATE TABLE logins (at REAL NOT NULL);
CREATE TABLE webhook_events (key TEXT PRIMARY KEY, at REAL NOT NULL);
CREATE TABLE items (
    idx INTEGER PRIMARY KEY,          -- the input's position, from 0
    row INTEGER NOT NULL,             -- its row in the source file (1-based), or idx + 1
    key TEXT,                         -- the key that identifies it at the provider
    state TEXT NOT NULL,
    owner TEXT,
    attempts INTEGER NOT NULL DEFAULT 0,
    first_sent REAL,                  -- wall time of the first send (the window a look-up searches)
    submission INTEGER REFERENCES submissions(id),  -- the last submission it was sent in
    provider_id TEXT,
    status TEXT,                      -- the bill's status when done
    error_type TEXT,
    error TEXT,
    result TEXT,                      -- the resulting bill as JSON
    updated REAL NOT NULL,
    bill TEXT                         -- the bill as JSON with its key pinned, written once (NULL when invalid)
);
"""


class Item(NamedTuple):
    """One row of the journal, as the runner reads it."""

    idx: int
    row: int
    key: str | None
    state: str
    attempts: int
    first_sent: float | None
    submission: int | None
    provider_id: str | None
    status: str | None
    error_type: str | None
    error: str | None


_ITEM_COLUMNS = "idx, row, key, state, attempts, first_sent, submission, provider_id, status, error_type, error"


def _span(idxs: Sequence[int]) -> tuple[str, tuple[int, ...]]:
    """A condition selecting exactly the (sorted, distinct) ``idxs``, and its parameters: a range where they are
    consecutive (a chunk, as a rule), else a list."""
    if idxs and idxs[-1] - idxs[0] + 1 == len(idxs):
        return "idx BETWEEN ? AND ?", (idxs[0], idxs[-1])
    return f"idx IN ({','.join('?' * len(idxs))})", tuple(idxs)


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # alive, another user's
        return True
    return True


class Journal:
    """A batch's journal file. ``Journal.create(path, provider=..., ...)`` makes one; ``Journal(path)`` opens one.

    One instance per process (or per thread: it is not shared across threads); each method is one short
    transaction. ``lease``: seconds after which an owner that stopped beating is taken to be gone.
    """

    def __init__(self, path: str | os.PathLike[str], *, lease: float = 60.0, _create: bool = False) -> None:
        self.path = Path(path)
        self.lease = lease
        if not _create and not self.path.exists():
            raise JournalError(f"no journal at {self.path}")
        self._db = sqlite3.connect(self.path, isolation_level=None, timeout=60.0, check_same_thread=False)
        version = FORMAT if _create else self._check_format()  # before writing to what may be somebody else's
        self._db.execute("PRAGMA journal_mode=WAL")
        # NORMAL in WAL mode: a commit survives the process being killed (not a power cut, which FULL would cover)
        self._db.execute("PRAGMA synchronous=NORMAL")
        if version < FORMAT:
            self._migrate()
        self.owner = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:12]}"
        self._registered = False
        #: where the next claim starts scanning (items before it were taken or finished when this process last
        #: looked; a claim that finds nothing from here looks again from the start)
        self._scan_from = 0
        #: bills this process journaled, by idx, so that its own run need not read them back
        self.memo: dict[int, Any] = {}
        #: the wall clock of the provider's time: the time of a send (the window a look-up searches) is read from
        #: it, so a run on a sandbox's virtual clock looks in the sandbox's time. Liveness (heartbeats) stays on
        #: the real clock.
        self.wall: Callable[[], float] = time.time

    # -- creation and format -----------------------------------------------------------------------------------
    @classmethod
    def create(cls, path: str | os.PathLike[str], *, provider: str, seed: str | None = None,
               source: str | None = None, options: dict[str, Any] | None = None, lease: float = 60.0,
               ) -> Journal:  # fmt: skip
        """A new, empty journal at ``path`` (refused if a file is there)."""
        target = Path(path)
        if target.exists():
            raise JournalError(f"{target} exists: resume it, or choose another journal path")
        journal = cls(target, lease=lease, _create=True)
        with journal._write():
            for statement in _SCHEMA.split(";"):
                if statement.strip():
                    journal._db.execute(statement)
            meta = {"format": str(FORMAT), "provider": provider, "seed": seed or uuid.uuid4().hex[:20],
                    "source": source or "", "created": repr(time.time()),
                    "options": json.dumps(options or {}, sort_keys=True)}  # fmt: skip
            journal._db.executemany("INSERT INTO meta VALUES (?, ?)", meta.items())
            journal._db.execute(f"PRAGMA application_id={APPLICATION_ID}")
            journal._db.execute(f"PRAGMA user_version={FORMAT}")
        return journal

    def _check_format(self) -> int:
        try:
            app = self._db.execute("PRAGMA application_id").fetchone()[0]
            version = self._db.execute("PRAGMA user_version").fetchone()[0]
        except sqlite3.DatabaseError as exc:
            self._db.close()
            raise JournalError(f"{self.path} is not a billkit journal ({exc})") from None
        if app != APPLICATION_ID or version > FORMAT or version < 1:
            self._db.close()
        if app != APPLICATION_ID:
            raise JournalError(f"{self.path} is not a billkit journal")
        if version > FORMAT:
            raise JournalError(
                f"{self.path} is a journal of format {version}, written by a newer billkit; this billkit reads "
                f"format {FORMAT} and older. Upgrade billkit to resume it."
            )
        if version < 1:
            raise JournalError(f"{self.path} has journal format {version}, which no billkit wrote")
        return int(version)

    def _migrate(self) -> None:
        """An older format brought to this one, in one transaction (every process opening it waits for it, and
        one that took the lock second finds it done). Format 1 kept the bills in ``inputs`` and indexed every
        item by state and by submission: the bills move into their items, a submission lists its items."""
        try:
            with self._write() as db:
                version = db.execute("PRAGMA user_version").fetchone()[0]
                if version == 1:
                    db.execute("ALTER TABLE items ADD COLUMN bill TEXT")
                    db.execute("UPDATE items SET bill = (SELECT bill FROM inputs WHERE inputs.idx = items.idx)")
                    db.execute("DROP TABLE inputs")
                    db.execute("DROP INDEX IF EXISTS items_state")
                    db.execute("DROP INDEX IF EXISTS items_submission")
                    db.execute("ALTER TABLE submissions ADD COLUMN items TEXT NOT NULL DEFAULT '[]'")
                    for (sub,) in db.execute("SELECT id FROM submissions").fetchall():
                        idxs = [r[0] for r in db.execute(
                            "SELECT idx FROM items WHERE submission = ? ORDER BY idx", (sub,)
                        )]  # fmt: skip
                        db.execute("UPDATE submissions SET items = ? WHERE id = ?", (json.dumps(idxs), sub))
                    db.execute("UPDATE meta SET value = ? WHERE key = 'format'", (str(FORMAT),))
                    db.execute(f"PRAGMA user_version={FORMAT}")
                elif version != FORMAT:
                    raise JournalError(f"{self.path}: journal format {version} cannot be migrated")
        except sqlite3.DatabaseError as exc:
            self._db.close()
            raise JournalError(f"{self.path}: migrating the journal to format {FORMAT} failed ({exc})") from None

    @property
    def meta(self) -> dict[str, str]:
        return dict(self._db.execute("SELECT key, value FROM meta").fetchall())

    @property
    def provider(self) -> str:
        return self.meta["provider"]

    @property
    def seed(self) -> str:
        return self.meta["seed"]

    @property
    def options(self) -> dict[str, Any]:
        loaded: dict[str, Any] = json.loads(self.meta.get("options") or "{}")
        return loaded

    def close(self) -> None:
        with self._write():
            # unfinished items go back; a finished one keeps the owner that finished it (host:pid:run)
            self._db.execute(f"UPDATE items SET owner = NULL WHERE {_OPEN} AND owner = ?", (self.owner,))
            self._db.execute("DELETE FROM owners WHERE id = ?", (self.owner,))
        self._db.close()

    def __enter__(self) -> Journal:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        """One write transaction, taken at once (``BEGIN IMMEDIATE``) so two processes never interleave."""
        self._db.execute("BEGIN IMMEDIATE")
        try:
            yield self._db
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        self._db.execute("COMMIT")

    # -- loading ---------------------------------------------------------------------------------------------
    def add(self, items: Iterable[tuple[int, str | None, str | None, str | None]]) -> int:
        """Append items ``(row, bill json, key, error)``: with an error (or no bill) the item is ``invalid``."""
        now = time.time()
        with self._write() as db:
            start = db.execute("SELECT COALESCE(MAX(idx) + 1, 0) FROM items").fetchone()[0]
            rows = [(start + i, row, key, "pending", None, None, now, bill) if error is None and bill is not None
                    else (start + i, row, key, "invalid", "ValidationError" if error else None, error, now, None)
                    for i, (row, bill, key, error) in enumerate(items)]  # fmt: skip
            db.executemany(
                "INSERT INTO items (idx, row, key, state, error_type, error, updated, bill) VALUES (?,?,?,?,?,?,?,?)",
                rows,
            )
        return len(rows)

    def bill(self, idx: int) -> str | None:
        """The bill of item ``idx``, as JSON with its key pinned (None for an invalid row)."""
        row = self._db.execute("SELECT bill FROM items WHERE idx = ?", (idx,)).fetchone()
        return None if row is None or row[0] is None else str(row[0])

    # -- claims ----------------------------------------------------------------------------------------------
    def heartbeat(self) -> None:
        with self._write() as db:
            db.execute(
                "INSERT INTO owners VALUES (?, ?, ?, ?) ON CONFLICT(id) DO UPDATE SET heartbeat = excluded.heartbeat",
                (self.owner, socket.gethostname(), os.getpid(), time.time()),
            )
        self._registered = True

    def _gone(self, db: sqlite3.Connection) -> list[str]:
        """Owners that are gone: on this host a pid that is not alive, anywhere a heartbeat older than the lease."""
        host, now = socket.gethostname(), time.time()
        gone = []
        for owner, owner_host, pid, beat in db.execute("SELECT id, host, pid, heartbeat FROM owners"):
            if owner == self.owner:
                continue
            if (owner_host == host and not _pid_alive(pid)) or beat < now - self.lease:
                gone.append(owner)
        return gone

    def claim(self, limit: int, *, states: Sequence[str] = ("pending", "sending", "submitted")) -> list[Item]:
        """Take up to ``limit`` unfinished items for this process: unowned ones, and those of owners that are gone
        (with every other unfinished item of their submissions, so a submission is resumed by one process).

        The pending ones are marked ``sending`` in the same transaction (the intent: the caller sends them next);
        the items returned carry the state they had before, which tells the caller what to do with each."""
        if not self._registered:
            self.heartbeat()
        wanted = ",".join("?" * len(states))
        free = "(owner IS NULL OR owner NOT IN (SELECT id FROM owners))"
        with self._write() as db:
            gone = self._gone(db)
            if gone:
                db.executemany("UPDATE items SET owner = NULL WHERE owner = ?", [(g,) for g in gone])
                db.executemany("DELETE FROM owners WHERE id = ?", [(g,) for g in gone])
            query = (f"SELECT {_ITEM_COLUMNS} FROM items WHERE idx >= ? AND state IN ({wanted}) AND {free} "
                     "ORDER BY idx LIMIT ?")  # fmt: skip
            rows = db.execute(query, (self._scan_from, *states, limit)).fetchall()
            if not rows and self._scan_from:
                rows = db.execute(query, (0, *states, limit)).fetchall()
            if not rows:
                return []
            self._scan_from = rows[-1][0] + 1
            subs = sorted({r[6] for r in rows if r[6] is not None})
            if subs:  # the rest of a submission being resumed comes with it
                more: dict[int, Any] = {}
                for sub in subs:
                    members = json.loads(db.execute("SELECT items FROM submissions WHERE id = ?", (sub,)).fetchone()[0])
                    span, params = _span(sorted(members))
                    more.update((r[0], r) for r in db.execute(
                        f"SELECT {_ITEM_COLUMNS} FROM items WHERE {span} AND state = 'submitted' AND submission = ? "
                        f"AND {free}", (*params, sub),
                    ))  # fmt: skip
                more.update((r[0], r) for r in rows)
                rows = [more[i] for i in sorted(more)]
            span, params = _span([r[0] for r in rows])
            # the owner, and the intent of the pending ones (they are sent as soon as this returns), at once; the
            # right-hand sides read the values before the update
            now = self.wall()
            db.execute(
                "UPDATE items SET owner = ?, attempts = attempts + (state = 'pending'), "
                "first_sent = CASE WHEN state = 'pending' THEN COALESCE(first_sent, ?) ELSE first_sent END, "
                "updated = CASE WHEN state = 'pending' THEN ? ELSE updated END, "
                f"state = CASE WHEN state = 'pending' THEN 'sending' ELSE state END WHERE {span}",
                (self.owner, now, now, *params),
            )  # fmt: skip
        return [Item(*r) for r in rows]

    def release(self, idxs: Iterable[int]) -> None:
        """Give back the items of ``idxs`` this process has not finished (a deadline, a cancel)."""
        picked = sorted(set(idxs))
        if not picked:
            return
        span, params = _span(picked)
        with self._write() as db:
            db.execute(f"UPDATE items SET owner = NULL WHERE {_OPEN} AND {span} AND owner = ?", (*params, self.owner))

    def others_active(self) -> bool:
        """Whether another live process owns unfinished items (so this one should wait for them, not stop)."""
        with self._write() as db:
            gone = set(self._gone(db))
            owners = {r[0] for r in db.execute(
                f"SELECT DISTINCT owner FROM items WHERE {_OPEN} AND owner IN (SELECT id FROM owners) AND owner != ?",
                (self.owner,),
            )}  # fmt: skip
        return bool(owners - gone)

    # -- budgets ----------------------------------------------------------------------------------------------
    def take_login(self, now: float, limit: int, window: float) -> float:
        """Record a login at ``now`` if fewer than ``limit`` were recorded in the ``window`` seconds before it
        (returns 0); otherwise record nothing and return how long to wait for the oldest to age out."""
        with self._write() as db:
            db.execute("DELETE FROM logins WHERE at <= ?", (now - window,))
            count, oldest = db.execute("SELECT COUNT(*), MIN(at) FROM logins").fetchone()
            if count < limit:
                db.execute("INSERT INTO logins VALUES (?)", (now,))
                return 0.0
        return float(oldest) + window - now

    # -- webhook deliveries processed (a receiver's de-duplication store) ---------------------------------------
    def seen(self, key: str) -> bool:
        """Whether the webhook event ``key`` was processed (by any process sharing this journal)."""
        return self._db.execute("SELECT 1 FROM webhook_events WHERE key = ?", (key,)).fetchone() is not None

    def mark(self, key: str) -> None:
        """Remember that the webhook event ``key`` was processed."""
        with self._write() as db:
            db.execute("INSERT OR IGNORE INTO webhook_events VALUES (?, ?)", (key, time.time()))

    # -- what happens to an item --------------------------------------------------------------------------------
    def intent(self, idxs: Sequence[int]) -> None:
        """Before a send: the items are ``sending`` (one more attempt; the time of the first send kept)."""
        now = self.wall()
        with self._write() as db:
            db.executemany(
                "UPDATE items SET state = 'sending', attempts = attempts + 1, first_sent = COALESCE(first_sent, ?), "
                "updated = ? WHERE idx = ? AND owner = ?",
                [(now, now, i, self.owner) for i in idxs],
            )

    def submitted(self, idxs: Sequence[int], token: str) -> int:
        """The provider accepted the send of ``idxs`` (in increasing order: the submission's inputs in the order
        sent); ``token`` resumes the submission."""
        picked = list(idxs)
        if picked != sorted(set(picked)):
            raise ValueError("a submission's items are recorded in idx order")
        now = self.wall()
        span, params = _span(picked)
        with self._write() as db:
            cur = db.execute(
                "INSERT INTO submissions (token, created, items) VALUES (?, ?, ?)", (token, now, json.dumps(picked))
            )
            sub = cur.lastrowid
            assert sub is not None
            db.execute(
                f"UPDATE items SET state = 'submitted', submission = ?, updated = ? WHERE {span} AND owner = ?",
                (sub, now, *params, self.owner),
            )
        return sub

    def positions(self, submission: int) -> dict[int, int]:
        """Each item's position among the inputs of ``submission`` (they were sent in idx order).

        Stable while the submission can still be resumed: an item keeps its submission when it is finished or
        sent again alone, and is given another one only after every result of this one was recorded."""
        row = self._db.execute("SELECT items FROM submissions WHERE id = ?", (submission,)).fetchone()
        if row is None:
            raise JournalError(f"{self.path}: submission {submission} is missing")
        return {idx: pos for pos, idx in enumerate(json.loads(row[0]))}

    def token(self, submission: int) -> str:
        row = self._db.execute("SELECT token FROM submissions WHERE id = ?", (submission,)).fetchone()
        if row is None:
            raise JournalError(f"{self.path}: submission {submission} is missing")
        return str(row[0])

    def finish(self, outcomes: Iterable[tuple[int, str, str | None, str | None, str | None, str | None, str | None]],
               ) -> None:  # fmt: skip
        """Record outcomes ``(idx, state, provider_id, status, result json, error type, error)``; a state of
        ``pending`` puts the item back (proven absent, or never sent), keeping its key."""
        now, owner = self.wall(), self.owner
        done, other = [], []
        for idx, state, pid, status, result, etype, error in outcomes:
            if state == "done" and etype is None and error is None:
                done.append((pid, status, result, now, idx, owner))
            else:
                other.append((state, pid, status, result, etype, error, now, state, idx, owner))
        with self._write() as db:
            if done:  # the common case, with fewer columns (the errors of a done item are never set)
                db.executemany(
                    "UPDATE items SET state = 'done', provider_id = ?, status = ?, result = ?, updated = ? "
                    "WHERE idx = ? AND owner = ?", done,
                )  # fmt: skip
            if other:
                db.executemany(
                    "UPDATE items SET state = ?, provider_id = ?, status = ?, result = ?, error_type = ?, error = ?, "
                    "updated = ?, owner = CASE WHEN ? = 'pending' THEN NULL ELSE owner END WHERE idx = ? AND owner = ?",
                    other,
                )

    def reopen(self, states: Sequence[str]) -> int:
        """Put every item in ``states`` (``failed``, ``unknown``) back to ``pending``, keeping its key (so a
        failed item that in fact exists is found, not created twice). Returns how many."""
        marks = ",".join("?" * len(states))
        with self._write() as db:
            cur = db.execute(
                f"UPDATE items SET state = 'pending', error_type = NULL, error = NULL, owner = NULL "
                f"WHERE state IN ({marks})", tuple(states),
            )  # fmt: skip
        return cur.rowcount

    # -- reading ---------------------------------------------------------------------------------------------
    def counts(self) -> dict[str, int]:
        found = dict(self._db.execute("SELECT state, COUNT(*) FROM items GROUP BY state").fetchall())
        return {state: int(found.get(state, 0)) for state in STATES}

    def total(self) -> int:
        return int(self._db.execute("SELECT COUNT(*) FROM items").fetchone()[0])

    def failures(self) -> dict[str, list[int]]:
        """Rows that failed or are unknown, grouped by error (type and message)."""
        groups: dict[str, list[int]] = {}
        for row, state, etype, error in self._db.execute(
            "SELECT row, state, error_type, error FROM items WHERE state IN ('failed', 'unknown', 'invalid') "
            "ORDER BY idx"
        ):
            groups.setdefault(f"{state}: {etype or 'error'}: {error or ''}".strip(), []).append(int(row))
        return groups

    def rows(self) -> Iterator[dict[str, Any]]:
        """Every item, in input order, as the export writes it."""
        cursor = self._db.execute(
            "SELECT idx, row, key, state, provider_id, status, error_type, error, attempts, result FROM items "
            "ORDER BY idx"
        )
        for idx, row, key, state, provider_id, status, etype, error, attempts, result in cursor:
            links = json.loads(result).get("links", {}) if result else {}
            yield {"index": idx, "row": row, "key": key, "state": state, "provider_id": provider_id,
                   "status": status, "error_type": etype, "error": error, "attempts": attempts,
                   "links": links}  # fmt: skip

    def result(self, idx: int) -> str | None:
        row = self._db.execute("SELECT result FROM items WHERE idx = ?", (idx,)).fetchone()
        return None if row is None else row[0]

    def __repr__(self) -> str:
        return f"Journal({str(self.path)!r})"

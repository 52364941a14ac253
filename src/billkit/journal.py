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
of a newer journal format, is refused (:class:`JournalError`); an older format is migrated in one transaction.
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
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from billkit.errors import JournalError

__all__ = ["FORMAT", "STATES", "TERMINAL", "Item", "Journal", "JournalError"]

#: the journal format this billkit writes (``PRAGMA user_version``)
FORMAT = 1
#: ``PRAGMA application_id`` of a billkit journal ("bkj1")
APPLICATION_ID = 0x626B6A31
STATES = ("pending", "sending", "submitted", "done", "failed", "unknown", "invalid")
TERMINAL = frozenset({"done", "failed", "unknown", "invalid"})

_SCHEMA = """
CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE owners (id TEXT PRIMARY KEY, host TEXT NOT NULL, pid INTEGER NOT NULL, heartbeat REAL NOT NULL);
CREATE TABLE submissions (id INTEGER PRIMARY KEY, token TEXT NOT NULL, created REAL NOT NULL);
CREATE TABLE logins (at REAL NOT NULL);
CREATE TABLE webhook_events (key TEXT PRIMARY KEY, at REAL NOT NULL);
-- the bills as JSON, each with its provider key pinned, written once (an invalid row has none), apart from the
-- items, so that the many small updates of an item's state do not rewrite its bill
CREATE TABLE inputs (idx INTEGER PRIMARY KEY, bill TEXT NOT NULL);
CREATE TABLE items (
    idx INTEGER PRIMARY KEY,          -- the input's position, from 0
    row INTEGER NOT NULL,             -- its row in the source file (1-based), or idx + 1
    key TEXT,                         -- the key that identifies it at the provider
    state TEXT NOT NULL,
    owner TEXT,
    attempts INTEGER NOT NULL DEFAULT 0,
    first_sent REAL,                  -- wall time of the first send (the window a look-up searches)
    submission INTEGER REFERENCES submissions(id),  -- its items, in idx order, are the submission's inputs
    provider_id TEXT,
    status TEXT,                      -- the bill's status when done
    error_type TEXT,
    error TEXT,
    result TEXT,                      -- the resulting bill as JSON
    updated REAL NOT NULL
);
CREATE INDEX items_state ON items (state, owner);
CREATE INDEX items_submission ON items (submission);
"""


@dataclass(frozen=True)
class Item:
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


def _item(row: Sequence[Any]) -> Item:
    return Item(*row)


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
        if not _create:
            self._check_format()  # before anything is written to a file that may be somebody else's
        self._db.execute("PRAGMA journal_mode=WAL")
        # NORMAL in WAL mode: a commit survives the process being killed (not a power cut, which FULL would cover)
        self._db.execute("PRAGMA synchronous=NORMAL")
        self.owner = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:12]}"
        self._registered = False
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

    def _check_format(self) -> None:
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
        # format 1 is the first: older formats would be migrated here, in one transaction

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
            self._db.execute(
                "UPDATE items SET owner = NULL WHERE owner = ? AND state IN ('pending', 'sending', 'submitted')",
                (self.owner,),
            )
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
            rows, inputs = [], []
            for i, (row, bill, key, error) in enumerate(items):
                bad = error is not None or bill is None
                rows.append((start + i, row, key, "invalid" if bad else "pending",
                             "ValidationError" if error else None, error, now))  # fmt: skip
                if bill is not None and not bad:
                    inputs.append((start + i, bill))
            db.executemany(
                "INSERT INTO items (idx, row, key, state, error_type, error, updated) VALUES (?,?,?,?,?,?,?)", rows
            )
            db.executemany("INSERT INTO inputs VALUES (?, ?)", inputs)
        return len(rows)

    def bill(self, idx: int) -> str | None:
        """The bill of item ``idx``, as JSON with its key pinned (None for an invalid row)."""
        row = self._db.execute("SELECT bill FROM inputs WHERE idx = ?", (idx,)).fetchone()
        return None if row is None else str(row[0])

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
        marks = ",".join("?" * len(states))
        with self._write() as db:
            gone = self._gone(db)
            if gone:
                db.executemany("UPDATE items SET owner = NULL WHERE owner = ?", [(g,) for g in gone])
                db.executemany("DELETE FROM owners WHERE id = ?", [(g,) for g in gone])
            picked = [r[0] for r in db.execute(
                f"SELECT idx FROM items WHERE (owner IS NULL OR owner NOT IN (SELECT id FROM owners)) "
                f"AND state IN ({marks}) ORDER BY idx LIMIT ?",
                (*states, limit),
            )]  # fmt: skip
            subs = sorted({s[0] for s in db.execute(
                f"SELECT DISTINCT submission FROM items WHERE idx IN ({','.join('?' * len(picked))}) "
                "AND submission IS NOT NULL", picked,
            )}) if picked else []  # fmt: skip
            for sub in subs:
                picked.extend(r[0] for r in db.execute(
                    "SELECT idx FROM items WHERE submission = ? AND state = 'submitted' "
                    "AND (owner IS NULL OR owner NOT IN (SELECT id FROM owners))", (sub,)
                ))  # fmt: skip
            picked = sorted(set(picked))
            if not picked:
                return []
            marks = ",".join("?" * len(picked))
            rows = db.execute(
                f"SELECT {_ITEM_COLUMNS} FROM items WHERE idx IN ({marks}) ORDER BY idx", picked
            ).fetchall()
            db.execute(f"UPDATE items SET owner = ? WHERE idx IN ({marks})", (self.owner, *picked))
            # the intent of the pending ones: they are sent as soon as this returns
            now = self.wall()
            db.execute(
                "UPDATE items SET state = 'sending', attempts = attempts + 1, first_sent = COALESCE(first_sent, ?), "
                f"updated = ? WHERE state = 'pending' AND idx IN ({marks})", (now, now, *picked),
            )  # fmt: skip
        return [_item(r) for r in rows]

    def release(self, idxs: Iterable[int]) -> None:
        """Give back the items of ``idxs`` this process has not finished (a deadline, a cancel)."""
        picked = list(idxs)
        if not picked:
            return
        with self._write() as db:
            db.execute(
                f"UPDATE items SET owner = NULL WHERE owner = ? AND state IN ('pending', 'sending', 'submitted') "
                f"AND idx IN ({','.join('?' * len(picked))})", (self.owner, *picked),
            )  # fmt: skip

    def others_active(self) -> bool:
        """Whether another live process owns unfinished items (so this one should wait for them, not stop)."""
        with self._write() as db:
            gone = set(self._gone(db))
            owners = {r[0] for r in db.execute(
                "SELECT DISTINCT owner FROM items WHERE owner IN (SELECT id FROM owners) AND owner != ? AND state "
                "NOT IN ('done', 'failed', 'unknown', 'invalid')", (self.owner,),
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
        if list(idxs) != sorted(idxs):
            raise ValueError("a submission's items are recorded in idx order")
        now = self.wall()
        with self._write() as db:
            cur = db.execute("INSERT INTO submissions (token, created) VALUES (?, ?)", (token, now))
            sub = cur.lastrowid
            assert sub is not None
            db.execute(
                f"UPDATE items SET state = 'submitted', submission = ?, updated = ? WHERE owner = ? "
                f"AND idx IN ({','.join('?' * len(idxs))})", (sub, now, self.owner, *idxs),
            )  # fmt: skip
        return sub

    def positions(self, submission: int) -> dict[int, int]:
        """Each item's position among the inputs of ``submission`` (they were sent in idx order).

        Stable while the submission can still be resumed: an item keeps its submission when it is finished or
        sent again alone, and is given another one only after every result of this one was recorded."""
        rows = self._db.execute("SELECT idx FROM items WHERE submission = ? ORDER BY idx", (submission,))
        return {idx: pos for pos, (idx,) in enumerate(rows)}

    def token(self, submission: int) -> str:
        row = self._db.execute("SELECT token FROM submissions WHERE id = ?", (submission,)).fetchone()
        if row is None:
            raise JournalError(f"{self.path}: submission {submission} is missing")
        return str(row[0])

    def finish(self, outcomes: Iterable[tuple[int, str, str | None, str | None, str | None, str | None, str | None]],
               ) -> None:  # fmt: skip
        """Record outcomes ``(idx, state, provider_id, status, result json, error type, error)``; a state of
        ``pending`` puts the item back (proven absent, or never sent), keeping its key."""
        now = self.wall()
        with self._write() as db:
            db.executemany(
                "UPDATE items SET state = ?, provider_id = ?, status = ?, result = ?, error_type = ?, error = ?, "
                "updated = ?, owner = CASE WHEN ? = 'pending' THEN NULL ELSE owner END WHERE idx = ? AND owner = ?",
                [(state, pid, status, result, etype, error, now, state, idx, self.owner)
                 for idx, state, pid, status, result, etype, error in outcomes],
            )  # fmt: skip

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

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
it is opened (format 1, which kept the bills in a table of their own, and format 2, which kept each bill in its
item's row, become format 3).

**Format 3** keeps what never changes apart from what does. The bills are written once, in ``blocks`` of up to
:data:`BLOCK` consecutive items (one JSON array of the pinned bills, written by one serializer call, with the
items' keys and source rows beside it); an item's row holds only its state (about 40 bytes, no index beside the
items' own order: every index on a state costs a delete and an insert for each item at each change of state). A
submission lists its items, and when every one of them is done at once their results are written in the
submission's row (one JSON array, in the submission's order) with the items marked ``packed`` by one range
update. So a chunk costs, beside its bills, one range insert of its items and three range updates (the claim with
its intent, the submission, the results). A claim scans in idx order from where this process's last claim ended,
and from the start before it answers that nothing is left.
"""

from __future__ import annotations

import json
import os
import socket
import sqlite3
import time
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, NamedTuple, overload

from pydantic_core import from_json, to_json

from billkit.errors import JournalError

__all__ = ["BLOCK", "FORMAT", "STATES", "TERMINAL", "Fresh", "Item", "Journal", "JournalError"]

#: the journal format this billkit writes (``PRAGMA user_version``)
FORMAT = 3
#: ``PRAGMA application_id`` of a billkit journal ("bkj1")
APPLICATION_ID = 0x626B6A31
#: items per block of bills (a block is read whole when a bill is read back)
BLOCK = 500
STATES = ("pending", "sending", "submitted", "done", "failed", "unknown", "invalid")
TERMINAL = frozenset({"done", "failed", "unknown", "invalid"})
_OPEN = "state IN ('pending', 'sending', 'submitted')"

_ITEMS = """
CREATE TABLE {name} (
    idx INTEGER PRIMARY KEY,          -- the input's position, from 0 (its bill, key and row: in its block)
    state TEXT NOT NULL,
    owner TEXT,
    attempts INTEGER NOT NULL DEFAULT 0,
    first_sent REAL,                  -- wall time of the first send (the window a look-up searches)
    submission INTEGER REFERENCES submissions(id),  -- the last submission it was sent in
    packed INTEGER NOT NULL DEFAULT 0,  -- 1: done, its result is in its submission's results (at its position)
    provider_id TEXT,
    status TEXT,                      -- the bill's status when done
    error_type TEXT,
    error TEXT,
    result TEXT,                      -- the resulting bill's links as JSON (an object with "links")
    updated REAL NOT NULL
)"""

_SCHEMA = """
CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE owners (id TEXT PRIMARY KEY, host TEXT NOT NULL, pid INTEGER NOT NULL, heartbeat REAL NOT NULL);
-- items: the submission's items (their idx, a JSON array), in the order sent: an item's position in it is its
-- position in the submission's result. results: when every item was done at once, a JSON array in that order of
-- [provider id, status, links or null]
CREATE TABLE submissions (id INTEGER PRIMARY KEY, token TEXT NOT NULL, created REAL NOT NULL,
                          items TEXT NOT NULL DEFAULT '[]', results TEXT);
CREATE TABLE logins (at REAL NOT NULL);
CREATE TABLE webhook_events (key TEXT PRIMARY KEY, at REAL NOT NULL);
-- the bills of items first .. first + count - 1, written once: a JSON array of the bills with their keys pinned
-- (null for an invalid row), a JSON array of their keys, and of their source rows (NULL: each row is idx + 1)
CREATE TABLE blocks (first INTEGER PRIMARY KEY, count INTEGER NOT NULL, bills BLOB NOT NULL, keys TEXT NOT NULL,
                     rows TEXT);
""" + _ITEMS.format(name="items")

_INSERT_ITEMS = (
    "WITH RECURSIVE n(i) AS (SELECT ? UNION ALL SELECT i + 1 FROM n WHERE i < ?) "
    "INSERT INTO items (idx, state, updated) SELECT i, 'pending', ? FROM n"
)


class Item(NamedTuple):
    """One item as a claim returns it (its state before the claim)."""

    idx: int
    state: str
    attempts: int
    first_sent: float | None
    submission: int | None


_ITEM_COLUMNS = "idx, state, attempts, first_sent, submission"


class Fresh(Sequence[Item]):
    """What a claim of consecutive pending items never sent returns (the common case): their indexes, each
    :class:`Item` made when read (``Item(idx, "pending", 0, None, None)``), so a chunk holds no object per item."""

    __slots__ = ("span",)

    def __init__(self, span: range) -> None:
        self.span = span

    def __len__(self) -> int:
        return len(self.span)

    @overload
    def __getitem__(self, index: int) -> Item: ...
    @overload
    def __getitem__(self, index: slice) -> list[Item]: ...
    def __getitem__(self, index: int | slice) -> Item | list[Item]:
        if isinstance(index, slice):
            return [Item(idx, "pending", 0, None, None) for idx in self.span[index]]
        return Item(self.span[index], "pending", 0, None, None)

    def __iter__(self) -> Iterator[Item]:
        return (Item(idx, "pending", 0, None, None) for idx in self.span)

    def __eq__(self, other: object) -> bool:
        if isinstance(other, Fresh):
            return self.span == other.span
        return isinstance(other, Sequence) and list(self) == list(other)

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"Fresh({self.span!r})"


class Block(NamedTuple):
    """Consecutive items to append: their bills as one JSON array (``null`` for an invalid row), their keys, their
    source rows (None: ``idx + 1``), and the error of each invalid one, by position."""

    bills: bytes | str
    keys: Sequence[str | None]
    rows: Sequence[int] | None = None
    invalid: Mapping[int, str | None] = {}


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
        #: items this process claimed and has neither finished nor given back (what close and release give back)
        self._held: set[int] = set()
        #: how many times this process made items claimable again (given back, put back, reopened, added): with the
        #: database's data_version, what says whether a claim that found nothing would find something now
        self._freed = 0
        self._found_nothing_at: tuple[int, int] | None = None
        #: bills this process journaled, by idx, as they were given (their keys not pinned), and the key the journal
        #: holds for each: its own run sends them without reading them back
        self.memo: dict[int, Any] = {}
        self.memo_keys: dict[int, str | None] = {}
        #: the wall clock of the provider's time: the time of a send (the window a look-up searches) is read from
        #: it, so a run on a sandbox's virtual clock looks in the sandbox's time. Liveness (heartbeats) stays on
        #: the real clock.
        self.wall: Callable[[], float] = time.time
        # blocks and packed results read back (they never change once written): a few kept, by first idx / id
        self._bills: dict[int, tuple[int, list[Any]]] = {}
        self._labels: dict[int, tuple[int, list[Any], list[Any] | None]] = {}
        self._packed: dict[int, dict[int, list[Any]]] = {}

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
        item by state and by submission: the bills move into their items, a submission lists its items (format
        2). Format 2 kept each bill, key and row in its item's row: they move into blocks, the items keep their
        states (format 3)."""
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
                    version = 2
                if version == 2:
                    self._migrate_2_to_3(db)
                elif version != FORMAT:
                    raise JournalError(f"{self.path}: journal format {version} cannot be migrated")
                db.execute("UPDATE meta SET value = ? WHERE key = 'format'", (str(FORMAT),))
                db.execute(f"PRAGMA user_version={FORMAT}")
        except (sqlite3.DatabaseError, ValueError) as exc:
            self._db.close()
            raise JournalError(f"{self.path}: migrating the journal to format {FORMAT} failed ({exc})") from None

    def _migrate_2_to_3(self, db: sqlite3.Connection) -> None:
        db.execute("ALTER TABLE submissions ADD COLUMN results TEXT")
        db.execute(_SCHEMA[_SCHEMA.index("CREATE TABLE blocks") :].split(";")[0])
        group: list[tuple[int, int, str | None, str | None]] = []

        def flush() -> None:
            if not group:
                return
            first, count = group[0][0], len(group)
            bills = "[" + ",".join(bill if bill is not None else "null" for _, _, _, bill in group) + "]"
            if len(from_json(bills)) != count:  # each a JSON value, or the block is refused whole (never misread)
                raise ValueError(f"the bills of items {first} to {first + count - 1} do not read as {count}")
            rows = [row for _, row, _, _ in group]
            plain = rows == list(range(first + 1, first + count + 1))
            db.execute("INSERT INTO blocks VALUES (?, ?, ?, ?, ?)", (first, count, bills.encode(),
                       json.dumps([key for _, _, key, _ in group]), None if plain else json.dumps(rows)))  # fmt: skip
            group.clear()

        for entry in db.execute("SELECT idx, row, key, bill FROM items ORDER BY idx").fetchall():
            if group and (entry[0] != group[-1][0] + 1 or len(group) >= BLOCK):
                flush()
            group.append(entry)
        flush()
        db.execute(_ITEMS.format(name="items_3"))
        columns = "idx, state, owner, attempts, first_sent, submission, provider_id, status, error_type, error, " \
                  "result, updated"  # fmt: skip
        db.execute(f"INSERT INTO items_3 ({columns}) SELECT {columns} FROM items")
        db.execute("DROP TABLE items")
        db.execute("ALTER TABLE items_3 RENAME TO items")

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
            # unfinished items go back (only this process's claims can be its own); a finished one keeps the owner
            # that finished it (host:pid:run)
            if self._held:
                self._db.execute(f"UPDATE items SET owner = NULL WHERE {_OPEN} AND owner = ?", (self.owner,))
                self._held.clear()
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
    def add_blocks(self, blocks: Iterable[Block]) -> int:
        """Append the items of ``blocks`` (in one transaction), each block's bills written as given; returns how
        many items. A block longer than :data:`BLOCK` is kept whole (it is read whole when a bill is read back)."""
        now = time.time()
        added = 0
        with self._write() as db:
            start = db.execute("SELECT COALESCE(MAX(idx) + 1, 0) FROM items").fetchone()[0]
            for block in blocks:
                count = len(block.keys)
                if not count:
                    continue
                rows = None if block.rows is None else list(block.rows)
                if rows is not None and len(rows) != count:
                    raise ValueError(f"a block of {count} keys has {len(rows)} rows")
                if rows == list(range(start + 1, start + count + 1)):
                    rows = None
                bills = block.bills.encode() if isinstance(block.bills, str) else block.bills
                db.execute("INSERT INTO blocks VALUES (?, ?, ?, ?, ?)", (start, count, bills, to_json(list(block.keys)),
                           None if rows is None else to_json(rows)))  # fmt: skip
                db.execute(_INSERT_ITEMS, (start, start + count - 1, now))
                if block.invalid:
                    db.executemany(
                        "UPDATE items SET state = 'invalid', error_type = ?, error = ? WHERE idx = ?",
                        [("ValidationError" if error else None, error, start + pos)
                         for pos, error in block.invalid.items()],
                    )  # fmt: skip
                start += count
                added += count
        self._freed += 1
        return added

    def add(self, items: Iterable[tuple[int, str | None, str | None, str | None]]) -> int:
        """Append items ``(row, bill json, key, error)``: with an error (or no bill) the item is ``invalid``."""
        listed = list(items)
        invalid = {pos: error for pos, (_, bill, _, error) in enumerate(listed) if error is not None or bill is None}
        bills = "[" + ",".join("null" if pos in invalid else str(bill) for pos, (_, bill, _, _) in enumerate(listed))
        block = Block(bills + "]", [key for _, _, key, _ in listed], [row for row, _, _, _ in listed], invalid)
        return self.add_blocks([block])

    def _block(self, idx: int) -> tuple[int, list[Any]]:
        """The bills of the block holding item ``idx`` (parsed, kept), with the block's first idx."""
        for first, (count, bills) in self._bills.items():
            if first <= idx < first + count:
                return first, bills
        row = self._db.execute(
            "SELECT first, count, bills FROM blocks WHERE first <= ? ORDER BY first DESC LIMIT 1", (idx,)
        ).fetchone()
        if row is None or idx >= row[0] + row[1]:
            raise JournalError(f"{self.path}: item {idx} has no bill")
        first, count, raw = row
        parsed = from_json(raw)
        if not isinstance(parsed, list) or len(parsed) != count:
            raise JournalError(f"{self.path}: the bills of items {first} to {first + count - 1} are damaged")
        if len(self._bills) >= 4:
            self._bills.pop(next(iter(self._bills)))
        self._bills[first] = (count, parsed)
        return first, parsed

    def bill(self, idx: int) -> str | None:
        """The bill of item ``idx``, as JSON with its key pinned (None for an invalid row)."""
        if self._db.execute("SELECT 1 FROM items WHERE idx = ?", (idx,)).fetchone() is None:
            return None
        first, bills = self._block(idx)
        one = bills[idx - first]
        return None if one is None else to_json(one).decode()

    def _label(self, idx: int) -> tuple[int, str | None]:
        """Item ``idx``'s source row and key."""
        block = next(((first, *b) for first, b in self._labels.items() if first <= idx < first + b[0]), None)
        if block is None:
            found = self._db.execute(
                "SELECT first, count, keys, rows FROM blocks WHERE first <= ? ORDER BY first DESC LIMIT 1", (idx,)
            ).fetchone()
            if found is None or idx >= found[0] + found[1]:
                return idx + 1, None
            keys, rows = json.loads(found[2]), json.loads(found[3]) if found[3] is not None else None
            if len(self._labels) >= 4:
                self._labels.pop(next(iter(self._labels)))
            self._labels[found[0]] = (found[1], keys, rows)
            block = (found[0], found[1], keys, rows)
        first, _, keys, rows = block
        return (rows[idx - first] if rows is not None else idx + 1), keys[idx - first]

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

    def claim(self, limit: int, *, states: Sequence[str] = ("pending", "sending", "submitted")) -> Sequence[Item]:
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
            rows = self._candidates(db, query, self._scan_from, states, limit)
            if not rows and self._scan_from:
                # from the start: unless nothing changed since a look from the start found nothing (no commit by
                # another connection, nothing made claimable here, no owner gone)
                mark = (int(db.execute("PRAGMA data_version").fetchone()[0]), self._freed)
                if gone or mark != self._found_nothing_at:
                    rows = self._candidates(db, query, 0, states, limit)
                    self._found_nothing_at = None if rows else mark
            if not rows:
                return []
            if isinstance(rows, Fresh):  # consecutive pending items never sent: nothing else comes with them
                low, high = rows.span[0], rows.span[-1]
                self._scan_from = high + 1
                now = self.wall()
                db.execute(
                    "UPDATE items SET owner = ?, attempts = 1, first_sent = ?, updated = ?, state = 'sending' "
                    "WHERE idx BETWEEN ? AND ?", (self.owner, now, now, low, high),
                )  # fmt: skip
                self._held.update(rows.span)
                return rows
            self._scan_from = rows[-1][0] + 1
            subs = sorted({r[4] for r in rows if r[4] is not None})
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
        self._held.update(r[0] for r in rows)
        return [Item(*r) for r in rows]

    @staticmethod
    def _candidates(db: sqlite3.Connection, query: str, start: int, states: Sequence[str], limit: int,
                    ) -> Fresh | list[Any]:  # fmt: skip
        """The items ``query`` selects from ``start``: counted first, and when they are consecutive pending items
        never sent (the common case) made here rather than read row by row."""
        count, low, high, fresh = db.execute(
            "SELECT COUNT(*), MIN(idx), MAX(idx), TOTAL(state = 'pending' AND attempts = 0 AND first_sent IS NULL "
            f"AND submission IS NULL) FROM ({query})", (start, *states, limit),
        ).fetchone()  # fmt: skip
        if not count:
            return []
        if fresh == count and high - low + 1 == count:
            return Fresh(range(low, high + 1))
        return db.execute(query, (start, *states, limit)).fetchall()

    def release(self, idxs: Iterable[int]) -> None:
        """Give back the items of ``idxs`` this process has not finished (a deadline, a cancel)."""
        picked = sorted(self._held.intersection(idxs))
        if not picked:  # every one finished
            return
        span, params = _span(picked)
        with self._write() as db:
            db.execute(f"UPDATE items SET owner = NULL WHERE {_OPEN} AND {span} AND owner = ?", (*params, self.owner))
        self._held.difference_update(picked)
        self._freed += 1

    def others_active(self) -> bool:
        """Whether another live process owns unfinished items (so this one should wait for them, not stop)."""
        with self._write() as db:
            gone = set(self._gone(db))
            live = [r[0] for r in db.execute("SELECT id FROM owners WHERE id != ?", (self.owner,)) if r[0] not in gone]
            if not live:  # nobody else: no need to read the items
                return False
            marks = ",".join("?" * len(live))
            found = db.execute(f"SELECT 1 FROM items WHERE {_OPEN} AND owner IN ({marks}) LIMIT 1", live).fetchone()
        return found is not None

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
                "INSERT INTO submissions (token, created, items) VALUES (?, ?, ?)", (token, now, to_json(picked))
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
                    "UPDATE items SET state = 'done', packed = 0, provider_id = ?, status = ?, result = ?, "
                    "updated = ? WHERE idx = ? AND owner = ?", done,
                )  # fmt: skip
            if other:
                db.executemany(
                    "UPDATE items SET state = ?, packed = 0, provider_id = ?, status = ?, result = ?, error_type = ?, "
                    "error = ?, updated = ?, owner = CASE WHEN ? = 'pending' THEN NULL ELSE owner END "
                    "WHERE idx = ? AND owner = ?",
                    other,
                )
        back = [o[8] for o in other if o[0] == "pending"]
        if back:
            self._held.difference_update(back)
            self._freed += 1

    def finish_submission(self, submission: int, idxs: Sequence[int], results: Sequence[tuple[str | None,
                          str | None, Mapping[str, str] | None]]) -> None:  # fmt: skip
        """Every item of ``submission`` done at once: ``results`` (``(provider_id, status, links or None)``, one per
        item, in the submission's order: ``idxs``, as :meth:`submitted` recorded them) written in the submission's
        row, and the items marked done (``packed``) by one range update."""
        picked = list(idxs)
        if len(results) != len(picked):
            raise ValueError(f"{len(results)} results for the {len(picked)} items of submission {submission}")
        span, params = _span(picked)
        with self._write() as db:
            row = db.execute("SELECT items FROM submissions WHERE id = ?", (submission,)).fetchone()
            if row is None or json.loads(row[0]) != picked:
                raise JournalError(f"{self.path}: submission {submission} does not hold exactly these items")
            db.execute("UPDATE submissions SET results = ? WHERE id = ?", (to_json(results), submission))
            cur = db.execute(
                "UPDATE items SET state = 'done', packed = 1, provider_id = NULL, status = NULL, result = NULL, "
                f"updated = ? WHERE {span} AND owner = ? AND submission = ?",
                (self.wall(), *params, self.owner, submission),
            )
        if cur.rowcount == len(picked):  # every one finished: nothing of these to give back
            self._held.difference_update(picked)
        self._packed.pop(submission, None)

    def reopen(self, states: Sequence[str]) -> int:
        """Put every item in ``states`` (``failed``, ``unknown``) back to ``pending``, keeping its key (so a
        failed item that in fact exists is found, not created twice). Returns how many."""
        marks = ",".join("?" * len(states))
        with self._write() as db:
            cur = db.execute(
                f"UPDATE items SET state = 'pending', packed = 0, error_type = NULL, error = NULL, owner = NULL "
                f"WHERE state IN ({marks})", tuple(states),
            )  # fmt: skip
        self._freed += 1
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
        for idx, state, etype, error in self._db.execute(
            "SELECT idx, state, error_type, error FROM items WHERE state IN ('failed', 'unknown', 'invalid') "
            "ORDER BY idx"
        ).fetchall():
            groups.setdefault(f"{state}: {etype or 'error'}: {error or ''}".strip(), []).append(
                int(self._label(idx)[0])
            )
        return groups

    def _result_of(self, idx: int, submission: int | None) -> list[Any]:
        """``[provider_id, status, links or None]`` of a packed item, from its submission's results."""
        if submission is None:
            raise JournalError(f"{self.path}: item {idx} is packed without a submission")
        packed = self._packed.get(submission)
        if packed is None:
            row = self._db.execute("SELECT items, results FROM submissions WHERE id = ?", (submission,)).fetchone()
            if row is None or row[1] is None:
                raise JournalError(f"{self.path}: the results of submission {submission} are missing")
            idxs, results = json.loads(row[0]), json.loads(row[1])
            if len(idxs) != len(results):
                raise JournalError(f"{self.path}: the results of submission {submission} are damaged")
            packed = dict(zip(idxs, results, strict=True))
            if len(self._packed) >= 4:
                self._packed.pop(next(iter(self._packed)))
            self._packed[submission] = packed
        if idx not in packed:
            raise JournalError(f"{self.path}: item {idx} is not in submission {submission}")
        return packed[idx]

    def rows(self) -> Iterator[dict[str, Any]]:
        """Every item, in input order, as the export writes it."""
        cursor = self._db.execute(
            "SELECT idx, state, provider_id, status, error_type, error, attempts, result, packed, submission "
            "FROM items ORDER BY idx"
        )
        for idx, state, provider_id, status, etype, error, attempts, result, packed, sub in cursor:
            if packed:
                provider_id, status, links = self._result_of(idx, sub)
                links = links or {}
            else:
                links = json.loads(result).get("links", {}) if result else {}
            row, key = self._label(idx)
            yield {"index": idx, "row": row, "key": key, "state": state, "provider_id": provider_id,
                   "status": status, "error_type": etype, "error": error, "attempts": attempts,
                   "links": links}  # fmt: skip

    def result(self, idx: int) -> str | None:
        """The links of item ``idx``'s bill as JSON (``{"links": ...}``), or None."""
        row = self._db.execute("SELECT result, packed, submission FROM items WHERE idx = ?", (idx,)).fetchone()
        if row is None:
            return None
        if row[1]:
            links = self._result_of(idx, row[2])[2]
            return to_json({"links": links}).decode() if links else None
        return None if row[0] is None else str(row[0])

    def __repr__(self) -> str:
        return f"Journal({str(self.path)!r})"

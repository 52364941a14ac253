"""Durable batches: the journal's states, claims and format checks; runs under faults that leave nothing unknown.

Each run is checked against what the provider's sandbox holds: every input created exactly once, reported done
with the provider id the sandbox gave it; nothing left unknown.
"""

from __future__ import annotations

import datetime as dt
import sqlite3
from collections import Counter
from collections.abc import Sequence
from pathlib import Path

import anyio
import pytest

import billkit
import billkit.batch
from billkit import Address, Bill, Direction, LineItem, Money, Party, Tax
from billkit.clock import VirtualClock
from billkit.journal import FORMAT, Journal, JournalError
from billkit.providers.accepteasy.sandbox import AcceptEasySandbox
from billkit.providers.billcom.sandbox import VENDOR_ACME, VENDOR_GLOBEX, BillcomSandbox
from billkit.providers.facturapi.sandbox import FacturapiSandbox
from billkit.sandboxing import Faults, Sandbox

SIZE = 300
POLL = billkit.PollPolicy(deadline=6 * 3600)


def faults(seed: int) -> Faults:
    """The soak's mix: 10 % 5xx, 5 % 429, 5 % answers lost after the server acted, 2 % slow answers."""
    return Faults(server_error=0.10, rate_limit=0.05, drop_after=0.05, slow=0.02, retry_after=3.0, seed=seed)


def bills_for(provider: str, n: int) -> list[Bill]:
    if provider == "accepteasy":
        return [Bill(reference=f"AE-{i:05d}", description=f"Batch {i}", total=Money(f"{10 + i % 90}.50", "EUR"),
                     counterparty=Party(email=f"payer{i}@example.nl")) for i in range(n)]  # fmt: skip
    if provider == "billcom":
        return [Bill(direction=Direction.PAYABLE, reference=f"INV-{i:05d}", issue_date=dt.date(2026, 12, 1),
                     due_date=dt.date(2027, 1, 1),
                     counterparty=Party(provider_id=VENDOR_ACME if i % 2 else VENDOR_GLOBEX),
                     line_items=(LineItem(description="Parts", unit_price=Money("12.50", "USD")),))
                for i in range(n)]  # fmt: skip
    customer = Party(name="ACME", tax_id="EKU9003173C9", address=Address(postal_code="86991"),
                     provider_options={"tax_system": "601"})  # fmt: skip
    item = LineItem(description="Servicio", unit_price=Money("100.00", "MXN"), taxes=(Tax(type="IVA", rate="0.16"),),
                    provider_options={"product_key": "60131324"})  # fmt: skip
    return [Bill(reference=f"FA-{i:05d}", counterparty=customer, line_items=(item,),
                 provider_options={"payment_form": "03"}) for i in range(n)]  # fmt: skip


def sandbox_for(provider: str, clock: VirtualClock, faulty: Faults | None) -> Sandbox:
    if provider == "accepteasy":
        return AcceptEasySandbox(clock, faulty, bulk_rate=2000.0)
    if provider == "billcom":
        return BillcomSandbox(clock, faulty)
    return FacturapiSandbox(clock, faulty)


def held(box: Sandbox) -> dict[str, list[str]]:
    """Provider ids by business reference, as the sandbox holds them."""
    out: dict[str, list[str]] = {}
    if isinstance(box, AcceptEasySandbox):
        for atid, b in box.bills.items():
            out.setdefault(str(b.get("PaymentReference")), []).append(atid)
    elif isinstance(box, BillcomSandbox):
        for bill_id, b in box.bills.items():
            out.setdefault(str(b["invoice"]["invoiceNumber"]), []).append(bill_id)
    else:
        assert isinstance(box, FacturapiSandbox)
        for inv_id, inv in box.invoices.items():
            out.setdefault(str(inv.get("external_id")), []).append(inv_id)
    return out


def check_against(journal: Journal, bills: Sequence[Bill], box: Sandbox) -> None:
    """Every input held once, reported done with the id the sandbox holds it under."""
    holding = held(box)
    rows = list(journal.rows())
    assert len(rows) == len(bills)
    for bill, row in zip(bills, rows, strict=True):
        ids = holding.get(bill.reference or "", [])
        assert len(ids) == 1, f"{bill.reference}: held {len(ids)} times"
        assert row["state"] == "done", row
        assert row["provider_id"] == ids[0]


async def run_batch(provider: str, tmp_path: Path, *, faulty: Faults | None, n: int = SIZE,
                    ) -> tuple[billkit.batch.Summary, Journal, list[Bill], Sandbox]:  # fmt: skip
    clock = VirtualClock()
    box = sandbox_for(provider, clock, faulty)
    bills = bills_for(provider, n)
    journal = billkit.batch.create(tmp_path / "j", bills, provider=provider)
    async with billkit.AsyncClient(provider, sandbox=box, poll=POLL) as client:
        summary = await billkit.batch.arun(journal, client)
    return summary, journal, bills, box


@pytest.mark.parametrize("provider", ["accepteasy", "billcom", "facturapi"])
def test_a_batch_under_faults_ends_with_every_item_created_once_and_none_unknown(provider: str,
                                                                                 tmp_path: Path) -> None:  # fmt: skip
    mix = faults(11).once("drop_after", match="POST")  # the first send's answer is lost, whatever the dice say
    summary, journal, bills, box = anyio.run(lambda: run_batch(provider, tmp_path, faulty=mix))
    assert summary.counts["done"] == SIZE, summary.failures
    assert summary.ok and summary.finished
    check_against(journal, bills, box)
    assert mix.injected.get("drop_after", 0) >= 1 and sum(mix.injected.values()) > 3
    if provider != "facturapi":  # Facturapi's creates carry their key, so the transport itself sends them again
        assert max(r["attempts"] for r in journal.rows()) >= 2, "some item must have been looked up and sent again"
    else:
        assert len(box.received("POST", "/invoices")) > SIZE
    journal.close()


def test_items_are_keyed_when_journaled_and_the_key_survives_in_the_journal(tmp_path: Path) -> None:
    bills = bills_for("facturapi", 3)
    own = bills[1].model_copy(update={"provider_options": {**bills[1].provider_options, "idempotency_key": "mine"}})
    journal = billkit.batch.create(tmp_path / "j", [bills[0], own, bills[2]], provider="facturapi")
    keys = [r["key"] for r in journal.rows()]
    assert keys[1] == "mine"
    assert keys[0] != keys[2] and all(k.startswith("bk-") for k in (keys[0], keys[2]))
    stored = [Bill.model_validate_json(journal.bill(i.idx) or "") for i in journal.claim(10)]
    assert [b.provider_options["idempotency_key"] for b in stored] == keys
    journal.close()


def test_an_item_left_sending_by_a_dead_process_is_looked_up_not_sent_again(tmp_path: Path) -> None:
    """A process claimed items, wrote the intent, sent, and died before it recorded the answer."""

    async def main() -> None:
        clock = VirtualClock()
        box = AcceptEasySandbox(clock)
        bills = bills_for("accepteasy", 4)
        journal = billkit.batch.create(tmp_path / "j", bills, provider="accepteasy")
        async with billkit.AsyncClient("accepteasy", sandbox=box, poll=POLL) as client:
            claimed = journal.claim(2)
            journal.intent([i.idx for i in claimed])
            for item in claimed:  # sent: the provider created them; the answers never reached the journal
                await client.create(Bill.model_validate_json(journal.bill(item.idx) or ""))
            journal._db.execute("UPDATE owners SET pid = 999999999")  # that process is gone
            journal.owner = "another-process"
            journal._registered = False
            before = len(box.received("POST"))
            summary = await billkit.batch.arun(journal, client)
        assert summary.ok
        check_against(journal, bills, box)
        # the two sent before are found by search, only the other two are created
        assert len(box.received("POST")) - before == 1  # one bulk of the two never sent
        journal.close()

    anyio.run(main)


def test_two_journals_on_one_file_never_claim_the_same_item(tmp_path: Path) -> None:
    first = billkit.batch.create(tmp_path / "j", bills_for("accepteasy", 50), provider="accepteasy")
    second = Journal(tmp_path / "j")
    a = {i.idx for i in first.claim(20)}
    b = {i.idx for i in second.claim(100)}
    assert len(a) == 20 and len(b) == 30 and not a & b
    assert second.claim(10) == []
    assert second.others_active()  # the first still holds its 20 and is alive
    first.close()  # a clean stop gives its items back
    assert {i.idx for i in second.claim(100)} == a
    second.close()


def test_a_file_that_is_not_a_journal_or_is_newer_is_refused(tmp_path: Path) -> None:
    other = tmp_path / "other.db"
    sqlite3.connect(other).execute("CREATE TABLE t (x)").connection.commit()
    with pytest.raises(JournalError, match="not a billkit journal"):
        Journal(other)
    text = tmp_path / "text"
    text.write_text("hello, this is not sqlite at all" * 10)
    with pytest.raises(JournalError, match="not a billkit journal"):
        Journal(text)
    with pytest.raises(JournalError, match="no journal"):
        Journal(tmp_path / "missing")
    billkit.batch.create(tmp_path / "j", bills_for("accepteasy", 1), provider="accepteasy").close()
    db = sqlite3.connect(tmp_path / "j")
    db.execute(f"PRAGMA user_version={FORMAT + 1}")
    db.close()
    with pytest.raises(JournalError, match="newer billkit"):
        Journal(tmp_path / "j")
    with pytest.raises(JournalError, match="exists"):
        billkit.batch.create(tmp_path / "j", [], provider="accepteasy")


def test_a_journal_runs_only_with_its_own_provider(tmp_path: Path) -> None:
    journal = billkit.batch.create(tmp_path / "j", bills_for("accepteasy", 1), provider="accepteasy")

    async def main() -> None:
        async with billkit.AsyncClient("facturapi", sandbox=True) as client:
            await billkit.batch.arun(journal, client)

    with pytest.raises(JournalError, match="accepteasy batch, not facturapi"):
        anyio.run(main)
    journal.close()


def test_a_bill_the_provider_refuses_fails_alone_and_the_rest_are_created(tmp_path: Path) -> None:
    bills = bills_for("accepteasy", 5)
    bills[2] = bills[2].model_copy(update={"description": "x" * 40})  # AcceptEasy takes at most 32 characters

    async def main() -> tuple[billkit.batch.Summary, AcceptEasySandbox]:
        box = AcceptEasySandbox(VirtualClock())
        journal = billkit.batch.create(tmp_path / "j", bills, provider="accepteasy")
        async with billkit.AsyncClient("accepteasy", sandbox=box, poll=POLL) as client:
            summary = await billkit.batch.arun(journal, client)
        journal.close()
        return summary, box

    summary, box = anyio.run(main)
    assert summary.counts["done"] == 4 and summary.counts["failed"] == 1
    [(group, rows)] = summary.failures.items()
    assert rows == [3] and "Description" in group and "32" in group
    assert sorted(held(box)) == sorted(b.reference or "" for i, b in enumerate(bills) if i != 2)


def test_retry_failed_reopens_items_with_their_keys(tmp_path: Path) -> None:
    journal = billkit.batch.create(tmp_path / "j", bills_for("facturapi", 2), provider="facturapi")
    keys = [r["key"] for r in journal.rows()]
    journal._db.execute("UPDATE items SET state = 'failed', error = 'boom'")
    assert journal.reopen(["failed"]) == 2
    assert [r["state"] for r in journal.rows()] == ["pending", "pending"]
    assert [r["key"] for r in journal.rows()] == keys
    journal.close()


def test_the_slots_hold_the_in_flight_limit_across_holders(tmp_path: Path) -> None:
    async def main() -> int:
        one, two = billkit.batch.Slots(tmp_path / "s", 3), billkit.batch.Slots(tmp_path / "s", 3)
        inside = peak = 0

        async def request(slots: billkit.batch.Slots) -> None:
            nonlocal inside, peak
            async with slots.slot():
                inside += 1
                peak = max(peak, inside)
                await anyio.sleep(0.002)
                inside -= 1

        async with anyio.create_task_group() as tg:
            for k in range(20):
                tg.start_soon(request, one if k % 2 else two)
        one.close()
        two.close()
        return peak

    assert anyio.run(main) == 3


def test_a_sandbox_run_keeps_the_sandbox_next_to_the_journal(tmp_path: Path) -> None:
    billkit.batch.create(tmp_path / "j", bills_for("accepteasy", 30), provider="accepteasy").close()
    summary = billkit.batch.run(tmp_path / "j", sandbox=True)
    assert summary.ok
    box = Sandbox.load(billkit.batch.sandbox_path(tmp_path / "j"))
    with Journal(tmp_path / "j") as journal:
        check_against(journal, bills_for("accepteasy", 30), box)
    again = billkit.batch.run(tmp_path / "j", sandbox=True)  # nothing left: no request
    assert again.ok and again.requests == 0
    assert Counter(r["state"] for r in Journal(tmp_path / "j").rows()) == {"done": 30}


def test_logins_are_budgeted_across_the_runs_of_a_journal(tmp_path: Path) -> None:
    """BILL allows 200 logins per devKey per hour: a run that finds 200 in the journal's last hour waits (on the
    sandbox's virtual clock) until the oldest ages out, then logs in and finishes."""
    path = tmp_path / "j"
    billkit.batch.create(path, bills_for("billcom", 4), provider="billcom").close()
    first = billkit.batch.run(path, sandbox=True, chunk=2, workers=1)
    assert first.ok
    box = Sandbox.load(billkit.batch.sandbox_path(path))
    at = box.clock.wall()
    with Journal(path) as journal:
        [(first_login,)] = journal._db.execute("SELECT at FROM logins").fetchall()  # the first run's one login
        assert first_login <= at
        journal._db.executemany("INSERT INTO logins VALUES (?)", [(at,)] * 199)  # 200 in the last hour
        journal._db.execute("UPDATE items SET state = 'sending' WHERE idx = 3")  # in doubt: a look-up, after a login
    second = billkit.batch.run(path, sandbox=True)
    assert second.ok
    after = Sandbox.load(billkit.batch.sandbox_path(path))
    assert after.clock.wall() >= first_login + 3600, "the login must wait until the oldest of the 200 ages out"
    assert isinstance(after, BillcomSandbox) and after.logins == 2


def test_a_refusal_that_names_no_item_fails_the_whole_submission_instead_of_sending_it_forever(tmp_path: Path) -> None:
    async def main() -> billkit.batch.Summary:
        box = BillcomSandbox(VirtualClock())
        journal = billkit.batch.create(tmp_path / "j", bills_for("billcom", 4), provider="billcom")
        async with billkit.AsyncClient("billcom", sandbox=box, poll=POLL) as client:
            real = client.submit_many

            async def refuse(bills: Sequence[Bill], **kwargs: object) -> object:
                raise billkit.BulkRejected("rejected whole", provider="billcom", status_code=400, item_errors={})

            client.submit_many = refuse  # type: ignore[assignment,method-assign]
            with anyio.fail_after(30):
                summary = await billkit.batch.arun(journal, client)
            client.submit_many = real  # type: ignore[method-assign]
        journal.close()
        return summary

    summary = anyio.run(main)
    assert summary.counts["failed"] == 4 and summary.finished
    [(group, rows)] = summary.failures.items()
    assert "rejected whole" in group and rows == [1, 2, 3, 4]


def _pinned(path: Path, bill: Bill) -> Bill:
    """``bill`` as a journal holds it: its SRRID pinned."""
    journal = billkit.batch.create(path, [bill], provider="accepteasy")
    try:
        return Bill.model_validate_json(journal.bill(0) or "")
    finally:
        journal.close()


_FORMAT_1 = """
CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE owners (id TEXT PRIMARY KEY, host TEXT NOT NULL, pid INTEGER NOT NULL, heartbeat REAL NOT NULL);
CREATE TABLE submissions (id INTEGER PRIMARY KEY, token TEXT NOT NULL, created REAL NOT NULL);
CREATE TABLE logins (at REAL NOT NULL);
CREATE TABLE webhook_events (key TEXT PRIMARY KEY, at REAL NOT NULL);
CREATE TABLE inputs (idx INTEGER PRIMARY KEY, bill TEXT NOT NULL);
CREATE TABLE items (idx INTEGER PRIMARY KEY, row INTEGER NOT NULL, key TEXT, state TEXT NOT NULL, owner TEXT,
    attempts INTEGER NOT NULL DEFAULT 0, first_sent REAL, submission INTEGER REFERENCES submissions(id),
    provider_id TEXT, status TEXT, error_type TEXT, error TEXT, result TEXT, updated REAL NOT NULL);
CREATE INDEX items_state ON items (state, owner);
CREATE INDEX items_submission ON items (submission);
"""


def test_a_journal_of_format_1_is_migrated_when_opened_and_runs_to_the_end(tmp_path: Path) -> None:
    """Format 1 (bills in a table of their own, items indexed by state and submission) becomes the current format
    in one transaction when opened: every bill, state, result and submission's order kept, nothing misread."""
    assert FORMAT == 3
    pinned = [_pinned(tmp_path / f"k{i}", b) for i, b in enumerate(bills_for("accepteasy", 4))]
    db = sqlite3.connect(tmp_path / "old", isolation_level=None)
    db.executescript(_FORMAT_1)
    db.executemany("INSERT INTO meta VALUES (?, ?)", [("format", "1"), ("provider", "accepteasy"),
                   ("seed", "s"), ("source", ""), ("created", "0"), ("options", "{}")])  # fmt: skip
    db.execute("INSERT INTO submissions VALUES (7, 'not-a-token', 0)")
    rows = [(0, 1, "k0", "done", None, 1, None, None, "AT-0", "open", None, None, '{"links": {"payment": "u"}}', 0),
            (1, 2, "k1", "submitted", None, 1, 0.0, 7, None, None, None, None, None, 0),
            (2, 3, None, "invalid", None, 0, None, None, None, None, "ValidationError", "bad total", None, 0),
            (3, 4, "k3", "submitted", None, 1, 0.0, 7, None, None, None, None, None, 0),
            (4, 5, "k4", "pending", None, 0, None, None, None, None, None, None, None, 0)]  # fmt: skip
    db.executemany(f"INSERT INTO items VALUES ({','.join('?' * 14)})", rows)
    bills = {0: pinned[0], 1: pinned[1], 3: pinned[2], 4: pinned[3]}
    db.executemany("INSERT INTO inputs VALUES (?, ?)", [(i, b.model_dump_json()) for i, b in bills.items()])
    db.execute("PRAGMA application_id=0x626B6A31")
    db.execute("PRAGMA user_version=1")
    db.close()

    with Journal(tmp_path / "old") as journal:
        assert journal._db.execute("PRAGMA user_version").fetchone()[0] == FORMAT
        assert journal.meta["format"] == str(FORMAT)
        tables = {r[0] for r in journal._db.execute("SELECT name FROM sqlite_master")}
        assert "inputs" not in tables and "items_state" not in tables and "blocks" in tables
        assert [r["key"] for r in journal.rows()] == ["k0", "k1", None, "k3", "k4"]
        for idx, bill in bills.items():
            assert Bill.model_validate_json(journal.bill(idx) or "") == bill
        assert journal.bill(2) is None
        assert journal.positions(7) == {1: 0, 3: 1}
        assert journal.counts() == {"pending": 1, "sending": 0, "submitted": 2, "done": 1, "failed": 0,
                                    "unknown": 0, "invalid": 1}  # fmt: skip
        assert next(journal.rows())["links"] == {"payment": "u"}
    with Journal(tmp_path / "old") as again:  # opened again: nothing left to migrate
        assert again.positions(7) == {1: 0, 3: 1}
        summary = billkit.batch.run(again, sandbox=True, settle=0)
    # the token cannot be read: its items are looked up (absent from a fresh sandbox) and sent again
    assert summary.counts["done"] == 4 and summary.counts["invalid"] == 1, summary.counts


_FORMAT_2 = """
CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE owners (id TEXT PRIMARY KEY, host TEXT NOT NULL, pid INTEGER NOT NULL, heartbeat REAL NOT NULL);
CREATE TABLE submissions (id INTEGER PRIMARY KEY, token TEXT NOT NULL, created REAL NOT NULL,
                          items TEXT NOT NULL DEFAULT '[]');
CREATE TABLE logins (at REAL NOT NULL);
CREATE TABLE webhook_events (key TEXT PRIMARY KEY, at REAL NOT NULL);
CREATE TABLE items (idx INTEGER PRIMARY KEY, row INTEGER NOT NULL, key TEXT, state TEXT NOT NULL, owner TEXT,
    attempts INTEGER NOT NULL DEFAULT 0, first_sent REAL, submission INTEGER REFERENCES submissions(id),
    provider_id TEXT, status TEXT, error_type TEXT, error TEXT, result TEXT, updated REAL NOT NULL, bill TEXT);
"""


def _format_2(path: Path, rows: Sequence[tuple[object, ...]]) -> None:
    db = sqlite3.connect(path, isolation_level=None)
    db.executescript(_FORMAT_2)
    db.executemany("INSERT INTO meta VALUES (?, ?)", [("format", "2"), ("provider", "accepteasy"),
                   ("seed", "s"), ("source", ""), ("created", "0"), ("options", "{}")])  # fmt: skip
    db.execute("INSERT INTO submissions VALUES (7, 'not-a-token', 0, '[1, 3]')")
    db.executemany(f"INSERT INTO items VALUES ({','.join('?' * 15)})", rows)
    db.execute("PRAGMA application_id=0x626B6A31")
    db.execute("PRAGMA user_version=2")
    db.close()


def test_a_journal_of_format_2_is_migrated_when_opened_and_runs_to_the_end(tmp_path: Path) -> None:
    """Format 2 (each bill, key and source row in its item's row) becomes format 3 when opened: the bills, keys
    and rows move into blocks (a gap in the items starts a new block), every state, result and submission's
    order kept; a damaged bill refuses the file instead of being misread."""
    pinned = [_pinned(tmp_path / f"k{i}", b) for i, b in enumerate(bills_for("accepteasy", 5))]
    bills = {0: pinned[0], 1: pinned[1], 3: pinned[2], 4: pinned[3], 9: pinned[4]}
    link = '{"links": {"payment": "u"}}'
    text = {idx: bill.model_dump_json() for idx, bill in bills.items()}
    rows = [(0, 2, "k0", "done", "gone", 1, None, None, "AT-0", "open", None, None, link, 0, text[0]),
            (1, 3, "k1", "submitted", None, 1, 0.0, 7, None, None, None, None, None, 0, text[1]),
            (2, 5, None, "invalid", None, 0, None, None, None, None, "ValidationError", "bad total", None, 0, None),
            (3, 6, "k3", "submitted", None, 1, 0.0, 7, None, None, None, None, None, 0, text[3]),
            (4, 7, "k4", "pending", None, 0, None, None, None, None, None, None, None, 0, text[4]),
            (9, 12, "k9", "failed", None, 2, 0.0, None, None, None, "APIError", "no", None, 0, text[9])]  # fmt: skip
    _format_2(tmp_path / "old", rows)

    with Journal(tmp_path / "old") as journal:
        assert journal._db.execute("PRAGMA user_version").fetchone()[0] == FORMAT == 3
        assert journal.meta["format"] == "3"
        blocks = journal._db.execute("SELECT first, count FROM blocks ORDER BY first").fetchall()
        assert blocks == [(0, 5), (9, 1)]
        columns = {r[1] for r in journal._db.execute("PRAGMA table_info(items)")}
        assert "bill" not in columns and "key" not in columns and "packed" in columns
        for idx, bill in bills.items():
            assert Bill.model_validate_json(journal.bill(idx) or "") == bill
        assert journal.bill(2) is None and journal.bill(5) is None
        assert journal.positions(7) == {1: 0, 3: 1}
        exported = list(journal.rows())
        assert [(r["index"], r["row"], r["key"], r["state"]) for r in exported] == [
            (0, 2, "k0", "done"), (1, 3, "k1", "submitted"), (2, 5, None, "invalid"), (3, 6, "k3", "submitted"),
            (4, 7, "k4", "pending"), (9, 12, "k9", "failed")]  # fmt: skip
        assert exported[0]["links"] == {"payment": "u"} and exported[0]["provider_id"] == "AT-0"
        assert journal.result(0) == link
        assert journal.failures() == {"invalid: ValidationError: bad total": [5], "failed: APIError: no": [12]}
        assert journal.counts() == {"pending": 1, "sending": 0, "submitted": 2, "done": 1, "failed": 1,
                                    "unknown": 0, "invalid": 1}  # fmt: skip
    with Journal(tmp_path / "old") as again:  # opened again: nothing left to migrate
        assert again._db.execute("SELECT COUNT(*) FROM blocks").fetchone()[0] == 2
        summary = billkit.batch.run(again, sandbox=True, settle=0)
    assert summary.counts["done"] == 4 and summary.counts["invalid"] == 1 and summary.counts["failed"] == 1

    damaged = [(0, 1, "k0", "pending", None, 0, None, None, None, None, None, None, None, 0, '{"reference": "x"')]
    _format_2(tmp_path / "bad", damaged)
    with pytest.raises(JournalError, match="migrating the journal to format 3 failed"):
        Journal(tmp_path / "bad")
    db = sqlite3.connect(tmp_path / "bad")  # refused whole: still format 2, nothing half-migrated
    assert db.execute("PRAGMA user_version").fetchone()[0] == 2
    assert db.execute("SELECT bill FROM items").fetchone()[0] == '{"reference": "x"'
    db.close()


def test_a_submission_done_whole_keeps_its_results_in_one_row_and_reads_like_items(tmp_path: Path) -> None:
    """The results of a submission whose every item is done are one row; export, result and failures read them as
    per-item results, and a later per-item result of one of its items is the one read."""
    bills = bills_for("accepteasy", 7)
    entries: list[tuple[int, Bill | None, str | None]] = [(10 + i, b, None) for i, b in enumerate(bills)]
    entries[5] = (15, None, "bad total")
    journal = billkit.batch.create(tmp_path / "j", entries, provider="accepteasy")
    claimed = journal.claim(3)
    sub = journal.submitted([i.idx for i in claimed], "token")
    with pytest.raises(JournalError, match="exactly these items"):
        journal.finish_submission(sub, [0, 1], [("A", "open", None)] * 2)
    journal.finish_submission(sub, [0, 1, 2], [("AT-0", "open", {"payment": "u0"}), ("AT-1", "open", None),
                                              ("AT-2", "paid", {"payment": "u2"})])  # fmt: skip
    assert journal._db.execute("SELECT COUNT(*) FROM items WHERE packed = 1").fetchone()[0] == 3
    exported = list(journal.rows())
    assert [(r["row"], r["state"], r["provider_id"], r["status"], r["links"]) for r in exported[:3]] == [
        (10, "done", "AT-0", "open", {"payment": "u0"}), (11, "done", "AT-1", "open", {}),
        (12, "done", "AT-2", "paid", {"payment": "u2"})]  # fmt: skip
    assert exported[5]["state"] == "invalid" and exported[5]["row"] == 15
    assert journal.result(0) == '{"links":{"payment":"u0"}}' and journal.result(1) is None
    assert journal.failures() == {"invalid: ValidationError: bad total": [15]}
    journal.finish([(1, "done", "AT-1b", "open", '{"links": {"payment": "v"}}', None, None)])
    assert next(r for r in journal.rows() if r["index"] == 1)["provider_id"] == "AT-1b"
    assert journal.result(1) == '{"links": {"payment": "v"}}'
    journal.close()


def test_accepteasy_pin_key_copies_like_model_copy() -> None:
    """AcceptEasy's pin_key (a shallow copy, not ``model_copy``) keeps its contract: the returned bill carries the
    SRRID in provider_options, the original is untouched, and the copy is what ``model_copy`` would have made."""
    from billkit.providers.accepteasy.client import AcceptEasyAdapter

    bill = Bill(reference="INV-1", description="x", total=Money("10.50", "EUR"), provider_options={"Note": "n"})
    pinned, key = AcceptEasyAdapter.pin_key(bill, "seed", 26)
    assert key == "bk-seed-1a"
    assert dict(pinned.provider_options) == {"Note": "n", "SRRID": key}
    assert dict(bill.provider_options) == {"Note": "n"} and "SRRID" not in bill.model_dump_json()
    assert pinned == bill.model_copy(update={"provider_options": {"Note": "n", "SRRID": key}})
    assert pinned.model_fields_set == bill.model_fields_set | {"provider_options"}
    assert Bill.model_validate_json(pinned.model_dump_json(exclude_unset=True)) == pinned
    assert pinned.total is bill.total  # shared, as model_copy shares them
    again, same = AcceptEasyAdapter.pin_key(pinned, "other", 3)  # a bill's own SRRID is kept
    assert again is pinned and same == key

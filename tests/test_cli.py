"""The ``billkit`` command on the built-in sandboxes: run, status, export, resume, retry-failed; bad files refused
with the row and the field; exit codes as docs/cli.md gives them."""

from __future__ import annotations

import csv
import io
import json
import os
import shutil
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest
from typer.testing import CliRunner

from billkit.batch import sandbox_path
from billkit.cli import EXIT_DONE, EXIT_FAILED, EXIT_REFUSED, EXIT_UNFINISHED, app
from billkit.journal import Journal
from billkit.providers.accepteasy.sandbox import AcceptEasySandbox
from billkit.sandboxing import Sandbox

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / "examples" / "data"
runner = CliRunner()
AE_HEADER = "reference,description,total,currency,counterparty_email\n"


def billkit(*args: str | Path) -> tuple[int, str]:
    result = runner.invoke(app, [str(a) for a in args])
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    return result.exit_code, result.output  # stdout and stderr, as a terminal shows them


def write(tmp_path: Path, name: str, text: str | bytes) -> Path:
    path = tmp_path / name
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text, encoding="utf-8")
    return path


@pytest.mark.parametrize("provider", ["accepteasy", "billcom", "facturapi"])
def test_run_creates_every_row_of_the_example_file_and_export_accounts_for_each(provider: str, tmp_path: Path) -> None:
    source = shutil.copy(DATA / f"{provider}.csv", tmp_path / f"{provider}.csv")
    code, output = billkit("run", source, "--provider", provider, "--sandbox")
    assert code == EXIT_DONE, output
    journal = Path(f"{source}.journal")
    assert "20 done" in output
    code, exported = billkit("export", journal)
    rows = list(csv.DictReader(io.StringIO(exported)))
    assert [r["row"] for r in rows] == [str(n) for n in range(1, 21)]
    assert {r["state"] for r in rows} == {"done"} and all(r["provider_id"] for r in rows)
    box = Sandbox.load(sandbox_path(journal))
    ids = {r["provider_id"] for r in rows}
    held = set(getattr(box, "bills", None) or getattr(box, "invoices", {}))
    assert ids <= held and len(ids) == 20
    code, again = billkit("run", source, "--provider", provider, "--sandbox")
    assert code == EXIT_REFUSED and "resume" in again


def test_export_as_jsonl_to_a_file_and_status_by_state(tmp_path: Path) -> None:
    source = write(
        tmp_path, "bills.csv", AE_HEADER + "A-1,One,10.00,EUR,a@example.nl\nA-2,Two,12.50,EUR,b@example.nl\n"
    )
    assert billkit("run", source, "-p", "accepteasy", "--sandbox")[0] == EXIT_DONE
    journal = tmp_path / "bills.csv.journal"
    code, _ = billkit("export", journal, "--format", "jsonl", "-o", tmp_path / "out.jsonl")
    lines = [json.loads(x) for x in (tmp_path / "out.jsonl").read_text().splitlines()]
    assert code == 0 and [x["state"] for x in lines] == ["done", "done"] and lines[0]["key"].startswith("bk-")
    code, shown = billkit("status", journal)
    assert code == EXIT_DONE and "done" in shown and "2" in shown


@pytest.mark.parametrize(
    ("name", "text", "expected"),
    [
        ("missing-column.csv", "reference,description,total,currency\nA-1,One,10.00,EUR\n", "counterparty_email"),
        ("empty.csv", "", "no rows"),
        ("not-csv.csv", b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00", "not"),
        ("option.csv", AE_HEADER.strip() + ",provider_options.Bogus\nA-1,One,10.00,EUR,a@example.nl,x\n", "Bogus"),
    ],
)
def test_a_file_that_cannot_be_read_is_refused_whole_and_nothing_is_sent(
    tmp_path: Path, name: str, text: str | bytes, expected: str
) -> None:
    source = write(tmp_path, name, text)
    code, output = billkit("run", source, "-p", "accepteasy", "--sandbox")
    assert code == EXIT_REFUSED
    assert expected in output and "error" in output
    assert not Path(f"{source}.journal").exists()


def test_bad_rows_are_reported_by_row_and_field_and_the_rest_still_runs(tmp_path: Path) -> None:
    misplaced = write(tmp_path, "comma.csv", AE_HEADER + "A-1,One,10.00,EUR,a@example.nl\nA-2,Two,12,50,EUR,b@nl.nl\n")
    code, output = billkit("run", misplaced, "-p", "accepteasy", "--sandbox")  # '12,50': one field too many
    assert code == EXIT_REFUSED and "row 2 has 6 fields" in output
    source = write(tmp_path, "bills.csv", AE_HEADER + "A-1,One,10.00,EUR,a@example.nl\n"
                   "A-3,Three,abc,EUR,c@example.nl\n"
                   "A-4,Four,10.005,EUR,d@example.nl\n"
                   "A-5,Five,9.99,EUR,e@example.nl\n")  # fmt: skip
    code, output = billkit("run", source, "-p", "accepteasy", "--sandbox")
    assert code == EXIT_FAILED, output
    assert "row 2, total" in output and "row 3, total" in output  # 'abc'; 3 decimals in EUR
    assert "decimal" in output.lower()
    with Journal(tmp_path / "bills.csv.journal") as journal:
        states = [r["state"] for r in journal.rows()]
    assert states == ["done", "invalid", "invalid", "done"]
    box = Sandbox.load(sandbox_path(tmp_path / "bills.csv.journal"))
    assert isinstance(box, AcceptEasySandbox)
    assert Counter(str(b.get("PaymentReference")) for b in box.bills.values()) == {"A-1": 1, "A-5": 1}


def test_all_or_nothing_sends_nothing_when_a_row_is_bad(tmp_path: Path) -> None:
    source = write(tmp_path, "bills.csv", AE_HEADER + "A-1,One,10.00,EUR,a@example.nl\nA-2,Two,,EUR,b@example.nl\n")
    code, output = billkit("run", source, "-p", "accepteasy", "--sandbox", "--all-or-nothing")
    assert code == EXIT_REFUSED and "row 2" in output and "nothing sent" in output
    assert not (tmp_path / "bills.csv.journal").exists()


def test_an_unknown_provider_and_a_missing_journal_are_refused(tmp_path: Path) -> None:
    source = write(tmp_path, "bills.csv", AE_HEADER + "A-1,One,10.00,EUR,a@example.nl\n")
    code, output = billkit("run", source, "-p", "stripe", "--sandbox")
    assert code == EXIT_REFUSED and "unknown provider" in output
    for command in ("resume", "status", "export", "retry-failed"):
        code, output = billkit(command, tmp_path / "nope.journal")
        assert code == EXIT_REFUSED and "no journal" in output


def test_resume_finishes_what_a_stopped_run_left_and_retry_failed_reopens_with_the_same_keys(tmp_path: Path) -> None:
    source = write(tmp_path, "bills.csv", AE_HEADER + "".join(
        f"A-{i},Bill {i},{10 + i}.00,EUR,p{i}@example.nl\n" for i in range(30)))  # fmt: skip
    assert billkit("run", source, "-p", "accepteasy", "--sandbox")[0] == EXIT_DONE
    journal = tmp_path / "bills.csv.journal"
    with Journal(journal) as j:  # as if the run had stopped: 10 items back to pending, 5 failed, 3 unknown
        j._db.execute("UPDATE items SET state = 'pending' WHERE idx < 10")
        j._db.execute("UPDATE items SET state = 'failed', error = 'boom' WHERE idx BETWEEN 10 AND 14")
        j._db.execute("UPDATE items SET state = 'unknown' WHERE idx BETWEEN 15 AND 17")
    code, output = billkit("status", journal)
    assert code == EXIT_UNFINISHED and "boom" in output
    code, output = billkit("resume", journal)
    assert code == EXIT_UNFINISHED  # the failed and unknown ones are left for retry-failed
    code, output = billkit("retry-failed", journal)
    assert code == EXIT_DONE and "8 items reopened" in output
    box = Sandbox.load(sandbox_path(journal))
    assert isinstance(box, AcceptEasySandbox)
    held = Counter(str(b.get("PaymentReference")) for b in box.bills.values())
    assert held == Counter({f"A-{i}": 1 for i in range(30)}), "each found by its SRRID, none created twice"


def test_the_console_script_runs_and_billkit_never_imports_the_cli(tmp_path: Path) -> None:
    source = write(tmp_path, "bills.csv", AE_HEADER + "A-1,One,10.00,EUR,a@example.nl\n")
    script = Path(sys.executable).with_name("billkit")
    command = [str(script)] if script.exists() else [sys.executable, "-m", "billkit.cli"]
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    done = subprocess.run([*command, "run", str(source), "-p", "accepteasy", "--sandbox"], capture_output=True,
                          text=True, env=env, timeout=120)  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "1 done" in done.stderr and "1/1" in done.stderr  # plain progress lines when not on a terminal
    # httpx itself imports rich and click when they are installed (for its own command): only what billkit adds
    probe = (
        "import sys, httpx; before = set(sys.modules); import billkit, billkit.batch, billkit.batchfile, "
        "billkit.webhooks; added = {m.split('.')[0] for m in set(sys.modules) - before}; "
        "print(sorted({'typer', 'rich', 'click', 'flask', 'django', 'starlette'} & added))"
    )
    light = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, env=env, timeout=60)
    assert light.stdout.strip() == "[]", light.stderr


def test_export_carries_the_links_of_each_created_bill(tmp_path: Path) -> None:
    source = write(tmp_path, "bills.csv", AE_HEADER + "A-1,One,10.00,EUR,a@example.nl\n")
    assert billkit("run", source, "-p", "accepteasy", "--sandbox")[0] == EXIT_DONE
    _, exported = billkit("export", tmp_path / "bills.csv.journal")
    [row] = list(csv.DictReader(io.StringIO(exported)))
    assert row["provider_id"] and row["provider_id"] in json.loads(row["links"])["location"]


# -- the DBOS engine ---------------------------------------------------------------------------------------------
def test_run_with_the_dbos_engine_enqueues_the_good_rows_and_status_and_export_read_them(tmp_path: Path) -> None:
    pytest.importorskip("dbos")
    database = f"sqlite:///{tmp_path / 'dbos.sqlite'}"
    from billkit.contrib.dbos import sqlite_problem

    if sqlite_problem(database):
        pytest.skip(str(sqlite_problem(database)))
    source = tmp_path / "bills.csv"
    shutil.copy(DATA / "accepteasy.csv", source)
    with source.open("a", encoding="utf-8") as f:
        f.write("BAD-1,x,a@example.nl,not-money,EUR\n")
    code, output = billkit("run", source, "-p", "accepteasy", "--engine", "dbos", "--database", database,
                           "--batch", "month-end", "--no-wait")  # fmt: skip
    assert code == EXIT_DONE, output
    assert "enqueued as batch month-end" in output and "bad rows, not sent" in output
    good = sum(1 for _ in csv.DictReader((DATA / "accepteasy.csv").open(encoding="utf-8")))
    code, output = billkit("status", "--database", database, "--batch", "month-end")
    assert code == EXIT_UNFINISHED, output
    assert any(line.split()[1:4:2] == ["pending", str(good)] for line in output.splitlines() if "pending" in line)
    code, output = billkit("export", "--database", database, "--batch", "month-end", "--format", "jsonl")
    rows = [json.loads(line) for line in output.splitlines() if line.startswith("{")]
    assert [r["idx"] for r in rows] == list(range(good)) and {r["state"] for r in rows} == {"pending"}


def test_the_dbos_engine_needs_a_database_and_workers_known_providers(tmp_path: Path) -> None:
    code, output = billkit("run", DATA / "accepteasy.csv", "-p", "accepteasy", "--engine", "dbos")
    assert code == EXIT_REFUSED and "--database" in output
    code, output = billkit("worker", "--database", "sqlite:///x.sqlite", "--provider", "paypal")
    assert code == EXIT_REFUSED and "unknown provider 'paypal'" in output

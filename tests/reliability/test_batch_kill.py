"""The ``billkit`` command killed with SIGKILL at random points of a run, resumed each time: every row created once.

For each provider, the sandbox runs in this test's process, served over HTTP on 127.0.0.1 (so its state outlives
the killed processes, as a real provider's would), with a few faults (answers lost after the server acted, 5xx).
``billkit run FILE`` starts; each time the server has seen a random number of further requests the process is
killed with SIGKILL, at whatever point of the protocol it is (between the intent and the send, mid-bulk, while
polling, while reconciling), and ``billkit resume J`` goes on. After the last kill a resume runs to the end. Then
every row must be held by the server exactly once and exported as done with the id the server holds it under.

Sizes: ``make soak`` (``BILLKIT_SOAK=full``) 5,000 rows and 20 kills per provider; ``make test`` 300 rows and 3
kills. Real time (processes cannot share a virtual clock); the test waits on the server's request count, never
on a fixed sleep. BILL runs with ``--settle 0``: the served sandbox lists a bill as soon as it is created.
"""

from __future__ import annotations

import csv
import json
import os
import random
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from pathlib import Path

import pytest

import billkit.batch
from billkit.batchfile import read_bills
from billkit.client import adapter_class
from billkit.clock import SystemClock
from billkit.journal import Journal
from billkit.providers.accepteasy.sandbox import AcceptEasySandbox
from billkit.providers.billcom.sandbox import VENDOR_ACME, VENDOR_GLOBEX, BillcomSandbox
from billkit.providers.facturapi.sandbox import FacturapiSandbox
from billkit.sandboxing import Faults, Sandbox
from billkit.testing.served import serve
from tests.test_batch import held

pytestmark = pytest.mark.soak
FULL = os.environ.get("BILLKIT_SOAK") == "full"
ROWS = 5_000 if FULL else 300
KILLS = 20 if FULL else 3
ROOT = Path(__file__).resolve().parents[2]


def write_file(provider: str, path: Path, n: int) -> list[str]:
    """``n`` rows for ``provider``; returns their references (Facturapi: external_id; BILL: invoice number)."""
    refs = []
    with path.open("w", newline="") as fh:
        out = csv.writer(fh)
        if provider == "accepteasy":
            out.writerow(["reference", "description", "total", "currency", "counterparty_email"])
            for i in range(n):
                refs.append(f"K-AE-{i:05d}")
                out.writerow([refs[-1], f"Kill {i}", f"{10 + i % 90}.{i % 100:02d}", "EUR", f"p{i}@example.nl"])
        elif provider == "billcom":
            out.writerow(["reference", "counterparty_id", "issue_date", "due_date", "currency", "line_items"])
            for i in range(n):
                refs.append(f"K-INV-{i:05d}")
                lines = json.dumps([{"description": "Parts", "quantity": "1", "unit_price": f"{5 + i % 50}.25"}])
                out.writerow([refs[-1], VENDOR_ACME if i % 2 else VENDOR_GLOBEX, "2026-12-01", "2027-01-15", "USD",
                              lines])  # fmt: skip
        else:
            header = ["reference", "counterparty_name", "counterparty_tax_id", "counterparty_zip", "currency",
                      "line_items", "provider_options.payment_form"]  # fmt: skip
            header.append("counterparty.provider_options.tax_system")
            out.writerow(header)
            for i in range(n):
                refs.append(f"K-FA-{i:05d}")
                lines = json.dumps([{"description": "Servicio", "unit_price": "100.00",
                                     "taxes": [{"type": "IVA", "rate": "0.16"}],
                                     "provider_options": {"product_key": "60131324"}}])  # fmt: skip
                out.writerow([refs[-1], "ESCUELA KEMPER URGATE", "EKU9003173C9", "42501", "MXN", lines, "03", "601"])
    return refs


def sandbox(provider: str) -> Sandbox:
    lost = Faults(drop_after=0.03, server_error=0.03, seed=17)
    if provider == "accepteasy":
        return AcceptEasySandbox(SystemClock(), lost, bulk_delay=0.2, bulk_rate=5000.0)
    if provider == "billcom":
        return BillcomSandbox(SystemClock(), lost)
    return FacturapiSandbox(SystemClock(), lost, async_delay=0.1)


def environment(provider: str, box: Sandbox) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ACCEPTEASY_", "FACTURAPI_", "BILL_"))}
    for cred in adapter_class(provider).credentials:
        value = box.credentials.get(cred.name)
        if value:
            env[cred.env] = value
    env["PYTHONPATH"] = str(ROOT / "src")
    return env


def command(*args: str) -> list[str]:
    script = Path(sys.executable).with_name("billkit")
    return [str(script), *args] if script.exists() else [sys.executable, "-m", "billkit.cli", *args]


@pytest.mark.parametrize("provider", ["accepteasy", "billcom", "facturapi"])
def test_the_cli_killed_at_random_points_and_resumed_creates_every_row_exactly_once(provider: str,
                                                                                   tmp_path: Path) -> None:  # fmt: skip
    box = sandbox(provider)
    source = tmp_path / f"{provider}.csv"
    refs = write_file(provider, source, ROWS)
    journal = tmp_path / "run.journal"
    seen = Counter[str]()
    lock = threading.Lock()

    def count(method: str, path: str) -> bool:
        with lock:
            seen["requests"] += 1
        return False

    seed = int(os.environ.get("BILLKIT_KILL_SEED", "20261203"))
    rng = random.Random(f"{seed}-{provider}")
    kills = 0
    env = environment(provider, box)
    with serve(box, hold=count, release=threading.Event()) as running:
        url = running.url
        # small chunks, so that a run is many submissions and a kill can land in the middle of one
        chunk = {"accepteasy": 25 if not FULL else 100, "billcom": 20 if not FULL else 100, "facturapi": 50}[provider]
        args = ["run", str(source), "-p", provider, "--base-url", url, "--journal", str(journal), "--settle", "0",
                "--chunk", str(chunk)]  # fmt: skip
        # requests a whole run makes, about (a bulk and its polls; an invoice create and its read): the kill points
        # are spread over all of it
        requests = {"accepteasy": 3 * ROWS // chunk, "billcom": 2 * ROWS // chunk, "facturapi": 2 * ROWS}[provider]
        span = max(2, requests // (KILLS + 2))  # half the run on average: every kill lands before it ends
        while kills < KILLS:
            proc = subprocess.Popen(command(*args), env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
            with lock:
                target = seen["requests"] + rng.randint(1, span)
            deadline = time.monotonic() + 300
            while proc.poll() is None and seen["requests"] < target:
                assert time.monotonic() < deadline, "the run made no progress"
                time.sleep(0.001)
            if proc.poll() is not None:  # it finished before the kill point
                _, err = proc.communicate()
                assert proc.returncode == 0, err[-3000:]
                break
            proc.send_signal(signal.SIGKILL)
            proc.communicate()
            kills += 1
            args = ["resume", str(journal), "--settle", "0", "--chunk", str(chunk)]
            assert journal.exists(), "killed before the journal was written: the next run starts afresh"
        done = subprocess.run(command("resume", str(journal), "--settle", "0"), env=env, capture_output=True,
                              text=True, timeout=900)  # fmt: skip
        assert done.returncode == 0, done.stderr[-3000:]
        exported = subprocess.run(command("export", str(journal), "--format", "jsonl"), env=env, capture_output=True,
                                  text=True, timeout=120)  # fmt: skip
        holding = held(box)
    rows = [json.loads(line) for line in exported.stdout.splitlines()]
    injected = box.faults.injected if box.faults else {}
    print(f"\n{provider}: {ROWS} rows, killed {kills} times (seed {seed}), {seen['requests']} requests, "
          f"faults {injected}; held {sum(len(v) for v in holding.values())}")  # fmt: skip
    assert kills == KILLS, "every kill must land while the run is still going"
    assert [r["row"] for r in rows] == list(range(1, ROWS + 1)), "export accounts for every row, in order"
    dups = {ref: ids for ref, ids in holding.items() if len(ids) > 1}
    assert not dups, f"created twice: {list(dups.items())[:5]}"
    assert sorted(holding) == sorted(refs), "every row created, nothing else"
    for ref, row in zip(refs, rows, strict=True):
        assert row["state"] == "done", row
        assert row["provider_id"] == holding[ref][0], (ref, row)


@pytest.mark.parametrize("provider", ["accepteasy", "billcom"])
def test_two_processes_sharing_one_journal_send_no_item_twice(provider: str, tmp_path: Path) -> None:
    """Two ``billkit resume J`` at once on one journal (claims are transactions): each does part of the work, no
    item is sent twice, and BILL's 3 requests in flight hold across both (the server counts them)."""
    box = sandbox(provider)
    source = tmp_path / f"{provider}.csv"
    refs = write_file(provider, source, ROWS)
    journal = tmp_path / "shared.journal"
    served = Counter[str]()
    env = environment(provider, box)
    chunk = "10" if provider == "billcom" else "25"
    with serve(box, in_flight=served) as running:
        url = running.url
        rows = read_bills(source, provider=provider)
        entries = [(r.row, r.bill, None) for r in rows]
        billkit.batch.create(journal, entries, provider=provider, options={"base_url": url}).close()
        resume = command("resume", str(journal), "--settle", "0", "--chunk", chunk)
        both = [subprocess.Popen(resume, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
                for _ in range(2)]  # fmt: skip
        outputs = [p.communicate(timeout=600) for p in both]
        holding = held(box)
    for proc, (_, err) in zip(both, outputs, strict=True):
        assert proc.returncode == 0, err[-3000:]
    with Journal(journal) as j:
        owners = Counter(row[0] for row in j._db.execute("SELECT owner FROM items"))
        states = Counter(r["state"] for r in j.rows())
    print(f"\n{provider}: {ROWS} rows by two processes: items per process {sorted(owners.values())}, "
          f"{served['requests']} requests, at most {served['peak']} in flight at the server")  # fmt: skip
    assert states == {"done": ROWS}
    assert len(owners) == 2, "both processes must have taken part"
    assert not {ref: ids for ref, ids in holding.items() if len(ids) > 1}, "an item was created twice"
    assert sorted(holding) == sorted(refs)
    if provider == "billcom":  # the count sees overlap when there is some: test_the_server_counts_overlap
        assert served["peak"] <= 3, "BILL allows 3 requests in flight per devKey and organization"


def test_the_server_counts_requests_that_overlap() -> None:
    """What makes the BILL bound above mean something: five requests held in flight at once count as five."""
    import httpx

    box = sandbox("accepteasy")
    served = Counter[str]()
    release = threading.Event()
    with serve(box, hold=lambda method, path: True, release=release, in_flight=served) as running:
        threads = [threading.Thread(target=lambda: httpx.get(running.url + "/v2/Bill/x", timeout=30))
                   for _ in range(5)]  # fmt: skip
        for thread in threads:
            thread.start()
        deadline = time.monotonic() + 30
        while served["now"] < 5:
            assert time.monotonic() < deadline, f"only {served['now']} requests arrived"
            time.sleep(0.001)
        release.set()
        for thread in threads:
            thread.join(timeout=30)
    assert served["peak"] == 5 and served["now"] == 0


def test_ctrl_c_stops_cleanly_says_how_to_resume_and_the_resume_finishes(tmp_path: Path) -> None:
    box = sandbox("facturapi")
    source = tmp_path / "facturapi.csv"
    refs = write_file("facturapi", source, 120)
    journal = tmp_path / "run.journal"
    served = Counter[str]()
    env = environment("facturapi", box)
    with serve(box, in_flight=served) as running:
        url = running.url
        run = command("run", str(source), "-p", "facturapi", "--base-url", url, "--journal", str(journal))
        proc = subprocess.Popen(run, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        deadline = time.monotonic() + 120
        while served["requests"] < 40:  # mid-run: some invoices created, others not yet sent
            assert proc.poll() is None and time.monotonic() < deadline, "the run ended or made no progress"
            time.sleep(0.001)
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=60)
        assert proc.returncode == 130, err[-2000:]
        assert f"billkit resume {journal}" in err
        with Journal(journal) as j:
            assert j.counts()["done"] < 120, "interrupted before the end"
        done = subprocess.run(command("resume", str(journal)), env=env, capture_output=True, text=True, timeout=300)
        holding = held(box)
    assert done.returncode == 0, done.stderr[-2000:]
    assert sorted(holding) == sorted(refs) and all(len(ids) == 1 for ids in holding.values())

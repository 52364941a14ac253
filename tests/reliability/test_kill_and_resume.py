"""Kill and resume: a process submits, is killed mid-way, and a second process finishes from the tokens.

The sandboxes run in this test's process, served over HTTP on 127.0.0.1 (``billkit.testing.served.serve``) on the
real clock with short job delays, so their state outlives the worker processes. The first worker
(``kill_worker.py submit``) submits a 2,000-item AcceptEasy bulk and 200 async Facturapi invoices (with
5 % dropped answers and 5 % server errors on Facturapi's creates) and writes each token as it gets it; it is
SIGKILLed mid-way: after 120 invoice creates the Facturapi server stalls the next ones, the worker is killed
while they are in flight, and only then does the server act on them (invoices whose tokens were never
written). The second (``kill_worker.py resume``) resumes what has a token and submits the rest again with the same
idempotency keys. The servers must then hold every item exactly once, all finished.

This test runs on real time (processes cannot share a virtual clock); it waits on the worker's own
progress (the tokens file), never on a fixed sleep.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from pathlib import Path

import pytest

from billkit.clock import SystemClock
from billkit.providers.accepteasy.sandbox import AcceptEasySandbox
from billkit.providers.facturapi.sandbox import FacturapiSandbox
from billkit.sandboxing import Faults
from billkit.testing.served import serve

from .kill_worker import AE_ITEMS, FA_ITEMS

pytestmark = pytest.mark.soak
WORKER = Path(__file__).with_name("kill_worker.py")
ROOT = Path(__file__).resolve().parents[2]


def env(ae: AcceptEasySandbox, fa: FacturapiSandbox) -> dict[str, str]:
    out = {k: v for k, v in os.environ.items() if not k.startswith(("ACCEPTEASY_", "FACTURAPI_"))}
    out.update(ACCEPTEASY_KEY_NAME=ae.credentials["key_name"], ACCEPTEASY_KEY=ae.credentials["key"],
               FACTURAPI_API_KEY=fa.credentials["api_key"], PYTHONPATH=str(ROOT / "src"))  # fmt: skip
    return out


def wait_for(predicate: object, proc: subprocess.Popen[str], timeout: float = 120.0) -> None:
    assert callable(predicate)
    end = time.monotonic() + timeout
    while not predicate():
        assert proc.poll() is None, f"the worker ended early: {proc.communicate()}"
        assert time.monotonic() < end, "the worker made no progress"
        time.sleep(0.02)


def test_a_killed_submitter_is_finished_by_a_second_process(tmp_path: Path) -> None:
    ae = AcceptEasySandbox(SystemClock(), bulk_delay=0.5, bulk_rate=1000.0)
    fa = FacturapiSandbox(SystemClock(), Faults(drop_after=0.05, server_error=0.05, seed=5, only=("POST /invoices",)),
                          async_delay=1.0)  # fmt: skip
    tokens = tmp_path / "tokens.txt"

    def fa_tokens() -> int:
        return sum(1 for line in tokens.read_text().splitlines() if line.startswith("fa ")) if tokens.exists() else 0

    release = threading.Event()
    creates = Counter[str]()

    def stall(method: str, path: str) -> bool:
        if method == "POST" and path.endswith("/invoices"):
            creates["seen"] += 1
        return creates["seen"] > 120

    with serve(ae) as ae_served, serve(fa, hold=stall, release=release) as fa_served:
        ae_url, fa_url = ae_served.url, fa_served.url
        args = [str(tmp_path), ae_url, fa_url]
        first = subprocess.Popen([sys.executable, str(WORKER), "submit", *args], env=env(ae, fa), text=True,
                                 stdout=subprocess.PIPE, stderr=subprocess.PIPE)  # fmt: skip
        wait_for(lambda: creates["seen"] >= 124, first)  # 4 creates (the worker's limit) are stalled in flight
        first.send_signal(signal.SIGKILL)
        first.communicate()
        release.set()  # the server now acts on requests whose client is gone
        assert first.returncode == -signal.SIGKILL
        killed_with = fa_tokens()
        assert killed_with < FA_ITEMS, "the worker must be killed mid-way"
        second = subprocess.run([sys.executable, str(WORKER), "resume", *args], env=env(ae, fa), text=True,
                                capture_output=True, timeout=300)  # fmt: skip
        assert second.returncode == 0, second.stderr[-3000:]
        summary = json.loads(second.stdout.strip().splitlines()[-1])
        ae_refs = Counter(str(b.get("PaymentReference")) for b in ae.bills.values())
        fa_refs = Counter(str(inv.get("external_id")) for inv in fa.invoices.values())
        statuses = Counter(str(inv.get("status")) for inv in fa.invoices.values())
    print(f"\nkilled after {killed_with} of {FA_ITEMS} invoice tokens; second process: {summary}; "
          f"AcceptEasy holds {len(ae_refs)} bills, Facturapi {len(fa_refs)} invoices {dict(statuses)}; "
          f"faults injected {fa.faults.injected}")  # fmt: skip
    assert summary["resumed"] == killed_with and summary["ae_succeeded"] == AE_ITEMS
    assert summary["fa_statuses"] == ["valid"]
    assert ae_refs == Counter({f"KR-AE-{i:04d}": 1 for i in range(AE_ITEMS)})
    assert fa_refs == Counter({f"KR-FA-{i:03d}": 1 for i in range(FA_ITEMS)})
    assert statuses == Counter({"valid": FA_ITEMS})

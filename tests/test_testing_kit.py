"""A user-style test suite written only against the public kit: billkit, billkit.testing and its fixtures.

The fixtures ``billkit_sandbox`` and ``billkit_clock`` come from the ``pytest11`` entry point that
``pip install billkit`` registers; nothing is imported from billkit's own tests.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

import billkit
from billkit import Bill, BillStatus, Money, Party
from billkit.testing import Fault, Faults, SandboxFactory, VirtualClock, sandbox

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def payment_request(ref: str) -> Bill:
    return Bill(reference=ref, description=f"Order {ref}", total=Money("25.00", "EUR"),
                counterparty=Party(email="jan@example.nl"))  # fmt: skip


async def test_fixtures_are_registered_by_the_entry_point(
    billkit_sandbox: SandboxFactory, billkit_clock: VirtualClock
) -> None:
    box = billkit_sandbox("accepteasy")
    assert box.clock is billkit_clock
    async with billkit.AsyncClient("accepteasy", sandbox=box) as client:
        bill = await client.submit_and_wait(payment_request("KIT-1"))
    assert bill.status is BillStatus.OPEN
    assert [r.method for r in box.received(path_contains="/v2/Bill/async")] == ["POST"]
    assert billkit_clock.now() > 0, "the work happened on the virtual clock"


@pytest.mark.parametrize("provider", ["accepteasy", "facturapi", "billcom"])
async def test_every_provider_has_a_sandbox_that_records_requests(provider: str) -> None:
    box = sandbox(provider)
    assert box.provider == provider and box.requests == []
    async with billkit.AsyncClient(provider, sandbox=box) as client:
        with pytest.raises(billkit.NotFoundError):
            await client.get("does-not-exist")
    assert box.requests, "the sandbox recorded what it received"


async def test_an_answer_lost_after_the_server_acted_never_doubles_the_bill() -> None:
    box = sandbox("accepteasy", faults=Faults().once(Fault.DROP_AFTER, match="POST"))
    async with billkit.AsyncClient("accepteasy", sandbox=box) as client:
        created = await client.create(payment_request("KIT-2"))  # billkit looks its SRRID up instead of re-sending
    assert created.reference == "KIT-2"
    assert len(box.received("POST")) == 1, "the create was never repeated"
    held = [b for b in box.bills.values() if b.get("PaymentReference") == "KIT-2"]  # typed: AcceptEasySandbox
    assert len(held) == 1


async def test_rate_limit_with_retry_after_is_waited_out_on_virtual_time() -> None:
    clock = VirtualClock()
    box = sandbox("accepteasy", clock=clock, faults=Faults(retry_after=7).once(Fault.RATE_LIMIT, match="POST"))
    async with billkit.AsyncClient("accepteasy", sandbox=box) as client:
        created = await client.create(payment_request("KIT-3"))
    assert created.status is BillStatus.OPEN
    assert clock.now() >= 7
    assert len(box.received("POST")) == 2


def test_the_test_module_in_the_testing_guide_passes_under_pytest(tmp_path: Path) -> None:
    """docs/testing.md's complete test module, run as a user's suite runs: in a fresh pytest process, with the
    entry point's fixtures and anyio's marker, under asyncio and trio (two async tests each) and one blocking test."""
    guide = (Path(__file__).resolve().parent.parent / "docs" / "testing.md").read_text(encoding="utf-8")
    code = [b for b in re.findall(r"^```python\n(.*?)^```", guide, re.S | re.M) if b.startswith("# test_invoicing.py")]
    assert len(code) == 1, "docs/testing.md has one block starting '# test_invoicing.py'"
    (tmp_path / "test_invoicing.py").write_text(code[0], encoding="utf-8")
    run = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "test_invoicing.py"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert run.returncode == 0, run.stdout + run.stderr
    assert "5 passed" in run.stdout, run.stdout

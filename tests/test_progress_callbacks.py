"""A raising ``on_progress`` callback is the caller's bug, not a reason to lose billing work: billkit logs it and
goes on. Before, at AcceptEasy it stopped the poller (every pending operation of the client failed), at Facturapi
the waiters hung, and at BILL ``submit_many`` raised after the bills were created, losing the bulk handle."""

from __future__ import annotations

import logging

import pytest

import billkit
from billkit import Bill
from billkit.clock import VirtualClock
from billkit.providers.accepteasy.sandbox import AcceptEasySandbox
from billkit.providers.billcom.sandbox import BillcomSandbox
from billkit.providers.facturapi.sandbox import FacturapiSandbox
from billkit.sandboxing import Sandbox
from tests.providers.accepteasy.conftest import bill as ae_bill
from tests.providers.billcom.builders import payable
from tests.providers.facturapi.conftest import invoice

pytestmark = pytest.mark.anyio


def _case(provider: str) -> tuple[Sandbox, list[Bill], Bill]:
    clock = VirtualClock()
    if provider == "accepteasy":
        return AcceptEasySandbox(clock), [ae_bill(f"P-{i}") for i in range(3)], ae_bill("P-single")
    if provider == "facturapi":
        return FacturapiSandbox(clock), [invoice(f"P-{i}") for i in range(3)], invoice("P-single")
    return BillcomSandbox(clock), [payable(f"P-{i}") for i in range(3)], payable("P-single")


def _boom(finished: int, total: int) -> None:
    raise ValueError(f"progress display broke at {finished}/{total}")


PROVIDERS = ["accepteasy", "billcom", "facturapi"]


@pytest.mark.parametrize("provider", PROVIDERS)
async def test_a_raising_callback_is_logged_and_every_operation_still_ends(
    provider: str, anyio_backend: str, caplog: pytest.LogCaptureFixture
) -> None:
    box, bills, single = _case(provider)
    caplog.set_level(logging.ERROR, logger="billkit")
    async with billkit.AsyncClient(provider, sandbox=box) as client:
        other = await client.submit(single)
        bulk = await client.submit_many(bills, on_progress=_boom)
        result = await bulk
        assert [item.index for item in result] == [0, 1, 2] and all(item.ok for item in result)
        assert (await other).reference == "P-single", "the client's other operation is not taken down"
    logged = [r for r in caplog.records if "on_progress callback" in r.getMessage()]
    assert logged and logged[0].exc_info is not None and provider in logged[0].getMessage()


@pytest.mark.parametrize("provider", PROVIDERS)
def test_the_blocking_client_goes_on_too(provider: str, caplog: pytest.LogCaptureFixture) -> None:
    box, bills, single = _case(provider)
    caplog.set_level(logging.ERROR, logger="billkit")
    with billkit.Client(provider, sandbox=box) as client:
        other = client.submit(single)
        result = client.submit_many(bills, on_progress=_boom).result()
        assert len(result) == 3 and all(item.ok for item in result)
        assert other.result().reference == "P-single"
    assert any("on_progress callback" in r.getMessage() for r in caplog.records)

"""billkit on httpx2 (the maintained fork of httpx): which stack a client picks, a caller's httpx2 client used
through its ``send`` (hooks included), the sandbox reached through the bridge, and httpx2's exceptions sorted as
httpx's are (a connect error retried, a timeout on a create never). ``make test`` also runs the core and adapter
suites with ``BILLKIT_HTTP_STACK=httpx2`` (the ``pytest-httpx2`` target), so every sandbox test runs on both."""

from __future__ import annotations

import os
import subprocess
import sys
from typing import Any

import httpx
import pytest

import billkit
from billkit import ConfigurationError
from billkit.clock import VirtualClock
from billkit.httpstack import ENV, HTTPX, SandboxBridge, choose, stack_named
from billkit.providers.accepteasy.sandbox import AcceptEasySandbox
from billkit.providers.facturapi.sandbox import FacturapiSandbox
from billkit.sandboxing import Fault, Faults
from tests.providers.accepteasy.conftest import bill as ae_bill
from tests.providers.facturapi.conftest import invoice

pytest.importorskip("httpx2", reason="httpx2 needs Python 3.11+")
import httpx2  # after the skip: not installed on Python 3.10

pytestmark = pytest.mark.anyio
H2 = stack_named("httpx2")


class Spy2(httpx2.BaseTransport, httpx2.AsyncBaseTransport):
    """An httpx2 transport (both modes) in front of a sandbox, recording every httpx2 request it is handed."""

    def __init__(self, box: Any) -> None:
        self.bridge = SandboxBridge(box, H2)
        self.seen: list[Any] = []
        self.fail: list[Exception] = []  # raised (one each) before the sandbox sees the request

    def _next(self, request: Any) -> None:
        self.seen.append(request)
        if self.fail:
            raise self.fail.pop(0)

    def handle_request(self, request: Any) -> Any:
        self._next(request)
        return self.bridge.handle_request(request)

    async def handle_async_request(self, request: Any) -> Any:
        self._next(request)
        return await self.bridge.handle_async_request(request)


# -- which stack -----------------------------------------------------------------------------------------------


def test_the_stack_follows_what_was_passed_then_the_option_then_the_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv(ENV, raising=False)
    assert choose(None, None) is HTTPX, "httpx by default, even with httpx2 installed"
    assert choose(httpx2.AsyncClient(), None).name == "httpx2"
    assert choose(None, httpx2.MockTransport(lambda r: httpx2.Response(200))).name == "httpx2"
    assert choose(None, None, http_stack="httpx2").name == "httpx2"
    monkeypatch.setenv(ENV, "httpx2")
    assert choose(None, None).name == "httpx2"
    assert choose(httpx.AsyncClient(), None) is HTTPX, "a passed client decides over the environment"
    assert choose(None, FacturapiSandbox(VirtualClock())).name == "httpx2", "a sandbox serves either stack"


def test_mixed_or_unknown_stacks_are_refused_before_anything_is_made(monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(ConfigurationError, match="different HTTP libraries"):
        choose(httpx.AsyncClient(), httpx2.AsyncHTTPTransport())
    with pytest.raises(ConfigurationError, match="http_stack='httpx'"):
        choose(httpx2.AsyncClient(), None, http_stack="httpx")
    with pytest.raises(ConfigurationError, match="unknown HTTP stack 'requests'"):
        choose(None, None, http_stack="requests")
    monkeypatch.setenv(ENV, "urllib3")
    with pytest.raises(ConfigurationError, match="unknown HTTP stack 'urllib3'"):
        billkit.Client("facturapi", sandbox=True)
    with pytest.raises(ConfigurationError, match=r"takes an httpx2\.Client"):
        billkit.Client("facturapi", sandbox=True, http_client=httpx2.AsyncClient())  # type: ignore[call-overload]


def test_without_httpx2_installed_asking_for_it_says_which_extra() -> None:
    code = (
        "import sys; sys.modules['httpx2'] = None\n"
        "import billkit\n"
        "try:\n    billkit.Client('facturapi', sandbox=True, http_stack='httpx2')\n"
        "except billkit.ConfigurationError as exc:\n    print('refused:', exc)\n"
        "c = billkit.Client('facturapi', sandbox=True); print('default:', c.http_stack)\n"
    )
    env = {k: v for k, v in os.environ.items() if k != ENV}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True).stdout
    assert "refused: the httpx2 HTTP stack needs httpx2: pip install 'billkit[httpx2]'" in out
    assert "default: httpx" in out


def test_billkit_does_not_import_httpx2_unless_a_client_runs_on_it() -> None:
    code = (
        "import sys, billkit\n"
        "c = billkit.Client('facturapi', sandbox=True); print('after httpx client:', 'httpx2' in sys.modules)\n"
    )
    env = {k: v for k, v in os.environ.items() if k != ENV}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True).stdout
    assert "after httpx client: False" in out


# -- a caller's httpx2 client ------------------------------------------------------------------------------------


async def test_a_passed_httpx2_async_client_is_used_through_send_with_its_hooks(anyio_backend: str) -> None:
    box = FacturapiSandbox(VirtualClock())
    spy = Spy2(box)
    hooked: list[str] = []

    async def hook(request: Any) -> None:
        hooked.append(f"{request.method} {request.url.path}")

    mine = httpx2.AsyncClient(transport=spy, event_hooks={"request": [hook]}, headers={"X-App": "ledger"})
    async with billkit.AsyncClient("facturapi", sandbox=box, http_client=mine) as client:
        assert client.http_stack == "httpx2"
        bill = await client.create(invoice())
        again = await client.get(bill.provider_id or "")
    assert again.provider_id == bill.provider_id and len(box.received("POST")) == 1
    assert all(type(r) is httpx2.Request for r in spy.seen), "requests are built with httpx2's classes"
    assert hooked == ["POST /v2/invoices", f"GET /v2/invoices/{bill.provider_id}"]
    assert spy.seen[0].headers["x-app"] == "ledger", "the caller's client headers go out"
    assert spy.seen[0].headers["authorization"].startswith("Bearer ")
    assert bill.response is not None and bill.response.status_code == 200
    assert not mine.is_closed, "a client the caller passed is theirs to close"
    await mine.aclose()


async def test_a_blocking_httpx2_client_can_serve_the_async_client(anyio_backend: str) -> None:
    box = FacturapiSandbox(VirtualClock())
    spy = Spy2(box)
    with httpx2.Client(transport=spy) as mine:
        async with billkit.AsyncClient("facturapi", sandbox=box, http_client=mine) as client:
            bill = await client.create(invoice())
    assert bill.provider_id and len(box.received("POST")) == 1 and len(spy.seen) == 1


def test_the_blocking_client_runs_on_httpx2_in_the_calling_thread() -> None:
    box = FacturapiSandbox(VirtualClock())
    spy = Spy2(box)
    with billkit.Client("facturapi", sandbox=box, transport=spy) as client:
        assert client.http_stack == "httpx2"
        bill = client.create(invoice())
        fetched = client.with_options(timeout=3).get(bill.provider_id or "")
    assert fetched.provider_id == bill.provider_id
    assert [type(r) for r in spy.seen] == [httpx2.Request, httpx2.Request]
    assert spy.seen[1].extensions["timeout"]["read"] == 3.0, "with_options(timeout=) reaches httpx2's request"


async def test_the_sandbox_through_the_bridge_answers_as_it_does_on_httpx(anyio_backend: str) -> None:
    results = {}
    for stack in ("httpx", "httpx2"):
        box = FacturapiSandbox(VirtualClock())
        async with billkit.AsyncClient("facturapi", sandbox=box, http_stack=stack) as client:
            assert client.http_stack == stack
            bill = await client.create(invoice(price="1234.50"))
            results[stack] = (bill.status, bill.total, bill.provider_status, len(box.received()))
    assert results["httpx"] == results["httpx2"]


# -- failures sorted the same way ---------------------------------------------------------------------------------


async def test_an_httpx2_connect_error_is_sent_again_and_a_timeout_is_looked_up_first(anyio_backend: str) -> None:
    clock = VirtualClock()
    box = AcceptEasySandbox(clock)
    spy = Spy2(box)
    mine = httpx2.AsyncClient(transport=spy)

    def calls() -> list[str]:
        return [f"{r.method} {r.url.path}" for r in spy.seen]

    async with billkit.AsyncClient("accepteasy", sandbox=box, http_client=mine, clock=clock) as client:
        spy.fail.append(httpx2.ConnectError("refused"))
        await client.create(ae_bill("A-1"))
        assert calls() == ["POST /v2/Bill", "POST /v2/Bill"], "never sent, so sent again at once"
        spy.seen.clear()
        spy.fail.append(httpx2.ReadTimeout("slow"))
        await client.create(ae_bill("A-2"))
        assert calls() == ["POST /v2/Bill", "GET /v2/Search/Bill", "POST /v2/Bill"], (
            "it may have arrived: sent again only once the search proved it absent"
        )
    assert box.count_reference("A-1") == 1 and box.count_reference("A-2") == 1
    await mine.aclose()


async def test_a_fault_the_sandbox_injects_reaches_billkit_as_httpx2s_exception(anyio_backend: str) -> None:
    clock = VirtualClock()
    box = AcceptEasySandbox(clock, faults=Faults().once(Fault.DROP_AFTER))
    async with billkit.AsyncClient("accepteasy", sandbox=box, clock=clock, http_stack="httpx2") as client:
        bill = await client.create(ae_bill("A-3"))
    assert [f"{r.method} {r.path}" for r in box.received()] == ["POST /v2/Bill", "GET /v2/Search/Bill"], (
        "dropped after the sandbox acted: found by its search, not sent again"
    )
    assert box.count_reference("A-3") == 1 and bill.provider_id
    bridge = SandboxBridge(box, H2)
    box.faults = Faults().once(Fault.DROP_BEFORE)
    with pytest.raises(httpx2.ConnectError):
        bridge.handle_request(httpx2.Request("GET", box.base_url + "/v2/Bill/x"))
    box.faults = Faults().once(Fault.DROP_AFTER)
    with pytest.raises(httpx2.RemoteProtocolError):
        bridge.handle_request(httpx2.Request("GET", box.base_url + "/v2/Bill/x"))

"""``client.with_options(timeout=, retry=, poll=, headers=, idempotency_key=)``: a copy for one call or kept, over
the same connection pool, whose headers never replace auth headers and whose idempotency key names one bill."""

from __future__ import annotations

import json

import httpx
import pytest

import billkit
from billkit import ConfigurationError, RetryPolicy, Timeouts, UnsupportedFeatureError
from billkit.clock import VirtualClock
from billkit.providers.accepteasy.sandbox import AcceptEasySandbox
from billkit.providers.billcom.sandbox import BillcomSandbox
from billkit.providers.facturapi.sandbox import FacturapiSandbox
from tests.providers.accepteasy.conftest import bill as ae_bill
from tests.providers.billcom.builders import payable
from tests.providers.facturapi.conftest import invoice

pytestmark = pytest.mark.anyio


class Spy(httpx.BaseTransport, httpx.AsyncBaseTransport):
    """A sandbox that records every request it receives (headers, timeouts, body), for both clients."""

    def __init__(self, box: FacturapiSandbox | AcceptEasySandbox | BillcomSandbox) -> None:
        self.box = box
        self.seen: list[httpx.Request] = []

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        self.seen.append(request)
        return self.box.handle_request(request)

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        self.seen.append(request)
        return await self.box.handle_async_request(request)

    def body(self, i: int = -1) -> dict[str, object]:
        loaded: dict[str, object] = json.loads(self.seen[i].content)
        return loaded


def _spied() -> tuple[FacturapiSandbox, Spy]:
    box = FacturapiSandbox(VirtualClock())
    return box, Spy(box)


# -- one pool --------------------------------------------------------------------------------------------------


async def test_derived_clients_share_the_pool_and_closing_one_closes_nothing(anyio_backend: str) -> None:
    box, spy = _spied()
    async with billkit.AsyncClient("facturapi", sandbox=box, transport=spy) as client:
        twin = client.with_options(timeout=5, headers={"X-Trace": "t-1"})
        again = twin.with_options(retry=RetryPolicy.none())
        assert twin._io.http is client._io.http and again._io.http is client._io.http
        created = await twin.create(invoice())
        assert spy.seen[-1].headers["x-trace"] == "t-1"
        await again.get(created.provider_id or "")
        assert spy.seen[-1].headers["x-trace"] == "t-1"  # a copy of a copy keeps what it was given
        await twin.aclose()
        await again.aclose()
        assert not client._io.http.is_closed
        await client.get(created.provider_id or "")  # the original still works, on the same pool
        assert "x-trace" not in spy.seen[-1].headers
        assert spy.seen[-1].headers["authorization"] == spy.seen[0].headers["authorization"]
    assert client._io.http.is_closed


def test_blocking_derived_clients_share_the_pool() -> None:
    box, spy = _spied()
    with billkit.Client("facturapi", sandbox=box, transport=spy) as client:
        twin = client.with_options(headers={"x-request-source": "batch"}, timeout=Timeouts(read=7.0))
        assert twin._io.http is client._io.http
        made = twin.create(invoice())
        assert spy.seen[-1].headers["x-request-source"] == "batch"
        assert spy.seen[-1].extensions["timeout"]["read"] == 7.0
        twin.close()
        assert not client._io.http.is_closed
        assert client.get(made.provider_id or "").provider_id == made.provider_id
        assert "x-request-source" not in spy.seen[-1].headers
        assert spy.seen[-1].extensions["timeout"]["read"] == 30.0


# -- timeout ---------------------------------------------------------------------------------------------------


async def test_timeout_is_the_calls_deadline(anyio_backend: str) -> None:
    box, spy = _spied()
    async with billkit.AsyncClient("facturapi", sandbox=box, transport=spy) as client:
        quick = client.with_options(timeout=2)
        assert quick.retry.total_budget == 2 and client.retry.total_budget == 120
        await quick.create(invoice())
        assert spy.seen[-1].extensions["timeout"]["read"] == 2
        assert spy.seen[-1].extensions["timeout"]["connect"] == 2
        with pytest.raises(ConfigurationError, match="positive"):
            client.with_options(timeout=0)
        with pytest.raises(ConfigurationError, match=r"seconds or a billkit\.Timeouts"):
            client.with_options(timeout="5")  # type: ignore[arg-type]


# -- headers ---------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "name", ["Authorization", "authorization", "Cookie", "X-Api-Key", "Proxy-Authorization", "Host", "Content-Length"]
)
def test_headers_never_replace_auth_or_framing_headers(name: str) -> None:
    with billkit.Client("facturapi", sandbox=True) as client, pytest.raises(ConfigurationError, match="cannot set"):
        client.with_options(headers={name: "Bearer mine"})


def test_billcom_session_headers_are_refused_too() -> None:
    with billkit.Client("billcom", sandbox=True) as client:
        for name in ("sessionId", "devKey", "SESSIONID"):
            with pytest.raises(ConfigurationError, match="cannot set"):
                client.with_options(headers={name: "x"})
        with pytest.raises(ConfigurationError, match="strings"):
            client.with_options(headers={"x-n": 1})  # type: ignore[dict-item]


async def test_billcom_headers_reach_every_request_and_the_session_stays(anyio_backend: str) -> None:
    box = BillcomSandbox(VirtualClock())
    spy = Spy(box)
    async with billkit.AsyncClient("billcom", sandbox=box, transport=spy) as client:
        tagged = client.with_options(headers={"X-Tenant": "acme"})
        created = await tagged.create(payable("INV-WO-1"))
        assert created.provider_id
        sent = [r for r in spy.seen if r.url.path.endswith("/bills")]
        assert sent and all(r.headers["x-tenant"] == "acme" for r in sent)
        assert all("sessionid" in r.headers for r in sent)  # BILL's session header is still billkit's


async def test_native_calls_of_a_copy_carry_its_headers(anyio_backend: str) -> None:
    box, spy = _spied()
    async with billkit.AsyncClient("facturapi", sandbox=box, transport=spy) as client:
        made = await client.create(invoice())
        tagged = client.with_options(headers={"x-trace": "native"})
        await tagged.native.get_invoice(made.provider_id or "")
        assert spy.seen[-1].headers["x-trace"] == "native"


async def test_status_reads_of_a_copy_with_its_own_poll_policy_carry_its_headers(anyio_backend: str) -> None:
    box, spy = _spied()
    async with billkit.AsyncClient("facturapi", sandbox=box, transport=spy) as client:
        own = client.with_options(headers={"x-trace": "poll"}, poll=billkit.PollPolicy())
        op = await own.submit(invoice())
        await op
        reads = [r for r in spy.seen if r.method == "GET"]
        assert reads and all(r.headers["x-trace"] == "poll" for r in reads)
        await own.aclose()


# -- idempotency_key ---------------------------------------------------------------------------------------------


async def test_idempotency_key_goes_in_the_body_and_a_repeat_creates_once(anyio_backend: str) -> None:
    box, spy = _spied()
    async with billkit.AsyncClient("facturapi", sandbox=box, transport=spy) as client:
        keyed = client.with_options(idempotency_key="order-1042")
        first = await keyed.create(invoice("ORDER-1042"))
        assert spy.body()["idempotency_key"] == "order-1042"
        second = await keyed.create(invoice("ORDER-1042"))  # the same bill again (after an unknown outcome)
        assert second.provider_id == first.provider_id
        # the key holds across copies made from the keyed one; a key of its own in the bill must agree
        same = keyed.with_options(timeout=30)
        own = invoice("ORDER-1042", provider_options={"idempotency_key": "order-1042"})
        assert (await same.create(own)).provider_id == first.provider_id


async def test_a_key_reused_for_another_bill_is_refused_before_any_request(anyio_backend: str) -> None:
    async with billkit.AsyncClient("facturapi", sandbox=True) as client:
        keyed = client.with_options(idempotency_key="order-1")
        await keyed.create(invoice("ORDER-1"))
        before = client.requests_made
        with pytest.raises(ConfigurationError, match="already named another bill"):
            await keyed.create(invoice("ORDER-2"))
        with pytest.raises(ConfigurationError, match="already named another bill"):
            await keyed.submit(invoice("ORDER-2"))
        other = client.with_options(idempotency_key="order-9")
        with pytest.raises(ConfigurationError, match="already named another bill"):
            await other.submit_many([invoice("ORDER-9"), invoice("ORDER-10")])
        clash = invoice("ORDER-3", provider_options={"idempotency_key": "mine"})
        with pytest.raises(ConfigurationError, match="give one of them"):
            await client.with_options(idempotency_key="theirs").create(clash)
        assert client.requests_made == before
        with pytest.raises(ConfigurationError, match="non-empty"):
            client.with_options(idempotency_key="")


def test_blocking_idempotency_key_and_submit() -> None:
    box, spy = _spied()
    with billkit.Client("facturapi", sandbox=box, transport=spy) as client:
        keyed = client.with_options(idempotency_key="order-7")
        op = keyed.submit(invoice("ORDER-7"))
        assert spy.body()["idempotency_key"] == "order-7"
        assert op.result(timeout=600).provider_id == op.id
        with pytest.raises(ConfigurationError):
            keyed.create(invoice("ORDER-8"))


@pytest.mark.parametrize("provider", ["accepteasy", "billcom"])
def test_idempotency_key_fails_closed_where_the_provider_has_none(provider: str) -> None:
    with billkit.Client(provider, sandbox=True) as client:
        assert not client.capabilities.idempotency
        with pytest.raises(UnsupportedFeatureError, match="idempotency_key"):
            client.with_options(idempotency_key="k-1")


async def test_accepteasy_copy_with_headers_and_retry(anyio_backend: str) -> None:
    box = AcceptEasySandbox(VirtualClock())
    spy = Spy(box)
    async with billkit.AsyncClient("accepteasy", sandbox=box, transport=spy) as client:
        tagged = client.with_options(headers={"x-trace": "ae"}, retry=RetryPolicy.none())
        assert tagged.retry == RetryPolicy.none() and client.retry == RetryPolicy()
        op = await tagged.submit(ae_bill())
        assert spy.seen[-1].headers["x-trace"] == "ae"
        assert op.response is not None

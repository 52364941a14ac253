"""The HTTP answer behind a result: ``bill.response``, ``op.response`` and ``client.with_raw_response``.

Against the sandboxes (both clients, all three providers) and, on the wire, respx: status, headers without auth
headers, request id, every answer of a call (retries, BILL's login, each create of a Facturapi bulk), and no second
request to learn any of it.
"""

from __future__ import annotations

import pickle

import httpx
import pytest
import respx

import billkit
from billkit import APIError, Bill, Operation, RawResponse, ResponseInfo
from billkit.clock import VirtualClock
from billkit.providers.accepteasy.sandbox import AcceptEasySandbox
from billkit.providers.billcom.sandbox import BillcomSandbox
from billkit.providers.facturapi.sandbox import FacturapiSandbox
from billkit.responses import ResponseHeaders, attach, is_auth_header
from billkit.sandboxing import Faults
from billkit.transport import dumps
from tests.providers.accepteasy.conftest import bill as ae_bill
from tests.providers.billcom.builders import payable
from tests.providers.facturapi.conftest import invoice

pytestmark = pytest.mark.anyio

LOG_ID = "x-facturapi-log-id"


class Decorated(httpx.BaseTransport, httpx.AsyncBaseTransport):
    """A sandbox whose answers carry extra headers (auth-related ones among them)."""

    EXTRA = {
        "Set-Cookie": "session=s3cr3t-cookie; HttpOnly",
        "WWW-Authenticate": 'Bearer realm="facturapi"',
        "X-Api-Key": "leaked-key",
        "X-RateLimit-Remaining": "41",
    }

    def __init__(self, box: FacturapiSandbox) -> None:
        self.box = box

    def _decorate(self, response: httpx.Response) -> httpx.Response:
        response.headers.update(self.EXTRA)
        return response

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        return self._decorate(self.box.handle_request(request))

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        return self._decorate(await self.box.handle_async_request(request))


# -- Facturapi: one answer per create ------------------------------------------------------------------------------


async def test_create_says_its_answer_without_a_second_request(anyio_backend: str) -> None:
    async with billkit.AsyncClient("facturapi", sandbox=True) as client:
        before = client.requests_made
        raw = await client.with_raw_response.create(invoice())
        assert client.requests_made == before + 1  # the answer was kept, not fetched again
        assert isinstance(raw, RawResponse)
        assert raw.status_code == 200
        assert raw.request_id is not None and raw.request_id == raw.headers[LOG_ID]
        assert raw.headers["Content-Type"].startswith("application/json")  # case-insensitive
        assert raw.elapsed >= 0
        bill = raw.parse()
        assert bill is raw.parse()
        assert bill.provider_id and bill.response is raw.response
        assert (raw.response.method, raw.response.url) == ("POST", "https://sandbox.facturapi.test/v2/invoices")
        assert raw.responses == (raw.response,)
        plain = await client.create(invoice("FA-0002"))
        assert plain.response is not None and plain.response.status_code == 200
        assert plain.response.request_id != raw.request_id


def test_blocking_create_get_and_submit_say_their_answers() -> None:
    with billkit.Client("facturapi", sandbox=True) as client:
        created = client.create(invoice())
        assert created.response is not None and created.response.request_id
        got = client.with_raw_response.get(created.provider_id or "")
        assert got.status_code == 200 and got.response.method == "GET"
        assert got.parse().response is got.response
        assert got.request_id != created.response.request_id
        raw = client.with_raw_response.submit(invoice("FA-0003"))
        op = raw.parse()
        assert isinstance(op, billkit.BlockingOperation)
        assert op.response is raw.response and raw.status_code == 200
        assert op.result(timeout=600).provider_id == op.id


async def test_submit_and_submit_many_of_many_creates(anyio_backend: str) -> None:
    async with billkit.AsyncClient("facturapi", sandbox=True) as client:
        raw = await client.with_raw_response.submit(invoice())
        assert isinstance(raw.parse(), Operation)
        assert raw.parse().response is raw.response
        bulk = await client.with_raw_response.submit_many([invoice("B-1"), invoice("B-2"), invoice("B-3")])
        assert len(bulk.responses) == 3  # one async create each
        assert len({r.request_id for r in bulk.responses}) == 3
        assert bulk.parse().response is bulk.responses[-1]
        result = await bulk.parse()
        assert all(item.ok for item in result)


async def test_a_bill_a_status_read_ends_in_says_that_read(anyio_backend: str) -> None:
    async with billkit.AsyncClient("facturapi", sandbox=True) as client:
        op = await client.submit(invoice("FA-0009"))
        submitted = op.response
        bill = await op
        made = client.requests_made
        assert bill.response is not None and submitted is not None
        assert bill.response.method == "GET" and bill.response.url.endswith(f"/invoices/{bill.provider_id}")
        assert bill.response.request_id and bill.response.request_id != submitted.request_id
        assert client.requests_made == made, "reading bill.response sends nothing"


def test_a_blocking_wait_gives_the_bill_of_the_last_read() -> None:
    with billkit.Client("facturapi", sandbox=True) as client:
        bill = client.submit(invoice("FA-0010")).result()
        assert bill.response is not None and bill.response.method == "GET"
        assert bill.response.status_code == 200 and bill.response.request_id


async def test_retried_answers_are_listed_and_the_last_one_is_the_result(anyio_backend: str) -> None:
    box = FacturapiSandbox(VirtualClock(), Faults().once("server_error", match="POST"))
    async with billkit.AsyncClient("facturapi", sandbox=box) as client:
        raw = await client.with_raw_response.create(invoice())
    assert [r.status_code for r in raw.responses][-1] == 200
    assert len(raw.responses) == 2 and raw.responses[0].status_code >= 500
    assert raw.status_code == 200 and raw.parse().response is raw.responses[-1]


async def test_auth_headers_are_never_shown(anyio_backend: str) -> None:
    box = FacturapiSandbox(VirtualClock())
    async with billkit.AsyncClient("facturapi", sandbox=box, transport=Decorated(box)) as client:
        raw = await client.with_raw_response.create(invoice())
    headers = raw.headers
    assert headers["x-ratelimit-remaining"] == "41"
    for name in ("set-cookie", "www-authenticate", "x-api-key", "authorization"):
        assert name not in headers
    shown = repr(raw) + repr(dict(headers)) + repr(pickle.dumps(raw.responses))
    assert "s3cr3t" not in shown and "leaked-key" not in shown
    with pytest.raises(TypeError):
        headers["x-new"] = "1"  # type: ignore[index]
    again = pickle.loads(pickle.dumps(raw.response))
    assert again == raw.response and again.headers == headers and hash(again) == hash(raw.response)


def test_headers_are_read_only_case_insensitive_and_joined() -> None:
    headers = ResponseHeaders(httpx.Headers([("Via", "a"), ("via", "b"), ("Authorization", "Bearer x")]))
    assert headers["VIA"] == "a, b" and len(headers) == 1 and "authorization" not in headers
    assert headers == {"via": "a, b"}
    for name in ("Authorization", "Proxy-Authorization", "Cookie", "X-Auth-Token", "sessionId", "devKey",
                 "X-Api-Key", "X-Hub-Signature"):  # fmt: skip
        assert is_auth_header(name), name
    for name in ("Content-Type", "X-Facturapi-Log-Id", "Retry-After", "X-RateLimit-Remaining", "Location"):
        assert not is_auth_header(name), name


def test_a_bill_equals_itself_with_or_without_its_answer() -> None:
    with billkit.Client("facturapi", sandbox=True) as client:
        created = client.create(invoice())
    assert created.response is not None
    plain = Bill(reference="same")
    answered = attach(Bill(reference="same"), (created.response,))
    assert answered == plain and answered.model_dump() == plain.model_dump()
    assert answered.response is created.response and plain.response is None
    assert pickle.loads(pickle.dumps(answered)).response == created.response
    assert "ResponseInfo" not in repr(answered)


# -- AcceptEasy and BILL ---------------------------------------------------------------------------------------------


async def test_accepteasy_submit_and_bulk(anyio_backend: str) -> None:
    async with billkit.AsyncClient("accepteasy", sandbox=AcceptEasySandbox(VirtualClock())) as client:
        raw = await client.with_raw_response.submit(ae_bill())
        assert raw.response.method == "POST" and 200 <= raw.status_code < 300
        assert raw.request_id is None  # AcceptEasy sends no request id
        bulk = await client.with_raw_response.submit_many([ae_bill("LI-1"), ae_bill("LI-2")])
        assert len(bulk.responses) == 1  # one native bulk POST
        assert bulk.parse().response is bulk.response


def test_billcom_create_lists_the_login_and_never_keeps_a_body() -> None:
    box = BillcomSandbox(VirtualClock())
    with billkit.Client("billcom", sandbox=box) as client:
        raw = client.with_raw_response.create(payable("INV-RAW-1"))
        assert raw.responses[0].url.endswith("/login")
        assert raw.status_code in (200, 201) and raw.response.url.endswith("/bills")
        assert raw.parse().response is raw.response
        again = client.with_raw_response.create(payable("INV-RAW-2"))
        assert not any(r.url.endswith("/login") for r in again.responses)  # the session is shared
    stored = pickle.dumps(raw.responses)
    assert b"sessionId" not in stored and b"sessionid" not in stored.lower()


# -- on the wire: respx --------------------------------------------------------------------------------------------


FA = "https://www.facturapi.io/v2"


async def test_respx_get_and_an_error_keep_their_request_ids(anyio_backend: str) -> None:
    with billkit.Client("facturapi", sandbox=True) as seed:
        body = seed.create(invoice()).raw
    router = respx.Router(assert_all_called=False)
    router.get(f"{FA}/invoices/inv_1").respond(200, content=dumps(body), headers={LOG_ID: "log-1", "Set-Cookie": "a=b"})
    router.get(f"{FA}/invoices/missing").respond(404, json={"message": "Not found"}, headers={LOG_ID: "log-2"})
    transport = httpx.MockTransport(router.async_handler)
    async with billkit.AsyncClient("facturapi", api_key="sk_test_x", transport=transport, base_url=FA) as client:
        raw = await client.with_raw_response.get("inv_1")
        assert (raw.status_code, raw.request_id) == (200, "log-1")
        assert "set-cookie" not in raw.headers and raw.response.url == f"{FA}/invoices/inv_1"
        assert isinstance(raw.response, ResponseInfo)
        with pytest.raises(APIError) as failed:
            await client.get("missing")
        assert failed.value.request_id == "log-2" and failed.value.status_code == 404

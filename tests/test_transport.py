"""The retry rules of design.md section 4, table-driven: every failure kind x safe/unsafe request, on both drivers
(the blocking one and the async one run the same send flow)."""

from __future__ import annotations

import logging
from collections.abc import Callable
from decimal import Decimal
from typing import Any

import httpx
import pytest
from hypothesis import given
from hypothesis import strategies as st

import billkit
from billkit.clock import VirtualClock
from billkit.errors import (
    APIConnectionError,
    APIError,
    AuthenticationError,
    BillkitError,
    ConflictError,
    NotFoundError,
    OutcomeUnknownError,
    RateLimitError,
    ServerError,
)
from billkit.flows import AsyncIO, SyncIO
from billkit.transport import (
    Request,
    Response,
    RetryPolicy,
    Transport,
    default_error,
    dumps,
    parse_retry_after,
    redact_headers,
)

pytestmark = pytest.mark.anyio

Step = Callable[[httpx.Request], httpx.Response]


def status(code: int, retry_after: str | None = None) -> Step:
    def step(request: httpx.Request) -> httpx.Response:
        headers = {"retry-after": retry_after} if retry_after else {}
        return httpx.Response(code, json={"message": f"status {code}"}, headers=headers)

    return step


def raise_(exc: type[Exception]) -> Step:
    def step(request: httpx.Request) -> httpx.Response:
        raise exc("boom", request=request)  # type: ignore[call-arg]

    return step


def ok(request: httpx.Request) -> httpx.Response:
    return httpx.Response(201, json={"id": "b1", "amount": 1.10}, headers={"x-request-id": "req-9"})


class Script:
    def __init__(self, *steps: Step) -> None:
        self.steps = list(steps)
        self.calls = 0

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.calls += 1
        step = self.steps.pop(0) if len(self.steps) > 1 else self.steps[0]
        return step(request)


class Wire:
    """A transport and a driver over a scripted server: ``await wire.send(request)`` on either driver."""

    def __init__(
        self,
        script: Script,
        clock: VirtualClock,
        policy: RetryPolicy | None,
        driver: str,
        headers: dict[str, str] | None = None,
        max_in_flight: int | None = None,
        timeouts: billkit.Timeouts | None = None,
    ) -> None:
        self.transport = Transport(
            provider="fake",
            base_url="https://fake.test",
            error_parser=lambda r: default_error("fake", r, message=(r.json_or_none() or {}).get("message")),
            clock=clock,
            request_id_header="x-request-id",
            default_headers=headers,
            timeouts=timeouts,
        )
        retry = policy or RetryPolicy(jitter=0, initial_delay=1, max_delay=4)
        mock = httpx.MockTransport(script)
        limits = self.transport.timeouts.to_httpx()
        self.io: AsyncIO | SyncIO = (
            SyncIO(httpx.Client(transport=mock, timeout=limits), clock, retry, max_in_flight)
            if driver == "sync"
            else AsyncIO(httpx.AsyncClient(transport=mock, timeout=limits), clock, retry, max_in_flight)
        )

    async def send(self, request: Request) -> Response:
        flow = self.transport.send(request)
        if isinstance(self.io, SyncIO):
            return self.io.run(flow)
        return await self.io.run(flow)


@pytest.fixture(params=["async", "sync"])
def driver(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def make(script: Script, clock: VirtualClock, policy: RetryPolicy | None = None, driver: str = "async") -> Wire:
    return Wire(script, clock, policy, driver)


SAFE = Request("POST", "/bills", json={"a": 1}, idempotent=True)  # a create the provider de-duplicates
UNSAFE = Request("POST", "/bills", json={"a": 1}, how_to_check="search the SRRID", reference="ref-1")

# (name, first step, safe outcome, unsafe outcome); outcome "ok" = retried then succeeded
CASES: list[tuple[str, Step, str | type[BillkitError], str | type[BillkitError]]] = [
    ("connect error", raise_(httpx.ConnectError), "ok", "ok"),
    ("connect timeout", raise_(httpx.ConnectTimeout), "ok", "ok"),
    ("read timeout", raise_(httpx.ReadTimeout), "ok", OutcomeUnknownError),
    ("dropped after send", raise_(httpx.RemoteProtocolError), "ok", OutcomeUnknownError),
    ("408", status(408), "ok", OutcomeUnknownError),
    ("429 with Retry-After", status(429, "3"), "ok", "ok"),
    ("429 without Retry-After", status(429), "ok", "ok"),
    ("500", status(500), "ok", OutcomeUnknownError),
    ("502", status(502), "ok", OutcomeUnknownError),
    ("503 with Retry-After", status(503, "2"), "ok", OutcomeUnknownError),  # no proof it was not acted on
    ("503 without Retry-After", status(503), "ok", OutcomeUnknownError),
    ("504", status(504), "ok", OutcomeUnknownError),
    ("400", status(400), APIError, APIError),
    ("401", status(401), AuthenticationError, AuthenticationError),
    ("404", status(404), NotFoundError, NotFoundError),
    ("409", status(409), ConflictError, ConflictError),
]


@pytest.mark.parametrize(("name", "first", "safe", "unsafe"), CASES, ids=[c[0] for c in CASES])
@pytest.mark.parametrize("kind", ["safe", "unsafe"])
async def test_retry_rules(
    name: str, first: Step, safe: str | type[BillkitError], unsafe: str | type[BillkitError], kind: str, driver: str
) -> None:
    expected = safe if kind == "safe" else unsafe
    request = SAFE if kind == "safe" else UNSAFE
    script = Script(first, ok)
    transport = make(script, VirtualClock(), driver=driver)
    if expected == "ok":
        response = await transport.send(request)
        assert response.status_code == 201
        assert script.calls == 2, "retried exactly once"
        assert response.request_id == "req-9"
    else:
        assert isinstance(expected, type)
        with pytest.raises(expected) as info:
            await transport.send(request)
        assert script.calls == 1, "never repeated"
        if isinstance(info.value, OutcomeUnknownError):
            assert "search the SRRID" in str(info.value)
            assert info.value.reference == "ref-1"


async def test_retry_after_seconds_are_slept_on_the_clock(driver: str) -> None:
    clock = VirtualClock()
    transport = make(Script(status(429, "7"), ok), clock, driver=driver)
    await transport.send(SAFE)
    assert clock.now() == pytest.approx(7)


async def test_backoff_grows_to_the_cap_and_stops_after_max_attempts(driver: str) -> None:
    clock = VirtualClock()
    script = Script(status(500))
    transport = make(
        script, clock, RetryPolicy(max_attempts=4, initial_delay=1, multiplier=2, max_delay=3, jitter=0), driver
    )
    with pytest.raises(ServerError):
        await transport.send(SAFE)
    assert script.calls == 4
    assert clock.now() == pytest.approx(1 + 2 + 3)


async def test_retry_after_above_the_cap_raises_rate_limit_without_sleeping(driver: str) -> None:
    clock = VirtualClock()
    script = Script(status(429, "600"), ok)
    transport = make(script, clock, RetryPolicy(max_retry_after=60, jitter=0), driver)
    with pytest.raises(RateLimitError) as info:
        await transport.send(SAFE)
    assert info.value.retry_after == 600
    assert script.calls == 1 and clock.now() == 0


async def test_connection_errors_exhausted_become_api_connection_error(driver: str) -> None:
    transport = make(Script(raise_(httpx.ConnectError)), VirtualClock(), RetryPolicy(max_attempts=2, jitter=0), driver)
    with pytest.raises(APIConnectionError):
        await transport.send(UNSAFE)


async def test_total_budget_bounds_the_retries(driver: str) -> None:
    clock = VirtualClock()
    script = Script(status(503))
    policy = RetryPolicy(max_attempts=50, initial_delay=4, multiplier=1, max_delay=4, jitter=0, total_budget=10)
    with pytest.raises(ServerError):
        await make(script, clock, policy, driver).send(SAFE)
    assert clock.now() <= 10
    assert script.calls == 3


async def test_provider_retryable_code_is_retried_even_for_a_create() -> None:
    def parser(r: Response) -> APIError:
        return default_error("fake", r, code="BUSY", retryable=True)

    script = Script(status(400), ok)
    transport = make(script, VirtualClock())
    transport.transport.error_parser = parser
    assert (await transport.send(UNSAFE)).status_code == 201
    assert script.calls == 2


IDEMPOTENT_CREATE = Request("POST", "/invoices", json={"idempotency_key": "k-1"}, reference="k-1", idempotent=True,
                            how_to_check="send it again with the same key")  # fmt: skip


@pytest.mark.parametrize(
    ("first", "last", "expected"),
    [
        (raise_(httpx.RemoteProtocolError), status(429), OutcomeUnknownError),  # acted, then refused: unknown
        (status(500), status(429), OutcomeUnknownError),
        (raise_(httpx.RemoteProtocolError), status(429, "999"), OutcomeUnknownError),  # hint too long to wait
        (raise_(httpx.ConnectError), status(429), RateLimitError),  # never reached the server: a plain refusal
        (status(429), status(429), RateLimitError),
    ],
    ids=["drop-then-429", "500-then-429", "drop-then-long-429", "not-sent-then-429", "429-only"],
)
async def test_a_create_refused_after_an_attempt_that_may_have_acted_is_unknown(
    first: Step, last: Step, expected: type[BillkitError]
) -> None:
    script = Script(first, last)
    with pytest.raises(expected) as info:
        await make(script, VirtualClock(), RetryPolicy(max_attempts=3, jitter=0)).send(IDEMPOTENT_CREATE)
    if isinstance(info.value, OutcomeUnknownError):
        assert info.value.reference == "k-1" and isinstance(info.value.cause, RateLimitError)
    with pytest.raises(RateLimitError):  # a read is never "unknown"
        await make(Script(first, last), VirtualClock(), RetryPolicy(max_attempts=3, jitter=0)).send(
            Request("GET", "/invoices/1"))  # fmt: skip


async def test_json_numbers_come_back_as_decimal() -> None:
    response = await make(Script(ok), VirtualClock()).send(SAFE)
    assert response.json()["amount"] == Decimal("1.10")


async def test_logs_carry_metadata_but_no_headers_or_body(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, logger="billkit")
    seen: list[httpx.Request] = []

    def record(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return ok(request)

    transport = Wire(Script(status(503), record), VirtualClock(), None, "async",
                     headers={"authorization": "Bearer sk_test_SECRET"})  # fmt: skip
    await transport.send(Request("POST", "/bills", json={"card": "SECRET-BODY"}, idempotent=True))
    text = caplog.text
    assert "POST /bills" in text and "503" in text and "req-9" in text
    assert "SECRET" not in text
    assert seen[0].headers["authorization"] == "Bearer sk_test_SECRET"


def test_request_repr_hides_headers_and_body() -> None:
    req = Request("POST", "/x", json={"k": "v"}, headers={"authorization": "Bearer sk_live_zzz"})
    assert "sk_live_zzz" not in repr(req)


def test_redact_headers_allowlist() -> None:
    out = redact_headers({"Authorization": "Bearer x", "Content-Type": "application/json", "devKey": "k"})
    assert out == {"Authorization": "[redacted]", "Content-Type": "application/json", "devKey": "[redacted]"}


def test_dumps_writes_decimals_exactly_and_refuses_floats() -> None:
    assert (
        dumps({"a": Decimal("19.90"), "b": [1, None, True], "c": "é"})
        == '{"a":19.90,"b":[1,null,true],"c":"é"}'.encode()
    )
    with pytest.raises(TypeError):
        dumps({"a": 1.5})


@pytest.mark.parametrize(
    ("header", "expected"),
    [("5", 5.0), ("0", 0.0), ("1.5", 1.5), ("-3", 0.0), ("", None), ("soon", None), (None, None), ("inf", None)],
)
def test_parse_retry_after_seconds(header: str | None, expected: float | None) -> None:
    assert parse_retry_after(header) == expected


def test_parse_retry_after_http_date() -> None:
    now = 1_700_000_000.0
    header = "Tue, 14 Nov 2023 22:13:40 GMT"  # 20 s after `now`
    assert parse_retry_after(header, now=now) == pytest.approx(20)
    assert parse_retry_after("Tue, 14 Nov 2023 22:12:00 GMT", now=now) == 0.0


@given(st.text(max_size=40))
def test_parse_retry_after_never_raises(text: str) -> None:
    value = parse_retry_after(text)
    assert value is None or value >= 0


async def test_provider_can_forbid_a_retry_even_on_429() -> None:
    def parser(r: Response) -> APIError:
        return default_error("fake", r, code="HOURLY", retryable=False)

    script = Script(status(429), ok)
    transport = make(script, VirtualClock())
    transport.transport.error_parser = parser
    with pytest.raises(RateLimitError):
        await transport.send(SAFE)
    assert script.calls == 1


async def test_copies_share_the_in_flight_limiter(driver: str) -> None:
    wire = Wire(Script(ok), VirtualClock(), None, driver, max_in_flight=1)
    twin = wire.io.with_retry(RetryPolicy.none())
    flow = wire.transport.send(SAFE)
    assert (twin.run(flow) if isinstance(twin, SyncIO) else await twin.run(flow)).status_code == 201
    assert wire.io._limiter and wire.io._limiter is twin._limiter


async def test_a_body_that_is_not_json_is_an_api_error_not_a_value_error() -> None:
    def garbage(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, content=b"<html>maintenance</html>", headers={"x-request-id": "r-1"})

    response = await make(Script(garbage), VirtualClock()).send(SAFE)
    with pytest.raises(APIError) as info:
        response.json()
    assert info.value.status_code == 200 and info.value.request_id == "r-1" and info.value.provider == "fake"
    assert response.json_or_none() is None


def test_json_problems_names_what_cannot_be_sent() -> None:
    from billkit.transport import json_problems

    body = {"ok": [1, "a", Decimal("1.5"), None, True], "f": 1.5, "n": Decimal("NaN"), "x": {"deep": object()},
            "big": Decimal("1e999")}  # fmt: skip
    assert [path for path, _ in json_problems(body)] == ["f", "n", "x.deep", "big"]


# -- fail closed: writes without a key, hints, the total deadline, bounded answers ------------------------------

PLAIN_WRITE = Request("POST", "/invoices/1/email", json={"email": "a@example.mx"})  # no key, no reference


@pytest.mark.parametrize(
    ("first", "sent", "expected"),
    [
        (status(502), 1, ServerError),
        (status(500), 1, ServerError),
        (raise_(httpx.ReadTimeout), 1, APIConnectionError),
        (raise_(httpx.RemoteProtocolError), 1, APIConnectionError),
        (status(503, "1"), 1, ServerError),
        (raise_(httpx.ConnectError), 2, None),
        (status(429, "1"), 2, None),
    ],
    ids=["502", "500", "read-timeout", "dropped", "503-retry-after", "connect-error", "429"],
)
async def test_a_write_without_a_key_is_sent_again_only_when_it_provably_did_not_act(
    first: Step, sent: int, expected: type[BillkitError] | None, driver: str
) -> None:
    script = Script(first, ok)
    wire = make(script, VirtualClock(), driver=driver)
    if expected is None:
        assert (await wire.send(PLAIN_WRITE)).status_code == 201
    else:
        with pytest.raises(expected):
            await wire.send(PLAIN_WRITE)
    assert script.calls == sent


@pytest.mark.parametrize("method", ["PUT", "PATCH", "DELETE"])
async def test_every_write_method_is_unsafe_by_default(method: str) -> None:
    script = Script(status(502), ok)
    with pytest.raises(OutcomeUnknownError):
        await make(script, VirtualClock()).send(Request(method, "/bills/1", reference="b1", how_to_check="read it"))
    assert script.calls == 1


async def test_a_huge_retry_after_on_a_request_is_not_slept() -> None:
    clock = VirtualClock()
    script = Script(status(429, "86400"), ok)
    with pytest.raises(RateLimitError) as info:
        await make(script, clock).send(SAFE)
    assert info.value.retry_after == 86400 and clock.now() == 0 and script.calls == 1


async def test_the_total_budget_cuts_each_attempts_timeouts(driver: str) -> None:
    """A client timeout of 30 s is the whole call's: every attempt's timeouts are what is left of it."""
    clock = VirtualClock()
    seen: list[float] = []

    def hang(request: httpx.Request) -> httpx.Response:
        timeout = request.extensions["timeout"]["read"]
        seen.append(timeout)
        clock.sleep_sync(timeout)  # the server never answers: the read times out
        raise httpx.ReadTimeout("no answer", request=request)

    policy = RetryPolicy(max_attempts=10, initial_delay=1, jitter=0, total_budget=30)
    wire = Wire(Script(hang), clock, policy, driver, timeouts=billkit.Timeouts(read=25))
    with pytest.raises(APIConnectionError):
        await wire.send(Request("GET", "/slow"))
    assert clock.now() <= 30 + 1e-6, "never longer than the budget"
    assert seen[0] == 25 and all(t <= 30 for t in seen) and len(seen) >= 2


@pytest.mark.parametrize("declared", [True, False], ids=["content-length", "streamed"])
async def test_an_oversized_answer_is_refused_without_reading_the_rest(declared: bool, driver: str) -> None:
    produced: list[int] = []

    def chunks() -> Any:
        for i in range(1000):  # a 1 GB answer, made only as far as it is read
            produced.append(i)
            yield b"x" * (1024 * 1024)

    class Huge(httpx.SyncByteStream, httpx.AsyncByteStream):
        def __iter__(self) -> Any:
            return chunks()

        async def __aiter__(self) -> Any:
            for chunk in chunks():
                yield chunk

    def serve(request: httpx.Request) -> httpx.Response:
        headers = {"content-length": str(1000 * 1024 * 1024)} if declared else {}
        return httpx.Response(200, headers=headers, stream=Huge())

    wire = make(Script(serve), VirtualClock(), driver=driver)
    wire.transport.max_response_bytes = 4 * 1024 * 1024
    with pytest.raises(billkit.ResponseTooLargeError) as info:
        await wire.send(Request("GET", "/invoices"))
    assert info.value.status_code == 200 and len(produced) <= (0 if declared else 5)


def test_a_whole_number_beyond_100_digits_is_refused_not_written() -> None:
    """Found by the fuzzer (make soak): a 300-digit int in provider_options got past the check."""
    from billkit.transport import json_problems

    huge = 10**300
    assert [path for path, _ in json_problems({"zzz": huge, "ok": 10**99})] == ["zzz"]
    with pytest.raises(ValueError, match="100 digits"):
        dumps({"zzz": huge})

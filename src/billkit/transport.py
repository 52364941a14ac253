"""Transport: one place that sends requests, retries what is safe to retry, and turns failures into errors.

Adapters describe a request with :class:`Request` (pure data, including whether it is safe to repeat) and
read the :class:`Response`; :class:`Transport` executes it over ``httpx`` with the client's
:class:`RetryPolicy`. The rules (design.md section 4):

* A **safe** request (a read, or a create the provider de-duplicates by idempotency key) is retried on
  connection errors, timeouts, dropped connections, 408, 429, 500, 502, 503 and 504.
* An **unsafe** request (a create the provider cannot de-duplicate) is retried only when the request
  provably never arrived (connect error, pool timeout) or the server refused it before acting (429, or 503
  with Retry-After). Anything else that leaves the outcome open (read timeout, dropped connection after
  sending, 408, other 5xx) raises :class:`OutcomeUnknownError` saying how to check.
* ``Retry-After`` (seconds or HTTP date) is honoured up to ``RetryPolicy.max_retry_after``; a longer hint
  raises :class:`RateLimitError` with ``retry_after`` instead of sleeping for minutes.

Logs go to the ``billkit`` logger: metadata only (method, path, status, attempt, elapsed, request id).
Headers are never logged except through :func:`redact_headers`, which keeps an allowlist.
"""

from __future__ import annotations

import email.utils
import enum
import json
import logging
import random
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import TYPE_CHECKING, Any, TypeVar

import anyio
import httpx
import pydantic

from billkit.clock import Clock, SystemClock
from billkit.errors import (
    APIConnectionError,
    APIError,
    APITimeoutError,
    BillkitError,
    OutcomeUnknownError,
    Problem,
    RateLimitError,
    ValidationError,
    api_error_for_status,
)
from billkit.money import loads_decimal

if TYPE_CHECKING:
    from tenacity import RetryCallState

__all__ = [
    "ErrorParser",
    "Request",
    "Response",
    "RetryPolicy",
    "Safety",
    "Timeouts",
    "Transport",
    "check_sendable",
    "dumps",
    "json_problems",
    "parse_retry_after",
    "read_model",
    "redact_headers",
]

M = TypeVar("M", bound=pydantic.BaseModel)

logger = logging.getLogger("billkit")

RETRY_STATUSES = frozenset({408, 429, 500, 502, 503, 504})


@dataclass(frozen=True)
class RetryPolicy:
    """How requests are retried. Delays in seconds; ``jitter`` is a fraction (0.25 = +/-25 %).

    ``max_retry_after`` is the longest server hint billkit will sleep for; ``total_budget`` bounds the time
    spent on one request across all attempts.
    """

    max_attempts: int = 4
    initial_delay: float = 0.5
    multiplier: float = 2.0
    max_delay: float = 8.0
    jitter: float = 0.25
    max_retry_after: float = 60.0
    total_budget: float = 120.0

    def __post_init__(self) -> None:
        if self.max_attempts < 1:
            raise ValueError("max_attempts must be at least 1")
        if not 0 <= self.jitter <= 1:
            raise ValueError("jitter must be between 0 and 1")

    @classmethod
    def none(cls) -> RetryPolicy:
        """No retries at all."""
        return cls(max_attempts=1)

    def backoff(self, attempt: int, rng: random.Random | None = None) -> float:
        """The delay before retry number ``attempt`` (1-based), with jitter."""
        base = min(self.max_delay, self.initial_delay * self.multiplier ** (attempt - 1))
        if self.jitter:
            base *= 1 + (rng or random).uniform(-self.jitter, self.jitter)
        return max(0.0, base)


@dataclass(frozen=True)
class Timeouts:
    connect: float = 5.0
    read: float = 30.0
    write: float = 30.0
    pool: float = 10.0

    def to_httpx(self) -> httpx.Timeout:
        return httpx.Timeout(connect=self.connect, read=self.read, write=self.write, pool=self.pool)


class Safety(enum.Enum):
    SAFE = "safe"  # reads, and creates the provider de-duplicates (idempotency key)
    UNSAFE = "unsafe"  # creates without de-duplication: never repeated once they may have arrived


@dataclass(frozen=True)
class Request:
    """A request described as data. ``path`` is relative to the client's base URL."""

    method: str
    path: str
    params: Mapping[str, str] | None = None
    json: Any = None
    content: bytes | None = field(default=None, repr=False)
    headers: Mapping[str, str] = field(default_factory=dict, repr=False)
    safety: Safety = Safety.SAFE
    #: for unsafe requests: the business reference and how a person checks whether it was created
    reference: str | None = None
    how_to_check: str = ""

    @classmethod
    def unsafe(cls, method: str, path: str, *, how_to_check: str, reference: str | None = None,
               **kwargs: Any) -> Request:  # fmt: skip
        return cls(method, path, safety=Safety.UNSAFE, how_to_check=how_to_check, reference=reference, **kwargs)


@dataclass(frozen=True)
class Response:
    """A provider answer, decoded lazily. JSON numbers with a fraction become ``Decimal``."""

    status_code: int
    headers: httpx.Headers = field(repr=False)
    content: bytes = field(repr=False)
    request_id: str | None = None
    provider: str = "unknown"

    def json(self) -> Any:
        """The body as JSON (numbers with a fraction as Decimal); a body that is not JSON raises :class:`APIError`
        (the provider's answer is unusable), never a bare ``ValueError``."""
        try:
            return loads_decimal(self.content)
        except (ValueError, UnicodeDecodeError) as exc:
            raise APIError(f"{self.provider} answered HTTP {self.status_code} with a body that is not JSON ({exc})",
                           provider=self.provider, status_code=self.status_code, request_id=self.request_id,
                           raw=self.text[:500]) from None  # fmt: skip

    def json_or_none(self) -> Any:
        try:
            return loads_decimal(self.content)
        except (ValueError, UnicodeDecodeError):
            return None

    def parse(self, model: type[M]) -> M:
        """The body read into the wire ``model``; a body of another shape raises :class:`APIError`."""
        return read_model(model, self.json(), provider=self.provider, response=self)

    @property
    def text(self) -> str:
        return self.content.decode("utf-8", errors="replace")

    @property
    def retry_after(self) -> float | None:
        return parse_retry_after(self.headers.get("retry-after"))


def read_model(model: type[M], data: Any, *, provider: str, response: Response | None = None) -> M:
    """``data`` (a provider body) read into the wire ``model``. A body of the wrong shape becomes an
    :class:`APIError` naming the model (with the HTTP status and request id when ``response`` is given), never a
    pydantic exception: what a provider sends is outside the caller's control."""
    try:
        return model.model_validate(data)
    except (pydantic.ValidationError, ValueError, TypeError, ArithmeticError) as exc:
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise APIError(
            f"{provider} answered with a body billkit cannot read as {model.__name__}: {first}",
            provider=provider,
            status_code=response.status_code if response is not None else None,
            request_id=response.request_id if response is not None else None,
            raw=data,
        ) from None


#: Turns an error response into the right APIError. Adapters provide one; :func:`default_error` is the base.
ErrorParser = Callable[[Response], APIError]


def default_error(
    provider: str, response: Response, *, code: str | None = None, message: str | None = None
) -> APIError:
    """The APIError subclass for ``response``'s status, with ``retry_after`` for 429."""
    cls = api_error_for_status(response.status_code)
    kwargs: dict[str, Any] = {
        "provider": provider,
        "status_code": response.status_code,
        "code": code,
        "request_id": response.request_id,
        "raw": response.json_or_none(),
    }
    text = message or f"HTTP {response.status_code}"
    if issubclass(cls, RateLimitError):
        return cls(text, retry_after=response.retry_after, **kwargs)
    return cls(text, **kwargs)


def parse_retry_after(value: str | None, *, now: float | None = None) -> float | None:
    """Seconds to wait from a ``Retry-After`` header: delta-seconds or an HTTP date. Bad values -> None.

    ``now`` is the current wall time (seconds since the epoch) for HTTP dates.
    """
    if value is None:
        return None
    value = value.strip()
    if not value:
        return None
    try:
        seconds = float(value)
    except ValueError:
        try:
            parsed = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError, IndexError, OverflowError):
            return None
        if parsed is None or parsed.tzinfo is None:
            return None
        base = time.time() if now is None else now
        return max(0.0, parsed.timestamp() - base)
    if seconds != seconds or seconds in (float("inf"), float("-inf")):
        return None
    return max(0.0, seconds)


_SAFE_HEADERS = frozenset(
    {"content-type", "content-length", "retry-after", "x-request-id", "x-facturapi-log-id", "user-agent",
     "accept", "location", "date"}
)  # fmt: skip


def redact_headers(headers: Mapping[str, str]) -> dict[str, str]:
    """Headers with every value outside an allowlist replaced by ``[redacted]``."""
    return {k: (v if k.lower() in _SAFE_HEADERS else "[redacted]") for k, v in headers.items()}


def dumps(payload: Any) -> bytes:
    """JSON with Decimals written exactly as numbers (``Decimal('19.90')`` -> ``19.90``), never via float."""
    parts: list[str] = []
    _encode(payload, parts)
    return "".join(parts).encode()


def json_problems(value: Any, path: str = "") -> list[tuple[str, str]]:
    """``(path, message)`` for every part of a request body that :func:`dumps` would refuse or blow up on: a float,
    a non-finite or absurdly scaled Decimal, a non-string key, an object that is not JSON. Adapters check their
    bodies with it so that such a value in ``provider_options`` is a ValidationError before anything is sent."""
    out: list[tuple[str, str]] = []
    _json_problems(value, path, out)
    return out


def check_sendable(body: Any, *, provider: str, prefix: str = "") -> None:
    """Raise :class:`ValidationError` listing every part of ``body`` that cannot be sent (see
    :func:`json_problems`); what a caller puts there comes through ``provider_options``."""
    unsendable = json_problems(body)
    if unsendable:
        raise ValidationError([Problem(f"{prefix}provider_options: {where}", why) for where, why in unsendable],
                              provider=provider)  # fmt: skip


_PLAIN = frozenset({str, int, bool, type(None)})


def _json_problems(value: Any, path: str, out: list[tuple[str, str]]) -> None:
    kind = type(value)
    if kind in _PLAIN:
        return
    if kind is dict:
        for key, item in value.items():
            if type(key) is not str:
                out.append((path or "body", f"key {key!r} is not a string"))
            if type(item) not in _PLAIN:
                _json_problems(item, f"{path}.{key}" if path else str(key), out)
    elif kind is list or kind is tuple:
        for i, item in enumerate(value):
            if type(item) not in _PLAIN:
                _json_problems(item, f"{path}[{i}]", out)
    elif isinstance(value, Decimal):
        exp = value.as_tuple().exponent
        if not value.is_finite():
            out.append((path or "body", f"{value} is not a finite number"))
        elif isinstance(exp, int) and (abs(exp) > 100 or (value and abs(value.adjusted()) > 100)):
            out.append((path or "body", f"{value} is out of range for a JSON number billkit sends"))
    elif isinstance(value, float):
        out.append((path or "body", f"the float {value!r} cannot be sent exactly: use a Decimal or a str"))
    elif isinstance(value, (str, int)):
        return
    elif isinstance(value, Mapping):
        _json_problems(dict(value), path, out)
    elif isinstance(value, (list, tuple)):
        _json_problems(list(value), path, out)
    else:
        out.append((path or "body", f"a {type(value).__name__} is not JSON: use str, int, Decimal, bool, list or dict"))


_encode_str = json.encoder.encode_basestring


def _encode(value: Any, out: list[str]) -> None:
    kind = type(value)  # exact types first (the common case, cheap); subclasses and other mappings below
    if kind is str:
        out.append(_encode_str(value))
    elif kind is dict:
        out.append("{")
        first = True
        for k, v in value.items():
            if not first:
                out.append(",")
            first = False
            out.append(_encode_str(k if type(k) is str else str(k)))
            out.append(":")
            _encode(v, out)
        out.append("}")
    elif kind is Decimal:
        if not value.is_finite():
            raise ValueError(f"cannot send the non-finite number {value}")
        out.append(format(value, "f"))
    elif kind is int:
        out.append(int.__repr__(value))
    elif value is None:
        out.append("null")
    elif value is True:
        out.append("true")
    elif value is False:
        out.append("false")
    elif kind is list or kind is tuple:
        out.append("[")
        for i, v in enumerate(value):
            if i:
                out.append(",")
            _encode(v, out)
        out.append("]")
    else:
        _encode_other(value, out)


def _encode_other(value: Any, out: list[str]) -> None:
    if isinstance(value, str):
        out.append(_encode_str(str.__str__(value)))
    elif isinstance(value, Decimal):
        _encode(Decimal(value), out)
    elif isinstance(value, float):  # before int: never a float, whatever its subclass
        raise TypeError("billkit never sends floats; use Decimal")
    elif isinstance(value, int):
        out.append(str(int(value)))
    elif isinstance(value, Mapping):
        _encode(dict(value), out)
    elif isinstance(value, (list, tuple)):
        _encode(list(value), out)
    else:
        raise TypeError(f"not JSON serialisable: {type(value).__name__}")


class _Retry(Exception):
    """Internal: this attempt failed in a way that may be retried."""

    def __init__(self, error: BillkitError, retry_after: float | None = None, *, reached: bool = True) -> None:
        super().__init__(str(error))
        self.error = error
        self.retry_after = retry_after
        #: False only when the server certainly did not act (not connected, or refused before acting)
        self.reached = reached


@dataclass
class TransportStats:
    """Counters for demos and benchmarks."""

    requests: int = 0
    retries: int = 0


class Transport:
    """Executes :class:`Request` descriptions for one provider over an ``httpx.AsyncClient``."""

    def __init__(
        self,
        *,
        provider: str,
        base_url: str,
        error_parser: ErrorParser,
        http_client: httpx.AsyncClient,
        retry: RetryPolicy,
        clock: Clock | None = None,
        default_headers: Mapping[str, str] | None = None,
        request_id_header: str | None = None,
        max_in_flight: int | None = None,
        rng: random.Random | None = None,
    ) -> None:
        self.provider = provider
        self.base_url = base_url.rstrip("/")
        self.error_parser = error_parser
        self.http = http_client
        self.retry = retry
        self.clock: Clock = clock or SystemClock()
        self._headers = dict(default_headers or {})
        self._request_id_header = request_id_header
        self._max_in_flight = max_in_flight
        self._limiter: list[anyio.Semaphore] = []  # shared (by reference) with with_retry() copies
        self._rng = rng or random.Random()
        self.stats = TransportStats()

    def __repr__(self) -> str:
        return f"Transport(provider={self.provider!r}, base_url={self.base_url!r})"

    def with_retry(self, retry: RetryPolicy) -> Transport:
        """A copy that shares the connection pool and limiter but retries differently."""
        twin = Transport.__new__(Transport)
        twin.__dict__.update(self.__dict__)
        twin.retry = retry
        return twin

    async def send(self, request: Request, *, retry: RetryPolicy | None = None) -> Response:
        """Send ``request``; return a 2xx/3xx :class:`Response` or raise a :class:`BillkitError`."""
        policy = retry or self.retry
        start = self.clock.now()
        try:  # the common case, a first attempt that works, needs none of the retry machinery
            return await self._attempt(request, 1, policy)
        except _Retry as failed:
            first = failed
        return await self._retry(request, policy, start, first)

    async def _retry(self, request: Request, policy: RetryPolicy, start: float, first: _Retry) -> Response:
        """Attempts 2.. of :meth:`send` under tenacity, after ``first`` failed in a retryable way."""
        from tenacity import AsyncRetrying, retry_if_exception_type, stop_after_attempt  # only once it is needed

        attempt_no = 0

        def wait(state: RetryCallState) -> float:
            exc = state.outcome.exception() if state.outcome else None
            hint = exc.retry_after if isinstance(exc, _Retry) else None
            return hint if hint is not None else policy.backoff(state.attempt_number, self._rng)

        def stop(state: RetryCallState) -> bool:
            if stop_after_attempt(policy.max_attempts)(state):
                return True
            elapsed = self.clock.now() - start
            return elapsed + (state.upcoming_sleep or 0.0) > policy.total_budget

        retrying = AsyncRetrying(
            stop=stop,
            wait=wait,
            retry=retry_if_exception_type(_Retry),
            sleep=self.clock.sleep,
            reraise=True,
            before_sleep=lambda s: self._count_retry(request, s),
        )
        reached = False  # did an earlier attempt possibly act (an answer lost, a 5xx)?
        try:
            async for attempt in retrying:
                with attempt:
                    attempt_no += 1
                    if attempt_no == 1:  # already made by send(): tenacity only schedules what follows it
                        reached = first.reached
                        raise first
                    try:
                        return await self._attempt(request, attempt_no, policy)
                    except _Retry as failed:
                        reached = reached or failed.reached
                        raise
                    except RateLimitError as refused:
                        raise self._settle(request, refused, reached) from None
        except _Retry as final:
            raise self._settle(request, final.error, reached) from None
        raise AssertionError("unreachable")  # pragma: no cover

    def _settle(self, request: Request, error: BillkitError, reached: bool) -> BillkitError:
        """The error a failed create ends with. When the last attempt was refused (a 429, say) but an earlier one
        may have acted, the outcome is unknown, not failed: "not created" would be a lie half the time. Errors
        an adapter retries itself (``retryable`` True, e.g. Facturapi's ``idempotency_key_in_use``) stay as they
        are, for the adapter to settle."""
        if (reached and request.reference is not None and request.method != "GET" and isinstance(error, APIError)
                and error.retryable is not True):  # fmt: skip
            return self._unknown(request, error)
        return error

    def _count_retry(self, request: Request, state: RetryCallState) -> None:
        self.stats.retries += 1
        exc = state.outcome.exception() if state.outcome else None
        logger.info(
            "retrying %s %s after attempt %d in %.2fs: %s",
            request.method, request.path, state.attempt_number, state.upcoming_sleep or 0.0, exc,
        )  # fmt: skip

    async def _attempt(self, request: Request, attempt: int, policy: RetryPolicy) -> Response:
        if self._max_in_flight is not None and not self._limiter:
            self._limiter.append(anyio.Semaphore(self._max_in_flight))
        if self._limiter:
            async with self._limiter[0]:
                return await self._attempt_unlimited(request, attempt, policy)
        return await self._attempt_unlimited(request, attempt, policy)

    async def _attempt_unlimited(self, request: Request, attempt: int, policy: RetryPolicy) -> Response:
        headers = {**self._headers, **request.headers}
        content = request.content
        if request.json is not None:
            content = dumps(request.json)
            headers.setdefault("content-type", "application/json")
        url = self.base_url + request.path
        started = self.clock.now()
        self.stats.requests += 1
        try:
            raw = await self.http.request(request.method, url, params=request.params, content=content, headers=headers)
            body = await raw.aread()
        except (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout) as exc:
            # the request never reached the server: retrying can never create twice
            logger.debug("%s %s attempt %d: not sent (%s)", request.method, request.path, attempt, type(exc).__name__)
            err = APIConnectionError(
                f"could not connect to {self.provider}: {type(exc).__name__}", provider=self.provider
            )
            raise _Retry(err, reached=False) from exc
        except httpx.TimeoutException as exc:
            self._log(request, attempt, None, started, None)
            timeout = APITimeoutError(f"{self.provider} did not answer in time ({type(exc).__name__})",
                                      provider=self.provider)  # fmt: skip
            raise self._unknown_or_retry(request, timeout) from exc
        except httpx.TransportError as exc:
            self._log(request, attempt, None, started, None)
            dropped = APIConnectionError(f"connection to {self.provider} dropped ({type(exc).__name__})",
                                         provider=self.provider)  # fmt: skip
            raise self._unknown_or_retry(request, dropped) from exc
        request_id = raw.headers.get(self._request_id_header) if self._request_id_header else None
        response = Response(raw.status_code, raw.headers, body, request_id, self.provider)
        self._log(request, attempt, raw.status_code, started, request_id)
        if raw.status_code < 400:
            return response
        return self._fail(request, response, policy)

    def _fail(self, request: Request, response: Response, policy: RetryPolicy) -> Response:
        error = self.error_parser(response)
        status = response.status_code
        hint = response.retry_after
        if isinstance(error, RateLimitError) and error.retry_after is None:
            error.retry_after = hint
        if error.retryable is False:
            raise error
        if isinstance(error, RateLimitError) and error.status_code != 429 and status not in RETRY_STATUSES:
            # a provider rate-limit code on another status (e.g. BILL's hourly limit): definitive
            raise error
        if status not in RETRY_STATUSES and error.retryable is not True:
            raise error
        if hint is not None and hint > policy.max_retry_after:
            raise error  # too long to sleep: the caller decides (RateLimitError carries retry_after)
        refused_before_acting = status == 429 or (status == 503 and hint is not None) or error.retryable is True
        if request.safety is Safety.SAFE or refused_before_acting:
            raise _Retry(error, hint, reached=not refused_before_acting)
        raise self._unknown(request, error)

    def _unknown_or_retry(self, request: Request, error: BillkitError) -> Exception:
        if request.safety is Safety.SAFE:
            return _Retry(error)
        return self._unknown(request, error)

    def _unknown(self, request: Request, cause: BillkitError) -> OutcomeUnknownError:
        return OutcomeUnknownError(
            f"{request.method} {request.path} failed after it may have reached {self.provider} ({cause})",
            provider=self.provider,
            how_to_check=request.how_to_check,
            reference=request.reference,
            cause=cause,
        )

    def _log(self, request: Request, attempt: int, status: int | None, started: float, rid: str | None) -> None:
        if logger.isEnabledFor(logging.DEBUG):
            logger.debug(
                "%s %s -> %s (attempt %d, %.3fs, request id %s)",
                request.method, request.path, status if status is not None else "no answer", attempt,
                self.clock.now() - started, rid,
            )  # fmt: skip

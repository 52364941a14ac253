"""Transport: one place that sends requests, decides every retry, and turns failures into typed errors.

Adapters describe a request with :class:`Request` (pure data) and read the :class:`Response`. :meth:`Transport.send`
is a flow (see :mod:`billkit.flows`): it builds the HTTP exchange once, yields it to the driver (blocking or async),
and asks :func:`decide` what to do with each outcome. The rules (design.md section 4), **fail closed**:

* A request is **safe to repeat** when it is a read (GET, HEAD, OPTIONS) or it carries an idempotency key the
  provider honours (``Request(..., idempotent=True)``: Facturapi's ``idempotency_key``). Every other POST, PUT, PATCH
  and DELETE is **unsafe**, whatever the adapter forgot to say.
* A safe request is retried on connection errors, timeouts, dropped connections, 408, 429, 500, 502, 503 and 504.
* An unsafe request is retried only when it provably never arrived (connect error, connect or pool timeout) or the
  provider's documents say the answer means it was not acted on (429; a code the adapter's error parser marks
  ``retryable=True``, such as BILL's ``BDC_1322``). A 503, with or without ``Retry-After``, is *not* such a proof.
  Anything else that leaves the outcome open raises :class:`OutcomeUnknownError` (with ``how_to_check``) for a
  request that names a business ``reference``, or the error itself for any other write.
* ``Retry-After`` (seconds or HTTP date) is honoured up to ``RetryPolicy.max_retry_after``; a longer hint ends the
  request with :class:`RateLimitError` (``retry_after`` set) instead of sleeping for minutes.
* ``RetryPolicy.total_budget`` is a deadline across attempts: no sleep goes past it, and each attempt's timeouts
  are cut to what is left of it.
* An answer larger than ``max_response_bytes`` is refused (:class:`ResponseTooLargeError`) without reading the rest.

Logs go to the ``billkit`` logger: metadata only (method, path, status, attempt, elapsed, request id). Headers are
never logged except through :func:`redact_headers`, which keeps an allowlist.
"""

from __future__ import annotations

import email.utils
import enum
import json
import logging
import random
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, TypeVar
from urllib.parse import quote

import httpx
import pydantic

from billkit import tracing
from billkit.clock import Clock
from billkit.errors import (
    APIConnectionError,
    APIError,
    APITimeoutError,
    BillkitError,
    OutcomeUnknownError,
    Problem,
    RateLimitError,
    ResponseTooLargeError,
    ValidationError,
    api_error_for_status,
)
from billkit.flows import CURRENT_POLICY, Answer, Exchange, Failure, FailureKind, Flow, Sleep
from billkit.money import loads_decimal

__all__ = [
    "DEFAULT_MAX_RESPONSE_BYTES",
    "Decision",
    "ErrorParser",
    "Request",
    "Response",
    "RetryPolicy",
    "Timeouts",
    "Transport",
    "Verdict",
    "check_sendable",
    "decide",
    "dumps",
    "encode_body",
    "is_transient",
    "json_problems",
    "parse_retry_after",
    "read_model",
    "redact_headers",
]

M = TypeVar("M", bound=pydantic.BaseModel)

logger = logging.getLogger("billkit")

RETRY_STATUSES = frozenset({408, 429, 500, 502, 503, 504})
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
#: the largest answer read into memory unless a client says otherwise (downloads stream instead)
DEFAULT_MAX_RESPONSE_BYTES = 8 * 1024 * 1024


@dataclass(frozen=True)
class RetryPolicy:
    """How requests are retried. Delays in seconds; ``jitter`` is a fraction (0.25 = +/-25 %).

    ``max_retry_after`` is the longest server hint billkit will sleep for; ``total_budget`` is the deadline of one
    request across all its attempts and sleeps (each attempt's timeouts are cut to what is left of it).
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
        if self.total_budget <= 0:
            raise ValueError("total_budget must be positive")

    @classmethod
    def none(cls) -> RetryPolicy:
        """No retries at all."""
        return cls(max_attempts=1)

    def backoff(self, attempt: int, rng: random.Random | None = None) -> float:
        """The delay before retry number ``attempt`` (1-based), with jitter."""
        base = min(self.max_delay, self.initial_delay * self.multiplier ** min(attempt - 1, 64))
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

    @property
    def longest(self) -> float:
        return max(self.connect, self.read, self.write, self.pool)

    def within(self, left: float) -> httpx.Timeout:
        """These timeouts, none longer than ``left`` seconds."""
        left = max(0.001, left)
        return httpx.Timeout(
            connect=min(self.connect, left),
            read=min(self.read, left),
            write=min(self.write, left),
            pool=min(self.pool, left),
        )


class Request:
    """A request described as data (a plain slotted class: one is made per call).

    ``path`` is relative to the client's base URL; each ``{}`` in it is replaced by the next of ``ids``, escaped as
    one path segment (``/`` ``?`` ``#`` ``%`` and spaces encoded; an empty, ``.`` or ``..`` id is refused), so an id
    from a caller, a token or a provider answer can only ever name its own resource.

    ``idempotent`` says the provider de-duplicates this write (an idempotency key it honours): only then is a
    POST/PUT/PATCH/DELETE repeated after it may have arrived. ``reference`` (the business reference) and
    ``how_to_check`` go into the :class:`OutcomeUnknownError` of a write whose outcome could not be known.
    ``encoded_json`` is a JSON body already encoded with :func:`dumps`. Headers and bodies never show in its repr.
    """

    __slots__ = (
        "content",
        "encoded_json",
        "headers",
        "how_to_check",
        "idempotent",
        "ids",
        "json",
        "max_bytes",
        "method",
        "params",
        "path",
        "reference",
        "stream_to",
    )

    def __init__(
        self,
        method: str,
        path: str,
        params: Mapping[str, str] | None = None,
        json: Any = None,
        content: bytes | None = None,
        encoded_json: bytes | None = None,
        headers: Mapping[str, str] | None = None,
        ids: tuple[str, ...] = (),
        idempotent: bool = False,
        reference: str | None = None,
        how_to_check: str = "",
        max_bytes: int | None = None,
        stream_to: str | None = None,
    ) -> None:
        self.method = method
        self.path = path
        self.params = params
        self.json = json
        self.content = content
        self.encoded_json = encoded_json
        self.headers: Mapping[str, str] = headers or {}
        self.ids = ids
        self.idempotent = idempotent
        self.reference = reference
        self.how_to_check = how_to_check
        self.max_bytes = max_bytes
        #: a download: a 2xx body is written to this file (whole or not at all) instead of read into memory
        self.stream_to = stream_to

    @property
    def safe(self) -> bool:
        """Whether repeating this request can never do a thing twice."""
        return self.idempotent or self.method in SAFE_METHODS

    def __repr__(self) -> str:
        return f"Request({self.method} {self.path}, ids={self.ids!r}, params={self.params!r})"


class Response:
    """A provider answer, decoded lazily. JSON numbers with a fraction become ``Decimal``."""

    __slots__ = ("content", "headers", "provider", "request_id", "status_code")

    def __init__(
        self,
        status_code: int,
        headers: httpx.Headers,
        content: bytes,
        request_id: str | None = None,
        provider: str = "unknown",
    ) -> None:
        self.status_code = status_code
        self.headers = headers
        self.content = content
        self.request_id = request_id
        self.provider = provider

    def __repr__(self) -> str:
        return f"Response({self.status_code}, {len(self.content)} bytes, request id {self.request_id})"

    def json(self) -> Any:
        """The body as JSON (numbers with a fraction as Decimal); a body that is not JSON raises :class:`APIError`
        (the provider's answer is unusable), never a bare ``ValueError``."""
        try:
            return loads_decimal(self.content)
        except (ValueError, UnicodeDecodeError) as exc:
            raise APIError(
                f"{self.provider} answered HTTP {self.status_code} with a body that is not JSON ({exc})",
                provider=self.provider,
                status_code=self.status_code,
                request_id=self.request_id,
                raw=self.text[:500],
            ) from None

    def json_or_none(self) -> Any:
        try:
            return loads_decimal(self.content)
        except (ValueError, UnicodeDecodeError):
            return None

    def parse(self, model: type[M]) -> M:
        """The body read into the wire ``model``; a body of another shape raises :class:`APIError`."""
        return read_model(model, self.json(), provider=self.provider, response=self)

    def parse_text(self, model: type[M]) -> M:
        """The body read into ``model`` straight from the bytes, in one pass (pydantic-core's JSON reader). Only for
        a model none of whose fields is a number: that reader goes through float. A body of another shape, or one
        that is not JSON, raises :class:`APIError`."""
        try:
            return model.model_validate_json(self.content)
        except (pydantic.ValidationError, ValueError) as exc:
            first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            raise APIError(f"{self.provider} answered with a body billkit cannot read as {model.__name__}: {first}",
                           provider=self.provider, status_code=self.status_code, request_id=self.request_id,
                           raw=self.text[:500]) from None  # fmt: skip

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
    provider: str,
    response: Response,
    *,
    code: str | None = None,
    message: str | None = None,
    retryable: bool | None = None,
) -> APIError:
    """The APIError subclass for ``response``'s status, with ``retry_after`` for 429."""
    cls = api_error_for_status(response.status_code)
    kwargs: dict[str, Any] = {
        "provider": provider,
        "status_code": response.status_code,
        "code": code,
        "request_id": response.request_id,
        "raw": response.json_or_none(),
        "retryable": retryable,
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
    {
        "content-type",
        "content-length",
        "retry-after",
        "x-request-id",
        "x-facturapi-log-id",
        "user-agent",
        "accept",
        "location",
        "date",
    }
)


def redact_headers(headers: Mapping[str, str]) -> dict[str, str]:
    """Headers with every value outside an allowlist replaced by ``[redacted]``."""
    return {k: (v if k.lower() in _SAFE_HEADERS else "[redacted]") for k, v in headers.items()}


# -- the one retry decision ---------------------------------------------------------------------------------------


class Verdict(enum.Enum):
    RETRY = "retry"  # send the same request again after ``delay``
    RAISE = "raise"  # the error is the answer
    UNKNOWN = "unknown"  # a write that may have acted: raise OutcomeUnknownError, never send it again


@dataclass(frozen=True)
class Decision:
    verdict: Verdict
    delay: float = 0.0


def may_have_acted(outcome: Answer | Failure, error: BillkitError) -> bool:
    """Whether the server may have carried out the request although no success came back."""
    if isinstance(outcome, Failure):
        return outcome.kind is not FailureKind.NOT_SENT
    if outcome.status_code == 429 or (isinstance(error, APIError) and error.retryable is True):
        return False  # refused before acting (the provider documents it)
    if outcome.status_code in RETRY_STATUSES:
        return True  # 408, 5xx: the server may have done it, then failed
    return outcome.status_code < 400  # any other 4xx: refused


def is_transient(outcome: Answer | Failure | None, error: BillkitError) -> bool:
    """Whether the same request may succeed later (the error says nothing final about it)."""
    if isinstance(outcome, Failure):
        return outcome.kind is not FailureKind.TOO_LARGE
    if isinstance(error, APIError):
        if error.retryable is not None:
            return error.retryable
        status = error.status_code or 0
        if isinstance(error, RateLimitError) and status != 429 and status not in RETRY_STATUSES:
            return False  # a provider's rate-limit code on another status (BILL's hourly limit): definitive
        return status in RETRY_STATUSES
    return isinstance(error, APIConnectionError)


def decide(
    request: Request,
    outcome: Answer | Failure,
    error: BillkitError,
    *,
    attempt: int,
    elapsed: float,
    acted_before: bool,
    policy: RetryPolicy,
    backoff: float,
) -> Decision:
    """What to do after attempt number ``attempt`` of ``request`` failed with ``error``: a pure function.

    ``elapsed`` is the time since the first attempt began, ``acted_before`` whether an earlier attempt may have
    acted, ``backoff`` the delay the policy's backoff gives for this attempt.
    """
    acted = acted_before or may_have_acted(outcome, error)
    writes_reference = request.method not in SAFE_METHODS and request.reference is not None

    def give_up() -> Decision:
        # "not created" would be a lie when an attempt may have acted: the outcome of such a write is unknown
        return Decision(Verdict.UNKNOWN if acted and writes_reference else Verdict.RAISE)

    if not is_transient(outcome, error):
        # a definitive answer, unless an attempt may have acted before it (or this one answered unreadably)
        acted_here = isinstance(outcome, Failure) and may_have_acted(outcome, error)
        return Decision(Verdict.UNKNOWN if writes_reference and (acted_before or acted_here) else Verdict.RAISE)
    if not request.safe and may_have_acted(outcome, error):
        return Decision(Verdict.UNKNOWN if writes_reference else Verdict.RAISE)
    if attempt >= policy.max_attempts:
        return give_up()
    hint = error.retry_after if isinstance(error, RateLimitError) else None
    if hint is None and isinstance(outcome, Answer):
        hint = parse_retry_after(outcome.headers.get("retry-after"))
    if hint is not None and hint > policy.max_retry_after:
        return give_up()  # too long to sleep: the caller decides (RateLimitError carries retry_after)
    delay = backoff if hint is None else hint
    if elapsed + delay >= policy.total_budget:
        return give_up()
    return Decision(Verdict.RETRY, delay)


# -- JSON ----------------------------------------------------------------------------------------------------------


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


def encode_body(body: Any, *, provider: str, prefix: str = "") -> bytes:
    """``body`` as the JSON bytes billkit sends, checked as it is written (one walk, not two): anything
    :func:`json_problems` would refuse raises :class:`ValidationError` naming every such part."""
    try:
        return dumps(body)
    except (TypeError, ValueError):
        check_sendable(body, provider=provider, prefix=prefix)
        unsendable = [Problem(f"{prefix}provider_options", "cannot be sent as JSON")]
        raise ValidationError(unsendable, provider=provider) from None


def check_sendable(body: Any, *, provider: str, prefix: str = "") -> None:
    """Raise :class:`ValidationError` listing every part of ``body`` that cannot be sent (see
    :func:`json_problems`); what a caller puts there comes through ``provider_options``."""
    unsendable = json_problems(body)
    if unsendable:
        raise ValidationError(
            [Problem(f"{prefix}provider_options: {where}", why) for where, why in unsendable], provider=provider
        )


_PLAIN = frozenset({str, bool, type(None)})
#: the largest whole number billkit writes (a longer one is no amount, and Python refuses to print past 4300 digits)
_MAX_INT = 10**100


def _json_problems(value: Any, path: str, out: list[tuple[str, str]]) -> None:
    kind = type(value)
    if kind in _PLAIN:
        return
    if kind is int:
        if not -_MAX_INT < value < _MAX_INT:
            out.append((path or "body", "a whole number of more than 100 digits is out of range"))
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
            if type(k) is not str:
                raise TypeError(f"a JSON key must be a string, not {k!r}")
            out.append(_encode_str(k))
            out.append(":")
            _encode(v, out)
        out.append("}")
    elif kind is Decimal:
        if not value.is_finite():
            raise ValueError(f"cannot send the non-finite number {value}")
        exp = value.as_tuple().exponent
        if isinstance(exp, int) and (exp < -100 or exp > 100 or (value and abs(value.adjusted()) > 100)):
            raise ValueError(f"{value} is out of range for a JSON number billkit sends")
        out.append(format(value, "f"))
    elif kind is int:
        if not -_MAX_INT < value < _MAX_INT:
            raise ValueError("a whole number of more than 100 digits is out of range")
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
        _encode(int(value), out)
    elif isinstance(value, Mapping):
        _encode(dict(value), out)
    elif isinstance(value, (list, tuple)):
        _encode(list(value), out)
    else:
        raise TypeError(f"not JSON serialisable: {type(value).__name__}")


# -- the transport -------------------------------------------------------------------------------------------------


def escape_segment(value: str, *, provider: str, what: str = "id") -> str:
    """``value`` as one URL path segment, or :class:`ValidationError` for an id that cannot be one."""
    if not isinstance(value, str) or value in ("", ".", ".."):
        raise ValidationError([Problem(what, f"{value!r} cannot name a resource")], provider=provider)
    return quote(value, safe="")


@dataclass
class TransportStats:
    """Counters for demos and benchmarks (approximate when threads share a client)."""

    requests: int = 0
    retries: int = 0


class Transport:
    """What one provider's requests share (base URL, headers, error parser, timeouts); :meth:`send` is a flow."""

    def __init__(
        self,
        *,
        provider: str,
        base_url: str,
        error_parser: ErrorParser,
        clock: Clock,
        timeouts: Timeouts | None = None,
        default_headers: Mapping[str, str] | None = None,
        request_id_header: str | None = None,
        max_response_bytes: int = DEFAULT_MAX_RESPONSE_BYTES,
        rng: random.Random | None = None,
    ) -> None:
        self.provider = provider
        self.base_url = base_url.rstrip("/")
        self.error_parser = error_parser
        self.clock = clock
        self.timeouts = timeouts or Timeouts()
        self._headers = dict(default_headers or {})
        self._json_headers = {**self._headers, "content-type": "application/json"}
        self._request_id_header = request_id_header
        self.max_response_bytes = max_response_bytes
        self._rng = rng or random.Random()
        self.stats = TransportStats()

    def __repr__(self) -> str:
        return f"Transport(provider={self.provider!r}, base_url={self.base_url!r})"

    def merge_client_headers(self, client_headers: Mapping[str, str]) -> None:
        """Send ``client_headers`` (an httpx client's defaults) under billkit's own, as httpx would have merged them."""
        self._headers = {**{k.lower(): v for k, v in client_headers.items()}, **self._headers}
        self._json_headers = {**self._headers, "content-type": "application/json"}

    def _exchange(self, request: Request) -> Exchange:
        path = request.path
        if request.ids:
            path = path.format(*(escape_segment(i, provider=self.provider) for i in request.ids))
        content = request.content
        if request.json is not None or request.encoded_json is not None:
            content = request.encoded_json if request.encoded_json is not None else dumps(request.json)
            headers = self._json_headers if not request.headers else {**self._json_headers, **request.headers}
        else:
            headers = self._headers if not request.headers else {**self._headers, **request.headers}
        return Exchange(
            request.method,
            self.base_url + path,
            request.params,
            headers,
            content,
            request.max_bytes or self.max_response_bytes,
            stream_to=request.stream_to,
        )

    def send(self, request: Request) -> Flow[Response]:
        """Send ``request`` (with the driver's RetryPolicy); a 2xx/3xx :class:`Response`, or a BillkitError."""
        policy = yield CURRENT_POLICY
        exchange = self._exchange(request)
        clock = self.clock
        start = clock.now()
        attempt = 0
        acted = False
        while True:
            attempt += 1
            elapsed = clock.now() - start
            left = policy.total_budget - elapsed
            this = exchange if left >= self.timeouts.longest else _with_timeout(exchange, self.timeouts.within(left))
            self.stats.requests += 1
            outcome = yield this
            if type(outcome) is Answer:
                request_id = outcome.headers.get(self._request_id_header) if self._request_id_header else None
                if logger.isEnabledFor(logging.DEBUG):
                    self._log(request, attempt, outcome.status_code, start, request_id)
                response = Response(outcome.status_code, outcome.headers, outcome.content, request_id, self.provider)
                if outcome.status_code < 400:
                    return response
                error = self._parse_error(response)
            else:
                if logger.isEnabledFor(logging.DEBUG):
                    self._log(request, attempt, None, start, None)
                error = self._failure_error(outcome)
            decision = decide(
                request,
                outcome,
                error,
                attempt=attempt,
                elapsed=clock.now() - start,
                acted_before=acted,
                policy=policy,
                backoff=policy.backoff(attempt, self._rng),
            )
            acted = acted or may_have_acted(outcome, error)
            retry_in = decision.delay if decision.verdict is Verdict.RETRY else None
            tracing.attempt_failed(self.provider, request.method, request.path, attempt, error, retry_in)
            if decision.verdict is Verdict.RETRY:
                self.stats.retries += 1
                logger.info(
                    "retrying %s %s after attempt %d in %.2fs: %s",
                    request.method,
                    request.path,
                    attempt,
                    decision.delay,
                    error,
                )
                yield Sleep(decision.delay)
                continue
            if decision.verdict is Verdict.UNKNOWN:
                raise self._unknown(request, error)
            raise error

    def _parse_error(self, response: Response) -> BillkitError:
        try:
            error = self.error_parser(response)
        except Exception as exc:  # an adapter's parser must not let a foreign exception out
            error = APIError(
                f"{self.provider} answered HTTP {response.status_code} ({type(exc).__name__} while reading the error)",
                provider=self.provider,
                status_code=response.status_code,
                request_id=response.request_id,
                raw=response.text[:500],
            )
        if isinstance(error, RateLimitError) and error.retry_after is None:
            error.retry_after = response.retry_after
        return error

    def _failure_error(self, failure: Failure) -> BillkitError:
        if failure.kind is FailureKind.NOT_SENT:
            return APIConnectionError(f"could not connect to {self.provider}: {failure.detail}", provider=self.provider)
        if failure.kind is FailureKind.TIMEOUT:
            return APITimeoutError(f"{self.provider} did not answer in time ({failure.detail})", provider=self.provider)
        if failure.kind is FailureKind.TOO_LARGE:
            return ResponseTooLargeError(
                f"{self.provider} answered HTTP {failure.status_code}, but {failure.detail}",
                provider=self.provider,
                status_code=failure.status_code,
            )
        return APIConnectionError(f"connection to {self.provider} dropped ({failure.detail})", provider=self.provider)

    def _unknown(self, request: Request, cause: BillkitError) -> OutcomeUnknownError:
        return OutcomeUnknownError(
            f"{request.method} {request.path} failed after it may have reached {self.provider} ({cause})",
            provider=self.provider,
            how_to_check=request.how_to_check,
            reference=request.reference,
            cause=cause,
        )

    def _log(self, request: Request, attempt: int, status: int | None, started: float, rid: str | None) -> None:
        logger.debug(
            "%s %s -> %s (attempt %d, %.3fs, request id %s)",
            request.method,
            request.path,
            status if status is not None else "no answer",
            attempt,
            self.clock.now() - started,
            rid,
        )


def _with_timeout(exchange: Exchange, timeout: httpx.Timeout) -> Exchange:
    return Exchange(
        exchange.method,
        exchange.url,
        exchange.params,
        exchange.headers,
        exchange.content,
        exchange.max_bytes,
        timeout,
        exchange.stream_to,
    )

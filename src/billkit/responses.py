"""The HTTP answer behind a result: :class:`ResponseInfo`, :class:`RawResponse` and the header rules they share.

Every call of a client that ends in HTTP answers (``create``, ``get``, ``submit``, ``submit_many``) keeps what those
answers were, without a second request and without keeping a body: a ``Bill`` it returns says
``bill.response`` (the answer it was read from), an operation says ``op.response``, and
``client.with_raw_response.create(bill)`` gives a :class:`RawResponse` with the status, headers and request id of
the call's last answer, every answer of the call (``responses``: a BILL login, retried 503s, each create of a
Facturapi bulk), and ``parse()``, the value the plain call returns.

**Headers.** ``ResponseInfo.headers`` is a read-only, case-insensitive mapping without any auth-related header
(see :func:`is_auth_header`: ``Set-Cookie``, ``WWW-Authenticate``, anything naming a token, session, key, secret,
password or signature), so an info object can be logged, pickled or sent to an error tracker. Bodies are not kept
(a BILL login answer holds the session id); the parsed body of a bill is ``bill.raw``.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Generic, TypeVar

import httpx

from billkit.errors import BillkitError

if TYPE_CHECKING:
    from billkit.flows import Seen
    from billkit.models import Bill

__all__ = ["RawResponse", "ResponseHeaders", "ResponseInfo", "is_auth_header"]

T = TypeVar("T", covariant=True)

#: a header whose lower-cased name holds one of these is auth-related: never shown, never set by a caller
_AUTH_WORDS = (
    "auth",
    "cookie",
    "token",
    "session",
    "secret",
    "password",
    "signature",
    "apikey",
    "api-key",
    "api_key",
    "devkey",
    "-key",
)
#: headers httpx or billkit write for each request: ``with_options(headers=...)`` cannot set them either
BILLKIT_HEADERS = frozenset({"host", "content-length", "transfer-encoding", "content-type", "connection"})
#: where a Bill keeps the answers it came from (a key of its ``__dict__`` that is no field: equality, hashing,
#: ``model_dump`` and ``repr`` ignore it; pickling and ``model_copy`` keep it)
_SLOT = "_billkit_responses"


def is_auth_header(name: str) -> bool:
    """Whether a header (by name) carries or asks for credentials: ``Authorization``, ``Cookie``/``Set-Cookie``,
    ``WWW-Authenticate``, ``X-Api-Key``, BILL's ``devKey`` and ``sessionId``, any ``...-Token``/``...-Key``."""
    lowered = name.lower()
    return any(word in lowered for word in _AUTH_WORDS)


class ResponseHeaders(Mapping[str, str]):
    """The headers of one answer, read-only and case-insensitive, without auth-related headers. A header sent
    several times reads as its values joined by ``", "`` (as ``httpx.Headers`` reads it). Made on first use."""

    __slots__ = ("_items", "_source")

    def __init__(self, source: httpx.Headers | Mapping[str, str]) -> None:
        self._source: httpx.Headers | Mapping[str, str] | None = source
        self._items: dict[str, str] | None = None

    def _made(self) -> dict[str, str]:
        items = self._items
        if items is None:
            source = self._source
            assert source is not None
            items = {}
            pairs = source.multi_items() if isinstance(source, httpx.Headers) else source.items()
            for key, value in pairs:
                name = key.lower()
                if not is_auth_header(name):
                    items[name] = f"{items[name]}, {value}" if name in items else value
            self._items, self._source = items, None
        return items

    def __getitem__(self, key: str) -> str:
        return self._made()[key.lower()]

    def __contains__(self, key: object) -> bool:
        return isinstance(key, str) and key.lower() in self._made()

    def __iter__(self) -> Iterator[str]:
        return iter(self._made())

    def __len__(self) -> int:
        return len(self._made())

    def __eq__(self, other: object) -> bool:
        if isinstance(other, Mapping):
            return self._made() == {str(k).lower(): v for k, v in other.items()}
        return NotImplemented

    def __hash__(self) -> int:
        return hash(frozenset(self._made().items()))

    def __repr__(self) -> str:
        return f"ResponseHeaders({self._made()!r})"

    def __reduce__(self) -> tuple[type[ResponseHeaders], tuple[dict[str, str]]]:
        return (ResponseHeaders, (dict(self._made()),))


@dataclass(frozen=True)
class ResponseInfo:
    """One HTTP answer: what came back for ``method url`` (no query string, no body), in ``elapsed`` seconds of
    wall time for that attempt. ``request_id`` is the id the provider's support asks for, read from the adapter's
    request id header (Facturapi's ``X-Facturapi-Log-Id``); None where the provider sends none (AcceptEasy, BILL)."""

    provider: str
    method: str
    url: str
    status_code: int
    headers: ResponseHeaders
    request_id: str | None
    elapsed: float

    @classmethod
    def of(cls, seen: Seen, provider: str, request_id_header: str | None) -> ResponseInfo:
        answer, exchange = seen.answer, seen.exchange
        request_id = answer.headers.get(request_id_header) if request_id_header else None
        return cls(
            provider,
            exchange.method,
            exchange.url,
            answer.status_code,
            ResponseHeaders(answer.headers),
            request_id,
            seen.elapsed,
        )

    def __repr__(self) -> str:
        return f"<ResponseInfo {self.method} {self.url} -> {self.status_code}, request id {self.request_id}>"


def infos(seen: list[Seen], provider: str, request_id_header: str | None) -> tuple[ResponseInfo, ...]:
    """The :class:`ResponseInfo` of each answer a capturing driver saw."""
    return tuple(ResponseInfo.of(s, provider, request_id_header) for s in seen)


def attach(bill: Bill, responses: tuple[ResponseInfo, ...]) -> Bill:
    """``bill``, now saying which answers it came from (``bill.response``). The same object: a Bill is frozen and
    these are no field of it, so nothing about its value changes."""
    if responses:
        object.__setattr__(bill, _SLOT, responses)
    return bill


def attached(bill: Bill) -> tuple[ResponseInfo, ...]:
    """The answers :func:`attach` gave ``bill`` (empty for a bill built locally)."""
    found: tuple[ResponseInfo, ...] = bill.__dict__.get(_SLOT, ())
    return found


class RawResponse(Generic[T]):
    """What ``client.with_raw_response.<call>(...)`` returns: the call's HTTP answers and its value.

    ``status_code``, ``headers``, ``request_id`` and ``elapsed`` are those of the **last** answer (the one the
    value was read from; for a Facturapi bulk, many creates, the last to arrive); ``responses`` holds every answer
    of the call in the order they came, retried ones included. ``parse()`` is the value the plain call returns
    (already read: under the async client too it is a plain method, nothing to await).
    """

    __slots__ = ("_value", "responses")

    def __init__(self, value: T, responses: tuple[ResponseInfo, ...]) -> None:
        self._value = value
        self.responses = responses

    @property
    def response(self) -> ResponseInfo:
        """The last answer of the call."""
        if not self.responses:
            raise BillkitError("this call got no HTTP answer")
        return self.responses[-1]

    @property
    def status_code(self) -> int:
        return self.response.status_code

    @property
    def headers(self) -> ResponseHeaders:
        return self.response.headers

    @property
    def request_id(self) -> str | None:
        return self.response.request_id

    @property
    def elapsed(self) -> float:
        return self.response.elapsed

    def parse(self) -> T:
        """The call's value (a Bill, an operation): the same object the call without ``with_raw_response`` gives."""
        return self._value

    def __repr__(self) -> str:
        last = self.responses[-1] if self.responses else None
        return f"<RawResponse {last!r} of {len(self.responses)} answer(s)>"

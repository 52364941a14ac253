"""Receiving webhooks: one receiver for every provider, served by any framework.

::

    receiver = billkit.webhooks.Receiver(client, secret=["whsec_new", "whsec_old"])
    app.mount("/webhooks/facturapi", receiver.asgi())          # Starlette / FastAPI (any ASGI server)
    app.add_url_rule("/webhooks/facturapi", view_func=receiver.flask_view(), methods=["POST"])   # Flask
    path("webhooks/facturapi", receiver.django_view())        # Django

Each delivery is handled the same way, whatever the framework:

1. the **raw body** is read as it arrived (the framework never parses it first: verifying a re-serialised body is
   the classic failure), and a body that does not say it is JSON is refused with 415;
2. it is **verified** with the client's provider (one secret, or several while one is rotated); a delivery that
   does not verify is answered 400 and nothing is processed;
3. it is **de-duplicated** by the event's id (Facturapi's ``id``, BILL's ``metadata.eventId``; AcceptEasy's
   notifications carry none, so the body's SHA-256 stands for it) in a :class:`SeenStore`: in memory by default
   (bounded), or the batch journal (``store=journal``: a :class:`~billkit.journal.Journal` is one, shared by every
   process using it); a replay is answered 200 and not processed again;
4. it is **handed on**: to ``client.handle_webhook_event`` (pending operations finish or advance at once), to
   ``on_event(event)`` if given, and to ``forward(body, headers)`` if given; then it is answered 200. An
   ``on_event`` or ``forward`` that raises answers 500 (the provider delivers again later) and the event is not
   marked seen.

**Futures in another process.** The process that receives webhooks is often not the one that waits (a web app
receives; a worker holds the pending operations). ``forward=Relay(worker_url)`` hands each verified, first-seen
delivery on to a receiver there, exactly as it arrived (raw body, the provider's signature headers), so that
receiver verifies it again with the same secret and the hop between them needs no trust of its own::

    edge = Receiver(web_client, secret=SECRET, store=journal, forward=Relay("http://10.0.0.7:9000/webhooks/facturapi"))
    worker_side = Receiver(worker_client, secret=SECRET)       # behind the worker's own little HTTP endpoint

An ``AsyncClient``'s events must be handled in its event loop's thread: use ``asgi()`` with it. The Flask and
Django views run in worker threads: give them a blocking ``billkit.Client``.
"""

from __future__ import annotations

import hashlib
import json
import threading
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar

import httpx
import pydantic

from billkit.errors import BillkitError, ConfigurationError, WebhookVerificationError
from billkit.isodates import datetime_from_iso

M = TypeVar("M", bound=pydantic.BaseModel)

__all__ = [
    "Delivery",
    "MemoryStore",
    "Receiver",
    "Relay",
    "SeenStore",
    "event_id",
    "event_time",
    "header_value",
    "load_event",
]


class SeenStore(Protocol):
    """Where a receiver remembers the events it processed."""

    def seen(self, key: str) -> bool:
        """Whether ``key`` was marked."""
        ...

    def mark(self, key: str) -> None:
        """Remember ``key``."""
        ...


class MemoryStore:
    """The last ``size`` event ids, in memory (thread-safe). Deliveries repeat within minutes or hours, so a bounded
    window is enough in one process; several processes need a shared store."""

    def __init__(self, size: int = 100_000) -> None:
        self._keys: OrderedDict[str, None] = OrderedDict()
        self._size = size
        self._lock = threading.Lock()

    def seen(self, key: str) -> bool:
        with self._lock:
            return key in self._keys

    def mark(self, key: str) -> None:
        with self._lock:
            self._keys[key] = None
            self._keys.move_to_end(key)
            while len(self._keys) > self._size:
                self._keys.popitem(last=False)


@dataclass(frozen=True)
class Delivery:
    """What a receiver did with one request: the HTTP status to answer, and why."""

    status: int
    message: str
    event: Any = None
    duplicate: bool = False
    matched: int = 0


def event_id(event: Any, body: bytes) -> str:
    """The id to de-duplicate ``event`` on: its own id where the provider gives one, else the body's SHA-256."""
    own = getattr(event, "id", None)
    if isinstance(own, str) and own:
        return own
    return "sha256:" + hashlib.sha256(body).hexdigest()


# -- what the providers' verifiers share ------------------------------------------------------------------------
def header_value(headers: Mapping[str, str], name: str) -> str | None:
    """The value of header ``name``, whatever its case in ``headers`` (a plain dict from any framework)."""
    wanted = name.lower()
    for key, value in headers.items():
        if key.lower() == wanted:
            return value
    return None


def load_event(body: bytes, model: type[M], provider: str, *, shape: Callable[[Any], str | None] | None = None) -> M:
    """``body`` (verified) parsed into ``model``, numbers exact; :class:`WebhookVerificationError` when it is not
    JSON, not an object, refused by ``shape`` (which says why), or not an event of ``model``'s shape."""
    from billkit.money import loads_decimal

    try:
        data = loads_decimal(body)
    except (ValueError, UnicodeDecodeError, RecursionError) as exc:
        raise WebhookVerificationError(f"webhook body is not JSON: {exc}", provider=provider) from None
    if not isinstance(data, Mapping):
        raise WebhookVerificationError("webhook body is not a JSON object", provider=provider)
    why = shape(data) if shape is not None else None
    if why is not None:
        raise WebhookVerificationError(f"webhook body is not an event: {why}", provider=provider)
    try:
        return model.model_validate(data)
    except pydantic.ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        raise WebhookVerificationError(f"webhook body is not an event ({where}: {first['msg']})",
                                       provider=provider) from None  # fmt: skip


def event_time(value: str | None) -> float | None:
    """An ISO 8601 event or update time as epoch seconds (the order of a provider's events), or None."""
    if not value:
        return None
    try:
        return datetime_from_iso(value.replace("Z", "+00:00")).timestamp()
    except ValueError:
        return None


def _json(headers: Mapping[str, str]) -> bool:
    for name, value in headers.items():
        if name.lower() == "content-type":
            kind = value.split(";", 1)[0].strip().lower()
            return kind == "application/json" or kind.endswith("+json")
    return False


class Receiver:
    """Verifies, de-duplicates and hands on the webhook deliveries of ``client``'s provider (see the module)."""

    def __init__(self, client: Any, *, secret: str | Sequence[str], on_event: Callable[[Any], Any] | None = None,
                 store: SeenStore | None = None,
                 forward: Callable[[bytes, Mapping[str, str]], Any] | None = None) -> None:  # fmt: skip
        self.client = client
        self.secret = secret
        self.on_event = on_event
        self.forward = forward
        self.store: SeenStore = store if store is not None else MemoryStore()
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"Receiver({self.client.provider!r}, secret=[redacted])"

    def receive(self, body: bytes, headers: Mapping[str, str]) -> Delivery:
        """Handle one delivery: the raw ``body`` and its headers. Never raises for a bad delivery."""
        if not _json(headers):
            return Delivery(415, "a webhook body must be JSON (content-type application/json)")
        try:
            event = self.client.verify_webhook(body, headers, self.secret)
        except WebhookVerificationError as exc:
            return Delivery(400, exc.message)
        key = event_id(event, body)
        with self._lock:  # two copies of one delivery at once are processed once
            if self.store.seen(key):
                return Delivery(200, "already processed", event, duplicate=True)
            matched = self.client.handle_webhook_event(event)
            if self.on_event is not None:
                try:
                    self.on_event(event)
                except Exception as exc:  # the provider delivers again later; the event is not marked seen
                    return Delivery(500, f"on_event failed: {type(exc).__name__}", event, matched=matched)
            if self.forward is not None:
                try:
                    self.forward(body, headers)
                except Exception as exc:  # as for on_event: delivered again later, not marked seen
                    return Delivery(500, f"forward failed: {type(exc).__name__}", event, matched=matched)
            self.store.mark(key)
        return Delivery(200, "processed", event, matched=matched)

    # -- frameworks ------------------------------------------------------------------------------------------------
    def asgi(self) -> Callable[[Any, Any, Any], Awaitable[None]]:
        """A raw ASGI app (no framework needed) answering POST deliveries: mount it in Starlette or FastAPI."""

        async def app(scope: Any, receive: Any, send: Any) -> None:
            if scope["type"] != "http":
                return
            if scope.get("method") != "POST":
                return await _answer(send, 405, "POST only")
            chunks = []
            while True:
                message = await receive()
                chunks.append(message.get("body", b""))
                if not message.get("more_body"):
                    break
            headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in scope.get("headers", [])}
            done = self.receive(b"".join(chunks), headers)
            await _answer(send, done.status, done.message)

        return app

    def flask_view(self) -> Callable[[], Any]:
        """A Flask view: ``app.add_url_rule(path, view_func=receiver.flask_view(), methods=["POST"])``."""
        from flask import request

        def view() -> Any:
            done = self.receive(request.get_data(cache=False), dict(request.headers))
            return {"message": done.message}, done.status

        view.__name__ = f"billkit_{self.client.provider}_webhook"
        return view

    def django_view(self) -> Callable[[Any], Any]:
        """A Django view (CSRF-exempt, POST only): ``path("webhooks/facturapi", receiver.django_view())``."""
        from django.http import JsonResponse
        from django.views.decorators.csrf import csrf_exempt
        from django.views.decorators.http import require_POST

        def view(request: Any) -> Any:
            done = self.receive(bytes(request.body), dict(request.headers))
            return JsonResponse({"message": done.message}, status=done.status)

        wrapped: Callable[[Any], Any] = csrf_exempt(require_POST(view))
        return wrapped


#: headers that belong to one HTTP hop, not to the delivery: a relay does not pass them on
_HOP_HEADERS = frozenset({"host", "content-length", "connection", "keep-alive", "transfer-encoding", "te",
                          "trailer", "upgrade", "expect", "accept-encoding", "proxy-authorization",
                          "proxy-connection"})  # fmt: skip


class Relay:
    """Hands verified deliveries on to receivers in other processes: a :class:`Receiver`'s ``forward``.

    ``Receiver(client, secret=SECRET, forward=Relay("http://worker:9000/webhooks/facturapi"))``: every delivery the
    receiver processes (verified, first seen) is POSTed to each URL exactly as it arrived, the raw body and the
    provider's headers (its signature, or AcceptEasy's Basic credentials) with only the hop's own headers left out.
    The receiver there verifies it again with the same secret, de-duplicates it and hands it to its client, whose
    pending operations finish at once; nothing between the two processes needs to be trusted.

    A URL that cannot be reached in ``timeout`` seconds, or that answers other than 2xx, raises
    :class:`~billkit.errors.BillkitError`; the edge receiver then answers 500 and does not mark the event seen, so
    the provider delivers it again later (the URLs that had it already answer it as a duplicate). The POSTs run in
    the edge receiver's request (in ``asgi()``, on its event loop), one URL after the other, while the receiver
    holds its lock: send them to nearby processes, with a short ``timeout``. Thread-safe; ``close()`` (or
    ``with``) closes its connection pool. ``transport``: an httpx transport, for tests.
    """

    def __init__(self, *urls: str, timeout: float = 5.0, transport: httpx.BaseTransport | None = None) -> None:
        if not urls:
            raise ConfigurationError("Relay needs at least one URL to forward deliveries to")
        self.urls = tuple(urls)
        self._http = httpx.Client(timeout=timeout, transport=transport, follow_redirects=False)

    def __repr__(self) -> str:
        return f"Relay({', '.join(_shown(u) for u in self.urls)})"

    def __call__(self, body: bytes, headers: Mapping[str, str]) -> None:
        """POST one delivery (``body`` and ``headers`` as they arrived) to every URL; raise if any does not take it."""
        passed = {name: value for name, value in headers.items() if name.lower() not in _HOP_HEADERS}
        for url in self.urls:
            try:
                answer = self._http.post(url, content=body, headers=passed)
            except httpx.HTTPError as exc:
                raise BillkitError(f"relay to {_shown(url)} failed: {type(exc).__name__}") from None
            if not 200 <= answer.status_code < 300:
                raise BillkitError(f"relay to {_shown(url)} answered {answer.status_code}")

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> Relay:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _shown(url: str) -> str:
    """``url`` without any credentials it carries (for messages)."""
    parsed = httpx.URL(url)
    return str(parsed.copy_with(username=None, password=None)) if parsed.userinfo else url


async def _answer(send: Any, status: int, message: str) -> None:
    body = json.dumps({"message": message}).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})

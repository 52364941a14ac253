"""BILL webhook subscriptions: the webhooks API (``/connect-events``), as flows over the adapter's session.

**Where.** BILL serves webhook subscriptions from another base URL than its main API (H): sandbox
``https://gateway.stage.bill.com/connect-events``, production ``https://gateway.prod.bill.com/connect-events``,
beside ``.../connect``. The client's ``events_base_url`` option (or ``BILL_EVENTS_BASE_URL``) sets it; otherwise it
is derived from the client's base URL by replacing its trailing ``/connect`` with ``/connect-events``
(:func:`derive_events_base_url`), which also gives the in-process and the served sandbox (one host serves both).
A base URL that does not end in ``/connect`` has no such twin: the first subscription call then raises
:class:`~billkit.errors.ConfigurationError` asking for ``events_base_url`` (billkit does not guess). The same
session (``devKey``, ``sessionId``), the same 3 request slots and the same error array as the main API are used.

**Endpoints** (H: BILL's changelog of 2024-05-06 and API reference): ``POST /v3/subscriptions`` (create),
``GET /v3/subscriptions`` (list), ``GET``/``PUT``/``PATCH``/``DELETE /v3/subscriptions/{id}``,
``POST /v3/subscriptions/{id}/test`` (a test notification), ``GET /v3/events/subscription/{id}`` (the event
history, 180 days), ``POST /v3/events/subscription/{id}/event/{eventId}`` (resend) and
``POST /v3/subscriptions/{id}/security_key`` (a new key; BILL's general-rules page spells it ``security-key``, its
changelog and API reference ``security_key``: billkit uses the reference's). Success answers are HTTP 200 (H).

**Retries.** The create carries ``X-Idempotent-Key`` (a UUID4, required by BILL), made once per call (or given)
and sent unchanged on every attempt, including the one repeated after a new login: the request is marked
idempotent, so it is retried after a dropped connection, a timeout or a 5xx, and a retry never makes a second
subscription. What BILL answers to a replayed key is not documented (L): if it is the subscription, billkit
returns it; if it is an error after an earlier attempt may have acted, the call raises
:class:`~billkit.errors.OutcomeUnknownError` saying how to check (BILL also refuses a second subscription with the
same events and notification URL, H). The new security key is requested the same way. PUT, PATCH, DELETE, the test
send and the resend carry no key, so they follow the shared fail-closed rules: retried only when they provably
never arrived or BILL refused them before acting; an update or a delete whose outcome is unknown is checked with
one safe read (a GET showing the wanted state, or a 404 after a delete, settles it), else
:class:`~billkit.errors.OutcomeUnknownError`.

**Validation before any request** (one :class:`~billkit.errors.ValidationError` listing every problem): a name,
an HTTPS notification URL with a host (BILL requires HTTPS, H), at least one event, each named
``<object>.<action>`` and listed once, a version that is not empty, and an idempotency key in the UUID4 format.
BILL allows 10 subscriptions per organization and no two with the same events and notification URL (H): those
are left to BILL, which refuses them.

**The security key** is returned once, in the answer to the create (H): :attr:`Subscription.security_key` is a
:class:`~pydantic.SecretStr` (masked in repr, ``str`` and JSON dumps) and is None on every later read. An error
raised while reading that answer carries it redacted. A key that was lost (a create whose answers all failed) is
replaced with :func:`rotate_security_key`.
"""

from __future__ import annotations

import hashlib
import re
import uuid
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import pydantic

from billkit.errors import (
    APIError,
    ConfigurationError,
    NotFoundError,
    OutcomeUnknownError,
    Problem,
    ValidationError,
)
from billkit.flows import Flow
from billkit.providers.billcom.mapping import PROVIDER
from billkit.providers.billcom.wire import (
    EventNotification,
    EventSpec,
    Subscription,
    SubscriptionPatch,
    SubscriptionRequest,
    SubscriptionStatus,
)
from billkit.transport import Response, check_sendable, read_model

if TYPE_CHECKING:
    from billkit.providers.billcom.client import BillcomAdapter

__all__ = [
    "EVENTS_API",
    "IDEMPOTENCY_HEADER",
    "EventInput",
    "build_patch",
    "build_request",
    "check_events_base_url",
    "check_idempotency_key",
    "create",
    "delete",
    "derive_events_base_url",
    "get",
    "history",
    "list_all",
    "read_subscription",
    "replace",
    "resend",
    "rotate_security_key",
    "send_test",
    "stable_idempotency_key",
    "update",
]

#: the adapter's name for the webhooks API (``BillcomAdapter.call(..., api=EVENTS_API)``)
EVENTS_API = "events"
IDEMPOTENCY_HEADER = "X-Idempotent-Key"
#: an event given as its type (version "1") or as an :class:`EventSpec`
EventInput = str | EventSpec

_EVENT_TYPE = re.compile(r"^[A-Za-z][A-Za-z0-9_-]*(\.[A-Za-z0-9_-]+)+$")


# -- where the webhooks API lives ------------------------------------------------------------------------------


def derive_events_base_url(base_url: str) -> str:
    """The webhooks API's base URL for the main API's ``base_url``: a trailing ``/connect`` becomes
    ``/connect-events`` (``https://gateway.prod.bill.com/connect`` -> ``https://gateway.prod.bill.com/connect-events``;
    the in-process and served sandboxes follow the same rule). A base already ending in ``/connect-events`` is kept.
    Anything else raises :class:`ConfigurationError`: pass ``events_base_url`` (or set ``BILL_EVENTS_BASE_URL``)."""
    url = base_url.rstrip("/")
    parts = urlsplit(url)
    if parts.query or parts.fragment:
        raise ConfigurationError(f"base_url {base_url!r} has a query or fragment: pass events_base_url=... (or set "
                                 "BILL_EVENTS_BASE_URL)", provider=PROVIDER)  # fmt: skip
    if url.endswith("/connect-events"):
        return url
    if url.endswith("/connect"):
        return url + "-events"
    raise ConfigurationError(
        f"cannot tell BILL's webhooks API base URL from base_url {base_url!r} (it does not end in /connect): pass "
        "events_base_url=... (or set BILL_EVENTS_BASE_URL), e.g. https://gateway.prod.bill.com/connect-events",
        provider=PROVIDER,
    )


def check_events_base_url(value: str) -> str:
    """An explicit ``events_base_url``, checked: an http(s) URL with a host, no query (trailing ``/`` dropped)."""
    parts = urlsplit(value.strip())
    if parts.scheme not in ("https", "http") or not parts.netloc or parts.query or parts.fragment:
        raise ConfigurationError(f"events_base_url {value!r} is not an http(s) base URL", provider=PROVIDER)
    return value.strip().rstrip("/")


# -- input checks --------------------------------------------------------------------------------------------


def stable_idempotency_key(seed: str) -> str:
    """A UUID4-formatted ``X-Idempotent-Key`` derived from ``seed`` (the business identity of the subscription, e.g.
    ``"acme-prod/bill-events"``), so a create repeated from another process, or after a restart, sends the same
    key. BILL only accepts the UUID4 format: this is 122 bits of SHA-256 of the seed with the version-4 bits set."""
    digest = hashlib.sha256(seed.encode("utf-8")).digest()
    return str(uuid.UUID(bytes=digest[:16], version=4))


def check_idempotency_key(key: str | uuid.UUID | None, problems: list[Problem]) -> str:
    """``key`` as BILL wants it (a lower-case UUID4 string), a new one when None; a bad key is added to
    ``problems``."""
    if key is None:
        return str(uuid.uuid4())
    try:
        parsed = key if isinstance(key, uuid.UUID) else uuid.UUID(str(key))
    except (ValueError, TypeError, AttributeError):
        problems.append(Problem("idempotency_key", f"{key!r} is not a UUID (BILL requires the UUID4 format)"))
        return ""
    if parsed.version != 4 or parsed.variant != uuid.RFC_4122:
        problems.append(Problem("idempotency_key", f"{key!r} is not a version-4 UUID (BILL requires UUID4)"))
        return ""
    return str(parsed)


def _check_name(name: object, problems: list[Problem]) -> None:
    if not isinstance(name, str) or not name.strip():
        problems.append(Problem("name", "a subscription needs a name"))


def _check_url(url: object, problems: list[Problem]) -> None:
    if not isinstance(url, str):
        problems.append(Problem("notification_url", "must be a URL string"))
        return
    try:
        parts = urlsplit(url)
        host = parts.hostname
    except ValueError:
        problems.append(Problem("notification_url", f"{url!r} is not a URL"))
        return
    if parts.scheme != "https":
        problems.append(Problem("notification_url", f"{url!r}: BILL sends notifications to HTTPS URLs only"))
    elif not host or any(c.isspace() for c in url):
        problems.append(Problem("notification_url", f"{url!r} is not a URL with a host"))


def _events(events: object, problems: list[Problem]) -> list[EventSpec]:
    if isinstance(events, (str, EventSpec)) or not isinstance(events, Sequence):
        problems.append(Problem("events", "give a list of events, e.g. ['bill.created', 'bill.updated']"))
        return []
    if not events:
        problems.append(Problem("events", "a subscription needs at least one event"))
        return []
    out: list[EventSpec] = []
    seen: set[str] = set()
    for i, item in enumerate(events):
        spec: EventSpec | None = None
        if isinstance(item, EventSpec):
            spec = item
        elif isinstance(item, str):
            try:
                spec = EventSpec(type=item.strip())
            except pydantic.ValidationError:
                spec = None
        if spec is None:
            problems.append(Problem(f"events[{i}]", f"{item!r} is not an event type or an EventSpec"))
            continue
        if not _EVENT_TYPE.match(spec.type):
            problems.append(Problem(f"events[{i}]", f"{spec.type!r} is not an event type like 'bill.created'"))
            continue
        if not spec.version.strip():
            problems.append(Problem(f"events[{i}].version", "must not be empty"))
            continue
        if spec.type in seen:
            problems.append(Problem(f"events[{i}]", f"{spec.type!r} is listed twice"))
            continue
        seen.add(spec.type)
        out.append(spec)
    return out


def build_request(name: str, notification_url: str, events: Sequence[EventInput], enabled: bool,
                  problems: list[Problem]) -> SubscriptionRequest | None:  # fmt: skip
    """The create / replace body, or None with every problem added to ``problems``."""
    _check_name(name, problems)
    _check_url(notification_url, problems)
    specs = _events(events, problems)
    if not isinstance(enabled, bool):
        problems.append(Problem("enabled", "must be True or False"))
    if problems:
        return None
    return SubscriptionRequest(name=name, status=SubscriptionStatus(enabled=enabled), events=specs,
                               notification_url=notification_url)  # fmt: skip


def build_patch(*, name: str | None, notification_url: str | None, events: Sequence[EventInput] | None,
                enabled: bool | None) -> SubscriptionPatch:  # fmt: skip
    """The PATCH body with only the fields given; raises :class:`ValidationError` (nothing given counts)."""
    problems: list[Problem] = []
    if name is not None:
        _check_name(name, problems)
    if notification_url is not None:
        _check_url(notification_url, problems)
    specs = _events(events, problems) if events is not None else None
    if enabled is not None and not isinstance(enabled, bool):
        problems.append(Problem("enabled", "must be True or False"))
    if name is None and notification_url is None and events is None and enabled is None:
        problems.append(Problem("", "nothing to update: give name, notification_url, events or enabled"))
    if problems:
        raise ValidationError(problems, provider=PROVIDER)
    return SubscriptionPatch(name=name, notification_url=notification_url, events=specs,
                             status=SubscriptionStatus(enabled=enabled) if enabled is not None else None)  # fmt: skip


def _check_id(subscription_id: object, what: str = "subscription_id") -> None:
    if not isinstance(subscription_id, str) or not subscription_id.strip():
        raise ValidationError([Problem(what, "must be a BILL id (a non-empty string)")], provider=PROVIDER)


# -- reading answers -------------------------------------------------------------------------------------------


def _redacted(data: Any) -> Any:
    if isinstance(data, dict):
        return {k: ("[redacted]" if k == "securityKey" else _redacted(v)) for k, v in data.items()}
    if isinstance(data, list):
        return [_redacted(v) for v in data]
    return data


def read_subscription(response: Response) -> Subscription:
    """The answer as a :class:`Subscription`; an answer of another shape raises :class:`APIError` whose ``raw`` has
    the security key redacted (and whose message never quotes the body)."""
    data = response.json()
    try:
        return Subscription.model_validate(data)
    except (pydantic.ValidationError, ValueError, TypeError):
        raise APIError(f"BILL answered HTTP {response.status_code} with a body billkit cannot read as a subscription",
                       provider=PROVIDER, status_code=response.status_code, request_id=response.request_id,
                       raw=_redacted(data)) from None  # fmt: skip


def _items(data: Any) -> tuple[list[Any], str | None]:
    """A list answer's items and its ``nextPage``: BILL does not document whether the webhooks API lists as a bare
    array or as ``{results, nextPage}`` (L), so both are read."""
    if isinstance(data, list):
        return data, None
    if isinstance(data, dict) and isinstance(data.get("results"), list):
        page = data.get("nextPage")
        return data["results"], page if isinstance(page, str) and page else None
    raise APIError("BILL answered a list with a body that is neither an array nor {results: [...]}",
                   provider=PROVIDER, raw=_redacted(data))  # fmt: skip


def _check_secret(subscription: Subscription, response: Response) -> Subscription:
    if subscription.security_key is not None and not subscription.security_key.get_secret_value():
        raise APIError("BILL answered the create with an empty securityKey", provider=PROVIDER,
                       status_code=response.status_code, request_id=response.request_id)  # fmt: skip
    return subscription


# -- the flows ---------------------------------------------------------------------------------------------------


def _how_to_check_create(name: str, url: str) -> str:
    return (
        f"list the subscriptions (client.native.list_subscriptions()) and look for {name!r} with notification URL "
        f"{url!r} before creating it again (BILL refuses a second one with the same events and URL). If it exists, "
        "its securityKey was in the lost answer: get a new one with client.native.rotate_security_key(id)."
    )


def create(adapter: BillcomAdapter, request: SubscriptionRequest, key: str) -> Flow[Subscription]:
    """``POST /v3/subscriptions`` with ``X-Idempotent-Key: key`` on every attempt (retried as an idempotent write)."""
    response = yield from adapter.call(
        "POST", "/v3/subscriptions", json=request.to_json(), headers={IDEMPOTENCY_HEADER: key}, idempotent=True,
        api=EVENTS_API, reference=request.name, check=_how_to_check_create(request.name, request.notification_url),
    )  # fmt: skip
    return _check_secret(read_subscription(response), response)


def list_all(adapter: BillcomAdapter) -> Flow[list[Subscription]]:
    """Every subscription (``GET /v3/subscriptions``; ``nextPage`` followed if BILL sends one)."""
    out: list[Subscription] = []
    params: dict[str, str] = {}
    for _ in range(1000):  # BILL allows 10 per organization; a cursor that never ends is BILL's bug, not a loop
        response = yield from adapter.call("GET", "/v3/subscriptions", params=params or None, api=EVENTS_API)
        items, next_page = _items(response.json())
        out.extend(read_model(Subscription, item, provider=PROVIDER, response=response) for item in items)
        if next_page is None:
            return out
        params = {"page": next_page}
    raise APIError("BILL's subscription list did not end after 1000 pages", provider=PROVIDER)


def get(adapter: BillcomAdapter, subscription_id: str) -> Flow[Subscription]:
    _check_id(subscription_id)
    response = yield from adapter.call("GET", "/v3/subscriptions/{}", ids=(subscription_id,), api=EVENTS_API)
    return read_subscription(response)


def _holds(found: Subscription, wanted: SubscriptionPatch | SubscriptionRequest) -> bool:
    """Whether ``found`` already is in the state a PUT or PATCH asked for (the fields it sets)."""
    if wanted.name is not None and found.name != wanted.name:
        return False
    if wanted.notification_url is not None and found.notification_url != wanted.notification_url:
        return False
    if wanted.status is not None and found.enabled is not wanted.status.enabled:
        return False
    if wanted.events is not None:
        have = sorted((e.type or "", e.version or "") for e in found.events)
        if have != sorted((e.type, e.version) for e in wanted.events):
            return False
    return True


def _write(adapter: BillcomAdapter, method: str, subscription_id: str,
           body: SubscriptionPatch | SubscriptionRequest) -> Flow[Subscription]:  # fmt: skip
    check = (f"read the subscription (client.native.get_subscription({subscription_id!r})) and compare it with the "
             "change before sending it again")  # fmt: skip
    try:
        response = yield from adapter.call(method, "/v3/subscriptions/{}", ids=(subscription_id,), json=body.to_json(),
                                           api=EVENTS_API, reference=subscription_id, check=check)  # fmt: skip
    except OutcomeUnknownError as unknown:
        try:
            found = yield from get(adapter, subscription_id)
        except APIError:
            found = None
        if found is not None and _holds(found, body):
            return found
        raise unknown
    return read_subscription(response)


def update(adapter: BillcomAdapter, subscription_id: str, patch: SubscriptionPatch) -> Flow[Subscription]:
    """``PATCH /v3/subscriptions/{id}`` with the fields set."""
    _check_id(subscription_id)
    return (yield from _write(adapter, "PATCH", subscription_id, patch))


def replace(adapter: BillcomAdapter, subscription_id: str, request: SubscriptionRequest) -> Flow[Subscription]:
    """``PUT /v3/subscriptions/{id}`` with the whole subscription."""
    _check_id(subscription_id)
    return (yield from _write(adapter, "PUT", subscription_id, request))


def delete(adapter: BillcomAdapter, subscription_id: str) -> Flow[None]:
    """``DELETE /v3/subscriptions/{id}``. When the answer is lost, one GET settles it: a 404 means it is gone."""
    _check_id(subscription_id)
    check = f"read the subscription (client.native.get_subscription({subscription_id!r})): a 404 means it is deleted"
    try:
        yield from adapter.call("DELETE", "/v3/subscriptions/{}", ids=(subscription_id,), api=EVENTS_API,
                                reference=subscription_id, check=check)  # fmt: skip
    except OutcomeUnknownError as unknown:
        try:
            yield from get(adapter, subscription_id)
        except NotFoundError:
            return
        except APIError:
            pass
        raise unknown


def send_test(adapter: BillcomAdapter, subscription_id: str, event_type: str | None, version: str | None,
               payload: Mapping[str, Any] | None) -> Flow[dict[str, Any]]:  # fmt: skip
    """``POST /v3/subscriptions/{id}/test``: BILL sends a test notification (test values) to the subscription's URL.

    Every body field is optional (H): ``eventType``, ``version`` and an object named after the event's object
    (``bill``, ``vendor``, ``payment``, ...) to see in the notification, from ``payload``. BILL's answer is not
    documented (L): it is returned as it came (``{}`` when empty). Not retried once it may have reached BILL (one
    more test notification would be harmless, but the shared rules fail closed).
    """
    _check_id(subscription_id)
    body: dict[str, Any] = {}
    problems: list[Problem] = []
    if event_type is not None:
        if not isinstance(event_type, str) or not _EVENT_TYPE.match(event_type):
            problems.append(Problem("event_type", f"{event_type!r} is not an event type like 'bill.created'"))
        body["eventType"] = event_type
    if version is not None:
        if not isinstance(version, str) or not version.strip():
            problems.append(Problem("version", "must not be empty"))
        body["version"] = version
    if payload is not None:
        if not isinstance(payload, Mapping):
            problems.append(Problem("payload", "must be a mapping such as {'bill': {...}}"))
        else:
            clash = sorted(set(payload) & {"eventType", "version"})
            if clash:
                problems.append(Problem("payload", f"{', '.join(clash)}: pass event_type / version instead"))
            body.update(payload)
    if problems:
        raise ValidationError(problems, provider=PROVIDER)
    check_sendable(body, provider=PROVIDER)
    response = yield from adapter.call("POST", "/v3/subscriptions/{}/test", ids=(subscription_id,), json=body,
                                       api=EVENTS_API)  # fmt: skip
    data = response.json_or_none() if response.content else None
    return data if isinstance(data, dict) else ({"answer": data} if data is not None else {})


def history(adapter: BillcomAdapter, subscription_id: str, filters: str | None) -> Flow[list[EventNotification]]:
    """``GET /v3/events/subscription/{id}``: the notifications BILL sent for the subscription (180 days, H).

    ``filters`` is passed as BILL's ``filters`` parameter (``entityId:eq:00n...`` narrows it to one bill: BILL
    documents the ``entityId`` filter, not its syntax, L). ``nextPage`` is followed if BILL sends one.
    """
    _check_id(subscription_id)
    out: list[EventNotification] = []
    params: dict[str, str] = {"filters": filters} if filters else {}
    for _ in range(1000):
        response = yield from adapter.call("GET", "/v3/events/subscription/{}", ids=(subscription_id,),
                                           params=params or None, api=EVENTS_API)  # fmt: skip
        items, next_page = _items(response.json())
        out.extend(read_model(EventNotification, item, provider=PROVIDER, response=response) for item in items)
        if next_page is None:
            return out
        params = {**params, "page": next_page}
    raise APIError("BILL's event history did not end after 1000 pages", provider=PROVIDER)


def resend(adapter: BillcomAdapter, subscription_id: str, event_id: str) -> Flow[None]:
    """``POST /v3/events/subscription/{id}/event/{eventId}``: BILL sends that notification again (receivers
    de-duplicate on ``metadata.eventId``, so a resend is safe for them)."""
    _check_id(subscription_id)
    _check_id(event_id, "event_id")
    yield from adapter.call("POST", "/v3/events/subscription/{}/event/{}", ids=(subscription_id, event_id),
                            api=EVENTS_API)  # fmt: skip


def rotate_security_key(adapter: BillcomAdapter, subscription_id: str, key: str) -> Flow[pydantic.SecretStr]:
    """``POST /v3/subscriptions/{id}/security_key`` (with ``X-Idempotent-Key``, as BILL's reference asks): BILL makes
    a new security key and signs later notifications with it. The answer's shape is not documented (L): the
    ``securityKey`` is taken from its top level. Retried with the same key, like the create: a repeated rotation can
    only leave the latest key, which is the one returned."""
    _check_id(subscription_id)
    response = yield from adapter.call("POST", "/v3/subscriptions/{}/security_key", ids=(subscription_id,),
                                       headers={IDEMPOTENCY_HEADER: key}, idempotent=True, api=EVENTS_API)  # fmt: skip
    data = response.json_or_none()
    value = data.get("securityKey") if isinstance(data, dict) else None
    if not isinstance(value, str) or not value:
        raise APIError("BILL's answer to the new security key has no securityKey", provider=PROVIDER,
                       status_code=response.status_code, request_id=response.request_id,
                       raw=_redacted(data))  # fmt: skip
    return pydantic.SecretStr(value)

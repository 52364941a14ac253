"""AcceptEasy webhooks: typed events from the flat bodies, Basic-auth and source-IP checks.

AcceptEasy's notifications have no envelope and no signature. The event is told by ``STATUS``
(CreationSucceeded, CreationFailed, Paid, Bounced; a mandate's Revoked is undocumented and parses as
:class:`OtherBillEvent`) or by the presence of ``BulkId`` (bulk ProcessingCompleted). ``ERROR`` is ``null``, a
string (2018-2019 docs) or ``{"Message": ...}`` (current docs); both parse.

**Authenticity.** The only documented means are Basic-auth credentials embedded in the notification URL
(``https://user:password@example.com/notify``), checked here in constant time, and a published list of source
IPs (the vendor "doesn't advise" allow-listing; :func:`check_source_ip` is optional). Neither proves the body,
so treat an event as a hint: re-read the bill (``client.get(atid)``) before acting on it, as the vendor advises.
The adapter does exactly that: a webhook makes the matching operation re-read at once, except a
CreationFailed, which fails its operation with the message it carries.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import ipaddress
import json
from collections.abc import Mapping
from typing import Any

import pydantic

from billkit.errors import WebhookVerificationError
from billkit.money import loads_decimal
from billkit.providers.accepteasy.mapping import PROVIDER
from billkit.providers.accepteasy.wire import AsyncStatus, BulkStatus

__all__ = [
    "SOURCE_IPS",
    "BouncedEvent",
    "BulkCompletedEvent",
    "CreationFailedEvent",
    "CreationSucceededEvent",
    "OtherBillEvent",
    "PaidEvent",
    "WebhookEvent",
    "check_basic_auth",
    "check_source_ip",
    "parse_event",
    "verify",
]

#: The source addresses AcceptEasy publishes for its notifications ([SER] webhooks.md).
SOURCE_IPS = frozenset(
    {"104.40.179.234", "104.40.159.161", "191.233.82.46", "104.46.48.100", "23.97.175.30", "23.97.171.104",
     "23.97.174.120", "23.97.215.165"}
)  # fmt: skip


class CreationSucceededEvent(AsyncStatus):
    """A bill was created (sync or async)."""


class CreationFailedEvent(AsyncStatus):
    """An async creation failed; ``ERROR.Message`` says why (``ERROR.code`` is the APP code, if any)."""


class PaidEvent(AsyncStatus):
    """A bill (or mandate) was paid. Re-read it before trusting it."""


class BouncedEvent(AsyncStatus):
    """An e-mail or text of the record bounced."""


class OtherBillEvent(AsyncStatus):
    """A flat notification with another STATUS (e.g. a mandate's undocumented Revoked)."""


class BulkCompletedEvent(BulkStatus):
    """A bulk finished processing (``Bills`` has one entry per bill)."""


WebhookEvent = (
    CreationSucceededEvent | CreationFailedEvent | PaidEvent | BouncedEvent | OtherBillEvent | BulkCompletedEvent
)

_BY_STATUS: dict[str, type[AsyncStatus]] = {
    "CreationSucceeded": CreationSucceededEvent,
    "CreationSucceded": CreationSucceededEvent,  # 2018 doc spelling
    "CreationFailed": CreationFailedEvent,
    "Paid": PaidEvent,
    "Bounced": BouncedEvent,
}


def parse_event(body: bytes | str | Mapping[str, Any]) -> WebhookEvent:
    """The typed event of a notification body; raises WebhookVerificationError on a body that is not one."""
    data: Any = body
    if isinstance(body, (bytes, str)):
        try:
            data = loads_decimal(body)
        except (ValueError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise WebhookVerificationError(f"webhook body is not JSON: {exc}", provider=PROVIDER) from None
    if not isinstance(data, Mapping):
        raise WebhookVerificationError("webhook body is not a JSON object", provider=PROVIDER)
    try:
        if "BulkId" in data:
            return BulkCompletedEvent.model_validate(dict(data))
        if "ATID" not in data or "STATUS" not in data:
            raise WebhookVerificationError("webhook body has neither BulkId nor ATID and STATUS", provider=PROVIDER)
        cls = _BY_STATUS.get(str(data["STATUS"]), OtherBillEvent)
        event: WebhookEvent = cls.model_validate(dict(data))  # type: ignore[assignment]
        return event
    except pydantic.ValidationError as exc:
        raise WebhookVerificationError(f"webhook body does not parse: {exc}", provider=PROVIDER) from None


def check_basic_auth(headers: Mapping[str, str], credentials: str) -> None:
    """Check the ``Authorization: Basic`` header against ``"user:password"`` (constant time)."""
    header = next((v for k, v in headers.items() if k.lower() == "authorization"), None)
    if header is None or not header[:6].lower() == "basic ":
        raise WebhookVerificationError("webhook has no Basic Authorization header", provider=PROVIDER)
    token = header[6:].strip()
    try:
        given = base64.b64decode(token, validate=True)
        # only the one canonical spelling (Python 3.10 also takes extra padding and stray bits in the last digit)
        canonical = base64.b64encode(given).decode("ascii") == token
    except (binascii.Error, ValueError):
        canonical = False
    if not canonical:
        raise WebhookVerificationError("webhook Authorization header is not valid base64", provider=PROVIDER)
    if not hmac.compare_digest(given, credentials.encode()):
        raise WebhookVerificationError("webhook Basic-auth credentials do not match", provider=PROVIDER)


def check_source_ip(address: str, allowed: frozenset[str] = SOURCE_IPS) -> None:
    """Optional: refuse a notification from outside AcceptEasy's published addresses."""
    try:
        ip = str(ipaddress.ip_address(address.strip()))
    except ValueError:
        raise WebhookVerificationError(f"not an IP address: {address!r}", provider=PROVIDER) from None
    if ip not in allowed:
        raise WebhookVerificationError(f"webhook from {ip}, not an AcceptEasy address", provider=PROVIDER)


def verify(body: bytes, headers: Mapping[str, str], credentials: str, *, source_ip: str | None = None) -> WebhookEvent:
    """Check Basic auth (``credentials`` = ``"user:password"`` from your notification URL), optionally the
    source IP, then parse. An empty ``credentials`` is refused: without Basic auth nothing can be verified, so
    use :func:`parse_event` knowingly and re-read the bill."""
    if not credentials or not isinstance(credentials, str):
        raise WebhookVerificationError(
            "no webhook credentials given: embed user:password in the notification URL and pass them here, or "
            "call billkit.providers.accepteasy.webhooks.parse_event and re-read the bill",
            provider=PROVIDER,
        )
    try:
        credentials.encode("utf-8")
    except UnicodeEncodeError:
        raise WebhookVerificationError("the webhook credentials are not valid text (check how they were read)",
                                       provider=PROVIDER) from None  # fmt: skip
    check_basic_auth(headers, credentials)
    if source_ip is not None:
        check_source_ip(source_ip)
    return parse_event(body)

"""BILL webhooks: ``x-bill-sha-signature`` verification and typed events.

**Signature** (documented): the header ``x-bill-sha-signature`` holds the base64 HMAC-SHA256 of the payload keyed
with the subscription's ``securityKey`` (returned once, when the subscription is created). That the signed bytes
are the raw request body is BILL's documented reading but not spelled out (M): :func:`verify` recomputes the HMAC
over the bytes received, before parsing anything, and compares in constant time, so pass the body exactly as it
arrived (a re-serialized dict is a different body).

**Events** (documented): ``{"metadata": {eventId, subscriptionId, organizationId, eventType, version}, "bill":
{...}}`` for ``bill.created``, ``bill.updated``, ``bill.archived``, ``bill.restored``; ``payment.*`` and
``vendor.*`` carry ``payment`` / ``vendor``. Deliveries may repeat (de-duplicate on ``metadata.eventId``) and
arrive out of order: billkit orders a bill's events by the bill's ``updatedTime``.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
from collections.abc import Mapping
from typing import Any

import pydantic
from pydantic import ConfigDict, Field

from billkit.errors import WebhookVerificationError
from billkit.webhooks import header_value, load_event

__all__ = ["BILL_EVENTS", "SIGNATURE_HEADER", "EventMetadata", "WebhookEvent", "parse_event", "sign", "verify"]

PROVIDER = "billcom"
SIGNATURE_HEADER = "x-bill-sha-signature"
BILL_EVENTS = frozenset({"bill.created", "bill.updated", "bill.archived", "bill.restored"})


class _Event(pydantic.BaseModel):
    model_config = ConfigDict(extra="allow", frozen=True, populate_by_name=True)


class EventMetadata(_Event):
    event_id: str | None = Field(default=None, alias="eventId")
    subscription_id: str | None = Field(default=None, alias="subscriptionId")
    organization_id: str | None = Field(default=None, alias="organizationId")
    event_type: str | None = Field(default=None, alias="eventType")
    version: str | None = None


class WebhookEvent(_Event):
    """One delivery: its ``metadata`` and the object it is about (``bill``, ``payment`` or ``vendor``), whole."""

    metadata: EventMetadata = Field(default_factory=EventMetadata)
    bill: dict[str, Any] | None = None
    payment: dict[str, Any] | None = None
    vendor: dict[str, Any] | None = None

    @property
    def id(self) -> str | None:
        """The event id to de-duplicate deliveries on."""
        return self.metadata.event_id

    @property
    def type(self) -> str | None:
        return self.metadata.event_type


def sign(body: bytes, security_key: str) -> str:
    """The ``x-bill-sha-signature`` value of ``body`` for ``security_key`` (base64 HMAC-SHA256)."""
    return base64.b64encode(hmac.new(security_key.encode("utf-8"), body, hashlib.sha256).digest()).decode("ascii")


def verify(body: bytes, headers: Mapping[str, str], security_key: str) -> WebhookEvent:
    """Check ``x-bill-sha-signature`` over the raw ``body`` with the subscription's ``security_key``, then parse.

    Raises :class:`WebhookVerificationError` for a missing or malformed header, a signature that does not match,
    an empty key, or a signed body that is not an event. Answer those requests with 400 and ignore them.
    """
    if not security_key or not isinstance(security_key, str):
        raise WebhookVerificationError("no security key given: pass the securityKey of the subscription",
                                       provider=PROVIDER)  # fmt: skip
    if not isinstance(body, (bytes, bytearray)):
        raise WebhookVerificationError("pass the raw request body as bytes, not a parsed object", provider=PROVIDER)
    header = header_value(headers, SIGNATURE_HEADER)
    if header is None:
        raise WebhookVerificationError(f"the {SIGNATURE_HEADER} header is missing", provider=PROVIDER)
    try:
        given = base64.b64decode(header.strip(), validate=True)
    except (binascii.Error, ValueError, AttributeError):
        raise WebhookVerificationError(f"the {SIGNATURE_HEADER} header is not base64", provider=PROVIDER) from None
    try:
        expected = hmac.new(security_key.encode("utf-8"), bytes(body), hashlib.sha256).digest()
    except UnicodeEncodeError:
        raise WebhookVerificationError("the security key is not valid text (check how it was read)",
                                       provider=PROVIDER) from None  # fmt: skip
    if len(given) != len(expected) or not hmac.compare_digest(expected, given):
        raise WebhookVerificationError(f"the {SIGNATURE_HEADER} signature does not match the body", provider=PROVIDER)
    return parse_event(bytes(body))


def parse_event(body: bytes) -> WebhookEvent:
    """The typed event of a (verified) body; :class:`WebhookVerificationError` when it is not an event."""
    return load_event(
        body,
        WebhookEvent,
        PROVIDER,
        shape=lambda data: None if isinstance(data.get("metadata"), Mapping) else "no metadata object",
    )

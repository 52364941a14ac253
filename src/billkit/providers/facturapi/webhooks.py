"""Facturapi webhooks: ``Facturapi-Signature`` verification and typed events.

**Signature.** The header ``Facturapi-Signature`` holds the hex HMAC-SHA256 of the **raw** request body keyed
with the webhook's secret (UTF-8), as the official Node, PHP and Java SDKs compute it. :func:`verify` recomputes
it over the bytes received and compares in constant time *before* parsing anything, so pass the body exactly as
it arrived (never a re-serialized dict: a changed space or key order is a different body). An optional
``sha256=`` prefix is accepted (the PHP SDK strips one defensively; Facturapi documents none).

**Replays.** No timestamp is signed, so Facturapi documents no replay protection: the same signed body can be
delivered again. De-duplicate on the event ``id``; billkit's handling is idempotent (an operation that is already
finished ignores a second event).

**Events.** ``invoice.status_updated`` carries the whole invoice in ``data.object``; when async stamping or the
202 recovery failed, ``related_resource_messages`` says why (the invoice itself has no reason field).
"""

from __future__ import annotations

import hashlib
import hmac
import re
from collections.abc import Mapping

from billkit.errors import WebhookVerificationError
from billkit.providers.facturapi.wire import WebhookEvent
from billkit.webhooks import header_value, load_event

__all__ = ["SIGNATURE_HEADER", "STATUS_UPDATED", "WebhookEvent", "parse_event", "sign", "verify"]

PROVIDER = "facturapi"
SIGNATURE_HEADER = "Facturapi-Signature"
STATUS_UPDATED = "invoice.status_updated"
_HEX = re.compile(r"^[0-9a-f]{64}$")


def sign(body: bytes, secret: str) -> str:
    """The ``Facturapi-Signature`` value of ``body`` for ``secret`` (hex HMAC-SHA256)."""
    return hmac.new(secret.encode("utf-8"), body, hashlib.sha256).hexdigest()


def verify(body: bytes, headers: Mapping[str, str], secret: str) -> WebhookEvent:
    """Check ``Facturapi-Signature`` over the raw ``body`` with ``secret``, then parse the event.

    Raises :class:`WebhookVerificationError` for a missing or malformed header, a signature that does not match,
    an empty secret, or a signed body that is not an event. Answer those requests with 400 and ignore them.
    """
    if not secret or not isinstance(secret, str):
        raise WebhookVerificationError("no webhook secret given: pass the secret of this webhook", provider=PROVIDER)
    try:
        secret.encode("utf-8")
    except UnicodeEncodeError:
        raise WebhookVerificationError("the webhook secret is not valid text (check how it was read)",
                                       provider=PROVIDER) from None  # fmt: skip
    if not isinstance(body, (bytes, bytearray)):
        raise WebhookVerificationError("pass the raw request body as bytes, not a parsed object", provider=PROVIDER)
    header = header_value(headers, SIGNATURE_HEADER)
    if header is None:
        raise WebhookVerificationError(f"the {SIGNATURE_HEADER} header is missing", provider=PROVIDER)
    if not isinstance(header, str):
        raise WebhookVerificationError(f"the {SIGNATURE_HEADER} header is not text", provider=PROVIDER)
    given = header.strip().lower()
    if given.startswith("sha256="):
        given = given[len("sha256=") :]
    if not _HEX.match(given):
        raise WebhookVerificationError(f"the {SIGNATURE_HEADER} header is not a hex SHA-256 HMAC", provider=PROVIDER)
    if not hmac.compare_digest(sign(bytes(body), secret), given):
        raise WebhookVerificationError(f"the {SIGNATURE_HEADER} signature does not match the body", provider=PROVIDER)
    return parse_event(bytes(body))


def parse_event(body: bytes) -> WebhookEvent:
    """The typed event of a (verified) body; :class:`WebhookVerificationError` when it is not an event."""
    return load_event(body, WebhookEvent, PROVIDER)

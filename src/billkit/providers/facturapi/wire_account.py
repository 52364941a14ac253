"""Facturapi v2 wire models of the organisation's account: monthly ZIP requests, the organisation
(``/organizations/me``) and its folio series, and webhook endpoints.

The same rules as :mod:`billkit.providers.facturapi.wire`: responses are lenient (every field optional, unknown
fields kept in ``model_extra``, statuses open strings). Each status has a ``state`` property that maps the raw
string to an enum whose ``UNKNOWN`` member stands for any value Facturapi adds later (the raw string stays in
``status``).

**Secrets.** A webhook's signing secret is a :class:`pydantic.SecretStr` (``repr`` / ``str`` / ``model_dump_json``
show ``**********``); so is any other field of a webhook answer whose name contains ``secret``, typed or not.
:func:`read_webhook` never puts the body it could not read into an error.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from typing import Any

import pydantic
from pydantic import SecretStr, model_validator

from billkit.errors import APIError
from billkit.providers.facturapi.wire import _Response
from billkit.transport import Response

__all__ = [
    "Organization",
    "Series",
    "Webhook",
    "WebhookState",
    "ZipRequest",
    "ZipRequestState",
    "read_webhook",
]


class ZipRequestState(str, enum.Enum):
    """``InvoiceZipRequestStatus``; ``UNKNOWN`` for a value the spec does not list (kept raw in ``status``)."""

    CREATED = "created"
    PROCESSING = "processing"
    FINISHED = "finished"
    FAILED = "failed"
    NONE = "none"  # legacy, "normally not returned by this flow"
    UNKNOWN = "unknown"


class WebhookState(str, enum.Enum):
    ENABLED = "enabled"
    DISABLED = "disabled"
    UNKNOWN = "unknown"


def _state(enum_type: type[enum.Enum], raw: str | None) -> Any:
    try:
        return enum_type(raw)
    except ValueError:
        return enum_type("unknown")


class ZipRequest(_Response):
    """``InvoiceZipRequest``: one month of invoices being zipped by Facturapi (``created`` -> ``processing`` ->
    ``finished`` or ``failed``); ``start_date`` / ``end_date`` bound the month (inclusive, UTC)."""

    id: str | None = None
    created_at: str | None = None
    livemode: bool | None = None
    organization: str | None = None
    issuer_type: str | None = None
    invoice_types: list[str] | None = None
    start_date: str | None = None
    end_date: str | None = None
    status: str | None = None
    document_count: int | None = None
    processed_document: int | None = None
    failed_documents: list[str] | None = None
    scheduled_at: str | None = None

    @property
    def state(self) -> ZipRequestState:
        """``status`` as :class:`ZipRequestState` (``UNKNOWN`` for a value the spec does not list)."""
        state: ZipRequestState = _state(ZipRequestState, self.status)
        return state


class Organization(_Response):
    """``Organization`` (``GET /organizations/me``): the organisation the API key issues for. ``legal`` and
    ``customization`` are kept as Facturapi sends them."""

    id: str | None = None
    created_at: str | None = None
    logo_url: str | None = None
    timezone: str | None = None
    is_production_ready: bool | None = None
    pending_steps: list[dict[str, Any]] | None = None
    legal: dict[str, Any] | None = None
    customization: dict[str, Any] | None = None


class Series(_Response):
    """``OrganizationSeriesGroup``: a folio series and the next folio it gives in live and in test mode."""

    series: str | None = None
    next_folio: int | None = None
    next_folio_test: int | None = None


def _hide_secrets(data: Any) -> Any:
    """Every key of a webhook answer whose name holds ``secret`` as a SecretStr (typed fields and extras)."""
    if not isinstance(data, Mapping):
        return data
    out = dict(data)
    for key, value in data.items():
        if isinstance(key, str) and "secret" in key.lower() and value is not None and not isinstance(value, SecretStr):
            out[key] = SecretStr(str(value))
    return out


class Webhook(_Response):
    """``Webhook``: an endpoint Facturapi delivers events to. ``secret`` signs the deliveries
    (``Facturapi-Signature``); Facturapi gives it on creation (the spec: "upon creation" or in the dashboard's
    webhook settings), so it is often ``None`` on later reads. It is a SecretStr: ``secret.get_secret_value()``
    gives the plain text, nothing else shows it. ``enabled_events`` is a list (the spec types it ``string``)."""

    id: str | None = None
    created_at: str | None = None
    livemode: bool | None = None
    organization: str | None = None
    enabled_events: list[str] | None = None
    url: str | None = None
    status: str | None = None
    description: str | None = None
    secret: SecretStr | None = None

    @model_validator(mode="before")
    @classmethod
    def _secrets(cls, data: Any) -> Any:
        data = _hide_secrets(data)
        if isinstance(data, dict) and isinstance(data.get("enabled_events"), str):
            data["enabled_events"] = [data["enabled_events"]]
        return data

    @property
    def state(self) -> WebhookState:
        state: WebhookState = _state(WebhookState, self.status)
        return state


def read_webhook(data: Any, response: Response | None = None) -> Webhook:
    """A webhook answer as :class:`Webhook`. A body of the wrong shape becomes an :class:`APIError` that names
    neither the body nor pydantic's message (either could hold the secret): only the fields that failed."""
    try:
        return Webhook.model_validate(data)
    except (pydantic.ValidationError, ValueError, TypeError) as exc:
        where = (
            ", ".join(".".join(str(p) for p in e["loc"]) for e in exc.errors())
            if isinstance(exc, pydantic.ValidationError)
            else type(exc).__name__
        )
        safe = _hide_secrets(data)
        raise APIError(
            f"facturapi answered with a body billkit cannot read as Webhook (fields: {where})",
            provider="facturapi",
            status_code=response.status_code if response is not None else None,
            request_id=response.request_id if response is not None else None,
            raw={k: ("[redacted]" if isinstance(v, SecretStr) else v) for k, v in safe.items()}
            if isinstance(safe, dict)
            else None,
        ) from None

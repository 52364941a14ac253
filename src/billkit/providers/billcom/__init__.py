"""BILL (bill.com) v3: payable bills, sessions, all-or-nothing bulk, vendors.

Use it through ``billkit.AsyncClient("billcom", username=..., password=..., organization_id=..., dev_key=...)``
(or ``sandbox=True``); ``client.native`` is :class:`BillcomNative` (webhook subscriptions included: they return
:class:`Subscription`). See ``docs/providers/billcom.md``.
"""

from typing import TYPE_CHECKING, Any

from billkit.client import AsyncClient, Client
from billkit.flows import AsyncMode, SyncMode
from billkit.providers.billcom.client import BillcomAdapter, BillcomNative, format_filters
from billkit.providers.billcom.mapping import (
    BillcomAPIError,
    BillcomBulkRejected,
    BillcomConcurrencyLimitError,
    BillcomError,
    BillcomRateLimitError,
    BillcomSessionError,
)
from billkit.providers.billcom.webhooks import WebhookEvent
from billkit.providers.billcom.wire import EventSpec, Subscription

#: ``billkit.Client("billcom", ...)`` / ``billkit.AsyncClient("billcom", ...)`` as types, for annotations
BillcomClient = Client[BillcomNative[SyncMode], WebhookEvent]
BillcomAsyncClient = AsyncClient[BillcomNative[AsyncMode], WebhookEvent]

if TYPE_CHECKING:
    from billkit.providers.billcom.sandbox import (
        UNKNOWN_VENDOR,
        VENDOR_ACME,
        VENDOR_GLOBEX,
        VENDOR_INITECH,
        BillcomSandbox,
    )

_SANDBOX_NAMES = frozenset({"UNKNOWN_VENDOR", "VENDOR_ACME", "VENDOR_GLOBEX", "VENDOR_INITECH", "BillcomSandbox"})

__all__ = [
    "UNKNOWN_VENDOR",
    "VENDOR_ACME",
    "VENDOR_GLOBEX",
    "VENDOR_INITECH",
    "BillcomAPIError",
    "BillcomAdapter",
    "BillcomAsyncClient",
    "BillcomBulkRejected",
    "BillcomClient",
    "BillcomConcurrencyLimitError",
    "BillcomError",
    "BillcomNative",
    "BillcomRateLimitError",
    "BillcomSandbox",
    "BillcomSessionError",
    "EventSpec",
    "Subscription",
    "format_filters",
]


def __getattr__(name: str) -> Any:
    # the sandbox is imported only when asked for: production code importing the adapter never loads it
    if name in _SANDBOX_NAMES:
        from billkit.providers.billcom import sandbox

        return getattr(sandbox, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

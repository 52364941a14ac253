"""Facturapi v2 (Mexican CFDI invoices): adapter, wire models, mapping, sandbox and webhooks.

See ``docs/providers/facturapi.md``. The adapter is :class:`FacturapiAdapter`; ``client.native`` is a
:class:`FacturapiNative`; :class:`FacturapiSandbox` is the in-process fake API.
"""

from typing import TYPE_CHECKING, Any

from billkit.client import AsyncClient, Client
from billkit.flows import AsyncMode, SyncMode
from billkit.providers.facturapi.client import FacturapiAdapter, FacturapiNative
from billkit.providers.facturapi.wire import WebhookEvent

#: ``billkit.Client("facturapi", ...)`` / ``billkit.AsyncClient("facturapi", ...)`` as types, for annotations
FacturapiClient = Client[FacturapiNative[SyncMode], WebhookEvent]
FacturapiAsyncClient = AsyncClient[FacturapiNative[AsyncMode], WebhookEvent]

if TYPE_CHECKING:
    from billkit.providers.facturapi.sandbox import (
        FAIL_TAX_ID,
        RECOVERY_FAIL_TAX_ID,
        RECOVERY_TAX_ID,
        FacturapiSandbox,
    )

_SANDBOX_NAMES = frozenset({"FAIL_TAX_ID", "RECOVERY_FAIL_TAX_ID", "RECOVERY_TAX_ID", "FacturapiSandbox"})

__all__ = [
    "FAIL_TAX_ID",
    "RECOVERY_FAIL_TAX_ID",
    "RECOVERY_TAX_ID",
    "FacturapiAdapter",
    "FacturapiAsyncClient",
    "FacturapiClient",
    "FacturapiNative",
    "FacturapiSandbox",
]


def __getattr__(name: str) -> Any:
    # the sandbox is imported only when asked for: production code importing the adapter never loads it
    if name in _SANDBOX_NAMES:
        from billkit.providers.facturapi import sandbox

        return getattr(sandbox, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

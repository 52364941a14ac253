"""AcceptEasy (AcceptEmail / Serrala Bill Pay) REST v2: receivable EUR bills, sync, async and bulk creation.

See ``docs/providers/accepteasy.md``. The adapter is :class:`AcceptEasyAdapter`; ``client.native`` is an
:class:`AcceptEasyNative`; :class:`AcceptEasySandbox` is the in-process fake API.
"""

from typing import TYPE_CHECKING, Any

from billkit.client import AsyncClient, Client
from billkit.flows import AsyncMode, SyncMode
from billkit.providers.accepteasy.client import AcceptEasyAdapter, AcceptEasyNative
from billkit.providers.accepteasy.webhooks import WebhookEvent

#: ``billkit.Client("accepteasy", ...)`` / ``billkit.AsyncClient("accepteasy", ...)`` as types, for annotations
AcceptEasyClient = Client[AcceptEasyNative[SyncMode], WebhookEvent]
AcceptEasyAsyncClient = AsyncClient[AcceptEasyNative[AsyncMode], WebhookEvent]

if TYPE_CHECKING:
    from billkit.providers.accepteasy.sandbox import BAD_TEMPLATE_ID, AcceptEasySandbox

_SANDBOX_NAMES = frozenset({"BAD_TEMPLATE_ID", "AcceptEasySandbox"})

__all__ = [
    "BAD_TEMPLATE_ID",
    "AcceptEasyAdapter",
    "AcceptEasyAsyncClient",
    "AcceptEasyClient",
    "AcceptEasyNative",
    "AcceptEasySandbox",
]


def __getattr__(name: str) -> Any:
    # the sandbox is imported only when asked for: production code importing the adapter never loads it
    if name in _SANDBOX_NAMES:
        from billkit.providers.accepteasy import sandbox

        return getattr(sandbox, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

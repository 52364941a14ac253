"""AcceptEasy (AcceptEmail / Serrala Bill Pay) REST v2: receivable EUR bills, sync, async and bulk creation.

See ``docs/providers/accepteasy.md``. The adapter is :class:`AcceptEasyAdapter`; ``client.native`` is an
:class:`AcceptEasyNative`; :class:`AcceptEasySandbox` is the in-process fake API.
"""

from typing import TYPE_CHECKING, Any

from billkit.providers.accepteasy.client import AcceptEasyAdapter, AcceptEasyNative

if TYPE_CHECKING:
    from billkit.providers.accepteasy.sandbox import BAD_TEMPLATE_ID, AcceptEasySandbox

_SANDBOX_NAMES = frozenset({"BAD_TEMPLATE_ID", "AcceptEasySandbox"})

__all__ = ["BAD_TEMPLATE_ID", "AcceptEasyAdapter", "AcceptEasyNative", "AcceptEasySandbox"]


def __getattr__(name: str) -> Any:
    # the sandbox is imported only when asked for: production code importing the adapter never loads it
    if name in _SANDBOX_NAMES:
        from billkit.providers.accepteasy import sandbox

        return getattr(sandbox, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

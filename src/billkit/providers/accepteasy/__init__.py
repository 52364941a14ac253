"""AcceptEasy (AcceptEmail / Serrala Bill Pay) REST v2: receivable EUR bills, sync, async and bulk creation.

See ``docs/providers/accepteasy.md``. The adapter is :class:`AcceptEasyAdapter`; ``client.native`` is an
:class:`AcceptEasyNative`; :class:`AcceptEasySandbox` is the in-process fake API.
"""

from billkit.providers.accepteasy.client import AcceptEasyAdapter, AcceptEasyNative
from billkit.providers.accepteasy.sandbox import BAD_TEMPLATE_ID, AcceptEasySandbox

__all__ = ["BAD_TEMPLATE_ID", "AcceptEasyAdapter", "AcceptEasyNative", "AcceptEasySandbox"]

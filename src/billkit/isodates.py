"""ISO 8601 parsing that reads the same on every supported Python.

``datetime.fromisoformat`` accepts nearly all of ISO 8601 from Python 3.11 on, but on 3.10 only what
``isoformat()`` writes: no ``Z``, fractions of exactly 3 or 6 digits, offsets with a colon. Providers write the
rest (``2027-03-04T22:47:51.77Z``), so billkit parses through :func:`datetime_from_iso`, which on 3.10 first
rewrites the common extended forms into the ones 3.10 reads, and on 3.11+ is ``fromisoformat`` itself.
"""

from __future__ import annotations

import datetime as dt
import re
import sys

__all__ = ["datetime_from_iso"]

# date, then optionally a time with an optional fraction (. or ,), then optionally Z or an offset (+HH, +HHMM, +HH:MM)
_EXTENDED = re.compile(
    r"(?P<date>\d{4}-\d{2}-\d{2})"
    r"(?:(?P<sep>[T ])(?P<time>\d{2}(?::\d{2}(?::\d{2})?)?)(?:[.,](?P<fraction>\d+))?)?"
    r"(?P<offset>Z|[+-]\d{2}(?::?\d{2}(?::?\d{2})?)?)?",
    re.ASCII,
)


def _for_310(text: str) -> str:
    match = _EXTENDED.fullmatch(text)
    if match is None:
        return text  # fromisoformat says what is wrong with it
    out = match["date"]
    if match["time"] is not None:
        out += match["sep"] + match["time"]
        if match["fraction"] is not None:
            out += "." + match["fraction"][:6].ljust(6, "0")  # 3.11 drops digits past the microsecond too
    offset = match["offset"]
    if offset is not None and match["time"] is not None:
        if offset == "Z":
            offset = "+00:00"
        digits = offset[1:].replace(":", "")
        offset = offset[0] + ":".join(digits[i : i + 2] for i in range(0, len(digits), 2))
        if len(digits) == 2:
            offset += ":00"
        out += offset
    return out


def datetime_from_iso(text: str) -> dt.datetime:
    """``dt.datetime.fromisoformat(text)`` as Python 3.11 reads it (``Z``, any number of fraction digits)."""
    if sys.version_info >= (3, 11):
        return dt.datetime.fromisoformat(text)
    return dt.datetime.fromisoformat(_for_310(text))

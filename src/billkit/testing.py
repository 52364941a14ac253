"""billkit.testing: everything a user's own test suite needs to exercise billkit offline.

* :func:`sandbox` - a fresh in-process sandbox of a provider (``sandbox("accepteasy", clock=..., faults=...)``);
  pass it to a client with ``AsyncClient("accepteasy", sandbox=box)``. ``box.requests`` lists what it received.
* :class:`VirtualClock` - virtual time; polling and the sandboxes' background jobs run on it.
* :class:`Faults` / :class:`Fault` - fault injection (5xx, 429 with Retry-After, dropped connections before
  or after the server acted, slow answers), by rate or one-shot.
* pytest fixtures, registered through the ``pytest11`` entry point so ``pip install billkit`` is enough:
  ``billkit_clock`` (a VirtualClock) and ``billkit_sandbox`` (a factory: ``billkit_sandbox("facturapi")``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from billkit.client import adapter_class
from billkit.clock import Clock, VirtualClock
from billkit.sandboxing import Fault, Faults, RecordedRequest, Sandbox

__all__ = ["Fault", "Faults", "RecordedRequest", "Sandbox", "VirtualClock", "sandbox"]


def sandbox(provider: str, *, clock: Clock | None = None, faults: Faults | None = None) -> Sandbox:
    """A fresh sandbox of ``provider`` on ``clock`` (a new autojumping VirtualClock by default)."""
    return adapter_class(provider).make_sandbox(clock=clock or VirtualClock(), faults=faults)


@pytest.fixture
def billkit_clock() -> VirtualClock:
    """A VirtualClock that jumps ahead whenever every task waits on it."""
    return VirtualClock()


@pytest.fixture
def billkit_sandbox(billkit_clock: VirtualClock) -> Callable[..., Sandbox]:
    """A factory of sandboxes sharing the test's ``billkit_clock``: ``billkit_sandbox("accepteasy")``."""

    def make(provider: str, *, faults: Faults | None = None, **_: Any) -> Sandbox:
        return sandbox(provider, clock=billkit_clock, faults=faults)

    return make

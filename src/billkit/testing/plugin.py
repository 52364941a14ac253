"""The pytest plugin of :mod:`billkit.testing` (named by the ``pytest11`` entry point; pytest loads it).

Fixtures: ``billkit_clock`` (a :class:`~billkit.testing.VirtualClock` that jumps ahead whenever every task waits on
it) and ``billkit_sandbox`` (a :class:`~billkit.testing.SandboxFactory` whose sandboxes share that clock).
"""

from __future__ import annotations

from typing import Any

import pytest

from billkit.testing import Faults, Sandbox, SandboxFactory, VirtualClock, sandbox

__all__ = ["billkit_clock", "billkit_sandbox"]


@pytest.fixture
def billkit_clock() -> VirtualClock:
    """A VirtualClock that jumps ahead whenever every task waits on it."""
    return VirtualClock()


@pytest.fixture
def billkit_sandbox(billkit_clock: VirtualClock) -> SandboxFactory:
    """A factory of sandboxes sharing the test's ``billkit_clock``: ``billkit_sandbox("accepteasy")``."""

    def make(provider: str, *, faults: Faults | None = None, **_: Any) -> Sandbox:
        return sandbox(provider, clock=billkit_clock, faults=faults)

    return make  # type: ignore[return-value]  # the overloads of SandboxFactory describe this one function

"""Fixtures every provider's tests share: asyncio only (the sandboxes and adapters are loop-agnostic, and the
shared machinery's tests already run under trio too) and a fresh virtual clock."""

from __future__ import annotations

import pytest

from billkit.clock import VirtualClock


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
def clock() -> VirtualClock:
    return VirtualClock()

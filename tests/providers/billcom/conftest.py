"""Fixtures of the BILL adapter tests: a sandbox on a virtual clock, and its test credentials."""

from __future__ import annotations

import pytest

from billkit.clock import VirtualClock
from billkit.providers.billcom.sandbox import BillcomSandbox


@pytest.fixture
def box(clock: VirtualClock) -> BillcomSandbox:
    return BillcomSandbox(clock)

"""Fixtures of the AcceptEasy adapter tests: a sandbox on a virtual clock, seed fixtures, a bill builder."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

import billkit
from billkit import Bill, Money
from billkit.clock import VirtualClock
from billkit.money import loads_decimal
from billkit.providers.accepteasy import AcceptEasyAsyncClient
from billkit.providers.accepteasy.sandbox import AcceptEasySandbox

FIXTURES = Path(__file__).parent / "fixtures"


def fixture(name: str) -> Any:
    """A JSON fixture, numbers with a fraction as Decimal (as billkit reads provider JSON)."""
    return loads_decimal((FIXTURES / f"{name}.json").read_text())


def bill(reference: str = "LI-748925", amount: str = "12.95", **kwargs: Any) -> Bill:
    return Bill(reference=reference, description=kwargs.pop("description", "Insurance deductible"),
                total=Money(amount, kwargs.pop("currency", "EUR")), **kwargs)  # fmt: skip


@pytest.fixture
def box(clock: VirtualClock) -> AcceptEasySandbox:
    return AcceptEasySandbox(clock)


@pytest.fixture
async def client(box: AcceptEasySandbox) -> AsyncIterator[AcceptEasyAsyncClient]:
    async with billkit.AsyncClient("accepteasy", sandbox=box) as c:
        yield c

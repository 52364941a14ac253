"""Builders shared by the BILL tests: common-model bills and the seed fixtures."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

from billkit import AsyncClient, Bill, Direction, LineItem, Money, Party
from billkit.money import loads_decimal
from billkit.providers.billcom import BillcomAsyncClient
from billkit.providers.billcom.sandbox import VENDOR_ACME, BillcomSandbox

FIXTURES = Path(__file__).parent / "fixtures"


def fixture(name: str) -> Any:
    return loads_decimal((FIXTURES / name).read_bytes())


def payable(
    invoice: str,
    *,
    vendor: str = VENDOR_ACME,
    lines: tuple[tuple[str, str], ...] = (("USB audio interface", "149.00"),),
    currency: str = "USD",
    description: str | None = None,
    due: dt.date = dt.date(2024, 12, 31),
    issued: dt.date = dt.date(2024, 12, 31),
) -> Bill:
    return Bill(
        direction=Direction.PAYABLE,
        counterparty=Party(provider_id=vendor),
        reference=invoice,
        description=description,
        issue_date=issued,
        due_date=due,
        line_items=tuple(LineItem(description=d, unit_price=Money(a, currency)) for d, a in lines),
    )


def client(box: BillcomSandbox) -> BillcomAsyncClient:
    return AsyncClient("billcom", sandbox=box)

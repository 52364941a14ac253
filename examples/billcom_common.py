"""Shared setup of the BILL examples: the in-process sandbox by default, BILL's own sandbox when
BILL_USERNAME, BILL_PASSWORD, BILL_ORGANIZATION_ID and BILL_DEV_KEY are set (gateway.stage.bill.com)."""

from __future__ import annotations

import datetime as dt
import os
import uuid

import billkit
from billkit import Bill, Direction, LineItem, Money, Party
from billkit.providers.billcom import BillcomAsyncClient
from billkit.providers.billcom.sandbox import VENDOR_ACME

LIVE_VARS = ("BILL_USERNAME", "BILL_PASSWORD", "BILL_ORGANIZATION_ID", "BILL_DEV_KEY")


def live() -> bool:
    return all(os.environ.get(v) for v in LIVE_VARS)


def make_client() -> BillcomAsyncClient:
    if live():
        print("using BILL's sandbox (gateway.stage.bill.com) with the BILL_* credentials")
        return billkit.AsyncClient("billcom")
    print("using billkit's in-process BILL sandbox (set BILL_USERNAME, BILL_PASSWORD, BILL_ORGANIZATION_ID and")
    print("BILL_DEV_KEY to run against BILL's own sandbox)")
    return billkit.AsyncClient("billcom", sandbox=True)


async def demo_vendor(client: BillcomAsyncClient) -> str:
    """A vendor to bill: the sandbox's seeded one, or a fresh one at BILL."""
    if client.sandbox is not None:
        return VENDOR_ACME
    vendor = await client.native.create_vendor(
        {"name": f"billkit demo vendor {uuid.uuid4().hex[:6]}", "accountType": "BUSINESS",
         "address": {"line1": "1 Demo Street", "city": "San Jose", "stateOrProvince": "CA",
                     "zipOrPostalCode": "95110", "country": "US"}}
    )  # fmt: skip
    vendor_id: str = vendor.id
    return vendor_id


def payable(vendor_id: str, invoice: str, amount: str = "149.00", description: str = "USB audio interface") -> Bill:
    today = dt.date.today()
    return Bill(
        direction=Direction.PAYABLE,
        counterparty=Party(provider_id=vendor_id),
        reference=invoice,
        issue_date=today,
        due_date=today + dt.timedelta(days=30),
        line_items=(LineItem(description=description, unit_price=Money(amount, "USD")),),
    )


def run_id() -> str:
    """A short prefix that keeps invoice numbers unique across runs against a real account."""
    return uuid.uuid4().hex[:6].upper()

"""Bad input raises before any request: the sandbox records nothing."""

from __future__ import annotations

import datetime as dt

import pytest

from billkit import Bill, Direction, LineItem, Money, Party, Tax
from billkit.errors import MoneyError, UnsupportedFeatureError, ValidationError
from billkit.providers.billcom.sandbox import VENDOR_ACME, BillcomSandbox

from .builders import client, payable


@pytest.mark.anyio
async def test_every_problem_is_listed_and_nothing_is_sent(box: BillcomSandbox) -> None:
    bad = Bill(
        direction=Direction.PAYABLE,
        counterparty=Party(provider_id="00801NOTAVENDOR00001"),
        line_items=(),
        provider_options={"dueDate": "2024-02-30"},
    )
    async with client(box) as c:
        with pytest.raises(ValidationError) as info:
            await c.create(bad)
    fields = info.value.fields
    assert "counterparty.provider_id" in fields
    assert "reference" in fields and "issue_date" in fields and "line_items" in fields
    assert any(f.startswith("provider_options.dueDate") for f in fields)
    assert "real calendar date" in str(info.value)
    assert box.requests == []  # not even a login


@pytest.mark.anyio
async def test_amount_with_three_decimals_is_refused(box: BillcomSandbox) -> None:
    with pytest.raises(MoneyError):  # the common model refuses 10.001 USD already
        payable("A-1", lines=(("thing", "10.001"),))
    three = payable("A-1", lines=(("thing", "10.001"),), currency="KWD")  # valid KWD, not valid at BILL
    async with client(box) as c:
        with pytest.raises(ValidationError) as info:
            await c.create(three)
    assert info.value.fields == ["line_items[0].unit_price"]
    assert "two decimals" in str(info.value)
    assert box.requests == []


@pytest.mark.anyio
async def test_quantity_times_price_must_stay_in_cents(box: BillcomSandbox) -> None:
    odd = payable("A-2").model_copy(
        update={"line_items": (LineItem(description="x", quantity="0.333", unit_price=Money("1.00", "USD")),)}
    )
    async with client(box) as c:
        with pytest.raises(ValidationError) as info:
            await c.create(odd)
    assert info.value.fields == ["line_items[0].quantity"]
    assert box.requests == []


def test_impossible_date_is_refused_by_the_model() -> None:
    with pytest.raises(ValidationError):
        Bill(direction=Direction.PAYABLE, due_date="2024-02-30")


@pytest.mark.anyio
async def test_receivable_bill_is_unsupported(box: BillcomSandbox) -> None:
    bill = payable("R-1").model_copy(update={"direction": Direction.RECEIVABLE})
    async with client(box) as c:
        with pytest.raises(UnsupportedFeatureError) as info:
            await c.create(bill)
        with pytest.raises(UnsupportedFeatureError) as many:
            await c.submit_many([payable("R-0"), bill])
    assert "payable" in str(info.value)
    assert many.value.feature.startswith("bills[1].direction")
    assert box.requests == []


@pytest.mark.anyio
async def test_fields_bill_cannot_express_are_never_dropped(box: BillcomSandbox) -> None:
    line = LineItem(description="x", unit_price=Money("1.00", "USD"), taxes=(Tax(type="VAT", rate="0.2"),))
    taxed = payable("T-1").model_copy(update={"line_items": (line,)})
    named = payable("T-2").model_copy(update={"counterparty": Party(provider_id=VENDOR_ACME, email="a@b.c")})
    async with client(box) as c:
        with pytest.raises(UnsupportedFeatureError, match="taxes"):
            await c.create(taxed)
        with pytest.raises(UnsupportedFeatureError, match=r"counterparty\.email"):
            await c.create(named)
        with pytest.raises(ValidationError, match=r"provider_options\.noSuchField"):
            await c.create(payable("T-3").model_copy(update={"provider_options": {"noSuchField": 1}}))
    assert box.requests == []


@pytest.mark.anyio
async def test_total_must_match_the_lines(box: BillcomSandbox) -> None:
    wrong = payable("T-4").model_copy(update={"total": Money("1.00", "USD")})
    async with client(box) as c:
        with pytest.raises(ValidationError, match="differs"):
            await c.create(wrong)
    assert box.requests == []


@pytest.mark.anyio
async def test_bulk_lists_problems_of_every_item_and_duplicates(box: BillcomSandbox) -> None:
    bills = [payable("D-1"), payable("D-1"), payable("D-3", vendor="12345"), payable("D-4", due=dt.date(2025, 1, 1))]
    async with client(box) as c:
        with pytest.raises(ValidationError) as info:
            await c.submit_many(bills)
    assert info.value.fields == ["bills[1].reference", "bills[2].counterparty.provider_id"]
    assert box.requests == []


@pytest.mark.anyio
async def test_lines_in_another_currency_than_the_vendor_are_refused(box: BillcomSandbox) -> None:
    async with client(box) as c:
        with pytest.raises(ValidationError, match="billed in USD"):
            await c.create(payable("C-1", currency="EUR"))
    assert not box.received("POST", "/v3/bills")  # only the login and the vendor read were sent
    assert [r.path for r in box.requests] == ["/v3/login", f"/v3/vendors/{VENDOR_ACME}", "/v3/logout"]

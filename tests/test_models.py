import datetime as dt
from decimal import Decimal
from typing import Any

import pytest

from billkit import Bill, BillStatus, BulkResult, ItemResult, ItemStatus, LineItem, Money, Party, Tax, ValidationError
from billkit.errors import Problem, UnsupportedFeatureError
from billkit.models import Address, check_supported, set_fields


def bill(**kw: object) -> Bill:
    base: dict[str, object] = {
        "counterparty": Party(name="Ana", tax_id="XAXX010101000", address=Address(postal_code="06100")),
        "reference": "INV-1",
        "line_items": [LineItem(description="Consulting", quantity="2", unit_price=Money("100.00", "MXN"))],
    }
    base.update(kw)
    return Bill(**base)


def test_bill_is_immutable_and_computes_currency_and_totals() -> None:
    b = bill()
    assert b.currency == "MXN"
    assert b.line_total() == Decimal("200.00")
    with pytest.raises(Exception):  # noqa: B017 - pydantic frozen instance
        b.reference = "x"  # type: ignore[misc]
    assert b.model_copy(update={"reference": "INV-2"}).reference == "INV-2"


def test_construction_errors_list_every_problem_with_paths() -> None:
    with pytest.raises(ValidationError) as info:
        Bill(
            line_items=[{"description": "a", "unit_price": {"amount": 1.5, "currency": "EUR"}}],
            due_date="not a date",
        )
    fields = info.value.fields
    assert any(f.startswith("line_items.0.unit_price") for f in fields)
    assert "due_date" in fields
    assert len(info.value.problems) == 2
    assert "float" in str(info.value)


def test_quantity_and_rate_refuse_floats() -> None:
    with pytest.raises(ValidationError, match="quantity"):
        LineItem(description="x", quantity=1.5, unit_price=Money("1", "EUR"))
    with pytest.raises(ValidationError, match="rate"):
        Tax(type="IVA", rate=0.16)
    assert Tax(type="IVA", rate="0.16").rate == Decimal("0.16")


def test_unknown_status_strings_are_kept_not_raised() -> None:
    b = Bill(status=BillStatus.UNKNOWN, provider_status="Brand-new-status", raw={"x": 1, "extra": [1]})
    assert b.status is BillStatus.UNKNOWN and b.provider_status == "Brand-new-status"
    assert b.raw == {"x": 1, "extra": [1]}
    assert "raw" not in repr(b)


def test_final_statuses() -> None:
    assert {s for s in BillStatus if s.is_final} == {BillStatus.PAID, BillStatus.VOID, BillStatus.FAILED}


def test_set_fields_walks_only_what_the_caller_set() -> None:
    paths = set(set_fields(bill(due_date=dt.date(2030, 1, 1))))
    assert {"counterparty", "counterparty.name", "counterparty.tax_id", "counterparty.address",
            "counterparty.address.postal_code", "reference", "due_date", "line_items",
            "line_items[].description", "line_items[].quantity", "line_items[].unit_price"} == paths  # fmt: skip


def test_check_supported_raises_naming_field_and_provider() -> None:
    supported = {"counterparty", "counterparty.name", "counterparty.tax_id", "counterparty.address.*",
                 "counterparty.address", "reference", "line_items", "line_items[].*"}  # fmt: skip
    check_supported(bill(), "prov", supported)
    with pytest.raises(UnsupportedFeatureError) as info:
        check_supported(bill(counterparty=Party(name="A", phone="+31")), "prov", supported)
    assert info.value.feature == "counterparty.phone"
    assert "prov" in str(info.value)


def test_bulk_result_accessors() -> None:
    items = (
        ItemResult(index=0, status=ItemStatus.SUCCEEDED, bill=bill()),
        ItemResult(index=1, status=ItemStatus.FAILED, error=ValidationError("bad")),
        ItemResult(index=2, status=ItemStatus.PENDING),
    )
    result = BulkResult(items=items)
    assert len(result) == 3 and result[1].status is ItemStatus.FAILED
    assert [i.index for i in result.succeeded] == [0]
    assert [i.index for i in result.failed] == [1]
    assert [i.index for i in result.pending] == [2]
    assert [i.index for i in result] == [0, 1, 2]
    assert result[0].ok and not result[1].ok


# -- regressions found by tests/test_fuzz.py ------------------------------------------------------------------


@pytest.mark.parametrize("quantity", ["1e999999", "1e30", "1.0000001", "1e-999999999"])
def test_quantity_is_bounded_so_amounts_stay_exact(quantity: str) -> None:
    with pytest.raises(ValidationError, match="quantity"):
        LineItem(description="x", quantity=quantity, unit_price=Money("1.01", "EUR"))


def test_line_amounts_are_exact() -> None:
    item = LineItem(description="x", quantity="123456789.123456", unit_price=Money("999999999999999.99", "EUR"))
    assert item.amount == Decimal("123456789123455998765432.10876544")  # 32 digits: beyond the default 28


def _full_bill() -> Bill:
    return Bill(
        reference="INV-9",
        description="Membership",
        counterparty=Party(
            name="Jan", email="jan@example.nl", address=Address(city="Utrecht"), provider_options={"tax_system": "601"}
        ),
        issue_date=dt.date(2026, 12, 1),
        line_items=(
            LineItem(
                description="a",
                quantity=Decimal("1.5"),
                unit_price=Money("10.00", "EUR"),
                taxes=(Tax(type="VAT", rate=Decimal("0.21")),),
            ),
        ),
        total=Money("18.15", "EUR"),
        provider_options={"SRRID": "s-1", "nested": {"k": [1, Decimal("2.5")]}},
        provider="accepteasy",
        provider_id="atid-1",
        status=BillStatus.OPEN,
        provider_status="Pending",
        links={"pay": "https://pay.example/1"},
        raw={"ATID": "atid-1", "Amount": Decimal("18.15"), "Extra": [None, True]},
    )


@pytest.mark.parametrize("how", ["pickle", "deepcopy", "model_copy"])
def test_bills_and_results_survive_pickle_and_deep_copies(how: str) -> None:
    import copy
    import pickle

    again: Any = {
        "pickle": lambda v: pickle.loads(pickle.dumps(v)),
        "deepcopy": copy.deepcopy,
        "model_copy": lambda v: v.model_copy(deep=True),
    }[how]
    bill = _full_bill()
    copied = again(bill)
    assert copied == bill and type(copied) is Bill and copied.total == Money("18.15", "EUR")
    assert copied.raw == bill.raw and copied.line_items[0].amount == Decimal("15.000000")
    failed = ItemResult(index=1, status=ItemStatus.FAILED, error=ValidationError([Problem("total", "bad")]))
    result = BulkResult(
        items=(ItemResult(index=0, status=ItemStatus.SUCCEEDED, bill=bill), failed),
        provider="accepteasy",
        provider_id="bulk-1",
    )
    back = again(result)
    assert type(back) is BulkResult and back.items[0] == result.items[0]
    assert back.items[1].error is not None and str(back.items[1].error) == str(failed.error)

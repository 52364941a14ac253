import contextlib
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from billkit import Money, MoneyError, ValidationError
from billkit.money import CURRENCY_EXPONENTS, exponent, loads_decimal

CODES = sorted(CURRENCY_EXPONENTS)


def test_float_is_refused_with_advice() -> None:
    with pytest.raises(MoneyError, match="pass a str"):
        Money(0.1, "EUR")  # type: ignore[arg-type]


def test_money_error_is_a_validation_error() -> None:
    with pytest.raises(ValidationError):
        Money("1", "XXX")


@pytest.mark.parametrize(("code", "places"), [("EUR", 2), ("USD", 2), ("MXN", 2), ("JPY", 0), ("KWD", 3), ("BHD", 3)])
def test_exponent_table(code: str, places: int) -> None:
    assert exponent(code) == places


def test_more_decimals_than_the_currency_has_is_refused() -> None:
    with pytest.raises(MoneyError, match="more than 0 decimals"):
        Money("1.5", "JPY")
    assert Money("1.500", "KWD").amount == Decimal("1.5")


def test_trailing_zeros_beyond_the_exponent_are_exact() -> None:
    assert Money("19.900", "EUR") == Money("19.9", "EUR")


def test_minor_units_round_trip() -> None:
    assert Money("19.99", "EUR").to_minor_units() == 1999
    assert Money.from_minor_units(1999, "EUR") == Money("19.99", "EUR")
    assert Money.from_minor_units(5, "KWD").amount == Decimal("0.005")
    assert Money("120", "JPY").to_minor_units() == 120


def test_from_minor_units_refuses_non_int() -> None:
    with pytest.raises(MoneyError):
        Money.from_minor_units(19.99, "EUR")  # type: ignore[arg-type]


def test_arithmetic_same_currency_only() -> None:
    assert Money("1.10", "EUR") + Money("2.20", "EUR") == Money("3.30", "EUR")
    assert Money("5", "USD") - Money("0.01", "USD") == Money("4.99", "USD")
    assert Money("2.50", "MXN") * 3 == Money("7.50", "MXN")
    with pytest.raises(MoneyError, match="EUR and USD"):
        Money("1", "EUR") + Money("1", "USD")
    with pytest.raises(MoneyError):
        Money("1", "EUR") < Money("1", "USD")  # noqa: B015
    assert Money("1", "EUR") < Money("2", "EUR")


def test_multiplying_into_a_fraction_of_a_cent_is_refused() -> None:
    with pytest.raises(MoneyError):
        Money("0.01", "EUR") * Decimal("0.5")
    with pytest.raises(MoneyError):
        Money("1", "EUR") * 1.5  # type: ignore[operator]


def test_bad_inputs() -> None:
    for bad in ("abc", "NaN", "Infinity", "", True, None, [1]):
        with pytest.raises(MoneyError):
            Money(bad, "EUR")  # type: ignore[arg-type]
    with pytest.raises(MoneyError, match="unknown currency"):
        Money("1", "MNX")
    with pytest.raises(MoneyError, match="too large"):
        Money("1" * 20, "EUR")


def test_immutable_and_hashable() -> None:
    m = Money("1.00", "EUR")
    with pytest.raises(AttributeError):
        m.amount = Decimal(2)  # type: ignore[misc]
    assert len({Money("1.0", "EUR"), Money("1.00", "EUR")}) == 1
    assert repr(m) == "Money('1.00', 'EUR')"
    assert str(m) == "1.00 EUR"


def test_provider_json_numbers_are_decimal() -> None:
    data = loads_decimal(b'{"a": 0.1, "b": 3, "c": 12345678901234567890.12}')
    assert data["a"] == Decimal("0.1") and isinstance(data["a"], Decimal)
    assert data["b"] == 3 and isinstance(data["b"], int)
    assert data["c"] == Decimal("12345678901234567890.12")
    with pytest.raises(ValueError):
        loads_decimal(b'{"a": NaN}')


@given(st.integers(min_value=-(10**14), max_value=10**14), st.sampled_from(CODES))
def test_minor_units_round_trip_property(units: int, code: str) -> None:
    money = Money.from_minor_units(units, code)
    assert money.to_minor_units() == units
    assert Money(str(money.amount), code) == money


@given(st.decimals(allow_nan=False, allow_infinity=False, places=4, min_value=-(10**12), max_value=10**12))
def test_only_exact_amounts_are_accepted(value: Decimal) -> None:
    try:
        money = Money(value, "EUR")
    except MoneyError:
        assert value != value.quantize(Decimal("0.01"))
    else:
        assert money.amount == value
        assert Money.from_minor_units(money.to_minor_units(), "EUR") == money


@given(st.text(max_size=30))
def test_arbitrary_text_never_crashes(text: str) -> None:
    with contextlib.suppress(MoneyError):
        assert Money(text, "EUR").currency == "EUR"


# -- regressions found by tests/test_fuzz.py ------------------------------------------------------------------


@pytest.mark.parametrize(
    "amount",
    ["1.0000000000000000000000000000001", "1e-1000000000", "0.001"],
)
def test_more_decimals_than_the_currency_are_refused_even_beyond_28_digits(amount: str) -> None:
    with pytest.raises(MoneyError, match="decimals"):
        Money(amount, "EUR")


def test_a_zero_with_an_odd_exponent_is_written_plainly() -> None:
    assert str(Money("0e-999999999", "MXN").amount) == "0.00"
    assert str(Money("0e+999999999", "MXN").amount) == "0.00"


@pytest.mark.parametrize("factor", [Decimal("sNaN"), Decimal("Infinity"), Decimal("1e999999"),
                                    Decimal("1.0000000000000000000000000000001"), Decimal("1e-999999999")])  # fmt: skip
def test_multiplication_is_exact_or_refused(factor: Decimal) -> None:
    with pytest.raises(MoneyError):
        Money("1.00", "EUR") * factor
    assert Money("1.10", "EUR") * Decimal("3") == Money("3.30", "EUR")


def test_minor_units_with_a_currency_that_is_not_a_string() -> None:
    with pytest.raises(MoneyError, match="currency"):
        Money.from_minor_units(1, 5)  # type: ignore[arg-type]


def test_json_numbers_with_huge_exponents_and_deep_nesting_are_refused_quickly() -> None:
    with pytest.raises(ValueError, match="out of range"):
        loads_decimal(b'{"page": 1e999999999}')
    with pytest.raises(ValueError, match="nested"):
        loads_decimal(b"[" * 100_000)


@pytest.mark.parametrize("money", [Money("19.99", "EUR"), Money(500, "JPY"), Money("1.234", "KWD"), Money(0, "MXN")])
def test_money_survives_pickle_and_copies_unchanged(money: Money) -> None:
    import copy
    import pickle

    for again in (pickle.loads(pickle.dumps(money)), copy.deepcopy(money), copy.copy(money)):
        assert again == money and type(again) is Money
        assert str(again.amount) == str(money.amount) and again.currency == money.currency
    assert copy.deepcopy({"m": [money]}) == {"m": [money]}

"""Money: a Decimal amount with an ISO 4217 currency, and exact conversions.

Floats are refused everywhere: ``Money(0.1, "EUR")`` raises :class:`MoneyError` telling the caller to
pass a ``str`` or a ``Decimal``. Conversions to and from minor units (cents) are exact or raise; nothing
is ever rounded silently.
"""

from __future__ import annotations

import decimal
import json
import operator
from collections.abc import Callable
from decimal import Decimal, InvalidOperation
from typing import Any

from pydantic import GetCoreSchemaHandler
from pydantic_core import core_schema

from billkit.errors import MoneyError

__all__ = ["CURRENCY_EXPONENTS", "Money", "decimals", "exact", "exponent", "loads_decimal", "rescale", "to_decimal"]

#: Number of decimals of the minor unit per ISO 4217 code. Codes not listed are refused, so a typo such as
#: "MNX" fails loudly instead of being treated as a two-decimal currency.
CURRENCY_EXPONENTS: dict[str, int] = {
    # two decimals
    "AUD": 2, "BRL": 2, "CAD": 2, "CHF": 2, "CNY": 2, "COP": 2, "CZK": 2, "DKK": 2, "EUR": 2, "GBP": 2,
    "HKD": 2, "INR": 2, "MXN": 2, "NOK": 2, "NZD": 2, "PEN": 2, "PLN": 2, "SEK": 2, "SGD": 2, "USD": 2,
    "ZAR": 2, "ARS": 2, "UYU": 2,
    # zero decimals
    "JPY": 0, "KRW": 0, "CLP": 0, "ISK": 0, "VND": 0,
    # three decimals
    "KWD": 3, "BHD": 3, "JOD": 3, "OMR": 3, "TND": 3,
}  # fmt: skip


#: Amounts are refused above this many integer digits, so every exact operation fits Decimal's precision.
MAX_DIGITS = 15
#: JSON numbers whose exponent goes beyond this are refused when a body is read (``1e999999999`` is 13 bytes
#: that would take minutes to turn into an int)
MAX_JSON_EXPONENT = 1000

#: Arithmetic that is exact or raises: every rounding, overflow or invalid operation is trapped.
_EXACT = decimal.Context(prec=100, Emax=decimal.MAX_EMAX, Emin=decimal.MIN_EMIN,
                         traps=[decimal.Inexact, decimal.Rounded, decimal.Overflow, decimal.Underflow,
                                decimal.InvalidOperation, decimal.DivisionByZero])  # fmt: skip


#: dropping trailing zeros "rounds" in decimal's terms but loses nothing: only an inexact result is an error
_RESCALE = decimal.Context(prec=100, traps=[decimal.Inexact, decimal.InvalidOperation])


def exact(operation: str, compute: Any, *args: Decimal) -> Decimal:
    """``compute(*args)`` (e.g. ``operator.mul``) in a context where any rounding raises :class:`MoneyError`."""
    try:
        with decimal.localcontext(_EXACT):
            result: Decimal = compute(*args)
            return result
    except decimal.DecimalException:
        raise MoneyError(f"{operation} of {', '.join(str(a) for a in args)} is not exact") from None


def decimals(value: Decimal) -> int:
    """How many decimals ``value`` really has (trailing zeros do not count): ``1.50`` -> 1, ``100`` -> 0."""
    _, digits, exp = value.as_tuple()
    if not isinstance(exp, int) or exp >= 0:
        return 0
    trailing = 0
    for digit in reversed(digits):
        if digit:
            break
        trailing += 1
    if trailing == len(digits):  # zero
        return 0
    return max(0, -(exp + trailing))


def rescale(value: Decimal, places: int) -> Decimal:
    """``value`` written with at most ``places`` decimals and no exponent beyond them (exact: call it only when
    :func:`decimals` is at most ``places``), so a zero such as ``0e-999999999`` is written ``0.00``."""
    exp = value.as_tuple().exponent
    if isinstance(exp, int) and (exp < -places or (exp > 0 and not value)):
        return value.quantize(Decimal(1).scaleb(-places), context=_RESCALE)
    return value


def exponent(currency: str) -> int:
    """The number of minor-unit decimals of ``currency`` (``EUR`` -> 2, ``JPY`` -> 0, ``KWD`` -> 3)."""
    try:
        return CURRENCY_EXPONENTS[currency]
    except KeyError:
        raise MoneyError(f"unknown currency {currency!r}: use an ISO 4217 code such as 'EUR', 'USD' or 'MXN'") from None


def to_decimal(value: object, *, field: str = "amount") -> Decimal:
    """Turn ``str``, ``int`` or ``Decimal`` into a finite ``Decimal``; refuse floats and anything else."""
    if isinstance(value, bool):
        raise MoneyError(f"{field}: a bool is not an amount")
    if isinstance(value, float):
        raise MoneyError(
            f"{field}: got the float {value!r}; floats cannot hold money exactly, pass a str such as "
            f"'{value}' or a decimal.Decimal"
        )
    if isinstance(value, Decimal):
        result = value
    elif isinstance(value, int):
        result = Decimal(value)
    elif isinstance(value, str):
        try:
            result = Decimal(value.strip())
        except InvalidOperation:
            raise MoneyError(f"{field}: {value!r} is not a decimal number") from None
    else:
        raise MoneyError(f"{field}: expected str, int or Decimal, got {type(value).__name__}")
    if not result.is_finite():
        raise MoneyError(f"{field}: {value!r} is not a finite number")
    return result


class Money:
    """An exact amount of one currency.

    >>> Money("19.99", "EUR") + Money("0.01", "EUR")
    Money('20.00', 'EUR')
    """

    __slots__ = ("_amount", "_currency")
    _amount: Decimal
    _currency: str

    def __init__(self, amount: str | int | Decimal, currency: str) -> None:
        places = CURRENCY_EXPONENTS.get(currency) if type(currency) is str else None
        if places is not None and type(amount) is Decimal and amount.is_finite():
            # the common case (a Decimal and an upper-case code), checked without the general path's detours
            exp = amount.as_tuple().exponent
            if isinstance(exp, int) and -places <= exp <= 0 and (not amount or amount.adjusted() < MAX_DIGITS):
                object.__setattr__(self, "_amount", amount)
                object.__setattr__(self, "_currency", currency)
                return
        if not isinstance(currency, str):
            raise MoneyError(f"currency: expected an ISO 4217 code, got {type(currency).__name__}")
        code = currency.strip().upper()
        places = exponent(code)
        value = to_decimal(amount)
        if value and value.adjusted() >= MAX_DIGITS:
            raise MoneyError(f"amount: {value} is too large (at most {MAX_DIGITS} integer digits)")
        if decimals(value) > places:
            raise MoneyError(f"amount: {value} has more than {places} decimals, which {code} does not have")
        object.__setattr__(self, "_amount", rescale(value, places))
        object.__setattr__(self, "_currency", code)

    def __setattr__(self, name: str, value: object) -> None:
        raise AttributeError("Money is immutable")

    # immutable: a copy is the value itself; pickling rebuilds it through the constructor (which checks it again)
    def __reduce__(self) -> tuple[type[Money], tuple[Decimal, str]]:
        return (Money, (self._amount, self._currency))

    def __copy__(self) -> Money:
        return self

    def __deepcopy__(self, memo: dict[int, object]) -> Money:
        return self

    @property
    def amount(self) -> Decimal:
        return self._amount

    @property
    def currency(self) -> str:
        return self._currency

    # -- minor units -------------------------------------------------------------------------------
    def to_minor_units(self) -> int:
        """The amount in minor units (cents for EUR). Exact: never rounds."""
        scaled = self._amount.scaleb(exponent(self._currency))
        if scaled != scaled.to_integral_value():
            raise MoneyError(f"{self} cannot be expressed in whole minor units of {self._currency}")
        return int(scaled)

    @classmethod
    def from_minor_units(cls, units: int, currency: str) -> Money:
        """Build from minor units (``Money.from_minor_units(1999, "EUR")`` is 19.99 EUR)."""
        if isinstance(units, bool) or not isinstance(units, int):
            raise MoneyError(f"minor units must be an int, got {type(units).__name__}")
        if not isinstance(currency, str):
            raise MoneyError(f"currency: expected an ISO 4217 code, got {type(currency).__name__}")
        code = currency.strip().upper()
        return cls(Decimal(units).scaleb(-exponent(code)), code)

    def quantized(self) -> Decimal:
        """The amount with exactly the currency's decimals (``Decimal('20.00')``); exact or raises."""
        return self._amount.quantize(Decimal(1).scaleb(-exponent(self._currency)))

    # -- arithmetic --------------------------------------------------------------------------------
    def _same(self, other: object, op: str) -> Money:
        if not isinstance(other, Money):
            raise TypeError(f"cannot {op} Money and {type(other).__name__}")
        if other._currency != self._currency:
            raise MoneyError(f"cannot {op} {self._currency} and {other._currency}")
        return other

    def __add__(self, other: Money) -> Money:
        o = self._same(other, "add")
        return Money(self._amount + o._amount, self._currency)

    def __sub__(self, other: Money) -> Money:
        o = self._same(other, "subtract")
        return Money(self._amount - o._amount, self._currency)

    def __mul__(self, factor: int | Decimal) -> Money:
        if isinstance(factor, (float, bool)) or not isinstance(factor, (int, Decimal)):
            raise MoneyError("Money can only be multiplied by an int or a Decimal")
        product = exact("multiplying", operator.mul, self._amount, to_decimal(factor, field="factor"))
        return Money(product, self._currency)

    __rmul__ = __mul__

    def __neg__(self) -> Money:
        return Money(-self._amount, self._currency)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Money):
            return NotImplemented
        return self._currency == other._currency and self._amount == other._amount

    def __hash__(self) -> int:
        return hash((self._amount, self._currency))

    def __lt__(self, other: Money) -> bool:
        return self._amount < self._same(other, "compare")._amount

    def __le__(self, other: Money) -> bool:
        return self._amount <= self._same(other, "compare")._amount

    def __gt__(self, other: Money) -> bool:
        return self._amount > self._same(other, "compare")._amount

    def __ge__(self, other: Money) -> bool:
        return self._amount >= self._same(other, "compare")._amount

    def __bool__(self) -> bool:
        return bool(self._amount)

    def __repr__(self) -> str:
        return f"Money({str(self._amount)!r}, {self._currency!r})"

    def __str__(self) -> str:
        return f"{self._amount} {self._currency}"

    @classmethod
    def zero(cls, currency: str) -> Money:
        return cls(0, currency)

    # -- pydantic --------------------------------------------------------------------------------
    @classmethod
    def __get_pydantic_core_schema__(cls, source: Any, handler: GetCoreSchemaHandler) -> core_schema.CoreSchema:
        def parse(value: Any) -> Money:
            if isinstance(value, Money):
                return value
            if isinstance(value, dict) and "amount" in value and "currency" in value:
                return Money(value["amount"], value["currency"])
            raise ValueError("expected Money or {'amount': '1.00', 'currency': 'EUR'}")

        return core_schema.no_info_plain_validator_function(
            parse,
            serialization=core_schema.plain_serializer_function_ser_schema(
                lambda m: {"amount": str(m.amount), "currency": m.currency}
            ),
        )


def loads_decimal(data: str | bytes, *, object_pairs_hook: Callable[[list[tuple[str, Any]]], Any] | None = None) -> Any:
    """Parse provider JSON with every number as ``Decimal``, never through float.

    Raises ``ValueError`` for anything that is not reasonable JSON: invalid text, ``NaN``, a number whose
    exponent is beyond :data:`MAX_JSON_EXPONENT`, nesting deeper than the interpreter's recursion limit.
    """
    try:
        # the common case: one decoder made once (json.loads makes one per call), the rest as json.loads does it
        if object_pairs_hook is None:
            if type(data) is bytes:
                return _DECODER.decode(data.decode(json.detect_encoding(data), "surrogatepass"))
            if type(data) is str and not data.startswith("\ufeff"):  # json.loads refuses a BOM in a str
                return _DECODER.decode(data)
        return json.loads(
            data,
            parse_float=_parse_number,
            parse_int=int,
            parse_constant=_refuse_constant,
            object_pairs_hook=object_pairs_hook,
        )
    except RecursionError:
        raise ValueError("JSON nested too deeply") from None


def _parse_number(text: str) -> Decimal:
    value = Decimal(text)
    if value and abs(value.adjusted()) > MAX_JSON_EXPONENT:
        raise ValueError(f"JSON number {text[:40]} is out of range")
    return value


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"non-standard JSON constant {name}")


_DECODER = json.JSONDecoder(parse_float=_parse_number, parse_int=int, parse_constant=_refuse_constant)

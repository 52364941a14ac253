"""The provider-agnostic model: Bill, LineItem, Tax, Party, Address, statuses and results.

Write side: what the caller fills to create a bill. Read side: what adapters fill from the provider's answer
(``provider``, ``provider_id``, ``status``, ``provider_status``, amounts, timestamps, ``links``, ``raw``).
Models are immutable pydantic v2 models; use ``bill.model_copy(update={...})`` to derive one.

Constructing a model with bad input raises :class:`billkit.errors.ValidationError` listing every problem
with its field path (not pydantic's own exception), so callers catch one family of errors.
"""

from __future__ import annotations

import datetime as dt
import functools
import operator
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from decimal import Decimal
from enum import Enum
from typing import TYPE_CHECKING, Any, overload

import pydantic
from pydantic import BaseModel, ConfigDict, Field, SkipValidation, field_validator

from billkit.errors import BillkitError, MoneyError, Problem, UnsupportedFeatureError, ValidationError
from billkit.money import Money, decimals, exact, rescale, to_decimal

if TYPE_CHECKING:
    from billkit.responses import ResponseInfo

__all__ = [
    "Address",
    "Bill",
    "BillStatus",
    "BulkResult",
    "Direction",
    "ItemResult",
    "ItemStatus",
    "LazyItems",
    "LineItem",
    "Party",
    "Payment",
    "Tax",
    "check_supported",
    "set_fields",
]


class BillStatus(str, Enum):
    """Where a bill stands, the same for every provider. ``provider_status`` keeps the provider's word."""

    DRAFT = "draft"
    PENDING = "pending"  # the provider has not finished creating / stamping it
    OPEN = "open"  # created, awaiting payment
    PARTIALLY_PAID = "partially_paid"
    PAID = "paid"
    VOID = "void"  # cancelled, expired or archived
    FAILED = "failed"  # creation failed for good
    UNKNOWN = "unknown"  # a provider value billkit does not know; see provider_status

    @property
    def is_final(self) -> bool:
        """True for statuses that never change again on their own (PAID, VOID, FAILED)."""
        return self in (BillStatus.PAID, BillStatus.VOID, BillStatus.FAILED)


class Direction(str, Enum):
    PAYABLE = "payable"  # a bill you pay (BILL)
    RECEIVABLE = "receivable"  # a bill or invoice you send (AcceptEasy, Facturapi)


class _Model(BaseModel):
    # defer_build: each model's validator is built when it is first used, not at ``import billkit`` (which also
    # spares a program that imports billkit but never validates pydantic's plugin discovery); 1.43x -> 1.2x of
    # the import floor in benchmarks/bench_import.py
    model_config = ConfigDict(frozen=True, extra="forbid", arbitrary_types_allowed=True, defer_build=True)

    if not TYPE_CHECKING:  # keep pydantic's typed signature for type checkers

        def __init__(self, /, **data: Any) -> None:
            try:
                super().__init__(**data)
            except pydantic.ValidationError as exc:
                raise _convert(exc, type(self).__name__) from None


def _convert(exc: pydantic.ValidationError, model: str) -> ValidationError:
    problems: list[Problem] = []
    for err in exc.errors(include_url=False):
        path = ".".join(str(p) for p in err["loc"]) or model
        ctx = err.get("ctx") or {}
        inner = ctx.get("error")
        if isinstance(inner, ValidationError) and inner.problems and inner.problems[0].field:
            problems.extend(Problem(f"{path}.{p.field}", p.message) for p in inner.problems)
            continue
        message = inner.message if isinstance(inner, BillkitError) else err["msg"]
        problems.append(Problem(path, message))
    return ValidationError(problems)


class Address(_Model):
    line1: str | None = None
    line2: str | None = None
    city: str | None = None
    region: str | None = None
    postal_code: str | None = None
    country: str | None = Field(default=None, description="ISO 3166-1 alpha-2 or alpha-3 code")


class Party(_Model):
    """The other side of the bill: the customer (receivable) or the vendor (payable).

    Also what ``client.create_party`` / ``get_party`` / ``update_party`` / ``delete_party`` take and return (a
    Facturapi customer, a BILL vendor). Read side, filled by the adapter on those calls only: ``provider`` and
    ``raw`` (the provider's answer, whole); neither is ever sent, and neither counts as set (``model_fields_set``).
    """

    name: str | None = None
    email: str | None = None
    phone: str | None = None
    tax_id: str | None = None
    address: Address | None = None
    provider_id: str | None = Field(default=None, description="the provider's id for this party (BILL vendorId)")
    provider_options: Mapping[str, Any] = Field(default_factory=dict)

    # read side
    provider: str | None = None
    raw: SkipValidation[Mapping[str, Any] | None] = Field(default=None, repr=False)

    def as_counterparty(self) -> Party:
        """A counterparty naming this saved party by its id only (what a bill at BILL or Facturapi takes for a
        saved vendor or customer); raises ValidationError when it has no ``provider_id``."""
        if not self.provider_id:
            raise ValidationError([Problem("provider_id", "this party is not saved at a provider (no provider_id)")])
        return Party(provider_id=self.provider_id)

    def read_from(self, provider: str, raw: Mapping[str, Any] | None) -> Party:
        """This party as read from ``provider`` (``raw`` its answer): the same fields, the same fields set."""
        values = {**dict(self), "provider": provider, "raw": raw}
        return Party.model_construct(_fields_set=set(self.model_fields_set) - {"provider", "raw"}, **values)


class Payment(_Model):
    """A payment recorded against a bill through ``client.record_payment`` (a Facturapi payment complement, an
    AcceptEasy bill marked paid). ``provider_id`` is the payment's own id at the provider (None where it has
    none), ``balance_after`` what is left to pay once it counts (None where the provider does not say), ``raw``
    the provider's answer, whole."""

    provider: str
    bill_id: str
    amount: Money
    provider_id: str | None = None
    paid_at: dt.datetime | None = None
    method: str | None = None
    balance_after: Money | None = None
    raw: SkipValidation[Mapping[str, Any] | None] = Field(default=None, repr=False)


class Tax(_Model):
    """A tax on a line item. ``rate`` is a fraction (``Decimal('0.16')`` for 16 %)."""

    type: str = Field(description="the tax name, e.g. 'IVA', 'ISR', 'IEPS', 'VAT'")
    rate: Decimal
    withholding: bool = False
    included: bool = Field(default=False, description="True when the unit price already includes this tax")

    @field_validator("rate", mode="before")
    @classmethod
    def _rate(cls, value: object) -> Decimal:
        return to_decimal(value, field="rate")


#: a line item's quantity: at most this many integer digits and decimals (CFDI allows 6 decimals), so that
#: quantity x unit price is always exact
MAX_QUANTITY_DIGITS = 9
MAX_QUANTITY_DECIMALS = 6


class LineItem(_Model):
    description: str
    quantity: Decimal = Decimal(1)
    unit_price: Money
    taxes: tuple[Tax, ...] = ()
    provider_options: Mapping[str, Any] = Field(default_factory=dict)

    @field_validator("quantity", mode="before")
    @classmethod
    def _quantity(cls, value: object) -> Decimal:
        quantity = to_decimal(value, field="quantity")
        if quantity and quantity.adjusted() >= MAX_QUANTITY_DIGITS:
            raise MoneyError(f"quantity: {quantity} is too large (at most {MAX_QUANTITY_DIGITS} integer digits)")
        if decimals(quantity) > MAX_QUANTITY_DECIMALS:
            raise MoneyError(f"quantity: {quantity} has more than {MAX_QUANTITY_DECIMALS} decimals")
        return rescale(quantity, MAX_QUANTITY_DECIMALS)

    @property
    def amount(self) -> Decimal:
        """quantity x unit price, exact, before taxes."""
        return exact("quantity x unit price", operator.mul, self.quantity, self.unit_price.amount)


class Bill(_Model):
    """A bill or invoice, the same shape for every provider.

    Write side: ``direction``, ``counterparty``, ``reference`` (your business id: invoice number, payment
    reference), ``description``, ``issue_date``, ``due_date``, ``line_items``, ``total`` and
    ``provider_options`` (provider-specific fields, merged last; documented per provider).

    Read side (filled by the adapter): ``provider``, ``provider_id``, ``status``, ``provider_status``,
    ``amount_due``, ``amount_paid``, ``created_at``, ``updated_at``, ``links`` and ``raw``.
    """

    direction: Direction = Direction.RECEIVABLE
    counterparty: Party | None = None
    reference: str | None = None
    description: str | None = None
    issue_date: dt.date | None = None
    due_date: dt.date | None = None
    line_items: tuple[LineItem, ...] = ()
    total: Money | None = None
    provider_options: Mapping[str, Any] = Field(default_factory=dict)

    # read side
    provider: str | None = None
    provider_id: str | None = None
    status: BillStatus | None = None
    provider_status: str | None = None
    amount_due: Money | None = None
    amount_paid: Money | None = None
    created_at: dt.datetime | None = None
    updated_at: dt.datetime | None = None
    links: Mapping[str, str] = Field(default_factory=dict)
    # kept as the adapter read it: not validated again, not copied (it is the provider's answer, whole)
    raw: SkipValidation[Mapping[str, Any] | None] = Field(default=None, repr=False)

    @property
    def currency(self) -> str | None:
        """The bill's currency: the total's, else the first line item's."""
        if self.total is not None:
            return self.total.currency
        if self.line_items:
            return self.line_items[0].unit_price.currency
        return None

    @property
    def response(self) -> ResponseInfo | None:
        """The HTTP answer this bill was read from (status, headers without auth headers, request id), for a bill
        a client's ``create``, ``get`` or ``submit`` returned; None for one built locally or read from a status
        poll. No field: it takes no part in equality or ``model_dump``; ``model_copy`` keeps it."""
        from billkit.responses import attached

        found = attached(self)
        return found[-1] if found else None

    def line_total(self) -> Decimal:
        """Sum of quantity x unit price over the line items (before taxes), exact."""
        total = Decimal(0)
        for item in self.line_items:
            total = exact("the sum of the line items", operator.add, total, item.amount)
        return total


class ItemStatus(str, Enum):
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    PENDING = "pending"


class ItemResult(_Model):
    """The outcome of one input of a bulk, at ``index`` in the input order."""

    index: int
    status: ItemStatus
    bill: Bill | None = None
    error: BillkitError | None = None
    reference: str | None = None

    @property
    def ok(self) -> bool:
        return self.status is ItemStatus.SUCCEEDED


class LazyItems(Sequence[ItemResult]):
    """The items of a big :class:`BulkResult`, each made when first read (and kept): a 10,000-bill bulk costs
    nothing per bill until the caller looks. Compares, pickles and copies as the tuple of its items."""

    __slots__ = ("_count", "_made", "_make")

    def __init__(self, count: int, make: Callable[[int], ItemResult]) -> None:
        self._count = count
        self._make = make
        self._made: list[ItemResult | None] = [None] * count

    def __len__(self) -> int:
        return self._count

    @overload
    def __getitem__(self, index: int) -> ItemResult: ...
    @overload
    def __getitem__(self, index: slice) -> tuple[ItemResult, ...]: ...
    def __getitem__(self, index: int | slice) -> ItemResult | tuple[ItemResult, ...]:
        if isinstance(index, slice):
            return tuple(self[i] for i in range(*index.indices(self._count)))
        if index < 0:
            index += self._count
        if not 0 <= index < self._count:
            raise IndexError("bulk item index out of range")
        item = self._made[index]
        if item is None:
            item = self._made[index] = self._make(index)
        return item

    def __iter__(self) -> Iterator[ItemResult]:
        return (self[i] for i in range(self._count))

    def __eq__(self, other: object) -> bool:
        if isinstance(other, Sequence) and not isinstance(other, str):
            return len(other) == self._count and all(a == b for a, b in zip(self, other, strict=True))
        return NotImplemented

    def __hash__(self) -> int:
        return hash(tuple(self))

    def __repr__(self) -> str:
        return f"<{self._count} bulk items>"

    def __reduce__(self) -> tuple[type[tuple[ItemResult, ...]], tuple[tuple[ItemResult, ...]]]:
        return (tuple, (tuple(self),))

    def __deepcopy__(self, memo: dict[int, object]) -> tuple[ItemResult, ...]:
        import copy

        return copy.deepcopy(tuple(self), memo)


class BulkResult(_Model):
    """One :class:`ItemResult` per input, in input order."""

    items: tuple[ItemResult, ...]
    provider: str | None = None
    provider_id: str | None = None

    @classmethod
    def lazy(
        cls,
        count: int,
        make: Callable[[int], ItemResult],
        *,
        provider: str | None = None,
        provider_id: str | None = None,
    ) -> BulkResult:
        """A result whose item ``i`` is ``make(i)``, made when first read (the adapter has checked what it holds)."""
        return cls.model_construct(items=LazyItems(count, make), provider=provider, provider_id=provider_id)  # type: ignore[arg-type]

    def __iter__(self) -> Iterator[ItemResult]:  # type: ignore[override]
        return iter(self.items)

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, index: int) -> ItemResult:
        return self.items[index]

    @property
    def succeeded(self) -> list[ItemResult]:
        return [i for i in self.items if i.status is ItemStatus.SUCCEEDED]

    @property
    def failed(self) -> list[ItemResult]:
        return [i for i in self.items if i.status is ItemStatus.FAILED]

    @property
    def pending(self) -> list[ItemResult]:
        return [i for i in self.items if i.status is ItemStatus.PENDING]


# -- "never silently drop": the common model is walked once, here --------------------------------------


def set_fields(model: BaseModel, prefix: str = "") -> Iterator[str]:
    """Yield the dotted path of every write-side field the caller set to a non-empty value.

    Line items appear as ``line_items[].description`` (one path for all items) so adapters declare
    support once per field.
    """
    for name in sorted(model.model_fields_set):
        if name in _READ_SIDE or name == "provider_options":
            continue
        value = getattr(model, name)
        if value is None or value == () or value == {}:
            continue
        path = f"{prefix}{name}"
        if isinstance(value, BaseModel) and not isinstance(value, Money):
            yield path
            yield from set_fields(value, path + ".")
        elif isinstance(value, tuple) and value and isinstance(value[0], BaseModel):
            yield path
            seen: set[str] = set()
            for item in value:
                for sub in set_fields(item, path + "[]."):
                    if sub not in seen:
                        seen.add(sub)
                        yield sub
        else:
            yield path


_READ_SIDE = frozenset(
    {"provider", "provider_id", "status", "provider_status", "amount_due", "amount_paid", "created_at",
     "updated_at", "links", "raw"}
)  # fmt: skip
_SKIPPED = _READ_SIDE | {"provider_options"}


def check_supported(bill: Bill, provider: str, supported: Iterable[str]) -> None:
    """Raise :class:`UnsupportedFeatureError` naming the first field the caller set that ``provider`` can't map.

    ``supported`` lists dotted paths (``counterparty.tax_id``, ``line_items[].taxes``); a path also covers
    everything below it when it ends with ``.*``.
    """
    allowed, prefixes = _allowed(tuple(supported))
    if _fits(bill, "", allowed, prefixes):
        return  # the common case, without sorting; on a refusal the sorted walk names the first field
    for path in set_fields(bill):
        if path in allowed or path.startswith(prefixes):
            continue
        raise UnsupportedFeatureError(
            provider, path, "leave it unset, or pass the provider-specific value through provider_options"
        )


def flat_fields(cls: type[BaseModel], supported: Iterable[str]) -> frozenset[str]:
    """The fields of ``cls`` whose being set never makes :func:`check_supported` refuse, and that hold no models to
    walk into: a model whose ``model_fields_set`` is within them passes :func:`check_supported` whatever its values
    (a bulk's shape check, made once; anything outside them takes the full check)."""
    allowed, prefixes = _allowed(tuple(supported))
    fits, nested = _level(cls, "", allowed, prefixes)
    return fits - nested


@functools.lru_cache(maxsize=32)
def _allowed(supported: tuple[str, ...]) -> tuple[frozenset[str], tuple[str, ...]]:
    return frozenset(supported), tuple(p[:-1] for p in supported if p.endswith(".*"))


def _fits(model: BaseModel, prefix: str, allowed: frozenset[str], prefixes: tuple[str, ...]) -> bool:
    """Whether every path :func:`set_fields` would yield for ``model`` (below ``prefix``) is supported: the fields
    a level allows are taken out by one set difference, what is left must be empty, and only the fields that can
    hold models are walked into (the same answer as checking each path of :func:`_paths`, without making them)."""
    fits, nested = _level(type(model), prefix, allowed, prefixes)
    fields = model.model_fields_set
    for name in fields - fits:
        value = getattr(model, name)
        if value is not None and not ((type(value) is tuple or isinstance(value, Mapping)) and not value):
            return False
    for name in fields & nested:
        value = getattr(model, name)
        if isinstance(value, BaseModel):
            if not _fits(value, f"{prefix}{name}.", allowed, prefixes):
                return False
        elif type(value) is tuple and value and isinstance(value[0], BaseModel):
            inner = f"{prefix}{name}[]."
            if not all(_fits(item, inner, allowed, prefixes) for item in value):
                return False
    return True


@functools.lru_cache(maxsize=256)
def _level(
    cls: type[BaseModel], prefix: str, allowed: frozenset[str], prefixes: tuple[str, ...]
) -> tuple[frozenset[str], frozenset[str]]:
    """The fields of ``cls`` (at ``prefix``) a caller may set, ``provider_options`` and the read side included, and
    the fields that may hold models (walked into)."""
    names = cls.model_fields
    fits = frozenset(
        n for n in names if n in _SKIPPED or f"{prefix}{n}" in allowed or f"{prefix}{n}".startswith(prefixes)
    )
    nested = frozenset(n for n in names if n not in _SKIPPED and _may_hold_models(names[n].annotation))
    return fits, nested


def _may_hold_models(annotation: Any) -> bool:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return True
    return any(_may_hold_models(arg) for arg in getattr(annotation, "__args__", ()))


def _paths(model: BaseModel, prefix: str) -> list[str]:
    """The paths :func:`set_fields` yields, unordered and with repeats (the fast check's walk)."""
    out: list[str] = []
    for name in model.model_fields_set:
        if name in _SKIPPED:
            continue
        value = getattr(model, name)
        if value is None:
            continue
        if isinstance(value, BaseModel):
            out.append(prefix + name)
            out.extend(_paths(value, f"{prefix}{name}."))
        elif type(value) is tuple or isinstance(value, Mapping):
            if value:
                out.append(prefix + name)
                if type(value) is tuple and isinstance(value[0], BaseModel):
                    for item in value:
                        out.extend(_paths(item, f"{prefix}{name}[]."))
        else:
            out.append(prefix + name)
    return out

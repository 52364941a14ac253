"""Facturapi's e-receipts ("recibos") and global invoices on the native client.

A **receipt** is a note of sale issued without the customer's fiscal data: its ``key`` and ``self_invoice_url`` let
the customer invoice it on Facturapi's self-invoice portal until ``expires_at``. The organization can also invoice
it to a customer itself (:meth:`FacturapiReceipts.invoice_receipt`, or several at once by key with
:meth:`~FacturapiReceipts.invoice_receipts`), cancel it, and at the end of each period put every receipt still
``open`` into one **global invoice** to ``PUBLICO EN GENERAL`` (:meth:`~FacturapiReceipts.create_global_invoice`).
A receipt's ``status`` is ``open``, ``canceled``, ``invoiced_to_customer`` or ``invoiced_globally``
(:class:`~billkit.providers.facturapi.wire_receipts.ReceiptStatus`; any other string is ``UNKNOWN``, kept raw).

**Retries, fail closed.** ``POST /receipts`` carries an ``idempotency_key`` (the spec lists it on ``ReceiptInput``),
one per logical create unless the caller gives theirs, so it is retried like a read. Nothing else here has a key
(``InvoiceReceiptInput``, ``ToInvoiceInput`` and ``GlobalInvoiceInput`` have none, and Facturapi refuses fields it
does not know, error code ``unknown_field``, so billkit does not send one): those writes are sent once, and when
the answer is lost (or refused as ``receipt_not_open``) billkit reads the receipts back to learn what happened.

* **One receipt to a customer** (``POST /receipts/{id}/invoice``): the receipt is read first and refused locally
  when it is cancelled, invoiced globally, past ``expires_at`` or has no customer while none is given. A receipt
  already ``invoiced_to_customer`` returns that invoice without sending anything when the customer is the one
  asked for (the same tax id, or the same customer id), and raises :class:`ConflictError` otherwise. After a lost
  answer the receipt is read again and the invoice that took it is returned (same customer check); a receipt still
  ``open`` means nothing was issued and the error stands.
* **Several receipts by key** (``POST /receipts/to-invoice``): receipts cannot be read by key, so a lost answer is
  an :class:`OutcomeUnknownError` saying how to check (:meth:`~FacturapiReceipts.preview_receipts_invoice` answers
  ``receipt_not_open`` once the invoice exists). The dry run (``dry_run: true``) and the PDF preview change
  nothing and are retried like reads.
* **The global invoice** (``POST /receipts/global-invoice``) must never be issued twice. billkit lists the
  period's receipts first (safe reads; a period with more than the 30 pages Facturapi serves is split in halves),
  pins the open ones with the spec's ``receipts`` field, and refuses locally when none is open or their currencies
  differ. Its identity is that set of receipts: a repeated call with the same ``receipt_ids`` whose receipts one
  invoice already took returns that invoice without sending anything. The POST is sent once; after a lost answer
  or a refusal the receipts are read again: all ``invoiced_globally`` by one invoice means it was issued (it is read
  and returned), all still ``open`` means it was not (the error stands: call again), anything else raises
  :class:`ConflictError`. The answer is checked: its total must be the sum of the pinned receipts' totals
  (:class:`ConflictError` with the invoice in ``raw`` otherwise).

**Period checks** (Facturapi documents only that ``from`` / ``to`` "must comply with the periodicity", error
``invalid_global_invoice_period``; billkit's reading of the SAT's global-invoice rules, checked in Mexico City
time): ``periodicity`` one of ``day week fortnight month two_months``; ``months`` ``01``..``12``, or ``13``..``18``
(the bimesters) for ``two_months``; ``year`` from 2022 (CFDI 4.0) to this year; ``to`` after ``from``, the span at
most 1, 7, 16, 31 or 62 days; a ``month`` or ``two_months`` period inside that month or bimester of ``year``; a
shorter one touching month ``months`` of ``year``. :class:`GlobalPeriod` builds periods that pass.

**Unverified, and the safe choice made:** what Facturapi does with a ``receipts`` id that is not open (billkit
never sends one; the sandbox refuses it); whether more than 5,000 receipts fit one global invoice
(``global_invoice_too_many_items`` exists; billkit does not cap it); how ``payment_form`` is chosen for receipts
paid in several forms (pass ``payment_form`` to invoice one form at a time).
"""

from __future__ import annotations

import calendar
import datetime as dt
import hashlib
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal
from typing import TYPE_CHECKING, Any, Literal, cast

from billkit.errors import (
    APIError,
    BillkitError,
    ConflictError,
    OutcomeUnknownError,
    Problem,
    ValidationError,
)
from billkit.flows import Emit, Flow, M, Native, Stream, operation, stream_of
from billkit.models import LineItem, Party
from billkit.providers.facturapi.mapping import EMAIL, PROVIDER, customer_input, new_idempotency_key, read
from billkit.providers.facturapi.mapping import _item as _invoice_item  # the invoice's item checks, shared
from billkit.providers.facturapi.wire import Customer, CustomerInput, ItemInput, SearchResult, parse_datetime
from billkit.providers.facturapi.wire_lifecycle import InvoiceDetail
from billkit.providers.facturapi.wire_receipts import (
    GLOBAL_PERIODICITIES,
    GlobalInvoiceRequest,
    Periodicity,
    Receipt,
    ReceiptCustomerRequest,
    ReceiptInvoiceRequest,
    ReceiptRequest,
    ReceiptStatus,
    ToInvoicePreviewRequest,
    ToInvoiceRequest,
    ToInvoiceSummary,
)
from billkit.transport import Request, Response, encode_body

if TYPE_CHECKING:
    from billkit.providers.facturapi.client import FacturapiAdapter

__all__ = [
    "MAX_RECEIPT_ITEMS",
    "MAX_TO_INVOICE_KEYS",
    "FacturapiReceipts",
    "GlobalPeriod",
    "check_period",
    "global_invoice_key",
    "receipt_items",
]

MEXICO_CITY = dt.timezone(dt.timedelta(hours=-6), "America/Mexico_City")
MAX_RECEIPT_ITEMS = 5000
MAX_TO_INVOICE_KEYS = 1000
MAX_PAGE = 30
#: how far past ``expires_at`` a receipt is still sent to Facturapi (clocks differ; Facturapi decides at the edge)
CLOCK_SKEW = dt.timedelta(minutes=5)
#: the longest ``to - from`` of each periodicity
PERIOD_SPAN = {
    "day": dt.timedelta(days=1),
    "week": dt.timedelta(days=7),
    "fortnight": dt.timedelta(days=16),
    "month": dt.timedelta(days=31),
    "two_months": dt.timedelta(days=62),
}
_CENT = Decimal("0.01")
_PAYMENT_FORM = re.compile(r"^\d{2}$")
_USE = re.compile(r"^[A-Z]{1,2}\d{2}$")
_MS = dt.timedelta(milliseconds=1)


def _invalid(problems: list[Problem]) -> ValidationError:
    return ValidationError(problems, provider=PROVIDER)


def _conflict(message: str, code: str, raw: Any = None) -> ConflictError:
    return ConflictError(message, provider=PROVIDER, code=code, raw=raw)


def _cents(value: Decimal) -> Decimal:
    return value.quantize(_CENT, rounding=ROUND_HALF_UP)


def _body(model: Any) -> bytes:
    return encode_body(model.to_json() if hasattr(model, "to_json") else model, provider=PROVIDER)


def _wire_time(value: dt.datetime) -> str:
    """An aware datetime as Facturapi writes dates: UTC, milliseconds, ``Z``."""
    utc = value.astimezone(dt.timezone.utc)
    return utc.strftime("%Y-%m-%dT%H:%M:%S.") + f"{utc.microsecond // 1000:03d}Z"


def _aware(name: str, value: Any, problems: list[Problem]) -> dt.datetime | None:
    if not isinstance(value, dt.datetime) or value.tzinfo is None or value.utcoffset() is None:
        problems.append(Problem(name, f"{value!r}: give a timezone-aware datetime"))
        return None
    return value


def _check_text(problems: list[Problem], name: str, value: Any, most: int) -> None:
    if value is not None and (not isinstance(value, str) or not 1 <= len(value) <= most):
        problems.append(Problem(name, f"1 to {most} characters"))


def _check_folio(problems: list[Problem], value: Any) -> None:
    if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
        problems.append(Problem("folio_number", f"{value!r}: a whole number from 1"))


def _check_form(problems: list[Problem], value: Any, *, required: bool) -> None:
    if value is None and not required:
        return
    if not isinstance(value, str) or not _PAYMENT_FORM.match(value):
        problems.append(Problem("payment_form", f"{value!r} is not a 2-digit SAT payment form"))


def _check_use(problems: list[Problem], value: Any) -> None:
    if value is not None and (not isinstance(value, str) or not _USE.match(value)):
        problems.append(Problem("use", f"{value!r} is not a SAT CFDI use such as 'G03'"))


def _customer_body(
    customer: Party | CustomerInput | str | None, problems: list[Problem], *, name: str = "customer"
) -> CustomerInput | str | None:
    """A Party (mapped and checked as ``create`` does), a CustomerInput, or a saved customer's 24-character id."""
    if customer is None or isinstance(customer, CustomerInput):
        return customer
    if isinstance(customer, Party):
        try:
            return customer_input(customer)
        except ValidationError as exc:
            problems.extend(Problem(f"{name}.{p.field}" if p.field else name, p.message) for p in exc.problems)
            return None
    if isinstance(customer, str):
        if len(customer) != 24:
            problems.append(Problem(name, f"{customer!r}: a Facturapi customer id has 24 characters"))
            return None
        return customer
    problems.append(Problem(name, "a billkit.Party, a CustomerInput or a saved customer's id"))
    return None


def _same_customer(asked: CustomerInput | str, invoice: InvoiceDetail) -> bool:
    got = invoice.customer
    if not isinstance(got, Customer):
        return isinstance(got, str) and isinstance(asked, str) and got == asked
    if isinstance(asked, str):
        return got.id == asked
    return (got.tax_id or "").upper() == asked.tax_id.upper()


# -- receipts ------------------------------------------------------------------------------------------------------


def receipt_items(items: Sequence[LineItem | ItemInput]) -> tuple[list[ItemInput], str]:
    """The ``items`` of a receipt and their currency: each LineItem checked and mapped as an invoice's line items
    are (``product_key`` option required, taxes as written); an ItemInput is sent as it is (a saved product's id
    as ``product``, say). One currency for all; every problem in one ValidationError."""
    problems: list[Problem] = []
    if isinstance(items, (str, bytes)) or not isinstance(items, Sequence) or not items:
        raise _invalid([Problem("items", "at least one item")])
    if len(items) > MAX_RECEIPT_ITEMS:
        raise _invalid([Problem("items", f"{len(items)} items; a receipt holds at most {MAX_RECEIPT_ITEMS}")])
    out: list[ItemInput] = []
    currencies: set[str] = set()
    for i, item in enumerate(items):
        if isinstance(item, ItemInput):
            out.append(item)
            continue
        if not isinstance(item, LineItem):
            problems.append(Problem(f"items[{i}]", "give each item as billkit.LineItem or an ItemInput"))
            continue
        currencies.add(item.unit_price.currency)
        built = _invoice_item(item, f"items[{i}]", lambda path, message: problems.append(Problem(path, message)))
        if built is not None:
            out.append(built if isinstance(built, ItemInput) else ItemInput.model_validate(built))
    if len(currencies) > 1:
        problems.append(Problem("items[].unit_price", f"one currency per receipt, got {', '.join(sorted(currencies))}"))
    if problems:
        raise _invalid(problems)
    return out, (currencies.pop() if currencies else "MXN")


# -- global invoices -----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class GlobalPeriod:
    """The period of a global invoice: the SAT's ``periodicity``, ``months`` and ``year`` (``InformacionGlobal``)
    and the receipts' dates it covers, ``start`` to ``end`` inclusive. Build one with :meth:`day`, :meth:`week`,
    :meth:`fortnight`, :meth:`month` or :meth:`two_months` (Mexico City days), or directly."""

    periodicity: Periodicity
    months: str
    year: int
    start: dt.datetime
    end: dt.datetime

    @staticmethod
    def _span(first: dt.date, last: dt.date) -> tuple[dt.datetime, dt.datetime]:
        start = dt.datetime(first.year, first.month, first.day, tzinfo=MEXICO_CITY)
        end = dt.datetime(last.year, last.month, last.day, 23, 59, 59, 999000, tzinfo=MEXICO_CITY)
        return start, end

    @classmethod
    def day(cls, day: dt.date) -> GlobalPeriod:
        return cls("day", f"{day.month:02d}", day.year, *cls._span(day, day))

    @classmethod
    def week(cls, first_day: dt.date) -> GlobalPeriod:
        """Seven days from ``first_day``; ``months`` is the month of its first day."""
        return cls("week", f"{first_day.month:02d}", first_day.year,
                   *cls._span(first_day, first_day + dt.timedelta(days=6)))  # fmt: skip

    @classmethod
    def fortnight(cls, year: int, month: int, half: Literal[1, 2]) -> GlobalPeriod:
        """Days 1 to 15 (``half=1``) or 16 to the month's end (``half=2``)."""
        last = calendar.monthrange(year, month)[1]
        first, final = (1, 15) if half == 1 else (16, last)
        return cls("fortnight", f"{month:02d}", year,
                   *cls._span(dt.date(year, month, first), dt.date(year, month, final)))  # fmt: skip

    @classmethod
    def month(cls, year: int, month: int) -> GlobalPeriod:
        last = calendar.monthrange(year, month)[1]
        return cls("month", f"{month:02d}", year, *cls._span(dt.date(year, month, 1), dt.date(year, month, last)))

    @classmethod
    def two_months(cls, year: int, bimester: int) -> GlobalPeriod:
        """Bimester 1 (January-February) to 6 (November-December); ``months`` ``13`` to ``18``."""
        first = 2 * bimester - 1
        last = calendar.monthrange(year, first + 1)[1]
        return cls("two_months", f"{12 + bimester}", year,
                   *cls._span(dt.date(year, first, 1), dt.date(year, first + 1, last)))  # fmt: skip


def check_period(period: GlobalPeriod, today: dt.date) -> list[Problem]:
    """The problems of ``period`` against the rules in the module docstring (``today`` in Mexico City)."""
    problems: list[Problem] = []
    if not isinstance(period, GlobalPeriod):
        return [Problem("period", "give a GlobalPeriod (GlobalPeriod.month(2026, 1), ...)")]
    if period.periodicity not in GLOBAL_PERIODICITIES:
        problems.append(
            Problem("period.periodicity", f"{period.periodicity!r}: one of {', '.join(GLOBAL_PERIODICITIES)}")
        )
        return problems
    two = period.periodicity == "two_months"
    months = int(period.months) if isinstance(period.months, str) and re.fullmatch(r"\d{2}", period.months) else 0
    if not (13 <= months <= 18 if two else 1 <= months <= 12):
        problems.append(Problem("period.months", f"{period.months!r}: {'13 to 18' if two else '01 to 12'}"))
    year = period.year
    if isinstance(year, bool) or not isinstance(year, int) or not 2022 <= year <= today.year:
        problems.append(Problem("period.year", f"{year!r}: from 2022 to {today.year}"))
    start = _aware("period.start", period.start, problems)
    end = _aware("period.end", period.end, problems)
    if problems or start is None or end is None:
        return problems
    if end <= start:
        problems.append(Problem("period.end", "must be after period.start"))
        return problems
    if end - start > PERIOD_SPAN[period.periodicity]:
        problems.append(Problem("period.end", f"a {period.periodicity} period spans at most "
                                              f"{PERIOD_SPAN[period.periodicity].days} days"))  # fmt: skip
        return problems
    first, last = start.astimezone(MEXICO_CITY), end.astimezone(MEXICO_CITY)
    if period.periodicity in ("month", "two_months"):
        allowed = {months} if not two else {2 * (months - 12) - 1, 2 * (months - 12)}
        if {first.month, last.month} - allowed or {first.year, last.year} != {year}:
            problems.append(Problem("period", f"a {period.periodicity} period lies inside months {period.months} of "
                                              f"{year} (Mexico City time)"))  # fmt: skip
    elif (year, months) not in {(first.year, first.month), (last.year, last.month)}:
        problems.append(Problem("period.months", f"{period.months}/{year} is not a month the period covers"))
    return problems


def global_invoice_key(period: GlobalPeriod, receipt_ids: Sequence[str]) -> str:
    """The business identity of a global invoice: its period and the receipts it takes (a hash; never sent)."""
    identity = f"{period.periodicity}:{period.months}:{period.year}:{','.join(sorted(receipt_ids))}"
    return "bk-global-" + hashlib.sha256(identity.encode()).hexdigest()[:32]


# -- the native client's receipt methods ---------------------------------------------------------------------------


class FacturapiReceipts(Native[M]):
    """The receipts half of :class:`~billkit.providers.facturapi.FacturapiNative` (see the module docstring)."""

    _adapter: FacturapiAdapter

    def _receipt_call(self, request: Request) -> Flow[Response]:
        return self._adapter.ctx.transport.send(request)

    def _receipt_now(self) -> dt.datetime:
        return dt.datetime.fromtimestamp(self._adapter.ctx.clock.wall(), tz=dt.timezone.utc)

    def _read_receipt(self, receipt_id: str) -> Flow[Receipt]:
        response = yield from self._receipt_call(Request("GET", "/receipts/{}", ids=(receipt_id,)))
        return read(Receipt, response.json(), response)

    def _invoice_of(self, invoice_id: str) -> Flow[InvoiceDetail]:
        response = yield from self._receipt_call(Request("GET", "/invoices/{}", ids=(invoice_id,)))
        return read(InvoiceDetail, response.json(), response)

    # -- receipts ------------------------------------------------------------------------------------------------
    @operation
    def create_receipt(
        self,
        items: Sequence[LineItem | ItemInput],
        *,
        payment_form: str,
        customer: Party | CustomerInput | str | None = None,
        date: dt.datetime | None = None,
        exchange: Decimal | None = None,
        folio_number: int | None = None,
        branch: str | None = None,
        external_id: str | None = None,
        idempotency_key: str | None = None,
    ) -> Flow[Receipt]:
        """``POST /receipts``: a receipt of ``items`` (1 to 5,000; LineItems are checked as an invoice's are) paid in
        ``payment_form`` (SAT code), optionally already assigned to ``customer``; ``exchange`` (MXN per unit) is
        required for a currency other than MXN. Carries ``idempotency_key`` (a fresh one unless given), so it is
        retried like a read; after a lost answer call again with the same key."""
        problems: list[Problem] = []
        built: list[ItemInput] = []
        currency = "MXN"
        try:
            built, currency = receipt_items(items)
        except ValidationError as exc:
            problems.extend(exc.problems)
        _check_form(problems, payment_form, required=True)
        body_customer = _customer_body(customer, problems)
        when = _aware("date", date, problems) if date is not None else None
        if currency != "MXN":
            if exchange is None or isinstance(exchange, (bool, float)) or not isinstance(exchange, (Decimal, int)):
                problems.append(Problem("exchange", f"required for {currency}: MXN per 1 {currency}, as a Decimal"))
            elif exchange <= 0:
                problems.append(Problem("exchange", "must be greater than 0"))
        elif exchange is not None and built:
            problems.append(Problem("exchange", "only for a currency other than MXN (the items are in MXN)"))
        _check_folio(problems, folio_number)
        _check_text(problems, "branch", branch, 100)
        _check_text(problems, "external_id", external_id, 100)
        _check_text(problems, "idempotency_key", idempotency_key, 200)
        if problems:
            raise _invalid(problems)
        key = idempotency_key or new_idempotency_key()
        body = ReceiptRequest(
            items=built,
            payment_form=payment_form,
            customer=body_customer,
            date=_wire_time(when) if when is not None else None,
            folio_number=folio_number,
            currency=None if currency == "MXN" else currency,
            exchange=Decimal(exchange) if currency != "MXN" and exchange is not None else None,
            branch=branch,
            external_id=external_id,
            idempotency_key=key,
        )
        check = f"call create_receipt(..., idempotency_key={key!r}) again: Facturapi answers with the receipt once made"
        request = Request(
            "POST", "/receipts", encoded_json=_body(body), idempotent=True, reference=key, how_to_check=check
        )
        try:
            response = yield from self._receipt_call(request)
        except ConflictError as exc:
            if exc.code != "idempotency_key_in_use":
                raise
            raise OutcomeUnknownError(
                f"Facturapi kept idempotency key {key} busy through every retry",
                provider=PROVIDER,
                how_to_check=check,
                reference=key,
                cause=exc,
            ) from None
        return read(Receipt, response.json(), response)

    @operation
    def get_receipt(self, receipt_id: str) -> Flow[Receipt]:
        """``GET /receipts/{id}`` (unknown fields kept in ``model_extra``)."""
        return (yield from self._read_receipt(receipt_id))

    @stream_of(Receipt)
    def list_receipts(
        self,
        q: str | None = None,
        *,
        customer: str | None = None,
        payment_form: str | None = None,
        invoice: str | None = None,
        date_from: dt.datetime | None = None,
        date_to: dt.datetime | None = None,
        limit: int = 50,
    ) -> Stream:
        """Every receipt matching the filters of ``GET /receipts`` (newest first), across pages: ``q`` (items'
        description or SKU), ``customer`` (24-character id), ``payment_form``, ``invoice`` (the invoice that took
        them), ``date_from`` / ``date_to`` (inclusive, timezone-aware; ``date[gte]`` / ``date[lte]``). The spec has
        no status filter: filter on ``receipt_status``. Past the 30th page a ValidationError says to narrow it."""
        problems: list[Problem] = []
        if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= 100:
            problems.append(Problem("limit", f"{limit}: Facturapi pages hold 1 to 100 results"))
        if customer is not None and (not isinstance(customer, str) or len(customer) != 24):
            problems.append(Problem("customer", f"{customer!r}: a customer id has 24 characters"))
        _check_form(problems, payment_form, required=False)
        params: dict[str, str] = {"limit": str(limit)}
        for name, value in (("q", q), ("customer", customer), ("payment_form", payment_form), ("invoice", invoice)):
            if value is not None:
                if not isinstance(value, str) or not value:
                    problems.append(Problem(name, "a non-empty string"))
                params[name] = str(value)
        for name, key, bound in (("date_from", "date[gte]", date_from), ("date_to", "date[lte]", date_to)):
            if bound is not None:
                checked = _aware(name, bound, problems)
                if checked is not None:
                    params[key] = _wire_time(checked)
        if problems:
            raise _invalid(problems)
        page = 1
        while True:
            response = yield from self._receipt_call(Request("GET", "/receipts", params={**params, "page": str(page)}))
            result = read(SearchResult, response.json(), response)
            for item in result.data:
                yield Emit(read(Receipt, item))
            if not result.data or result.total_pages is None or page >= result.total_pages:
                return
            if page >= MAX_PAGE:
                raise _invalid([Problem("date_from", f"more than {MAX_PAGE} pages: narrow the search")])
            page += 1

    @operation
    def assign_receipt_customer(self, receipt_id: str, customer: Party | CustomerInput | str) -> Flow[Receipt]:
        """``PUT /receipts/{id}``: assign (or reassign) a saved customer by id, or create one from a Party /
        CustomerInput. Repeating it with an id changes nothing twice, so that is retried like a read; with customer
        data it is sent once (Facturapi creates the customer)."""
        problems: list[Problem] = []
        body_customer = _customer_body(customer, problems)
        if customer is None:
            problems.append(Problem("customer", "required"))
        if problems:
            raise _invalid(problems)
        assert body_customer is not None
        request = Request(
            "PUT",
            "/receipts/{}",
            ids=(receipt_id,),
            encoded_json=_body(ReceiptCustomerRequest(customer=body_customer)),
            idempotent=isinstance(body_customer, str),
            reference=receipt_id,
            how_to_check=f"read receipt {receipt_id} (get_receipt): its customer says whether it took",
        )
        response = yield from self._receipt_call(request)
        return read(Receipt, response.json(), response)

    @operation
    def cancel_receipt(self, receipt_id: str) -> Flow[Receipt]:
        """``DELETE /receipts/{id}``: the receipt becomes ``canceled`` and can no longer be invoiced. Sent once; a
        lost answer or a refusal is settled by reading the receipt (``canceled`` means it took)."""
        request = Request(
            "DELETE",
            "/receipts/{}",
            ids=(receipt_id,),
            reference=receipt_id,
            how_to_check=f"read receipt {receipt_id}: status 'canceled' means it is cancelled",
        )
        try:
            response = yield from self._receipt_call(request)
        except (APIError, OutcomeUnknownError) as exc:
            if isinstance(exc, APIError) and exc.status_code in (401, 403, 404):
                raise
            try:
                current = yield from self._read_receipt(receipt_id)
            except BillkitError:
                raise exc from None
            if current.receipt_status is ReceiptStatus.CANCELED:
                return current
            raise
        return read(Receipt, response.json(), response)

    @operation
    def download_receipt_pdf(self, receipt_id: str) -> Flow[bytes]:
        """``GET /receipts/{id}/pdf``: the receipt's PDF (a receipt is not stamped: it has no XML)."""
        response = yield from self._receipt_call(
            Request("GET", "/receipts/{}/pdf", ids=(receipt_id,), headers={"accept": "*/*"})
        )
        return response.content

    @operation
    def send_receipt_by_email(self, receipt_id: str, email: str | Sequence[str] | None = None) -> Flow[bool]:
        """``POST /receipts/{id}/email`` to ``email`` (at most 10 addresses) or the customer's. Sent once: Facturapi
        has no key for it."""
        body: dict[str, Any] = {}
        if email is not None:
            addresses = [email] if isinstance(email, str) else list(email)
            problems = [Problem("email", "1 to 10 addresses")] if not 1 <= len(addresses) <= 10 else []
            problems += [
                Problem(f"email[{i}]", f"{a!r} is not an e-mail address")
                for i, a in enumerate(addresses)
                if not isinstance(a, str) or not EMAIL.match(a)
            ]
            if problems:
                raise _invalid(problems)
            body["email"] = addresses[0] if isinstance(email, str) else addresses
        response = yield from self._receipt_call(Request("POST", "/receipts/{}/email", ids=(receipt_id,), json=body))
        data = response.json_or_none()
        return bool(data.get("ok", True)) if isinstance(data, Mapping) else True

    # -- invoicing receipts to a customer ----------------------------------------------------------------------
    @operation
    def invoice_receipt(
        self,
        receipt_id: str,
        customer: Party | CustomerInput | str | None = None,
        *,
        use: str | None = None,
        conditions: str | None = None,
        folio_number: int | None = None,
        series: str | None = None,
    ) -> Flow[InvoiceDetail]:
        """``POST /receipts/{id}/invoice``: an invoice of receipt ``receipt_id`` to ``customer`` (or to the customer
        assigned to the receipt). The receipt becomes ``invoiced_to_customer``. Checks and the read-back after a
        lost answer: see the module docstring."""
        problems: list[Problem] = []
        asked = _customer_body(customer, problems)
        _check_use(problems, use)
        _check_text(problems, "conditions", conditions, 1000)
        _check_folio(problems, folio_number)
        _check_text(problems, "series", series, 25)
        if problems:
            raise _invalid(problems)
        receipt = yield from self._read_receipt(receipt_id)
        target: CustomerInput | str | None = asked if asked is not None else receipt.customer_id
        status = receipt.receipt_status
        if status is ReceiptStatus.INVOICED_TO_CUSTOMER and receipt.invoice:
            return (yield from self._taken_by(receipt_id, receipt.invoice, target))
        if status is not ReceiptStatus.OPEN:
            raise _invalid([Problem("receipt_id", f"receipt {receipt_id} is {receipt.status!r}: only an open receipt "
                                                  "can be invoiced")])  # fmt: skip
        expires = parse_datetime(receipt.expires_at)
        if expires is not None and self._receipt_now() > expires + CLOCK_SKEW:
            raise _invalid([Problem("receipt_id", f"receipt {receipt_id} expired at {receipt.expires_at}")])
        if target is None:
            raise _invalid([Problem("customer", f"receipt {receipt_id} has no customer: give one")])
        body = ReceiptInvoiceRequest(customer=asked, use=use, conditions=conditions,
                                     folio_number=folio_number, series=series)  # fmt: skip
        request = Request(
            "POST",
            "/receipts/{}/invoice",
            ids=(receipt_id,),
            encoded_json=_body(body),
            reference=receipt_id,
            how_to_check=f"call invoice_receipt({receipt_id!r}, ...) again: billkit reads the receipt and returns the "
            "invoice that took it, or invoices it once",
        )
        try:
            response = yield from self._receipt_call(request)
        except (APIError, OutcomeUnknownError) as exc:
            if isinstance(exc, APIError) and exc.code != "receipt_not_open" and not isinstance(exc, ConflictError):
                raise
            try:
                again = yield from self._read_receipt(receipt_id)
            except BillkitError:
                raise exc from None
            if again.receipt_status is ReceiptStatus.INVOICED_TO_CUSTOMER and again.invoice:
                return (yield from self._taken_by(receipt_id, again.invoice, target))
            raise
        answer = read(InvoiceDetail, response.json(), response)
        if not _same_customer(target, answer):
            raise _conflict(
                f"Facturapi invoiced receipt {receipt_id} as invoice {answer.id} to another customer than the one "
                "asked for: check it",
                "receipt_invoiced_to_another",
                answer.model_dump(),
            )
        return answer

    def _taken_by(self, receipt_id: str, invoice_id: str, target: CustomerInput | str | None) -> Flow[InvoiceDetail]:
        """The invoice that already took ``receipt_id``, when it is to ``target``; ConflictError otherwise."""
        invoice = yield from self._invoice_of(invoice_id)
        if target is not None and not _same_customer(target, invoice):
            raise _conflict(f"receipt {receipt_id} is already invoiced to another customer (invoice {invoice_id})",
                            "receipt_invoiced_to_another", invoice.model_dump())  # fmt: skip
        return invoice

    @staticmethod
    def _to_invoice_body(
        keys: Sequence[str], customer: Party | CustomerInput | str | None, use: str | None, payment_form: str | None
    ) -> tuple[list[str], CustomerInput | str | None]:
        problems: list[Problem] = []
        listed = [keys] if isinstance(keys, str) else list(keys) if isinstance(keys, Sequence) else []
        if not 1 <= len(listed) <= MAX_TO_INVOICE_KEYS:
            problems.append(Problem("keys", f"1 to {MAX_TO_INVOICE_KEYS} receipt keys"))
        problems += [Problem(f"keys[{i}]", "a receipt's key") for i, k in enumerate(listed)
                     if not isinstance(k, str) or not k.strip()]  # fmt: skip
        if len(set(listed)) != len(listed):
            problems.append(Problem("keys", "a key is listed twice"))
        body_customer = _customer_body(customer, problems)
        _check_use(problems, use)
        _check_form(problems, payment_form, required=False)
        if problems:
            raise _invalid(problems)
        return listed, body_customer

    @operation
    def invoice_receipts(
        self,
        keys: Sequence[str],
        customer: Party | CustomerInput | str | None = None,
        *,
        use: str | None = None,
        payment_form: str | None = None,
    ) -> Flow[InvoiceDetail]:
        """``POST /receipts/to-invoice``: one invoice of the receipts whose ``key`` is in ``keys`` (1 to 1,000), to
        ``customer`` (or the customer they all share). Sent once; a lost answer is an OutcomeUnknownError (see the
        module docstring)."""
        listed, body_customer = self._to_invoice_body(keys, customer, use, payment_form)
        body = ToInvoiceRequest(keys=listed, customer=body_customer, use=use, payment_form=payment_form)
        request = Request(
            "POST",
            "/receipts/to-invoice",
            encoded_json=_body(body),
            reference=",".join(listed),
            how_to_check="run preview_receipts_invoice with the same keys: receipt_not_open means the invoice was "
            "made (find it with list_receipts(...): the receipts' invoice field); an answer means it was not",
        )
        response = yield from self._receipt_call(request)
        return read(InvoiceDetail, response.json(), response)

    @operation
    def preview_receipts_invoice(
        self,
        keys: Sequence[str],
        customer: Party | CustomerInput | str | None = None,
        *,
        use: str | None = None,
        payment_form: str | None = None,
    ) -> Flow[ToInvoiceSummary]:
        """``POST /receipts/to-invoice`` with ``dry_run: true``: Facturapi checks what :meth:`invoice_receipts`
        would check and answers a summary, creating nothing (so it is retried like a read)."""
        listed, body_customer = self._to_invoice_body(keys, customer, use, payment_form)
        body = ToInvoiceRequest(keys=listed, customer=body_customer, use=use, payment_form=payment_form, dry_run=True)
        request = Request("POST", "/receipts/to-invoice", encoded_json=_body(body), idempotent=True)
        response = yield from self._receipt_call(request)
        return read(ToInvoiceSummary, response.json(), response)

    @operation
    def preview_receipts_invoice_pdf(
        self, keys: Sequence[str], customer: Party | CustomerInput | str | None = None, *, use: str | None = None
    ) -> Flow[bytes | None]:
        """``POST /receipts/to-invoice/preview``: the PDF such an invoice would have, or None when Facturapi answers
        204 (no eligible receipt among ``keys``). Creates nothing, so it is retried like a read."""
        listed, body_customer = self._to_invoice_body(keys, customer, use, None)
        body = ToInvoicePreviewRequest(keys=listed, customer=body_customer, use=use)
        request = Request("POST", "/receipts/to-invoice/preview", encoded_json=_body(body), idempotent=True,
                          headers={"accept": "*/*"})  # fmt: skip
        response = yield from self._receipt_call(request)
        return None if response.status_code == 204 else response.content

    # -- global invoices -------------------------------------------------------------------------------------------
    def _period_receipts(self, start: dt.datetime, end: dt.datetime, payment_form: str | None) -> Flow[list[Receipt]]:
        """Every receipt dated ``start`` to ``end`` (inclusive); a range of more than 30 pages is split in halves."""
        params = {"limit": "100", "date[gte]": _wire_time(start), "date[lte]": _wire_time(end),
                  **({"payment_form": payment_form} if payment_form else {})}  # fmt: skip
        found: list[Receipt] = []
        page = 1
        while True:
            response = yield from self._receipt_call(Request("GET", "/receipts", params={**params, "page": str(page)}))
            result = read(SearchResult, response.json(), response)
            if page == 1 and result.total_pages is not None and result.total_pages > MAX_PAGE:
                if end - start < dt.timedelta(seconds=2):
                    raise _invalid([Problem("period", f"more than {MAX_PAGE * 100} receipts within one second")])
                middle = start + (end - start) / 2
                middle = middle.replace(microsecond=(middle.microsecond // 1000) * 1000)
                first = yield from self._period_receipts(start, middle, payment_form)
                second = yield from self._period_receipts(middle + _MS, end, payment_form)
                return first + second
            found.extend(read(Receipt, item) for item in result.data)
            if not result.data or result.total_pages is None or page >= result.total_pages:
                return found
            page += 1

    @operation
    def create_global_invoice(
        self,
        period: GlobalPeriod,
        *,
        payment_form: str | None = None,
        receipt_ids: Sequence[str] | None = None,
        series: str | None = None,
        folio_number: int | None = None,
        date: dt.datetime | None = None,
    ) -> Flow[InvoiceDetail]:
        """``POST /receipts/global-invoice``: the global invoice (to ``PUBLICO EN GENERAL``) of the receipts of
        ``period`` still ``open`` (only those paid in ``payment_form`` when given; only ``receipt_ids`` when given,
        each of which must be a receipt of the period). Never issued twice: see the module docstring for the
        pinning of the receipts, the read-back and the check of the answer."""
        problems = check_period(period, self._receipt_now().astimezone(MEXICO_CITY).date())
        _check_form(problems, payment_form, required=False)
        _check_text(problems, "series", series, 25)
        _check_folio(problems, folio_number)
        when = _aware("date", date, problems) if date is not None else None
        wanted: list[str] | None = None
        if receipt_ids is not None:
            wanted = [receipt_ids] if isinstance(receipt_ids, str) else list(receipt_ids)
            if not wanted or len(set(wanted)) != len(wanted) or not all(isinstance(r, str) and r for r in wanted):
                problems.append(Problem("receipt_ids", "distinct receipt ids, at least one"))
        if problems:
            raise _invalid(problems)
        receipts = yield from self._period_receipts(period.start, period.end, payment_form)
        by_id = {r.id: r for r in receipts if r.id}
        if wanted is not None:
            missing = [Problem(f"receipt_ids[{i}]", f"{r}: not a receipt of the period"
                               + (f" paid in {payment_form}" if payment_form else ""))
                       for i, r in enumerate(wanted) if r not in by_id]  # fmt: skip
            if missing:
                raise _invalid(missing)
            chosen = [by_id[r] for r in wanted]
            taken = {r.invoice for r in chosen if r.receipt_status is ReceiptStatus.INVOICED_GLOBALLY}
            if (
                len(taken) == 1
                and None not in taken
                and all(r.receipt_status is ReceiptStatus.INVOICED_GLOBALLY for r in chosen)
            ):
                return (yield from self._invoice_of(str(taken.pop())))  # an earlier call issued it: send nothing
            closed = [Problem(f"receipt_ids[{i}]", f"receipt {r.id} is {r.status!r}, not open")
                      for i, r in enumerate(chosen) if r.receipt_status is not ReceiptStatus.OPEN]  # fmt: skip
            if closed:
                raise _invalid(closed)
        else:
            chosen = [r for r in receipts if r.receipt_status is ReceiptStatus.OPEN and r.id]
            if not chosen:
                done = sorted({r.invoice for r in receipts if r.invoice and
                               r.receipt_status is ReceiptStatus.INVOICED_GLOBALLY})  # fmt: skip
                note = f" (global invoices already made: {', '.join(done)})" if done else ""
                raise _invalid([Problem("period", f"no open receipt from {period.start.isoformat()} to "
                                                  f"{period.end.isoformat()}: nothing to invoice{note}")])  # fmt: skip
        currencies = {(r.currency or "MXN").upper() for r in chosen}
        totals = [r.total for r in chosen]
        if len(currencies) > 1:
            raise _invalid([Problem("period", f"the open receipts are in {', '.join(sorted(currencies))}: one "
                                              "currency per invoice (pass receipt_ids of one currency)")])  # fmt: skip
        if any(t is None for t in totals):
            raise _conflict("a receipt of the period has no readable total: billkit will not invoice a sum it "
                            "cannot check", "receipt_unreadable")  # fmt: skip
        expected = _cents(sum((cast(Decimal, t) for t in totals), Decimal(0)))
        ids = [str(r.id) for r in chosen]
        key = global_invoice_key(period, ids)
        body = GlobalInvoiceRequest(
            periodicity=period.periodicity,
            months=period.months,
            year=period.year,
            from_=_wire_time(period.start),
            to=_wire_time(period.end),
            receipts=ids,
            payment_form=payment_form,
            series=series,
            folio_number=folio_number,
            date=_wire_time(when) if when is not None else None,
        )
        check = (
            f"call create_global_invoice(period, receipt_ids=[...the {len(ids)} ids...]) again with the same "
            "receipts: billkit reads them and returns the global invoice that took them, or issues it once"
        )
        request = Request("POST", "/receipts/global-invoice", encoded_json=_body(body), reference=key,
                          how_to_check=check)  # fmt: skip
        try:
            response = yield from self._receipt_call(request)
        except (APIError, OutcomeUnknownError) as exc:
            if isinstance(exc, APIError) and exc.status_code in (401, 402, 403):
                raise
            try:
                again = yield from self._period_receipts(period.start, period.end, payment_form)
            except BillkitError:
                raise exc from None
            now = {r.id: r for r in again}
            states = [now.get(i) for i in ids]
            invoices = {r.invoice for r in states if r is not None}
            if all(r is not None and r.receipt_status is ReceiptStatus.INVOICED_GLOBALLY for r in states):
                if len(invoices) == 1 and None not in invoices:
                    answer = yield from self._invoice_of(str(invoices.pop()))
                    return self._checked_global(answer, expected, key)
            elif all(r is not None and r.receipt_status is ReceiptStatus.OPEN for r in states):
                raise  # nothing was issued: the error stands (calling again is safe)
            raise _conflict(
                f"after the failed global invoice {key} the receipts of the period are in mixed states "
                f"({sorted({str(r.status) if r else 'missing' for r in states})}): check them before trying again",
                "global_invoice_unclear",
            ) from exc
        answer = read(InvoiceDetail, response.json(), response)
        return self._checked_global(answer, expected, key)

    @staticmethod
    def _checked_global(answer: InvoiceDetail, expected: Decimal, key: str) -> InvoiceDetail:
        if answer.total is None or _cents(answer.total) != expected:
            raise _conflict(
                f"Facturapi answered global invoice {key} with invoice {answer.id} totalling {answer.total}, not "
                f"the {expected} of the receipts billkit pinned: check it before anything else",
                "global_invoice_mismatch",
                answer.model_dump(),
            )
        return answer

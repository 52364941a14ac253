"""BILL's bill updates and bulk vendor creation on the native client (``client.native``).

What BILL's notes give (H): ``PUT /v3/bills/{id}`` (replace) and ``PATCH /v3/bills/{id}`` (update) answer 200 and
the bill; ``POST /v3/vendors/bulk`` exists; nothing in BILL's API has an idempotency key but webhook
subscriptions. Their bodies, which bill states accept an update, and whether the vendors' bulk is all-or-nothing
or has a size limit are **not** documented (L). billkit's choices, each the safe one:

* **Replace** (:meth:`BillcomUpdates.replace_bill`, ``PUT``): the create's body, from a common
  :class:`~billkit.Bill` (mapped and checked exactly as a create) or BILL's own fields; an optional field left out
  is cleared. **Update** (:meth:`BillcomUpdates.update_bill`, ``PATCH``): only what is given; from a common Bill,
  only the fields the caller set (``Bill(due_date=...)`` changes the due date and nothing else); ``line_items``
  replace the bill's whole list of lines. A PATCH cannot clear a field (nulls are not sent), nor move the bill to
  another vendor.
* **Checked before the write** (one :class:`~billkit.errors.ValidationError` listing every problem, naming field
  and limit): the bill id (begins ``00n``), real ``yyyy-MM-dd`` dates, an invoice number that is not blank, texts
  of at most 4000 characters, at least one line, each line's ``amount`` or ``quantity`` and ``price``, at most
  two decimals, ``amount = quantity x price`` when all three are given (BILL would quietly keep ``amount``), a
  positive total, ``total`` equal to the lines, no float anywhere, no field BILL does not know. The lines must be
  in the vendor's ``billCurrency`` (a bill has no currency of its own): read once per vendor (cached), so a PATCH
  that changes lines reads the bill first to learn its vendor. Which states accept an update is left to BILL:
  billkit does not refuse what BILL might accept (the sandbox refuses a bill that is paid, partly paid, scheduled,
  archived, or whose approval is under way or given: 422).
* **Retries, fail closed.** Neither call is retried once it may have reached BILL. A PATCH is not idempotent in
  general, and a PUT is not a replacement of the same representation (its lines get new ids, an approval may be
  reset, and repeating it later could overwrite a change someone made in between), and BILL's notes do not call
  either idempotent. A request refused before it arrived (connect error, ``BDC_1322``, ``BDC_1109`` then a new
  login) is sent again as any write is. A lost answer (dropped connection, read timeout, 5xx) is settled by one
  read of the bill: when it holds every field sent (for a PUT, also none of the optional fields left out), that
  read is returned; otherwise :class:`~billkit.errors.OutcomeUnknownError` says how to check (read the bill and
  compare it with the change).
* **Bulk vendors** (:meth:`BillcomUpdates.create_vendors`, ``POST /v3/vendors/bulk``): a JSON array of vendor
  creates, each checked as :meth:`create_vendor` checks one, at most :data:`MAX_VENDOR_BULK` (100, BILL's bills'
  bulk limit: no larger one is documented), names unique within the call (answers and reads are matched by name).
  Never sent twice after it may have reached BILL. A lost answer is settled for each vendor by the single-vendor
  safe read (exactly one vendor so named, created since the attempt less five minutes, holding every field sent);
  when any cannot be proven, :class:`VendorBulkOutcomeUnknown` names their indexes (and carries those found). A
  refusal is all-or-nothing only when BILL says so: with a ``BDC_1246`` rollback entry, or for a single vendor,
  :class:`~billkit.providers.billcom.mapping.BillcomBulkRejected` is raised (nothing created); a refusal of several
  without a rollback entry is checked with the same read (any vendor found is returned created, the others
  failed). One :class:`VendorResult` per input, in input order.
* **Approvals**: neither the seed nor the notes document the approve / deny call or its body, so billkit has none;
  approvers act in BILL (the sandbox's ``box.approve`` / ``box.deny``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import TYPE_CHECKING, Any

import pydantic

from billkit.errors import (
    APIError,
    BillkitError,
    MoneyError,
    OutcomeUnknownError,
    Problem,
    UnsupportedFeatureError,
    ValidationError,
)
from billkit.flows import Flow, M, Native, operation
from billkit.models import Bill, Direction, LineItem, Party, check_supported
from billkit.money import Money
from billkit.providers.billcom.mapping import (
    MAX_TEXT,
    PROVIDER,
    SUPPORTED_FIELDS,
    BillcomBulkRejected,
    BillcomError,
    build_bill,
    error_from_entries,
    vendor_create,
)
from billkit.providers.billcom.wire import BillCreate, BillResponse, ErrorEntry, VendorCreate, VendorResponse
from billkit.providers.billcom.wire_updates import BillPatch
from billkit.transport import json_problems, read_model

if TYPE_CHECKING:
    from billkit.providers.billcom.client import BillcomAdapter

__all__ = [
    "MAX_VENDOR_BULK",
    "BillcomUpdates",
    "VendorBulkOutcomeUnknown",
    "VendorResult",
    "bill_patch",
    "bill_replacement",
    "holds",
]

#: at most this many vendors per ``POST /v3/vendors/bulk`` (BILL documents no limit for it: its bills' bulk one)
MAX_VENDOR_BULK = 100
#: the optional fields of a bill a PUT clears when it leaves them out
_CLEARED_BY_PUT = ("description", "payFromChartOfAccountId", "classifications", "purchaseOrderNumber")
_CENT = Decimal("0.01")
#: a PATCH's wire field -> the common Bill field it came from (for problems in the caller's words)
_COMMON_NAMES = {"invoice.invoiceNumber": "reference", "invoice.invoiceDate": "issue_date", "dueDate": "due_date",
                 "description": "description", "billLineItems": "line_items"}  # fmt: skip
#: the common Bill fields a PATCH maps (the rest of SUPPORTED_FIELDS is refused or checked below)
_PATCH_FIELDS = frozenset({"reference", "description", "issue_date", "due_date", "line_items", "total",
                           "provider_options", "direction", "counterparty"})  # fmt: skip


@dataclass(frozen=True)
class VendorResult:
    """The outcome of one vendor of :meth:`BillcomUpdates.create_vendors`, at ``index`` in the input order: the
    vendor created, or the error that explains why it was not."""

    index: int
    vendor: VendorResponse | None = None
    error: BillkitError | None = None

    @property
    def ok(self) -> bool:
        return self.vendor is not None


class VendorBulkOutcomeUnknown(OutcomeUnknownError):
    """A bulk vendor create that may have reached BILL, some of whose vendors a read could not prove created.

    ``indexes`` are those inputs (never sent again by billkit); ``found`` maps the other inputs' indexes to the
    vendors the read found.
    """

    def __init__(self, message: str, *, provider: str, how_to_check: str, indexes: Sequence[int] = (),
                 found: Mapping[int, VendorResponse] | None = None, reference: str | None = None,
                 cause: BaseException | None = None) -> None:  # fmt: skip
        super().__init__(message, provider=provider, how_to_check=how_to_check, reference=reference, cause=cause)
        self.indexes = tuple(indexes)
        self.found = dict(found or {})


# -- what is sent ------------------------------------------------------------------------------------------------


def _bill_id_problems(bill_id: object) -> list[Problem]:
    if not isinstance(bill_id, str) or not bill_id.startswith("00n") or len(bill_id) < 4:
        return [Problem("bill_id", f"{bill_id!r} is not a BILL bill id (begins with 00n)")]
    return []


def _two_decimals(value: Decimal) -> bool:
    return value == value.quantize(_CENT)


def _wire_line_problems(lines: Sequence[Mapping[str, Any]], where: str) -> list[Problem]:
    """BILL's line rules on lines in BILL's names: an amount (or quantity and price), at most two decimals, ``amount =
    quantity x price`` when all three are given, and a positive total."""
    problems: list[Problem] = []
    total = Decimal(0)
    for i, line in enumerate(lines):
        path = f"{where}[{i}]"
        amount, quantity, price = line.get("amount"), line.get("quantity"), line.get("price")
        for key, value in (("amount", amount), ("quantity", quantity), ("price", price)):
            if value is not None and not _two_decimals(value):
                problems.append(Problem(f"{path}.{key}", f"{value} has more than two decimals (BILL's limit)"))
        if quantity is not None and quantity <= 0:
            problems.append(Problem(f"{path}.quantity", "must be positive"))
        if amount is None and (quantity is None or price is None):
            problems.append(Problem(f"{path}.amount", "a line needs amount, or quantity and price"))
            continue
        computed = quantity * price if quantity is not None and price is not None else None
        if amount is not None and computed is not None and amount != computed:
            problems.append(Problem(f"{path}.amount", f"{amount} is not quantity x price = {computed} (BILL would "
                                    "keep amount and ignore the other two)"))  # fmt: skip
        total += amount if amount is not None else computed if computed is not None else Decimal(0)
        if amount is None and computed is not None and not _two_decimals(computed):
            problems.append(Problem(f"{path}.quantity", f"quantity x price = {computed} has more than two decimals"))
    if lines and total <= 0:
        problems.append(Problem(where, f"the bill's total {total} must be positive"))
    return problems


def _common_lines(items: Sequence[LineItem], problems: list[Problem]) -> tuple[list[dict[str, Any]], str | None]:
    """Common line items as BILL's lines (as a create maps them) and the one currency they are in."""
    currencies = {item.unit_price.currency for item in items}
    if len(currencies) > 1:
        problems.append(Problem("line_items", f"all lines must share one currency, got {sorted(currencies)}"))
    lines: list[dict[str, Any]] = []
    for i, item in enumerate(items):
        where = f"line_items[{i}]"
        price = item.unit_price.amount
        amount = item.quantity * price
        if not _two_decimals(price):
            problems.append(Problem(f"{where}.unit_price", f"{price} has more than two decimals (BILL's limit)"))
        elif not _two_decimals(amount):
            problems.append(Problem(f"{where}.quantity", f"quantity x price = {amount} has more than two decimals"))
        if item.quantity <= 0:
            problems.append(Problem(f"{where}.quantity", "must be positive"))
        if len(item.description) > MAX_TEXT:
            problems.append(Problem(f"{where}.description", f"at most {MAX_TEXT} characters"))
        line: dict[str, Any] = {"amount": price} if item.quantity == 1 else {
            "quantity": item.quantity, "price": price,
            "amount": amount.quantize(_CENT) if _two_decimals(amount) else amount}  # fmt: skip
        if item.description:
            line["description"] = item.description
        line.update(item.provider_options)
        lines.append(line)
    return lines, next(iter(currencies)) if len(currencies) == 1 else None


def _pydantic_problems(exc: pydantic.ValidationError, prefix: str = "") -> list[Problem]:
    out = []
    for err in exc.errors(include_url=False):
        path = prefix + (".".join(str(p) for p in err["loc"]) or "body")
        if err["type"] == "extra_forbidden":
            message = "unknown field (BILL's wire models are strict on write)"
        else:
            inner = (err.get("ctx") or {}).get("error")
            message = str(inner) if isinstance(inner, BaseException) else str(err["msg"])
        out.append(Problem(path, message))
    return out


def _invoice_number_problems(number: object, where: str) -> list[Problem]:
    if isinstance(number, str) and not number.strip():
        return [Problem(where, "the invoice number must not be blank")]
    return []


def bill_replacement(bill_id: str, bill: Bill | BillCreate | Mapping[str, Any]) -> tuple[BillCreate, str | None]:
    """The ``PUT /v3/bills/{id}`` body and the currency its lines are in (None for BILL's own fields: the vendor's).

    A common :class:`Bill` is mapped and checked as a create (:func:`~billkit.providers.billcom.mapping.build_bill`);
    its ``provider_id``, when set, must be ``bill_id``. BILL's own fields (a mapping or a :class:`BillCreate`) are
    checked by the strict wire model and BILL's line rules. Raises one :class:`ValidationError` listing every
    problem (or :class:`UnsupportedFeatureError` for a common field BILL cannot express).
    """
    problems = _bill_id_problems(bill_id)
    currency: str | None = None
    request: BillCreate | None = None
    if isinstance(bill, Bill):
        if bill.provider_id and bill.provider_id != bill_id:
            problems.append(Problem("provider_id", f"this is bill {bill.provider_id}, not {bill_id}"))
        try:
            request, currency = build_bill(bill)
        except ValidationError as exc:
            problems.extend(exc.problems)
        if request is not None:
            problems.extend(_invoice_number_problems(request.invoice.invoice_number, "reference"))
    else:
        raw = bill.to_json() if isinstance(bill, BillCreate) else dict(bill)
        unsendable = json_problems(raw)
        problems.extend(Problem(where or "body", why) for where, why in unsendable)
        if not unsendable:
            try:
                request = BillCreate.model_validate(raw)
            except pydantic.ValidationError as exc:
                problems.extend(_pydantic_problems(exc))
        if request is not None:
            body = request.to_json()
            problems.extend(_wire_line_problems(body["billLineItems"], "billLineItems"))
            problems.extend(_invoice_number_problems(request.invoice.invoice_number, "invoice.invoiceNumber"))
    if problems or request is None:
        raise ValidationError(problems or [Problem("bill", "nothing to send")], provider=PROVIDER)
    return request, currency


def bill_patch(bill_id: str, changes: Bill | BillPatch | Mapping[str, Any]) -> tuple[BillPatch, str | None]:
    """The ``PATCH /v3/bills/{id}`` body and the currency of its lines (None when it has none, or for BILL's own
    fields: the vendor's).

    From a common :class:`Bill`, only the fields the caller set: ``reference`` -> ``invoice.invoiceNumber``,
    ``issue_date`` -> ``invoice.invoiceDate``, ``due_date``, ``description``, ``line_items`` (mapped as on create;
    the whole new list), ``total`` (not sent: checked against ``line_items``, which it needs), ``provider_options``
    merged last. ``direction`` must be payable; ``counterparty`` is refused (a PATCH does not move a bill to another
    vendor), as is a field set to None (a PATCH cannot clear it: use :meth:`BillcomUpdates.replace_bill`). Raises
    one :class:`ValidationError` listing every problem, naming field and limit.
    """
    problems = _bill_id_problems(bill_id)
    currency: str | None = None
    option_keys: set[str] = set()
    if isinstance(changes, Bill):
        check_supported(changes, PROVIDER, SUPPORTED_FIELDS)
        chosen = changes.model_fields_set & _PATCH_FIELDS
        body: dict[str, Any] = {}
        if "direction" in chosen and changes.direction is not Direction.PAYABLE:
            raise UnsupportedFeatureError(PROVIDER, f"direction={changes.direction.value}",
                                          "BILL's bills are payables; set direction='payable'")  # fmt: skip
        if "counterparty" in chosen and changes.counterparty is not None:
            problems.append(Problem("counterparty", "a PATCH does not change the bill's vendor (its amounts are in "
                                    "the vendor's currency): create a bill for the other vendor"))  # fmt: skip
        for name in ("reference", "description", "issue_date", "due_date", "total"):
            if name in chosen and getattr(changes, name) is None:
                problems.append(Problem(name, "a PATCH cannot clear a field: use replace_bill (PUT)"))
        invoice: dict[str, Any] = {}
        if changes.reference is not None and "reference" in chosen:
            invoice["invoiceNumber"] = changes.reference
            problems.extend(_invoice_number_problems(changes.reference, "reference"))
        if changes.issue_date is not None and "issue_date" in chosen:
            invoice["invoiceDate"] = changes.issue_date.isoformat()
        if invoice:
            body["invoice"] = invoice
        if changes.due_date is not None and "due_date" in chosen:
            body["dueDate"] = changes.due_date.isoformat()
        if changes.description is not None and "description" in chosen:
            if len(changes.description) > MAX_TEXT:
                problems.append(Problem("description", f"at most {MAX_TEXT} characters "
                                        f"({len(changes.description)} given)"))  # fmt: skip
            body["description"] = changes.description
        if "line_items" in chosen:
            if not changes.line_items:
                problems.append(Problem("line_items", "at least one line item is required"))
            else:
                body["billLineItems"], currency = _common_lines(changes.line_items, problems)
                total = changes.line_total()
                if total <= 0:
                    problems.append(Problem("line_items", f"the bill's total {total} must be positive"))
        if changes.total is not None and "total" in chosen:
            if "billLineItems" not in body:
                problems.append(Problem("total", "BILL adds up the lines: give line_items with the total"))
            elif currency is not None and changes.total.currency != currency:
                problems.append(Problem("total", f"total is in {changes.total.currency}, the lines in {currency}"))
            elif changes.total.amount != changes.line_total():
                problems.append(Problem("total", f"total {changes.total.amount} differs from the lines' sum "
                                        f"{changes.line_total()}"))  # fmt: skip
        option_keys = set(changes.provider_options)
        body.update(changes.provider_options)
    elif isinstance(changes, BillPatch):
        body = changes.to_json()
    else:
        body = dict(changes)
    unsendable = json_problems(body)
    problems.extend(Problem(("provider_options: " if option_keys else "") + (where or "body"), why)
                    for where, why in unsendable)  # fmt: skip
    if not body and not any(p.field != "bill_id" for p in problems):
        problems.append(Problem("changes", "nothing to update"))
    request: BillPatch | None = None
    if not unsendable:
        try:
            request = BillPatch.model_validate(body)
        except pydantic.ValidationError as exc:
            reported = {p.field for p in problems}
            for problem in _pydantic_problems(exc):
                head = problem.field.split(".", 1)[0]
                if head in option_keys:
                    problems.append(Problem("provider_options." + problem.field, problem.message))
                    continue
                common = (
                    _COMMON_NAMES.get(problem.field, _COMMON_NAMES.get(head)) if isinstance(changes, Bill) else None
                )
                if common is None:
                    problems.append(problem)
                elif common not in reported:
                    problems.append(Problem(common, problem.message))
    if request is not None and not isinstance(changes, Bill):
        sent = request.to_json()
        problems.extend(_wire_line_problems(sent.get("billLineItems", []), "billLineItems"))
        problems.extend(_invoice_number_problems(sent.get("invoice", {}).get("invoiceNumber"), "invoice.invoiceNumber"))
    if problems or request is None:
        raise ValidationError(problems or [Problem("changes", "nothing to update")], provider=PROVIDER)
    return request, currency


def money_problems(lines: Sequence[Mapping[str, Any]], lines_currency: str | None, vendor_id: str,
                   vendor_currency: str, where: str) -> list[Problem]:  # fmt: skip
    """The lines against the vendor's ``billCurrency``: Money lines in it, and every amount exact in it (a JPY vendor's
    bill takes no cents)."""
    if lines_currency is not None and lines_currency != vendor_currency:
        return [Problem(where, f"vendor {vendor_id} is billed in {vendor_currency} (its billCurrency); the lines are "
                        f"in {lines_currency}")]  # fmt: skip
    problems: list[Problem] = []
    for i, line in enumerate(lines):
        for key in ("amount", "price"):
            value = line.get(key)
            if value is None:
                continue
            try:
                Money(value, vendor_currency)
            except MoneyError as exc:
                problems.append(Problem(f"{where}[{i}].{key}", f"not an exact {vendor_currency} amount (the "
                                        f"vendor's billCurrency): {exc.message}"))  # fmt: skip
    return problems


# -- what is read back -------------------------------------------------------------------------------------------


def holds(read: Any, sent: Any) -> bool:
    """Whether ``read`` (a bill as BILL answered it) holds everything in ``sent``: every key sent with an equal value
    (numbers compared as Decimals, so ``149`` equals ``149.00``), lists element by element and of the same length."""
    if isinstance(sent, Mapping):
        return isinstance(read, Mapping) and all(key in read and holds(read[key], value) for key, value in sent.items())
    if isinstance(sent, list):
        return (
            isinstance(read, list)
            and len(read) == len(sent)
            and all(holds(r, s) for r, s in zip(read, sent, strict=True))
        )
    if isinstance(sent, (Decimal, int)) and not isinstance(sent, bool):
        if isinstance(read, bool) or not isinstance(read, (Decimal, int, str)):
            return False
        try:
            return Decimal(str(read)) == Decimal(sent)
        except ArithmeticError:
            return False
    return bool(read == sent)


def replaced(read: Mapping[str, Any], sent: Mapping[str, Any]) -> bool:
    """Whether a PUT of ``sent`` is what ``read`` shows: it holds every field sent, and none of the optional fields the
    PUT left out (a replacement clears them)."""
    return holds(read, sent) and all(read.get(key) in (None, {}, "") for key in _CLEARED_BY_PUT if key not in sent)


def _update_check(bill_id: str, verb: str) -> str:
    return (f"read the bill (client.native.get_bill({bill_id!r}) or GET /v3/bills/{bill_id}) and compare it with the "
            f"{verb} before sending it again: BILL has no idempotency key")  # fmt: skip


def _vendors_check(names: Sequence[str]) -> str:
    listed = ", ".join(repr(n) for n in names[:5]) + (f" and {len(names) - 5} more" if len(names) > 5 else "")
    return (
        "BILL has no idempotency key for vendors: for each vendor of the bulk, list the vendors created since the "
        f"attempt (client.native.find_vendors_by_name(name, created_since=...), or GET /v3/vendors) and look for it "
        f"({listed}) before creating it again."
    )


def _attribute(entries: Sequence[ErrorEntry], names: Sequence[str], status: int) -> dict[int, BillkitError]:
    """Per-vendor errors of a refused bulk, only where an entry names exactly one vendor with a ``"<name> : message"``
    prefix (BILL does not promise how it names an item; ``BDC_1246`` rollbacks are never attributed)."""
    index = {name: i for i, name in enumerate(names)}
    out: dict[int, BillkitError] = {}
    for entry in entries:
        head, sep, _ = (entry.message or "").partition(" : ")
        if entry.code != "BDC_1246" and sep and head.strip() in index and index[head.strip()] not in out:
            out[index[head.strip()]] = error_from_entries([entry], status_code=status, raw=[entry.model_dump()])
    return out


# -- the native calls --------------------------------------------------------------------------------------------


class BillcomUpdates(Native[M]):
    """Bill updates and bulk vendor creation, mixed into :class:`~billkit.providers.billcom.client.BillcomNative`."""

    _adapter: BillcomAdapter

    if TYPE_CHECKING:  # BillcomNative's own, used here

        def _vendors_named(self, name: str, since: float | None) -> Flow[list[VendorResponse]]: ...
        def _remember(self, vendor: VendorResponse) -> VendorResponse: ...

    def _send_update(self, method: str, bill_id: str, sent: dict[str, Any]) -> Flow[BillResponse]:
        verb = "replacement" if method == "PUT" else "change"
        adapter = self._adapter
        try:
            response = yield from adapter.call(method, "/v3/bills/{}", ids=(bill_id,), json=sent, reference=bill_id,
                                               check=_update_check(bill_id, verb))  # fmt: skip
        except OutcomeUnknownError as lost:
            try:
                data = (yield from adapter.call("GET", "/v3/bills/{}", ids=(bill_id,))).json()
            except BillkitError:
                raise lost from None
            done = replaced(data, sent) if method == "PUT" and isinstance(data, Mapping) else holds(data, sent)
            if not done:
                raise
            return read_model(BillResponse, data, provider=PROVIDER)
        return response.parse(BillResponse)

    def _check_money(self, vendor_id: str, lines: Sequence[Mapping[str, Any]], lines_currency: str | None,
                     where: str) -> Flow[None]:  # fmt: skip
        currency = yield from self._adapter.vendor_currency(vendor_id)
        if currency is None:
            return  # an unknown vendor: BILL answers BDC_1205
        problems = money_problems(lines, lines_currency, vendor_id, currency, where)
        if problems:
            raise ValidationError(problems, provider=PROVIDER)

    @operation
    def replace_bill(self, bill_id: str, bill: Bill | BillCreate | Mapping[str, Any]) -> Flow[BillResponse]:
        """``PUT /v3/bills/{id}``: the whole bill replaced, from a common :class:`~billkit.Bill` (as a create maps it)
        or BILL's own create fields; an optional field left out is cleared.

        Checked first (:func:`bill_replacement`; then the lines against the vendor's ``billCurrency``, read once per
        vendor). Which bill states BILL accepts is BILL's to say (the sandbox refuses paid, scheduled, archived and
        approved bills with 422). **Not retried** once it may have reached BILL: a PUT here is not a replacement of
        the same representation (new line ids, approvals) and the notes do not call it idempotent; a lost answer is
        settled by one read (the bill holds every field sent and none of those left out: that read is returned),
        else :class:`~billkit.errors.OutcomeUnknownError` says how to check.
        """
        request, currency = bill_replacement(bill_id, bill)
        sent = request.to_json()
        where = "line_items" if isinstance(bill, Bill) else "billLineItems"
        yield from self._check_money(request.vendor_id, sent["billLineItems"], currency, where)
        return (yield from self._send_update("PUT", bill_id, sent))

    @operation
    def update_bill(self, bill_id: str, changes: Bill | BillPatch | Mapping[str, Any]) -> Flow[BillResponse]:
        """``PATCH /v3/bills/{id}`` with only the fields given: for a common :class:`~billkit.Bill`, only those the
        caller set (``Bill(due_date=...)``); a :class:`~billkit.providers.billcom.wire_updates.BillPatch`; or a
        mapping in BILL's names. ``line_items`` / ``billLineItems`` replace the bill's whole list of lines.

        Checked first (:func:`bill_patch`); a change of lines reads the bill (its vendor) and checks them against the
        vendor's ``billCurrency``. **Not retried** once it may have reached BILL; a lost answer is settled by one
        read: the bill is returned when it holds every field sent, else :class:`~billkit.errors.OutcomeUnknownError`
        says how to check (read it and compare).
        """
        request, currency = bill_patch(bill_id, changes)
        sent = request.to_json()
        lines = sent.get("billLineItems")
        if lines:
            current = (yield from self._adapter.call("GET", "/v3/bills/{}", ids=(bill_id,))).parse(BillResponse)
            if current.vendor_id:
                where = "line_items" if isinstance(changes, Bill) else "billLineItems"
                yield from self._check_money(current.vendor_id, lines, currency, where)
        return (yield from self._send_update("PATCH", bill_id, sent))

    @operation
    def create_vendors(self, vendors: Sequence[VendorCreate | Mapping[str, Any] | Party]) -> Flow[list[VendorResult]]:
        """``POST /v3/vendors/bulk``: up to :data:`MAX_VENDOR_BULK` vendors in one request, each from a common
        :class:`~billkit.Party`, a mapping in BILL's names or a :class:`VendorCreate` (checked as ``create_vendor``
        checks one; names unique within the call); one :class:`VendorResult` per input, in input order.

        **Fail closed**: sent once. A lost answer (or a 5xx) is settled for each vendor by the safe read
        ``create_vendor`` uses (exactly one vendor so named, created since the attempt, holding every field sent);
        any vendor that cannot be proven raises :class:`VendorBulkOutcomeUnknown` with their indexes (``found`` has
        the others). A refusal with a ``BDC_1246`` rollback entry (or of a single vendor) raises
        :class:`~billkit.providers.billcom.mapping.BillcomBulkRejected`: nothing was created. A refusal of several
        without one is checked with the same read, since BILL does not document that this bulk is all-or-nothing.
        """
        requests = _prepare_vendors(vendors)
        adapter = self._adapter
        since = adapter.ctx.clock.wall() - _reconcile_skew()
        names = [r.name for r in requests]
        check = _vendors_check(names)
        reference = names[0] if len(names) == 1 else f"{names[0]} .. {names[-1]} ({len(names)} vendors)"
        bodies = [r.to_json() for r in requests]
        try:
            response = yield from adapter.call("POST", "/v3/vendors/bulk", json=bodies, reference=reference,
                                               check=check)  # fmt: skip
        except OutcomeUnknownError as lost:
            found = yield from self._find_vendors(requests, since, range(len(requests)))
            return self._settled(requests, found, lost, check)
        except APIError as err:
            if not _refused(err):
                raise
            entries = tuple(err.entries) if isinstance(err, BillcomError) else ()
            rej = BillcomBulkRejected(
                f"BILL refused the bulk of {len(requests)} vendors: {err.message}",
                item_errors=_attribute(entries, names, err.status_code or 400), provider=PROVIDER,
                status_code=err.status_code, code=err.code, raw=err.raw,
            )  # fmt: skip
            rej.entries = entries
            if len(requests) == 1 or any(e.code == "BDC_1246" for e in entries):
                raise rej from None
            try:
                found = yield from self._find_vendors(requests, since, range(len(requests)), strict=True)
            except BillkitError as read_failed:
                unknown = VendorBulkOutcomeUnknown(
                    f"BILL refused the bulk of {len(requests)} vendors without saying it rolled back, and the vendors "
                    f"could not be read to check ({read_failed})", provider=PROVIDER, how_to_check=check,
                    indexes=range(len(requests)), reference=reference, cause=err,
                )  # fmt: skip
                raise unknown from None
            if not found:
                raise rej from None
            return [VendorResult(i, vendor=self._remember(found[i])) if i in found else
                    VendorResult(i, error=rej.item_errors.get(i, rej)) for i in range(len(requests))]  # fmt: skip
        data = response.json()
        answers = [read_model(VendorResponse, a, provider=PROVIDER) for a in (data if isinstance(data, list) else [])]
        matched: dict[int, VendorResponse] = {}
        for i, (request, sent) in enumerate(zip(requests, bodies, strict=True)):
            hits = [a for a in answers if a.name == request.name and _holds_vendor(a, sent)]
            if len(hits) == 1:
                matched[i] = hits[0]
        missing = [i for i in range(len(requests)) if i not in matched]
        if missing:  # an answer without them: they may exist anyway, so they are looked for, never sent again
            matched.update((yield from self._find_vendors(requests, since, missing)))
            partial = OutcomeUnknownError(f"BILL's bulk answer has no vendor for inputs {missing}",
                                          provider=PROVIDER, how_to_check=check, reference=reference)  # fmt: skip
            return self._settled(requests, matched, partial, check)
        return [VendorResult(i, vendor=self._remember(matched[i])) for i in range(len(requests))]

    def _settled(self, requests: Sequence[VendorCreate], found: Mapping[int, VendorResponse],
                 lost: OutcomeUnknownError, check: str) -> list[VendorResult]:  # fmt: skip
        unproven = [i for i in range(len(requests)) if i not in found]
        if unproven:
            why = f" ({lost.cause})" if lost.cause is not None else ""
            raise VendorBulkOutcomeUnknown(
                f"POST /v3/vendors/bulk may have reached BILL{why}; vendors {unproven} "
                f"({', '.join(repr(requests[i].name) for i in unproven)}) could not be proven created",
                provider=PROVIDER, how_to_check=check, indexes=unproven, found=found, reference=lost.reference,
                cause=lost.cause or lost,
            )  # fmt: skip
        return [VendorResult(i, vendor=self._remember(found[i])) for i in range(len(requests))]

    def _find_vendors(self, requests: Sequence[VendorCreate], since: float, indexes: Sequence[int], *,
                      strict: bool = False) -> Flow[dict[int, VendorResponse]]:  # fmt: skip
        """The single-vendor safe read for each of ``indexes``: the one vendor named so, created since ``since``,
        holding every field sent. A listing that fails proves nothing (``strict`` raises it instead)."""
        found: dict[int, VendorResponse] = {}
        try:
            listed: dict[str, list[VendorResponse]] = {}
            for i in indexes:
                name = requests[i].name
                if name not in listed:
                    listed[name] = yield from self._vendors_named(name, since)
                sent = requests[i].to_json()
                hits = [v for v in listed[name] if _holds_vendor(v, sent)]
                if len(hits) == 1:
                    found[i] = hits[0]
        except BillkitError:
            if strict:
                raise
            return {}
        return found


def _prepare_vendors(vendors: Sequence[VendorCreate | Mapping[str, Any] | Party]) -> list[VendorCreate]:
    problems: list[Problem] = []
    if isinstance(vendors, (str, bytes, Mapping, Party, VendorCreate)):
        raise ValidationError([Problem("vendors", "a sequence of vendors is expected")], provider=PROVIDER)
    if not vendors:
        problems.append(Problem("vendors", "at least one vendor is required"))
    if len(vendors) > MAX_VENDOR_BULK:
        problems.append(Problem("vendors", f"at most {MAX_VENDOR_BULK} vendors per bulk request ({len(vendors)} "
                                "given): split them"))  # fmt: skip
    out: list[VendorCreate] = []
    seen: dict[str, int] = {}
    for i, vendor in enumerate(vendors):
        try:
            request = vendor_create(vendor)
        except UnsupportedFeatureError as exc:
            raise UnsupportedFeatureError(PROVIDER, f"vendors[{i}].{exc.feature}",
                                          exc.message.partition(": ")[2]) from None  # fmt: skip
        except ValidationError as exc:
            problems.extend(Problem(f"vendors[{i}].{p.field}", p.message) for p in exc.problems)
            continue
        if request.name in seen:
            problems.append(Problem(f"vendors[{i}].name", f"{request.name!r} repeats vendors[{seen[request.name]}]: "
                                    "a bulk's vendors are matched by name"))  # fmt: skip
        seen.setdefault(request.name, i)
        out.append(request)
    if problems:
        raise ValidationError(problems, provider=PROVIDER)
    return out


def _reconcile_skew() -> float:
    from billkit.providers.billcom.client import RECONCILE_SKEW

    return RECONCILE_SKEW


def _holds_vendor(vendor: VendorResponse, sent: Mapping[str, Any]) -> bool:
    from billkit.providers.billcom.client import _vendor_holds

    return _vendor_holds(vendor, sent)


def _refused(err: APIError) -> bool:
    from billkit.providers.billcom.client import _is_rejection

    return _is_rejection(err)

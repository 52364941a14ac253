"""Facturapi's invoice lifecycle on the native client: payment complements, credit notes, drafts, customers and
products, status refresh and the cancellation receipt.

**Payment complements** (CFDI type ``P``). An income invoice issued ``PPD`` ("pago en parcialidades o diferido")
is paid with one complement per payment received. :meth:`FacturapiLifecycle.record_payment` reads the invoice and
every complement Facturapi lists in its ``received_payment_ids`` (safe reads), rebuilds the running balance from
what those complements paid (``related_documents[].amount``, ``installment``, ``last_balance``; cancelled and
failed ones do not count) and refuses locally, before anything is sent: an invoice that is not a stamped ``PPD``
income invoice, an amount that is not positive or is above the balance, a currency other than the invoice's, an
``installment`` other than the next one, ``payment_form`` ``99`` (the SAT refuses "to be defined" on a payment),
a payment date in the future. **Fail closed:** the balance is cross-checked against ``amount_due`` when Facturapi
sends it, and installments that are not 1..n, a chain of ``last_balance`` that does not add up, or a complement
that billkit cannot read raise :class:`ConflictError` instead of guessing.

The create carries an ``idempotency_key``, so the transport retries it like a read. Unless the caller gives one
(their payment's own id: the best choice), the key is derived from the payment's business identity: the invoice
UUID, the installment number and the complements already listed. So a retry, or a second call racing the first
for the same installment, is answered with the same complement; billkit then checks that the answer records *this*
payment (installment and amount) and raises :class:`ConflictError` if it records another. A caller's key already
held by one of the invoice's complements returns that complement without sending anything. When the create fails
or its outcome is unknown, the invoice's complements are read again and the one holding the key is returned if it
exists; otherwise the error stands (:class:`OutcomeUnknownError` says to call again with the same key).

**Credit notes** (type ``E``) relate the original's UUID (relation ``01`` by default; ``03`` return of goods,
``07`` application of an advance). Refused locally: an original that is not a stamped income invoice, another
currency, and a credit above what is left to credit (the original's total less every live type ``E`` document
that relates it, found with ``GET /invoices?type=E&q=<customer RFC>``). The total is computed as the CFDI does
(each tax rounded to cents). Creates carry an idempotency key (a fresh one per call unless given), and a failed
create is looked up by key the same way.

**Drafts** are created with ``status: "draft"`` (any fields may be missing; ``idempotency_key`` is honoured, as the
draft schemas list it), edited with ``PUT /invoices/{id}`` (a partial update: field names are checked against the
spec's edit schemas), stamped with ``POST /invoices/{id}/stamp`` and copied with ``POST /invoices/{id}/copy``. A
stamp is not repeated once it may have arrived; a lost answer or a 409 is settled by reading the draft (stamped or
pending means it took). A copy has no key: it is never repeated after it may have arrived.

**Customers and products** are plain CRUD. Updates (``PUT``) and creates without a key are not repeated once they
may have arrived; a delete whose answer was lost is settled by a read (404 means it is gone).
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal
from typing import TYPE_CHECKING, Any, Literal, TypeVar

from billkit.errors import (
    APIError,
    BillkitError,
    ConflictError,
    NotFoundError,
    OutcomeUnknownError,
    Problem,
    ValidationError,
)
from billkit.flows import Emit, Flow, M, Native, Stream, collect, operation, stream_of
from billkit.models import Bill, LineItem, Party
from billkit.money import Money
from billkit.providers.facturapi.mapping import PROVIDER, customer_input, new_idempotency_key, read
from billkit.providers.facturapi.wire import (
    AddressInput,
    Customer,
    CustomerInput,
    InvoiceProduct,
    ProductInput,
    SearchResult,
    TaxInput,
)
from billkit.providers.facturapi.wire_lifecycle import (
    CreditNoteItem,
    CreditNoteProduct,
    CreditNoteRequest,
    InvoiceDetail,
    PaidDocument,
    Payment,
    PaymentComplement,
    PaymentInvoiceRequest,
    PaymentTax,
    Product,
    ProductUpdate,
    RelatedDocuments,
)
from billkit.transport import Request, Response, encode_body

if TYPE_CHECKING:
    from billkit.providers.facturapi.client import FacturapiAdapter

__all__ = [
    "CREDIT_RELATIONSHIPS",
    "DRAFT_FIELDS",
    "FacturapiLifecycle",
    "Installment",
    "PaymentBalance",
    "credit_note_request",
    "credit_total",
    "derived_payment_key",
    "payment_ledger",
    "payment_request",
]

MEXICO_CITY = dt.timezone(dt.timedelta(hours=-6), "America/Mexico_City")
_CENT = Decimal("0.01")
#: SAT relation keys a credit note (type E) may use towards the invoice it credits
CREDIT_RELATIONSHIPS = ("01", "03", "07")
#: the product key Facturapi puts on a credit-note item when none is given (``ProductEgresoProperties``)
CREDIT_PRODUCT_KEY = "84111506"
#: the body fields of the spec's draft edit schemas (``Invoice{Ingreso,Egreso,Pago}EditInput``)
DRAFT_FIELDS = frozenset(
    {
        "addenda",
        "address",
        "complements",
        "conditions",
        "currency",
        "customer",
        "date",
        "exchange",
        "export",
        "external_id",
        "folio_number",
        "global",
        "idempotency_key",
        "items",
        "namespaces",
        "payment_form",
        "payment_method",
        "pdf_custom_section",
        "pdf_options",
        "related_documents",
        "series",
        "status",
        "third_party",
        "type",
        "use",
    }
)
CUSTOMER_FIELDS = frozenset({"legal_name", "tax_id", "tax_system", "email", "phone", "default_invoice_use", "address"})
_RECEIPT_FORMATS = ("xml", "pdf")
#: statuses of a complement or credit note that no longer count (never issued, or cancelled)
_DEAD = frozenset({"canceled", "failed", "draft"})
MAX_PAGE = 30
#: how far ahead of this machine's clock a payment date may be (clocks differ; Facturapi checks with its own)
CLOCK_SKEW = dt.timedelta(minutes=5)
#: the resources a delete answers with
R = TypeVar("R", Customer, Product)


def _cents(value: Decimal) -> Decimal:
    return value.quantize(_CENT, rounding=ROUND_HALF_UP)


def _dec(value: Any) -> Decimal | None:
    """A JSON number (Decimal or int, never a bool) as Decimal, else None."""
    if isinstance(value, bool) or not isinstance(value, (int, Decimal)):
        return None
    number = Decimal(value)
    return number if number.is_finite() else None


def _invalid(problems: list[Problem]) -> ValidationError:
    return ValidationError(problems, provider=PROVIDER)


def _conflict(message: str, code: str) -> ConflictError:
    return ConflictError(message, provider=PROVIDER, code=code)


# -- the payment ledger --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Installment:
    """One payment already recorded against an invoice: the complement's id, its installment number, the amount
    paid and the balance before it."""

    payment_id: str
    installment: int
    amount: Money
    last_balance: Money
    idempotency_key: str | None


@dataclass(frozen=True)
class PaymentBalance:
    """The running balance of a PPD invoice, rebuilt from its payment complements."""

    invoice_id: str
    uuid: str
    total: Money
    paid: Money
    balance: Money
    next_installment: int
    installments: tuple[Installment, ...]
    #: every complement Facturapi lists for the invoice (cancelled ones too): part of the derived key
    payment_ids: tuple[str, ...]


def _customer_of(invoice: InvoiceDetail) -> CustomerInput | str:
    """The receiver of a document about ``invoice``: its customer data inline when complete (the same receiver,
    whatever happened to a saved customer since), else its customer id."""
    customer = invoice.customer
    if isinstance(customer, str):
        return customer
    if customer is not None:
        zip_code = customer.address.zip if customer.address is not None else None
        if customer.legal_name and customer.tax_id and customer.tax_system and zip_code:
            return CustomerInput(
                legal_name=customer.legal_name,
                tax_id=customer.tax_id,
                tax_system=customer.tax_system,
                address=AddressInput(zip=zip_code),
                email=customer.email,
            )
        if customer.id:
            return customer.id
    raise _invalid([Problem("invoice_id", f"invoice {invoice.id} has no customer billkit can address")])


def _check_income(invoice: InvoiceDetail, invoice_id: str, *, ppd: bool) -> tuple[str, Money]:
    problems: list[Problem] = []
    if invoice.type != "I":
        problems.append(
            Problem("invoice_id", f"invoice {invoice_id} is of type {invoice.type!r}, not an income invoice (I)")
        )
    if ppd and invoice.payment_method != "PPD":
        problems.append(
            Problem(
                "invoice_id",
                f"invoice {invoice_id} has payment_method {invoice.payment_method!r}: "
                "only a PPD invoice is paid with payment complements (a PUE one is "
                "paid at issue)",
            )
        )
    if invoice.status != "valid" or invoice.cancellation_status in ("accepted", "pending", "verifying"):
        problems.append(
            Problem(
                "invoice_id",
                f"invoice {invoice_id} is {invoice.status!r} (cancellation "
                f"{invoice.cancellation_status!r}): it must be stamped and not "
                "cancelled",
            )
        )
    if not invoice.uuid:
        problems.append(Problem("invoice_id", f"invoice {invoice_id} has no UUID (not stamped)"))
    if invoice.total is None:
        problems.append(Problem("invoice_id", f"invoice {invoice_id} has no total"))
    if problems:
        raise _invalid(problems)
    assert invoice.uuid is not None and invoice.total is not None
    return invoice.uuid, Money(invoice.total, (invoice.currency or "MXN").upper())


def _paid_entries(payment: InvoiceDetail, uuid: str) -> list[dict[str, Any]]:
    """The ``related_documents`` entries of ``payment``'s pago complements that pay ``uuid``."""
    out: list[dict[str, Any]] = []
    for complement in payment.complements or ():
        if not isinstance(complement, Mapping) or complement.get("type") != "pago":
            continue
        data = complement.get("data")
        for pay in data if isinstance(data, list) else ():
            docs = pay.get("related_documents") if isinstance(pay, Mapping) else None
            for doc in docs if isinstance(docs, list) else ():
                if isinstance(doc, Mapping) and str(doc.get("uuid", "")).lower() == uuid.lower():
                    out.append(dict(doc))
    return out


def payment_ledger(invoice_id: str, invoice: InvoiceDetail, payments: Sequence[InvoiceDetail]) -> PaymentBalance:
    """The balance of PPD ``invoice`` from the complements that paid it (``payments``: those its
    ``received_payment_ids`` lists). Raises ValidationError for an invoice that takes no payments and
    ConflictError for a record that does not add up."""
    uuid, total = _check_income(invoice, invoice_id, ppd=True)
    currency = total.currency
    entries: list[Installment] = []
    for payment in payments:
        if payment.status in _DEAD:
            continue
        found = _paid_entries(payment, uuid)
        if not found:
            raise _conflict(
                f"Facturapi lists payment {payment.id} for invoice {invoice_id}, but billkit cannot read "
                "what it paid: check the complement before recording another payment",
                "payment_unreadable",
            )
        for doc in found:
            amount, before, number = _dec(doc.get("amount")), _dec(doc.get("last_balance")), doc.get("installment")
            if amount is None or before is None or isinstance(number, bool) or not isinstance(number, int):
                raise _conflict(
                    f"payment {payment.id} of invoice {invoice_id} has no readable amount, last_balance "
                    "and installment",
                    "payment_unreadable",
                )
            entries.append(
                Installment(
                    payment.id or "",
                    number,
                    Money(_cents(amount), currency),
                    Money(_cents(before), currency),
                    payment.idempotency_key,
                )
            )
    entries.sort(key=lambda e: e.installment)
    numbers = [e.installment for e in entries]
    if numbers != list(range(1, len(entries) + 1)):
        raise _conflict(
            f"the payments of invoice {invoice_id} carry installments {numbers}, not 1..{len(entries)}: "
            "billkit will not guess the next one",
            "installments_inconsistent",
        )
    running = total.amount
    for entry in entries:
        if entry.last_balance.amount != running:
            raise _conflict(
                f"installment {entry.installment} of invoice {invoice_id} says the balance before it was "
                f"{entry.last_balance.amount}, but the earlier payments leave {running}",
                "balance_inconsistent",
            )
        running -= entry.amount.amount
    if invoice.amount_due is not None and _cents(invoice.amount_due) != running:
        raise _conflict(
            f"invoice {invoice_id} says {invoice.amount_due} is due, but its payment complements leave "
            f"{running}: billkit will not record a payment on a balance it cannot confirm",
            "balance_mismatch",
        )
    return PaymentBalance(
        invoice_id=invoice_id,
        uuid=uuid,
        total=total,
        paid=Money(total.amount - running, currency),
        balance=Money(running, currency),
        next_installment=len(entries) + 1,
        installments=tuple(entries),
        payment_ids=tuple(invoice.received_payment_ids or ()),
    )


def _tax_groups(invoice: InvoiceDetail) -> dict[tuple[str, Decimal, str | None, bool], Decimal] | None:
    """The invoice's tax bases by (type, rate, factor, withholding), computed as the CFDI does; None when its items
    cannot be read (a saved product's id, a missing price or taxes)."""
    groups: dict[tuple[str, Decimal, str | None, bool], Decimal] = {}
    for item in invoice.items or ():
        product = item.product
        if not isinstance(product, InvoiceProduct) or product.price is None or product.taxes is None:
            return None
        line = (item.quantity if item.quantity is not None else Decimal(1)) * product.price - (item.discount or 0)
        taxes = []
        for tax in product.taxes:
            rate = _dec(tax.get("rate"))
            if rate is None:
                return None
            taxes.append((str(tax.get("type") or "IVA"), rate, tax.get("factor"), bool(tax.get("withholding"))))
        net = sum((r * (-1 if w else 1) for _, r, f, w in taxes if f != "Exento"), Decimal(0))
        base = _cents(line / (1 + net)) if product.tax_included is not False and net != -1 else _cents(line)
        for key in taxes:
            groups[key] = groups.get(key, Decimal(0)) + base
    return groups


def _payment_taxes(invoice: InvoiceDetail, amount: Decimal, total: Decimal) -> list[PaymentTax] | None:
    """The invoice's taxes in proportion to the part ``amount`` pays of ``total`` (bases rounded to cents)."""
    groups = _tax_groups(invoice)
    if groups is None or total <= 0:
        return None
    return [
        PaymentTax(
            base=_cents(base * amount / total),
            type=kind,
            rate=rate,
            factor=factor if factor in ("Cuota", "Exento") else None,
            withholding=True if withholding else None,
        )
        for (kind, rate, factor, withholding), base in groups.items()
    ]


def _payment_date(value: dt.date | dt.datetime | None, now: dt.datetime, problems: list[Problem]) -> str | None:
    if value is None:
        return None
    if isinstance(value, dt.datetime):
        if value.tzinfo is None or value.utcoffset() is None:
            problems.append(Problem("date", f"{value!r}: give a timezone-aware datetime, or a date"))
            return None
        when = value
    elif isinstance(value, dt.date):
        when = dt.datetime(value.year, value.month, value.day, 12, tzinfo=MEXICO_CITY)  # noon in Mexico City
    else:
        problems.append(Problem("date", f"{value!r}: a date or a timezone-aware datetime"))
        return None
    if when > now + CLOCK_SKEW:
        problems.append(Problem("date", f"{value} is in the future; Facturapi refuses future payment dates"))
        return None
    return when.isoformat()


def derived_payment_key(balance: PaymentBalance, installment: int) -> str:
    """The idempotency key of installment ``installment`` of the invoice, after the complements it lists now."""
    identity = f"{balance.uuid.lower()}:{installment}:{','.join(sorted(balance.payment_ids))}"
    return "bk-pay-" + hashlib.sha256(identity.encode()).hexdigest()[:32]


def _check_text(problems: list[Problem], name: str, value: str | None, most: int) -> None:
    if value is not None and (not isinstance(value, str) or not 1 <= len(value) <= most):
        problems.append(Problem(name, f"1 to {most} characters"))


def payment_request(
    balance: PaymentBalance,
    invoice: InvoiceDetail,
    *,
    amount: Money,
    payment_form: str,
    date: dt.date | dt.datetime | None,
    installment: int | None,
    now: dt.datetime,
    taxes: Sequence[PaymentTax] | None = None,
    idempotency_key: str | None = None,
    external_id: str | None = None,
    series: str | None = None,
    operation_number: str | None = None,
) -> PaymentInvoiceRequest:
    """The ``POST /invoices`` body of the next payment complement of ``invoice``; every problem in one
    ValidationError, nothing sent."""
    problems: list[Problem] = []
    if not isinstance(amount, Money):
        raise _invalid([Problem("amount", "give the amount as billkit.Money (Decimal and currency)")])
    if amount.currency != balance.total.currency:
        problems.append(
            Problem(
                "amount",
                f"{amount.currency}: invoice {balance.invoice_id} is in "
                f"{balance.total.currency}; pay it in its currency",
            )
        )
    if balance.balance.amount <= 0:
        problems.append(
            Problem(
                "amount",
                f"invoice {balance.invoice_id} is paid in full (balance 0 after "
                f"{len(balance.installments)} installments)",
            )
        )
    elif amount.amount <= 0:
        problems.append(Problem("amount", "must be greater than 0"))
    elif amount.amount > balance.balance.amount:
        problems.append(
            Problem(
                "amount",
                f"{amount.amount} is more than the balance {balance.balance.amount} of invoice {balance.invoice_id}",
            )
        )
    if installment is not None and installment != balance.next_installment:
        problems.append(
            Problem(
                "installment",
                f"{installment}: the next installment of invoice {balance.invoice_id} is {balance.next_installment}",
            )
        )
    if not isinstance(payment_form, str) or len(payment_form) != 2 or not payment_form.isdigit():
        problems.append(Problem("payment_form", f"{payment_form!r} is not a 2-digit SAT payment form"))
    elif payment_form == "99":
        problems.append(Problem("payment_form", "'99' (to be defined) is not a form a payment was received in"))
    when = _payment_date(date, now, problems)
    _check_text(problems, "idempotency_key", idempotency_key, 200)
    _check_text(problems, "external_id", external_id, 100)
    _check_text(problems, "series", series, 25)
    paid_taxes = list(taxes) if taxes is not None else _payment_taxes(invoice, amount.amount, balance.total.amount)
    if paid_taxes is None:
        problems.append(
            Problem(
                "taxes",
                f"billkit cannot compute the taxes of invoice {balance.invoice_id} from its "
                "items: pass taxes=[PaymentTax(...)]",
            )
        )
    customer: CustomerInput | str | None = None
    try:
        customer = _customer_of(invoice)
    except ValidationError as exc:
        problems.extend(exc.problems)
    if problems:
        raise _invalid(problems)
    assert paid_taxes is not None and customer is not None
    currency = balance.total.currency
    document = PaidDocument(
        uuid=balance.uuid,
        amount=amount.amount,
        taxes=paid_taxes,
        installment=balance.next_installment,
        last_balance=balance.balance.amount,
        currency=currency,
    )
    payment = Payment(
        payment_form=payment_form,
        related_documents=[document],
        currency=None if currency == "MXN" else currency,
        exchange=invoice.exchange if currency != "MXN" else None,
        date=when,
        numOperacion=operation_number,
    )
    return PaymentInvoiceRequest(
        customer=customer,
        complements=[PaymentComplement(data=[payment])],
        external_id=external_id,
        series=series,
        idempotency_key=idempotency_key or derived_payment_key(balance, balance.next_installment),
    )


def _records(answer: InvoiceDetail, uuid: str, installment: int, amount: Decimal) -> bool:
    return any(
        doc.get("installment") == installment and _dec(doc.get("amount")) == amount
        for doc in _paid_entries(answer, uuid)
    )


# -- credit notes -------------------------------------------------------------------------------------------------


def credit_total(items: Sequence[CreditNoteItem]) -> Decimal:
    """A credit note's total as the CFDI computes it: per item, the base (price less taxes when included) and each
    tax rounded to cents; Facturapi's default IVA 16 % when ``taxes`` is left out."""
    total = Decimal(0)
    for item in items:
        product = item.product
        assert isinstance(product, CreditNoteProduct)
        line = (item.quantity if item.quantity is not None else Decimal(1)) * product.price - (item.discount or 0)
        if product.taxes is not None:
            taxes = product.taxes
        elif product.taxability in (None, "02"):
            taxes = [TaxInput(rate=Decimal("0.16"))]
        else:
            taxes = []
        taxes = [t for t in taxes if t.factor != "Exento"]
        net = sum((t.rate * (-1 if t.withholding else 1) for t in taxes), Decimal(0))
        base = _cents(line / (1 + net)) if product.tax_included is not False and net != -1 else _cents(line)
        total += base + sum(
            (-_cents(base * t.rate) if t.withholding else _cents(base * t.rate) for t in taxes), Decimal(0)
        )
    return total


def _credit_item(item: LineItem, path: str, currency: str, problems: list[Problem]) -> CreditNoteItem | None:
    if not isinstance(item, LineItem):
        problems.append(Problem(path, "give each item as billkit.LineItem"))
        return None
    start = len(problems)
    if item.unit_price.currency != currency:
        problems.append(Problem(f"{path}.unit_price", f"{item.unit_price.currency}: the original is in {currency}"))
    if item.quantity <= 0:
        problems.append(Problem(f"{path}.quantity", "must be greater than 0"))
    if item.unit_price.amount <= 0:
        problems.append(Problem(f"{path}.unit_price", "must be greater than 0"))
    if not item.description.strip():
        problems.append(Problem(f"{path}.description", "required"))
    options = dict(item.provider_options)
    product_key = str(options.pop("product_key", CREDIT_PRODUCT_KEY))
    if len(product_key) != 8 or not product_key.isdigit():
        problems.append(Problem(f"{path}.provider_options.product_key", f"{product_key!r} is not an 8-digit SAT key"))
    unknown = sorted(options.keys() - {"unit_key", "unit_name", "sku", "taxability"})
    if unknown:
        problems.append(Problem(f"{path}.provider_options", f"not credit-note item fields: {', '.join(unknown)}"))
    taxes = []
    for j, tax in enumerate(item.taxes):
        if tax.type.upper() not in ("IVA", "ISR", "IEPS") or not 0 <= tax.rate <= 1:
            problems.append(Problem(f"{path}.taxes[{j}]", "IVA, ISR or IEPS with a rate between 0 and 1"))
            continue
        taxes.append(TaxInput(type=tax.type.upper(), rate=tax.rate, withholding=True if tax.withholding else None))
    if len({t.included for t in item.taxes if not t.withholding}) > 1:
        problems.append(Problem(f"{path}.taxes", "the transferred taxes of one item must agree on included"))
    if len(problems) > start:
        return None
    included = {t.included for t in item.taxes if not t.withholding} == {True}
    product = CreditNoteProduct(
        description=item.description,
        price=item.unit_price.amount,
        product_key=product_key,
        tax_included=included,
        taxability=str(options["taxability"]) if "taxability" in options else (None if taxes else "01"),
        taxes=taxes,
        unit_key=options.get("unit_key"),
        unit_name=options.get("unit_name"),
        sku=options.get("sku"),
    )
    return CreditNoteItem(quantity=item.quantity, product=product)


def credit_note_request(
    original_id: str,
    original: InvoiceDetail,
    credited: Decimal,
    items: Sequence[LineItem],
    *,
    relationship: str,
    payment_form: str | None,
    use: str,
    idempotency_key: str | None,
    external_id: str | None,
    series: str | None,
) -> tuple[CreditNoteRequest, Decimal]:
    """The ``POST /invoices`` body of a credit note of ``original`` (``credited``: what earlier credit notes took),
    and its total; every problem in one ValidationError."""
    uuid, total = _check_income(original, original_id, ppd=False)
    problems: list[Problem] = []
    if relationship not in CREDIT_RELATIONSHIPS:
        problems.append(Problem("relationship", f"{relationship!r}: one of {', '.join(CREDIT_RELATIONSHIPS)}"))
    form = payment_form if payment_form is not None else original.payment_form
    if not isinstance(form, str) or len(form) != 2 or not form.isdigit():
        problems.append(Problem("payment_form", f"{form!r} is not a 2-digit SAT payment form"))
    if not isinstance(use, str) or not 3 <= len(use) <= 4:
        problems.append(Problem("use", f"{use!r} is not a SAT CFDI use such as 'G02'"))
    _check_text(problems, "idempotency_key", idempotency_key, 200)
    _check_text(problems, "external_id", external_id, 100)
    _check_text(problems, "series", series, 25)
    if not items:
        problems.append(Problem("items", "at least one item"))
    built = [_credit_item(item, f"items[{i}]", total.currency, problems) for i, item in enumerate(items)]
    customer: CustomerInput | str | None = None
    try:
        customer = _customer_of(original)
    except ValidationError as exc:
        problems.extend(exc.problems)
    amount = credit_total([b for b in built if b is not None]) if not problems else Decimal(0)
    left = total.amount - credited
    if not problems and amount > left:
        problems.append(
            Problem(
                "items",
                f"the credit note totals {amount}, more than the {left} left to credit on "
                f"invoice {original_id} (total {total.amount}, credited {credited})",
            )
        )
    if problems:
        raise _invalid(problems)
    assert customer is not None and isinstance(form, str)
    request = CreditNoteRequest(
        customer=customer,
        items=[b for b in built if b is not None],
        payment_form=form,
        use=use,
        related_documents=[RelatedDocuments(relationship=relationship, documents=[uuid])],
        currency=None if total.currency == "MXN" else total.currency,
        exchange=original.exchange if total.currency != "MXN" else None,
        external_id=external_id,
        series=series,
        idempotency_key=idempotency_key or new_idempotency_key(),
    )
    return request, amount


def _relates(document: InvoiceDetail, uuid: str) -> bool:
    return any(uuid.lower() in (d.lower() for d in (rel.documents or ())) for rel in document.related_documents or ())


def _body(model: Any) -> bytes:
    return encode_body(model.to_json() if hasattr(model, "to_json") else model, provider=PROVIDER)


def _draft_changes(changes: Mapping[str, Any], *, creating: bool) -> dict[str, Any]:
    if not isinstance(changes, Mapping):
        raise _invalid([Problem("changes", "a mapping of the draft's fields")])
    problems = [
        Problem(f"changes.{k}", "not a field of Facturapi's draft schemas")
        for k in sorted(changes.keys())
        if k not in DRAFT_FIELDS
    ]
    if changes.get("status", "draft") != "draft":
        problems.append(Problem("changes.status", "a draft stays 'draft' (stamp it with stamp_draft)"))
    if not creating and not changes:
        problems.append(Problem("changes", "nothing to change"))
    if problems:
        raise _invalid(problems)
    return {**changes, "status": "draft"} if creating else dict(changes)


# -- the native client's lifecycle methods ------------------------------------------------------------------------


class FacturapiLifecycle(Native[M]):
    """The lifecycle half of :class:`~billkit.providers.facturapi.FacturapiNative` (see the module docstring)."""

    _adapter: FacturapiAdapter

    def _call(self, request: Request) -> Flow[Response]:
        return self._adapter.ctx.transport.send(request)

    def _read_invoice(self, invoice_id: str) -> Flow[InvoiceDetail]:
        response = yield from self._call(Request("GET", "/invoices/{}", ids=(invoice_id,)))
        return read(InvoiceDetail, response.json(), response)

    def _now(self) -> dt.datetime:
        return dt.datetime.fromtimestamp(self._adapter.ctx.clock.wall(), tz=dt.timezone.utc)

    def _pages(self, path: str, params: Mapping[str, str], model: type[Any]) -> Stream:
        page = 1
        while True:
            response = yield from self._call(Request("GET", path, params={**params, "page": str(page)}))
            result = read(SearchResult, response.json(), response)
            for item in result.data:
                yield Emit(read(model, item))
            if not result.data or result.total_pages is None or page >= result.total_pages:
                return
            if page >= MAX_PAGE:
                raise _invalid([Problem("q", f"more than {MAX_PAGE} pages: narrow the search")])
            page += 1

    # -- payment complements ---------------------------------------------------------------------------------------
    def _ledger(self, invoice_id: str) -> Flow[tuple[PaymentBalance, InvoiceDetail, list[InvoiceDetail]]]:
        invoice = yield from self._read_invoice(invoice_id)
        payments = []
        for payment_id in invoice.received_payment_ids or ():
            payments.append((yield from self._read_invoice(payment_id)))
        return payment_ledger(invoice_id, invoice, payments), invoice, payments

    @operation
    def payment_balance(self, invoice_id: str) -> Flow[PaymentBalance]:
        """The running balance of PPD invoice ``invoice_id``: total, paid, balance, the next installment number and
        the installments so far, rebuilt from its payment complements (reads only)."""
        balance, _, _ = yield from self._ledger(invoice_id)
        return balance

    @operation
    def record_payment(
        self,
        invoice_id: str,
        *,
        amount: Money,
        payment_form: str,
        date: dt.date | dt.datetime | None = None,
        installment: int | None = None,
        idempotency_key: str | None = None,
        taxes: Sequence[PaymentTax] | None = None,
        operation_number: str | None = None,
        external_id: str | None = None,
        series: str | None = None,
    ) -> Flow[InvoiceDetail]:
        """Issue the payment complement (CFDI type P) of a payment of ``amount`` received on PPD invoice
        ``invoice_id``: ``payment_form`` the SAT code it came in (``"03"`` transfer; not ``"99"``), ``date`` when
        it was received (default now; a date is read as noon in Mexico City), ``installment`` to assert the
        installment number (it must be the next one). ``taxes`` default to the invoice's, in proportion to the
        payment. See the module docstring for the checks and the idempotency key."""
        balance, invoice, payments = yield from self._ledger(invoice_id)
        if idempotency_key is not None:
            held = next((p for p in payments if p.idempotency_key == idempotency_key), None)
            if held is not None:  # recorded by an earlier call whose answer was lost: return it, send nothing
                mine = [e for e in balance.installments if e.payment_id == held.id]
                if not mine or any(e.amount != amount for e in mine):
                    raise _conflict(
                        f"idempotency key {idempotency_key} already recorded payment {held.id} with "
                        "another amount on this invoice",
                        "idempotency_key_reused",
                    )
                return held
        body = payment_request(
            balance,
            invoice,
            amount=amount,
            payment_form=payment_form,
            date=date,
            installment=installment,
            now=self._now(),
            taxes=taxes,
            idempotency_key=idempotency_key,
            external_id=external_id,
            series=series,
            operation_number=operation_number,
        )
        key = body.idempotency_key or ""
        number = balance.next_installment
        check = (
            f"call record_payment({invoice_id!r}, ..., idempotency_key={key!r}) again: billkit finds the "
            "complement holding that key among the invoice's payments and returns it, or records it once"
        )
        request = Request(
            "POST", "/invoices", encoded_json=_body(body), idempotent=True, reference=key, how_to_check=check
        )
        try:
            response = yield from self._call(request)
        except (APIError, OutcomeUnknownError) as exc:
            found = yield from self._held_by_key(invoice_id, key)
            if found is None:
                if isinstance(exc, ConflictError) and exc.code == "idempotency_key_in_use":
                    raise OutcomeUnknownError(
                        f"Facturapi kept idempotency key {key} busy through every retry",
                        provider=PROVIDER,
                        how_to_check=check,
                        reference=key,
                        cause=exc,
                    ) from None
                raise
            answer = found
        else:
            answer = read(InvoiceDetail, response.json(), response)
        if answer.type != "P" or not _records(answer, balance.uuid, number, amount.amount):
            raise _conflict(
                f"Facturapi answered idempotency key {key} with document {answer.id}, which does not "
                f"record installment {number} of {amount.amount} on invoice {invoice_id}: another payment "
                "holds that installment; read payment_balance() and record this one again",
                "installment_taken",
            )
        return answer

    def _held_by_key(self, invoice_id: str, key: str) -> Flow[InvoiceDetail | None]:
        """The complement of ``invoice_id`` holding ``key``, read back after a failed create, or None."""
        try:
            invoice = yield from self._read_invoice(invoice_id)
            for payment_id in invoice.received_payment_ids or ():
                payment = yield from self._read_invoice(payment_id)
                if payment.idempotency_key == key:
                    return payment
        except BillkitError:
            return None
        return None

    # -- credit notes ----------------------------------------------------------------------------------------------
    def _credit_notes(self, original: InvoiceDetail) -> Flow[list[InvoiceDetail]]:
        """Every live type E document that relates ``original`` (searched by the customer's RFC)."""
        customer = original.customer
        tax_id = customer.tax_id if isinstance(customer, Customer) else None
        params = {"limit": "100", "type": "E", **({"q": tax_id} if tax_id else {})}
        docs: list[InvoiceDetail] = yield from collect(self._pages("/invoices", params, InvoiceDetail))
        uuid = original.uuid or ""
        return [d for d in docs if d.type == "E" and d.status not in _DEAD and uuid and _relates(d, uuid)]

    @operation
    def create_credit_note(
        self,
        invoice_id: str,
        items: Sequence[LineItem],
        *,
        relationship: Literal["01", "03", "07"] = "01",
        payment_form: str | None = None,
        use: str = "G02",
        idempotency_key: str | None = None,
        external_id: str | None = None,
        series: str | None = None,
    ) -> Flow[InvoiceDetail]:
        """Issue a credit note (CFDI type E) of ``items`` related to stamped income invoice ``invoice_id``
        (``relationship`` ``01`` credit note by default; ``payment_form`` defaults to the original's; ``use``
        ``G02`` returns, discounts or bonuses). Refused locally when it would credit more than is left of the
        original (see the module docstring)."""
        original = yield from self._read_invoice(invoice_id)
        earlier = (yield from self._credit_notes(original)) if original.uuid else []
        credited = sum((doc.total or Decimal(0) for doc in earlier), Decimal(0))
        body, _ = credit_note_request(
            invoice_id,
            original,
            credited,
            items,
            relationship=relationship,
            payment_form=payment_form,
            use=use,
            idempotency_key=idempotency_key,
            external_id=external_id,
            series=series,
        )
        key = body.idempotency_key or ""
        check = (
            f"call create_credit_note({invoice_id!r}, ..., idempotency_key={key!r}) again: Facturapi answers "
            "with the credit note if the first attempt created it, and creates it once if not"
        )
        request = Request(
            "POST", "/invoices", encoded_json=_body(body), idempotent=True, reference=key, how_to_check=check
        )
        try:
            response = yield from self._call(request)
        except (APIError, OutcomeUnknownError):
            try:
                again = yield from self._credit_notes(original)
            except BillkitError:
                again = []
            found = next((doc for doc in again if doc.idempotency_key == key), None)
            if found is None:
                raise
            return found
        return read(InvoiceDetail, response.json(), response)

    # -- drafts ----------------------------------------------------------------------------------------------------
    @operation
    def create_draft(self, fields: Bill | Mapping[str, Any]) -> Flow[InvoiceDetail]:
        """``POST /invoices`` with ``status: "draft"``: Facturapi saves it without stamping, whatever is missing
        (``is_ready_to_stamp`` says whether it is complete). ``fields`` is a Bill (checked and mapped as ``create``
        does) or the body's fields (any CFDI ``type``; names checked against the spec's draft schemas); an
        ``idempotency_key`` is added when absent, so a retry never saves a second draft."""
        if isinstance(fields, Bill):
            fields = self._adapter.prepare(fields).to_json()
        body = _draft_changes(fields, creating=True)
        body.setdefault("idempotency_key", new_idempotency_key())
        key = str(body["idempotency_key"])
        check = f"create the draft again with idempotency_key {key!r}: Facturapi answers with the saved draft"
        request = Request(
            "POST", "/invoices", encoded_json=_body(body), idempotent=True, reference=key, how_to_check=check
        )
        response = yield from self._call(request)
        return read(InvoiceDetail, response.json(), response)

    @operation
    def update_draft(self, invoice_id: str, changes: Mapping[str, Any]) -> Flow[InvoiceDetail]:
        """``PUT /invoices/{id}``: a partial update of a draft (only the fields given change); Facturapi recomputes
        ``is_ready_to_stamp``. Not repeated once it may have arrived (read the draft and edit again if needed)."""
        body = _draft_changes(changes, creating=False)
        request = Request(
            "PUT",
            "/invoices/{}",
            ids=(invoice_id,),
            encoded_json=_body(body),
            reference=invoice_id,
            how_to_check=f"read draft {invoice_id} and send the edit again if it did not take",
        )
        response = yield from self._call(request)
        return read(InvoiceDetail, response.json(), response)

    @operation
    def stamp_draft(self, invoice_id: str, *, background: bool = False) -> Flow[InvoiceDetail]:
        """``POST /invoices/{id}/stamp`` (``?async=true`` when ``background``): the draft must be
        ``is_ready_to_stamp``. A lost answer or a 409 is settled by reading the draft: stamped (or pending) means
        the stamp took, and that invoice is returned; a draft still a draft raises the error."""
        request = Request(
            "POST",
            "/invoices/{}/stamp",
            ids=(invoice_id,),
            params={"async": "true"} if background else None,
            reference=invoice_id,
            how_to_check=f"read invoice {invoice_id}: 'draft' means not stamped",
        )
        try:
            response = yield from self._call(request)
        except (ConflictError, OutcomeUnknownError):
            current = yield from self._read_invoice(invoice_id)
            if current.status in ("valid", "pending"):
                return current
            raise
        return read(InvoiceDetail, response.json(), response)

    @operation
    def copy_to_draft(self, invoice_id: str) -> Flow[InvoiceDetail]:
        """``POST /invoices/{id}/copy``: a new draft with the invoice's data (without its idempotency key). Never
        repeated once it may have arrived: Facturapi has no key for it."""
        request = Request(
            "POST",
            "/invoices/{}/copy",
            ids=(invoice_id,),
            reference=invoice_id,
            how_to_check="list the drafts (list_invoices) before copying again",
        )
        response = yield from self._call(request)
        return read(InvoiceDetail, response.json(), response)

    # -- invoice status and the cancellation receipt ----------------------------------------------------------------
    @operation
    def refresh_status(self, invoice_id: str) -> Flow[InvoiceDetail]:
        """``PUT /invoices/{id}/status``: Facturapi asks the SAT for the stamped invoice's status and updates it.
        Repeating it changes nothing twice, so it is retried like a read."""
        request = Request("PUT", "/invoices/{}/status", ids=(invoice_id,), idempotent=True)
        response = yield from self._call(request)
        return read(InvoiceDetail, response.json(), response)

    @operation
    def download_cancellation_receipt(self, invoice_id: str, format: Literal["xml", "pdf"]) -> Flow[bytes]:
        """``GET /invoices/{id}/cancellation_receipt/{xml,pdf}``: the SAT's acknowledgement (acuse) of the
        cancellation of a cancelled invoice."""
        if format not in _RECEIPT_FORMATS:
            raise _invalid([Problem("format", f"{format!r}: one of xml, pdf")])
        response = yield from self._call(
            Request("GET", "/invoices/{}/cancellation_receipt/" + format, ids=(invoice_id,), headers={"accept": "*/*"})
        )
        return response.content

    # -- customers ---------------------------------------------------------------------------------------------------
    @operation
    def update_customer(self, customer_id: str, changes: Party | Mapping[str, Any]) -> Flow[Customer]:
        """``PUT /customers/{id}``: a partial update (a Party sends its whole fiscal data; a mapping only the
        ``legal_name`` / ``tax_id`` / ``tax_system`` / ``email`` / ``phone`` / ``default_invoice_use`` /
        ``address`` given). Not repeated once it may have arrived."""
        if isinstance(changes, Party):
            body: dict[str, Any] = customer_input(changes).to_json()
        else:
            unknown = sorted(set(changes) - CUSTOMER_FIELDS) if isinstance(changes, Mapping) else ["changes"]
            if unknown or not changes:
                raise _invalid(
                    [Problem(f"changes.{k}", "not a customer field") for k in unknown]
                    or [Problem("changes", "nothing to change")]
                )
            body = dict(changes)
        request = Request(
            "PUT",
            "/customers/{}",
            ids=(customer_id,),
            encoded_json=_body(body),
            reference=customer_id,
            how_to_check=f"read customer {customer_id} and update it again if it did not take",
        )
        response = yield from self._call(request)
        return read(Customer, response.json(), response)

    def _delete(self, path: str, resource_id: str, model: type[R]) -> Flow[R]:
        request = Request(
            "DELETE",
            path,
            ids=(resource_id,),
            reference=resource_id,
            how_to_check=f"read {resource_id}: 404 means it is deleted",
        )
        try:
            response = yield from self._call(request)
        except OutcomeUnknownError:
            try:
                yield from self._call(Request("GET", path, ids=(resource_id,)))
            except NotFoundError:
                return model(id=resource_id)  # an earlier attempt whose answer was lost did delete it
            raise
        return read(model, response.json(), response)

    @operation
    def delete_customer(self, customer_id: str) -> Flow[Customer]:
        """``DELETE /customers/{id}`` (its invoices are kept). A lost answer is settled by a read."""
        return (yield from self._delete("/customers/{}", customer_id, Customer))

    # -- products ----------------------------------------------------------------------------------------------------
    @operation
    def create_product(self, product: ProductInput) -> Flow[Product]:
        """``POST /products`` (answers 200). Facturapi has no key for it: not repeated once it may have arrived
        (look it up with ``list_products(sku=...)`` first)."""
        if not isinstance(product, ProductInput):
            raise _invalid([Problem("product", "give a ProductInput (description, product_key, price, ...)")])
        problems = []
        if len(product.product_key) != 8 or not product.product_key.isdigit():
            problems.append(Problem("product.product_key", f"{product.product_key!r} is not an 8-digit SAT key"))
        if product.price < 0:
            problems.append(Problem("product.price", "must not be negative"))
        if not product.description.strip():
            problems.append(Problem("product.description", "required"))
        if problems:
            raise _invalid(problems)
        check = f"list_products(sku={product.sku!r}) before creating it again" if product.sku else "list_products()"
        request = Request("POST", "/products", encoded_json=_body(product), how_to_check=check)
        response = yield from self._call(request)
        return read(Product, response.json(), response)

    @operation
    def get_product(self, product_id: str) -> Flow[Product]:
        response = yield from self._call(Request("GET", "/products/{}", ids=(product_id,)))
        return read(Product, response.json(), response)

    @operation
    def update_product(self, product_id: str, changes: ProductUpdate) -> Flow[Product]:
        """``PUT /products/{id}``: a partial update (only the fields set change). Not repeated once it may have
        arrived."""
        body = changes.to_json() if isinstance(changes, ProductUpdate) else None
        if not body:
            raise _invalid([Problem("changes", "a ProductUpdate with at least one field")])
        request = Request(
            "PUT",
            "/products/{}",
            ids=(product_id,),
            encoded_json=_body(body),
            reference=product_id,
            how_to_check=f"read product {product_id} and update it again if it did not take",
        )
        response = yield from self._call(request)
        return read(Product, response.json(), response)

    @operation
    def delete_product(self, product_id: str) -> Flow[Product]:
        """``DELETE /products/{id}`` (invoices that used it are kept). A lost answer is settled by a read."""
        return (yield from self._delete("/products/{}", product_id, Product))

    @stream_of(Product)
    def list_products(self, q: str | None = None, *, sku: str | None = None, limit: int = 50) -> Stream:
        """Every product whose description matches ``q`` and/or with ``sku`` (all when neither), across pages."""
        if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= 100:
            raise _invalid([Problem("limit", f"{limit}: Facturapi pages hold 1 to 100 results")])
        params = {"limit": str(limit), **({"q": q} if q else {}), **({"sku": sku} if sku else {})}
        return self._pages("/products", params, Product)

"""Facturapi mapping: the common :class:`~billkit.models.Bill` to an income invoice body and back, the status
table, local validation of what the spec states, and Facturapi's error body to typed errors.

**What maps to what** (a common field not listed here raises :class:`UnsupportedFeatureError`):

=====================================  ===================================================================
``direction``                          ``receivable`` only (Facturapi issues CFDI; it does not pay bills)
``reference``                          ``external_id`` (Facturapi does not check it for uniqueness)
``issue_date``                         ``date``: today is left to Facturapi (now); up to 2 days back is sent
                                       as that day at 23:59:59 Mexico City time (the 72-hour rule)
``line_items[].description``           ``items[].product.description``
``line_items[].quantity``              ``items[].quantity`` (> 0)
``line_items[].unit_price``            ``items[].product.price``; its currency is the invoice ``currency``
``line_items[].taxes``                 ``items[].product.taxes`` (``type``, ``rate``, ``withholding``);
                                       ``included`` becomes the product's ``tax_included``
``counterparty.provider_id``           ``customer`` as the id of a saved Facturapi customer
``counterparty.name``                  ``customer.legal_name`` (without the "S.A. de C.V." suffix)
``counterparty.tax_id``                ``customer.tax_id`` (RFC: 12 characters for companies, 13 for persons)
``counterparty.email`` / ``.phone``    ``customer.email`` / ``customer.phone``
``counterparty.address.*``             ``customer.address``: ``postal_code`` -> ``zip`` (required),
                                       ``line1`` -> ``street``, ``city``, ``region`` -> ``state``, ``country``
                                       (alpha-3; ``MX`` is read as ``MEX``)
=====================================  ===================================================================

``provider_options`` carry what the common model lacks: on the bill ``payment_form`` (required, SAT code such
as ``"03"``), ``payment_method`` (``PUE`` default / ``PPD``), ``use`` (default ``G01``), ``exchange`` (required
for a currency other than MXN), ``series``, ``folio_number``, ``conditions``, ``idempotency_key`` and any other
body field of the spec; on the counterparty ``tax_system`` (required, 3 digits) and the address parts
``exterior``, ``interior``, ``neighborhood``, ``municipality``; on a line item ``product_key`` (required, 8 digits),
``unit_key``, ``unit_name``, ``sku``, ``taxability`` and ``discount``.

**Choices** where the spec leaves room:

* ``total`` raises :class:`UnsupportedFeatureError`: Facturapi computes the total from the items and their taxes
  (CFDI rounding rules), so a total given next to them could only disagree.
* A line item with no taxes is sent with ``taxes: []`` and ``taxability: "01"`` (not subject to tax) unless a
  ``taxability`` option says otherwise, because Facturapi adds IVA 16 % to an item whose taxes are omitted:
  billkit sends what the bill says, never a tax the caller did not write.
* ``tax_included`` follows the taxes' ``included`` flag (billkit's default is ``False``, Facturapi's is
  ``True``; billkit always sends it). Transferred taxes of one item must agree on it.

**Status table** (``status`` is an open string):

===========  ==========================================================================================
pending      PENDING (async stamping, or the 202 recovery path that can last about 50 minutes)
valid        OPEN; PAID when the invoice says nothing is due (``amount_due`` 0); PARTIALLY_PAID when
             ``amount_due`` is below the total
canceled     VOID
failed       FAILED (terminal: async stamping or recovery ended unsuccessfully)
draft        DRAFT
other        UNKNOWN, with the raw string kept in ``provider_status``
===========  ==========================================================================================
"""

from __future__ import annotations

import datetime as dt
import re
import uuid
from collections.abc import Callable, Mapping
from decimal import Decimal
from typing import Any, TypeVar

import pydantic

from billkit.errors import APIError, BillkitError, Problem, UnsupportedFeatureError, ValidationError
from billkit.models import Address, Bill, BillStatus, Direction, LineItem, Party, Tax, check_supported
from billkit.money import Money, exponent
from billkit.providers.facturapi.wire import (
    AddressInput,
    CustomerInput,
    ErrorBody,
    Invoice,
    InvoiceProduct,
    InvoiceRequest,
    ItemInput,
    ProductInput,
    TaxInput,
    parse_datetime,
)
from billkit.transport import Response, default_error, encode_body, read_model

__all__ = [
    "ADDRESS_OPTIONS",
    "MAX_ITEMS",
    "PROVIDER",
    "STATUS_TABLE",
    "SUPPORTED",
    "build_request",
    "customer_input",
    "error_from_response",
    "new_idempotency_key",
    "read",
    "to_bill",
    "to_status",
]

PROVIDER = "facturapi"
#: items per invoice (``InvoiceCommonInputProperties.items.maxItems``)
MAX_ITEMS = 5000

STATUS_TABLE: Mapping[str, BillStatus] = {
    "pending": BillStatus.PENDING,
    "valid": BillStatus.OPEN,
    "canceled": BillStatus.VOID,
    "failed": BillStatus.FAILED,
    "draft": BillStatus.DRAFT,
}

SUPPORTED = (
    "direction",
    "reference",
    "issue_date",
    "line_items",
    "line_items[].description",
    "line_items[].quantity",
    "line_items[].unit_price",
    "line_items[].taxes",
    "line_items[].taxes[].type",
    "line_items[].taxes[].rate",
    "line_items[].taxes[].withholding",
    "line_items[].taxes[].included",
    "counterparty",
    "counterparty.provider_id",
    "counterparty.name",
    "counterparty.tax_id",
    "counterparty.email",
    "counterparty.phone",
    "counterparty.address",
    "counterparty.address.postal_code",
    "counterparty.address.line1",
    "counterparty.address.city",
    "counterparty.address.region",
    "counterparty.address.country",
)

# RFC: 3 (company) or 4 (person) letters, a yymmdd date, a 3-character homoclave
_RFC = re.compile(r"^[A-ZÑ&]{3,4}\d{6}[A-Z0-9]{3}$")
_ZIP = re.compile(r"^\d{5}$")
_TAX_SYSTEM = re.compile(r"^\d{3}$")
_PRODUCT_KEY = re.compile(r"^\d{8}$")
_PAYMENT_FORM = re.compile(r"^\d{2}$")
_USE = re.compile(r"^[A-Z]{1,2}\d{2}$")
_TAXABILITY = re.compile(r"^0[1-8]$")
#: an e-mail address as the spec's ``format: email`` means it (one @, a dot in the domain, no spaces)
EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
#: ``external_id`` is searchable (``GET /invoices?external_id=``) only up to the spec's 100 characters
MAX_EXTERNAL_ID = 100
_EXPORT = frozenset({"01", "02", "03", "04"})
_GLOBAL_REQUIRED = ("periodicity", "months", "year")
_TAX_TYPES = frozenset({"IVA", "ISR", "IEPS"})
_FACTORS = frozenset({"Tasa", "Cuota", "Exento"})
#: customer options that belong to the address object
_ADDRESS_OPTIONS = frozenset({"exterior", "interior", "neighborhood", "municipality", "street", "city", "state"})
#: the counterparty's provider_options that go into the customer's address
ADDRESS_OPTIONS = _ADDRESS_OPTIONS
#: line-item options that belong to the item, not to its product
_ITEM_OPTIONS = frozenset({"discount", "customs_keys", "complement", "parts", "third_party", "property_tax_account"})
#: body fields billkit writes itself; provider_options cannot replace them
_OWNED = frozenset({"customer", "items", "currency", "external_id", "date"})


#: how the validators report a problem: ``report(field_path, message)``
Report = Callable[[str, str], None]


def new_idempotency_key() -> str:
    """A fresh key for one logical create (``bk-`` + 32 hex), reused on every retry of that create."""
    return "bk-" + uuid.uuid4().hex


def to_status(raw: str | None, *, amount_due: Decimal | None = None, total: Decimal | None = None) -> BillStatus:
    """The common status of a Facturapi ``status`` (see the module's table)."""
    if raw is None:
        return BillStatus.UNKNOWN
    common = STATUS_TABLE.get(raw.strip().lower(), BillStatus.UNKNOWN)
    if common is BillStatus.OPEN and amount_due is not None:
        if amount_due <= 0:
            return BillStatus.PAID
        if total is not None and amount_due < total:
            return BillStatus.PARTIALLY_PAID
    return common


# -- Bill -> request ---------------------------------------------------------------------------------------


def build_request(
    bill: Bill, *, today: dt.date, idempotency_key: str | None = None, prefix: str = ""
) -> InvoiceRequest:
    """The ``POST /invoices`` body for ``bill``. Every problem is collected into one ValidationError (field paths
    in billkit's terms, prefixed with ``prefix`` for bulks); nothing is sent."""
    return prepare_request(bill, today=today, idempotency_key=idempotency_key, prefix=prefix)[0]


def prepare_request(
    bill: Bill, *, today: dt.date, idempotency_key: str | None = None, prefix: str = ""
) -> tuple[InvoiceRequest, bytes]:
    """:func:`build_request` and the body's JSON bytes (Decimals exact), each made once."""
    if bill.direction is not Direction.RECEIVABLE:
        raise UnsupportedFeatureError(PROVIDER, f"direction={bill.direction.value}",
                                      "Facturapi issues invoices to customers (receivable)")  # fmt: skip
    check_supported(bill, PROVIDER, SUPPORTED)
    problems: list[Problem] = []

    def problem(path: str, message: str) -> None:
        problems.append(Problem(prefix + path, message))

    options = dict(bill.provider_options)
    for owned in sorted(_OWNED & options.keys()):
        problem(f"provider_options.{owned}", "billkit writes this field from the bill; set the common field")
    if "async" in options:
        problem("provider_options.async", "async is a query parameter: use client.submit() for async stamping")

    if bill.reference is not None and len(bill.reference) > MAX_EXTERNAL_ID:
        problem(
            "reference", f"at most {MAX_EXTERNAL_ID} characters (Facturapi's external_id); got {len(bill.reference)}"
        )
    customer = _customer(bill.counterparty, problem)
    currency = _currency(bill, options, problem)
    items = _items(bill, currency, problem)
    _check_codes(options, problem)
    date = _date(bill.issue_date, today, problem)
    key = options.pop("idempotency_key", None) or idempotency_key or new_idempotency_key()
    if problems:
        raise ValidationError(problems, provider=PROVIDER)
    assert customer is not None
    body: dict[str, Any] = {
        "customer": customer,
        "items": items,
        "currency": currency,
        "external_id": bill.reference,
        "date": date,
        "idempotency_key": str(key),
        **{k: v for k, v in options.items() if k not in _OWNED},
    }
    if currency == "MXN":
        body.pop("exchange", None)
    try:
        request = InvoiceRequest.model_validate(body)
    except pydantic.ValidationError as exc:
        raise ValidationError(
            [
                Problem(prefix + "provider_options." + ".".join(str(p) for p in e["loc"]), e["msg"])
                for e in exc.errors()
            ],
            provider=PROVIDER,
        ) from None
    return request, encode_body(request.to_json(), provider=PROVIDER, prefix=prefix)


def _customer(party: Party | None, problem: Report) -> CustomerInput | str | None:
    if party is None:
        problem("counterparty", "Facturapi needs the customer: a Party with name, tax_id, tax_system and zip, "
                                "or provider_id of a saved customer")  # fmt: skip
        return None
    if party.provider_id:
        extra = [f for f in ("name", "tax_id", "email", "phone", "address") if getattr(party, f)]
        if extra:
            problem("counterparty", f"give either provider_id or the customer's data, not both ({', '.join(extra)})")
        return party.provider_id
    options = dict(party.provider_options)
    tax_system = str(options.pop("tax_system", "") or "")
    if not party.name:
        problem("counterparty.name", "required: the customer's legal name (without S.A. de C.V.)")
    if not party.tax_id:
        problem("counterparty.tax_id", "required: the customer's RFC")
    elif not _RFC.match(party.tax_id):
        shape = "12 characters for a company, 13 for a person, upper case"
        problem("counterparty.tax_id", f"{party.tax_id!r} is not an RFC ({shape})")
    if not tax_system:
        problem("counterparty.provider_options.tax_system", "required: the SAT tax regime, 3 digits such as '601'")
    elif not _TAX_SYSTEM.match(tax_system):
        problem("counterparty.provider_options.tax_system", f"{tax_system!r} is not a 3-digit SAT tax regime")
    if party.email is not None and not EMAIL.match(party.email):
        problem("counterparty.email", f"{party.email!r} is not an e-mail address")
    address = party.address or Address()
    zip_code = address.postal_code or ""
    if not zip_code:
        problem("counterparty.address.postal_code", "required: the customer's fiscal postal code (5 digits)")
    elif not _ZIP.match(zip_code):
        problem("counterparty.address.postal_code", f"{zip_code!r} is not a 5-digit Mexican postal code")
    country = address.country
    if country is not None:
        country = "MEX" if country.upper() == "MX" else country.upper()
        if len(country) != 3 or not country.isalpha():
            problem("counterparty.address.country", f"{address.country!r}: Facturapi wants ISO 3166 alpha-3 (MEX)")
    address_options = {k: options.pop(k) for k in sorted(_ADDRESS_OPTIONS & options.keys())}
    try:
        return CustomerInput.model_validate(
            {
                "legal_name": party.name or "",
                "tax_id": party.tax_id or "",
                "tax_system": tax_system,
                "email": party.email,
                "phone": party.phone,
                "address": AddressInput.model_validate(
                    {
                        "zip": zip_code,
                        "street": address.line1,
                        "city": address.city,
                        "state": address.region,
                        "country": country,
                        **address_options,
                    }
                ),
                **options,
            }
        )
    except pydantic.ValidationError as exc:
        for err in exc.errors():
            problem("counterparty.provider_options." + ".".join(str(p) for p in err["loc"]), err["msg"])
        return None


def customer_input(party: Party) -> CustomerInput:
    """The ``POST /customers`` body for ``party`` (same rules as an invoice's inline customer)."""
    problems: list[Problem] = []
    built = _customer(party.model_copy(update={"provider_id": None}), lambda p, m: problems.append(Problem(p, m)))
    if problems or not isinstance(built, CustomerInput):
        raise ValidationError(problems or [Problem("counterparty", "not a customer")], provider=PROVIDER)
    return built


def _currency(bill: Bill, options: Mapping[str, Any], problem: Report) -> str:
    if bill.total is not None:  # pragma: no cover - check_supported refuses total first
        problem("total", "Facturapi computes the total from the items")
    currencies = sorted({item.unit_price.currency for item in bill.line_items})
    if len(currencies) > 1:
        problem("line_items[].unit_price", f"one currency per invoice, got {', '.join(currencies)}")
    currency = currencies[0] if currencies else "MXN"
    if currency != "MXN":
        exchange = options.get("exchange")
        if exchange is None:
            problem("provider_options.exchange", f"required for {currency}: MXN per 1 {currency}, as a Decimal")
        elif isinstance(exchange, (float, bool)) or not isinstance(exchange, (Decimal, int, str)):
            problem("provider_options.exchange", "give the exchange rate as a Decimal or a decimal string")
        else:
            try:
                if Decimal(str(exchange)) <= 0:
                    problem("provider_options.exchange", "must be greater than 0")
            except ArithmeticError:
                problem("provider_options.exchange", f"{exchange!r} is not a number")
    return currency


def _items(bill: Bill, currency: str, problem: Report) -> list[ItemInput]:
    if not bill.line_items:
        problem("line_items", "at least one line item is required")
        return []
    if len(bill.line_items) > MAX_ITEMS:
        problem("line_items", f"{len(bill.line_items)} items; Facturapi takes at most {MAX_ITEMS} per invoice")
        return []
    out: list[ItemInput] = []
    for i, item in enumerate(bill.line_items):
        built = _item(item, f"line_items[{i}]", problem)
        if built is not None:
            out.append(built)
    return out


def _item(item: LineItem, path: str, problem: Report) -> ItemInput | None:
    options = dict(item.provider_options)
    item_fields = {k: options.pop(k) for k in sorted(_ITEM_OPTIONS & options.keys())}
    product_key = str(options.pop("product_key", "") or "")
    bad = False
    if not product_key:
        problem(f"{path}.provider_options.product_key", "required: the SAT product key (ClaveProdServ, 8 digits)")
        bad = True
    elif not _PRODUCT_KEY.match(product_key):
        problem(f"{path}.provider_options.product_key", f"{product_key!r} is not an 8-digit SAT product key")
        bad = True
    if not item.description.strip():
        problem(f"{path}.description", "required")
        bad = True
    if item.quantity <= 0:
        problem(f"{path}.quantity", "must be greater than 0")
        bad = True
    if item.unit_price.amount < 0:
        problem(f"{path}.unit_price", "must not be negative")
        bad = True
    taxes = [_tax(tax, f"{path}.taxes[{j}]", problem) for j, tax in enumerate(item.taxes)]
    transferred = {t.included for t in item.taxes if not t.withholding}
    if len(transferred) > 1:
        problem(f"{path}.taxes", "the transferred taxes of one item must agree on included (Facturapi's "
                                 "tax_included is per product)")  # fmt: skip
        bad = True
    taxability = options.pop("taxability", None)
    if taxability is not None and not _TAXABILITY.match(str(taxability)):
        problem(f"{path}.provider_options.taxability", f"{taxability!r} is not a SAT taxability code 01..08")
        bad = True
    if not item.taxes and taxability is None:
        taxability = "01"  # see the module docstring: never let Facturapi add a tax the bill does not have
    if bad or any(t is None for t in taxes):
        return None
    try:
        product = ProductInput.model_validate(
            {
                "description": item.description,
                "product_key": product_key,
                "price": item.unit_price.amount,
                "tax_included": transferred == {True},
                "taxability": taxability,
                "taxes": taxes,
                **options,
            }
        )
        return ItemInput.model_validate({"quantity": item.quantity, "product": product, **item_fields})
    except pydantic.ValidationError as exc:
        for err in exc.errors():
            problem(f"{path}.provider_options." + ".".join(str(p) for p in err["loc"]), err["msg"])
        return None


def _tax(tax: Tax, path: str, problem: Report) -> TaxInput | None:
    kind = tax.type.upper()
    if kind not in _TAX_TYPES:
        problem(f"{path}.type", f"{tax.type!r}: Facturapi taxes are IVA, ISR or IEPS (local taxes go through "
                                "provider_options local_taxes)")  # fmt: skip
        return None
    if tax.rate < 0 or tax.rate > 1:
        problem(f"{path}.rate", f"{tax.rate} is not a fraction between 0 and 1 (16 % is Decimal('0.16'))")
        return None
    return TaxInput(type=kind, rate=tax.rate, withholding=True if tax.withholding else None)


def _check_codes(options: Mapping[str, Any], problem: Report) -> None:
    form = options.get("payment_form")
    if form is None or form == "":
        problem("provider_options.payment_form", "required: the SAT payment form, 2 digits ('03' transfer, "
                                                 "'28' debit card, '99' to be defined)")  # fmt: skip
    elif not _PAYMENT_FORM.match(str(form)):
        problem("provider_options.payment_form", f"{form!r} is not a 2-digit SAT payment form")
    method = options.get("payment_method")
    if method is not None and method not in ("PUE", "PPD"):
        problem("provider_options.payment_method", f"{method!r}: PUE (one payment) or PPD (in installments)")
    use = options.get("use")
    if use is not None and not _USE.match(str(use)):
        problem("provider_options.use", f"{use!r} is not a SAT CFDI use such as 'G01' or 'G03'")
    kind = options.get("type")
    if kind is not None and kind != "I":
        problem("provider_options.type", "billkit builds income invoices (type 'I') from a Bill; use client.native "
                                         "for other CFDI types")  # fmt: skip
    series = options.get("series")
    if series is not None and len(str(series)) > 25:
        problem("provider_options.series", "at most 25 characters")
    conditions = options.get("conditions")
    if conditions is not None and not (isinstance(conditions, str) and 1 <= len(conditions) <= 1000):
        problem("provider_options.conditions", "1 to 1000 characters of text (leave it out for none)")
    export = options.get("export")
    if export is not None and export not in _EXPORT:
        problem("provider_options.export", f"{export!r}: one of {', '.join(sorted(_EXPORT))}")
    global_ = options.get("global")
    if global_ is not None:
        missing = [k for k in _GLOBAL_REQUIRED if not isinstance(global_, Mapping) or global_.get(k) is None]
        if missing:
            problem("provider_options.global", f"a global invoice needs {', '.join(missing)}")
    folio = options.get("folio_number")
    if folio is not None and (isinstance(folio, bool) or not isinstance(folio, int) or folio < 1):
        problem("provider_options.folio_number", f"{folio!r}: a whole number from 1")


def _date(issue: dt.date | None, today: dt.date, problem: Report) -> str | None:
    if issue is None or issue == today:
        return None
    if issue > today:
        problem("issue_date", f"{issue} is in the future; Facturapi refuses dates after now")
        return None
    if (today - issue).days > 2:
        problem("issue_date", f"{issue} is more than 72 hours ago; Facturapi refuses such dates")
        return None
    return f"{issue.isoformat()}T23:59:59-06:00"


# -- response -> Bill --------------------------------------------------------------------------------------

M = TypeVar("M", bound=pydantic.BaseModel)


def read(model: type[M], data: Any, response: Response | None = None) -> M:
    """Parse a provider body into ``model``; a body of the wrong shape becomes an :class:`APIError` (never a
    pydantic exception), with the HTTP status and log id when the response is given."""
    return read_model(model, data, provider=PROVIDER, response=response)


def _money(amount: Decimal | None, currency: str | None) -> Money | None:
    if amount is None or currency is None:
        return None
    try:
        exponent(currency)
        return Money(amount, currency)
    except BillkitError:
        return None


def to_bill(raw: Any, response: Response | None = None) -> Bill:
    """A common Bill from an invoice body (``raw`` is kept whole; unknown fields and statuses survive)."""
    invoice = read(Invoice, raw, response)
    currency = (invoice.currency or "MXN").upper()
    total = _money(invoice.total, currency)
    due = _money(invoice.amount_due, currency)
    status = to_status(invoice.status, amount_due=invoice.amount_due, total=invoice.total)
    links = {k: v for k, v in {"verification_url": invoice.verification_url}.items() if v}
    paid = None
    if total is not None and due is not None:
        paid = Money(max(Decimal(0), total.amount - due.amount), currency)
    elif total is not None and status is BillStatus.PAID:
        paid = total
    return Bill(
        counterparty=_party(invoice),
        reference=invoice.external_id,
        issue_date=_date_of(invoice.date),
        line_items=_line_items(invoice, currency),
        total=total,
        provider=PROVIDER,
        provider_id=invoice.id,
        status=status,
        provider_status=invoice.status,
        amount_due=due if due is not None else (total if status is BillStatus.OPEN else None),
        amount_paid=paid,
        created_at=parse_datetime(invoice.created_at),
        links=links,
        raw=dict(raw) if isinstance(raw, Mapping) else None,
    )


def _date_of(value: str | None) -> dt.date | None:
    parsed = parse_datetime(value)
    return parsed.date() if parsed is not None else None


def _party(invoice: Invoice) -> Party | None:
    customer = invoice.customer
    if customer is None:
        return None
    if isinstance(customer, str):
        return Party(provider_id=customer)
    address = None
    if customer.address is not None:
        address = Address(postal_code=customer.address.zip, line1=customer.address.street,
                          city=customer.address.city, region=customer.address.state,
                          country=customer.address.country)  # fmt: skip
    try:
        return Party(name=customer.legal_name, tax_id=customer.tax_id, email=customer.email, phone=customer.phone,
                     provider_id=customer.id, address=address,
                     provider_options={"tax_system": customer.tax_system} if customer.tax_system else {})  # fmt: skip
    except BillkitError:
        return Party(provider_id=customer.id)


def _line_items(invoice: Invoice, currency: str) -> tuple[LineItem, ...]:
    """The invoice's items as LineItems, when they read cleanly (otherwise they stay in ``raw`` only)."""
    out: list[LineItem] = []
    for item in invoice.items or ():
        product = item.product
        if not isinstance(product, InvoiceProduct):
            return ()
        try:
            taxes = tuple(
                Tax(type=str(t.get("type") or "IVA"), rate=t["rate"], withholding=bool(t.get("withholding")),
                    included=bool(product.tax_included is not False) and not t.get("withholding"))
                for t in product.taxes or ()
            )  # fmt: skip
            out.append(
                LineItem(description=product.description or "", quantity=item.quantity or Decimal(1),
                         unit_price=Money(product.price if product.price is not None else Decimal(0), currency),
                         taxes=taxes,
                         provider_options={"product_key": product.product_key} if product.product_key else {})
            )  # fmt: skip
        except (BillkitError, KeyError, TypeError, ArithmeticError):
            return ()
    return tuple(out)


# -- errors ------------------------------------------------------------------------------------------------

#: root codes after which the same request may be sent again (the server refused before acting)
_RETRYABLE_CODES = frozenset({"idempotency_key_in_use"})


def error_from_response(response: Response) -> APIError:
    """``GenericError`` (``{ok, message, status, code, location, path, errors[]}``) to a typed APIError.

    ``code`` may be missing or an int (bodies from before 2026-07) and the body may not be JSON at all; the
    message then falls back to the text. ``X-Facturapi-Log-Id`` is the request id. ``idempotency_key_in_use``
    (another request holds the key) is marked retryable: the same body with the same key is sent again later.
    """
    data = response.json_or_none()
    body: ErrorBody | None = None
    if isinstance(data, Mapping):
        try:
            body = ErrorBody.model_validate(data)
        except pydantic.ValidationError:
            body = None
    message = body.message if body is not None and body.message else None
    if message is None:
        text = response.text.strip()
        message = text[:500] if text else f"HTTP {response.status_code} with an empty body"
    if body is not None and body.path:
        message = f"{message} ({body.location + ': ' if body.location else ''}{body.path})"
    if body is not None and body.errors:
        details = "; ".join(f"{e.path}: {e.message}" if e.path else str(e.message) for e in body.errors if e.message)
        if details and details not in message:
            message = f"{message} [{details}]"
    code = str(body.code) if body is not None and body.code is not None else None
    error = default_error(PROVIDER, response, code=code, message=message)
    if error.raw is None and response.content:
        error.raw = response.text[:2000]
    if code in _RETRYABLE_CODES:
        error.retryable = True
    return error

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
import pydantic_core

from billkit.errors import APIError, BillkitError, Problem, UnsupportedFeatureError, ValidationError
from billkit.models import Address, Bill, BillStatus, Direction, LineItem, Party, Tax, check_supported
from billkit.money import Money, exponent, loads_decimal
from billkit.providers.facturapi.wire import (
    AddressInput,
    Customer,
    CustomerInput,
    ErrorBody,
    Invoice,
    InvoiceProduct,
    InvoiceRequest,
    ItemInput,
    ProductInput,
    parse_datetime,
)
from billkit.transport import Response, default_error, encode_body, read_model

__all__ = [
    "ADDRESS_OPTIONS",
    "MAX_ITEMS",
    "PROVIDER",
    "STATUS_TABLE",
    "SUPPORTED",
    "Prepared",
    "build_request",
    "customer_input",
    "customer_party",
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
#: the address fields in the wire model's order (the plain path writes them so)
_ADDRESS_ORDER = tuple(AddressInput.model_fields)
#: line-item options the plain path writes as they are (strings), in ProductInput's order
_PLAIN_PRODUCT_ORDER = ("unit_key", "unit_name", "sku")
_PLAIN_PRODUCT_OPTIONS = frozenset(_PLAIN_PRODUCT_ORDER)
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
    request = _model(_checked(bill, today, idempotency_key, prefix), prefix)
    encode_body(request.to_json(), provider=PROVIDER, prefix=prefix)  # what provider_options brought must be sendable
    return request


class Prepared:
    """A create ready to send: its idempotency key, its ``external_id`` and its JSON bytes (encoded once). The wire
    model (:attr:`request`) is built only when asked for: the plain path never needs it."""

    __slots__ = ("_request", "body", "external_id", "idempotency_key")

    def __init__(self, idempotency_key: str, external_id: str | None, body: bytes,
                 request: InvoiceRequest | None = None) -> None:  # fmt: skip
        self.idempotency_key = idempotency_key
        self.external_id = external_id
        self.body = body
        self._request = request

    @property
    def request(self) -> InvoiceRequest:
        """The body as the wire model (read back from the bytes sent, Decimals exact)."""
        if self._request is None:
            self._request = InvoiceRequest.model_validate(loads_decimal(self.body))
        return self._request


def prepare_request(bill: Bill, *, today: dt.date, idempotency_key: str | None = None, prefix: str = "") -> Prepared:
    """:func:`build_request`'s checks, then the body's JSON bytes (Decimals exact), each made once. When every part
    of the body is one the checks cover whole (the common case: string codes in ``provider_options``), the body is
    written from the checked values without the wire models; otherwise the wire models check the shapes of what
    ``provider_options`` brought first, exactly as :func:`build_request` does (a test holds both to the same
    bytes)."""
    parts = _checked(bill, today, idempotency_key, prefix)
    body = _plain_body(parts)
    if body is not None:
        encoded = _encode_plain(body)
        if encoded is not None:
            return Prepared(body["idempotency_key"], bill.reference, encoded)
    request = _model(parts, prefix)
    encoded = encode_body(request.to_json(), provider=PROVIDER, prefix=prefix)
    return Prepared(request.idempotency_key or "", request.external_id, encoded, request)


#: what :func:`_checked` gives: the body's fields, the customer and the items as wire models or as plain dicts
_Parts = tuple[dict[str, Any], bool]


def _checked(bill: Bill, today: dt.date, idempotency_key: str | None, prefix: str) -> _Parts:
    """Every check of ``bill`` (one ValidationError lists every problem), then the body's fields: the customer and
    each item are plain dicts when the checks covered them whole, else wire models; ``True`` with them when the
    whole body can be written as it is (see :func:`_plain_body`)."""
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
    plain = (not isinstance(customer, CustomerInput)) and all(type(item) is dict for item in items)
    return body, plain and all(type(options[k]) in _PLAIN_OPTIONS.get(k, ()) for k in options.keys() & body.keys())


def _model(parts: _Parts, prefix: str) -> InvoiceRequest:
    try:
        return InvoiceRequest.model_validate(parts[0])
    except pydantic.ValidationError as exc:
        raise ValidationError(
            [
                Problem(prefix + "provider_options." + ".".join(str(p) for p in e["loc"]), e["msg"])
                for e in exc.errors()
            ],
            provider=PROVIDER,
        ) from None


#: the invoice options the plain path writes as they are, with the types the wire model keeps unchanged (any
#: other option, or another type, goes through the wire model)
_PLAIN_OPTIONS: dict[str, tuple[type, ...]] = {
    "payment_form": (str,), "payment_method": (str,), "use": (str,), "type": (str,), "conditions": (str,),
    "series": (str,), "folio_number": (int,), "exchange": (Decimal,),
}  # fmt: skip
_INVOICE_ORDER = tuple(InvoiceRequest.model_fields)


def _plain_body(parts: _Parts) -> dict[str, Any] | None:
    """The body in the wire model's field order with ``None`` left out (what ``InvoiceRequest.to_json()`` gives
    for it), when every part of it is plain; else None."""
    fields, plain = parts
    if not plain:
        return None
    return {k: fields[k] for k in _INVOICE_ORDER if fields.get(k) is not None}


def _encode_plain(body: dict[str, Any]) -> bytes | None:
    """``body`` (a plain body: strings, bools, small ints, and Decimals where the wire model has them) as
    :func:`~billkit.transport.dumps` writes it, by pydantic-core's encoder (the same escapes; a test holds them to
    the same bytes): each Decimal goes in as a placeholder, which is then replaced by its exact digits. None when a
    number is out of what ``dumps`` sends or a string of the body is the placeholder itself: then the general
    path writes it, or says why it cannot."""
    numbers: list[bytes] = []

    def number(value: Any) -> str:
        if type(value) is not Decimal or not value.is_finite():
            raise TypeError
        exp = value.as_tuple().exponent
        if isinstance(exp, int) and (exp < -100 or exp > 100 or (value and abs(value.adjusted()) > 100)):
            raise TypeError
        numbers.append(format(value, "f").encode())
        return "\x00"

    try:  # in the order they are written: each item's quantity, price and tax rates, then the exchange rate
        items = []
        for item in body["items"]:
            quantity = number(item["quantity"])
            product = dict(item["product"])
            product["price"] = number(product["price"])
            product["taxes"] = [{**tax, "rate": number(tax["rate"])} for tax in product["taxes"]]
            items.append({"quantity": quantity, "product": product})
        written = {**body, "items": items}
        if "exchange" in body:
            written["exchange"] = number(body["exchange"])
        folio = body.get("folio_number")
        if folio is not None and not 0 < folio < _MAX_FOLIO:
            return None
        text = pydantic_core.to_json(written)
    except (TypeError, ValueError):  # PydanticSerializationError is a ValueError (a lone surrogate, say)
        return None
    pieces = text.split(b'"\\u0000"')
    if len(pieces) != len(numbers) + 1:
        return None
    out = [pieces[0]]
    for digits, piece in zip(numbers, pieces[1:], strict=True):
        out.append(digits)
        out.append(piece)
    return b"".join(out)


#: the plain path writes folio numbers below this (the general encoder refuses whole numbers of 100 digits)
_MAX_FOLIO = 10**18


def _customer(party: Party | None, problem: Report) -> CustomerInput | dict[str, Any] | str | None:
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
    if not options and all(type(v) is str for v in address_options.values()):
        # plain: every field is a checked string (what CustomerInput keeps as it is), in the wire model's order
        merged = {"zip": zip_code, "street": address.line1, "city": address.city, "state": address.region,
                  "country": country, **address_options}  # fmt: skip
        plain = {"legal_name": party.name or "", "tax_id": party.tax_id or "", "tax_system": tax_system,
                 "address": {k: merged[k] for k in _ADDRESS_ORDER if merged.get(k) is not None}}  # fmt: skip
        if party.email is not None:
            plain["email"] = party.email
        if party.phone is not None:
            plain["phone"] = party.phone
        return plain
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
    if type(built) is dict and not problems:  # the plain form of a customer the checks covered whole
        built = CustomerInput.model_validate(built)
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


def _items(bill: Bill, currency: str, problem: Report) -> list[ItemInput | dict[str, Any]]:
    if not bill.line_items:
        problem("line_items", "at least one line item is required")
        return []
    if len(bill.line_items) > MAX_ITEMS:
        problem("line_items", f"{len(bill.line_items)} items; Facturapi takes at most {MAX_ITEMS} per invoice")
        return []
    out: list[ItemInput | dict[str, Any]] = []
    for i, item in enumerate(bill.line_items):
        built = _item(item, f"line_items[{i}]", problem)
        if built is not None:
            out.append(built)
    return out


def _item(item: LineItem, path: str, problem: Report) -> ItemInput | dict[str, Any] | None:
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
    if not item_fields and options.keys() <= _PLAIN_PRODUCT_OPTIONS and all(type(v) is str for v in options.values()) \
            and (taxability is None or type(taxability) is str):  # fmt: skip
        # plain: checked values of the types ProductInput and ItemInput keep as they are, in their field order
        product_body: dict[str, Any] = {"description": item.description, "product_key": product_key,
                                        "price": item.unit_price.amount,
                                        "tax_included": transferred == {True}}  # fmt: skip
        if taxability is not None:
            product_body["taxability"] = taxability
        product_body["taxes"] = taxes
        for name in _PLAIN_PRODUCT_ORDER:
            if name in options:
                product_body[name] = options[name]
        return {"quantity": item.quantity, "product": product_body}
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


def _tax(tax: Tax, path: str, problem: Report) -> dict[str, Any] | None:
    kind = tax.type.upper()
    if kind not in _TAX_TYPES:
        problem(f"{path}.type", f"{tax.type!r}: Facturapi taxes are IVA, ISR or IEPS (local taxes go through "
                                "provider_options local_taxes)")  # fmt: skip
        return None
    if tax.rate < 0 or tax.rate > 1:
        problem(f"{path}.rate", f"{tax.rate} is not a fraction between 0 and 1 (16 % is Decimal('0.16'))")
        return None
    # what TaxInput(type=kind, rate=tax.rate, withholding=True or None) dumps: a checked str and Decimal
    return {"type": kind, "rate": tax.rate, **({"withholding": True} if tax.withholding else {})}


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
    return customer_party(customer)


def customer_party(customer: Customer) -> Party:
    """A saved or embedded Facturapi customer as a common Party (``tax_system`` in ``provider_options``); one whose
    data the common model refuses keeps only its id."""
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

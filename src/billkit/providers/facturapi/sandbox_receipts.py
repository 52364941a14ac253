"""The Facturapi sandbox's receipt routes: ``/receipts`` (create, list, read, assign a customer, cancel, PDF,
e-mail), invoicing one receipt to a customer, several by ``key`` (with the dry run and the PDF preview) and the
global invoice of a period's open receipts.

Written from the spec's descriptions and Facturapi's error codes, not from billkit's client checks:

* **A receipt** needs 1 to 5,000 valid items (a saved product's id is read from ``/products``) and a 2-digit
  ``payment_form``; its total is computed as an invoice's (each tax rounded to cents). It gets a ``key``, a
  ``self_invoice_url`` and ``expires_at`` :attr:`RECEIPT_LIFETIME` after its ``date`` (the spec's example: seven
  days; on the real API it comes from the organization's settings). ``idempotency_key`` is honoured as on invoices:
  a key that made a receipt answers 200 with it; :meth:`FacturapiSandbox.key_in_use` makes the next creates 409.
* **Only an open receipt** can be cancelled, assigned a customer or invoiced: otherwise 400 ``receipt_not_open``
  (the spec lists no 409 on these paths). Invoicing one to a customer also refuses an expired receipt (400
  ``receipt_expired``) and one with no customer when none is sent. The invoice carries the receipt's items,
  currency and payment form; the receipt becomes ``invoiced_to_customer`` with ``invoice`` set.
* **To-invoice by keys**: an unknown key is 400 ``receipt_keys_not_found``; without ``customer`` the receipts must
  share one (400 ``receipt_invoicing_customer_mismatch``); one currency. ``dry_run`` answers a summary (the spec
  gives it no fields; the sandbox sends ``dry_run``, ``receipts``, ``total``, ``currency``) and changes nothing. The
  PDF preview answers 204 when no receipt among the keys is open.
* **The global invoice** needs ``periodicity``, ``months``, ``year`` and (a sandbox limit: the real API defaults
  them from the organization's settings) ``from`` and ``to``; the period must fit the periodicity (400
  ``invalid_global_invoice_period``, same rules as billkit's client). It takes the open receipts dated ``from`` to
  ``to`` (inclusive; only ``payment_form``'s when given), or exactly the ``receipts`` listed, each of which must be
  such a receipt (400 listing the others: a choice, Facturapi does not say). None: 400 ``invalid_request``. It is
  issued to ``PUBLICO EN GENERAL`` (``XAXX010101000``, regime ``616``, use ``S01``, PUE), with the receipts' items
  (so its total is exactly the sum of theirs), ``global`` ``{periodicity, months, year}`` and the payment form given
  or the one with the largest amount; the receipts become ``invoiced_globally`` with ``invoice`` set and the public
  customer assigned. Facturapi refuses unknown fields, and the spec gives this body no ``idempotency_key``: the
  sandbox refuses one (400 ``unknown_field``), so a client that sends it fails here as it would there.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import operator
from collections.abc import Mapping
from decimal import Decimal
from typing import TYPE_CHECKING, Any

import httpx

if TYPE_CHECKING:
    from billkit.providers.facturapi.sandbox import FacturapiSandbox

__all__ = ["PUBLIC_TAX_ID", "RECEIPT_LIFETIME", "ReceiptBook", "book", "route"]

Problems = list[tuple[str, str, str]]
#: how long a receipt may be self-invoiced (the spec's example: seven days)
RECEIPT_LIFETIME = dt.timedelta(days=7)
PUBLIC_TAX_ID = "XAXX010101000"
ISSUER_ZIP = "42501"
MEXICO_CITY = dt.timezone(dt.timedelta(hours=-6), "America/Mexico_City")
MAX_ITEMS = 5000
MAX_KEYS = 1000
_PERIODICITIES = ("day", "week", "fortnight", "month", "two_months")
_SPAN = {"day": 1, "week": 7, "fortnight": 16, "month": 31, "two_months": 62}
_GLOBAL_FIELDS = frozenset({"from", "to", "periodicity", "months", "year", "folio_number", "series", "date",
                            "payment_form", "receipts"})  # fmt: skip
_MESSAGES = {
    "receipt_not_found": "No se encontró el recibo",
    "receipt_not_open": "El recibo no está abierto",
    "receipt_expired": "El recibo ha expirado",
    "receipt_keys_not_found": "No se encontraron recibos con las claves indicadas",
    "receipt_invoicing_customer_mismatch": "Los recibos no tienen el mismo cliente",
    "invalid_global_invoice_period": "El periodo no corresponde con la periodicidad",
}


class ReceiptBook:
    """The sandbox's receipts: by id, and the idempotency keys that made them."""

    def __init__(self) -> None:
        self.receipts: dict[str, dict[str, Any]] = {}
        self.keys: dict[str, str] = {}
        self.folio = 0


def book(box: FacturapiSandbox) -> ReceiptBook:
    """The receipts of ``box`` (kept in its ``__dict__``, so a saved sandbox keeps them)."""
    found = box.__dict__.get("_receipt_book")
    if not isinstance(found, ReceiptBook):
        found = ReceiptBook()
        box.__dict__["_receipt_book"] = found
    return found


def _fail(box: FacturapiSandbox, status: int, code: str, **kwargs: Any) -> httpx.Response:
    kwargs.setdefault("message", _MESSAGES.get(code))
    return box._fail(status, code, **kwargs)


def _parse(value: Any) -> dt.datetime | None:
    if not isinstance(value, str):
        return None
    try:
        parsed = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=dt.timezone.utc)


def _iso(when: dt.datetime) -> str:
    utc = when.astimezone(dt.timezone.utc)
    return utc.strftime("%Y-%m-%dT%H:%M:%S.") + f"{utc.microsecond // 1000:03d}Z"


def _now(box: FacturapiSandbox) -> dt.datetime:
    return dt.datetime.fromtimestamp(box.clock.wall(), tz=dt.timezone.utc)


# -- receipts -------------------------------------------------------------------------------------------------------


def _items(box: FacturapiSandbox, items: Any) -> tuple[list[dict[str, Any]], Problems]:
    if not isinstance(items, list) or not items:
        return [], [("items", "required", "se requiere al menos un concepto")]
    if len(items) > MAX_ITEMS:
        return [], [("items", "too_large", f"a lo más {MAX_ITEMS} conceptos")]
    out: list[dict[str, Any]] = []
    problems: Problems = []
    for i, item in enumerate(items):
        if isinstance(item, dict) and isinstance(item.get("product"), str):
            saved = box.products.get(item["product"])
            if saved is None:
                problems.append((f"items[{i}].product", "not_found", f"no existe el producto {item['product']}"))
                continue
            item = {**item, "product": {k: saved[k] for k in saved if k not in ("id", "created_at", "livemode")}}
        problems.extend(box._item_problems(item, f"items[{i}]"))
        out.append(dict(item) if isinstance(item, dict) else item)
    return out, problems


def _customer_problems(box: FacturapiSandbox, customer: Any, path: str = "customer") -> Problems:
    if customer is None:
        return []
    if isinstance(customer, str):
        return [] if customer in box.customers else [(path, "not_found", f"no existe el cliente {customer}")]
    return box._customer_problems(customer, f"{path}.")


def _save_customer(box: FacturapiSandbox, data: Any) -> str:
    """The id of a saved customer: ``data`` itself, or a customer made (or found, same tax id and name) from it."""
    if isinstance(data, str):
        return data
    for customer in box.customers.values():
        if customer["tax_id"] == data["tax_id"] and customer["legal_name"] == data["legal_name"]:
            return str(customer["id"])
    customer = {"created_at": box._iso(), "livemode": False, **box._customer_info(data)}
    box.customers[customer["id"]] = customer
    return str(customer["id"])


def _create(box: FacturapiSandbox, body: Any) -> httpx.Response:
    if not isinstance(body, dict):
        return box._invalid([("", "invalid_json", "el cuerpo debe ser un objeto JSON")])
    items, problems = _items(box, body.get("items"))
    form = body.get("payment_form")
    if not isinstance(form, str) or len(form) != 2 or not form.isdigit():
        problems.append(("payment_form", "required", "forma de pago (2 dígitos) es requerida"))
    problems.extend(_customer_problems(box, body.get("customer")))
    currency = body.get("currency", "MXN")
    if currency != "MXN" and (_number(body.get("exchange")) or Decimal(0)) <= 0:
        problems.append(("exchange", "required", "el tipo de cambio es requerido para otra moneda"))
    if "date" in body and _parse(body["date"]) is None:
        problems.append(("date", "invalid_date", "fecha no válida"))
    if problems:
        return box._invalid(problems)
    key = body.get("idempotency_key") or None
    receipts = book(box)
    if isinstance(key, str):
        if box._busy.get(key, 0) > 0:
            box._busy[key] -= 1
            return box._fail(409, "idempotency_key_in_use", location="body", path="idempotency_key")
        if key in receipts.keys:
            return box._ok(200, dict(receipts.receipts[receipts.keys[key]]))
    when = _parse(body.get("date")) or _now(box)
    receipts.folio += 1
    receipt_id = box._new_id()
    short = hashlib.sha256(receipt_id.encode()).hexdigest()[:8]
    customer = body.get("customer")
    receipt: dict[str, Any] = {
        "id": receipt_id,
        "created_at": box._iso(),
        "livemode": False,
        "organization": "5f0c9a1b2c3d4e5f6a7b8c9d",
        "date": _iso(when),
        "expires_at": _iso(when + RECEIPT_LIFETIME),
        "status": "open",
        "key": short,
        "self_invoice_url": f"https://factura.space/billkit-sandbox/{short}",
        "total": sum((box._item_total(i) for i in items), Decimal(0)),
        "invoice": None,
        "customer": _save_customer(box, customer) if customer is not None else None,
        "items": items,
        "payment_form": form,
        "folio_number": body.get("folio_number") or receipts.folio,
        "currency": currency,
        "exchange": body.get("exchange", Decimal(1)),
        "branch": body.get("branch"),
        "external_id": body.get("external_id"),
        "idempotency_key": key,
    }
    receipts.receipts[receipt_id] = receipt
    if isinstance(key, str):
        receipts.keys[key] = receipt_id
    return box._ok(200, dict(receipt))


def _number(value: Any) -> Decimal | None:
    if isinstance(value, bool) or not isinstance(value, (int, Decimal)):
        return None
    return Decimal(value)


def _matches(receipt: Mapping[str, Any], params: Mapping[str, str]) -> bool:
    for name in ("customer", "payment_form", "invoice"):
        if name in params and receipt.get(name) != params[name]:
            return False
    q = (params.get("q") or "").lower()
    if q:
        words = [
            str(part or "").lower()
            for item in receipt.get("items") or ()
            for part in (item.get("product", {}).get("description"), item.get("product", {}).get("sku"))
        ]
        if not any(q in w for w in words):
            return False
    mine = _parse(receipt.get("date"))
    for op, keep in (("gte", operator.ge), ("gt", operator.gt), ("lt", operator.lt), ("lte", operator.le)):
        bound = params.get(f"date[{op}]")
        if bound is not None:
            parsed = _parse(bound)
            if parsed is None:
                raise ValueError(bound)
            if mine is None or not keep(mine, parsed):
                return False
    return True


def _list(box: FacturapiSandbox, params: Mapping[str, str]) -> httpx.Response:
    try:
        found = [r for r in book(box).receipts.values() if _matches(r, params)]
    except ValueError:
        return box._fail(400, "invalid_date", location="query", path="date")
    found.sort(key=lambda r: str(r["date"]), reverse=True)
    return box._page(params, [dict(r) for r in found])


def _open(box: FacturapiSandbox, receipt: Mapping[str, Any]) -> httpx.Response | None:
    if receipt["status"] != "open":
        return _fail(box, 400, "receipt_not_open", location="params", path="receipt_id")
    return None


def _receipt_pdf(box: FacturapiSandbox, receipt: Mapping[str, Any]) -> httpx.Response:
    text = f"Recibo {receipt['folio_number']} clave {receipt['key']} total {receipt['total']} {receipt['currency']}"
    content = b"%PDF-1.4\n% billkit sandbox\n" + text.encode() + b"\n%%EOF\n"
    return httpx.Response(200, content=content, headers={"content-type": "application/pdf",
                                                         "x-facturapi-log-id": box._log_id()})  # fmt: skip


def _email(box: FacturapiSandbox, body: Any) -> httpx.Response:
    emails = body.get("email") if isinstance(body, dict) else None
    if isinstance(emails, list) and not 1 <= len(emails) <= 10:
        return box._invalid([("email", "invalid", "de 1 a 10 correos")])
    return box._ok(200, {"ok": True})


# -- invoices from receipts ----------------------------------------------------------------------------------------


def _issue(box: FacturapiSandbox, receipts: list[dict[str, Any]], body: Mapping[str, Any],
           customer: Any, **fields: Any) -> dict[str, Any]:  # fmt: skip
    """Stamp an invoice of ``receipts``' items to ``customer`` (id or data) and return the stored invoice."""
    first = receipts[0]
    invoice_body: dict[str, Any] = {
        "type": "I",
        "customer": customer,
        "items": [dict(item) for r in receipts for item in r["items"]],
        "payment_form": fields.pop("payment_form", None) or first["payment_form"],
        "payment_method": "PUE",
        "use": fields.pop("use", None) or body.get("use") or "G01",
        "currency": first["currency"],
        "series": body.get("series"),
        "folio_number": body.get("folio_number"),
    }
    if first["currency"] != "MXN":
        invoice_body["exchange"] = first["exchange"]
    info = box._customer_info(customer)
    invoice = box._store(invoice_body, "valid", None, "valid", None, info)
    stored: dict[str, Any] = box.records[invoice["id"]]["invoice"]
    stored.update(fields)
    if body.get("conditions"):
        stored["conditions"] = body["conditions"]
    if body.get("date"):
        stored["date"] = box._date(body["date"])
    return stored


def _to_customer(box: FacturapiSandbox, receipt: dict[str, Any], body: Any) -> httpx.Response:
    if not isinstance(body, dict):
        return box._invalid([("", "invalid_json", "el cuerpo debe ser un objeto JSON")])
    refused = _open(box, receipt)
    if refused is not None:
        return refused
    expires = _parse(receipt.get("expires_at"))
    if expires is not None and _now(box) > expires:
        return _fail(box, 400, "receipt_expired", location="params", path="receipt_id")
    customer = body.get("customer", receipt.get("customer"))
    if customer is None:
        return box._invalid([("customer", "required", "el recibo no tiene cliente: envía uno")])
    problems = _customer_problems(box, customer)
    if problems:
        return box._invalid(problems)
    stored = _issue(box, [receipt], body, customer)
    receipt.update(status="invoiced_to_customer", invoice=stored["id"], customer=stored["customer"].get("id"))
    return box._ok(200, box._view(box.records[stored["id"]]))


def _by_keys(box: FacturapiSandbox, body: Any, *, preview: bool) -> httpx.Response:
    if not isinstance(body, dict):
        return box._invalid([("", "invalid_json", "el cuerpo debe ser un objeto JSON")])
    keys = body.get("keys")
    if not isinstance(keys, list) or not 1 <= len(keys) <= MAX_KEYS or not all(isinstance(k, str) for k in keys):
        return box._invalid([("keys", "invalid", f"de 1 a {MAX_KEYS} claves de recibo")])
    by_key = {r["key"]: r for r in book(box).receipts.values()}
    missing = [k for k in keys if k not in by_key]
    if missing:
        return _fail(box, 400, "receipt_keys_not_found", location="body", path="keys")
    chosen = [by_key[k] for k in keys]
    if preview:
        chosen = [r for r in chosen if r["status"] == "open"]
        if not chosen:
            return httpx.Response(204, headers={"x-facturapi-log-id": box._log_id()})
    for i, receipt in enumerate(chosen):
        if receipt["status"] != "open":
            return _fail(box, 400, "receipt_not_open", location="body", path=f"keys[{i}]")
        expires = _parse(receipt.get("expires_at"))
        if expires is not None and _now(box) > expires:
            return _fail(box, 400, "receipt_expired", location="body", path=f"keys[{i}]")
    customer = body.get("customer")
    if customer is None:
        owners = {r.get("customer") for r in chosen}
        if len(owners) != 1 or None in owners:
            return _fail(box, 400, "receipt_invoicing_customer_mismatch", location="body", path="customer")
        customer = owners.pop()
    problems = _customer_problems(box, customer)
    if len({r["currency"] for r in chosen}) > 1:
        problems.append(("keys", "invalid", "los recibos deben tener la misma moneda"))
    if problems:
        return box._invalid(problems)
    total = sum((Decimal(r["total"]) for r in chosen), Decimal(0))
    if preview:
        text = f"Vista previa: {len(chosen)} recibos, total {total}"
        content = b"%PDF-1.4\n% billkit sandbox preview\n" + text.encode() + b"\n%%EOF\n"
        return httpx.Response(200, content=content, headers={"content-type": "application/pdf",
                                                             "x-facturapi-log-id": box._log_id()})  # fmt: skip
    if body.get("dry_run") is True:
        return box._ok(200, {"dry_run": True, "receipts": [r["id"] for r in chosen], "total": total,
                             "currency": chosen[0]["currency"]})  # fmt: skip
    fields = {"payment_form": body["payment_form"]} if body.get("payment_form") else {}
    stored = _issue(box, chosen, body, customer, **fields)
    for receipt in chosen:
        receipt.update(status="invoiced_to_customer", invoice=stored["id"], customer=stored["customer"].get("id"))
    return box._ok(200, box._view(box.records[stored["id"]]))


def _period_problem(body: Mapping[str, Any], start: dt.datetime, end: dt.datetime) -> str | None:
    periodicity, months, year = body["periodicity"], str(body["months"]), body["year"]
    number = int(months) if months.isdigit() else 0
    two = periodicity == "two_months"
    if not (13 <= number <= 18 if two else 1 <= number <= 12):
        return "months no corresponde con la periodicidad"
    if end <= start or end - start > dt.timedelta(days=_SPAN[periodicity]):
        return "el rango de fechas no corresponde con la periodicidad"
    first, last = start.astimezone(MEXICO_CITY), end.astimezone(MEXICO_CITY)
    if periodicity in ("month", "two_months"):
        allowed = {number} if not two else {2 * (number - 12) - 1, 2 * (number - 12)}
        if {first.month, last.month} - allowed or {first.year, last.year} != {year}:
            return "el rango de fechas no está dentro del mes o bimestre indicado"
    elif (year, number) not in {(first.year, first.month), (last.year, last.month)}:
        return "el mes indicado no corresponde con el rango de fechas"
    if year < 2022:  # CFDI 4.0's global information starts in 2022
        return "el año debe ser 2022 o posterior"
    return None


def _global(box: FacturapiSandbox, body: Any) -> httpx.Response:
    if not isinstance(body, dict):
        return box._invalid([("", "invalid_json", "el cuerpo debe ser un objeto JSON")])
    unknown = sorted(set(body) - _GLOBAL_FIELDS)
    if unknown:
        return box._fail(400, "unknown_field", location="body", path=unknown[0],
                         message=f"Campo no permitido: {unknown[0]}")  # fmt: skip
    problems: Problems = []
    if body.get("periodicity") not in _PERIODICITIES:
        problems.append(("periodicity", "required", "periodicidad no válida"))
    if not isinstance(body.get("months"), str):
        problems.append(("months", "required", "months es requerido"))
    if isinstance(body.get("year"), bool) or not isinstance(body.get("year"), int):
        problems.append(("year", "required", "year es requerido"))
    start, end = _parse(body.get("from")), _parse(body.get("to"))
    if start is None:
        problems.append(("from", "required", "from es requerido (en el sandbox)"))
    if end is None:
        problems.append(("to", "required", "to es requerido (en el sandbox)"))
    form = body.get("payment_form")
    if form is not None and (not isinstance(form, str) or len(form) != 2 or not form.isdigit()):
        problems.append(("payment_form", "invalid", "forma de pago no válida"))
    if problems:
        return box._invalid(problems)
    assert start is not None and end is not None
    why = _period_problem(body, start, end)
    if why is not None:
        return _fail(box, 400, "invalid_global_invoice_period", location="body", path="from", message=why)

    def eligible(receipt: Mapping[str, Any]) -> bool:
        when = _parse(receipt.get("date"))
        return when is not None and start <= when <= end and (form is None or receipt["payment_form"] == form)

    receipts = book(box).receipts
    listed = body.get("receipts")
    if listed is not None:
        if not isinstance(listed, list) or not listed:
            return box._invalid([("receipts", "invalid", "lista de recibos no válida")])
        bad = [(f"receipts[{i}]", "receipt_not_open", f"el recibo {r} no es un recibo abierto del periodo")
               for i, r in enumerate(listed)
               if not isinstance(r, str) or r not in receipts or receipts[r]["status"] != "open"
               or not eligible(receipts[r])]  # fmt: skip
        if bad or len(set(listed)) != len(listed):
            return box._invalid(bad or [("receipts", "invalid", "un recibo está repetido")])
        chosen = [receipts[r] for r in listed]
    else:
        chosen = sorted((r for r in receipts.values() if r["status"] == "open" and eligible(r)),
                        key=lambda r: str(r["date"]))  # fmt: skip
    if not chosen:
        return box._invalid([("from", "invalid", "no hay recibos abiertos en el periodo")])
    if len({r["currency"] for r in chosen}) > 1:
        return box._invalid([("receipts", "invalid", "los recibos deben tener la misma moneda")])
    if form is None:
        amounts: dict[str, Decimal] = {}
        for r in chosen:
            amounts[r["payment_form"]] = amounts.get(r["payment_form"], Decimal(0)) + Decimal(r["total"])
        form = min(amounts, key=lambda f: (-amounts[f], f))  # the SAT's rule: the form of the largest amount
    public = {"legal_name": "PUBLICO EN GENERAL", "tax_id": PUBLIC_TAX_ID, "tax_system": "616",
              "address": {"zip": ISSUER_ZIP}}  # fmt: skip
    customer_id = _save_customer(box, public)
    glob = {"periodicity": body["periodicity"], "months": body["months"], "year": body["year"]}
    stored = _issue(box, chosen, {**body, "use": "S01"}, customer_id, payment_form=form, use="S01", **{"global": glob})
    expected = sum((Decimal(r["total"]) for r in chosen), Decimal(0))
    assert stored["total"] == expected, "the sandbox's global invoice must add up to its receipts"
    for receipt in chosen:
        receipt.update(status="invoiced_globally", invoice=stored["id"], customer=customer_id)
    return box._ok(200, box._view(box.records[stored["id"]]))


# -- routing --------------------------------------------------------------------------------------------------------


def route(
    box: FacturapiSandbox, method: str, path: list[str], params: Mapping[str, str], body: Any
) -> httpx.Response | None:
    """The answer of a ``/receipts`` route, or None for any other path."""
    if not path or path[0] != "receipts":
        return None
    if path == ["receipts"]:
        if method == "POST":
            return _create(box, body)
        if method == "GET":
            return _list(box, params)
        return box._fail(405, "method_not_allowed")
    if path == ["receipts", "global-invoice"] and method == "POST":
        return _global(box, body)
    if path == ["receipts", "to-invoice"] and method == "POST":
        return _by_keys(box, body, preview=False)
    if path == ["receipts", "to-invoice", "preview"] and method == "POST":
        return _by_keys(box, body, preview=True)
    receipt = book(box).receipts.get(path[1])
    if receipt is None:
        return _fail(box, 404, "receipt_not_found", location="params", path="receipt_id")
    if len(path) == 2:
        if method == "GET":
            return box._ok(200, dict(receipt))
        if method == "DELETE":
            refused = _open(box, receipt)
            if refused is not None:
                return refused
            receipt["status"] = "canceled"
            return box._ok(200, dict(receipt))
        if method == "PUT":
            if not isinstance(body, dict) or "customer" not in body:
                return box._invalid([("customer", "required", "el cliente es requerido")])
            refused = _open(box, receipt)
            if refused is not None:
                return refused
            problems = _customer_problems(box, body["customer"])
            if problems:
                return box._invalid(problems)
            receipt["customer"] = _save_customer(box, body["customer"])
            return box._ok(200, dict(receipt))
    elif len(path) == 3 and path[2] == "pdf" and method == "GET":
        return _receipt_pdf(box, receipt)
    elif len(path) == 3 and path[2] == "email" and method == "POST":
        return _email(box, body)
    elif len(path) == 3 and path[2] == "invoice" and method == "POST":
        return _to_customer(box, receipt, body)
    return box._fail(405, "method_not_allowed")

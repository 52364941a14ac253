"""The Facturapi sandbox's lifecycle routes: payment complements (type ``P``), credit notes (type ``E``), drafts
(create, edit, stamp, copy), status refresh, the cancellation receipt, customer updates and deletes, products.

Written from Facturapi's documents and the SAT's rules for CFDI Pagos 2.0, not from billkit's client checks:

* **A payment complement** must relate, for each paid document, a stamped (``valid``) income invoice issued
  ``PPD`` in this organization, in its currency, with ``installment`` the next number (live complements of that
  invoice + 1), ``last_balance`` exactly the balance left by them, and ``0 < amount <= last_balance``;
  ``payment_form`` may not be ``99`` and the payment ``date`` may not be in the future. A complement that passes is
  stamped and listed in the invoice's ``received_payment_ids``; the invoice's ``amount_due`` is its total less
  what its live complements paid (a cancelled complement gives its amount back). Facturapi does not document its
  error codes for these checks: the sandbox answers 400 ``invalid_request`` with one ``errors[]`` entry per problem.
* **A credit note** needs a ``payment_form``, ``payment_method`` ``PUE`` (or none) and ``related_documents``
  whose relation keys are the SAT's (``01`` .. ``09``) and whose UUIDs are stamped invoices of this organization.
  Its total is computed like an income invoice's (Facturapi's defaults: IVA 16 %, ``tax_included``, product key
  ``84111506``). It does not change the related invoice's ``amount_due`` (Facturapi does not document that it
  does), and the sandbox does not cap its amount (neither the spec nor the SAT does; billkit's client does).
* **Idempotency keys** are honoured on these creates and on drafts the way the sandbox honours them on invoices,
  checked after the body's shape and *before* the balance checks: a retry of a complement that was created answers
  with it, although the balance it was computed on has moved since.
* **Drafts** keep whatever they are given; ``is_ready_to_stamp`` says whether the draft would pass the checks of
  its type. ``PUT`` edits only a draft (409 ``invoice_not_draft``), merging the fields sent; ``stamp`` refuses a
  draft that is not ready (400 ``draft_not_ready_to_stamp``) and a stamped invoice (409
  ``invoice_already_stamped``); ``copy`` makes a new draft of any invoice, without its idempotency key.
* ``PUT /invoices/{id}/status`` answers the stamped invoice (400 ``invoice_not_stamped`` otherwise); the
  cancellation receipt exists only for a cancelled invoice (400 ``invoice_not_canceled``, a sandbox choice).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import TYPE_CHECKING, Any

import httpx

from billkit.isodates import datetime_from_iso

if TYPE_CHECKING:
    from billkit.providers.facturapi.sandbox import FacturapiSandbox

__all__ = ["present", "route"]

Problems = list[tuple[str, str, str]]
_CENT = Decimal("0.01")
_DEAD = ("canceled", "failed", "draft")
_RELATIONS = frozenset(f"0{i}" for i in range(1, 10))
CREDIT_PRODUCT_KEY = "84111506"
#: the stored fields a draft's body is rebuilt from
_BODY_FIELDS = (
    "type",
    "customer",
    "items",
    "payment_form",
    "payment_method",
    "use",
    "currency",
    "exchange",
    "conditions",
    "series",
    "folio_number",
    "external_id",
    "related_documents",
    "complements",
)


def _cents(value: Decimal) -> Decimal:
    return value.quantize(_CENT, rounding=ROUND_HALF_UP)


def _number(value: Any) -> Decimal | None:
    if isinstance(value, bool) or not isinstance(value, (int, Decimal)):
        return None
    try:
        number = Decimal(value)
    except InvalidOperation:
        return None
    return number if number.is_finite() else None


def _parse(value: Any) -> dt.datetime | None:
    if not isinstance(value, str):
        return None
    try:
        parsed = datetime_from_iso(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=dt.timezone.utc)


# -- the ledger of a PPD invoice ------------------------------------------------------------------------------------


def _by_uuid(box: FacturapiSandbox, uuid: str) -> dict[str, Any] | None:
    for rec in box.records.values():
        if str(rec["invoice"].get("uuid") or "").lower() == uuid.lower():
            return rec
    return None


def _paid(box: FacturapiSandbox, invoice: Mapping[str, Any]) -> tuple[Decimal, int]:
    """What the live complements of ``invoice`` paid, and how many installments they hold."""
    uuid = str(invoice.get("uuid") or "").lower()
    paid, count = Decimal(0), 0
    for payment_id in invoice.get("received_payment_ids") or ():
        rec = box.records.get(payment_id)
        if rec is None or box._view(rec)["status"] in _DEAD:
            continue
        for complement in rec["invoice"].get("complements") or ():
            for pay in complement.get("data") or ():
                for doc in pay.get("related_documents") or ():
                    if str(doc.get("uuid", "")).lower() == uuid:
                        paid += Decimal(doc["amount"])
                        count += 1
    return paid, count


def present(box: FacturapiSandbox, invoice: dict[str, Any]) -> dict[str, Any]:
    """The lifecycle fields of an invoice as ``GET`` shows them: a PPD income invoice's ``amount_due`` from its
    live complements, and ``received_payment_ids`` on every income invoice."""
    if invoice.get("type", "I") == "I":
        invoice.setdefault("received_payment_ids", [])
        if invoice.get("payment_method") == "PPD" and invoice.get("status") in ("valid", "canceled"):
            paid, _ = _paid(box, invoice)
            invoice["amount_due"] = Decimal(invoice.get("total") or 0) - paid
    return invoice


# -- checks by CFDI type --------------------------------------------------------------------------------------------


def _customer(box: FacturapiSandbox, customer: Any) -> Problems:
    if isinstance(customer, str):
        return [] if customer in box.customers else [("customer", "not_found", f"no existe el cliente {customer}")]
    return box._customer_problems(customer, "customer.")


def _payment_problems(box: FacturapiSandbox, body: Mapping[str, Any], *, stateful: bool) -> Problems:
    problems = _customer(box, body.get("customer"))
    complements = body.get("complements")
    if not isinstance(complements, list) or not complements:
        return [*problems, ("complements", "required", "el complemento de pago es requerido")]
    now = box.clock.wall()
    running: dict[str, tuple[Decimal, int]] = {}
    for c, complement in enumerate(complements):
        where = f"complements[{c}]"
        if not isinstance(complement, dict) or complement.get("type") != "pago":
            problems.append((f"{where}.type", "invalid", "un CFDI de pago lleva un complemento de tipo pago"))
            continue
        payments = complement.get("data")
        if not isinstance(payments, list) or not payments:
            problems.append((f"{where}.data", "required", "se requiere al menos un pago"))
            continue
        for p, pay in enumerate(payments):
            at = f"{where}.data[{p}]"
            if not isinstance(pay, dict):
                problems.append((at, "invalid", "el pago debe ser un objeto"))
                continue
            form = pay.get("payment_form")
            if not isinstance(form, str) or len(form) != 2 or not form.isdigit():
                problems.append((f"{at}.payment_form", "required", "forma de pago (2 dígitos) es requerida"))
            elif form == "99":
                problems.append((f"{at}.payment_form", "invalid", "la forma de pago de un pago no puede ser 99"))
            if "date" in pay:
                when = _parse(pay["date"])
                if when is None:
                    problems.append((f"{at}.date", "invalid_date", "fecha no válida"))
                elif when.timestamp() > now + 300:  # clocks differ: five minutes of skew
                    problems.append((f"{at}.date", "invalid_date", "la fecha de pago no puede ser futura"))
            docs = pay.get("related_documents")
            if not isinstance(docs, list) or not docs:
                problems.append((f"{at}.related_documents", "required", "se requiere al menos un documento"))
                continue
            for d, doc in enumerate(docs):
                problems.extend(_paid_document(box, doc, f"{at}.related_documents[{d}]", running, stateful))
    return problems


def _paid_document(
    box: FacturapiSandbox, doc: Any, at: str, running: dict[str, tuple[Decimal, int]], stateful: bool
) -> Problems:
    if not isinstance(doc, dict):
        return [(at, "invalid", "el documento relacionado debe ser un objeto")]
    problems: Problems = []
    amount, before, number = _number(doc.get("amount")), _number(doc.get("last_balance")), doc.get("installment")
    if amount is None or amount <= 0:
        problems.append((f"{at}.amount", "invalid", "el importe pagado debe ser mayor a 0"))
    if before is None:
        problems.append((f"{at}.last_balance", "required", "el saldo anterior es requerido"))
    if isinstance(number, bool) or not isinstance(number, int) or number < 1:
        problems.append((f"{at}.installment", "required", "el número de parcialidad es requerido"))
    if not isinstance(doc.get("taxes"), list):
        problems.append((f"{at}.taxes", "required", "los impuestos del documento pagado son requeridos"))
    uuid = doc.get("uuid")
    if not isinstance(uuid, str) or not uuid:
        return [*problems, (f"{at}.uuid", "required", "el UUID del documento pagado es requerido")]
    if problems or not stateful:
        return problems
    assert amount is not None and before is not None and isinstance(number, int)
    rec = _by_uuid(box, uuid)
    if rec is None:
        return [(f"{at}.uuid", "not_found", f"no existe la factura con UUID {uuid}")]
    invoice = box._view(rec)
    if invoice.get("type") != "I" or invoice.get("payment_method") != "PPD":
        return [(f"{at}.uuid", "invalid", "solo una factura de ingreso PPD recibe complementos de pago")]
    if invoice.get("status") != "valid":
        return [(f"{at}.uuid", "invalid", "la factura relacionada no está vigente")]
    if str(doc.get("currency") or "MXN") != str(invoice.get("currency") or "MXN"):
        problems.append((f"{at}.currency", "invalid", "la moneda no coincide con la de la factura"))
    key = uuid.lower()
    if key not in running:
        paid, count = _paid(box, invoice)
        running[key] = (Decimal(invoice["total"]) - paid, count)
    balance, count = running[key]
    if number != count + 1:
        problems.append((f"{at}.installment", "invalid", f"la parcialidad debe ser {count + 1}"))
    if _cents(before) != _cents(balance):
        problems.append((f"{at}.last_balance", "invalid", f"el saldo anterior debe ser {balance}"))
    if amount > before:
        problems.append((f"{at}.amount", "invalid", "el importe pagado no puede ser mayor al saldo anterior"))
    running[key] = (balance - amount, count + 1)
    return problems


def _credit_problems(box: FacturapiSandbox, body: Mapping[str, Any], *, stateful: bool) -> Problems:
    problems = _customer(box, body.get("customer"))
    form = body.get("payment_form")
    if not isinstance(form, str) or len(form) != 2 or not form.isdigit():
        problems.append(("payment_form", "required", "forma de pago (2 dígitos) es requerida"))
    if body.get("payment_method", "PUE") != "PUE":
        problems.append(("payment_method", "invalid", "una nota de crédito solo admite PUE"))
    items = body.get("items")
    if not isinstance(items, list) or not items:
        problems.append(("items", "required", "se requiere al menos un concepto"))
    else:
        for i, item in enumerate(items):
            filled = _with_credit_key(item)
            problems.extend(box._item_problems(filled, f"items[{i}]"))
    related = body.get("related_documents")
    if not isinstance(related, list) or not related:
        problems.append(("related_documents", "required", "una nota de crédito relaciona los documentos que acredita"))
        return problems
    for r, rel in enumerate(related):
        at = f"related_documents[{r}]"
        if not isinstance(rel, dict) or rel.get("relationship") not in _RELATIONS:
            problems.append((f"{at}.relationship", "invalid", "tipo de relación no válido (01 a 09)"))
            continue
        docs = rel.get("documents")
        if not isinstance(docs, list) or not docs:
            problems.append((f"{at}.documents", "required", "se requiere al menos un UUID"))
            continue
        for d, uuid in enumerate(docs):
            found = _by_uuid(box, uuid) if isinstance(uuid, str) else None
            if stateful and (found is None or box._view(found)["status"] != "valid"):
                problems.append((f"{at}.documents[{d}]", "invalid", f"no existe una factura vigente con UUID {uuid}"))
    return problems


def _with_credit_key(item: Any) -> Any:
    if isinstance(item, dict) and isinstance(item.get("product"), dict):
        return {**item, "product": {"product_key": CREDIT_PRODUCT_KEY, **item["product"]}}
    return item


def _problems(box: FacturapiSandbox, body: Mapping[str, Any], *, stateful: bool = True) -> Problems:
    kind = body.get("type", "I")
    if kind == "P":
        return _payment_problems(box, body, stateful=stateful)
    if kind == "E":
        return _credit_problems(box, body, stateful=stateful)
    if kind == "I":
        return box._invoice_problems(dict(body))
    return [("type", "invalid", "el sandbox emite los tipos I, E y P")]


# -- creates --------------------------------------------------------------------------------------------------------


def _replay(box: FacturapiSandbox, body: Mapping[str, Any]) -> httpx.Response | None:
    key = body.get("idempotency_key") or None
    if not isinstance(key, str):
        return None
    if box._busy.get(key, 0) > 0:
        box._busy[key] -= 1
        return box._fail(409, "idempotency_key_in_use", location="body", path="idempotency_key")
    held = box._keys.get(key)
    if held is not None and held in box.records:
        return box._ok(200, box._view(box.records[held]))
    return None


def _issue(box: FacturapiSandbox, invoice_id: str, *, background: bool) -> None:
    """Stamp the stored document ``invoice_id`` (now, or ``async_delay`` later) with its type's totals and effects."""
    rec = box.records[invoice_id]
    stored = rec["invoice"]
    kind = stored.get("type", "I")
    stored["customer"] = box._customer_info(stored["customer"])
    if kind == "P":
        docs = [
            doc
            for c in stored.get("complements") or ()
            for pay in c.get("data") or ()
            for doc in pay.get("related_documents") or ()
        ]
        stored.update(
            total=Decimal(0),
            amount_due=None,
            use="CP01",
            payment_method=None,
            payment_form=None,
            total_payment_amount=sum((Decimal(d["amount"]) for d in docs), Decimal(0)),
            target_invoice_ids=[],
        )
        for doc in docs:
            original = _by_uuid(box, str(doc["uuid"]))
            if original is not None:
                original["invoice"].setdefault("received_payment_ids", []).append(invoice_id)
                stored["target_invoice_ids"].append(original["invoice"]["id"])
    else:
        items = [_with_credit_key(i) for i in stored.get("items") or ()] if kind == "E" else stored.get("items")
        stored["items"] = items
        total = sum((box._item_total(i) for i in items or ()), Decimal(0))
        stored.update(total=total, amount_due=total if kind == "I" else None)
        if kind == "E":
            stored["payment_method"] = "PUE"
    stored["is_ready_to_stamp"] = False
    if background:
        stored["status"] = "pending"
        rec.update(ready_at=box.clock.now() + box.async_delay, outcome="valid", message=None)
    else:
        stored["status"] = "valid"
        box._stamp(stored, box.clock.now())


def _store(box: FacturapiSandbox, body: Mapping[str, Any], status: str) -> str:
    invoice = box._store(body, status, None, "valid", None, body.get("customer"))
    stored = box.records[invoice["id"]]["invoice"]
    stored["type"] = body.get("type", "I")
    stored["related_documents"] = list(body.get("related_documents") or [])
    stored["complements"] = list(body.get("complements") or [])
    if stored["type"] != "I":
        for name in ("payment_method", "use", "payment_form"):
            stored[name] = body.get(name)
    return str(invoice["id"])


def _create(box: FacturapiSandbox, body: Any, *, background: bool) -> httpx.Response:
    if body.get("status") == "draft":
        replay = _replay(box, body)
        if replay is not None:
            return replay
        invoice_id = _store(box, body, "draft")
        _refresh_draft(box, invoice_id)
        return box._ok(200, box._view(box.records[invoice_id]))
    shape = _problems(box, body, stateful=False)
    if shape:
        return box._invalid(shape)
    replay = _replay(box, body)
    if replay is not None:
        return replay
    problems = _problems(box, body)
    if problems:
        return box._invalid(problems)
    invoice_id = _store(box, body, "pending")
    _issue(box, invoice_id, background=background)
    return box._ok(200, box._view(box.records[invoice_id]))


# -- drafts ---------------------------------------------------------------------------------------------------------


def _draft_body(stored: Mapping[str, Any]) -> dict[str, Any]:
    return {k: stored[k] for k in _BODY_FIELDS if stored.get(k) is not None}


def _refresh_draft(box: FacturapiSandbox, invoice_id: str) -> None:
    stored = box.records[invoice_id]["invoice"]
    body = _draft_body(stored)
    ready = not _problems(box, body)
    stored["is_ready_to_stamp"] = ready
    total = Decimal(0)
    if ready and body.get("type", "I") in ("I", "E"):
        total = sum((box._item_total(_with_credit_key(i)) for i in body.get("items") or ()), Decimal(0))
    stored.update(total=total, amount_due=total if stored.get("type", "I") == "I" else None)


def _edit(box: FacturapiSandbox, invoice_id: str, body: Any) -> httpx.Response:
    rec = box.records.get(invoice_id)
    if rec is None:
        return box._fail(404, "invoice_not_found", location="params", path="invoice_id")
    if box._view(rec)["status"] != "draft":
        return box._fail(409, "invoice_not_draft", message="Solo se puede editar una factura en borrador")
    if not isinstance(body, dict):
        return box._invalid([("", "invalid_json", "el cuerpo debe ser un objeto JSON")])
    if body.get("status", "draft") != "draft":
        return box._invalid([("status", "invalid", "un borrador editado sigue en borrador")])
    stored = rec["invoice"]
    for name, value in body.items():
        if name != "status":
            stored[name] = value
    _refresh_draft(box, invoice_id)
    return box._ok(200, box._view(rec))


def _stamp(box: FacturapiSandbox, invoice_id: str, *, background: bool) -> httpx.Response:
    rec = box.records.get(invoice_id)
    if rec is None:
        return box._fail(404, "invoice_not_found", location="params", path="invoice_id")
    status = box._view(rec)["status"]
    if status != "draft":
        code = "invoice_already_stamped" if status in ("valid", "canceled", "pending") else "invoice_not_draft"
        return box._fail(409, code, message="La factura no es un borrador")
    problems = _problems(box, _draft_body(rec["invoice"]))
    if problems:
        errors = [
            {"message": m, "code": c, "source": "facturapi", "location": "body", "path": p} for p, c, m in problems
        ]
        return box._fail(
            400, "draft_not_ready_to_stamp", errors=errors, message="El borrador no está listo para timbrarse"
        )
    _issue(box, invoice_id, background=background)
    return box._ok(200, box._view(rec))


def _copy(box: FacturapiSandbox, invoice_id: str) -> httpx.Response:
    rec = box.records.get(invoice_id)
    if rec is None:
        return box._fail(404, "invoice_not_found", location="params", path="invoice_id")
    body = {**_draft_body(box._view(rec)), "status": "draft"}
    new_id = _store(box, body, "draft")
    _refresh_draft(box, new_id)
    return box._ok(200, box._view(box.records[new_id]))


# -- status, receipts -----------------------------------------------------------------------------------------------


def _refresh_status(box: FacturapiSandbox, invoice_id: str) -> httpx.Response:
    rec = box.records.get(invoice_id)
    if rec is None:
        return box._fail(404, "invoice_not_found", location="params", path="invoice_id")
    invoice = box._view(rec)
    if invoice["status"] not in ("valid", "canceled"):
        return box._fail(400, "invoice_not_stamped")
    return box._ok(200, invoice)


def _receipt(box: FacturapiSandbox, invoice_id: str, kind: str) -> httpx.Response:
    rec = box.records.get(invoice_id)
    if rec is None:
        return box._fail(404, "invoice_not_found", location="params", path="invoice_id")
    if kind not in ("xml", "pdf"):
        return box._invalid([("format", "invalid", "formato no válido (xml o pdf)")], "params")
    invoice = box._view(rec)
    if invoice["status"] != "canceled":
        return box._fail(400, "invoice_not_canceled", message="La factura no está cancelada")
    if kind == "pdf":
        content = f"%PDF-1.4\n% acuse de cancelacion {invoice['uuid']}\n%%EOF\n".encode()
    else:
        content = (
            f'<?xml version="1.0" encoding="UTF-8"?>\n<Acuse Fecha="{invoice.get("canceled_at")}">'
            f"<Folios><UUID>{invoice['uuid']}</UUID><EstatusUUID>201</EstatusUUID></Folios></Acuse>\n"
        ).encode()
    headers = {"content-type": f"application/{kind}", "x-facturapi-log-id": box._log_id()}
    return httpx.Response(200, content=content, headers=headers)


# -- customers, products --------------------------------------------------------------------------------------------


def _customer_route(box: FacturapiSandbox, method: str, customer_id: str, body: Any) -> httpx.Response | None:
    customer = box.customers.get(customer_id)
    if method not in ("PUT", "DELETE"):
        return None
    if customer is None:
        return box._fail(404, "customer_not_found", location="params", path="customer_id")
    if method == "DELETE":
        return box._ok(200, box.customers.pop(customer_id))
    if not isinstance(body, dict):
        return box._invalid([("", "invalid_json", "el cuerpo debe ser un objeto JSON")])
    merged = {**customer, **body, "address": {**(customer.get("address") or {}), **(body.get("address") or {})}}
    problems = box._customer_problems(merged, "")
    if problems:
        return box._invalid(problems)
    box.customers[customer_id] = merged
    return box._ok(200, merged)


def _product_problems(product: Mapping[str, Any]) -> Problems:
    problems: Problems = []
    if not isinstance(product.get("description"), str) or not product["description"].strip():
        problems.append(("description", "required", "la descripción es requerida"))
    key = product.get("product_key")
    if not isinstance(key, str) or len(key) != 8 or not key.isdigit():
        problems.append(("product_key", "required", "clave de producto (8 dígitos) requerida"))
    price = _number(product.get("price"))
    if price is None or price < 0:
        problems.append(("price", "invalid", "el precio debe ser un número no negativo"))
    for j, tax in enumerate(product.get("taxes") or []):
        rate = _number(tax.get("rate")) if isinstance(tax, dict) else None
        if rate is None or not 0 <= rate <= 1:
            problems.append((f"taxes[{j}].rate", "invalid", "la tasa debe estar entre 0 y 1"))
    return problems


def _products(
    box: FacturapiSandbox, method: str, route: list[str], params: Mapping[str, str], body: Any
) -> httpx.Response:
    products = box.products
    if len(route) == 1:
        if method == "POST":
            if not isinstance(body, dict):
                return box._invalid([("", "invalid_json", "el cuerpo debe ser un objeto JSON")])
            problems = _product_problems(body)
            if problems:
                return box._invalid(problems)
            taxability = body.get("taxability", "02")
            default_taxes = [{"type": "IVA", "rate": Decimal("0.16"), "factor": "Tasa", "withholding": False}]
            product = {
                "id": box._new_id(),
                "created_at": box._iso(),
                "livemode": False,
                "tax_included": True,
                "taxability": taxability,
                "taxes": default_taxes if taxability == "02" else [],
                "local_taxes": [],
                "unit_key": "H87",
                "unit_name": "Elemento",
                "sku": None,
                **body,
            }
            products[product["id"]] = product
            return box._ok(200, product)
        if method == "GET":
            q, sku = (params.get("q") or "").lower(), params.get("sku")
            found = [
                p
                for p in products.values()
                if (not q or q in str(p.get("description", "")).lower()) and (not sku or p.get("sku") == sku)
            ]
            return box._page(params, list(reversed(found)))
        return box._fail(405, "method_not_allowed")
    product_id = route[1]
    if product_id not in products:
        return box._fail(
            404, "product_not_found", location="params", path="product_id", message="No se encontró el producto"
        )
    if method == "GET":
        return box._ok(200, products[product_id])
    if method == "DELETE":
        return box._ok(200, products.pop(product_id))
    if method == "PUT":
        if not isinstance(body, dict):
            return box._invalid([("", "invalid_json", "el cuerpo debe ser un objeto JSON")])
        merged = {**products[product_id], **body}
        problems = _product_problems(merged)
        if problems:
            return box._invalid(problems)
        products[product_id] = merged
        return box._ok(200, merged)
    return box._fail(405, "method_not_allowed")


# -- routing --------------------------------------------------------------------------------------------------------


def route(
    box: FacturapiSandbox, method: str, path: list[str], params: Mapping[str, str], body: Any
) -> httpx.Response | None:
    """The answer of a lifecycle route, or None for the sandbox's own routes (income invoices and the rest)."""
    if path == ["invoices"] and method == "POST" and isinstance(body, dict):
        if body.get("status") == "draft" or body.get("type") in ("P", "E"):
            return _create(box, body, background=params.get("async") == "true")
        return None
    if len(path) >= 2 and path[0] == "invoices" and path[1] not in ("zip-requests", "preview"):
        invoice_id = path[1]
        if len(path) == 2 and method == "PUT":
            return _edit(box, invoice_id, body)
        if len(path) == 3 and method == "POST" and path[2] == "stamp":
            return _stamp(box, invoice_id, background=params.get("async") == "true")
        if len(path) == 3 and method == "POST" and path[2] == "copy":
            return _copy(box, invoice_id)
        if len(path) == 3 and method == "PUT" and path[2] == "status":
            return _refresh_status(box, invoice_id)
        if len(path) == 4 and method == "GET" and path[2] == "cancellation_receipt":
            return _receipt(box, invoice_id, path[3])
        return None
    if len(path) == 2 and path[0] == "customers":
        return _customer_route(box, method, path[1], body)
    if path[:1] == ["products"] and len(path) <= 2:
        return _products(box, method, path, params, body)
    return None

"""An in-process Facturapi v2 API on a virtual clock: invoices stamped sync or async, the 202 recovery path,
idempotency keys, cancellation, downloads, customers, and signed webhook events.

What it does, and where it had to choose (see docs/providers/facturapi.md):

* **Auth**: ``Authorization: Bearer <key>`` (or Basic with the key as user, as Facturapi also accepts) with
  :attr:`FacturapiSandbox.credentials`; no key is 401 ``missing_credentials``, a wrong one 401 ``api_key_invalid``.
* **Errors** are ``GenericError`` bodies (``ok``, ``message`` in Spanish, ``status``, ``code``, ``location``,
  ``path``, ``errors[]``) and every answer carries ``X-Facturapi-Log-Id``. Injected 429s are
  ``rate_limit_exceeded`` with ``Retry-After``; injected 5xx ``internal_error``.
* **Sync create** (``POST /invoices``) validates the body (400 ``invalid_request`` listing every problem; nothing
  is stored), computes the total exactly (2 decimals, half up, per tax; ``tax_included`` honoured) and answers 200
  ``valid`` with ``uuid``, ``stamp``, ``verification_url`` and ``folio_number``. **Async** (``?async=true``) answers
  200 ``pending``; the invoice becomes ``valid`` (or ``failed``, for :data:`FAIL_TAX_ID` or a ``fail_rate`` share)
  ``async_delay`` seconds later. A sync create for :data:`FAIL_TAX_ID` is refused with 400
  ``invoice_stamping_validation_error`` (the SAT's reason, nothing stored).
* **The 202 recovery path**: a create for :data:`RECOVERY_TAX_ID` answers 202 ``pending`` (sync) and becomes
  ``valid`` at the third recovery attempt (+30 min); :data:`RECOVERY_FAIL_TAX_ID` becomes ``failed`` after the
  fifth (+50 min). An async create for them follows the same schedule.
* **Idempotency** (undocumented beyond "avoid duplicates when retrying"; the sandbox chose): a create whose
  ``idempotency_key`` already made an invoice answers 200 with that invoice as it is now, and creates nothing;
  :meth:`FacturapiSandbox.key_in_use` makes the next creates with a key answer 409 ``idempotency_key_in_use``
  without acting. ``external_id`` is not checked for uniqueness (as documented).
* **Cancel** (``DELETE /invoices/{id}?motive=``): motive ``01`` needs ``substitution``; a ``valid`` invoice becomes
  ``canceled`` (``accepted``), or with :attr:`cancel_needs_acceptance` stays ``valid`` with
  ``cancellation_status`` ``pending`` for three days, then ``canceled``; a draft is deleted; anything else is 409.
* **Failure reasons** are only in the ``invoice.status_updated`` event (``related_resource_messages``), as on the
  real API: :meth:`events` lists the events sent by now and :meth:`webhook_request` signs one with
  :attr:`webhook_secret`.
* **State you can inspect**: :attr:`invoices` (by id, as ``GET`` shows them now), :meth:`count_idempotency_key`,
  :meth:`count_external_id`, :meth:`failure_message`, :attr:`customers`, and the recorded :attr:`requests`.

Nothing runs in the background: every state is computed from the clock when it is read, so a sandbox saves as
data (:meth:`~billkit.sandboxing.Sandbox.save`) and continues in another process.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import io
import operator
import random
import re
import zipfile
from collections.abc import Mapping
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import Any

import httpx

from billkit.clock import Clock
from billkit.providers.facturapi import sandbox_account, sandbox_lifecycle, sandbox_receipts
from billkit.providers.facturapi.webhooks import SIGNATURE_HEADER, STATUS_UPDATED, sign
from billkit.sandboxing import Fault, Faults, Sandbox, json_response, path_segments
from billkit.transport import dumps

__all__ = ["FAIL_TAX_ID", "RECOVERY_FAIL_TAX_ID", "RECOVERY_TAX_ID", "FacturapiSandbox"]

#: a customer RFC whose stamping the SAT refuses: 400 on a sync create, ``failed`` after an async one
FAIL_TAX_ID = "FAI010101AA1"
#: a customer RFC whose stamping meets a temporary PAC failure: 202 ``pending``, ``valid`` at +30 minutes
RECOVERY_TAX_ID = "REC010101AA1"
#: like :data:`RECOVERY_TAX_ID`, but every recovery attempt fails: ``failed`` at +50 minutes
RECOVERY_FAIL_TAX_ID = "RCF010101AA1"

MINUTE = 60.0
RECOVERY_VALID_AFTER = 30 * MINUTE
RECOVERY_FAILED_AFTER = 50 * MINUTE
CANCEL_ACCEPTANCE = 3 * 86400.0
MAX_PAGE = 30
CANCELLATION_UPDATED = "invoice.cancellation_status_updated"
SAT_REFUSAL = "El RFC del receptor no se encuentra en la lista de RFC inscritos no cancelados del SAT (CFDI40145)"
RANDOM_FAILURE = "El PAC no pudo timbrar el comprobante: servicio de timbrado no disponible"
RECOVERY_FAILURE = "No fue posible recuperar el timbrado después de 5 intentos"

_RFC = re.compile(r"^[A-ZÑ&]{3,4}\d{6}[A-Z0-9]{3}$")
_ZIP = re.compile(r"^\d{5}$")
_CODE3 = re.compile(r"^\d{3}$")
_PRODUCT_KEY = re.compile(r"^\d{8}$")
_PAYMENT_FORM = re.compile(r"^\d{2}$")
_CURRENCY = re.compile(r"^[A-Z]{3}$")
_CENT = Decimal("0.01")
_MOTIVES = ("01", "02", "03", "04")
_MESSAGES = {
    "missing_credentials": "No se proporcionó una llave de API",
    "api_key_invalid": "La llave de API no es válida",
    "invalid_request": "La solicitud no es válida",
    "invoice_not_found": "No se encontró la factura",
    "customer_not_found": "No se encontró el cliente",
    "not_found": "Recurso no encontrado",
    "page_too_large": "El número de página no puede ser mayor a 30",
    "idempotency_key_in_use": "La llave de idempotencia está siendo usada por otra solicitud",
    "invoice_not_cancelable": "La factura no se puede cancelar en su estado actual",
    "invoice_cancellation_in_progress": "La cancelación de la factura ya está en proceso",
    "substitution_invoice_required": "El motivo 01 requiere la factura que sustituye",
    "invoice_not_stamped": "La factura no ha sido timbrada",
    "invoice_stamping_validation_error": "El SAT rechazó el comprobante",
    "rate_limit_exceeded": "Demasiadas solicitudes, intenta más tarde",
    "internal_error": "Ocurrió un error inesperado",
    "method_not_allowed": "Método no permitido",
}


def _cents(value: Decimal) -> Decimal:
    return value.quantize(_CENT, rounding=ROUND_HALF_UP)


def _customer_of(invoice: Mapping[str, Any]) -> dict[str, Any]:
    customer = invoice.get("customer")
    return customer if isinstance(customer, dict) else {}


def _number(value: Any) -> Decimal | None:
    """A JSON number as Decimal (bools and strings are not numbers), else None."""
    if isinstance(value, bool) or not isinstance(value, int | Decimal):
        return None
    try:
        number = Decimal(value)
    except InvalidOperation:
        return None
    return number if number.is_finite() else None


class FacturapiSandbox(Sandbox):
    """The Facturapi v2 sandbox. See the module docstring for its behaviour and its triggers."""

    provider = "facturapi"
    base_url = "https://sandbox.facturapi.test/v2"
    credentials = {"api_key": "sk_test_billkit_sandbox"}
    #: the secret webhook events are signed with (set it in your verifier)
    webhook_secret = "whsec_billkit_sandbox"

    def __init__(
        self,
        clock: Clock | None = None,
        faults: Faults | None = None,
        *,
        async_delay: float = 4.0,
        fail_rate: float = 0.0,
        seed: int = 0,
    ) -> None:
        super().__init__(clock, faults)
        self.async_delay = async_delay
        self.fail_rate = fail_rate
        #: when True a cancel waits three (virtual) days for the customer's acceptance
        self.cancel_needs_acceptance = False
        self.records: dict[str, dict[str, Any]] = {}
        self.customers: dict[str, dict[str, Any]] = {}
        #: saved products by id (``/products``; see :mod:`~billkit.providers.facturapi.sandbox_lifecycle`)
        self.products: dict[str, dict[str, Any]] = {}
        self._keys: dict[str, str] = {}
        self._busy: dict[str, int] = {}
        self._rng = random.Random(seed)
        self._seq = 0
        self._folio = 0

    # -- inspection ----------------------------------------------------------------------------------------
    @property
    def invoices(self) -> dict[str, dict[str, Any]]:
        """Every invoice stored (pending, valid, failed, canceled, draft), by id, as ``GET`` shows it now."""
        return {invoice_id: self._view(rec) for invoice_id, rec in self.records.items()}

    def count_idempotency_key(self, key: str) -> int:
        """How many stored invoices carry ``key`` (the soak asserts this is never more than 1)."""
        return sum(1 for rec in self.records.values() if rec["invoice"].get("idempotency_key") == key)

    def count_external_id(self, external_id: str) -> int:
        """How many stored invoices (whatever their status) carry ``external_id``."""
        return sum(1 for rec in self.records.values() if rec["invoice"].get("external_id") == external_id)

    def failure_message(self, invoice_id: str) -> str | None:
        """The reason a failed invoice failed (the message its ``invoice.status_updated`` event carries)."""
        rec = self.records.get(invoice_id)
        return rec["message"] if rec is not None and rec["outcome"] == "failed" else None

    def key_in_use(self, key: str, times: int = 1) -> None:
        """The next ``times`` creates with ``key`` answer 409 ``idempotency_key_in_use`` (another request holds
        it) and do nothing."""
        self._busy[key] = times

    def events(self) -> list[dict[str, Any]]:
        """The webhook events Facturapi would have sent by now, oldest first (computed from the clock):
        ``invoice.status_updated`` when async stamping or recovery finished, and
        ``invoice.cancellation_status_updated`` when a pending cancellation was accepted."""
        out: list[tuple[float, int, dict[str, Any]]] = []
        now = self.clock.now()
        for invoice_id, rec in self.records.items():
            ready = rec["ready_at"]
            if ready is not None and now >= ready:
                invoice = self._view(rec)
                at_ready = {**invoice, "status": rec["outcome"]}
                if rec["outcome"] == "valid" and invoice["status"] == "canceled":
                    at_ready.update(status="valid", cancellation_status="none", canceled_at=None)
                event = self._event(invoice_id, STATUS_UPDATED, at_ready, ready)
                if rec["outcome"] == "failed":
                    event["related_resource_messages"] = [{
                        "resource_type": "invoice", "resource_id": invoice_id, "source": "stamping_async_task",
                        "severity": "error", "message": rec["message"], "created_at": self._iso(ready),
                    }]  # fmt: skip
                out.append((ready, rec["seq"], event))
            done = rec.get("cancel_done_at")
            if done is not None and now >= done:
                out.append((done, rec["seq"], self._event(invoice_id, CANCELLATION_UPDATED, self._view(rec), done)))
        return [event for _, _, event in sorted(out, key=lambda t: (t[0], t[1]))]

    def webhook_request(self, event: Mapping[str, Any]) -> tuple[bytes, dict[str, str]]:
        """The request Facturapi would make for ``event``: the JSON bytes and headers, signed with
        :attr:`webhook_secret` in ``Facturapi-Signature`` (hex HMAC-SHA256 of the body)."""
        body = dumps(dict(event))
        return body, {SIGNATURE_HEADER: sign(body, self.webhook_secret), "content-type": "application/json"}

    # -- responses ---------------------------------------------------------------------------------------------
    def _log_id(self) -> str:
        return f"{self._rng.getrandbits(96):024x}"

    def _ok(self, status: int, payload: Any) -> httpx.Response:
        return json_response(status, payload, {"x-facturapi-log-id": self._log_id()})

    def error(self, status: int, payload: Any, headers: Mapping[str, str] | None = None) -> httpx.Response:
        if isinstance(payload, str):
            payload = self._body(status, payload)
        return json_response(status, payload, {"x-facturapi-log-id": self._log_id(), **(headers or {})})

    @staticmethod
    def _body(status: int, code: str, path: str | None = None, location: str | None = None,
              errors: list[dict[str, Any]] | None = None, message: str | None = None) -> dict[str, Any]:  # fmt: skip
        body: dict[str, Any] = {"ok": False, "message": message or _MESSAGES.get(code, code), "status": status,
                                "code": code}  # fmt: skip
        if location:
            body["location"] = location
        if path:
            body["path"] = path
        if errors:
            body["errors"] = errors
        return body

    def _fail(self, status: int, code: str, **kwargs: Any) -> httpx.Response:
        return self.error(status, self._body(status, code, **kwargs))

    def _invalid(self, problems: list[tuple[str, str, str]], location: str = "body") -> httpx.Response:
        errors = [{"message": message, "code": code, "source": "facturapi", "location": location, "path": path}
                  for path, code, message in problems]  # fmt: skip
        first = problems[0]
        return self._fail(400, "invalid_request", path=first[0], location=location, errors=errors,
                          message=f"{_MESSAGES['invalid_request']}: {first[2]}")  # fmt: skip

    def fault_response(self, fault: Fault) -> httpx.Response:
        if fault is Fault.RATE_LIMIT:
            return self.error(429, self._body(429, "rate_limit_exceeded"),
                              {"retry-after": f"{self.faults.retry_after:g}"})  # fmt: skip
        return self._fail(500, "internal_error")

    # -- routing ---------------------------------------------------------------------------------------------
    def _authorized(self, request: httpx.Request) -> str | None:
        """None when the key is right, else the error code."""
        header = request.headers.get("authorization", "")
        scheme, _, value = header.partition(" ")
        key = ""
        if scheme.lower() == "bearer":
            key = value.strip()
        elif scheme.lower() == "basic":
            try:
                key = base64.b64decode(value.strip()).decode().partition(":")[0]
            except (ValueError, UnicodeDecodeError):
                return "api_key_invalid"
        if not key:
            return "missing_credentials"
        return None if key == self.credentials["api_key"] else "api_key_invalid"

    def handle(self, request: httpx.Request, body: Any) -> httpx.Response:
        denied = self._authorized(request)
        if denied is not None:
            return self._fail(401, denied, location="headers", path="authorization")
        method = request.method
        route = path_segments(request)
        params = dict(request.url.params)
        routed = sandbox_lifecycle.route(self, method, route, params, body)  # payments, credit notes, drafts...
        if routed is not None:
            return routed
        routed = sandbox_account.route(self, method, route, params, body)  # ZIP requests, series, webhooks...
        if routed is not None:
            return routed
        routed = sandbox_receipts.route(self, method, route, params, body)  # receipts, global invoices
        if routed is not None:
            return routed
        if route == ["invoices"]:
            if method == "POST":
                return self._create(body, background=params.get("async") == "true")
            if method == "GET":
                return self._list_invoices(params)
        elif len(route) == 2 and route[0] == "invoices":
            if method == "GET":
                return self._get_invoice(route[1])
            if method == "DELETE":
                return self._cancel(route[1], params)
        elif len(route) == 3 and route[0] == "invoices" and route[2] in ("pdf", "xml", "zip") and method == "GET":
            return self._download(route[1], route[2])
        elif len(route) == 3 and route[0] == "invoices" and route[2] == "email" and method == "POST":
            return self._email(route[1], body)
        elif route == ["customers"]:
            if method == "POST":
                return self._create_customer(body)
            if method == "GET":
                return self._list_customers(params)
        elif len(route) == 2 and route[0] == "customers" and method == "GET":
            customer = self.customers.get(route[1])
            if customer is None:
                return self._fail(404, "customer_not_found", location="params", path="customer_id")
            return self._ok(200, customer)
        else:
            return self._fail(404, "not_found", location="params", path=request.url.path)
        return self._fail(405, "method_not_allowed")

    # -- helpers -----------------------------------------------------------------------------------------------
    def _new_id(self) -> str:
        return f"{self._rng.getrandbits(96):024x}"

    def _uuid(self) -> str:
        text = f"{self._rng.getrandbits(128):032X}"
        return f"{text[:8]}-{text[8:12]}-4{text[13:16]}-8{text[17:20]}-{text[20:]}"

    def _wall_at(self, mono: float) -> float:
        return self.clock.wall() + (mono - self.clock.now())

    def _iso(self, mono: float | None = None) -> str:
        wall = self.clock.wall() if mono is None else self._wall_at(mono)
        when = dt.datetime.fromtimestamp(wall, tz=dt.timezone.utc)
        return when.strftime("%Y-%m-%dT%H:%M:%S.") + f"{when.microsecond // 1000:03d}Z"

    def _event(self, invoice_id: str, kind: str, invoice: dict[str, Any], at: float) -> dict[str, Any]:
        digest = hashlib.sha256(f"{invoice_id}:{kind}:{at}".encode()).hexdigest()[:24]
        return {"id": digest, "created_at": self._iso(at), "livemode": False,
                "organization": "5f0c9a1b2c3d4e5f6a7b8c9d", "type": kind,
                "data": {"type": "invoice", "object": invoice}}  # fmt: skip

    def _stamp(self, invoice: dict[str, Any], mono: float) -> None:
        """Fill what stamping fills: uuid, the stamp, the SAT verification URL."""
        uuid = self._uuid()
        total = invoice.get("total")
        invoice["uuid"] = uuid
        invoice["stamp"] = {
            "date": self._iso(mono)[:19],
            "sat_cert_number": "30001000000500003456",
            "signature": base64.b64encode(hashlib.sha256(uuid.encode()).digest()).decode(),
            "sat_signature": base64.b64encode(hashlib.sha256(uuid[::-1].encode()).digest()).decode(),
        }
        customer = invoice.get("customer") or {}
        invoice["verification_url"] = (
            "https://verificacfdi.facturaelectronica.sat.gob.mx/default.aspx?"
            f"id={uuid}&re=EKU9003173C9&rr={customer.get('tax_id', '')}&tt={total}&fe=A1B2C3D4"
        )

    def _view(self, rec: dict[str, Any]) -> dict[str, Any]:
        """The invoice as ``GET`` shows it now; a finished background stamping is applied when first seen."""
        invoice: dict[str, Any] = rec["invoice"]
        now = self.clock.now()
        ready = rec["ready_at"]
        if invoice["status"] == "pending" and ready is not None and now >= ready:
            invoice["status"] = rec["outcome"]
            if rec["outcome"] == "valid":
                self._stamp(invoice, ready)
        done = rec.get("cancel_done_at")
        if done is not None and now >= done and invoice["status"] == "valid":
            invoice.update(status="canceled", cancellation_status="accepted", canceled_at=self._iso(done))
        return sandbox_lifecycle.present(self, dict(invoice))

    # -- invoices --------------------------------------------------------------------------------------------
    def _customer_problems(self, data: Any, prefix: str) -> list[tuple[str, str, str]]:
        if not isinstance(data, dict):
            return [(prefix.rstrip("."), "invalid", "debe ser un objeto o el id de un cliente")]
        problems = []
        for name in ("legal_name", "tax_id", "tax_system"):
            if not isinstance(data.get(name), str) or not data[name].strip():
                problems.append((f"{prefix}{name}", "required", f"{name} es requerido"))
        if isinstance(data.get("tax_id"), str) and data["tax_id"] and not _RFC.match(data["tax_id"]):
            problems.append((f"{prefix}tax_id", "invalid", "el RFC no tiene un formato válido"))
        if isinstance(data.get("tax_system"), str) and data["tax_system"] and not _CODE3.match(data["tax_system"]):
            problems.append((f"{prefix}tax_system", "invalid", "régimen fiscal no válido"))
        address = data.get("address")
        zip_code = address.get("zip") if isinstance(address, dict) else None
        if not isinstance(zip_code, str) or not _ZIP.match(zip_code):
            problems.append((f"{prefix}address.zip", "required", "el código postal (5 dígitos) es requerido"))
        return problems

    def _invoice_problems(self, body: Any) -> list[tuple[str, str, str]]:
        if not isinstance(body, dict):
            return [("", "invalid_json", "el cuerpo debe ser un objeto JSON")]
        problems: list[tuple[str, str, str]] = []
        customer = body.get("customer")
        if isinstance(customer, str):
            if customer not in self.customers:
                problems.append(("customer", "not_found", f"no existe el cliente {customer}"))
        else:
            problems.extend(self._customer_problems(customer, "customer."))
        items = body.get("items")
        if not isinstance(items, list) or not items:
            problems.append(("items", "required", "se requiere al menos un concepto"))
        else:
            for i, item in enumerate(items):
                problems.extend(self._item_problems(item, f"items[{i}]"))
        form = body.get("payment_form")
        if not isinstance(form, str) or not _PAYMENT_FORM.match(form):
            problems.append(("payment_form", "required", "forma de pago (2 dígitos) es requerida"))
        currency = body.get("currency", "MXN")
        if not isinstance(currency, str) or not _CURRENCY.match(currency):
            problems.append(("currency", "invalid", "moneda no válida"))
        elif currency != "MXN":
            exchange = _number(body.get("exchange"))
            if exchange is None or exchange <= 0:
                problems.append(("exchange", "required", "el tipo de cambio es requerido para otra moneda"))
        key = body.get("idempotency_key")
        if key is not None and not isinstance(key, str):
            problems.append(("idempotency_key", "invalid", "debe ser una cadena"))
        return problems

    def _item_problems(self, item: Any, path: str) -> list[tuple[str, str, str]]:
        if not isinstance(item, dict):
            return [(path, "invalid", "el concepto debe ser un objeto")]
        problems = []
        quantity = item.get("quantity", 1)
        if _number(quantity) is None or Decimal(quantity) <= 0:
            problems.append((f"{path}.quantity", "invalid", "la cantidad debe ser mayor a 0"))
        product = item.get("product")
        if not isinstance(product, dict):
            return [*problems, (f"{path}.product", "required", "el producto es requerido")]
        if not isinstance(product.get("description"), str) or not product["description"].strip():
            problems.append((f"{path}.product.description", "required", "la descripción es requerida"))
        key = product.get("product_key")
        if not isinstance(key, str) or not _PRODUCT_KEY.match(key):
            problems.append((f"{path}.product.product_key", "required", "clave de producto (8 dígitos) requerida"))
        price = _number(product.get("price"))
        if price is None or price < 0:
            problems.append((f"{path}.product.price", "invalid", "el precio debe ser un número no negativo"))
        for j, tax in enumerate(product.get("taxes") or []):
            rate = _number(tax.get("rate")) if isinstance(tax, dict) else None
            if rate is None or not 0 <= rate <= 1:
                problems.append((f"{path}.product.taxes[{j}].rate", "invalid", "la tasa debe estar entre 0 y 1"))
        return problems

    @staticmethod
    def _item_total(item: Mapping[str, Any]) -> Decimal:
        """One item's amount with its taxes, as the CFDI computes it (each tax rounded to cents)."""
        product = item["product"]
        line = Decimal(item.get("quantity", 1)) * Decimal(product["price"]) - Decimal(item.get("discount") or 0)
        taxes = product.get("taxes")
        if taxes is None:
            taxes = [{"type": "IVA", "rate": Decimal("0.16")}]  # Facturapi's default when taxes are omitted
        taxes = [t for t in taxes if t.get("factor") != "Exento"]
        net_rate = sum((Decimal(t["rate"]) * (-1 if t.get("withholding") else 1) for t in taxes), Decimal(0))
        base = _cents(line / (1 + net_rate)) if product.get("tax_included", True) and net_rate != -1 else _cents(line)
        total = base
        for tax in taxes:
            amount = _cents(base * Decimal(tax["rate"]))
            total += -amount if tax.get("withholding") else amount
        return total

    def _customer_info(self, data: Any) -> dict[str, Any]:
        if isinstance(data, str):
            return dict(self.customers[data])
        address = {"country": "MEX", **dict(data.get("address") or {})}
        return {"id": self._new_id(), **{k: data.get(k) for k in ("legal_name", "tax_id", "tax_system", "email",
                                                                    "phone")}, "address": address}  # fmt: skip

    def _date(self, value: Any) -> str:
        if isinstance(value, str):
            try:
                parsed = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
            except ValueError:
                return self._iso()
            parsed = parsed if parsed.tzinfo else parsed.replace(tzinfo=dt.timezone.utc)
            return parsed.astimezone(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.000Z")
        return self._iso()

    def _create(self, body: Any, *, background: bool) -> httpx.Response:
        if isinstance(body, dict) and body.get("status") == "draft":
            return self._ok(200, self._store(body, "draft", None, "valid", None))  # drafts may be incomplete
        problems = self._invoice_problems(body)
        if problems:
            return self._invalid(problems)
        key = body.get("idempotency_key") or None
        if key is not None and self._busy.get(key, 0) > 0:
            self._busy[key] -= 1
            return self._fail(409, "idempotency_key_in_use", location="body", path="idempotency_key")
        if key is not None and key in self._keys:
            return self._ok(200, self._view(self.records[self._keys[key]]))
        customer = self._customer_info(body["customer"])
        tax_id = customer.get("tax_id")
        now = self.clock.now()
        if tax_id in (RECOVERY_TAX_ID, RECOVERY_FAIL_TAX_ID):
            valid = tax_id == RECOVERY_TAX_ID
            ready = now + (RECOVERY_VALID_AFTER if valid else RECOVERY_FAILED_AFTER)
            invoice = self._store(body, "pending", ready, "valid" if valid else "failed",
                                  None if valid else RECOVERY_FAILURE, customer)  # fmt: skip
            return self._ok(200 if background else 202, invoice)
        if background:
            fails = tax_id == FAIL_TAX_ID or (self.fail_rate > 0 and self._rng.random() < self.fail_rate)
            message = (SAT_REFUSAL if tax_id == FAIL_TAX_ID else RANDOM_FAILURE) if fails else None
            invoice = self._store(body, "pending", now + self.async_delay, "failed" if fails else "valid", message,
                                  customer)  # fmt: skip
            return self._ok(200, invoice)
        if tax_id == FAIL_TAX_ID:
            return self._fail(400, "invoice_stamping_validation_error", location="body", path="customer.tax_id",
                              errors=[{"message": SAT_REFUSAL, "code": "CFDI40145", "source": "sat",
                                       "location": "body", "path": "customer.tax_id"}])  # fmt: skip
        return self._ok(200, self._store(body, "valid", None, "valid", None, customer))

    def _store(self, body: Mapping[str, Any], status: str, ready_at: float | None, outcome: str,
               message: str | None, customer: dict[str, Any] | None = None) -> dict[str, Any]:  # fmt: skip
        invoice_id = self._new_id()
        self._seq += 1
        self._folio += 1
        items = [dict(item) for item in body.get("items") or []]
        complete = status != "draft" or not self._invoice_problems(body)
        total = sum((self._item_total(i) for i in items), Decimal(0)) if complete else Decimal(0)
        invoice: dict[str, Any] = {
            "id": invoice_id, "created_at": self._iso(), "livemode": False, "status": status,
            "cancellation_status": "none", "canceled_at": None, "verification_url": None,
            "date": self._date(body.get("date")), "type": body.get("type", "I"),
            "customer": customer if customer is not None else body.get("customer"),
            "total": total, "amount_due": total,
            "uuid": None, "folio_number": body.get("folio_number") or self._folio,
            "series": body.get("series") or "A", "external_id": body.get("external_id"),
            "idempotency_key": body.get("idempotency_key"), "payment_form": body.get("payment_form"),
            "payment_method": body.get("payment_method", "PUE"), "use": body.get("use", "G01"),
            "currency": body.get("currency", "MXN"), "exchange": body.get("exchange", Decimal(1)),
            "items": items, "stamp": None, "complements": [], "related_documents": [],
        }  # fmt: skip
        if status == "valid":
            self._stamp(invoice, self.clock.now())
        self.records[invoice_id] = {"invoice": invoice, "ready_at": ready_at, "outcome": outcome,
                                    "message": message, "seq": self._seq}  # fmt: skip
        if body.get("idempotency_key"):
            self._keys[str(body["idempotency_key"])] = invoice_id
        return dict(invoice)

    def _get_invoice(self, invoice_id: str) -> httpx.Response:
        rec = self.records.get(invoice_id)
        if rec is None:
            return self._fail(404, "invoice_not_found", location="params", path="invoice_id")
        return self._ok(200, self._view(rec))

    @staticmethod
    def _matches(invoice: Mapping[str, Any], params: Mapping[str, str]) -> bool:
        customer = _customer_of(invoice)
        for name in ("external_id", "series"):
            if name in params and invoice.get(name) != params[name]:
                return False
        if "customer" in params and customer.get("id") != params["customer"]:
            return False
        q = params.get("q")
        if q:
            words = [str(customer.get("legal_name") or "")] + [
                str(item.get("product", {}).get("description") or "") for item in invoice.get("items") or []
            ]
            exact = {invoice.get("id"), invoice.get("uuid"), customer.get("tax_id"), str(invoice.get("folio_number")),
                     str(invoice.get("total"))}  # fmt: skip
            if q not in exact and not any(q.lower() in w.lower() for w in words):
                return False
        date = str(invoice.get("date") or "")
        for op, keep in (("gte", operator.ge), ("gt", operator.gt), ("lt", operator.lt), ("lte", operator.le)):
            bound = params.get(f"date[{op}]")
            if bound is not None:
                parsed = dt.datetime.fromisoformat(bound.replace("Z", "+00:00"))
                parsed = parsed if parsed.tzinfo else parsed.replace(tzinfo=dt.timezone.utc)
                mine = dt.datetime.fromisoformat(date.replace("Z", "+00:00"))
                if not keep(mine, parsed):
                    return False
        return True

    def _page(self, params: Mapping[str, str], items: list[dict[str, Any]]) -> httpx.Response:
        try:
            page = int(params.get("page", "1"))
            limit = int(params.get("limit", "50"))
        except ValueError:
            return self._invalid([("page", "invalid", "page y limit deben ser enteros")], "query")
        if not 1 <= limit <= 100:
            return self._invalid([("limit", "invalid", "limit debe estar entre 1 y 100")], "query")
        if page < 1:
            return self._invalid([("page", "invalid", "page debe ser mayor a 0")], "query")
        if page > MAX_PAGE:
            return self._fail(400, "page_too_large", location="query", path="page")
        total_pages = (len(items) + limit - 1) // limit
        return self._ok(200, {"page": page, "total_pages": total_pages, "total_results": len(items),
                              "data": items[(page - 1) * limit : page * limit]})  # fmt: skip

    def _list_invoices(self, params: Mapping[str, str]) -> httpx.Response:
        try:
            found = [(rec["seq"], self._view(rec)) for rec in self.records.values()]
            found = [(seq, inv) for seq, inv in found if self._matches(inv, params)]
        except ValueError:
            return self._fail(400, "invalid_date", location="query", path="date")
        found.sort(key=lambda t: (t[1]["date"], t[0]), reverse=True)
        return self._page({"limit": "100", **params}, [inv for _, inv in found])

    def _cancel(self, invoice_id: str, params: Mapping[str, str]) -> httpx.Response:
        rec = self.records.get(invoice_id)
        if rec is None:
            return self._fail(404, "invoice_not_found", location="params", path="invoice_id")
        motive = params.get("motive")
        if motive not in _MOTIVES:
            return self._invalid([("motive", "invalid", "motivo de cancelación no válido (01, 02, 03 o 04)")], "query")
        if motive == "01" and not params.get("substitution"):
            return self._fail(400, "substitution_invoice_required", location="query", path="substitution")
        invoice = self._view(rec)
        if invoice["status"] == "draft":
            del self.records[invoice_id]
            return self._ok(200, invoice)
        if invoice["status"] != "valid":
            return self._fail(409, "invoice_not_cancelable")
        if invoice["cancellation_status"] in ("pending", "verifying"):
            return self._fail(409, "invoice_cancellation_in_progress")
        stored = rec["invoice"]
        if self.cancel_needs_acceptance:
            stored["cancellation_status"] = "pending"
            rec["cancel_done_at"] = self.clock.now() + CANCEL_ACCEPTANCE
        else:
            stored.update(status="canceled", cancellation_status="accepted", canceled_at=self._iso())
        return self._ok(200, dict(stored))

    def _download(self, invoice_id: str, kind: str) -> httpx.Response:
        rec = self.records.get(invoice_id)
        if rec is None:
            return self._fail(404, "invoice_not_found", location="params", path="invoice_id")
        invoice = self._view(rec)
        stamped = invoice["status"] in ("valid", "canceled")
        if not stamped and not (kind == "pdf" and invoice["status"] == "draft"):
            return self._fail(409, "invoice_not_stamped")
        pdf = self._pdf(invoice)
        if kind == "pdf":
            return httpx.Response(200, content=pdf, headers={"content-type": "application/pdf",
                                                             "x-facturapi-log-id": self._log_id()})  # fmt: skip
        xml = self._xml(invoice)
        if kind == "xml":
            return httpx.Response(200, content=xml, headers={"content-type": "application/xml",
                                                             "x-facturapi-log-id": self._log_id()})  # fmt: skip
        buffer = io.BytesIO()
        with zipfile.ZipFile(buffer, "w") as archive:
            archive.writestr(f"{invoice['uuid']}.pdf", pdf)
            archive.writestr(f"{invoice['uuid']}.xml", xml)
        headers = {"content-type": "application/zip", "x-facturapi-log-id": self._log_id()}
        return httpx.Response(200, content=buffer.getvalue(), headers=headers)

    @staticmethod
    def _pdf(invoice: Mapping[str, Any]) -> bytes:
        text = f"Factura {invoice.get('series')}-{invoice.get('folio_number')} total {invoice.get('total')}"
        return b"%PDF-1.4\n% billkit sandbox\n" + text.encode() + b"\n%%EOF\n"

    @staticmethod
    def _xml(invoice: Mapping[str, Any]) -> bytes:
        customer = _customer_of(invoice)
        return (
            '<?xml version="1.0" encoding="UTF-8"?>\n'
            f'<cfdi:Comprobante Version="4.0" Serie="{invoice.get("series")}" Folio="{invoice.get("folio_number")}" '
            f'Total="{invoice.get("total")}" Moneda="{invoice.get("currency")}">'
            f'<cfdi:Receptor Rfc="{customer.get("tax_id")}"/>'
            f'<cfdi:Complemento><tfd:TimbreFiscalDigital UUID="{invoice.get("uuid")}"/></cfdi:Complemento>'
            "</cfdi:Comprobante>\n"
        ).encode()

    def _email(self, invoice_id: str, body: Any) -> httpx.Response:
        rec = self.records.get(invoice_id)
        if rec is None:
            return self._fail(404, "invoice_not_found", location="params", path="invoice_id")
        if self._view(rec)["status"] not in ("valid", "canceled"):
            return self._fail(409, "invoice_not_stamped")
        emails = body.get("email") if isinstance(body, dict) else None
        if isinstance(emails, list) and not 1 <= len(emails) <= 10:
            return self._invalid([("email", "invalid", "de 1 a 10 correos")])
        return self._ok(200, {"ok": True})

    # -- customers -------------------------------------------------------------------------------------------
    def _create_customer(self, body: Any) -> httpx.Response:
        problems = self._customer_problems(body, "")
        if problems:
            return self._invalid(problems)
        for customer in self.customers.values():
            if customer["tax_id"] == body["tax_id"] and customer["legal_name"] == body["legal_name"]:
                return self._ok(200, customer)
        customer = {"created_at": self._iso(), "livemode": False, **self._customer_info(body)}
        self.customers[customer["id"]] = customer
        return self._ok(201, customer)

    def _list_customers(self, params: Mapping[str, str]) -> httpx.Response:
        q = (params.get("q") or "").lower()
        found = [
            c
            for c in self.customers.values()
            if not q or q in str(c.get("legal_name", "")).lower() or q == str(c.get("tax_id", "")).lower()
        ]
        return self._page(params, list(reversed(found)))

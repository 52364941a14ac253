"""The Facturapi sandbox's account routes: monthly ZIP requests, ``/organizations/me`` and the organisation's folio
series, the PDF preview, and webhook endpoints. Its state is :func:`account` (``account(box).zip_requests``, ...).

Written from Facturapi's OpenAPI file; where it is silent the sandbox chose, as said here:

* **Live-only routes.** ZIP requests need a live key with a subscription and the series a live or user key; the
  sandbox's one key stands for such a key there. With ``account(box).live_access = False`` the ZIP routes answer
  what a test key gets, 402 ``subscription_live_access_required``, and the series routes 401
  ``live_api_key_required`` (a sandbox choice: the spec only lists 401 for them).
* **ZIP requests.** ``POST /invoices/zip-requests`` checks the body (``year`` 2000-9999, ``month`` 1-12,
  ``issuer_type``, ``invoice_types`` a non-empty set of ``I E T N P``; 400 otherwise), normalises the types
  (sorted; all five when none is given) and answers the existing request for the same filters (the spec's
  idempotency), retrying it when it is ``failed``. The month is bounded in Mexico City time (UTC-6), as the spec's
  example ``start_date`` is. Its documents are the organisation's stamped invoices (``valid`` or ``canceled``: a
  sandbox reading of "valid invoices") dated in the month, of those types, chosen when the request is made; none is
  404 ``zip_request_no_invoices``. The sandbox's invoices are all ``issuing``. The request is ``created``, then
  ``processing`` after half of :attr:`AccountState.zip_delay` (virtual) seconds, then ``finished`` (or ``failed``,
  for the next :attr:`AccountState.zip_fail_next` requests, every document in ``failed_documents``) after all of
  it. ``GET .../{id}/zip`` is 409 ``zip_request_not_ready`` before ``finished``, then a real ZIP (``zipfile``) of
  each document's XML and PDF (``<uuid>.xml`` / ``<uuid>.pdf``, as the single-invoice ZIP), named ``YYYY-MM.zip``
  in ``Content-Disposition``. A malformed id is 400; an unknown one 404 ``zip_request_not_found``. The list takes
  ``year`` and ``month`` together (400 otherwise), ``status``, ``issuer_type`` and ``invoice_types`` (one type:
  the requests that hold it; several: that exact set, a sandbox reading of "one type or an exact normalized
  array"), newest first.
* **Series.** ``/organizations/{id}/series-group`` for the sandbox's organisation (:data:`ORGANIZATION_ID`; another
  id is 404). Create needs ``series`` (1-55 characters), ``next_folio`` and ``next_folio_test`` (whole numbers
  from 1: a sandbox choice, the spec gives no minimum), a name taken is 400; update takes only the two folios; a
  missing series is 404; the default series (``type`` ``I E P N T``, a series of 1-25 characters that exists) is
  kept in :attr:`AccountState.default_series`. The sandbox's invoices do not draw their folios from these series.
* **Preview.** ``POST /invoices/preview/pdf`` checks the body as a create would (400 listing every problem) and
  answers a PDF; nothing is stored, no folio is used.
* **Webhooks.** Create needs an absolute http(s) ``url`` and ``enabled_events`` (a non-empty set of the create
  schema's events; ``description`` is also taken, as the Node SDK types it); a URL already registered answers 200
  with that webhook as it is (the spec), a new one 201 with its ``secret``, which only the create answer carries
  (a sandbox reading of "upon creation") and which is :attr:`FacturapiSandbox.webhook_secret`, the secret the
  sandbox signs its events with. The edit requires ``enabled_events`` (the edit schema's events) and takes
  ``status``; any other field (the URL) is 400. An unknown id is 404 ``webhook_not_found``.
"""

from __future__ import annotations

import datetime as dt
import io
import zipfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import httpx

if TYPE_CHECKING:
    from billkit.providers.facturapi.sandbox import FacturapiSandbox

__all__ = ["ORGANIZATION_ID", "AccountState", "account", "route"]

#: the sandbox's organisation (the ``organization`` of its events too)
ORGANIZATION_ID = "5f0c9a1b2c3d4e5f6a7b8c9d"
MEXICO_CITY = dt.timezone(dt.timedelta(hours=-6))
INVOICE_TYPES = ("E", "I", "N", "P", "T")
ISSUER_TYPES = ("issuing", "receiving")
ZIP_STATUSES = ("created", "processing", "finished", "failed", "none")
WEBHOOK_EVENTS = (
    "invoice.global_invoice_created",
    "invoice.status_updated",
    "invoice.cancellation_status_updated",
    "invoice.created_from_dashboard",
    "receipt.self_invoice_complete",
    "receipt.status_updated",
    "receipt.cancellation_status_updated",
)
EDIT_EVENTS = tuple(e for e in WEBHOOK_EVENTS if e != "invoice.created_from_dashboard")
Problems = list[tuple[str, str, str]]


@dataclass
class AccountState:
    """What the sandbox keeps for the account routes (see the module docstring)."""

    #: virtual seconds from a ZIP request (or its retry) to ``finished``
    zip_delay: float = 30.0
    #: the next this many ZIP requests end ``failed``
    zip_fail_next: int = 0
    #: False: the live-only routes answer as Facturapi does to a test key
    live_access: bool = True
    #: ZIP requests by id: ``{"zip": its fields, "docs": invoice ids, "year", "month", "at": scheduled, "outcome"}``
    zip_requests: dict[str, dict[str, Any]] = field(default_factory=dict)
    #: series by name, as ``GET series-group`` shows them
    series: dict[str, dict[str, Any]] = field(default_factory=dict)
    #: the default series by CFDI type
    default_series: dict[str, str] = field(default_factory=dict)
    #: webhooks by id (their secret is not kept: it is the sandbox's ``webhook_secret``)
    webhooks: dict[str, dict[str, Any]] = field(default_factory=dict)


def account(box: FacturapiSandbox) -> AccountState:
    """The account state of ``box`` (made on first use; it saves and loads with the sandbox)."""
    state = box.__dict__.get("account_state")
    if not isinstance(state, AccountState):
        state = AccountState()
        box.__dict__["account_state"] = state
    return state


def _whole(value: Any, low: int, high: int | None = None) -> bool:
    return not isinstance(value, bool) and isinstance(value, int) and value >= low and (high is None or value <= high)


def _parse(value: Any) -> dt.datetime | None:
    if not isinstance(value, str):
        return None
    try:
        parsed = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=dt.timezone.utc)


def _utc(when: dt.datetime) -> str:
    when = when.astimezone(dt.timezone.utc)
    return when.strftime("%Y-%m-%dT%H:%M:%S.") + f"{when.microsecond // 1000:03d}Z"


def _json(box: FacturapiSandbox, body: Any) -> httpx.Response | None:
    return None if isinstance(body, dict) else box._invalid([("", "invalid_json", "el cuerpo debe ser un objeto JSON")])


# -- ZIP requests ---------------------------------------------------------------------------------------------------


def _month(year: int, month: int) -> tuple[dt.datetime, dt.datetime]:
    start = dt.datetime(year, month, 1, tzinfo=MEXICO_CITY)
    following = dt.datetime(year + (month == 12), month % 12 + 1, 1, tzinfo=MEXICO_CITY)
    return start, following - dt.timedelta(milliseconds=1)


def _types(value: Any, problems: Problems, where: str) -> list[str] | None:
    if value is None:
        return list(INVOICE_TYPES)
    if not isinstance(value, list) or not value:
        problems.append((where, "invalid", "invoice_types debe ser una lista con al menos un tipo"))
        return None
    if any(t not in INVOICE_TYPES for t in value) or len(set(value)) != len(value):
        problems.append((where, "invalid", "tipos de factura no válidos o repetidos (I, E, T, N, P)"))
        return None
    return sorted(value)


def _zip_documents(box: FacturapiSandbox, start: dt.datetime, end: dt.datetime, types: list[str]) -> list[str]:
    found = []
    for invoice_id, rec in box.records.items():
        invoice = box._view(rec)
        when = _parse(invoice.get("date"))
        if invoice["status"] not in ("valid", "canceled") or invoice.get("type", "I") not in types or when is None:
            continue
        if start <= when <= end:
            found.append(invoice_id)
    return found


def _schedule(box: FacturapiSandbox, rec: dict[str, Any]) -> None:
    state = account(box)
    rec["at"] = box.clock.now()
    rec["outcome"] = "finished"
    if state.zip_fail_next > 0:
        state.zip_fail_next -= 1
        rec["outcome"] = "failed"
    rec["zip"]["scheduled_at"] = box._iso()


def _zip_view(box: FacturapiSandbox, rec: dict[str, Any]) -> dict[str, Any]:
    delay = account(box).zip_delay
    elapsed = box.clock.now() - rec["at"]
    count = len(rec["docs"])
    view = {**rec["zip"], "document_count": count, "failed_documents": []}
    if elapsed >= delay:
        if rec["outcome"] == "failed":
            view.update(status="failed", processed_document=0, failed_documents=list(rec["docs"]))
        else:
            view.update(status="finished", processed_document=count)
    elif elapsed >= delay / 2:
        view.update(status="processing", processed_document=int(count * elapsed / delay) if delay else count)
    else:
        view.update(status="created", processed_document=0)
    return view


def _zip_create(box: FacturapiSandbox, body: Any) -> httpx.Response:
    bad = _json(box, body)
    if bad is not None:
        return bad
    problems: Problems = []
    year, month, issuer = body.get("year"), body.get("month"), body.get("issuer_type", "issuing")
    if not _whole(year, 2000, 9999):
        problems.append(("year", "invalid", "el año debe estar entre 2000 y 9999"))
    if not _whole(month, 1, 12):
        problems.append(("month", "invalid", "el mes debe estar entre 1 y 12"))
    if issuer not in ISSUER_TYPES:
        problems.append(("issuer_type", "invalid", "issuer_type debe ser issuing o receiving"))
    types = _types(body.get("invoice_types"), problems, "invoice_types")
    if problems or types is None:
        return box._invalid(problems)
    state = account(box)
    for rec in state.zip_requests.values():
        held = rec["zip"]
        if (rec["year"], rec["month"], held["issuer_type"], held["invoice_types"]) == (year, month, issuer, types):
            if _zip_view(box, rec)["status"] == "failed":  # a failed request is retried, its progress cleared
                _schedule(box, rec)
            return box._ok(200, _zip_view(box, rec))
    start, end = _month(year, month)
    docs = _zip_documents(box, start, end, types) if issuer == "issuing" else []
    if not docs:
        return box._fail(404, "zip_request_no_invoices", message="No se encontraron facturas para generar el ZIP")
    zip_id = box._new_id()
    stored = {
        "id": zip_id, "created_at": box._iso(), "livemode": True, "organization": ORGANIZATION_ID,
        "issuer_type": issuer, "invoice_types": types, "start_date": _utc(start), "end_date": _utc(end),
    }  # fmt: skip
    rec = {"zip": stored, "docs": docs, "year": year, "month": month}
    _schedule(box, rec)
    state.zip_requests[zip_id] = rec
    return box._ok(200, _zip_view(box, rec))


def _zip_list(box: FacturapiSandbox, params: Mapping[str, str]) -> httpx.Response:
    problems: Problems = []
    if ("year" in params) != ("month" in params):
        problems.append(("year", "invalid", "year y month van juntos"))
    try:
        year = int(params["year"]) if "year" in params else None
        month = int(params["month"]) if "month" in params else None
    except ValueError:
        return box._invalid([("year", "invalid", "year y month deben ser enteros")], "query")
    if params.get("status") not in (None, *ZIP_STATUSES):
        problems.append(("status", "invalid", "estado no válido"))
    if params.get("issuer_type") not in (None, *ISSUER_TYPES):
        problems.append(("issuer_type", "invalid", "issuer_type no válido"))
    wanted = params["invoice_types"].split(",") if "invoice_types" in params else None
    if wanted is not None and (any(t not in INVOICE_TYPES for t in wanted) or len(set(wanted)) != len(wanted)):
        problems.append(("invoice_types", "invalid", "tipos de factura no válidos"))
    if problems:
        return box._invalid(problems, "query")
    found = []
    for rec in reversed(list(account(box).zip_requests.values())):
        view = _zip_view(box, rec)
        if year is not None and (rec["year"], rec["month"]) != (year, month):
            continue
        if params.get("status") not in (None, view["status"]) or params.get("issuer_type") not in (
            None,
            view["issuer_type"],
        ):
            continue
        if wanted is not None and (
            wanted[0] not in view["invoice_types"] if len(wanted) == 1 else sorted(wanted) != view["invoice_types"]
        ):
            continue
        found.append(view)
    return box._page(params, found)


def _zip_file(box: FacturapiSandbox, rec: dict[str, Any]) -> httpx.Response:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for invoice_id in rec["docs"]:
            stored = box.records.get(invoice_id)
            if stored is None:
                continue
            invoice = box._view(stored)
            archive.writestr(f"{invoice['uuid']}.xml", box._xml(invoice))
            archive.writestr(f"{invoice['uuid']}.pdf", box._pdf(invoice))
    name = f"{rec['year']:04d}-{rec['month']:02d}.zip"
    headers = {
        "content-type": "application/zip",
        "content-disposition": f'attachment; filename="{name}"',
        "x-facturapi-log-id": box._log_id(),
    }
    return httpx.Response(200, content=buffer.getvalue(), headers=headers)


def _zip_route(
    box: FacturapiSandbox, method: str, path: list[str], params: Mapping[str, str], body: Any
) -> httpx.Response:
    if not account(box).live_access:
        return box._fail(402, "subscription_live_access_required", message="Se requiere acceso en modo live")
    if len(path) == 2:
        if method == "POST":
            return _zip_create(box, body)
        if method == "GET":
            return _zip_list(box, params)
        return box._fail(405, "method_not_allowed")
    zip_id = path[2]
    if len(zip_id) != 24 or any(c not in "0123456789abcdefABCDEF" for c in zip_id):
        return box._invalid([("id", "invalid", "identificador de solicitud no válido")], "params")
    rec = account(box).zip_requests.get(zip_id)
    if rec is None:
        return box._fail(404, "zip_request_not_found", location="params", path="id",
                         message="No se encontró la solicitud de ZIP")  # fmt: skip
    if method != "GET" or len(path) > 4 or (len(path) == 4 and path[3] != "zip"):
        return box._fail(404, "not_found")
    view = _zip_view(box, rec)
    if len(path) == 3:
        return box._ok(200, view)
    if view["status"] != "finished":
        return box._fail(409, "zip_request_not_ready", message="El archivo ZIP aún no está listo")
    return _zip_file(box, rec)


# -- the organisation and its series -----------------------------------------------------------------------------


def _organization(box: FacturapiSandbox) -> dict[str, Any]:
    return {
        "id": ORGANIZATION_ID, "created_at": "2024-01-15T18:00:00.000Z", "timezone": "America/Mexico_City",
        "is_production_ready": True, "pending_steps": [],
        "legal": {"name": "billkit sandbox", "legal_name": "BILLKIT SANDBOX", "tax_id": "EKU9003173C9",
                  "tax_system": "601", "address": {"zip": "42501", "country": "MEX"}},
        "customization": {"has_logo": False, "color": "#2F6FEB"},
    }  # fmt: skip


def _series_problems(body: Mapping[str, Any], *, create: bool) -> Problems:
    problems: Problems = []
    allowed = {"series", "next_folio", "next_folio_test"} if create else {"next_folio", "next_folio_test"}
    for name in sorted(set(body) - allowed):
        problems.append((name, "invalid", f"campo no permitido: {name}"))
    if create:
        series = body.get("series")
        if not isinstance(series, str) or not series.strip() or len(series) > 55:
            problems.append(("series", "invalid", "el nombre de la serie debe tener de 1 a 55 caracteres"))
    for name in ("next_folio", "next_folio_test"):
        if (name in body or create) and not _whole(body.get(name), 1):
            problems.append((name, "invalid", f"{name} debe ser un entero mayor a 0"))
    if not create and not body:
        problems.append(("next_folio", "required", "nada que actualizar"))
    return problems


def _series_route(box: FacturapiSandbox, method: str, path: list[str], body: Any) -> httpx.Response:
    state = account(box)
    if not state.live_access:
        return box._fail(401, "live_api_key_required", location="headers", path="authorization",
                         message="Se requiere una llave live o de usuario")  # fmt: skip
    if path[1] != ORGANIZATION_ID:
        return box._fail(404, "not_found", location="params", path="organization_id",
                         message="No se encontró la organización")  # fmt: skip
    series = state.series
    if len(path) == 3:
        if method == "GET":
            return box._ok(200, {"data": [dict(s) for s in series.values()]})
        if method != "POST":
            return box._fail(405, "method_not_allowed")
        bad = _json(box, body)
        if bad is not None:
            return bad
        problems = _series_problems(body, create=True)
        if not problems and body["series"] in series:
            problems.append(("series", "series_already_exists", "ya existe una serie con ese nombre"))
        if problems:
            return box._invalid(problems)
        made = {"series": body["series"], "next_folio": body["next_folio"], "next_folio_test": body["next_folio_test"]}
        series[made["series"]] = made
        return box._ok(200, dict(made))
    name = path[3]
    if len(path) == 4 and name == "default-series" and method == "PUT":
        bad = _json(box, body)
        if bad is not None:
            return bad
        problems = []
        if body.get("type") not in INVOICE_TYPES:
            problems.append(("type", "invalid", "tipo de factura no válido (I, E, P, N, T)"))
        chosen = body.get("series")
        if not isinstance(chosen, str) or not 1 <= len(chosen) <= 25:
            problems.append(("series", "invalid", "la serie debe tener de 1 a 25 caracteres"))
        if problems:
            return box._invalid(problems)
        if chosen not in series:
            return box._fail(404, "not_found", location="body", path="series", message="No se encontró la serie")
        state.default_series[body["type"]] = chosen
        return box._ok(200, {"ok": True})
    if len(path) != 4 or method not in ("PUT", "DELETE"):
        return box._fail(405, "method_not_allowed")
    if name not in series:
        return box._fail(404, "not_found", location="params", path="series_name", message="No se encontró la serie")
    if method == "DELETE":
        gone = series.pop(name)
        state.default_series = {k: v for k, v in state.default_series.items() if v != name}
        return box._ok(200, gone)
    bad = _json(box, body)
    if bad is not None:
        return bad
    problems = _series_problems(body, create=False)
    if problems:
        return box._invalid(problems)
    series[name].update(body)
    return box._ok(200, dict(series[name]))


# -- the PDF preview -------------------------------------------------------------------------------------------------


def _preview(box: FacturapiSandbox, body: Any) -> httpx.Response:
    from billkit.providers.facturapi import sandbox_lifecycle

    bad = _json(box, body)
    if bad is not None:
        return bad
    shape = {k: v for k, v in body.items() if k != "status"}  # a draft's body previews like any other
    problems = sandbox_lifecycle._problems(box, shape, stateful=False)
    if problems:
        return box._invalid(problems)
    items = body.get("items") or []
    total = sum((box._item_total(i) for i in items if isinstance(i, dict)), Decimal(0))
    text = f"VISTA PREVIA (sin timbrar) Factura {body.get('series', '')}-{body.get('folio_number', '')} total {total}"
    content = b"%PDF-1.4\n% billkit sandbox preview\n" + text.encode() + b"\n%%EOF\n"
    return httpx.Response(200, content=content, headers={"content-type": "application/pdf",
                                                         "x-facturapi-log-id": box._log_id()})  # fmt: skip


# -- webhooks -------------------------------------------------------------------------------------------------------


def _url_ok(url: Any) -> bool:
    if not isinstance(url, str) or any(c.isspace() for c in url):
        return False
    try:
        parts = urlsplit(url)
    except ValueError:
        return False
    return parts.scheme in ("http", "https") and bool(parts.hostname)


def _events_problems(events: Any, allowed: tuple[str, ...]) -> Problems:
    if not isinstance(events, list) or not events:
        return [("enabled_events", "required", "se requiere al menos un evento")]
    if any(e not in allowed for e in events) or len(set(events)) != len(events):
        return [("enabled_events", "invalid", "eventos no válidos o repetidos")]
    return []


def _webhooks(
    box: FacturapiSandbox, method: str, path: list[str], params: Mapping[str, str], body: Any
) -> httpx.Response:
    hooks = account(box).webhooks
    if len(path) == 1:
        if method == "GET":
            return box._page(params, [dict(h) for h in reversed(list(hooks.values()))])
        if method != "POST":
            return box._fail(405, "method_not_allowed")
        bad = _json(box, body)
        if bad is not None:
            return bad
        problems: Problems = [(k, "invalid", f"campo no permitido: {k}") for k in sorted(set(body) - {
            "url", "enabled_events", "description"})]  # fmt: skip
        if not _url_ok(body.get("url")):
            problems.append(("url", "invalid", "la URL debe ser absoluta (http o https)"))
        problems += _events_problems(body.get("enabled_events"), WEBHOOK_EVENTS)
        if problems:
            return box._invalid(problems)
        for hook in hooks.values():
            if hook["url"] == body["url"]:
                return box._ok(200, dict(hook))  # the spec: an existing webhook with the same URL
        hook = {
            "id": box._new_id(), "created_at": box._iso(), "livemode": False, "organization": ORGANIZATION_ID,
            "enabled_events": list(body["enabled_events"]), "url": body["url"], "status": "enabled",
            **({"description": body["description"]} if "description" in body else {}),
        }  # fmt: skip
        hooks[hook["id"]] = hook
        return box._ok(201, {**hook, "secret": box.webhook_secret})
    hook_id = path[1]
    found = hooks.get(hook_id)
    if found is None or len(path) != 2:
        return box._fail(404, "webhook_not_found", location="params", path="webhook_id",
                         message="No se encontró el webhook")  # fmt: skip
    if method == "GET":
        return box._ok(200, dict(found))
    if method == "DELETE":
        return box._ok(200, hooks.pop(hook_id))
    if method != "PUT":
        return box._fail(405, "method_not_allowed")
    bad = _json(box, body)
    if bad is not None:
        return bad
    problems = [(k, "invalid", f"campo no permitido: {k}") for k in sorted(set(body) - {"enabled_events", "status"})]
    problems += _events_problems(body.get("enabled_events"), EDIT_EVENTS)
    if body.get("status", "enabled") not in ("enabled", "disabled"):
        problems.append(("status", "invalid", "el estado debe ser enabled o disabled"))
    if problems:
        return box._invalid(problems)
    found.update(body)
    return box._ok(200, dict(found))


# -- routing --------------------------------------------------------------------------------------------------------


def route(
    box: FacturapiSandbox, method: str, path: list[str], params: Mapping[str, str], body: Any
) -> httpx.Response | None:
    """The answer of an account route, or None for the sandbox's other routes."""
    if path[:2] == ["invoices", "zip-requests"]:
        return _zip_route(box, method, path, params, body)
    if path == ["invoices", "preview", "pdf"]:
        return _preview(box, body) if method == "POST" else box._fail(405, "method_not_allowed")
    if path == ["organizations", "me"]:
        return box._ok(200, _organization(box)) if method == "GET" else box._fail(405, "method_not_allowed")
    if len(path) >= 3 and path[0] == "organizations" and path[2] == "series-group":
        return _series_route(box, method, path, body)
    if path[:1] == ["webhooks"] and path[1:2] != ["validate-signature"]:
        return _webhooks(box, method, path, params, body)
    return None

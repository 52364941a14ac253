"""Facturapi's account operations on the native client: monthly ZIP downloads, the organisation and its folio
series, the PDF preview of an invoice, and webhook endpoints.

**Monthly ZIP requests** (``/invoices/zip-requests``). Facturapi prepares the ZIP of one month of invoices in the
background: :meth:`FacturapiAccount.create_zip_request` asks for it (the spec calls the create idempotent: the same
filters answer with the same request, a ``failed`` one is retried; so billkit repeats it like a read),
:meth:`~FacturapiAccount.wait_for_zip_request` reads it until ``finished`` (or raises :class:`OperationFailed` on
``failed``, :class:`OperationTimeout` at the deadline; the schedule is the client's :class:`~billkit.PollPolicy`:
its interval, else the answer's Retry-After, else backoff, each sleep cut to the deadline) and
:meth:`~FacturapiAccount.wait_and_download_zip_request` does both and returns the ZIP's bytes
(:meth:`~FacturapiAccount.download_zip_request_to` streams a large one to disk). Facturapi serves these routes to a
**live key with an active subscription** only: a test key gets 402 (:class:`PermissionDeniedError`, code
``subscription_live_access_required``). An unknown status keeps the wait polling until the deadline (only the
spec's terminal states end it); it shows as ``ZipRequestState.UNKNOWN`` with the raw string in ``status``.

**The organisation and its series.** :meth:`~FacturapiAccount.get_organization` is ``GET /organizations/me`` (the
organisation the key issues for). The series calls take ``organization_id``; without it billkit asks
``/organizations/me`` once per client and keeps the id (a key belongs to one organisation). Facturapi serves the
series to live and user keys only (``SecretLiveKey`` / ``SecretUserKey`` in the spec). Series names are 1-55
characters on create (the spec's limit; an invoice's ``series`` and the default series take at most 25, so a
longer name can never be used on an invoice). Facturapi has no idempotency key for these writes, so none is
repeated once it may have arrived; a lost answer is settled by reading the series back (the series named exists
with the folios asked for: it took; a deleted one is absent), otherwise :class:`OutcomeUnknownError` says how to
check. Setting the default series is an assignment (repeating it changes nothing), so it is retried like a read.

**PDF preview** (``POST /invoices/preview/pdf``): the PDF of an invoice body, nothing stamped or stored, so it is
retried like a read. A Bill is checked and mapped exactly as ``create`` does (its idempotency key left out).

**Webhooks.** ``POST /webhooks`` has no idempotency key. The spec says a create whose URL is already registered
answers 200 with that webhook, but not whether that holds for concurrent duplicates or whether such an answer
carries the secret, so billkit never repeats a create that may have arrived: after a lost answer it lists the
webhooks and returns the one with that URL and those events, else raises :class:`OutcomeUnknownError`. A 200 whose
webhook has other events (the URL was registered before) raises :class:`ConflictError` rather than pretend the
events were set: change them with :meth:`~FacturapiAccount.update_webhook`. ``PUT /webhooks/{id}`` must carry
``enabled_events`` (the spec's edit schema requires it): when only ``status`` is given billkit sends the webhook's
current events, read first. The edit schema does not list ``invoice.created_from_dashboard`` (the create's does), so
billkit refuses it on an edit. Updates are not repeated once they may have arrived; a lost answer is settled by a
read (the webhook shows the change: it took). **Secrets**: the signing secret Facturapi returns on creation is a
SecretStr; it never shows in a repr, an error or a log line, and URLs are shown without their query string.
"""

from __future__ import annotations

import math
import os
import random
import re
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, Literal
from urllib.parse import urlsplit

from billkit.errors import (
    APIError,
    ConflictError,
    NotFoundError,
    OperationFailed,
    OperationTimeout,
    OutcomeUnknownError,
    Problem,
    ValidationError,
)
from billkit.flows import Emit, Flow, M, Native, Sleep, Stream, collect, operation, stream_of
from billkit.models import Bill
from billkit.providers.facturapi.mapping import MAX_ITEMS, PROVIDER, read
from billkit.providers.facturapi.wire import SearchResult
from billkit.providers.facturapi.wire_account import (
    Organization,
    Series,
    Webhook,
    ZipRequest,
    ZipRequestState,
    read_webhook,
)
from billkit.transport import Request, Response, encode_body

if TYPE_CHECKING:
    from billkit.providers.facturapi.client import FacturapiAdapter

__all__ = [
    "EDIT_EVENTS",
    "INVOICE_TYPES",
    "WEBHOOK_EVENTS",
    "FacturapiAccount",
    "zip_request_body",
]

#: ``InvoiceZipRequestInvoiceType``
INVOICE_TYPES = ("I", "E", "T", "N", "P")
ISSUER_TYPES = ("issuing", "receiving")
ZIP_STATUSES = ("created", "processing", "finished", "failed", "none")
#: the events ``WebhookCreateInput.enabled_events`` lists
WEBHOOK_EVENTS = (
    "invoice.global_invoice_created",
    "invoice.status_updated",
    "invoice.cancellation_status_updated",
    "invoice.created_from_dashboard",
    "receipt.self_invoice_complete",
    "receipt.status_updated",
    "receipt.cancellation_status_updated",
)
#: the events ``WebhookCreateEdit.enabled_events`` lists (no ``invoice.created_from_dashboard``)
EDIT_EVENTS = tuple(e for e in WEBHOOK_EVENTS if e != "invoice.created_from_dashboard")
WEBHOOK_STATUSES = ("enabled", "disabled")
#: the largest series name the spec takes on create; 25 for an invoice's series and the default series
MAX_SERIES = 55
MAX_DEFAULT_SERIES = 25
MAX_PAGE = 30
_HEX24 = re.compile(r"^[a-fA-F0-9]{24}$")
#: where a client keeps the organisation id ``/organizations/me`` answered (one key, one organisation)
_ORG_ID = "facturapi.organization_id"


def _invalid(problems: list[Problem]) -> ValidationError:
    return ValidationError(problems, provider=PROVIDER)


def _whole(problems: list[Problem], name: str, value: Any, low: int, high: int | None = None) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < low or (high is not None and value > high):
        span = f"from {low} to {high}" if high is not None else f"from {low}"
        problems.append(Problem(name, f"{value!r}: a whole number {span}"))


def _name(problems: list[Problem], field: str, value: Any, most: int) -> None:
    if not isinstance(value, str) or not value.strip() or len(value) > most or value != value.strip():
        problems.append(Problem(field, f"{value!r}: 1 to {most} characters, no leading or trailing spaces"))


def _limit(limit: Any) -> None:
    if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= 100:
        raise _invalid([Problem("limit", f"{limit!r}: Facturapi pages hold 1 to 100 results")])


def _check_zip_id(zip_request_id: Any) -> None:
    if not isinstance(zip_request_id, str) or not _HEX24.match(zip_request_id):
        raise _invalid([Problem("zip_request_id", f"{zip_request_id!r} is not a ZIP request id (24 hex digits)")])


def _types(problems: list[Problem], value: Sequence[str] | None) -> list[str] | None:
    if value is None:
        return None
    types = [value] if isinstance(value, str) else list(value) if isinstance(value, Sequence) else None
    if not types:
        problems.append(Problem("invoice_types", "at least one of " + ", ".join(INVOICE_TYPES)))
        return None
    bad = [t for t in types if t not in INVOICE_TYPES]
    if bad:
        problems.append(Problem("invoice_types", f"{bad!r}: each one of {', '.join(INVOICE_TYPES)}"))
    if len(set(types)) != len(types):
        problems.append(Problem("invoice_types", f"{types!r}: each type once"))
    return types


def zip_request_body(
    year: int, month: int, *, issuer_type: str = "issuing", invoice_types: Sequence[str] | None = None
) -> dict[str, Any]:
    """The body of ``POST /invoices/zip-requests`` (``InvoiceZipRequestCreateInput``); every problem in one
    ValidationError, nothing sent."""
    problems: list[Problem] = []
    _whole(problems, "year", year, 2000, 9999)
    _whole(problems, "month", month, 1, 12)
    if issuer_type not in ISSUER_TYPES:
        problems.append(Problem("issuer_type", f"{issuer_type!r}: one of {', '.join(ISSUER_TYPES)}"))
    types = _types(problems, invoice_types)
    if problems:
        raise _invalid(problems)
    body: dict[str, Any] = {"year": year, "month": month, "issuer_type": issuer_type}
    if types is not None:
        body["invoice_types"] = types
    return body


def _shown(url: str) -> str:
    """A URL without its user info, query and fragment (a token there must not reach an error or a log)."""
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.hostname or ''}{parts.path}"


def _url(problems: list[Problem], url: Any) -> None:
    if not isinstance(url, str) or not url or any(c.isspace() for c in url):
        problems.append(Problem("url", "an absolute http(s) URL without spaces"))
        return
    try:
        parts = urlsplit(url)
        ok = parts.scheme in ("http", "https") and bool(parts.hostname)
    except ValueError:
        ok = False
    if not ok:
        problems.append(Problem("url", f"{_shown(url) if '://' in url else 'the URL'}: an absolute http(s) URL"))


def _events(problems: list[Problem], events: Any, allowed: tuple[str, ...]) -> list[str]:
    listed = [events] if isinstance(events, str) else list(events) if isinstance(events, Sequence) else []
    if not listed:
        problems.append(Problem("events", "at least one event"))
        return []
    bad = [e for e in listed if e not in allowed]
    if bad:
        extra = ""
        if "invoice.created_from_dashboard" in bad and allowed is EDIT_EVENTS:
            extra = " (Facturapi's edit schema does not list invoice.created_from_dashboard: delete the webhook and "
            extra += "create it again with that event)"
        problems.append(Problem("events", f"{bad!r}: each one of {', '.join(allowed)}{extra}"))
    if len(set(listed)) != len(listed):
        problems.append(Problem("events", "each event once"))
    return listed


def _send(adapter: FacturapiAdapter, request: Request) -> Flow[Response]:
    return adapter.ctx.transport.send(request)


def _search(adapter: FacturapiAdapter, path: str, params: Mapping[str, str], reader: Any) -> Stream:
    """Every item of a page-mode listing, across pages (at most the spec's 30)."""
    page = 1
    while True:
        response = yield from _send(adapter, Request("GET", path, params={**params, "page": str(page)}))
        result = read(SearchResult, response.json(), response)
        for item in result.data:
            yield Emit(reader(item))
        if not result.data or result.total_pages is None or page >= result.total_pages:
            return
        if page >= MAX_PAGE:
            raise _invalid([Problem("limit", f"more than {MAX_PAGE} pages: narrow the search")])
        page += 1


def _zip(item: Any) -> ZipRequest:
    return read(ZipRequest, item)


# -- the native client's account methods ---------------------------------------------------------------------------


class FacturapiAccount(Native[M]):
    """The account half of :class:`~billkit.providers.facturapi.FacturapiNative` (see the module docstring)."""

    _adapter: FacturapiAdapter

    # -- monthly ZIP requests ----------------------------------------------------------------------------------------
    @operation
    def create_zip_request(
        self,
        year: int,
        month: int,
        *,
        issuer_type: Literal["issuing", "receiving"] = "issuing",
        invoice_types: Sequence[Literal["I", "E", "T", "N", "P"]] | None = None,
    ) -> Flow[ZipRequest]:
        """``POST /invoices/zip-requests``: ask Facturapi to zip the invoices of ``month`` / ``year`` (issued by the
        organisation, or ``receiving``; ``invoice_types`` from ``I E T N P``, all by default). Answers the request
        (``created``), or the existing one for the same filters; a ``failed`` one is retried by Facturapi. 404
        ``zip_request_no_invoices`` when the month has no invoice; 402 for a test key. Idempotent by the spec, so
        retried. Then :meth:`wait_for_zip_request` or :meth:`wait_and_download_zip_request`."""
        body = zip_request_body(year, month, issuer_type=issuer_type, invoice_types=invoice_types)
        request = Request(
            "POST",
            "/invoices/zip-requests",
            encoded_json=encode_body(body, provider=PROVIDER),
            idempotent=True,
            reference=f"{year:04d}-{month:02d}",
            how_to_check=f"list_zip_requests(year={year}, month={month}) or create it again (Facturapi answers the "
            "same request for the same filters)",
        )
        response = yield from _send(self._adapter, request)
        return read(ZipRequest, response.json(), response)

    @stream_of(ZipRequest)
    def list_zip_requests(
        self,
        *,
        year: int | None = None,
        month: int | None = None,
        status: Literal["created", "processing", "finished", "failed", "none"] | None = None,
        issuer_type: Literal["issuing", "receiving"] | None = None,
        invoice_types: Sequence[Literal["I", "E", "T", "N", "P"]] | None = None,
        limit: int = 50,
    ) -> Stream:
        """``GET /invoices/zip-requests``: every ZIP request matching the filters, across pages. ``year`` and
        ``month`` go together (the spec's rule); ``invoice_types`` matches one type or the exact set."""
        _limit(limit)
        problems: list[Problem] = []
        params: dict[str, str] = {"limit": str(limit)}
        if (year is None) != (month is None):
            problems.append(Problem("year" if year is None else "month", "year and month go together"))
        if year is not None:
            _whole(problems, "year", year, 2000, 9999)
            params["year"] = str(year)
        if month is not None:
            _whole(problems, "month", month, 1, 12)
            params["month"] = str(month)
        if status is not None:
            if status not in ZIP_STATUSES:
                problems.append(Problem("status", f"{status!r}: one of {', '.join(ZIP_STATUSES)}"))
            params["status"] = str(status)
        if issuer_type is not None:
            if issuer_type not in ISSUER_TYPES:
                problems.append(Problem("issuer_type", f"{issuer_type!r}: one of {', '.join(ISSUER_TYPES)}"))
            params["issuer_type"] = str(issuer_type)
        types = _types(problems, invoice_types)
        if types is not None:
            params["invoice_types"] = ",".join(types)  # style form, explode false
        if problems:
            raise _invalid(problems)
        return _search(self._adapter, "/invoices/zip-requests", params, _zip)

    @operation
    def get_zip_request(self, zip_request_id: str) -> Flow[ZipRequest]:
        """``GET /invoices/zip-requests/{id}``: the request as it is now (``status``, ``processed_document`` of
        ``document_count``, ``failed_documents``)."""
        _check_zip_id(zip_request_id)
        response = yield from _send(self._adapter, Request("GET", "/invoices/zip-requests/{}", ids=(zip_request_id,)))
        return read(ZipRequest, response.json(), response)

    @operation
    def wait_for_zip_request(self, zip_request_id: str, *, timeout: float | None = None) -> Flow[ZipRequest]:
        """Read ZIP request ``zip_request_id`` until it is ``finished`` and return it. ``failed`` raises
        :class:`OperationFailed` (create it again with the same filters: Facturapi retries it); no end within
        ``timeout`` seconds (default: the poll policy's ``deadline``) raises :class:`OperationTimeout`, whose
        ``token`` is the request's id (call this again with it; it is not a ``client.resume`` token). Sleeps
        follow the client's PollPolicy on the client's clock, each cut to the deadline."""
        _check_zip_id(zip_request_id)
        policy = self._adapter.ctx.poll
        budget = policy.deadline if timeout is None else timeout
        if isinstance(budget, bool) or not isinstance(budget, (int, float)) or not 0 < budget < math.inf:
            raise _invalid([Problem("timeout", f"{timeout!r}: a positive number of seconds")])
        clock = self._adapter.ctx.clock
        started = clock.now()
        rng = random.Random(zip_request_id)  # jitter that differs per request, the same on every run
        polls = 0
        while True:
            request = Request("GET", "/invoices/zip-requests/{}", ids=(zip_request_id,))
            response = yield from _send(self._adapter, request)
            polls += 1
            current = read(ZipRequest, response.json(), response)
            state = current.state
            if state is ZipRequestState.FINISHED:
                return current
            if state is ZipRequestState.FAILED:
                raise _zip_failed(zip_request_id, current)
            age = clock.now() - started
            left = budget - age
            if left <= 0:
                raise OperationTimeout(
                    f"ZIP request {zip_request_id} is still {current.status!r} after {age:g} s "
                    f"({current.processed_document or 0} of {current.document_count or 0} documents processed); "
                    f"call wait_for_zip_request({zip_request_id!r}) again later (the token is that id)",
                    provider=PROVIDER,
                    status=state.value,
                    provider_status=current.status,
                    token=zip_request_id,
                )
            delay = policy.next_delay(polls, response.retry_after, rng, age)
            yield Sleep(min(delay, left))

    @operation
    def download_zip_request(self, zip_request_id: str) -> Flow[bytes]:
        """``GET /invoices/zip-requests/{id}/zip``: the ZIP's bytes (Facturapi names it ``YYYY-MM.zip``), up to the
        client's ``max_response_bytes``; a request not ``finished`` yet is 409 ``zip_request_not_ready``
        (:class:`ConflictError`)."""
        _check_zip_id(zip_request_id)
        request = Request("GET", "/invoices/zip-requests/{}/zip", ids=(zip_request_id,), headers={"accept": "*/*"})
        response = yield from _send(self._adapter, request)
        return response.content

    @operation
    def download_zip_request_to(self, zip_request_id: str, path: str | os.PathLike[str]) -> Flow[str]:
        """``GET /invoices/zip-requests/{id}/zip`` streamed into the file ``path`` (no size limit, nothing held in
        memory; the file appears only once whole). Returns the path."""
        _check_zip_id(zip_request_id)
        target = os.fspath(path)
        request = Request(
            "GET", "/invoices/zip-requests/{}/zip", ids=(zip_request_id,), headers={"accept": "*/*"}, stream_to=target
        )
        yield from _send(self._adapter, request)
        return target

    @operation
    def wait_and_download_zip_request(self, zip_request_id: str, *, timeout: float | None = None) -> Flow[bytes]:
        """:meth:`wait_for_zip_request`, then :meth:`download_zip_request`: the month's ZIP, once it is ready."""
        yield from FacturapiAccount.wait_for_zip_request.flow(self, zip_request_id, timeout=timeout)
        return (yield from FacturapiAccount.download_zip_request.flow(self, zip_request_id))

    # -- the organisation and its series -------------------------------------------------------------------------
    @operation
    def get_organization(self) -> Flow[Organization]:
        """``GET /organizations/me``: the organisation the API key issues for (its id, legal data, settings)."""
        response = yield from _send(self._adapter, Request("GET", "/organizations/me"))
        organization = read(Organization, response.json(), response)
        if organization.id:
            self._adapter.ctx.extra[_ORG_ID] = organization.id
        return organization

    def _organization_id(self, organization_id: str | None) -> Flow[str]:
        if organization_id is not None:
            if not isinstance(organization_id, str) or not organization_id.strip():
                raise _invalid([Problem("organization_id", "a Facturapi organization id")])
            return organization_id
        known = self._adapter.ctx.extra.get(_ORG_ID)
        if isinstance(known, str) and known:
            return known
        organization: Organization = yield from FacturapiAccount.get_organization.flow(self)
        if not organization.id:
            raise APIError("Facturapi answered GET /organizations/me without an id", provider=PROVIDER)
        return organization.id

    def _series_of(self, org: str) -> Flow[list[Series]]:
        request = Request("GET", "/organizations/{}/series-group", ids=(org,))
        response = yield from _send(self._adapter, request)
        data = response.json()
        items = data.get("data") if isinstance(data, Mapping) else None
        if not isinstance(items, list):
            raise APIError(
                "Facturapi answered GET series-group without a data list",
                provider=PROVIDER,
                status_code=response.status_code,
                request_id=response.request_id,
                raw=data,
            )
        return [read(Series, item, response) for item in items]

    @operation
    def list_series(self, organization_id: str | None = None) -> Flow[list[Series]]:
        """``GET /organizations/{id}/series-group``: the organisation's folio series (``organization_id``
        defaults to the key's organisation, see the module docstring)."""
        org = yield from self._organization_id(organization_id)
        return (yield from self._series_of(org))

    @operation
    def create_series(
        self, series: str, *, next_folio: int = 1, next_folio_test: int = 1, organization_id: str | None = None
    ) -> Flow[Series]:
        """``POST /organizations/{id}/series-group``: a new folio series (``series`` 1-55 characters; the next
        folio in live and in test mode, from 1). Not repeated once it may have arrived (Facturapi has no key for
        it); a lost answer is settled by listing the series."""
        problems: list[Problem] = []
        _name(problems, "series", series, MAX_SERIES)
        _whole(problems, "next_folio", next_folio, 1)
        _whole(problems, "next_folio_test", next_folio_test, 1)
        if problems:
            raise _invalid(problems)
        org = yield from self._organization_id(organization_id)
        body = {"series": series, "next_folio": next_folio, "next_folio_test": next_folio_test}
        request = Request(
            "POST",
            "/organizations/{}/series-group",
            ids=(org,),
            encoded_json=encode_body(body, provider=PROVIDER),
            reference=series,
            how_to_check=f"list_series() and look for series {series!r} before creating it again",
        )
        try:
            response = yield from _send(self._adapter, request)
        except OutcomeUnknownError:
            found = yield from self._settle_series(org, series)
            if found is not None and (found.next_folio, found.next_folio_test) == (next_folio, next_folio_test):
                return found
            raise
        return read(Series, response.json(), response)

    def _settle_series(self, org: str, series: str) -> Flow[Series | None]:
        """Series ``series`` read back after a lost answer (None when absent, or when it cannot be read)."""
        try:
            listed = yield from self._series_of(org)
        except (APIError, OutcomeUnknownError):
            return None
        return next((s for s in listed if s.series == series), None)

    @operation
    def update_series(
        self,
        series: str,
        *,
        next_folio: int | None = None,
        next_folio_test: int | None = None,
        organization_id: str | None = None,
    ) -> Flow[Series]:
        """``PUT /organizations/{id}/series-group/{series}``: set the next folio in live and/or test mode (from 1).
        Not repeated once it may have arrived (an invoice issued in between would have moved the folio); a lost
        answer is settled by reading the series back."""
        problems: list[Problem] = []
        _name(problems, "series", series, MAX_SERIES)
        body: dict[str, int] = {}
        for name, value in (("next_folio", next_folio), ("next_folio_test", next_folio_test)):
            if value is not None:
                _whole(problems, name, value, 1)
                body[name] = value
        if not body:
            problems.append(Problem("next_folio", "give next_folio and/or next_folio_test"))
        if problems:
            raise _invalid(problems)
        org = yield from self._organization_id(organization_id)
        request = Request(
            "PUT",
            "/organizations/{}/series-group/{}",
            ids=(org, series),
            encoded_json=encode_body(body, provider=PROVIDER),
            reference=series,
            how_to_check=f"list_series() and compare series {series!r} with the folios you sent",
        )
        try:
            response = yield from _send(self._adapter, request)
        except OutcomeUnknownError:
            found = yield from self._settle_series(org, series)
            if found is not None and all(getattr(found, k) == v for k, v in body.items()):
                return found
            raise
        return read(Series, response.json(), response)

    @operation
    def delete_series(self, series: str, *, organization_id: str | None = None) -> Flow[Series]:
        """``DELETE /organizations/{id}/series-group/{series}``. A lost answer is settled by listing the series
        (absent: it is deleted)."""
        problems: list[Problem] = []
        _name(problems, "series", series, MAX_SERIES)
        if problems:
            raise _invalid(problems)
        org = yield from self._organization_id(organization_id)
        request = Request(
            "DELETE",
            "/organizations/{}/series-group/{}",
            ids=(org, series),
            reference=series,
            how_to_check=f"list_series(): series {series!r} absent means it is deleted",
        )
        try:
            response = yield from _send(self._adapter, request)
        except OutcomeUnknownError as unknown:
            try:
                listed = yield from self._series_of(org)
            except (APIError, OutcomeUnknownError):
                raise unknown from None
            if all(s.series != series for s in listed):
                return Series(series=series)  # an earlier attempt whose answer was lost did delete it
            raise
        return read(Series, response.json(), response)

    @operation
    def set_default_series(
        self, type: Literal["I", "E", "P", "N", "T"], series: str, *, organization_id: str | None = None
    ) -> Flow[bool]:
        """``PUT /organizations/{id}/series-group/default-series``: the series invoices of CFDI ``type`` get when
        they name none (``series`` 1-25 characters, an existing series: 404 otherwise). An assignment, so it is
        retried like a read. True when Facturapi answers ``ok``."""
        problems: list[Problem] = []
        if type not in INVOICE_TYPES:
            problems.append(Problem("type", f"{type!r}: one of {', '.join(INVOICE_TYPES)}"))
        _name(problems, "series", series, MAX_DEFAULT_SERIES)
        if problems:
            raise _invalid(problems)
        org = yield from self._organization_id(organization_id)
        request = Request(
            "PUT",
            "/organizations/{}/series-group/default-series",
            ids=(org,),
            encoded_json=encode_body({"type": type, "series": series}, provider=PROVIDER),
            idempotent=True,
            reference=series,
        )
        response = yield from _send(self._adapter, request)
        data = response.json_or_none()
        return bool(data.get("ok", True)) if isinstance(data, Mapping) else True

    # -- PDF preview -----------------------------------------------------------------------------------------------
    @operation
    def preview_invoice_pdf(self, invoice: Bill | Mapping[str, Any]) -> Flow[bytes]:
        """``POST /invoices/preview/pdf``: the PDF Facturapi would make of ``invoice`` (a Bill, checked and mapped
        as ``create`` does, or the body's fields as a mapping), in the organisation's default template. Nothing is
        stamped or stored, so it is retried like a read."""
        if isinstance(invoice, Bill):
            body = self._adapter.prepare(invoice).to_json()
            body.pop("idempotency_key", None)  # nothing is created: no key to hold
        elif isinstance(invoice, Mapping):
            body = dict(invoice)
            problems: list[Problem] = []
            items = body.get("items")
            if body.get("type", "I") != "P" and (not isinstance(items, list) or not 1 <= len(items) <= MAX_ITEMS):
                problems.append(Problem("items", f"1 to {MAX_ITEMS} items"))
            if "customer" not in body:
                problems.append(Problem("customer", "required (an id or the customer's fiscal data)"))
            if problems:
                raise _invalid(problems)
        else:
            raise _invalid([Problem("invoice", "a Bill or a mapping of the invoice's fields")])
        request = Request(
            "POST",
            "/invoices/preview/pdf",
            encoded_json=encode_body(body, provider=PROVIDER),
            headers={"accept": "*/*"},
            idempotent=True,
        )
        response = yield from _send(self._adapter, request)
        return response.content

    # -- webhooks --------------------------------------------------------------------------------------------------
    @operation
    def create_webhook(self, url: str, events: Sequence[str]) -> Flow[Webhook]:
        """``POST /webhooks``: deliver ``events`` (from :data:`WEBHOOK_EVENTS`) to ``url`` (absolute http(s)).
        The answer's ``secret`` (a SecretStr) signs the deliveries: keep it for ``verify_webhook``. Never repeated
        once it may have arrived; see the module docstring for a lost answer and for a URL already registered."""
        problems: list[Problem] = []
        _url(problems, url)
        listed = _events(problems, events, WEBHOOK_EVENTS)
        if problems:
            raise _invalid(problems)
        shown = _shown(url)
        check = f"list_webhooks() and look for {shown}; a create with that URL answers the webhook registered there"
        request = Request(
            "POST",
            "/webhooks",
            encoded_json=encode_body({"url": url, "enabled_events": listed}, provider=PROVIDER),
            reference=shown,
            how_to_check=check,
        )
        try:
            response = yield from _send(self._adapter, request)
        except OutcomeUnknownError:
            found = yield from self._webhook_at(url)
            if found is None or set(found.enabled_events or ()) != set(listed):
                raise
            return found
        webhook = read_webhook(response.json(), response)
        if response.status_code == 200 and set(webhook.enabled_events or ()) != set(listed):
            raise ConflictError(
                f"a webhook for {shown} was already registered (id {webhook.id}) with events "
                f"{sorted(webhook.enabled_events or ())}: Facturapi answered it unchanged; change its events with "
                f"update_webhook({webhook.id!r}, events=...)",
                provider=PROVIDER,
                status_code=200,
                code="webhook_url_registered",
                request_id=response.request_id,
            )
        return webhook

    def _webhook_at(self, url: str) -> Flow[Webhook | None]:
        """The webhook registered for ``url`` (listed after a lost answer), or None."""
        try:
            found: list[Webhook] = yield from collect(
                _search(self._adapter, "/webhooks", {"limit": "100"}, read_webhook)
            )
        except (APIError, OutcomeUnknownError, ValidationError):
            return None
        return next((w for w in found if w.url == url), None)

    @stream_of(Webhook)
    def list_webhooks(self, *, limit: int = 50) -> Stream:
        """``GET /webhooks``: every webhook of the key's environment (test and live have their own), across
        pages."""
        _limit(limit)
        return _search(self._adapter, "/webhooks", {"limit": str(limit)}, read_webhook)

    @operation
    def get_webhook(self, webhook_id: str) -> Flow[Webhook]:
        """``GET /webhooks/{id}``."""
        response = yield from _send(self._adapter, Request("GET", "/webhooks/{}", ids=(webhook_id,)))
        return read_webhook(response.json(), response)

    @operation
    def update_webhook(
        self,
        webhook_id: str,
        *,
        events: Sequence[str] | None = None,
        status: Literal["enabled", "disabled"] | None = None,
    ) -> Flow[Webhook]:
        """``PUT /webhooks/{id}``: its ``events`` (from :data:`EDIT_EVENTS`) and/or ``status`` (``enabled`` /
        ``disabled``). The URL cannot be changed (the spec's edit schema has none). Without ``events`` the
        webhook's current ones are read and sent (the edit requires them; one the edit schema does not list is
        refused locally, see the module docstring). Not repeated once it may have arrived; a lost answer is settled
        by a read."""
        problems: list[Problem] = []
        listed = _events(problems, events, EDIT_EVENTS) if events is not None else None
        if status is not None and status not in WEBHOOK_STATUSES:
            problems.append(Problem("status", f"{status!r}: one of {', '.join(WEBHOOK_STATUSES)}"))
        if events is None and status is None:
            problems.append(Problem("events", "give events and/or status"))
        if problems:
            raise _invalid(problems)
        if listed is None:
            current: Webhook = yield from FacturapiAccount.get_webhook.flow(self, webhook_id)
            listed = _events(problems, list(current.enabled_events or ()), EDIT_EVENTS)
            if problems:  # an event the edit schema does not take: billkit will not send a body the spec refuses
                raise _invalid(problems)
        body: dict[str, Any] = {"enabled_events": listed, **({"status": status} if status else {})}
        request = Request(
            "PUT",
            "/webhooks/{}",
            ids=(webhook_id,),
            encoded_json=encode_body(body, provider=PROVIDER),
            reference=webhook_id,
            how_to_check=f"get_webhook({webhook_id!r}) and compare its events and status with the edit",
        )
        try:
            response = yield from _send(self._adapter, request)
        except OutcomeUnknownError as unknown:
            try:
                now: Webhook = yield from FacturapiAccount.get_webhook.flow(self, webhook_id)
            except (APIError, OutcomeUnknownError):
                raise unknown from None
            if set(now.enabled_events or ()) == set(listed) and (status is None or now.status == status):
                return now
            raise
        return read_webhook(response.json(), response)

    @operation
    def delete_webhook(self, webhook_id: str) -> Flow[Webhook]:
        """``DELETE /webhooks/{id}``: Facturapi stops delivering to it. A lost answer is settled by a read (404
        means it is deleted)."""
        request = Request(
            "DELETE",
            "/webhooks/{}",
            ids=(webhook_id,),
            reference=webhook_id,
            how_to_check=f"get_webhook({webhook_id!r}): 404 means it is deleted",
        )
        try:
            response = yield from _send(self._adapter, request)
        except OutcomeUnknownError:
            try:
                yield from _send(self._adapter, Request("GET", "/webhooks/{}", ids=(webhook_id,)))
            except NotFoundError:
                return Webhook(id=webhook_id)  # an earlier attempt whose answer was lost did delete it
            raise
        return read_webhook(response.json(), response)


def _zip_failed(zip_request_id: str, current: ZipRequest) -> OperationFailed:
    failed = current.failed_documents or []
    sample = f" (first: {', '.join(failed[:5])})" if failed else ""
    return OperationFailed(
        f"Facturapi could not prepare ZIP request {zip_request_id}: {len(failed)} of {current.document_count or 0} "
        f"documents failed{sample}. Create it again with the same filters: Facturapi retries a failed request",
        provider=PROVIDER,
        status=ZipRequestState.FAILED.value,
        provider_status=current.status,
        code="zip_request_failed",
        operation_id=zip_request_id,
        raw=current.model_dump(mode="json"),
    )

"""The Facturapi v2 adapter: CFDI income invoices stamped sync or async, idempotent creates, native client, webhooks.

**Operations.** ``create`` is one ``POST /invoices``: 200 ``valid`` (stamped), or 202 ``pending`` when Facturapi's
PAC/SAT had a temporary failure and the invoice entered the *recovery path* (retried by Facturapi at about +10 to
+50 minutes, then ``valid`` or ``failed``); the Bill is then PENDING and ``client.wait_for`` or ``submit`` follows
it. ``submit`` is ``POST /invoices?async=true`` (200 ``pending``); the operation reads ``GET /invoices/{id}`` until
``valid`` (or ``canceled`` / ``draft``) or ``failed``, with the poll policy's growing interval, so a recovery
lasting 50 minutes costs about fifty reads (46 for 30). An unknown status keeps the operation polling (like the Azure
pollers: only known terminal states end it); it shows as UNKNOWN with the raw string. ``submit_many`` sends the
async creates under a concurrency limit (:attr:`FacturapiAdapter.submit_concurrency`, Facturapi's advice to queue
creation) after validating every bill, and gives one BulkOperation over them, in input order.

**Creates are safe to retry.** Every create carries an ``idempotency_key`` (Facturapi's body field): the caller's
(``provider_options={"idempotency_key": ...}``) or one made per logical create and reused on every attempt. So the
create is an idempotent request and the transport retries it like a read (after 5xx, 429, timeouts, dropped
connections). Every other write (cancel, e-mail, customers) is not repeated once it may have arrived. What
Facturapi does not document and billkit chose:

* a repeat of a finished key is expected to return the invoice it created (that is what the sandbox does); if it
  answered an error instead, that error is raised with the key in it, never a second invoice;
* ``idempotency_key_in_use`` (another request holds the key) is retried like a 429, with backoff; if the key is
  still busy after the retries and the bill has a ``reference``, the invoice is looked up by ``external_id`` and
  key; otherwise :class:`OutcomeUnknownError` says to send the same bill again with the same key;
* when every retry failed without an answer (or with a 5xx), the invoice may exist: :class:`OutcomeUnknownError`
  carries the key (``reference``) and how to check, rather than a plain error that reads like "not created".

**Why an async invoice failed** is not on the invoice: Facturapi sends it only in the ``invoice.status_updated``
webhook (``related_resource_messages``). Operations finished by a webhook (``client.handle_webhook_event``) fail
with that message; a failure seen by polling says where to find it.
"""

from __future__ import annotations

import datetime as dt
import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import replace
from typing import TYPE_CHECKING, Any, Literal

from billkit.client import Adapter, Capabilities, Credential, Secret
from billkit.clock import Clock
from billkit.errors import (
    APIError,
    BillkitError,
    ConflictError,
    OperationFailed,
    OutcomeUnknownError,
    Problem,
    ValidationError,
)
from billkit.flows import AsyncIO, Emit, Flow, Gather, M, Native, Stream, SyncIO, expand, first, operation, stream_of
from billkit.models import Bill, BillStatus, Party
from billkit.operations import PollResult, Started
from billkit.providers.facturapi.account import FacturapiAccount
from billkit.providers.facturapi.common import FacturapiCommonCalls
from billkit.providers.facturapi.lifecycle import FacturapiLifecycle
from billkit.providers.facturapi.mapping import (
    ADDRESS_OPTIONS,
    EMAIL,
    PROVIDER,
    Prepared,
    customer_input,
    error_from_response,
    prepare_request,
    read,
    to_bill,
)
from billkit.providers.facturapi.receipts import FacturapiReceipts
from billkit.providers.facturapi.webhooks import STATUS_UPDATED, WebhookEvent, verify
from billkit.providers.facturapi.wire import (
    Customer,
    CustomerInput,
    Invoice,
    InvoiceRequest,
    SearchResult,
)
from billkit.tokens import TokenState
from billkit.transport import Request, Response
from billkit.webhooks import event_time

if TYPE_CHECKING:
    from billkit.providers.facturapi.sandbox import FacturapiSandbox
    from billkit.sandboxing import Faults

__all__ = ["FacturapiAdapter", "FacturapiNative"]

#: Mexico's central zone (UTC-6 all year since 2022): the day Facturapi calls "today" for most organizations.
MEXICO_CITY = dt.timezone(dt.timedelta(hours=-6), "America/Mexico_City")
CANCEL_MOTIVES = ("01", "02", "03", "04")
DOWNLOAD_FORMATS = ("pdf", "xml", "zip")


class InvoiceState(TokenState):
    """An invoice being stamped: its id (``key``, its idempotency key, was written by billkit 0.1)."""

    id: str
    key: str | None = None


class FacturapiAdapter(FacturapiCommonCalls, Adapter):
    """Facturapi v2. See the module docstring for the idempotency rules and the 202 recovery path; the common
    payments, credits and customers in :mod:`~billkit.providers.facturapi.common`."""

    name = "facturapi"
    credentials = (Credential("api_key", "FACTURAPI_API_KEY"),)
    default_base_url = "https://www.facturapi.io/v2"
    request_id_header = "x-facturapi-log-id"
    capabilities = Capabilities(
        provider="facturapi",
        directions=frozenset({"receivable"}),
        currencies=None,
        async_create=True,
        native_bulk=False,
        bulk_all_or_nothing=False,
        max_bulk_size=None,
        idempotency=True,
        webhooks=True,
        remote_cancel=True,
        payments=True,
        partial_payments=True,
        credits=True,
        parties=True,
        notes=(
            "CFDI income invoices; the SAT codes (payment_form, use, tax_system, product_key) go in provider_options",
            "every create carries an idempotency_key, so creates are retried safely",
            "a 202 answer means Facturapi's recovery path: pending for up to about 50 minutes, then valid or failed",
            "why an async invoice failed is only in the invoice.status_updated webhook",
            "no native bulk: submit_many sends async creates under a concurrency limit",
            "record_payment issues a payment complement of a PPD invoice (method: the SAT payment form); "
            "create_credit a credit note (type E); parties are customers",
        ),
    )
    #: async creates of one submit_many in flight at once (Facturapi advises queueing creation)
    submit_concurrency = 8
    token_states = {"invoice": InvoiceState}

    # -- configuration -----------------------------------------------------------------------------------
    @classmethod
    def auth_headers(cls, ctx_credentials: Mapping[str, Secret | str | None]) -> dict[str, str]:
        key = ctx_credentials.get("api_key")
        plain = key.get_secret_value() if isinstance(key, Secret) else (key or "")
        return {"authorization": f"Bearer {plain}"}

    @classmethod
    def parse_error(cls, response: Response) -> BillkitError:
        return error_from_response(response)

    @classmethod
    def make_sandbox(cls, clock: Clock | None = None, faults: Faults | None = None) -> FacturapiSandbox:
        from billkit.providers.facturapi.sandbox import FacturapiSandbox

        return FacturapiSandbox(clock, faults)

    def native_client(self, io: AsyncIO | SyncIO) -> FacturapiNative[Any]:
        return FacturapiNative(self, io)

    # -- helpers -----------------------------------------------------------------------------------------
    def _today(self) -> dt.date:
        return dt.datetime.fromtimestamp(self.ctx.clock.wall(), tz=MEXICO_CITY).date()

    def prepare(self, bill: Bill, *, prefix: str = "") -> InvoiceRequest:
        """The validated request body for ``bill`` (with its idempotency key). Sends nothing."""
        return self._prepare(bill, prefix=prefix).request

    def _prepare(self, bill: Bill, *, prefix: str = "") -> Prepared:
        return prepare_request(bill, today=self._today(), prefix=prefix)

    def _send_create(self, req: Prepared, *, background: bool) -> Flow[tuple[Response | None, Any]]:
        """POST one create with its idempotency key; ``(response, invoice body)``."""
        key = req.idempotency_key
        check = self._how_to_check(req)
        request = Request("POST", "/invoices", params={"async": "true"} if background else None,
                          encoded_json=req.body, idempotent=True, reference=key, how_to_check=check)  # fmt: skip
        try:
            response = yield from self.ctx.transport.send(request)
        except (ConflictError, OutcomeUnknownError) as open_outcome:
            busy = open_outcome if isinstance(open_outcome, ConflictError) else open_outcome.cause
            if not (isinstance(busy, ConflictError) and busy.code == "idempotency_key_in_use"):
                raise
            try:
                found = yield from self._find(req)
            except BillkitError:
                found = None
            if found is not None:
                return None, found
            raise OutcomeUnknownError(
                f"Facturapi kept idempotency key {key} busy through every retry ({busy.message})",
                provider=PROVIDER, how_to_check=check, reference=key, cause=busy,
            ) from None  # fmt: skip
        return response, response.json()

    @staticmethod
    def _how_to_check(req: InvoiceRequest | Prepared) -> str:
        ref = f" (external_id {req.external_id})" if req.external_id else ""
        return (
            f"Send the same bill again with provider_options={{'idempotency_key': '{req.idempotency_key}'}}{ref}: "
            "Facturapi answers with the invoice if the first attempt created it, and creates it once if not."
        )

    def _find(self, req: InvoiceRequest | Prepared) -> Flow[Any]:
        """The invoice holding ``req``'s key, looked up by its external_id (a safe read), or None."""
        if not req.external_id:
            return None
        found = yield from first(invoices(self, external_id=req.external_id),
                                 lambda invoice: invoice.idempotency_key == req.idempotency_key)  # fmt: skip
        return None if found is None else found.model_dump(mode="python", exclude_none=True)

    def _result(self, bill: Bill) -> PollResult | None:
        """A first answer that already ends the operation (a replayed key of a finished invoice, a draft)."""
        if bill.status in (BillStatus.PENDING, BillStatus.UNKNOWN, None):
            return None
        if bill.status is BillStatus.FAILED:
            return PollResult(status=bill.status, provider_status=bill.provider_status, done=True,
                              error=self._failed(bill.provider_id or "", bill.raw, None))  # fmt: skip
        return PollResult(status=bill.status, provider_status=bill.provider_status, done=True, value=bill)

    @staticmethod
    def _failed(invoice_id: str, raw: Any, message: str | None) -> OperationFailed:
        text = message or (
            f"Facturapi could not stamp invoice {invoice_id} (status 'failed'). Facturapi gives the reason only in "
            "the invoice.status_updated webhook (related_resource_messages): pass verified events to "
            "client.handle_webhook_event to get it here, or see the invoice in the dashboard"
        )
        return OperationFailed(text, provider=PROVIDER, status=BillStatus.FAILED.value, provider_status="failed",
                               code="failed", operation_id=invoice_id, raw=raw)  # fmt: skip

    # -- the common operations -----------------------------------------------------------------------------
    def create(self, bill: Bill) -> Flow[Bill]:
        """One request. The Bill is OPEN (stamped), PENDING (a 202: the recovery path), or DRAFT."""
        response, body = yield from self._send_create(self._prepare(bill), background=False)
        return to_bill(body, response)

    def submit(self, bill: Bill) -> Flow[Started]:
        return (yield from self._submit(self._prepare(bill)))

    def _submit(self, prepared: Prepared) -> Flow[Started]:
        response, body = yield from self._send_create(prepared, background=True)
        bill = to_bill(body, response)
        if not bill.provider_id:
            raise APIError("Facturapi answered a create without an invoice id", provider=PROVIDER,
                           status_code=response.status_code if response else None, raw=body)  # fmt: skip
        state = {"id": bill.provider_id}  # the key is not needed to follow it; a bulk's token stays small
        first_answer = self._result(bill) or PollResult(status=bill.status, provider_status=bill.provider_status)
        return Started("invoice", bill.provider_id, state, first=first_answer)

    def submit_many(self, bills: Sequence[Bill]) -> Flow[Sequence[Started | BillkitError]]:
        """Validate every bill (one ValidationError lists all problems), then send the async creates under a
        concurrency limit. A create that fails becomes that item's error; the others go on."""
        problems: list[Problem] = []
        reqs: list[Prepared] = []
        seen: dict[str, int] = {}
        for i, bill in enumerate(bills):
            try:
                prepared = self._prepare(bill, prefix=f"[{i}].")
            except ValidationError as exc:
                problems.extend(exc.problems)
                continue
            reqs.append(prepared)
            key = prepared.idempotency_key
            if key in seen:
                problems.append(Problem(f"[{i}].provider_options.idempotency_key", f"same key as bill {seen[key]}"))
            seen.setdefault(key, i)
        if problems:
            raise ValidationError(problems, provider=PROVIDER)
        results: list[Started | BillkitError] = yield Gather([self._submit(r) for r in reqs], self.submit_concurrency)
        return results

    def get(self, provider_id: str) -> Flow[Bill]:
        response = yield from self.ctx.transport.send(Request("GET", "/invoices/{}", ids=(provider_id,)))
        return to_bill(response.json(), response)

    def poll(self, kind: str, state: Mapping[str, Any]) -> Flow[PollResult]:
        if kind != "invoice":
            raise BillkitError(f"unknown Facturapi operation kind {kind!r}", provider=PROVIDER)
        response = yield from self.ctx.transport.send(Request("GET", "/invoices/{}", ids=(str(state["id"]),)))
        bill = to_bill(response.json(), response)
        ended = self._result(bill)
        if ended is not None:
            return ended
        return PollResult(status=bill.status, provider_status=bill.provider_status, retry_after=response.retry_after)

    # -- batches -------------------------------------------------------------------------------------------
    #: the body fields billkit builds or checks (other fields of the spec still pass through the Python API)
    option_names = frozenset(InvoiceRequest.model_fields) | {"export", "global"}
    party_option_names = frozenset(CustomerInput.model_fields) | ADDRESS_OPTIONS

    @classmethod
    def pin_key(cls, bill: Bill, seed: str, index: int) -> tuple[Bill, str]:
        """The idempotency key: the bill's own, else ``bk-<seed>-<index>``."""
        own = bill.provider_options.get("idempotency_key")
        if isinstance(own, str) and own:
            return bill, own
        key = f"bk-{seed}-{index:x}"
        return bill.model_copy(update={"provider_options": {**bill.provider_options, "idempotency_key": key}}), key

    def find_existing(self, bill: Bill, since: float | None) -> Flow[Bill | None]:
        """The invoice holding the pinned key, looked up by the bill's ``external_id`` (its reference).

        How long Facturapi keeps an idempotency key is not documented, so billkit does not rely on the key alone:
        an item is sent again only when this look-up finds nothing (and then with the same key, which Facturapi
        answers with the existing invoice if there is one). A bill without a reference cannot be looked up; None
        then means "send again with the key", the reconciliation Facturapi documents.
        """
        req = self.prepare(bill)
        found = yield from self._find(req)
        return None if found is None else to_bill(found)

    # -- webhooks --------------------------------------------------------------------------------------------
    def verify_webhook(self, body: bytes, headers: Mapping[str, str], secret: str) -> WebhookEvent:
        """Check ``Facturapi-Signature`` (HMAC-SHA256 of the raw body with the webhook ``secret``), parse the event."""
        return verify(body, headers, secret)

    def webhook_updates(self, event: Any) -> list[tuple[str, PollResult]]:
        """A signed ``invoice.status_updated`` finishes its operation from the invoice it carries (no read); other
        invoice events make the matching operation (e.g. ``wait_for``) read again at once."""
        if not isinstance(event, WebhookEvent):
            return []
        invoice_data = event.data.object if event.data.type in (None, "invoice") else None
        invoice_id = str(invoice_data.get("id") or "") if invoice_data else ""
        if not invoice_id:
            return []
        order = event_time(event.created_at)
        if event.type != STATUS_UPDATED:
            return [(invoice_id, PollResult(retry_after=0.0))]
        try:
            bill = to_bill(invoice_data)
        except BillkitError:
            return [(invoice_id, PollResult(retry_after=0.0))]
        if bill.status is BillStatus.FAILED:
            error = self._failed(invoice_id, event.model_dump(mode="python"), event.error_message())
            return [(invoice_id, PollResult(status=bill.status, provider_status=bill.provider_status, done=True,
                                            error=error, order=order))]  # fmt: skip
        result = self._result(bill)
        if result is not None:
            return [(invoice_id, replace(result, order=order))]
        return [(invoice_id, PollResult(status=bill.status, provider_status=bill.provider_status, value=bill,
                                        order=order))]  # fmt: skip


# -- listings, shared by the adapter's look-ups and the native client ---------------------------------------------


#: ``GET /invoices`` and ``GET /customers`` serve pages 1 to 30 (``page.maximum`` in the spec)
MAX_PAGE = 30
_ENUM_FILTERS: dict[str, frozenset[str]] = {
    "type": frozenset({"I", "E", "P", "N", "T"}),
    "payment_method": frozenset({"PUE", "PPD"}),
    "payment_status": frozenset({"paid", "unpaid"}),
    "issuer_type": frozenset({"issuing", "receiving"}),
}
_CANCELLATION_STATUSES = frozenset({"none", "accepted", "pending", "rejected", "expired"})
_UUID = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")


def rfc3339(name: str, value: dt.datetime) -> str:
    """A date filter as the spec's ``format: date-time`` wants it. A naive datetime is refused (fail closed: billkit
    will not guess whether you meant UTC or Mexico City)."""
    if not isinstance(value, dt.datetime) or value.tzinfo is None or value.utcoffset() is None:
        raise ValidationError([Problem(name, f"{value!r}: give a timezone-aware datetime (RFC 3339)")],
                              provider=PROVIDER)  # fmt: skip
    return value.isoformat()


def invoice_search(
    *, limit: int, q: str | None, customer: str | None, external_id: str | None, series: str | None,
    date_from: dt.datetime | None, date_to: dt.datetime | None, filters: Mapping[str, Any],
) -> dict[str, Any]:  # fmt: skip
    """The query of ``GET /invoices``, every parameter checked against the spec (ValidationError lists every
    problem); a list value (``cancellation_status``) goes out as repeated keys, as the spec's arrays are."""
    problems: list[Problem] = []
    if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= 100:
        problems.append(Problem("limit", f"{limit}: Facturapi pages hold 1 to 100 results"))
    params: dict[str, Any] = {"limit": str(limit)}
    named = {"q": q, "customer": customer, "external_id": external_id, "series": series}
    for name, value in {**named, **filters}.items():
        if value is None:
            continue
        if name in _ENUM_FILTERS:
            if value not in _ENUM_FILTERS[name]:
                problems.append(Problem(name, f"{value!r}: one of {', '.join(sorted(_ENUM_FILTERS[name]))}"))
        elif name == "cancellation_status":
            statuses = [value] if isinstance(value, str) else list(value)
            bad = [v for v in statuses if v not in _CANCELLATION_STATUSES]
            if bad or not statuses:
                problems.append(
                    Problem(name, f"{bad or statuses!r}: each one of {', '.join(sorted(_CANCELLATION_STATUSES))}")
                )
            params[name] = statuses
            continue
        elif name == "folio_number":
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                problems.append(Problem(name, f"{value!r}: a whole number from 1"))
        elif name == "uuid":
            if not isinstance(value, str) or not _UUID.match(value):
                problems.append(Problem(name, f"{value!r} is not a UUID"))
        elif name in ("q", "customer", "external_id", "series"):
            limit_of = {"series": 25, "external_id": 100}.get(name)
            if not isinstance(value, str) or (limit_of is not None and len(value) > limit_of):
                problems.append(Problem(name, f"a string of at most {limit_of} characters" if limit_of else "a string"))
        else:
            problems.append(Problem(name, "not a filter of GET /invoices"))
            continue
        params[name] = str(value)
    for name, key, value in (("date_from", "date[gte]", date_from), ("date_to", "date[lt]", date_to)):
        if value is not None:
            try:
                params[key] = rfc3339(name, value)
            except ValidationError as exc:
                problems.extend(exc.problems)
    if problems:
        raise ValidationError(problems, provider=PROVIDER)
    return params


def _too_many_pages() -> ValidationError:
    return ValidationError(
        [Problem("date_from", f"the search has more than {MAX_PAGE} pages, the most Facturapi serves: narrow it with "
                              "date_from / date_to (or a filter) and search each part")],
        provider=PROVIDER,
    )  # fmt: skip


def invoice_pages(
    adapter: FacturapiAdapter, *, limit: int = 100, q: str | None = None, customer: str | None = None,
    external_id: str | None = None, series: str | None = None, date_from: dt.datetime | None = None,
    date_to: dt.datetime | None = None, **filters: Any,
) -> Stream:  # fmt: skip
    """Pages of ``GET /invoices`` (newest first), following ``page`` up to ``total_pages``; beyond the spec's 30th
    page it stops with a ValidationError that says to narrow the search (billkit never asks for page 31)."""
    params = invoice_search(limit=limit, q=q, customer=customer, external_id=external_id, series=series,
                            date_from=date_from, date_to=date_to, filters=filters)  # fmt: skip
    page = 1
    while True:
        request = Request("GET", "/invoices", params={**params, "page": str(page)})
        response = yield from adapter.ctx.transport.send(request)
        result = read(SearchResult, response.json(), response)
        yield Emit(result)
        if not result.data or result.total_pages is None or page >= result.total_pages:
            return
        if page >= MAX_PAGE:
            raise _too_many_pages()
        page += 1


def invoices(adapter: FacturapiAdapter, **filters: Any) -> Stream:
    """Every invoice matching ``filters`` (see :func:`invoice_pages`), across pages."""
    return expand(invoice_pages(adapter, **filters), lambda page: (read(Invoice, item) for item in page.data))


class FacturapiNative(FacturapiLifecycle[M], FacturapiAccount[M], FacturapiReceipts[M], Native[M]):
    """Facturapi's own operations, typed with the wire models (``client.native``); the lifecycle (payment
    complements, credit notes, drafts, products) comes from :class:`FacturapiLifecycle`; e-receipts and global
    invoices from :class:`~billkit.providers.facturapi.receipts.FacturapiReceipts`.

    Under ``AsyncClient`` every method is awaited and listings are async iterators; under ``Client`` methods
    return their value and listings come back as lists.
    """

    def __init__(self, adapter: FacturapiAdapter, io: AsyncIO | SyncIO) -> None:
        super().__init__(io)
        self._adapter = adapter

    def __repr__(self) -> str:
        return "<FacturapiNative>"

    def _send(self, request: Request) -> Flow[Response]:
        return self._adapter.ctx.transport.send(request)

    # -- invoices ------------------------------------------------------------------------------------------
    @operation
    def get_invoice(self, invoice_id: str) -> Flow[Invoice]:
        """``GET /invoices/{id}`` as the wire model (unknown fields kept in ``model_extra``)."""
        response = yield from self._send(Request("GET", "/invoices/{}", ids=(invoice_id,)))
        return read(Invoice, response.json(), response)

    @stream_of(SearchResult)
    def list_invoice_pages(
        self, /, *, limit: int = 100, q: str | None = None, customer: str | None = None, external_id: str | None = None,
        series: str | None = None, date_from: dt.datetime | None = None, date_to: dt.datetime | None = None,
        **filters: Any,
    ) -> Stream:  # fmt: skip
        """Pages of ``GET /invoices`` (newest first), following ``page`` up to ``total_pages``.

        Every parameter is checked against the spec before anything is sent: ``limit`` 1-100, ``series`` at most
        25 characters, ``external_id`` 100, ``type`` / ``payment_method`` / ``payment_status`` / ``issuer_type``
        from their enums, ``folio_number`` from 1, ``uuid`` a UUID, ``cancellation_status`` one or a list of
        ``none accepted pending rejected expired`` (sent as repeated keys), no other filter name. ``date_from`` /
        ``date_to`` (sent as ``date[gte]`` / ``date[lt]``) must be timezone-aware. Facturapi serves at most 30 pages
        (3,000 invoices at ``limit=100``): past them this stops with a ValidationError saying to narrow the search.
        """
        return invoice_pages(self._adapter, limit=limit, q=q, customer=customer, external_id=external_id,
                             series=series, date_from=date_from, date_to=date_to, **filters)  # fmt: skip

    @stream_of(Invoice)
    def list_invoices(self, /, **filters: Any) -> Stream:
        """Every invoice matching ``filters`` (see :meth:`list_invoice_pages`), across pages."""
        return invoices(self._adapter, **filters)

    @operation
    def cancel(
        self, invoice_id: str, motive: Literal["01", "02", "03", "04"], *, substitution: str | None = None
    ) -> Flow[Invoice]:
        """``DELETE /invoices/{id}?motive=..``: ``01`` (errors, with a substituting invoice) needs
        ``substitution``; ``02`` errors without relation; ``03`` operation not carried out; ``04`` nominative
        operation in a global invoice. The answer may still be ``valid`` with ``cancellation_status`` ``pending``
        when the customer must accept; ``client.wait_for(id, until=BillStatus.VOID)`` waits for that.

        Not repeated blindly once it may have arrived: after a lost answer billkit reads the invoice (a safe read)
        and returns it when the cancellation took; a 409 (already cancelled or cancelling) is read the same way.
        """
        problems = []
        if motive not in CANCEL_MOTIVES:
            problems.append(Problem("motive", f"{motive!r}: one of {', '.join(CANCEL_MOTIVES)}"))
        if motive == "01" and not substitution:
            problems.append(Problem("substitution", "motive 01 needs the id or UUID of the substituting invoice"))
        if problems:
            raise ValidationError(problems, provider=PROVIDER)
        params = {"motive": motive, **({"substitution": substitution} if substitution else {})}
        request = Request("DELETE", "/invoices/{}", ids=(invoice_id,), params=params, reference=invoice_id,
                          how_to_check=f"read invoice {invoice_id}: its status and cancellation_status")  # fmt: skip
        try:
            response = yield from self._send(request)
        except (ConflictError, OutcomeUnknownError):
            current: Invoice = yield from FacturapiNative.get_invoice.flow(self, invoice_id)
            if current.status == "canceled" or current.cancellation_status in ("pending", "verifying", "accepted"):
                return current  # an earlier attempt whose answer was lost did cancel it
            raise
        return read(Invoice, response.json(), response)

    @operation
    def download(self, invoice_id: str, format: Literal["pdf", "xml", "zip"]) -> Flow[bytes]:
        """``GET /invoices/{id}/{pdf,xml,zip}``: the file's bytes (a draft has a PDF but no XML), up to the client's
        ``max_response_bytes``; :meth:`download_to` streams a file of any size to disk."""
        if format not in DOWNLOAD_FORMATS:
            raise ValidationError([Problem("format", f"{format!r}: one of {', '.join(DOWNLOAD_FORMATS)}")],
                                  provider=PROVIDER)  # fmt: skip
        response = yield from self._send(Request("GET", "/invoices/{}/" + format, ids=(invoice_id,),
                                                 headers={"accept": "*/*"}))  # fmt: skip
        return response.content

    @operation
    def download_to(
        self, invoice_id: str, format: Literal["pdf", "xml", "zip"], path: str | os.PathLike[str]
    ) -> Flow[str]:
        """``GET /invoices/{id}/{pdf,xml,zip}`` streamed into the file ``path`` (no size limit, nothing held in
        memory); the file appears only once it is whole. Returns the path."""
        if format not in DOWNLOAD_FORMATS:
            raise ValidationError([Problem("format", f"{format!r}: one of {', '.join(DOWNLOAD_FORMATS)}")],
                                  provider=PROVIDER)  # fmt: skip
        target = os.fspath(path)
        request = Request("GET", "/invoices/{}/" + format, ids=(invoice_id,), headers={"accept": "*/*"},
                          stream_to=target)  # fmt: skip
        yield from self._send(request)
        return target

    @operation
    def download_pdf(self, invoice_id: str) -> Flow[bytes]:
        return (yield from FacturapiNative.download.flow(self, invoice_id, "pdf"))

    @operation
    def download_xml(self, invoice_id: str) -> Flow[bytes]:
        return (yield from FacturapiNative.download.flow(self, invoice_id, "xml"))

    @operation
    def download_zip(self, invoice_id: str) -> Flow[bytes]:
        return (yield from FacturapiNative.download.flow(self, invoice_id, "zip"))

    @operation
    def send_by_email(self, invoice_id: str, email: str | Sequence[str] | None = None) -> Flow[bool]:
        """``POST /invoices/{id}/email`` to ``email`` (at most 10 addresses), or the customer's address. Sent
        once: Facturapi has no key for it, so it is never repeated after it may have arrived."""
        body: dict[str, Any] = {}
        if email is not None:
            addresses = [email] if isinstance(email, str) else list(email)
            problems = [Problem("email", "1 to 10 addresses")] if not 1 <= len(addresses) <= 10 else []
            problems += [Problem(f"email[{i}]", f"{a!r} is not an e-mail address") for i, a in enumerate(addresses)
                         if not isinstance(a, str) or not EMAIL.match(a)]  # fmt: skip
            if problems:
                raise ValidationError(problems, provider=PROVIDER)
            body["email"] = addresses[0] if isinstance(email, str) else addresses
        response = yield from self._send(Request("POST", "/invoices/{}/email", ids=(invoice_id,), json=body))
        data = response.json_or_none()
        return bool(data.get("ok", True)) if isinstance(data, Mapping) else True

    # -- customers -------------------------------------------------------------------------------------------
    @operation
    def create_customer(self, customer: CustomerInput | Party) -> Flow[Customer]:
        """``POST /customers`` (Facturapi validates the fiscal data with the SAT). Answers 201 for a new
        customer and 200 with the existing one when the same data is already saved; not repeated by billkit
        once it may have arrived (send it again yourself: the same data answers with the saved customer)."""
        body = customer if isinstance(customer, CustomerInput) else customer_input(customer)
        response = yield from self._send(Request("POST", "/customers", json=body.to_json()))
        return read(Customer, response.json(), response)

    @operation
    def get_customer(self, customer_id: str) -> Flow[Customer]:
        response = yield from self._send(Request("GET", "/customers/{}", ids=(customer_id,)))
        return read(Customer, response.json(), response)

    @stream_of(Customer)
    def list_customers(self, q: str | None = None, *, limit: int = 100) -> Stream:
        """Every customer whose legal name or RFC matches ``q`` (all when None), across pages (at most the spec's 30;
        past them a ValidationError says to narrow ``q``)."""
        if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= 100:
            raise ValidationError([Problem("limit", f"{limit}: Facturapi pages hold 1 to 100 results")],
                                  provider=PROVIDER)  # fmt: skip
        params = {"limit": str(limit), **({"q": q} if q else {})}
        page = 1
        while True:
            response = yield from self._send(Request("GET", "/customers", params={**params, "page": str(page)}))
            result = read(SearchResult, response.json(), response)
            for item in result.data:
                yield Emit(read(Customer, item))
            if not result.data or result.total_pages is None or page >= result.total_pages:
                return
            if page >= MAX_PAGE:
                raise _too_many_pages()
            page += 1

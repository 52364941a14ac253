"""The BILL v3 adapter: session, create, all-or-nothing bulk with optional isolation, get, poll, native client.

**Session.** BILL authenticates with a session, not a static header (``auth_headers`` is empty). The first
call logs in (``POST /v3/login``); one login is in flight however many calls run concurrently (an
``anyio.Lock``), and every call shares the session (``devKey`` and ``sessionId`` headers). BILL allows 200
logins per hour, so the adapter never logs in per call: only lazily, and again once when BILL answers
``BDC_1109`` (session invalid or expired after 35 idle minutes), after which the call is repeated once. A
``BDC_1109`` answer means BILL refused the call before acting, so repeating even a create is safe; a create
whose outcome is unknown (a dropped answer, a 5xx) is never repeated: billkit looks for it with a safe read
(the vendor's bills created since the call began, by invoice number) and returns it if found, else raises
:class:`~billkit.errors.OutcomeUnknownError` saying how to check. A lost bulk call is looked for the same
way. ``aclose()`` logs out. The username, password, devKey and sessionId never appear in a repr, a log line,
an error or a token.

**Limits.** At most 3 requests in flight per client (``max_in_flight``, BILL's limit per devKey and
organization). ``BDC_1322`` (too many concurrent) is retried with backoff whatever its HTTP status, as a
request refused before acting; ``BDC_1144`` (hourly limit) is raised as
:class:`~billkit.errors.RateLimitError`. Bulk batches hold at most 100 bills.

**Currency.** BILL's bills carry no currency: a bill is in its vendor's ``billCurrency``. So the adapter
reads each vendor once (``GET /v3/vendors/{id}``, cached per client) and refuses, before the create, a bill
whose lines are in another currency (sending it would silently re-denominate the amounts). An unknown vendor
is left to BILL, which answers ``BDC_1205`` for it.

**Bulk** (``submit_many``): ``POST /v3/bills/bulk`` in batches of at most 100, in input order, one batch
after the other. Each batch is all-or-nothing at BILL. Results are matched to inputs by vendorId + invoice
number (BILL does not promise the answer's order), so invoice numbers must be unique per vendor within one
``submit_many``. By default a rejected batch raises :class:`BillcomBulkRejected` (nothing of it was created)
carrying every BILL error, with ``item_errors`` only where the answer names the item unambiguously; when an
earlier batch was already created, the result is returned instead with the rejected batch's items FAILED,
so created bills are never hidden behind an exception. With isolation on (``client.native.bulk_isolation =
True``), a rejected batch is split: items BILL named are failed with their own error and the rest is
resubmitted; an answer that names nobody is bisected; until every good item is created exactly once and
every bad one has its own error. ``client.native.last_bulk_calls`` tells how many bulk calls that took.

**Vendors** (``client.native.create_vendor(party)``, ``update_vendor``, ``archive_vendor``...): from a common
:class:`~billkit.Party` or BILL's own fields, checked first. BILL has no idempotency key for vendors either: a
create that may have arrived is never sent again, only looked for (exactly one vendor so named, created since, with
the fields sent), else :class:`~billkit.errors.OutcomeUnknownError`. They are native, not on the common client:
AcceptEasy has no party resource, so a common ``create_party`` could not be honoured by every provider.

**Webhook subscriptions** (``client.native.create_subscription`` and the rest): BILL's webhooks API lives at
another base URL (``.../connect-events``), set with the ``events_base_url`` option (or ``BILL_EVENTS_BASE_URL``)
or derived from the base URL; its calls share the session, the slots and the error parser. See
:mod:`billkit.providers.billcom.subscriptions`.
"""

from __future__ import annotations

import copy
import datetime as dt
import uuid
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import pydantic

from billkit.client import Adapter, AdapterContext, Capabilities, Credential
from billkit.clock import Clock
from billkit.errors import (
    APIError,
    BillkitError,
    NotFoundError,
    OperationFailed,
    OutcomeUnknownError,
    PermissionDeniedError,
    Problem,
    RateLimitError,
    UnsupportedFeatureError,
    ValidationError,
)
from billkit.flows import (
    Acquire,
    AsyncIO,
    Emit,
    Flow,
    M,
    Native,
    Stream,
    SyncIO,
    collect,
    expand,
    new_lock,
    new_semaphore,
    operation,
    stream_of,
)
from billkit.models import Bill, BulkResult, ItemResult, ItemStatus, Party
from billkit.operations import PollResult, Started
from billkit.providers.billcom import subscriptions
from billkit.providers.billcom.common import BillcomCommonCalls
from billkit.providers.billcom.mapping import (
    PROVIDER,
    BillcomAPIError,
    BillcomAuthenticationError,
    BillcomBulkRejected,
    BillcomConcurrencyLimitError,
    BillcomError,
    BillcomSessionError,
    attribute_errors,
    build_bill,
    error_from_response,
    how_to_check,
    how_to_check_vendor,
    to_bill,
    vendor_create,
    vendor_party,
    vendor_update,
)
from billkit.providers.billcom.subscriptions import EVENTS_API, EventInput
from billkit.providers.billcom.updates import BillcomUpdates
from billkit.providers.billcom.webhooks import BILL_EVENTS, WebhookEvent
from billkit.providers.billcom.webhooks import verify as verify_event
from billkit.providers.billcom.wire import (
    BillCreate,
    BillList,
    BillResponse,
    ErrorEntry,
    EventNotification,
    LoginRequest,
    LoginResponse,
    Subscription,
    VendorCreate,
    VendorList,
    VendorResponse,
    VendorUpdate,
)
from billkit.tokens import TokenState
from billkit.transport import Request, Response, Transport, dumps, read_model
from billkit.webhooks import event_time

if TYPE_CHECKING:
    from billkit.providers.billcom.sandbox import BillcomSandbox
    from billkit.sandboxing import Faults

__all__ = ["MAX_BULK", "BillcomAdapter", "BillcomNative", "format_filters"]

MAX_BULK = 100
#: how far before a lost bulk call its bills are looked for (BILL's clock may differ from ours)
RECONCILE_SKEW = 300.0

#: one input prepared for a bulk: (input index, request body, currency of its lines)
_Item = tuple[int, BillCreate, "str | None"]


class BillState(TokenState):
    id: str


class BulkState(TokenState):
    """A bulk (done when it starts): the operation id, the bill id of each input (None where it failed) and the
    failures' messages by index."""

    id: str
    ids: list[str | None]
    errors: dict[str, str] = {}


class BillcomAdapter(BillcomCommonCalls, Adapter):
    """BILL (bill.com) v3: payable bills. See the module docstring for the session and bulk rules."""

    name = "billcom"
    max_in_flight = 3
    token_states = {"bill": BillState, "bulk": BulkState}
    credentials = (
        Credential("username", "BILL_USERNAME", secret=False),
        Credential("password", "BILL_PASSWORD"),
        Credential("organization_id", "BILL_ORGANIZATION_ID", secret=False),
        Credential("dev_key", "BILL_DEV_KEY"),
        # a setting, not a credential (this is the one per-provider keyword channel): the webhooks API's base URL
        Credential("events_base_url", "BILL_EVENTS_BASE_URL", secret=False, required=False),
    )
    default_base_url = "https://gateway.stage.bill.com/connect"
    capabilities = Capabilities(
        provider="billcom",
        directions=frozenset({"payable"}),
        currencies=None,  # the vendor's billCurrency
        async_create=False,
        native_bulk=True,
        bulk_all_or_nothing=True,
        max_bulk_size=MAX_BULK,
        idempotency=False,
        webhooks=True,
        remote_cancel=False,
        parties=True,
        notes=(
            "payable bills only; the currency is the vendor's billCurrency",
            "bulk batches of at most 100 are all-or-nothing; opt-in isolation with native.bulk_isolation",
            "no idempotency key: a create whose outcome is unknown is never retried",
            "at most 3 requests in flight; sessions expire after 35 idle minutes and are renewed once",
            "webhooks: bill.* events signed with x-bill-sha-signature finish wait_for operations",
            "parties are vendors (delete_party archives, BILL's soft delete); no payments (MFA-trusted sessions) "
            "and no credits through billkit",
        ),
    )

    def __init__(self, ctx: AdapterContext) -> None:
        super().__init__(ctx)
        self._session_id: str | None = None
        self._lock = new_lock(ctx.blocking)
        self._slots = new_semaphore(self.max_in_flight or 3, ctx.blocking)
        self._vendor_currency: dict[str, str] = {}
        self.logins = 0
        self.bulk_isolation = False
        self.last_bulk_calls = 0
        self._events_transport: Transport | None = None

    def __repr__(self) -> str:
        state = "active" if self._session_id else "none"
        return f"BillcomAdapter(base_url={self.ctx.transport.base_url!r}, session={state})"

    # -- configuration -----------------------------------------------------------------------------------
    @classmethod
    def parse_error(cls, response: Response) -> BillkitError:
        """BILL's error array as a typed APIError (``entries`` keeps every element)."""
        return error_from_response(response)

    @classmethod
    def make_sandbox(cls, clock: Clock | None = None, faults: Faults | None = None) -> BillcomSandbox:
        from billkit.providers.billcom.sandbox import BillcomSandbox

        return BillcomSandbox(clock, faults)

    # -- the session -------------------------------------------------------------------------------------
    def _session(self) -> Flow[str]:
        sid = self._session_id
        if sid is not None:
            return sid
        yield Acquire(self._lock)
        try:
            if self._session_id is None:
                yield from self._login()
            assert self._session_id is not None
            return self._session_id
        finally:
            self._lock.release()

    def _renew(self, stale: str) -> Flow[str]:
        """Log in again unless another call already did since ``stale`` was refused.

        Login requests do not take one of the adapter's slots (only the transport's), so calls holding a
        slot while they wait for the login cannot starve it.
        """
        yield Acquire(self._lock)
        try:
            if self._session_id is None or self._session_id == stale:
                self._session_id = None
                yield from self._login()
            assert self._session_id is not None
            return self._session_id
        finally:
            self._lock.release()

    def _login(self) -> Flow[None]:
        ctx = self.ctx
        body = LoginRequest(
            username=ctx.secret("username"),
            password=ctx.secret("password"),
            organization_id=ctx.secret("organization_id"),
            dev_key=ctx.secret("dev_key"),
        ).to_json()
        # content, not json=: the Request's repr then holds no credential. A POST without a key: sent again only
        # when it provably never arrived or BILL refused it before acting (its 200-logins-per-hour budget)
        request = Request("POST", "/v3/login", content=dumps(body), headers={"content-type": "application/json"})
        response = yield from ctx.transport.send(request)
        try:
            answer = response.parse(LoginResponse)
        except ValueError:
            raise BillcomAuthenticationError("BILL's login answer has no sessionId", provider=PROVIDER,
                                             status_code=response.status_code) from None  # fmt: skip
        self._session_id = answer.session_id
        self.logins += 1

    def _headers(self, sid: str) -> dict[str, str]:
        return {"devKey": self.ctx.secret("dev_key"), "sessionId": sid}

    # -- the webhooks API ----------------------------------------------------------------------------------
    @property
    def events_base_url(self) -> str:
        """The webhooks API's base URL: the ``events_base_url`` option, else derived from the base URL (a trailing
        ``/connect`` becomes ``/connect-events``); :class:`ConfigurationError` when it cannot be derived."""
        explicit = self.ctx.secret("events_base_url")
        if explicit:
            return subscriptions.check_events_base_url(explicit)
        return subscriptions.derive_events_base_url(self.ctx.transport.base_url)

    def events_transport(self) -> Transport:
        """The client's transport pointed at :attr:`events_base_url` (a copy made on first use, once the client's
        default headers are merged: it shares them, the error parser, the timeouts and the request counters).
        Requests go through the client's own httpx client and connection pool (BILL serves both APIs from one
        host; an ``events_base_url`` on another host uses the transport httpx picked for the base URL, its proxy
        settings included)."""
        made = self._events_transport
        if made is None:
            made = copy.copy(self.ctx.transport)
            made.base_url = self.events_base_url
            self._events_transport = made
        return made

    def call(
        self,
        method: str,
        path: str,
        *,
        ids: tuple[str, ...] = (),
        params: Mapping[str, str] | None = None,
        json: Any = None,
        check: str = "",
        reference: str | None = None,
        headers: Mapping[str, str] | None = None,
        idempotent: bool = False,
        api: str = "main",
    ) -> Flow[Response]:
        """Send one request in the session; on ``BDC_1109`` log in again once and repeat it once (BILL refused it
        before acting, so even a create is safe to repeat then).

        The session id is read only once one of the ``max_in_flight`` slots is held, so calls queued behind a
        dead session pick up the renewed one instead of each being refused with the stale id. ``headers`` are
        sent on every attempt, the repeat after a new login included (an ``X-Idempotent-Key`` stays the same);
        ``idempotent`` marks a write BILL de-duplicates; ``api="events"`` sends it to the webhooks API.
        """
        transport = self.events_transport() if api == EVENTS_API else self.ctx.transport
        for attempt in (1, 2):
            yield Acquire(self._slots)
            try:
                sid = yield from self._session()
                sent = self._headers(sid) if not headers else {**headers, **self._headers(sid)}
                request = Request(method, path, ids=ids, params=params, json=json, headers=sent, idempotent=idempotent,
                                  how_to_check=check, reference=reference)  # fmt: skip
                try:
                    return (yield from transport.send(request))
                except BillcomSessionError:
                    if attempt == 2:
                        raise
                    if self._session_id == sid:
                        self._session_id = None  # calls starting now wait for the new login
            finally:
                self._slots.release()
            yield from self._renew(sid)
        raise AssertionError("unreachable")  # pragma: no cover

    def close(self) -> Flow[None]:
        """Log out (best effort: sent once) and forget the session."""
        sid, self._session_id = self._session_id, None
        if sid is None:
            return
        request = Request("POST", "/v3/logout", headers=self._headers(sid))
        try:  # a logout is sent once; else the session expires by itself after 35 idle minutes
            yield from self.ctx.transport.send(request)
        except BillkitError:
            return

    # -- currency ----------------------------------------------------------------------------------------
    def vendor_currency(self, vendor_id: str) -> Flow[str | None]:
        """The vendor's ``billCurrency`` (cached); ``None`` if BILL does not know the vendor."""
        known = self._vendor_currency.get(vendor_id)
        if known is not None:
            return known
        try:
            response = yield from self.call("GET", "/v3/vendors/{}", ids=(vendor_id,))
        except NotFoundError:
            return None
        vendor = response.parse(VendorResponse)
        currency = (vendor.bill_currency or "USD").upper()
        self._vendor_currency[vendor_id] = currency
        return currency

    def _check_currencies(self, items: Sequence[tuple[str, BillCreate, str | None]]) -> Flow[None]:
        problems: list[Problem] = []
        for where, request, currency in items:
            if currency is None:
                continue
            vendor = yield from self.vendor_currency(request.vendor_id)
            if vendor is not None and vendor != currency:
                problems.append(Problem(f"{where}line_items", f"vendor {request.vendor_id} is billed in {vendor} "
                                        f"(its billCurrency); the lines are in {currency}"))  # fmt: skip
        if problems:
            raise ValidationError(problems, provider=PROVIDER)

    def _read_currency(self, wire: BillResponse) -> Flow[str]:
        if wire.vendor_id:
            currency = yield from self.vendor_currency(wire.vendor_id)
            if currency is not None:
                return currency
        if wire.exchange_rate is None or wire.exchange_rate == 1:
            return "USD"
        raise BillcomAPIError(f"cannot tell the currency of bill {wire.id}: its vendor is unknown and it is not in "
                              "USD", provider=PROVIDER)  # fmt: skip

    # -- the common operations ---------------------------------------------------------------------------
    def _currency_of(self, wire: BillResponse, currency: str | None) -> Flow[str]:
        if currency:
            return currency
        return (yield from self._read_currency(wire))

    def create(self, bill: Bill) -> Flow[Bill]:
        """``POST /v3/bills``. Never retried once it may have reached BILL (no idempotency key); when its answer
        is lost the bill is looked for (a safe read) and returned if it exists, else OutcomeUnknownError."""
        request, currency = build_bill(bill)
        yield from self._check_currencies([("", request, currency)])
        since = dt.datetime.fromtimestamp(self.ctx.clock.wall() - RECONCILE_SKEW, tz=dt.timezone.utc)
        try:
            response = yield from self.call(
                "POST", "/v3/bills", json=request.to_json(),
                check=how_to_check(request.vendor_id, [request.invoice.invoice_number]),
                reference=request.invoice.invoice_number,
            )  # fmt: skip
        except OutcomeUnknownError:
            found = yield from self._reconcile([(0, request, currency)], since)
            if 0 in found:
                return found[0]
            raise
        data = response.json()
        wire = read_model(BillResponse, data, provider=PROVIDER)
        return to_bill(wire, (yield from self._currency_of(wire, currency)), data)

    def submit(self, bill: Bill) -> Flow[Started]:
        """BILL creates bills synchronously: create, and return an operation that is already done."""
        created = yield from self.create(bill)
        bill_id = created.provider_id or ""
        first = PollResult(status=created.status, provider_status=created.provider_status, done=True, value=created)
        return Started("bill", bill_id, {"id": bill_id}, first=first)

    def get(self, provider_id: str) -> Flow[Bill]:
        response = yield from self.call("GET", "/v3/bills/{}", ids=(provider_id,))
        data = response.json()
        wire = read_model(BillResponse, data, provider=PROVIDER)
        return to_bill(wire, (yield from self._read_currency(wire)), data)

    def poll(self, kind: str, state: Mapping[str, Any]) -> Flow[PollResult]:
        if kind == "bill":
            bill = yield from self.get(str(state["id"]))
            return PollResult(status=bill.status, provider_status=bill.provider_status, done=True, value=bill)
        if kind == "bulk":
            return PollResult(done=True, value=(yield from self._reread_bulk(state)))
        raise UnsupportedFeatureError(PROVIDER, f"operation kind {kind!r}")

    def _reread_bulk(self, state: Mapping[str, Any]) -> Flow[BulkResult]:
        items: list[ItemResult] = []
        errors: Mapping[str, Any] = state.get("errors", {})
        for index, bill_id in enumerate(state.get("ids", [])):
            if bill_id:
                bill = yield from self.get(str(bill_id))
                items.append(ItemResult(index=index, status=ItemStatus.SUCCEEDED, bill=bill, reference=bill.reference))
            else:
                err = OperationFailed(str(errors.get(str(index), "not created")), provider=PROVIDER)
                items.append(ItemResult(index=index, status=ItemStatus.FAILED, error=err))
        return BulkResult(items=tuple(items), provider=PROVIDER, provider_id=state.get("id"))

    # -- bulk --------------------------------------------------------------------------------------------
    def submit_many(self, bills: Sequence[Bill]) -> Flow[Started]:
        """``POST /v3/bills/bulk`` in batches of 100; an operation that is already done (see the module doc)."""
        result = yield from self.create_many(bills, isolate=self.bulk_isolation)
        ids = [item.bill.provider_id if item.bill else None for item in result]
        errors = {str(item.index): str(item.error) for item in result if item.error is not None}
        first_id = next((i for i in ids if i), "none")
        op_id = f"bulk:{first_id}:{len(ids)}"
        value = BulkResult(items=result.items, provider=PROVIDER, provider_id=op_id)
        first = PollResult(done=True, value=value, progress=(len(ids), len(ids)))
        return Started("bulk", op_id, {"id": op_id, "ids": ids, "errors": errors}, first=first, total=len(ids))

    def _prepare(self, bills: Sequence[Bill]) -> list[_Item]:
        problems: list[Problem] = []
        prepared: list[_Item] = []
        seen: dict[tuple[str, str], int] = {}
        for index, bill in enumerate(bills):
            try:
                request, currency = build_bill(bill)
            except UnsupportedFeatureError as exc:
                raise UnsupportedFeatureError(PROVIDER, f"bills[{index}].{exc.feature}",
                                              exc.message.partition(": ")[2]) from None  # fmt: skip
            except ValidationError as exc:
                problems.extend(Problem(f"bills[{index}].{p.field}", p.message) for p in exc.problems)
                continue
            key = (request.vendor_id, request.invoice.invoice_number)
            if key in seen:
                problems.append(Problem(f"bills[{index}].reference", f"invoice number {key[1]!r} for vendor "
                                        f"{key[0]} repeats bills[{seen[key]}]: BILL's bulk answer is matched by "
                                        "vendor and invoice number"))  # fmt: skip
            seen.setdefault(key, index)
            prepared.append((index, request, currency))
        if problems:
            raise ValidationError(problems, provider=PROVIDER)
        return prepared

    def create_many(self, bills: Sequence[Bill], *, isolate: bool = False) -> Flow[BulkResult]:
        """Create ``bills`` with bulk calls; one ItemResult per input, in input order (see the module doc)."""
        prepared = self._prepare(bills)
        yield from self._check_currencies([(f"bills[{i}].", r, c) for i, r, c in prepared])
        results: dict[int, ItemResult] = {}
        self.last_bulk_calls = 0
        rejections: list[BillcomBulkRejected] = []
        unknown: list[OutcomeUnknownError] = []
        for start in range(0, len(prepared), MAX_BULK):
            batch = prepared[start : start + MAX_BULK]
            if isolate:
                yield from self._isolate(batch, results)
                continue
            since = dt.datetime.fromtimestamp(self.ctx.clock.wall() - RECONCILE_SKEW, tz=dt.timezone.utc)
            try:
                self.last_bulk_calls += 1
                self._record((yield from self._bulk_call(batch)), results)
            except BillcomBulkRejected as rej:
                rejections.append(rej)
                for index, _, _ in batch:
                    results[index] = ItemResult(index=index, status=ItemStatus.FAILED,
                                                error=rej.item_errors.get(index, rej))  # fmt: skip
            except OutcomeUnknownError as exc:
                found = yield from self._reconcile(batch, since)
                if len(found) < len(batch):
                    unknown.append(exc)
                for index, _, _ in batch:
                    bill = found.get(index)
                    results[index] = (ItemResult(index=index, status=ItemStatus.FAILED, error=exc) if bill is None
                                      else ItemResult(index=index, status=ItemStatus.SUCCEEDED, bill=bill,
                                                      reference=bill.reference))  # fmt: skip
        if not any(r.ok for r in results.values()):
            if unknown:
                raise unknown[0]
            if rejections:
                raise _merge(rejections)
        items = tuple(results[i] for i in range(len(bills)))
        return BulkResult(items=items, provider=PROVIDER)

    def _reconcile(self, batch: Sequence[_Item], since: dt.datetime) -> Flow[dict[int, Bill]]:
        """After a create or bulk call whose answer was lost (or a 5xx): the bills that exist, by input index.

        A safe read: the batch's vendors' bills created since the call began (less ``RECONCILE_SKEW`` for clock
        skew), matched by invoice number. What it finds is reported created; what it does not find stays
        :class:`OutcomeUnknownError` (billkit never re-sends a BILL create: BILL has no idempotency key, and a
        bill not visible yet may still appear). A read that fails leaves the whole batch unknown.
        """
        wanted = {(r.vendor_id, r.invoice.invoice_number): (i, c) for i, r, c in batch}
        found: dict[int, Bill] = {}
        try:
            for vendor in sorted({r.vendor_id for _, r, _ in batch}):
                filters: list[tuple[str, str, Any]] = [("vendorId", "eq", vendor), ("createdTime", "gte", since)]
                listed: list[BillResponse] = yield from collect(bills(self, filters=filters))
                for wire in listed:
                    match = wanted.get((wire.vendor_id or "", wire.invoice_number or ""))
                    if match is not None and match[0] not in found:
                        currency = yield from self._currency_of(wire, match[1])
                        found[match[0]] = to_bill(wire, currency, wire.model_dump(by_alias=True, exclude_none=True))
        except BillkitError:
            return {}
        return found

    def _record(self, created: Sequence[tuple[int, Bill | BillkitError]], results: dict[int, ItemResult]) -> None:
        for index, outcome in created:
            if isinstance(outcome, Bill):
                results[index] = ItemResult(index=index, status=ItemStatus.SUCCEEDED, bill=outcome,
                                            reference=outcome.reference)  # fmt: skip
            else:
                results[index] = ItemResult(index=index, status=ItemStatus.FAILED, error=outcome)

    def _isolate(self, batch: list[_Item], results: dict[int, ItemResult]) -> Flow[None]:
        """Resubmit a rejected batch without the items BILL named, or bisect it when BILL named none."""
        groups: list[list[_Item]] = [batch]
        while groups:
            group = groups.pop(0)
            self.last_bulk_calls += 1
            try:
                self._record((yield from self._bulk_call(group)), results)
                continue
            except OutcomeUnknownError as exc:  # never resubmitted: it may have been created
                for index, _, _ in group:
                    results[index] = ItemResult(index=index, status=ItemStatus.FAILED, error=exc)
                continue
            except BillcomBulkRejected as rej:
                named = rej.item_errors
                if len(group) == 1:
                    index = group[0][0]
                    results[index] = ItemResult(index=index, status=ItemStatus.FAILED, error=named.get(index, rej))
                    continue
                if named:
                    for index, error in named.items():
                        results[index] = ItemResult(index=index, status=ItemStatus.FAILED, error=error)
                    rest = [item for item in group if item[0] not in named]
                    if rest:
                        groups.insert(0, rest)
                    continue
                middle = len(group) // 2
                groups[0:0] = [group[:middle], group[middle:]]

    def _bulk_call(self, batch: Sequence[_Item]) -> Flow[list[tuple[int, Bill | BillkitError]]]:
        """One ``POST /v3/bills/bulk``; raises BillcomBulkRejected (global indices) when BILL refuses it."""
        creates = [request for _, request, _ in batch]
        vendors = {r.vendor_id for r in creates}
        numbers = [r.invoice.invoice_number for r in creates]
        try:
            response = yield from self.call(
                "POST", "/v3/bills/bulk", json=[r.to_json() for r in creates],
                check=how_to_check(next(iter(vendors)) if len(vendors) == 1 else None, numbers),
                reference=numbers[0] if len(numbers) == 1 else f"{numbers[0]} .. {numbers[-1]} ({len(numbers)} bills)",
            )  # fmt: skip
        except APIError as err:
            if not _is_rejection(err):
                raise
            entries = err.entries if isinstance(err, BillcomError) else ()
            local = attribute_errors(entries, creates, status_code=err.status_code or 400)
            item_errors = {batch[i][0]: e for i, e in local.items()}
            rej = BillcomBulkRejected(
                f"BILL rejected the whole bulk of {len(batch)} bills (nothing was created): {err.message}",
                item_errors=item_errors, provider=PROVIDER, status_code=err.status_code, code=err.code,
                raw=err.raw,
            )  # fmt: skip
            rej.entries = tuple(entries)
            raise rej from None
        data = response.json()
        answers = data if isinstance(data, list) else []
        by_key: dict[tuple[str | None, str | None], tuple[BillResponse, Any]] = {}
        for raw in answers:
            wire = read_model(BillResponse, raw, provider=PROVIDER)
            by_key[(wire.vendor_id, wire.invoice_number)] = (wire, raw)
        out: list[tuple[int, Bill | BillkitError]] = []
        for index, request, currency in batch:
            found = by_key.pop((request.vendor_id, request.invoice.invoice_number), None)
            if found is None:
                out.append((index, BillcomAPIError(
                    f"BILL's bulk answer has no bill for vendor {request.vendor_id} and invoice number "
                    f"{request.invoice.invoice_number!r}; it may exist anyway. "
                    + how_to_check(request.vendor_id, [request.invoice.invoice_number]),
                    provider=PROVIDER, status_code=response.status_code, raw=data)))  # fmt: skip
                continue
            wire, raw = found
            out.append((index, to_bill(wire, (yield from self._currency_of(wire, currency)), raw)))
        return out

    # -- native ------------------------------------------------------------------------------------------
    # -- batches -------------------------------------------------------------------------------------------
    #: BILL has no idempotency key, and whether a bill is listed at once after its create is not documented:
    #: a look-up proves a bill absent only once this long has passed since it was sent
    reconcile_settle = 120.0
    #: 200 logins per devKey per hour (documented); each client logs in once, so this binds only across processes
    login_budget = ("/v3/login", 200, 3600.0)
    option_names = frozenset(f.alias or n for n, f in BillCreate.model_fields.items())

    @classmethod
    def pin_key(cls, bill: Bill, seed: str, index: int) -> tuple[Bill, str]:
        """BILL has no key of its own: the vendor and the invoice number (``reference``) identify a bill."""
        vendor = bill.counterparty.provider_id if bill.counterparty else None
        return bill, f"{vendor}/{bill.reference}"

    finds_in_bulk = True

    def find_existing(self, bill: Bill, since: float | None) -> Flow[Bill | None]:
        """The vendor's bill with this invoice number, among those created since ``since`` (less
        ``RECONCILE_SKEW``); None when the listing holds none. The look-up raises when it cannot be made."""
        return (yield from self.find_existing_many([bill], since))[0]

    def find_existing_many(self, wanted: Sequence[Bill], since: float | None) -> Flow[list[Bill | None]]:
        """One listing per vendor of the bills created since ``since`` (less ``RECONCILE_SKEW``), matched by
        invoice number: BILL cannot filter on it, so this is one pass however many bills are looked for."""
        built = [build_bill(bill) for bill in wanted]
        start = (since if since is not None else self.ctx.clock.wall()) - RECONCILE_SKEW
        created = dt.datetime.fromtimestamp(start, tz=dt.timezone.utc)
        index = {(r.vendor_id, r.invoice.invoice_number): i for i, (r, _) in enumerate(built)}
        found: list[Bill | None] = [None] * len(wanted)
        for vendor in sorted({r.vendor_id for r, _ in built}):
            filters: list[tuple[str, str, Any]] = [("vendorId", "eq", vendor), ("createdTime", "gte", created)]
            listed: list[BillResponse] = yield from collect(bills(self, filters=filters))
            for wire in listed:
                i = index.get((wire.vendor_id or "", wire.invoice_number or ""))
                if i is not None and found[i] is None:
                    currency = yield from self._currency_of(wire, built[i][1])
                    found[i] = to_bill(wire, currency, wire.model_dump(by_alias=True, exclude_none=True))
        return found

    # -- webhooks --------------------------------------------------------------------------------------------
    def verify_webhook(self, body: bytes, headers: Mapping[str, str], secret: str) -> WebhookEvent:
        """Check ``x-bill-sha-signature`` with the subscription's ``securityKey`` (``secret``) and parse."""
        return verify_event(body, headers, secret)

    def webhook_updates(self, event: Any) -> list[tuple[str, PollResult]]:
        """A ``bill.*`` event carries the whole bill: it updates (or finishes, by the operation's own rules) the
        operations on that bill, ordered by the bill's ``updatedTime``. When the bill's currency is not known
        without a read (a vendor this client has not seen), the event makes the operation read at once instead."""
        if not isinstance(event, WebhookEvent) or event.type not in BILL_EVENTS or not event.bill:
            return []
        try:
            wire = BillResponse.model_validate(event.bill)
        except pydantic.ValidationError:
            bill_id = event.bill.get("id")
            return [(bill_id, PollResult(retry_after=0.0))] if isinstance(bill_id, str) and bill_id else []
        if not wire.id:
            return []
        order = event_time(wire.updated_time)
        currency = self._vendor_currency.get(wire.vendor_id or "")
        if currency is None and (wire.exchange_rate is None or wire.exchange_rate == 1) and not wire.vendor_id:
            currency = "USD"
        if currency is None:
            return [(wire.id, PollResult(retry_after=0.0, order=order))]
        bill = to_bill(wire, currency, event.bill)
        return [(wire.id, PollResult(status=bill.status, provider_status=bill.provider_status, value=bill,
                                     order=order))]  # fmt: skip

    def native_client(self, io: AsyncIO | SyncIO) -> BillcomNative[Any]:
        return BillcomNative(self, io)


#: vendor fields a read cannot confirm: bank and compliance details are not echoed as sent, and BILL may normalise an
#: address (its own example answers "123 Main St" to "123 Main Street")
_UNCOMPARABLE = frozenset({"address", "paymentInformation", "additionalInfo", "paymentPurpose", "regulatoryFields"})


def _vendor_holds(vendor: VendorResponse, sent: Mapping[str, Any]) -> bool:
    """Whether ``vendor`` (as read) holds every field that was sent, to settle a lost answer with a read. Only the
    fields a read can confirm count, and there must be one: a change made only of others is never taken as done."""
    read = vendor.model_dump(by_alias=True, exclude_none=True)
    compared = [key for key in sent if key not in _UNCOMPARABLE]
    return bool(compared) and all(read.get(key) == sent[key] for key in compared)


def _is_rejection(err: APIError) -> bool:
    """A 4xx answer about the content of the bulk (not auth, not a rate limit): BILL rolled it back whole."""
    status = err.status_code or 0
    if isinstance(err, (RateLimitError, BillcomConcurrencyLimitError, BillcomAuthenticationError,
                        PermissionDeniedError)):  # fmt: skip
        return False
    return 400 <= status < 500


def _merge(rejections: Sequence[BillcomBulkRejected]) -> BillcomBulkRejected:
    if len(rejections) == 1:
        return rejections[0]
    item_errors: dict[int, BillkitError] = {}
    entries: list[ErrorEntry] = []
    for rej in rejections:
        item_errors.update(rej.item_errors)
        entries.extend(rej.entries)
    first = rejections[0]
    merged = BillcomBulkRejected(
        f"BILL rejected all {len(rejections)} bulk batches (nothing was created): {first.message}",
        item_errors=item_errors, provider=PROVIDER, status_code=first.status_code, code=first.code,
        raw=[r.raw for r in rejections],
    )  # fmt: skip
    merged.entries = tuple(entries)
    return merged


# -- the native client --------------------------------------------------------------------------------------


def _filter_value(value: Any) -> str:
    if isinstance(value, dt.datetime):
        moment = value if value.tzinfo else value.replace(tzinfo=dt.timezone.utc)
        text = moment.astimezone(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"
        return f'"{text}"'
    if isinstance(value, dt.date):
        return f'"{value.isoformat()}"'
    if isinstance(value, (list, tuple, set, frozenset)):
        return '"' + ",".join(str(v) for v in value) + '"'
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def format_filters(filters: str | Sequence[tuple[str, str, Any]] | None) -> str | None:
    """``[("vendorId", "eq", "009..."), ("createdTime", "gt", datetime)]`` -> BILL's ``filters`` string.

    Dates, date-times and lists are quoted (``createdTime:gt:"2026-12-30T00:00:00.000Z"``); a string is
    passed through as written.
    """
    if filters is None or isinstance(filters, str):
        return filters or None
    return ",".join(f"{field}:{op}:{_filter_value(value)}" for field, op, value in filters)


def list_pages(adapter: BillcomAdapter, path: str, max: int, filters: str | Sequence[tuple[str, str, Any]] | None,
               sort: str | None) -> Stream:  # fmt: skip
    """Raw pages of a BILL listing, following ``nextPage`` until BILL stops returning one."""
    if not 1 <= max <= 100:
        raise ValidationError([Problem("max", "BILL pages hold 1 to 100 items")], provider=PROVIDER)
    params: dict[str, str] = {"max": str(max)}
    text = format_filters(filters)
    if text:
        params["filters"] = text
    if sort:
        params["sort"] = sort
    while True:
        data = (yield from adapter.call("GET", path, params=params)).json()
        yield Emit(data)
        next_page = data.get("nextPage") if isinstance(data, dict) else None
        if not next_page:
            return
        params = {**params, "page": str(next_page)}


def bill_pages(adapter: BillcomAdapter, *, max: int = 100, filters: str | Sequence[tuple[str, str, Any]] | None = None,
               sort: str | None = None) -> Stream:  # fmt: skip
    return expand(list_pages(adapter, "/v3/bills", max, filters, sort),
                  lambda page: [read_model(BillList, page, provider=PROVIDER)])  # fmt: skip


def bills(adapter: BillcomAdapter, **kwargs: Any) -> Stream:
    return expand(bill_pages(adapter, **kwargs), lambda page: page.results)


class BillcomNative(BillcomUpdates[M], Native[M]):
    """BILL's own operations with typed wire models, in the adapter's session (``client.native``).

    Bill updates (``replace_bill``, ``update_bill``) and the bulk vendor create (``create_vendors``) come from
    :class:`~billkit.providers.billcom.updates.BillcomUpdates`.

    Lists follow ``nextPage`` until BILL stops returning one (an empty page can still carry a cursor): async
    iterators under ``AsyncClient``, lists under ``Client``.
    """

    def __init__(self, adapter: BillcomAdapter, io: AsyncIO | SyncIO) -> None:
        super().__init__(io)
        self._adapter = adapter

    def __repr__(self) -> str:
        return "<BillcomNative>"

    # bulk settings
    @property
    def bulk_isolation(self) -> bool:
        """When True, ``client.submit_many`` isolates the faulty items of a rejected batch (see the adapter)."""
        return self._adapter.bulk_isolation

    @bulk_isolation.setter
    def bulk_isolation(self, value: bool) -> None:
        self._adapter.bulk_isolation = bool(value)

    @property
    def last_bulk_calls(self) -> int:
        """How many ``POST /v3/bills/bulk`` calls the last bulk made."""
        return self._adapter.last_bulk_calls

    @property
    def logins(self) -> int:
        """How many times this client logged in."""
        return self._adapter.logins

    @operation
    def create_bills(self, bills: Sequence[Bill], *, isolate: bool = False) -> Flow[BulkResult]:
        """The bulk create, returning the BulkResult directly (``isolate`` per call)."""
        return (yield from self._adapter.create_many(bills, isolate=isolate))

    # session
    @operation
    def session_info(self) -> Flow[dict[str, Any]]:
        """``GET /v3/login/session``: organizationId, userId, mfaStatus, mfaBypass."""
        info: dict[str, Any] = (yield from self._adapter.call("GET", "/v3/login/session")).json()
        return info

    # vendors
    @operation
    def create_vendor(self, vendor: VendorCreate | Mapping[str, Any] | Party) -> Flow[VendorResponse]:
        """``POST /v3/vendors`` from a common :class:`~billkit.Party` (see :func:`mapping.vendor_create` for what
        each field becomes), a mapping in BILL's names, or a :class:`VendorCreate`; checked before anything is sent
        (:class:`~billkit.errors.ValidationError` listing every problem).

        **Fail closed**: BILL has no idempotency key for vendors, so a create that may have reached BILL (a dropped
        answer, a read timeout, a 5xx) is never sent again. billkit looks for it with one safe read (the vendors
        named so, created since the attempt began, whose fields match what was sent) and returns it when exactly
        one matches; otherwise :class:`~billkit.errors.OutcomeUnknownError` says how to check
        (:meth:`find_vendors_by_name`). A refusal that proves the request never arrived is retried.
        """
        request = vendor_create(vendor)
        since = self._adapter.ctx.clock.wall() - RECONCILE_SKEW
        try:
            response = yield from self._adapter.call("POST", "/v3/vendors", json=request.to_json(),
                                                     reference=request.name,
                                                     check=how_to_check_vendor(request.name))  # fmt: skip
        except OutcomeUnknownError:
            found = yield from self._reconcile_vendor(request, since)
            if found is None:
                raise
            return self._remember(found)
        return self._remember(response.parse(VendorResponse))

    def _reconcile_vendor(self, request: VendorCreate, since: float) -> Flow[VendorResponse | None]:
        """The one vendor created since ``since`` that holds every field ``request`` sent, or None (none, several,
        or a listing that failed: then the outcome stays unknown)."""
        try:
            listed: list[VendorResponse] = yield from self._vendors_named(request.name, since)
        except BillkitError:
            return None
        sent = request.to_json()
        matches = [v for v in listed if _vendor_holds(v, sent)]
        return matches[0] if len(matches) == 1 else None

    def _vendors_named(self, name: str, since: float | None) -> Flow[list[VendorResponse]]:
        # BILL's vendor filter fields are not documented (L): the listing is read whole and matched here
        listed: list[VendorResponse] = yield from collect(
            expand(list_pages(self._adapter, "/v3/vendors", 100, None, None),
                   lambda page: read_model(VendorList, page, provider=PROVIDER).results))  # fmt: skip
        out = []
        for vendor in listed:
            created = event_time(vendor.created_time)
            if vendor.name == name and (since is None or created is None or created >= since):
                out.append(vendor)
        return out

    def _remember(self, vendor: VendorResponse) -> VendorResponse:
        """Keep the client's vendor-currency cache right after a create or an update (a bill is checked against
        its vendor's ``billCurrency``)."""
        if vendor.bill_currency:
            self._adapter._vendor_currency[vendor.id] = vendor.bill_currency.upper()
        else:
            self._adapter._vendor_currency.pop(vendor.id, None)
        return vendor

    @operation
    def update_vendor(self, vendor_id: str, changes: VendorUpdate | Mapping[str, Any] | Party) -> Flow[VendorResponse]:
        """``PATCH /v3/vendors/{id}`` with only the fields given (for a :class:`~billkit.Party`, only those the
        caller set: ``Party(email=...)`` changes the e-mail and nothing else); checked before anything is sent.

        Not sent again once it may have reached BILL (no idempotency key); a lost answer is settled by one read:
        the vendor is returned if it already holds every field sent, else
        :class:`~billkit.errors.OutcomeUnknownError`. Bank details (``paymentInformation``) are refused: BILL
        manages them at ``/v3/vendors/{id}/bank-account``. The client's vendor-currency cache follows the answer.
        """
        patch = vendor_update(vendor_id, changes)
        sent = patch.to_json()
        check = (f"read the vendor (client.native.get_vendor({vendor_id!r})) and compare it with the change before "
                 "sending it again")  # fmt: skip
        try:
            response = yield from self._adapter.call("PATCH", "/v3/vendors/{}", ids=(vendor_id,), json=sent,
                                                     reference=vendor_id, check=check)  # fmt: skip
        except OutcomeUnknownError:
            try:
                found = (yield from self._adapter.call("GET", "/v3/vendors/{}", ids=(vendor_id,))).parse(VendorResponse)
            except APIError:
                found = None
            if found is not None and _vendor_holds(found, sent):
                return self._remember(found)
            raise
        return self._remember(response.parse(VendorResponse))

    @operation
    def archive_vendor(self, vendor_id: str) -> Flow[VendorResponse]:
        """``POST /v3/vendors/{id}/archive`` (BILL's soft delete: bills for it are then refused with ``BDC_1205``)."""
        response = yield from self._adapter.call("POST", "/v3/vendors/{}/archive", ids=(vendor_id,))
        return response.parse(VendorResponse)

    @operation
    def restore_vendor(self, vendor_id: str) -> Flow[VendorResponse]:
        """``POST /v3/vendors/{id}/restore``."""
        response = yield from self._adapter.call("POST", "/v3/vendors/{}/restore", ids=(vendor_id,))
        return response.parse(VendorResponse)

    @operation
    def find_vendors_by_name(self, name: str, *,
                             created_since: dt.datetime | None = None) -> Flow[list[VendorResponse]]:  # fmt: skip
        """The vendors named exactly ``name`` (created since ``created_since``, when given): the check an
        :class:`~billkit.errors.OutcomeUnknownError` of a vendor create asks for. BILL's vendor filters are not
        documented, so the listing is read whole and matched here."""
        since = created_since.timestamp() if created_since is not None else None
        return (yield from self._vendors_named(name, since))

    @operation
    def get_vendor(self, vendor_id: str) -> Flow[VendorResponse]:
        return (yield from self._adapter.call("GET", "/v3/vendors/{}", ids=(vendor_id,))).parse(VendorResponse)

    @operation
    def get_vendor_party(self, vendor_id: str) -> Flow[Party]:
        """``GET /v3/vendors/{id}`` as a common :class:`~billkit.Party` (its ``provider_id`` is the vendorId)."""
        vendor = yield from self._adapter.call("GET", "/v3/vendors/{}", ids=(vendor_id,))
        return vendor_party(vendor.parse(VendorResponse))

    @stream_of(VendorResponse)
    def list_vendors(self, *, max: int = 100, filters: str | Sequence[tuple[str, str, Any]] | None = None,
                     sort: str | None = None) -> Stream:  # fmt: skip
        return expand(list_pages(self._adapter, "/v3/vendors", max, filters, sort),
                      lambda page: read_model(VendorList, page, provider=PROVIDER).results)  # fmt: skip

    # bills
    @operation
    def get_bill(self, bill_id: str) -> Flow[BillResponse]:
        return (yield from self._adapter.call("GET", "/v3/bills/{}", ids=(bill_id,))).parse(BillResponse)

    @stream_of(BillList)
    def list_bill_pages(self, *, max: int = 100, filters: str | Sequence[tuple[str, str, Any]] | None = None,
                        sort: str | None = None) -> Stream:  # fmt: skip
        """One :class:`BillList` per ``GET /v3/bills`` page."""
        return bill_pages(self._adapter, max=max, filters=filters, sort=sort)

    @stream_of(BillResponse)
    def list_bills(self, *, max: int = 100, filters: str | Sequence[tuple[str, str, Any]] | None = None,
                   sort: str | None = None) -> Stream:  # fmt: skip
        """Every bill matching ``filters`` (``format_filters`` syntax), ``sort`` like ``createdTime:desc``."""
        return bills(self._adapter, max=max, filters=filters, sort=sort)

    @operation
    def archive_bill(self, bill_id: str) -> Flow[BillResponse]:
        """``POST /v3/bills/{id}/archive`` (BILL's soft delete; the bill reads as VOID)."""
        response = yield from self._adapter.call("POST", "/v3/bills/{}/archive", ids=(bill_id,))
        return response.parse(BillResponse)

    @operation
    def restore_bill(self, bill_id: str) -> Flow[BillResponse]:
        response = yield from self._adapter.call("POST", "/v3/bills/{}/restore", ids=(bill_id,))
        return response.parse(BillResponse)

    # webhook subscriptions: the webhooks API (``events_base_url``), see billkit.providers.billcom.subscriptions
    @property
    def events_base_url(self) -> str:
        """Where the subscription calls go (``.../connect-events``); ConfigurationError if it cannot be derived."""
        return self._adapter.events_base_url

    @operation
    def create_subscription(self, name: str, notification_url: str, events: Sequence[EventInput], *,
                            enabled: bool = True,
                            idempotency_key: str | uuid.UUID | None = None) -> Flow[Subscription]:  # fmt: skip
        """``POST /v3/subscriptions``: subscribe ``notification_url`` (HTTPS) to ``events`` (``"bill.created"``, or an
        :class:`~billkit.providers.billcom.wire.EventSpec` for another version than ``"1"``).

        The answer carries the subscription's ``security_key`` (a SecretStr), **returned this once**: keep it, it
        verifies the deliveries (``client.verify_webhook(body, headers, sub.security_key.get_secret_value())``).
        ``X-Idempotent-Key`` is ``idempotency_key`` (a UUID4; see ``subscriptions.stable_idempotency_key``) or a new
        UUID4, made once for this call and sent on every retry, so a retry after a dropped connection never makes a
        second subscription. Inputs are checked before anything is sent (:class:`ValidationError`).
        """
        problems: list[Problem] = []
        key = subscriptions.check_idempotency_key(idempotency_key, problems)
        request = subscriptions.build_request(name, notification_url, events, enabled, problems)
        if problems or request is None:
            raise ValidationError(problems, provider=PROVIDER)
        return (yield from subscriptions.create(self._adapter, request, key))

    @operation
    def list_subscriptions(self) -> Flow[list[Subscription]]:
        """``GET /v3/subscriptions``: every subscription of the organization (BILL allows 10), without keys."""
        return (yield from subscriptions.list_all(self._adapter))

    @operation
    def get_subscription(self, subscription_id: str) -> Flow[Subscription]:
        """``GET /v3/subscriptions/{id}`` (no ``security_key``: BILL returns it only to the create).
        An unknown id raises :class:`~billkit.errors.NotFoundError`."""
        return (yield from subscriptions.get(self._adapter, subscription_id))

    @operation
    def update_subscription(self, subscription_id: str, *, name: str | None = None,
                            notification_url: str | None = None, events: Sequence[EventInput] | None = None,
                            enabled: bool | None = None) -> Flow[Subscription]:  # fmt: skip
        """``PATCH /v3/subscriptions/{id}`` with only the fields given (``enabled=False`` pauses deliveries). Not
        repeated once it may have reached BILL; a lost answer is settled by one read (see the module)."""
        patch = subscriptions.build_patch(name=name, notification_url=notification_url, events=events,
                                          enabled=enabled)  # fmt: skip
        return (yield from subscriptions.update(self._adapter, subscription_id, patch))

    @operation
    def replace_subscription(self, subscription_id: str, name: str, notification_url: str,
                             events: Sequence[EventInput], *, enabled: bool = True) -> Flow[Subscription]:  # fmt: skip
        """``PUT /v3/subscriptions/{id}``: the whole subscription (name, URL, events, enabled) replaced."""
        problems: list[Problem] = []
        request = subscriptions.build_request(name, notification_url, events, enabled, problems)
        if problems or request is None:
            raise ValidationError(problems, provider=PROVIDER)
        return (yield from subscriptions.replace(self._adapter, subscription_id, request))

    @operation
    def delete_subscription(self, subscription_id: str) -> Flow[None]:
        """``DELETE /v3/subscriptions/{id}``. A lost answer is settled by one read (a 404 means it is gone)."""
        return (yield from subscriptions.delete(self._adapter, subscription_id))

    @operation
    def send_test_event(self, subscription_id: str, *, event_type: str | None = None, version: str | None = None,
                        payload: Mapping[str, Any] | None = None) -> Flow[dict[str, Any]]:  # fmt: skip
        """``POST /v3/subscriptions/{id}/test``: BILL sends a test notification (test values, signed with the
        subscription's key) to its URL. ``payload`` adds the event's object (``{"bill": {...}}``). Returns BILL's
        answer as it came (its shape is not documented)."""
        return (yield from subscriptions.send_test(self._adapter, subscription_id, event_type, version, payload))

    @operation
    def list_subscription_events(self, subscription_id: str, *,
                                 filters: str | Sequence[tuple[str, str, Any]] | None = None,
                                 ) -> Flow[list[EventNotification]]:  # fmt: skip
        """``GET /v3/events/subscription/{id}``: the notifications sent for it (180 days). ``filters`` in
        :func:`format_filters` syntax, e.g. ``[("entityId", "eq", bill_id)]``."""
        text = format_filters(filters)
        return (yield from subscriptions.history(self._adapter, subscription_id, text))

    @operation
    def resend_event(self, subscription_id: str, event_id: str) -> Flow[None]:
        """``POST /v3/events/subscription/{id}/event/{eventId}``: BILL delivers that notification again."""
        return (yield from subscriptions.resend(self._adapter, subscription_id, event_id))

    @operation
    def rotate_security_key(self, subscription_id: str, *,
                            idempotency_key: str | uuid.UUID | None = None) -> Flow[pydantic.SecretStr]:  # fmt: skip
        """``POST /v3/subscriptions/{id}/security_key``: a new security key (BILL signs later deliveries with it;
        verify with both while deliveries signed with the old one may still arrive). Returned as a SecretStr."""
        problems: list[Problem] = []
        key = subscriptions.check_idempotency_key(idempotency_key, problems)
        if problems:
            raise ValidationError(problems, provider=PROVIDER)
        return (yield from subscriptions.rotate_security_key(self._adapter, subscription_id, key))

    @operation
    def find_bills_by_invoice(self, vendor_id: str, invoice_number: str, *,
                              created_since: dt.datetime | None = None) -> Flow[list[BillResponse]]:  # fmt: skip
        """The vendor's bills with this invoice number (BILL cannot filter on it: filtered by vendor, matched here).

        The check an :class:`~billkit.errors.OutcomeUnknownError` of a create asks for.
        """
        filters: list[tuple[str, str, Any]] = [("vendorId", "eq", vendor_id)]
        if created_since is not None:
            filters.append(("createdTime", "gte", created_since))
        listed: list[BillResponse] = yield from collect(bills(self._adapter, filters=filters, sort="createdTime:desc"))
        return [b for b in listed if b.invoice_number == invoice_number]

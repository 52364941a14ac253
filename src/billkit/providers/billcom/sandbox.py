"""An in-process BILL v3 (``/connect/v3``) on the virtual clock, mounted as an httpx transport.

What it models, and how a test or a demo drives it:

* **Sessions**: ``POST /v3/login`` with the test credentials (:data:`BillcomSandbox.credentials`) returns a
  ``sessionId``; every other call needs the ``devKey`` and ``sessionId`` headers. A session dies after 35
  minutes without a call (on the clock) and then answers 401 ``BDC_1109``; :meth:`BillcomSandbox.expire_sessions`
  kills every session at once. Logins are limited to 200 per hour (``BDC_1144``). ``logins`` counts them.
* **Concurrency**: at most 3 requests in flight; a 4th that arrives meanwhile is refused with ``BDC_1322``
  (HTTP 400: BILL documents the code, not the status). Each request takes ``latency`` virtual seconds, so
  concurrent calls overlap. ``peak_in_flight`` and ``refused_concurrent`` say what happened.
* **Vendors and bills** with BILL-shaped ids (vendors ``009...``, bills ``00n...``), three vendors seeded
  (:data:`VENDOR_ACME`, :data:`VENDOR_GLOBEX`, :data:`VENDOR_INITECH` billing in EUR); :data:`UNKNOWN_VENDOR`
  never exists. ``box.bills`` holds every bill created (``box.invoice_counts()`` counts duplicates).
* **Bulk all-or-nothing** (``POST /v3/bills/bulk``, at most 100): the items are applied in order; at the first
  faulty one nothing is kept and the answer is the seed's shape: that item's error (``BDC_1205`` "No data found
  for object with id <vendorId>." for an unknown vendor) followed by one ``BDC_1246`` rollback entry.
* **Deterministic triggers**: an unknown vendor id (``UNKNOWN_VENDOR`` or any ``009...`` not created) fails
  the bill or the batch with ``BDC_1205``; :meth:`reject_vendor_once` makes a *known* vendor fail the next
  request naming it, then work (a bulk rejected whole once and then accepted as is); :meth:`fail_next`
  answers the next matching request with any BDC code (``BDC_1322``, ``BDC_1144``, ``BDC_1109``...).
* **Payments on the clock**: :meth:`pay` (or ``auto_pay`` for every new bill) moves a bill from UNPAID to
  SCHEDULED and then to PAID (or PARTIAL, for an ``amount`` below the total: a ``Money`` in the vendor's
  currency, or a ``str``/``int``/``Decimal``) at the given virtual times, so ``wait_for(..., until=PAID)`` works.
* **The webhooks API** at :attr:`BillcomSandbox.events_base_url` (``.../connect-events``, the same host): webhook
  subscriptions (``/v3/subscriptions``: create with a UUID4 ``X-Idempotent-Key`` (a replayed key answers the first
  answer again, so a retried create makes one subscription; the same key with another body is refused), list, get,
  PUT, PATCH, DELETE, ``/test``, ``/security_key``), the event history and resends (``/v3/events/subscription/..``).
  The ``securityKey`` is in the create's answer only. At most 10 subscriptions, none with the same events and
  notification URL as another, HTTPS notification URLs only; an unknown id is 404 ``BDC_1205``. Requests to the
  webhooks API are recorded with their path under that base (``/v3/subscriptions``), like the main API's.
* **Webhooks**: :meth:`BillcomSandbox.events` computes, from the clock, the deliveries BILL would have sent by
  now: ``bill.created``, ``bill.updated`` (a payment scheduled, a payment made), ``bill.archived`` and
  ``bill.restored`` to each enabled subscription subscribed to them, from its creation on, plus the test events
  asked for; :meth:`BillcomSandbox.webhook_request` signs one with the key of the subscription it names. Until a
  subscription is created through the API, one implicit subscription (``sub_billkit_sandbox``, key
  :attr:`BillcomSandbox.webhook_security_key`) receives the ``bill.updated`` events.
* **Bill updates and bulk vendors** (``PUT`` / ``PATCH /v3/bills/{id}``, ``POST /v3/vendors/bulk``): see
  :mod:`billkit.providers.billcom.sandbox_updates` for what is checked (a paid, scheduled, archived or approved
  bill is refused with 422).
* **Paging**: ``max`` 1-100 (default 20, else 400), opaque ``page`` cursors, ``nextPage`` absent on the
  last page, ``filters=field:op:value,...`` (eq ne gt gte lt lte in nin sw) and ``sort=field:asc|desc``.
* **Faults** from :class:`billkit.sandboxing.Faults`: 5xx and 429 carry BILL's error array; dropped
  connections before or after acting and slow answers come from the base class.
"""

from __future__ import annotations

import base64
import contextvars
import datetime as dt
import hashlib
import json
import secrets
import uuid
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any

import httpx

from billkit.clock import Clock
from billkit.errors import MoneyError
from billkit.money import CURRENCY_EXPONENTS, Money, to_decimal
from billkit.providers.billcom.webhooks import SIGNATURE_HEADER, sign
from billkit.sandboxing import Fault, Faults, RecordedRequest, Sandbox, json_response, path_segments
from billkit.transport import dumps

__all__ = [
    "DEFAULT_SUBSCRIPTION",
    "MAX_SUBSCRIPTIONS",
    "SESSION_IDLE_SECONDS",
    "UNKNOWN_VENDOR",
    "VENDOR_ACME",
    "VENDOR_GLOBEX",
    "VENDOR_INITECH",
    "BillcomSandbox",
]

SESSION_IDLE_SECONDS = 35 * 60
LOGINS_PER_HOUR = 200
MAX_CONCURRENT = 3
MAX_BULK = 100
#: BILL allows up to 10 webhook subscriptions per organization
MAX_SUBSCRIPTIONS = 10
#: the implicit subscription that receives ``bill.updated`` until one is created through the API
DEFAULT_SUBSCRIPTION = "sub_billkit_sandbox"
IDEMPOTENCY_HEADER = "X-Idempotent-Key"

VENDOR_ACME = "00901SANDBOXACME0001"
VENDOR_GLOBEX = "00901SANDBOXGLOBEX01"
VENDOR_INITECH = "00901SANDBOXINITECH1"
#: a well-formed vendor id the sandbox never knows: the deterministic BDC_1205 trigger
UNKNOWN_VENDOR = "00901NOSUCHVENDOR000"

_EXCHANGE = {"USD": Decimal("1"), "EUR": Decimal("1.08"), "GBP": Decimal("1.27"), "CAD": Decimal("0.73")}
_CENT = Decimal("0.01")
_REFUSED: contextvars.ContextVar[bool] = contextvars.ContextVar("billcom_sandbox_refused", default=False)
#: set while a request to the webhooks API (``events_base_url``) is served
_EVENTS_API: contextvars.ContextVar[bool] = contextvars.ContextVar("billcom_sandbox_events_api", default=False)
_SUBSCRIPTION_FIELDS = {"name", "status", "events", "notificationUrl"}
_BILL_FIELDS = {"vendorId", "dueDate", "billLineItems", "invoice", "description", "payFromChartOfAccountId",
                "classifications", "purchaseOrderNumber"}  # fmt: skip


@dataclass
class _Session:
    id: str
    last_used: float


@dataclass
class _Approval:
    """A bill's approval state from ``at`` on (a bill keeps the list of its states, so a past render is exact)."""

    at: float
    status: str  # BILL's approvalStatus
    approvers: list[dict[str, Any]]


@dataclass
class _Payment:
    scheduled_at: float
    paid_at: float
    amount: Decimal | None  # None: the whole bill


class _Reject(Exception):
    def __init__(self, status: int, code: str | None, message: str, category: str = "REQUEST") -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.category = category


class BillcomSandbox(Sandbox):
    """BILL v3 in process. See the module docstring for what it models and its triggers."""

    provider = "billcom"
    base_url = "https://sandbox.billkit.invalid/connect"
    #: the webhooks API (``/v3/subscriptions``, ``/v3/events/...``): what clients derive from :attr:`base_url`
    events_base_url = "https://sandbox.billkit.invalid/connect-events"
    credentials = {
        "username": "sandbox@billkit.test",
        "password": "sandbox-password",
        "organization_id": "00801SANDBOXORG00001",
        "dev_key": "sandbox-dev-key",
    }

    #: the securityKey of the implicit subscription (``DEFAULT_SUBSCRIPTION``), which receives the ``bill.updated``
    #: events until a subscription is created through the API; a created one's key is in its create answer only
    webhook_security_key = "bill_sandbox_security_key"

    def __init__(self, clock: Clock | None = None, faults: Faults | None = None) -> None:
        super().__init__(clock, faults)
        self.latency = 0.05
        self.max_concurrent = MAX_CONCURRENT
        self.session_idle = float(SESSION_IDLE_SECONDS)
        self.sessions: dict[str, _Session] = {}
        self.logins = 0
        self.logouts = 0
        self._login_times: list[float] = []
        self.vendors: dict[str, dict[str, Any]] = {}
        self.bills: dict[str, dict[str, Any]] = {}
        self.payments: dict[str, _Payment] = {}
        #: (seconds until SCHEDULED, seconds until PAID) applied to every new bill (once approved, when an approval
        #: policy applies to it), or None
        self.auto_pay: tuple[float, float] | None = None
        self._init_approvals()
        #: answer bulks in reverse order (BILL does not promise the order): shows matching by invoice number
        self.reverse_bulk_answers = False
        self.in_flight = 0
        self.peak_in_flight = 0
        self.refused_concurrent = 0
        self._arrived = 0
        self._seq = 0
        self._fail_queue: list[tuple[str, int, str | None]] = []
        self._reject_once: set[str] = set()
        self._init_webhooks()
        for vid, name, currency in ((VENDOR_ACME, "Acme Supplies", "USD"), (VENDOR_GLOBEX, "Globex", "USD"),
                                    (VENDOR_INITECH, "Initech GmbH", "EUR")):  # fmt: skip
            self.vendors[vid] = self._vendor_record(vid, {"name": name, "accountType": "BUSINESS",
                                                          "billCurrency": currency})  # fmt: skip

    def _init_webhooks(self) -> None:
        #: the subscriptions, as GET /v3/subscriptions/{id} answers them (no securityKey)
        self.subscriptions: dict[str, dict[str, Any]] = {}
        #: (subscription id, event id) of every resend asked for
        self.resent: list[tuple[str, str]] = []
        self._security_keys: dict[str, str] = {}  # kept after a delete: its past events stay verifiable
        self._subscribed_at: dict[str, float] = {}
        self._idempotent: dict[str, tuple[str, dict[str, Any]]] = {}  # key -> (what it was used for, the answer)
        self._test_events: list[tuple[float, str, dict[str, Any]]] = []
        self._bill_log: list[tuple[float, str, str, bool]] = []  # (at, bill id, event type, archived then)

    def _init_approvals(self) -> None:
        #: bill id -> its approval states, oldest first (bills without an entry are UNASSIGNED)
        self.approvals: dict[str, list[_Approval]] = {}
        #: (threshold, number of approvers) of the approval policy, or None: see :meth:`set_approval_policy`
        self.approval_policy: tuple[Decimal, int] | None = None

    def __setstate__(self, state: dict[str, Any]) -> None:
        super().__setstate__(state)
        if "subscriptions" not in state:  # saved before the webhooks API existed
            self._init_webhooks()
        if "approvals" not in state:  # saved before approvals existed
            self._init_approvals()

    def __repr__(self) -> str:
        return f"<BillcomSandbox bills={len(self.bills)} vendors={len(self.vendors)} requests={len(self.requests)}>"

    # -- knobs for tests and demos -----------------------------------------------------------------------
    def expire_sessions(self) -> None:
        """Invalidate every session now (the next call answers 401 BDC_1109)."""
        self.sessions.clear()

    def fail_next(self, code: str, *, status: int = 400, match: str | None = None) -> None:
        """Answer the next request (whose ``METHOD /path`` contains ``match``) with BILL error ``code``.

        ``BDC_1109`` also invalidates every session, as a real expiry would.
        """
        self._fail_queue.append((code, status, match))

    def reject_vendor_once(self, vendor_id: str) -> None:
        """The next request naming ``vendor_id`` fails with BDC_1205 for it; later ones succeed."""
        self._reject_once.add(vendor_id)

    def pay(self, bill_id: str, *, scheduled_after: float = 0.0, paid_after: float = 60.0,
            amount: Money | Decimal | str | int | None = None) -> None:  # fmt: skip
        """From now: SCHEDULED after ``scheduled_after`` s, then PAID (PARTIAL if ``amount`` < total).

        ``amount`` is a :class:`~billkit.Money` in the bill's currency (its vendor's ``billCurrency``), or a plain
        ``str``, ``int`` or ``Decimal`` in that currency; None pays the whole bill. A Money in another currency, or
        a float, raises :class:`~billkit.errors.MoneyError`. A bill whose approvals are not complete (ASSIGNED,
        APPROVING, DENIED) raises ``ValueError``: BILL pays a bill through the API only once every approver
        approved it.
        """
        if bill_id not in self.bills:
            raise KeyError(bill_id)
        approval = self.approval_status(bill_id)
        if approval not in ("UNASSIGNED", "APPROVED"):
            raise ValueError(f"bill {bill_id} is {approval}: BILL pays a bill only once its approvals are complete "
                             "(box.approve(bill_id) for each approver)")  # fmt: skip
        paid: Decimal | None = None
        if isinstance(amount, Money):
            currency = self.bill_currency(bill_id)
            if amount.currency != currency:
                raise MoneyError(f"amount: bill {bill_id} is in {currency} (the billCurrency of vendor "
                                 f"{self.bills[bill_id]['vendorId']}), not {amount.currency}: pay it with a Money in "
                                 f"{currency}")  # fmt: skip
            paid = amount.amount
        elif amount is not None:
            paid = to_decimal(amount)
        now = self.clock.now()
        self.payments[bill_id] = _Payment(now + scheduled_after, now + max(paid_after, scheduled_after), paid)

    # -- approvals -----------------------------------------------------------------------------------------
    def set_approval_policy(self, threshold: Money | Decimal | str | int | None = "0", *, approvers: int = 1) -> None:
        """Bills created from now whose amount is at least ``threshold`` (in the bill's currency) need ``approvers``
        approvals, in order, before they can be paid: they are created ``approvalStatus: ASSIGNED`` with one
        ``approvers`` entry each (``status: WAITING``). ``None`` removes the policy (bills are UNASSIGNED)."""
        if threshold is None:
            self.approval_policy = None
            return
        if approvers < 1:
            raise ValueError("an approval policy needs at least one approver")
        limit = threshold.amount if isinstance(threshold, Money) else to_decimal(threshold)
        self.approval_policy = (limit, approvers)

    def approval_status(self, bill_id: str) -> str:
        """A bill's ``approvalStatus`` now."""
        return self._approval_at(bill_id, self.clock.now())[0]

    def approve(self, bill_id: str) -> str:
        """The next approver (in ``approverOrder``) approves the bill, as an approver would in BILL (``POST
        /v3/bill-approvals/actions``); returns the bill's new ``approvalStatus``: APPROVING while approvers remain,
        APPROVED after the last. A DENIED approver may approve later. With ``auto_pay`` set, an APPROVED bill's
        payment is scheduled then."""
        status = self._act(bill_id, "APPROVED")
        if status == "APPROVED" and self.auto_pay is not None and bill_id not in self.payments:
            self.pay(bill_id, scheduled_after=self.auto_pay[0], paid_after=self.auto_pay[1])
        return status

    def deny(self, bill_id: str) -> str:
        """The next approver denies the bill: ``approvalStatus`` DENIED (it cannot be paid until approved)."""
        return self._act(bill_id, "DENIED")

    def _act(self, bill_id: str, verdict: str) -> str:
        if bill_id not in self.bills:
            raise KeyError(bill_id)
        now = self.clock.now()
        current, approvers = self._approval_at(bill_id, now)
        waiting = [a for a in approvers if a["status"] != "APPROVED"]
        if current == "UNASSIGNED" or not waiting:
            raise ValueError(f"bill {bill_id} has no approval to give (approvalStatus {current})")
        first = min(waiting, key=lambda a: a["approverOrder"])
        stamp = self._timestamp()
        changed = [dict(a, status=verdict, statusChangedTime=stamp) if a is first else dict(a) for a in approvers]
        if verdict == "DENIED":
            status = "DENIED"
        else:
            status = "APPROVED" if all(a["status"] == "APPROVED" for a in changed) else "APPROVING"
        self.approvals.setdefault(bill_id, []).append(_Approval(now, status, changed))
        self._bill_log.append((now, bill_id, "bill.updated", bool(self.bills[bill_id].get("archived"))))
        return status

    def _approval_at(self, bill_id: str, at: float) -> tuple[str, list[dict[str, Any]]]:
        states = [a for a in self.approvals.get(bill_id, ()) if a.at <= at]
        if not states:
            return "UNASSIGNED", []
        return states[-1].status, states[-1].approvers

    def _assign_approvers(self, record: dict[str, Any]) -> None:
        policy = self.approval_policy
        if policy is None or record["amount"] < policy[0]:
            return
        stamp = record["createdTime"]
        approvers = [{"userId": f"00601SANDBOXAPPR{i + 1:04d}", "status": "WAITING", "approverOrder": i,
                      "statusChangedTime": stamp} for i in range(policy[1])]  # fmt: skip
        self.approvals[record["id"]] = [_Approval(self.clock.now(), "ASSIGNED", approvers)]

    def bill_currency(self, bill_id: str) -> str:
        """The currency of a bill: its vendor's ``billCurrency`` (BILL's bills carry none of their own)."""
        vendor = self.vendors.get(self.bills[bill_id]["vendorId"]) or {}
        return str(vendor.get("billCurrency") or "USD").upper()

    def add_vendor(self, name: str, *, bill_currency: str = "USD") -> str:
        """Create a vendor directly (as if through the BILL web app); returns its id."""
        vid = self._new_id("009")
        self.vendors[vid] = self._vendor_record(vid, {"name": name, "accountType": "BUSINESS",
                                                      "billCurrency": bill_currency})  # fmt: skip
        return vid

    # -- webhooks ----------------------------------------------------------------------------------------
    def events(self) -> list[dict[str, Any]]:
        """The deliveries BILL would have sent by now, oldest first (computed from the clock), each carrying the
        bill as it was then: ``bill.created``, ``bill.updated`` (a payment scheduled, a payment made),
        ``bill.archived`` and ``bill.restored``, one per enabled subscription subscribed to that event type and
        created before it happened, plus the test events asked for (``POST /v3/subscriptions/{id}/test``). Until a
        subscription is created through the API, the implicit ``sub_billkit_sandbox`` receives ``bill.updated``."""
        now = self.clock.now()
        # the log first: at one instant a bill is created before a payment on it is scheduled (the sort is stable)
        happened: list[tuple[float, str, str, bool | None]] = [entry for entry in self._bill_log if entry[0] <= now]
        for bill_id, payment in self.payments.items():
            for at in sorted({payment.scheduled_at, payment.paid_at}):
                if at <= now:
                    happened.append((at, bill_id, "bill.updated", None))
        out: list[tuple[float, str, str, dict[str, Any]]] = []
        for sid, kinds, since in self._audience():
            for at, bill_id, kind, archived in happened:
                if kind in kinds and at >= since and bill_id in self.bills:
                    out.append((at, bill_id, sid or "", self._bill_event(bill_id, kind, at, sid, archived)))
        out.extend((at, "", sid, event) for at, sid, event in self._test_events
                   if at <= now and sid in self.subscriptions)  # fmt: skip
        return [event for *_, event in sorted(out, key=lambda e: (e[0], e[1], e[2]))]

    def _audience(self) -> list[tuple[str | None, frozenset[str], float]]:
        """(subscription id or None for the implicit one, its event types, since when) of every receiver now."""
        if not self._subscribed_at:
            return [(None, frozenset({"bill.updated"}), float("-inf"))]
        return [(sid, frozenset(str(e.get("type")) for e in record["events"]), self._subscribed_at[sid])
                for sid, record in self.subscriptions.items() if record["status"].get("enabled")]  # fmt: skip

    def _bill_event(self, bill_id: str, kind: str, at: float, subscription: str | None = None,
                    archived: bool | None = None) -> dict[str, Any]:  # fmt: skip
        seed = f"{bill_id}:{kind}:{at}" if subscription is None else f"{subscription}:{bill_id}:{kind}:{at}"
        digest = hashlib.sha256(seed.encode()).hexdigest()[:24]
        org = self.credentials["organization_id"]
        metadata = {"eventId": f"evt{digest}", "subscriptionId": subscription or DEFAULT_SUBSCRIPTION,
                    "organizationId": org, "eventType": kind, "version": "1"}  # fmt: skip
        bill = self._render(bill_id, at)
        if archived is not None:
            bill["archived"] = archived
        return {"metadata": metadata, "bill": bill}

    def webhook_request(self, event: Mapping[str, Any]) -> tuple[bytes, dict[str, str]]:
        """The request BILL would make for ``event``: its JSON bytes and headers, signed in ``x-bill-sha-signature``
        (base64 HMAC-SHA256 of the body) with the security key of the subscription its ``metadata.subscriptionId``
        names (its current key), or :attr:`webhook_security_key` for the implicit subscription."""
        metadata = event.get("metadata")
        sid = metadata.get("subscriptionId") if isinstance(metadata, Mapping) else None
        key = self._security_keys.get(sid) if isinstance(sid, str) else None
        body = dumps(dict(event))
        return body, {SIGNATURE_HEADER: sign(body, key or self.webhook_security_key),
                      "content-type": "application/json"}  # fmt: skip

    def security_key(self, subscription_id: str) -> str:
        """The current security key of a subscription, as BILL's side holds it (for tests: a client only ever
        sees it in the answer to the create or to a new key); :attr:`webhook_security_key` for the implicit one."""
        if subscription_id == DEFAULT_SUBSCRIPTION and not self._subscribed_at:
            return self.webhook_security_key
        return self._security_keys[subscription_id]

    def invoice_counts(self) -> Counter[tuple[str, str]]:
        """How many bills exist per (vendorId, invoice number): a value above 1 is a duplicate."""
        return Counter((b["vendorId"], b["invoice"]["invoiceNumber"]) for b in self.bills.values())

    def bill(self, bill_id: str) -> dict[str, Any]:
        """A bill as the API would return it now."""
        return self._render(bill_id)

    # -- the transport: concurrency, latency, secrets out of the record ---------------------------------
    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        events = self._to_events_api(request)
        if events:
            request = self._readdress(request, await request.aread())
        api = _EVENTS_API.set(events)
        refused, token, index = self._arrive()
        try:
            if not refused and self.latency > 0:
                await self.clock.sleep(self.latency)
            return await super().handle_async_request(request)
        finally:
            self._leave(refused, token, index)
            _EVENTS_API.reset(api)

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        events = self._to_events_api(request)
        if events:
            request = self._readdress(request, request.read())
        api = _EVENTS_API.set(events)
        refused, token, index = self._arrive()
        try:
            if not refused and self.latency > 0:
                self.clock.sleep_sync(self.latency)
            return super().handle_request(request)
        finally:
            self._leave(refused, token, index)
            _EVENTS_API.reset(api)

    def _to_events_api(self, request: httpx.Request) -> bool:
        """Whether ``request`` is addressed to the webhooks API (under :attr:`events_base_url`'s path)."""
        path = request.url.raw_path.decode("ascii").partition("?")[0]
        prefix = httpx.URL(self.events_base_url).raw_path.decode("ascii").rstrip("/")
        return bool(prefix) and (path == prefix or path.startswith(prefix + "/"))

    def _readdress(self, request: httpx.Request, content: bytes) -> httpx.Request:
        """A webhooks API request moved under :attr:`base_url`'s path, so the base class records and strips it like
        any other (``/connect-events/v3/subscriptions`` is recorded as ``/v3/subscriptions``)."""
        path, sep, query = request.url.raw_path.decode("ascii").partition("?")
        prefix = httpx.URL(self.events_base_url).raw_path.decode("ascii").rstrip("/")
        main = httpx.URL(self.base_url).raw_path.decode("ascii").rstrip("/")
        url = request.url.copy_with(raw_path=(main + path[len(prefix) :] + sep + query).encode("ascii"))
        return httpx.Request(request.method, url, headers=request.headers, content=content)

    def _arrive(self) -> tuple[bool, contextvars.Token[bool], int]:
        """Count a request in; it is refused (BDC_1322) when ``max_concurrent`` are already being served."""
        with self._lock:
            self._arrived += 1
            self.peak_in_flight = max(self.peak_in_flight, self._arrived)
            refused = self.in_flight >= self.max_concurrent
            if not refused:
                self.in_flight += 1
            index = len(self.requests)
        return refused, _REFUSED.set(refused), index

    def _leave(self, refused: bool, token: contextvars.Token[bool], index: int) -> None:
        _REFUSED.reset(token)
        with self._lock:
            self._arrived -= 1
            if not refused:
                self.in_flight -= 1
            self._redact_login(index)

    def _redact_login(self, index: int) -> None:
        for i in range(index, len(self.requests)):
            rec = self.requests[i]
            if rec.path == "/v3/login" and isinstance(rec.body, dict) and "password" in rec.body:
                body = {k: ("[redacted]" if k in ("username", "password", "devKey") else v)
                        for k, v in rec.body.items()}  # fmt: skip
                self.requests[i] = RecordedRequest(rec.method, rec.path, rec.params, body, rec.at, rec.fault)
                return

    # -- BILL's error shape ------------------------------------------------------------------------------
    def _entry(self, code: str | None, message: str, category: str = "REQUEST") -> dict[str, Any]:
        entry: dict[str, Any] = {"timestamp": self._timestamp(), "severity": "ERROR", "category": category,
                                 "message": message}  # fmt: skip
        if code is not None:
            entry = {"timestamp": entry["timestamp"], "code": code, **{k: v for k, v in entry.items()
                                                                        if k != "timestamp"}}  # fmt: skip
        return entry

    def bdc(self, status: int, code: str | None, message: str, category: str = "REQUEST",
            headers: Mapping[str, str] | None = None) -> httpx.Response:  # fmt: skip
        """A BILL error answer: a JSON array with one entry."""
        return json_response(status, [self._entry(code, message, category)], headers)

    def error(self, status: int, payload: Any, headers: Mapping[str, str] | None = None) -> httpx.Response:
        if isinstance(payload, list):
            return json_response(status, payload, headers)
        message = payload.get("message", "error") if isinstance(payload, dict) else str(payload)
        code = payload.get("code") if isinstance(payload, dict) else None
        return self.bdc(status, code, str(message), "SERVER", headers)

    def fault_response(self, fault: Fault) -> httpx.Response:
        if fault is Fault.RATE_LIMIT:
            return self.bdc(429, "BDC_1322", "Max number of concurrent requests per organization reached.",
                            "DOWNSTREAM", {"retry-after": f"{self.faults.retry_after:g}"})  # fmt: skip
        return self.bdc(503, "BDC_1001", "System error occurred.", "SERVER")

    # -- routing -----------------------------------------------------------------------------------------
    def handle(self, request: httpx.Request, body: Any) -> httpx.Response:
        method, path = request.method, request.url.path
        if _REFUSED.get():
            self.refused_concurrent += 1
            return self.bdc(400, "BDC_1322", "Max number of concurrent requests per organization reached.",
                            "DOWNSTREAM")  # fmt: skip
        injected = self._take_injected(f"{method} {path}")
        if injected is not None:
            return injected
        try:
            if _EVENTS_API.get():
                self._authenticate(request)
                return self._route_events(method, path_segments(request), dict(request.url.params), body,
                                          request.headers.get(IDEMPOTENCY_HEADER))  # fmt: skip
            if method == "POST" and path == "/v3/login":
                return self._login(body)
            self._authenticate(request)
            return self._route(method, path_segments(request), dict(request.url.params), body)
        except _BulkReject as rej:
            return json_response(rej.status, rej.entries)
        except _Reject as rej:
            return self.bdc(rej.status, rej.code, rej.message, rej.category)

    def _take_injected(self, label: str) -> httpx.Response | None:
        for i, (code, status, match) in enumerate(self._fail_queue):
            if match is None or match in label:
                del self._fail_queue[i]
                if code == "BDC_1109":
                    self.sessions.clear()
                    return self.bdc(401, code, "Session is invalid. Please log in.", "DOWNSTREAM")
                messages = {
                    "BDC_1322": "Max number of concurrent requests per organization reached.",
                    "BDC_1144": "Max number of allowed requests per hour reached: 20000.",
                    "BDC_1001": "System error occurred.",
                }
                return self.bdc(status, code, messages.get(code, f"Injected {code}."), "DOWNSTREAM")
        return None

    def _route(self, method: str, parts: list[str], params: dict[str, str], body: Any) -> httpx.Response:
        # parts: ["v3", "bills", ...], each segment unescaped
        if parts[:1] != ["v3"]:
            raise _Reject(404, "BDC_1121", "API not supported.")
        rest = parts[1:]
        if rest == ["logout"] and method == "POST":
            return httpx.Response(200)
        if rest == ["login", "session"] and method == "GET":
            return json_response(200, {"organizationId": self.credentials["organization_id"],
                                       "userId": "00601SANDBOXUSER0001", "mfaStatus": "UNTRUSTED",
                                       "mfaBypass": False})  # fmt: skip
        if rest == ["bills"] and method == "POST":
            return json_response(201, self._create_bills([body], bulk=False)[0])
        if rest == ["bills", "bulk"] and method == "POST":
            if not isinstance(body, list):
                raise _Reject(400, "BDC_1002", "The request body must be an array of bills.")
            if len(body) > MAX_BULK:
                raise _Reject(400, None, f"At most {MAX_BULK} bills per bulk request ({len(body)} given).")
            created = self._create_bills(body, bulk=True)
            return json_response(201, created[::-1] if self.reverse_bulk_answers else created)
        if rest == ["bills"] and method == "GET":
            return json_response(200, self._list([self._render(b) for b in self.bills], params))
        if len(rest) == 2 and rest[0] == "bills" and method == "GET":
            return json_response(200, self._render(self._bill_id(rest[1])))
        if len(rest) == 3 and rest[0] == "bills" and rest[2] in ("archive", "restore") and method == "POST":
            bid = self._bill_id(rest[1])
            archived = rest[2] == "archive"
            if self.bills[bid].get("archived") is not archived:
                self._bill_log.append((self.clock.now(), bid, f"bill.{rest[2]}d", archived))
            self.bills[bid]["archived"] = archived
            self.bills[bid]["updatedTime"] = self._timestamp()
            return json_response(200, self._render(bid))
        if rest == ["vendors"] and method == "POST":
            return json_response(201, self._create_vendor(body))
        if rest == ["vendors"] and method == "GET":
            return json_response(200, self._list(list(self.vendors.values()), params))
        if len(rest) == 2 and rest[0] == "vendors" and method == "GET":
            return json_response(200, dict(self.vendors[self._vendor_id(rest[1])]))
        if len(rest) == 2 and rest[0] == "vendors" and method == "PATCH":
            return json_response(200, self._update_vendor(self._vendor_id(rest[1]), body))
        if len(rest) == 3 and rest[0] == "vendors" and rest[2] in ("archive", "restore") and method == "POST":
            vid = self._vendor_id(rest[1])
            self.vendors[vid]["archived"] = rest[2] == "archive"
            self.vendors[vid]["updatedTime"] = self._timestamp()
            return json_response(200, dict(self.vendors[vid]))
        from billkit.providers.billcom import sandbox_updates  # PUT / PATCH bills, bulk vendors

        routed = sandbox_updates.route(self, method, rest, body)
        if routed is not None:
            return routed
        raise _Reject(404, "BDC_1121", "API not supported.")

    # -- the webhooks API --------------------------------------------------------------------------------
    def _route_events(self, method: str, parts: list[str], params: dict[str, str], body: Any,
                      key: str | None) -> httpx.Response:  # fmt: skip
        if parts[:1] != ["v3"]:
            raise _Reject(404, "BDC_1121", "API not supported.")
        rest = parts[1:]
        if rest == ["subscriptions"] and method == "POST":
            return json_response(200, self._create_subscription(body, key))
        if rest == ["subscriptions"] and method == "GET":
            return json_response(200, [dict(record) for record in self.subscriptions.values()])
        if len(rest) == 2 and rest[0] == "subscriptions" and method in ("GET", "PUT", "PATCH", "DELETE"):
            sid = self._subscription_id(rest[1])
            if method == "GET":
                return json_response(200, dict(self.subscriptions[sid]))
            if method == "DELETE":
                del self.subscriptions[sid]
                return httpx.Response(200)
            return json_response(200, self._write_subscription(sid, body, whole=method == "PUT"))
        if len(rest) == 3 and rest[0] == "subscriptions" and rest[2] == "test" and method == "POST":
            return json_response(200, self._test_event(self._subscription_id(rest[1]), body))
        if len(rest) == 3 and rest[0] == "subscriptions" and rest[2] == "security_key" and method == "POST":
            return json_response(200, self._rotate_key(self._subscription_id(rest[1]), key))
        if len(rest) == 3 and rest[:2] == ["events", "subscription"] and method == "GET":
            return json_response(200, self._history(self._subscription_id(rest[2]), params))
        if len(rest) == 5 and rest[:2] == ["events", "subscription"] and rest[3] == "event" and method == "POST":
            sid = self._subscription_id(rest[2])
            if not any(e["metadata"]["eventId"] == rest[4] for e in self._history(sid, {})):
                raise _Reject(404, "BDC_1205", f"No data found for object with id {rest[4]}.", "DOWNSTREAM")
            self.resent.append((sid, rest[4]))
            return json_response(200, {})
        raise _Reject(404, "BDC_1121", "API not supported.")

    def _subscription_id(self, sid: str) -> str:
        if sid not in self.subscriptions:
            raise _Reject(404, "BDC_1205", f"No data found for object with id {sid}.", "DOWNSTREAM")
        return sid

    def _idempotency_key(self, key: str | None) -> str:
        try:
            if not key or uuid.UUID(key).version != 4:
                raise ValueError
        except ValueError:
            raise _Reject(400, None, f"{IDEMPOTENCY_HEADER}: must be a UUID4 ({key!r} given).") from None
        return key

    def _replayed(self, key: str, purpose: str) -> dict[str, Any] | None:
        """The first answer given for ``key`` when it is used again for the same request; a key used for another
        request is refused."""
        used = self._idempotent.get(key)
        if used is None:
            return None
        if used[0] != purpose:
            raise _Reject(400, None, f"{IDEMPOTENCY_HEADER} {key} was already used for another request.")
        return dict(used[1])

    def _create_subscription(self, body: Any, key: str | None) -> dict[str, Any]:
        key = self._idempotency_key(key)
        purpose = "create:" + json.dumps(body, sort_keys=True, default=str)
        replay = self._replayed(key, purpose)
        if replay is not None:
            return replay
        fields = self._subscription_fields(body, whole=True)
        if len(self.subscriptions) >= MAX_SUBSCRIPTIONS:
            raise _Reject(400, None, f"You can create up to {MAX_SUBSCRIPTIONS} webhook subscriptions per "
                          "organization.")  # fmt: skip
        self._refuse_duplicate(None, fields)
        sid = self._new_id("sub")
        now = self._timestamp()
        self.subscriptions[sid] = {"id": sid, "name": fields["name"], "organizationId": self.credentials[
            "organization_id"], "status": fields["status"], "events": fields["events"],
            "notificationUrl": fields["notificationUrl"], "createdTime": now, "updatedTime": now}  # fmt: skip
        self._security_keys[sid] = secrets.token_urlsafe(32)
        self._subscribed_at[sid] = self.clock.now()
        answer = {**self.subscriptions[sid], "securityKey": self._security_keys[sid]}
        self._idempotent[key] = (purpose, answer)
        return dict(answer)

    def _write_subscription(self, sid: str, body: Any, *, whole: bool) -> dict[str, Any]:
        fields = self._subscription_fields(body, whole=whole)
        merged = {**self.subscriptions[sid], **fields}
        self._refuse_duplicate(sid, merged)
        merged["updatedTime"] = self._timestamp()
        self.subscriptions[sid] = merged
        return dict(merged)

    def _refuse_duplicate(self, sid: str | None, fields: Mapping[str, Any]) -> None:
        kinds = {str(e["type"]) for e in fields["events"]}
        for other, record in self.subscriptions.items():
            if other != sid and record["notificationUrl"] == fields["notificationUrl"] and kinds == {
                    str(e["type"]) for e in record["events"]}:  # fmt: skip
                raise _Reject(400, None, f"Subscription {other} already has the same events and notificationUrl.")

    def _subscription_fields(self, body: Any, *, whole: bool) -> dict[str, Any]:
        """The subscription fields of a create, PUT (``whole``) or PATCH body, checked as BILL documents them."""
        if not isinstance(body, dict):
            raise _Reject(400, "BDC_1002", "The request body must be a JSON object.")
        unknown = sorted(set(body) - _SUBSCRIPTION_FIELDS)
        if unknown:
            raise _Reject(400, "BDC_1002", f"Unknown parameter: {unknown[0]}.")
        if not whole and not body:
            raise _Reject(400, None, "Nothing to update.")
        out: dict[str, Any] = {}
        if whole or "name" in body:
            if not isinstance(body.get("name"), str) or not body["name"].strip():
                raise _Reject(400, None, "name: must not be blank")
            out["name"] = body["name"]
        if whole or "status" in body:
            status = body.get("status")
            if not isinstance(status, dict) or not isinstance(status.get("enabled"), bool):
                raise _Reject(400, None, "status.enabled: must not be null")
            out["status"] = {"enabled": status["enabled"]}
        if whole or "events" in body:
            events = body.get("events")
            if not isinstance(events, list) or not events:
                raise _Reject(400, None, "events: must not be empty")
            for i, event in enumerate(events):
                if not isinstance(event, dict) or set(event) - {"type", "version"} or not all(
                        isinstance(event.get(k), str) and event[k] for k in ("type", "version")):  # fmt: skip
                    raise _Reject(400, None, f"events[{i}]: type and version must not be blank")
            out["events"] = [{"type": e["type"], "version": e["version"]} for e in events]
        if whole or "notificationUrl" in body:
            url = body.get("notificationUrl")
            if not isinstance(url, str) or not url.startswith("https://") or len(url) <= len("https://"):
                raise _Reject(400, None, "notificationUrl: must be an HTTPS URL")
            out["notificationUrl"] = url
        return out

    def _test_event(self, sid: str, body: Any) -> dict[str, Any]:
        if body is not None and not isinstance(body, dict):
            raise _Reject(400, "BDC_1002", "The request body must be a JSON object.")
        fields = body or {}
        record = self.subscriptions[sid]
        kind = fields.get("eventType") or record["events"][0]["type"]
        if not isinstance(kind, str) or "." not in kind:
            raise _Reject(400, None, "eventType: must be an event type such as bill.created")
        version = fields.get("version") or "1"
        obj = kind.partition(".")[0]
        payload = fields.get(obj)
        if not isinstance(payload, dict):
            payload = {"id": "00n01SANDBOXTEST0001", "archived": False} if obj == "bill" else {"id": "test"}
        now = self.clock.now()
        digest = hashlib.sha256(f"test:{sid}:{now}:{len(self._test_events)}".encode()).hexdigest()[:24]
        event = {"metadata": {"eventId": f"evt{digest}", "subscriptionId": sid,
                              "organizationId": self.credentials["organization_id"], "eventType": kind,
                              "version": str(version)}, obj: payload}  # fmt: skip
        self._test_events.append((now, sid, event))
        return event

    def _rotate_key(self, sid: str, key: str | None) -> dict[str, Any]:
        key = self._idempotency_key(key)
        replay = self._replayed(key, f"security_key:{sid}")
        if replay is not None:
            return replay
        self._security_keys[sid] = secrets.token_urlsafe(32)
        answer = {**self.subscriptions[sid], "securityKey": self._security_keys[sid]}
        self._idempotent[key] = (f"security_key:{sid}", answer)
        return dict(answer)

    def _history(self, sid: str, params: Mapping[str, str]) -> list[dict[str, Any]]:
        """The deliveries of ``sid`` so far (``filters=entityId:eq:<id>`` narrows them to one object)."""
        clauses = _split_filters(params.get("filters", ""))
        out = []
        for event in self.events():
            if event["metadata"]["subscriptionId"] != sid:
                continue
            obj = next((v for k, v in event.items() if k != "metadata" and isinstance(v, dict)), {})
            view = {"entityId": obj.get("id"), "eventType": event["metadata"]["eventType"],
                    "eventId": event["metadata"]["eventId"]}  # fmt: skip
            if all(_matches(view, clause) for clause in clauses):
                out.append(event)
        return out

    # -- sessions ----------------------------------------------------------------------------------------
    def _login(self, body: Any) -> httpx.Response:
        creds = self.credentials
        if not isinstance(body, dict):
            raise _Reject(400, "BDC_1002", "Unknown error occurred.")
        if body.get("devKey") != creds["dev_key"]:
            raise _Reject(401, "BDC_1102", "Developer key is invalid.")
        if body.get("username") != creds["username"] or body.get("password") != creds["password"]:
            raise _Reject(401, "BDC_1101", "User name and/or password do not match our records.")
        if body.get("organizationId") != creds["organization_id"]:
            raise _Reject(401, "BDC_1101", "Organization id does not match our records.")
        now = self.clock.now()
        self._login_times = [t for t in self._login_times if now - t < 3600]
        if len(self._login_times) >= LOGINS_PER_HOUR:
            raise _Reject(400, "BDC_1144", f"Max number of allowed logins per hour reached: {LOGINS_PER_HOUR}.",
                          "DOWNSTREAM")  # fmt: skip
        self._login_times.append(now)
        self.logins += 1
        sid = f"sandbox-session-{self.logins:04d}-{self._next():06d}"
        self.sessions[sid] = _Session(sid, now)
        return json_response(200, {"organizationId": creds["organization_id"], "sessionId": sid,
                                   "trusted": False, "userId": "00601SANDBOXUSER0001"})  # fmt: skip

    def _authenticate(self, request: httpx.Request) -> None:
        if request.headers.get("devKey") != self.credentials["dev_key"]:
            raise _Reject(401, "BDC_1102", "Developer key is invalid.")
        sid = request.headers.get("sessionId") or ""
        session = self.sessions.get(sid)
        now = self.clock.now()
        if session is None or now - session.last_used > self.session_idle:
            self.sessions.pop(sid, None)
            raise _Reject(401, "BDC_1109", "Session is invalid. Please log in.", "DOWNSTREAM")
        session.last_used = now
        if request.url.path == "/v3/logout" and not _EVENTS_API.get():
            self.sessions.pop(sid, None)
            self.logouts += 1

    # -- bills -------------------------------------------------------------------------------------------
    def _bill_id(self, bill_id: str) -> str:
        if bill_id not in self.bills:
            raise _Reject(404, "BDC_1205", f"No data found for object with id {bill_id}.", "DOWNSTREAM")
        return bill_id

    def _create_bills(self, items: list[Any], *, bulk: bool) -> list[dict[str, Any]]:
        """Validate every item first; keep all or nothing."""
        built: list[dict[str, Any]] = []
        for item in items:
            try:
                built.append(self._build_bill(item))
            except _Reject as rej:
                if bulk:
                    rollback = self._entry("BDC_1246", "Changes were rollback due to other failures within this "
                                           "transaction.", "DOWNSTREAM")  # fmt: skip
                    failed = self._entry(rej.code, rej.message, rej.category)
                    raise _BulkReject(rej.status, [failed, rollback]) from None
                raise
        for record in built:
            self.bills[record["id"]] = record
            self._assign_approvers(record)
            self._bill_log.append((self.clock.now(), record["id"], "bill.created", False))
            if self.auto_pay is not None and self.approval_status(record["id"]) == "UNASSIGNED":
                self.pay(record["id"], scheduled_after=self.auto_pay[0], paid_after=self.auto_pay[1])
        return [self._render(r["id"]) for r in built]

    def _build_bill(self, body: Any) -> dict[str, Any]:
        if not isinstance(body, dict):
            raise _Reject(400, "BDC_1002", "Unknown error occurred.")
        unknown = sorted(set(body) - _BILL_FIELDS)
        if unknown:
            raise _Reject(400, "BDC_1002", f"Unknown parameter: {unknown[0]}.")
        vendor_id = body.get("vendorId")
        if not isinstance(vendor_id, str) or not vendor_id:
            raise _Reject(400, None, "vendorId: must not be null")
        if vendor_id in self._reject_once:
            self._reject_once.discard(vendor_id)
            raise _Reject(404, "BDC_1205", f"No data found for object with id {vendor_id}.", "DOWNSTREAM")
        vendor = self.vendors.get(vendor_id)
        if vendor is None or vendor.get("archived"):
            raise _Reject(404, "BDC_1205", f"No data found for object with id {vendor_id}.", "DOWNSTREAM")
        _check_date(body.get("dueDate"), "dueDate")
        invoice = body.get("invoice")
        if not isinstance(invoice, dict) or not invoice.get("invoiceNumber"):
            raise _Reject(400, None, "invoice.invoiceNumber: must not be null")
        _check_date(invoice.get("invoiceDate"), "invoice.invoiceDate")
        lines = body.get("billLineItems")
        if not isinstance(lines, list) or not lines:
            raise _Reject(400, None, "billLineItems: must not be empty")
        out_lines = []
        total = Decimal(0)
        for i, line in enumerate(lines):
            amount = _amount_of(line, i)
            total += amount
            rendered: dict[str, Any] = {"id": self._new_id("00l"), "amount": amount}
            for key in ("quantity", "price", "description", "classifications"):
                if isinstance(line, dict) and line.get(key) is not None:
                    rendered[key] = line[key]
            out_lines.append(rendered)
        now = self._timestamp()
        record: dict[str, Any] = {
            "id": self._new_id("00n"),
            "archived": False,
            "vendorId": vendor_id,
            "vendorName": vendor.get("name"),
            "amount": total,
            "dueDate": body["dueDate"],
            "invoice": {"invoiceNumber": invoice["invoiceNumber"], "invoiceDate": invoice["invoiceDate"]},
            "billLineItems": out_lines,
            "approvalStatus": "UNASSIGNED",
            "createdTime": now,
            "updatedTime": now,
        }
        currency = vendor.get("billCurrency", "USD")
        if currency != "USD":
            rate = _EXCHANGE.get(currency, Decimal("1"))
            record["exchangeRate"] = rate
            record["fundingAmount"] = (total * rate).quantize(_CENT)
        for key in ("description", "payFromChartOfAccountId", "classifications", "purchaseOrderNumber"):
            if body.get(key) is not None:
                record[key] = body[key]
        return record

    def _render(self, bill_id: str, at: float | None = None) -> dict[str, Any]:
        record = dict(self.bills[bill_id])
        total: Decimal = record["amount"]
        paid = Decimal("0.00")
        status = "UNPAID"
        payment = self.payments.get(bill_id)
        now = self.clock.now() if at is None else at
        approval = [a for a in self.approvals.get(bill_id, ()) if a.at <= now]
        if approval:
            record["approvalStatus"] = approval[-1].status
            record["approvers"] = [dict(a) for a in approval[-1].approvers]
            stamp = self._timestamp(approval[-1].at)
            record["updatedTime"] = max(str(record["updatedTime"]), stamp)
        if payment is not None and now >= payment.paid_at:
            paid = total if payment.amount is None else min(total, payment.amount)
            status = "PAID" if paid >= total else "PARTIAL"
            record["updatedTime"] = self._timestamp(payment.paid_at)
        elif payment is not None and now >= payment.scheduled_at:
            status = "SCHEDULED"
            record["scheduledAmount"] = total if payment.amount is None else payment.amount
            record["updatedTime"] = self._timestamp(payment.scheduled_at)
        record["paymentStatus"] = status
        record["paidAmount"] = paid.quantize(_CENT)
        record["dueAmount"] = (total - paid).quantize(_CENT)
        return record

    # -- vendors -----------------------------------------------------------------------------------------
    def _vendor_record(self, vid: str, body: Mapping[str, Any]) -> dict[str, Any]:
        now = self._timestamp()
        record = {"id": vid, "archived": False, **dict(body), "createdTime": now, "updatedTime": now}
        record.setdefault("billCurrency", "USD")
        return record

    def _create_vendor(self, body: Any) -> dict[str, Any]:
        fields = _vendor_fields(body, create=True)
        vid = self._new_id("009")
        self.vendors[vid] = self._vendor_record(vid, fields)
        return dict(self.vendors[vid])

    def _update_vendor(self, vid: str, body: Any) -> dict[str, Any]:
        fields = _vendor_fields(body, create=False)
        record = self.vendors[vid]
        record.update(fields)  # an address given replaces the whole address (L: BILL does not say it merges)
        record["updatedTime"] = self._timestamp()
        return dict(record)

    def _vendor_id(self, vid: str) -> str:
        if vid not in self.vendors:
            raise _Reject(404, "BDC_1205", f"No data found for object with id {vid}.", "DOWNSTREAM")
        return vid

    # -- lists -------------------------------------------------------------------------------------------
    def _list(self, records: list[dict[str, Any]], params: Mapping[str, str]) -> dict[str, Any]:
        try:
            size = int(params.get("max", "20"))
        except ValueError:
            raise _Reject(400, "BDC_1002", "max must be a number between 1 and 100.") from None
        if not 1 <= size <= 100:
            raise _Reject(400, None, "max: must be between 1 and 100")
        for clause in _split_filters(params.get("filters", "")):
            records = [r for r in records if _matches(r, clause)]
        if params.get("sort"):
            field, _, order = params["sort"].partition(":")
            records.sort(key=lambda r: str(_lookup(r, field) or ""), reverse=order == "desc")
        offset = _decode_cursor(params.get("page"))
        page = records[offset : offset + size]
        out: dict[str, Any] = {"results": page}
        if offset + size < len(records):
            out["nextPage"] = _encode_cursor(offset + size)
        if offset > 0:
            out["prevPage"] = _encode_cursor(max(0, offset - size))
        return out

    # -- helpers -----------------------------------------------------------------------------------------
    def _next(self) -> int:
        self._seq += 1
        return self._seq

    def _new_id(self, prefix: str) -> str:
        n = self._next()
        digits = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ"
        text = ""
        while n:
            n, r = divmod(n, 36)
            text = digits[r] + text
        return prefix + "01" + text.rjust(15, "0")

    def _timestamp(self, at: float | None = None) -> str:
        wall = self.clock.wall() if at is None else self.clock.wall() - self.clock.now() + at
        moment = dt.datetime.fromtimestamp(wall, tz=dt.timezone.utc)
        return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}+00:00"


class _BulkReject(_Reject):
    def __init__(self, status: int, entries: list[dict[str, Any]]) -> None:
        super().__init__(status, entries[0].get("code"), str(entries[0].get("message")))
        self.entries = entries


#: the fields BILL's vendor create takes (its reference); PATCH takes the same but ``paymentInformation``
_VENDOR_FIELDS = {"name", "shortName", "accountNumber", "accountType", "email", "phone", "address", "billCurrency",
                  "paymentInformation", "additionalInfo", "paymentPurpose", "regulatoryFields"}  # fmt: skip
_VENDOR_ADDRESS_FIELDS = {"line1", "line2", "city", "stateOrProvince", "zipOrPostalCode", "country"}


def _vendor_fields(body: Any, *, create: bool) -> dict[str, Any]:
    """A vendor create (``create``) or PATCH body checked as BILL's references state it: name 1 to 100 characters
    (required on create), shortName at most 40, accountType BUSINESS/PERSON/NONE, an ISO 4217 billCurrency, an
    alpha-2 country (BILL's v3 examples; L), no bank details on PATCH, no unknown field."""
    if not isinstance(body, dict):
        raise _Reject(400, "BDC_1002", "The request body must be a JSON object.")
    unknown = sorted(set(body) - _VENDOR_FIELDS)
    if unknown:
        raise _Reject(400, "BDC_1002", f"Unknown parameter: {unknown[0]}.")
    if not create and "paymentInformation" in body:
        raise _Reject(400, None, "paymentInformation: vendor bank account details cannot be updated with this "
                      "endpoint; use /v3/vendors/{vendorId}/bank-account")  # fmt: skip
    if not create and not body:
        raise _Reject(400, None, "Nothing to update.")
    if create or "name" in body:
        name = body.get("name")
        if not isinstance(name, str) or not name.strip():
            raise _Reject(400, None, "name: must not be blank")
        if len(name) > 100:
            raise _Reject(400, None, "name: length must be between 1 and 100")
    short = body.get("shortName")
    if short is not None and (not isinstance(short, str) or len(short) > 40):
        raise _Reject(400, None, "shortName: length must be at most 40")
    kind = body.get("accountType")
    if kind is not None and kind not in ("BUSINESS", "PERSON", "NONE"):
        raise _Reject(400, None, f"accountType: {kind!r} is not one of BUSINESS, PERSON, NONE")
    currency = body.get("billCurrency")
    if currency is not None and currency not in CURRENCY_EXPONENTS:
        raise _Reject(400, None, f"billCurrency: {currency!r} is not a supported ISO 4217 currency")
    email = body.get("email")
    if email is not None and (not isinstance(email, str) or "@" not in email):
        raise _Reject(400, None, "email: must be a well-formed email address")
    address = body.get("address")
    if address is not None:
        if not isinstance(address, dict) or set(address) - _VENDOR_ADDRESS_FIELDS:
            raise _Reject(400, "BDC_1002", "address: unknown or malformed address fields.")
        country = address.get("country")
        if country is not None and (not isinstance(country, str) or len(country) != 2 or not country.isupper()):
            raise _Reject(400, None, f"address.country: {country!r} is not a country code such as US")
    return {k: v for k, v in body.items() if v is not None}


def _check_date(value: Any, field: str) -> None:
    try:
        if not isinstance(value, str) or len(value) != 10:
            raise ValueError
        dt.date.fromisoformat(value)
    except ValueError:
        raise _Reject(400, None, f"{field}: must be a date in the format yyyy-MM-dd") from None


def _amount_of(line: Any, index: int) -> Decimal:
    if not isinstance(line, dict):
        raise _Reject(400, None, f"billLineItems[{index}]: must be an object")
    try:
        if line.get("amount") is not None:
            amount = Decimal(str(line["amount"]))
        elif line.get("quantity") is not None and line.get("price") is not None:
            amount = Decimal(str(line["quantity"])) * Decimal(str(line["price"]))
        else:
            raise _Reject(400, None, f"billLineItems[{index}].amount: must not be null")
    except InvalidOperation:
        raise _Reject(400, None, f"billLineItems[{index}].amount: not a number") from None
    if amount != amount.quantize(_CENT):
        raise _Reject(400, None, f"billLineItems[{index}].amount: at most 2 decimals")
    return amount.quantize(_CENT)


def _split_filters(text: str) -> list[tuple[str, str, str]]:
    clauses: list[str] = []
    current, quoted = "", False
    for ch in text:
        if ch == '"':
            quoted = not quoted
        if ch == "," and not quoted:
            clauses.append(current)
            current = ""
        else:
            current += ch
    if current:
        clauses.append(current)
    out = []
    for clause in clauses:
        field, _, rest = clause.partition(":")
        op, _, value = rest.partition(":")
        if not field or op not in ("eq", "ne", "gt", "gte", "lt", "lte", "in", "nin", "sw"):
            raise _Reject(400, "BDC_1002", f"Invalid filter: {clause}.")
        out.append((field, op, value.strip('"')))
    return out


def _lookup(record: Mapping[str, Any], field: str) -> Any:
    value: Any = record
    for part in field.split("."):
        value = value.get(part) if isinstance(value, Mapping) else None
    return value


def _matches(record: Mapping[str, Any], clause: tuple[str, str, str]) -> bool:
    field, op, wanted = clause
    value = _lookup(record, field)
    text = str(value).lower() if isinstance(value, bool) else "" if value is None else str(value)
    if op in ("in", "nin"):
        hit = text in [w.strip() for w in wanted.split(",")]
        return hit if op == "in" else not hit
    ops = {
        "eq": text == wanted, "ne": text != wanted, "gt": text > wanted, "gte": text >= wanted,
        "lt": text < wanted, "lte": text <= wanted, "sw": text.startswith(wanted),
    }  # fmt: skip
    return ops[op]


def _encode_cursor(offset: int) -> str:
    return base64.urlsafe_b64encode(json.dumps({"o": offset}).encode()).decode().rstrip("=")


def _decode_cursor(page: str | None) -> int:
    if not page:
        return 0
    try:
        data = json.loads(base64.urlsafe_b64decode(page + "=" * (-len(page) % 4)))
        return max(0, int(data["o"]))
    except (ValueError, KeyError, TypeError):
        raise _Reject(400, "BDC_1002", "Invalid page.") from None

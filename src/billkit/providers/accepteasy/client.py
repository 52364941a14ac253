"""The AcceptEasy v2 adapter: sync, async and bulk creation, status by ATID and BulkId, native client, webhooks.

**Operations.** ``create`` is ``POST /v2/Bill`` (201, the full bill). ``submit`` is ``POST /v2/Bill/async``
(202, an ATID); the operation polls ``GET /v2/Bill/{ATID}/status`` until ``CreationSucceeded`` (then it reads
the bill) or ``CreationFailed`` (then it raises :class:`OperationFailed` with the APP code and message).
``submit_many`` is one ``POST /v2/Bill/bulk``; the operation reads ``GET /v2/Bill/bulk/{BulkId}/status`` once
per poll, whatever the bulk size, and resolves to a :class:`BulkResult` with one item per input in input order
(matched by SRRID, or position, see :func:`~billkit.providers.accepteasy.mapping.match_bulk`). A top-level
``CreationFailed`` fails every item with its reason.

**Creates that are safe to retry.** AcceptEasy has no idempotency key. What is *documented*: an SRRID "if
posted, needs to be unique", it is echoed and it is searchable with the bill. What is *billkit's choice*:

* every create carries an SRRID: the caller's (``provider_options={"SRRID": ...}``) or one billkit makes per
  logical create (``bk-`` + 32 hex), reused on every attempt;
* the transport never repeats a create whose answer was lost. The adapter then looks the SRRID up
  (``GET /v2/Search/Bill?paymentReference=...``, filtered on SRRID, a safe read) *before* it sends again: found
  means the first attempt worked and that bill is returned; absent means it is sent again with the same SRRID
  (at most ``max_create_attempts`` sends), so a lost answer never becomes a second bill;
* a refusal whose message reads like a duplicate SRRID (the wording is undocumented) resolves to the existing
  bill when the search finds one with the same SRRID, PaymentReference and amount; otherwise the refusal is
  raised. For ``submit``, when the bill is still being processed and not yet searchable, the operation keeps
  looking for the SRRID (kind ``srrid``) until it appears or the deadline passes;
* a bulk whose answer is lost is **not** re-sent automatically (its bills may still be queued, invisible to
  search): :class:`OutcomeUnknownError` says how to check its SRRIDs.

**Webhooks** (:mod:`~billkit.providers.accepteasy.webhooks`): a verified event makes the matching operation
(ATID or BulkId) re-read at once, which is the vendor's advice (the body is a hint); a CreationFailed event fails
its operation with the message it carries.
"""

from __future__ import annotations

import base64
import datetime as dt
from collections.abc import AsyncIterator, Mapping, Sequence
from typing import Any
from urllib.parse import parse_qsl

from billkit.client import Adapter, AdapterContext, Capabilities, Credential, Secret
from billkit.clock import Clock
from billkit.errors import (
    APIError,
    BillkitError,
    OperationFailed,
    OutcomeUnknownError,
    Problem,
    ValidationError,
)
from billkit.models import Bill, BillStatus, BulkResult, ItemResult, ItemStatus
from billkit.operations import PollResult, Started
from billkit.providers.accepteasy.mapping import (
    PROVIDER,
    build_request,
    creation_status,
    error_from_response,
    how_to_check,
    is_duplicate_srrid,
    match_bulk,
    new_srrid,
    to_bill,
)
from billkit.providers.accepteasy.sandbox import AcceptEasySandbox
from billkit.providers.accepteasy.webhooks import (
    BulkCompletedEvent,
    CreationFailedEvent,
    WebhookEvent,
    verify,
)
from billkit.providers.accepteasy.wire import (
    Address,
    AsyncAccepted,
    AsyncStatus,
    BillRequest,
    BillResponse,
    BillSearchResponse,
    BounceSearchResponse,
    BulkAccepted,
    BulkBillStatus,
    BulkStatus,
    PatchRequest,
    PatchResponse,
    PaymentMethod,
    PaymentSearchResponse,
    format_datetime,
)
from billkit.sandboxing import Faults
from billkit.transport import Request, Response, read_model

__all__ = ["AcceptEasyAdapter", "AcceptEasyNative"]


def _plain(value: Secret | str | None) -> str:
    if value is None:
        return ""
    return value.get_secret_value() if isinstance(value, Secret) else value


class AcceptEasyAdapter(Adapter):
    """AcceptEasy (Serrala Bill Pay) REST v2. See the module docstring for the create-safety rules."""

    name = "accepteasy"
    credentials = (Credential("key_name", "ACCEPTEASY_KEY_NAME", secret=False), Credential("key", "ACCEPTEASY_KEY"))
    default_base_url = "https://api.acceptemail.com"
    capabilities = Capabilities(
        provider="accepteasy",
        directions=frozenset({"receivable"}),
        currencies=frozenset({"EUR"}),
        async_create=True,
        native_bulk=True,
        bulk_all_or_nothing=False,
        max_bulk_size=None,  # undocumented
        idempotency=False,
        webhooks=True,
        remote_cancel=True,
        notes=(
            "EUR only; amounts are sent in integer cents and read back in decimal euros",
            "no idempotency key: every create carries an SRRID (unique at AcceptEasy) that billkit looks up "
            "before sending again after a lost answer",
            "bulk is partial: ProcessingCompleted even when some or all bills failed",
            "cancel, mark paid or expire an open bill with client.native (PATCH /v2/Bill/{ATID})",
        ),
    )
    #: sends of one logical create at most (each one after an SRRID lookup found nothing)
    max_create_attempts = 3

    def __init__(self, ctx: AdapterContext) -> None:
        super().__init__(ctx)
        self._native = AcceptEasyNative(self)

    # -- configuration -----------------------------------------------------------------------------------
    @classmethod
    def auth_headers(cls, ctx_credentials: Mapping[str, Secret | str | None]) -> dict[str, str]:
        pair = f"{_plain(ctx_credentials.get('key_name'))}:{_plain(ctx_credentials.get('key'))}"
        return {"authorization": "Basic " + base64.b64encode(pair.encode()).decode()}

    @classmethod
    def parse_error(cls, response: Response) -> BillkitError:
        return error_from_response(response)

    @classmethod
    def make_sandbox(cls, clock: Clock | None = None, faults: Faults | None = None) -> AcceptEasySandbox:
        return AcceptEasySandbox(clock, faults)

    @property
    def native(self) -> AcceptEasyNative:
        return self._native

    # -- helpers -----------------------------------------------------------------------------------------
    def _now(self) -> dt.datetime:
        return dt.datetime.fromtimestamp(self.ctx.clock.wall(), tz=dt.timezone.utc)

    def prepare(self, bill: Bill, *, prefix: str = "") -> BillRequest:
        """The request body for ``bill`` (validated; an SRRID made unless the caller gave one). Sends nothing."""
        return build_request(bill, now=self._now(), srrid=new_srrid(), prefix=prefix)

    async def _find(self, req: BillRequest) -> dict[str, Any] | None:
        """The existing bill with ``req``'s SRRID and PaymentReference (a safe search), or None."""
        found = await self._native.find_by_srrid(req.PaymentReference, req.SRRID or "")
        return None if found is None else found.model_dump(mode="python", exclude_none=True)

    def _same(self, req: BillRequest, found: Mapping[str, Any]) -> bool:
        amount = found.get("Amount")
        return amount is None or int(amount * 100) == req.Amount

    async def _send_create(self, path: str, req: BillRequest) -> tuple[Response | None, dict[str, Any] | None]:
        """POST a create; after a lost answer look the SRRID up before sending again.

        Returns ``(response, None)`` when the provider answered, ``(None, bill)`` when an earlier attempt had
        created the bill (found by SRRID).
        """
        body = req.to_json()
        check = how_to_check(req.PaymentReference, req.SRRID)
        attempts = 0
        while True:
            attempts += 1
            try:
                request = Request.unsafe("POST", path, json=body, how_to_check=check, reference=req.SRRID)
                return await self.ctx.transport.send(request), None
            except OutcomeUnknownError as unknown:
                try:
                    existing = await self._find(req)
                except BillkitError:
                    raise unknown from None
                if existing is not None:
                    return None, existing
                if attempts >= self.max_create_attempts:
                    raise
            except APIError as refused:
                if not is_duplicate_srrid(refused.message):
                    raise
                try:
                    existing = await self._find(req)
                except BillkitError:  # the look-up failed: the refusal itself is the answer (the SRRID is taken)
                    raise refused from None
                if existing is not None and self._same(req, existing):
                    return None, existing
                raise

    # -- the common operations -----------------------------------------------------------------------------
    async def create(self, bill: Bill) -> Bill:
        req = self.prepare(bill)
        response, existing = await self._send_create("/v2/Bill", req)
        if existing is not None:
            return to_bill(existing)
        assert response is not None
        return to_bill(response.json())

    async def submit(self, bill: Bill) -> Started:
        req = self.prepare(bill)
        state = {"srrid": req.SRRID, "ref": req.PaymentReference, "cents": req.Amount}
        try:
            response, existing = await self._send_create("/v2/Bill/async", req)
        except APIError as refused:
            if not is_duplicate_srrid(refused.message):
                raise
            # the SRRID is taken by a bill not yet searchable (still processing): wait for it to appear
            return Started("srrid", req.SRRID or "", {"kind": "srrid", **state})
        if existing is not None:
            found = to_bill(existing)
            first = PollResult(status=found.status, provider_status=found.provider_status, done=True, value=found)
            atid = str(existing.get("ATID"))
            return Started("create", atid, {"atid": atid, **state}, first=first)
        assert response is not None
        atid = response.parse(AsyncAccepted).ATID
        return Started("create", atid, {"atid": atid, **state})

    async def submit_many(self, bills: Sequence[Bill]) -> Started:
        problems: list[Problem] = []
        reqs: list[BillRequest] = []
        for i, bill in enumerate(bills):
            try:
                reqs.append(self.prepare(bill, prefix=f"[{i}]."))
            except ValidationError as exc:
                problems.extend(exc.problems)
        seen: dict[str, int] = {}
        for i, req in enumerate(reqs):
            if req.SRRID in seen:
                problems.append(Problem(f"[{i}].provider_options.SRRID", f"same SRRID as bill {seen[req.SRRID]}"))
            seen.setdefault(req.SRRID or "", i)
        if problems:
            raise ValidationError(problems, provider=PROVIDER)
        srrids = [r.SRRID for r in reqs]
        refs = [r.PaymentReference for r in reqs]
        check = (
            f"The bulk of {len(reqs)} bills may or may not have been queued, and it is not re-sent automatically. "
            f"Look up its SRRIDs (first {srrids[0]}, last {srrids[-1]}) with client.native.find_by_srrid after a "
            "few minutes, then resend the missing bills with the same SRRIDs."
        )
        body = {"Bills": [r.to_json() for r in reqs]}
        request = Request.unsafe("POST", "/v2/Bill/bulk", json=body, how_to_check=check, reference=srrids[0])
        response = await self.ctx.transport.send(request)
        bulk_id = response.parse(BulkAccepted).BulkId
        return Started("bulk", bulk_id, {"bulk_id": bulk_id, "srrids": srrids, "refs": refs}, total=len(reqs))

    async def get(self, provider_id: str) -> Bill:
        return to_bill((await self.ctx.transport.send(Request("GET", f"/v2/Bill/{provider_id}"))).json())

    async def poll(self, kind: str, state: Mapping[str, Any]) -> PollResult:
        if kind == "create":
            return await self._poll_create(state)
        if kind == "bulk":
            return await self._poll_bulk(state)
        if kind == "srrid":
            return await self._poll_srrid(state)
        raise BillkitError(f"unknown AcceptEasy operation kind {kind!r}", provider=PROVIDER)

    async def _poll_create(self, state: Mapping[str, Any]) -> PollResult:
        atid = str(state["atid"])
        response = await self.ctx.transport.send(Request("GET", f"/v2/Bill/{atid}/status"))
        status = response.parse(AsyncStatus)
        common = creation_status(status.STATUS)
        if common is BillStatus.OPEN:
            bill = await self.get(atid)
            return PollResult(status=bill.status, provider_status=bill.provider_status, done=True, value=bill)
        if common is BillStatus.FAILED:
            message = (status.ERROR.Message if status.ERROR else None) or "creation failed"
            if is_duplicate_srrid(message) and state.get("srrid"):
                return await self._poll_srrid({**state, "kind": "srrid"})
            error = OperationFailed(
                message,
                provider=PROVIDER,
                status=BillStatus.FAILED.value,
                provider_status=status.STATUS,
                code=status.ERROR.code if status.ERROR else None,
                operation_id=atid,
                raw=response.json(),
            )
            return PollResult(status=BillStatus.FAILED, provider_status=status.STATUS, done=True, error=error)
        return PollResult(status=common, provider_status=status.STATUS, retry_after=response.retry_after)

    async def _poll_srrid(self, state: Mapping[str, Any]) -> PollResult:
        found = await self._native.find_by_srrid(str(state.get("ref")), str(state.get("srrid")))
        if found is None:
            return PollResult(status=BillStatus.PENDING, provider_status="Processing")
        bill = to_bill(found.model_dump(mode="python", exclude_none=True))
        return PollResult(status=bill.status, provider_status=bill.provider_status, done=True, value=bill)

    async def _poll_bulk(self, state: Mapping[str, Any]) -> PollResult:
        bulk_id = str(state["bulk_id"])
        response = await self.ctx.transport.send(Request("GET", f"/v2/Bill/bulk/{bulk_id}/status"))
        status = response.parse(BulkStatus)
        srrids: list[str | None] = list(state.get("srrids") or [])
        refs: list[str | None] = list(state.get("refs") or [])
        total = len(srrids)
        if status.STATUS == "CreationFailed":
            message = (status.ERROR.Message if status.ERROR else None) or "the bulk failed as a whole"
            code = status.ERROR.code if status.ERROR else None
            items = tuple(
                ItemResult(index=i, status=ItemStatus.FAILED, reference=refs[i] if i < len(refs) else None,
                           error=OperationFailed(message, provider=PROVIDER, status=BillStatus.FAILED.value,
                                                 provider_status="CreationFailed", code=code, operation_id=bulk_id))
                for i in range(total)
            )  # fmt: skip
            result = BulkResult(items=items, provider=PROVIDER, provider_id=bulk_id)
            return PollResult(status=BillStatus.FAILED, provider_status=status.STATUS, done=True, value=result,
                              progress=(total, total))  # fmt: skip
        done = status.STATUS == "ProcessingCompleted"
        if not done and not status.Bills:  # still processing, nothing reported yet: no per-item result to build
            return PollResult(status=BillStatus.PENDING, provider_status=status.STATUS, progress=(0, total),
                              retry_after=response.retry_after)  # fmt: skip
        result = self._bulk_result(bulk_id, status.Bills or [], srrids, refs, final=done)
        finished = sum(1 for item in result.items if item.status is not ItemStatus.PENDING)
        if done:
            return PollResult(status=BillStatus.OPEN, provider_status=status.STATUS, done=True, value=result,
                              progress=(total, total))  # fmt: skip
        return PollResult(status=BillStatus.PENDING, provider_status=status.STATUS, progress=(finished, total),
                          partial=result, retry_after=response.retry_after)  # fmt: skip

    def _bulk_result(
        self, bulk_id: str, entries: Sequence[BulkBillStatus], srrids: list[str | None], refs: list[str | None],
        *, final: bool,
    ) -> BulkResult:  # fmt: skip
        matched, ambiguous = match_bulk(entries, srrids, refs)
        items: list[ItemResult] = []
        for i in range(len(srrids)):
            ref = refs[i] if i < len(refs) else None
            entry = matched.get(i)
            if entry is not None and creation_status(entry.STATUS) is BillStatus.OPEN:
                bill = Bill(reference=entry.PaymentReference, provider=PROVIDER, provider_id=entry.ATID,
                            status=BillStatus.OPEN, provider_status=entry.STATUS,
                            links={"location": entry.Location} if entry.Location else {},
                            raw=entry.model_dump(mode="python", exclude_none=True))  # fmt: skip
                items.append(ItemResult(index=i, status=ItemStatus.SUCCEEDED, bill=bill, reference=ref))
            elif entry is not None and creation_status(entry.STATUS) is BillStatus.FAILED:
                message = (entry.ERROR.Message if entry.ERROR else None) or "creation failed"
                error = OperationFailed(message, provider=PROVIDER, status=BillStatus.FAILED.value,
                                        provider_status=entry.STATUS, code=entry.ERROR.code if entry.ERROR else None,
                                        operation_id=entry.ATID,
                                        raw=entry.model_dump(mode="python", exclude_none=True))  # fmt: skip
                items.append(ItemResult(index=i, status=ItemStatus.FAILED, error=error, reference=ref))
            elif final:
                group = ambiguous.get(i)
                detail = (
                    "the bulk status has several entries for this PaymentReference with different outcomes: "
                    + "; ".join(sorted({f"{e.STATUS} {e.ERROR.Message if e.ERROR else ''}".strip() for e in group}))
                    if group
                    else "the bulk status has no entry for this bill"
                )  # fmt: skip
                unknown = OutcomeUnknownError(
                    f"bulk {bulk_id} item {i}: {detail}", provider=PROVIDER,
                    how_to_check=how_to_check(ref, srrids[i]), reference=srrids[i],
                )  # fmt: skip
                items.append(ItemResult(index=i, status=ItemStatus.FAILED, error=unknown, reference=ref))
            else:
                items.append(ItemResult(index=i, status=ItemStatus.PENDING, reference=ref))
        return BulkResult(items=tuple(items), provider=PROVIDER, provider_id=bulk_id)

    # -- webhooks --------------------------------------------------------------------------------------------
    def verify_webhook(self, body: bytes, headers: Mapping[str, str], secret: str) -> WebhookEvent:
        """Check the Basic-auth ``secret`` (``"user:password"`` of your notification URL) and parse the body."""
        return verify(body, headers, secret)

    def webhook_updates(self, event: Any) -> list[tuple[str, PollResult]]:
        if isinstance(event, BulkCompletedEvent):
            return [(event.BulkId or "", PollResult(provider_status=event.STATUS, retry_after=0.0))]
        if not isinstance(event, AsyncStatus) or not event.ATID:
            return []
        message = (event.ERROR.Message if event.ERROR else None) or "creation failed"
        if isinstance(event, CreationFailedEvent) and not is_duplicate_srrid(message):
            error = OperationFailed(message, provider=PROVIDER, status=BillStatus.FAILED.value,
                                    provider_status=event.STATUS, code=event.ERROR.code if event.ERROR else None,
                                    operation_id=event.ATID, raw=event.model_dump(mode="python"))  # fmt: skip
            return [(event.ATID, PollResult(status=BillStatus.FAILED, provider_status=event.STATUS, done=True,
                                            error=error))]  # fmt: skip
        # the body is a hint: the operation re-reads at once (the vendor's advice)
        return [(event.ATID, PollResult(provider_status=event.STATUS, retry_after=0.0))]


class AcceptEasyNative:
    """AcceptEasy's own operations, typed with the wire models (``client.native``)."""

    def __init__(self, adapter: AcceptEasyAdapter) -> None:
        self._adapter = adapter

    def __repr__(self) -> str:
        return "<AcceptEasyNative>"

    async def _send(self, request: Request) -> Response:
        return await self._adapter.ctx.transport.send(request)

    # -- records -------------------------------------------------------------------------------------------
    async def get_bill(self, atid: str) -> BillResponse:
        """``GET /v2/Bill/{ATID}`` as the wire model (events and unknown fields kept)."""
        return (await self._send(Request("GET", f"/v2/Bill/{atid}"))).parse(BillResponse)

    async def async_status(self, atid: str) -> AsyncStatus:
        return (await self._send(Request("GET", f"/v2/Bill/{atid}/status"))).parse(AsyncStatus)

    async def bulk_status(self, bulk_id: str) -> BulkStatus:
        response = await self._send(Request("GET", f"/v2/Bill/bulk/{bulk_id}/status"))
        return response.parse(BulkStatus)

    async def payment_methods(self, atid: str) -> list[PaymentMethod]:
        """``GET /v2/Bill/{ATID}/PaymentMethods``: methods and sub-methods (e.g. iDEAL banks)."""
        data = (await self._send(Request("GET", f"/v2/Bill/{atid}/PaymentMethods"))).json()
        return [read_model(PaymentMethod, item, provider=PROVIDER) for item in data or []]

    # -- PATCH ---------------------------------------------------------------------------------------------
    async def patch(self, atid: str, body: PatchRequest) -> PatchResponse:
        """``PATCH /v2/Bill/{ATID}`` (idempotent: setting the same address or status twice is harmless)."""
        response = await self._send(Request("PATCH", f"/v2/Bill/{atid}", json=body.to_json()))
        return response.parse(PatchResponse)

    async def update_address(self, atid: str, *, email: str | None = None, phone: str | None = None) -> PatchResponse:
        if email is None and phone is None:
            raise ValidationError([Problem("address", "give email and/or phone")], provider=PROVIDER)
        return await self.patch(atid, PatchRequest(Address=Address(Email=email, PhoneNumber=phone)))

    async def set_status(self, atid: str, status: str) -> PatchResponse:
        """Change an open bill's status. The accepted strings are undocumented; billkit sends ``Canceled`` (the
        glossary's spelling), ``Paid`` and ``Expired``."""
        return await self.patch(atid, PatchRequest(Status=status))

    async def cancel(self, atid: str) -> PatchResponse:
        return await self.set_status(atid, "Canceled")

    async def mark_paid(self, atid: str) -> PatchResponse:
        return await self.set_status(atid, "Paid")

    async def expire(self, atid: str) -> PatchResponse:
        return await self.set_status(atid, "Expired")

    # -- search --------------------------------------------------------------------------------------------
    async def _pages(self, path: str, params: dict[str, str]) -> AsyncIterator[dict[str, Any]]:
        while True:
            data = (await self._send(Request("GET", path, params=params))).json()
            yield data
            meta = (data or {}).get("SearchMetadata") or {}
            following = meta.get("NextResults")
            if not following:
                return
            params = dict(parse_qsl(str(following).lstrip("?"), keep_blank_values=True))

    async def search_bill_pages(
        self, payment_reference: str | None = None, *, email: str | None = None, count: int = 50
    ) -> AsyncIterator[BillSearchResponse]:
        """Pages of ``GET /v2/Search/Bill`` following ``SearchMetadata.NextResults``. The e-mail parameter name is
        undocumented; billkit sends ``email``."""
        params = {"count": str(count)}
        if payment_reference is not None:
            params["paymentReference"] = payment_reference
        if email is not None:
            params["email"] = email
        async for page in self._pages("/v2/Search/Bill", params):
            yield read_model(BillSearchResponse, page, provider=PROVIDER)

    async def search_bills(
        self, payment_reference: str | None = None, *, email: str | None = None, count: int = 50
    ) -> AsyncIterator[BillResponse]:
        """Every bill with this PaymentReference (or e-mail), across pages."""
        async for page in self.search_bill_pages(payment_reference, email=email, count=count):
            for bill in page.Bills or []:
                yield bill

    async def find_by_srrid(self, payment_reference: str, srrid: str) -> BillResponse | None:
        """The bill with this SRRID among those with this PaymentReference (the SRRID search parameter is
        undocumented, so billkit searches by PaymentReference and filters)."""
        async for bill in self.search_bills(payment_reference):
            if srrid == bill.SRRID:
                return bill
        return None

    async def search_payments(
        self, date_from: dt.datetime, date_to: dt.datetime, *, type: str = "Bills", count: int = 50
    ) -> AsyncIterator[BillResponse]:
        """``GET /v2/Search/Payment`` in a window (the vendor's hourly reconciliation, with overlapping windows).
        The response schema is undocumented; records are read from ``Bills`` like the other searches."""
        params = {"paymentDateFrom": format_datetime(date_from), "paymentDateTo": format_datetime(date_to),
                  "type": type, "count": str(count)}  # fmt: skip
        async for page in self._pages("/v2/Search/Payment", params):
            for bill in read_model(PaymentSearchResponse, page, provider=PROVIDER).Bills or []:
                yield bill

    async def search_bounces(
        self, date_from: dt.date, date_to: dt.date, *, type: str = "Bills", count: int = 50
    ) -> AsyncIterator[BillResponse]:
        """``GET /v2/Search/Bounces`` by the day the bounce was received (up to 72 h after sending)."""
        params = {"type": type, "bounceDateFrom": date_from.isoformat(), "bounceDateTo": date_to.isoformat(),
                  "count": str(count)}  # fmt: skip
        async for page in self._pages("/v2/Search/Bounces", params):
            parsed = read_model(BounceSearchResponse, page, provider=PROVIDER)
            for bill in parsed.Bills or []:
                yield bill

"""An in-process AcceptEasy v2 API on a virtual clock: stateful bills, async and bulk creation, PATCH, search.

What it does, and where it had to choose (the real API leaves these undocumented; see docs/providers/accepteasy.md):

* **Auth**: HTTP Basic with :attr:`AcceptEasySandbox.credentials`; anything else is 401 with ASP.NET's
  ``{"Message": "Authorization has been denied for this request."}``.
* **Errors**: ``{"Message": "..."}`` (ASP.NET's default shape, a guess at the real one), with the documented
  APP codes for the expiry rules and ``ModelState`` for field errors.
* **Sync create** (``POST /v2/Bill``, 201) validates at once. **Async** (``/v2/Bill/async``, 202) refuses only a
  wrongly formatted request at once; expiry and template failures appear ``async_delay`` seconds later as
  ``CreationFailed``. **Bulk** (``/v2/Bill/bulk``, 202) processes ``bulk_rate`` bills per second after
  ``bulk_delay``; invalid items end ``CreationFailed`` with ``"Batch creation failed with error message: ..."``
  and no SRRID or Location, as documented. The completed status lists failed entries first, then the
  succeeded ones (like the vendor's sample), so clients cannot rely on input order. While a bulk is
  ``Processing`` its status carries no ``Bills`` unless ``report_partial`` is set (the docs say Bills come
  with the completed status only).
* **SRRID** is unique (documented); a duplicate is refused with 400 ``SRRID '...' already exists.`` (the real
  wording is undocumented) or, in a bulk, fails that item.
* **Deterministic triggers**: ``AETemplateID`` :data:`BAD_TEMPLATE_ID` fails creation with "Invalid banner
  template reference" (async and bulk; sync answers 400); a PaymentReference listed in
  :attr:`AcceptEasySandbox.fail_references` fails with the given message; :attr:`fail_next_bulk` makes the
  next bulk fail as a whole (top-level ``CreationFailed``); :attr:`maintenance` answers 503 to everything.
* **State you can inspect**: :attr:`records` (every ATID handed out, with its creation outcome), :attr:`bills`
  (the bills that exist, by ATID), :meth:`count_srrid`, :meth:`mark_paid`, :meth:`bounce`, and
  :meth:`notifications` (the webhook bodies it would have sent by now) with :meth:`webhook_request`.
"""

from __future__ import annotations

import base64
import datetime as dt
import random
import uuid
from collections.abc import Mapping
from decimal import Decimal
from typing import Any
from urllib.parse import quote, urlencode

import httpx

from billkit.clock import Clock
from billkit.isodates import datetime_from_iso
from billkit.providers.accepteasy.wire import format_datetime, parse_datetime_text
from billkit.sandboxing import Fault, Faults, Sandbox, json_response, path_segments
from billkit.transport import dumps

__all__ = ["BAD_TEMPLATE_ID", "DEFAULT_TEMPLATE_ID", "AcceptEasySandbox"]

#: AETemplateID that makes creation fail with "Invalid banner template reference" (a sandbox trigger).
BAD_TEMPLATE_ID = "0badbad0-0000-4000-8000-000000000000"
DEFAULT_TEMPLATE_ID = "4a5c25a1-787a-439c-9089-2b78914be777"
_OPEN = ("Open", "CountDown", "Pending", "Done")
_PATCH_STATUSES = {"Canceled": "Canceled", "Cancelled": "Canceled", "Paid": "Paid", "Expired": "Expired"}
_DENIED = "Authorization has been denied for this request."


#: the limits of AcceptEasy's documents (billSync.md, emailData.md, sendingMessages.md, partialPay.md)
_TEXT_LIMITS = {"PaymentReference": 36, "Description": 32}
_RECORD_FIELDS = frozenset({"PaymentReference", "Description", "Amount", "ExpiryDate", "SRRID", "AETemplateID",
                            "CountdownDays", "Address", "Communication", "CommunicationPlanId", "RecordData",
                            "Attachment", "AmountScheme", "PartialPaymentPlanID", "Extras", "NotificationURLs",
                            "ATID", "Status", "Links", "CreationDate"})  # fmt: skip


def _documented_rules(body: Mapping[str, Any], now: dt.datetime) -> list[str]:
    problems: list[str] = []
    for name, limit in _TEXT_LIMITS.items():
        value = body.get(name)
        if not isinstance(value, str) or not value:
            problems.append(f"bill.{name}: The {name} field is required.")
        elif len(value) > limit:
            problems.append(f"bill.{name}: The field {name} must be a string with a maximum length of {limit}.")
    amount = body.get("Amount")
    if isinstance(amount, bool) or not isinstance(amount, int) or amount < 0:
        problems.append("bill.Amount: The Amount field is required and is in cents.")
    srrid = body.get("SRRID")
    if srrid is not None and (not isinstance(srrid, str) or len(srrid) > 36):
        problems.append("bill.SRRID: The field SRRID must be a string with a maximum length of 36.")
    expiry = body.get("ExpiryDate")
    if expiry is not None:
        try:
            when = datetime_from_iso(str(parse_datetime_text(expiry)).replace("Z", "+00:00"))
        except ValueError:
            problems.append("bill.ExpiryDate: The value is not a valid date.")
        else:
            when = when if when.tzinfo else when.replace(tzinfo=dt.timezone.utc)
            if when <= now:
                problems.append("APP0224 - Expiry date must be in the future.")
            elif when > now + dt.timedelta(days=365):
                problems.append("APP0225 - Expiry date cannot exceed 1 year from now.")
    record = body.get("RecordData")
    if isinstance(record, Mapping):
        for key, value in record.items():
            if key in _RECORD_FIELDS:
                problems.append(f"bill.RecordData: {key} is a record field.")
            elif not isinstance(value, str) or len(value) > 500:
                problems.append(f"bill.RecordData: {key} must be text of at most 500 characters.")
    if body.get("Communication") and body.get("CommunicationPlanId"):
        problems.append("bill.Communication: Communication cannot be combined with CommunicationPlanId.")
    if body.get("PartialPaymentPlanID") and (body.get("Communication") or body.get("CommunicationPlanId")):
        problems.append("bill.PartialPaymentPlanID: cannot be combined with Communication or CommunicationPlanId.")
    return problems


class AcceptEasySandbox(Sandbox):
    """The AcceptEasy v2 sandbox. See the module docstring for its behaviour and triggers."""

    provider = "accepteasy"
    base_url = "https://sandbox.accepteasy.test"
    credentials = {"key_name": "billkit-sandbox", "key": "sandbox-secret-key"}

    def __init__(
        self,
        clock: Clock | None = None,
        faults: Faults | None = None,
        *,
        async_delay: float = 3.0,
        bulk_delay: float = 2.0,
        bulk_rate: float = 200.0,
        report_partial: bool = False,
        seed: int = 0,
    ) -> None:
        super().__init__(clock, faults)
        self.async_delay = async_delay
        self.bulk_delay = bulk_delay
        self.bulk_rate = bulk_rate
        self.report_partial = report_partial
        self.records: dict[str, dict[str, Any]] = {}
        self.bulks: dict[str, dict[str, Any]] = {}
        self.srrids: dict[str, str] = {}
        self.fail_references: dict[str, str] = {}
        self.fail_next_bulk: str | None = None
        self.maintenance = False
        #: the Basic-auth user and password embedded in the notification URL (None: not configured)
        self.notification_auth: tuple[str, str] | None = ("webhook-user", "webhook-password")
        self.bounces: list[dict[str, Any]] = []
        self._rng = random.Random(seed)
        self._srrid_seq = 0

    # -- inspection ----------------------------------------------------------------------------------------
    @property
    def bills(self) -> dict[str, dict[str, Any]]:
        """The bills that exist now (created synchronously, or whose async/bulk creation succeeded), by ATID."""
        return {atid: self._view(rec) for atid, rec in self.records.items() if self._state(rec) == "CreationSucceeded"}

    def count_srrid(self, srrid: str) -> int:
        """How many existing bills carry ``srrid`` (a soak asserts this is never more than 1)."""
        return sum(1 for b in self.bills.values() if b.get("SRRID") == srrid)

    def count_reference(self, payment_reference: str) -> int:
        return sum(1 for b in self.bills.values() if b.get("PaymentReference") == payment_reference)

    def mark_paid(self, atid: str, *, method: str = "iDEAL") -> dict[str, Any]:
        """The payer pays ``atid`` now (a Payment event is added; a Paid notification becomes due)."""
        rec = self.records[atid]
        rec["bill"]["Status"] = "Paid"
        rec["paid_at"] = self.clock.wall()
        rec["bill"].setdefault("Events", []).append(
            {"Type": "Payment", "DateTime": self._iso(), "Status": "Paid", "PaymentMethodName": method,
             "PaymentMethodId": "c1b6a1f4-4c43-4bd2-9d3b-1f0e6c1e0a01", "Ip": "192.0.2.0"}
        )  # fmt: skip
        return self._view(rec)

    def bounce(self, atid: str, *, message: str = "550 mailbox unavailable", status_code: str = "5.1.1") -> None:
        """An e-mail of ``atid`` bounced now (found by Search/Bounces; a Bounced notification becomes due)."""
        self.bounces.append({"ATID": atid, "at": self.clock.wall(), "Message": message, "StatusCode": status_code,
                             "CommunicationID": str(self._uuid())})  # fmt: skip

    def notifications(self) -> list[dict[str, Any]]:
        """The webhook bodies AcceptEasy would have sent by now, in time order (computed from the clock)."""
        out: list[tuple[float, int, dict[str, Any]]] = []
        seq = 0
        for atid, rec in self.records.items():
            if rec["mode"] == "bulk":
                continue
            if self.clock.now() >= rec["ready_at"]:
                failed = rec["error"] is not None
                body = self._flat(atid, "CreationFailed" if failed else "CreationSucceeded")
                body["ERROR"] = {"Message": rec["error"]} if failed else None
                out.append((rec["ready_at"], seq, body))
                seq += 1
            if rec.get("paid_at") is not None:
                out.append((self._mono(rec["paid_at"]), seq, self._flat(atid, "Paid")))
                seq += 1
        for bounce in self.bounces:
            out.append((self._mono(bounce["at"]), seq, self._flat(bounce["ATID"], "Bounced")))
            seq += 1
        for bulk_id, bulk in self.bulks.items():
            if self.clock.now() >= bulk["done_at"]:
                body = self._bulk_status(bulk_id, bulk)
                body.pop("ERROR", None)
                out.append((bulk["done_at"], seq, body))
                seq += 1
        return [body for _, _, body in sorted(out, key=lambda t: (t[0], t[1]))]

    def webhook_request(self, body: Mapping[str, Any]) -> tuple[bytes, dict[str, str]]:
        """The request AcceptEasy would make for ``body``: JSON bytes and headers (Basic auth when configured)."""
        headers = {"content-type": "application/json"}
        if self.notification_auth is not None:
            token = base64.b64encode(":".join(self.notification_auth).encode()).decode()
            headers["authorization"] = f"Basic {token}"
        return dumps(dict(body)), headers

    # -- helpers -------------------------------------------------------------------------------------------
    def _uuid(self) -> uuid.UUID:
        return uuid.UUID(int=self._rng.getrandbits(128), version=4)

    def _iso(self, wall: float | None = None) -> str:
        when = dt.datetime.fromtimestamp(self.clock.wall() if wall is None else wall, tz=dt.timezone.utc)
        return format_datetime(when.replace(microsecond=(when.microsecond // 1000) * 1000))

    def _mono(self, wall: float) -> float:
        return wall - (self.clock.wall() - self.clock.now())

    def _now_dt(self) -> dt.datetime:
        return dt.datetime.fromtimestamp(self.clock.wall(), tz=dt.timezone.utc)

    def _new_srrid(self) -> str:
        self._srrid_seq += 1
        stamp = self._now_dt().strftime("%y%m%d%H%M%S")
        return f"r{stamp}{self._srrid_seq % 1000:03d}"

    def _state(self, rec: Mapping[str, Any]) -> str:
        if self.clock.now() < rec["ready_at"]:
            return "Processing"
        return "CreationFailed" if rec["error"] is not None else "CreationSucceeded"

    def _view(self, rec: Mapping[str, Any]) -> dict[str, Any]:
        """The bill as GET shows it now: Open becomes CountDown or Expired as time passes."""
        bill = dict(rec["bill"])
        if bill.get("Status") in ("Open", "CountDown") and bill.get("ExpiryDate"):
            expiry = datetime_from_iso(str(bill["ExpiryDate"]).replace("Z", "+00:00"))
            now = self._now_dt()
            if expiry <= now:
                bill["Status"] = "Expired"
            elif bill.get("CountdownDays") is not None and expiry - now <= dt.timedelta(days=bill["CountdownDays"]):
                bill["Status"] = "CountDown"
        return bill

    def _flat(self, atid: str, status: str) -> dict[str, Any]:
        bill = self.records[atid]["bill"]
        return {"ATID": atid, "SRRID": bill.get("SRRID"), "PaymentReference": bill.get("PaymentReference"),
                "STATUS": status, "ERROR": None}  # fmt: skip

    def error(self, status: int, payload: Any, headers: Mapping[str, str] | None = None) -> httpx.Response:
        if isinstance(payload, str):
            payload = {"Message": payload}
        return json_response(status, payload, headers)

    def fault_response(self, fault: Fault) -> httpx.Response:
        if fault is Fault.RATE_LIMIT:
            return self.error(429, "Too many requests.", {"retry-after": f"{self.faults.retry_after:g}"})
        return self.error(500, "An error has occurred.")

    # -- routing ---------------------------------------------------------------------------------------------
    def handle(self, request: httpx.Request, body: Any) -> httpx.Response:
        if self.maintenance:
            return self.error(503, "The service is temporarily unavailable for maintenance.")
        expected = (
            "Basic " + base64.b64encode(f"{self.credentials['key_name']}:{self.credentials['key']}".encode()).decode()
        )
        if request.headers.get("authorization") != expected:
            return self.error(401, _DENIED)
        method = request.method
        parts = path_segments(request)
        params = dict(request.url.params)
        if parts[:1] != ["v2"]:
            return self.error(404, f"No HTTP resource was found that matches the request URI '{request.url.path}'.")
        route = parts[1:]
        if route == ["Bill"] and method == "POST":
            return self._create_sync(body)
        if route == ["Bill", "async"] and method == "POST":
            return self._create_async(body)
        if route == ["Bill", "bulk"] and method == "POST":
            return self._create_bulk(body)
        if len(route) == 4 and route[:2] == ["Bill", "bulk"] and route[3] == "status" and method == "GET":
            bulk = self.bulks.get(route[2])
            if bulk is None:
                return self.error(404, f"Bulk {route[2]} not found.")
            return json_response(200, self._bulk_status(route[2], bulk))
        if len(route) == 3 and route[0] == "Bill" and route[2] == "status" and method == "GET":
            return self._async_status(route[1])
        if len(route) == 3 and route[0] == "Bill" and route[2] == "PaymentMethods" and method == "GET":
            return self._payment_methods(route[1])
        if len(route) == 2 and route[0] == "Bill" and method == "GET":
            rec = self.records.get(route[1])
            if rec is None or self._state(rec) != "CreationSucceeded":
                return self.error(404, f"Bill {route[1]} not found.")
            return json_response(200, self._view(rec))
        if len(route) == 2 and route[0] == "Bill" and method == "PATCH":
            return self._patch(route[1], body)
        if route == ["Search", "Bill"] and method == "GET":
            return self._search_bills(params)
        if route == ["Search", "Payment"] and method == "GET":
            return self._search_payments(params)
        if route == ["Search", "Bounces"] and method == "GET":
            return self._search_bounces(params)
        if len(route) >= 1 and route[0] in ("Bill", "Search"):
            return self.error(405, "The requested resource does not support this http method.")
        return self.error(404, f"No HTTP resource was found that matches the request URI '{request.url.path}'.")

    # -- creation --------------------------------------------------------------------------------------------
    def _format_problems(self, body: Any) -> list[str]:
        """Problems that make a request 'wrongly formatted' (refused at once even by async and bulk)."""
        if not isinstance(body, dict):
            return ["The request body is not a JSON object."]
        out = []
        for key in ("PaymentReference", "Description"):
            if not isinstance(body.get(key), str) or not body.get(key):
                out.append(f"bill.{key}: The {key} field is required.")
        amount = body.get("Amount")
        if isinstance(amount, bool) or not isinstance(amount, int):
            out.append("bill.Amount: The Amount field must be an integer number of cents.")
        return out

    def _content_problems(self, body: Mapping[str, Any], later: float = 0.0) -> list[str]:
        """Every documented rule, checked on the sandbox's clock ``later`` seconds from now (when a queued bill
        is processed); APP codes where the vendor has them. Written from the provider's documents, not with the
        adapter's validator: a wrong limit in the client must not be "confirmed" by its own sandbox."""
        when = self._now_dt() + dt.timedelta(seconds=later)
        problems = _documented_rules(body, when)
        if body.get("AETemplateID") == BAD_TEMPLATE_ID:
            problems.append("Invalid banner template reference")
        ref = body.get("PaymentReference")
        if isinstance(ref, str) and ref in self.fail_references:
            problems.append(self.fail_references[ref])
        return problems

    def _srrid_taken(self, body: Mapping[str, Any]) -> str | None:
        srrid = body.get("SRRID")
        if isinstance(srrid, str) and srrid in self.srrids:
            rec = self.records[self.srrids[srrid]]
            if rec["error"] is None or self._state(rec) == "Processing":
                return f"SRRID '{srrid}' already exists."
        return None

    def _new_record(self, body: Mapping[str, Any], mode: str, ready_at: float, error: str | None) -> str:
        atid = str(self._uuid())
        srrid = body.get("SRRID") or self._new_srrid()
        cents = int(body.get("Amount", 0))
        expiry = body.get("ExpiryDate")
        default_expiry = self.clock.wall() + 90 * 86400
        if isinstance(expiry, str):
            expiry = format_datetime(datetime_from_iso(
                str(parse_datetime_text(expiry)).replace("Z", "+00:00")))  # fmt: skip
        bill: dict[str, Any] = {
            "ATID": atid,
            "SRRID": srrid,
            "AETemplateID": body.get("AETemplateID") or DEFAULT_TEMPLATE_ID,
            "PaymentReference": body.get("PaymentReference"),
            "Amount": Decimal(cents).scaleb(-2),
            "Description": body.get("Description"),
            "ExpiryDate": expiry or self._iso(default_expiry),
            "CreationDate": self._iso(self.clock.wall() + (ready_at - self.clock.now())),
            "Status": "Open",
            "Address": {"Email": "", "PhoneNumber": "", **dict(body.get("Address") or {})},
            "Communication": list(body.get("Communication") or []),
            "Links": {
                "TransactionURL": f"https://transaction.accepteasy.com/Landing?id={atid}&detail=true",
                "ShortURL": f"https://trx.ae/{base64.urlsafe_b64encode(uuid.UUID(atid).bytes).decode().rstrip('=')}",
                "Images": {
                    "ImageURL1": f"https://images.accepteasy.com/?id={atid}&Culture=nl-NL&part=1",
                    "ImageURL2": f"https://images.accepteasy.com/?id={atid}&Culture=nl-NL&part=2",
                    "Button": f"https://images.accepteasy.com/button.png?id={atid}&Culture=nl-NL",
                },
            },
        }
        for key in ("CountdownDays", "RecordData", "CommunicationPlanId", "PartialPaymentPlanID", "Extras",
                    "NotificationURLs", "AmountScheme"):  # fmt: skip
            if body.get(key) is not None:
                bill[key] = body[key]
        self.records[atid] = {"bill": bill, "mode": mode, "ready_at": ready_at, "error": error,
                              "accepted_wall": self.clock.wall(), "paid_at": None}  # fmt: skip
        if error is None or self.clock.now() < ready_at:
            self.srrids[srrid] = atid
        return atid

    def _create_sync(self, body: Any) -> httpx.Response:
        problems = self._format_problems(body)
        if problems:
            return self.error(400, {"Message": "The request is invalid.", "ModelState": {"bill": problems}})
        taken = self._srrid_taken(body)
        if taken:
            return self.error(400, taken)
        problems = self._content_problems(body)
        if problems:
            app = [p for p in problems if p.startswith("APP")]
            return self.error(400, app[0] if app else {"Message": "The request is invalid.",
                                                       "ModelState": {"bill": problems}})  # fmt: skip
        atid = self._new_record(body, "sync", self.clock.now(), None)
        return json_response(201, self._view(self.records[atid]), {"location": f"/v2/Bill/{atid}"})

    def _create_async(self, body: Any) -> httpx.Response:
        problems = self._format_problems(body)
        if problems:
            return self.error(400, {"Message": "The request is invalid.", "ModelState": {"bill": problems}})
        taken = self._srrid_taken(body)
        if taken:
            return self.error(400, taken)
        ready_at = self.clock.now() + self.async_delay
        content = self._content_problems(body, self.async_delay)
        atid = self._new_record(body, "async", ready_at, content[0] if content else None)
        return json_response(202, {"ATID": atid})

    def _async_status(self, atid: str) -> httpx.Response:
        rec = self.records.get(atid)
        if rec is None or rec["mode"] == "bulk":
            return self.error(404, f"No record found for ATID {atid}.")
        state = self._state(rec)
        body: dict[str, Any] = {"ATID": atid, "STATUS": state, "PaymentReference": rec["bill"]["PaymentReference"],
                                "SRRID": rec["bill"]["SRRID"]}  # fmt: skip
        if state == "CreationSucceeded":
            body["Location"] = f"/v2/Bill/{atid}"
        if state == "CreationFailed":
            body["ERROR"] = {"Message": rec["error"]}
        return json_response(200, body)

    def _create_bulk(self, body: Any) -> httpx.Response:
        bills = body.get("Bills") if isinstance(body, dict) else None
        if not isinstance(bills, list) or not bills:
            return self.error(400, "The request is invalid: Bills must be a non-empty array.")
        bulk_id = str(self._uuid())
        start = self.clock.now() + self.bulk_delay
        failure, self.fail_next_bulk = self.fail_next_bulk, None
        atids: list[str] = []
        seen: set[str] = set()
        for i, item in enumerate(bills):
            ready = start + (i + 1) / self.bulk_rate
            problems = self._format_problems(item)
            if not problems:
                taken = self._srrid_taken(item)
                srrid = item.get("SRRID")
                if taken is None and isinstance(srrid, str) and srrid in seen:
                    taken = f"SRRID '{srrid}' already exists."
                problems = [taken] if taken else self._content_problems(item, ready - self.clock.now())
            error = f"Batch creation failed with error message: {problems[0]}" if problems else None
            if failure is not None:
                error = failure
            record_body = item if isinstance(item, dict) else {}
            atid = self._new_record(record_body, "bulk", ready, error)
            if isinstance(record_body.get("SRRID"), str):
                seen.add(record_body["SRRID"])
            atids.append(atid)
        done_at = start + len(bills) / self.bulk_rate
        self.bulks[bulk_id] = {"atids": atids, "done_at": done_at, "failure": failure}
        return json_response(202, {"BulkId": bulk_id})

    def _bulk_entry(self, atid: str) -> dict[str, Any]:
        rec = self.records[atid]
        state = self._state(rec)
        entry: dict[str, Any] = {"ATID": atid, "STATUS": state, "PaymentReference": rec["bill"]["PaymentReference"]}
        if state == "CreationSucceeded":
            entry["Location"] = f"/v2/Bill/{atid}"
            entry["SRRID"] = rec["bill"]["SRRID"]
        elif state == "CreationFailed":
            entry["ERROR"] = {"Message": rec["error"]}
        return entry

    def _bulk_status(self, bulk_id: str, bulk: Mapping[str, Any]) -> dict[str, Any]:
        if self.clock.now() < bulk["done_at"]:
            body: dict[str, Any] = {"BulkId": bulk_id, "STATUS": "Processing"}
            if self.report_partial:
                finished = [self._bulk_entry(a) for a in bulk["atids"] if self._state(self.records[a]) != "Processing"]
                body["Bills"] = finished
            return body
        if bulk["failure"] is not None:
            return {"BulkId": bulk_id, "STATUS": "CreationFailed", "ERROR": {"Message": bulk["failure"]}}
        entries = [self._bulk_entry(a) for a in bulk["atids"]]
        ordered = [e for e in entries if e["STATUS"] == "CreationFailed"] + [
            e for e in entries if e["STATUS"] != "CreationFailed"
        ]
        return {"Bills": ordered, "BulkId": bulk_id, "STATUS": "ProcessingCompleted"}

    # -- updates -----------------------------------------------------------------------------------------------
    def _patch(self, atid: str, body: Any) -> httpx.Response:
        rec = self.records.get(atid)
        if rec is None or self._state(rec) != "CreationSucceeded":
            return self.error(404, f"Bill {atid} not found.")
        if not isinstance(body, dict) or not (set(body) & {"Address", "Status"}):
            return self.error(400, "The request is invalid: send Address and/or Status.")
        if set(body) - {"Address", "Status"}:
            return self.error(400, f"Only Address and Status can be changed; got {sorted(set(body))}.")
        status = body.get("Status")
        if status is not None:
            target = _PATCH_STATUSES.get(str(status))
            if target is None:
                return self.error(400, f"Status '{status}' is not allowed; use Canceled, Paid or Expired.")
            if self._view(rec).get("Status") not in _OPEN:
                return self.error(400, "The status of a bill can only be changed while it is open.")
            rec["bill"]["Status"] = target
            if target == "Paid":
                rec["paid_at"] = self.clock.wall()
        address = body.get("Address")
        if isinstance(address, dict):
            rec["bill"]["Address"] = {**rec["bill"].get("Address", {}), **{
                k: v for k, v in address.items() if k in ("Email", "PhoneNumber")}}  # fmt: skip
        return json_response(200, {"Status": "Succeeded", "Bill": self._view(rec)})

    def _payment_methods(self, atid: str) -> httpx.Response:
        if atid not in self.bills:
            return self.error(404, f"Bill {atid} not found.")
        return json_response(200, [
            {"PaymentMethodId": "8e0a5b4e-3f7e-4c7f-9a53-6d1f0f0c0001", "PaymentMethodName": "iDEAL",
             "PaymentLogo": "https://images.accepteasy.com/paymentmethods/ideal.png",
             "SubPaymentMethods": [{"SubPaymentMethodId": "INGBNL2A", "SubPaymentMethodName": "ING"},
                                   {"SubPaymentMethodId": "RABONL2U", "SubPaymentMethodName": "Rabobank"}]},
            {"PaymentMethodId": "8e0a5b4e-3f7e-4c7f-9a53-6d1f0f0c0002", "PaymentMethodName": "PayPal",
             "PaymentLogo": "https://images.accepteasy.com/paymentmethods/paypal.png"},
        ])  # fmt: skip

    # -- search ------------------------------------------------------------------------------------------------
    def _page(self, params: Mapping[str, str], items: list[dict[str, Any]], keep: Mapping[str, str],
              key: str = "Bills") -> httpx.Response:  # fmt: skip
        try:
            count = int(params.get("count", "50"))
            page = int(params.get("page", "1"))
        except ValueError:
            return self.error(400, "count and page must be integers.")
        if count < 1 or page < 1:
            return self.error(400, "count and page must be positive.")
        chunk = items[(page - 1) * count : page * count]
        meta: dict[str, Any] = {"CompletedIn": Decimal("0.012"), "Count": count, "Page": page,
                                "TotalNumberOfResults": len(items)}  # fmt: skip
        if page * count < len(items):
            meta["NextResults"] = "?" + urlencode({"count": count, "page": page + 1, **keep}, quote_via=quote)
        return json_response(200, {key: chunk, "SearchMetadata": meta})

    def _search_bills(self, params: Mapping[str, str]) -> httpx.Response:
        ref = params.get("paymentReference")
        email = params.get("email")
        if not ref and not email:
            return self.error(400, "paymentReference or email is required.")
        found = [b for b in self.bills.values()
                 if (not ref or b.get("PaymentReference") == ref)
                 and (not email or (b.get("Address") or {}).get("Email") == email)]  # fmt: skip
        keep = {k: v for k, v in (("paymentReference", ref), ("email", email)) if v}
        return self._page(params, found, keep)

    def _window(self, params: Mapping[str, str], start: str, end: str) -> tuple[float, float] | None:
        try:
            lo = datetime_from_iso(params[start].replace("Z", "+00:00"))
            hi = datetime_from_iso(params[end].replace("Z", "+00:00"))
        except (KeyError, ValueError):
            return None
        lo = lo if lo.tzinfo else lo.replace(tzinfo=dt.timezone.utc)
        hi = hi if hi.tzinfo else hi.replace(tzinfo=dt.timezone.utc)
        return lo.timestamp(), hi.timestamp()

    def _search_payments(self, params: Mapping[str, str]) -> httpx.Response:
        window = self._window(params, "paymentDateFrom", "paymentDateTo")
        if window is None:
            return self.error(400, "paymentDateFrom and paymentDateTo (ISO 8601) are required.")
        if params.get("type", "Bills") != "Bills":
            return self._page(params, [], {})
        found = [self._view(r) for r in self.records.values()
                 if r.get("paid_at") is not None and window[0] <= r["paid_at"] <= window[1]]  # fmt: skip
        keep = {k: params[k] for k in ("paymentDateFrom", "paymentDateTo", "type") if k in params}
        return self._page(params, found, keep)

    def _search_bounces(self, params: Mapping[str, str]) -> httpx.Response:
        kind = params.get("type")
        if kind not in ("Bills", "Mandates"):
            return self.error(400, "type is required: Bills or Mandates.")
        window = self._window(params, "bounceDateFrom", "bounceDateTo")
        if window is None:
            return self.error(400, "bounceDateFrom and bounceDateTo (yyyy-MM-dd) are required.")
        lo, hi = window[0], window[1] + 86400  # a plain date covers its whole day
        found = []
        for bounce in self.bounces if kind == "Bills" else []:
            if lo <= bounce["at"] < hi:
                bill = self._view(self.records[bounce["ATID"]])
                bill["Bounce"] = {
                    "DateReceived": self._iso(bounce["at"]),
                    "Message": bounce["Message"],
                    "StatusCode": bounce["StatusCode"],
                    "CommunicationID": bounce["CommunicationID"],
                }
                found.append(bill)
        keep = {k: params[k] for k in ("type", "bounceDateFrom", "bounceDateTo") if k in params}
        return self._page(params, found, keep)

"""The BILL sandbox's bill updates (``PUT`` / ``PATCH /v3/bills/{id}``) and bulk vendors (``POST /v3/vendors/bulk``).

Written from BILL's notes (which name these calls and say they answer 200 and the bill, 201 and the vendors), not
from billkit's client checks. Where the notes are silent the sandbox makes a choice, the strict one (L):

* **Which bills can change**: an archived bill, one with a payment scheduled or made (``paymentStatus``
  ``SCHEDULED``, ``PARTIAL`` or ``PAID``) and one whose approval is under way or given (``APPROVING``,
  ``APPROVED``) are refused with 422 (BILL's business-rule status) and nothing changes. ``UNASSIGNED``,
  ``ASSIGNED`` and ``DENIED`` bills can change (their approvals are kept as they are).
* **PUT** takes the create's body, checked as a create is (unknown field ``BDC_1002``, dates, invoice number, at
  least one line, amounts with at most two decimals, a known vendor); ``vendorId`` must stay the bill's (400). The
  optional fields it leaves out (``description``, ``payFromChartOfAccountId``, ``classifications``,
  ``purchaseOrderNumber``) are cleared.
* **PATCH** changes only the fields given (at least one, else 400): ``dueDate``, ``invoice`` (either field),
  ``description``, ``payFromChartOfAccountId``, ``classifications``, ``purchaseOrderNumber``, ``billLineItems``
  (the whole new list), ``vendorId`` only when it is the bill's own. A ``null`` is refused (400).
* **Lines** of either call may name the ``id`` of one of the bill's lines, which then keeps its id (another id is
  404 ``BDC_1205``); lines without one get new ids. The bill's ``amount`` (and ``fundingAmount`` for a non-USD
  vendor) is the new lines' sum. Each accepted update is a ``bill.updated`` event.
* **Bulk vendors**: a JSON array of 1 to 100 vendor creates, each checked as ``POST /v3/vendors`` checks one;
  all-or-nothing like the bills' bulk (at the first faulty vendor nothing is kept, and the answer is that vendor's
  error followed by a ``BDC_1246`` rollback entry); 201 and the vendors in request order (reversed with
  ``reverse_bulk_answers``).
"""

from __future__ import annotations

from decimal import Decimal
from typing import TYPE_CHECKING, Any

import httpx

from billkit.providers.billcom.sandbox import (
    _BILL_FIELDS,
    _CENT,
    _EXCHANGE,
    MAX_BULK,
    _amount_of,
    _BulkReject,
    _check_date,
    _Reject,
    _vendor_fields,
)
from billkit.sandboxing import json_response

if TYPE_CHECKING:
    from billkit.providers.billcom.sandbox import BillcomSandbox

__all__ = ["route"]

_OPTIONAL = ("description", "payFromChartOfAccountId", "classifications", "purchaseOrderNumber")
_LOCKED_PAYMENTS = frozenset({"SCHEDULED", "PARTIAL", "PAID"})
_LOCKED_APPROVALS = frozenset({"APPROVING", "APPROVED"})


def route(box: BillcomSandbox, method: str, rest: list[str], body: Any) -> httpx.Response | None:
    """The answer to one of these calls (``rest`` is the path after ``/v3``), or None for any other."""
    if len(rest) == 2 and rest[0] == "bills" and method in ("PUT", "PATCH"):
        bill_id = box._bill_id(rest[1])
        _editable(box, bill_id)
        fields = _replacement(box, bill_id, body) if method == "PUT" else _patch(box, bill_id, body)
        record = box.bills[bill_id]
        if method == "PUT":
            for key in _OPTIONAL:
                record.pop(key, None)
        record.update(fields)
        record["updatedTime"] = box._timestamp()
        box._bill_log.append((box.clock.now(), bill_id, "bill.updated", bool(record.get("archived"))))
        return json_response(200, box._render(bill_id))
    if rest == ["vendors", "bulk"] and method == "POST":
        return json_response(201, _create_vendors(box, body))
    return None


def _editable(box: BillcomSandbox, bill_id: str) -> None:
    rendered = box._render(bill_id)
    if rendered.get("archived"):
        raise _Reject(422, None, f"Bill {bill_id} is archived and cannot be updated; restore it first.", "APPLICATION")
    if rendered.get("paymentStatus") in _LOCKED_PAYMENTS:
        raise _Reject(422, None, f"Bill {bill_id} cannot be updated: its payment is {rendered['paymentStatus']}.",
                      "APPLICATION")  # fmt: skip
    if rendered.get("approvalStatus") in _LOCKED_APPROVALS:
        raise _Reject(422, None, f"Bill {bill_id} cannot be updated: its approval is {rendered['approvalStatus']}.",
                      "APPLICATION")  # fmt: skip


def _same_vendor(box: BillcomSandbox, bill_id: str, body: dict[str, Any]) -> None:
    if "vendorId" in body and body["vendorId"] != box.bills[bill_id]["vendorId"]:
        raise _Reject(400, None, "vendorId: the vendor of a bill cannot be changed")


def _replacement(box: BillcomSandbox, bill_id: str, body: Any) -> dict[str, Any]:
    """A PUT body checked as a create is; the fields it sets (the optional ones it leaves out are cleared)."""
    if isinstance(body, dict):
        _same_vendor(box, bill_id, body)
    built = box._build_bill(body)  # the create's checks; its new bill id is not used
    lines = body["billLineItems"]
    _keep_line_ids(box, bill_id, lines, built["billLineItems"])
    fields = {k: v for k, v in built.items() if k not in ("id", "archived", "approvalStatus", "createdTime",
                                                           "updatedTime")}  # fmt: skip
    return fields


def _keep_line_ids(box: BillcomSandbox, bill_id: str, sent: list[Any], built: list[dict[str, Any]]) -> None:
    known = {line.get("id") for line in box.bills[bill_id].get("billLineItems", [])}
    for line, out in zip(sent, built, strict=True):
        wanted = line.get("id") if isinstance(line, dict) else None
        if wanted is None:
            continue
        if wanted not in known:
            raise _Reject(404, "BDC_1205", f"No data found for object with id {wanted}.", "DOWNSTREAM")
        out["id"] = wanted


def _patch(box: BillcomSandbox, bill_id: str, body: Any) -> dict[str, Any]:
    if not isinstance(body, dict):
        raise _Reject(400, "BDC_1002", "The request body must be a JSON object.")
    unknown = sorted(set(body) - _BILL_FIELDS)
    if unknown:
        raise _Reject(400, "BDC_1002", f"Unknown parameter: {unknown[0]}.")
    if not body:
        raise _Reject(400, None, "Nothing to update.")
    nulls = sorted(k for k, v in body.items() if v is None)
    if nulls:
        raise _Reject(400, None, f"{nulls[0]}: must not be null")
    _same_vendor(box, bill_id, body)
    record = box.bills[bill_id]
    fields: dict[str, Any] = {}
    if "dueDate" in body:
        _check_date(body["dueDate"], "dueDate")
        fields["dueDate"] = body["dueDate"]
    if "invoice" in body:
        invoice = body["invoice"]
        if not isinstance(invoice, dict) or not invoice or set(invoice) - {"invoiceNumber", "invoiceDate"}:
            raise _Reject(400, "BDC_1002", "invoice: invoiceNumber and/or invoiceDate expected.")
        merged = dict(record["invoice"])
        if "invoiceNumber" in invoice:
            number = invoice["invoiceNumber"]
            if not isinstance(number, str) or not number.strip():
                raise _Reject(400, None, "invoice.invoiceNumber: must not be blank")
            merged["invoiceNumber"] = number
        if "invoiceDate" in invoice:
            _check_date(invoice["invoiceDate"], "invoice.invoiceDate")
            merged["invoiceDate"] = invoice["invoiceDate"]
        fields["invoice"] = merged
    if "billLineItems" in body:
        fields.update(_lines(box, bill_id, body["billLineItems"]))
    for key in _OPTIONAL:
        if key in body:
            fields[key] = body[key]
    return fields


def _lines(box: BillcomSandbox, bill_id: str, lines: Any) -> dict[str, Any]:
    if not isinstance(lines, list) or not lines:
        raise _Reject(400, None, "billLineItems: must not be empty")
    out: list[dict[str, Any]] = []
    total = Decimal(0)
    for i, line in enumerate(lines):
        amount = _amount_of(line, i)
        total += amount
        rendered: dict[str, Any] = {"id": box._new_id("00l"), "amount": amount}
        for key in ("quantity", "price", "description", "classifications"):
            if line.get(key) is not None:
                rendered[key] = line[key]
        out.append(rendered)
    _keep_line_ids(box, bill_id, lines, out)
    fields: dict[str, Any] = {"billLineItems": out, "amount": total}
    vendor = box.vendors.get(box.bills[bill_id]["vendorId"]) or {}
    currency = vendor.get("billCurrency", "USD")
    if currency != "USD":
        rate = _EXCHANGE.get(currency, Decimal("1"))
        fields["exchangeRate"] = rate
        fields["fundingAmount"] = (total * rate).quantize(_CENT)
    return fields


def _create_vendors(box: BillcomSandbox, body: Any) -> list[dict[str, Any]]:
    if not isinstance(body, list):
        raise _Reject(400, "BDC_1002", "The request body must be an array of vendors.")
    if not body:
        raise _Reject(400, None, "The request must hold at least one vendor.")
    if len(body) > MAX_BULK:
        raise _Reject(400, None, f"At most {MAX_BULK} vendors per bulk request ({len(body)} given).")
    checked: list[dict[str, Any]] = []
    for item in body:
        try:
            checked.append(_vendor_fields(item, create=True))
        except _Reject as rej:
            rollback = box._entry("BDC_1246", "Changes were rollback due to other failures within this transaction.",
                                  "DOWNSTREAM")  # fmt: skip
            raise _BulkReject(rej.status, [box._entry(rej.code, rej.message, rej.category), rollback]) from None
    created = []
    for fields in checked:
        vid = box._new_id("009")
        box.vendors[vid] = box._vendor_record(vid, fields)
        created.append(dict(box.vendors[vid]))
    return created[::-1] if box.reverse_bulk_answers else created

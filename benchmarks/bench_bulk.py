"""A 10,000-bill AcceptEasy bulk end to end through billkit's sandbox, against the floor of its JSON alone.

billkit: ``op = await client.submit_many(bills)`` then ``await op`` on a fresh :class:`AcceptEasySandbox` on a
:class:`VirtualClock` (bulk processed at the sandbox's default 200 bills per virtual second, so polling costs
no real waiting). AcceptEasy's bulk has no documented size cap (``capabilities.max_bulk_size`` is None) and
the adapter sends every bill in one ``POST /v2/Bill/bulk``; the operation reads
``GET /v2/Bill/bulk/{BulkId}/status`` until ``ProcessingCompleted`` and resolves to one BulkResult item per
input. The sandbox's own time (decoding the bulk, keeping 10,000 records, encoding the status: a real server's
work) is measured around each request it answers and taken out, so the figure is billkit's own work: mapping
and validating 10,000 bills, encoding the body, decoding and matching the statuses, building 10,000 results.

Floor, in the same run: ``json.dumps`` (compact separators, as billkit writes) of the same 10,000 request
bodies (one ``{"Bills": [...]}`` body of dicts shaped like billkit's: PaymentReference, Description, Amount in
cents, ExpiryDate, SRRID) and ``json.loads`` of a same-sized final status body (10,000 entries: ATID, STATUS,
PaymentReference, Location, SRRID). A check run records the bytes billkit really sent and received, and the
floor's sizes are printed next to them.

Rounds are interleaved (billkit, floor), ``ROUNDS`` rounds, median time (a floor round is the mean of
``FLOOR_REPEAT`` runs, as one run takes only a few milliseconds); memory is measured in separate runs
under tracemalloc (peak bytes during the run / number of bills). Prints:

* time, billkit / floor           (target <= 5)
* peak bytes per bill, billkit and floor, and billkit / floor   (target <= 3)

Run: ``make bench`` (or ``.venv/bin/python benchmarks/bench_bulk.py [bills]``).
"""

from __future__ import annotations

import datetime as dt
import gc
import json
import statistics
import sys
import time
import tracemalloc
import uuid
from collections.abc import Callable
from typing import Any

import anyio
import httpx

import billkit
from billkit import Bill, BulkResult, Money
from billkit.clock import VirtualClock
from billkit.providers.accepteasy.sandbox import AcceptEasySandbox

BILLS = 10_000
ROUNDS = 3
TARGET = 5.0
MEMORY_TARGET = 3.0
FLOOR_REPEAT = 10


def make_bills(n: int) -> list[Bill]:
    """The bills of examples/accepteasy_bulk.py, all valid."""
    due = dt.date.today() + dt.timedelta(days=45)
    return [
        Bill(reference=f"INV-{i:05d}", description=f"Invoice {i}", total=Money(f"{10 + i % 90}.50", "EUR"),
             due_date=due)
        for i in range(n)
    ]  # fmt: skip


class _Counter(httpx.AsyncBaseTransport):
    """Passes requests to the sandbox; counts the bytes sent and received and the time the sandbox itself spends
    answering (a real server's work, which is not billkit's)."""

    def __init__(self, inner: httpx.AsyncBaseTransport) -> None:
        self.inner = inner
        self.sent = 0
        self.received = 0
        self.requests = 0
        self.server_seconds = 0.0
        #: under tracemalloc: what the sandbox keeps (its records, a real server's memory) and billkit's own peak
        self.server_bytes = 0
        self.billkit_peak = 0

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        self.requests += 1
        self.sent += len(await request.aread())
        tracing = tracemalloc.is_tracing()
        if tracing:  # billkit's peak so far, the sandbox's records left out
            before, high = tracemalloc.get_traced_memory()
            self.billkit_peak = max(self.billkit_peak, high - self.server_bytes)
        started = time.perf_counter()
        response = await self.inner.handle_async_request(request)
        body = await response.aread()
        self.server_seconds += time.perf_counter() - started
        self.received += len(body)
        answer = httpx.Response(response.status_code, headers=response.headers, content=body)
        del response
        if tracing:  # what the sandbox kept while answering (the body it answered is billkit's from now on)
            self.server_bytes += max(0, tracemalloc.get_traced_memory()[0] - before - len(body))
            tracemalloc.reset_peak()
        return answer

    def billkit_bytes(self) -> int:
        """billkit's peak bytes: the traced peak outside the sandbox's answers, less what the sandbox keeps."""
        return max(self.billkit_peak, tracemalloc.get_traced_memory()[1] - self.server_bytes)


async def run_billkit(bills: list[Bill], *, read: bool = False) -> tuple[float, BulkResult, _Counter]:
    """``(seconds billkit spent, the result, the counter)``: the sandbox's own time is taken out. ``read``: every
    item's bill is read too (total and payment link), as a caller that lists the links does."""
    box = AcceptEasySandbox(VirtualClock())
    counter = _Counter(box)
    async with billkit.AsyncClient("accepteasy", sandbox=box, transport=counter) as client:
        client.native.derive_payment_links()
        start = time.perf_counter()
        op = await client.submit_many(bills)
        result = await op
        if read:
            links = [(i.bill.total, i.bill.links["transaction_url"]) for i in result if i.bill is not None]
            assert len(links) == len(bills)
        elapsed = time.perf_counter() - start
        if tracemalloc.is_tracing():
            counter.billkit_peak = counter.billkit_bytes()
    return elapsed - counter.server_seconds, result, counter


def floor_inputs(n: int) -> tuple[dict[str, Any], bytes]:
    """The floor's request body (dicts shaped like billkit's) and a final status body of ``n`` entries."""
    expiry = (dt.date.today() + dt.timedelta(days=45)).isoformat() + "T23:59:59Z"
    requests = [
        {"PaymentReference": f"INV-{i:05d}", "Description": f"Invoice {i}", "Amount": (10 + i % 90) * 100 + 50,
         "ExpiryDate": expiry, "SRRID": f"bk-{uuid.uuid4().hex}"}
        for i in range(n)
    ]  # fmt: skip
    entries = []
    for req in requests:
        atid = str(uuid.uuid4())
        entries.append({"ATID": atid, "STATUS": "CreationSucceeded", "PaymentReference": req["PaymentReference"],
                        "Location": f"/v2/Bill/{atid}", "SRRID": req["SRRID"]})  # fmt: skip
    status = {"Bills": entries, "BulkId": str(uuid.uuid4()), "STATUS": "ProcessingCompleted"}
    return {"Bills": requests}, json.dumps(status, separators=(",", ":")).encode()


def run_floor(body: dict[str, Any], status: bytes) -> tuple[float, int, int]:
    start = time.perf_counter()
    sent = json.dumps(body, separators=(",", ":")).encode()
    decoded = json.loads(status)
    elapsed = time.perf_counter() - start
    assert len(decoded["Bills"]) == len(body["Bills"])
    return elapsed, len(sent), len(status)


def peak(fn: Callable[[], Any]) -> int:
    """tracemalloc peak bytes while ``fn`` runs (allocations made before it are not counted)."""
    gc.collect()
    tracemalloc.start()
    tracemalloc.reset_peak()
    try:
        fn()
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def _billkit_peak(bills: list[Bill]) -> int:
    """billkit's peak bytes in a run under tracemalloc, the sandbox's records left out (see ``_Counter``)."""
    gc.collect()
    tracemalloc.start()
    tracemalloc.reset_peak()
    try:
        return anyio.run(lambda: run_billkit(bills))[2].billkit_peak
    finally:
        tracemalloc.stop()


def main(n: int = BILLS, rounds: int = ROUNDS) -> None:
    bills = make_bills(n)
    body, status = floor_inputs(n)

    # check run (also the warm-up): billkit's real bytes on the wire, and every item succeeded
    _, result, counter = anyio.run(lambda: run_billkit(bills))
    assert len(result.items) == n and len(result.succeeded) == n, (len(result.items), len(result.succeeded))
    _, floor_sent, floor_received = run_floor(body, status)

    times: dict[str, list[float]] = {"billkit": [], "read": [], "floor": []}
    for r in range(rounds):
        order = ["billkit", "read", "floor"] if r % 2 == 0 else ["floor", "read", "billkit"]
        for name in order:
            gc.collect()
            if name in ("billkit", "read"):
                read = name == "read"
                times[name].append(anyio.run(lambda: run_billkit(bills, read=read))[0])  # noqa: B023
            else:  # the floor is ~100x shorter: each round is the mean of FLOOR_REPEAT runs, to damp noise
                times[name].append(statistics.fmean(run_floor(body, status)[0] for _ in range(FLOOR_REPEAT)))
    t = {name: statistics.median(v) for name, v in times.items()}

    mem_total = peak(lambda: anyio.run(lambda: run_billkit(bills))) / n
    mem_billkit = _billkit_peak(bills) / n
    mem_floor = peak(lambda: run_floor(body, status)) / n

    ratio = t["billkit"] / t["floor"]
    spread = sorted(b / f for b, f in zip(times["billkit"], times["floor"], strict=True))
    read_ratio = t["read"] / t["floor"]
    mem_ratio = mem_billkit / mem_floor
    print(f"bulk: {n} AcceptEasy bills, one native bulk through the sandbox on a VirtualClock, "
          f"{rounds} interleaved rounds, median")  # fmt: skip
    print(f"  billkit: {counter.requests} requests, {counter.sent} B sent, {counter.received} B received; "
          f"floor: {floor_sent} B encoded, {floor_received} B decoded "
          f"(sizes billkit/floor {counter.sent / floor_sent:.2f}x sent, "
          f"{counter.received / floor_received:.2f}x received)")  # fmt: skip
    print(f"ratio time billkit / floor (json.dumps requests + json.loads status) = {ratio:.1f}x  "
          f"(rounds {spread[0]:.1f}-{spread[-1]:.1f}; target <= {TARGET:g})")  # fmt: skip
    print(f"  with every item's bill read (total and payment link): {read_ratio:.1f}x")
    print(f"peak memory per bill: billkit {mem_billkit:.0f} B (the sandbox's kept records left out; "
          f"{mem_total:.0f} B with them),"
          f" floor {mem_floor:.0f} B, ratio billkit / floor = {mem_ratio:.1f}x")  # fmt: skip
    print(f"target bulk/floor <= {TARGET:g}x: {'PASS' if ratio <= TARGET else 'MISSED'} ({ratio:.1f}x)")
    print(f"target memory per bill billkit/floor <= {MEMORY_TARGET:g}x: "
          f"{'PASS' if mem_ratio <= MEMORY_TARGET else 'MISSED'} ({mem_ratio:.1f}x)")  # fmt: skip


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else BILLS)

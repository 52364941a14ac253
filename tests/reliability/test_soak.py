"""Soak under faults: nothing lost, nothing doubled, no outcome misreported, no secret leaked.

For each provider, ``SOAK_SIZE`` creates (10,000 under ``BILLKIT_SOAK=full``, i.e. ``make soak``; 300 inside
``make test``) go through ``submit`` and ``submit_many`` against its sandbox on virtual time, with faults on
every request: 10 % 5xx, 5 % 429 with Retry-After, 5 % connections dropped after the server acted, 2 % slow
answers. Then each input is checked against what the sandbox holds:

* **duplicates**: a business reference held more than once;
* **lost**: reported created (or missing from the result) but not held;
* **wrong**: reported as a definite failure but held, or reported created with another reference or amount
  (an amount the provider's answer does not carry, such as an AcceptEasy bulk item's, is not compared);
* **unknown**: reported as :class:`OutcomeUnknownError` (the honest answer when every attempt lost its answer
  and the provider cannot de-duplicate: BILL's bulks); printed as held/absent, never counted as a pass or a
  failure by themselves, but each must say how to check.

The run passes only with 0 duplicates, 0 lost and 0 wrong. Logs are captured at DEBUG and, with the reprs
of clients, recorded requests, errors, results, operations and every token, searched for every credential
value: 0 occurrences.
"""

from __future__ import annotations

import base64
import datetime as dt
import json
import logging
import os
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

import anyio
import pytest

import billkit
from billkit import Address, Bill, BulkResult, Direction, ItemResult, LineItem, Money, Party, Tax
from billkit.clock import VirtualClock
from billkit.errors import BillkitError, OutcomeUnknownError
from billkit.models import ItemStatus
from billkit.operations import Operation
from billkit.providers.accepteasy.sandbox import AcceptEasySandbox
from billkit.providers.billcom.sandbox import VENDOR_ACME, VENDOR_GLOBEX, BillcomSandbox
from billkit.providers.facturapi.sandbox import FacturapiSandbox
from billkit.sandboxing import Faults, Sandbox
from billkit.tokens import decode_token

pytestmark = [pytest.mark.soak, pytest.mark.anyio]
FULL = os.environ.get("BILLKIT_SOAK") == "full"
SOAK_SIZE = 10_000 if FULL else 300
#: a generous deadline: the soak measures outcomes, not speed (429s and slow answers add virtual time)
POLL = billkit.PollPolicy(deadline=6 * 3600)


def faults(seed: int) -> Faults:
    return Faults(server_error=0.10, rate_limit=0.05, drop_after=0.05, slow=0.02, retry_after=3.0, seed=seed)


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@dataclass
class Row:
    provider: str
    submitted: int = 0
    held: int = 0
    duplicates: int = 0
    lost: int = 0
    wrong: int = 0
    unknown_held: int = 0
    unknown_absent: int = 0
    failed: int = 0
    requests: int = 0
    virtual_seconds: float = 0.0
    injected: dict[str, int] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)

    def line(self) -> str:
        per_item = self.requests / max(1, self.submitted)
        return (f"{self.provider:<10} {self.submitted:>9} {self.held:>6} {self.duplicates:>5} {self.lost:>5} "
                f"{self.wrong:>6} {self.unknown_held:>4}/{self.unknown_absent:<4} {self.failed:>6} "
                f"{per_item:>9.2f} {self.virtual_seconds / 60:>9.1f}  {sorted(self.injected.items())}")  # fmt: skip


HEADER = (f"{'provider':<10} {'submitted':>9} {'held':>6} {'dups':>5} {'lost':>5} {'wrong':>6} {'unk h/a':>9} "
          f"{'failed':>6} {'req/item':>9} {'virt min':>9}  faults injected")  # fmt: skip


def check(row: Row, inputs: Sequence[tuple[str, Money]], outcomes: Sequence[ItemResult | BillkitError],
          held: Counter[str], amount_of: Callable[[Bill], Money | None]) -> None:  # fmt: skip
    """Compare what billkit reported for every input with what the sandbox holds."""
    assert len(outcomes) == len(inputs), "a result must account for every input"
    row.submitted = len(inputs)
    row.held = sum(held[ref] for ref, _ in inputs)
    for (ref, amount), outcome in zip(inputs, outcomes, strict=True):
        count = held[ref]
        if count > 1:
            row.duplicates += 1
            row.problems.append(f"{ref}: held {count} times")
        if isinstance(outcome, ItemResult) and outcome.ok:
            if count == 0:
                row.lost += 1
                row.problems.append(f"{ref}: reported created, not held")
            elif outcome.bill is None or outcome.bill.reference != ref or amount_of(outcome.bill) not in (None, amount):
                row.wrong += 1
                row.problems.append(f"{ref}: reported created as {outcome.bill!r}")
            continue
        error = outcome.error if isinstance(outcome, ItemResult) else outcome
        if isinstance(error, OutcomeUnknownError):
            if count:
                row.unknown_held += 1
            else:
                row.unknown_absent += 1
        elif count:
            row.wrong += 1
            row.problems.append(f"{ref}: reported failed ({error!r}) but held")
        else:
            row.failed += 1


async def submit_all(client: billkit.AsyncClient, bills: Sequence[Bill], *, limit: int = 64,
                     ) -> list[Operation[Bill] | BillkitError]:  # fmt: skip
    """``client.submit`` for every bill, at most ``limit`` at once; a refused submit keeps its error."""
    out: list[Operation[Bill] | BillkitError | None] = [None] * len(bills)
    gate = anyio.CapacityLimiter(limit)

    async def one(i: int) -> None:
        async with gate:
            try:
                out[i] = await client.submit(bills[i])
            except BillkitError as exc:
                out[i] = exc

    async with anyio.create_task_group() as tg:
        for i in range(len(bills)):
            tg.start_soon(one, i)
    return [o for o in out if o is not None]


async def settle(started: Sequence[Operation[Bill] | BillkitError]) -> list[ItemResult | BillkitError]:
    ops = [s for s in started if isinstance(s, Operation)]
    results = await billkit.gather(*ops, return_exceptions=True)
    by_op = dict(zip((id(op) for op in ops), results, strict=True))
    out: list[ItemResult | BillkitError] = []
    for i, s in enumerate(started):
        if not isinstance(s, Operation):
            out.append(s)
            continue
        value = by_op[id(s)]
        if isinstance(value, Bill):
            out.append(ItemResult(index=i, status=ItemStatus.SUCCEEDED, bill=value, reference=value.reference))
        else:
            assert isinstance(value, BillkitError), f"a non-billkit error escaped: {value!r}"
            out.append(value)
    return out


def bulk_items(result: BulkResult | BillkitError, n: int) -> list[ItemResult | BillkitError]:
    if isinstance(result, BillkitError):
        return [result] * n
    assert [item.index for item in result] == list(range(n)), "bulk results must be in input order"
    return list(result)


async def run_mix(client: billkit.AsyncClient, bills: Sequence[Bill], *, split: int, chunk: int, limit: int = 64,
                  ) -> tuple[list[ItemResult | BillkitError], list[str]]:  # fmt: skip
    """``bills[:split]`` one by one through ``submit``, the rest through ``submit_many`` in chunks of ``chunk``;
    returns one outcome per bill, in order, and every token handed out."""
    started = await submit_all(client, bills[:split], limit=limit)
    outcomes = await settle(started)
    tokens = [s.token for s in started if isinstance(s, Operation)]
    for lo in range(split, len(bills), chunk):
        part = bills[lo : lo + chunk]
        try:
            bulk = await client.submit_many(part)
            tokens.append(bulk.token)
            result: BulkResult | BillkitError = await bulk
        except BillkitError as exc:
            result = exc
        outcomes.extend(bulk_items(result, len(part)))
    return outcomes, tokens


# -- the three providers -----------------------------------------------------------------------------------------


async def soak_accepteasy(n: int, clock: VirtualClock) -> tuple[Row, billkit.AsyncClient, list[Any]]:
    box = AcceptEasySandbox(clock, faults(1), bulk_rate=2000.0)
    client = billkit.AsyncClient("accepteasy", sandbox=box, poll=POLL)
    bills = [Bill(reference=f"AE-{i:05d}", description=f"Soak {i}", total=Money(f"{10 + i % 90}.{i % 100:02d}", "EUR"),
                  counterparty=Party(email=f"payer{i}@example.nl")) for i in range(n)]  # fmt: skip
    # 80 % one by one through submit, 20 % through native bulks of at most 500
    outcomes, tokens = await run_mix(client, bills, split=n * 4 // 5, chunk=500)
    held = Counter(str(b.get("PaymentReference")) for b in box.bills.values())
    row = Row("accepteasy")
    check(row, [(b.reference or "", b.total or Money(0, "EUR")) for b in bills], outcomes, held, lambda b: b.total)
    return row, client, [*tokens, *outcomes]


async def soak_billcom(n: int, clock: VirtualClock) -> tuple[Row, billkit.AsyncClient, list[Any]]:
    box = BillcomSandbox(clock, faults(2))
    client = billkit.AsyncClient("billcom", sandbox=box, poll=POLL)
    today = dt.date(2026, 12, 1)
    bills = [Bill(direction=Direction.PAYABLE, counterparty=Party(provider_id=(VENDOR_ACME, VENDOR_GLOBEX)[i % 2]),
                  reference=f"BL-{i:05d}", issue_date=today, due_date=today + dt.timedelta(days=30),
                  line_items=(LineItem(description=f"Soak {i}", unit_price=Money(f"{100 + i % 50}.25", "USD")),))
             for i in range(n)]  # fmt: skip
    # 20 % one by one through submit (3 at once: BILL's limit), 80 % through bulks (BILL's batches hold 100)
    outcomes, tokens = await run_mix(client, bills, split=n // 5, chunk=1000, limit=3)
    counts = box.invoice_counts()
    held = Counter({number: c for (_, number), c in counts.items()})
    row = Row("billcom")
    inputs = [(b.reference or "", Money(b.line_items[0].amount, "USD")) for b in bills]
    check(row, inputs, outcomes, held, lambda b: Money(b.line_items[0].amount, "USD") if b.line_items else None)
    return row, client, [*tokens, *outcomes]


async def soak_facturapi(n: int, clock: VirtualClock) -> tuple[Row, billkit.AsyncClient, list[Any]]:
    box = FacturapiSandbox(clock, faults(3))
    client = billkit.AsyncClient("facturapi", sandbox=box, poll=POLL)
    customer = Party(name="ESCUELA KEMPER URGATE", tax_id="EKU9003173C9", address=Address(postal_code="42501"),
                     provider_options={"tax_system": "601"})  # fmt: skip

    def invoice(i: int) -> Bill:
        price = Money(f"{500 + i % 400}.50", "MXN")
        item = LineItem(description=f"Soak {i}", unit_price=price, taxes=(Tax(type="IVA", rate="0.16"),),
                        provider_options={"product_key": "80111600"})  # fmt: skip
        return Bill(reference=f"FA-{i:05d}", counterparty=customer, provider_options={"payment_form": "03"},
                    line_items=(item,))  # fmt: skip

    bills = [invoice(i) for i in range(n)]
    # half through submit, half through submit_many in chunks of 1,000
    outcomes, tokens = await run_mix(client, bills, split=n // 2, chunk=1000)
    held = Counter(str(inv.get("external_id")) for inv in box.invoices.values())
    row = Row("facturapi")
    inputs = [(b.reference or "", (b.line_items[0].amount * Decimal("1.16")).quantize(Decimal("0.01"))) for b in bills]
    check(row, [(ref, Money(amount, "MXN")) for ref, amount in inputs], outcomes, held, lambda b: b.total)
    return row, client, [*tokens, *outcomes]


SOAKS = {"accepteasy": soak_accepteasy, "billcom": soak_billcom, "facturapi": soak_facturapi}
ROWS: list[Row] = []


def secret_values(box: Sandbox) -> list[str]:
    """Every credential value, plainly and base64-encoded, and every ``a:b`` pair of them base64-encoded (what a
    Basic authorization header carries)."""
    values = [v for v in box.credentials.values() if v]
    pairs = [f"{a}:{b}" for a in values for b in values if a != b]
    return [*values, *(base64.b64encode(v.encode()).decode() for v in [*values, *pairs] if len(v) > 3)]


def haystack(client: billkit.AsyncClient, things: list[Any]) -> str:
    """Everything a leak could hide in: reprs and strings of the client, recorded requests, results, errors,
    operations, and every token (raw and decoded)."""
    parts = [repr(client), str(client), repr(client.sandbox)]
    assert client.sandbox is not None
    parts.extend(repr(r) for r in client.sandbox.requests)
    for thing in things:
        parts.append(repr(thing))
        if isinstance(thing, str):  # a token: searched decoded too
            parts.append(json.dumps(decode_token(thing)))
        if isinstance(thing, ItemResult):
            parts.extend([repr(thing.error), str(thing.error), repr(thing.bill)])
        if isinstance(thing, BillkitError):
            parts.extend([str(thing), repr(getattr(thing, "raw", None))])
    return "\n".join(parts)


@pytest.mark.parametrize("provider", list(SOAKS))
async def test_soak_under_faults(provider: str, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    clock = VirtualClock()
    row, client, things = await SOAKS[provider](SOAK_SIZE, clock)
    async with client:
        pass
    assert client.sandbox is not None
    row.requests = len(client.sandbox.requests)
    row.virtual_seconds = clock.now()
    row.injected = dict(client.sandbox.faults.injected)
    ROWS.append(row)
    print(f"\n{HEADER}\n{row.line()}")
    assert (row.duplicates, row.lost, row.wrong) == (0, 0, 0), row.problems[:10]
    assert sum(row.injected.values()) >= row.requests * 0.1, "the faults must really have been injected"
    for thing in things:
        error = thing.error if isinstance(thing, ItemResult) else thing
        if isinstance(error, OutcomeUnknownError):  # an unknown outcome must say how to settle it
            assert error.how_to_check, error
    logs = "\n".join(f"{r.getMessage()} {r.args!r}" for r in caplog.records)
    assert caplog.records, "DEBUG logging must have produced lines to scan"
    text = haystack(client, things) + logs
    leaks = {secret: text.count(secret) for secret in secret_values(client.sandbox)}
    print(f"secret scan: {len(leaks)} credential values (plain and base64) searched in {len(text):,} characters "
          f"({len(caplog.records):,} DEBUG log records, reprs, errors, {sum(isinstance(t, str) for t in things):,} "
          f"tokens): {sum(leaks.values())} found")  # fmt: skip
    assert all(count == 0 for count in leaks.values()), {k[:3] + "...": v for k, v in leaks.items() if v}


def files_bytes(directory: Path, prefix: str) -> bytes:
    return b"".join(p.read_bytes() for p in sorted(directory.iterdir()) if p.name.startswith(prefix))


@pytest.mark.parametrize("provider", list(SOAKS))
async def test_soak_through_a_durable_batch_leaves_nothing_unknown(provider: str, tmp_path: Path) -> None:
    """The same size and fault mix through ``billkit.batch``: its reconcilers settle every outcome the plain soak
    leaves unknown, so every input ends done, held exactly once, under the id the batch reports; and the journal
    (which holds the submissions' tokens) holds no credential."""
    import billkit.batch
    from tests.test_batch import bills_for, check_against, sandbox_for

    clock = VirtualClock()
    mix = faults(5)
    for _ in range(3):  # whatever the dice say at a small size: some sends lose their answers
        mix.once("drop_after", match="POST")
    box = sandbox_for(provider, clock, mix)
    bills = bills_for(provider, SOAK_SIZE)
    journal = billkit.batch.create(tmp_path / "soak.journal", bills, provider=provider)
    async with billkit.AsyncClient(provider, sandbox=box, poll=POLL) as client:
        summary = await billkit.batch.arun(journal, client)
    injected = dict(box.faults.injected) if box.faults else {}
    print(f"\n{provider}: {SOAK_SIZE} items through a batch: {summary.counts} in {summary.requests} requests "
          f"({summary.requests / SOAK_SIZE:.2f} per item), {clock.now() / 60:.1f} virtual minutes, "
          f"{summary.seconds:.1f} s; faults {sorted(injected.items())}")  # fmt: skip
    assert summary.counts["unknown"] == 0 and summary.counts["failed"] == 0, summary.failures
    check_against(journal, bills, box)  # 0 duplicates, 0 lost, each done under the id the sandbox holds
    assert injected.get("drop_after", 0) > 0
    journal.close()
    stored = files_bytes(tmp_path, "soak.journal")
    leaks = [s for s in secret_values(box) if s.encode() in stored]
    assert not leaks, "a credential is in the journal"

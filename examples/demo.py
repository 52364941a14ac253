"""billkit's demo: realistic batches at all three providers at once, awaited together.

* AcceptEasy: 300 Dutch payment requests in one native bulk, a few of which the provider refuses.
* BILL: a bulk of 40 payables that BILL rejects whole once (one vendor is blocked for a moment), then accepts.
* Facturapi: 30 CFDI invoices stamped asynchronously, one of which ends ``failed`` and one of which goes
  through Facturapi's 202 recovery path (about 30 minutes of provider time).

Everything is awaited together with ``billkit.gather`` while progress is printed, then a summary per
provider. By default it runs on billkit's in-process sandboxes, which share one virtual clock, so an hour of
provider work takes a few seconds. With a provider's credentials in the environment (FACTURAPI_API_KEY;
ACCEPTEASY_KEY_NAME + ACCEPTEASY_KEY; BILL_USERNAME + BILL_PASSWORD + BILL_ORGANIZATION_ID + BILL_DEV_KEY)
that provider runs against its real API instead, and the demo says so.

Run: ``make demo`` (or ``.venv/bin/python examples/demo.py``).
"""

from __future__ import annotations

import datetime as dt
import os
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field

import anyio

import billkit
from billkit import Bill, BulkResult, Direction, LineItem, Money, Party, Tax
from billkit.clock import Clock, VirtualClock
from billkit.testing import sandbox

LIVE = {
    "accepteasy": ("ACCEPTEASY_KEY_NAME", "ACCEPTEASY_KEY"),
    "billcom": ("BILL_USERNAME", "BILL_PASSWORD", "BILL_ORGANIZATION_ID", "BILL_DEV_KEY"),
    "facturapi": ("FACTURAPI_API_KEY",),
}
RUN = uuid.uuid4().hex[:6].upper()


def live(provider: str) -> bool:
    return all(os.environ.get(v) for v in LIVE[provider])


def client_for(provider: str, clock: VirtualClock) -> billkit.AsyncClient:
    if live(provider):
        return billkit.AsyncClient(provider)
    if provider == "facturapi":
        # its webhooks reach us (relay_facturapi_webhooks), so polling is only the safety net: read rarely
        slow = billkit.PollPolicy(first_delay=30.0, max_delay=120.0)
        return billkit.AsyncClient(provider, sandbox=sandbox(provider, clock=clock), poll=slow)
    return billkit.AsyncClient(provider, sandbox=sandbox(provider, clock=clock))


@dataclass
class Outcome:
    provider: str
    mode: str
    started: float = 0.0
    finished: float = 0.0
    succeeded: int = 0
    failed: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    requests: int = 0
    webhooks: int = 0


# -- AcceptEasy -----------------------------------------------------------------------------------------


def accepteasy_bills(n: int) -> list[Bill]:
    due = dt.date.today() + dt.timedelta(days=30)
    return [
        Bill(
            reference=f"AE-{RUN}-{i:04d}",
            description=f"Lidmaatschap 2027 nr {i}",
            counterparty=Party(email=f"klant{i}@example.nl"),
            due_date=due,
            total=Money(f"{25 + i % 50}.{i % 100:02d}", "EUR"),
        )
        for i in range(n)
    ]


async def run_accepteasy(client: billkit.AsyncClient, clock: Clock, out: Outcome) -> billkit.BulkOperation:
    bills = accepteasy_bills(300)
    from billkit.providers.accepteasy.sandbox import AcceptEasySandbox

    box = client.sandbox
    if isinstance(box, AcceptEasySandbox):  # the sandbox refuses these three, as AcceptEasy refuses bad items
        for index in (17, 150, 299):
            box.fail_references[bills[index].reference or ""] = "Invalid bank account of the debtor"
    out.started = clock.now()
    bulk = await client.submit_many(bills, on_progress=progress("accepteasy", clock))

    return bulk


# -- BILL -----------------------------------------------------------------------------------------------


async def run_billcom(client: billkit.AsyncClient, clock: Clock, out: Outcome) -> billkit.BulkOperation:
    from billkit.providers.billcom import BillcomNative
    from billkit.providers.billcom.sandbox import VENDOR_ACME, VENDOR_GLOBEX, BillcomSandbox

    today = dt.date.today()
    vendors = [VENDOR_ACME, VENDOR_GLOBEX]
    if isinstance(client.sandbox, BillcomSandbox):
        client.sandbox.reject_vendor_once(VENDOR_GLOBEX)
    elif client.sandbox is None:
        native = client.native  # the client was made from a provider name in a variable: narrow its native client
        assert isinstance(native, BillcomNative)
        vendor = await native.create_vendor(
            {"name": f"billkit demo {RUN}", "accountType": "BUSINESS",
             "address": {"line1": "1 Demo St", "city": "San Jose", "stateOrProvince": "CA",
                         "zipOrPostalCode": "95110", "country": "US"}})  # fmt: skip
        vendors = [vendor.id, vendor.id]
    bills = [
        Bill(
            direction=Direction.PAYABLE,
            counterparty=Party(provider_id=vendors[i % 2]),
            reference=f"BL-{RUN}-{i:03d}",
            issue_date=today,
            due_date=today + dt.timedelta(days=30),
            line_items=(LineItem(description=f"Office supplies batch {i}", unit_price=Money(f"{100 + i}.50", "USD")),),
        )
        for i in range(40)
    ]
    out.started = clock.now()
    try:
        await client.submit_many(bills)
    except billkit.BulkRejected as rejected:
        out.notes.append(
            f"first attempt rejected whole by BILL: {rejected.code} ({len(rejected.item_errors)} items named)"
        )
    bulk = await client.submit_many(bills, on_progress=progress("billcom", clock))

    return bulk


# -- Facturapi ------------------------------------------------------------------------------------------


def facturapi_bills(n: int, *, triggers: bool) -> list[Bill]:
    """``n`` invoices; on the sandbox, item 7 is refused by the SAT and item 11 goes through the recovery path."""
    from billkit.providers.facturapi.sandbox import FAIL_TAX_ID, RECOVERY_TAX_ID

    bills = []
    for i in range(n):
        tax_id = "EKU9003173C9"  # the SAT's test RFC, accepted by Facturapi's test mode
        if triggers and i == 7:
            tax_id = FAIL_TAX_ID
        elif triggers and i == 11:
            tax_id = RECOVERY_TAX_ID
        bills.append(
            Bill(
                reference=f"FA-{RUN}-{i:03d}",
                counterparty=Party(
                    name="ESCUELA KEMPER URGATE",
                    email="facturas@example.mx",
                    tax_id=tax_id,
                    address=billkit.Address(postal_code="42501"),
                    provider_options={"tax_system": "601"},
                ),
                line_items=(
                    LineItem(
                        description="Servicio de consultoría",
                        quantity=1,
                        unit_price=Money(f"{1000 + 10 * i}.00", "MXN"),
                        taxes=(Tax(type="IVA", rate="0.16"),),
                        provider_options={"product_key": "80111600"},
                    ),
                ),
                provider_options={"payment_form": "03", "use": "G03"},
            )
        )
    return bills


async def run_facturapi(client: billkit.AsyncClient, clock: Clock, out: Outcome) -> billkit.BulkOperation:
    bills = facturapi_bills(30, triggers=client.sandbox is not None)
    out.started = clock.now()
    bulk = await client.submit_many(bills, on_progress=progress("facturapi", clock))
    if client.sandbox is not None:
        ref = bills[11].reference
        out.notes.append(f"item 11 ({ref}) went through Facturapi's recovery path (pending ~30 min, then stamped)")
    return bulk


async def relay_facturapi_webhooks(client: billkit.AsyncClient, clock: Clock, out: Outcome) -> None:
    """What your webhook endpoint does: verify each event Facturapi sends and hand it to billkit, which finishes
    the matching future without another read (and with Facturapi's reason when stamping failed)."""
    from billkit.providers.facturapi.sandbox import FacturapiSandbox

    box = client.sandbox
    if not isinstance(box, FacturapiSandbox):
        return  # against the real API the events go to the URL configured in Facturapi's dashboard
    relayed: set[str] = set()
    while True:
        await clock.sleep(1)
        for event in box.events():
            if event["id"] in relayed:
                continue
            relayed.add(event["id"])
            body, headers = box.webhook_request(event)  # the signed HTTP request Facturapi would send
            if client.handle_webhook_event(client.verify_webhook(body, headers, box.webhook_secret)):
                out.webhooks += 1


# -- shared ---------------------------------------------------------------------------------------------

_last: dict[str, tuple[int, int]] = {}
_finished: dict[str, float] = {}


def progress(provider: str, clock: Clock) -> Callable[[int, int], None]:
    def report(done: int, total: int) -> None:
        before = _last.get(provider, (0, total))[0]
        _last[provider] = (done, total)
        if done == total:
            _finished[provider] = clock.now()
        if done == total or done // max(1, total // 4) != before // max(1, total // 4):
            print(f"  [{provider:<10}] {done:>4}/{total} finished")

    return report


def summarize(result: BulkResult, out: Outcome) -> None:
    out.finished = _finished.get(out.provider, out.started)
    out.succeeded = len(result.succeeded)
    for item in result.failed:
        message = item.error.message if isinstance(item.error, billkit.BillkitError) else str(item.error)
        out.failed.append(f"item {item.index}: {message}")


async def main() -> None:
    print("billkit demo: AcceptEasy, BILL and Facturapi at once")
    clock = VirtualClock()
    real_start = time.perf_counter()
    runners = {"accepteasy": run_accepteasy, "billcom": run_billcom, "facturapi": run_facturapi}
    outcomes: dict[str, Outcome] = {}
    bulks: dict[str, billkit.BulkOperation] = {}
    clients = {p: client_for(p, clock) for p in runners}
    for provider in clients:
        mode = "REAL API" if live(provider) else "sandbox (virtual time)"
        print(f"  {provider:<10} {mode}")
        outcomes[provider] = Outcome(provider, mode)
    try:
        for provider, run in runners.items():
            bulks[provider] = await run(clients[provider], clients[provider].clock, outcomes[provider])
        print("waiting for all three providers together (billkit.gather) ...")
        async with anyio.create_task_group() as tg:
            if "facturapi" in clients:
                tg.start_soon(relay_facturapi_webhooks, clients["facturapi"], clock, outcomes["facturapi"])
            results = await billkit.gather(*bulks.values())
            tg.cancel_scope.cancel()
        for provider, result in zip(bulks, results, strict=True):
            summarize(result, outcomes[provider])
    finally:
        for provider, client in clients.items():
            outcomes[provider].requests = client.requests_made
            await client.aclose()
    print()
    for out in outcomes.values():
        minutes = (out.finished - out.started) / 60
        print(f"{out.provider} ({out.mode}): {out.succeeded} succeeded, {len(out.failed)} failed, "
              f"{minutes:.1f} min of provider time, {out.requests} requests")  # fmt: skip
        if out.webhooks:
            print(f"    {out.webhooks} operations finished by a verified webhook instead of a read")
        for note in out.notes:
            print(f"    note: {note}")
        for failure in out.failed[:5]:
            print(f"    failed {failure}")
    print(f"\nreal time: {time.perf_counter() - real_start:.1f} s")


if __name__ == "__main__":
    anyio.run(main)

"""Per-call cost of a typed create through billkit, for Facturapi and AcceptEasy, on an ``httpx.MockTransport``.

Each provider's MockTransport answers every request with the same realistic body, captured once at start-up
by a create against billkit's own sandbox: a full stamped Facturapi invoice (200, ``status: valid``) and an
AcceptEasy 201 bill. billkit's call is ``await client.create(bill)`` on an ``AsyncClient`` built with
``transport=`` that MockTransport, so everything billkit does per call is in the figure: mapping and local
validation of the Bill, the request body, the transport's retry wrapper and headers, decoding with Decimals,
the wire model and the mapping back to a Bill. Two floors run in the same process on the same transport:

* (a) raw:      ``httpx.AsyncClient(transport=MockTransport).post(url, content=json.dumps(request body))``
                then ``json.loads(response.content)``
* (b) pydantic: (a) plus validating a hand-written pydantic model of the response

Rounds are interleaved (billkit, raw, pydantic take turns in chunks of ``CHUNK`` calls, in a rotating order),
``CALLS`` calls of each per round, ``ROUNDS`` rounds; each figure is the median per-call time of its rounds,
printed only as a ratio to a floor:

* billkit / raw        (target <= 1.25)
* billkit / pydantic   (reported, no target)

Run: ``make bench`` (or ``.venv/bin/python benchmarks/bench_create.py [calls_per_round]``).
"""

from __future__ import annotations

import datetime as dt
import json
import statistics
import sys
import time
from collections.abc import Awaitable, Callable
from decimal import Decimal
from typing import Any

import anyio
import httpx
from pydantic import BaseModel

import billkit
from billkit import Address, Bill, LineItem, Money, Party, Tax
from billkit.client import adapter_class

CALLS = 2_000
ROUNDS = 7
CHUNK = 100  # calls of one loop before the next loop's turn, within a round
TARGET_RAW = 1.25


# -- realistic bills (the shapes of examples/facturapi_common.py and tests/providers/accepteasy/conftest.py) -----
def facturapi_bill() -> Bill:
    return Bill(
        reference="FA-0001",
        counterparty=Party(
            name="ESCUELA KEMPER URGATE",
            tax_id="EKU9003173C9",
            email="facturas@example.mx",
            address=Address(postal_code="42501"),
            provider_options={"tax_system": "601"},
        ),
        line_items=(
            LineItem(
                description="Servicio de consultoría",
                unit_price=Money("1000.00", "MXN"),
                taxes=(Tax(type="IVA", rate="0.16"),),
                provider_options={"product_key": "80111600"},
            ),
        ),
        provider_options={"payment_form": "03", "use": "G03"},
    )


def accepteasy_bill() -> Bill:
    return Bill(reference="LI-748925", description="Insurance deductible", total=Money("12.95", "EUR"),
                due_date=dt.date.today() + dt.timedelta(days=45))  # fmt: skip


# -- hand-written pydantic models of the responses (floor b) -------------------------------------------------
class FaAddress(BaseModel):
    country: str | None = None
    zip: str | None = None


class FaCustomer(BaseModel):
    id: str
    legal_name: str
    tax_id: str
    tax_system: str | None = None
    email: str | None = None
    phone: str | None = None
    address: FaAddress | None = None


class FaTax(BaseModel):
    type: str
    rate: Decimal
    withholding: bool = False


class FaProduct(BaseModel):
    description: str
    product_key: str
    price: Decimal
    tax_included: bool = True
    taxes: list[FaTax] = []


class FaItem(BaseModel):
    quantity: Decimal
    product: FaProduct


class FaStamp(BaseModel):
    date: str
    sat_cert_number: str
    signature: str
    sat_signature: str


class FaInvoice(BaseModel):
    id: str
    created_at: dt.datetime
    livemode: bool
    status: str
    cancellation_status: str | None = None
    canceled_at: dt.datetime | None = None
    verification_url: str | None = None
    date: dt.datetime | None = None
    type: str
    customer: FaCustomer
    total: Decimal
    amount_due: Decimal | None = None
    uuid: str | None = None
    folio_number: int | None = None
    series: str | None = None
    external_id: str | None = None
    idempotency_key: str | None = None
    payment_form: str | None = None
    payment_method: str | None = None
    use: str | None = None
    currency: str
    exchange: Decimal = Decimal(1)
    items: list[FaItem]
    stamp: FaStamp | None = None
    complements: list[Any] = []
    related_documents: list[Any] = []


class AeAddress(BaseModel):
    Email: str | None = None
    PhoneNumber: str | None = None


class AeImages(BaseModel):
    ImageURL1: str | None = None
    ImageURL2: str | None = None
    Button: str | None = None


class AeLinks(BaseModel):
    TransactionURL: str | None = None
    ShortURL: str | None = None
    Images: AeImages | None = None


class AeBill(BaseModel):
    ATID: str
    SRRID: str | None = None
    AETemplateID: str | None = None
    PaymentReference: str
    Amount: Decimal
    Description: str | None = None
    ExpiryDate: dt.datetime | None = None
    CreationDate: dt.datetime | None = None
    Status: str
    Address: AeAddress | None = None
    Communication: list[Any] = []
    Links: AeLinks | None = None


# -- capturing the realistic bodies ----------------------------------------------------------------------------
class _Recorder(httpx.AsyncBaseTransport):
    """Passes requests to a sandbox and keeps the last request and response bytes."""

    def __init__(self, inner: httpx.AsyncBaseTransport) -> None:
        self.inner = inner
        self.request = b""
        self.status = 0
        self.body = b""

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        self.request = await request.aread()
        response = await self.inner.handle_async_request(request)
        self.status, self.body = response.status_code, await response.aread()
        return httpx.Response(self.status, headers=response.headers, content=self.body)


async def capture(provider: str, bill: Bill) -> _Recorder:
    box = adapter_class(provider).make_sandbox()
    recorder = _Recorder(box)
    async with billkit.AsyncClient(provider, sandbox=box, transport=recorder) as client:
        await client.create(bill)
    return recorder


def mock(recorded: _Recorder) -> httpx.MockTransport:
    status, body = recorded.status, recorded.body
    headers = {"content-type": "application/json"}
    return httpx.MockTransport(lambda request: httpx.Response(status, content=body, headers=headers))


# -- one provider -------------------------------------------------------------------------------------------------
Loop = Callable[[int], Awaitable[None]]


async def measure(loops: dict[str, Loop], calls: int, rounds: int) -> dict[str, float]:
    """Median seconds per call of each loop over ``rounds`` rounds of ``calls`` calls each.

    Within a round the loops alternate in chunks of ``CHUNK`` calls (order rotated every chunk), so a change in
    the machine's load during a round reaches every loop alike.
    """
    for loop in loops.values():  # warm up: imports, pydantic validators, httpx pools
        await loop(max(50, calls // 20))
    names = list(loops)
    chunk = max(1, min(CHUNK, calls))
    times: dict[str, list[float]] = {name: [] for name in names}
    for _ in range(rounds):
        spent = dict.fromkeys(names, 0.0)
        done = 0
        while done < calls:
            n = min(chunk, calls - done)
            k = (done // chunk) % len(names)
            for name in names[k:] + names[:k]:
                start = time.perf_counter()
                await loops[name](n)
                spent[name] += time.perf_counter() - start
            done += n
        for name in names:
            times[name].append(spent[name] / calls)
    return {name: statistics.median(t) for name, t in times.items()}


async def bench_provider(provider: str, bill: Bill, credentials: dict[str, str], model: type[BaseModel],
                         calls: int, rounds: int) -> dict[str, float]:  # fmt: skip
    recorded = await capture(provider, bill)
    request_body = json.loads(recorded.request)
    url = "https://api.invalid/create"
    async with (
        billkit.AsyncClient(provider, transport=mock(recorded), **credentials) as client,
        httpx.AsyncClient(transport=mock(recorded)) as raw,
    ):
        first = await client.create(bill)
        assert first.provider_id, first

        async def billkit_loop(n: int) -> None:
            for _ in range(n):
                await client.create(bill)

        async def raw_loop(n: int) -> None:
            for _ in range(n):
                response = await raw.post(url, content=json.dumps(request_body))
                json.loads(response.content)

        async def pydantic_loop(n: int) -> None:
            for _ in range(n):
                response = await raw.post(url, content=json.dumps(request_body))
                model.model_validate(json.loads(response.content))

        model.model_validate(json.loads(recorded.body))  # the floor model fits the body
        result = await measure({"billkit": billkit_loop, "raw": raw_loop, "pydantic": pydantic_loop}, calls, rounds)
    result["bytes_out"] = len(recorded.request)
    result["bytes_in"] = len(recorded.body)
    result["status"] = recorded.status
    return result


async def main(calls: int = CALLS, rounds: int = ROUNDS) -> None:
    cases = {
        "facturapi": (facturapi_bill(), {"api_key": "sk_test_bench"}, FaInvoice),
        "accepteasy": (accepteasy_bill(), {"key_name": "bench", "key": "bench-secret"}, AeBill),
    }
    print(f"create: {calls} calls/round, {rounds} interleaved rounds, median; httpx.MockTransport with a canned body")
    verdicts = []
    for provider, (bill, creds, model) in cases.items():
        r = await bench_provider(provider, bill, creds, model, calls, rounds)
        raw_ratio = r["billkit"] / r["raw"]
        pyd_ratio = r["billkit"] / r["pydantic"]
        print(
            f"  {provider:<10} request {r['bytes_out']:.0f} B, response {r['status']:.0f} {r['bytes_in']:.0f} B;"
            f" pydantic floor / raw floor = {r['pydantic'] / r['raw']:.2f}x"
        )
        print(f"ratio create/raw      {provider:<10} billkit / (a) raw httpx + json      = {raw_ratio:.2f}x  "
              f"(target <= {TARGET_RAW})")  # fmt: skip
        print(f"ratio create/pydantic {provider:<10} billkit / (b) (a) + pydantic model = {pyd_ratio:.2f}x")
        verdicts.append((provider, raw_ratio))
    for provider, ratio in verdicts:
        verdict = "MET" if ratio <= TARGET_RAW else "MISSED"
        print(f"target create/raw ({provider}) <= {TARGET_RAW}x: {verdict} ({ratio:.2f}x)")


if __name__ == "__main__":
    anyio.run(main, int(sys.argv[1]) if len(sys.argv) > 1 else CALLS)

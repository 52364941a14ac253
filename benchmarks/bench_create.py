"""Per-call cost of a typed create through billkit, for Facturapi and AcceptEasy, on an ``httpx.MockTransport``.

Each provider's MockTransport answers every request with the same realistic body, captured once at start-up
by a create against billkit's own sandbox: a full stamped Facturapi invoice (200, ``status: valid``) and an
AcceptEasy 201 bill. billkit's call is ``client.create(bill)`` on a ``Client`` (blocking) and ``await
client.create(bill)`` on an ``AsyncClient``, each built with ``transport=`` that MockTransport, so everything billkit
does per call is in the figure: mapping and local validation of the Bill, the request body, the transport's retry
decision and headers, decoding with Decimals, the wire model and the mapping back to a Bill. Each is measured
against the floors of its own stack, in the same process, on the same transport:

* (a) raw:      ``httpx.Client`` / ``httpx.AsyncClient`` ``.post(url, content=json.dumps(request body))``, then
                ``json.loads(response.content)``
* (b) pydantic: (a) plus validating a hand-written pydantic model of the response

Rounds are interleaved (every loop takes turns in chunks of ``CHUNK`` calls, in a rotating order), ``CALLS`` calls
of each per round, ``ROUNDS`` rounds; each figure is the median over rounds of the per-round ratio, with its spread
(lowest-highest round), printed only as ratios:

* blocking create / raw ``httpx.Client``        (target <= 1.5 Facturapi, <= 1.4 AcceptEasy)
* async create / raw ``httpx.AsyncClient``      (same targets)
* blocking create / async create               (target <= 1.1: the blocking client has no thread hop)
* Facturapi: billkit's blocking create / the ``facturapi`` PyPI package's ``Invoice.create`` (1.0.1, building
  its own request model in the call, as its users do), same answer, same transport   (target < 1.0)

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


async def measure(loops: dict[str, Loop], calls: int, rounds: int) -> dict[str, list[float]]:
    """Seconds per call of each loop in each of ``rounds`` rounds of ``calls`` calls.

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
    return times


class Ratio:
    """The per-round ratio of two loops: its median and its spread."""

    def __init__(self, times: dict[str, list[float]], top: str, bottom: str) -> None:
        self.rounds = sorted(a / b for a, b in zip(times[top], times[bottom], strict=True))
        self.median = statistics.median(self.rounds)

    def __str__(self) -> str:
        return f"{self.median:.2f}x (rounds {self.rounds[0]:.2f}-{self.rounds[-1]:.2f})"


async def bench_provider(provider: str, bill: Bill, credentials: dict[str, str], model: type[BaseModel],
                         calls: int, rounds: int) -> tuple[dict[str, list[float]], _Recorder]:  # fmt: skip
    recorded = await capture(provider, bill)
    request_body = json.loads(recorded.request)
    url = "https://api.invalid/create"
    model.model_validate(json.loads(recorded.body))  # the floor model fits the body
    async with (
        billkit.AsyncClient(provider, transport=mock(recorded), **credentials) as client,
        httpx.AsyncClient(transport=mock(recorded)) as raw,
    ):
        with (
            billkit.Client(provider, transport=mock(recorded), **credentials) as blocking,
            httpx.Client(transport=mock(recorded)) as raw_blocking,
        ):
            assert (await client.create(bill)).provider_id and blocking.create(bill).provider_id

            async def async_billkit(n: int) -> None:
                for _ in range(n):
                    await client.create(bill)

            async def async_raw(n: int) -> None:
                for _ in range(n):
                    response = await raw.post(url, content=json.dumps(request_body))
                    json.loads(response.content)

            async def async_pydantic(n: int) -> None:
                for _ in range(n):
                    response = await raw.post(url, content=json.dumps(request_body))
                    model.model_validate(json.loads(response.content))

            async def blocking_billkit(n: int) -> None:
                for _ in range(n):
                    blocking.create(bill)

            async def blocking_raw(n: int) -> None:
                for _ in range(n):
                    response = raw_blocking.post(url, content=json.dumps(request_body))  # noqa: ASYNC212
                    json.loads(response.content)

            async def blocking_pydantic(n: int) -> None:
                for _ in range(n):
                    response = raw_blocking.post(url, content=json.dumps(request_body))  # noqa: ASYNC212
                    model.model_validate(json.loads(response.content))

            loops = {"async": async_billkit, "async_raw": async_raw, "async_pydantic": async_pydantic,
                     "blocking": blocking_billkit, "blocking_raw": blocking_raw,
                     "blocking_pydantic": blocking_pydantic}  # fmt: skip
            contender = facturapi_package(recorded) if provider == "facturapi" else None
            if contender is not None:
                loops["facturapi_package"] = contender
            return await measure(loops, calls, rounds), recorded


def facturapi_package(recorded: _Recorder) -> Loop | None:
    """The ``facturapi`` package's create on the same canned answer (None when the package is not installed)."""
    try:
        import facturapi
        import facturapi.http
        from facturapi.resources.customers import CustomerRequest
        from facturapi.resources.invoices import InvoiceItem, InvoiceRequest
        from facturapi.types.general import CustomerAddress
    except ImportError:
        return None
    package_client: Any = facturapi.http.client  # its module-level client: point its httpx.Client at the mock
    package_client.client = httpx.Client(transport=mock(recorded), timeout=10, headers=package_client.client.headers)
    facturapi.configure("sk_test_bench")

    def create() -> Any:
        request = InvoiceRequest(
            customer=CustomerRequest(legal_name="ESCUELA KEMPER URGATE", tax_id="EKU9003173C9", tax_system="601",
                                     email="facturas@example.mx", address=CustomerAddress(zip="42501")),
            items=[InvoiceItem(quantity=1, product={"description": "Servicio de consultoría", "product_key": "80111600",
                                                    "price": 1000.00, "taxes": [{"type": "IVA", "rate": 0.16}]})],
            payment_form="03", use="G03",
        )  # fmt: skip
        return facturapi.Invoice.create(request)

    assert create().status == "valid"

    async def loop(n: int) -> None:
        for _ in range(n):
            create()

    return loop


async def main(calls: int = CALLS, rounds: int = ROUNDS) -> None:
    cases = {
        "facturapi": (facturapi_bill(), {"api_key": "sk_test_bench"}, FaInvoice, 1.5),
        "accepteasy": (accepteasy_bill(), {"key_name": "bench", "key": "bench-secret"}, AeBill, 1.4),
    }
    print(f"create: {calls} calls/round, {rounds} interleaved rounds, median of per-round ratios (spread); "
          "httpx.MockTransport with a canned body")  # fmt: skip
    verdicts: list[tuple[str, Ratio, float]] = []
    for provider, (bill, creds, model, target) in cases.items():
        times, recorded = await bench_provider(provider, bill, creds, model, calls, rounds)
        print(f"  {provider:<10} request {len(recorded.request)} B, response {recorded.status} {len(recorded.body)} B;"
              f" pydantic floor / raw floor = {Ratio(times, 'async_pydantic', 'async_raw')}")  # fmt: skip
        rows = [
            (f"blocking create / raw httpx.Client     ({provider})", Ratio(times, "blocking", "blocking_raw"), target),
            (f"async create / raw httpx.AsyncClient   ({provider})", Ratio(times, "async", "async_raw"), target),
            (f"blocking create / async create         ({provider})", Ratio(times, "blocking", "async"), 1.1),
        ]
        for label, ratio, goal in rows:
            print(f"ratio {label} = {ratio}  (target <= {goal})")
            verdicts.append((label, ratio, goal))
        print(f"ratio blocking create / (b) raw + pydantic ({provider}) = "
              f"{Ratio(times, 'blocking', 'blocking_pydantic')}")  # fmt: skip
        if "facturapi_package" in times:
            contender = Ratio(times, "blocking", "facturapi_package")
            label = "billkit create / facturapi package create (facturapi)"
            print(f"ratio {label} = {contender}  (target < 1.0); package / raw httpx.Client = "
                  f"{Ratio(times, 'facturapi_package', 'blocking_raw')}")  # fmt: skip
            verdicts.append((label, contender, 1.0))
        elif provider == "facturapi":
            print("  (the facturapi package is not installed: `make bench` installs it for this comparison)")
    for label, ratio, goal in verdicts:
        strict = "facturapi package" in label  # "faster than": below 1.0, not at it
        met = ratio.median < goal if strict else ratio.median <= goal
        print(f"target {label} {'<' if strict else '<='} {goal}x: {'PASS' if met else 'MISSED'} ({ratio.median:.2f}x)")


if __name__ == "__main__":
    anyio.run(main, int(sys.argv[1]) if len(sys.argv) > 1 else CALLS)

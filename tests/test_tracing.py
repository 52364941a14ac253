"""billkit.tracing: spans, events and metrics recorded with the OpenTelemetry SDK's in-memory exporter and reader,
on the sandboxes; nothing recorded (and nothing imported) when OpenTelemetry is not set up."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from opentelemetry import trace
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

import billkit
import billkit.testing as kit
from billkit import AsyncClient, Bill, Client, Money, OperationCancelled, tracing
from billkit.clock import VirtualClock

pytestmark = pytest.mark.anyio

DOCS = Path(__file__).resolve().parent.parent / "docs" / "observability.md"


class Otel:
    def __init__(self) -> None:
        self.spans = InMemorySpanExporter()
        self.tracer_provider = TracerProvider()
        self.tracer_provider.add_span_processor(SimpleSpanProcessor(self.spans))
        self.metrics = InMemoryMetricReader()
        self.meter_provider = MeterProvider(metric_readers=[self.metrics])

    def finished(self, name: str | None = None) -> list[ReadableSpan]:
        spans = list(self.spans.get_finished_spans())
        return [s for s in spans if name is None or s.name == name]

    def one(self, name: str) -> ReadableSpan:
        found = self.finished(name)
        assert len(found) == 1, [s.name for s in self.finished()]
        return found[0]

    def points(self, metric: str) -> list[tuple[dict[str, Any], float]]:
        data = self.metrics.get_metrics_data()
        out: list[tuple[dict[str, Any], float]] = []
        for resource in data.resource_metrics if data is not None else ():
            for scope in resource.scope_metrics:
                for m in scope.metrics:
                    if m.name == metric:
                        out.extend((dict(p.attributes or {}), float(p.value)) for p in m.data.data_points)  # type: ignore[union-attr]
        return out


@pytest.fixture
def otel() -> Iterator[Otel]:
    recorded = Otel()
    tracing.configure(tracer_provider=recorded.tracer_provider, meter_provider=recorded.meter_provider)
    try:
        yield recorded
    finally:
        tracing.reset()
        recorded.meter_provider.shutdown()


def ae_bill(ref: str = "LI-1") -> Bill:
    return Bill(reference=ref, description="Insurance deductible", total=Money("12.95", "EUR"))


def attrs(span: ReadableSpan) -> dict[str, Any]:
    return dict(span.attributes or {})


def parent_id(span: ReadableSpan) -> int | None:
    return span.parent.span_id if span.parent is not None else None


def events(span: ReadableSpan) -> list[tuple[str, dict[str, Any]]]:
    return [(e.name, dict(e.attributes or {})) for e in span.events]


# -- spans per public call ---------------------------------------------------------------------------------------
async def test_create_and_get_are_one_span_each(otel: Otel, anyio_backend: str) -> None:
    async with AsyncClient("accepteasy", sandbox=kit.sandbox("accepteasy", clock=VirtualClock())) as client:
        bill = await client.create(ae_bill())
        assert bill.provider_id is not None
        await client.get(bill.provider_id)
    create, get = otel.one("billkit.accepteasy.create"), otel.one("billkit.accepteasy.get")
    assert attrs(create) == {"billkit.provider": "accepteasy", "billkit.outcome": "ok"}
    assert attrs(get)["billkit.outcome"] == "ok"
    assert parent_id(create) is None and create.status.is_ok


async def test_submit_and_wait_links_every_status_read_to_the_submit(otel: Otel, anyio_backend: str) -> None:
    async with AsyncClient("accepteasy", sandbox=kit.sandbox("accepteasy", clock=VirtualClock())) as client:
        done = await client.submit_and_wait(ae_bill())
    outer, submit = otel.one("billkit.accepteasy.submit_and_wait"), otel.one("billkit.accepteasy.submit")
    assert parent_id(submit) == outer.context.span_id
    reads = otel.finished("billkit.accepteasy.status_read")
    assert reads, "the operation was read at least once"
    a = attrs(submit)
    assert a["billkit.operation.kind"] == "create" and a["billkit.operation.id"] == done.provider_id
    for n, read in enumerate(reads, start=1):
        assert parent_id(read) is None, "the poller's reads start traces of their own"
        assert read.context.trace_id != submit.context.trace_id
        assert [link.context.span_id for link in read.links] == [submit.context.span_id]
        r = attrs(read)
        assert r["billkit.operation.id"] == done.provider_id and r["billkit.attempt"] == n
        assert r["billkit.provider"] == "accepteasy" and r["billkit.operation.kind"] == "create"
    assert attrs(reads[-1])["billkit.outcome"] == "succeeded" and attrs(reads[-1])["billkit.status"] == "open"
    assert all(attrs(r)["billkit.outcome"] == "running" for r in reads[:-1])


async def test_a_resumed_operation_links_its_reads_to_the_submit_not_to_the_resume(
    otel: Otel, anyio_backend: str
) -> None:
    box = kit.sandbox("accepteasy", clock=VirtualClock())
    async with AsyncClient("accepteasy", sandbox=box, poll=billkit.PollPolicy(first_delay=60)) as first:
        token = (await first.submit(ae_bill("LI-resume"))).token  # then "the process ends"
    submit = otel.one("billkit.accepteasy.submit")
    otel.spans.clear()
    async with AsyncClient("accepteasy", sandbox=box) as second:  # "another process", its own trace
        done = await (await second.resume(token, bulk=False))
    assert done.reference == "LI-resume"
    resume = otel.one("billkit.accepteasy.resume")
    reads = otel.finished("billkit.accepteasy.status_read")
    assert reads and all([link.context.span_id for link in r.links] == [submit.context.span_id] for r in reads)
    assert all(r.links[0].context.trace_id == submit.context.trace_id for r in reads)
    assert resume.context.span_id != submit.context.span_id


async def test_native_calls_are_spans_too_with_their_errors(otel: Otel, anyio_backend: str) -> None:
    from billkit import ValidationError
    from billkit.providers.facturapi.wire import ProductInput

    async with AsyncClient("facturapi", sandbox=kit.sandbox("facturapi", clock=VirtualClock())) as client:
        made = await client.native.create_product(
            ProductInput(description="Ukelele", product_key="60131324", price=Decimal("345.60"))
        )
        with pytest.raises(ValidationError):
            await client.native.create_product(ProductInput(description="x", product_key="123", price=Decimal(1)))
    created, refused = otel.finished("billkit.facturapi.create_product")
    assert attrs(created)["billkit.api"] == "native" and attrs(created)["billkit.outcome"] == "ok"
    assert attrs(refused)["error.type"] == "ValidationError" and made.id
    with Client("facturapi", sandbox=kit.sandbox("facturapi", clock=VirtualClock())) as blocking:
        product = ProductInput(description="Bongo", product_key="60131324", price=Decimal(2))
        again = blocking.native.create_product(product)
        assert blocking.native.get_product(again.id or "").id == again.id
    assert attrs(otel.one("billkit.facturapi.get_product"))["billkit.api"] == "native"


def test_a_resume_token_with_a_forged_trace_is_refused() -> None:
    import base64
    import zlib

    from billkit import TokenError
    from billkit.tokens import encode_token

    good = encode_token("accepteasy", "create", "x", {"atid": "x"}, trace="00-" + "1" * 32 + "-" + "2" * 16 + "-01")
    packed = good.removeprefix("bk2.")
    raw = zlib.decompress(base64.urlsafe_b64decode(packed + "=" * (-len(packed) % 4)), -15)
    assert json.loads(raw)["trace"].startswith("00-111")
    for bad in ("00-" + "0" * 32 + "-" + "2" * 16 + "-01", "01-" + "1" * 32 + "-" + "2" * 16 + "-01", "x"):
        forged = encode_token("accepteasy", "create", "x", {"atid": "x"}, trace=bad)
        with billkit.Client("accepteasy", sandbox=True) as client, pytest.raises(TokenError, match="'trace'"):
            client.resume(forged)


async def test_refresh_reads_in_the_callers_trace_with_the_link(otel: Otel, anyio_backend: str) -> None:
    async with AsyncClient("accepteasy", sandbox=kit.sandbox("accepteasy", clock=VirtualClock())) as client:
        op = await client.submit(ae_bill())
        with otel.tracer_provider.get_tracer("app").start_as_current_span("app.refresh") as mine:
            await op.refresh()
        await op
    read = otel.finished("billkit.accepteasy.status_read")[0]
    submit = otel.one("billkit.accepteasy.submit")
    assert parent_id(read) == mine.get_span_context().span_id
    assert [link.context.span_id for link in read.links] == [submit.context.span_id]


def test_the_blocking_client_records_the_same_spans(otel: Otel) -> None:
    with Client("accepteasy", sandbox=kit.sandbox("accepteasy", clock=VirtualClock())) as client:
        op = client.submit(ae_bill())
        op.result()
        pending = client.submit(ae_bill("LI-2"))
        pending.cancel()
        with pytest.raises(OperationCancelled):
            pending.result()
    submits = otel.finished("billkit.accepteasy.submit")
    assert len(submits) == 2
    reads = otel.finished("billkit.accepteasy.status_read")
    assert reads and all([link.context.span_id for link in r.links] == [submits[0].context.span_id] for r in reads)
    cancel = otel.one("billkit.accepteasy.cancel")
    assert attrs(cancel)["billkit.operation.id"] == pending.id


async def test_a_failed_call_records_the_error_class_and_status(otel: Otel, anyio_backend: str) -> None:
    async with AsyncClient("accepteasy", sandbox=kit.sandbox("accepteasy", clock=VirtualClock())) as client:
        with pytest.raises(billkit.NotFoundError):
            await client.get("no-such-bill")
    span = otel.one("billkit.accepteasy.get")
    assert attrs(span)["billkit.outcome"] == "error" and attrs(span)["error.type"] == "NotFoundError"
    assert not span.status.is_ok
    assert [e.name for e in span.events] == ["exception"]


async def test_submit_many_of_single_operations_links_each_child_read(otel: Otel, anyio_backend: str) -> None:
    box = kit.sandbox("facturapi", clock=VirtualClock())
    bills = [facturapi_bill(f"FA-{i}") for i in range(3)]
    async with AsyncClient("facturapi", sandbox=box) as client:
        bulk = await client.submit_many(bills)
        await bulk
    span = otel.one("billkit.facturapi.submit_many")
    assert attrs(span)["billkit.operation.total"] == 3
    for read in otel.finished("billkit.facturapi.status_read"):
        assert [link.context.span_id for link in read.links] == [span.context.span_id]


# -- retries and rate limits as events ------------------------------------------------------------------------------
async def test_a_rate_limited_create_has_both_events_and_counts_a_retry(otel: Otel, anyio_backend: str) -> None:
    box = kit.sandbox("accepteasy", clock=VirtualClock(), faults=kit.Faults().once("rate_limit"))
    async with AsyncClient("accepteasy", sandbox=box) as client:
        await client.create(ae_bill())
    span = otel.one("billkit.accepteasy.create")
    (limited, a), (retry, b) = events(span)
    assert (limited, retry) == ("billkit.rate_limited", "billkit.retry")
    assert a["http.response.status_code"] == 429 and a["billkit.retry_after"] == 2.0 and a["billkit.attempt"] == 1
    assert b["billkit.retry.delay"] == 2.0 and b["error.type"] == "RateLimitError"
    assert a["url.template"] == "/v2/Bill"
    assert otel.points("billkit.retries") == [
        ({"billkit.provider": "accepteasy", "http.request.method": "POST", "error.type": "RateLimitError"}, 1.0)
    ]


async def test_a_status_read_retried_after_a_server_error_has_the_event(otel: Otel, anyio_backend: str) -> None:
    faults = kit.Faults()
    box = kit.sandbox("accepteasy", clock=VirtualClock(), faults=faults)
    async with AsyncClient("accepteasy", sandbox=box) as client:
        op = await client.submit(ae_bill())
        faults.once("server_error", match="GET")
        await op
    first = otel.finished("billkit.accepteasy.status_read")[0]
    assert [name for name, _ in events(first)] == ["billkit.retry"]
    assert events(first)[0][1]["http.request.method"] == "GET"
    assert faults.injected == {"server_error": 1}


# -- metrics --------------------------------------------------------------------------------------------------------
def pending(otel: Otel) -> float:
    return sum(v for a, v in otel.points("billkit.operations.pending") if a == {"billkit.provider": "accepteasy"})


async def test_metrics_count_reads_and_pending_operations(otel: Otel, anyio_backend: str) -> None:
    async with AsyncClient("accepteasy", sandbox=kit.sandbox("accepteasy", clock=VirtualClock())) as client:
        before = pending(otel)  # other tests' clients left open may hold some
        op = await client.submit(ae_bill())
        assert pending(otel) == before + 1
        await op
        assert pending(otel) == before
    reads = {tuple(sorted(a.items())): v for a, v in otel.points("billkit.status_reads")}
    done = (("billkit.operation.kind", "create"), ("billkit.outcome", "succeeded"), ("billkit.provider", "accepteasy"))
    assert reads[done] == 1.0
    assert sum(reads.values()) == len(otel.finished("billkit.accepteasy.status_read"))


# -- off unless set up ------------------------------------------------------------------------------------------------
async def test_nothing_is_recorded_without_a_provider(anyio_backend: str) -> None:
    recorded = Otel()  # an SDK provider exists, but neither configured for billkit nor set globally
    if not isinstance(trace.get_tracer_provider(), trace.ProxyTracerProvider):
        pytest.skip("another test set a global tracer provider in this process (the subprocess tests cover it)")
    tracing.reset()
    assert not tracing.is_active()
    box = kit.sandbox("accepteasy", clock=VirtualClock(), faults=kit.Faults().once("rate_limit"))
    async with AsyncClient("accepteasy", sandbox=box) as client:
        await client.submit_and_wait(ae_bill())
    assert recorded.finished() == [] and recorded.metrics.get_metrics_data() is None
    assert tracing.call("accepteasy", "create") is tracing.OFF


def run(code: str) -> dict[str, Any]:
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    result: dict[str, Any] = json.loads(out.stdout.strip().splitlines()[-1])
    return result


BLOCKING_CREATE = (
    "import billkit, billkit.testing as t\n"
    "with billkit.Client('accepteasy', sandbox=t.sandbox('accepteasy', clock=t.VirtualClock())) as c:\n"
    "    c.submit_and_wait(billkit.Bill(reference='R', description='x', total=billkit.Money('1.00', 'EUR')))\n"
)


def test_billkit_never_imports_opentelemetry() -> None:
    result = run(
        "import json, sys\n" + BLOCKING_CREATE + "from billkit import tracing\n"
        "print(json.dumps({'otel': sorted(m for m in sys.modules if m.startswith('opentelemetry')),"
        " 'active': tracing.is_active()}))"
    )
    assert result == {"otel": [], "active": False}


def test_a_global_tracer_provider_turns_it_on() -> None:
    setup = (
        "import json\n"
        "from opentelemetry import trace\n"
        "from opentelemetry.sdk.trace import TracerProvider\n"
        "from opentelemetry.sdk.trace.export import SimpleSpanProcessor\n"
        "from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter\n"
        "from billkit import tracing\n"
        "exporter = InMemorySpanExporter()\n"
        "provider = TracerProvider()\n"
        "provider.add_span_processor(SimpleSpanProcessor(exporter))\n"
    )
    result = run(
        setup + "before = tracing.is_active()\n"  # opentelemetry imported, no provider set yet: off
        "trace.set_tracer_provider(provider)\n"
        + BLOCKING_CREATE
        + "names = sorted({s.name for s in exporter.get_finished_spans()})\n"
        "print(json.dumps({'before': before, 'names': names}))"
    )
    assert result == {
        "before": False,
        "names": ["billkit.accepteasy.status_read", "billkit.accepteasy.submit", "billkit.accepteasy.submit_and_wait"],
    }


# -- the trace in docs/observability.md ------------------------------------------------------------------------------
def render(spans: list[ReadableSpan]) -> str:
    """A tree of spans, children under parents and linked roots after the span they link to; ids left out."""
    names = {s.context.span_id: s.name for s in spans}
    keep = ("billkit.operation.kind", "billkit.attempt", "billkit.status", "billkit.outcome")

    def line(span: ReadableSpan, depth: int) -> list[str]:
        a = attrs(span)
        shown = " ".join(f"{k}={a[k]}" for k in keep if k in a)
        links = "".join(f" (linked to {names.get(link.context.span_id, '?')})" for link in span.links)
        out = ["  " * depth + f"{span.name}{links}  {shown}".rstrip()]
        for name, e in events(span):
            detail = " ".join(f"{k}={e[k]}" for k in ("billkit.attempt", "http.response.status_code") if k in e)
            out.append("  " * depth + f"  * event {name} {detail}".rstrip())
        for child in sorted(
            (s for s in spans if parent_id(s) == span.context.span_id), key=lambda s: s.start_time or 0
        ):
            out += line(child, depth + 1)
        return out

    lines: list[str] = []
    for root in sorted((s for s in spans if s.parent is None), key=lambda s: s.start_time or 0):
        lines += line(root, 0)
    return "\n".join(lines)


async def test_the_trace_in_the_docs_is_what_a_submit_and_wait_records(otel: Otel, anyio_backend: str) -> None:
    faults = kit.Faults().once("rate_limit")
    async with AsyncClient("accepteasy", sandbox=kit.sandbox("accepteasy", clock=VirtualClock(), faults=faults)) as c:
        await c.submit_and_wait(ae_bill())
    trace = render(otel.finished())
    assert f"```text\n{trace}\n```" in DOCS.read_text(encoding="utf-8"), trace


def facturapi_bill(ref: str) -> Bill:
    return Bill(
        reference=ref,
        counterparty=billkit.Party(
            name="ESCUELA KEMPER URGATE",
            tax_id="EKU9003173C9",
            email="facturas@example.mx",
            address=billkit.Address(postal_code="42501"),
            provider_options={"tax_system": "601"},
        ),
        line_items=(
            billkit.LineItem(
                description="Servicio de consultoría",
                unit_price=Money(Decimal("1000.00"), "MXN"),
                taxes=(billkit.Tax(type="IVA", rate=Decimal("0.16")),),
                provider_options={"product_key": "80111600"},
            ),
        ),
        provider_options={"payment_form": "03", "use": "G03"},
    )

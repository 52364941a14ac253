"""OpenTelemetry for billkit: a span per public call, status reads linked to their submit, retries as events,
and three metrics. Opt-in, and a no-op unless the application set OpenTelemetry up.

billkit never imports ``opentelemetry`` by itself. It is **active** when the application has imported
``opentelemetry`` and set a global tracer provider or meter provider (``trace.set_tracer_provider(...)``,
``metrics.set_meter_provider(...)``, or the ``opentelemetry-instrument`` launcher), or when it called
:func:`configure` with providers of its own. Otherwise every hook below returns at once: one dictionary lookup
in ``sys.modules`` per public call, and, when some code imported ``opentelemetry`` without setting a provider, a
look for one at most once a second (so a provider set after billkit's first call is found within a second;
:func:`reset` or :func:`is_active` look at once). ``pip install billkit[otel]`` brings ``opentelemetry-api``; an
SDK and an exporter are the application's choice.

What is recorded (docs/observability.md has the tables and a trace of one ``submit_and_wait``):

* a span ``billkit.<provider>.<method>`` per public call of ``AsyncClient`` / ``Client`` (``create``, ``get``,
  ``submit``, ``submit_and_wait``, ``submit_many``, ``wait_for``, ``resume``, ``find_existing``,
  ``find_existing_many``) and of an operation (``cancel``);
* a span ``billkit.<provider>.status_read`` per status read. The poller's reads start a trace of their own (a
  poller serves every operation of the client, so no caller's trace owns them) and carry a *link* to the span of
  the call that started the operation (``submit``, ``submit_many``, ``wait_for``, ``resume``); ``op.refresh()``
  reads in the caller's trace, with the same link;
* span events ``billkit.retry`` (an attempt failed and is sent again) and ``billkit.rate_limited`` (the
  provider answered 429 or its own rate-limit error) on the span whose call sent the request;
* metrics ``billkit.operations.pending`` (observable up-down counter), ``billkit.status_reads`` and
  ``billkit.retries`` (counters).

Attributes live in the ``billkit.`` namespace (``billkit.provider``, ``billkit.operation.kind``,
``billkit.operation.id``, ``billkit.attempt``, ``billkit.outcome``, ...) next to the standard ``error.type`` and
``http.request.method``. They hold ids, statuses, counts and error class names: never a credential, header,
body or bill content. HTTP spans are the httpx instrumentation's (``HTTPXClientInstrumentor``) when the
application enables it; they nest under billkit's spans.
"""

from __future__ import annotations

import sys
import threading
import time
import weakref
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from opentelemetry.metrics import CallbackOptions, Counter, MeterProvider, Observation
    from opentelemetry.trace import Span, SpanContext, Tracer, TracerProvider

    from billkit.errors import BillkitError
    from billkit.operations import PollResult, Scheduler, _Core

__all__ = ["configure", "is_active", "reset"]

_SCOPE = "billkit"
_VERSION = "0.1.0"


class _Telemetry:
    """The tracer and the instruments, made once when billkit finds OpenTelemetry set up."""

    def __init__(self, tracer_provider: TracerProvider | None, meter_provider: MeterProvider | None) -> None:
        from opentelemetry import metrics, trace

        self.tracer: Tracer = (
            tracer_provider.get_tracer(_SCOPE, _VERSION)
            if tracer_provider is not None
            else trace.get_tracer(_SCOPE, _VERSION)
        )
        meter = (
            meter_provider.get_meter(_SCOPE, _VERSION)
            if meter_provider is not None
            else metrics.get_meter(_SCOPE, _VERSION)
        )
        self.status_reads: Counter = meter.create_counter(
            "billkit.status_reads", unit="{read}", description="Status reads of pending operations"
        )
        self.retries: Counter = meter.create_counter(
            "billkit.retries", unit="{retry}", description="HTTP attempts that failed and were sent again"
        )
        meter.create_observable_up_down_counter(
            "billkit.operations.pending",
            callbacks=[_observe_pending],
            unit="{operation}",
            description="Operations not yet finished, per provider (a bulk of single operations counts each)",
        )


_telemetry: _Telemetry | None = None
_next_look = 0.0  # while off with opentelemetry imported: when to look for a global provider again
_LOOK_EVERY = 1.0  # seconds; looking costs ~2 us (the API reads the environment), a monotonic clock ~50 ns
_lock = threading.Lock()
_schedulers: weakref.WeakSet[Scheduler] = weakref.WeakSet()


def _current() -> _Telemetry | None:
    """The telemetry in force, or None: the check every hook makes first, kept cheap."""
    telemetry = _telemetry
    if telemetry is not None:
        return telemetry
    if "opentelemetry" not in sys.modules:  # nobody imported it: nothing can have been set up
        return None
    global _next_look
    now = time.monotonic()
    if now < _next_look:
        return None
    _next_look = now + _LOOK_EVERY
    return _discover()


def _discover() -> _Telemetry | None:
    """Activate when the application set a global tracer or meter provider (checked until it does)."""
    global _telemetry
    trace = sys.modules.get("opentelemetry.trace")
    metrics = sys.modules.get("opentelemetry.metrics")
    traced = trace is not None and not isinstance(
        trace.get_tracer_provider(), (trace.ProxyTracerProvider, trace.NoOpTracerProvider)
    )
    metered = metrics is not None and type(metrics.get_meter_provider()).__name__ not in (
        "_ProxyMeterProvider",
        "NoOpMeterProvider",
    )
    if not (traced or metered):
        return None
    with _lock:
        if _telemetry is None:
            _telemetry = _Telemetry(None, None)  # the global getters follow a provider set later
        return _telemetry


def configure(*, tracer_provider: TracerProvider | None = None, meter_provider: MeterProvider | None = None) -> None:
    """Record billkit's spans and metrics with these providers (None: the global one) from now on, whether or
    not a global provider is set. For applications that keep their providers local, and for tests."""
    global _telemetry
    with _lock:
        _telemetry = _Telemetry(tracer_provider, meter_provider)


def reset() -> None:
    """Forget :func:`configure` and the providers found: back to finding a global provider on the next call."""
    global _telemetry, _next_look
    with _lock:
        _telemetry = None
        _next_look = 0.0


def is_active() -> bool:
    """Whether billkit records spans and metrics now (looking for a global provider at once)."""
    if _telemetry is not None:
        return True
    return "opentelemetry" in sys.modules and _discover() is not None


# -- hooks called by the clients, the transport and the scheduler ------------------------------------------------
class _Off:
    """What every hook returns when telemetry is off: a context manager whose methods do nothing."""

    __slots__ = ()

    def __enter__(self) -> _Off:
        return self

    def __exit__(self, *exc: object) -> None:
        return None

    def operation(self, core: _Core) -> None:
        return None

    def set(self, key: str, value: str | int) -> None:
        return None

    def read_ended(self, core: _Core, outcome: PollResult | BaseException) -> None:
        return None


OFF = _Off()


class _Call:
    """The span of one public call: ``billkit.outcome`` and the error class are set when it ends."""

    __slots__ = ("_cm", "_ended", "span")

    def __init__(self, tracer: Tracer, name: str, attributes: dict[str, str | int], **kwargs: Any) -> None:
        self._cm = tracer.start_as_current_span(
            name, attributes=attributes, record_exception=False, set_status_on_exception=False, **kwargs
        )
        self._ended = False  # the outcome is set (a status read's, by read_ended)

    def __enter__(self) -> _Call:
        self.span: Span = self._cm.__enter__()
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: Any) -> None:
        span = self.span
        if exc is not None:
            _failed(span, exc)
        elif not self._ended:
            span.set_attribute("billkit.outcome", "ok")
        self._cm.__exit__(kind, exc, tb)

    def operation(self, core: _Core) -> None:
        span = self.span
        if span.is_recording():
            span.set_attribute("billkit.operation.kind", core.kind)
            span.set_attribute("billkit.operation.id", core.id)
            if core.status is not None:
                span.set_attribute("billkit.status", core.status.value)
            if core.total is not None:
                span.set_attribute("billkit.operation.total", core.total)

    def set(self, key: str, value: str | int) -> None:
        self.span.set_attribute(key, value)

    def read_ended(self, core: _Core, outcome: PollResult | BaseException) -> None:
        """Record how a status read ended: the operation's state after it, or ``retry`` (a transient error: the
        operation is read again later) or ``error``."""
        from billkit.errors import BillkitError
        from billkit.transport import is_transient

        telemetry = _telemetry
        self._ended = True
        if isinstance(outcome, BaseException):
            if core.done:
                result = core.state.value
            elif isinstance(outcome, BillkitError) and is_transient(None, outcome):
                result = "retry"
            else:
                result = "error"
            _failed(self.span, outcome, outcome=result)
        else:
            result = core.state.value
            self.span.set_attribute("billkit.outcome", result)
            if outcome.status is not None:
                self.span.set_attribute("billkit.status", outcome.status.value)
        if telemetry is not None:
            telemetry.status_reads.add(
                1, {"billkit.provider": core.provider, "billkit.operation.kind": core.kind, "billkit.outcome": result}
            )


def _failed(span: Span, exc: BaseException, *, outcome: str | None = None) -> None:
    if not span.is_recording():
        return
    from opentelemetry.trace import Status, StatusCode

    cancelled = not isinstance(exc, Exception)  # a cancelled task or thread, KeyboardInterrupt
    span.set_attribute("billkit.outcome", outcome or ("cancelled" if cancelled else "error"))
    span.set_attribute("error.type", type(exc).__name__)
    if not cancelled:
        # billkit's messages hold ids and statuses, never credentials (they never leave the client's config)
        span.record_exception(exc)
        span.set_status(Status(StatusCode.ERROR, type(exc).__name__))


def call(provider: str, method: str) -> _Call | _Off:
    """``with tracing.call(provider, "create") as span:`` around one public call."""
    telemetry = _telemetry if _telemetry is not None else _current()
    if telemetry is None:
        return OFF
    return _Call(telemetry.tracer, f"billkit.{provider}.{method}", {"billkit.provider": provider})


def link() -> SpanContext | None:
    """The context of the span in force, to be linked from the status reads of an operation started now."""
    if (_telemetry if _telemetry is not None else _current()) is None:
        return None
    from opentelemetry import trace

    context = trace.get_current_span().get_span_context()
    return context if context.is_valid else None


def traceparent(context: SpanContext) -> str:
    """``context`` as a W3C ``traceparent`` (what a resume token keeps of the span that started an operation)."""
    return f"00-{context.trace_id:032x}-{context.span_id:016x}-{int(context.trace_flags):02x}"


def from_traceparent(value: str) -> SpanContext | None:
    """The remote span context a resume token's ``traceparent`` names (checked by the token's decoder); None when
    billkit's telemetry is off."""
    if (_telemetry if _telemetry is not None else _current()) is None:
        return None
    from opentelemetry.trace import SpanContext, TraceFlags

    _, trace_id, span_id, flags = value.split("-")
    return SpanContext(int(trace_id, 16), int(span_id, 16), is_remote=True, trace_flags=TraceFlags(int(flags, 16)))


def status_read(core: _Core, *, background: bool) -> _Call | _Off:
    """The span of one status read of ``core``; ``background``: the poller's (a trace of its own)."""
    telemetry = _telemetry if _telemetry is not None else _current()
    if telemetry is None:
        return OFF
    from opentelemetry import context as otel_context
    from opentelemetry.trace import Link

    links = [Link(core.link)] if core.link is not None else None
    return _Call(
        telemetry.tracer,
        f"billkit.{core.provider}.status_read",
        {
            "billkit.provider": core.provider,
            "billkit.operation.kind": core.kind,
            "billkit.operation.id": core.id,
            "billkit.attempt": core.polls,
        },
        links=links,
        context=otel_context.Context() if background else None,
    )


def attempt_failed(
    provider: str, method: str, path: str, attempt: int, error: BillkitError, retry_in: float | None
) -> None:
    """An HTTP attempt failed: an event on the span in force (``billkit.retry`` when it is sent again after
    ``retry_in`` seconds, ``billkit.rate_limited`` when the provider limited the rate) and the retry counter.
    ``path`` is the request's template (ids are not in it)."""
    telemetry = _telemetry if _telemetry is not None else _current()
    if telemetry is None:
        return
    from opentelemetry import trace

    from billkit.errors import RateLimitError

    span = trace.get_current_span()
    kind = type(error).__name__
    status = getattr(error, "status_code", None)
    attributes: dict[str, str | int | float] = {
        "billkit.provider": provider,
        "billkit.attempt": attempt,
        "http.request.method": method,
        "url.template": path,
        "error.type": kind,
    }
    if isinstance(status, int):
        attributes["http.response.status_code"] = status
    if isinstance(error, RateLimitError) or status == 429:
        limited = dict(attributes)
        retry_after = getattr(error, "retry_after", None)
        if isinstance(retry_after, (int, float)):
            limited["billkit.retry_after"] = float(retry_after)
        span.add_event("billkit.rate_limited", limited)
    if retry_in is not None:
        span.add_event("billkit.retry", {**attributes, "billkit.retry.delay": retry_in})
        telemetry.retries.add(1, {"billkit.provider": provider, "http.request.method": method, "error.type": kind})


def track(scheduler: Scheduler) -> None:
    """Count ``scheduler``'s pending operations in ``billkit.operations.pending`` (held weakly)."""
    with _lock:
        _schedulers.add(scheduler)


def _observe_pending(options: CallbackOptions) -> Iterable[Observation]:
    from opentelemetry.metrics import Observation

    with _lock:
        schedulers = list(_schedulers)
    counts: dict[str, int] = {}
    for scheduler in schedulers:
        if not scheduler.closed:
            counts[scheduler.provider] = counts.get(scheduler.provider, 0) + scheduler.pending_count
    return [Observation(count, {"billkit.provider": provider}) for provider, count in sorted(counts.items())]

"""The provider-agnostic clients (:class:`AsyncClient`, :class:`Client`) and the adapter protocol.

An adapter (``billkit.providers.<name>.client``) subclasses :class:`Adapter`: it declares its credentials,
base URL, capabilities and error parser, and implements create / submit / submit_many / get / poll with the
shared :class:`~billkit.transport.Transport`. The clients here do everything else once: configuration,
credentials from the environment, sandboxes, operations, tokens, webhooks and the blocking twin.
"""

from __future__ import annotations

import hmac
import importlib
import os
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar, TypeVar

import httpx

from billkit.clock import Clock, SystemClock
from billkit.errors import (
    BillkitError,
    ConfigurationError,
    OperationFailed,
    TokenError,
    UnsupportedFeatureError,
)
from billkit.models import Bill, BillStatus, BulkResult
from billkit.operations import (
    PORTAL,
    BlockingBulkOperation,
    BlockingOperation,
    BulkOperation,
    Operation,
    PollPolicy,
    PollResult,
    Scheduler,
    Started,
    _Core,
    decode_token,
)
from billkit.transport import Response, RetryPolicy, Timeouts, Transport

if TYPE_CHECKING:
    import anyio.from_thread

    from billkit.sandboxing import Faults, Sandbox

__all__ = ["PROVIDERS", "Adapter", "AdapterContext", "AsyncClient", "Capabilities", "Client", "Credential", "Secret"]

T = TypeVar("T")

#: provider name -> "module:AdapterClass"; imported on first use so importing billkit stays light.
PROVIDERS: dict[str, str] = {
    "accepteasy": "billkit.providers.accepteasy.client:AcceptEasyAdapter",
    "billcom": "billkit.providers.billcom.client:BillcomAdapter",
    "facturapi": "billkit.providers.facturapi.client:FacturapiAdapter",
}
_ALIASES = {"bill": "billcom", "bill.com": "billcom"}


@dataclass(frozen=True)
class Credential:
    """One credential an adapter needs: its keyword argument, its environment variable, and if secret."""

    name: str
    env: str
    secret: bool = True
    required: bool = True


@dataclass(frozen=True)
class Capabilities:
    """What a provider supports, so callers can branch without try/except."""

    provider: str
    directions: frozenset[str]
    currencies: frozenset[str] | None  # None: any ISO 4217 currency
    async_create: bool
    native_bulk: bool
    bulk_all_or_nothing: bool
    max_bulk_size: int | None
    idempotency: bool
    webhooks: bool
    remote_cancel: bool
    notes: tuple[str, ...] = ()


class Secret:
    """A credential value that never shows itself: ``repr`` and ``str`` are masked; ``get_secret_value()`` gives it.

    billkit's own small type rather than pydantic's ``SecretStr`` (same method name), so that importing billkit
    does not load pydantic's constrained types.
    """

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def get_secret_value(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return "Secret('**********')"

    def __str__(self) -> str:
        return "**********"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and hmac.compare_digest(self._value, other._value)

    def __hash__(self) -> int:
        return hash(self._value)

    def __reduce__(self) -> Any:
        raise TypeError("a billkit Secret is not picklable")


@dataclass
class AdapterContext:
    """What an adapter gets from the client: the transport, the clock, the credentials, the policies."""

    provider: str
    transport: Transport
    clock: Clock
    credentials: Mapping[str, Secret | str | None]
    poll: PollPolicy
    sandbox: Sandbox | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def secret(self, name: str) -> str:
        """The plain value of a credential (only adapters call this, to build auth headers)."""
        value = self.credentials.get(name)
        if value is None:
            return ""
        return value.get_secret_value() if isinstance(value, Secret) else value

    def __repr__(self) -> str:
        return f"AdapterContext(provider={self.provider!r}, credentials=[redacted])"


class Adapter(ABC):
    """The provider protocol: what one provider supplies. Translates; does not re-implement machinery."""

    name: ClassVar[str]
    credentials: ClassVar[tuple[Credential, ...]]
    default_base_url: ClassVar[str]
    request_id_header: ClassVar[str | None] = None
    max_in_flight: ClassVar[int | None] = None
    capabilities: ClassVar[Capabilities]

    def __init__(self, ctx: AdapterContext) -> None:
        self.ctx = ctx

    def __repr__(self) -> str:
        return f"{type(self).__name__}(base_url={self.ctx.transport.base_url!r})"

    # -- configuration ---------------------------------------------------------------------------------
    @classmethod
    def auth_headers(cls, ctx_credentials: Mapping[str, Secret | str | None]) -> dict[str, str]:
        """Static headers that authenticate every request (Bearer, Basic). Session auth returns {}."""
        return {}

    @classmethod
    @abstractmethod
    def parse_error(cls, response: Response) -> BillkitError:
        """Turn an error response into a typed APIError (provider, status, code, message, request id)."""

    @classmethod
    @abstractmethod
    def make_sandbox(cls, clock: Clock | None = None, faults: Faults | None = None) -> Sandbox:
        """A fresh in-process sandbox of this provider."""

    # -- the common operations -------------------------------------------------------------------------
    @abstractmethod
    async def create(self, bill: Bill) -> Bill:
        """One request; the provider's answer as a Bill (possibly PENDING)."""

    @abstractmethod
    async def submit(self, bill: Bill) -> Started:
        """Start work the provider finishes later; the operation is then polled with :meth:`poll`."""

    @abstractmethod
    async def submit_many(self, bills: Sequence[Bill]) -> Started | Sequence[Started | BillkitError]:
        """A native bulk (one Started) or one Started / error per input (composed into one BulkOperation)."""

    @abstractmethod
    async def get(self, provider_id: str) -> Bill:
        """Read one bill."""

    @abstractmethod
    async def poll(self, kind: str, state: Mapping[str, Any]) -> PollResult:
        """One status read of an operation of this adapter's ``kind`` with its token ``state``."""

    async def poll_many(self, items: Sequence[tuple[str, Mapping[str, Any]]]) -> Sequence[PollResult] | None:
        """Answer many operations with one read when the provider can; ``None`` means poll one by one."""
        return None

    def webhook_updates(self, event: Any) -> list[tuple[str, PollResult]]:
        """The operations a verified webhook event finishes or advances: ``(operation id, result)`` pairs."""
        raise UnsupportedFeatureError(self.name, "webhooks")

    def verify_webhook(self, body: bytes, headers: Mapping[str, str], secret: str) -> Any:
        """Verify and parse a webhook request; raise WebhookVerificationError when it does not verify."""
        raise UnsupportedFeatureError(self.name, "webhooks")

    @property
    def native(self) -> Any:
        """The provider's own typed client."""
        raise UnsupportedFeatureError(self.name, "native client")

    async def aclose(self) -> None:
        """Release provider resources (BILL logs out)."""


def adapter_class(provider: str) -> type[Adapter]:
    """The adapter class registered for ``provider`` (imported lazily)."""
    key = _ALIASES.get(provider.lower(), provider.lower())
    target = PROVIDERS.get(key)
    if target is None:
        known = ", ".join(sorted(PROVIDERS))
        raise ConfigurationError(f"unknown provider {provider!r}; billkit knows {known}")
    module, _, attr = target.partition(":")
    try:
        imported = importlib.import_module(module)
    except ModuleNotFoundError as exc:
        if exc.name is None or not module.startswith(exc.name):
            raise
        raise ConfigurationError(f"the {key} adapter is not part of this billkit build", provider=key) from None
    cls: type[Adapter] = getattr(imported, attr)
    return cls


_UNSET: Any = object()


class AsyncClient:
    """One provider behind the common model. Use ``async with`` so connections and sessions are closed.

    ``AsyncClient("facturapi", api_key=...)``; credentials fall back to environment variables
    (``FACTURAPI_API_KEY``, ...). ``sandbox=True`` runs on a fresh in-process sandbox on virtual time
    (no credentials needed); pass a ``billkit.testing.sandbox(...)`` object to share one.
    """

    def __init__(
        self,
        provider: str,
        *,
        base_url: str | None = None,
        timeout: float | Timeouts | None = None,
        retry: RetryPolicy | None = None,
        poll: PollPolicy | None = None,
        http_client: httpx.AsyncClient | httpx.Client | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
        sandbox: bool | Sandbox | None = None,
        clock: Clock | None = None,
        **credentials: str | None,
    ) -> None:
        cls = adapter_class(provider)
        self._adapter_cls = cls
        self.provider = cls.name
        box: Sandbox | None = None
        if sandbox is True:
            box = cls.make_sandbox(clock=clock)
        elif sandbox not in (None, False):
            box = sandbox  # type: ignore[assignment]
        if box is not None and box.provider != cls.name:
            raise ConfigurationError(f"sandbox is for {box.provider!r}, not {cls.name!r}")
        self.sandbox: Sandbox | None = box
        self.clock: Clock = clock or (box.clock if box is not None else SystemClock())
        creds = self._credentials(cls, credentials, box)
        timeouts = timeout if isinstance(timeout, Timeouts) else Timeouts() if timeout is None else Timeouts(
            connect=min(5.0, timeout), read=timeout, write=timeout, pool=timeout)  # fmt: skip
        self.retry = retry or RetryPolicy()
        self.poll_policy = poll or PollPolicy()
        self._owns_http = http_client is None
        if isinstance(http_client, httpx.Client):
            http: httpx.AsyncClient = httpx.AsyncClient(transport=_SyncClientTransport(http_client))
            self._owns_http = True
        elif http_client is not None:
            http = http_client
        else:
            if transport is None and box is not None:
                transport = box
            http = httpx.AsyncClient(transport=transport, timeout=timeouts.to_httpx(), follow_redirects=False)
        url = base_url or (box.base_url if box is not None else None) or os.environ.get(
            f"{cls.name.upper()}_BASE_URL") or cls.default_base_url  # fmt: skip
        self._transport = Transport(
            provider=cls.name,
            base_url=url,
            error_parser=cls.parse_error,  # type: ignore[arg-type]
            http_client=http,
            retry=self.retry,
            clock=self.clock,
            default_headers={
                "user-agent": "billkit/0.1",
                "accept": "application/json",
                **cls.auth_headers(creds),
            },
            request_id_header=cls.request_id_header,
            max_in_flight=cls.max_in_flight,
        )
        self._ctx = AdapterContext(cls.name, self._transport, self.clock, creds, self.poll_policy, box)
        self._adapter = cls(self._ctx)
        self._scheduler = self._new_scheduler(self.poll_policy)
        self._closed = False

    def _new_scheduler(self, policy: PollPolicy) -> Scheduler:
        read_transport = self._transport.with_retry(policy.read_retry)
        ctx = AdapterContext(self.provider, read_transport, self.clock, self._ctx.credentials, policy, self.sandbox,
                             self._ctx.extra)  # fmt: skip
        reader = type(self._adapter)(ctx) if self._shares_state_safely() else self._adapter
        return Scheduler(provider=self.provider, poll=self._make_poll(reader), clock=self.clock, policy=policy,
                         batch_poll=reader.poll_many)  # fmt: skip

    def _shares_state_safely(self) -> bool:
        # adapters with session state (BILL) must poll through the same instance so one session is shared
        return not getattr(self._adapter_cls, "stateful", False)

    def _make_poll(self, reader: Adapter) -> Callable[[str, Mapping[str, Any]], Any]:
        async def poll(kind: str, state: Mapping[str, Any]) -> PollResult:
            if kind == "watch":
                return await self._poll_watch(reader, state)
            return await reader.poll(kind, state)

        return poll

    async def _poll_watch(self, reader: Adapter, state: Mapping[str, Any]) -> PollResult:
        bill = await reader.get(str(state["id"]))
        until = {BillStatus(s) for s in state["until"]}
        if bill.status in until:
            return PollResult(status=bill.status, provider_status=bill.provider_status, done=True, value=bill)
        if bill.status is not None and bill.status.is_final:
            err = OperationFailed(
                f"bill {bill.provider_id} reached {bill.status.value} and can no longer reach "
                f"{sorted(s.value for s in until)}", provider=self.provider, status=bill.status.value,
                provider_status=bill.provider_status, operation_id=bill.provider_id)  # fmt: skip
            return PollResult(status=bill.status, provider_status=bill.provider_status, done=True, error=err)
        return PollResult(status=bill.status, provider_status=bill.provider_status)

    @staticmethod
    def _credentials(
        cls: type[Adapter], given: Mapping[str, str | None], box: Sandbox | None
    ) -> dict[str, Secret | str | None]:
        names = {c.name for c in cls.credentials}
        unknown = sorted(set(given) - names)
        if unknown:
            raise ConfigurationError(
                f"{cls.name} does not take {', '.join(unknown)}; its credentials are {', '.join(sorted(names))}"
            )
        out: dict[str, Secret | str | None] = {}
        missing = []
        defaults = box.credentials if box is not None else {}
        for cred in cls.credentials:
            value = given.get(cred.name) or os.environ.get(cred.env) if box is None else (
                given.get(cred.name) or defaults.get(cred.name))  # fmt: skip
            if not value and cred.required:
                missing.append(f"{cred.name} (or the environment variable {cred.env})")
            out[cred.name] = Secret(value) if (cred.secret and value) else value
        if missing:
            raise ConfigurationError(f"{cls.name} needs {', '.join(missing)}", provider=cls.name)
        return out

    def __repr__(self) -> str:
        mode = "sandbox" if self.sandbox is not None else self._transport.base_url
        return f"<billkit.AsyncClient {self.provider} {mode}>"

    # -- lifecycle -------------------------------------------------------------------------------------
    async def __aenter__(self) -> AsyncClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Log out where the provider has sessions, and close the HTTP client if billkit created it."""
        if self._closed:
            return
        self._closed = True
        try:
            await self._adapter.aclose()
        finally:
            if self._owns_http:
                await self._transport.http.aclose()

    def with_options(self, *, retry: RetryPolicy | None = None, poll: PollPolicy | None = None) -> AsyncClient:
        """A copy with other policies that shares the connection pool, session and sandbox (close the original)."""
        twin = object.__new__(AsyncClient)
        twin.__dict__.update(self.__dict__)
        twin._owns_http = False
        twin.retry = retry or self.retry
        twin.poll_policy = poll or self.poll_policy
        twin._transport = self._transport.with_retry(twin.retry)
        twin._ctx = AdapterContext(self.provider, twin._transport, self.clock, self._ctx.credentials, twin.poll_policy,
                                   self.sandbox, self._ctx.extra)  # fmt: skip
        twin._adapter = self._adapter if not self._shares_state_safely() else self._adapter_cls(twin._ctx)
        twin._scheduler = twin._new_scheduler(twin.poll_policy) if poll is not None else self._scheduler
        return twin

    # -- the common surface ----------------------------------------------------------------------------
    @property
    def capabilities(self) -> Capabilities:
        return self._adapter_cls.capabilities

    @property
    def native(self) -> Any:
        """The provider's own typed client (cancel, downloads, search, vendors, ...)."""
        return self._adapter.native

    @property
    def requests_made(self) -> int:
        """HTTP requests sent by this client so far, retries included."""
        return self._transport.stats.requests

    @property
    def scheduler(self) -> Scheduler:
        return self._scheduler

    async def create(self, bill: Bill) -> Bill:
        """Create ``bill`` with one request; the answer may be PENDING."""
        return await self._adapter.create(bill)

    async def get(self, provider_id: str) -> Bill:
        return await self._adapter.get(provider_id)

    async def submit(self, bill: Bill, *, deadline: float | None = None) -> Operation[Bill]:
        """Start creating ``bill``; the operation resolves when the provider is done with it."""
        started = await self._adapter.submit(bill)
        return Operation(self._start(started, deadline))

    async def submit_and_wait(self, bill: Bill, *, timeout: float | None = None) -> Bill:
        """``await (await client.submit(bill))`` with ``timeout`` as the operation's deadline."""
        op = await self.submit(bill, deadline=timeout)
        return await op

    async def submit_many(
        self,
        bills: Sequence[Bill],
        *,
        deadline: float | None = None,
        on_progress: Callable[[int, int], None] | None = None,
    ) -> BulkOperation:
        """Submit many bills; ``await`` the operation for a BulkResult with one item per input, in order."""
        bills = list(bills)
        if not bills:
            raise BillkitError("submit_many needs at least one bill", provider=self.provider)
        started = await self._adapter.submit_many(bills)
        if isinstance(started, Started):
            core = self._start(started, deadline, total=len(bills))
        else:
            children: list[_Core | BillkitError] = [
                s if isinstance(s, BillkitError) else self._start(s, deadline) for s in started
            ]
            if len(children) != len(bills):
                raise AssertionError("adapter returned a result count different from the input count")
            core = self._scheduler.composite(_bulk_id(children), children, deadline)
        if on_progress is not None:
            core.listeners.append(lambda c: on_progress(*(c.progress or (0, len(bills)))))
            if core.done:  # already finished (BILL's synchronous bulk): report once
                on_progress(len(bills), len(bills))
        return BulkOperation(core)

    def _start(self, started: Started, deadline: float | None, total: int | None = None) -> _Core:
        core = self._scheduler.new_core(started.kind, started.id, started.state, deadline)
        core.total = started.total or total
        self._scheduler.start(core, started.first)
        return core

    async def wait_for(
        self, provider_id: str, *, until: Sequence[BillStatus] | BillStatus = BillStatus.PAID,
        deadline: float | None = None,
    ) -> Operation[Bill]:  # fmt: skip
        """An operation over an existing bill that resolves when it reaches one of ``until``.

        A bill that reaches another final status (VOID, FAILED, or PAID when not awaited) fails the operation.
        """
        wanted = [until] if isinstance(until, BillStatus) else list(until)
        if not wanted:
            raise BillkitError("wait_for needs at least one status", provider=self.provider)
        state = {"id": provider_id, "until": [s.value for s in wanted]}
        core = self._scheduler.new_core("watch", provider_id, state, deadline)
        self._scheduler.start(core)
        return Operation(core)

    async def resume(self, token: str, *, deadline: float | None = None) -> Operation[Any]:
        """Rebuild an operation from its token (in this or another process) with a fresh deadline."""
        body = decode_token(token, provider=self.provider)
        return self._resume_body(body, deadline)

    def _resume_body(self, body: Mapping[str, Any], deadline: float | None) -> Operation[Any]:
        kind, state = body["kind"], body["state"]
        if kind == "composite":
            items = state.get("items")
            if not isinstance(items, list):
                raise TokenError("composite token without items")
            children: list[_Core | BillkitError] = []
            for item in items:
                if "error" in item:
                    err = item["error"]
                    children.append(OperationFailed(str(err.get("message")), provider=self.provider))
                else:
                    child = self._scheduler.new_core(item["kind"], item["id"], item["state"], deadline)
                    self._scheduler.start(child)
                    children.append(child)
            return BulkOperation(self._scheduler.composite(body["id"], children, deadline))
        core = self._scheduler.new_core(kind, body["id"], state, deadline)
        self._scheduler.start(core)
        if kind.startswith("bulk"):
            return BulkOperation(core)
        return Operation(core)

    # -- webhooks ----------------------------------------------------------------------------------------
    def verify_webhook(self, body: bytes, headers: Mapping[str, str], secret: str) -> Any:
        """Verify a webhook request (raises WebhookVerificationError) and return the typed event."""
        return self._adapter.verify_webhook(body, headers, secret)

    def handle_webhook_event(self, event: Any) -> int:
        """Hand a *verified* event to the pending operations; returns how many it finished or advanced."""
        matched = 0
        for op_id, result in self._adapter.webhook_updates(event):
            matched += self._scheduler.complete(op_id, result)
        return matched


def _bulk_id(children: Sequence[_Core | BillkitError]) -> str:
    ids = [c.id for c in children if isinstance(c, _Core)]
    return "bulk:" + (ids[0] if ids else "failed") + f":{len(children)}"


class _SyncClientTransport(httpx.AsyncBaseTransport):
    """Lets a caller's ``httpx.Client`` serve the async core (each request runs in a worker thread)."""

    def __init__(self, client: httpx.Client) -> None:
        self._client = client

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        body = await request.aread()
        sync_request = self._client.build_request(request.method, request.url, headers=request.headers, content=body)
        import anyio.to_thread  # only for a blocking httpx.Client handed to the async client

        response = await anyio.to_thread.run_sync(lambda: self._client.send(sync_request))
        return httpx.Response(response.status_code, headers=response.headers, content=response.content)


class Client:
    """The blocking twin of :class:`AsyncClient`: the same core, driven from a shared event-loop thread.

    ``with billkit.Client("accepteasy", key_name=..., key=...) as client: client.submit(bill).result()``
    """

    def __init__(self, provider: str, **kwargs: Any) -> None:
        self._portal = PORTAL.acquire()
        try:
            self._async: AsyncClient = self._portal.call(lambda: _build(provider, kwargs))
        except BaseException:
            PORTAL.release()
            raise
        self.provider = self._async.provider
        self._closed = False

    def __repr__(self) -> str:
        return repr(self._async).replace("AsyncClient", "Client")

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        try:
            self._portal.call(self._async.aclose)
        finally:
            PORTAL.release()

    @property
    def async_client(self) -> AsyncClient:
        return self._async

    @property
    def sandbox(self) -> Sandbox | None:
        return self._async.sandbox

    @property
    def capabilities(self) -> Capabilities:
        return self._async.capabilities

    @property
    def native(self) -> Any:
        """The provider's native client, with blocking methods."""
        return _BlockingProxy(self._async.native, self._portal)

    @property
    def requests_made(self) -> int:
        return self._async.requests_made

    def create(self, bill: Bill) -> Bill:
        return self._portal.call(self._async.create, bill)

    def get(self, provider_id: str) -> Bill:
        return self._portal.call(self._async.get, provider_id)

    def submit(self, bill: Bill, *, deadline: float | None = None) -> BlockingOperation[Bill]:
        op = self._portal.call(lambda: self._async.submit(bill, deadline=deadline))
        return BlockingOperation(op, self._portal)

    def submit_and_wait(self, bill: Bill, *, timeout: float | None = None) -> Bill:
        return self._portal.call(lambda: self._async.submit_and_wait(bill, timeout=timeout))

    def submit_many(
        self, bills: Sequence[Bill], *, deadline: float | None = None,
        on_progress: Callable[[int, int], None] | None = None,
    ) -> BlockingBulkOperation:  # fmt: skip
        op = self._portal.call(lambda: self._async.submit_many(bills, deadline=deadline, on_progress=on_progress))
        return BlockingBulkOperation(op, self._portal)

    def wait_for(
        self, provider_id: str, *, until: Sequence[BillStatus] | BillStatus = BillStatus.PAID,
        deadline: float | None = None,
    ) -> BlockingOperation[Bill]:  # fmt: skip
        op = self._portal.call(lambda: self._async.wait_for(provider_id, until=until, deadline=deadline))
        return BlockingOperation(op, self._portal)

    def resume(self, token: str, *, deadline: float | None = None) -> BlockingOperation[Any]:
        op = self._portal.call(lambda: self._async.resume(token, deadline=deadline))
        if isinstance(op, BulkOperation):
            return BlockingBulkOperation(op, self._portal)
        return BlockingOperation(op, self._portal)

    def verify_webhook(self, body: bytes, headers: Mapping[str, str], secret: str) -> Any:
        return self._async.verify_webhook(body, headers, secret)

    def handle_webhook_event(self, event: Any) -> int:
        return self._portal.call(lambda: _sync_value(self._async.handle_webhook_event(event)))


async def _build(provider: str, kwargs: Mapping[str, Any]) -> AsyncClient:
    return AsyncClient(provider, **kwargs)


async def _sync_value(value: T) -> T:
    return value


class _BlockingProxy:
    """Wraps a native async client so each coroutine method blocks (iterators are drained to lists)."""

    def __init__(self, target: Any, portal: anyio.from_thread.BlockingPortal) -> None:
        self._target = target
        self._portal = portal

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self._target, name)
        if not callable(attr):
            return attr

        def call(*args: Any, **kwargs: Any) -> Any:
            async def run() -> Any:
                result = attr(*args, **kwargs)
                if hasattr(result, "__aiter__"):
                    return [item async for item in result]
                if hasattr(result, "__await__"):
                    return await result
                return result

            return self._portal.call(run)

        return call

    def __repr__(self) -> str:
        return f"<blocking {self._target!r}>"


__all__ += ["BulkResult", "adapter_class"]
_ = _UNSET

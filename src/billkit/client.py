"""The provider-agnostic clients (:class:`AsyncClient`, :class:`Client`) and the adapter protocol.

An adapter (``billkit.providers.<name>.client``) subclasses :class:`Adapter`: it declares its credentials, base URL,
capabilities and error parser, and writes create / submit / submit_many / get / poll as **flows** (see
:mod:`billkit.flows`) over the shared :class:`~billkit.transport.Transport`. Each flow is written once; the two
clients here only run it:

* :class:`AsyncClient` runs flows on ``httpx.AsyncClient`` and polls with an :class:`~billkit.operations.AsyncPoller`
  (a background task);
* :class:`Client` runs them on ``httpx.Client`` in the calling thread and polls with a
  :class:`~billkit.operations.ThreadPoller` (a background thread). No event loop, no portal thread; safe to share
  between threads and to keep across ``fork()``.

What both do once, in :class:`_Base`: configuration, credentials from the environment, sandboxes, composing bulks,
tokens, ``wait_for`` and webhooks.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import datetime as dt
import hmac
import importlib
import logging
import os
import threading
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any, ClassVar, Generic, Literal, TypedDict, cast

import httpx
import pydantic
from typing_extensions import Self, TypeVar, Unpack, overload

from billkit import tracing
from billkit.clock import Clock, SystemClock
from billkit.errors import (
    BillkitError,
    ClientClosedError,
    ConfigurationError,
    OperationFailed,
    Problem,
    TokenError,
    UnsupportedFeatureError,
    ValidationError,
    WebhookVerificationError,
)
from billkit.flows import AsyncIO, AsyncMode, CallOptions, Flow, Lane, Native, Seen, SyncIO, SyncMode, on_fork
from billkit.httpstack import SandboxBridge, Stack, StackName, choose
from billkit.models import Bill, BillStatus, BulkResult, Party, Payment
from billkit.money import Money
from billkit.operations import (
    AsyncPoller,
    BlockingBulkOperation,
    BlockingOperation,
    BulkOperation,
    Operation,
    PollPolicy,
    PollResult,
    Scheduler,
    Started,
    ThreadPoller,
    _Core,
)
from billkit.responses import BILLKIT_HEADERS, RawResponse, ResponseInfo, attach, attached, infos, is_auth_header
from billkit.tokens import TokenKey, TokenState, check_state, decode_token, token_key
from billkit.transport import DEFAULT_MAX_RESPONSE_BYTES, Response, RetryPolicy, Timeouts, Transport

logger = logging.getLogger("billkit")

if TYPE_CHECKING:
    # types only (no import at run time): the static twin of PROVIDERS, for the per-provider overloads below
    # the httpx2 stack's types (an optional extra: without it these read as Any to a type checker)
    import httpx2

    from billkit.providers.accepteasy.client import AcceptEasyNative
    from billkit.providers.accepteasy.webhooks import WebhookEvent as AcceptEasyEvent
    from billkit.providers.billcom.client import BillcomNative
    from billkit.providers.billcom.webhooks import WebhookEvent as BillcomEvent
    from billkit.providers.facturapi.client import FacturapiNative
    from billkit.providers.facturapi.wire import WebhookEvent as FacturapiEvent
    from billkit.sandboxing import Faults, Sandbox

__all__ = [
    "PROVIDERS",
    "Adapter",
    "AdapterContext",
    "AsyncClient",
    "AsyncClientOptions",
    "BulkResult",
    "Capabilities",
    "Client",
    "ClientOptions",
    "Credential",
    "Secret",
    "adapter_class",
]

#: provider name -> "module:AdapterClass"; imported on first use so importing billkit stays light.
PROVIDERS: dict[str, str] = {
    "accepteasy": "billkit.providers.accepteasy.client:AcceptEasyAdapter",
    "billcom": "billkit.providers.billcom.client:BillcomAdapter",
    "facturapi": "billkit.providers.facturapi.client:FacturapiAdapter",
}
_ALIASES = {"bill": "billcom", "bill.com": "billcom"}
USER_AGENT = "billkit/0.1"

# -- the typed surface ---------------------------------------------------------------------------------------------
# ``Client`` and ``AsyncClient`` are generic in the provider's native client and its webhook event type, and their
# ``__init__`` is overloaded on the provider's name (see the docstring of :class:`AsyncClient`). Bare ``Client`` in an
# annotation means the defaults: any provider's native client and event.
_E = TypeVar("_E", bound=pydantic.BaseModel, covariant=True, default=pydantic.BaseModel)
_SN = TypeVar("_SN", bound="Native[SyncMode]", covariant=True, default="Native[SyncMode]")
_AN = TypeVar("_AN", bound="Native[AsyncMode]", covariant=True, default="Native[AsyncMode]")


class _Options(TypedDict, total=False):
    base_url: str | None
    timeout: float | Timeouts | None
    retry: RetryPolicy | None
    poll: PollPolicy | None
    sandbox: bool | Sandbox | None
    clock: Clock | None
    max_response_bytes: int
    token_key: str | bytes | TokenKey | None
    http_stack: StackName | None


class ClientOptions(_Options, total=False):
    """The options every provider's :class:`Client` takes besides its credentials (for typed wrappers:
    ``def make(provider: str, **options: Unpack[ClientOptions]) -> Client: ...``)."""

    http_client: httpx.Client | httpx2.Client | None
    transport: httpx.BaseTransport | httpx2.BaseTransport | None


class AsyncClientOptions(_Options, total=False):
    """The options every provider's :class:`AsyncClient` takes besides its credentials."""

    http_client: httpx.AsyncClient | httpx.Client | httpx2.AsyncClient | httpx2.Client | None
    transport: httpx.AsyncBaseTransport | httpx2.AsyncBaseTransport | None


def _merge_credentials(
    provider: str, keywords: Mapping[str, str | None], mapping: Mapping[str, str | None] | None
) -> dict[str, str | None]:
    """The credentials given as keywords and as the ``credentials=`` mapping, one source per name."""
    if mapping is None:
        return dict(keywords)
    if not isinstance(mapping, Mapping):
        raise ConfigurationError(f"credentials= takes a mapping of names to values, not {type(mapping).__name__}")
    twice = sorted(set(keywords) & set(mapping))
    if twice:
        raise ConfigurationError(f"{', '.join(twice)} given both as a keyword and in credentials=", provider=provider)
    return {**mapping, **keywords}


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
    #: ``record_payment`` records a payment received on a bill; ``partial_payments``: of less than what is due
    payments: bool = False
    partial_payments: bool = False
    #: ``create_credit`` issues a credit against a bill (Facturapi's credit note)
    credits: bool = False
    #: ``create_party`` / ``get_party`` / ``update_party`` / ``delete_party`` (Facturapi customers, BILL vendors)
    parties: bool = False
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
    """What an adapter gets from its client: the transport, the clock, the credentials, the policies, and whether
    its flows run on the blocking driver (``blocking``: for the locks it makes, see :func:`billkit.flows.new_lock`)."""

    provider: str
    transport: Transport
    clock: Clock
    credentials: Mapping[str, Secret | str | None]
    poll: PollPolicy
    sandbox: Sandbox | None = None
    blocking: bool = False
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
    """The provider protocol: what one provider supplies, as flows. Translates; does not re-implement machinery."""

    name: ClassVar[str]
    credentials: ClassVar[tuple[Credential, ...]]
    default_base_url: ClassVar[str]
    request_id_header: ClassVar[str | None] = None
    max_in_flight: ClassVar[int | None] = None
    capabilities: ClassVar[Capabilities]
    #: the token state of each kind of operation this adapter starts, checked when a token is resumed
    token_states: ClassVar[Mapping[str, type[TokenState]]] = {}

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

    # -- the common operations, as flows -----------------------------------------------------------------
    @abstractmethod
    def create(self, bill: Bill) -> Flow[Bill]:
        """One request; the provider's answer as a Bill (possibly PENDING)."""

    @abstractmethod
    def submit(self, bill: Bill) -> Flow[Started]:
        """Start work the provider finishes later; the operation is then polled with :meth:`poll`."""

    @abstractmethod
    def submit_many(self, bills: Sequence[Bill]) -> Flow[Started | Sequence[Started | BillkitError]]:
        """A native bulk (one Started) or one Started / error per input (composed into one BulkOperation)."""

    @abstractmethod
    def get(self, provider_id: str) -> Flow[Bill]:
        """Read one bill."""

    @abstractmethod
    def poll(self, kind: str, state: Mapping[str, Any]) -> Flow[PollResult]:
        """One status read of an operation of this adapter's ``kind`` with its token ``state``."""

    def webhook_updates(self, event: Any) -> list[tuple[str, PollResult]]:
        """The operations a verified webhook event finishes or advances: ``(operation id, result)`` pairs."""
        raise UnsupportedFeatureError(self.name, "webhooks")

    def verify_webhook(self, body: bytes, headers: Mapping[str, str], secret: str) -> pydantic.BaseModel:
        """Verify and parse a webhook request; raise WebhookVerificationError when it does not verify."""
        raise UnsupportedFeatureError(self.name, "webhooks")

    def native_client(self, io: AsyncIO | SyncIO) -> Native[Any]:
        """The provider's own typed client, run by ``io`` (the client's driver)."""
        raise UnsupportedFeatureError(self.name, "native client")

    # -- payments, credits and parties in the common model (docs/fields.md); each runs the native client's flows,
    # so it keeps their checks and retry rules. The shared client has checked the common arguments' types; the
    # default refuses before anything is sent, and ``capabilities`` says the same ------------------------------
    def record_payment(
        self, bill_id: str, amount: Money, *, paid_at: dt.date | dt.datetime | None, method: str | None,
        options: Mapping[str, Any],
    ) -> Flow[Payment]:  # fmt: skip
        """Record a payment of ``amount`` received on bill ``bill_id``."""
        raise UnsupportedFeatureError(self.name, "record_payment", "the provider documents no API that records a "
                                      "payment on a bill (see docs/fields.md)")  # fmt: skip
        yield

    def create_credit(self, bill_id: str, amount: Money, *, reason: str | None,
                      options: Mapping[str, Any]) -> Flow[Bill]:  # fmt: skip
        """Issue a credit of ``amount`` against bill ``bill_id``; the credit document as a Bill."""
        raise UnsupportedFeatureError(self.name, "create_credit", "the provider documents no credit document "
                                      "(see docs/fields.md)")  # fmt: skip
        yield

    def create_party(self, party: Party) -> Flow[Party]:
        """Save ``party`` at the provider (a customer, a vendor); the saved party, with its ``provider_id``."""
        raise UnsupportedFeatureError(self.name, "create_party", _NO_PARTIES)
        yield

    def get_party(self, party_id: str) -> Flow[Party]:
        raise UnsupportedFeatureError(self.name, "get_party", _NO_PARTIES)
        yield

    def update_party(self, party_id: str, changes: Party | Mapping[str, Any]) -> Flow[Party]:
        raise UnsupportedFeatureError(self.name, "update_party", _NO_PARTIES)
        yield

    def delete_party(self, party_id: str) -> Flow[Party]:
        raise UnsupportedFeatureError(self.name, "delete_party", _NO_PARTIES)
        yield

    def close(self) -> Flow[None]:
        """Release provider resources (BILL logs out)."""
        return
        yield

    # -- batches: what identifies a bill at the provider, and how to find it after a lost answer ------------------
    #: a provider's limit on logins, shared by every process of a batch: ``(path, logins, per seconds)``
    login_budget: ClassVar[tuple[str, int, float] | None] = None
    #: the ``provider_options`` names of a bill (and of its counterparty) this adapter knows, for readers of files
    #: that refuse a misspelt option column before anything is sent; None: not checked
    option_names: ClassVar[frozenset[str] | None] = None
    party_option_names: ClassVar[frozenset[str] | None] = None
    #: how long after a send whose outcome is unknown a look-up that finds nothing proves the bill absent (a
    #: provider whose listings may lag behind a create needs a settling time before billkit sends again)
    reconcile_settle: ClassVar[float] = 0.0

    @classmethod
    def pin_key(cls, bill: Bill, seed: str, index: int) -> tuple[Bill, str]:
        """``bill`` with the key that identifies it at the provider fixed (derived from ``seed`` and ``index``
        unless the bill brings its own), so every send of it carries the same key; and that key as text."""
        raise UnsupportedFeatureError(cls.name, "batches")

    @classmethod
    def key_taken(cls, error: BillkitError) -> bool:
        """Whether ``error``, the answer to a send, says the bill's key is already held (the bill exists, or is
        being created): the item is then looked up again, never failed."""
        return False

    def find_existing(self, bill: Bill, since: float | None) -> Flow[Bill | None]:
        """The bill the provider holds under ``bill``'s pinned key, or None when a read shows it holds none.
        ``since``: the wall time (epoch seconds) of the first send, where the look-up needs a window."""
        raise UnsupportedFeatureError(self.name, "batches")
        yield

    #: True when :meth:`find_existing_many` looks many bills up in fewer reads than one per bill (BILL lists a
    #: vendor's bills once for all of them); otherwise a batch looks bills up one by one, several at once
    finds_in_bulk: ClassVar[bool] = False

    def find_existing_many(self, bills: Sequence[Bill], since: float | None) -> Flow[list[Bill | None]]:
        """:meth:`find_existing` for each of ``bills``, in order."""
        found: list[Bill | None] = []
        for bill in bills:
            found.append((yield from self.find_existing(bill, since)))
        return found


_NO_PARTIES = "the provider has no customer or vendor resource (see docs/fields.md)"


def adapter_class(provider: str) -> type[Adapter]:
    """The adapter class registered for ``provider`` (imported lazily)."""
    if not isinstance(provider, str):
        raise ConfigurationError(f"a provider is named by a string, not {type(provider).__name__}")
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


class _WatchState(TokenState):
    id: str
    until: list[BillStatus]

    model_config = TokenState.model_config | {"strict": False}  # statuses are their string values in JSON


class _CompositeState(TokenState):
    """A composite bulk (v2 tokens): the children's common kind, ids in order, the states and kinds that differ."""

    kind: str
    ids: list[str | None] | None
    hex_ids: str | None = None  # ids of 24 hex digits packed 12 bytes each (None where an item failed)
    states: dict[str, dict[str, Any]]
    kinds: dict[str, str]
    errors: dict[str, str]

    @pydantic.model_validator(mode="after")
    def _ids(self) -> _CompositeState:
        if (self.ids is None) == (self.hex_ids is None):
            raise ValueError("a composite has ids or hex_ids")
        return self

    def child_ids(self) -> list[str | None]:
        if self.ids is not None:
            return self.ids
        assert self.hex_ids is not None
        try:
            packed = base64.urlsafe_b64decode(self.hex_ids)
        except (binascii.Error, ValueError):
            raise TokenError("resume token state of kind 'composite' has hex_ids that are not base64") from None
        if len(packed) % 12:
            raise TokenError("resume token state of kind 'composite' has hex_ids of a wrong length")
        chunks = [packed[i : i + 12] for i in range(0, len(packed), 12)]
        return [None if not any(c) else c.hex() for c in chunks]


class _LegacyItem(TokenState):
    kind: str | None = None
    id: str | None = None
    state: dict[str, Any] | None = None
    error: dict[str, Any] | None = None


class _LegacyComposite(TokenState):
    """A composite bulk as billkit 0.1 wrote it (v1 tokens)."""

    items: list[_LegacyItem]


def _watch(adapter: Adapter, provider: str, state: Mapping[str, Any]) -> Flow[PollResult]:
    """The status read of a ``wait_for`` operation: the bill, against the statuses awaited."""
    bill = yield from adapter.get(str(state["id"]))
    return _watched(bill, provider, state)


def _as_polled(core: Any, news: PollResult) -> PollResult:
    """A webhook's news read the way a poll of ``core``'s kind reads it: for a ``wait_for`` (kind ``watch``) a bill
    the event carries is held against the statuses awaited (an OPEN event does not finish a wait for VOID); news
    without a bill makes it read at once. Other kinds take the adapter's reading as it is."""
    if core.kind != "watch":
        return news
    if isinstance(news.value, Bill):
        watched = _watched(news.value, core.provider, core.token_state)
        return replace(watched, order=news.order)
    return PollResult(status=news.status, provider_status=news.provider_status, retry_after=0.0, order=news.order)


def _watched(bill: Bill, provider: str, state: Mapping[str, Any]) -> PollResult:
    until = {BillStatus(s) for s in state["until"]}
    if bill.status in until:
        return PollResult(status=bill.status, provider_status=bill.provider_status, done=True, value=bill)
    if bill.status is not None and bill.status.is_final:
        err = OperationFailed(
            f"bill {bill.provider_id} reached {bill.status.value} and can no longer reach "
            f"{sorted(s.value for s in until)}",
            provider=provider,
            status=bill.status.value,
            provider_status=bill.provider_status,
            operation_id=bill.provider_id,
        )
        return PollResult(status=bill.status, provider_status=bill.provider_status, done=True, error=err)
    return PollResult(status=bill.status, provider_status=bill.provider_status)


def _guarded_progress(provider: str, on_progress: Callable[[int, int], None]) -> Callable[[int, int], None]:
    """``on_progress`` as billkit calls it: inside the poller (or, for a bulk already done, inside ``submit_many``),
    so an exception it raises is logged (logger ``billkit``, ERROR, with its traceback) and goes no further. It
    must not stop the poller, end the other pending operations, or lose the bulk handle of bills already created."""

    def report(finished: int, total: int) -> None:
        try:
            on_progress(finished, total)
        except Exception:
            logger.exception("the on_progress callback of a %s bulk raised (billkit went on without it)", provider)

    return report


def _is_bulk_kind(kind: str) -> bool:
    return kind == "composite" or kind.startswith("bulk")


def _is_bulk(core: _Core) -> bool:
    return _is_bulk_kind(core.kind)


def _bulk_id(children: Sequence[_Core | BillkitError]) -> str:
    ids = [c.id for c in children if isinstance(c, _Core)]
    return "bulk:" + (ids[0] if ids else "failed") + f":{len(children)}"


class _Base(Generic[_E]):
    """What both clients share: configuration and every step that does no I/O."""

    provider: str
    sandbox: Sandbox | None
    clock: Clock
    retry: RetryPolicy
    poll_policy: PollPolicy
    _stack: Stack
    _adapter_cls: type[Adapter]
    _adapter: Adapter
    _transport: Transport
    _ctx: AdapterContext
    _scheduler: Scheduler
    _owns_scheduler: bool
    _owns_adapter: bool
    _owns_http: bool
    _native: Native[Any] | None
    _closed: bool

    def _configure(
        self,
        provider: str,
        *,
        blocking: bool,
        base_url: str | None,
        timeout: float | Timeouts | None,
        retry: RetryPolicy | None,
        poll: PollPolicy | None,
        sandbox: bool | Sandbox | None,
        clock: Clock | None,
        max_response_bytes: int,
        token_key: str | bytes | TokenKey | None,
        credentials: Mapping[str, str | None],
    ) -> None:
        cls = adapter_class(provider)
        self._token_key = _token_key(token_key)
        self._adapter_cls = cls
        self.provider = cls.name
        box: Sandbox | None = None
        if sandbox is True:
            box = cls.make_sandbox(clock=clock)
        elif sandbox not in (None, False):
            box = sandbox  # type: ignore[assignment]
        if box is not None and box.provider != cls.name:
            raise ConfigurationError(f"sandbox is for {box.provider!r}, not {cls.name!r}")
        self.sandbox = box
        self.clock = clock or (box.clock if box is not None else SystemClock())
        creds = _credentials(cls, credentials, box)
        self.retry = retry or RetryPolicy()
        self.timeouts, self.retry = _timeouts(timeout, self.retry)
        self.poll_policy = poll or PollPolicy()
        url = (
            base_url
            or (box.base_url if box is not None else None)
            or os.environ.get(f"{cls.name.upper()}_BASE_URL")
            or cls.default_base_url
        )
        self._transport = Transport(
            provider=cls.name,
            base_url=url,
            error_parser=cls.parse_error,  # type: ignore[arg-type]
            clock=self.clock,
            timeouts=self.timeouts,
            default_headers={"user-agent": USER_AGENT, "accept": "application/json", **cls.auth_headers(creds)},
            request_id_header=cls.request_id_header,
            max_response_bytes=max_response_bytes,
        )
        self._ctx = AdapterContext(cls.name, self._transport, self.clock, creds, self.poll_policy, box, blocking)
        self._adapter = cls(self._ctx)
        self._idempotency: _KeyBinding | None = None
        self._closed = False

    def __repr__(self) -> str:
        mode = "sandbox" if self.sandbox is not None else self._transport.base_url
        return f"<billkit.{type(self).__name__} {self.provider} {mode}>"

    def _lane(self, http: Any) -> Lane:
        """The lane of an httpx (or httpx2) client billkit made: its default headers merged into the Transport's
        once, and the transport it would pick for the base URL (its proxy mount, if the environment sets one) called
        directly."""
        self._transport.merge_client_headers(http.headers)
        lane = Lane(http)
        lane.direct = http._transport_for_url(lane.stack.URL(self._transport.base_url))
        return lane

    def _own_transport(self, transport: Any, stack: Stack) -> Any:
        """The transport of an HTTP client billkit makes: the one given, else the sandbox's (through the bridge on
        httpx2, since a sandbox is an httpx transport), else None (the library's own)."""
        if transport is None and self.sandbox is not None:
            transport = self.sandbox
        if transport is not None and stack.name == "httpx2":
            from billkit.sandboxing import Sandbox

            if isinstance(transport, Sandbox):
                return SandboxBridge(transport, stack)
        return transport

    @property
    def http_stack(self) -> StackName:
        """``"httpx"`` or ``"httpx2"``: the HTTP library this client runs on (see :mod:`billkit.httpstack`)."""
        return self._stack.name

    def _check_open(self) -> None:
        if self._closed:
            raise ClientClosedError(f"this {type(self).__name__} is closed; make a new one", provider=self.provider)

    def _poll_flow(self, kind: str, state: Mapping[str, Any]) -> Flow[PollResult]:
        if kind == "watch":
            return _watch(self._adapter, self.provider, state)
        return self._adapter.poll(kind, state)

    @property
    def capabilities(self) -> Capabilities:
        return self._adapter_cls.capabilities

    def pin_key(self, bill: Bill, seed: str, index: int) -> tuple[Bill, str]:
        """``bill`` with the key that identifies it at the provider fixed (Facturapi's idempotency key,
        AcceptEasy's SRRID; BILL's vendor and invoice number), and that key: every later send of the returned bill,
        from this process or another, carries the same key, so :meth:`find_existing` can find it. No I/O."""
        return self._adapter_cls.pin_key(bill, seed, index)

    @property
    def requests_made(self) -> int:
        """HTTP requests sent by this client so far, retries included."""
        return self._transport.stats.requests

    @property
    def scheduler(self) -> Scheduler:
        return self._scheduler

    # -- operations, without I/O ---------------------------------------------------------------------------
    def _start(self, started: Started, deadline: float | None, total: int | None = None) -> _Core:
        core = self._scheduler.new_core(started.kind, started.id, started.state, deadline)
        core.total = started.total or total
        self._scheduler.start(core, started.first)
        return core

    def _bulk(
        self,
        started: Started | Sequence[Started | BillkitError],
        count: int,
        deadline: float | None,
        on_progress: Callable[[int, int], None] | None,
    ) -> _Core:
        if isinstance(started, Started):
            core = self._start(started, deadline, total=count)
        else:
            children: list[_Core | BillkitError] = [
                s if isinstance(s, BillkitError) else self._start(s, deadline) for s in started
            ]
            if len(children) != count:
                raise AssertionError("adapter returned a result count different from the input count")
            core = self._scheduler.composite(_bulk_id(children), children, deadline)
        if on_progress is not None:
            report = _guarded_progress(self.provider, on_progress)
            core.listeners.append(lambda c: report(*(c.progress or (0, count))))
            if core.done:  # already finished (BILL's synchronous bulk): report once
                report(count, count)
        return core

    def _watch_core(self, provider_id: str, until: Sequence[BillStatus] | BillStatus, deadline: float | None) -> _Core:
        wanted = [until] if isinstance(until, BillStatus) else list(until)
        if not wanted:
            raise BillkitError("wait_for needs at least one status", provider=self.provider)
        state = {"id": provider_id, "until": [s.value for s in wanted]}
        core = self._scheduler.new_core("watch", provider_id, state, deadline)
        self._scheduler.start(core)
        return core

    def _resume_core(self, token: str, deadline: float | None, bulk: bool | None = None) -> _Core:
        """Check a token whole (envelope, signature, every state against its kind's schema), then rebuild.
        ``bulk``: the kind of operation the caller expects (None: either)."""
        body = decode_token(token, provider=self.provider, key=self._token_key)
        kind, state, op_id = body["kind"], body["state"], body["id"]
        if bulk is not None and _is_bulk_kind(str(kind)) != bulk:
            want = "a bulk operation" if bulk else "a single operation"
            raise TokenError(f"resume(bulk={bulk}) expects a token of {want}; this one is of kind {kind!r}",
                             provider=self.provider)  # fmt: skip
        started = tracing.from_traceparent(body["trace"]) if "trace" in body else None
        if kind != "composite":
            check_state(self._token_states, kind, state)
            core = self._scheduler.new_core(kind, op_id, state, deadline)
            if started is not None:
                core.link = started  # its reads link to the span that started it, in whichever process that was
            self._scheduler.start(core)
            return core
        children = [self._child(*item, deadline) for item in self._composite_items(state)]
        if started is not None:
            for child in children:
                if isinstance(child, _Core):
                    child.link = started
        parent = self._scheduler.composite(op_id, children, deadline)
        if started is not None:
            parent.link = started
        return parent

    @property
    def _token_states(self) -> Mapping[str, type[TokenState]]:
        return {"watch": _WatchState, **self._adapter_cls.token_states}

    def _composite_items(self, state: Mapping[str, Any]) -> list[tuple[str | None, str | None, Any, str | None]]:
        """``(kind, id, state, error)`` per child of a composite token, each child's state checked."""
        items: list[tuple[str | None, str | None, Any, str | None]] = []
        if "items" in state:  # v1
            check_state({"composite": _LegacyComposite}, "composite", state)
            for item in state["items"]:
                if item.get("error") is not None:
                    items.append((None, None, None, str(item["error"].get("message"))))
                elif item.get("kind") is None or item.get("id") is None or item.get("state") is None:
                    raise TokenError("resume token state of kind 'composite' has an item without kind, id or state")
                else:
                    items.append((item["kind"], item["id"], item["state"], None))
        else:
            check_state({"composite": _CompositeState}, "composite", state)
            for index, child_id in enumerate(_CompositeState.model_validate(state).child_ids()):
                key = str(index)
                if child_id is None:
                    items.append((None, None, None, state["errors"].get(key, "not submitted")))
                else:
                    kind = state["kinds"].get(key, state["kind"])
                    items.append((kind, child_id, state["states"].get(key, {"id": child_id}), None))
        for kind, _, child_state, error in items:
            if error is None:
                assert kind is not None
                if kind == "composite":
                    raise TokenError("resume token state of kind 'composite' nests a composite")
                check_state(self._token_states, kind, child_state)
        return items

    def _child(self, kind: str | None, child_id: str | None, state: Any, error: str | None,
               deadline: float | None) -> _Core | BillkitError:  # fmt: skip
        if error is not None or kind is None or child_id is None:
            return OperationFailed(str(error), provider=self.provider)
        child = self._scheduler.new_core(kind, child_id, state, deadline)
        self._scheduler.start(child)
        return child

    # -- webhooks ----------------------------------------------------------------------------------------
    def verify_webhook(self, body: bytes, headers: Mapping[str, str], secret: str | Sequence[str]) -> _E:
        """Verify a webhook request (raises WebhookVerificationError) and return the typed event: the provider's
        event model (Facturapi's and BILL's ``WebhookEvent``, AcceptEasy's union of ``PaidEvent``, ...).

        ``secret`` may be several (a rotation: the new secret and the old one while deliveries signed with either
        arrive); the request verifies if it does with any of them, each compared in constant time.
        """
        secrets = [secret] if isinstance(secret, str) else list(secret)
        if not secrets:
            raise WebhookVerificationError("no webhook secret given", provider=self.provider)
        failed: WebhookVerificationError | None = None
        for one in secrets:
            try:
                return cast(_E, self._adapter.verify_webhook(body, headers, one))
            except WebhookVerificationError as exc:
                failed = exc
        assert failed is not None
        if len(secrets) > 1:
            raise WebhookVerificationError(f"{failed.message} (with any of the {len(secrets)} secrets given)",
                                           provider=self.provider) from None  # fmt: skip
        raise failed

    def handle_webhook_event(self, event: object) -> int:
        """Hand a *verified* event to the pending operations; returns how many it finished or advanced. Their
        waiters wake at once."""
        matched = 0
        for op_id, result in self._adapter.webhook_updates(event):
            matched += self._scheduler.complete(op_id, result, _as_polled)
        return matched

    def _derive_fields(
        self,
        twin: _Base,
        retry: RetryPolicy | None,
        poll: PollPolicy | None,
        *,
        timeout: float | Timeouts | None = None,
        headers: Mapping[str, str] | None = None,
        idempotency_key: str | None = None,
        call: CallOptions | None = None,
    ) -> CallOptions | None:
        """The fields a ``with_options`` copy shares (adapter, session, sandbox, pool) and the ones it overrides;
        returns what its requests carry (``call``, this client's, with the new headers and timeouts over it)."""
        if idempotency_key is not None and not self.capabilities.idempotency:
            detail = "the provider de-duplicates no create by a key; see docs/operations.md, Options for one call"
            raise UnsupportedFeatureError(self.provider, "idempotency_key", detail)
        self._derive_shared(twin, retry, poll)
        twin._idempotency = self._idempotency
        if idempotency_key is not None:
            twin._idempotency = _KeyBinding(idempotency_key, self.provider)
        if timeout is None and headers is None:
            return call
        extra = dict(call.headers) if call is not None else {}
        if headers is not None:
            own = {name.lower() for name in self._adapter_cls.auth_headers(self._ctx.credentials)}
            extra.update(_extra_headers(headers, self.provider, own))
        limit = call.timeout if call is not None else None
        if timeout is not None:
            twin.timeouts, twin.retry = _timeouts(timeout, twin.retry)
            limit = twin.timeouts.to_httpx()
        return CallOptions(extra, limit)

    def _keyed(self, bill: Bill) -> Bill:
        """``bill`` with this copy's idempotency key (``with_options(idempotency_key=...)``), if it has one."""
        binding = self._idempotency
        return bill if binding is None else binding.apply(bill)

    def _answers(self, seen: list[Seen], started: object = None) -> tuple[ResponseInfo, ...]:
        """The answers a call got, as ResponseInfo; a bill an adapter's submit already finished says them too."""
        found = infos(seen, self.provider, self._adapter_cls.request_id_header)
        first = started.first if isinstance(started, Started) else None
        if first is not None and isinstance(first.value, Bill):
            attach(first.value, found)
        return found

    def _answered(self, bill: Bill, seen: list[Seen]) -> Bill:
        return attach(bill, self._answers(seen))

    def _derive_shared(self, twin: _Base, retry: RetryPolicy | None, poll: PollPolicy | None) -> None:
        twin._adapter_cls = self._adapter_cls
        twin.provider = self.provider
        twin.sandbox = self.sandbox
        twin.clock = self.clock
        twin.timeouts = self.timeouts
        twin.retry = retry or self.retry
        twin.poll_policy = poll or self.poll_policy
        twin._transport = self._transport
        twin._ctx = self._ctx
        twin._adapter = self._adapter
        twin._token_key = self._token_key
        twin._closed = False
        twin._owns_http = False
        twin._owns_adapter = False
        twin._native = None

    def _share_scheduler(self, twin: _Base, poll: PollPolicy | None) -> None:
        """A copy with a poll policy of its own polls with a scheduler of its own; otherwise it shares this one.

        Called once the copy's I/O driver is set, which the new scheduler reads through.
        """
        if poll is not None:
            twin._scheduler = twin._new_scheduler(twin.poll_policy)
            twin._owns_scheduler = True
        else:
            twin._scheduler = self._scheduler
            twin._owns_scheduler = False

    def _new_scheduler(self, policy: PollPolicy) -> Scheduler:
        raise NotImplementedError

    # -- payments, credits and parties: one flow each, run by either client ---------------------------------------
    def _supported(self, capability: str, call: str) -> None:
        """UnsupportedFeatureError before anything is built or sent when ``capabilities`` says the provider lacks
        it (the adapter's hook refuses too; the two agree)."""
        if not getattr(self.capabilities, capability):
            detail = "see docs/fields.md, Payments, credits and parties in the common model"
            raise UnsupportedFeatureError(self.provider, call, detail)

    def _payment_flow(
        self, bill_id: str, amount: Money, paid_at: dt.date | dt.datetime | None, method: str | None,
        provider_options: Mapping[str, Any] | None,
    ) -> Flow[Payment]:  # fmt: skip
        self._supported("payments", "record_payment")
        problems = _id_problems("bill_id", bill_id) + _amount_problems(amount)
        if paid_at is not None:
            if not isinstance(paid_at, dt.date):
                problems.append(Problem("paid_at", f"{paid_at!r}: a date or a timezone-aware datetime"))
            elif isinstance(paid_at, dt.datetime) and paid_at.utcoffset() is None:
                problems.append(Problem("paid_at", f"{paid_at!r}: give a timezone-aware datetime, or a date"))
        if method is not None and (not isinstance(method, str) or not method.strip()):
            problems.append(Problem("method", f"{method!r}: a non-empty string"))
        options = _call_options(provider_options, problems)
        if problems:
            raise ValidationError(problems, provider=self.provider)
        return self._adapter.record_payment(bill_id, amount, paid_at=paid_at, method=method, options=options)

    def _credit_flow(self, bill_id: str, amount: Money, reason: str | None,
                     provider_options: Mapping[str, Any] | None) -> Flow[Bill]:  # fmt: skip
        self._supported("credits", "create_credit")
        problems = _id_problems("bill_id", bill_id) + _amount_problems(amount)
        if reason is not None and (not isinstance(reason, str) or not reason.strip()):
            problems.append(Problem("reason", f"{reason!r}: a non-empty string"))
        options = _call_options(provider_options, problems)
        if problems:
            raise ValidationError(problems, provider=self.provider)
        return self._adapter.create_credit(bill_id, amount, reason=reason, options=options)

    def _party_flow(self, call: str, party_id: str | None, party: Party | Mapping[str, Any] | None) -> Flow[Party]:
        self._supported("parties", call)
        problems = _id_problems("party_id", party_id) if party_id is not None else []
        if call == "create_party" and not isinstance(party, Party):
            problems.append(Problem("party", "give the party as billkit.Party"))
        if call == "update_party" and not (isinstance(party, (Party, Mapping)) and party):
            problems.append(Problem("changes", "a billkit.Party, or a mapping of the provider's field names"))
        if problems:
            raise ValidationError(problems, provider=self.provider)
        if isinstance(party, Party):
            party = _write_side(party)
        if call == "create_party":
            assert isinstance(party, Party)
            return self._adapter.create_party(party)
        assert party_id is not None
        if call == "update_party":
            assert party is not None
            return self._adapter.update_party(party_id, party)
        return self._adapter.get_party(party_id) if call == "get_party" else self._adapter.delete_party(party_id)


def _id_problems(name: str, value: object) -> list[Problem]:
    if not isinstance(value, str) or not value.strip():
        return [Problem(name, f"{value!r}: the provider's id, a non-empty string")]
    return []


def _amount_problems(amount: object) -> list[Problem]:
    if not isinstance(amount, Money):
        return [Problem("amount", "give the amount as billkit.Money (a Decimal and its currency)")]
    if amount.amount <= 0:
        return [Problem("amount", f"{amount.amount}: must be greater than 0")]
    return []


def _call_options(given: Mapping[str, Any] | None, problems: list[Problem]) -> Mapping[str, Any]:
    if given is None:
        return {}
    if not isinstance(given, Mapping) or not all(isinstance(k, str) for k in given):
        problems.append(Problem("provider_options", "a mapping of option names to values"))
        return {}
    return dict(given)


def _write_side(party: Party) -> Party:
    """``party`` without its read side (``provider``, ``raw``): what a provider is sent."""
    if not party.model_fields_set & {"provider", "raw"}:
        return party
    return Party(**{name: getattr(party, name) for name in party.model_fields_set - {"provider", "raw"}})


def _token_key(given: str | bytes | TokenKey | None) -> TokenKey | None:
    """The key that signs this client's tokens: the argument, else ``BILLKIT_TOKEN_KEY``, else none."""
    try:
        return token_key(given if given is not None else os.environ.get("BILLKIT_TOKEN_KEY") or None)
    except TokenError as exc:
        raise ConfigurationError(f"token_key (or BILLKIT_TOKEN_KEY): {exc.message}") from None


def _replace_budget(policy: RetryPolicy, budget: float) -> RetryPolicy:
    from dataclasses import replace

    return replace(policy, total_budget=budget)


def _timeouts(timeout: float | Timeouts | None, retry: RetryPolicy) -> tuple[Timeouts, RetryPolicy]:
    """The timeouts a ``timeout=`` option means, and ``retry`` with its budget cut to fit a number."""
    if isinstance(timeout, (int, float)) and not isinstance(timeout, bool):
        if timeout <= 0:
            raise ConfigurationError(f"timeout must be positive, got {timeout!r}")
        # a number is the whole call's deadline: every attempt and every sleep between them fit in it
        timeouts = Timeouts(connect=min(5.0, timeout), read=timeout, write=timeout, pool=timeout)
        return timeouts, (_replace_budget(retry, float(timeout)) if retry.total_budget > timeout else retry)
    if timeout is None or isinstance(timeout, Timeouts):
        return timeout or Timeouts(), retry
    raise ConfigurationError(f"timeout takes seconds or a billkit.Timeouts, not {type(timeout).__name__}")


def _extra_headers(headers: Mapping[str, str], provider: str, own: set[str]) -> dict[str, str]:
    """``headers`` for ``with_options(headers=...)``, names lower-cased. An auth-related header (see
    :func:`billkit.responses.is_auth_header`), one the client already sends to authenticate, or one httpx writes
    (Host, Content-Length, ...) raises ConfigurationError: a caller's header never replaces billkit's own."""
    if not isinstance(headers, Mapping):
        raise ConfigurationError(f"headers= takes a mapping of names to values, not {type(headers).__name__}")
    out: dict[str, str] = {}
    for name, value in headers.items():
        if not isinstance(name, str) or not isinstance(value, str):
            raise ConfigurationError(f"header {name!r}: names and values are strings", provider=provider)
        lowered = name.lower()
        if is_auth_header(lowered) or lowered in own or lowered in BILLKIT_HEADERS:
            raise ConfigurationError(
                f"with_options(headers=...) cannot set {name!r}: billkit writes it (authentication and the "
                "request's own framing headers are never taken from options)",
                provider=provider,
            )
        out[lowered] = value
    return out


class _KeyBinding:
    """An idempotency key given to ``with_options(idempotency_key=...)``, bound to the first bill sent with it.

    A key names one create. Facturapi answers a repeat of a key with the invoice it already made, so a key reused
    for another bill would create nothing and hand back the first bill's invoice as if it were the second's. So
    the copy that holds the key sends it only with the bill it first sent (an equal bill: a retry after an unknown
    outcome); any other bill raises :class:`ConfigurationError` before a request. A bill whose
    ``provider_options`` already name another key raises too.
    """

    def __init__(self, key: str, provider: str) -> None:
        if not isinstance(key, str) or not key.strip():
            raise ConfigurationError("idempotency_key must be a non-empty string", provider=provider)
        self.key = key
        self.provider = provider
        self._bill: Bill | None = None
        self._lock = threading.Lock()

    def apply(self, bill: Bill) -> Bill:
        own = bill.provider_options.get("idempotency_key")
        if own is not None and own != self.key:
            raise ConfigurationError(
                f"the bill's provider_options name idempotency key {own!r}, the client {self.key!r}: give one of them",
                provider=self.provider,
            )
        if own != self.key:
            bill = bill.model_copy(update={"provider_options": {**bill.provider_options, "idempotency_key": self.key}})
        with self._lock:
            if self._bill is None:
                self._bill = bill
            elif self._bill != bill:
                raise ConfigurationError(
                    f"idempotency key {self.key!r} already named another bill (reference "
                    f"{self._bill.reference!r}); a key names one create: make a with_options copy per bill, with "
                    "a key from that bill's business identity",
                    provider=self.provider,
                )
        return bill


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
        value = given.get(cred.name) or (os.environ.get(cred.env) if box is None else defaults.get(cred.name))
        if not value and cred.required:
            missing.append(f"{cred.name} (or the environment variable {cred.env})")
        out[cred.name] = Secret(value) if (cred.secret and value) else value
    if missing:
        raise ConfigurationError(f"{cls.name} needs {', '.join(missing)}", provider=cls.name)
    return out


class AsyncClient(_Base[_E], Generic[_AN, _E]):
    """One provider behind the common model. Use ``async with`` so connections and sessions are closed.

    ``AsyncClient("facturapi", api_key=...)``; credentials fall back to environment variables
    (``FACTURAPI_API_KEY``, ...). ``sandbox=True`` runs on a fresh in-process sandbox on virtual time
    (no credentials needed); pass a ``billkit.testing.sandbox(...)`` object to share one. Where the provider's name
    comes from configuration, pass the credentials as a mapping: ``AsyncClient(name, credentials={"api_key": ...})``.

    **Typing.** The class is generic in the provider's native client and webhook event, ``AsyncClient[N, E]``, and
    ``__init__`` is overloaded on the provider's name as a ``Literal``: ``AsyncClient("facturapi", ...)`` is an
    ``AsyncClient[FacturapiNative[AsyncMode], facturapi.wire.WebhookEvent]``, so ``client.native`` is Facturapi's
    typed native client, ``verify_webhook`` returns Facturapi's event, and each provider's overload takes exactly
    its credential keywords and the common :class:`AsyncClientOptions` (a misspelt option fails the type check).
    A name only known at run time (``str``) selects the last overload: credentials through ``credentials=``, and
    the base types (``Native[AsyncMode]``, ``pydantic.BaseModel``), narrowed with ``isinstance(client.native,
    FacturapiNative)``. Chosen over typed accessors (``client.native_as(FacturapiNative)``) because the common
    call, ``billkit.AsyncClient("facturapi", ...)``, stays as it is and is typed without any extra word; the type
    parameters have defaults, so a bare ``billkit.AsyncClient`` annotation still means "any provider".
    """

    @overload
    def __init__(
        self: AsyncClient[FacturapiNative[AsyncMode], FacturapiEvent],
        provider: Literal["facturapi"],
        *,
        api_key: str | None = None,
        credentials: Mapping[str, str | None] | None = None,
        **options: Unpack[AsyncClientOptions],
    ) -> None: ...
    @overload
    def __init__(
        self: AsyncClient[AcceptEasyNative[AsyncMode], AcceptEasyEvent],
        provider: Literal["accepteasy"],
        *,
        key_name: str | None = None,
        key: str | None = None,
        credentials: Mapping[str, str | None] | None = None,
        **options: Unpack[AsyncClientOptions],
    ) -> None: ...
    @overload
    def __init__(
        self: AsyncClient[BillcomNative[AsyncMode], BillcomEvent],
        provider: Literal["billcom", "bill", "bill.com"],
        *,
        username: str | None = None,
        password: str | None = None,
        organization_id: str | None = None,
        dev_key: str | None = None,
        events_base_url: str | None = None,
        credentials: Mapping[str, str | None] | None = None,
        **options: Unpack[AsyncClientOptions],
    ) -> None: ...
    @overload
    def __init__(
        self: AsyncClient[Native[AsyncMode], pydantic.BaseModel],
        provider: str,
        *,
        credentials: Mapping[str, str | None] | None = None,
        **options: Unpack[AsyncClientOptions],
    ) -> None: ...
    def __init__(
        self,
        provider: str,
        *,
        base_url: str | None = None,
        timeout: float | Timeouts | None = None,
        retry: RetryPolicy | None = None,
        poll: PollPolicy | None = None,
        http_client: httpx.AsyncClient | httpx.Client | httpx2.AsyncClient | httpx2.Client | None = None,
        transport: httpx.AsyncBaseTransport | httpx2.AsyncBaseTransport | None = None,
        sandbox: bool | Sandbox | None = None,
        clock: Clock | None = None,
        max_response_bytes: int = DEFAULT_MAX_RESPONSE_BYTES,
        token_key: str | bytes | TokenKey | None = None,
        credentials: Mapping[str, str | None] | None = None,
        http_stack: StackName | None = None,
        **provider_credentials: str | None,
    ) -> None:
        stack = self._stack = choose(http_client, transport, http_stack=http_stack)
        self._configure(
            provider,
            blocking=False,
            base_url=base_url,
            timeout=timeout,
            retry=retry,
            poll=poll,
            sandbox=sandbox,
            clock=clock,
            max_response_bytes=max_response_bytes,
            token_key=token_key,
            credentials=_merge_credentials(provider, provider_credentials, credentials),
        )
        self._owns_http = http_client is None or isinstance(http_client, stack.Client)
        http: Any
        if isinstance(http_client, stack.Client):
            http = stack.AsyncClient(transport=_SyncClientTransport(http_client, stack))
        elif http_client is not None:
            http = http_client
        else:
            timeout = stack.timeout(self.timeouts.to_httpx())
            own = self._own_transport(transport, stack)
            http = stack.AsyncClient(transport=own, timeout=timeout, follow_redirects=False)
        self._http = http
        lane = self._lane(http) if self._owns_http else Lane(http)
        self._io = AsyncIO(lane, self.clock, self.retry, self._adapter_cls.max_in_flight)
        self._scheduler = self._new_scheduler(self.poll_policy)
        self._owns_scheduler = True
        self._owns_adapter = True
        self._native = None

    def _new_scheduler(self, policy: PollPolicy) -> AsyncPoller:
        return AsyncPoller(
            provider=self.provider,
            poll=self._poll_flow,
            clock=self.clock,
            policy=policy,
            io=self._io.with_retry(policy.read_retry),
            token_key=self._token_key,
            answers=self._answers,
        )

    # -- lifecycle -------------------------------------------------------------------------------------
    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """End every pending operation (OperationCancelled), log out where the provider has sessions, and close
        the HTTP client if billkit created it. Awaiting an operation of a closed client raises at once."""
        if self._closed:
            return
        self._closed = True
        try:
            if self._owns_scheduler:
                assert isinstance(self._scheduler, AsyncPoller)
                await self._scheduler.aclose()
            if self._owns_adapter:
                with contextlib.suppress(BillkitError):  # best effort: a session left expires by itself
                    await self._io.run(self._adapter.close())
        finally:
            if self._owns_http:
                await self._http.aclose()

    def with_options(
        self,
        *,
        timeout: float | Timeouts | None = None,
        retry: RetryPolicy | None = None,
        poll: PollPolicy | None = None,
        headers: Mapping[str, str] | None = None,
        idempotency_key: str | None = None,
    ) -> Self:
        """A copy with other options that shares the connection pool, session, sandbox and (unless ``poll`` is
        given) the poller: for one call (``await client.with_options(timeout=5).get(id)``) or kept. Closing it
        closes nothing it shares; close the original. See docs/operations.md, "Options for one call".

        ``timeout`` as the client's (seconds: the whole call's deadline; or :class:`Timeouts`); ``headers`` are
        added to every request (an auth header raises ConfigurationError); ``idempotency_key`` is the key of the
        one bill this copy creates (Facturapi; UnsupportedFeatureError elsewhere; another bill raises
        ConfigurationError).
        """
        self._check_open()
        twin = type(self).__new__(type(self))
        call = self._derive_fields(
            twin, retry, poll, timeout=timeout, headers=headers, idempotency_key=idempotency_key, call=self._io.call
        )
        twin._http = self._http
        twin._io = self._io.with_retry(twin.retry).with_call(call)
        self._share_scheduler(twin, poll)
        return twin

    @property
    def with_raw_response(self) -> AsyncRawResponses:
        """The common calls, each returning a :class:`~billkit.responses.RawResponse` (status, headers, request
        id of the HTTP answer; ``parse()`` the value): ``raw = await client.with_raw_response.create(bill)``."""
        return AsyncRawResponses(self)

    # -- the common surface ----------------------------------------------------------------------------
    @property
    def native(self) -> _AN:
        """The provider's own typed client (cancel, downloads, search, vendors, ...); its methods are awaitable.
        Typed per provider (``FacturapiNative[AsyncMode]`` for ``AsyncClient("facturapi", ...)``)."""
        if self._native is None:
            self._native = self._adapter.native_client(self._io)
        return cast(_AN, self._native)

    async def create(self, bill: Bill) -> Bill:
        """Create ``bill`` with one request; the answer may be PENDING."""
        self._check_open()
        with tracing.call(self.provider, "create"):
            io, seen = self._io.capturing()
            return self._answered(await io.run(self._adapter.create(self._keyed(bill))), seen)

    async def get(self, provider_id: str) -> Bill:
        self._check_open()
        with tracing.call(self.provider, "get"):
            io, seen = self._io.capturing()
            return self._answered(await io.run(self._adapter.get(provider_id)), seen)

    async def find_existing(self, bill: Bill, *, since: float | None = None) -> Bill | None:
        """The bill the provider holds under ``bill``'s key (see :meth:`pin_key`), or None when a safe read shows
        it holds none. ``since``: the wall time of the first send, for providers that look in a time window."""
        self._check_open()
        with tracing.call(self.provider, "find_existing"):
            return await self._io.run(self._adapter.find_existing(bill, since))

    async def find_existing_many(self, bills: Sequence[Bill], *, since: float | None = None) -> list[Bill | None]:
        """:meth:`find_existing` for each of ``bills``, in order, in as few reads as the provider allows."""
        self._check_open()
        with tracing.call(self.provider, "find_existing_many"):
            return await self._io.run(self._adapter.find_existing_many(bills, since))

    async def submit(self, bill: Bill, *, deadline: float | None = None) -> Operation[Bill]:
        """Start creating ``bill``; the operation resolves when the provider is done with it."""
        self._check_open()
        with tracing.call(self.provider, "submit") as span:
            io, seen = self._io.capturing()
            started = await io.run(self._adapter.submit(self._keyed(bill)))
            core = self._start(started, deadline)
            span.operation(core)
        return Operation(core, self._answers(seen, started))

    async def submit_and_wait(self, bill: Bill, *, timeout: float | None = None) -> Bill:
        """``await (await client.submit(bill))`` with ``timeout`` as the operation's deadline."""
        with tracing.call(self.provider, "submit_and_wait"):
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
        self._check_open()
        bills = list(bills)
        if not bills:
            raise BillkitError("submit_many needs at least one bill", provider=self.provider)
        with tracing.call(self.provider, "submit_many") as span:
            io, seen = self._io.capturing()
            started = await io.run(self._adapter.submit_many([self._keyed(b) for b in bills]))
            core = self._bulk(started, len(bills), deadline, on_progress)
            span.operation(core)
        return BulkOperation(core, self._answers(seen))

    async def wait_for(
        self,
        provider_id: str,
        *,
        until: Sequence[BillStatus] | BillStatus = BillStatus.PAID,
        deadline: float | None = None,
    ) -> Operation[Bill]:
        """An operation over an existing bill that resolves when it reaches one of ``until``.

        A bill that reaches another final status (VOID, FAILED, or PAID when not awaited) fails the operation.
        """
        self._check_open()
        with tracing.call(self.provider, "wait_for") as span:
            core = self._watch_core(provider_id, until, deadline)
            span.operation(core)
        return Operation(core)

    @overload
    async def resume(self, token: str, *, bulk: Literal[False], deadline: float | None = None) -> Operation[Bill]: ...
    @overload
    async def resume(self, token: str, *, bulk: Literal[True], deadline: float | None = None) -> BulkOperation: ...
    @overload
    async def resume(
        self, token: str, *, bulk: bool | None = None, deadline: float | None = None
    ) -> Operation[Bill] | BulkOperation: ...
    async def resume(
        self, token: str, *, bulk: bool | None = None, deadline: float | None = None
    ) -> Operation[Bill] | BulkOperation:
        """Rebuild an operation from its token (in this or another process) with a fresh deadline.

        ``bulk=True`` / ``bulk=False`` says which kind the token is (a :class:`BulkOperation`, or an
        ``Operation[Bill]``), so the result is typed as that; a token of the other kind raises TokenError. Without
        it the result is typed as either (narrow it with ``isinstance(op, BulkOperation)``).
        """
        self._check_open()
        with tracing.call(self.provider, "resume") as span:
            core = self._resume_core(token, deadline, bulk)
            span.operation(core)
        if _is_bulk(core):
            return BulkOperation(core)
        return Operation(core)

    # -- payments, credits and parties in the common model (docs/fields.md) ---------------------------------------
    async def record_payment(
        self,
        bill_id: str,
        amount: Money,
        *,
        paid_at: dt.date | dt.datetime | None = None,
        method: str | None = None,
        provider_options: Mapping[str, Any] | None = None,
    ) -> Payment:
        """Record a payment of ``amount`` received on bill ``bill_id`` (Facturapi: a payment complement of a PPD
        invoice, ``method`` its SAT payment form; AcceptEasy: the whole amount due, the bill marked paid).
        ``paid_at``: a date or a timezone-aware datetime. Checked before anything is sent (amount, currency,
        balance); UnsupportedFeatureError where ``capabilities.payments`` is False."""
        self._check_open()
        with tracing.call(self.provider, "record_payment"):
            return await self._io.run(self._payment_flow(bill_id, amount, paid_at, method, provider_options))

    async def create_credit(
        self,
        bill_id: str,
        amount: Money,
        *,
        reason: str | None = None,
        provider_options: Mapping[str, Any] | None = None,
    ) -> Bill:
        """Issue a credit of ``amount`` (taxes included) against bill ``bill_id``: Facturapi's credit note (CFDI
        type E related to the invoice), returned as a Bill. UnsupportedFeatureError where ``capabilities.credits``
        is False."""
        self._check_open()
        with tracing.call(self.provider, "create_credit"):
            io, seen = self._io.capturing()
            return self._answered(await io.run(self._credit_flow(bill_id, amount, reason, provider_options)), seen)

    async def create_party(self, party: Party) -> Party:
        """Save ``party`` (a Facturapi customer, a BILL vendor); the saved party, its ``provider_id`` set."""
        self._check_open()
        with tracing.call(self.provider, "create_party"):
            return await self._io.run(self._party_flow("create_party", None, party))

    async def get_party(self, party_id: str) -> Party:
        self._check_open()
        with tracing.call(self.provider, "get_party"):
            return await self._io.run(self._party_flow("get_party", party_id, None))

    async def update_party(self, party_id: str, changes: Party | Mapping[str, Any]) -> Party:
        """Change a saved party: a Party (BILL and Facturapi: only the fields set; Facturapi re-sends the whole fiscal
        data when the address or tax system changes) or a mapping of the provider's field names."""
        self._check_open()
        with tracing.call(self.provider, "update_party"):
            return await self._io.run(self._party_flow("update_party", party_id, changes))

    async def delete_party(self, party_id: str) -> Party:
        """Delete a saved party (Facturapi deletes the customer, its invoices stay; BILL archives the vendor, its
        soft delete). A lost answer is settled by a read where the native call does so."""
        self._check_open()
        with tracing.call(self.provider, "delete_party"):
            return await self._io.run(self._party_flow("delete_party", party_id, None))


class _SyncClientTransport(httpx.AsyncBaseTransport):
    """Lets a caller's ``httpx.Client`` (or ``httpx2.Client``) serve an AsyncClient (each request runs in a worker
    thread)."""

    def __init__(self, client: Any, stack: Stack) -> None:
        self._client = client
        self._stack = stack

    async def handle_async_request(self, request: Any) -> Any:
        body = await request.aread()
        sync_request = self._client.build_request(request.method, request.url, headers=request.headers, content=body)
        import anyio.to_thread  # only for a blocking httpx.Client handed to the async client

        response = await anyio.to_thread.run_sync(lambda: self._client.send(sync_request))
        return self._stack.Response(response.status_code, headers=response.headers, content=response.content)


class Client(_Base[_E], Generic[_SN, _E]):
    """The blocking twin of :class:`AsyncClient`: the same flows, run in the calling thread on ``httpx.Client``.

    ``with billkit.Client("accepteasy", key_name=..., key=...) as client: client.submit(bill).result()``

    Share one client between threads freely. After ``os.fork()`` (gunicorn ``--preload``, Celery prefork) a client
    made in the parent keeps working in the child: its connection pool, locks and poller are made anew there.

    Typed as :class:`AsyncClient` is (see its docstring): ``Client("facturapi", ...)`` is a
    ``Client[FacturapiNative[SyncMode], facturapi.wire.WebhookEvent]``; options are :class:`ClientOptions`.
    """

    @overload
    def __init__(
        self: Client[FacturapiNative[SyncMode], FacturapiEvent],
        provider: Literal["facturapi"],
        *,
        api_key: str | None = None,
        credentials: Mapping[str, str | None] | None = None,
        **options: Unpack[ClientOptions],
    ) -> None: ...
    @overload
    def __init__(
        self: Client[AcceptEasyNative[SyncMode], AcceptEasyEvent],
        provider: Literal["accepteasy"],
        *,
        key_name: str | None = None,
        key: str | None = None,
        credentials: Mapping[str, str | None] | None = None,
        **options: Unpack[ClientOptions],
    ) -> None: ...
    @overload
    def __init__(
        self: Client[BillcomNative[SyncMode], BillcomEvent],
        provider: Literal["billcom", "bill", "bill.com"],
        *,
        username: str | None = None,
        password: str | None = None,
        organization_id: str | None = None,
        dev_key: str | None = None,
        events_base_url: str | None = None,
        credentials: Mapping[str, str | None] | None = None,
        **options: Unpack[ClientOptions],
    ) -> None: ...
    @overload
    def __init__(
        self: Client[Native[SyncMode], pydantic.BaseModel],
        provider: str,
        *,
        credentials: Mapping[str, str | None] | None = None,
        **options: Unpack[ClientOptions],
    ) -> None: ...
    def __init__(
        self,
        provider: str,
        *,
        base_url: str | None = None,
        timeout: float | Timeouts | None = None,
        retry: RetryPolicy | None = None,
        poll: PollPolicy | None = None,
        http_client: httpx.Client | httpx2.Client | None = None,
        transport: httpx.BaseTransport | httpx2.BaseTransport | None = None,
        sandbox: bool | Sandbox | None = None,
        clock: Clock | None = None,
        max_response_bytes: int = DEFAULT_MAX_RESPONSE_BYTES,
        token_key: str | bytes | TokenKey | None = None,
        credentials: Mapping[str, str | None] | None = None,
        http_stack: StackName | None = None,
        **provider_credentials: str | None,
    ) -> None:
        stack = choose(http_client, transport, http_stack=http_stack)
        if http_client is not None and not isinstance(http_client, stack.Client):
            raise ConfigurationError(
                f"the blocking Client takes an {stack.name}.Client (use AsyncClient for an {stack.name}.AsyncClient)"
            )
        self._configure(
            provider,
            blocking=True,
            base_url=base_url,
            timeout=timeout,
            retry=retry,
            poll=poll,
            sandbox=sandbox,
            clock=clock,
            max_response_bytes=max_response_bytes,
            token_key=token_key,
            credentials=_merge_credentials(provider, provider_credentials, credentials),
        )
        self._owns_http = http_client is None
        self._stack = stack
        self._http_transport = self._own_transport(transport, stack)
        lane = self._new_lane() if http_client is None else Lane(http_client)
        self._io = SyncIO([lane], self.clock, self.retry, self._adapter_cls.max_in_flight)
        self._scheduler = self._new_scheduler(self.poll_policy)
        self._owns_scheduler = True
        self._owns_adapter = True
        self._native = None
        on_fork(self, Client._after_fork)

    def _new_lane(self) -> Lane:
        timeout = self._stack.timeout(self.timeouts.to_httpx())
        http = self._stack.Client(transport=self._http_transport, timeout=timeout, follow_redirects=False)
        return self._lane(http)

    def _after_fork(self) -> None:
        # the parent's pool (its sockets and locks) is not this process's to use
        if self._owns_http and not self._closed:
            self._io.replace_lane(self._new_lane())

    def _new_scheduler(self, policy: PollPolicy) -> ThreadPoller:
        return ThreadPoller(
            provider=self.provider,
            poll=self._poll_flow,
            clock=self.clock,
            policy=policy,
            io=self._io.with_retry(policy.read_retry),
            token_key=self._token_key,
            answers=self._answers,
        )

    # -- lifecycle -------------------------------------------------------------------------------------
    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """End every pending operation (OperationCancelled), log out where the provider has sessions, and close
        the HTTP client if billkit created it."""
        if self._closed:
            return
        self._closed = True
        try:
            if self._owns_scheduler:
                assert isinstance(self._scheduler, ThreadPoller)
                self._scheduler.shutdown()
            if self._owns_adapter:
                with contextlib.suppress(BillkitError):  # best effort: a session left expires by itself
                    self._io.run(self._adapter.close())
        finally:
            if self._owns_http:
                self._io.http.close()

    def with_options(
        self,
        *,
        timeout: float | Timeouts | None = None,
        retry: RetryPolicy | None = None,
        poll: PollPolicy | None = None,
        headers: Mapping[str, str] | None = None,
        idempotency_key: str | None = None,
    ) -> Self:
        """A copy with other options that shares the connection pool, session, sandbox and poller; as
        :meth:`AsyncClient.with_options`."""
        self._check_open()
        twin = type(self).__new__(type(self))
        call = self._derive_fields(
            twin, retry, poll, timeout=timeout, headers=headers, idempotency_key=idempotency_key, call=self._io.call
        )
        twin._http_transport = self._http_transport
        twin._io = self._io.with_retry(twin.retry).with_call(call)
        self._share_scheduler(twin, poll)
        return twin

    @property
    def with_raw_response(self) -> RawResponses:
        """The common calls, each returning a :class:`~billkit.responses.RawResponse` (status, headers, request
        id of the HTTP answer; ``parse()`` the value): ``raw = client.with_raw_response.create(bill)``."""
        return RawResponses(self)

    # -- the common surface ----------------------------------------------------------------------------
    @property
    def native(self) -> _SN:
        """The provider's native client, with blocking methods (listings come back as lists). The same object on
        every access, so settings made on it stay. Typed per provider (``FacturapiNative[SyncMode]``, ...)."""
        if self._native is None:
            self._native = self._adapter.native_client(self._io)
        return cast(_SN, self._native)

    def create(self, bill: Bill) -> Bill:
        self._check_open()
        with tracing.call(self.provider, "create"):
            io, seen = self._io.capturing()
            return self._answered(io.run(self._adapter.create(self._keyed(bill))), seen)

    def get(self, provider_id: str) -> Bill:
        self._check_open()
        with tracing.call(self.provider, "get"):
            io, seen = self._io.capturing()
            return self._answered(io.run(self._adapter.get(provider_id)), seen)

    def find_existing(self, bill: Bill, *, since: float | None = None) -> Bill | None:
        """The bill the provider holds under ``bill``'s key (see :meth:`pin_key`), or None when a safe read shows
        it holds none. ``since``: the wall time of the first send, for providers that look in a time window."""
        self._check_open()
        with tracing.call(self.provider, "find_existing"):
            return self._io.run(self._adapter.find_existing(bill, since))

    def find_existing_many(self, bills: Sequence[Bill], *, since: float | None = None) -> list[Bill | None]:
        """:meth:`find_existing` for each of ``bills``, in order, in as few reads as the provider allows."""
        self._check_open()
        with tracing.call(self.provider, "find_existing_many"):
            return self._io.run(self._adapter.find_existing_many(bills, since))

    def submit(self, bill: Bill, *, deadline: float | None = None) -> BlockingOperation[Bill]:
        self._check_open()
        with tracing.call(self.provider, "submit") as span:
            io, seen = self._io.capturing()
            started = io.run(self._adapter.submit(self._keyed(bill)))
            core = self._start(started, deadline)
            span.operation(core)
        return BlockingOperation(core, self._answers(seen, started))

    def submit_and_wait(self, bill: Bill, *, timeout: float | None = None) -> Bill:
        with tracing.call(self.provider, "submit_and_wait"):
            return self.submit(bill, deadline=timeout).result()

    def submit_many(
        self,
        bills: Sequence[Bill],
        *,
        deadline: float | None = None,
        on_progress: Callable[[int, int], None] | None = None,
    ) -> BlockingBulkOperation:
        self._check_open()
        bills = list(bills)
        if not bills:
            raise BillkitError("submit_many needs at least one bill", provider=self.provider)
        with tracing.call(self.provider, "submit_many") as span:
            io, seen = self._io.capturing()
            started = io.run(self._adapter.submit_many([self._keyed(b) for b in bills]))
            core = self._bulk(started, len(bills), deadline, on_progress)
            span.operation(core)
        return BlockingBulkOperation(core, self._answers(seen))

    def wait_for(
        self,
        provider_id: str,
        *,
        until: Sequence[BillStatus] | BillStatus = BillStatus.PAID,
        deadline: float | None = None,
    ) -> BlockingOperation[Bill]:
        self._check_open()
        with tracing.call(self.provider, "wait_for") as span:
            core = self._watch_core(provider_id, until, deadline)
            span.operation(core)
        return BlockingOperation(core)

    @overload
    def resume(self, token: str, *, bulk: Literal[False], deadline: float | None = None) -> BlockingOperation[Bill]: ...
    @overload
    def resume(self, token: str, *, bulk: Literal[True], deadline: float | None = None) -> BlockingBulkOperation: ...
    @overload
    def resume(
        self, token: str, *, bulk: bool | None = None, deadline: float | None = None
    ) -> BlockingOperation[Bill] | BlockingBulkOperation: ...
    def resume(
        self, token: str, *, bulk: bool | None = None, deadline: float | None = None
    ) -> BlockingOperation[Bill] | BlockingBulkOperation:
        """Rebuild an operation from its token; ``bulk=`` as in :meth:`AsyncClient.resume`."""
        self._check_open()
        with tracing.call(self.provider, "resume") as span:
            core = self._resume_core(token, deadline, bulk)
            span.operation(core)
        if _is_bulk(core):
            return BlockingBulkOperation(core)
        return BlockingOperation(core)

    # -- payments, credits and parties in the common model (docs/fields.md) ---------------------------------------
    def record_payment(
        self,
        bill_id: str,
        amount: Money,
        *,
        paid_at: dt.date | dt.datetime | None = None,
        method: str | None = None,
        provider_options: Mapping[str, Any] | None = None,
    ) -> Payment:
        """As :meth:`AsyncClient.record_payment`."""
        self._check_open()
        with tracing.call(self.provider, "record_payment"):
            return self._io.run(self._payment_flow(bill_id, amount, paid_at, method, provider_options))

    def create_credit(
        self,
        bill_id: str,
        amount: Money,
        *,
        reason: str | None = None,
        provider_options: Mapping[str, Any] | None = None,
    ) -> Bill:
        """As :meth:`AsyncClient.create_credit`."""
        self._check_open()
        with tracing.call(self.provider, "create_credit"):
            io, seen = self._io.capturing()
            return self._answered(io.run(self._credit_flow(bill_id, amount, reason, provider_options)), seen)

    def create_party(self, party: Party) -> Party:
        """As :meth:`AsyncClient.create_party`."""
        self._check_open()
        with tracing.call(self.provider, "create_party"):
            return self._io.run(self._party_flow("create_party", None, party))

    def get_party(self, party_id: str) -> Party:
        self._check_open()
        with tracing.call(self.provider, "get_party"):
            return self._io.run(self._party_flow("get_party", party_id, None))

    def update_party(self, party_id: str, changes: Party | Mapping[str, Any]) -> Party:
        """As :meth:`AsyncClient.update_party`."""
        self._check_open()
        with tracing.call(self.provider, "update_party"):
            return self._io.run(self._party_flow("update_party", party_id, changes))

    def delete_party(self, party_id: str) -> Party:
        """As :meth:`AsyncClient.delete_party`."""
        self._check_open()
        with tracing.call(self.provider, "delete_party"):
            return self._io.run(self._party_flow("delete_party", party_id, None))


class AsyncRawResponses:
    """``client.with_raw_response``: the common calls of an :class:`AsyncClient`, each returning a
    :class:`~billkit.responses.RawResponse` whose ``parse()`` is what the plain call returns. The calls are the
    client's own (the same requests, options and tracing); only what comes back differs."""

    __slots__ = ("_client",)

    def __init__(self, client: AsyncClient[Any, Any]) -> None:
        self._client = client

    async def create(self, bill: Bill) -> RawResponse[Bill]:
        value = await self._client.create(bill)
        return RawResponse(value, attached(value))

    async def get(self, provider_id: str) -> RawResponse[Bill]:
        value = await self._client.get(provider_id)
        return RawResponse(value, attached(value))

    async def submit(self, bill: Bill, *, deadline: float | None = None) -> RawResponse[Operation[Bill]]:
        op = await self._client.submit(bill, deadline=deadline)
        return RawResponse(op, op._responses)

    async def submit_many(
        self,
        bills: Sequence[Bill],
        *,
        deadline: float | None = None,
        on_progress: Callable[[int, int], None] | None = None,
    ) -> RawResponse[BulkOperation]:
        op = await self._client.submit_many(bills, deadline=deadline, on_progress=on_progress)
        return RawResponse(op, op._responses)


class RawResponses:
    """``client.with_raw_response`` of a blocking :class:`Client` (see :class:`AsyncRawResponses`)."""

    __slots__ = ("_client",)

    def __init__(self, client: Client[Any, Any]) -> None:
        self._client = client

    def create(self, bill: Bill) -> RawResponse[Bill]:
        value = self._client.create(bill)
        return RawResponse(value, attached(value))

    def get(self, provider_id: str) -> RawResponse[Bill]:
        value = self._client.get(provider_id)
        return RawResponse(value, attached(value))

    def submit(self, bill: Bill, *, deadline: float | None = None) -> RawResponse[BlockingOperation[Bill]]:
        op = self._client.submit(bill, deadline=deadline)
        return RawResponse(op, op._responses)

    def submit_many(
        self,
        bills: Sequence[Bill],
        *,
        deadline: float | None = None,
        on_progress: Callable[[int, int], None] | None = None,
    ) -> RawResponse[BlockingBulkOperation]:
        op = self._client.submit_many(bills, deadline=deadline, on_progress=on_progress)
        return RawResponse(op, op._responses)

"""billkit.testing: everything a user's own test suite needs to exercise billkit offline.

* :func:`sandbox` - a fresh in-process sandbox of a provider (``sandbox("accepteasy", clock=..., faults=...)``);
  pass it to a client with ``AsyncClient("accepteasy", sandbox=box)``. ``box.requests`` lists what it received.
  The result is typed per provider (``AcceptEasySandbox``, ``BillcomSandbox``, ``FacturapiSandbox``), so the
  provider's triggers and inspection methods type-check. The three classes are exported here too (and from each
  provider's package), for annotations and for constructing one with the provider's own options.
* :class:`VirtualClock` - virtual time; polling and the sandboxes' background jobs run on it.
* :class:`Faults` / :class:`Fault` - fault injection (5xx, 429 with Retry-After, dropped connections before
  or after the server acted, slow answers), by rate or one-shot.
* pytest fixtures in :mod:`billkit.testing.plugin`, registered through the ``pytest11`` entry point so
  ``pip install billkit`` is enough: ``billkit_clock`` (a VirtualClock) and ``billkit_sandbox`` (a
  :class:`SandboxFactory`: ``billkit_sandbox("facturapi")``).

This module needs nothing beyond billkit itself: pytest is imported only by the plugin, when pytest loads it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Literal, Protocol, overload

from billkit.client import adapter_class
from billkit.clock import Clock, VirtualClock
from billkit.sandboxing import Fault, Faults, RecordedRequest, Sandbox

if TYPE_CHECKING:
    from billkit.providers.accepteasy.sandbox import AcceptEasySandbox
    from billkit.providers.billcom.sandbox import BillcomSandbox
    from billkit.providers.facturapi.sandbox import FacturapiSandbox

__all__ = [
    "AcceptEasySandbox",
    "BillcomSandbox",
    "FacturapiSandbox",
    "Fault",
    "Faults",
    "RecordedRequest",
    "Sandbox",
    "SandboxFactory",
    "VirtualClock",
    "sandbox",
]

#: each provider's sandbox class and the package it lives in, imported only when asked for (``import
#: billkit.testing`` loads no provider)
_SANDBOX_CLASSES = {
    "AcceptEasySandbox": "billkit.providers.accepteasy",
    "BillcomSandbox": "billkit.providers.billcom",
    "FacturapiSandbox": "billkit.providers.facturapi",
}


def __getattr__(name: str) -> Any:
    if name in _SANDBOX_CLASSES:
        import importlib

        return getattr(importlib.import_module(_SANDBOX_CLASSES[name]), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))


@overload
def sandbox(provider: Literal["accepteasy"], *, clock: Clock | None = ..., faults: Faults | None = ...
            ) -> AcceptEasySandbox: ...  # fmt: skip
@overload
def sandbox(provider: Literal["billcom"], *, clock: Clock | None = ..., faults: Faults | None = ...
            ) -> BillcomSandbox: ...  # fmt: skip
@overload
def sandbox(provider: Literal["facturapi"], *, clock: Clock | None = ..., faults: Faults | None = ...
            ) -> FacturapiSandbox: ...  # fmt: skip
@overload
def sandbox(provider: str, *, clock: Clock | None = ..., faults: Faults | None = ...) -> Sandbox: ...
def sandbox(provider: str, *, clock: Clock | None = None, faults: Faults | None = None) -> Sandbox:
    """A fresh sandbox of ``provider`` on ``clock`` (a new autojumping VirtualClock by default)."""
    return adapter_class(provider).make_sandbox(clock=clock or VirtualClock(), faults=faults)


class SandboxFactory(Protocol):
    """What the ``billkit_sandbox`` fixture is: ``billkit_sandbox("accepteasy", faults=...)`` gives a sandbox on
    the test's ``billkit_clock``, typed per provider."""

    @overload
    def __call__(self, provider: Literal["accepteasy"], *, faults: Faults | None = ...) -> AcceptEasySandbox: ...
    @overload
    def __call__(self, provider: Literal["billcom"], *, faults: Faults | None = ...) -> BillcomSandbox: ...
    @overload
    def __call__(self, provider: Literal["facturapi"], *, faults: Faults | None = ...) -> FacturapiSandbox: ...
    @overload
    def __call__(self, provider: str, *, faults: Faults | None = ...) -> Sandbox: ...

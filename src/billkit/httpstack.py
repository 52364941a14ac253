"""The HTTP library a client runs on: ``httpx`` (the default) or ``httpx2``, its maintained fork (same API,
``import httpx2``; the ``billkit[httpx2]`` extra, Python 3.11+).

Which one a client uses is decided once, when it is made (:func:`choose`):

1. an ``http_client=`` or ``transport=`` passed in decides by its own type: an ``httpx2.AsyncClient`` runs on
   httpx2, an ``httpx.AsyncClient`` on httpx. billkit never mixes the two in one client;
2. otherwise ``http_stack="httpx2"`` (or ``"httpx"``) on the client;
3. otherwise the environment variable ``BILLKIT_HTTP_STACK`` (``httpx`` or ``httpx2``), for a whole process;
4. otherwise httpx, **even when httpx2 is installed**: a library switching its HTTP stack because some other
   package installed httpx2 would silently bypass the application's ``respx`` mocks, event hooks and proxies.

A sandbox is an httpx transport; on an httpx2 client it is reached through :class:`SandboxBridge`, which hands
it the same request and gives its answer (and its injected connection faults, as httpx2's own exceptions) back
to httpx2.

The rest of billkit asks a :class:`Stack` for the classes it builds requests with and the exceptions it sorts
failures by, so the flows and their drivers are the same code on both libraries.
"""

from __future__ import annotations

import importlib
import os
from types import ModuleType
from typing import Any, Literal

import httpx

from billkit.errors import ConfigurationError

__all__ = [
    "ENV",
    "HTTPX",
    "SandboxBridge",
    "Stack",
    "StackName",
    "choose",
    "failure_classes",
    "stack_named",
    "stack_of",
]

StackName = Literal["httpx", "httpx2"]

#: the environment variable that picks the stack of the clients billkit makes itself
ENV = "BILLKIT_HTTP_STACK"


class Stack:
    """One HTTP library: the module, and what billkit takes from it."""

    __slots__ = (
        "AsyncClient",
        "ByteStream",
        "Client",
        "Headers",
        "InvalidURL",
        "Request",
        "Response",
        "Timeout",
        "URL",
        "USE_CLIENT_DEFAULT",
        "module",
        "name",
    )  # fmt: skip

    def __init__(self, module: ModuleType) -> None:
        self.module = module
        self.name: StackName = "httpx2" if module.__name__ == "httpx2" else "httpx"
        # what the drivers use per request, read once (typed Any: the two libraries' classes are distinct types)
        self.Request: Any = module.Request
        self.Response: Any = module.Response
        self.Headers: Any = module.Headers
        self.URL: Any = module.URL
        self.ByteStream: Any = module.ByteStream
        self.Timeout: Any = module.Timeout
        self.InvalidURL: type[Exception] = module.InvalidURL
        self.USE_CLIENT_DEFAULT: Any = module.USE_CLIENT_DEFAULT
        self.Client: Any = module.Client
        self.AsyncClient: Any = module.AsyncClient

    def __repr__(self) -> str:
        return f"<billkit stack {self.name} {getattr(self.module, '__version__', '?')}>"

    def owns(self, obj: object) -> bool:
        """Whether ``obj`` (a client, transport, request, ...) is an instance of one of this library's classes."""
        return _library_of(type(obj)) == self.name

    def timeout(self, timeout: Any) -> Any:
        """``timeout`` (an httpx or httpx2 ``Timeout``, or None) as this library's ``Timeout``."""
        if timeout is None or isinstance(timeout, self.Timeout):
            return timeout
        return self.Timeout(**timeout.as_dict())


HTTPX = Stack(httpx)
_loaded: dict[str, Stack] = {"httpx": HTTPX}


def stack_named(name: str) -> Stack:
    """The stack called ``name``; ConfigurationError for another name, or for httpx2 when it is not installed."""
    if name in _loaded:
        return _loaded[name]
    if name != "httpx2":
        raise ConfigurationError(f"unknown HTTP stack {name!r}: use 'httpx' or 'httpx2'")
    try:
        module = importlib.import_module("httpx2")
    except ImportError as exc:
        raise ConfigurationError(
            "the httpx2 HTTP stack needs httpx2: pip install 'billkit[httpx2]' (Python 3.11+)"
        ) from exc
    stack = _loaded["httpx2"] = Stack(module)
    return stack


def _library_of(cls: type) -> str | None:
    """``httpx`` or ``httpx2`` when ``cls`` or one of its bases comes from that library (a user's subclass of
    ``httpx2.AsyncClient`` counts), else None."""
    for base in cls.__mro__:
        top = base.__module__.partition(".")[0]
        if top in ("httpx", "httpx2"):
            return top
    return None


def stack_of(obj: object) -> Stack:
    """The stack ``obj`` (an httpx or httpx2 client) belongs to; httpx for anything else (a duck-typed client)."""
    return stack_named(_library_of(type(obj)) or "httpx")


def choose(*given: object, http_stack: str | None = None) -> Stack:
    """The stack of a client made with the objects ``given`` (its ``http_client`` and ``transport``, either may be
    None) and its ``http_stack`` option, by the rules in this module's docstring."""
    from billkit.sandboxing import Sandbox  # a sandbox serves either library, through the bridge

    found = {_library_of(type(obj)) for obj in given if obj is not None and not isinstance(obj, Sandbox)}
    found.discard(None)
    if len(found) > 1:
        raise ConfigurationError("http_client and transport come from different HTTP libraries (httpx and httpx2)")
    if found:
        (lib,) = found
        assert lib is not None
        if http_stack is not None and http_stack != lib:
            raise ConfigurationError(f"http_stack={http_stack!r}, but the http_client or transport given is {lib}'s")
        return stack_named(lib)
    if http_stack is not None:
        return stack_named(http_stack)
    env = os.environ.get(ENV, "").strip()
    if env:
        return stack_named(env)
    return HTTPX


_Classes = tuple[type[BaseException], ...]


def failure_classes() -> tuple[_Classes, _Classes, _Classes]:
    """(never sent, timed out, other transport errors): the exception classes of every stack loaded so far, for
    sorting a failed attempt (httpx2's classes are not httpx's, nor subclasses of them)."""
    key = tuple(_loaded)
    cached = _classes.get(key)
    if cached is None:
        mods = [s.module for s in _loaded.values()]
        cached = _classes[key] = (
            tuple(c for m in mods for c in (m.ConnectError, m.ConnectTimeout, m.PoolTimeout)),
            tuple(m.TimeoutException for m in mods),
            tuple(m.TransportError for m in mods),
        )
    return cached


_classes: dict[tuple[str, ...], tuple[_Classes, _Classes, _Classes]] = {}


class SandboxBridge:
    """An httpx2 transport (sync and async) in front of a sandbox, which is an httpx transport: each request is
    handed over as the same method, URL, headers and body, and the answer comes back whole. A connection fault the
    sandbox injects (``httpx.ConnectError``, ``httpx.RemoteProtocolError``, a timeout) is raised as httpx2's
    exception of the same name, so billkit sorts it the same way on both stacks."""

    def __init__(self, sandbox: Any, stack: Stack) -> None:
        self.sandbox = sandbox
        self._stack = stack

    def __repr__(self) -> str:
        return f"SandboxBridge({self.sandbox!r})"

    def _request(self, request: Any, body: bytes) -> httpx.Request:
        return httpx.Request(
            request.method, str(request.url), headers=list(request.headers.raw), content=body,
            extensions=dict(request.extensions),
        )  # fmt: skip

    def _response(self, response: httpx.Response, request: Any) -> Any:
        return self._stack.Response(
            response.status_code, headers=list(response.headers.raw), content=response.content, request=request
        )

    def _translated(self, exc: httpx.HTTPError, request: Any) -> BaseException:
        cls: Any = getattr(self._stack.module, type(exc).__name__, None)
        if not isinstance(cls, type) or not issubclass(cls, Exception):
            return exc
        make: Any = cls  # httpx2's RequestError subclasses take request=, a few others do not
        try:
            made: BaseException = make(str(exc), request=request)
        except TypeError:
            made = make(str(exc))
        return made

    def handle_request(self, request: Any) -> Any:
        try:
            response = self.sandbox.handle_request(self._request(request, request.read()))
            response.read()
        except httpx.HTTPError as exc:
            raise self._translated(exc, request) from exc
        return self._response(response, request)

    async def handle_async_request(self, request: Any) -> Any:
        try:
            response = await self.sandbox.handle_async_request(self._request(request, await request.aread()))
            await response.aread()
        except httpx.HTTPError as exc:
            raise self._translated(exc, request) from exc
        return self._response(response, request)

    def close(self) -> None:
        pass

    async def aclose(self) -> None:
        pass

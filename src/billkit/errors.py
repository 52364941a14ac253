"""Every error billkit raises. Catch :class:`BillkitError` to catch them all.

::

    BillkitError
    ├── ConfigurationError          missing credential, bad option (raised at construction)
    │   └── SandboxStateError       a sandbox state file of another format or kind, or with a value not allowed
    ├── ValidationError             bad input, found before anything is sent; lists every problem
    │   └── MoneyError              a float, an unknown currency, an inexact conversion
    ├── UnsupportedFeatureError     a common field or call this provider cannot express
    ├── APIError                    the provider answered with an error
    │   ├── AuthenticationError     401
    │   ├── PermissionDeniedError   402 / 403
    │   ├── NotFoundError           404
    │   ├── ConflictError           409 (idempotency key in use, duplicate reference)
    │   ├── RateLimitError          429 and provider rate-limit codes; ``retry_after`` in seconds
    │   ├── ServerError             5xx
    │   ├── ResponseTooLargeError   an answer larger than the client's ``max_response_bytes`` (not read)
    │   └── BulkRejected            an all-or-nothing bulk refused whole, with per-item errors
    ├── APIConnectionError          no answer (connect error, dropped connection)
    │   └── APITimeoutError         no answer in time
    ├── OutcomeUnknownError         a create that may have reached the server; says how to check
    ├── OperationFailed             an operation ended in a terminal failure
    ├── OperationTimeout            an operation's deadline passed; carries the resume token
    ├── OperationCancelled          the operation's local polling was cancelled; carries the token
    ├── TokenError                  a resume token that is malformed, of an unknown version or provider
    ├── ClientClosedError           a call on a client after ``close()`` / ``aclose()``
    └── WebhookVerificationError    a webhook whose signature or credentials do not match

Every error pickles and deep-copies (multiprocessing, Celery, ``ProcessPoolExecutor``): the same type, message
and fields come back.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

__all__ = [
    "APIConnectionError",
    "APIError",
    "APITimeoutError",
    "AuthenticationError",
    "BillkitError",
    "BulkRejected",
    "ClientClosedError",
    "ConfigurationError",
    "ConflictError",
    "MoneyError",
    "NotFoundError",
    "OperationCancelled",
    "OperationFailed",
    "OperationTimeout",
    "OutcomeUnknownError",
    "PermissionDeniedError",
    "Problem",
    "RateLimitError",
    "ResponseTooLargeError",
    "SandboxStateError",
    "ServerError",
    "TokenError",
    "UnsupportedFeatureError",
    "ValidationError",
    "WebhookVerificationError",
    "api_error_for_status",
]


def _rebuild(cls: type[BillkitError], args: tuple[Any, ...], state: dict[str, Any]) -> BillkitError:
    error = cls.__new__(cls)
    error.args = args
    error.__dict__.update(state)
    return error


class BillkitError(Exception):
    """Base of every billkit error."""

    def __init__(self, message: str, *, provider: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.provider = provider

    def __str__(self) -> str:
        prefix = f"[{self.provider}] " if self.provider else ""
        return prefix + self.message

    def __reduce__(self) -> tuple[Any, ...]:
        # Exception's own reduce calls cls(*args), which keyword-only fields break; rebuild from the fields instead
        return (_rebuild, (type(self), self.args, self._state()))

    def _state(self) -> dict[str, Any]:
        return dict(self.__dict__)


class ConfigurationError(BillkitError):
    """The client was configured wrongly (a missing credential names its argument and environment variable)."""


class SandboxStateError(ConfigurationError):
    """A sandbox state file that cannot be loaded (or a sandbox value that cannot be saved): not a billkit state file,
    another format version or sandbox kind, an unknown tag, or a class outside the allow-list. ``path`` is where the
    bad value is in the document (``state.records['inv_1']``), when one value is to blame."""

    def __init__(self, message: str, *, path: str | None = None, provider: str | None = None) -> None:
        super().__init__(message, provider=provider)
        self.path = path


@dataclass(frozen=True)
class Problem:
    """One problem found by validation: the field path (``line_items[2].unit_price``) and what is wrong."""

    field: str
    message: str

    def __str__(self) -> str:
        return f"{self.field}: {self.message}"


class ValidationError(BillkitError, ValueError):
    """Input that cannot be sent. ``problems`` lists every problem found, each with its field path."""

    def __init__(
        self,
        problems: Iterable[Problem] | str,
        *,
        provider: str | None = None,
    ) -> None:
        found = [Problem("", problems)] if isinstance(problems, str) else list(problems)
        self.problems: list[Problem] = found
        listed = "; ".join(str(p) if p.field else p.message for p in found)
        count = f"{len(found)} problem{'s' if len(found) != 1 else ''}"
        super().__init__(f"invalid input ({count}): {listed}", provider=provider)

    @property
    def fields(self) -> list[str]:
        return [p.field for p in self.problems]


class MoneyError(ValidationError):
    """A float where money was expected, an unknown currency, or a conversion that would lose precision."""

    def __init__(self, message: str) -> None:
        super().__init__([Problem("", message)])
        self.message = message

    def __str__(self) -> str:
        return self.message


class UnsupportedFeatureError(BillkitError):
    """A common field, value or call that this provider cannot express. Never silently dropped."""

    def __init__(self, provider: str, feature: str, detail: str = "") -> None:
        self.feature = feature
        text = f"{feature} is not supported by {provider}"
        super().__init__(text + (f": {detail}" if detail else ""), provider=provider)


class APIError(BillkitError):
    """The provider answered with an error.

    Carries ``provider``, ``status_code`` (HTTP), ``code`` (the provider's error code), ``message``,
    ``request_id`` (the provider's log or request id, for support tickets) and ``raw`` (the parsed body).
    """

    def __init__(
        self,
        message: str,
        *,
        provider: str,
        status_code: int | None = None,
        code: str | None = None,
        request_id: str | None = None,
        raw: Any = None,
        retryable: bool | None = None,
    ) -> None:
        super().__init__(message, provider=provider)
        self.status_code = status_code
        self.code = code
        self.request_id = request_id
        self.raw = raw
        #: fixed by the adapter's error parser when it builds the error: True when the provider documents that this
        #: answer means it refused before acting (BILL's BDC_1322), so even a create may be sent again; False to
        #: forbid any retry (BILL's hourly limit on a 429); None (default) leaves it to the HTTP status
        self.retryable = retryable

    def __str__(self) -> str:
        parts = [f"[{self.provider}]"]
        if self.status_code is not None:
            parts.append(f"HTTP {self.status_code}")
        if self.code:
            parts.append(f"{self.code}:")
        parts.append(self.message)
        if self.request_id:
            parts.append(f"(request id {self.request_id})")
        return " ".join(parts)


class AuthenticationError(APIError):
    """The credentials were refused (401). Check the key, or that it is a test key for the sandbox."""


class PermissionDeniedError(APIError):
    """The account may not do this (402 payment required, 403 forbidden)."""


class NotFoundError(APIError):
    """The resource does not exist (404)."""


class ConflictError(APIError):
    """The request conflicts with the provider's state (409), e.g. an idempotency key still in use."""


class RateLimitError(APIError):
    """Too many requests. ``retry_after`` is the provider's hint in seconds, when it gave one."""

    def __init__(self, message: str, *, retry_after: float | None = None, **kwargs: Any) -> None:
        super().__init__(message, **kwargs)
        self.retry_after = retry_after

    def __str__(self) -> str:
        base = super().__str__()
        return base + (f" (retry after {self.retry_after:g} s)" if self.retry_after is not None else "")


class ServerError(APIError):
    """The provider failed (5xx)."""


class ResponseTooLargeError(APIError):
    """The answer's body is larger than the client's ``max_response_bytes``; billkit stopped reading it."""


class BulkRejected(APIError):
    """An all-or-nothing bulk was refused whole. ``item_errors`` maps input index to that item's error."""

    def __init__(self, message: str, *, item_errors: Mapping[int, BillkitError], **kwargs: Any) -> None:
        super().__init__(message, **kwargs)
        self.item_errors: dict[int, BillkitError] = dict(item_errors)


class APIConnectionError(BillkitError):
    """No answer came back (connection refused, dropped, DNS)."""


class APITimeoutError(APIConnectionError):
    """No answer came back in time."""


class OutcomeUnknownError(BillkitError):
    """A create may have reached the server, no usable answer came back, and the provider cannot de-duplicate it.

    billkit does not retry it (that could create the bill twice). ``how_to_check`` says how to find out;
    ``reference`` is the business reference to look for; ``cause`` is what happened (a dropped connection,
    a read timeout, a 5xx).
    """

    def __init__(
        self,
        message: str,
        *,
        provider: str,
        how_to_check: str,
        reference: str | None = None,
        cause: BaseException | None = None,
    ) -> None:
        text = f"{message}; the outcome is unknown and billkit did not retry. {how_to_check}"
        super().__init__(text, provider=provider)
        self.how_to_check = how_to_check
        self.reference = reference
        self.cause = cause


class OperationFailed(BillkitError):
    """An operation reached a terminal failure. ``status`` / ``provider_status`` are the last seen."""

    def __init__(
        self,
        message: str,
        *,
        provider: str,
        status: str | None = None,
        provider_status: str | None = None,
        code: str | None = None,
        operation_id: str | None = None,
        raw: Any = None,
        cause: BaseException | None = None,
    ) -> None:
        super().__init__(message, provider=provider)
        self.status = status
        self.provider_status = provider_status
        self.code = code
        self.operation_id = operation_id
        self.raw = raw
        #: what ended the operation when it was not the provider's answer (an unexpected exception in a status read)
        self.cause = cause
        if cause is not None:
            self.__cause__ = cause

    def __str__(self) -> str:
        where = f" (operation {self.operation_id}, provider status {self.provider_status!r})"
        code = f"{self.code}: " if self.code else ""
        return f"[{self.provider}] {code}{self.message}{where}"


class _CarriesToken(BillkitError):
    """An error with a resume token, built when first read (a 10,000-item bulk cancelled builds none it does not
    need); pickling and copying build it."""

    def __init__(self, message: str, *, provider: str | None, token: str | Callable[[], str]) -> None:
        super().__init__(message, provider=provider)
        self._token: str | None = token if isinstance(token, str) else None
        self._make_token: Callable[[], str] | None = None if isinstance(token, str) else token

    @property
    def token(self) -> str:
        if self._token is None:
            assert self._make_token is not None
            self._token, self._make_token = self._make_token(), None
        return self._token

    def _state(self) -> dict[str, Any]:
        _ = self.token
        return {k: v for k, v in self.__dict__.items() if k != "_make_token"}


class OperationTimeout(_CarriesToken):
    """The deadline passed before a terminal status. Resume later with ``client.resume(err.token)``."""

    def __init__(
        self,
        message: str,
        *,
        provider: str,
        status: str | None,
        provider_status: str | None,
        token: str | Callable[[], str],
    ) -> None:
        super().__init__(message, provider=provider, token=token)
        self.status = status
        self.provider_status = provider_status


class OperationCancelled(_CarriesToken):
    """Local polling was cancelled (``op.cancel()``, or the client was closed); the provider was not told.
    ``token`` resumes it."""

    def __init__(self, message: str, *, provider: str, token: str | Callable[[], str]) -> None:
        super().__init__(message, provider=provider, token=token)


class TokenError(BillkitError):
    """A resume token that is malformed, of an unknown version, or from another provider."""


class JournalError(BillkitError):
    """A batch journal that cannot be used: not a billkit journal, a newer format, another provider's batch."""


class ClientClosedError(BillkitError):
    """The client was closed (``close()`` / ``aclose()``); make a new one."""


class WebhookVerificationError(BillkitError):
    """A webhook whose signature, credentials or body do not verify. Answer it with 400/401; never trust it."""


_STATUS_CLASSES: dict[int, type[APIError]] = {
    401: AuthenticationError,
    402: PermissionDeniedError,
    403: PermissionDeniedError,
    404: NotFoundError,
    409: ConflictError,
    429: RateLimitError,
}


def api_error_for_status(status_code: int) -> type[APIError]:
    """The APIError subclass for an HTTP status (5xx -> ServerError; other 4xx -> APIError)."""
    if status_code >= 500:
        return ServerError
    return _STATUS_CLASSES.get(status_code, APIError)


def problems_from(items: Sequence[tuple[str, str]]) -> list[Problem]:
    """Build problems from ``(field, message)`` pairs."""
    return [Problem(f, m) for f, m in items]

"""billkit: one typed model for bills and invoices at AcceptEasy, BILL and Facturapi.

async with billkit.AsyncClient("facturapi", sandbox=True) as client:
    invoice = await client.submit_and_wait(bill)
"""

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from billkit.client import AsyncClient, Capabilities, Client
    from billkit.errors import (
        APIConnectionError,
        APIError,
        APITimeoutError,
        AuthenticationError,
        BillkitError,
        BulkRejected,
        ClientClosedError,
        ConfigurationError,
        ConflictError,
        JournalError,
        MoneyError,
        NotFoundError,
        OperationCancelled,
        OperationFailed,
        OperationTimeout,
        OutcomeUnknownError,
        PermissionDeniedError,
        Problem,
        RateLimitError,
        ResponseTooLargeError,
        SandboxStateError,
        ServerError,
        TokenError,
        UnsupportedFeatureError,
        ValidationError,
        WebhookVerificationError,
    )
    from billkit.models import (
        Address,
        Bill,
        BillStatus,
        BulkResult,
        Direction,
        ItemResult,
        ItemStatus,
        LineItem,
        Party,
        Payment,
        Tax,
    )
    from billkit.money import Money
    from billkit.operations import (
        BlockingBulkOperation,
        BlockingOperation,
        BulkOperation,
        Operation,
        OperationState,
        PollPolicy,
        as_completed,
        gather,
    )
    from billkit.responses import RawResponse, ResponseInfo
    from billkit.transport import RetryPolicy, Timeouts

__version__ = "0.1.0"

#: each public name and the module that defines it: imported on first use (PEP 562), so ``import billkit`` costs
#: almost nothing and a program pays for httpx, pydantic and billkit's models only once it uses them
_LAZY = {
    "APIConnectionError": "billkit.errors",
    "APIError": "billkit.errors",
    "APITimeoutError": "billkit.errors",
    "Address": "billkit.models",
    "AsyncClient": "billkit.client",
    "AuthenticationError": "billkit.errors",
    "Bill": "billkit.models",
    "BillStatus": "billkit.models",
    "BillkitError": "billkit.errors",
    "BlockingBulkOperation": "billkit.operations",
    "BlockingOperation": "billkit.operations",
    "BulkOperation": "billkit.operations",
    "BulkRejected": "billkit.errors",
    "BulkResult": "billkit.models",
    "Capabilities": "billkit.client",
    "Client": "billkit.client",
    "ClientClosedError": "billkit.errors",
    "ConfigurationError": "billkit.errors",
    "ConflictError": "billkit.errors",
    "Direction": "billkit.models",
    "ItemResult": "billkit.models",
    "ItemStatus": "billkit.models",
    "JournalError": "billkit.errors",
    "LineItem": "billkit.models",
    "Money": "billkit.money",
    "MoneyError": "billkit.errors",
    "NotFoundError": "billkit.errors",
    "Operation": "billkit.operations",
    "OperationCancelled": "billkit.errors",
    "OperationFailed": "billkit.errors",
    "OperationState": "billkit.operations",
    "OperationTimeout": "billkit.errors",
    "OutcomeUnknownError": "billkit.errors",
    "Party": "billkit.models",
    "Payment": "billkit.models",
    "PermissionDeniedError": "billkit.errors",
    "PollPolicy": "billkit.operations",
    "Problem": "billkit.errors",
    "RateLimitError": "billkit.errors",
    "RawResponse": "billkit.responses",
    "ResponseInfo": "billkit.responses",
    "ResponseTooLargeError": "billkit.errors",
    "RetryPolicy": "billkit.transport",
    "SandboxStateError": "billkit.errors",
    "ServerError": "billkit.errors",
    "Tax": "billkit.models",
    "Timeouts": "billkit.transport",
    "TokenError": "billkit.errors",
    "UnsupportedFeatureError": "billkit.errors",
    "ValidationError": "billkit.errors",
    "WebhookVerificationError": "billkit.errors",
    "as_completed": "billkit.operations",
    "gather": "billkit.operations",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'billkit' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value  # the next access is a plain module attribute
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})


__all__ = [
    "APIConnectionError",
    "APIError",
    "APITimeoutError",
    "Address",
    "AsyncClient",
    "AuthenticationError",
    "Bill",
    "BillStatus",
    "BillkitError",
    "BlockingBulkOperation",
    "BlockingOperation",
    "BulkOperation",
    "BulkRejected",
    "BulkResult",
    "Capabilities",
    "Client",
    "ClientClosedError",
    "ConfigurationError",
    "ConflictError",
    "Direction",
    "ItemResult",
    "ItemStatus",
    "JournalError",
    "LineItem",
    "Money",
    "MoneyError",
    "NotFoundError",
    "Operation",
    "OperationCancelled",
    "OperationFailed",
    "OperationState",
    "OperationTimeout",
    "OutcomeUnknownError",
    "Party",
    "Payment",
    "PermissionDeniedError",
    "PollPolicy",
    "Problem",
    "RateLimitError",
    "RawResponse",
    "ResponseInfo",
    "ResponseTooLargeError",
    "RetryPolicy",
    "SandboxStateError",
    "ServerError",
    "Tax",
    "Timeouts",
    "TokenError",
    "UnsupportedFeatureError",
    "ValidationError",
    "WebhookVerificationError",
    "__version__",
    "as_completed",
    "gather",
]

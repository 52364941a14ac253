import copy
import pickle
from typing import Any

import pytest

import billkit
from billkit.batchfile import FileError
from billkit.errors import (
    APIError,
    BillkitError,
    BulkRejected,
    Problem,
    RateLimitError,
    ServerError,
    ValidationError,
    api_error_for_status,
)
from billkit.providers.billcom import mapping as billcom
from billkit.providers.billcom.wire import ErrorEntry


def test_hierarchy_matches_the_design() -> None:
    for name in (
        "ConfigurationError",
        "ValidationError",
        "UnsupportedFeatureError",
        "APIError",
        "APIConnectionError",
        "OperationFailed",
        "OperationTimeout",
        "WebhookVerificationError",
        "OutcomeUnknownError",
    ):
        assert issubclass(getattr(billkit, name), BillkitError)
    for name in (
        "AuthenticationError",
        "PermissionDeniedError",
        "NotFoundError",
        "ConflictError",
        "RateLimitError",
        "ServerError",
        "BulkRejected",
    ):
        assert issubclass(getattr(billkit, name), APIError)
    assert issubclass(billkit.APITimeoutError, billkit.APIConnectionError)


@pytest.mark.parametrize(
    ("status", "cls"),
    [
        (401, "AuthenticationError"),
        (402, "PermissionDeniedError"),
        (403, "PermissionDeniedError"),
        (404, "NotFoundError"),
        (409, "ConflictError"),
        (429, "RateLimitError"),
        (500, "ServerError"),
        (503, "ServerError"),
        (400, "APIError"),
    ],
)
def test_status_classes(status: int, cls: str) -> None:
    assert api_error_for_status(status) is getattr(billkit, cls)


def test_api_error_str_is_actionable() -> None:
    err = RateLimitError(
        "slow down",
        provider="facturapi",
        status_code=429,
        code="rate_limit_exceeded",
        request_id="log_123",
        retry_after=30,
    )
    text = str(err)
    for part in ("facturapi", "429", "rate_limit_exceeded", "slow down", "log_123", "30"):
        assert part in text


def test_validation_error_lists_every_problem() -> None:
    err = ValidationError([Problem("a.b", "too long"), Problem("c", "missing")], provider="accepteasy")
    assert str(err) == "[accepteasy] invalid input (2 problems): a.b: too long; c: missing"
    assert err.fields == ["a.b", "c"]


def test_bulk_rejected_keeps_item_errors() -> None:
    err = BulkRejected(
        "rolled back",
        item_errors={3: ServerError("x", provider="billcom")},
        provider="billcom",
        status_code=400,
        code="BDC_1246",
    )
    assert list(err.item_errors) == [3]
    assert "BDC_1246" in str(err)


# -- values that behave like values: every error pickles and deep-copies --------------------------------------

_ENTRY = ErrorEntry.model_validate({"code": "BDC_1205", "message": "Invalid vendor", "severity": "ERROR"})


def _every_error() -> list[BillkitError]:
    """One instance of every error billkit raises, with its fields set (a new class must be added here)."""
    api: dict[str, Any] = {"provider": "p", "status_code": 409, "code": "C1", "request_id": "req-1", "raw": [1, "2"]}
    errors: list[BillkitError] = [
        BillkitError("plain", provider="p"),
        billkit.ConfigurationError("no key", provider="p"),
        ValidationError([Problem("line_items[0].unit_price", "a float"), Problem("total", "missing")], provider="p"),
        billkit.MoneyError("got the float 0.1"),
        billkit.UnsupportedFeatureError("p", "due_date", "leave it unset"),
        APIError("refused", **api),
        billkit.AuthenticationError("bad key", **api),
        billkit.PermissionDeniedError("forbidden", **api),
        billkit.NotFoundError("no such bill", **api),
        billkit.ConflictError("key in use", **{**api, "retryable": True}),
        RateLimitError("slow down", retry_after=7.5, **{**api, "status_code": 429}),
        ServerError("down", **{**api, "status_code": 503}),
        billkit.ResponseTooLargeError("too big", provider="p", status_code=200),
        BulkRejected("rejected", item_errors={2: ValidationError("bad item")}, **api),
        billkit.APIConnectionError("dropped", provider="p"),
        billkit.APITimeoutError("no answer", provider="p"),
        billkit.OutcomeUnknownError(
            "lost",
            provider="p",
            how_to_check="search it",
            reference="R-1",
            cause=ServerError("502", provider="p", status_code=502),
        ),
        billkit.OperationFailed(
            "stamping failed",
            provider="p",
            status="failed",
            provider_status="failed",
            code="CFDI40145",
            operation_id="inv_1",
            raw={"x": 1},
            cause=RuntimeError("below"),
        ),
        billkit.OperationTimeout(
            "late", provider="p", status="pending", provider_status="Processing", token=lambda: "dG9rZW4"
        ),
        billkit.OperationCancelled("cancelled", provider="p", token="dG9rZW4"),
        billkit.TokenError("malformed", provider="p"),
        billkit.ClientClosedError("closed", provider="p"),
        billkit.errors.JournalError("not a billkit journal"),
        billkit.SandboxStateError("state['records']: unknown tag '$x'", path="state['records']"),
        FileError("bills.csv", [Problem("total", "missing")]),
        billkit.WebhookVerificationError("forged", provider="p"),
    ]
    for cls in (
        billcom.BillcomAPIError,
        billcom.BillcomAuthenticationError,
        billcom.BillcomSessionError,
        billcom.BillcomPermissionDeniedError,
        billcom.BillcomNotFoundError,
        billcom.BillcomConflictError,
        billcom.BillcomConcurrencyLimitError,
        billcom.BillcomServerError,
    ):
        err = cls("BILL said no", **api)
        err.entries = (_ENTRY,)
        errors.append(err)
    limited = billcom.BillcomRateLimitError("hourly", retry_after=None, **api)
    limited.entries = (_ENTRY,)
    rejected = billcom.BillcomBulkRejected("whole batch", item_errors={0: ValidationError("x")}, **api)
    rejected.entries = (_ENTRY, _ENTRY)
    from billkit.providers.billcom.updates import VendorBulkOutcomeUnknown

    doubted = VendorBulkOutcomeUnknown("in doubt", provider="billcom", how_to_check="list them", indexes=(1, 3))
    return [*errors, limited, rejected, doubted]


def _subclasses(cls: type) -> set[type]:
    out: set[type] = set()
    sub: type
    for sub in cls.__subclasses__():
        out |= {sub, *_subclasses(sub)}
    return out


def _fields(err: BillkitError) -> dict[str, object]:
    state = dict(vars(err))
    state.pop("_make_token", None)
    for name in ("token", "entries", "retry_after", "item_errors"):
        if hasattr(err, name):
            state[name] = getattr(err, name)
    return {k: (repr(v) if isinstance(v, BaseException) or k == "item_errors" else v) for k, v in state.items()}


def test_the_table_holds_every_error_class() -> None:
    import billkit.providers.accepteasy.client
    import billkit.providers.facturapi.client

    made = {type(e) for e in _every_error()}
    assert _subclasses(BillkitError) - {billkit.errors._CarriesToken} <= made | {BillkitError}


@pytest.mark.parametrize("err", _every_error(), ids=lambda e: type(e).__name__)
@pytest.mark.parametrize("how", ["pickle", "deepcopy", "copy"])
def test_every_error_survives_pickle_and_copies(err: BillkitError, how: str) -> None:
    again = {"pickle": lambda e: pickle.loads(pickle.dumps(e)), "deepcopy": copy.deepcopy, "copy": copy.copy}[how](err)
    assert type(again) is type(err) and again is not err
    assert str(again) == str(err) and again.args == err.args
    assert _fields(again) == _fields(err)

import pytest

import billkit
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


def test_hierarchy_matches_the_design() -> None:
    for name in ("ConfigurationError", "ValidationError", "UnsupportedFeatureError", "APIError", "APIConnectionError",
                 "OperationFailed", "OperationTimeout", "WebhookVerificationError", "OutcomeUnknownError"):  # fmt: skip
        assert issubclass(getattr(billkit, name), BillkitError)
    for name in ("AuthenticationError", "PermissionDeniedError", "NotFoundError", "ConflictError", "RateLimitError",
                 "ServerError", "BulkRejected"):  # fmt: skip
        assert issubclass(getattr(billkit, name), APIError)
    assert issubclass(billkit.APITimeoutError, billkit.APIConnectionError)


@pytest.mark.parametrize(
    ("status", "cls"),
    [(401, "AuthenticationError"), (402, "PermissionDeniedError"), (403, "PermissionDeniedError"),
     (404, "NotFoundError"), (409, "ConflictError"), (429, "RateLimitError"), (500, "ServerError"),
     (503, "ServerError"), (400, "APIError")],
)  # fmt: skip
def test_status_classes(status: int, cls: str) -> None:
    assert api_error_for_status(status) is getattr(billkit, cls)


def test_api_error_str_is_actionable() -> None:
    err = RateLimitError("slow down", provider="facturapi", status_code=429, code="rate_limit_exceeded",
                         request_id="log_123", retry_after=30)  # fmt: skip
    text = str(err)
    for part in ("facturapi", "429", "rate_limit_exceeded", "slow down", "log_123", "30"):
        assert part in text


def test_validation_error_lists_every_problem() -> None:
    err = ValidationError([Problem("a.b", "too long"), Problem("c", "missing")], provider="accepteasy")
    assert str(err) == "[accepteasy] invalid input (2 problems): a.b: too long; c: missing"
    assert err.fields == ["a.b", "c"]


def test_bulk_rejected_keeps_item_errors() -> None:
    err = BulkRejected("rolled back", item_errors={3: ServerError("x", provider="billcom")}, provider="billcom",
                       status_code=400, code="BDC_1246")  # fmt: skip
    assert list(err.item_errors) == [3]
    assert "BDC_1246" in str(err)

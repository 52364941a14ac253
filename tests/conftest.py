"""Shared test setup: register the fake provider used by the tests of the shared machinery."""

import pytest

from tests.fakes import register

register()


def pytest_report_header() -> str:
    import os

    from billkit.httpstack import ENV

    return f"billkit HTTP stack: {os.environ.get(ENV) or 'httpx (default)'}"


@pytest.fixture(params=["asyncio", "trio"])
def anyio_backend(request: pytest.FixtureRequest) -> str:
    """The shared machinery is tested under both event loops billkit supports."""
    return str(request.param)

"""Shared test setup: register the fake provider used by the tests of the shared machinery."""

import pytest

from tests.fakes import register

register()


@pytest.fixture(params=["asyncio", "trio"])
def anyio_backend(request: pytest.FixtureRequest) -> str:
    """The shared machinery is tested under both event loops billkit supports."""
    return str(request.param)

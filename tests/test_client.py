from __future__ import annotations

import httpx
import pytest

import billkit
from billkit import AsyncClient, Bill, ConfigurationError, Money
from billkit.clock import VirtualClock
from billkit.transport import RetryPolicy
from tests.fakes import FakeSandbox

pytestmark = pytest.mark.anyio


def test_missing_credential_names_argument_and_environment_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("FAKE_TOKEN", raising=False)
    with pytest.raises(ConfigurationError, match=r"token \(or the environment variable FAKE_TOKEN\)"):
        AsyncClient("fake")


def test_credentials_fall_back_to_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FAKE_TOKEN", "env-secret-value")
    client = AsyncClient("fake")
    assert "env-secret-value" not in repr(client) + repr(client._ctx) + repr(client._transport)
    assert client._transport._headers["authorization"] == "Bearer env-secret-value"


def test_unknown_provider_and_unknown_argument() -> None:
    with pytest.raises(ConfigurationError, match="unknown provider 'nope'"):
        AsyncClient("nope")
    with pytest.raises(ConfigurationError, match="does not take api_key"):
        AsyncClient("fake", credentials={"api_key": "x"})


def test_sandbox_of_another_provider_is_refused() -> None:
    box = FakeSandbox()
    box.provider = "other"
    with pytest.raises(ConfigurationError, match="sandbox is for 'other'"):
        AsyncClient("fake", sandbox=box)


async def test_sandbox_true_needs_no_credentials_and_runs_on_virtual_time(anyio_backend: str) -> None:
    async with AsyncClient("fake", sandbox=True) as client:
        assert isinstance(client.clock, VirtualClock)
        bill = await client.submit_and_wait(Bill(reference="x", total=Money("1.00", "EUR")))
        assert bill.reference == "x"
        assert client.requests_made >= 2
        assert client.capabilities.provider == "fake"


async def test_closing_closes_only_what_the_client_created(anyio_backend: str) -> None:
    mine = httpx.AsyncClient(transport=FakeSandbox())
    async with AsyncClient(
        "fake", http_client=mine, credentials={"token": "fake-secret-token"}, base_url=FakeSandbox.base_url
    ):
        pass
    assert not mine.is_closed
    await mine.aclose()
    client = AsyncClient("fake", sandbox=True)
    await client.aclose()
    assert client._http.is_closed


async def test_with_options_shares_the_pool_and_keeps_the_original_open(anyio_backend: str) -> None:
    async with AsyncClient("fake", sandbox=True) as client:
        twin = client.with_options(retry=RetryPolicy.none())
        assert twin._http is client._http and twin._io.http is client._io.http
        assert twin.retry.max_attempts == 1 and client.retry.max_attempts == 4
        await twin.aclose()
        assert not client._http.is_closed
        assert (await client.submit_and_wait(Bill(reference="y", total=Money("1.00", "EUR")))).reference == "y"


def test_a_users_sync_httpx_client_serves_the_blocking_client() -> None:
    sandbox = FakeSandbox()

    def handler(request: httpx.Request) -> httpx.Response:
        import anyio

        return anyio.run(sandbox.handle_async_request, request)

    with (
        httpx.Client(transport=httpx.MockTransport(handler)) as http,
        billkit.Client(
            "fake", http_client=http, credentials={"token": "fake-secret-token"}, base_url=FakeSandbox.base_url
        ) as client,
    ):
        assert client.create(Bill(reference="s", total=Money("1.00", "EUR"))).reference == "s"
        assert sandbox.received("POST")


def test_sandbox_state_survives_save_and_load(tmp_path: object) -> None:
    import pathlib

    path = pathlib.Path(str(tmp_path)) / "box.json"
    with billkit.Client("fake", sandbox=True) as client:
        op = client.submit(Bill(reference="saved", total=Money("1.00", "EUR"), provider_options={"duration": 500}))
        assert client.sandbox is not None
        client.sandbox.save(path)
        token = op.token
    box = FakeSandbox.load(path)
    with billkit.Client("fake", sandbox=box) as again:
        assert again.resume(token, bulk=False).result().reference == "saved"


def test_a_provider_missing_from_the_build_is_a_configuration_error(monkeypatch: pytest.MonkeyPatch) -> None:
    from billkit.client import PROVIDERS

    monkeypatch.setitem(PROVIDERS, "ghost", "billkit.providers.ghost.client:GhostAdapter")
    with pytest.raises(ConfigurationError, match="ghost adapter is not part of this billkit build"):
        AsyncClient("ghost")

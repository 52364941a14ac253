"""Resume tokens are checked whole at resume: envelope, version, provider, signature and every state against its
kind's schema. Nothing from a bad token is ever sent."""

from __future__ import annotations

import base64
import json
import zlib
from collections.abc import AsyncIterator
from typing import Any

import pytest

import billkit
from billkit import AsyncClient, Bill, Money, TokenError
from billkit.clock import VirtualClock
from billkit.tokens import TokenKey, decode_token, encode_token
from tests.fakes import FakeSandbox

pytestmark = pytest.mark.anyio
KEY = "k" * 32


def job(ref: str, duration: float = 30) -> Bill:
    return Bill(reference=ref, total=Money("10.00", "EUR"), provider_options={"duration": duration})


def v1(body: Any) -> str:
    return base64.urlsafe_b64encode(json.dumps(body).encode()).rstrip(b"=").decode()


def v2(body: Any) -> str:
    packer = zlib.compressobj(9, zlib.DEFLATED, -15)
    return "bk2." + base64.urlsafe_b64encode(packer.compress(json.dumps(body).encode()) + packer.flush()).decode()


@pytest.fixture
async def client(anyio_backend: str) -> AsyncIterator[AsyncClient]:
    async with AsyncClient("fake", sandbox=FakeSandbox(VirtualClock())) as c:
        yield c


def sent(client: AsyncClient) -> int:
    assert isinstance(client.sandbox, FakeSandbox)
    return len(client.sandbox.requests)


BAD: list[tuple[str, str, str]] = [
    ("not a string", "", "non-empty"),
    ("not base64", "!!!", "does not decode"),
    ("not deflate", "bk2.____", "does not inflate"),
    ("truncated", v2({"v": 2, "provider": "fake", "kind": "job", "id": "j", "state": {"id": "j"}})[:-6],
     "not a billkit resume token"),
    ("version true", v1({"v": True, "provider": "fake", "kind": "job", "id": "j", "state": {"id": "j"}}), "version"),
    ("version 99", v1({"v": 99, "provider": "fake", "kind": "job", "id": "j", "state": {}}), "version 99"),
    ("v2 body in v1 format", v1({"v": 2, "provider": "fake", "kind": "job", "id": "j", "state": {"id": "j"}}),
     "does not match"),
    ("other provider", encode_token("accepteasy", "create", "a", {"atid": "a"}), "belongs to 'accepteasy'"),
    ("no state", v2({"v": 2, "provider": "fake", "kind": "job", "id": "j"}), "no valid 'state'"),
    ("unknown kind", encode_token("fake", "bulkish", "j", {"id": "j"}), "unknown kind 'bulkish'"),
    ("state missing id", encode_token("fake", "job", "j", {}), "id"),
    ("state id not a string", encode_token("fake", "job", "j", {"id": 7}), "id"),
    ("state with extra field", encode_token("fake", "job", "j", {"id": "j", "url": "https://evil"}), "url"),
    ("watch with an unknown status", encode_token("fake", "watch", "j", {"id": "j", "until": ["gone"]}), "until"),
    ("composite of wrong shape", encode_token("fake", "composite", "b", {"ids": "x"}), "composite"),
    ("composite child invalid", encode_token("fake", "composite", "b", {"kind": "job", "ids": ["j"],
     "states": {"0": {"id": 3}}, "kinds": {}, "errors": {}}), "id"),
    ("not json", "bk2." + base64.urlsafe_b64encode(zlib.compress(b"{", 9)[2:-4]).decode(), "does not decode"),
]  # fmt: skip


@pytest.mark.parametrize(("name", "token", "message"), BAD, ids=[b[0] for b in BAD])
async def test_a_bad_token_raises_token_error_before_anything_is_sent(
    client: AsyncClient, name: str, token: str, message: str
) -> None:
    before = sent(client)
    with pytest.raises(TokenError, match=message):
        await client.resume(token)
    assert sent(client) == before and client.scheduler.pending_count == 0


async def test_a_deflate_bomb_is_refused() -> None:
    packer = zlib.compressobj(9, zlib.DEFLATED, -15)
    bomb = packer.compress(b'{"v": 2, "pad": "' + b"x" * (64 * 1024 * 1024)) + packer.flush()
    with pytest.raises(TokenError, match="larger than billkit reads"):
        decode_token("bk2." + base64.urlsafe_b64encode(bomb).decode())


async def test_tokens_written_by_billkit_0_1_still_resume(client: AsyncClient) -> None:
    op = await client.submit(job("old", 20))
    legacy = v1({"v": 1, "provider": "fake", "kind": "job", "id": op.id, "state": {"id": op.id}})
    assert (await (await client.resume(legacy, bulk=False))).reference == "old"
    bulk = v1({"v": 1, "provider": "fake", "kind": "composite", "id": "bulk:x:2",
               "state": {"items": [{"kind": "job", "id": op.id, "state": {"id": op.id}},
                                   {"error": {"type": "ValidationError", "message": "bad"}}]}})  # fmt: skip
    result = await (await client.resume(bulk, bulk=True))
    assert [i.status.value for i in result] == ["succeeded", "failed"] and "bad" in str(result[1].error)


async def test_signed_tokens() -> None:
    clock = VirtualClock()
    box = FakeSandbox(clock)
    async with (
        AsyncClient("fake", sandbox=box, token_key=KEY) as signer,
        AsyncClient("fake", sandbox=box, token_key="another key of 32 characters...") as stranger,
        AsyncClient("fake", sandbox=box) as keyless,
    ):
        op = await signer.submit(job("signed", 20))
        token = op.token
        assert token.count(".") == 2 and KEY not in token and KEY not in repr(signer)
        assert (await (await signer.resume(token, bulk=False))).reference == "signed"
        # no key: nothing to check it with
        assert (await (await keyless.resume(token, bulk=False))).reference == "signed"
        with pytest.raises(TokenError, match="does not match"):
            await stranger.resume(token)
        payload, mac = token[4:].split(".")
        forged = encode_token("fake", "job", "job_2", {"id": "job_2"}).split(".")[1]
        for bad in (f"bk2.{payload}", f"bk2.{forged}.{mac}", f"bk2.{payload}.{mac[:-2]}AA",
                    (await keyless.submit(job("plain"))).token,
                    v1({"v": 1, "provider": "fake", "kind": "job", "id": op.id, "state": {"id": op.id}})):  # fmt: skip
            with pytest.raises(TokenError):
                await signer.resume(bad)


def test_the_key_comes_from_the_environment_and_must_be_long_enough(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BILLKIT_TOKEN_KEY", KEY)
    with billkit.Client("fake", sandbox=True) as client:
        token = client.submit(job("env", 10)).token
    assert token.count(".") == 2
    assert decode_token(token, key=TokenKey(KEY))["kind"] == "job"
    monkeypatch.setenv("BILLKIT_TOKEN_KEY", "short")
    with pytest.raises(billkit.ConfigurationError, match="16 bytes"):
        billkit.Client("fake", sandbox=True)
    assert "k" * 32 not in repr(TokenKey(KEY))


async def test_a_bulk_token_grows_by_a_few_bytes_per_item(client: AsyncClient) -> None:
    bulk = await client.submit_many([job(f"b{i}", 3000) for i in range(2000)])
    assert len(bulk.token) < 2000 * 16 + 512
    again = await client.resume(bulk.token)
    assert isinstance(again, billkit.BulkOperation) and again.progress == (0, 2000)

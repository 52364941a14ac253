"""Every id billkit puts in a URL path (from a caller, a token or a provider answer) is one escaped segment: it can
only ever name its own resource. An id that cannot be a segment at all is refused before anything is sent."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

import pytest

import billkit
from billkit import NotFoundError, ValidationError
from billkit.testing import sandbox
from billkit.tokens import encode_token

pytestmark = pytest.mark.anyio

HOSTILE = ["../customers/x", "a/b", "x?limit=1", "x#frag", "100%", "two words", "..%2F..", "%2e%2e"]
#: the read each provider makes for client.get(id), and the path prefix it goes to
GETS = {"accepteasy": "/v2/Bill/", "billcom": "/v3/bills/", "facturapi": "/invoices/"}


@pytest.mark.parametrize("provider", sorted(GETS))
@pytest.mark.parametrize("hostile", HOSTILE)
async def test_an_id_reaches_only_its_own_resource(provider: str, hostile: str) -> None:
    box: Any = sandbox(provider)
    async with billkit.AsyncClient(provider, sandbox=box) as client:
        with pytest.raises(NotFoundError):
            await client.get(hostile)
    [read] = [r for r in box.requests if r.method == "GET"]
    assert read.path == GETS[provider] + quote(hostile, safe="")  # one segment, as sent
    assert not read.params  # nothing of the id became a query


@pytest.mark.parametrize("provider", sorted(GETS))
@pytest.mark.parametrize("bad", ["", ".", ".."])
async def test_an_id_that_cannot_be_a_segment_is_refused_before_sending(provider: str, bad: str) -> None:
    box: Any = sandbox(provider)
    async with billkit.AsyncClient(provider, sandbox=box) as client:
        with pytest.raises(ValidationError, match="cannot name a resource"):
            await client.get(bad)
    assert [r for r in box.requests if r.method == "GET"] == []


async def test_an_id_from_a_token_is_escaped_too() -> None:
    box: Any = sandbox("facturapi")
    async with billkit.AsyncClient("facturapi", sandbox=box) as client:
        op = await client.resume(encode_token("facturapi", "invoice", "../customers/x", {"id": "../customers/x"}))
        with pytest.raises(NotFoundError):
            await op
    assert {r.path for r in box.requests} == {"/invoices/..%2Fcustomers%2Fx"}


def test_the_blocking_client_escapes_the_same_way() -> None:
    box: Any = sandbox("accepteasy")
    with billkit.Client("accepteasy", sandbox=box) as client, pytest.raises(NotFoundError):
        client.native.get_bill("a/b")
    assert [r.path for r in box.requests] == ["/v2/Bill/a%2Fb"]

"""Forged webhooks are refused with WebhookVerificationError; the real ones, and only the documented variants of
their headers, are accepted.

Facturapi signs the raw body (``Facturapi-Signature``: hex HMAC-SHA256 with the webhook secret). The deliveries
here are real: an invoice is submitted to the sandbox through ``billkit.AsyncClient``, the virtual clock moves past
the async stamping, and ``box.events()`` / ``box.webhook_request(event)`` give the exact bytes and headers
Facturapi would send. Every forgery is checked through ``webhooks.verify`` and through the client's
``verify_webhook``. AcceptEasy authenticates notifications with HTTP Basic credentials embedded in the
notification URL; the same treatment applies to its ``verify``.
"""

from __future__ import annotations

import base64
import functools
import hmac
import json
import string
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import anyio
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import billkit
from billkit import Address, Bill, LineItem, Money, Party, Tax
from billkit.clock import VirtualClock
from billkit.errors import BillkitError, WebhookVerificationError
from billkit.money import loads_decimal
from billkit.providers.accepteasy import AcceptEasyAsyncClient
from billkit.providers.accepteasy import webhooks as ae_webhooks
from billkit.providers.accepteasy.sandbox import AcceptEasySandbox
from billkit.providers.facturapi import FacturapiAsyncClient
from billkit.providers.facturapi import webhooks as fa_webhooks
from billkit.providers.facturapi.sandbox import FAIL_TAX_ID, FacturapiSandbox
from billkit.providers.facturapi.wire import WebhookEvent
from billkit.transport import dumps

pytestmark = pytest.mark.anyio

SIGNATURE = fa_webhooks.SIGNATURE_HEADER
SECRET = FacturapiSandbox.webhook_secret
#: the sandboxes' wall clock starts here (2025-06-16T12:00Z), so every run sends the same timestamps
WALL_START = 1_750_075_200.0
#: the Hypothesis settings of this module's properties (applied per test; no global profile is loaded)
PROPERTY = settings(max_examples=200, deadline=None, derandomize=True, database=None)

Verify = Callable[[bytes, Mapping[str, str], str], Any]


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


# -- real Facturapi deliveries ---------------------------------------------------------------------------------


def invoice(reference: str, tax_id: str = "EKU9003173C9") -> Bill:
    """A valid income invoice (one line with IVA 16 %): accents in the body, so ASCII re-encoding changes it."""
    return Bill(
        reference=reference,
        counterparty=Party(name="ESCUELA KEMPER URGATE", tax_id=tax_id, email="facturas@example.mx",
                           address=Address(postal_code="42501"), provider_options={"tax_system": "601"}),
        line_items=(LineItem(description="Servicio de consultoría", unit_price=Money("1000.00", "MXN"),
                             taxes=(Tax(type="IVA", rate="0.16"),), provider_options={"product_key": "80111600"}),),
        provider_options={"payment_form": "03", "use": "G03"},
    )  # fmt: skip


@dataclass(frozen=True)
class Delivery:
    """One webhook request as Facturapi would send it."""

    body: bytes
    headers: dict[str, str]
    event: dict[str, Any]

    @property
    def signature(self) -> str:
        return self.headers[SIGNATURE]

    def with_signature(self, value: str | None, name: str = SIGNATURE) -> dict[str, str]:
        """The headers with ``Facturapi-Signature`` removed, and ``value`` set under ``name`` when given."""
        headers = {k: v for k, v in self.headers.items() if k.lower() != SIGNATURE.lower()}
        if value is not None:
            headers[name] = value
        return headers


@dataclass(frozen=True)
class Deliveries:
    stamped: Delivery  # invoice.status_updated, status "valid"
    failed: Delivery  # invoice.status_updated, status "failed", with related_resource_messages


async def deliver(client: billkit.AsyncClient, box: FacturapiSandbox, clock: VirtualClock) -> Deliveries:
    """Submit two invoices (one that the SAT refuses), let the async stamping finish, take the events."""
    ok = await client.submit(invoice("FA-FORGE-1"))
    bad = await client.submit(invoice("FA-FORGE-2", FAIL_TAX_ID))
    await clock.advance(box.async_delay + 1)
    events = {e["data"]["object"]["id"]: e for e in box.events()}
    out = []
    for op_id in (ok.id, bad.id):
        body, headers = box.webhook_request(events[op_id])
        out.append(Delivery(body, headers, events[op_id]))
    return Deliveries(*out)


@functools.cache
def real_deliveries() -> Deliveries:
    """The deliveries of one sandbox run, for the synchronous properties (computed once)."""

    async def run() -> Deliveries:
        clock = VirtualClock(wall_start=WALL_START)
        box = FacturapiSandbox(clock)
        async with billkit.AsyncClient("facturapi", sandbox=box) as client:
            return await deliver(client, box, clock)

    return anyio.run(run)


@dataclass
class Facturapi:
    client: FacturapiAsyncClient
    box: FacturapiSandbox
    stamped: Delivery
    failed: Delivery
    verifiers: dict[str, Verify]


@pytest.fixture
async def fa() -> AsyncIterator[Facturapi]:
    clock = VirtualClock(wall_start=WALL_START, autojump=False)  # time moves only when the test says
    box = FacturapiSandbox(clock)
    # webhooks first, polling as the safety net: the operations are still pending when their events arrive
    async with billkit.AsyncClient("facturapi", sandbox=box, poll=billkit.PollPolicy(first_delay=60)) as client:
        got = await deliver(client, box, clock)
        verifiers: dict[str, Verify] = {
            "webhooks.verify": fa_webhooks.verify,
            "client.verify_webhook": client.verify_webhook,
        }
        yield Facturapi(client, box, got.stamped, got.failed, verifiers)


def refused(verify: Verify, body: bytes, headers: Mapping[str, str], secret: str = SECRET) -> WebhookVerificationError:
    """Assert ``verify`` refuses with WebhookVerificationError (and nothing else), and return the error."""
    with pytest.raises(WebhookVerificationError) as err:
        verify(body, headers, secret)
    assert err.value.provider in ("facturapi", "accepteasy") and str(err.value)
    return err.value


def reencode(value: Any, *, item_sep: str = ",", key_sep: str = ":", sort_keys: bool = False,
             reverse_keys: bool = False, ascii_only: bool = False, indent: int | None = None) -> bytes:  # fmt: skip
    """JSON text of ``value`` (Decimals written exactly, as Facturapi writes numbers) in another layout."""
    newline = "\n" if indent is not None else ""

    def enc(item: Any, depth: int) -> str:
        pad = newline + " " * ((indent or 0) * (depth + 1))
        end = newline + " " * ((indent or 0) * depth)
        if isinstance(item, Decimal):
            return format(item, "f")
        if isinstance(item, Mapping):
            keys = list(item)
            keys = sorted(keys) if sort_keys else keys[::-1] if reverse_keys else keys
            if not keys:
                return "{}"
            parts = [pad + json.dumps(k, ensure_ascii=ascii_only) + key_sep + enc(item[k], depth + 1) for k in keys]
            return "{" + item_sep.join(parts) + end + "}"
        if isinstance(item, list):
            if not item:
                return "[]"
            return "[" + item_sep.join(pad + enc(v, depth + 1) for v in item) + end + "]"
        return json.dumps(item, ensure_ascii=ascii_only)

    return enc(value, 0).encode("utf-8")


# -- Facturapi: the real delivery, and the documented header variants, are accepted ----------------------------


async def test_the_real_deliveries_verify_and_finish_their_operations(fa: Facturapi) -> None:
    for name, verify in fa.verifiers.items():
        event = verify(fa.stamped.body, fa.stamped.headers, SECRET)
        assert isinstance(event, WebhookEvent), name
        assert event.id == fa.stamped.event["id"] and event.type == fa_webhooks.STATUS_UPDATED
        assert event.invoice is not None and event.invoice.status == "valid"
        failed = verify(fa.failed.body, fa.failed.headers, SECRET)
        assert isinstance(failed, WebhookEvent) and failed.invoice is not None
        assert failed.invoice.status == "failed" and failed.error_message() == fa.box.failure_message(
            failed.invoice.id or ""
        )
    for delivery in (fa.stamped, fa.failed):  # each finishes its operation, without a read
        assert fa.client.handle_webhook_event(fa.client.verify_webhook(delivery.body, delivery.headers, SECRET)) == 1
    assert fa.box.received("GET") == []
    assert fa.stamped.signature == fa_webhooks.sign(fa.stamped.body, SECRET)


@pytest.mark.parametrize(
    ("name", "decorate"),
    [
        ("Facturapi-Signature", lambda s: s.upper()),
        ("Facturapi-Signature", lambda s: f"  {s}  "),
        ("Facturapi-Signature", lambda s: f"\t{s}\r\n"),
        ("Facturapi-Signature", lambda s: f"sha256={s}"),
        ("Facturapi-Signature", lambda s: f"SHA256={s.upper()}"),
        ("Facturapi-Signature", lambda s: f" sha256={s} "),
        ("facturapi-signature", lambda s: s),
        ("FACTURAPI-SIGNATURE", lambda s: s.upper()),
    ],
    ids=["upper", "spaces", "tab-crlf", "sha256-prefix", "SHA256-upper", "prefix-spaces", "lower-name", "upper-name"],
)
async def test_documented_header_variants_are_accepted(
    fa: Facturapi, name: str, decorate: Callable[[str], str]
) -> None:
    # verify() strips and lower-cases the header and drops one optional "sha256=" prefix; header names are
    # matched case-insensitively
    headers = fa.stamped.with_signature(decorate(fa.stamped.signature), name)
    for verify in fa.verifiers.values():
        event = verify(fa.stamped.body, headers, SECRET)
        assert isinstance(event, WebhookEvent) and event.id == fa.stamped.event["id"]


@pytest.mark.parametrize(
    "decorate",
    [
        lambda s: f"sha256:{s}", lambda s: f"sha256= {s}", lambda s: f"sha256=sha256={s}", lambda s: f"0x{s}",
        lambda s: f"{s[:32]} {s[32:]}", lambda s: f"{s},{s}", lambda s: f"sha1={s}", lambda s: f"v1={s}",
    ],
    ids=["colon", "space-after-prefix", "double-prefix", "0x", "inner-space", "twice", "sha1", "v1"],
)  # fmt: skip
async def test_other_decorations_of_the_right_signature_are_refused(
    fa: Facturapi, decorate: Callable[[str], str]
) -> None:
    headers = fa.stamped.with_signature(decorate(fa.stamped.signature))
    for verify in fa.verifiers.values():
        refused(verify, fa.stamped.body, headers)


# -- Facturapi: forgeries ----------------------------------------------------------------------------------------


@PROPERTY
@given(signature=st.from_regex(r"[0-9a-f]{64}", fullmatch=True), upper=st.booleans(), prefix=st.booleans())
def test_a_random_hex_signature_is_refused(signature: str, upper: bool, prefix: bool) -> None:
    real = real_deliveries().stamped
    if hmac.compare_digest(signature, real.signature):  # the one value that is not a forgery
        return
    value = ("sha256=" if prefix else "") + (signature.upper() if upper else signature)
    err = refused(fa_webhooks.verify, real.body, real.with_signature(value))
    assert "does not match" in err.message


@PROPERTY
@given(secret=st.text(min_size=1, max_size=40))
def test_a_signature_made_with_another_secret_is_refused(secret: str) -> None:
    real = real_deliveries().stamped
    if secret == SECRET:
        return
    forged = real.with_signature(fa_webhooks.sign(real.body, secret))
    refused(fa_webhooks.verify, real.body, forged)
    # and the real signature does not verify under that other secret either
    refused(fa_webhooks.verify, real.body, real.headers, secret)


async def test_a_missing_or_empty_header_is_refused(fa: Facturapi) -> None:
    cases = {
        "missing": fa.stamped.with_signature(None),
        "empty": fa.stamped.with_signature(""),
        "blank": fa.stamped.with_signature("   "),
        "prefix only": fa.stamped.with_signature("sha256="),
        "another header": fa.stamped.with_signature(fa.stamped.signature, "X-Facturapi-Signature"),
        "no headers": {},
    }
    for case, headers in cases.items():
        for verify in fa.verifiers.values():
            err = refused(verify, fa.stamped.body, headers)
            assert ("missing" in err.message) == (case in ("missing", "another header", "no headers")), case


async def test_every_truncation_of_the_body_is_refused(fa: Facturapi) -> None:
    body = fa.stamped.body
    assert len(body) > 500
    for cut in range(len(body)):
        for verify in fa.verifiers.values():
            refused(verify, body[:cut], fa.stamped.headers)
    for extra in (b" ", b"\n", b"\x00", b"{}", body):
        refused(fa_webhooks.verify, body + extra, fa.stamped.headers)
        refused(fa_webhooks.verify, extra + body, fa.stamped.headers)


@PROPERTY
@given(data=st.data())
def test_a_sample_of_truncations_and_byte_flips_is_refused(data: st.DataObject) -> None:
    real = real_deliveries().failed
    cut = data.draw(st.integers(0, len(real.body) - 1), label="cut")
    refused(fa_webhooks.verify, real.body[:cut], real.headers)
    at = data.draw(st.integers(0, len(real.body) - 1), label="at")
    flip = data.draw(st.integers(1, 255), label="flip")
    changed = real.body[:at] + bytes([real.body[at] ^ flip]) + real.body[at + 1 :]
    refused(fa_webhooks.verify, changed, real.headers)


REENCODINGS: dict[str, dict[str, Any]] = {
    "spaced": {"item_sep": ", ", "key_sep": ": "},
    "indented": {"item_sep": ",", "key_sep": ": ", "indent": 2},
    "sorted keys": {"sort_keys": True},
    "reversed keys": {"reverse_keys": True},
    "ascii escapes": {"ascii_only": True},
    "python json.dumps": {"item_sep": ", ", "key_sep": ": ", "ascii_only": True},
}


@pytest.mark.parametrize("layout", sorted(REENCODINGS))
async def test_the_same_json_in_other_bytes_is_refused(fa: Facturapi, layout: str) -> None:
    for delivery in (fa.stamped, fa.failed):
        parsed = loads_decimal(delivery.body)
        assert reencode(parsed) == delivery.body  # the encoder writes the original bytes when nothing changes
        variant = reencode(parsed, **REENCODINGS[layout])
        assert variant != delivery.body and loads_decimal(variant) == parsed  # equal JSON, other bytes
        for verify in fa.verifiers.values():
            err = refused(verify, variant, delivery.headers)
            assert "does not match" in err.message
        resigned = delivery.with_signature(fa_webhooks.sign(variant, SECRET))
        assert isinstance(fa_webhooks.verify(variant, resigned, SECRET), WebhookEvent)  # control: only the bytes differ


def _changed(event: dict[str, Any], path: tuple[str, ...], value: Any) -> dict[str, Any]:
    copy: dict[str, Any] = loads_decimal(dumps(event))  # a deep copy, numbers kept as Decimal
    target = copy
    for key in path[:-1]:
        target = target[key]
    assert target[path[-1]] != value
    target[path[-1]] = value
    return copy


REPLAYS: dict[str, tuple[tuple[str, ...], Any]] = {
    "status valid -> failed": (("data", "object", "status"), "failed"),
    "status valid -> canceled": (("data", "object", "status"), "canceled"),
    "total": (("data", "object", "total"), Decimal("1.00")),
    "invoice id": (("data", "object", "id"), "000000000000000000000000"),
    "event type": (("type",), "invoice.cancellation_status_updated"),
    "event id": (("id",), "0" * 24),
    "livemode": (("livemode",), True),
}


@pytest.mark.parametrize("change", sorted(REPLAYS))
async def test_a_replay_with_one_field_changed_is_refused(fa: Facturapi, change: str) -> None:
    path, value = REPLAYS[change]
    forged_body = dumps(_changed(fa.stamped.event, path, value))  # the sandbox's own encoding: one field differs
    assert forged_body != fa.stamped.body
    for verify in fa.verifiers.values():
        err = refused(verify, forged_body, fa.stamped.headers)  # the original, valid signature
        assert "does not match" in err.message
    # control: the same forged body, signed with the secret, verifies and carries the change
    event = fa_webhooks.verify(forged_body, fa.stamped.with_signature(fa_webhooks.sign(forged_body, SECRET)), SECRET)
    assert isinstance(event, WebhookEvent)
    assert fa.client.verify_webhook(fa.stamped.body, fa.stamped.headers, SECRET).id == fa.stamped.event["id"]


async def test_a_byte_level_status_swap_is_refused(fa: Facturapi) -> None:
    assert b'"status":"valid"' in fa.stamped.body
    forged = fa.stamped.body.replace(b'"status":"valid"', b'"status":"failed"')
    for verify in fa.verifiers.values():
        refused(verify, forged, fa.stamped.headers)
    # the failed delivery's signature does not carry over to the stamped body either
    refused(fa_webhooks.verify, fa.stamped.body, fa.failed.headers)


NON_HEX = [
    "g" * 64,
    "z" + "0" * 63,
    " " * 64,
    "-" * 64,
    "\u0660" * 64,  # ARABIC-INDIC DIGIT ZERO: a digit, not a hex digit
    "\uff10" * 64,  # FULLWIDTH DIGIT ZERO
    "é" * 64,
    "0" * 63 + "\n",
]


@pytest.mark.parametrize("value", NON_HEX, ids=[f"non-hex-{i}" for i in range(len(NON_HEX))])
async def test_a_signature_of_the_right_length_but_not_hex_is_refused(fa: Facturapi, value: str) -> None:
    assert len(value) == 64
    for verify in fa.verifiers.values():
        err = refused(verify, fa.stamped.body, fa.stamped.with_signature(value))
        assert "not a hex" in err.message


@PROPERTY
@given(signature=st.text(alphabet=st.characters(exclude_characters=string.hexdigits), min_size=64, max_size=64))
def test_any_64_non_hex_characters_are_refused(signature: str) -> None:
    real = real_deliveries().stamped
    refused(fa_webhooks.verify, real.body, real.with_signature(signature))


SIGNED_NON_JSON = {
    "text": b"not json",
    "empty": b"",
    "truncated": b'{"id": "evt_1", "type": "invoice.status_updated", "data": {',
    "latin-1": '{"id": "caf\xe9"}'.encode("latin-1"),
    "invalid utf-8": b"\xff\xfe\xfa",
    "NaN": b'{"id": "evt", "total": NaN}',
    "array": b"[1, 2, 3]",
    "string": b'"invoice.status_updated"',
    "number": b"42",
    "huge integer": b"9" * 5000,
    "deep nesting": b"[" * 100_000,
    "wrong types": b'{"id": 5, "data": {"object": []}, "related_resource_messages": {}}',
    "html": b"<html><body>502 Bad Gateway</body></html>",
}


@pytest.mark.parametrize("kind", sorted(SIGNED_NON_JSON))
async def test_a_validly_signed_body_that_is_not_an_event_raises_a_billkit_error(fa: Facturapi, kind: str) -> None:
    body = SIGNED_NON_JSON[kind]
    headers = fa.stamped.with_signature(fa_webhooks.sign(body, SECRET))
    for verify in fa.verifiers.values():
        err = refused(verify, body, headers)  # the signature matched: the refusal is about the body
        assert "does not match" not in err.message and "body is not" in err.message
        assert isinstance(err, BillkitError) and not isinstance(err, ValueError)  # never a JSONDecodeError


async def test_no_secret_or_a_parsed_body_is_refused(fa: Facturapi) -> None:
    for verify in fa.verifiers.values():
        refused(verify, fa.stamped.body, fa.stamped.headers, "")
        parsed = loads_decimal(fa.stamped.body)
        with pytest.raises(WebhookVerificationError):
            verify(parsed, fa.stamped.headers, SECRET)


# -- AcceptEasy: Basic-auth credentials ---------------------------------------------------------------------------


@dataclass
class AcceptEasy:
    client: AcceptEasyAsyncClient
    body: bytes
    headers: dict[str, str]
    credentials: str
    verifiers: dict[str, Verify]

    def with_authorization(self, value: str | None, name: str = "authorization") -> dict[str, str]:
        headers = {k: v for k, v in self.headers.items() if k.lower() != "authorization"}
        if value is not None:
            headers[name] = value
        return headers


def basic(credentials: str | bytes) -> str:
    raw = credentials.encode() if isinstance(credentials, str) else credentials
    return "Basic " + base64.b64encode(raw).decode()


@pytest.fixture
async def ae() -> AsyncIterator[AcceptEasy]:
    clock = VirtualClock(wall_start=WALL_START, autojump=False)  # time moves only when the test says
    box = AcceptEasySandbox(clock)
    # webhooks first, polling as the safety net: the operation is still pending when its notification arrives
    async with billkit.AsyncClient("accepteasy", sandbox=box, poll=billkit.PollPolicy(first_delay=60)) as client:
        await client.submit(
            Bill(reference="LI-748925", description="Insurance deductible", total=Money("12.95", "EUR"))
        )
        await clock.advance(box.async_delay + 1)
        body, headers = box.webhook_request(box.notifications()[-1])
        assert box.notification_auth is not None
        credentials = ":".join(box.notification_auth)
        verifiers: dict[str, Verify] = {
            "webhooks.verify": ae_webhooks.verify,
            "client.verify_webhook": client.verify_webhook,
        }
        yield AcceptEasy(client, body, headers, credentials, verifiers)


async def test_accepteasy_right_credentials_are_accepted(ae: AcceptEasy) -> None:
    assert ae.headers["authorization"] == basic(ae.credentials)
    for variant in (basic(ae.credentials), "basic " + basic(ae.credentials)[6:], "BASIC " + basic(ae.credentials)[6:],
                    basic(ae.credentials) + "  ", "Basic   " + basic(ae.credentials)[6:]):  # fmt: skip
        for name in ("authorization", "Authorization", "AUTHORIZATION"):
            for verify in ae.verifiers.values():
                event = verify(ae.body, ae.with_authorization(variant, name), ae.credentials)
                assert isinstance(event, ae_webhooks.CreationSucceededEvent) and event.ATID
    event = ae_webhooks.verify(ae.body, ae.headers, ae.credentials, source_ip=sorted(ae_webhooks.SOURCE_IPS)[0])
    assert ae.client.handle_webhook_event(event) == 1


async def test_accepteasy_wrong_credentials_are_refused(ae: AcceptEasy) -> None:
    user, _, password = ae.credentials.partition(":")
    wrong = {
        "wrong user": basic(f"someone-else:{password}"),
        "wrong password": basic(f"{user}:guess"),
        "user only": basic(user),
        "password only": basic(f":{password}"),
        "swapped": basic(f"{password}:{user}"),
        "case of the user": basic(f"{user.upper()}:{password}"),
        "trailing newline": basic(ae.credentials + "\n"),
        "empty credentials": basic(""),
        "empty user and password": basic(":"),
        "the credentials in clear": f"Basic {ae.credentials}",
    }
    for case, value in wrong.items():
        for verify in ae.verifiers.values():
            err = refused(verify, ae.body, ae.with_authorization(value), ae.credentials)
            assert "Basic" in err.message or "base64" in err.message, case


async def test_accepteasy_missing_or_non_basic_headers_are_refused(ae: AcceptEasy) -> None:
    token = basic(ae.credentials)[6:]
    cases = {
        "missing": ae.with_authorization(None),
        "empty": ae.with_authorization(""),
        "bearer": ae.with_authorization(f"Bearer {token}"),
        "digest": ae.with_authorization(f'Digest username="{ae.credentials.partition(":")[0]}"'),
        "token alone": ae.with_authorization(token),
        "no space": ae.with_authorization(f"Basic{token}"),
        "leading space": ae.with_authorization(f" Basic {token}"),
        "proxy header": {**ae.with_authorization(None), "Proxy-Authorization": basic(ae.credentials)},
    }
    for case, headers in cases.items():
        for verify in ae.verifiers.values():
            err = refused(verify, ae.body, headers, ae.credentials)
            assert "no Basic Authorization header" in err.message, case


async def test_accepteasy_malformed_base64_is_refused(ae: AcceptEasy) -> None:
    token = basic(ae.credentials)[6:]
    malformed = {
        "not base64": "Basic !!!not-base64!!!",
        "cut": f"Basic {token[:-1]}",
        "extra padding": f"Basic {token}=",
        "url-safe alphabet": "Basic " + base64.urlsafe_b64encode(b"\xfb\xff:\xfe").decode(),
        "inner space": f"Basic {token[:4]} {token[4:]}",
        "non-ascii": "Basic dXNlcjpwYXNz\u00e9",
        "empty token": "Basic ",
    }
    for case, value in malformed.items():
        for verify in ae.verifiers.values():
            err = refused(verify, ae.body, ae.with_authorization(value), ae.credentials)
            assert "base64" in err.message or "do not match" in err.message, case


async def test_accepteasy_without_configured_credentials_nothing_verifies(ae: AcceptEasy) -> None:
    for value in (basic(""), basic(":"), basic(ae.credentials)):
        for verify in ae.verifiers.values():
            err = refused(verify, ae.body, ae.with_authorization(value), "")
            assert "no webhook credentials" in err.message


async def test_accepteasy_a_foreign_source_ip_is_refused(ae: AcceptEasy) -> None:
    for address in ("198.51.100.7", "not an ip", "", "::1"):
        with pytest.raises(WebhookVerificationError):
            ae_webhooks.verify(ae.body, ae.headers, ae.credentials, source_ip=address)


@PROPERTY
@given(credentials=st.binary(max_size=40))
def test_accepteasy_random_basic_credentials_are_refused(credentials: bytes) -> None:
    expected = b"webhook-user:webhook-password"
    body = b'{"ATID": "a", "STATUS": "Paid"}'
    headers = {"authorization": basic(credentials)}
    if credentials == expected:
        assert isinstance(ae_webhooks.verify(body, headers, expected.decode()), ae_webhooks.PaidEvent)
        return
    refused(ae_webhooks.verify, body, headers, expected.decode())


@pytest.mark.parametrize("secret", ["\udcff-lone-surrogate", 12345, b"bytes-secret"])
def test_a_secret_that_is_not_text_is_a_verification_error(secret: object) -> None:
    from billkit.providers.accepteasy import webhooks as ae
    from billkit.providers.facturapi import webhooks as fa

    with pytest.raises(WebhookVerificationError):
        fa.verify(b"{}", {"Facturapi-Signature": "0" * 64}, secret)  # type: ignore[arg-type]
    with pytest.raises(WebhookVerificationError):
        ae.verify(b"{}", {"authorization": "Basic eDp5"}, secret)  # type: ignore[arg-type]

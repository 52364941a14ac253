"""BILL webhooks: x-bill-sha-signature (base64 HMAC-SHA256 of the raw body with the subscription's securityKey),
typed events, and bill.updated events finishing a wait_for(until=PAID) without a status read."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json

import anyio
import pytest

import billkit
from billkit import BillStatus
from billkit.clock import VirtualClock
from billkit.errors import WebhookVerificationError
from billkit.providers.billcom.sandbox import BillcomSandbox
from billkit.providers.billcom.webhooks import SIGNATURE_HEADER, WebhookEvent, parse_event, sign, verify
from tests.test_batch import bills_for

NO_POLLING = billkit.PollPolicy(first_delay=86400, max_delay=86400)
KEY = "the-subscription-security-key"


def test_the_signature_is_the_base64_hmac_sha256_of_the_raw_body() -> None:
    body = b'{"metadata": {"eventId": "e1", "eventType": "bill.updated"}, "bill": {"id": "00n1"}}'
    expected = base64.b64encode(hmac.new(KEY.encode(), body, hashlib.sha256).digest()).decode()
    assert sign(body, KEY) == expected
    event = verify(body, {"X-Bill-Sha-Signature": expected}, KEY)  # any case of the header name
    assert isinstance(event, WebhookEvent) and event.id == "e1" and event.type == "bill.updated"
    assert event.bill == {"id": "00n1"}


@pytest.mark.parametrize(
    ("body", "headers", "message"),
    [
        (b'{"metadata": {}}', {}, "missing"),
        (b'{"metadata": {}}', {SIGNATURE_HEADER: "not base64!"}, "not base64"),
        (b'{"metadata": {}}', {SIGNATURE_HEADER: sign(b'{"metadata": {}}', "another key")}, "does not match"),
        (b'{"metadata": {} }', {SIGNATURE_HEADER: sign(b'{"metadata": {}}', KEY)}, "does not match"),  # re-serialized
        (b'{"metadata": {}}', {SIGNATURE_HEADER: sign(b'{"metadata": {}}', KEY)[:20]}, "does not match"),  # truncated
        (b"[1, 2]", {SIGNATURE_HEADER: sign(b"[1, 2]", KEY)}, "not a JSON object"),
        (b"{}", {SIGNATURE_HEADER: sign(b"{}", KEY)}, "no metadata object"),
        (b"not json", {SIGNATURE_HEADER: sign(b"not json", KEY)}, "not JSON"),
    ],
)
def test_a_forged_truncated_or_malformed_delivery_is_refused(body: bytes, headers: dict[str, str],
                                                             message: str) -> None:  # fmt: skip
    with pytest.raises(WebhookVerificationError, match=message):
        verify(body, headers, KEY)


def test_an_empty_key_is_refused_and_parse_keeps_unknown_fields() -> None:
    with pytest.raises(WebhookVerificationError, match="no security key"):
        verify(b"{}", {SIGNATURE_HEADER: sign(b"{}", "")}, "")
    event = parse_event(json.dumps({"metadata": {"eventId": "e", "future": 1}, "payment": {"id": "p"}}).encode())
    assert event.payment == {"id": "p"} and event.metadata.model_extra == {"future": 1}


def test_bill_updated_events_finish_a_wait_for_paid_with_no_status_read() -> None:
    async def main() -> None:
        clock = VirtualClock(autojump=False)
        box = BillcomSandbox(clock)
        box.latency = 0.0  # the test moves time itself: no request may wait on the clock
        async with billkit.AsyncClient("billcom", sandbox=box, poll=NO_POLLING) as client:
            bill = await client.create(bills_for("billcom", 1)[0])
            assert bill.provider_id
            op = await client.wait_for(bill.provider_id, until=BillStatus.PAID)
            box.pay(bill.provider_id, scheduled_after=60, paid_after=600)
            reads = len(box.received("GET"))
            await clock.advance(60)
            [scheduled] = box.events()
            body, headers = box.webhook_request(scheduled)
            assert client.handle_webhook_event(client.verify_webhook(body, headers, box.webhook_security_key)) == 1
            assert not op.done() and op.status is not BillStatus.PAID
            await clock.advance(540)
            paid = box.events()[-1]
            body, headers = box.webhook_request(paid)
            client.handle_webhook_event(client.verify_webhook(body, headers, box.webhook_security_key))
            body, headers = box.webhook_request(scheduled)  # the older one, delivered again late: ignored
            assert client.handle_webhook_event(client.verify_webhook(body, headers, box.webhook_security_key)) == 0
            with anyio.fail_after(1):
                done = await op
            assert done.status is BillStatus.PAID and done.provider_id == bill.provider_id
            assert len(box.received("GET")) == reads, "finished by the events alone"

    anyio.run(main)

"""Webhook events follow each operation's own rules, in order, and secrets rotate.

* A ``wait_for(until=VOID)`` is not finished by an event saying the invoice is valid (OPEN): an event is read the
  way a poll of that kind of operation reads a bill.
* An event older than one already applied (by its ``created_at``) never replaces the newer state.
* ``verify_webhook`` takes several secrets: a delivery signed with the old secret or the new one verifies while a
  secret is rotated; one signed with neither is refused.

Polling is pushed out of the way (``first_delay`` of an hour on a clock that does not jump by itself), so every
change seen here comes from an event.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import anyio
import pytest

import billkit
from billkit import BillStatus
from billkit.clock import VirtualClock
from billkit.errors import WebhookVerificationError
from billkit.providers.facturapi import FacturapiAsyncClient
from billkit.providers.facturapi.sandbox import FacturapiSandbox
from billkit.providers.facturapi.webhooks import STATUS_UPDATED, sign
from tests.test_batch import bills_for

NO_POLLING = billkit.PollPolicy(first_delay=3600, max_delay=3600)


def event(invoice: dict[str, Any], status: str, at: dt.datetime, *, kind: str = STATUS_UPDATED) -> dict[str, Any]:
    return {"id": f"evt_{status}_{at.timestamp():.0f}", "created_at": at.isoformat().replace("+00:00", "Z"),
            "type": kind, "data": {"type": "invoice", "object": {**invoice, "status": status}}}  # fmt: skip


async def watched(until: BillStatus) -> tuple[FacturapiAsyncClient, FacturapiSandbox, Any, dict[str, Any]]:
    box = FacturapiSandbox(VirtualClock(autojump=False))
    client = billkit.AsyncClient("facturapi", sandbox=box, poll=NO_POLLING)
    bill = await client.create(bills_for("facturapi", 1)[0])
    assert bill.provider_id and bill.raw is not None
    op = await client.wait_for(bill.provider_id, until=until)
    return client, box, op, dict(bill.raw)


def deliver(client: FacturapiAsyncClient, box: FacturapiSandbox, payload: dict[str, Any]) -> int:
    body, headers = box.webhook_request(payload)
    return client.handle_webhook_event(client.verify_webhook(body, headers, box.webhook_secret))


T0 = dt.datetime(2026, 12, 3, 12, 0, tzinfo=dt.timezone.utc)


def test_a_wait_for_void_is_not_finished_by_a_valid_event_but_by_a_canceled_one() -> None:
    async def main() -> None:
        client, box, op, invoice = await watched(BillStatus.VOID)
        async with client:
            assert deliver(client, box, event(invoice, "valid", T0)) == 1
            await anyio.lowlevel.checkpoint()
            assert not op.done() and op.status is BillStatus.OPEN
            deliver(client, box, event(invoice, "canceled", T0 + dt.timedelta(minutes=5)))
            with anyio.fail_after(1):
                done = await op
            assert done.status is BillStatus.VOID
            assert len(box.received("GET")) == 0, "finished from the events alone, no status read"

    anyio.run(main)


def test_a_wait_for_open_is_failed_by_an_event_of_a_final_status_it_can_no_longer_leave() -> None:
    async def main() -> None:
        client, box, op, invoice = await watched(BillStatus.PAID)
        async with client:
            deliver(client, box, event(invoice, "canceled", T0))
            with anyio.fail_after(1), pytest.raises(billkit.OperationFailed, match="reached void"):
                await op

    anyio.run(main)


def test_an_older_event_delivered_late_never_replaces_newer_state() -> None:
    async def main() -> None:
        client, box, op, invoice = await watched(BillStatus.VOID)
        async with client:
            deliver(client, box, event(invoice, "valid", T0 + dt.timedelta(minutes=10)))
            assert op.status is BillStatus.OPEN
            assert deliver(client, box, event(invoice, "pending", T0)) == 0, "the late, older event is ignored"
            assert op.status is BillStatus.OPEN and not op.done()
            # the same event delivered again is harmless: same order, same news
            deliver(client, box, event(invoice, "valid", T0 + dt.timedelta(minutes=10)))
            assert op.status is BillStatus.OPEN and not op.done()

    anyio.run(main)


def test_a_rotated_secret_verifies_deliveries_signed_with_either_and_refuses_others() -> None:
    async def main() -> None:
        client, box, _, invoice = await watched(BillStatus.VOID)
        async with client:
            body, _ = box.webhook_request(event(invoice, "valid", T0))
            secrets = ["whsec_new", box.webhook_secret]
            for secret in secrets:  # signed with the new one, and with the old one still in flight
                verified = client.verify_webhook(body, {"Facturapi-Signature": sign(body, secret)}, secrets)
                assert verified.type == STATUS_UPDATED
            forged = {"Facturapi-Signature": sign(body, "whsec_other")}
            with pytest.raises(WebhookVerificationError, match="any of the 2 secrets"):
                client.verify_webhook(body, forged, secrets)
            with pytest.raises(WebhookVerificationError):
                client.verify_webhook(body, forged, [])

    anyio.run(main)

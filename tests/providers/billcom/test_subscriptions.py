"""BILL webhook subscriptions (the webhooks API at ``.../connect-events``): the native client against the sandbox
and, on the wire, against respx; plus ``BillcomSandbox.pay(amount=Money(...))``."""

from __future__ import annotations

import json
import logging
import uuid
from decimal import Decimal
from typing import Any

import httpx
import pytest
import respx

import billkit
from billkit import BillStatus, Client, Money
from billkit.clock import VirtualClock
from billkit.errors import (
    APIError,
    ConfigurationError,
    MoneyError,
    NotFoundError,
    OutcomeUnknownError,
    ValidationError,
    WebhookVerificationError,
)
from billkit.providers.billcom import BillcomAsyncClient, BillcomError, EventSpec, Subscription
from billkit.providers.billcom.sandbox import DEFAULT_SUBSCRIPTION, VENDOR_INITECH, BillcomSandbox
from billkit.providers.billcom.subscriptions import derive_events_base_url, stable_idempotency_key
from billkit.providers.billcom.webhooks import verify
from billkit.sandboxing import Fault

from .builders import client, payable

HOOK = "https://hooks.example.com/bill"
EVENTS = ["bill.created", "bill.updated"]
PROD = "https://gateway.prod.bill.com/connect"
CREDS: dict[str, Any] = {"username": "u@example.com", "password": "pw", "organization_id": "00801ORG", "dev_key": "dk"}


def _key(sub: Subscription) -> str:
    assert sub.security_key is not None
    return sub.security_key.get_secret_value()


# -- the lifecycle against the sandbox, both clients ------------------------------------------------------------


@pytest.mark.anyio
async def test_create_list_get_update_replace_delete_async(box: BillcomSandbox) -> None:
    async with client(box) as c:
        sub = await c.native.create_subscription("Bills", HOOK, EVENTS)
        assert sub.id.startswith("sub") and sub.name == "Bills" and sub.enabled is True
        assert sub.event_types == EVENTS and sub.notification_url == HOOK
        assert _key(sub) and sub.organization_id == box.credentials["organization_id"]
        (sent,) = box.received("POST", "/v3/subscriptions")
        assert sent.body == {"name": "Bills", "status": {"enabled": True}, "notificationUrl": HOOK,
                             "events": [{"type": "bill.created", "version": "1"},
                                        {"type": "bill.updated", "version": "1"}]}  # fmt: skip

        listed = await c.native.list_subscriptions()
        got = await c.native.get_subscription(sub.id)
        assert [s.id for s in listed] == [sub.id]
        assert listed[0].security_key is None and got.security_key is None  # returned once, to the create

        paused = await c.native.update_subscription(sub.id, enabled=False)
        assert paused.enabled is False and paused.name == "Bills"
        assert box.received("PATCH")[0].body == {"status": {"enabled": False}}
        replaced = await c.native.replace_subscription(sub.id, "Paid bills", HOOK + "/paid",
                                                       [EventSpec(type="bill.updated", version="1")])  # fmt: skip
        assert (replaced.name, replaced.event_types, replaced.enabled) == ("Paid bills", ["bill.updated"], True)

        await c.native.delete_subscription(sub.id)
        with pytest.raises(NotFoundError) as info:
            await c.native.get_subscription(sub.id)
    assert isinstance(info.value, BillcomError) and info.value.code == "BDC_1205"
    assert [e.category for e in info.value.entries] == ["DOWNSTREAM"]  # BILL's error array
    assert box.subscriptions == {}


def test_create_list_get_update_delete_blocking(box: BillcomSandbox) -> None:
    with Client("billcom", sandbox=box) as c:
        sub = c.native.create_subscription("Bills", HOOK, ["bill.updated"], enabled=False)
        assert sub.enabled is False and _key(sub)
        assert [s.id for s in c.native.list_subscriptions()] == [sub.id]
        assert c.native.get_subscription(sub.id).security_key is None
        renamed = c.native.update_subscription(sub.id, name="Renamed", events=["bill.updated", "bill.archived"])
        assert renamed.name == "Renamed" and renamed.event_types == ["bill.updated", "bill.archived"]
        c.native.delete_subscription(sub.id)
        assert c.native.list_subscriptions() == []
        with pytest.raises(NotFoundError):
            c.native.delete_subscription(sub.id)


@pytest.mark.anyio
async def test_the_calls_go_to_the_webhooks_api_of_the_sandbox(box: BillcomSandbox) -> None:
    async with client(box) as c:
        assert c.native.events_base_url == "https://sandbox.billkit.invalid/connect-events" == box.events_base_url
        await c.native.create_subscription("Bills", HOOK, EVENTS)
    raw = httpx.AsyncClient(transport=box, base_url="https://sandbox.billkit.invalid")
    async with raw:
        login = await raw.post("/connect/v3/login", json={"username": box.credentials["username"],
                                                          "password": box.credentials["password"],
                                                          "organizationId": box.credentials["organization_id"],
                                                          "devKey": box.credentials["dev_key"]})  # fmt: skip
        auth = {"devKey": box.credentials["dev_key"], "sessionId": login.json()["sessionId"]}
        on_main = await raw.get("/connect/v3/subscriptions", headers=auth)
        bills_on_events = await raw.get("/connect-events/v3/bills", headers=auth)
        login_on_events = await raw.post("/connect-events/v3/login", json={})
        listed = await raw.get("/connect-events/v3/subscriptions", headers=auth)
    assert on_main.status_code == bills_on_events.status_code == 404
    assert on_main.json()[0]["code"] == bills_on_events.json()[0]["code"] == "BDC_1121"
    assert login_on_events.status_code == 401  # no session: the webhooks API has no login of its own
    assert [s["name"] for s in listed.json()] == ["Bills"] and "securityKey" not in listed.json()[0]


# -- idempotent create -------------------------------------------------------------------------------------------


@pytest.mark.anyio
async def test_a_create_whose_answer_was_dropped_is_retried_with_its_key_and_makes_one(box: BillcomSandbox) -> None:
    box.faults.once(Fault.DROP_AFTER, match="POST /v3/subscriptions")  # BILL acted, then the connection broke
    async with client(box) as c:
        sub = await c.native.create_subscription("Bills", HOOK, EVENTS)
    assert len(box.received("POST", "/v3/subscriptions")) == 2
    assert list(box.subscriptions) == [sub.id]  # the replayed key answered the first subscription again
    assert _key(sub) == box.security_key(sub.id)


def test_a_dropped_create_makes_one_subscription_blocking(box: BillcomSandbox) -> None:
    box.faults.once(Fault.DROP_AFTER, match="POST /v3/subscriptions")
    with Client("billcom", sandbox=box) as c:
        sub = c.native.create_subscription("Bills", HOOK, EVENTS)
    assert len(box.received("POST", "/v3/subscriptions")) == 2 and list(box.subscriptions) == [sub.id]


def _wire_router(router: respx.Router, base: str = PROD) -> None:
    router.post(f"{base}/v3/login").respond(200, json={"sessionId": "sid-1", "organizationId": "00801ORG"})
    router.post(f"{base}/v3/logout").respond(200)


def _wire(router: respx.Router, **options: Any) -> BillcomAsyncClient:
    """An AsyncClient on respx, on a virtual clock (retries sleep no real time)."""
    transport = httpx.MockTransport(router.async_handler)
    return billkit.AsyncClient("billcom", transport=transport, clock=VirtualClock(), **{"base_url": PROD, **CREDS,
                                                                                          **options})  # fmt: skip


def _answer(**extra: Any) -> dict[str, Any]:
    return {"id": "sub_w1", "name": "Bills", "status": {"enabled": True}, "notificationUrl": HOOK,
            "events": [{"type": "bill.created", "version": "1"}], **extra}  # fmt: skip


@pytest.mark.anyio
async def test_on_the_wire_every_attempt_carries_the_same_uuid4_key_async() -> None:
    router = respx.Router(assert_all_called=False)
    _wire_router(router)
    route = router.post("https://gateway.prod.bill.com/connect-events/v3/subscriptions").mock(
        side_effect=[httpx.ReadTimeout("lost"), httpx.RemoteProtocolError("dropped"),
                     httpx.Response(200, json=_answer(securityKey="k-123", futureField=1))])  # fmt: skip
    async with _wire(router) as c:
        sub = await c.native.create_subscription("Bills", HOOK, ["bill.created"])
    keys = {call.request.headers["X-Idempotent-Key"] for call in route.calls}
    assert len(route.calls) == 3 and len(keys) == 1
    assert uuid.UUID(keys.pop()).version == 4
    first = route.calls[0].request
    assert first.headers["devKey"] == "dk" and first.headers["sessionId"] == "sid-1"
    assert json.loads(first.content)["status"] == {"enabled": True}
    assert _key(sub) == "k-123" and sub.model_extra == {"futureField": 1}  # unknown fields kept


def test_on_the_wire_a_given_key_is_sent_and_a_new_login_keeps_it_blocking() -> None:
    router = respx.Router(assert_all_called=False)
    _wire_router(router)
    expired = [{"code": "BDC_1109", "message": "Session is invalid. Please log in.", "severity": "ERROR",
                "category": "DOWNSTREAM"}]  # fmt: skip
    route = router.post("https://gateway.prod.bill.com/connect-events/v3/subscriptions").mock(
        side_effect=[httpx.Response(401, json=expired), httpx.Response(200, json=_answer(securityKey="k"))]
    )
    key = stable_idempotency_key("acme/bill-events")
    with Client("billcom", base_url=PROD, transport=httpx.MockTransport(router.handler), clock=VirtualClock(),
                **CREDS) as c:  # fmt: skip
        c.native.create_subscription("Bills", HOOK, ["bill.created"], idempotency_key=key)
    assert [call.request.headers["X-Idempotent-Key"] for call in route.calls] == [key, key]
    assert uuid.UUID(key).version == 4 and key == stable_idempotency_key("acme/bill-events")
    assert len(router.routes[0].calls) == 2  # logged in again once, then the same key


@pytest.mark.anyio
async def test_a_replayed_key_returns_the_same_subscription_and_refuses_another_body(box: BillcomSandbox) -> None:
    key = str(uuid.uuid4())
    async with client(box) as c:
        first = await c.native.create_subscription("Bills", HOOK, EVENTS, idempotency_key=key)
        again = await c.native.create_subscription("Bills", HOOK, EVENTS, idempotency_key=uuid.UUID(key))
        with pytest.raises(APIError, match="already used"):
            await c.native.create_subscription("Other", HOOK + "/2", EVENTS, idempotency_key=key)
        with pytest.raises(APIError, match="same events and notificationUrl"):
            await c.native.create_subscription("Twin", HOOK, list(reversed(EVENTS)))
    assert first.id == again.id and _key(first) == _key(again) and len(box.subscriptions) == 1


@pytest.mark.anyio
async def test_a_create_refused_after_an_attempt_that_may_have_acted_is_outcome_unknown() -> None:
    router = respx.Router(assert_all_called=False)
    _wire_router(router)
    duplicate = [{"code": None, "message": "Duplicate subscription.", "severity": "ERROR", "category": "REQUEST"}]
    route = router.post("https://gateway.prod.bill.com/connect-events/v3/subscriptions").mock(
        side_effect=[httpx.RemoteProtocolError("dropped"), httpx.Response(400, json=duplicate)]
    )
    async with _wire(router) as c:
        with pytest.raises(OutcomeUnknownError) as info:
            await c.native.create_subscription("Bills", HOOK, ["bill.created"])
    assert route.call_count == 2 and info.value.reference == "Bills"
    assert "list_subscriptions" in info.value.how_to_check and "rotate_security_key" in info.value.how_to_check


# -- the security key ---------------------------------------------------------------------------------------


@pytest.mark.anyio
async def test_the_security_key_never_shows(box: BillcomSandbox, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, logger="billkit")
    async with client(box) as c:
        sub = await c.native.create_subscription("Bills", HOOK, EVENTS)
        secret = _key(sub)
        shown = [repr(sub), str(sub), sub.model_dump_json(), repr(sub.model_dump()), repr(sub.security_key),
                 str(sub.security_key), repr(c.native), repr(c)]  # fmt: skip
    assert all(secret not in text for text in shown)
    assert "**********" in repr(sub) and json.loads(sub.model_dump_json())["security_key"] == "**********"
    assert secret not in caplog.text
    assert all(secret not in repr(r.body) for r in box.requests)


@pytest.mark.anyio
async def test_an_unreadable_create_answer_raises_with_the_key_redacted() -> None:
    router = respx.Router(assert_all_called=False)
    _wire_router(router)
    router.post("https://gateway.prod.bill.com/connect-events/v3/subscriptions").respond(
        200, json={"name": "no id", "securityKey": "leaked-key"}
    )
    async with _wire(router) as c:
        with pytest.raises(APIError) as info:
            await c.native.create_subscription("Bills", HOOK, ["bill.created"])
    err = info.value
    assert "leaked-key" not in f"{err} {err!r} {err.raw!r}"
    assert err.raw == {"name": "no id", "securityKey": "[redacted]"}


@pytest.mark.anyio
async def test_a_new_security_key_signs_the_later_deliveries(box: BillcomSandbox) -> None:
    async with client(box) as c:
        sub = await c.native.create_subscription("Bills", HOOK, ["bill.created"])
        rotated = await c.native.rotate_security_key(sub.id)
        await c.create(payable("RK-1"))
        (event,) = box.events()
        body, headers = box.webhook_request(event)
        assert c.verify_webhook(body, headers, rotated.get_secret_value()).type == "bill.created"
        with pytest.raises(WebhookVerificationError):
            c.verify_webhook(body, headers, _key(sub))
    assert rotated.get_secret_value() != _key(sub) and "securityKey" not in repr(rotated)


# -- validation before sending -------------------------------------------------------------------------------


@pytest.mark.anyio
async def test_bad_input_is_refused_before_anything_is_sent(box: BillcomSandbox) -> None:
    async with client(box) as c:
        with pytest.raises(ValidationError) as info:
            await c.native.create_subscription(" ", "http://hooks.example.com/bill",
                                               ["bill.created", "bill_created", "bill.created"],
                                               idempotency_key=str(uuid.uuid1()))  # fmt: skip
        fields = [p.field for p in info.value.problems]
        assert fields == ["idempotency_key", "name", "notification_url", "events[1]", "events[2]"]
        with pytest.raises(ValidationError, match="is not a URL"):
            await c.native.create_subscription("Bills", "https://[::1", EVENTS)
        with pytest.raises(ValidationError, match="at least one event"):
            await c.native.create_subscription("Bills", HOOK, [])
        with pytest.raises(ValidationError, match="give a list"):
            await c.native.create_subscription("Bills", HOOK, "bill.created")
        with pytest.raises(ValidationError, match="not a UUID"):
            await c.native.create_subscription("Bills", HOOK, EVENTS, idempotency_key="key-1")
        with pytest.raises(ValidationError, match="nothing to update"):
            await c.native.update_subscription("sub01")
        with pytest.raises(ValidationError, match="HTTPS"):
            await c.native.replace_subscription("sub01", "Bills", "ftp://x", EVENTS)
        with pytest.raises(ValidationError, match="subscription_id"):
            await c.native.get_subscription("")
        with pytest.raises(ValidationError, match="event_type"):
            await c.native.send_test_event("sub01", event_type="nope")
    assert box.requests == []  # nothing reached BILL, not even a login


# -- where the webhooks API is ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("base", "events"),
    [
        ("https://gateway.stage.bill.com/connect", "https://gateway.stage.bill.com/connect-events"),
        ("https://gateway.prod.bill.com/connect/", "https://gateway.prod.bill.com/connect-events"),
        ("http://127.0.0.1:8088/connect", "http://127.0.0.1:8088/connect-events"),  # a served sandbox
        ("https://gateway.prod.bill.com/connect-events", "https://gateway.prod.bill.com/connect-events"),
    ],
)
def test_the_events_base_url_is_derived_from_the_base_url(base: str, events: str) -> None:
    assert derive_events_base_url(base) == events


@pytest.mark.parametrize(
    "base", ["http://localhost:9000", "https://bill.example.com/connectx", "https://x/connect?a=1"]
)
def test_a_base_url_without_a_connect_twin_is_a_configuration_error(base: str) -> None:
    with pytest.raises(ConfigurationError, match="events_base_url"):
        derive_events_base_url(base)


@pytest.mark.anyio
async def test_the_client_uses_the_derived_the_explicit_or_the_environment_events_base(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    router = respx.Router(assert_all_called=False)
    _wire_router(router)
    derived = router.get("https://gateway.prod.bill.com/connect-events/v3/subscriptions").respond(200, json=[])
    page_two = router.get("https://events.example.com/connect-events/v3/subscriptions", params={"page": "p2"})
    page_two.respond(200, json={"results": [_answer(id="sub_w2")]})
    explicit = router.get("https://events.example.com/connect-events/v3/subscriptions").respond(
        200, json={"results": [_answer()], "nextPage": "p2"}
    )
    async with _wire(router) as c:
        assert await c.native.list_subscriptions() == []
    async with _wire(router, events_base_url="https://events.example.com/connect-events/") as c:
        assert [s.id for s in await c.native.list_subscriptions()] == ["sub_w1", "sub_w2"]  # nextPage followed
    monkeypatch.setenv("BILL_EVENTS_BASE_URL", "https://events.example.com/connect-events")
    async with _wire(router) as c:
        assert c.native.events_base_url == "https://events.example.com/connect-events"
    assert derived.call_count == 1 and explicit.call_count == 1 and page_two.call_count == 1
    login = router.routes[0]
    assert login.call_count == 2 and str(login.calls[0].request.url) == f"{PROD}/v3/login"  # the main API's


@pytest.mark.anyio
async def test_an_underivable_events_base_fails_before_any_request() -> None:
    router = respx.Router(assert_all_called=False)
    async with _wire(router, base_url="http://localhost:9000/api") as c:
        with pytest.raises(ConfigurationError, match="events_base_url"):
            await c.native.list_subscriptions()
    assert router.calls.call_count == 0
    blocking = billkit.Client("billcom", events_base_url="gateway.prod.bill.com", **CREDS)
    with blocking, pytest.raises(ConfigurationError, match="not an http"):
        blocking.native.list_subscriptions()


# -- deliveries signed by the subscription's key ---------------------------------------------------------


@pytest.mark.anyio
async def test_a_delivery_signed_with_a_created_subscriptions_key_verifies(
    box: BillcomSandbox, clock: VirtualClock
) -> None:
    async with client(box) as c:
        sub = await c.native.create_subscription("Bills", HOOK, EVENTS)
        bill = await c.create(payable("WH-1"))
        assert bill.provider_id is not None
        op = await c.wait_for(bill.provider_id, until=BillStatus.PAID)
        box.pay(bill.provider_id, scheduled_after=0, paid_after=60)
        await clock.sleep(60)
        events = box.events()
        assert [e["metadata"]["eventType"] for e in events] == ["bill.created", "bill.updated", "bill.updated"]
        assert {e["metadata"]["subscriptionId"] for e in events} == {sub.id}  # the implicit one gets nothing now
        body, headers = box.webhook_request(events[-1])
        event = c.verify_webhook(body, headers, _key(sub))
        assert event.metadata.subscription_id == sub.id and event.bill is not None
        assert verify(body, headers, _key(sub)).id == event.id
        with pytest.raises(WebhookVerificationError):
            c.verify_webhook(body, headers, box.webhook_security_key)
        c.handle_webhook_event(event)
        assert (await op).status is BillStatus.PAID

        history = await c.native.list_subscription_events(sub.id, filters=[("entityId", "eq", bill.provider_id)])
        assert [h.event_id for h in history] == [e["metadata"]["eventId"] for e in events]
        assert [h.event_type for h in history] == ["bill.created", "bill.updated", "bill.updated"]
        await c.native.resend_event(sub.id, events[0]["metadata"]["eventId"])
        with pytest.raises(NotFoundError):
            await c.native.resend_event(sub.id, "evt-unknown")
    assert box.resent == [(sub.id, events[0]["metadata"]["eventId"])]


def test_a_test_event_is_signed_with_the_subscription_key_blocking(box: BillcomSandbox) -> None:
    with Client("billcom", sandbox=box) as c:
        sub = c.native.create_subscription("Vendors", HOOK, ["vendor.created", "bill.created"])
        answer = c.native.send_test_event(sub.id, event_type="bill.created", payload={"bill": {"id": "00n01T"}})
        assert answer["metadata"]["subscriptionId"] == sub.id
        (event,) = box.events()
        body, headers = box.webhook_request(event)
        verified = c.verify_webhook(body, headers, _key(sub))
        default = c.native.send_test_event(sub.id)  # every field is optional: the first subscribed event
    assert verified.type == "bill.created" and verified.bill == {"id": "00n01T"}
    assert default["metadata"]["eventType"] == "vendor.created" and default["vendor"] == {"id": "test"}


@pytest.mark.anyio
async def test_the_implicit_subscription_still_serves_until_one_is_created(box: BillcomSandbox) -> None:
    async with client(box) as c:
        bill = await c.create(payable("IM-1"))
        assert bill.provider_id is not None
        box.pay(bill.provider_id, paid_after=0)
        (implicit,) = box.events()  # bill.updated only, as before subscriptions existed
        assert implicit["metadata"]["subscriptionId"] == DEFAULT_SUBSCRIPTION
        assert box.security_key(DEFAULT_SUBSCRIPTION) == box.webhook_security_key
        body, headers = box.webhook_request(implicit)
        assert c.verify_webhook(body, headers, box.webhook_security_key).type == "bill.updated"
        sub = await c.native.create_subscription("Later", HOOK, ["bill.updated", "bill.archived"])
        assert box.events() == []  # BILL sends a subscription what happens after it was made
        await c.native.archive_bill(bill.provider_id)
        (archived,) = box.events()
    assert archived["metadata"] == {**archived["metadata"], "subscriptionId": sub.id, "eventType": "bill.archived"}
    assert archived["bill"]["archived"] is True


# -- lost answers of other writes -----------------------------------------------------------------------


@pytest.mark.anyio
async def test_lost_answers_of_an_update_and_a_delete_are_settled_by_one_read(box: BillcomSandbox) -> None:
    async with client(box) as c:
        sub = await c.native.create_subscription("Bills", HOOK, EVENTS)
        box.faults.once(Fault.DROP_AFTER, match="PATCH /v3/subscriptions")
        paused = await c.native.update_subscription(sub.id, enabled=False)
        assert paused.enabled is False and len(box.received("PATCH")) == 1  # not sent again: read instead
        box.faults.once(Fault.DROP_AFTER, match="DELETE /v3/subscriptions")
        await c.native.delete_subscription(sub.id)
        assert len(box.received("DELETE")) == 1 and box.subscriptions == {}
        other = await c.native.create_subscription("Other", HOOK, EVENTS)
        box.faults.once(Fault.DROP_BEFORE, match="PATCH /v3/subscriptions")  # never arrived: sent again
        renamed = await c.native.update_subscription(other.id, name="Renamed")
        assert renamed.name == "Renamed" and len(box.received("PATCH")) == 3
        box.fail_next("BDC_1001", status=503, match="PATCH /v3/subscriptions")  # may have acted; it did not
        with pytest.raises(OutcomeUnknownError, match="may have reached"):
            await c.native.update_subscription(other.id, name="Again")
    assert box.subscriptions[other.id]["name"] == "Renamed"


@pytest.mark.anyio
async def test_the_sandbox_enforces_bills_limits(box: BillcomSandbox) -> None:
    async with client(box) as c:
        for i in range(10):
            await c.native.create_subscription(f"S-{i}", f"{HOOK}/{i}", EVENTS)
        with pytest.raises(APIError, match="up to 10") as info:
            await c.native.create_subscription("S-10", f"{HOOK}/10", EVENTS)
    assert info.value.status_code == 400 and len(box.subscriptions) == 10


# -- the sandbox's pay() takes Money -------------------------------------------------------------------------------


@pytest.mark.anyio
async def test_pay_accepts_money_in_the_bills_currency(box: BillcomSandbox, clock: VirtualClock) -> None:
    async with client(box) as c:
        usd = await c.create(payable("PM-1", lines=(("Toner", "100.00"),)))
        eur = await c.create(payable("PM-2", vendor=VENDOR_INITECH, currency="EUR"))
        assert usd.provider_id is not None and eur.provider_id is not None
        box.pay(usd.provider_id, paid_after=10, amount=Money("40.00", "USD"))
        box.pay(eur.provider_id, paid_after=10, amount=Money("149.00", "EUR"))
        with pytest.raises(MoneyError, match="is in USD") as info:
            box.pay(usd.provider_id, amount=Money("40.00", "EUR"))
        assert isinstance(info.value, ValueError)
        with pytest.raises(MoneyError, match="float"):
            box.pay(usd.provider_id, amount=40.0)  # type: ignore[arg-type]
        await clock.sleep(10)
        partial = await c.get(usd.provider_id)
        paid = await c.get(eur.provider_id)
    assert partial.status is BillStatus.PARTIALLY_PAID and partial.amount_paid == Money("40.00", "USD")
    assert paid.status is BillStatus.PAID and paid.amount_paid == Money("149.00", "EUR")
    assert box.payments[usd.provider_id].amount == Decimal("40.00")

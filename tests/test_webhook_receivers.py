"""The webhook receiver under each framework's own test client: Starlette (ASGI, as FastAPI mounts it), Flask and
Django; per provider, deliveries that are valid, forged, truncated, replayed, out of order, of the wrong content
type; a secret rotated while events arrive; 1,000 copies of one delivery processed once.

Polling is pushed out of the way (an hour's first delay on a clock that does not jump by itself): what finishes
an operation here is the delivery.
"""

from __future__ import annotations

import datetime as dt
import warnings
from collections.abc import Callable
from typing import Any

import pytest

import billkit
from billkit import BillStatus
from billkit.clock import VirtualClock
from billkit.providers.billcom.sandbox import BillcomSandbox
from billkit.providers.facturapi.sandbox import FacturapiSandbox
from billkit.providers.facturapi.webhooks import STATUS_UPDATED
from billkit.webhooks import Receiver
from tests.test_batch import bills_for

NO_POLLING = billkit.PollPolicy(first_delay=86400, max_delay=86400)
T0 = dt.datetime(2026, 12, 3, 12, 0, tzinfo=dt.timezone.utc)

Post = Callable[[bytes, dict[str, str]], int]


# -- one test client per framework, each posting raw bytes to the receiver's view ---------------------------------
def starlette_post(receiver: Receiver) -> Post:
    from starlette.applications import Starlette
    from starlette.routing import Mount

    with warnings.catch_warnings():  # starlette asks for httpx2 in its test client; httpx is what billkit uses
        warnings.simplefilter("ignore")
        from starlette.testclient import TestClient

        client = TestClient(Starlette(routes=[Mount("/hook", app=receiver.asgi())]))
    return lambda body, headers: client.post("/hook", content=body, headers=headers).status_code


def flask_post(receiver: Receiver) -> Post:
    from flask import Flask

    app = Flask("billkit_test")
    app.add_url_rule("/hook", view_func=receiver.flask_view(), methods=["POST"])
    client = app.test_client()
    return lambda body, headers: client.post("/hook", data=body, headers=headers).status_code


_DJANGO_VIEW: list[Callable[[Any], Any]] = []


def _django_dispatch(request: Any) -> Any:
    return _DJANGO_VIEW[-1](request)


def django_post(receiver: Receiver) -> Post:
    import django
    from django.conf import settings

    if not settings.configured:
        settings.configure(ROOT_URLCONF=__name__, ALLOWED_HOSTS=["*"], DEBUG=False, SECRET_KEY="test",
                           MIDDLEWARE=["django.middleware.csrf.CsrfViewMiddleware"])  # fmt: skip
        django.setup()
    from django.test import Client

    view = receiver.django_view()
    _DJANGO_VIEW.append(view)
    # the URLconf routes through one function: it is exempt from CSRF exactly when the receiver's view is
    _django_dispatch.csrf_exempt = getattr(view, "csrf_exempt", False)  # type: ignore[attr-defined]
    client = Client(enforce_csrf_checks=True)  # the view is CSRF-exempt, as a webhook must be

    def post(body: bytes, headers: dict[str, str]) -> int:
        kind = next((v for k, v in headers.items() if k.lower() == "content-type"), "")
        rest = {k: v for k, v in headers.items() if k.lower() != "content-type"}
        return int(client.post("/hook", data=body, content_type=kind, headers=rest).status_code)

    return post


def urlpatterns_() -> list[Any]:
    from django.urls import path

    return [path("hook", _django_dispatch)]


FRAMEWORKS = {"starlette": starlette_post, "flask": flask_post, "django": django_post}


def __getattr__(name: str) -> Any:  # Django reads ROOT_URLCONF's urlpatterns lazily
    if name == "urlpatterns":
        return urlpatterns_()
    raise AttributeError(name)


# -- the providers: a pending operation, and the deliveries that finish it --------------------------------------
class Case:
    def __init__(self, provider: str) -> None:
        self.provider = provider
        self.clock = VirtualClock(autojump=False)
        if provider == "facturapi":
            self.box: Any = FacturapiSandbox(self.clock)
            self.secret = self.box.webhook_secret
        else:
            self.box = BillcomSandbox(self.clock)
            self.box.latency = 0.0
            self.secret = self.box.webhook_security_key
        self.client = billkit.Client(provider, sandbox=self.box, poll=NO_POLLING)
        bill = self.client.create(bills_for(provider, 1)[0])
        assert bill.provider_id
        self.bill = bill
        self.until = BillStatus.VOID if provider == "facturapi" else BillStatus.PAID
        self.op = self.client.wait_for(bill.provider_id, until=self.until)
        self.reads = len(self.box.received("GET"))  # BILL's create read the vendor's currency

    def delivery(self, final: bool, at: dt.datetime, event_id: str) -> tuple[bytes, dict[str, str]]:
        """A signed delivery saying the bill reached the awaited status (``final``) or an earlier one."""
        raw = dict(self.bill.raw or {})
        if self.provider == "facturapi":
            invoice = {**raw, "status": "canceled" if final else "valid"}
            event = {"id": event_id, "created_at": at.isoformat(), "type": STATUS_UPDATED,
                     "data": {"type": "invoice", "object": invoice}}  # fmt: skip
        else:
            bill = {**raw, "paymentStatus": "PAID" if final else "SCHEDULED", "updatedTime": at.isoformat()}
            if final:
                bill.update(paidAmount=raw.get("amount"), dueAmount="0.00")
            event = {"metadata": {"eventId": event_id, "eventType": "bill.updated"}, "bill": bill}
        body, headers = self.box.webhook_request(event)
        return body, dict(headers)


@pytest.fixture(params=list(FRAMEWORKS))
def framework(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.mark.parametrize("provider", ["facturapi", "billcom"])
def test_valid_forged_truncated_replayed_late_and_non_json_deliveries(framework: str, provider: str) -> None:
    case = Case(provider)
    handled: list[Any] = []
    receiver = Receiver(case.client, secret=case.secret, on_event=handled.append)
    post = FRAMEWORKS[framework](receiver)
    try:
        early, early_headers = case.delivery(False, T0, "evt-1")
        assert post(early, {**early_headers, "content-type": "text/plain"}) == 415
        assert post(early[:-5], early_headers) == 400, "a truncated body does not verify"
        forged = {**early_headers, **{k: "A" * len(v) for k, v in early_headers.items() if "sign" in k.lower()}}
        assert post(early, forged) == 400
        assert handled == [], "nothing processed from refused deliveries"
        assert post(early, early_headers) == 200 and len(handled) == 1
        assert post(early, early_headers) == 200 and len(handled) == 1, "a replay is answered 2xx, processed once"
        assert not case.op.done() and case.op.status is not case.until
        late_final, late_headers = case.delivery(True, T0 - dt.timedelta(minutes=5), "evt-0")  # older than evt-1
        assert post(late_final, late_headers) == 200
        assert not case.op.done(), "an event older than one already applied does not finish the operation"
        final, final_headers = case.delivery(True, T0 + dt.timedelta(minutes=5), "evt-2")
        assert post(final, final_headers) == 200
        assert case.op.result(timeout=1).status is case.until
        assert len(case.box.received("GET")) == case.reads, "finished by deliveries, no status read"
    finally:
        case.client.close()


def test_a_secret_rotated_while_events_arrive_and_a_thousand_copies_processed_once(framework: str) -> None:
    case = Case("facturapi")
    handled: list[Any] = []
    receiver = Receiver(case.client, secret=case.secret, on_event=handled.append)
    post = FRAMEWORKS[framework](receiver)
    try:
        first, headers = case.delivery(False, T0, "evt-a")
        assert post(first, headers) == 200
        receiver.secret = ["whsec_rotated", case.secret]  # the new secret is live; old deliveries still arrive
        case.box.webhook_secret = "whsec_rotated"
        second, new_headers = case.delivery(False, T0 + dt.timedelta(seconds=1), "evt-b")
        assert post(second, new_headers) == 200 and post(first, headers) == 200
        statuses = [post(second, new_headers) for _ in range(1000)]
        assert statuses == [200] * 1000
        assert [e.id for e in handled] == ["evt-a", "evt-b"], "each event processed once"
        receiver.secret = "whsec_rotated"  # the rotation is over: the old secret no longer verifies
        old, old_headers = FacturapiSandbox(case.clock).webhook_request({"id": "evt-c", "type": STATUS_UPDATED})
        assert post(old, old_headers) == 400
    finally:
        case.client.close()


def test_an_on_event_that_fails_answers_500_and_the_next_delivery_is_processed() -> None:
    case = Case("facturapi")
    calls: list[str] = []

    def flaky(event: Any) -> None:
        calls.append(event.id)
        if len(calls) == 1:
            raise RuntimeError("database down")

    post = starlette_post(Receiver(case.client, secret=case.secret, on_event=flaky))
    try:
        body, headers = case.delivery(False, T0, "evt-x")
        assert post(body, headers) == 500
        assert post(body, headers) == 200, "not marked seen after a failure: the provider's retry is processed"
        assert calls == ["evt-x", "evt-x"]
    finally:
        case.client.close()


def test_accepteasy_notifications_checked_by_basic_auth_wake_the_operation_and_replays_count_once(
    framework: str,
) -> None:
    """AcceptEasy signs nothing: its notifications are checked by the Basic auth of the notification URL, and
    are hints (billkit reads the bill at once when one arrives, instead of at the next scheduled poll)."""
    from billkit.providers.accepteasy.sandbox import AcceptEasySandbox

    clock = VirtualClock()
    box = AcceptEasySandbox(clock)
    box.notification_auth = ("hooks", "s3cret")
    client = billkit.Client("accepteasy", sandbox=box, poll=NO_POLLING)
    handled: list[Any] = []
    post = FRAMEWORKS[framework](Receiver(client, secret="hooks:s3cret", on_event=handled.append))
    try:
        op = client.submit(bills_for("accepteasy", 1)[0])
        clock.sleep_sync(60)  # AcceptEasy has processed it; its notification is due
        [note] = box.notifications()
        body, headers = box.webhook_request(note)
        wrong = dict(headers, authorization="Basic " + "aG9va3M6d3Jvbmc=")  # hooks:wrong
        assert post(body, wrong) == 400 and handled == []
        assert post(body, {k: v for k, v in headers.items() if k != "authorization"}) == 400
        assert post(body, headers) == 200 and post(body, headers) == 200
        assert len(handled) == 1, "a replay is processed once"
        assert op.result(timeout=5).status is BillStatus.OPEN
    finally:
        client.close()


def test_a_batch_journal_is_the_store_that_processes_share(tmp_path: Any) -> None:
    """Two receivers (as in two worker processes) with one journal as their store process a delivery once."""
    from billkit.journal import Journal

    case = Case("facturapi")
    import billkit.batch

    billkit.batch.create(tmp_path / "j", [], provider="facturapi").close()
    handled: list[Any] = []
    with Journal(tmp_path / "j") as one, Journal(tmp_path / "j") as two:
        first = Receiver(case.client, secret=case.secret, on_event=handled.append, store=one)
        second = Receiver(case.client, secret=case.secret, on_event=handled.append, store=two)
        body, headers = case.delivery(False, T0, "evt-shared")
        assert first.receive(body, headers).status == 200
        again = second.receive(body, headers)
        assert again.status == 200 and again.duplicate
    assert len(handled) == 1
    with Journal(tmp_path / "j") as reopened:
        assert reopened.seen("evt-shared") and not reopened.seen("evt-other")
    case.client.close()

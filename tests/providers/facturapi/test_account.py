"""Facturapi's account operations through the native client, on the sandbox: monthly ZIP requests (made, polled on
the virtual clock, downloaded as a real ZIP), the organisation's series, the PDF preview, webhook endpoints and
their secrets; the request bodies and the sandbox's answers checked against the official OpenAPI file when it is
on this machine."""

from __future__ import annotations

import copy
import datetime as dt
import io
import itertools
import json
import logging
import zipfile
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from pydantic import SecretStr

import billkit
from billkit import PollPolicy
from billkit.clock import VirtualClock
from billkit.errors import (
    APIError,
    AuthenticationError,
    ConflictError,
    NotFoundError,
    OperationFailed,
    OperationTimeout,
    OutcomeUnknownError,
    PermissionDeniedError,
    ValidationError,
)
from billkit.providers.facturapi import FacturapiAsyncClient
from billkit.providers.facturapi.sandbox import FacturapiSandbox
from billkit.providers.facturapi.sandbox_account import ORGANIZATION_ID, account
from billkit.providers.facturapi.webhooks import verify
from billkit.providers.facturapi.wire_account import (
    Webhook,
    WebhookState,
    ZipRequest,
    ZipRequestState,
    read_webhook,
)
from billkit.sandboxing import Fault

from .conftest import invoice
from .test_spec import SPEC, as_json, invoice_validator, spec

pytestmark = pytest.mark.anyio
MX = dt.timezone(dt.timedelta(hours=-6))
#: 2026-03-31 22:00 in Mexico City: still March there, already April 1st in UTC
START = dt.datetime(2026, 3, 31, 22, 0, tzinfo=MX)
HOOK = "https://hooks.example.mx/facturapi?token=tok-123"
TOKEN = "tok-123"


@pytest.fixture
def clock() -> VirtualClock:
    return VirtualClock(wall_start=START.timestamp())


@pytest.fixture
async def client(box: FacturapiSandbox) -> AsyncIterator[FacturapiAsyncClient]:
    async with billkit.AsyncClient("facturapi", sandbox=box) as c:
        yield c


async def _march(client: FacturapiAsyncClient, n: int = 2) -> list[str]:
    ids = []
    for i in range(n):
        bill = await client.create(invoice(f"FA-M{i}"))
        assert bill.provider_id is not None
        ids.append(bill.provider_id)
    return ids


# -- monthly ZIP requests ---------------------------------------------------------------------------------------------


async def test_a_month_is_zipped_and_downloaded_once_ready(
    client: FacturapiAsyncClient, box: FacturapiSandbox, clock: VirtualClock
) -> None:
    march = await _march(client)
    await clock.advance(3 * 3600)  # 01:00 on April 1st in Mexico City
    april = await client.create(invoice("FA-APR"))
    request = await client.native.create_zip_request(2026, 3)
    assert request.state is ZipRequestState.CREATED and request.document_count == 2
    assert request.start_date == "2026-03-01T06:00:00.000Z" and request.end_date == "2026-04-01T05:59:59.999Z"
    assert request.invoice_types == ["E", "I", "N", "P", "T"] and request.livemode is True
    assert request.id is not None
    with pytest.raises(ConflictError) as early:
        await client.native.download_zip_request(request.id)
    assert early.value.code == "zip_request_not_ready"
    began = clock.now()
    data = await client.native.wait_and_download_zip_request(request.id)
    waited = clock.now() - began
    assert account(box).zip_delay <= waited <= account(box).zip_delay + 10  # bounded by the poll schedule's cap
    archive = zipfile.ZipFile(io.BytesIO(data))
    uuids = {box.invoices[i]["uuid"] for i in march}
    assert sorted(archive.namelist()) == sorted([f"{u}.xml" for u in uuids] + [f"{u}.pdf" for u in uuids])
    assert box.invoices[str(april.provider_id)]["uuid"] not in " ".join(archive.namelist())
    for uuid in uuids:
        assert f'UUID="{uuid}"'.encode() in archive.read(f"{uuid}.xml")
        assert archive.read(f"{uuid}.pdf").startswith(b"%PDF")
    reads = box.received("GET", f"/invoices/zip-requests/{request.id}")
    assert 2 <= len([r for r in reads if not r.path.endswith("/zip")]) <= 10
    done = await client.native.get_zip_request(request.id)
    assert done.state is ZipRequestState.FINISHED and done.processed_document == 2


async def test_the_zip_request_passes_through_processing(
    client: FacturapiAsyncClient, box: FacturapiSandbox, clock: VirtualClock
) -> None:
    await _march(client, 4)
    request = await client.native.create_zip_request(2026, 3, invoice_types=["I"])
    assert request.id is not None
    await clock.advance(account(box).zip_delay * 0.75)
    middle = await client.native.get_zip_request(request.id)
    assert middle.state is ZipRequestState.PROCESSING and middle.processed_document == 3
    await clock.advance(account(box).zip_delay)
    assert (await client.native.get_zip_request(request.id)).state is ZipRequestState.FINISHED


async def test_the_same_filters_answer_the_same_request(client: FacturapiAsyncClient, box: FacturapiSandbox) -> None:
    await _march(client, 1)
    first = await client.native.create_zip_request(2026, 3, invoice_types=["I", "E"])
    again = await client.native.create_zip_request(2026, 3, invoice_types=["E", "I"])
    assert first.id == again.id and first.invoice_types == ["E", "I"]
    other = await client.native.create_zip_request(2026, 3)
    assert other.id != first.id and len(account(box).zip_requests) == 2
    found = [r async for r in client.native.list_zip_requests(year=2026, month=3, invoice_types=["E", "I"])]
    assert [r.id for r in found] == [first.id]
    assert box.requests[-1].params["invoice_types"] == "E,I"  # style form, explode false
    assert [r.id async for r in client.native.list_zip_requests(status="finished")] == []


async def test_a_lost_create_answer_is_sent_again(client: FacturapiAsyncClient, box: FacturapiSandbox) -> None:
    await _march(client, 1)
    box.faults.once(Fault.DROP_AFTER, match="POST /invoices/zip-requests")
    request = await client.native.create_zip_request(2026, 3)
    assert len(box.received("POST", "/invoices/zip-requests")) == 2  # idempotent by the spec: retried
    assert list(account(box).zip_requests) == [request.id]


async def test_a_failed_request_raises_and_is_retried_by_a_new_create(
    client: FacturapiAsyncClient, box: FacturapiSandbox
) -> None:
    await _march(client, 2)
    account(box).zip_fail_next = 1
    request = await client.native.create_zip_request(2026, 3)
    assert request.id is not None
    with pytest.raises(OperationFailed) as failed:
        await client.native.wait_for_zip_request(request.id)
    assert failed.value.code == "zip_request_failed" and failed.value.operation_id == request.id
    assert "2 of 2 documents failed" in str(failed.value) and "same filters" in str(failed.value)
    retried = await client.native.create_zip_request(2026, 3)
    assert retried.id == request.id and retried.state is ZipRequestState.CREATED and retried.failed_documents == []
    assert (await client.native.wait_for_zip_request(request.id)).state is ZipRequestState.FINISHED


async def test_the_wait_ends_at_its_deadline(
    client: FacturapiAsyncClient, box: FacturapiSandbox, clock: VirtualClock
) -> None:
    await _march(client, 1)
    account(box).zip_delay = 10_000.0
    request = await client.native.create_zip_request(2026, 3)
    assert request.id is not None
    began = clock.now()
    with pytest.raises(OperationTimeout) as late:
        await client.native.wait_for_zip_request(request.id, timeout=100)
    assert late.value.token == request.id and late.value.provider_status == "created"
    assert 100 <= clock.now() - began < 101  # the last sleep was cut to the deadline, then one last read
    reads = [r for r in box.received("GET", "/invoices/zip-requests/") if r.at >= began]
    assert reads[-1].at - began == pytest.approx(100, abs=0.5) and len(reads) < 20


async def test_the_wait_follows_the_clients_poll_interval(box: FacturapiSandbox, clock: VirtualClock) -> None:
    async with billkit.AsyncClient("facturapi", sandbox=box, poll=PollPolicy.fixed(7.0)) as client:
        await _march(client, 1)
        request = await client.native.create_zip_request(2026, 3)
        assert request.id is not None
        await client.native.wait_for_zip_request(request.id)
    times = [r.at for r in box.received("GET", f"/invoices/zip-requests/{request.id}")]
    assert [round(b - a, 6) for a, b in itertools.pairwise(times)] == [7.0] * (len(times) - 1)
    assert len(times) == 6  # 0, 7, ..., 35: finished at 30


async def test_an_unknown_status_keeps_the_wait_polling_and_is_kept() -> None:
    answers = iter(["created", "archiving", "finished"])

    def handler(request: httpx.Request) -> httpx.Response:
        body = {"id": "a" * 24, "status": next(answers), "document_count": 1, "brand_new": True}
        return httpx.Response(200, json=body)

    clock = VirtualClock()
    async with billkit.AsyncClient(
        "facturapi", api_key="sk_live_x", transport=httpx.MockTransport(handler), clock=clock
    ) as client:
        done = await client.native.wait_for_zip_request("a" * 24)
    assert done.state is ZipRequestState.FINISHED and done.model_extra == {"brand_new": True}
    odd = ZipRequest.model_validate({"status": "archiving"})
    assert odd.state is ZipRequestState.UNKNOWN and odd.status == "archiving"


@pytest.mark.parametrize(
    ("kwargs", "fields"),
    [
        ({"year": 1999, "month": 3}, ["year"]),
        ({"year": 2026, "month": 13}, ["month"]),
        ({"year": 2026, "month": True}, ["month"]),
        ({"year": 2026, "month": 3, "issuer_type": "mine"}, ["issuer_type"]),
        ({"year": 2026, "month": 3, "invoice_types": []}, ["invoice_types"]),
        ({"year": 2026, "month": 3, "invoice_types": ["I", "I"]}, ["invoice_types"]),
        ({"year": 2026, "month": 3, "invoice_types": ["X"]}, ["invoice_types"]),
    ],
)
async def test_a_zip_request_the_spec_forbids_is_refused_locally(
    client: FacturapiAsyncClient, box: FacturapiSandbox, kwargs: dict[str, Any], fields: list[str]
) -> None:
    with pytest.raises(ValidationError) as err:
        await client.native.create_zip_request(**kwargs)
    assert err.value.fields == fields and box.requests == []


async def test_other_zip_calls_check_their_input(client: FacturapiAsyncClient, box: FacturapiSandbox) -> None:
    with pytest.raises(ValidationError) as err:
        await client.native.get_zip_request("../invoices")
    assert err.value.fields == ["zip_request_id"]
    with pytest.raises(ValidationError):
        await client.native.wait_for_zip_request("a" * 24, timeout=0)
    with pytest.raises(ValidationError) as listing:
        [r async for r in client.native.list_zip_requests(year=2026)]
    assert listing.value.fields == ["month"]
    assert box.requests == []


async def test_a_month_without_invoices_and_a_test_key_are_refused(
    client: FacturapiAsyncClient, box: FacturapiSandbox
) -> None:
    with pytest.raises(NotFoundError) as empty:
        await client.native.create_zip_request(2026, 2)
    assert empty.value.code == "zip_request_no_invoices"
    account(box).live_access = False
    with pytest.raises(PermissionDeniedError) as denied:
        await client.native.create_zip_request(2026, 3)
    assert denied.value.status_code == 402 and denied.value.code == "subscription_live_access_required"


def test_the_blocking_client_waits_on_the_virtual_clock(box: FacturapiSandbox, clock: VirtualClock) -> None:
    with billkit.Client("facturapi", sandbox=box) as client:
        client.create(invoice("FA-SYNC"))
        request = client.native.create_zip_request(2026, 3)
        assert request.id is not None
        data = client.native.wait_and_download_zip_request(request.id)
    assert len(zipfile.ZipFile(io.BytesIO(data)).namelist()) == 2
    assert clock.now() >= account(box).zip_delay


async def test_a_large_zip_streams_to_a_file(client: FacturapiAsyncClient, tmp_path: Any) -> None:
    await _march(client, 3)
    request = await client.native.create_zip_request(2026, 3)
    assert request.id is not None
    await client.native.wait_for_zip_request(request.id)
    path = await client.native.download_zip_request_to(request.id, tmp_path / "2026-03.zip")
    assert len(zipfile.ZipFile(path).namelist()) == 6


# -- the organisation and its series ----------------------------------------------------------------------------------


async def test_series_are_created_listed_updated_and_deleted(
    client: FacturapiAsyncClient, box: FacturapiSandbox
) -> None:
    organization = await client.native.get_organization()
    assert organization.id == ORGANIZATION_ID and organization.timezone == "America/Mexico_City"
    assert await client.native.list_series() == []
    made = await client.native.create_series("F", next_folio=100, next_folio_test=5)
    assert (made.series, made.next_folio, made.next_folio_test) == ("F", 100, 5)
    await client.native.create_series("N" * 55)
    assert [s.series for s in await client.native.list_series()] == ["F", "N" * 55]
    changed = await client.native.update_series("F", next_folio_test=1)
    assert (changed.next_folio, changed.next_folio_test) == (100, 1)
    assert await client.native.set_default_series("I", "F") is True
    assert account(box).default_series == {"I": "F"}
    gone = await client.native.delete_series("F")
    assert gone.series == "F" and [s.series for s in await client.native.list_series()] == ["N" * 55]
    assert account(box).default_series == {}
    assert len(box.received("GET", "/organizations/me")) == 1  # the organisation id is asked once per client
    assert all(r.path.startswith(f"/organizations/{ORGANIZATION_ID}/") for r in box.received("PUT"))


@pytest.mark.parametrize(
    ("call", "fields"),
    [
        (lambda n: n.create_series("N" * 56), ["series"]),
        (lambda n: n.create_series(" F"), ["series"]),
        (lambda n: n.create_series("F", next_folio=0), ["next_folio"]),
        (lambda n: n.create_series("F", next_folio_test=True), ["next_folio_test"]),
        (lambda n: n.update_series("F"), ["next_folio"]),
        (lambda n: n.set_default_series("I", "S" * 26), ["series"]),
        (lambda n: n.set_default_series("X", "F"), ["type"]),
        (lambda n: n.list_series(organization_id=""), ["organization_id"]),
    ],
)
async def test_a_series_call_the_spec_forbids_is_refused_locally(
    client: FacturapiAsyncClient, box: FacturapiSandbox, call: Any, fields: list[str]
) -> None:
    with pytest.raises(ValidationError) as err:
        await call(client.native)
    assert err.value.fields == fields and box.requests == []


async def test_a_lost_series_answer_is_settled_by_reading_the_series(
    client: FacturapiAsyncClient, box: FacturapiSandbox
) -> None:
    box.faults.once(Fault.DROP_AFTER, match="POST /organizations/")
    made = await client.native.create_series("G", next_folio=7)
    assert made.series == "G" and len(box.received("POST", "/series-group")) == 1  # never sent twice
    box.faults.once(Fault.DROP_AFTER, match="PUT /organizations/")
    assert (await client.native.update_series("G", next_folio=9)).next_folio == 9
    box.faults.once(Fault.DROP_AFTER, match="DELETE /organizations/")
    assert (await client.native.delete_series("G")).series == "G" and account(box).series == {}
    assert len(box.received("DELETE")) == 1


async def test_a_series_create_that_cannot_be_confirmed_raises_outcome_unknown(
    client: FacturapiAsyncClient, box: FacturapiSandbox
) -> None:
    await client.native.get_organization()
    box.faults.once(Fault.SERVER_ERROR, match="POST /organizations/")
    with pytest.raises(OutcomeUnknownError) as unknown:
        await client.native.create_series("H")
    assert unknown.value.reference == "H" and "list_series()" in unknown.value.how_to_check
    assert len(box.received("POST")) == 1 and account(box).series == {}


async def test_series_errors_from_facturapi_are_typed(client: FacturapiAsyncClient, box: FacturapiSandbox) -> None:
    await client.native.create_series("A")
    with pytest.raises(APIError) as taken:
        await client.native.create_series("A")
    assert taken.value.status_code == 400 and "series" in str(taken.value)
    with pytest.raises(NotFoundError):
        await client.native.set_default_series("E", "ZZ")
    with pytest.raises(NotFoundError):
        await client.native.list_series(organization_id="0" * 24)
    account(box).live_access = False
    with pytest.raises(AuthenticationError) as denied:
        await client.native.list_series()
    assert denied.value.code == "live_api_key_required"


# -- the PDF preview -------------------------------------------------------------------------------------------------


async def test_a_preview_is_a_pdf_and_stores_nothing(client: FacturapiAsyncClient, box: FacturapiSandbox) -> None:
    pdf = await client.native.preview_invoice_pdf(invoice("FA-PREVIEW"))
    assert pdf.startswith(b"%PDF") and b"1160.00" in pdf
    assert box.records == {} and box.invoices == {}
    (sent,) = box.received("POST", "/invoices/preview/pdf")
    assert "idempotency_key" not in sent.body and sent.body["external_id"] == "FA-PREVIEW"
    made = await client.create(invoice("FA-REAL"))
    assert box.invoices[str(made.provider_id)]["folio_number"] == 1  # the preview used no folio


async def test_a_preview_is_retried_and_checked(client: FacturapiAsyncClient, box: FacturapiSandbox) -> None:
    box.faults.once(Fault.SERVER_ERROR, match="POST /invoices/preview/pdf")
    assert (await client.native.preview_invoice_pdf(invoice())).startswith(b"%PDF")
    assert len(box.received("POST", "/invoices/preview/pdf")) == 2  # nothing stamped: safe to send again
    with pytest.raises(ValidationError) as err:
        await client.native.preview_invoice_pdf({"customer": "58e93bd8e86eb318b0197456", "items": []})
    assert err.value.fields == ["items"]
    bad = invoice().model_copy(update={"provider_options": {"use": "G03"}})  # no payment_form
    with pytest.raises(ValidationError):
        await client.native.preview_invoice_pdf(bad)
    assert len(box.received("POST", "/invoices/preview/pdf")) == 2
    body = dict(box.received("POST", "/invoices/preview/pdf")[-1].body)
    del body["payment_form"]
    with pytest.raises(APIError) as refused:
        await client.native.preview_invoice_pdf(body)
    assert refused.value.status_code == 400 and refused.value.code == "invalid_request"


# -- webhooks --------------------------------------------------------------------------------------------------------


async def test_a_webhook_is_created_with_a_secret_that_never_shows(
    client: FacturapiAsyncClient, box: FacturapiSandbox, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="billkit")
    hook = await client.native.create_webhook(HOOK, ["invoice.status_updated"])
    assert isinstance(hook.secret, SecretStr) and hook.state is WebhookState.ENABLED
    plain = hook.secret.get_secret_value()
    assert plain == box.webhook_secret
    for text in (repr(hook), str(hook), hook.model_dump_json(), repr(hook.model_dump()), caplog.text):
        assert plain not in text
    # the secret verifies what the sandbox sends
    await client.submit(invoice("FA-HOOK"))
    await box.clock.advance(box.async_delay)  # type: ignore[attr-defined]
    body, headers = box.webhook_request(box.events()[-1])
    assert verify(body, headers, plain).type == "invoice.status_updated"
    again = await client.native.get_webhook(str(hook.id))
    assert again.secret is None and again.url == HOOK  # only the create answer carries it
    assert [w.id async for w in client.native.list_webhooks()] == [hook.id]


async def test_a_registered_url_answers_its_webhook(client: FacturapiAsyncClient, box: FacturapiSandbox) -> None:
    hook = await client.native.create_webhook(HOOK, ["invoice.status_updated"])
    same = await client.native.create_webhook(HOOK, ["invoice.status_updated"])
    assert same.id == hook.id and same.secret is None and len(account(box).webhooks) == 1
    with pytest.raises(ConflictError) as other:
        await client.native.create_webhook(HOOK, ["receipt.status_updated"])
    assert other.value.code == "webhook_url_registered" and str(hook.id) in str(other.value)
    assert TOKEN not in str(other.value)
    assert account(box).webhooks[str(hook.id)]["enabled_events"] == ["invoice.status_updated"]


async def test_a_lost_webhook_create_is_settled_by_listing(client: FacturapiAsyncClient, box: FacturapiSandbox) -> None:
    box.faults.once(Fault.DROP_AFTER, match="POST /webhooks")
    hook = await client.native.create_webhook(HOOK, ["invoice.status_updated"])
    assert hook.url == HOOK and len(box.received("POST", "/webhooks")) == 1 and len(account(box).webhooks) == 1


async def test_a_webhook_create_that_cannot_be_confirmed_raises_outcome_unknown(
    client: FacturapiAsyncClient, box: FacturapiSandbox
) -> None:
    box.faults.once(Fault.SERVER_ERROR, match="POST /webhooks")
    with pytest.raises(OutcomeUnknownError) as unknown:
        await client.native.create_webhook(HOOK, ["invoice.status_updated"])
    assert "list_webhooks()" in unknown.value.how_to_check and TOKEN not in str(unknown.value)
    assert len(box.received("POST", "/webhooks")) == 1 and account(box).webhooks == {}


@pytest.mark.parametrize(
    ("url", "events", "fields"),
    [
        ("ftp://hooks.example.mx/x", ["invoice.status_updated"], ["url"]),
        ("/relative?token=tok-123", ["invoice.status_updated"], ["url"]),
        ("https://hooks.example.mx/a b", ["invoice.status_updated"], ["url"]),
        (HOOK, [], ["events"]),
        (HOOK, ["invoice.created"], ["events"]),
        (HOOK, ["invoice.status_updated", "invoice.status_updated"], ["events"]),
    ],
)
async def test_a_webhook_the_spec_forbids_is_refused_locally(
    client: FacturapiAsyncClient, box: FacturapiSandbox, url: str, events: list[str], fields: list[str]
) -> None:
    with pytest.raises(ValidationError) as err:
        await client.native.create_webhook(url, events)
    assert err.value.fields == fields and box.requests == [] and TOKEN not in str(err.value)


async def test_a_webhook_is_updated_and_deleted(client: FacturapiAsyncClient, box: FacturapiSandbox) -> None:
    hook = await client.native.create_webhook(HOOK, ["invoice.status_updated", "invoice.global_invoice_created"])
    assert hook.id is not None
    off = await client.native.update_webhook(hook.id, status="disabled")  # events read first: the edit needs them
    assert off.state is WebhookState.DISABLED and set(off.enabled_events or ()) == set(hook.enabled_events or ())
    with pytest.raises(ValidationError) as err:
        await client.native.update_webhook(hook.id, events=["invoice.created_from_dashboard"])
    assert "delete the webhook" in str(err.value)
    dashboard = await client.native.create_webhook(HOOK + "&b=1", ["invoice.created_from_dashboard"])
    with pytest.raises(ValidationError):  # its current events cannot be sent back in an edit the spec allows
        await client.native.update_webhook(str(dashboard.id), status="disabled")
    await client.native.delete_webhook(str(dashboard.id))
    box.faults.once(Fault.DROP_AFTER, match="PUT /webhooks")
    changed = await client.native.update_webhook(hook.id, events=["receipt.status_updated"], status="enabled")
    assert changed.enabled_events == ["receipt.status_updated"] and len(box.received("PUT")) == 2
    box.faults.once(Fault.DROP_AFTER, match="DELETE /webhooks")
    assert (await client.native.delete_webhook(hook.id)).id == hook.id and account(box).webhooks == {}
    with pytest.raises(NotFoundError):
        await client.native.get_webhook(hook.id)


def test_a_webhook_body_billkit_cannot_read_never_shows_its_secret() -> None:
    with pytest.raises(APIError) as err:
        read_webhook({"id": "w1", "secret": "whsec_plain", "enabled_events": {"not": "a list"}})
    assert "whsec_plain" not in str(err.value) and "whsec_plain" not in repr(err.value.raw)
    assert "enabled_events" in str(err.value)
    odd = read_webhook({"id": "w2", "signing_secret": "whsec_other", "status": "paused"})
    assert isinstance((odd.model_extra or {})["signing_secret"], SecretStr) and "whsec_other" not in repr(odd)
    assert odd.state is WebhookState.UNKNOWN and odd.status == "paused"
    assert Webhook.model_validate({"enabled_events": "invoice.status_updated"}).enabled_events == [
        "invoice.status_updated"
    ]


# -- the bodies and answers against the official OpenAPI file ----------------------------------------------------------


def _checker(schema_name: str) -> Any:
    """A validator of ``schema_name``, with the file's defects on webhooks mended (``enabled_events`` is typed
    ``string`` though it holds arrays; ``url`` is typed ``format: email``, which jsonschema does not check)."""
    from jsonschema import Draft202012Validator

    document = copy.deepcopy(spec())
    props = document["components"]["schemas"]["WebhookProperties"]["properties"]
    props["enabled_events"] = {"type": "array", "items": {"type": "string"}}
    return Draft202012Validator({"$ref": f"#/components/schemas/{schema_name}", "components": document["components"]})


@pytest.mark.skipif(not SPEC.exists(), reason=f"{SPEC} is not on this machine")
async def test_every_account_body_and_answer_validates_against_the_spec(
    client: FacturapiAsyncClient, box: FacturapiSandbox
) -> None:
    await _march(client, 1)
    request = await client.native.create_zip_request(2026, 3, issuer_type="issuing", invoice_types=["I", "E"])
    await client.native.create_series("F", next_folio=3, next_folio_test=2)
    await client.native.update_series("F", next_folio=4)
    await client.native.set_default_series("I", "F")
    await client.native.preview_invoice_pdf(invoice("FA-PV"))
    hook = await client.native.create_webhook(HOOK, ["invoice.status_updated"])
    await client.native.update_webhook(str(hook.id), status="disabled")
    bodies = {
        ("POST", "/invoices/zip-requests"): "InvoiceZipRequestCreateInput",
        ("POST", f"/organizations/{ORGANIZATION_ID}/series-group"): "OrganizationSeriesCreateInput",
        ("PUT", f"/organizations/{ORGANIZATION_ID}/series-group/F"): "OrganizationSeriesUpdateInput",
        ("PUT", f"/organizations/{ORGANIZATION_ID}/series-group/default-series"): "OrganizationSeriesDefaultInput",
        ("POST", "/webhooks"): "WebhookCreateInput",
        ("PUT", f"/webhooks/{hook.id}"): "WebhookCreateEdit",
    }
    checked = 0
    for sent in box.requests:
        if (sent.method, sent.path) == ("POST", "/invoices/preview/pdf"):
            errors = list(invoice_validator().iter_errors(as_json(sent.body)))
        elif (sent.method, sent.path) in bodies:
            errors = list(_checker(bodies[sent.method, sent.path]).iter_errors(as_json(sent.body)))
        else:
            continue
        assert errors == [], (sent.path, [f"{list(e.absolute_path)}: {e.message}" for e in errors])
        checked += 1
    assert checked == 7
    # the sandbox answers in the spec's shapes
    answers = {
        "InvoiceZipRequest": request.model_dump(mode="json", exclude_none=True),
        "OrganizationSeriesGroup": (await client.native.list_series())[0].model_dump(mode="json"),
        "Webhook": (await client.native.get_webhook(str(hook.id))).model_dump(mode="json", exclude_none=True),
        "Organization": json.loads((await client.native.get_organization()).model_dump_json(exclude_none=True)),
    }
    for name, answer in answers.items():
        errors = list(_checker(name).iter_errors(answer))
        assert errors == [], (name, [f"{list(e.absolute_path)}: {e.message}" for e in errors])


def test_the_checker_does_reject_what_the_spec_forbids() -> None:
    if not SPEC.exists():
        pytest.skip(f"{SPEC} is not on this machine")
    bad = {"year": 2026, "month": 13, "invoice_types": ["I", "I"]}
    found = {tuple(e.absolute_path) for e in _checker("InvoiceZipRequestCreateInput").iter_errors(bad)}
    assert found == {("month",), ("invoice_types",)}
    assert list(_checker("OrganizationSeriesDefaultInput").iter_errors({"type": "I", "series": "S" * 26}))
    assert list(_checker("WebhookCreateEdit").iter_errors({"enabled_events": ["invoice.created_from_dashboard"]}))


async def test_the_account_state_saves_and_loads_with_the_sandbox(
    client: FacturapiAsyncClient, box: FacturapiSandbox, tmp_path: Any
) -> None:
    await _march(client, 1)
    request = await client.native.create_zip_request(2026, 3)
    hook = await client.native.create_webhook(HOOK, ["invoice.status_updated"])
    await client.native.create_series("S", next_folio=4)
    box.save(tmp_path / "box.json")
    again = FacturapiSandbox.load(tmp_path / "box.json")
    assert isinstance(again, FacturapiSandbox)
    assert list(account(again).webhooks) == [hook.id] and account(again).series["S"]["next_folio"] == 4
    async with billkit.AsyncClient("facturapi", sandbox=again) as other:
        data = await other.native.wait_and_download_zip_request(str(request.id))
    assert len(zipfile.ZipFile(io.BytesIO(data)).namelist()) == 2

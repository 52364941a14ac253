"""The Facturapi sandbox on the wire (raw httpx, no adapter): the shapes, codes and headers it promises."""

from __future__ import annotations

import base64
from collections.abc import AsyncIterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest

from billkit.clock import VirtualClock
from billkit.money import loads_decimal
from billkit.providers.facturapi.sandbox import FAIL_TAX_ID, RECOVERY_TAX_ID, FacturapiSandbox
from billkit.providers.facturapi.webhooks import verify
from billkit.sandboxing import Fault

pytestmark = pytest.mark.anyio
KEY = FacturapiSandbox.credentials["api_key"]


def body(tax_id: str = "EKU9003173C9", *, price: Any = Decimal("100.00"), **extra: Any) -> dict[str, Any]:
    product = {"description": "Consultoría", "product_key": "80111600", "price": price, "tax_included": False,
               "taxes": [{"type": "IVA", "rate": Decimal("0.16")}], **extra.pop("product", {})}  # fmt: skip
    return {
        "customer": {"legal_name": "ESCUELA KEMPER URGATE", "tax_id": tax_id, "tax_system": "601",
                     "address": {"zip": "42501"}},
        "items": [{"quantity": 1, "product": product}],
        "payment_form": "03",
        **extra,
    }  # fmt: skip


@pytest.fixture
async def http(box: FacturapiSandbox) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(transport=box, base_url=box.base_url,
                                 headers={"authorization": f"Bearer {KEY}"}) as c:  # fmt: skip
        yield c


async def post(http: httpx.AsyncClient, payload: Any, **params: str) -> tuple[int, Any]:
    from billkit.transport import dumps

    r = await http.post("/invoices", content=dumps(payload), params=params,
                        headers={"content-type": "application/json"})  # fmt: skip
    return r.status_code, loads_decimal(r.content)


async def test_auth_codes_and_the_log_id_on_every_answer(box: FacturapiSandbox) -> None:
    async with httpx.AsyncClient(transport=box, base_url=box.base_url) as anon:
        missing = await anon.get("/invoices")
        wrong = await anon.get("/invoices", headers={"authorization": "Bearer sk_test_nope"})
        basic = await anon.get("/invoices", headers={"authorization": "Basic " + base64.b64encode(f"{KEY}:".encode())
                                                     .decode()})  # fmt: skip
    assert (missing.status_code, missing.json()["code"]) == (401, "missing_credentials")
    assert (wrong.status_code, wrong.json()["code"]) == (401, "api_key_invalid")
    assert basic.status_code == 200
    assert all(len(r.headers["x-facturapi-log-id"]) == 24 for r in (missing, wrong, basic))
    assert missing.json()["ok"] is False and missing.json()["status"] == 401


async def test_a_bad_body_lists_every_problem_and_stores_nothing(http: httpx.AsyncClient,
                                                                 box: FacturapiSandbox) -> None:  # fmt: skip
    bad = body("nope", price="100")
    bad.pop("payment_form")
    status, err = await post(http, bad)
    assert status == 400 and err["code"] == "invalid_request" and err["location"] == "body"
    paths = [e["path"] for e in err["errors"]]
    assert paths == ["customer.tax_id", "items[0].product.price", "payment_form"]
    assert box.invoices == {}
    status, err = await post(http, body(currency="USD"))
    assert status == 400 and [e["path"] for e in err["errors"]] == ["exchange"]


@pytest.mark.parametrize(
    ("price", "included", "taxes", "total"),
    [
        ("100.00", False, [{"type": "IVA", "rate": "0.16"}], "116.00"),
        ("116.00", True, [{"type": "IVA", "rate": "0.16"}], "116.00"),
        ("1000.00", False, [{"type": "IVA", "rate": "0.16"}, {"type": "ISR", "rate": "0.10", "withholding": True}],
         "1060.00"),
        ("99.99", False, [], "99.99"),
        ("10.005", False, None, "11.61"),  # taxes omitted: Facturapi adds IVA 16 %
    ],
)  # fmt: skip
async def test_totals_are_exact(http: httpx.AsyncClient, price: str, included: bool, taxes: Any, total: str) -> None:
    product: dict[str, Any] = {"price": Decimal(price), "tax_included": included}
    if taxes is None:
        product["taxes"] = None
    else:
        product["taxes"] = [{**t, "rate": Decimal(t["rate"])} for t in taxes]
    payload = body(product=product)
    if taxes is None:
        payload["items"][0]["product"].pop("taxes")
    status, invoice = await post(http, payload)
    assert status == 200 and invoice["total"] == Decimal(total)


async def test_sync_async_recovery_and_failure_states(http: httpx.AsyncClient, box: FacturapiSandbox,
                                                      clock: VirtualClock) -> None:  # fmt: skip
    status, valid = await post(http, body())
    assert (status, valid["status"]) == (200, "valid") and valid["uuid"] and valid["stamp"]["sat_cert_number"]
    status, pending = await post(http, body(), **{"async": "true"})
    assert (status, pending["status"], pending["uuid"]) == (200, "pending", None)
    status, recovering = await post(http, body(RECOVERY_TAX_ID))
    assert (status, recovering["status"]) == (202, "pending")
    status, refused = await post(http, body(FAIL_TAX_ID))
    assert status == 400 and refused["code"] == "invoice_stamping_validation_error"
    assert refused["errors"][0]["source"] == "sat"
    status, failing = await post(http, body(FAIL_TAX_ID), **{"async": "true"})
    assert status == 200 and failing["status"] == "pending"
    await clock.advance(box.async_delay)
    assert box.invoices[pending["id"]]["status"] == "valid" and box.invoices[failing["id"]]["status"] == "failed"
    assert box.invoices[recovering["id"]]["status"] == "pending"
    await clock.advance(30 * 60)
    assert box.invoices[recovering["id"]]["status"] == "valid"
    assert len(box.invoices) == 4  # the refused sync create stored nothing
    kinds = [(e["type"], e["data"]["object"]["id"], e["data"]["object"]["status"]) for e in box.events()]
    assert kinds == [("invoice.status_updated", pending["id"], "valid"),
                     ("invoice.status_updated", failing["id"], "failed"),
                     ("invoice.status_updated", recovering["id"], "valid")]  # fmt: skip
    failed_event = box.events()[1]
    assert failed_event["related_resource_messages"][0]["message"] == box.failure_message(failing["id"])
    raw, headers = box.webhook_request(failed_event)
    assert verify(raw, headers, box.webhook_secret).id == failed_event["id"]


async def test_idempotency_replay_and_key_in_use(http: httpx.AsyncClient, box: FacturapiSandbox) -> None:
    status, first = await post(http, body(idempotency_key="k-1"))
    status2, again = await post(http, body(idempotency_key="k-1"), **{"async": "true"})
    assert (status, status2, again["id"], again["status"]) == (200, 200, first["id"], "valid")
    box.key_in_use("k-2", times=2)
    answers = [await post(http, body(idempotency_key="k-2")) for _ in range(3)]
    assert [s for s, _ in answers] == [409, 409, 200] and answers[0][1]["code"] == "idempotency_key_in_use"
    assert box.count_idempotency_key("k-1") == 1 and box.count_idempotency_key("k-2") == 1


async def test_faults_use_facturapis_error_shape(http: httpx.AsyncClient, box: FacturapiSandbox) -> None:
    box.faults.retry_after = 9
    box.faults.once(Fault.RATE_LIMIT).once(Fault.SERVER_ERROR)
    limited = await http.get("/invoices")
    broken = await http.get("/invoices")
    assert (limited.status_code, limited.json()["code"], limited.headers["retry-after"]) == (
        429, "rate_limit_exceeded", "9")  # fmt: skip
    assert (broken.status_code, broken.json()["code"]) == (500, "internal_error")


async def test_cancel_rules(http: httpx.AsyncClient, box: FacturapiSandbox, clock: VirtualClock) -> None:
    _, one = await post(http, body())
    _, two = await post(http, body())
    _, draft = await post(http, {"customer": body()["customer"], "status": "draft"})
    _, pending = await post(http, body(), **{"async": "true"})
    assert (await http.delete(f"/invoices/{one['id']}", params={"motive": "09"})).json()["path"] == "motive"
    needs = await http.delete(f"/invoices/{one['id']}", params={"motive": "01"})
    assert needs.json()["code"] == "substitution_invoice_required"
    done = await http.delete(f"/invoices/{one['id']}", params={"motive": "01", "substitution": two["id"]})
    assert (done.json()["status"], done.json()["cancellation_status"]) == ("canceled", "accepted")
    again = await http.delete(f"/invoices/{one['id']}", params={"motive": "02"})
    assert (again.status_code, again.json()["code"]) == (409, "invoice_not_cancelable")
    assert (await http.delete(f"/invoices/{pending['id']}", params={"motive": "02"})).status_code == 409
    assert (await http.delete(f"/invoices/{draft['id']}", params={"motive": "02"})).status_code == 200
    assert draft["id"] not in box.invoices
    box.cancel_needs_acceptance = True
    waiting = (await http.delete(f"/invoices/{two['id']}", params={"motive": "02"})).json()
    assert (waiting["status"], waiting["cancellation_status"]) == ("valid", "pending")
    busy = await http.delete(f"/invoices/{two['id']}", params={"motive": "02"})
    assert busy.json()["code"] == "invoice_cancellation_in_progress"
    await clock.advance(3 * 86400)
    assert box.invoices[two["id"]]["status"] == "canceled"
    assert box.events()[-1]["type"] == "invoice.cancellation_status_updated"


async def test_downloads_need_a_stamp(http: httpx.AsyncClient, box: FacturapiSandbox) -> None:
    _, pending = await post(http, body(), **{"async": "true"})
    _, draft = await post(http, {"customer": body()["customer"], "status": "draft"})
    assert (await http.get(f"/invoices/{pending['id']}/pdf")).json()["code"] == "invoice_not_stamped"
    assert (await http.get(f"/invoices/{draft['id']}/pdf")).content.startswith(b"%PDF-1.4")
    assert (await http.get(f"/invoices/{draft['id']}/xml")).status_code == 409
    assert (await http.get("/invoices/nope/zip")).json()["code"] == "invoice_not_found"


async def test_listing_filters_and_the_30_page_cap(http: httpx.AsyncClient) -> None:
    for i in range(5):
        await post(http, body(external_id=f"ref-{i % 2}", series="B" if i == 4 else "A"))
    first = (await http.get("/invoices", params={"external_id": "ref-0", "limit": "2"})).json()
    assert (first["total_results"], first["total_pages"], len(first["data"])) == (3, 2, 2)
    assert (await http.get("/invoices", params={"series": "B"})).json()["total_results"] == 1
    assert (await http.get("/invoices", params={"q": "kemper"})).json()["total_results"] == 5
    assert (await http.get("/invoices", params={"q": "EKU9003173C9"})).json()["total_results"] == 5
    future = (await http.get("/invoices", params={"date[gte]": "2999-01-01T00:00:00Z"})).json()
    assert future["total_results"] == 0
    too_far = await http.get("/invoices", params={"page": "31"})
    assert (too_far.status_code, too_far.json()["code"]) == (400, "page_too_large")
    assert (await http.get("/invoices", params={"limit": "101"})).json()["path"] == "limit"


async def test_customers_are_saved_once(http: httpx.AsyncClient) -> None:
    from billkit.transport import dumps

    data = body()["customer"]
    first = await http.post("/customers", content=dumps(data))
    second = await http.post("/customers", content=dumps(data))
    assert (first.status_code, second.status_code) == (201, 200) and first.json()["id"] == second.json()["id"]
    assert (await http.get("/customers/nope")).status_code == 404
    assert (await http.get("/customers", params={"q": "kemper"})).json()["total_results"] == 1


async def test_a_fail_rate_fails_about_that_share(clock: VirtualClock) -> None:
    box = FacturapiSandbox(clock, fail_rate=0.25, seed=11)
    async with httpx.AsyncClient(transport=box, base_url=box.base_url,
                                 headers={"authorization": f"Bearer {KEY}"}) as http:  # fmt: skip
        for _ in range(400):
            await post(http, body(), **{"async": "true"})
    await clock.advance(box.async_delay)
    failed = sum(1 for inv in box.invoices.values() if inv["status"] == "failed")
    assert 70 <= failed <= 130, failed


async def test_state_survives_a_save_and_load_mid_flight(http: httpx.AsyncClient, box: FacturapiSandbox,
                                                         tmp_path: Path) -> None:  # fmt: skip
    _, pending = await post(http, body(RECOVERY_TAX_ID))
    box.save(tmp_path / "box.json")
    copy = FacturapiSandbox.load(tmp_path / "box.json")
    assert isinstance(copy, FacturapiSandbox) and copy.invoices[pending["id"]]["status"] == "pending"
    assert isinstance(copy.clock, VirtualClock)
    await copy.clock.advance(30 * 60)
    assert copy.invoices[pending["id"]]["status"] == "valid"
    assert box.invoices[pending["id"]]["status"] == "pending"  # the original's clock did not move

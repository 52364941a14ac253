"""Facturapi's e-receipts and global invoices through the native client, on the sandbox: create, read, list,
assign, cancel, e-mail and PDF; one receipt or several invoiced to a customer; the global invoice of a period,
never issued twice (lost answers, repeated calls); the period checks; the request bodies against the official
OpenAPI file when it is on this machine."""

from __future__ import annotations

import copy
import datetime as dt
from dataclasses import replace
from decimal import Decimal
from typing import Any

import httpx
import pytest

import billkit
from billkit import LineItem, Money, Tax
from billkit.errors import APIError, ConflictError, OutcomeUnknownError, ValidationError
from billkit.providers.facturapi import FacturapiAsyncClient
from billkit.providers.facturapi.receipts import MEXICO_CITY, FacturapiReceipts, GlobalPeriod, check_period
from billkit.providers.facturapi.sandbox import FacturapiSandbox
from billkit.providers.facturapi.sandbox_receipts import PUBLIC_TAX_ID, book
from billkit.providers.facturapi.wire import ItemInput
from billkit.providers.facturapi.wire_lifecycle import InvoiceDetail
from billkit.providers.facturapi.wire_receipts import Receipt, ReceiptStatus
from billkit.sandboxing import Fault
from billkit.transport import dumps

from .conftest import party
from .test_spec import SPEC, as_json, spec

pytestmark = pytest.mark.anyio
MXN = "MXN"


def line(price: str = "100.00", description: str = "Café americano", **options: Any) -> LineItem:
    """One item with IVA 16 % on top: 100.00 -> 116.00."""
    return LineItem(
        description=description,
        unit_price=Money(price, MXN),
        taxes=(Tax(type="IVA", rate="0.16"),),
        provider_options={"product_key": "90101501", **options},
    )


def last_month(box: FacturapiSandbox) -> GlobalPeriod:
    today = dt.datetime.fromtimestamp(box.clock.wall(), tz=MEXICO_CITY).date()
    first = today.replace(day=1) - dt.timedelta(days=1)
    return GlobalPeriod.month(first.year, first.month)


def in_period(period: GlobalPeriod, day: int, hour: int = 12) -> dt.datetime:
    return period.start.replace(day=day, hour=hour)


def posts(box: FacturapiSandbox, path: str) -> int:
    return len([r for r in box.received("POST") if r.path == path])


def http(box: FacturapiSandbox) -> httpx.AsyncClient:
    headers = {"authorization": f"Bearer {box.credentials['api_key']}", "content-type": "application/json"}
    return httpx.AsyncClient(transport=box, base_url=box.base_url, headers=headers)


def global_invoices(box: FacturapiSandbox) -> list[dict[str, Any]]:
    return [inv for inv in box.invoices.values() if inv["customer"].get("tax_id") == PUBLIC_TAX_ID]


# -- receipts ----------------------------------------------------------------------------------------------------


async def test_a_receipt_is_created_read_listed_and_cancelled(
    client: FacturapiAsyncClient, box: FacturapiSandbox
) -> None:
    made = await client.native.create_receipt([line(), line("50.00", "Pan dulce")], payment_form="01", branch="Centro")
    assert made.id is not None and made.receipt_status is ReceiptStatus.OPEN
    assert made.amount == Money("174.00", MXN)  # (100 + 50) * 1.16
    assert made.key and made.self_invoice_url and made.self_invoice_url.endswith(made.key)
    assert made.idempotency_key and made.idempotency_key.startswith("bk-")
    assert (await client.native.get_receipt(made.id)).total == Decimal("174.00")
    other = await client.native.create_receipt([line("10.00", "Galleta")], payment_form="03")
    assert [r.id async for r in client.native.list_receipts("pan")] == [made.id]
    assert [r.id async for r in client.native.list_receipts(payment_form="03")] == [other.id]
    assert {r.id async for r in client.native.list_receipts()} == {made.id, other.id}
    pdf = await client.native.download_receipt_pdf(made.id)
    assert pdf.startswith(b"%PDF") and made.key.encode() in pdf
    assert await client.native.send_receipt_by_email(made.id, ["a@example.mx", "b@example.mx"]) is True
    cancelled = await client.native.cancel_receipt(made.id)
    assert cancelled.receipt_status is ReceiptStatus.CANCELED
    again = await client.native.cancel_receipt(made.id)  # refused by Facturapi (not open), settled by a read
    assert again.receipt_status is ReceiptStatus.CANCELED and len(box.received("DELETE")) == 2
    sent = posts(box, f"/receipts/{made.id}/invoice")
    with pytest.raises(ValidationError) as err:
        await client.native.invoice_receipt(made.id, party())
    assert err.value.fields == ["receipt_id"] and posts(box, f"/receipts/{made.id}/invoice") == sent


async def test_a_receipt_create_whose_answer_was_lost_is_made_once(box: FacturapiSandbox) -> None:
    async with billkit.AsyncClient("facturapi", sandbox=box) as client:
        box.faults.once(Fault.DROP_AFTER, match="POST /receipts")
        made = await client.native.create_receipt([line()], payment_form="01", idempotency_key="ticket-1001")
    attempts = box.received("POST", "/receipts")
    assert len(attempts) == 2 and attempts[0].fault == "drop_after"
    assert attempts[0].body["idempotency_key"] == attempts[1].body["idempotency_key"] == "ticket-1001"
    assert list(book(box).receipts) == [made.id]


async def test_a_busy_key_is_an_unknown_outcome(box: FacturapiSandbox) -> None:
    async with billkit.AsyncClient("facturapi", sandbox=box) as client:
        box.key_in_use("ticket-9", times=100)
        with pytest.raises(OutcomeUnknownError) as err:
            await client.native.create_receipt([line()], payment_form="01", idempotency_key="ticket-9")
    assert err.value.reference == "ticket-9" and book(box).receipts == {}


@pytest.mark.parametrize(
    ("items", "kwargs", "fields"),
    [
        ([], {}, ["items"]),
        ([line()], {"payment_form": "3"}, ["payment_form"]),
        ([line()], {"customer": "abc"}, ["customer"]),
        (
            [LineItem(description="x", unit_price=Money("1.00", "USD"), provider_options={"product_key": "90101501"})],
            {},
            ["exchange"],
        ),
        ([line()], {"date": dt.datetime(2026, 1, 1)}, ["date"]),
        (
            [LineItem(description="sin clave", unit_price=Money("1.00", MXN))],
            {},
            ["items[0].provider_options.product_key"],
        ),
        (
            [
                line(),
                LineItem(
                    description="y", unit_price=Money("1.00", "USD"), provider_options={"product_key": "90101501"}
                ),
            ],
            {"exchange": Decimal("17.5")},
            ["items[].unit_price"],
        ),
        ([line()], {"folio_number": 0, "external_id": ""}, ["folio_number", "external_id"]),
        ([line()], {"exchange": Decimal("17.5")}, ["exchange"]),  # not dropped silently
    ],
)
async def test_bad_receipt_input_is_refused_before_sending(
    client: FacturapiAsyncClient,
    box: FacturapiSandbox,
    items: list[LineItem],
    kwargs: dict[str, Any],
    fields: list[str],
) -> None:
    args: dict[str, Any] = {"payment_form": "01", **kwargs}
    with pytest.raises(ValidationError) as err:
        await client.native.create_receipt(items, **args)
    assert err.value.fields == fields
    assert box.requests == []


async def test_a_receipt_in_dollars_and_a_saved_product(client: FacturapiAsyncClient, box: FacturapiSandbox) -> None:
    usd = LineItem(description="Taza", unit_price=Money("10.00", "USD"), provider_options={"product_key": "52151504"})
    made = await client.native.create_receipt([usd], payment_form="04", exchange=Decimal("17.25"))
    assert made.amount == Money("10.00", "USD") and made.exchange == Decimal("17.25")  # no tax written, none added
    from billkit.providers.facturapi.wire import ProductInput

    product = await client.native.create_product(
        ProductInput(description="Ukelele", product_key="60131324", price=Decimal("345.60"))
    )
    assert product.id is not None
    saved = await client.native.create_receipt([ItemInput(product=product.id, quantity=Decimal(2))], payment_form="01")
    assert saved.total == Decimal("691.20")  # price includes IVA (Facturapi's default)


def test_statuses_facturapi_adds_later_are_unknown_and_extra_fields_survive() -> None:
    receipt = Receipt.model_validate({"id": "r1", "status": "archived", "total": Decimal("5"), "shiny": {"a": 1}})
    assert receipt.receipt_status is ReceiptStatus.UNKNOWN and receipt.status == "archived"
    assert receipt.model_extra == {"shiny": {"a": 1}}
    assert [ReceiptStatus.of(s) for s in ("open", " Canceled ", None, "unknown")] == [
        ReceiptStatus.OPEN,
        ReceiptStatus.CANCELED,
        ReceiptStatus.UNKNOWN,
        ReceiptStatus.UNKNOWN,
    ]
    assert Receipt.model_validate({"total": True}).amount is None  # a bool is not an amount


# -- one receipt, or several, to a customer ------------------------------------------------------------------------


async def test_a_receipt_invoiced_to_a_customer(client: FacturapiAsyncClient, box: FacturapiSandbox) -> None:
    made = await client.native.create_receipt([line("200.00")], payment_form="04")
    assert made.id is not None
    invoice = await client.native.invoice_receipt(made.id, party(), use="G03", series="R")
    assert invoice.status == "valid" and invoice.uuid and invoice.total == Decimal("232.00")
    assert invoice.payment_form == "04" and invoice.series == "R"
    after = await client.native.get_receipt(made.id)
    assert after.receipt_status is ReceiptStatus.INVOICED_TO_CUSTOMER and after.invoice == invoice.id
    # asked again for the same customer: that invoice, nothing sent
    path = f"/receipts/{made.id}/invoice"
    again = await client.native.invoice_receipt(made.id, party())
    assert again.id == invoice.id and posts(box, path) == 1
    with pytest.raises(ConflictError) as err:
        await client.native.invoice_receipt(made.id, party("XIA190128J61", name="XENON INDUSTRIAL ARTICLES"))
    assert err.value.code == "receipt_invoiced_to_another" and posts(box, path) == 1
    # the sandbox itself refuses a second invoice of the receipt
    async with http(box) as raw:
        answer = await raw.post(path, content=dumps({"customer": "0" * 24}))
    assert answer.status_code == 400 and answer.json()["code"] == "receipt_not_open"


async def test_a_receipt_invoice_whose_answer_was_lost_is_read_back(box: FacturapiSandbox) -> None:
    async with billkit.AsyncClient("facturapi", sandbox=box) as client:
        saved = await client.native.create_customer(party())
        assert saved.id is not None
        made = await client.native.create_receipt([line()], payment_form="01", customer=saved.id)
        assert made.id is not None and made.customer_id == saved.id
        box.faults.once(Fault.DROP_AFTER, match="/invoice")
        invoice = await client.native.invoice_receipt(made.id)  # to the receipt's own customer
    assert posts(box, f"/receipts/{made.id}/invoice") == 1
    assert invoice.id in box.invoices and len(box.invoices) == 1
    assert isinstance(invoice.customer, billkit.providers.facturapi.wire.Customer)
    assert invoice.customer.id == saved.id


async def test_an_expired_or_customerless_receipt_is_refused(
    client: FacturapiAsyncClient, box: FacturapiSandbox
) -> None:
    old = dt.datetime.now(dt.timezone.utc) - dt.timedelta(days=8)
    stale = await client.native.create_receipt([line()], payment_form="01", date=old)
    assert stale.id is not None
    with pytest.raises(ValidationError) as err:
        await client.native.invoice_receipt(stale.id, party())
    assert "expired" in str(err.value)
    fresh = await client.native.create_receipt([line()], payment_form="01")
    assert fresh.id is not None
    with pytest.raises(ValidationError) as err:
        await client.native.invoice_receipt(fresh.id)
    assert err.value.fields == ["customer"]
    assert posts(box, f"/receipts/{stale.id}/invoice") == posts(box, f"/receipts/{fresh.id}/invoice") == 0
    async with http(box) as raw:
        expired = await raw.post(f"/receipts/{stale.id}/invoice", content=dumps({"customer": party_body()}))
        nobody = await raw.post(f"/receipts/{fresh.id}/invoice", content=dumps({}))
    assert expired.json()["code"] == "receipt_expired" and nobody.json()["errors"][0]["path"] == "customer"


def party_body() -> dict[str, Any]:
    return {"legal_name": "ESCUELA KEMPER URGATE", "tax_id": "EKU9003173C9", "tax_system": "601",
            "address": {"zip": "42501"}}  # fmt: skip


async def test_receipts_invoiced_together_by_key(client: FacturapiAsyncClient, box: FacturapiSandbox) -> None:
    saved = await client.native.create_customer(party())
    assert saved.id is not None
    first = await client.native.create_receipt([line("100.00")], payment_form="03", customer=saved.id)
    second = await client.native.create_receipt([line("300.00")], payment_form="03")
    assert first.key and second.key and second.id
    keys = [first.key, second.key]
    with pytest.raises(APIError) as err:  # the second has no customer: they do not share one
        await client.native.preview_receipts_invoice(keys)
    assert err.value.code == "receipt_invoicing_customer_mismatch"
    assigned = await client.native.assign_receipt_customer(second.id, saved.id)
    assert assigned.customer_id == saved.id
    summary = await client.native.preview_receipts_invoice(keys, use="G03")
    assert summary.model_extra is not None and summary.model_extra["total"] == Decimal("464.00")
    pdf = await client.native.preview_receipts_invoice_pdf(keys)
    assert pdf is not None and pdf.startswith(b"%PDF")
    assert len(box.invoices) == 0  # the dry run and the preview create nothing
    invoice = await client.native.invoice_receipts(keys, use="G03")
    assert invoice.total == Decimal("464.00") and len(invoice.items or ()) == 2
    statuses = {r.receipt_status async for r in client.native.list_receipts(invoice=invoice.id)}
    assert statuses == {ReceiptStatus.INVOICED_TO_CUSTOMER}
    assert await client.native.preview_receipts_invoice_pdf(keys) is None  # 204: nothing open among them
    with pytest.raises(APIError) as err:
        await client.native.invoice_receipts(keys)
    assert err.value.code == "receipt_not_open" and len(box.invoices) == 1
    with pytest.raises(ValidationError) as verr:
        await client.native.invoice_receipts([first.key, first.key])
    assert verr.value.fields == ["keys"]


async def test_a_lost_answer_of_invoicing_by_key_is_an_unknown_outcome(box: FacturapiSandbox) -> None:
    async with billkit.AsyncClient("facturapi", sandbox=box) as client:
        made = await client.native.create_receipt([line()], payment_form="01", customer=party())
        assert made.key is not None
        box.faults.once(Fault.DROP_AFTER, match="/to-invoice")
        with pytest.raises(OutcomeUnknownError) as err:
            await client.native.invoice_receipts([made.key])
    assert "preview_receipts_invoice" in err.value.how_to_check
    assert posts(box, "/receipts/to-invoice") == 1 and len(box.invoices) == 1  # sent once, never repeated


# -- the global invoice --------------------------------------------------------------------------------------------


async def test_the_global_invoice_of_last_month(client: FacturapiAsyncClient, box: FacturapiSandbox) -> None:
    period = last_month(box)
    cash = await client.native.create_receipt([line("100.00")], payment_form="01", date=in_period(period, 3))
    card = await client.native.create_receipt([line("250.00")], payment_form="04", date=in_period(period, 9))
    card2 = await client.native.create_receipt([line("20.00")], payment_form="04", date=in_period(period, 20))
    gone = await client.native.create_receipt([line("999.00")], payment_form="01", date=in_period(period, 5))
    late = await client.native.create_receipt([line("7.00")], payment_form="01")  # this month: not in the period
    assert gone.id and late.id and cash.id and card.id and card2.id
    await client.native.cancel_receipt(gone.id)
    invoice = await client.native.create_global_invoice(period, series="G")
    assert invoice.status == "valid" and invoice.uuid
    assert invoice.total == Decimal("429.20")  # (100 + 250 + 20) * 1.16: the open receipts of the period, exactly
    assert isinstance(invoice.customer, billkit.providers.facturapi.wire.Customer)
    assert invoice.customer.tax_id == PUBLIC_TAX_ID and invoice.use == "S01" and invoice.payment_method == "PUE"
    assert invoice.payment_form == "04"  # the form of the largest amount
    assert invoice.model_extra is not None
    assert invoice.model_extra["global"] == {"periodicity": "month", "months": period.months, "year": period.year}
    sent = box.received("POST", "/receipts/global-invoice")[0].body
    assert sorted(sent["receipts"]) == sorted([cash.id, card.id, card2.id])
    assert "idempotency_key" not in sent and sent["from"].endswith("Z") and sent["to"].endswith("Z")
    for rid in (cash.id, card.id, card2.id):
        taken = await client.native.get_receipt(rid)
        assert taken.receipt_status is ReceiptStatus.INVOICED_GLOBALLY and taken.invoice == invoice.id
    assert (await client.native.get_receipt(gone.id)).receipt_status is ReceiptStatus.CANCELED
    assert (await client.native.get_receipt(late.id)).receipt_status is ReceiptStatus.OPEN
    # a second call for the period: nothing is open, refused locally, naming the invoice made
    with pytest.raises(ValidationError) as err:
        await client.native.create_global_invoice(period)
    assert str(invoice.id) in str(err.value) and posts(box, "/receipts/global-invoice") == 1
    # the same receipts asked for again: the invoice that took them, nothing sent
    same = await client.native.create_global_invoice(period, receipt_ids=[card.id, cash.id, card2.id])
    assert same.id == invoice.id and posts(box, "/receipts/global-invoice") == 1
    assert len(global_invoices(box)) == 1


async def test_a_global_invoice_by_payment_form_and_by_receipt_ids(
    client: FacturapiAsyncClient, box: FacturapiSandbox
) -> None:
    period = last_month(box)
    cash = await client.native.create_receipt([line("100.00")], payment_form="01", date=in_period(period, 2))
    card = await client.native.create_receipt([line("250.00")], payment_form="04", date=in_period(period, 3))
    other = await client.native.create_receipt([line("1.00")], payment_form="01", date=in_period(period, 4))
    assert cash.id and card.id and other.id
    by_form = await client.native.create_global_invoice(period, payment_form="04")
    assert by_form.total == Decimal("290.00") and by_form.payment_form == "04"
    with pytest.raises(ValidationError) as err:  # card is taken, and "nope" is no receipt of the period
        await client.native.create_global_invoice(period, receipt_ids=[cash.id, "nope"])
    assert err.value.fields == ["receipt_ids[1]"]
    with pytest.raises(ValidationError) as err:
        await client.native.create_global_invoice(period, receipt_ids=[cash.id, card.id])
    assert err.value.fields == ["receipt_ids[1]"] and "invoiced_globally" in str(err.value)
    only_cash = await client.native.create_global_invoice(period, receipt_ids=[cash.id])
    assert only_cash.total == Decimal("116.00")
    assert (await client.native.get_receipt(other.id)).receipt_status is ReceiptStatus.OPEN
    assert posts(box, "/receipts/global-invoice") == 2


async def test_a_global_invoice_whose_answer_was_lost_is_never_issued_twice(box: FacturapiSandbox) -> None:
    period = last_month(box)
    async with billkit.AsyncClient("facturapi", sandbox=box) as client:
        for day in (1, 2, 3):
            await client.native.create_receipt([line()], payment_form="01", date=in_period(period, day))
        box.faults.once(Fault.DROP_AFTER, match="/global-invoice")
        invoice = await client.native.create_global_invoice(period)
        assert invoice.total == Decimal("348.00")
        again = await client.native.create_global_invoice(
            period, receipt_ids=[r for r in book(box).receipts]
        )  # a caller retrying the whole call with the pinned receipts
    assert again.id == invoice.id
    assert posts(box, "/receipts/global-invoice") == 1 and len(global_invoices(box)) == 1


async def test_a_global_invoice_refused_before_acting_can_be_sent_again(box: FacturapiSandbox) -> None:
    period = last_month(box)
    async with billkit.AsyncClient("facturapi", sandbox=box) as client:
        made = await client.native.create_receipt([line()], payment_form="01", date=in_period(period, 10))
        assert made.id is not None
        box.faults.once(Fault.SERVER_ERROR, match="/global-invoice")
        with pytest.raises(OutcomeUnknownError) as err:  # a 500 on a write without a key: never repeated blindly
            await client.native.create_global_invoice(period)
        assert err.value.reference and err.value.reference.startswith("bk-global-")
        assert global_invoices(box) == [] and posts(box, "/receipts/global-invoice") == 1
        invoice = await client.native.create_global_invoice(period, receipt_ids=[made.id])
    assert invoice.total == Decimal("116.00") and len(global_invoices(box)) == 1


async def test_a_period_of_more_than_thirty_pages_is_split(client: FacturapiAsyncClient, box: FacturapiSandbox) -> None:
    period = last_month(box)
    first = await client.native.create_receipt([line("1.00")], payment_form="01", date=in_period(period, 1))
    template = book(box).receipts[str(first.id)]
    span = (period.end - period.start).total_seconds()
    for n in range(3100):  # written straight into the sandbox: 3,101 receipts, 32 pages of 100
        rid = f"{n:024x}"
        when = period.start + dt.timedelta(seconds=span * (n + 0.5) / 3100)
        book(box).receipts[rid] = {
            **template,
            "id": rid,
            "key": f"k{n}",
            "date": when.astimezone(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.000Z"),
        }
    invoice = await client.native.create_global_invoice(period)
    assert invoice.total == Decimal("1.16") * 3101
    pages = [r for r in box.received("GET", "/receipts") if r.path == "/receipts"]
    assert pages and all(int(r.params["page"]) <= 30 for r in pages)
    assert len(box.received("POST", "/receipts/global-invoice")[0].body["receipts"]) == 3101


JAN = GlobalPeriod.month(2026, 1)


@pytest.mark.parametrize(
    ("period", "fields"),
    [
        (replace(JAN, periodicity="quarter"), ["period.periodicity"]),  # type: ignore[arg-type]
        (replace(JAN, months="13"), ["period.months"]),
        (GlobalPeriod.month(2021, 1), ["period.year"]),
        (replace(JAN, months="02"), ["period"]),
        (replace(JAN, periodicity="day"), ["period.end"]),
        (replace(GlobalPeriod.two_months(2026, 1), months="01"), ["period.months"]),
        (
            replace(JAN, periodicity="day", start=dt.datetime(2026, 1, 2), end=dt.datetime(2026, 1, 2, 23)),
            ["period.start", "period.end"],
        ),
        (replace(GlobalPeriod.week(dt.date(2026, 1, 5)), months="03"), ["period.months"]),
        (replace(JAN, end=JAN.start), ["period.end"]),
    ],
)
async def test_a_period_the_rules_forbid_is_refused_locally(
    client: FacturapiAsyncClient, box: FacturapiSandbox, period: GlobalPeriod, fields: list[str]
) -> None:
    with pytest.raises(ValidationError) as err:
        await client.native.create_global_invoice(period)
    assert err.value.fields == fields and box.requests == []


def test_the_period_builders_make_periods_that_pass() -> None:
    today = dt.date(2026, 12, 4)
    periods = [
        GlobalPeriod.day(dt.date(2026, 3, 1)),
        GlobalPeriod.week(dt.date(2026, 3, 30)),  # into April: its months is March's
        GlobalPeriod.fortnight(2026, 2, 2),
        GlobalPeriod.month(2024, 2),
        GlobalPeriod.two_months(2026, 6),
    ]
    assert [check_period(p, today) for p in periods] == [[]] * 5
    assert GlobalPeriod.fortnight(2026, 2, 2).end.day == 28 and GlobalPeriod.two_months(2026, 6).months == "18"
    assert GlobalPeriod.month(2026, 1).start.utcoffset() == dt.timedelta(hours=-6)


def test_the_answer_of_a_global_invoice_is_checked() -> None:
    answer = InvoiceDetail.model_validate({"id": "inv1", "total": Decimal("100.00")})
    assert FacturapiReceipts._checked_global(answer, Decimal("100.00"), "k") is answer
    with pytest.raises(ConflictError) as err:
        FacturapiReceipts._checked_global(answer, Decimal("116.00"), "k")
    assert err.value.code == "global_invoice_mismatch" and err.value.raw["id"] == "inv1"


async def test_the_sandbox_checks_global_invoices_itself(box: FacturapiSandbox) -> None:
    period = GlobalPeriod.month(2026, 1)
    base = {"periodicity": "month", "months": "01", "year": 2026, "from": "2026-01-01T06:00:00.000Z",
            "to": "2026-02-01T05:59:59.999Z"}  # fmt: skip
    async with http(box) as raw:
        nothing = await raw.post("/receipts/global-invoice", content=dumps(base))
        assert nothing.status_code == 400 and nothing.json()["path"] == "from"
        keyed = await raw.post("/receipts/global-invoice", content=dumps({**base, "idempotency_key": "x"}))
        assert keyed.json()["code"] == "unknown_field"
        wrong = await raw.post("/receipts/global-invoice", content=dumps({**base, "months": "02"}))
        assert wrong.json()["code"] == "invalid_global_invoice_period"
        item = {"product": {"description": "x", "product_key": "90101501", "price": Decimal("10")}}
        made = await raw.post(
            "/receipts", content=dumps({"payment_form": "01", "date": "2026-01-10T12:00:00.000Z", "items": [item]})
        )
        receipt = made.json()
        closed = await raw.delete(f"/receipts/{receipt['id']}")
        assert closed.json()["status"] == "canceled"
        pinned = await raw.post("/receipts/global-invoice", content=dumps({**base, "receipts": [receipt["id"]]}))
        assert pinned.json()["errors"][0]["code"] == "receipt_not_open"
    assert check_period(period, dt.date(2026, 12, 4)) == []
    assert global_invoices(box) == []


def test_the_blocking_client_makes_a_global_invoice() -> None:
    with billkit.Client("facturapi", sandbox=True) as client:
        box = client.sandbox
        assert isinstance(box, FacturapiSandbox)
        period = last_month(box)
        made = client.native.create_receipt([line()], payment_form="01", date=in_period(period, 15))
        invoice = client.native.create_global_invoice(period)
        assert invoice.total == made.total == Decimal("116.00")
        assert client.native.get_receipt(str(made.id)).receipt_status is ReceiptStatus.INVOICED_GLOBALLY


# -- the request bodies against the official OpenAPI file ----------------------------------------------------------


def _checker(schema_name: str) -> Any:
    """A validator of ``schema_name`` with the file's known defects mended: ``unit_key`` is required but defaulted
    (``ProductProperties``), as in test_lifecycle.py."""
    from jsonschema import Draft202012Validator

    document = copy.deepcopy(spec())
    schemas = document["components"]["schemas"]
    schemas["ProductProperties"]["required"] = ["description", "product_key", "price"]
    return Draft202012Validator({"$ref": f"#/components/schemas/{schema_name}", "components": document["components"]})


@pytest.mark.skipif(not SPEC.exists(), reason=f"{SPEC} is not on this machine")
async def test_every_receipt_body_validates_against_the_spec(
    client: FacturapiAsyncClient, box: FacturapiSandbox
) -> None:
    period = last_month(box)
    usd = LineItem(description="Taza", unit_price=Money("10.00", "USD"), provider_options={"product_key": "52151504"})
    await client.native.create_receipt([usd], payment_form="04", exchange=Decimal("17.25"), folio_number=7,
                                       external_id="T-1", branch="Centro", date=in_period(period, 2))  # fmt: skip
    first = await client.native.create_receipt([line()], payment_form="01", customer=party())
    second = await client.native.create_receipt([line()], payment_form="01")
    assert first.key and second.key and second.id and first.id
    await client.native.assign_receipt_customer(second.id, party())
    await client.native.preview_receipts_invoice([first.key, second.key], payment_form="01")
    await client.native.preview_receipts_invoice_pdf([first.key, second.key], use="G03")
    await client.native.invoice_receipts([first.key, second.key], party(), use="G03", payment_form="01")
    third = await client.native.create_receipt([line()], payment_form="01")
    assert third.id
    await client.native.invoice_receipt(third.id, party(), use="G03", conditions="Contado", folio_number=5, series="R")
    await client.native.create_global_invoice(period, payment_form="04", series="G", folio_number=9,
                                              date=dt.datetime.now(dt.timezone.utc))  # fmt: skip
    schema_of = {
        ("POST", "/receipts"): "ReceiptInput",
        ("PUT", f"/receipts/{second.id}"): "ReceiptAssignCustomerInput",
        ("POST", "/receipts/to-invoice"): "ToInvoiceInput",
        ("POST", "/receipts/to-invoice/preview"): "ToInvoicePreviewInput",
        ("POST", f"/receipts/{third.id}/invoice"): "InvoiceReceiptInput",
        ("POST", "/receipts/global-invoice"): "GlobalInvoiceInput",
    }
    checked = set()
    for request in box.requests:
        name = schema_of.get((request.method, request.path))
        if name is None:
            continue
        body = as_json(request.body)
        errors = sorted(_checker(name).iter_errors(body), key=str)
        assert errors == [], (name, [f"{list(e.absolute_path)}: {e.message}" for e in errors])
        checked.add(name)
    assert checked == set(schema_of.values())


def test_the_checker_does_reject_what_the_spec_forbids() -> None:
    if not SPEC.exists():
        pytest.skip(f"{SPEC} is not on this machine")
    assert list(_checker("ReceiptInput").iter_errors({"items": []})) != []  # no payment_form
    assert list(_checker("GlobalInvoiceInput").iter_errors({"periodicity": "quarter"})) != []
    assert list(_checker("ToInvoiceInput").iter_errors({"keys": []})) != []  # minItems 1

"""Bulk results that carry what a single create returns (issue 22): totals, statuses, payment links, in as few
requests as AcceptEasy allows (one POST, then one status read per poll; no read per bill)."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import httpx
import pytest

import billkit
from billkit import BillStatus, Money, Party
from billkit.errors import ValidationError
from billkit.models import ItemStatus
from billkit.providers.accepteasy.client import read_bulk_entries
from billkit.providers.accepteasy.mapping import (
    DOCUMENTED_TRANSACTION_URL,
    BulkEntry,
    bulk_entries_from_bytes,
    bulk_item_bill,
)
from billkit.providers.accepteasy.sandbox import BAD_TEMPLATE_ID, AcceptEasySandbox
from billkit.providers.accepteasy.wire import BulkBillStatus
from billkit.transport import Response

from .conftest import bill

pytestmark = pytest.mark.anyio

DUE = dt.date.today() + dt.timedelta(days=30)


def bills(n: int, bad: frozenset[int] = frozenset()) -> list[billkit.Bill]:
    return [
        bill(f"BL-{i:04d}", f"{10 + i}.25", description=f"Invoice {i}", due_date=DUE,
             counterparty=Party(email=f"payer{i}@example.com") if i % 2 else None,
             provider_options={"AETemplateID": BAD_TEMPLATE_ID} if i in bad else {})
        for i in range(n)
    ]  # fmt: skip


async def test_a_bulk_brings_back_totals_statuses_and_payment_links_without_a_read_per_bill(
    box: AcceptEasySandbox,
) -> None:
    async with billkit.AsyncClient("accepteasy", sandbox=box) as client:
        client.native.derive_payment_links()  # the documented default-domain form (unverified as a rule)
        result = await (await client.submit_many(bills(50, bad=frozenset({3}))))
        requests = list(box.requests)
        # one POST, then status reads only: not one GET /v2/Bill/{ATID}
        assert [r.method for r in requests].count("POST") == 1
        assert all(r.path.endswith("/status") for r in requests if r.method == "GET")
        assert len(requests) <= 1 + 6, len(requests)
        assert len(result.succeeded) == 49 and [i.index for i in result.failed] == [3]
        for item in result.succeeded:
            made = item.bill
            assert made is not None and made.provider_id is not None
            assert made.status is BillStatus.OPEN and made.provider_status == "CreationSucceeded"
            # what a single create (a GET of the same bill) says
            read = await client.get(made.provider_id)
            assert made.total == read.total == Money(f"{10 + item.index}.25", "EUR")
            assert made.amount_due == read.amount_due
            assert made.reference == read.reference and made.description == read.description
            assert made.due_date == read.due_date == DUE
            assert made.links["transaction_url"] == read.links["transaction_url"]
            assert made.links["location"] == f"/v2/Bill/{made.provider_id}"
            assert made.counterparty == read.counterparty
            assert made.raw is not None and made.raw["SRRID"] == read.raw["SRRID"] if read.raw else False
        assert result[3].error is not None and "Invalid banner template reference" in result[3].error.message


async def test_without_a_link_form_no_link_is_made_up(box: AcceptEasySandbox) -> None:
    async with billkit.AsyncClient("accepteasy", sandbox=box) as client:
        result = await (await client.submit_many(bills(3)))
    made = result[0].bill
    assert made is not None and "transaction_url" not in made.links and set(made.links) == {"location"}
    assert made.total == Money("10.25", "EUR")


async def test_a_custom_domain_form_and_a_form_without_atid(box: AcceptEasySandbox) -> None:
    async with billkit.AsyncClient("accepteasy", sandbox=box) as client:
        with pytest.raises(ValidationError, match="ATID"):
            client.native.derive_payment_links("https://pay.example.com/")
        client.native.derive_payment_links("https://pay.example.com/{ATID}")
        result = await (await client.submit_many(bills(2)))
        client.native.derive_payment_links(None)
        again = await (await client.submit_many(bills(1)))
    made = result[1].bill
    assert made is not None and made.links["transaction_url"] == f"https://pay.example.com/{made.provider_id}"
    assert again[0].bill is not None and "transaction_url" not in again[0].bill.links


async def test_native_bulk_bills_reads_every_field_in_one_read_per_bill(box: AcceptEasySandbox) -> None:
    async with billkit.AsyncClient("accepteasy", sandbox=box) as client:
        op = await client.submit_many(bills(4, bad=frozenset({1})))
        await op
        before = len(box.requests)
        full = await client.native.bulk_bills(op.id)
        assert len(box.requests) - before == 1 + 3  # the status, then one GET per created bill
    assert len(full) == 3
    for record in full:
        assert record.Links is not None and record.Links.ShortURL and record.Links.Images is not None
        assert record.Links.Images.Button and record.CreationDate is not None and record.Amount is not None


async def test_a_resumed_bulk_has_what_the_status_says_and_no_guessed_total(box: AcceptEasySandbox) -> None:
    async with billkit.AsyncClient("accepteasy", sandbox=box) as first:
        token = (await first.submit_many(bills(2))).token
    async with billkit.AsyncClient("accepteasy", sandbox=box) as second:
        second.native.derive_payment_links()
        result = await (await second.resume(token, bulk=True))
    made = result[0].bill
    assert made is not None and made.total is None and made.reference == "BL-0000"
    assert made.links["transaction_url"].endswith(f"id={made.provider_id}&detail=true")


def test_the_blocking_client_too(box: AcceptEasySandbox) -> None:
    with billkit.Client("accepteasy", sandbox=box) as client:
        client.native.derive_payment_links()
        result = client.submit_many(bills(3)).result(timeout=600)
        assert all(i.bill is not None and i.bill.links.get("transaction_url") for i in result)
        assert len(client.native.bulk_bills(result.provider_id or "")) == 3


# -- reading the status: one pass, exact fallback ------------------------------------------------------------


def _response(body: bytes) -> Response:
    return Response(200, httpx.Headers(), body, provider="accepteasy")


def test_the_documented_status_is_read_without_a_model_per_entry() -> None:
    body = (b'{"Bills":[{"ATID":"a","ERROR":{"Message":"Batch creation failed with error message: x"},'
            b'"STATUS":"CreationFailed","PaymentReference":"P1"},{"ATID":"b","STATUS":"CreationSucceeded",'
            b'"Location":"/v2/Bill/b","PaymentReference":"P2","SRRID":"r1"}],'
            b'"BulkId":"k","STATUS":"ProcessingCompleted"}')  # fmt: skip
    status, error, entries = read_bulk_entries(_response(body))
    assert status == "ProcessingCompleted" and error is None
    assert all(isinstance(e, BulkEntry) for e in entries)
    assert entries[0].ERROR is not None and entries[0].ERROR.Message is not None and entries[1].SRRID == "r1"
    assert entries[1].Location == "/v2/Bill/b"


@pytest.mark.parametrize(
    "body",
    [
        b'{"Bills":[{"ATID":"a","STATUS":"CreationSucceeded","Amount":12.95}],"STATUS":"ProcessingCompleted"}',
        b'{"Bills":[{"ATID":"a","STATUS":"CreationSucceeded"}],"STATUS":"ProcessingCompleted","Extra":0.1}',
    ],
)
def test_an_undocumented_answer_is_read_the_exact_way(body: bytes) -> None:
    assert bulk_entries_from_bytes(body) is None
    _, _, entries = read_bulk_entries(_response(body))
    assert entries and all(isinstance(e, BulkBillStatus) for e in entries)


def test_an_entry_of_another_shape_is_refused_as_before() -> None:
    body = b'{"Bills":[{"ATID":1,"STATUS":"CreationSucceeded"}],"STATUS":"ProcessingCompleted"}'
    assert bulk_entries_from_bytes(body) is None
    with pytest.raises(billkit.errors.APIError, match="BulkStatus"):
        read_bulk_entries(_response(body))


def test_an_undocumented_number_in_an_entry_stays_a_decimal_in_raw() -> None:
    body = b'{"Bills":[{"ATID":"a","STATUS":"CreationSucceeded","Amount":12.95}],"STATUS":"ProcessingCompleted"}'
    _, _, entries = read_bulk_entries(_response(body))
    made = bulk_item_bill(entries[0], None, DOCUMENTED_TRANSACTION_URL)
    assert made.raw is not None and made.raw["Amount"] == Decimal("12.95")


def test_the_error_string_form_of_2018_is_read_too() -> None:
    body = b'{"BulkId":"k","STATUS":"CreationFailed","ERROR":"APP0224 - Expiry date must be in the future."}'
    status, error, entries = read_bulk_entries(_response(body))
    assert status == "CreationFailed" and error is not None and error.code == "APP0224" and entries == []


async def test_the_item_bill_equals_the_single_create_of_the_same_bill(box: AcceptEasySandbox) -> None:
    async with billkit.AsyncClient("accepteasy", sandbox=box) as client:
        client.native.derive_payment_links()
        one = await client.create(bills(1)[0].model_copy(update={"reference": "ONE"}))
        item = (await (await client.submit_many([bills(1)[0].model_copy(update={"reference": "ONE"})])))[0]
    assert item.status is ItemStatus.SUCCEEDED and item.bill is not None
    for field in ("reference", "description", "total", "due_date", "amount_due", "status", "counterparty"):
        assert getattr(item.bill, field) == getattr(one, field), field

"""Every JSON example of the three AcceptEasy seeds parses into the wire models, and the requests billkit builds
for the seeds' examples carry the same fields and values."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest

from billkit import Bill, Money, Party
from billkit.providers.accepteasy.mapping import build_request
from billkit.providers.accepteasy.wire import (
    AsyncAccepted,
    AsyncStatus,
    BillRequest,
    BillResponse,
    BulkAccepted,
    BulkRequest,
    BulkStatus,
    ErrorInfo,
    format_datetime,
)

from .conftest import fixture

UTC = dt.timezone.utc


def test_every_seed_example_parses() -> None:
    assert BillRequest.model_validate(fixture("seed000_async_request")).Amount == 1295
    accepted = AsyncAccepted.model_validate(fixture("seed000_async_accepted"))
    assert accepted.ATID == "00000000-0000-0000-0000-000000000000"
    status = AsyncStatus.model_validate(fixture("seed000_async_status"))
    assert ("Processing", ErrorInfo(Message="string")) == (status.STATUS, status.ERROR)
    assert BillRequest.model_validate(fixture("seed001_sync_request")).Description == "Payment from Chat"
    response = BillResponse.model_validate(fixture("seed001_sync_response"))
    assert response.Amount == Decimal("12.99") and isinstance(response.Amount, Decimal)
    assert response.Links is not None and response.Links.ShortURL == "http://trx.ae/JWELEvr9JEGgjNv2PzjhYg"
    assert response.Links.Images is not None and response.Links.Images.ImageURL2 is not None
    email = BillRequest.model_validate(fixture("seed001_email_request"))
    assert email.Communication is not None and [c.Channel for c in email.Communication] == ["Email", "Text", "Email"]
    assert email.RecordData is not None and email.RecordData["AccountNumber"] == "19282489"
    assert AsyncStatus.model_validate(fixture("seed001_status_processing")).Location is None
    assert AsyncStatus.model_validate(fixture("seed001_status_succeeded")).STATUS == "CreationSucceeded"
    failed = AsyncStatus.model_validate(fixture("seed001_status_failed"))
    assert failed.ERROR is not None and failed.ERROR.Message == "string"
    bulk = BulkRequest.model_validate(fixture("seed002_bulk_request"))
    assert [b.Amount for b in bulk.Bills] == [1295, 2844]
    assert BulkAccepted.model_validate(fixture("seed002_bulk_accepted")).BulkId.startswith("0000")
    assert BulkStatus.model_validate(fixture("seed002_bulk_status")).Bills is not None
    partial = BulkStatus.model_validate(fixture("seed002_bulk_partial"))
    assert partial.Bills is not None and partial.Bills[0].SRRID is None and partial.Bills[0].ERROR is not None
    assert partial.Bills[0].ERROR.Message is not None and "banner template" in partial.Bills[0].ERROR.Message


def _now_before(expiry: str) -> dt.datetime:
    return dt.datetime.fromisoformat(expiry.replace("Z", "+00:00")) - dt.timedelta(days=30)


@pytest.mark.parametrize("name", ["seed000_async_request", "seed001_sync_request"])
def test_minimal_requests_match_the_seed(name: str) -> None:
    seed = fixture(name)
    bill = Bill(reference=seed["PaymentReference"], description=seed["Description"],
                total=Money.from_minor_units(seed["Amount"], "EUR"),
                provider_options={"ExpiryDate": seed["ExpiryDate"]})  # fmt: skip
    body = build_request(bill, now=_now_before(seed["ExpiryDate"])).to_json()
    assert body == seed


def test_bulk_request_matches_the_seed() -> None:
    seed = fixture("seed002_bulk_request")
    now = dt.datetime(2023, 1, 1, tzinfo=UTC)
    bodies = [
        build_request(Bill(reference=b["PaymentReference"], description=b["Description"],
                           total=Money(Decimal(b["Amount"]) / 100, "EUR"),
                           provider_options={"ExpiryDate": b["ExpiryDate"]}), now=now).to_json()
        for b in seed["Bills"]
    ]  # fmt: skip
    assert {"Bills": bodies} == seed


def test_communication_request_matches_the_seed() -> None:
    seed = fixture("seed001_email_request")
    bill = Bill(
        reference="123456", description="MonthlyInvoice", total=Money("12.99", "EUR"),
        due_date=dt.date(2018, 2, 28),
        counterparty=Party(email="contact@accepteasy.com", phone="+31 20 261 00 20"),
        provider_options={"Communication": seed["Communication"], "RecordData": seed["RecordData"]},
    )  # fmt: skip
    body = build_request(bill, now=dt.datetime(2018, 2, 1, tzinfo=UTC)).to_json()
    assert body == seed  # due_date -> ExpiryDate 23:59:59Z, as in the seed


def test_error_is_lenient_null_string_or_object() -> None:
    assert AsyncStatus.model_validate({"ATID": "a", "STATUS": "CreationFailed", "ERROR": None}).ERROR is None
    as_text = AsyncStatus.model_validate(fixture("webhook_creation_failed_string"))
    as_obj = AsyncStatus.model_validate(fixture("webhook_creation_failed_object"))
    assert as_text.ERROR is not None and as_text.ERROR.code == "APP0225"
    assert as_obj.ERROR is not None and as_obj.ERROR.code == "APP0224"


def test_unknown_status_and_extra_fields_survive() -> None:
    data = {"ATID": "x", "Status": "Snoozed", "Amount": Decimal("0.01"), "PayerName": "J. Jansen",
            "ExpiryDate": "2019-07-28T09:26:40.5130000Z", "Address": {}}  # fmt: skip
    parsed = BillResponse.model_validate(data)
    assert parsed.Status == "Snoozed"
    assert parsed.model_extra == {"PayerName": "J. Jansen"}
    assert parsed.ExpiryDate == dt.datetime(2019, 7, 28, 9, 26, 40, 513000, tzinfo=UTC)
    assert parsed.Address is None


def test_request_amount_must_be_integer_cents() -> None:
    for bad in (12.95, True, Decimal("12.5")):
        with pytest.raises(ValueError, match="integer cents"):
            BillRequest.model_validate({"PaymentReference": "r", "Description": "d", "Amount": bad})


def test_datetimes_are_written_as_the_docs_write_them() -> None:
    assert format_datetime(dt.datetime(2018, 4, 1, 9, 0, tzinfo=UTC)) == "2018-04-01T09:00:00Z"
    assert format_datetime(dt.datetime(2018, 4, 1, 11, 0, tzinfo=dt.timezone(dt.timedelta(hours=2)))) == (
        "2018-04-01T09:00:00Z"
    )

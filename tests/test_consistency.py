"""One behaviour across providers: what a new user tries once per provider behaves the same at all three.

Each test runs the same steps against AcceptEasy, BILL and Facturapi through the public surface only (billkit,
billkit.testing and the provider packages), so a provider that drifts from the others fails here.
"""

from __future__ import annotations

import datetime as dt
import importlib
import inspect
import pydoc
from dataclasses import dataclass

import pytest

import billkit
import billkit.testing
from billkit import Address, Bill, BulkResult, Direction, ItemStatus, LineItem, Money, Party, Tax
from billkit.errors import OperationCancelled, UnsupportedFeatureError, ValidationError
from billkit.providers.billcom import VENDOR_ACME
from billkit.testing import Faults, VirtualClock, sandbox

pytestmark = pytest.mark.anyio

PROVIDERS = ["accepteasy", "billcom", "facturapi"]


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def good_bill(provider: str, reference: str, currency: str | None = None) -> Bill:
    """A bill ``provider`` takes, in its own currency unless ``currency`` says otherwise."""
    if provider == "accepteasy":
        return Bill(
            reference=reference,
            description="Membership",
            total=Money("25.00", currency or "EUR"),
            counterparty=Party(email="jan@example.nl"),
        )
    if provider == "billcom":  # VENDOR_ACME is billed in USD
        return Bill(
            direction=Direction.PAYABLE,
            counterparty=Party(provider_id=VENDOR_ACME),
            reference=reference,
            issue_date=dt.date(2024, 12, 31),
            due_date=dt.date(2025, 1, 31),
            line_items=(LineItem(description="Audio interface", unit_price=Money("149.00", currency or "USD")),),
        )
    line = LineItem(
        description="Consultoría",
        unit_price=Money("1000.00", currency or "MXN"),
        taxes=(Tax(type="IVA", rate="0.16"),),
        provider_options={"product_key": "80111600"},
    )
    customer = Party(
        name="ESCUELA KEMPER URGATE",
        tax_id="EKU9003173C9",
        address=Address(postal_code="42501"),
        provider_options={"tax_system": "601"},
    )
    return Bill(
        reference=reference,
        counterparty=customer,
        line_items=(line,),
        provider_options={"payment_form": "03", "use": "G03"},
    )


@dataclass(frozen=True)
class Refusal:
    """A currency ``provider`` does not take, the field its ValidationError names, and the requests allowed first."""

    provider: str
    currency: str
    field: str
    reads: tuple[str, ...] = ()  # BILL must read the vendor to know its currency (and log in to do so)


REFUSALS = [
    Refusal("accepteasy", "USD", "total.currency"),  # EUR only
    Refusal("billcom", "EUR", "line_items", ("/v3/login", f"/v3/vendors/{VENDOR_ACME}")),  # the vendor's USD only
    Refusal("facturapi", "USD", "provider_options.exchange"),  # not MXN: only with an exchange rate
]


# -- 1. a currency a provider does not take ---------------------------------------------------------------------


@pytest.mark.parametrize("case", REFUSALS, ids=lambda c: c.provider)
@pytest.mark.parametrize("call", ["create", "submit", "submit_many"])
async def test_a_currency_the_provider_does_not_take_is_a_validation_error_before_anything_is_sent(
    case: Refusal, call: str
) -> None:
    box = sandbox(case.provider)
    wrong = good_bill(case.provider, "CUR-2", currency=case.currency)
    async with billkit.AsyncClient(case.provider, sandbox=box) as client:
        with pytest.raises(ValidationError) as info:
            if call == "submit_many":
                await client.submit_many([good_bill(case.provider, "CUR-1"), wrong])
            else:
                await getattr(client, call)(wrong)
        sent = [r.path for r in box.requests]
    err = info.value
    assert type(err) is ValidationError and not isinstance(err, UnsupportedFeatureError)
    assert err.provider == case.provider and f"[{case.provider}]" in str(err)
    named = [f for f in err.fields if f.endswith(case.field)]
    assert named, err.fields
    assert named[0] in str(err) and case.currency in str(err)
    if call == "submit_many":
        assert named[0] != case.field, "a bulk's problem names the item it is in"
    assert [p for p in sent if p not in (*case.reads, "/v3/logout")] == [], "only reads were sent, no create"


# -- 2. every sandbox is exported the same way --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("provider", "name"),
    [("accepteasy", "AcceptEasySandbox"), ("billcom", "BillcomSandbox"), ("facturapi", "FacturapiSandbox")],
)
def test_each_sandbox_class_is_exported_from_billkit_testing_and_its_provider_package(provider: str, name: str) -> None:
    package = importlib.import_module(f"billkit.providers.{provider}")
    assert name in billkit.testing.__all__ and name in dir(billkit.testing)
    assert name in package.__all__
    cls = getattr(billkit.testing, name)
    assert cls is getattr(package, name) is type(sandbox(provider))
    assert isinstance(cls(), billkit.testing.Sandbox)


# -- 3. a bulk's partial is always a result -----------------------------------------------------------------------


@pytest.mark.parametrize("provider", PROVIDERS)
async def test_a_bulks_partial_is_a_result_from_the_start_and_after_a_cancel(provider: str) -> None:
    bills = [good_bill(provider, f"PART-{i}") for i in range(3)]
    async with billkit.AsyncClient(provider, sandbox=sandbox(provider)) as client:
        bulk = await client.submit_many(bills)
        first = bulk.partial
        assert isinstance(first, BulkResult) and [i.index for i in first] == [0, 1, 2]
        assert all(i.status in (ItemStatus.PENDING, ItemStatus.SUCCEEDED) for i in first)
        bulk.cancel()
        if not bulk.done():  # BILL's bulk is done when submit_many returns; the others' are not
            with pytest.raises(OperationCancelled):
                await bulk
        after = bulk.partial
    assert isinstance(after, BulkResult) and [i.index for i in after] == [0, 1, 2]
    for item in after:  # nothing is left PENDING once the bulk has ended
        assert item.ok or isinstance(item.error, OperationCancelled), item


async def test_a_resumed_bulks_partial_is_an_empty_result_before_its_first_read() -> None:
    box = sandbox("accepteasy", clock=VirtualClock(autojump=False))
    async with billkit.AsyncClient("accepteasy", sandbox=box) as client:
        bulk = await client.submit_many([good_bill("accepteasy", f"RES-{i}") for i in range(2)])
        again = await client.resume(bulk.token)
        assert isinstance(again, billkit.BulkOperation)
        assert isinstance(again.partial, BulkResult) and again.partial.succeeded == []


# -- 5. Faults shows no private parameters -------------------------------------------------------------------------


def test_faults_signature_and_help_show_no_private_parameters() -> None:
    parameters = inspect.signature(Faults).parameters
    assert parameters and not [p for p in parameters if p.startswith("_")]
    assert "injected" not in parameters  # a counter the sandbox keeps, not something to pass
    text = pydoc.plain(pydoc.render_doc(Faults))
    assert "_queue" not in text and "_rng" not in text
    faults = Faults(seed=1).once("slow", match="POST")
    assert faults.pick("POST", "/x") is billkit.testing.Fault.SLOW and faults.injected == {"slow": 1}

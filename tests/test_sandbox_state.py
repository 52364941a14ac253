"""billkit.sandbox_state: a sandbox saved as JSON data and loaded in another process behaves as the original would.

Each provider's sandbox runs a real workload (bills created one by one and in bulk, faults injected and queued,
webhooks due, the clock moved on), is saved and loaded; the loaded one holds the same state (its file is the same
text) and answers the next calls as the original does. Files that are not what they claim are refused with
SandboxStateError naming the value, and nothing in a file can make billkit import or run anything.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import enum
import json
import random
import re
import sys
import uuid
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path
from typing import Any

import pydantic
import pytest

import billkit
from billkit import Bill, BillStatus, Client, Money, SandboxStateError
from billkit import sandbox_state as state_file
from billkit.clock import SystemClock, VirtualClock
from billkit.providers.accepteasy.sandbox import AcceptEasySandbox
from billkit.providers.billcom.sandbox import VENDOR_ACME, VENDOR_GLOBEX, BillcomSandbox
from billkit.providers.facturapi.sandbox import RECOVERY_TAX_ID, FacturapiSandbox
from billkit.sandboxing import Fault, Faults, Sandbox
from tests.fakes import FakeSandbox
from tests.providers.accepteasy.conftest import bill as accepteasy_bill
from tests.providers.billcom.builders import payable
from tests.providers.facturapi.conftest import invoice

SRC = Path(__file__).resolve().parents[1] / "src" / "billkit"


# -- the workloads -------------------------------------------------------------------------------------------------


def accepteasy_workload(box: AcceptEasySandbox) -> None:
    box.fail_references["AE-BAD"] = "Invalid bank account of the debtor"
    box.faults.once(Fault.SERVER_ERROR, match="GET")
    with Client("accepteasy", sandbox=box) as c:
        made = c.create(accepteasy_bill("AE-1"))
        pending = c.submit(accepteasy_bill("AE-2"))
        bulk = c.submit_many([accepteasy_bill("AE-3"), accepteasy_bill("AE-BAD"), accepteasy_bill("AE-4")]).result()
        assert pending.result().status is BillStatus.OPEN
    assert [i.status.value for i in bulk] == ["succeeded", "failed", "succeeded"]
    assert made.provider_id is not None
    box.mark_paid(made.provider_id)
    box.bounce(made.provider_id)
    box.faults.once(Fault.RATE_LIMIT, match="GET")  # still queued when saved
    assert isinstance(box.clock, VirtualClock)
    box.clock.advance_sync(120)


def probe(box: Sandbox) -> list[Fault | None]:
    """The faults the next requests would get (the queued ones, then the random ones: the rng's state), then no
    more random faults, so the client calls that follow do the same thing on both sandboxes."""
    picked = [box.faults.pick("GET", "/probe") for _ in range(40)]
    box.faults.server_error = box.faults.rate_limit = 0.0
    return picked


def without_srrids(bodies: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """AcceptEasy's notifications without the SRRIDs (a client makes a new random one per create)."""
    return [{k: without_srrids(v) if k == "Bills" else v for k, v in b.items() if k != "SRRID"} for b in bodies]


def accepteasy_next(box: AcceptEasySandbox) -> list[Any]:
    picked = probe(box)
    with Client("accepteasy", sandbox=box) as c:
        made = c.create(accepteasy_bill("AE-5"))
        again = c.submit(accepteasy_bill("AE-6")).result()
        first = c.get(sorted(box.bills)[0])
    return [picked, made.provider_id, again.provider_id, again.status, first.status,
            without_srrids(box.notifications()), box.faults.injected]  # fmt: skip


def billcom_workload(box: BillcomSandbox) -> None:
    box.set_approval_policy("500", approvers=1)
    with Client("billcom", sandbox=box) as c:
        one = c.create(payable("BL-1"))
        big = c.create(payable("BL-BIG", lines=(("Server rack", "900.00"),)))
        c.submit_many([payable("BL-2"), payable("BL-3", vendor=VENDOR_GLOBEX)]).result()
        c.native.create_subscription("billkit", "https://example.test/hooks", ["bill.updated"])
    assert one.provider_id is not None and big.provider_id is not None
    box.approve(big.provider_id)
    box.pay(one.provider_id, scheduled_after=5, paid_after=30, amount=Money("100.00", "USD"))
    box.fail_next("BDC_1171", status=503, match="POST")  # queued when saved
    box.reject_vendor_once(VENDOR_GLOBEX)
    assert isinstance(box.clock, VirtualClock)
    box.clock.advance_sync(45)


def billcom_next(box: BillcomSandbox) -> list[Any]:
    picked = probe(box)
    with Client("billcom", sandbox=box) as c:
        try:
            c.create(payable("BL-4"))
            failed = None
        except billkit.BillkitError as exc:  # the queued BDC answer
            failed = type(exc).__name__
        made = c.create(payable("BL-5"))
        bills = [payable("BL-6", vendor=VENDOR_GLOBEX), payable("BL-7", vendor=VENDOR_ACME)]
        with pytest.raises(billkit.BulkRejected) as rejected:  # the vendor rejected once, as queued
            c.submit_many(bills).result()
        bulk = c.submit_many(bills).result()
    events = [(e["metadata"]["eventType"], e["bill"]["id"]) for e in box.events()]
    created = [(i.status, i.bill and i.bill.provider_id) for i in bulk]
    return [picked, failed, rejected.value.code, made.provider_id, created, box.approval_status(made.provider_id or ""),
            events, sorted(box.payments), box.logins]  # fmt: skip


def facturapi_workload(box: FacturapiSandbox) -> None:
    box.cancel_needs_acceptance = True
    box.faults.once(Fault.DROP_AFTER, match="POST /invoices")
    with Client("facturapi", sandbox=box) as c:
        made = c.create(invoice("FA-1"))
        recovering = c.submit(invoice("FA-2", tax_id=RECOVERY_TAX_ID))
        c.submit_many([invoice("FA-3"), invoice("FA-4")]).result()
        assert made.provider_id is not None
        c.native.cancel(made.provider_id, "02")
        c.native.create_customer(invoice("x").counterparty)  # type: ignore[arg-type]
    box.key_in_use("FA-SOMETIME", times=2)
    assert recovering.status is not BillStatus.OPEN  # still on the 202 recovery path when saved
    assert isinstance(box.clock, VirtualClock)
    box.clock.advance_sync(90)


def facturapi_next(box: FacturapiSandbox) -> list[Any]:
    picked = probe(box)
    with Client("facturapi", sandbox=box) as c:
        made = c.create(invoice("FA-5"))
        statuses = {i: v["status"] for i, v in box.invoices.items()}
        assert isinstance(box.clock, VirtualClock)
        box.clock.advance_sync(3 * 24 * 3600)  # the recovery finishes, the cancellation is accepted
        later = {i: v["status"] for i, v in box.invoices.items()}
    events = [e["id"] for e in box.events()]
    return [picked, made.provider_id, made.status, statuses, later, events, list(box.customers)]


WORKLOADS: dict[str, tuple[Callable[[Any], None], Callable[[Any], list[Any]]]] = {
    "accepteasy": (accepteasy_workload, accepteasy_next),
    "billcom": (billcom_workload, billcom_next),
    "facturapi": (facturapi_workload, facturapi_next),
}


def fresh(provider: str) -> Sandbox:
    faults = Faults(server_error=0.2, rate_limit=0.1, seed=5, only=("GET",))  # random faults: its rng is state
    box: Sandbox = billkit.testing.sandbox(provider, clock=VirtualClock(1000.0, wall_start=1.8e9), faults=faults)
    return box


@pytest.mark.parametrize("provider", sorted(WORKLOADS))
def test_a_sandbox_after_a_workload_loads_back_and_answers_as_the_original(provider: str, tmp_path: Path) -> None:
    workload, follow_up = WORKLOADS[provider]
    box = fresh(provider)
    workload(box)
    path = tmp_path / "box.json"
    box.save(path)
    document = json.loads(path.read_text())
    assert (document["format"], document["version"], document["kind"]) == ("billkit-sandbox-state", 1, provider)

    loaded = Sandbox.load(path)
    assert type(loaded) is type(box) and loaded is not box
    assert state_file.dumps(loaded) == path.read_text()  # the same state, value for value
    assert isinstance(loaded.clock, VirtualClock) and loaded.clock is not box.clock
    assert (loaded.clock.now(), loaded.clock.wall()) == (box.clock.now(), box.clock.wall())
    assert loaded.faults is not box.faults and loaded.faults.injected == box.faults.injected

    assert follow_up(loaded) == follow_up(box)  # same ids next, same answers, same faults, same webhooks


def test_the_typed_load_refuses_another_providers_file(tmp_path: Path) -> None:
    path = tmp_path / "box.json"
    AcceptEasySandbox().save(path)
    assert isinstance(AcceptEasySandbox.load(path), AcceptEasySandbox)
    with pytest.raises(SandboxStateError, match=r"holds a 'accepteasy' sandbox .*not a facturapi sandbox"):
        FacturapiSandbox.load(path)


def test_a_test_suites_own_sandbox_class_round_trips(tmp_path: Path) -> None:
    box = FakeSandbox()
    box.jobs["job_1"] = {"id": "job_1", "amount": Decimal("1.50"), "done_at": 30.0}
    box.save(tmp_path / "fake.json")
    loaded = Sandbox.load(tmp_path / "fake.json")
    assert isinstance(loaded, FakeSandbox) and loaded.jobs == box.jobs


def test_the_system_clock_is_saved_as_such(tmp_path: Path) -> None:
    box = FacturapiSandbox(SystemClock())
    box.save(tmp_path / "box.json")
    assert isinstance(FacturapiSandbox.load(tmp_path / "box.json").clock, SystemClock)


def test_save_is_atomic_and_leaves_no_temporary_file(tmp_path: Path) -> None:
    path = tmp_path / "box.json"
    path.write_text("the previous state")
    box = AcceptEasySandbox()
    box.notification_auth = ("u", object())  # type: ignore[assignment]
    with pytest.raises(SandboxStateError, match=r"state\['notification_auth'\]\[1\]: a builtins.object"):
        box.save(path)
    assert path.read_text() == "the previous state" and not (tmp_path / "box.json.tmp").exists()
    AcceptEasySandbox().save(path)
    assert json.loads(path.read_text())["kind"] == "accepteasy" and sorted(tmp_path.iterdir()) == [path]


# -- the encoding of values ----------------------------------------------------------------------------------------


class Colour(enum.Enum):
    RED = "red"


@dataclasses.dataclass(frozen=True)
class Point:
    x: int
    y: Decimal
    tags: tuple[str, ...] = ()


@dataclasses.dataclass
class Added:
    name: str
    since: list[int] = dataclasses.field(default_factory=list)  # a field a newer release added


class Receipt(pydantic.BaseModel):
    id: str
    total: Decimal
    at: dt.datetime
    note: str | None = None


class Book:
    """A plain class (as a sandbox helper may keep its state in): rebuilt from its attributes, not its __init__."""

    def __init__(self) -> None:
        self.receipts: dict[str, dict[str, Any]] = {}
        self.folio = 0

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Book) and vars(self) == vars(other)


class StateBox(FakeSandbox):
    """Stands for a sandbox that grows new state: a dict of models, a dict of dataclasses, odd keys and values."""


def book() -> Book:
    made = Book()
    made.receipts["r_1"] = {"total": Decimal("1.16")}
    made.folio = 7
    return made


def odd_values() -> dict[str, Any]:
    rng = random.Random(3)
    rng.random()
    return {
        "by_tuple": {("a", 1): {2, 1}, 3: frozenset({"x"}), None: b"\x00\xff", "$tag-like": "kept"},
        "numbers": [Decimal("0.10"), Decimal("-0"), 1.5, float("inf"), -7, 2**70],
        "when": [dt.datetime(2027, 3, 4, 22, 47, 51, 770000, tzinfo=dt.timezone.utc), dt.date(2027, 1, 2),
                 dt.datetime(2027, 3, 4, 1, 2, 3), dt.time(9, 30), dt.timedelta(days=1, seconds=5, microseconds=7)],
        "ids": uuid.UUID("12345678-1234-5678-1234-567812345678"),
        "money": Money("12.50", "EUR"),
        "enums": [Colour.RED, Fault.SLOW, BillStatus.PAID],
        "points": {"p": Point(1, Decimal("2.5"), ("t",))},
        "receipts": {"r1": Receipt(id="r1", total=Decimal("9.99"), at=dt.datetime(2027, 1, 1, tzinfo=dt.timezone.utc))},
        "rng": rng,
        "book": book(),
        "bill": Bill(reference="B-1", total=Money("3.00", "MXN")),
    }  # fmt: skip


def test_every_kind_of_value_round_trips_with_no_codec_change(tmp_path: Path) -> None:
    box = StateBox()
    values = odd_values()
    box.extra = values  # type: ignore[attr-defined]
    box.save(tmp_path / "box.json")
    loaded = StateBox.load(tmp_path / "box.json")
    again: dict[str, Any] = loaded.extra  # type: ignore[attr-defined]
    rng = again.pop("rng")
    assert rng.random() == values.pop("rng").random()
    assert again == values
    assert type(again["points"]["p"]) is Point and again["receipts"]["r1"].model_fields_set == {"id", "total", "at"}
    assert math_nan_round_trips(tmp_path)


def math_nan_round_trips(tmp_path: Path) -> bool:
    box = StateBox()
    box.duration = float("nan")
    box.save(tmp_path / "nan.json")
    loaded = StateBox.load(tmp_path / "nan.json")
    assert isinstance(loaded, StateBox)
    return loaded.duration != loaded.duration


def test_a_field_added_since_the_file_was_written_gets_its_default(tmp_path: Path) -> None:
    box = StateBox()
    box.extra = Added("old")  # type: ignore[attr-defined]
    box.save(tmp_path / "box.json")
    text = (tmp_path / "box.json").read_text()
    document = json.loads(text)
    del document["state"]["extra"]["$object"]["state"]["since"]
    loaded = state_file.decode(document, StateBox)
    assert loaded.extra == Added("old", [])  # type: ignore[attr-defined]


def test_a_local_class_cannot_be_saved(tmp_path: Path) -> None:
    @dataclasses.dataclass
    class Local:
        x: int

    box = StateBox()
    box.extra = {"k": Local(1)}  # type: ignore[attr-defined]
    with pytest.raises(SandboxStateError, match=r"state\['extra'\]\['k'\]: .*Local is not defined in billkit"):
        box.save(tmp_path / "box.json")


# -- files that are not what they claim ---------------------------------------------------------------------------


def saved(tmp_path: Path) -> dict[str, Any]:
    box = FacturapiSandbox(VirtualClock())
    box.save(tmp_path / "box.json")
    document: dict[str, Any] = json.loads((tmp_path / "box.json").read_text())
    return document


def refused(document: Any, tmp_path: Path, expected: type[Sandbox] = Sandbox) -> SandboxStateError:
    path = tmp_path / "tampered.json"
    path.write_text(json.dumps(document))
    with pytest.raises(SandboxStateError) as caught:
        expected.load(path)
    return caught.value


def test_a_file_of_another_format_or_version_is_refused(tmp_path: Path) -> None:
    document = saved(tmp_path)
    assert "format version 2; this billkit reads version 1" in str(refused({**document, "version": 2}, tmp_path))
    assert "is not a billkit sandbox state file" in str(refused({**document, "format": "other"}, tmp_path))
    assert "is not a billkit sandbox state file" in str(refused([1, 2], tmp_path))
    (tmp_path / "old.pickle").write_bytes(b"\x80\x04\x95\x00\x00")  # what billkit 0.1 wrote
    with pytest.raises(SandboxStateError, match="not JSON"):
        Sandbox.load(tmp_path / "old.pickle")


def test_a_file_of_an_unknown_kind_or_class_is_refused(tmp_path: Path) -> None:
    document = saved(tmp_path)
    assert "holds a 'ghost' sandbox" in str(refused({**document, "kind": "ghost"}, tmp_path))
    forged = {**document, "class": "os:system"}
    assert "holds a 'facturapi' sandbox ('os:system')" in str(refused(forged, tmp_path))


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ({"$pickle": "gASV"}, r"state\['records'\]: unknown tag '\$pickle'"),
        ({"$object": {"class": "subprocess:Popen", "state": {}}}, r"'subprocess' is not a billkit module"),
        ({"$object": {"class": "os:system", "state": {}}}, r"'os' is not a billkit module"),
        ({"$enum": {"class": "billkit.transport:httpx.Client", "value": 1}}, r"does not name a class|not allowed"),
        ({"$object": {"class": "billkit.sandboxing:Sandbox", "state": {}}}, r"is not a dataclass"),
        ({"$object": {"class": "billkit.sandboxing:RecordedRequest.__class__", "state": {}}}, r"not allowed"),
        ({"$model": {"class": "billkit.sandboxing:Faults", "fields": {}}}, r"is not a pydantic model"),
        ({"$object": {"class": "billkit.never_imported:Thing", "state": {}}}, r"is not loaded"),
        ({"$object": {"class": "billkit.sandboxing:Fault", "state": {}}}, r"is not a dataclass"),
        ({"$enum": {"class": "billkit.sandboxing:Fault", "value": "explode"}}, r"malformed \$enum"),
        ({"$decimal": 12}, r"malformed \$decimal"),
        ({"$decimal": "twelve"}, r"malformed \$decimal"),
        ({"$tuple": [1], "extra": 2}, r"exactly one key"),
        ({"$clock": {"now": "soon", "wall": 0, "autojump": True}}, r"malformed \$clock"),
        ({"$random": [1, 2]}, r"malformed \$random"),
        ({"$float": "1e999"}, r"malformed \$float"),
    ],
)
def test_a_tampered_value_is_refused_with_its_path(tmp_path: Path, value: Any, message: str) -> None:
    document = saved(tmp_path)
    document["state"]["records"] = value
    error = refused(document, tmp_path)
    assert re.search(message, str(error)), str(error)
    assert error.path is not None and error.path.startswith("state")


def test_a_state_nested_too_deeply_is_refused(tmp_path: Path) -> None:
    document = saved(tmp_path)
    document["state"]["records"] = "DEEP"
    deep = '{"$tuple": [' * 100_000 + "0" + "]}" * 100_000
    path = tmp_path / "deep.json"
    path.write_text(json.dumps(document).replace('"DEEP"', deep))
    with pytest.raises(SandboxStateError, match=r"nested too deeply|not JSON"):
        Sandbox.load(path)


def test_a_nested_bad_value_names_its_whole_path(tmp_path: Path) -> None:
    document = saved(tmp_path)
    document["state"]["records"] = {"inv_1": {"stamp": [{"$object": {"class": "builtins:eval", "state": {}}}]}}
    error = refused(document, tmp_path)
    assert error.path == "state['records']['inv_1']['stamp'][0]"
    assert isinstance(error, billkit.ConfigurationError)


def test_loading_never_imports_a_module(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    document = saved(tmp_path)
    document["state"]["records"] = {"$object": {"class": "billkit.contrib.dbos:Anything", "state": {}}}
    monkeypatch.delitem(sys.modules, "billkit.contrib.dbos", raising=False)  # put back after the test
    assert "is not loaded" in str(refused(document, tmp_path, FacturapiSandbox))
    assert "billkit.contrib.dbos" not in sys.modules


def test_no_pickle_in_billkit() -> None:
    found = [str(p.relative_to(SRC)) for p in SRC.rglob("*.py")
             if re.search(r"^\s*(import|from)\s+(c?pickle|shelve|marshal)\b", p.read_text(), re.MULTILINE)]  # fmt: skip
    assert found == []

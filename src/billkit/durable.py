"""The pieces a durable engine drives, one at a time, as plain data it can store: one send of a bill, one status
read of the operation that send started, and what a verified webhook says about it.

The embedded batch (:mod:`billkit.batch`) and the DBOS workflows (:mod:`billkit.contrib.dbos`) are two engines
over the same provider knowledge: the key that identifies a bill at the provider (``client.pin_key``), how to
find it after a lost answer (``client.find_existing``), which errors prove nothing was created
(:func:`proves_not_created`), and how long a provider's listings may lag (``reconcile_settle``). Neither engine
keeps any of that itself.

A :class:`Stage` holds no secret and no live object: an engine may write it to its database and read it back in
another process. ``state`` is the operation's token state (the provider's ids), never credentials.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any

from billkit.client import AsyncClient
from billkit.errors import (
    APIError,
    BillkitError,
    BulkRejected,
    ConfigurationError,
    OperationFailed,
    UnsupportedFeatureError,
    ValidationError,
)
from billkit.models import Bill, BillStatus, BulkResult
from billkit.operations import PollResult, Started

__all__ = ["Stage", "found", "problem_index", "proves_not_created", "read", "refused", "send", "send_many", "updates"]


@dataclass(frozen=True)
class Stage:
    """Where one bill's creation stands after a send, a status read or a webhook.

    * ``done`` with ``bill``: created and finished (``bill`` is the Bill as JSON); ``done`` with ``error``
      (``(type name, message)``): the provider failed it for good.
    * not ``done``: the provider is still working; ``kind``/``id``/``state`` say which operation to read next,
      ``retry_after`` is the server's hint, ``order`` the time of the webhook that said so (if one did).
    """

    done: bool
    kind: str | None = None
    id: str | None = None
    state: Mapping[str, Any] | None = None
    status: str | None = None
    provider_status: str | None = None
    bill: str | None = None
    error: tuple[str, str] | None = None
    retry_after: float | None = None
    order: float | None = None

    def to_json(self) -> str:
        return json.dumps(asdict(self), separators=(",", ":"), sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> Stage:
        data = json.loads(text)
        if not isinstance(data, dict) or not isinstance(data.get("done"), bool):
            raise ValueError("not a billkit Stage")
        error = data.get("error")
        data["error"] = (str(error[0]), str(error[1])) if error else None
        fields: dict[str, Any] = {k: data.get(k) for k in cls.__dataclass_fields__}
        return cls(**fields)

    def value(self) -> Bill | None:
        """The finished bill, or None."""
        return Bill.model_validate_json(self.bill) if self.bill else None


def proves_not_created(exc: BaseException) -> bool:
    """Whether ``exc`` proves the bill was not created and will not be: a refusal before sending (validation), a
    failed creation, or a 4xx refusal other than 408, 409 and 429. Anything else (a lost answer, a dropped
    connection, a 5xx, a timeout) leaves the bill to be looked up before it is ever sent again."""
    if isinstance(exc, (ValidationError, OperationFailed, BulkRejected, UnsupportedFeatureError)):
        return True
    if isinstance(exc, APIError):
        status = exc.status_code or 0
        return 400 <= status < 500 and status not in (408, 409, 429)
    return False


def problem_index(name: str) -> int | None:
    """``3`` for a problem field ``[3].total`` (or ``bills[3].total``); None for a field of the whole submission."""
    found = _INDEXED.match(name)
    return int(found.group(1)) if found else None


_INDEXED = re.compile(r"^\w*\[(\d+)\]")


def refused(exc: ValidationError | BulkRejected, count: int) -> dict[int, tuple[str, str]]:
    """A submission of ``count`` bills refused before anything was created: the positions that fail, each with its
    error type and message (the item's own problems, else the refusal's). The others may be sent again without
    them. A refusal that names no bill, or has a problem of the whole submission, fails every position: sending
    them again would be refused again."""
    errors: dict[int, BillkitError] = dict(exc.item_errors) if isinstance(exc, BulkRejected) else {}
    named = set(errors) if isinstance(exc, BulkRejected) else {problem_index(p.field) for p in exc.problems}
    positions = range(count) if not named or None in named else sorted(p for p in named if p is not None)
    out: dict[int, tuple[str, str]] = {}
    for pos in positions:
        err = errors.get(pos, exc)
        mine = [str(p) for p in getattr(exc, "problems", []) if problem_index(p.field) == pos]
        out[pos] = (type(err).__name__, "; ".join(mine) if mine else err.message)
    return out


def _stage(kind: str | None, op_id: str | None, state: Mapping[str, Any] | None, result: PollResult | None) -> Stage:
    if result is None:
        return Stage(done=False, kind=kind, id=op_id, state=dict(state or {}))
    status = result.status.value if isinstance(result.status, BillStatus) else None
    new_state = dict(result.state) if result.state is not None else dict(state or {})
    if result.done and result.error is not None:
        err = result.error
        return Stage(done=True, id=op_id, status=status, provider_status=result.provider_status,
                     error=(type(err).__name__, err.message), order=result.order)  # fmt: skip
    if result.done:
        value = result.value
        if not isinstance(value, Bill):
            raise BillkitError("a durable engine drives single creates; this operation finished with a bulk result")
        return Stage(done=True, id=value.provider_id or op_id, status=status, provider_status=result.provider_status,
                     bill=value.model_dump_json(), order=result.order)  # fmt: skip
    return Stage(
        done=False,
        kind=kind,
        id=op_id,
        state=new_state,
        status=status,
        provider_status=result.provider_status,
        retry_after=result.retry_after,
        order=result.order,
    )


async def send(client: AsyncClient, bill: Bill) -> Stage:
    """Send ``bill`` once (it should carry its pinned key) and return the provider's first answer. Raises the
    billkit error of a failed send; :func:`proves_not_created` says whether the bill may exist anyway."""
    client._check_open()
    started: Started = await client._io.run(client._adapter.submit(bill))
    return _stage(started.kind, started.id, started.state, started.first)


async def send_many(client: AsyncClient, bills: list[Bill]) -> list[Stage]:
    """Send ``bills`` as one bulk (each with its pinned key) and return one stage per bill, in order: for a
    provider whose bulk answers at once (BILL's), or one whose bulk is one create per bill (Facturapi). Raises the
    billkit error of a bulk refused or lost whole; a bulk the provider finishes later as one job (AcceptEasy's) is
    refused here, since its items cannot be followed one by one."""
    client._check_open()
    started = await client._io.run(client._adapter.submit_many(bills))
    if not isinstance(started, Started):
        out: list[Stage] = []
        for one in started:
            if isinstance(one, BillkitError):
                out.append(Stage(done=True, error=(type(one).__name__, one.message)))
            else:
                out.append(_stage(one.kind, one.id, one.state, one.first))
        return out
    first = started.first
    if first is None or not first.done:
        raise ConfigurationError(f"{client.provider}'s bulk finishes later as one job; send its bills one by one")
    if first.error is not None:
        raise first.error
    if not isinstance(first.value, BulkResult) or len(first.value) != len(bills):
        raise BillkitError("a bulk answered without one result per bill", provider=client.provider)
    stages = []
    for item in first.value:
        if item.ok and item.bill is not None:
            stages.append(found(item.bill))
        else:
            err = item.error or OperationFailed("failed in the bulk", provider=client.provider)
            stages.append(Stage(done=True, error=(type(err).__name__, err.message)))
    return stages


def found(bill: Bill) -> Stage:
    """The stage of a bill a look-up found (or a resend created): done, or still being created at the provider
    (then read as a wait for it to leave PENDING)."""
    if bill.status in (BillStatus.PENDING, BillStatus.UNKNOWN) and bill.provider_id:
        until = [s.value for s in BillStatus if s not in (BillStatus.PENDING, BillStatus.UNKNOWN)]
        state = {"id": bill.provider_id, "until": until}
        status = bill.status.value if bill.status else None
        return Stage(done=False, kind="watch", id=bill.provider_id, state=state, status=status,
                     provider_status=bill.provider_status)  # fmt: skip
    if bill.status is BillStatus.FAILED:
        return Stage(done=True, id=bill.provider_id, status="failed", provider_status=bill.provider_status,
                     error=("OperationFailed", "creation failed"))  # fmt: skip
    return Stage(done=True, id=bill.provider_id, status=bill.status.value if bill.status else None,
                 provider_status=bill.provider_status, bill=bill.model_dump_json())  # fmt: skip


async def read(client: AsyncClient, stage: Stage) -> Stage:
    """One status read of the operation ``stage`` names (the client's read retry policy applies)."""
    client._check_open()
    if stage.done or stage.kind is None:
        return stage
    state = dict(stage.state or {})
    io = client._io.with_retry(client.poll_policy.read_retry)
    result = await io.run(client._poll_flow(stage.kind, state))
    return _stage(stage.kind, stage.id, state, result)


def updates(client: AsyncClient, event: Any) -> list[tuple[str, Stage]]:
    """What a *verified* webhook event says, per operation id it names, as stages (not applied to anything: the
    engine hands each to the operation it holds under that id)."""
    out = []
    for op_id, result in client._adapter.webhook_updates(event):
        out.append((op_id, _stage(None, op_id, None, result)))
    return out

"""A minimal fake provider used by the tests of the shared machinery (never shipped)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import httpx

from billkit.client import PROVIDERS, Adapter, Capabilities, Credential
from billkit.clock import Clock
from billkit.errors import BillkitError, OperationFailed
from billkit.flows import Flow
from billkit.models import Bill, BillStatus, BulkResult, ItemResult, ItemStatus
from billkit.money import Money
from billkit.operations import PollResult, Started
from billkit.sandboxing import Faults, Sandbox, json_response
from billkit.tokens import TokenState
from billkit.transport import Request, Response, default_error


class FakeSandbox(Sandbox):
    """Jobs finish ``duration`` seconds after creation; references starting with 'fail' end failed."""

    provider = "fake"
    base_url = "https://fake.test/api"
    credentials = {"token": "fake-secret-token"}

    def __init__(self, clock: Clock | None = None, faults: Faults | None = None) -> None:
        super().__init__(clock, faults)
        self.jobs: dict[str, dict[str, Any]] = {}
        self.duration = 30.0
        self.retry_after: float | None = None

    def handle(self, request: httpx.Request, body: Any) -> httpx.Response:
        if request.headers.get("authorization") != "Bearer fake-secret-token":
            return json_response(401, {"code": "auth", "message": "bad token"})
        path = request.url.path
        if request.method == "POST" and path == "/jobs":
            job_id = f"job_{len(self.jobs) + 1}"
            duration = float(body.get("duration", self.duration))
            self.jobs[job_id] = {
                "id": job_id,
                "ref": body["ref"],
                "amount": body["amount"],
                "done_at": self.clock.now() + duration,
            }
            return json_response(202, {"id": job_id})
        if request.method == "GET" and path.startswith("/jobs/"):
            job = self.jobs.get(path.rsplit("/", 1)[1])
            if job is None:
                return json_response(404, {"code": "not_found", "message": "no such job"})
            finished = self.clock.now() >= job["done_at"]
            status = "running" if not finished else ("failed" if job["ref"].startswith("fail") else "done")
            headers = {"retry-after": f"{self.retry_after:g}"} if self.retry_after and not finished else {}
            return json_response(
                200, {"id": job["id"], "ref": job["ref"], "status": status, "amount": job["amount"]}, headers
            )
        return json_response(404, {"code": "no_route", "message": path})


class JobState(TokenState):
    id: str


class FakeAdapter(Adapter):
    name = "fake"
    token_states = {"job": JobState}
    credentials = (Credential("token", "FAKE_TOKEN"),)
    default_base_url = "https://fake.test/api"
    request_id_header = "x-request-id"
    capabilities = Capabilities("fake", frozenset({"receivable"}), None, True, False, False, None, False, False, False)

    @classmethod
    def auth_headers(cls, creds: Mapping[str, Any]) -> dict[str, str]:
        token = creds["token"]
        return {"authorization": f"Bearer {token.get_secret_value()}"}

    @classmethod
    def parse_error(cls, response: Response) -> BillkitError:
        body = response.json_or_none() or {}
        return default_error("fake", response, code=body.get("code"), message=body.get("message"))

    @classmethod
    def make_sandbox(cls, clock: Clock | None = None, faults: Faults | None = None) -> FakeSandbox:
        return FakeSandbox(clock, faults)

    def _bill(self, data: Mapping[str, Any]) -> Bill:
        status = {"running": BillStatus.PENDING, "done": BillStatus.OPEN, "failed": BillStatus.FAILED}.get(
            data.get("status", ""), BillStatus.UNKNOWN
        )
        return Bill(
            reference=data.get("ref"),
            provider="fake",
            provider_id=data["id"],
            status=status,
            provider_status=data.get("status"),
            total=Money(data["amount"], "EUR") if "amount" in data else None,
            raw=dict(data),
        )

    def create(self, bill: Bill) -> Flow[Bill]:
        started = yield from self.submit(bill)
        return (yield from self.get(started.id))

    def submit(self, bill: Bill) -> Flow[Started]:
        body = {
            "ref": bill.reference,
            "amount": str(bill.total.amount) if bill.total else "0",
            **dict(bill.provider_options),
        }
        resp = yield from self.ctx.transport.send(
            Request("POST", "/jobs", json=body, how_to_check="look the ref up", reference=bill.reference)
        )
        job_id = resp.json()["id"]
        return Started("job", job_id, {"id": job_id})

    def submit_many(self, bills: Sequence[Bill]) -> Flow[Sequence[Started | BillkitError]]:
        out: list[Started | BillkitError] = []
        for bill in bills:
            try:
                out.append((yield from self.submit(bill)))
            except BillkitError as exc:
                out.append(exc)
        return out

    def get(self, provider_id: str) -> Flow[Bill]:
        resp = yield from self.ctx.transport.send(Request("GET", "/jobs/{}", ids=(provider_id,)))
        return self._bill(resp.json())

    def poll(self, kind: str, state: Mapping[str, Any]) -> Flow[PollResult]:
        resp = yield from self.ctx.transport.send(Request("GET", "/jobs/{}", ids=(str(state["id"]),)))
        bill = self._bill(resp.json())
        if bill.status is BillStatus.PENDING:
            return PollResult(status=bill.status, provider_status=bill.provider_status, retry_after=resp.retry_after)
        if bill.status is BillStatus.FAILED:
            err = OperationFailed(
                "job failed",
                provider="fake",
                status="failed",
                provider_status="failed",
                operation_id=bill.provider_id,
            )
            return PollResult(status=bill.status, provider_status="failed", done=True, error=err)
        return PollResult(status=bill.status, provider_status=bill.provider_status, done=True, value=bill)

    def webhook_updates(self, event: Any) -> list[tuple[str, PollResult]]:
        bill = self._bill(event)
        return [(bill.provider_id or "", PollResult(status=bill.status, done=True, value=bill))]


def register() -> None:
    PROVIDERS["fake"] = "tests.fakes:FakeAdapter"


_ = (BulkResult, ItemResult, ItemStatus)

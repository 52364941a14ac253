"""Operations on the fake provider: every job finishes ``duration`` virtual seconds after it was created."""

from __future__ import annotations

import base64
import json
from collections.abc import AsyncIterator
from typing import Any

import anyio
import httpx
import pytest

import billkit
from billkit import AsyncClient, Bill, BillStatus, Money, OperationFailed, OperationTimeout, PollPolicy
from billkit.clock import VirtualClock
from billkit.errors import OperationCancelled, TokenError
from billkit.operations import DEFAULT_DEADLINE, OperationState, decode_token, encode_token
from billkit.sandboxing import Fault, Faults
from tests.fakes import FakeSandbox

pytestmark = pytest.mark.anyio


def job(ref: str = "r1", duration: float | None = None) -> Bill:
    options: dict[str, Any] = {} if duration is None else {"duration": duration}
    return Bill(reference=ref, total=Money("10.00", "EUR"), provider_options=options)


@pytest.fixture
async def client(anyio_backend: str) -> AsyncIterator[AsyncClient]:
    clock = VirtualClock()
    async with AsyncClient("fake", sandbox=FakeSandbox(clock), poll=PollPolicy(jitter=0)) as c:
        yield c


def box(client: AsyncClient) -> FakeSandbox:
    assert isinstance(client.sandbox, FakeSandbox)
    return client.sandbox


def reads(client: AsyncClient) -> list[float]:
    return [r.at for r in box(client).requests if r.method == "GET"]


async def test_submit_resolves_on_terminal_status_in_virtual_time(client: AsyncClient) -> None:
    op = await client.submit(job(duration=42))
    assert not op.done() and op.status is BillStatus.PENDING and op.state is OperationState.RUNNING
    bill = await op
    assert bill.status is BillStatus.OPEN and bill.provider_id == op.id
    assert op.done()
    assert op.state.value == "succeeded"
    assert 42 <= client.clock.now() <= 42 + 20, "overshoot bounded by the backoff cap"


async def test_terminal_failure_raises_operation_failed(client: AsyncClient) -> None:
    op = await client.submit(job("fail-1", duration=5))
    with pytest.raises(OperationFailed) as info:
        await op
    assert info.value.provider_status == "failed" and info.value.operation_id == op.id
    assert op.state is OperationState.FAILED and isinstance(op.exception(), OperationFailed)


async def test_default_deadline_is_at_least_an_hour() -> None:
    assert PollPolicy().deadline >= 3600 and DEFAULT_DEADLINE >= 3600


async def test_deadline_raises_timeout_with_token_and_resume_finishes(client: AsyncClient) -> None:
    op = await client.submit(job(duration=4000), deadline=600)
    with pytest.raises(OperationTimeout) as info:
        await op
    err = info.value
    assert err.status == "pending" and err.token == op.token
    assert client.clock.now() == pytest.approx(600)
    assert op.state is OperationState.TIMED_OUT
    again = await client.resume(err.token)
    bill = await again
    assert bill.provider_id == op.id and client.clock.now() >= 4000


async def test_local_wait_timeout_leaves_the_operation_running(client: AsyncClient) -> None:
    op = await client.submit(job(duration=100))
    assert await op.wait(timeout=10) is False
    with pytest.raises(OperationTimeout):
        await op.result(timeout=10)
    assert op.state is OperationState.RUNNING
    assert await op.wait() is True
    assert (await op).status is BillStatus.OPEN


async def test_status_and_done_do_no_io_and_refresh_does_one_read(client: AsyncClient) -> None:
    op = await client.submit(job(duration=100))
    before = len(box(client).requests)
    for _ in range(5):
        op.done()
        _ = op.status, op.token, op.provider_status
    assert len(box(client).requests) == before
    assert await op.refresh() is BillStatus.PENDING
    assert len(box(client).requests) == before + 1


async def test_cancel_stops_local_polling(client: AsyncClient) -> None:
    op = await client.submit(job(duration=100))
    op.cancel()
    with pytest.raises(OperationCancelled) as info:
        await op
    assert decode_token(info.value.token)["id"] == op.id
    assert reads(client) == []


async def test_fixed_interval_polls_exactly_on_it() -> None:
    clock = VirtualClock()
    async with AsyncClient("fake", sandbox=FakeSandbox(clock), poll=PollPolicy.fixed(30)) as client:
        await (await client.submit(job(duration=95)))
        assert reads(client) == [30, 60, 90, 120]


async def test_backoff_starts_short_and_grows_to_the_cap() -> None:
    clock = VirtualClock()
    policy = PollPolicy(first_delay=1, multiplier=2, max_delay=8, jitter=0)
    async with AsyncClient("fake", sandbox=FakeSandbox(clock), poll=policy) as client:
        await (await client.submit(job(duration=30)))
        times = reads(client)
        gaps = [b - a for a, b in zip([0.0, *times], times, strict=False)]
        assert gaps == [1, 1, 2, 4, 8, 8, 8]


async def test_retry_after_on_status_wins_over_backoff() -> None:
    clock = VirtualClock()
    sandbox = FakeSandbox(clock)
    sandbox.retry_after = 10
    async with AsyncClient("fake", sandbox=sandbox, poll=PollPolicy(first_delay=1, jitter=0)) as client:
        await (await client.submit(job(duration=35)))
        assert reads(client) == [1, 11, 21, 31, 41]


async def test_one_503_or_dropped_read_does_not_fail_the_future() -> None:
    clock = VirtualClock()
    faults = Faults().once(Fault.SERVER_ERROR, match="GET").once(Fault.DROP_AFTER, match="GET")
    async with AsyncClient("fake", sandbox=FakeSandbox(clock, faults), poll=PollPolicy(jitter=0)) as client:
        bill = await (await client.submit(job(duration=20)))
        assert bill.status is BillStatus.OPEN
        assert faults.injected == {"server_error": 1, "drop_after": 1}


async def test_a_definitive_read_error_ends_the_operation(client: AsyncClient) -> None:
    token = encode_token("fake", "job", "job_404", {"id": "job_404"})
    op = await client.resume(token)
    with pytest.raises(billkit.NotFoundError):
        await op


async def test_thousand_operations_share_one_scheduler_with_bounded_reads(client: AsyncClient) -> None:
    ops = [await client.submit(job(f"r{i}", duration=1 + i % 60)) for i in range(1000)]
    results = await billkit.gather(*ops)
    assert [b.reference for b in results] == [f"r{i}" for i in range(1000)]
    assert client.scheduler.peak_reads_in_flight <= client.poll_policy.max_concurrent_reads
    assert client.scheduler.pending_count == 0


async def test_gather_orders_results_and_can_return_exceptions(client: AsyncClient) -> None:
    ops = [await client.submit(job("a", 30)), await client.submit(job("fail-b", 5)), await client.submit(job("c", 1))]
    with pytest.raises(OperationFailed):
        await billkit.gather(*ops)
    results = await billkit.gather(*ops, return_exceptions=True)
    assert isinstance(results[1], OperationFailed)
    assert [r.reference for r in (results[0], results[2]) if isinstance(r, Bill)] == ["a", "c"]


async def test_gather_shared_timeout_raises_for_an_unfinished_one(client: AsyncClient) -> None:
    fast, slow = await client.submit(job("f", 5)), await client.submit(job("s", 5000))
    with pytest.raises(OperationTimeout) as info:
        await billkit.gather(fast, slow, timeout=60)
    assert fast.done() and not slow.done()
    assert decode_token(info.value.token)["id"] == slow.id


async def test_gather_across_two_clients() -> None:
    clock = VirtualClock()
    async with (
        AsyncClient("fake", sandbox=FakeSandbox(clock)) as a,
        AsyncClient("fake", sandbox=FakeSandbox(clock)) as b,
    ):
        ops = [await a.submit(job("a", 50)), await b.submit(job("b", 10))]
        assert [x.reference for x in await billkit.gather(*ops)] == ["a", "b"]


async def test_as_completed_yields_in_completion_order(client: AsyncClient) -> None:
    ops = [await client.submit(job(ref, d)) for ref, d in (("slow", 300), ("fast", 5), ("mid", 60))]
    order = []
    async for op in billkit.as_completed(ops):
        order.append((await op).reference)
    assert order == ["fast", "mid", "slow"]


async def test_as_completed_timeout(client: AsyncClient) -> None:
    ops = [await client.submit(job("x", 5000))]
    with pytest.raises(OperationTimeout):
        async for _ in billkit.as_completed(ops, timeout=100):
            pass


async def test_composite_bulk_in_input_order_with_progress(client: AsyncClient) -> None:
    seen: list[tuple[int, int]] = []
    bills = [job(f"b{i}" if i != 2 else "fail-2", duration=10 * (5 - i)) for i in range(5)]
    bulk = await client.submit_many(bills, on_progress=lambda done, total: seen.append((done, total)))
    assert bulk.progress == (0, 5)
    result = await bulk
    assert [i.index for i in result] == [0, 1, 2, 3, 4]
    assert [i.status.value for i in result] == ["succeeded", "succeeded", "failed", "succeeded", "succeeded"]
    assert [i.bill.reference for i in result.succeeded if i.bill] == ["b0", "b1", "b3", "b4"]
    assert isinstance(result[2].error, OperationFailed)
    assert seen[-1] == (5, 5) and seen == sorted(seen)
    again = await client.resume(bulk.token)
    assert isinstance(again, billkit.BulkOperation)
    assert [i.status.value for i in await again] == [i.status.value for i in result]


async def test_wait_for_a_status_and_failing_when_unreachable(client: AsyncClient) -> None:
    op = await client.submit(job("w", 40))
    watched = await client.wait_for(op.id, until=BillStatus.OPEN)
    assert (await watched).status is BillStatus.OPEN
    failing = await client.submit(job("fail-w", 40))
    with pytest.raises(OperationFailed, match="can no longer reach"):
        await (await client.wait_for(failing.id, until=[BillStatus.PAID]))


async def test_webhook_event_finishes_the_future_without_another_read(client: AsyncClient) -> None:
    op = await client.submit(job("hook", 3000))
    await op.wait(timeout=5)
    count = len(reads(client))
    matched = client.handle_webhook_event({"id": op.id, "ref": "hook", "status": "done", "amount": "10.00"})
    assert matched == 1 and op.done()
    assert (await op).reference == "hook"
    assert len(reads(client)) == count


async def test_token_is_versioned_deflated_json_without_secrets(client: AsyncClient) -> None:
    import zlib

    op = await client.submit(job())
    assert op.token.startswith("bk2.")
    packed = base64.urlsafe_b64decode(op.token[4:] + "=" * (-len(op.token[4:]) % 4))
    raw = json.loads(zlib.decompress(packed, -15))
    assert raw == {"v": 2, "provider": "fake", "kind": "job", "id": op.id, "state": {"id": op.id}}
    assert "fake-secret-token" not in op.token and "fake-secret-token" not in repr(op) + repr(client)


@pytest.mark.parametrize(
    ("token", "message"),
    [
        ("", "non-empty"),
        ("!!!", "does not decode"),
        (base64.urlsafe_b64encode(b'{"v": 99}').decode(), "version 99"),
        (encode_token("other", "job", "x", {}), "belongs to 'other'"),
        (base64.urlsafe_b64encode(b'{"v": 1, "provider": "fake"}').decode(), "no valid"),
    ],
)
async def test_bad_tokens_raise_token_error(client: AsyncClient, token: str, message: str) -> None:
    with pytest.raises(TokenError, match=message):
        await client.resume(token)


def test_blocking_twin_over_the_same_core() -> None:
    with billkit.Client("fake", sandbox=True) as client:
        op = client.submit(job("sync", 30))
        assert not op.done()
        bill = op.result(timeout=600)
        assert bill.reference == "sync" and op.done() and op.status is BillStatus.OPEN
        ops = [client.submit(job(f"s{i}", 10 * i + 1)) for i in range(3)]
        assert [b.reference for b in billkit.gather(*ops)] == ["s0", "s1", "s2"]
        order = [
            o.result().reference
            for o in billkit.as_completed([client.submit(job("late", 90)), client.submit(job("early", 2))])
        ]
        assert order == ["early", "late"]
        with pytest.raises(OperationTimeout):
            client.submit(job("slow", 5000)).result(timeout=30)
        bulk = client.submit_many([job("m1", 5), job("fail-m2", 5)])
        assert [i.status.value for i in bulk.result()] == ["succeeded", "failed"]
        assert bulk.progress == (2, 2)


async def test_long_jobs_back_off_with_their_age(client: AsyncClient) -> None:
    op = await client.submit(job("long", duration=3000))
    await op
    assert len(reads(client)) <= 60, "a 50-minute job costs tens of reads"
    assert client.clock.now() - 3000 <= 0.1 * 3000 + 1, "overshoot within ~10 % of the job's age"


def test_poll_policy_next_delay() -> None:
    import random

    policy = PollPolicy(first_delay=2, multiplier=2, max_delay=8, jitter=0, age_factor=0.1, long_max_delay=300)
    rng = random.Random(0)
    assert [policy.next_delay(n, None, rng) for n in (1, 2, 3, 4, 9)] == [2, 4, 8, 8, 8]
    assert policy.next_delay(20, None, rng, age=1000) == 100
    assert policy.next_delay(20, None, rng, age=10_000) == 300
    assert policy.next_delay(3, 42.0, rng) == 42.0
    assert PollPolicy.fixed(5).next_delay(3, 42.0, rng) == 5
    with pytest.raises(ValueError):
        PollPolicy(deadline=0)


# -- waiting is not polling (one poller per client; waiters only wait) ------------------------------------------


class Gate(httpx.AsyncBaseTransport):
    """Passes requests to a sandbox, but holds every status read until the test opens the gate."""

    def __init__(self, inner: FakeSandbox) -> None:
        self.inner = inner
        self.read_in_flight = anyio.Event()
        self.open = anyio.Event()

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        if request.method == "GET":
            self.read_in_flight.set()
            await self.open.wait()
        return await self.inner.handle_async_request(request)


async def test_cancelling_a_waiter_while_a_read_is_in_flight_loses_nothing() -> None:
    clock = VirtualClock()
    box = FakeSandbox(clock)
    gate = Gate(box)
    async with AsyncClient("fake", sandbox=box, transport=gate, poll=PollPolicy(jitter=0)) as client:
        op = await client.submit(job("held", duration=1))
        with anyio.move_on_after(3600) as waiting:  # a caller's own timeout around the await
            async with anyio.create_task_group() as tg:
                tg.start_soon(op.wait)
                await gate.read_in_flight.wait()  # the poller's read is out; now the waiter goes away
                tg.cancel_scope.cancel()
        assert not waiting.cancelled_caught and not op.done()
        gate.open.set()
        bill = await op  # awaiting again finishes: the read was the poller's, not the waiter's
    assert bill.reference == "held" and len(box.received("GET")) >= 1


async def test_a_webhook_wakes_the_waiter_at_once_on_a_clock_that_does_not_move() -> None:
    clock = VirtualClock(autojump=False)  # nothing advances time: only the event can finish the wait
    async with AsyncClient("fake", sandbox=FakeSandbox(clock), poll=PollPolicy.fixed(5)) as client:
        op = await client.submit(job("hook", duration=3000))
        results: list[Bill] = []

        async def wait() -> None:
            results.append(await op)

        async with anyio.create_task_group() as tg:
            tg.start_soon(wait)
            await anyio.wait_all_tasks_blocked()
            assert not results
            client.handle_webhook_event({"id": op.id, "ref": "hook", "status": "done", "amount": "10.00"})
    assert [b.reference for b in results] == ["hook"] and clock.now() == 0


async def test_cancel_from_another_task_wakes_the_waiter_at_once() -> None:
    clock = VirtualClock(autojump=False)
    async with AsyncClient("fake", sandbox=FakeSandbox(clock), poll=PollPolicy.fixed(5)) as client:
        op = await client.submit(job("c", duration=3000))
        errors: list[BaseException] = []

        async def wait() -> None:
            try:
                await op
            except OperationCancelled as exc:
                errors.append(exc)

        async with anyio.create_task_group() as tg:
            tg.start_soon(wait)
            await anyio.wait_all_tasks_blocked()
            op.cancel()
    assert len(errors) == 1 and clock.now() == 0 and reads(client) == []


async def test_operations_progress_without_a_waiter(client: AsyncClient) -> None:
    op = await client.submit(job("bg", duration=10))
    await client.clock.sleep(60)  # not awaiting the operation: the client's poller still follows it
    assert op.done() and op.status is BillStatus.OPEN


async def test_as_completed_over_operations_of_two_clients() -> None:
    clock = VirtualClock()
    async with (
        AsyncClient("fake", sandbox=FakeSandbox(clock)) as a,
        AsyncClient("fake", sandbox=FakeSandbox(clock)) as b,
    ):
        ops = [await a.submit(job("a-slow", 90)), await b.submit(job("b-fast", 5)), await a.submit(job("a-mid", 40))]
        order = [(await op).reference async for op in billkit.as_completed(ops)]
    assert order == ["b-fast", "a-mid", "a-slow"]


async def test_aclose_ends_pending_operations_and_awaiting_them_raises_at_once() -> None:
    clock = VirtualClock(autojump=False)
    client = AsyncClient("fake", sandbox=FakeSandbox(clock))
    op = await client.submit(job("open", duration=3000))
    bulk = await client.submit_many([job("m1", 3000), job("m2", 3000)])
    errors: list[BaseException] = []

    async def wait() -> None:
        try:
            await op
        except OperationCancelled as exc:
            errors.append(exc)

    async with anyio.create_task_group() as tg:
        tg.start_soon(wait)
        await anyio.wait_all_tasks_blocked()
        await client.aclose()  # with a waiter blocked and reads scheduled
    assert len(errors) == 1 and "closed" in str(errors[0])
    before = clock.now()
    with pytest.raises(OperationCancelled):
        await op
    result_error = bulk.exception()
    assert isinstance(result_error, OperationCancelled) and bulk.state is OperationState.CANCELLED
    assert clock.now() == before
    with pytest.raises(billkit.ClientClosedError):
        await client.submit(job("late"))
    assert decode_token(errors[0].token)["id"] == op.id  # type: ignore[attr-defined]


async def test_an_unexpected_exception_in_a_read_fails_that_operation_only(
    client: AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    from tests.fakes import FakeAdapter

    original = FakeAdapter.poll

    def poll(self: FakeAdapter, kind: str, state: Any) -> Any:
        if state["id"] == broken.id:
            raise RuntimeError("a bug below billkit")
        return original(self, kind, state)

    broken = await client.submit(job("broken", duration=5))
    fine = await client.submit(job("fine", duration=5))
    monkeypatch.setattr(FakeAdapter, "poll", poll)
    with pytest.raises(OperationFailed) as info:
        await broken
    assert type(info.value) is OperationFailed and isinstance(info.value.cause, RuntimeError)
    assert (await fine).reference == "fine"


async def test_ten_thousand_children_bulk_cancels_without_recursion_and_accounts_for_every_item(
    client: AsyncClient,
) -> None:
    bills = [job(f"k{i}", duration=3000) for i in range(10_000)]
    seen: list[tuple[int, int]] = []
    bulk = await client.submit_many(bills, on_progress=lambda done, total: seen.append((done, total)))
    assert bulk.progress == (0, 10_000)
    bulk.cancel()
    with pytest.raises(OperationCancelled):
        await bulk
    partial = bulk.partial
    assert partial is not None and len(partial) == 10_000
    assert [i.index for i in partial] == list(range(10_000))
    assert all(isinstance(i.error, OperationCancelled) for i in partial)
    assert bulk.progress == (10_000, 10_000) and client.scheduler.pending_count == 0
    assert reads(client) == []


async def test_a_huge_retry_after_on_a_status_answer_is_capped_by_the_poll_policy() -> None:
    clock = VirtualClock()
    sandbox = FakeSandbox(clock)
    sandbox.retry_after = 86400  # "come back tomorrow" on every pending answer
    policy = PollPolicy(first_delay=2, jitter=0, max_hint=300)
    async with AsyncClient("fake", sandbox=sandbox, poll=policy) as client:
        bill = await (await client.submit(job("h", duration=700)))
        times = reads(client)
    assert bill.status is BillStatus.OPEN and times == [2, 302, 602, 902]


async def test_a_huge_retry_after_on_a_refused_status_read_is_capped_too() -> None:
    clock = VirtualClock()
    faults = Faults(retry_after=86400).once(Fault.RATE_LIMIT, match="GET")
    policy = PollPolicy(first_delay=2, jitter=0, max_hint=300)
    async with AsyncClient("fake", sandbox=FakeSandbox(clock, faults), poll=policy) as client:
        bill = await (await client.submit(job("r", duration=10)))
    assert bill.status is BillStatus.OPEN and clock.now() <= 2 + 300 + 8 and faults.injected == {"rate_limit": 1}

import anyio
import pytest

from billkit.clock import SystemClock, VirtualClock

pytestmark = pytest.mark.anyio


async def test_manual_clock_moves_only_with_advance(anyio_backend: str) -> None:
    clock = VirtualClock(autojump=False)
    woke: list[float] = []

    async def sleeper(delay: float) -> None:
        await clock.sleep(delay)
        woke.append(clock.now())

    async with anyio.create_task_group() as tg:
        for delay in (30, 10, 20):
            tg.start_soon(sleeper, delay)
        await clock.advance(15)
        assert woke == [10]
        await clock.advance(100)
    assert woke == [10, 20, 30]
    assert clock.now() == 115


async def test_autojump_overlaps_concurrent_sleeps(anyio_backend: str) -> None:
    clock = VirtualClock()
    async with anyio.create_task_group() as tg:
        for _ in range(10):
            tg.start_soon(clock.sleep, 60)
    assert clock.now() == 60, "ten parallel 60 s sleeps take 60 virtual seconds, not 600"


async def test_sleep_until_wakes_early_on_event(anyio_backend: str) -> None:
    clock = VirtualClock(autojump=False)
    wake = anyio.Event()
    async with anyio.create_task_group() as tg:
        tg.start_soon(clock.sleep_until, 1000, wake)
        await anyio.lowlevel.checkpoint()
        wake.set()
    assert clock.now() == 0


async def test_system_clock_sleep_until_returns_on_event(anyio_backend: str) -> None:
    clock = SystemClock()
    wake = anyio.Event()
    wake.set()
    with anyio.fail_after(5):
        await clock.sleep_until(clock.now() + 3600, wake)
    assert clock.wall() > 1_600_000_000


def test_advance_refuses_negative() -> None:
    with pytest.raises(ValueError):
        anyio.run(VirtualClock().advance, -1)


def test_a_claimed_part_stays_in_autojump_until_the_claim_is_released() -> None:
    """A wait over several clients claims their pollers before telling any of them: a poller that has not seen
    the wait yet and says "nobody waits for me" (leave) must not drop out, or the others jump time past its reads."""
    import threading

    clock = VirtualClock()
    a, b = threading.Condition(), threading.Condition()
    clock.claim(a)
    clock.claim(b)
    clock.leave(b)  # b's poller, before it saw the wait
    assert set(clock._parts) == {a, b}, "a claimed part does not leave"
    clock.release(b)
    assert set(clock._parts) == {a}, "released: it leaves"
    clock.claim(a)
    clock.release(a)
    assert set(clock._parts) == {a}, "one claim of two released: still in"
    clock.leave(a, force=True)
    assert clock._parts == {}, "a poller thread that ends leaves, claimed or not"
    clock.release(a)  # nothing left to release: no error

"""Service loops: a failing loop is restarted with backoff, counted, and reported as failing
until a new run has lasted `stable` seconds (time injected, so nothing here waits for it)."""

from __future__ import annotations

import asyncio

import pytest
from prometheus_client import REGISTRY

from settlewatch.common.loops import Alarm, Loops

pytestmark = pytest.mark.asyncio(loop_scope="session")


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def restarts(name: str) -> float:
    return REGISTRY.get_sample_value("settlewatch_loop_restarts_total", {"loop": name}) or 0.0


def failing(name: str) -> float | None:
    return REGISTRY.get_sample_value("settlewatch_loop_failing", {"loop": name})


async def test_a_loop_that_fails_is_restarted_and_failing_until_a_run_lasts() -> None:
    clock = Clock()
    loops = Loops(first=0.01, cap=0.02, stable=10, clock=clock)
    runs = 0
    running = asyncio.Event()

    async def flaky() -> None:
        nonlocal runs
        runs += 1
        if runs <= 2:
            raise ConnectionResetError("database went away")
        running.set()
        await asyncio.Event().wait()  # then runs until cancelled

    before = restarts("test-flaky")
    loops.start("test-flaky", flaky)
    try:
        await asyncio.wait_for(running.wait(), 5)
        assert restarts("test-flaky") - before == 2
        assert loops.health() == {"test-flaky": "failing: ConnectionResetError: database went away"}
        assert failing("test-flaky") == 1
        clock.now += 9.9
        assert loops.health()["test-flaky"].startswith("failing")
        clock.now += 0.1  # the third run has lasted 10 s
        assert loops.health() == {"test-flaky": "ok"}
        assert failing("test-flaky") == 0
    finally:
        await loops.stop()
    assert failing("test-flaky") is None  # a stopped loop is not reported


async def test_a_loop_that_keeps_failing_stays_failing_and_backs_off() -> None:
    clock = Clock()
    loops = Loops(first=0.01, cap=0.04, stable=10, clock=clock)
    starts: list[float] = []
    loop = asyncio.get_running_loop()

    async def broken() -> None:
        starts.append(loop.time())
        clock.now += 1  # each run fails after a second of (injected) time
        raise RuntimeError("bug")

    loops.start("test-broken", broken)
    try:
        while len(starts) < 5:
            await asyncio.sleep(0.01)
        assert loops.health()["test-broken"] == "failing: RuntimeError: bug"
    finally:
        await loops.stop()
    gaps = [later - earlier for earlier, later in zip(starts, starts[1:], strict=False)]
    assert gaps[2] >= 0.04 * 0.9  # 0.01, 0.02, then the cap


async def test_a_loop_that_returns_is_restarted_too() -> None:
    loops = Loops(first=0.01, cap=0.01, stable=10)
    runs = 0

    async def returns() -> None:
        nonlocal runs
        runs += 1

    loops.start("test-returns", returns)
    try:
        while runs < 3:
            await asyncio.sleep(0.01)
        assert loops.health()["test-returns"] == "failing: RuntimeError: the loop returned"
    finally:
        await loops.stop()


async def test_a_wake_during_a_round_starts_the_next_round_at_once() -> None:
    alarm = Alarm()
    alarm.wake()  # new work committed while the loop was busy with a round
    async with asyncio.timeout(5):
        await alarm.sleep(60)  # not lost: no waiting
    with pytest.raises(TimeoutError):  # and used up: the next sleep waits
        async with asyncio.timeout(0.2):
            await alarm.sleep(60)


async def test_an_alarm_sleeps_its_seconds_or_until_woken() -> None:
    alarm = Alarm()
    started = asyncio.get_running_loop().time()
    await alarm.sleep(0.05)
    assert asyncio.get_running_loop().time() - started >= 0.05
    asyncio.get_running_loop().call_later(0.05, alarm.wake)
    async with asyncio.timeout(5):
        await alarm.sleep(60)

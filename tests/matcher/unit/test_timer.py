"""SETTLEWATCH_TIMER_INTERVAL: deadlines are checked when the matcher clock enters a new
multiple of the interval, a function of the pulses alone (so a replay checks where the live run
did)."""

from __future__ import annotations

from datetime import timedelta

from settlewatch.matcher.engine import ticks
from tests.matcher.unit.scenario import at

SECOND = timedelta(seconds=1)


def test_with_one_second_every_pulse_a_second_apart_checks() -> None:
    pulses = [at("2026-11-22T10:00:00.300+00:00") + n * SECOND for n in range(5)]
    assert [ticks(a, b, SECOND) for a, b in zip(pulses, pulses[1:], strict=False)] == [True] * 4


def test_a_longer_interval_checks_only_when_the_clock_crosses_one_of_its_multiples() -> None:
    pulses = [at("2026-11-22T10:00:00.300+00:00") + n * SECOND for n in range(11)]
    checked = [b for a, b in zip(pulses, pulses[1:], strict=False) if ticks(a, b, 5 * SECOND)]
    assert checked == [at("2026-11-22T10:00:05.300+00:00"), at("2026-11-22T10:00:10.300+00:00")]


def test_the_first_pulse_always_checks() -> None:
    assert ticks(None, at("2026-11-22T10:00:00+00:00"), 5 * SECOND)

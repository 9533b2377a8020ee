"""The webhook retry policy of SPEC §7, with explicit clocks."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from settlewatch.alerts.core.retry import SCHEDULE, next_step, retry_after

NOW = datetime(2026, 11, 22, 8, 0, tzinfo=UTC)


def test_a_failing_endpoint_is_retried_on_the_spec_schedule_then_failed() -> None:
    delays = []
    for attempt in range(1, 9):
        outcome = next_step(attempt, 500, NOW)
        if outcome.status == "failed":
            break
        assert outcome.status == "retry" and outcome.next_attempt_at is not None
        delays.append(outcome.next_attempt_at - NOW)
    assert delays == [
        timedelta(seconds=5),
        timedelta(minutes=5),
        timedelta(minutes=30),
        timedelta(hours=2),
        timedelta(hours=5),
        timedelta(hours=10),
        timedelta(hours=10),
    ]
    assert next_step(8, None, NOW).status == "failed"  # eight attempts in all
    assert len(SCHEDULE) == 7


@pytest.mark.parametrize("code", [200, 201, 204, 299])
def test_2xx_is_delivered(code: int) -> None:
    assert next_step(3, code, NOW).status == "delivered"


def test_no_answer_is_retried_and_410_disables() -> None:
    assert next_step(1, None, NOW).next_attempt_at == NOW + timedelta(seconds=5)
    assert next_step(1, 410, NOW).status == "disabled"
    assert next_step(1, 302, NOW).status == "retry"  # redirects are not followed


def test_retry_after_on_429_and_503_is_honoured_never_shortened() -> None:
    assert next_step(1, 429, NOW, "120").next_attempt_at == NOW + timedelta(seconds=120)
    later = "Sun, 22 Nov 2026 09:00:00 GMT"
    assert next_step(1, 503, NOW, later).next_attempt_at == NOW + timedelta(hours=1)
    # Shorter than the schedule: the schedule wins; absurdly long: capped at the longest step.
    assert next_step(2, 503, NOW, "1").next_attempt_at == NOW + timedelta(minutes=5)
    assert next_step(1, 429, NOW, "999999").next_attempt_at == NOW + timedelta(hours=10)
    # Only 429 and 503 carry a meaningful Retry-After.
    assert next_step(1, 500, NOW, "120").next_attempt_at == NOW + timedelta(seconds=5)


def test_unreadable_retry_after_is_ignored() -> None:
    assert retry_after("soon", NOW) is None
    assert retry_after(None, NOW) is None
    assert retry_after("Sun, 22 Nov 2026 07:00:00 GMT", NOW) == timedelta(0)  # in the past

from __future__ import annotations

from settlewatch.common.backoff import Backoff


def test_a_service_that_ran_a_while_is_restarted_at_once() -> None:
    backoff = Backoff(first=0.1, cap=30, stable=10)
    assert backoff.next_delay(uptime=3600) == 0.1
    assert backoff.next_delay(uptime=3600) == 0.1


def test_a_crash_loop_backs_off_exponentially_up_to_the_cap() -> None:
    backoff = Backoff(first=0.1, cap=1.0, stable=10)
    delays = [backoff.next_delay(uptime=0.5) for _ in range(6)]
    assert delays == [0.1, 0.2, 0.4, 0.8, 1.0, 1.0]


def test_a_stable_run_resets_the_backoff() -> None:
    backoff = Backoff(first=0.1, cap=30, stable=10)
    for _ in range(5):
        backoff.next_delay(uptime=1)
    assert backoff.next_delay(uptime=11) == 0.1
    assert backoff.next_delay(uptime=1) == 0.2

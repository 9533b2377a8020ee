from __future__ import annotations

from datetime import datetime, timedelta

from settlewatch.matcher.core.stall import StallWatch

T0 = datetime.fromisoformat("2025-11-20T10:00:00+08:00")


def s(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def test_a_clock_stopped_for_over_60s_is_reported_once_and_resolved_when_it_moves() -> None:
    watch = StallWatch("settlewatch")
    assert watch.observe(s(0), wall=s(0)) is None
    assert watch.observe(s(1), wall=s(1)) is None
    assert watch.observe(s(1), wall=s(61)) is None  # exactly 60 s: not yet
    stalled = watch.observe(s(1), wall=s(61.5))
    assert stalled is not None and (stalled.id, stalled.state) == (
        f"pipeline.stalled:settlewatch:{s(1).isoformat()}",
        "open",
    )
    assert stalled.merchant_id is None  # on-call only
    assert watch.observe(s(1), wall=s(120)) is None  # once
    resolved = watch.observe(s(2), wall=s(121))
    assert resolved is not None and resolved.state == "resolved"
    assert watch.observe(s(3), wall=s(122)) is None


def test_a_clock_that_keeps_moving_never_stalls() -> None:
    watch = StallWatch("settlewatch")
    for second in range(0, 600, 5):
        assert watch.observe(s(second), wall=s(second + 30)) is None


def test_no_pulse_ever_counts_as_stalled_from_the_first_look() -> None:
    watch = StallWatch("settlewatch")
    assert watch.observe(None, wall=s(0)) is None
    finding = watch.observe(None, wall=s(61))
    assert finding is not None and finding.state == "open"


def test_a_second_stall_is_a_new_finding_not_a_repeat_of_the_first() -> None:
    # The outbox drops a finding whose id and state it has seen: a second stall must differ.
    watch = StallWatch("settlewatch")
    watch.observe(s(0), wall=s(0))
    first = watch.observe(s(0), wall=s(61))
    first_end = watch.observe(s(1), wall=s(62))
    second = watch.observe(s(1), wall=s(130))
    second_end = watch.observe(s(2), wall=s(131))
    assert first and first_end and second and second_end
    assert first.id == first_end.id != second.id == second_end.id
    assert first.evidence["matcher_clock"] == s(0).isoformat()

"""The reminder rule (SPEC §12): periods from the epoch, alerts a whole period old at the
period's start, one digest per merchant, none after the payment expired."""

from __future__ import annotations

from datetime import datetime, timedelta

from settlewatch.alerts.core.reminders import Open, digests, period_start

DAY = timedelta(days=1)
DUE = datetime.fromisoformat("2026-11-21T16:00+00:00")


def at(text: str) -> datetime:
    return datetime.fromisoformat(text)


def alert(alert_id: str, created: str, merchant: str = "M1") -> Open:
    return Open(alert_id, merchant, at(created), DUE)


def test_periods_start_at_utc_midnight_or_every_multiple_from_the_epoch() -> None:
    assert period_start(at("2026-11-24T07:59+08:00"), DAY) == at("2026-11-23T00:00+00:00")
    assert period_start(at("2026-11-24T08:00+08:00"), DAY) == at("2026-11-24T00:00+00:00")
    assert period_start(at("2026-11-24T05:59+00:00"), timedelta(hours=6)) == at(
        "2026-11-24T00:00+00:00"
    )


def test_a_digest_per_merchant_of_the_alerts_a_whole_period_old() -> None:
    alerts = [
        alert("a", "2026-11-22T23:59+00:00"),
        alert("b", "2026-11-23T00:00+00:00"),  # exactly one period before: reminded
        alert("c", "2026-11-23T00:00:01+00:00"),  # younger: next time
        alert("d", "2026-11-22T10:00+00:00", "M2"),
    ]
    found = digests(alerts, at("2026-11-24T09:30+00:00"), DAY)
    assert [(d.delivery_id, d.alert_ids) for d in found] == [
        ("rem_M1_20261124T000000Z", ["a", "b"]),
        ("rem_M2_20261124T000000Z", ["d"]),
    ]


def test_no_reminder_once_the_payment_expired_and_at_most_500_listed() -> None:
    assert digests([alert("a", "2026-11-22T00:00+00:00")], at("2026-12-22T00:00+00:00"), DAY) == []
    many = [alert(f"x{n:04d}", "2026-11-22T00:00+00:00") for n in range(600)]
    [digest] = digests(many, at("2026-11-24T00:00+00:00"), DAY)
    assert (len(digest.alert_ids), digest.alert_count) == (500, 600)

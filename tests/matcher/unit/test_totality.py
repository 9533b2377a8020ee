"""The core is total: whatever the schema lets through, no exception escapes it.

Issue 11: a schema-valid ``occurred_at`` in year 9999, or an ``instant_sla`` of 9000 years, made
deadline arithmetic raise OverflowError, and the matcher died on the same record forever.
Hypothesis drives the extremes the schema still allows — times at the edges of the allowed span
and of the PRC calendar's coverage, every offset from -12:00 to +14:00, merchant time zones with
DST gaps, every cycle, amounts and fees at their limits, long maintenance windows — through
``deadline()`` and the whole ``Matcher``. Each event is built as JSON and validated by the real
record schema, so only what ingest (or a record written straight to the topic) can deliver is
tried.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from typing import Any
from zoneinfo import ZoneInfo

import orjson
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from settlewatch.common.events import EARLIEST, LATEST, decode_event, encode_event
from settlewatch.common.money import MAX_MINOR
from settlewatch.matcher.core.deadlines import Schedule, deadline
from settlewatch.matcher.core.matcher import Matcher, UnknownMerchant
from settlewatch.matcher.core.model import PartitionState
from tests.matcher.unit.scenario import apply
from tests.support.examples import examples

ZONES = [
    "Asia/Shanghai",
    "UTC",
    "Pacific/Kiritimati",  # +14:00
    "Etc/GMT+12",  # -12:00
    "America/New_York",  # DST gap at 02:00 in March
    "Australia/Lord_Howe",  # a 30-minute DST shift
    "America/Santiago",  # DST gap at midnight
    "Asia/Kathmandu",  # +05:45
]
OFFSETS = [timezone(timedelta(minutes=m)) for m in (-720, -570, 0, 345, 480, 840)]
LAST = LATEST - timedelta(microseconds=1)
# The span's ends, and the edges of the years chinesecalendar knows (a deadline crossing
# from a known year into an unknown one falls back to weekdays).
EDGES = [
    EARLIEST,
    LAST,
    datetime(2004, 1, 1, tzinfo=UTC),
    datetime(2026, 12, 31, 15, 59, 59, tzinfo=UTC),
    datetime(2026, 12, 31, 23, 59, 59, tzinfo=UTC),
    datetime(2027, 1, 1, tzinfo=UTC),
    datetime(2099, 12, 31, 9, 59, tzinfo=UTC),
    datetime(2026, 3, 8, 7, 0, tzinfo=UTC),  # 02:00 in New York: the gap
]


@st.composite
def instants(draw: st.DrawFn) -> datetime:
    base = draw(
        st.one_of(
            st.sampled_from(EDGES),
            st.datetimes(
                min_value=EARLIEST.replace(tzinfo=None),
                max_value=LAST.replace(tzinfo=None),
                timezones=st.just(UTC),
            ),
        )
    )
    return base.astimezone(draw(st.sampled_from(OFFSETS)))


def text(value: datetime) -> str:
    return value.isoformat()


@st.composite
def durations(draw: st.DrawFn) -> str:
    seconds = draw(st.one_of(st.sampled_from([1, 86400 * 30]), st.integers(1, 86400 * 30)))
    return f"PT{seconds}S"


@st.composite
def profiles(draw: st.DrawFn) -> dict[str, Any]:
    cycle = draw(
        st.sampled_from([f"T{n}" for n in range(10)] + [f"D{n}" for n in range(10)] + ["instant"])
    )
    profile: dict[str, Any] = {
        "name": "shop",
        "settlement_bank": "B1",
        "settlement_cycle": cycle,
        "timezone": draw(st.sampled_from(ZONES)),
        "calendar": draw(st.sampled_from(["CN", "weekdays"])),
        "cutoff_time": draw(st.sampled_from(["00:00", "23:59", "02:30", "23:00"])),
        "due_time": draw(st.sampled_from(["00:00", "24:00", "23:59", "02:30"])),
        "mdr_bps": draw(st.sampled_from([0, 1, 60, 10_000])),
        "amount_tolerance_minor": draw(st.sampled_from([0, MAX_MINOR])),
    }
    if draw(st.booleans()):
        profile["fee_cap_minor"] = draw(st.sampled_from([0, 1, MAX_MINOR]))
    if cycle == "instant":
        profile["instant_sla"] = draw(durations())
    return profile


def record(kind: str, body: dict[str, Any]) -> Any:
    """The record as the matcher decodes it; events outside the schema are not tried."""
    try:
        return decode_event(encode_event(kind, orjson.dumps(body)))  # type: ignore[arg-type]
    except ValidationError:
        assume(False)
        raise AssertionError("unreachable") from None


@st.composite
def logs(draw: st.DrawFn) -> list[tuple[str, Any]]:
    """A log: merchant profiles first, then transactions, settlements, windows and ticks."""
    steps: list[tuple[str, Any]] = []
    for merchant_id in ("M1", "M2"):
        body = {"merchant_id": merchant_id, "profile": draw(profiles())}
        steps.append(("event", record("merchant", body)))
    txn_ids = [f"T{n}" for n in range(6)]
    for _ in range(draw(st.integers(1, 12))):
        choice = draw(st.sampled_from(["sale", "sale", "refund", "void", "settle", "window"]))
        if choice in ("sale", "refund", "void"):
            body = {
                "txn_id": draw(st.sampled_from(txn_ids)) if choice != "void" else "V1",
                "merchant_id": draw(st.sampled_from(["M1", "M2"])),
                "terminal_id": "P1",
                "type": choice,
                "amount_minor": draw(st.sampled_from([1, 12800, MAX_MINOR])),
                "currency": draw(st.sampled_from(["CNY", "JPY", "KWD"])),
                "occurred_at": text(draw(instants())),
                "card_fingerprint": "fp",
            }
            if choice != "sale":
                body["original_txn_id"] = draw(st.sampled_from(txn_ids))
            steps.append(("event", record("transaction", body)))
        elif choice == "settle":
            gross = draw(st.sampled_from([1, -1, 12800, MAX_MINOR, -MAX_MINOR]))
            body = {
                "settlement_id": f"S{len(steps)}",
                "merchant_id": "M1",
                "bank_code": "B1",
                "status": draw(st.sampled_from(["settled", "failed", "returned"])),
                "occurred_at": text(draw(instants())),
                "items": [
                    {
                        "txn_id": draw(st.sampled_from(txn_ids)),
                        "gross_minor": gross,
                        "fee_minor": draw(st.sampled_from([0, MAX_MINOR, -MAX_MINOR])),
                        "net_minor": draw(st.sampled_from([0, gross, MAX_MINOR])),
                    }
                ],
            }
            steps.append(("event", record("settlement", body)))
        else:
            starts = draw(instants())
            length = timedelta(seconds=draw(st.integers(1, 31 * 86400)))
            body = {
                "id": f"mw{len(steps)}",
                "bank_code": "B1",
                "starts_at": text(starts),
                "ends_at": text(starts + length),
                "reason": "upgrade",
            }
            steps.append(("event", record("maintenance", body)))
        if draw(st.booleans()):
            steps.append(("tick", draw(instants())))
    steps.append(("tick", draw(st.one_of(instants(), st.just(LAST)))))
    return steps


@settings(max_examples=examples(300), deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(profile=profiles(), occurred_at=instants())
def test_deadline_is_defined_for_every_allowed_time_and_profile(
    profile: dict[str, Any], occurred_at: datetime
) -> None:
    merchant = record("merchant", {"merchant_id": "M1", "profile": profile})
    due = deadline(occurred_at, Schedule.of(merchant["body"].profile))
    assert due.due_at.tzinfo is not None
    assert due.business_date >= occurred_at.astimezone(ZoneInfo(profile["timezone"])).date()


@settings(max_examples=examples(300), deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(log=logs())
def test_no_exception_escapes_the_matcher(log: list[tuple[str, Any]]) -> None:
    matcher = Matcher(PartitionState())
    for step, value in log:
        if step == "tick":
            matcher.tick(value)
            continue
        apply(matcher, value["body"])
    matcher.tick(LAST)  # the last instant a pulse can carry


def test_a_transaction_of_an_unknown_merchant_changes_nothing() -> None:
    matcher = Matcher(PartitionState())
    body = {
        "txn_id": "T1",
        "merchant_id": "M-NONE",
        "terminal_id": "P1",
        "type": "sale",
        "amount_minor": 1,
        "currency": "CNY",
        "occurred_at": "2026-11-20T10:00:00+08:00",
        "card_fingerprint": "fp",
    }
    with pytest.raises(UnknownMerchant):
        apply(matcher, record("transaction", body)["body"])
    assert matcher.state == PartitionState()

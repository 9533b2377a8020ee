"""The 2027 Spring Festival played through the matcher core (SPEC §10), with the year's holiday
table loaded and without it: what a deployment that nobody updated would tell merchants.

The live stack runs on the real clock, so this part runs the same pure core in the demo's
process, on simulated time: a T1 merchant sells every day of the two weeks around the festival,
its bank pays each sale on the real next business day, and the clock ticks every hour.
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from settlewatch.common.events import CalendarYearLoaded, MerchantChanged, MerchantProfile
from settlewatch.matcher.core.matcher import Matcher
from settlewatch.matcher.core.model import PartitionState

__all__ = ["Played", "play"]

BEIJING = ZoneInfo("Asia/Shanghai")
# Illustrative, shaped like the State Council's notices: the official 2027 schedule was not
# published when this was written. Load the real one with `settlewatch calendar load`.
HOLIDAYS_2027 = [date(2027, 1, 1), date(2027, 2, 5), *(date(2027, 2, d) for d in range(8, 13))]
WORKDAYS_2027 = [date(2027, 2, 20)]
FIRST_SALE = date(2027, 2, 1)
DAYS = 14


@dataclass(frozen=True)
class Played:
    loaded: bool
    sales: int
    estimated: int  # payments whose deadline was estimated on weekdays
    overdue: int  # overdue alerts raised
    settled_late: int
    calendar_missing: int


def _year() -> CalendarYearLoaded:
    return CalendarYearLoaded(
        calendar="CN",
        year=2027,
        version=1,
        holidays=HOLIDAYS_2027,
        workdays=WORKDAYS_2027,
        source="illustrative 2027 schedule (demo)",
    )


def _paid_on(sold: date) -> date:
    """The real next business day (the bank knows the holidays)."""
    day = sold + timedelta(days=1)
    while (day.weekday() >= 5 and day not in WORKDAYS_2027) or day in HOLIDAYS_2027:
        day += timedelta(days=1)
    return day


def play(loaded: bool) -> Played:
    matcher = Matcher(PartitionState())
    profile = MerchantProfile.model_validate_json(
        json.dumps({"name": "春节商户", "settlement_bank": "ICBC", "settlement_cycle": "T1"})
    )
    matcher.apply_merchant(MerchantChanged(merchant_id="M-FESTIVAL", profile=profile))
    if loaded:
        matcher.apply_calendar(_year())
    events: list[tuple[datetime, str, dict[str, object]]] = []
    for n in range(DAYS):
        sold = FIRST_SALE + timedelta(days=n)
        txn_id = f"F{n:02d}"
        at = datetime.combine(sold, datetime.min.time(), BEIJING).replace(hour=10)
        txn = {
            "txn_id": txn_id,
            "merchant_id": "M-FESTIVAL",
            "terminal_id": "POS-1",
            "type": "sale",
            "amount_minor": 10_000 + n,
            "currency": "CNY",
            "occurred_at": at,
            "card_fingerprint": f"fp-{n}",
        }
        events.append((at, "transaction", txn))
        paid = datetime.combine(_paid_on(sold), datetime.min.time(), BEIJING).replace(hour=9)
        item = {"txn_id": txn_id, "gross_minor": 10_000 + n, "fee_minor": 60, "net_minor": 9940 + n}
        settlement = {
            "settlement_id": f"S-{txn_id}",
            "merchant_id": "M-FESTIVAL",
            "bank_code": "ICBC",
            "status": "settled",
            "occurred_at": paid,
            "items": [item],
        }
        events.append((paid, "settlement", settlement))
    events.sort(key=lambda e: e[0])
    findings = Counter()  # type: Counter[tuple[str, str]]
    estimated = 0
    clock = datetime.combine(FIRST_SALE, datetime.min.time(), BEIJING)
    end = clock + timedelta(days=DAYS + 10)
    while clock < end:
        clock += timedelta(hours=1)
        while events and events[0][0] <= clock:
            _, kind, body = events.pop(0)
            if kind == "transaction":
                matcher.apply_transaction(body)  # type: ignore[arg-type]
                estimated += (
                    matcher.state.payments[str(body["txn_id"])].deadline_basis == "estimated"
                )
            else:
                matcher.apply_settlement(body)  # type: ignore[arg-type]
        findings.update((f.type, f.state) for f in matcher.tick(clock))
    return Played(
        loaded=loaded,
        sales=DAYS,
        estimated=estimated,
        overdue=findings[("settlement.overdue", "open")],
        settled_late=findings[("settlement.settled_late", "open")],
        calendar_missing=findings[("calendar.missing", "open")],
    )

"""The demo's scenario (SPEC §2 `make demo`), as data: merchants, a maintenance window,
transactions, settlements, and what settlewatch should detect.

A few hundred merchants on five banks with T0, T1, D1 and instant cycles, thousands of sales of
realistic amounts, backdated so that every deadline falls due `due_in` from now. Injected:
one bank stops settling (system upgrade) → overdue payments and a bank incident; another
announces maintenance over the deadlines → nothing overdue there; a failed payout; a short
settlement (an unexpected fee); a duplicate charge; voids at the failing bank (cancelled, never
overdue); a chargeback the acquirer announced and the bank debited, a terminal rent announced
and deducted in the bank's 对账单, and a 扣费 in it nobody announced; a terminal migration the
bank books under the old terminal, a clean one, and a terminal seen in two regions minutes apart
(跳码). Instant merchants pay a
fixed 及时费 per payout on top of the rate (a fee schedule). Everything else is settled on time
with the right amounts. Four more merchants are
paid through a clearing report and the statement of the acquirer's settlement account
(SPEC §9): one payout missing from the statement, one credited short by a fee nobody announced,
two arriving as one collective credit, matched line by line. Deterministic for a seed.
"""

from __future__ import annotations

import math
import random
import zlib
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import orjson

from settlewatch.common.calendar import built_in
from settlewatch.common.events import MerchantProfile, profile_default
from settlewatch.common.fees import FeeSchedule
from settlewatch.demo.files import Batch, Credit, Line, adyen_report, camt053
from settlewatch.matcher.core.deadlines import Schedule, deadline
from settlewatch.matcher.core.matcher import region_jump_subject

__all__ = [
    "BANKS",
    "FAILING_BANK",
    "MAINTENANCE_BANK",
    "Expected",
    "Payouts",
    "Scenario",
    "build",
]

BANKS = ("ICBC", "CCB", "CMB", "BOCOM", "ABC")
FAILING_BANK = "BOCOM"  # stops settling: a core-system upgrade
MAINTENANCE_BANK = "ABC"  # announced a maintenance window over the deadlines
CYCLES = ("instant", "T1", "D1", "T0", "T1")  # merchants 0–4 (one per bank): instant
REGIONS = ("上海", "北京", "深圳", "杭州", "成都", "广州")
SHOPS = ("便利店", "咖啡馆", "面馆", "药房", "书店", "水果店", "火锅店", "花店")
VOIDS = 5
INSTANT_FEE = 200  # fen
DEDUCTIONS_MAPPING = {
    "columns": {
        "txn_id": "业务单号",
        "merchant_id": "商户编号",
        "kind": "类型",
        "gross": "金额",
        "fee": "手续费",
        "value_date": "入账日期",
    },
    "kinds": {"扣费": "fee_debit", "拒付": "chargeback", "消费": "sale"},
}


@dataclass
class Expected:
    """What settlewatch should report for the scenario: alert ids by type, and banks with an
    incident. Anything else it reports was not injected."""

    alerts: dict[str, set[str]] = field(default_factory=lambda: defaultdict(set))
    incident_banks: set[str] = field(default_factory=set)


@dataclass
class Payouts:
    """The files part: a clearing report of four merchants' batches and the statement of the
    acquirer's settlement account, and what each payout should become, by its reference."""

    account_id: str
    account: dict[str, Any]
    report: bytes
    statement: bytes
    value_date: date
    outcomes: dict[str, str] = field(default_factory=dict)  # reference → status


@dataclass
class Scenario:
    run: str
    due_at: datetime  # when the deadlines fall due
    merchants: dict[str, dict[str, Any]] = field(default_factory=dict)  # id → profile body
    terminals: dict[str, dict[str, Any]] = field(default_factory=dict)  # id → PUT body
    windows: list[dict[str, Any]] = field(default_factory=list)
    transactions: list[dict[str, Any]] = field(default_factory=list)
    settlements: list[dict[str, Any]] = field(default_factory=list)
    expected: Expected = field(default_factory=Expected)
    injected: list[tuple[str, str]] = field(default_factory=list)  # (problem, what to expect)
    payouts: Payouts | None = None
    deductions: bytes | None = None  # the bank's 对账单 of debits (DEDUCTIONS_MAPPING)
    announced: list[str] = field(default_factory=list)  # debits the matcher must know first


def _amount(rng: random.Random) -> int:
    """A card payment in fen: log-normal around ¥80, from a few yuan to a few thousand."""
    return max(300, min(500_000, int(rng.lognormvariate(math.log(8000), 0.9)) // 10 * 10))


def _profile(rng: random.Random, bank: str, cycle: str, due: datetime, n: int) -> dict[str, Any]:
    profile: dict[str, Any] = {
        "name": f"{rng.choice(REGIONS)}{rng.choice(SHOPS)}{n:03d}号店",
        "settlement_bank": bank,
        "settlement_cycle": cycle,
        "mdr_bps": rng.choice((38, 55, 60)),
        "locale": "zh-CN" if rng.random() < 0.8 else "en",
    }
    if cycle == "instant":
        profile["instant_sla"] = "PT30M"
        # 及时费: ¥2.00 per instant payout on top of the rate (SPEC §11)
        rate = profile.pop("mdr_bps")
        rules = [{"channel": "instant", "rate_bps": rate, "fixed_minor": INSTANT_FEE}]
        profile["fee_schedule"] = [{"effective_from": "2020-01-01", "rules": rules}]
    else:
        local = due.astimezone(ZoneInfo(profile_default("timezone")))
        profile["due_time"] = f"{local:%H:%M}"  # deadlines fall due at the demo's due time
    return profile


def _occurred_times(
    rng: random.Random, profile: dict[str, Any], due: datetime, now: datetime, count: int
) -> list[datetime]:
    """`count` times in the last two weeks whose deadline under `profile` is exactly `due`."""
    schedule = Schedule.of(MerchantProfile.model_validate_json(orjson.dumps(profile)))
    if schedule.cycle == "instant":
        assert schedule.instant_sla is not None
        start = due - schedule.instant_sla
        return [start - timedelta(seconds=rng.uniform(0, 10)) for _ in range(count)]
    found: list[datetime] = []
    for days_back in range(0, 15):
        for _ in range(40):
            moment = now - timedelta(days=days_back, minutes=rng.uniform(10, 24 * 60))
            if moment < now - timedelta(minutes=10) and deadline(moment, schedule).due_at == due:
                found.append(moment)
        if len(found) >= count:
            break
    return sorted(rng.sample(found, count)) if len(found) >= count else []


def build(
    now: datetime,
    *,
    due_in: timedelta,
    merchants: int = 300,
    per_merchant: int = 10,
    seed: int = 7,
    webhook_url: str | None = None,
    webhook_secret: str | None = None,
) -> Scenario:
    """The scenario for a demo starting at `now` whose deadlines fall due `due_in` later (on a
    whole minute: due times are local HH:MM). Every 7th merchant (so on every bank) gets
    `webhook_url`."""
    rng = random.Random(seed)
    run = f"{now:%H%M%S}"
    due = (now + due_in).replace(second=0, microsecond=0) + timedelta(minutes=1)
    scenario = Scenario(run=run, due_at=due)
    lines: Lines = defaultdict(list)
    sales: list[tuple[str, dict[str, Any]]] = []  # (bank, sale)
    for m in range(merchants):
        merchant_id = f"D{run}-M{m:03d}"
        bank = BANKS[m % len(BANKS)]
        cycle = CYCLES[(m // len(BANKS)) % len(CYCLES)]
        profile = _profile(rng, bank, cycle, due, m)
        times = _occurred_times(rng, profile, due, now, per_merchant)
        if not times:  # no day of the last two weeks falls due then (a long holiday): instant
            profile = _profile(rng, bank, "instant", due, m)
            times = _occurred_times(rng, profile, due, now, per_merchant)
        if webhook_url and webhook_secret and m % 7 == 0:
            profile["webhook"] = {"url": webhook_url, "secret": webhook_secret}
        scenario.merchants[merchant_id] = profile
        for i, occurred in enumerate(times):
            sale = _sale(rng, f"D{run}-T{m:03d}{i:02d}", merchant_id, f"POS-{m:03d}-{i % 3}")
            sale["occurred_at"] = occurred.isoformat()
            scenario.transactions.append(sale)
            sales.append((bank, sale))
    _inject(scenario, rng, sales, lines, now)
    for (bank, merchant_id), items in sorted(lines.items()):
        scenario.settlements.append(
            {
                "settlement_id": f"D{run}-S-{merchant_id[-4:]}",
                "merchant_id": merchant_id,
                "bank_code": bank,
                "status": "settled",
                "occurred_at": now.isoformat(),
                "value_date": f"{now:%Y-%m-%d}",
                "items": items,
            }
        )
    rng.shuffle(scenario.settlements)  # banks' files arrive interleaved, not bank by bank
    _payouts(scenario, rng, now, webhook_url, webhook_secret)
    return scenario


Lines = dict[tuple[str, str], list[dict[str, Any]]]  # (bank, merchant) → settlement lines


def _sale(rng: random.Random, txn_id: str, merchant_id: str, terminal_id: str) -> dict[str, Any]:
    return {
        "txn_id": txn_id,
        "merchant_id": merchant_id,
        "terminal_id": terminal_id,
        "type": "sale",
        "amount_minor": _amount(rng),
        "currency": "CNY",
        "card_fingerprint": f"fp-{rng.getrandbits(48):012x}",
        "rrn": f"{rng.getrandbits(36):012d}"[-12:],
        "stan": f"{rng.randrange(1_000_000):06d}",
        "auth_code": f"{rng.randrange(1_000_000):06d}",
        "region": _region(terminal_id),
    }


def _region(terminal_id: str) -> str:
    """Where a terminal stands: one region each, so only an injected 跳码 is a region jump."""
    return REGIONS[zlib.crc32(terminal_id.encode()) % len(REGIONS)]


def _line(sale: dict[str, Any], merchant: dict[str, Any]) -> dict[str, Any]:
    """The settlement line that pays `sale` in full, less the merchant's fee."""
    profile = MerchantProfile.model_validate_json(orjson.dumps(merchant))
    local = datetime.fromisoformat(sale["occurred_at"]).astimezone(ZoneInfo(profile.timezone))
    channel = "instant" if profile.settlement_cycle == "instant" else "scheduled"
    applied = FeeSchedule.of(profile).applied(sale["amount_minor"], local.date(), None, channel)
    assert applied is not None, "the demo's schedules have a rule for everything"
    fee = applied.fee_minor
    return {
        "txn_id": sale["txn_id"],
        "gross_minor": sale["amount_minor"],
        "fee_minor": fee,
        "net_minor": sale["amount_minor"] - fee,
    }


def _inject(
    scenario: Scenario,
    rng: random.Random,
    sales: list[tuple[str, dict[str, Any]]],
    lines: Lines,
    now: datetime,
) -> None:
    """The problems the demo must detect, and what detecting them looks like."""
    failing = [sale for bank, sale in sales if bank == FAILING_BANK]
    _failing_bank(scenario, failing, now)
    _maintenance(scenario)
    paying = [(b, s) for b, s in sales if b not in (FAILING_BANK, MAINTENANCE_BANK)]
    failed, short = _paid_but(scenario, paying, lines, now)
    others = [(b, s) for b, s in paying if s not in (failed, short)]
    _charged_twice(scenario, rng, others, lines)
    _money_out(scenario, others, lines, now)
    _migrations(scenario, others, lines)
    _region_jump(scenario, rng, others, lines, now)
    scenario.injected.append(
        ("instant merchants pay a fixed ¥2.00 及时费 per payout", "no false amount mismatch")
    )


def _failing_bank(scenario: Scenario, sales: list[dict[str, Any]], now: datetime) -> None:
    """The failing bank settles nothing; a few of its sales are voided (never overdue)."""
    for n, sale in enumerate(sales[:VOIDS]):
        scenario.transactions.append(
            sale
            | {
                "txn_id": f"D{scenario.run}-V{n:02d}",
                "type": "void",
                "original_txn_id": sale["txn_id"],
                "occurred_at": (now - timedelta(minutes=5)).isoformat(),
            }
        )
    for sale in sales[VOIDS:]:
        scenario.expected.alerts["settlement.overdue"].add(f"settlement.overdue:{sale['txn_id']}")
    scenario.expected.incident_banks.add(FAILING_BANK)
    scenario.injected += [
        (
            f"{FAILING_BANK} stops settling (system upgrade)",
            f"{len(sales) - VOIDS} overdue payments, a bank incident",
        ),
        (f"{VOIDS} voids at {FAILING_BANK}", "cancelled: never overdue"),
    ]


def _maintenance(scenario: Scenario) -> None:
    """The maintenance bank announced a window over the deadlines and pays after it."""
    scenario.windows.append(
        {
            "bank_code": MAINTENANCE_BANK,
            "starts_at": (scenario.due_at - timedelta(minutes=30)).isoformat(),
            "ends_at": (scenario.due_at + timedelta(hours=1)).isoformat(),
            "reason": "核心系统升级 / core system upgrade",
        }
    )
    scenario.injected.append(
        (
            f"{MAINTENANCE_BANK} announces maintenance",
            "its merchants told; deadlines move past it: nothing overdue",
        )
    )


def _paid_but(
    scenario: Scenario, paying: list[tuple[str, dict[str, Any]]], lines: Lines, now: datetime
) -> tuple[dict[str, Any], dict[str, Any]]:
    """The other banks pay on time, in full, but for a failed payout and a short settlement;
    returns those two sales."""
    run, expected = scenario.run, scenario.expected
    failed_bank, failed = paying[0]
    short_bank, short = paying[1]
    for bank, sale in paying:
        line = _line(sale, scenario.merchants[sale["merchant_id"]])
        if sale is short:  # an unexpected ¥2.00 fee
            line = line | {
                "fee_minor": line["fee_minor"] + 200,
                "net_minor": line["net_minor"] - 200,
            }
        if sale is not failed:
            lines[(bank, sale["merchant_id"])].append(line)
    scenario.settlements.append(
        {
            "settlement_id": f"D{run}-S-FAILED",
            "merchant_id": failed["merchant_id"],
            "bank_code": failed_bank,
            "status": "failed",
            "occurred_at": now.isoformat(),
            "failure_reason": "收款账户状态异常 / payee account frozen",
            "items": [
                {
                    "txn_id": failed["txn_id"],
                    "gross_minor": failed["amount_minor"],
                    "fee_minor": 0,
                    "net_minor": failed["amount_minor"],
                }
            ],
        }
    )
    expected.alerts["settlement.failed"].add(
        f"settlement.failed:{failed['txn_id']}:D{run}-S-FAILED"
    )
    short_settlement = f"D{run}-S-{short['merchant_id'][-4:]}"
    expected.alerts["settlement.amount_mismatch"].add(
        f"settlement.amount_mismatch:{short['txn_id']}:{short_settlement}"
    )
    scenario.injected += [
        (f"failed payout at {failed_bank} (打款失败)", "settlement.failed"),
        (f"short settlement at {short_bank} (unexpected ¥2.00 fee)", "settlement.amount_mismatch"),
    ]
    return failed, short


def _charged_twice(
    scenario: Scenario, rng: random.Random, paid: list[tuple[str, dict[str, Any]]], lines: Lines
) -> None:
    """A card charged twice at an instant merchant of a paying bank (duplicates are compared
    within an hour of the clock, so the pair is recent); both charges are settled."""
    bank, first = next(
        (b, s)
        for b, s in paid
        if scenario.merchants[s["merchant_id"]]["settlement_cycle"] == "instant"
    )
    second = first | {
        "txn_id": f"D{scenario.run}-DUP",
        "occurred_at": (
            datetime.fromisoformat(first["occurred_at"]) + timedelta(minutes=2)
        ).isoformat(),
        "rrn": f"{rng.getrandbits(36):012d}"[-12:],
        "stan": f"{rng.randrange(1_000_000):06d}",
    }
    scenario.transactions.append(second)
    lines[(bank, first["merchant_id"])].append(
        _line(second, scenario.merchants[first["merchant_id"]])
    )
    pair = ":".join(sorted((first["txn_id"], second["txn_id"])))
    scenario.expected.alerts["transaction.duplicate_suspected"].add(
        f"transaction.duplicate_suspected:{pair}"
    )
    scenario.injected.append((f"duplicate charge at {bank} (重复扣款)", "duplicate suspected"))


def _money_out(
    scenario: Scenario, paid: list[tuple[str, dict[str, Any]]], lines: Lines, now: datetime
) -> None:
    """At a merchant paid on a cycle (an instant one if the days allow none): a chargeback the
    acquirer announces and the bank debits with the settlement; a terminal rent announced and a
    扣费 nobody announced, both deducted in the bank's 对账单."""
    run = scenario.run
    scheduled = [
        (b, s)
        for b, s in paid
        if scenario.merchants[s["merchant_id"]]["settlement_cycle"] != "instant"
    ]
    bank, sale = (scheduled or paid)[0]
    merchant_id, amount = sale["merchant_id"], sale["amount_minor"]
    recent = (now - timedelta(minutes=3)).isoformat()
    chargeback = sale | {
        "txn_id": f"D{run}-CB",
        "type": "chargeback",
        "original_txn_id": sale["txn_id"],
        "occurred_at": recent,
    }
    rent = {
        "txn_id": f"D{run}-RENT",
        "merchant_id": merchant_id,
        "terminal_id": sale["terminal_id"],
        "type": "fee_debit",
        "amount_minor": 5000,
        "currency": "CNY",
        "occurred_at": recent,
        "card_fingerprint": "-",
    }
    scenario.transactions += [chargeback, rent]
    scenario.announced += [chargeback["txn_id"], rent["txn_id"]]
    lines[(bank, merchant_id)].append(
        {
            "txn_id": chargeback["txn_id"],
            "gross_minor": -amount,
            "fee_minor": 0,
            "net_minor": -amount,
        }
    )
    day = f"{now:%Y-%m-%d}"
    scenario.deductions = (
        "业务单号,商户编号,类型,金额,手续费,入账日期\n"
        f"{rent['txn_id']},{merchant_id},扣费,-50.00,0,{day}\n"
        f"D{run}-DATA,{merchant_id},扣费,-30.00,0,{day}\n"
    ).encode()
    scenario.injected += [
        (
            f"chargeback at {bank} announced, debited by the bank (拒付)",
            "matched: nothing to report",
        ),
        ("terminal rent announced, deducted in the 对账单", "matched: nothing to report"),
        ("a ¥30.00 扣费 in the 对账单 nobody announced", "fee.unexpected_deduction"),
    ]


def _migrations(scenario: Scenario, paid: list[tuple[str, dict[str, Any]]], lines: Lines) -> None:
    """Two merchants replaced a terminal; their last sale was taken on the new one. One bank
    books that sale under the old terminal (账务不一致), the other under the new one (a clean
    migration)."""
    merchants = sorted({s["merchant_id"] for _, s in paid})[-2:]
    for merchant_id, booked_under_old in zip(merchants, (True, False), strict=False):
        bank, sale = [(b, s) for b, s in paid if s["merchant_id"] == merchant_id][-1]
        old, new = sale["terminal_id"], f"{sale['terminal_id']}-NEW"
        scenario.terminals[old] = {"merchant_id": merchant_id, "region": _region(old)}
        scenario.terminals[new] = {
            "merchant_id": merchant_id,
            "region": _region(old),
            "replaces": old,
        }
        sale |= {"terminal_id": new, "region": _region(old)}  # the same shop, a new terminal
        [line] = [x for x in lines[(bank, merchant_id)] if x["txn_id"] == sale["txn_id"]]
        line["terminal_id"] = old if booked_under_old else new
        if booked_under_old:
            profile = MerchantProfile.model_validate_json(
                orjson.dumps(scenario.merchants[merchant_id])
            )
            day = deadline(
                datetime.fromisoformat(sale["occurred_at"]), Schedule.of(profile)
            ).business_date
            scenario.expected.alerts["terminal.books_mismatch"].add(
                f"terminal.books_mismatch:{merchant_id}:{day.isoformat()}:{old}:{new}"
            )
    scenario.injected += [
        ("a terminal migration the bank books under the old terminal", "terminal.books_mismatch"),
        ("a clean terminal migration", "nothing to report"),
    ]


def _region_jump(
    scenario: Scenario,
    rng: random.Random,
    paid: list[tuple[str, dict[str, Any]]],
    lines: Lines,
    now: datetime,
) -> None:
    """跳码: a registered terminal takes a sale where it stands and, three minutes later, one in
    another region; both are settled."""
    bank, sale = paid[len(paid) // 2]  # not a migrated merchant (the last two)
    terminal_id, merchant_id = sale["terminal_id"], sale["merchant_id"]
    home = _region(terminal_id)
    away = next(r for r in REGIONS if r != home)
    scenario.terminals[terminal_id] = {"merchant_id": merchant_id, "region": home}
    pair = []
    for n, (region, ago) in enumerate(((home, 6), (away, 3))):
        jump = _sale(rng, f"D{scenario.run}-JUMP{n}", merchant_id, terminal_id)
        jump |= {"region": region, "occurred_at": (now - timedelta(minutes=ago)).isoformat()}
        scenario.transactions.append(jump)
        lines[(bank, merchant_id)].append(_line(jump, scenario.merchants[merchant_id]))
        pair.append(jump)
    day = (
        datetime.fromisoformat(pair[1]["occurred_at"])
        .astimezone(ZoneInfo(profile_default("timezone")))
        .date()
    )
    subject = region_jump_subject(merchant_id, terminal_id, day, (home, away))
    scenario.expected.alerts["terminal.region_jump"].add(f"terminal.region_jump:{subject}")
    scenario.injected.append(
        (
            f"跳码: terminal {terminal_id} in {home}, then {away} 3 minutes later",
            "terminal.region_jump",
        )
    )


def _business_days_back(today: date, n: int) -> date:
    day = today
    for _ in range(n):
        day -= timedelta(days=1)
        while not built_in("CN").is_business_day(day):
            day -= timedelta(days=1)
    return day


def _payouts(
    scenario: Scenario,
    rng: random.Random,
    now: datetime,
    webhook_url: str | None,
    webhook_secret: str | None,
) -> None:
    """Four instant merchants (a two-week SLA, so their sales are never overdue here) sold the
    day before a payout two business days ago — its grace is over. The report pays each its
    batch; the statement shows one short by ¥2.00, two in one collective credit, one not at all."""
    run = scenario.run
    beijing = ZoneInfo(profile_default("timezone"))
    value_date = _business_days_back(now.astimezone(beijing).date(), 2)
    sold = datetime.combine(value_date - timedelta(days=1), time(10), beijing)
    batches = []
    for k, label in enumerate("ABCD"):
        merchant_id = f"D{run}-P{k}"
        profile = _profile(rng, "ICBC", "instant", scenario.due_at, 900 + k) | {
            "instant_sla": "P14D"
        }
        if webhook_url and webhook_secret:
            profile["webhook"] = {"url": webhook_url, "secret": webhook_secret}
        scenario.merchants[merchant_id] = profile
        lines = []
        for i in range(3):
            sale = _sale(rng, f"D{run}-P{k}T{i}", merchant_id, f"POS-P{k}")
            sale["occurred_at"] = (sold + timedelta(minutes=7 * i)).isoformat()
            scenario.transactions.append(sale)
            fee = _line(sale, profile)["fee_minor"]
            lines.append(Line(sale["txn_id"], sale["amount_minor"], fee, sold))
        batches.append(Batch(f"{run}{k}", f"PO-{run}-{label}", value_date, lines))
    missing, short, first, second = batches
    credits = [
        Credit(short.net_minor - 200, value_date, f"ACQ {short.reference}"),
        Credit(
            first.net_minor + second.net_minor,
            value_date,
            "ACQ COLLECTIVE",
            details=[(b.net_minor, b.reference) for b in (first, second)],
        ),
    ]
    iban = f"CN00DEMO{run}"
    scenario.payouts = Payouts(
        account_id=f"D{run}-ACQ",
        account={"iban": iban, "currency": "CNY", "bank_code": "ICBC", "owner": "acquirer"},
        report=adyen_report(batches),
        statement=camt053(iban, f"D{run}-STMT", credits),
        value_date=value_date,
        outcomes={
            missing.reference: "missing",
            short.reference: "short",
            first.reference: "arrived",
            second.reference: "arrived",
        },
    )
    scenario.injected += [
        (f"payout {missing.reference} not on the bank statement (未到账)", "payout.missing"),
        (f"payout {short.reference} credited ¥2.00 short (unannounced fee)", "payout.short"),
        (
            f"payouts {first.reference} and {second.reference} in one collective credit",
            "both arrived, matched line by line",
        ),
    ]

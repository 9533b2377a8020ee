"""The deadline fast path (timer_sql) decides exactly what the core decides: the same statuses,
the same payments (as JSON documents, times in their offsets), the same findings, byte for byte
as JSON values; and a mutation of its rules (`<` for `<=`, calendar days for the exact expiry)
is caught."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from typing import Any

import asyncpg
import orjson
import pytest
import pytest_asyncio

from settlewatch.common.db import create_engine
from settlewatch.common.events import decode_finding
from settlewatch.matcher import store as store_module
from settlewatch.matcher.codec import (
    FACT_COLUMNS,
    PAYMENT_SELECT,
    PAYMENTS_FROM,
    STATE_COLUMNS,
    finding_to_json,
    payment_from_row,
    payment_rows,
)
from settlewatch.matcher.core.matcher import Matcher
from settlewatch.matcher.core.model import PartitionState
from settlewatch.matcher.store import MatcherStore
from settlewatch.matcher.timer_sql import FIRE_OVERDUE, FIRE_PLAN
from tests.matcher.unit.scenario import apply, at, merchant, paid, sale, settlement
from tests.support.urls import asyncpg_dsn

pytestmark = pytest.mark.asyncio(loop_scope="session")

# T1 in China; the expiry of G crosses New York's change from summer time (2 Nov 2025), which
# is the database session's zone: an interval of 30 calendar days there is 721 hours.
BEFORE = at("2025-10-20T12:00+08:00")
NOW = at("2025-11-22T00:00+08:00")  # C's deadline to the second; G's expiry too


def setup(matcher: Matcher) -> None:
    for event in (
        merchant("M1"),
        sale("A", "2025-10-01T10:00+08:00", region="北京"),  # overdue before; expires by NOW
        sale("B", "2025-10-02T10:00+08:00"),  # failed twice at once; expires by NOW
        *(
            settlement(
                f"S-B{n}",
                [("B", 12800, 77, 12723)],
                status="failed",
                reason=reason,
                occurred="2025-10-09T09:00+08:00",
            )
            for n, reason in ((1, "account closed"), (2, "name mismatch"))
        ),
        sale("G", "2025-10-21T10:00+08:00"),  # pending: overdue and expired at one tick
        sale("F", "2025-11-01T10:00+08:00"),  # its deadline moved once by a calendar
        sale("C", "2025-11-20T10:00+08:00"),  # due at NOW exactly
        sale("D", "2025-11-21T10:00+08:00"),  # still pending at NOW
        sale("E", "2025-11-20T11:00+08:00"),
        paid("E"),
    ):
        apply(matcher, event)
    matcher.tick(BEFORE)
    matcher.state.payments["F"].deadline_moves = 1


@pytest.fixture
def reference() -> Iterator[tuple[dict[str, Any], dict[str, Any]]]:
    """What the core alone decides at NOW: payment documents and findings by key."""
    matcher = Matcher(PartitionState())
    setup(matcher)
    findings = matcher.tick(NOW)
    payments = {t: orjson.loads(orjson.dumps(p)) for t, p in matcher.state.payments.items()}
    statuses = {t: p["status"] for t, p in payments.items()}
    assert statuses == {
        "A": "expired",
        "B": "expired",
        "G": "expired",
        "F": "overdue",
        "C": "overdue",
        "D": "pending",
        "E": "settled",
    }
    yield payments, {f.key: finding_to_json(f) for f in findings}


@pytest_asyncio.fixture(loop_scope="session")
async def new_york(database_url: str) -> AsyncIterator[str]:
    conn = await asyncpg.connect(asyncpg_dsn(database_url))
    name = await conn.fetchval("SELECT current_database()")
    await conn.execute(f"ALTER DATABASE \"{name}\" SET timezone = 'America/New_York'")
    await conn.close()
    yield database_url


async def fast_path(database_url: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """The same log through the store: saved, nothing kept in memory, NOW decided by the core
    (its working set: empty) and the database in rounds of two."""
    engine = create_engine(database_url)
    try:
        store = MatcherStore(engine)
        [owned] = await store.claim([0])
        matcher = Matcher(owned.state)
        setup(matcher)
        await store.save([owned], {}, {})
        matcher.evict(0)
        assert matcher.tick(NOW) == []
        findings: dict[str, Any] = {}
        while True:
            fired = await store.fire_due(owned, NOW, limit=2)
            for finding in fired.findings:
                decode_finding(finding.value)  # as the alerts service reads the findings topic
            findings |= {f.key: orjson.loads(f.value) for f in fired.findings}
            if not fired.full:
                break
        conn = await asyncpg.connect(asyncpg_dsn(database_url))
        rows = await conn.fetch(f"SELECT {PAYMENT_SELECT} FROM {PAYMENTS_FROM}")
        await conn.close()
        stored = map(payment_from_row, rows)
        return {p.txn_id: orjson.loads(orjson.dumps(p)) for p in stored}, findings
    finally:
        await engine.dispose()


async def test_the_database_decides_what_the_core_decides(
    new_york: str, reference: tuple[dict[str, Any], dict[str, Any]]
) -> None:
    payments, findings = await fast_path(new_york)
    expected_payments, expected_findings = reference
    assert payments == expected_payments
    assert findings == expected_findings
    assert sorted(findings) == [
        "settlement.expired:A#open",
        "settlement.expired:B#open",
        "settlement.expired:G#open",
        "settlement.overdue:C#open",
        "settlement.overdue:F:2#open",
        "settlement.overdue:G#open",
    ]
    # The bank's last word: of two at once, the greater id (S-B2).
    assert findings["settlement.expired:B#open"]["evidence"]["failure_reason"] == "name mismatch"


def mutants() -> Iterator[tuple[str, str, str]]:
    yield "FIRE_OVERDUE", "due_at <= $2::timestamptz", "due_at < $2::timestamptz"
    yield "FIRE_EXPIRED", "interval '2592000 seconds'", "interval '30 days'"
    yield "FIRE_EXPIRED", 'COLLATE "C" DESC', 'COLLATE "C" ASC'


@pytest.mark.parametrize(("statement", "rule", "mutant"), list(mutants()))
async def test_a_mutation_of_the_sql_rules_is_caught(
    new_york: str,
    reference: tuple[dict[str, Any], dict[str, Any]],
    monkeypatch: pytest.MonkeyPatch,
    statement: str,
    rule: str,
    mutant: str,
) -> None:
    original = getattr(store_module, statement)
    assert rule in original
    monkeypatch.setattr(store_module, statement, original.replace(rule, mutant))
    assert await fast_path(new_york) != reference


async def test_a_round_reads_its_payments_by_key_not_the_whole_day(database_url: str) -> None:
    """A round finds its due payments by the deadline index, then each by its key: priced as
    random reads, those probes looked dearer than hashing the whole day's table, which a round
    then scanned every time (1 M due at once: 138 s; read by key: 78 s)."""
    matcher = Matcher(PartitionState())
    apply(matcher, merchant("M1"))
    for i in range(3000):
        apply(matcher, sale(f"K{i:04}", "2030-01-07T10:00+08:00"))
    rows = [payment_rows(p, 77) for p in matcher.state.payments.values()]  # a partition alone
    conn = await asyncpg.connect(asyncpg_dsn(database_url))
    try:
        for table in ("matcher_payments", "matcher_payment_states"):
            await conn.execute(
                f"CREATE TABLE {table}_d20300107 PARTITION OF {table} "
                "FOR VALUES FROM ('2030-01-07') TO ('2030-01-08')"
            )
        facts, states = [f for f, _ in rows], [s for _, s in rows]
        await conn.copy_records_to_table("matcher_payments", records=facts, columns=FACT_COLUMNS)
        await conn.copy_records_to_table(
            "matcher_payment_states", records=states, columns=STATE_COLUMNS
        )
        await conn.execute("ANALYZE matcher_payments_d20300107, matcher_payment_states_d20300107")
        now = at("2030-02-01T00:00+08:00")
        async with conn.transaction():
            await conn.execute(FIRE_PLAN)
            plan = "\n".join(
                r[0] for r in await conn.fetch(f"EXPLAIN {FIRE_OVERDUE}", 77, now, "", "", 100)
            )
    finally:
        await conn.execute(
            "DROP TABLE matcher_payments_d20300107, matcher_payment_states_d20300107"
        )
        await conn.close()
    assert "Hash Join" not in plan and "Merge Join" not in plan, plan
    assert "matcher_payment_states_d20300107_pkey" in plan, plan  # the update, by key
    assert "matcher_payments_d20300107_pkey" in plan, plan  # the facts it quotes, by key

"""The matcher store against the real database."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from datetime import UTC, date, datetime, timedelta

import asyncpg
import pytest
import pytest_asyncio

from settlewatch.common.db import create_engine
from settlewatch.matcher.core.matcher import Matcher
from settlewatch.matcher.core.model import AWAITING_DEADLINE, AWAITING_EXPIRY, Finding
from settlewatch.matcher.store import (
    NEVER,
    LostOwnership,
    MatcherStore,
    Owned,
    StoredIds,
    forget_consumed_offsets,
)
from tests.matcher.unit.scenario import Event, apply, at, merchant, paid, sale
from tests.support.urls import asyncpg_dsn

pytestmark = pytest.mark.asyncio(loop_scope="session")


@pytest_asyncio.fixture(loop_scope="session")
async def store(database_url: str) -> AsyncIterator[MatcherStore]:
    engine = create_engine(database_url)
    yield MatcherStore(engine)
    await engine.dispose()


async def test_a_partition_claimed_by_a_newer_owner_cannot_be_saved_by_the_old_one(
    store: MatcherStore,
) -> None:
    [old] = await store.claim([3])
    [new] = await store.claim([3])  # another instance took the partition over
    assert new.generation == old.generation + 1
    await store.save([new], {}, {("t", 3): 10})
    with pytest.raises(LostOwnership):
        await store.save([old], {}, {("t", 3): 99})
    assert await store.offsets(["t"], [3]) == {("t", 3): 10}  # the zombie changed nothing


async def test_a_batch_with_one_partition_lost_writes_none_of_its_partitions(
    store: MatcherStore,
) -> None:
    old, kept = await store.claim([5, 6])
    await store.claim([5])  # another instance took partition 5 over, not 6
    with pytest.raises(LostOwnership, match=r"\[5\]"):
        await store.save([old, kept], {}, {("t", 5): 7, ("t", 6): 8})
    assert await store.offsets(["t"], [5, 6]) == {}


async def test_forgetting_offsets_makes_the_matcher_start_from_the_beginning(
    database_url: str,
) -> None:
    conn = await asyncpg.connect(asyncpg_dsn(database_url))
    try:
        await conn.execute("INSERT INTO matcher_offsets VALUES ('x.transactions', 0, 42)")
        await forget_consumed_offsets(database_url)
        assert await conn.fetchval("SELECT count(*) FROM matcher_offsets") == 0
    finally:
        await conn.close()


async def saved_partition(store: MatcherStore, tick: str, *more: Event) -> Owned:
    """Partition 0 with two sales on 2025-11-20 (T-paid settled, T-open not) and one on
    2025-11-21 (T-later), plus `more`, decided at `tick`, saved; nothing left in memory."""
    [owned] = await store.claim([0])
    matcher = Matcher(owned.state)
    for event in (
        merchant("M1"),
        sale("T-paid", "2025-11-20T10:00+08:00"),
        sale("T-open", "2025-11-20T11:00+08:00"),
        sale("T-later", "2025-11-21T10:00+08:00"),
        paid("T-paid"),
        *more,
    ):
        apply(matcher, event)
    matcher.tick(at(tick))
    await store.save([owned], {}, {})
    matcher.evict(0)
    assert owned.state.payments == {}
    return owned


async def test_payments_are_read_back_by_id_and_fired_by_deadline_earliest_first(
    store: MatcherStore,
) -> None:
    owned = await saved_partition(store, "2025-11-20T12:00+08:00")

    fetched = await store.fetch(owned, ["T-paid", "T-never-seen"])
    assert [(p.txn_id, p.status) for p in fetched] == [("T-paid", "settled")]
    # T-open is due 11-21 24:00, T-later 11-25 00:00 (T-paid is settled); the working set's
    # payments are left out.
    assert await store.next_due(owned) == at("2025-11-22T00:00+08:00")
    assert await store.next_due(owned, ["T-open"]) == at("2025-11-25T00:00+08:00")
    now = at("2025-11-30T00:00+08:00")
    first = await store.fire_due(owned, now, limit=1)
    assert [f.key for f in first.findings] == ["settlement.overdue:T-open#open"]  # due 11-21
    assert first.full and owned.state.unfinished_tick == now
    second = await store.fire_due(owned, now, limit=1)
    assert [f.key for f in second.findings] == ["settlement.overdue:T-later#open"]
    last = await store.fire_due(owned, now, limit=1)
    assert (last.findings, last.full, owned.state.unfinished_tick) == ([], False, None)
    [claimed] = await store.claim([0])
    assert claimed.state.unfinished_tick is None  # saved with the last round
    assert await store.next_due(claimed) == at("2025-12-22T00:00+08:00")  # T-open expires


async def test_a_closed_day_is_dropped_whole_and_a_day_with_an_open_payment_stays(
    store: MatcherStore, database_url: str
) -> None:
    # T-open paid too; T-later (due Monday 24th) is overdue.
    owned = await saved_partition(store, "2025-11-26T12:00+08:00", paid("T-open"))

    dropped = await store.drop_closed_windows(date(2025, 12, 31), [owned])

    assert dropped == [date(2025, 11, 20)]
    conn = await asyncpg.connect(asyncpg_dsn(database_url))
    tables = await conn.fetch(
        "SELECT relname FROM pg_class WHERE relkind = 'r' AND relname LIKE 'matcher_payment%_d%' "
        "ORDER BY relname"
    )
    await conn.close()
    assert [t["relname"] for t in tables] == [
        "matcher_payment_states_d20251121",
        "matcher_payments_d20251121",
    ]
    # The index forgot the dropped payments.
    assert owned.days.days() == {date(2025, 11, 21)}
    assert owned.days.days_of("T-later") == [date(2025, 11, 21)]
    assert [p.status for p in await store.fetch(owned, ["T-later"])] == ["overdue"]


async def test_an_expired_payment_stays_readable_for_the_retention_after_it_expired(
    store: MatcherStore,
) -> None:
    # T-later (due 2025-11-25 00:00) expires on 2025-12-25; T-open is paid.
    owned = await saved_partition(store, "2025-12-26T12:00+08:00", paid("T-open"))
    assert [(p.txn_id, p.status) for p in await store.fetch(owned, ["T-later"])] == [
        ("T-later", "expired")
    ]
    assert await store.next_due(owned) == NEVER  # never again
    # Windows closing before 12-24 (the clock less the retention): the 20th's table goes, the
    # 21st's stays, its payment having expired after that.
    assert await store.drop_closed_windows(date(2025, 12, 24), [owned]) == [date(2025, 11, 20)]
    assert [p.status for p in await store.fetch(owned, ["T-later"])] == ["expired"]
    # The retention over since it expired: dropped.
    assert await store.drop_closed_windows(date(2025, 12, 26), [owned]) == [date(2025, 11, 21)]
    assert await store.fetch(owned, ["T-later"]) == []


async def test_overdue_ones_come_due_again_to_expire_and_a_bank_s_pending_ones_are_found(
    store: MatcherStore,
) -> None:
    # T-open is overdue (due the 21st), T-later still pending.
    owned = await saved_partition(store, "2025-11-22T12:00+08:00")

    # Due after a maintenance window's start: the pending ones only.
    since = at("2025-11-21T00:00+08:00")
    assert [p.txn_id for p in await store.pending_of_bank(owned, "ICBC", since)] == ["T-later"]
    assert await store.pending_of_bank(owned, "BOC", since) == []
    # Thirty days after its deadline the overdue one is due again, to expire; T-later
    # (due the 25th, 00:00) becomes overdue, and expires thirty days later to the second.
    fired = await store.fire_due(owned, at("2025-12-22T12:00+08:00"), limit=10)
    assert [f.key for f in fired.findings] == [
        "settlement.overdue:T-later#open",
        "settlement.expired:T-open#open",
    ]
    assert await store.next_due(owned) == at("2025-12-25T00:00+08:00")
    fired = await store.fire_due(owned, at("2025-12-25T00:00+08:00"), limit=10)
    assert [f.key for f in fired.findings] == ["settlement.expired:T-later#open"]


async def test_the_deadline_indexes_hold_the_statuses_the_core_decides_on(
    store: MatcherStore, database_url: str
) -> None:
    """The partial indexes of migration 0004 and the core's timer rules (fires_at) name the
    same statuses: a status added to one and not the other would make the timer miss payments
    or scan the whole table."""
    conn = await asyncpg.connect(asyncpg_dsn(database_url))
    try:
        rows = await conn.fetch(
            "SELECT c.relname, pg_get_expr(i.indpred, i.indrelid) AS predicate "
            "FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid "
            "WHERE i.indrelid = 'matcher_payment_states'::regclass AND i.indpred IS NOT NULL"
        )
    finally:
        await conn.close()
    statuses = {
        r["relname"]: set(re.findall(r"'(\w+)'::text", r["predicate"]))
        for r in rows
        if "status" in r["predicate"]
    }
    assert statuses == {
        "matcher_payment_states_due": AWAITING_DEADLINE,
        "matcher_payment_states_unsettled": AWAITING_EXPIRY,
    }


def overdue(txn_id: str) -> Finding:
    return Finding(
        f"settlement.overdue:{txn_id}",
        "settlement.overdue",
        "open",
        at("2025-11-22"),
        "M1",
        txn_id,
        {},
    )


async def test_findings_are_marked_sent_by_one_watermark_per_partition(
    store: MatcherStore, database_url: str
) -> None:
    """Each partition's findings are sent in the order they were saved; once a batch is sent,
    one number per partition says so, whatever the batch's size. The stall watch's (no
    partition) are marked alone."""
    owned = await store.claim([0, 1])
    decided: dict[int | None, list[Finding]] = {
        0: [overdue(f"A{n}") for n in range(3)],
        1: [overdue("B0")],
        None: [overdue("stall")],
    }
    saved = await store.save(owned, decided, {})
    assert [(f.partition, f.key) for f in saved] == [
        (p, f.key) for p, found in decided.items() for f in found
    ]
    assert sorted(f.key for f in await store.unpublished()) == sorted(f.key for f in saved)
    assert [f.key for f in await store.unpublished(limit=1) if f.partition == 0] == [saved[0].key]
    await store.mark_published([f for f in saved if f.partition == 0][:2] + saved[-1:])
    left = await store.unpublished()
    assert sorted(f.key for f in left) == sorted([saved[2].key, saved[3].key])
    await store.mark_published(saved[:1])  # late news of an earlier batch: the mark stays
    assert sorted(f.key for f in await store.unpublished()) == sorted(f.key for f in left)
    conn = await asyncpg.connect(asyncpg_dsn(database_url))
    try:
        marks = await conn.fetch("SELECT partition, seq FROM matcher_published ORDER BY 1")
        assert [(r["partition"], r["seq"]) for r in marks] == [(0, saved[1].seq)]
        waiting = await conn.fetchval("SELECT count(*) FROM matcher_read_unpublished")
        assert waiting == 2  # what the dev stack's key rotation waits for
    finally:
        await conn.close()


async def test_a_look_alike_or_another_region_is_read_back_by_its_time_after_a_restart(
    store: MatcherStore,
) -> None:
    """The duplicate and region indexes keep no txn_id: a restarted matcher finds the earlier
    sale of the same card and amount, and the terminal's transaction in another region, in the
    store by when they occurred, and makes the same findings as one that kept them in memory."""
    [owned] = await store.claim([0])
    matcher = Matcher(owned.state)
    apply(matcher, merchant("M1"))
    apply(matcher, sale("T1", "2025-11-20T10:00:00+08:00", card_fingerprint="fp-x", region="上海"))
    matcher.tick(at("2025-11-20T10:00:30+08:00"))
    await store.save([owned], {}, {})
    matcher.evict(0)

    [owned] = await store.claim([0])  # restarted: the indexes rebuilt from the store
    matcher = Matcher(owned.state)
    apply(matcher, sale("T2", "2025-11-20T10:03:00+08:00", card_fingerprint="fp-x", region="深圳"))
    assert matcher.state.payments.keys() == {"T2"}
    times = matcher.times_at_tick()
    assert times == {at("2025-11-20T10:00:00+08:00")}
    matcher.load(await store.at_times(owned, times))
    findings = matcher.tick(at("2025-11-20T10:03:30+08:00"))
    found = {f.type: f for f in findings}
    assert found.keys() == {"terminal.region_jump", "transaction.duplicate_suspected"}
    assert found["transaction.duplicate_suspected"].evidence["txn_ids"] == ["T1", "T2"]
    jump = found["terminal.region_jump"].evidence
    assert (jump["regions"], jump["txn_ids"]) == (["上海", "深圳"], ["T1", "T2"])


async def test_a_claim_keeps_the_ids_read_ahead_of_a_partition_unless_its_owner_saved_since(
    store: MatcherStore,
) -> None:
    """A restarting matcher reads where every partition's payments lie while its group assigns
    the partitions; the claim keeps that read for a partition to which nothing was saved since,
    and reads again one whose last owner saved a payment in between, which is then found."""
    owners = {o.partition: o for o in await store.claim([0, 1])}
    matchers = {p: Matcher(o.state) for p, o in owners.items()}
    for p, matcher in matchers.items():
        apply(matcher, merchant("M1"))
        apply(matcher, sale(f"T-{p}", "2025-11-20T10:00+08:00"))
    await store.save(list(owners.values()), {}, {})

    ahead = StoredIds()
    await store.read_ahead(ahead)
    assert ahead.days[1].days_of("T-1") == [date(2025, 11, 20)]
    apply(matchers[1], sale("T-late", "2025-11-21T10:00+08:00"))  # the last owner, meanwhile
    await store.save([owners[1]], {}, {})

    claimed = {o.partition: o for o in await store.claim([0, 1], ahead)}
    assert claimed[0].days is ahead.days[0]  # not read again
    assert claimed[1].days.days_of("T-late") == [date(2025, 11, 21)]
    assert claimed[1].days.days_of("T-1") == [date(2025, 11, 20)]


async def test_a_partition_the_read_ahead_was_told_it_would_not_get_is_read_by_its_claim(
    store: MatcherStore,
) -> None:
    """Told which partitions were assigned, the read ahead skips the others; a claim of one of
    those still finds its payments (read then, not taken for empty)."""
    owners = {o.partition: o for o in await store.claim([0, 1])}
    for p, owned in owners.items():
        matcher = Matcher(owned.state)
        apply(matcher, merchant("M1"))
        apply(matcher, sale(f"T-{p}", "2025-11-20T10:00+08:00"))
    await store.save(list(owners.values()), {}, {})

    ahead = StoredIds(wanted={0})
    await store.read_ahead(ahead)
    assert ahead.days.keys() == {0}
    [claimed] = await store.claim([1], ahead)
    assert claimed.days.days_of("T-1") == [date(2025, 11, 20)]


async def test_findings_sent_and_older_than_the_retention_leave_the_outbox(
    store: MatcherStore, database_url: str
) -> None:
    """The outbox keeps what is unsent whatever its age, and what was sent for the retention;
    the rest goes, a bounded number of batches at a time."""
    owned = await store.claim([0, 1])
    decided: dict[int | None, list[Finding]] = {
        0: [overdue(f"A{n}") for n in range(5)],
        1: [overdue("B0")],
        None: [overdue("stall-sent"), overdue("stall-unsent")],
    }
    saved = await store.save(owned, decided, {})
    a = [f for f in saved if f.partition == 0]
    await store.mark_published(a[:4] + saved[-2:-1])  # A0–A3 and one of the stall watch's
    conn = await asyncpg.connect(asyncpg_dsn(database_url))
    try:
        # A0–A2, B0 and both of the stall watch's were written 40 days ago; A3 and A4 today.
        await conn.execute(
            "UPDATE matcher_outbox SET created_at = now() - interval '40 days', "
            "published_at = CASE WHEN published_at IS NULL THEN NULL "
            "ELSE now() - interval '40 days' END WHERE key <> ALL($1::text[])",
            [a[3].key, a[4].key],
        )
        cutoff = datetime.now(UTC) - timedelta(days=35)
        assert not await store.prune_outbox(cutoff, [0, 1], batches=2, batch=1)
        assert await store.prune_outbox(cutoff, [0, 1], batch=1)
        left = {r[0] for r in await conn.fetch("SELECT key FROM matcher_outbox")}
    finally:
        await conn.close()
    # Sent and old: gone. Sent but recent (A3), unsent (A4, B0: no watermark), the unsent
    # stall finding: kept.
    assert left == {a[3].key, a[4].key, saved[5].key, saved[7].key}

from __future__ import annotations

import asyncio
import os
import random
import sys
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import replace
from datetime import datetime

import asyncpg
import orjson
import pytest
from alembic import command
from alembic.script import ScriptDirectory

from settlewatch.common.catalogue import history_text
from settlewatch.common.db import create_engine
from settlewatch.common.errors import ConfigError
from settlewatch.common.sealing import Sealer, parse_keys
from settlewatch.matcher.codec import (
    JSON_COLUMNS,
    PAYMENT_COLUMNS,
    PAYMENT_SELECT,
    PAYMENTS_FROM,
    payment_from_row,
    reference_to_json,
)
from settlewatch.matcher.core.matcher import Matcher
from settlewatch.matcher.core.model import PartitionState, Payment
from settlewatch.matcher.store import MatcherStore
from settlewatch.schema import alembic_config, migrate
from tests.matcher.unit.scenario import apply, at, merchant, paid, sale, void
from tests.support import before_0022
from tests.support.urls import asyncpg_dsn, with_database

pytestmark = pytest.mark.asyncio(loop_scope="session")


def head() -> str:
    return (
        ScriptDirectory.from_config(alembic_config("postgresql://unused/")).get_current_head() or ""
    )


async def schema_version(url: str) -> str:
    conn = await asyncpg.connect(asyncpg_dsn(url))
    try:
        version: str = await conn.fetchval("SELECT version_num FROM alembic_version")
        return version
    finally:
        await conn.close()


@asynccontextmanager
async def empty_database(server_url: str) -> AsyncIterator[str]:
    """The URL of a database of its own on the server, dropped afterwards."""
    name = f"sw_{uuid.uuid4().hex[:8]}"
    admin = await asyncpg.connect(asyncpg_dsn(server_url))
    await admin.execute(f'CREATE DATABASE "{name}"')
    try:
        yield with_database(server_url, name)
    finally:
        await admin.execute(f'DROP DATABASE "{name}" WITH (FORCE)')
        await admin.close()


async def test_migrated_database_is_at_head(database_url: str) -> None:
    assert await schema_version(database_url) == head()


async def run_migrate(env: dict[str, str], *args: str) -> tuple[int, str]:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "settlewatch.cli",
        "migrate",
        *args,
        env=env,
        stderr=asyncio.subprocess.PIPE,
    )
    _, stderr = await asyncio.wait_for(process.communicate(), 60)
    return process.returncode or 0, stderr.decode()


async def test_settlewatch_migrate_upgrades_an_empty_database(postgres_server_url: str) -> None:
    async with empty_database(postgres_server_url) as url:
        code, stderr = await run_migrate(os.environ | {"DATABASE_URL": url}, "--to", "0022")
        assert code == 0, stderr
        assert await schema_version(url) == "0022"  # a release's first step
        code, stderr = await run_migrate(os.environ | {"DATABASE_URL": url})
        assert code == 0, stderr
        assert await schema_version(url) == head()
        conn = await asyncpg.connect(asyncpg_dsn(url))
        tables = {r["tablename"] for r in await conn.fetch("SELECT tablename FROM pg_tables")}
        await conn.close()
        assert {"merchants", "maintenance_windows"} <= tables


async def test_concurrent_migrations_from_several_processes_are_harmless(
    database_url: str,
) -> None:
    env = os.environ | {"DATABASE_URL": database_url}
    results = await asyncio.gather(*(run_migrate(env) for _ in range(3)))
    assert [code for code, _ in results] == [0, 0, 0], results
    assert await schema_version(database_url) == head()


async def test_migrate_is_idempotent(database_url: str) -> None:
    await asyncio.to_thread(migrate, database_url)
    await asyncio.to_thread(migrate, database_url)
    assert await schema_version(database_url) == head()


async def test_migrate_without_database_url_explains_what_is_missing() -> None:
    code, stderr = await run_migrate({k: v for k, v in os.environ.items() if k != "DATABASE_URL"})
    assert code == 2
    assert "DATABASE_URL is required" in stderr


async def test_matcher_state_of_0003_is_carried_into_the_windowed_store(
    postgres_server_url: str,
) -> None:
    async with empty_database(postgres_server_url) as url:
        await asyncio.to_thread(migrate, url, "0003")
        matcher = Matcher(PartitionState())
        apply(matcher, merchant("M1"))
        apply(matcher, sale("T1"))
        payment = matcher.state.payments["T1"]
        document = {
            "merchants": reference_to_json(matcher.state)["merchants"],
            "windows": {},
            "conflicts": [["T1", "abc"]],
            "early_cancellations": {"T-gone": "V9"},
            "reported_duplicates": [["T1", "T2"]],
        }
        conn = await asyncpg.connect(asyncpg_dsn(url))
        await conn.execute(
            "INSERT INTO matcher_payments (txn_id, partition, merchant_id, status, bank_code, "
            "currency, amount_minor, occurred_at, business_date, due_at, body) "
            "VALUES ('T1', 0, 'M1', 'pending', 'ICBC', 'CNY', 12800, $1, $2, $3, $4::jsonb)",
            payment.occurred_at,
            payment.business_date,
            payment.due_at,
            orjson.dumps(payment).decode(),  # the document as the matcher wrote it then
        )
        await conn.execute(
            "INSERT INTO matcher_partitions (partition, generation, clock, body) "
            "VALUES (0, 1, $1, $2::jsonb)",
            at("2025-11-20T12:00+08:00"),
            orjson.dumps(document).decode(),
        )
        await conn.close()

        await asyncio.to_thread(migrate, url)

        engine = create_engine(url)
        try:
            store = MatcherStore(engine)
            [owned] = await store.claim([0])
            assert set(owned.state.merchants) == {"M1"}
            assert set(owned.state.early_cancellations) == {"T-gone"}
            [loaded] = await store.fetch(owned, ["T1"])
            # Every field, and the times in the offsets they were given in.
            assert orjson.loads(orjson.dumps(loaded)) == orjson.loads(orjson.dumps(payment))
            assert await store.next_due(owned) == loaded.due_at
        finally:
            await engine.dispose()


async def test_typed_payments_go_back_to_documents_and_forth(database_url: str) -> None:
    """0014 down and up again: the payment document of 0013 and back, every field kept."""
    matcher = Matcher(PartitionState())
    apply(matcher, merchant("M1"))
    apply(matcher, sale("T1", region="上海"))
    matcher.tick(at("2025-11-25T12:00+08:00"))  # overdue: history, flags and a deadline
    payment = matcher.state.payments["T1"]
    engine = create_engine(database_url)
    try:
        [owned] = await MatcherStore(engine).claim([0])
        owned.state.payments["T1"], owned.state.changed = payment, {"T1"}
        await MatcherStore(engine).save([owned], {}, {})

        await asyncio.to_thread(command.downgrade, alembic_config(database_url), "0013")
        conn = await asyncpg.connect(asyncpg_dsn(database_url))
        try:
            document = await conn.fetchval("SELECT body::text FROM matcher_payments")
            terminal = await conn.fetchval("SELECT terminal_id FROM matcher_read_payments")
        finally:
            await conn.close()
        # As 0013 kept it, the history worded (0017's downgrade).
        worded = [[at, history_text(code, args, "en")] for at, code, args in payment.history]
        assert orjson.loads(document) == orjson.loads(orjson.dumps(payment)) | {
            "history": orjson.loads(orjson.dumps(worded))
        }
        assert terminal == payment.evidence["terminal_id"]

        await asyncio.to_thread(migrate, database_url)
        [owned] = await MatcherStore(engine).claim([0])
        [loaded] = await MatcherStore(engine).fetch(owned, ["T1"])
        assert orjson.loads(orjson.dumps(loaded)) == orjson.loads(orjson.dumps(payment))
    finally:
        await engine.dispose()


async def test_webhook_secrets_in_clear_are_sealed_and_opened_again_on_downgrade(
    database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """0015 moves each secret out of the profile, encrypted; its downgrade puts it back."""
    secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
    profile = {"name": "M1", "webhook": {"url": "https://m1.example.com/h", "secret": secret}}
    await asyncio.to_thread(command.downgrade, alembic_config(database_url), "0014")
    conn = await asyncpg.connect(asyncpg_dsn(database_url))
    try:
        await conn.execute(
            "INSERT INTO merchants (merchant_id, settlement_bank, profile) "
            "VALUES ('M1', 'ICBC', $1::jsonb), ('M2', 'ICBC', '{\"webhook\": null}')",
            orjson.dumps(profile).decode(),
        )
        monkeypatch.delenv("SETTLEWATCH_SECRET_KEY")
        with pytest.raises(ConfigError, match="set SETTLEWATCH_SECRET_KEY"):
            await asyncio.to_thread(migrate, database_url)
        monkeypatch.undo()

        await asyncio.to_thread(migrate, database_url)
        moved = await conn.fetchval("SELECT profile FROM merchants WHERE merchant_id = 'M1'")
        sealed = await conn.fetchval("SELECT sealed FROM webhook_secrets WHERE merchant_id = 'M1'")
        assert orjson.loads(moved)["webhook"] == {"url": "https://m1.example.com/h"}
        assert secret not in sealed
        keys = parse_keys(os.environ["SETTLEWATCH_SECRET_KEY"])
        assert Sealer(keys).open(sealed) == secret

        await asyncio.to_thread(command.downgrade, alembic_config(database_url), "0014")
        back = await conn.fetchval("SELECT profile FROM merchants WHERE merchant_id = 'M1'")
        assert orjson.loads(back) == profile
        await asyncio.to_thread(migrate, database_url)
    finally:
        await conn.close()


async def test_a_worded_history_is_coded_and_worded_again(database_url: str) -> None:
    """0017 turns each English sentence of a payment's history into (code, args), as the
    matcher now writes it, and its downgrade writes the sentences again."""
    matcher = Matcher(PartitionState())
    apply(matcher, merchant("M1"))
    apply(matcher, sale("T1"))
    matcher.tick(at("2025-11-25T12:00+08:00"))  # overdue
    apply(matcher, void("V1", "T1"))
    apply(matcher, paid("T1", occurred="2025-11-26T09:00+08:00"))
    apply(matcher, paid("T1", occurred="2025-11-26T09:00+08:00") | {"settlement_id": "S2"})
    payment = matcher.state.payments["T1"]
    # A file's line, matched by a rule: the sentence with "(matched by …)".
    fact = payment.settlements["S2"]
    payment.settlements["S2"] = replace(fact, matched_by="merchant_terminal_rrn")
    at_, code, args = payment.history[-1]
    payment.history[-1] = (at_, code, {**args, "matched_by": "merchant_terminal_rrn"})
    codes = [code for _, code, _ in payment.history]
    assert codes == ["received", "overdue", "cancelled", "settlement", "settlement"]
    engine = create_engine(database_url)
    conn = await asyncpg.connect(asyncpg_dsn(database_url))
    try:
        [owned] = await MatcherStore(engine).claim([0])
        owned.state.payments["T1"], owned.state.changed = payment, {"T1"}
        await MatcherStore(engine).save([owned], {}, {})

        await asyncio.to_thread(command.downgrade, alembic_config(database_url), "0016")
        worded = orjson.loads(await conn.fetchval("SELECT history::text FROM matcher_payments"))
        assert [event for _, event in worded] == [
            "sale received",
            "overdue",
            "cancelled by V1",
            "settlement S-T1: settled",
            "settlement S2: settled (matched by merchant_terminal_rrn)",
        ]
        # A sentence of some other version: kept as it is.
        await conn.execute(
            "UPDATE matcher_payments SET history = history || "
            """'[["2025-11-27T10:00:00+08:00", "checked by hand"]]'::jsonb"""
        )

        await asyncio.to_thread(migrate, database_url)
        [owned] = await MatcherStore(engine).claim([0])
        [loaded] = await MatcherStore(engine).fetch(owned, ["T1"])
        *coded, (_, other, args) = loaded.history
        assert orjson.loads(orjson.dumps(coded)) == orjson.loads(orjson.dumps(payment.history))
        assert history_text(other, args, "zh-CN") == "checked by hand"
    finally:
        await conn.close()
        await engine.dispose()


async def test_findings_sent_before_0020_are_not_sent_again_and_none_unsent_is_skipped(
    database_url: str,
) -> None:
    """0020 publishes by a watermark per partition: it starts below each partition's first
    unsent finding (a later one sent already may go again: at least once), and rows without a
    partition keep their mark. Its downgrade marks every row under the watermark."""
    engine = create_engine(database_url)
    conn = await asyncpg.connect(asyncpg_dsn(database_url))
    try:
        await MatcherStore(engine).claim([0, 1])
        await asyncio.to_thread(command.downgrade, alembic_config(database_url), "0019")
        for key, partition, sent in (
            ("a", 0, True),
            ("b", 0, False),
            ("c", 0, True),
            ("d", 1, True),
            ("e", None, False),
            ("f", None, True),
        ):
            await conn.execute(
                "INSERT INTO matcher_outbox (key, body, partition, published_at) "
                "VALUES ($1, '{}', $2, CASE WHEN $3 THEN now() END)",
                key,
                partition,
                sent,
            )
        await asyncio.to_thread(migrate, database_url)
        store = MatcherStore(engine)
        unsent = await store.unpublished()
        assert sorted(f.key for f in unsent) == ["b", "c", "e"]
        await store.mark_published([f for f in unsent if f.key == "b"])

        await asyncio.to_thread(command.downgrade, alembic_config(database_url), "0019")
        marked = await conn.fetch("SELECT key FROM matcher_outbox WHERE published_at IS NULL")
        assert sorted(r["key"] for r in marked) == ["e"]  # c was sent before 0020
        await asyncio.to_thread(migrate, database_url)
    finally:
        await conn.close()
        await engine.dispose()


def fired(payment: Payment, now: datetime) -> Payment:
    """The payment as a matcher's deadline makes it overdue (a state change and a history line)."""
    return replace(
        payment,
        status="overdue",
        reported="overdue",
        overdue_fired=True,
        history=[*payment.history, (now, "overdue", {})],
    )


async def test_payment_states_move_out_while_a_matcher_of_the_release_before_writes(
    postgres_server_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """0022 copies every payment's state in small batches while a matcher of the release
    before keeps writing (new payments, on a new day too, and overdue ones): afterwards, and
    after 0023, each payment reads back as last written; down to 0021 the old table again."""
    async with empty_database(postgres_server_url) as url:
        await asyncio.to_thread(migrate, url, "0021")
        matcher = Matcher(PartitionState())
        apply(matcher, merchant("M1"))
        for i in range(1200):  # three business days
            apply(matcher, sale(f"T{i:05}", f"2025-11-{18 + i % 3}T10:00+08:00"))
        written = dict(matcher.state.payments)
        conn = await asyncpg.connect(asyncpg_dsn(url))
        for payment in written.values():
            await before_0022.write(conn, payment)

        stop = asyncio.Event()
        writes = 0

        async def old_matcher() -> None:  # on a connection of its own, as a matcher is
            nonlocal writes
            own = await asyncpg.connect(asyncpg_dsn(url))
            rng = random.Random(22)
            try:
                while not stop.is_set():
                    if writes % 3 == 0:  # a new sale, the fourth day among them
                        apply(
                            matcher, sale(f"N{writes:05}", f"2025-11-{18 + writes % 4}T11:00+08:00")
                        )
                        payment = matcher.state.payments[f"N{writes:05}"]
                    else:
                        payment = fired(written[rng.choice(sorted(written))], at("2025-11-25"))
                    written[payment.txn_id] = payment
                    await before_0022.write(own, payment)
                    writes += 1
                    await asyncio.sleep(0)
            finally:
                await own.close()

        writer = asyncio.create_task(old_matcher())
        monkeypatch.setenv("SETTLEWATCH_MIGRATION_BATCH", "50")
        await asyncio.to_thread(migrate, url, "0022")
        during = writes
        await asyncio.sleep(0.3)  # and a few more after it, mirrored
        stop.set()
        await writer
        assert during > 0 and writes > during

        expected = {t: orjson.loads(orjson.dumps(p)) for t, p in written.items()}
        await asyncio.to_thread(migrate, url)  # 0023: no matcher of the release before runs
        rows = await conn.fetch(f"SELECT {PAYMENT_SELECT} FROM {PAYMENTS_FROM}")
        after = {r[0]: orjson.loads(orjson.dumps(payment_from_row(r))) for r in rows}
        assert after == expected

        await asyncio.to_thread(command.downgrade, alembic_config(url), "0021")
        old_select = ", ".join(f"{c}::text" if c in JSON_COLUMNS else c for c in PAYMENT_COLUMNS)
        rows = await conn.fetch(f"SELECT {old_select} FROM matcher_payments")
        before = {r[0]: orjson.loads(orjson.dumps(payment_from_row(r))) for r in rows}
        assert before == expected
        await conn.close()

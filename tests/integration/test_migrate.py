from __future__ import annotations

import asyncio
import os
import sys
import uuid

import asyncpg
import pytest
from alembic.script import ScriptDirectory

from settlewatch.common.db import alembic_config, migrate
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


async def test_migrated_database_is_at_head(database_url: str) -> None:
    assert await schema_version(database_url) == head()


async def run_migrate(env: dict[str, str]) -> tuple[int, str]:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "settlewatch.stack.cli",
        "migrate",
        env=env,
        stderr=asyncio.subprocess.PIPE,
    )
    _, stderr = await asyncio.wait_for(process.communicate(), 60)
    return process.returncode or 0, stderr.decode()


async def test_settlewatch_migrate_upgrades_an_empty_database(postgres_server_url: str) -> None:
    name = f"sw_empty_{uuid.uuid4().hex[:8]}"
    admin = await asyncpg.connect(asyncpg_dsn(postgres_server_url))
    await admin.execute(f'CREATE DATABASE "{name}"')
    try:
        url = with_database(postgres_server_url, name)
        code, stderr = await run_migrate(os.environ | {"DATABASE_URL": url})
        assert code == 0, stderr
        assert await schema_version(url) == head()
        conn = await asyncpg.connect(asyncpg_dsn(url))
        tables = {r["tablename"] for r in await conn.fetch("SELECT tablename FROM pg_tables")}
        await conn.close()
        assert {"merchants", "maintenance_windows"} <= tables
    finally:
        await admin.execute(f'DROP DATABASE "{name}" WITH (FORCE)')
        await admin.close()


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

from __future__ import annotations

import asyncio
import os
import sys

import asyncpg
import pytest
from alembic.script import ScriptDirectory

from settlewatch.common.db import alembic_config, migrate
from tests.support.urls import asyncpg_dsn

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


async def test_settlewatch_migrate_upgrades_a_fresh_database(database_url: str) -> None:
    conn = await asyncpg.connect(asyncpg_dsn(database_url))
    await conn.execute("DROP TABLE alembic_version")
    await conn.close()
    code, stderr = await run_migrate(os.environ | {"DATABASE_URL": database_url})
    assert code == 0, stderr
    assert await schema_version(database_url) == head()


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

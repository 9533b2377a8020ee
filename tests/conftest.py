"""Session-wide real parts: one PostgreSQL server and one Kafka-protocol broker for the run.

``DATABASE_URL`` / ``KAFKA_BOOTSTRAP_SERVERS`` point the suite at external ones; otherwise the
embedded ones of ``settlewatch up`` are started once. Tests are isolated from each other by a
database of their own (cloned from a migrated template) and a topic prefix of their own.
"""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import asyncpg
import pytest
import pytest_asyncio
from cryptography.fernet import Fernet

from settlewatch.common.webhook_guard import LOOPBACK
from settlewatch.devstack.broker import EmbeddedBroker
from settlewatch.devstack.postgres import EmbeddedPostgres
from settlewatch.schema import migrate
from tests.support.dirs import server_dir
from tests.support.ports import free_port
from tests.support.urls import asyncpg_dsn, with_database

pytest_plugins = ["tests.support.stack", "tests.support.examples"]

# The tests' webhook receivers listen on localhost, as under `settlewatch up` (services started by
# the tests inherit it; the guard's own tests pass their networks explicitly).
os.environ.setdefault("SETTLEWATCH_WEBHOOK_ALLOW_PRIVATE", LOOPBACK)
# Webhook secrets are encrypted at rest: the session's key, one for the whole run.
os.environ.setdefault("SETTLEWATCH_SECRET_KEY", Fernet.generate_key().decode())


@pytest.fixture(scope="session")
def postgres_server_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """SQLAlchemy URL of the session's PostgreSQL server (its maintenance database)."""
    external = os.environ.get("DATABASE_URL")
    if external:
        yield external.replace("postgresql://", "postgresql+asyncpg://", 1)
        return
    with server_dir("pg-session") as folder:
        server = EmbeddedPostgres(folder / "pg")
        url = server.start()
        yield url
        server.stop()


@pytest_asyncio.fixture(scope="session")
async def broker_bootstrap(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[str]:
    external = os.environ.get("KAFKA_BOOTSTRAP_SERVERS")
    if external:
        yield external
        return
    log = tmp_path_factory.mktemp("broker") / "broker.log"
    broker = EmbeddedBroker(free_port(), log)
    yield await broker.start()
    await broker.stop()


@pytest_asyncio.fixture(scope="session")
async def template_database(postgres_server_url: str) -> AsyncIterator[str]:
    """A database migrated to head once per session; each test clones it (fast, isolated)."""
    name = f"sw_template_{uuid.uuid4().hex[:8]}"
    admin = await asyncpg.connect(asyncpg_dsn(postgres_server_url))
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
        await asyncio.to_thread(migrate, with_database(postgres_server_url, name))
        yield name
        await admin.execute(f'DROP DATABASE "{name}" WITH (FORCE)')
    finally:
        await admin.close()


@pytest_asyncio.fixture
async def database_url(postgres_server_url: str, template_database: str) -> AsyncIterator[str]:
    """A fresh migrated database of this test's own."""
    name = f"sw_test_{uuid.uuid4().hex[:12]}"
    admin = await asyncpg.connect(asyncpg_dsn(postgres_server_url))
    try:
        await admin.execute(f'CREATE DATABASE "{name}" TEMPLATE "{template_database}"')
        yield with_database(postgres_server_url, name)
        await admin.execute(f'DROP DATABASE "{name}" WITH (FORCE)')
    finally:
        await admin.close()


@pytest.fixture
def topic_prefix() -> str:
    """A topic prefix of this test's own, so tests never read each other's messages."""
    return f"t{uuid.uuid4().hex[:10]}"


@pytest.fixture
def data_dir() -> Iterator[Path]:
    """`settlewatch up`'s data folder (its embedded database's among them)."""
    with server_dir("data") as folder:
        yield folder / "data"

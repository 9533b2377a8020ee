"""Real parts for the benchmarks: the embedded PostgreSQL and broker, or yours via the env."""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

from settlewatch.common.db import migrate
from settlewatch.common.kafka import Topics, ensure_topics
from settlewatch.stack.broker import EmbeddedBroker
from settlewatch.stack.postgres import EmbeddedPostgres
from tests.support.ports import free_port


@dataclass(frozen=True)
class Parts:
    database_url: str
    bootstrap: str
    topics: Topics
    workdir: Path


@asynccontextmanager
async def parts(prefix: str, partitions: int = 12) -> AsyncIterator[Parts]:
    """A migrated database and the topics under `prefix`; logs are kept in ``workdir``."""
    workdir = Path(tempfile.mkdtemp(prefix="settlewatch-bench-"))
    async with AsyncExitStack() as stack:
        database_url = os.environ.get("DATABASE_URL")
        if not database_url:
            postgres = EmbeddedPostgres(workdir / "pg")
            database_url = await asyncio.to_thread(postgres.start)
            stack.push_async_callback(asyncio.to_thread, postgres.stop)
        bootstrap = os.environ.get("KAFKA_BOOTSTRAP_SERVERS")
        if not bootstrap:
            broker = EmbeddedBroker(free_port(), workdir / "broker.log")
            bootstrap = await broker.start()
            stack.push_async_callback(broker.stop)
        await asyncio.to_thread(migrate, database_url)
        topics = Topics(prefix)
        await ensure_topics(bootstrap, topics, partitions=partitions, replication_factor=1)
        yield Parts(database_url, bootstrap, topics, workdir)
    shutil.rmtree(workdir, ignore_errors=True)


def serve_matcher(p: Parts, log: str, **extra_env: str) -> subprocess.Popen[bytes]:
    """`settlewatch serve matcher` as its own process, logging to `log`."""
    env = (
        os.environ
        | {
            "DATABASE_URL": p.database_url,
            "KAFKA_BOOTSTRAP_SERVERS": p.bootstrap,
            "SETTLEWATCH_TOPIC_PREFIX": p.topics.prefix,
            "MATCHER_PORT": str(free_port()),
            "MATCHER_SESSION_TIMEOUT": "PT2S",
            "SETTLEWATCH_LOG_LEVEL": "WARNING",
        }
        | extra_env
    )
    with open(log, "ab") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "settlewatch.stack.cli", "serve", "matcher"],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )

"""Real parts for the benchmarks: the embedded PostgreSQL and broker, or yours via the env;
and the records the benchmarks publish."""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import subprocess
import sys
import tempfile
from collections.abc import AsyncIterator, Iterator, Mapping
from contextlib import AsyncExitStack, asynccontextmanager, contextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import orjson
from cryptography.fernet import Fernet

from settlewatch.common.events import encode_event
from settlewatch.common.kafka import Topics, ensure_topics
from settlewatch.common.publisher import Publisher
from settlewatch.common.webhook_guard import LOOPBACK
from settlewatch.devstack.broker import EmbeddedBroker
from settlewatch.devstack.postgres import EmbeddedPostgres
from settlewatch.schema import migrate
from tests.support.ports import free_port

SERVICES = ("ingest", "matcher", "alerts", "recon")


@dataclass(frozen=True)
class Stack:
    """A `settlewatch up` on embedded parts: its data folder and its services' ports."""

    data_dir: Path
    ports: dict[str, int]

    @property
    def run_dir(self) -> Path:
        return self.data_dir / "run"


@contextmanager
def settlewatch_up(log: Path | None = None, **extra_env: str) -> Iterator[Stack]:
    """`settlewatch up` on embedded parts and free ports, in a fresh data folder; stopped with
    Ctrl-C (SIGINT) at the end. Its log (JSON lines) goes to `log` when given."""
    ports = {service: free_port() for service in SERVICES}
    with tempfile.TemporaryDirectory() as data_dir:
        env = {
            key: value
            for key, value in os.environ.items()
            if key not in ("DATABASE_URL", "KAFKA_BOOTSTRAP_SERVERS")
        } | {
            "SETTLEWATCH_DATA_DIR": data_dir,
            "BROKER_PORT": str(free_port()),
            **{f"{service.upper()}_PORT": str(port) for service, port in ports.items()},
            **extra_env,
        }
        stderr = log.open("ab") if log is not None else subprocess.DEVNULL
        up = subprocess.Popen(
            [sys.executable, "-m", "settlewatch.cli", "up"],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=stderr,
        )
        try:
            yield Stack(Path(data_dir), ports)
        finally:
            up.send_signal(signal.SIGINT)
            up.wait(120)
            if log is not None:
                stderr.close()  # type: ignore[union-attr]


@dataclass(frozen=True)
class Parts:
    database_url: str
    bootstrap: str
    topics: Topics
    workdir: Path


@asynccontextmanager
async def parts(
    prefix: str, partitions: int = 12, topic_configs: Mapping[str, str] | None = None
) -> AsyncIterator[Parts]:
    """A migrated database and the topics under `prefix` (created with `topic_configs`); logs
    are kept in ``workdir``."""
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
        await ensure_topics(
            bootstrap, topics, partitions=partitions, replication_factor=1, configs=topic_configs
        )
        yield Parts(database_url, bootstrap, topics, workdir)
    shutil.rmtree(workdir, ignore_errors=True)


# The records a matcher has consumed (over all its partitions), and the findings it has published.
CONSUMED = "SELECT coalesce(sum(next_offset), 0) FROM matcher_offsets"
PUBLISHED = """
SELECT (SELECT count(*) FROM matcher_outbox) - (SELECT count(*) FROM matcher_read_unpublished)
"""

SECRET_KEY = Fernet.generate_key().decode()  # webhook secrets at rest, for this run


def service_env(p: Parts, **extra: str) -> dict[str, str]:
    """What a service needs to run on these parts (quiet logs, a short group session)."""
    return {
        "DATABASE_URL": p.database_url,
        "KAFKA_BOOTSTRAP_SERVERS": p.bootstrap,
        "SETTLEWATCH_TOPIC_PREFIX": p.topics.prefix,
        "SETTLEWATCH_LOG_LEVEL": "WARNING",
        "MATCHER_SESSION_TIMEOUT": "PT2S",
        "SETTLEWATCH_WEBHOOK_ALLOW_PRIVATE": LOOPBACK,  # the benches' receivers are local
        "SETTLEWATCH_SECRET_KEY": SECRET_KEY,
    } | extra


def serve_matcher(p: Parts, log: str) -> subprocess.Popen[bytes]:
    """`settlewatch serve matcher` as its own process, logging to `log`."""
    with open(log, "ab") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "settlewatch.cli", "serve", "matcher"],
            env=os.environ | service_env(p, MATCHER_PORT=str(free_port())),
            stdout=out,
            stderr=subprocess.STDOUT,
        )


Record = tuple[bytes, bytes]  # key, value


def merchant_records(count: int, profile: dict[str, Any]) -> list[Record]:
    """Profiles M0…M<count-1>, as ingest publishes them."""
    return [
        (
            f"M{m}".encode(),
            encode_event("merchant", orjson.dumps({"merchant_id": f"M{m}", "profile": profile})),
        )
        for m in range(count)
    ]


def sale_record(i: int, merchant: str, occurred_at: datetime) -> Record:
    """Sale T<i> of 128.00 CNY with a card of its own, keyed by merchant."""
    txn = {
        "txn_id": f"T{i}",
        "merchant_id": merchant,
        "terminal_id": "POS-1",
        "type": "sale",
        "amount_minor": 12800,
        "currency": "CNY",
        "occurred_at": occurred_at.isoformat(),
        "card_fingerprint": f"fp{i}",
        "rrn": f"{i:012d}",
    }
    return merchant.encode(), encode_event("transaction", orjson.dumps(txn))


async def publish_pulse(publisher: Publisher, topics: Topics, at: datetime) -> None:
    """A clock pulse at `at` into every partition of both input topics, as ingest writes."""
    pulse = encode_event("pulse", orjson.dumps({"at": at.isoformat(), "source": "bench"}))
    await publisher.publish_everywhere(topics.transactions, pulse)
    await publisher.publish_everywhere(topics.settlements, pulse)

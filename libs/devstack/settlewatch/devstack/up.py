"""``settlewatch up``: the whole stack in the foreground, stopped cleanly by Ctrl-C or SIGTERM.

Order of start: database → broker → migrations → topics → services; stop in reverse. A first
signal stops the services gracefully (SIGTERM, they drain and close); a second one kills them.
Everything it starts it keeps running: a service that dies is restarted (supervisor.py), and so
are the embedded database and broker (watchdog.py).
"""

from __future__ import annotations

import asyncio
import os
import secrets
import signal
import sys
import time
from contextlib import AsyncExitStack
from pathlib import Path
from typing import TextIO

import httpx
from cryptography.fernet import Fernet

from settlewatch.cli.commands import SERVICES
from settlewatch.common.config import StackSettings
from settlewatch.common.db import safe_url
from settlewatch.common.errors import UsageError
from settlewatch.common.kafka import Topics, ensure_topics
from settlewatch.common.webhook_guard import LOOPBACK
from settlewatch.devstack.broker import EmbeddedBroker
from settlewatch.devstack.postgres import EmbeddedPostgres
from settlewatch.devstack.processes import port_is_free
from settlewatch.devstack.rotation import Rotation
from settlewatch.devstack.supervisor import SupervisedProcess
from settlewatch.devstack.watchdog import keep_broker, keep_postgres
from settlewatch.matcher.store import forget_consumed_offsets
from settlewatch.schema import migrate

__all__ = ["StackError", "run_up"]

READY_TIMEOUT_S = 60.0


class StackError(UsageError):
    """The stack cannot start as configured (port taken, dependency unreachable...)."""


def _ports(settings: StackSettings) -> dict[str, int]:
    return {
        "console": settings.console_port,
        "ingest": settings.ingest_port,
        "matcher": settings.matcher_port,
        "alerts": settings.alerts_port,
        "recon": settings.recon_port,
    }


def _dev_token(data_dir: Path) -> str:
    """A dev acquirer token kept in the data folder, so scripts keep working across restarts."""
    path = data_dir / "dev-token"
    if not path.exists():
        path.write_text(secrets.token_urlsafe(24) + "\n")
        path.chmod(0o600)
    return path.read_text().strip()


def _dev_secret_key(data_dir: Path) -> str:
    """The key webhook secrets are encrypted under, kept beside the data it opens."""
    path = data_dir / "secret-key"
    if not path.exists():
        path.write_text(Fernet.generate_key().decode() + "\n")
        path.chmod(0o600)
    return path.read_text().strip()


def _check_ports(settings: StackSettings) -> None:
    wanted = {f"{name.upper()}_PORT": port for name, port in _ports(settings).items()}
    if settings.kafka_bootstrap_servers is None:
        wanted["BROKER_PORT"] = settings.broker_port
    taken = [
        f"{var}={port}" for var, port in wanted.items() if not port_is_free(settings.host, port)
    ]
    if taken:
        raise StackError(f"port already in use: {', '.join(taken)} (another settlewatch up?)")


async def _wait_ready(base_urls: dict[str, str], timeout: float) -> list[str]:
    """Poll every /readyz until 200; return the services still not ready at the deadline."""
    pending = dict(base_urls)
    deadline = time.monotonic() + timeout
    async with httpx.AsyncClient(timeout=3.0) as client:
        while pending and time.monotonic() < deadline:
            for name, url in list(pending.items()):
                try:
                    if (await client.get(f"{url}/readyz")).status_code == 200:
                        del pending[name]
                except httpx.HTTPError:
                    pass
            await asyncio.sleep(0.1)
    return sorted(pending)


async def run_up(settings: StackSettings, out: TextIO = sys.stdout) -> None:
    """Run the stack until SIGINT/SIGTERM. Raises StackError when it cannot start."""
    _check_ports(settings)
    data_dir = settings.data_dir.resolve()
    run_dir = data_dir / "run"
    run_dir.mkdir(parents=True, exist_ok=True)
    children: list[SupervisedProcess] = []
    stop = _stop_on_signals(children)

    async with AsyncExitStack() as stack:
        postgres, database_url = await _database(settings, data_dir, stack)
        broker, bootstrap = await _broker(settings, data_dir, stack)
        # The migration encrypts secrets stored before 0015; the services get the key from here.
        if not os.environ.get("SETTLEWATCH_SECRET_KEY"):
            os.environ["SETTLEWATCH_SECRET_KEY"] = _dev_secret_key(data_dir)
        await asyncio.to_thread(migrate, database_url)

        async def prepare_topics() -> None:
            if broker is not None:
                # A fresh in-memory broker: offsets saved against the last one point at nothing.
                await forget_consumed_offsets(database_url)
            await ensure_topics(
                bootstrap,
                Topics(settings.topic_prefix),
                partitions=settings.topic_partitions,
                replication_factor=settings.topic_replication_factor,
            )

        await prepare_topics()
        token = None if settings.api_tokens else _dev_token(data_dir)
        env = _service_env(data_dir, database_url, bootstrap, token)
        for name in SERVICES:
            argv = [sys.executable, "-m", f"settlewatch.{name}"]
            children.append(SupervisedProcess(name, argv, env, run_dir / f"{name}.pid"))
            children[-1].start()
        stack.push_async_callback(_stop_all, children)
        watchdogs = []
        if postgres is not None:
            watchdogs.append(asyncio.create_task(keep_postgres(postgres)))
        if broker is not None:
            rotation = Rotation(
                bootstrap,
                database_url,
                Topics(settings.topic_prefix),
                settings.embedded_broker_max_records,
            )
            watchdogs.append(
                asyncio.create_task(keep_broker(broker, children, prepare_topics, rotation))
            )
        stack.push_async_callback(_cancel, watchdogs)  # before the services and parts stop

        urls = {name: f"http://{settings.host}:{port}" for name, port in _ports(settings).items()}
        ready_wait = asyncio.create_task(_wait_ready(urls, READY_TIMEOUT_S))
        stopped = asyncio.create_task(stop.wait())
        await asyncio.wait([ready_wait, stopped], return_when=asyncio.FIRST_COMPLETED)
        if not stop.is_set():
            _print_banner(out, settings, urls, database_url, bootstrap, token, ready_wait.result())
            await stopped
        ready_wait.cancel()
        print("settlewatch: stopping...", file=out, flush=True)
    print("settlewatch: stopped.", file=out, flush=True)


def _stop_on_signals(children: list[SupervisedProcess]) -> asyncio.Event:
    """Set on the first SIGINT/SIGTERM (a graceful stop); the second kills the services."""
    stop = asyncio.Event()

    def on_signal() -> None:
        if stop.is_set():
            for child in children:
                child.kill()
        stop.set()

    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, on_signal)
    return stop


async def _database(
    settings: StackSettings, data_dir: Path, stack: AsyncExitStack
) -> tuple[EmbeddedPostgres | None, str]:
    """DATABASE_URL, or an embedded PostgreSQL started in the data folder."""
    if settings.database_url is not None:
        return None, settings.database_url
    postgres = EmbeddedPostgres(data_dir / "pg")
    database_url = await asyncio.to_thread(postgres.start)
    stack.push_async_callback(asyncio.to_thread, postgres.stop)
    return postgres, database_url


async def _broker(
    settings: StackSettings, data_dir: Path, stack: AsyncExitStack
) -> tuple[EmbeddedBroker | None, str]:
    """KAFKA_BOOTSTRAP_SERVERS, or an embedded broker started on BROKER_PORT."""
    if settings.kafka_bootstrap_servers is not None:
        return None, settings.kafka_bootstrap_servers
    broker = EmbeddedBroker(
        settings.broker_port, data_dir / "log" / "broker.log", data_dir / "run" / "broker.pid"
    )
    bootstrap = await broker.start()
    stack.push_async_callback(broker.stop)
    return broker, bootstrap


def _service_env(
    data_dir: Path, database_url: str, bootstrap: str, token: str | None
) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        DATABASE_URL=database_url,
        KAFKA_BOOTSTRAP_SERVERS=bootstrap,
        SETTLEWATCH_DATA_DIR=str(data_dir),
    )
    if token is not None:
        env["SETTLEWATCH_API_TOKENS"] = f"{token}=acquirer"
    # Development: webhooks may reach this machine (a receiver on localhost), nothing else private.
    env.setdefault("SETTLEWATCH_WEBHOOK_ALLOW_PRIVATE", LOOPBACK)
    return env


async def _cancel(tasks: list[asyncio.Task[None]]) -> None:
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)


async def _stop_all(children: list[SupervisedProcess]) -> None:
    await asyncio.gather(*(child.stop() for child in children))


def _print_banner(
    out: TextIO,
    settings: StackSettings,
    urls: dict[str, str],
    database_url: str,
    bootstrap: str,
    token: str | None,
    not_ready: list[str],
) -> None:
    embedded_db = " (embedded)" if settings.database_url is None else ""
    embedded_broker = " (embedded, in memory)" if settings.kafka_bootstrap_servers is None else ""
    lines = ["", "settlewatch is up:"]
    console = urls["console"]
    sign_in = "sign in with the dev acquirer token below" if token else "sign in with a token"
    lines.append(f"  console  {console}   ({sign_in})")
    lines += [
        f"  {name:<8} {url}   docs: {url}/docs" for name, url in urls.items() if name != "console"
    ]
    lines.append(f"  database {safe_url(database_url)}{embedded_db}")
    lines.append(f"  broker   {bootstrap}{embedded_broker}")
    if token is not None:
        lines.append(
            f"  dev acquirer token: {token}   (set SETTLEWATCH_API_TOKENS to use your own)"
        )
    if not_ready:
        lines.append(f"  NOT READY after {READY_TIMEOUT_S:.0f}s: {', '.join(not_ready)} (see logs)")
    lines.append("Press Ctrl-C to stop.")
    print("\n".join(lines), file=out, flush=True)

"""The ``settlewatch`` command (SPEC §2)."""

from __future__ import annotations

import argparse
import asyncio
import importlib
import logging
import sys
from datetime import UTC, datetime, timedelta

from settlewatch.common.config import ConfigError, StackSettings, load_settings
from settlewatch.common.db import migrate
from settlewatch.common.kafka import Topics, ensure_topics
from settlewatch.common.logging import configure_logging
from settlewatch.common.publisher import Publisher
from settlewatch.stack import deadletters as dead_letters
from settlewatch.stack.deadletters import DeadLetterError
from settlewatch.stack.demo import DemoError, run_demo
from settlewatch.stack.up import SERVICES, StackError, run_up

__all__ = ["main"]


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="settlewatch",
        description="Settlement monitoring for card acquirers. Configured by environment "
        "variables; see the README's configuration table.",
    )
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("up", help="run the whole stack in the foreground (what `make run` runs)")
    serve = commands.add_parser(
        "serve", help="run one service (needs DATABASE_URL and KAFKA_BOOTSTRAP_SERVERS)"
    )
    serve.add_argument("service", choices=SERVICES)
    commands.add_parser(
        "migrate",
        help="upgrade the database schema at DATABASE_URL, and create the topics when "
        "KAFKA_BOOTSTRAP_SERVERS is set",
    )
    demo = commands.add_parser(
        "demo", help="play a bank-outage scenario against the stack (starting it if needed)"
    )
    demo.add_argument(
        "--due-in",
        type=int,
        default=120,
        choices=range(30, 3601),
        metavar="SECONDS",
        help="deadlines fall due at the first whole minute this long from now (30–3600)",
    )
    demo.add_argument("--keep", action="store_true", help="leave a stack the demo started running")
    dead = commands.add_parser(
        "dead-letters",
        help="records the services set aside: list, show, send back (KAFKA_BOOTSTRAP_SERVERS, "
        "else the embedded broker of a running `settlewatch up`)",
    )
    actions = dead.add_subparsers(dest="action", required=True)
    actions.add_parser("list", help="every dead letter: id, when, service, source, status, reason")
    show = actions.add_parser("show", help="one dead letter in full, with its record")
    show.add_argument("id", help="<partition>:<offset>, as `list` prints it")
    replay = actions.add_parser(
        "replay", help="send dead letters back to the topic and partition they came from"
    )
    replay.add_argument(
        "ids", nargs="*", metavar="ID", help="which ones (default: all not yet replayed)"
    )
    replay.add_argument("--force", action="store_true", help="send ones already replayed again")
    return parser


def main(argv: list[str] | None = None) -> None:
    args = _parser().parse_args(argv)
    if args.command == "serve":
        importlib.import_module(f"settlewatch.{args.service}.__main__").main()
        return
    try:
        settings = load_settings(StackSettings)
        configure_logging("stack", settings.log_level)
        if args.command == "up":
            asyncio.run(run_up(settings))
        elif args.command == "demo":
            due_in = timedelta(seconds=args.due_in)
            raise SystemExit(asyncio.run(run_demo(settings, due_in=due_in, keep=args.keep)))
        elif args.command == "dead-letters":
            asyncio.run(_dead_letters(args, settings))
        elif settings.database_url is None:
            raise ConfigError("DATABASE_URL is required for migrate")
        else:
            migrate(settings.database_url)
            logging.getLogger(__name__).info("database schema is up to date")
            if settings.kafka_bootstrap_servers:
                asyncio.run(
                    ensure_topics(
                        settings.kafka_bootstrap_servers,
                        Topics(settings.topic_prefix),
                        partitions=settings.topic_partitions,
                        replication_factor=settings.topic_replication_factor,
                    )
                )
                logging.getLogger(__name__).info("topics exist")
    except (ConfigError, StackError, DemoError, DeadLetterError) as exc:
        print(f"settlewatch {args.command}: {exc}", file=sys.stderr)
        raise SystemExit(2) from None


async def _dead_letters(args: argparse.Namespace, settings: StackSettings) -> None:
    bootstrap = settings.kafka_bootstrap_servers or f"127.0.0.1:{settings.broker_port}"
    topics = Topics(settings.topic_prefix)
    letters = await dead_letters.load(bootstrap, topics)
    if args.action == "list":
        print(dead_letters.render(letters))
    elif args.action == "show":
        print(dead_letters.find(letters, args.id).show())
    else:
        publisher = Publisher(bootstrap, enable_idempotence=False, timeout=30.0)
        try:
            sent = await dead_letters.replay(
                publisher, topics, letters, args.ids, force=args.force, now=datetime.now(UTC)
            )
        finally:
            await publisher.close()
        for letter in sent:
            print(f"replayed {letter.id} to {letter.body['topic']}[{letter.body['partition']}]")
        print(f"{len(sent)} dead letters replayed")


if __name__ == "__main__":
    main()

"""The subcommands of ``settlewatch``: a small protocol, and the production ones.

A command adds its arguments to its subparser and runs with the parsed arguments, returning the
exit code; it reads the CLI's settings with :func:`cli_settings`. A failure the user can fix is
a UsageError or a ConfigError (common.errors; exit 2, one line on stderr). Other installed parts add
commands through the entry-point group ``settlewatch.commands`` (``up`` from the dev stack,
``demo``), so this package never imports them: a production install without them still runs.
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import importlib
import logging
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Protocol

from settlewatch.cli import replaying
from settlewatch.common.config import MatcherSettings, StackSettings, load_settings
from settlewatch.common.errors import ConfigError, UsageError
from settlewatch.common.logging import configure_logging
from settlewatch.settlementfiles import formats

# A command imports what it runs on in `run`, not here: `settlewatch serve matcher` (how every
# service starts in a container) and `settlewatch import` then load only their own parts, not
# the matcher's replay, the schema's migrations, the broker client... of the other commands.

__all__ = ["BUILT_IN", "SERVICES", "Command", "cli_settings"]

SERVICES = (
    "console",
    "ingest",
    "matcher",
    "alerts",
    "recon",
)  # the console first: people start there
_log = logging.getLogger(__name__)


class Command(Protocol):
    name: str
    help: str

    def add_arguments(self, parser: argparse.ArgumentParser) -> None: ...

    def run(self, args: argparse.Namespace) -> int: ...


@functools.cache
def cli_settings() -> StackSettings:
    """The settings of the command line (ConfigError naming the variable), logging set up."""
    settings = load_settings(StackSettings)
    configure_logging("stack", settings.log_level)
    return settings


class Serve:
    """One service in the foreground, configured by its own settings class."""

    name = "serve"
    help = "run one service (all but the console need DATABASE_URL and KAFKA_BOOTSTRAP_SERVERS)"

    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        parser.add_argument("service", choices=SERVICES)

    def run(self, args: argparse.Namespace) -> int:
        importlib.import_module(f"settlewatch.{args.service}.__main__").main()
        return 0


class Migrate:
    name = "migrate"
    help = (
        "upgrade the database schema at DATABASE_URL, and create the topics when "
        "KAFKA_BOOTSTRAP_SERVERS is set"
    )

    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        parser.add_argument(
            "--to",
            metavar="REVISION",
            default="head",
            help="stop at this revision (a release's first step: docs/operations.md, Upgrading)",
        )

    def run(self, args: argparse.Namespace) -> int:
        settings = cli_settings()
        from settlewatch.common.kafka import Topics, ensure_topics
        from settlewatch.schema import migrate

        if settings.database_url is None:
            raise ConfigError("DATABASE_URL is required for migrate")
        migrate(settings.database_url, args.to)
        _log.info("database schema is up to date")
        if settings.kafka_bootstrap_servers:
            asyncio.run(
                ensure_topics(
                    settings.kafka_bootstrap_servers,
                    Topics(settings.topic_prefix),
                    partitions=settings.topic_partitions,
                    replication_factor=settings.topic_replication_factor,
                )
            )
            _log.info("topics exist")
        return 0


class DeadLetters:
    name = "dead-letters"
    help = (
        "records the services set aside: list, show, send back (KAFKA_BOOTSTRAP_SERVERS, "
        "else the embedded broker of a running `settlewatch up`)"
    )

    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        actions = parser.add_subparsers(dest="action", required=True)
        actions.add_parser("list", help="every dead letter: id, when, service, source, reason")
        show = actions.add_parser("show", help="one dead letter in full, with its record")
        show.add_argument("id", help="<partition>:<offset>, as `list` prints it")
        replay = actions.add_parser(
            "replay", help="send dead letters back to the topic and partition they came from"
        )
        replay.add_argument(
            "ids", nargs="*", metavar="ID", help="which ones (default: all not yet replayed)"
        )
        replay.add_argument("--force", action="store_true", help="send replayed ones again")

    def run(self, args: argparse.Namespace) -> int:
        asyncio.run(self._run(args, cli_settings()))
        return 0

    async def _run(self, args: argparse.Namespace, settings: StackSettings) -> None:
        from settlewatch.cli import deadletters
        from settlewatch.common.kafka import Topics
        from settlewatch.common.publisher import Publisher

        bootstrap = settings.kafka_bootstrap_servers or f"127.0.0.1:{settings.broker_port}"
        topics = Topics(settings.topic_prefix)
        letters = await deadletters.load(bootstrap, topics)
        if args.action == "list":
            print(deadletters.render(letters))
        elif args.action == "show":
            print(deadletters.find(letters, args.id).show())
        else:
            publisher = Publisher(bootstrap, enable_idempotence=False, timeout=30.0)
            try:
                sent = await deadletters.replay(
                    publisher, topics, letters, args.ids, force=args.force, now=datetime.now(UTC)
                )
            finally:
                await publisher.close()
            for letter in sent:
                print(f"replayed {letter.id} to {letter.body['topic']}[{letter.body['partition']}]")
            print(f"{len(sent)} dead letters replayed")


class Import:
    name = "import"
    help = (
        "import a settlement file (bank statement, clearing report) through recon's API "
        "(SETTLEWATCH_RECON_URL, SETTLEWATCH_TOKEN; a running `settlewatch up` by default)"
    )

    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        parser.add_argument(
            "file", type=Path, nargs="?", help="the file, as the bank or network sent it"
        )
        parser.add_argument("--format", default="auto", help=f"{formats.HELP}; default auto")
        parser.add_argument(
            "--watch",
            type=Path,
            metavar="DIR",
            help="import every file dropped in DIR, once, moving it to DIR/done/ or "
            "DIR/rejected/ with a .json report; keeps watching until Ctrl-C",
        )

    def run(self, args: argparse.Namespace) -> int:
        from settlewatch.cli import importing

        settings = cli_settings()
        if (args.file is None) == (args.watch is None):
            raise UsageError("name a FILE to import, or a folder to --watch")
        if args.watch is not None:
            from settlewatch.cli import watching

            url, token = importing.recon_url(settings), importing.token_of(settings)
            try:
                watching.watch(args.watch, args.format, url, token, sys.stdout)
            except KeyboardInterrupt:
                print("stopped", file=sys.stdout)
            return 0
        status, body = importing.post_file(
            args.file,
            args.format,
            importing.recon_url(settings),
            importing.token_of(settings),
            importing.progress_stream(),
        )
        print(importing.render(status, body))
        return importing.exit_code(status, body)


class Calendar:
    name = "calendar"
    help = (
        "load a year of a business calendar (holidays, working weekend days) through ingest's "
        "API, from JSON or a CSV of date,is_workday rows"
    )

    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        parser.add_argument("action", choices=["load"])
        parser.add_argument("file", type=Path, help="JSON (the API's body) or CSV")
        parser.add_argument("--calendar", default="CN", help="the calendar (default CN)")
        parser.add_argument("--year", type=int, help="default: the year of the file's days")
        parser.add_argument("--source", help="where the schedule comes from (default: the file)")

    def run(self, args: argparse.Namespace) -> int:
        from settlewatch.cli import calendars, importing

        settings = cli_settings()
        year, body = calendars.read_file(args.file, args.year)
        if args.source:
            body["source"] = args.source
        url, token = importing.ingest_url(settings), importing.token_of(settings)
        status, answer = calendars.put_year(url, token, args.calendar, year, body)
        print(calendars.render(status, answer))
        return 0 if status in (200, 201) else 1


class Replay:
    name = "replay"
    help = (
        "feed a recorded period of the log through a fresh matcher, with no side effects, and "
        "print its findings (the live matcher's settings: DATABASE_URL, KAFKA_BOOTSTRAP_SERVERS)"
    )

    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        parser.add_argument("--from", dest="start", type=replaying.instant, required=True)
        parser.add_argument("--to", dest="end", type=replaying.instant, required=True)
        parser.add_argument(
            "--terms", type=Path, help="merchant profiles to use instead of the log's (JSON)"
        )
        parser.add_argument(
            "--against-live",
            action="store_true",
            help="compare with the findings recorded live; exit 0 only if identical",
        )

    def run(self, args: argparse.Namespace) -> int:
        from settlewatch.common.gc_tuning import tune_gc
        from settlewatch.matcher import replay

        settings = load_settings(MatcherSettings)
        configure_logging("replay", settings.log_level)
        terms = replaying.read_terms(args.terms) if args.terms else None
        tune_gc()  # the engine in this process, as in the matcher's
        replayed = asyncio.run(replay.replay(settings, args.start, args.end, terms))
        print(replaying.render(replayed))
        if not args.against_live:
            return 0
        live = asyncio.run(replay.live_findings(settings.database_url, args.start, args.end))
        differences = replay.compare(live, replayed)
        print(replaying.render_differences(differences))
        return 1 if differences else 0


BUILT_IN: tuple[Command, ...] = (
    Serve(),
    Migrate(),
    DeadLetters(),
    Import(),
    Calendar(),
    Replay(),
)

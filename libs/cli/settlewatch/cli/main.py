"""The ``settlewatch`` command (SPEC §2): the built-in commands and those other installed parts
add (entry-point group ``settlewatch.commands``)."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from importlib.metadata import EntryPoint, entry_points

from settlewatch.cli.commands import BUILT_IN, Command
from settlewatch.common.errors import ConfigError, UsageError

__all__ = ["main"]

GROUP = "settlewatch.commands"


class _NotInstalled:
    """A command whose package is missing its extra (a production install has no `up`)."""

    def __init__(self, entry: EntryPoint, error: ImportError) -> None:
        self.name = entry.name
        self._install = f"pip install 'settlewatch[{','.join(entry.extras) or 'dev'}]'"
        self.help = f"(not installed: {self._install})"
        self._error = error

    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        parser.add_argument("args", nargs=argparse.REMAINDER)

    def run(self, args: argparse.Namespace) -> int:
        raise UsageError(
            f"this installation has no `{self.name}` ({self._error.name} is missing); "
            f"install it with {self._install} or `make install`"
        )


def _commands() -> list[Command]:
    commands: list[Command] = list(BUILT_IN)
    for entry in sorted(entry_points(group=GROUP), key=lambda e: e.name):
        try:
            commands.append(entry.load())
        except ImportError as exc:
            commands.append(_NotInstalled(entry, exc))
    return commands


def _parser(commands: Sequence[Command] | None = None) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="settlewatch",
        description="Settlement monitoring for card acquirers. Configured by environment "
        "variables; see docs/configuration.md.",
    )
    subparsers = parser.add_subparsers(dest="command", required=True)
    for command in _commands() if commands is None else commands:
        command.add_arguments(subparsers.add_parser(command.name, help=command.help))
    return parser


def main(argv: list[str] | None = None) -> None:
    commands = {command.name: command for command in _commands()}
    args = _parser(list(commands.values())).parse_args(argv)
    try:
        code = commands[args.command].run(args)
    except (ConfigError, UsageError) as exc:
        print(f"settlewatch {args.command}: {exc}", file=sys.stderr)
        raise SystemExit(2) from None
    raise SystemExit(code)


if __name__ == "__main__":
    main()

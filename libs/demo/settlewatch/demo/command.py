"""``settlewatch demo``, added to the command line by the ``demo`` extra."""

from __future__ import annotations

import argparse
import asyncio
from datetime import timedelta

from settlewatch.cli.commands import cli_settings
from settlewatch.demo.run import run_demo

__all__ = ["DEMO"]


class Demo:
    name = "demo"
    help = "play a bank-outage scenario against the stack (starting it if needed)"

    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        parser.add_argument(
            "--due-in",
            type=int,
            default=120,
            choices=range(30, 3601),
            metavar="SECONDS",
            help="deadlines fall due at the first whole minute this long from now (30–3600)",
        )
        parser.add_argument(
            "--keep", action="store_true", help="leave a stack the demo started running"
        )

    def run(self, args: argparse.Namespace) -> int:
        due_in = timedelta(seconds=args.due_in)
        return asyncio.run(run_demo(cli_settings(), due_in=due_in, keep=args.keep))


DEMO = Demo()

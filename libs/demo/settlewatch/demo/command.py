"""``settlewatch demo``, added to the command line by the ``demo`` extra."""

from __future__ import annotations

import argparse
import asyncio
import importlib.util
from datetime import timedelta

from settlewatch.cli.commands import cli_settings

__all__ = ["DEMO"]

# The extra's package is imported only when the demo runs: without it the command must not load
# at all, so that `settlewatch` says which extra to install.
if importlib.util.find_spec("rich") is None:
    raise ModuleNotFoundError("No module named 'rich'", name="rich")


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
        # here: every command line starts fast
        from settlewatch.demo.run import run_demo, stop_on_ctrl_c

        code, left_running = asyncio.run(run_demo(cli_settings(), due_in=due_in, keep=args.keep))
        if left_running is not None:
            stop_on_ctrl_c(left_running)
        return code


DEMO = Demo()

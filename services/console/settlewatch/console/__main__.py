"""`python -m settlewatch.console` / `settlewatch serve console`."""

from __future__ import annotations

from settlewatch.common.config import ConsoleSettings
from settlewatch.common.service import run_service
from settlewatch.console.app import create_app


def main() -> None:
    run_service("console", ConsoleSettings, create_app)


if __name__ == "__main__":
    main()

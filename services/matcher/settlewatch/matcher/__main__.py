"""`python -m settlewatch.matcher` / `settlewatch serve matcher`."""

from __future__ import annotations

from settlewatch.common.config import MatcherSettings
from settlewatch.common.service import run_service
from settlewatch.matcher.app import create_app


def main() -> None:
    run_service("matcher", MatcherSettings, create_app)


if __name__ == "__main__":
    main()

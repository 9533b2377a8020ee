"""`python -m settlewatch.alerts` / `settlewatch serve alerts`."""

from __future__ import annotations

from settlewatch.alerts.app import create_app
from settlewatch.common.config import AlertsSettings
from settlewatch.common.service import run_service


def main() -> None:
    run_service("alerts", AlertsSettings, create_app)


if __name__ == "__main__":
    main()

"""`python -m settlewatch.ingest` / `settlewatch serve ingest`."""

from __future__ import annotations

from settlewatch.common.config import IngestSettings
from settlewatch.common.service import run_service
from settlewatch.ingest.app import create_app


def main() -> None:
    run_service("ingest", IngestSettings, create_app)


if __name__ == "__main__":
    main()

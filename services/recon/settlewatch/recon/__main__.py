"""`python -m settlewatch.recon` / `settlewatch serve recon`."""

from __future__ import annotations

from settlewatch.common.config import ReconSettings
from settlewatch.common.service import run_service
from settlewatch.recon.app import create_app


def main() -> None:
    run_service("recon", ReconSettings, create_app)


if __name__ == "__main__":
    main()

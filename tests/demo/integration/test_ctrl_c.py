"""`make demo` leaves its stack up for its links until Ctrl-C: the first Ctrl-C stops it (it did
nothing for over a minute while the wait blocked inside asyncio.run, which only cancels its task
on a first Ctrl-C; a second one was needed)."""

from __future__ import annotations

import signal
import subprocess
import sys
import time

WAITER = """
import asyncio, subprocess, sys
from settlewatch.demo.run import stop_on_ctrl_c

async def demo():
    stack = subprocess.Popen(
        [sys.executable, "-c", "import time; time.sleep(600)"], start_new_session=True
    )
    return 0, stack

code, stack = asyncio.run(demo())
print("waiting", flush=True)
stop_on_ctrl_c(stack)
print("stopped", stack.returncode, flush=True)
"""


def test_one_ctrl_c_stops_the_stack_the_demo_left_running() -> None:
    waiter = subprocess.Popen(
        [sys.executable, "-c", WAITER], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    assert waiter.stdout is not None
    assert waiter.stdout.readline().strip() == "waiting"
    time.sleep(0.2)
    waiter.send_signal(signal.SIGINT)  # as the terminal's Ctrl-C, once
    out, err = waiter.communicate(timeout=30)
    assert waiter.returncode == 0, err
    assert out.lstrip().startswith("Stopping the stack")
    assert "stopped -2" in out  # the stack got SIGINT and ended by it

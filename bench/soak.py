"""Soak: memory of `settlewatch up` on its embedded parts under a steady load, and whether it
keeps up.

`settlewatch up` runs on free ports; sales are posted at `--rate` events/s (batches of 100, one
merchant each, `occurred_at` now) for `--minutes`; every minute the resident memory (RSS) of the
broker and of each service is sampled. The embedded broker keeps every message in memory and
enforces no retention, so `up` restarts it empty once it holds
SETTLEWATCH_EMBEDDED_BROKER_MAX_RECORDS records and all were consumed (ingest refuses
connections for those seconds: the poster sends again). Its peak growth is the figure to know.
Reference measured in the same run: the size of the events as posted (JSON bytes). Last line:
``RESULT broker_growth_ratio=<broker peak RSS growth ÷ bytes posted>`` (falls as the run gets
longer when retention works).
"""

from __future__ import annotations

import argparse
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import httpx
import orjson
import psutil

from bench.parts import SERVICES, settlewatch_up

TOKEN = "soak-token-0123456789"
PROFILE = {"name": "Soak merchant", "settlement_bank": "ICBC", "settlement_cycle": "T1"}


@dataclass(frozen=True)
class Sample:
    minute: int
    events: int  # posted so far
    broker_mb: float
    services_mb: list[float]
    broker_pid: int  # a new one each time `up` empties the broker


def live(run_dir: Path, name: str) -> tuple[int, float]:
    """PID and resident memory (MB) of the process now: its PID changes each time the broker is
    emptied (ingest is held meanwhile, the others restarted), so it is read until it is alive."""
    deadline = time.monotonic() + 60
    while True:
        try:
            pid = int((run_dir / f"{name}.pid").read_text())
            return pid, float(psutil.Process(pid).memory_info().rss) / 2**20
        except (FileNotFoundError, ValueError, psutil.NoSuchProcess):
            assert time.monotonic() < deadline, f"no live {name}"
            time.sleep(0.2)


def sample(run_dir: Path, minute: int, events: int) -> Sample:
    broker_pid, broker_mb = live(run_dir, "broker")
    services = [live(run_dir, name)[1] for name in SERVICES]
    return Sample(minute, events, broker_mb, services, broker_pid)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rate", type=int, default=1000, help="events per second")
    parser.add_argument("--minutes", type=int, default=20)
    parser.add_argument("--log", type=Path, help="keep the stack's log (JSON lines) here")
    args = parser.parse_args()
    with settlewatch_up(args.log, SETTLEWATCH_API_TOKENS=f"{TOKEN}=acquirer") as stack:
        samples, posted_bytes, posted = load(stack.run_dir, stack.ports, args.rate, args.minutes)
    print("minute  events     broker MB  " + "  ".join(f"{s:>8} MB" for s in SERVICES))
    for row in samples:
        columns = "  ".join(f"{mb:>11.0f}" for mb in row.services_mb)
        print(f"{row.minute:>6}  {row.events:>9,}  {row.broker_mb:>9.0f}  {columns}")
    growth = (max(row.broker_mb for row in samples) - samples[0].broker_mb) * 2**20
    print(
        f"broker: peak +{growth / 2**20:.0f} MB, last {samples[-1].broker_mb:.0f} MB, for "
        f"{posted:,} events ({posted_bytes / max(posted, 1):.0f} B posted each); emptied "
        f"{len({row.broker_pid for row in samples}) - 1} times"
    )
    print(f"RESULT broker_growth_ratio={growth / max(posted_bytes, 1):.2f}")


def load(
    run_dir: Path, ports: dict[str, int], rate: int, minutes: int
) -> tuple[list[Sample], int, int]:
    base = f"http://127.0.0.1:{ports['ingest']}"
    client = httpx.Client(base_url=base, headers={"authorization": f"Bearer {TOKEN}"}, timeout=30)
    deadline = time.monotonic() + 120
    while True:
        try:
            if client.put("/v1/merchants/M1", json=PROFILE).status_code in (200, 201):
                break
        except httpx.HTTPError:
            pass
        assert time.monotonic() < deadline, "the stack did not come up"
        time.sleep(0.5)
    samples: list[Sample] = []
    posted = posted_bytes = 0
    started = time.monotonic()
    for minute in range(minutes + 1):
        samples.append(sample(run_dir, minute, posted))
        if minute == minutes:
            break
        while time.monotonic() < started + 60 * (minute + 1):
            now = datetime.now(UTC).isoformat()
            items = [
                {
                    "txn_id": f"S{posted + i}",
                    "merchant_id": "M1",
                    "terminal_id": "POS-1",
                    "type": "sale",
                    "amount_minor": 12800,
                    "currency": "CNY",
                    "occurred_at": now,
                    "card_fingerprint": f"fp-{posted + i}",
                }
                for i in range(100)
            ]
            body = orjson.dumps({"items": items})
            try:
                accepted = client.post("/v1/transactions", content=body).status_code == 202
            except httpx.TransportError:  # ingest held while the broker is emptied
                accepted = False
            if accepted:
                posted += len(items)
                posted_bytes += len(body)
            else:
                time.sleep(0.2)
            # Paced: `rate` events a second on average.
            time.sleep(max(0.0, started + posted / rate - time.monotonic()))
    return samples, posted_bytes, posted


if __name__ == "__main__":
    main()

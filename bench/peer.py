"""The matcher against the stream processor a user would pick instead: Quix Streams.

The records of bench/matcher.py (merchant profiles; transactions and settlements, half of them
settled, keyed by merchant; a clock pulse in every partition every 2000 events), then a last
pulse four days on, past every deadline, are written once to the embedded broker, 12 partitions,
and read by two consumer groups in turn, each doing the matcher's core work — a payment pending
by its txn_id, settled by a settlement, overdue (a finding) when a pulse passes its deadline:

- `settlewatch serve matcher`: state, findings and offsets committed together in PostgreSQL
  per batch (exactly-once effect: a crash resumes from the state that goes with its offsets);
  timed from its first saved batch until its offsets are past every record and every overdue
  finding is published;
- bench/peer_app.py, a Quix Streams application with Quix's RocksDB state, each change also
  written to a changelog topic, offsets committed after the state is flushed (at-least-once), in
  its own environment (`.venv-peer`, which `make bench` makes); timed from its first record until
  the last is processed, its findings produced and its last commit done.

Both must find the same number of overdue payments (the unsettled half). Last line:
``RESULT matcher_vs_quix=<matcher records/s ÷ Quix records/s>``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import subprocess
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

from bench.matcher import PARTITIONS, matcher_consume, produce
from bench.parts import parts, publish_pulse
from settlewatch.common.publisher import Publisher

PEER_PYTHON = Path(".venv-peer/bin/python")
# Quix derives its changelog topics' settings from its input topics' and needs them stated (the
# embedded broker reports none it was not given).
TOPIC_CONFIGS = {"retention.ms": "-1", "retention.bytes": "-1", "cleanup.policy": "delete"}


def quix_consume(
    bootstrap: str, transactions: str, settlements: str, total: int, work: Path
) -> tuple[float, int]:
    if not PEER_PYTHON.exists():
        raise SystemExit(f"{PEER_PYTHON} is missing: make .venv-peer/.installed")
    with (work / "peer.log").open("ab") as log:
        done = subprocess.run(
            [
                str(PEER_PYTHON),
                str(Path(__file__).with_name("peer_app.py")),
                "--bootstrap",
                bootstrap,
                "--transactions",
                transactions,
                "--settlements",
                settlements,
                "--findings",
                f"{transactions}.peer-findings",
                "--records",
                str(total),
                "--state-dir",
                str(work / "quix-state"),
            ],
            stdout=subprocess.PIPE,
            stderr=log,
            timeout=1800,
        )
    if done.returncode != 0:
        tail = (work / "peer.log").read_text().splitlines()[-30:]
        raise SystemExit("the Quix application failed:\n" + "\n".join(tail))
    result = json.loads(done.stdout.decode().strip().splitlines()[-1])
    assert result["records"] >= total, result
    return float(result["seconds"]), int(result["findings"])


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--events", type=int, default=100_000, help="transactions")
    parser.add_argument("--merchants", type=int, default=200)
    args = parser.parse_args()
    prefix = f"peer{uuid.uuid4().hex[:6]}"
    async with parts(prefix, partitions=PARTITIONS, topic_configs=TOPIC_CONFIGS) as p:
        total = await produce(p.bootstrap, p.topics, args.events, args.merchants)
        publisher = Publisher(p.bootstrap, enable_idempotence=False, timeout=60)
        await publish_pulse(publisher, p.topics, datetime.now(UTC) + timedelta(days=4))
        await publisher.close()
        total += 2 * PARTITIONS
        overdue = args.events // 2  # the unsettled half
        matcher_s = await matcher_consume(p, total, str(p.workdir / "matcher.log"), overdue)
        quix_s, quix_overdue = await asyncio.to_thread(
            quix_consume,
            p.bootstrap,
            p.topics.transactions,
            p.topics.settlements,
            total,
            p.workdir,
        )
    assert quix_overdue == overdue, f"Quix found {quix_overdue} overdue, not {overdue}"
    matcher_rate, quix_rate = total / matcher_s, total / quix_s
    print(
        f"records: {total} ({args.events} transactions, half settled, {args.merchants} "
        f"merchants); {overdue} overdue found by both"
    )
    print(f"settlewatch matcher (PostgreSQL, exactly-once effect): {matcher_rate:,.0f} records/s")
    print(f"Quix Streams (RocksDB + changelog, at-least-once): {quix_rate:,.0f} records/s")
    print(f"RESULT matcher_vs_quix={matcher_rate / quix_rate:.2f}")


if __name__ == "__main__":
    asyncio.run(main())

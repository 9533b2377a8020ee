"""The matcher's core work as a Quix Streams application: the peer of `bench/peer.py`.

It runs in an environment of its own (`.venv-peer`, bench/peer-requirements.txt: quixstreams
pins pydantic below settlewatch's), so it imports nothing of settlewatch and reads the records
as they are on the topics: `{"v": 1, "kind": …, "body": …}`, merchant profiles, transactions and
settlements keyed by merchant, clock pulses unkeyed into every partition.

The work is the matcher's core, done the way a Quix user would: a payment is pending by its
txn_id from its transaction, settled by a settlement line naming it, overdue when a clock pulse
passes its deadline (the next day at 18:00 in the merchant's zone for T1, the profile's cycle
kept per merchant), each overdue a finding produced to the findings topic. Quix keeps state per
message key; the deadline needs every payment of a partition at a pulse, which has no key, so
the function works in the partition's own namespace through the partition transaction it is
given (the fastest a Quix user can do it: no repartition topic). Deadlines sit in per-minute
buckets, chunks of 100 txn_ids, that a pulse walks up to its clock.

What it persists and guarantees: RocksDB state per partition, every change also written to a
changelog topic, both flushed before the consumer's offsets are committed (every
`--commit-interval` seconds): at-least-once (Quix's exactly-once needs Kafka transactions, which
the embedded broker lacks). It prints one JSON line: records processed and seconds from the
first record to the last commit, and findings produced.
"""

from __future__ import annotations

import argparse
import json
import time
from datetime import datetime, timedelta, timezone
from typing import Any

from quixstreams import Application
from quixstreams.state.base.state import TransactionState

PARTITION = b"partition"  # the one namespace of a partition's state
CHINA = timezone(timedelta(hours=8))
DUE_DAYS = {"T0": 0, "D0": 0, "T1": 1, "D1": 1}
CHUNK = 100


def due_ms(occurred_at: str, cycle: str) -> int:
    """The deadline: the cycle's day after the local date at 18:00 (+08:00), weekends skipped
    for T cycles (the matcher's calendars are richer; this is the peer's whole rule)."""
    local = datetime.fromisoformat(occurred_at).astimezone(CHINA)
    day = local.date() + timedelta(days=DUE_DAYS.get(cycle, 1))
    while cycle.startswith("T") and day.weekday() >= 5:
        day += timedelta(days=1)
    due = datetime(day.year, day.month, day.day, 18, tzinfo=CHINA)
    return int(due.timestamp() * 1000)


class Core:
    """The work on one record, in its partition's state (a Quix PartitionTransaction)."""

    def __init__(self) -> None:
        self.processed = 0
        self.findings = 0

    def __call__(self, value: dict[str, Any], state: Any) -> list[dict[str, Any]]:
        self.processed += 1
        # The partition's transaction, in a namespace of ours instead of the record's key.
        space = TransactionState(PARTITION, state._transaction)
        kind, body = value["kind"], value["body"]
        if kind == "transaction":
            self.transaction(space, body)
        elif kind == "settlement":
            for line in body["items"]:
                payment = space.get(line["txn_id"])
                if payment is not None and payment["status"] != "settled":
                    payment["status"] = "settled"
                    payment["settlement_id"] = body["settlement_id"]
                    space.set(line["txn_id"], payment)
        elif kind == "merchant":
            cycle = body["profile"]["settlement_cycle"]
            space.set("merchant:" + body["merchant_id"], cycle)
        elif kind == "pulse":
            return self.tick(space, int(datetime.fromisoformat(body["at"]).timestamp() * 1000))
        return []

    def transaction(self, space: TransactionState, txn: dict[str, Any]) -> None:
        if space.exists(txn["txn_id"]):
            return  # redelivered
        cycle = space.get("merchant:" + txn["merchant_id"], "T1")
        due = due_ms(txn["occurred_at"], cycle)
        payment = {
            "merchant_id": txn["merchant_id"],
            "amount_minor": txn["amount_minor"],
            "currency": txn["currency"],
            "due_ms": due,
            "status": "pending",
        }
        space.set(txn["txn_id"], payment)
        # A minute's deadlines in chunks of CHUNK ids: an append rewrites one chunk, not all.
        minute = f"due:{due // 60_000}"
        count = space.get(minute, 0)
        chunk = f"{minute}:{count // CHUNK}"
        space.set(chunk, [*space.get(chunk, []), txn["txn_id"]])
        space.set(minute, count + 1)
        first = space.get("first_bucket", None)
        if first is None or due // 60_000 < first:
            space.set("first_bucket", due // 60_000)

    def tick(self, space: TransactionState, now_ms: int) -> list[dict[str, Any]]:
        first = space.get("first_bucket", None)
        if first is None or first > now_ms // 60_000:
            return []
        findings = []
        for minute in (f"due:{m}" for m in range(first, now_ms // 60_000 + 1)):
            for n in range(0, space.get(minute, 0), CHUNK):
                chunk = f"{minute}:{n // CHUNK}"
                for txn_id in space.get(chunk, []):
                    payment = space.get(txn_id)
                    if payment["status"] == "pending" and payment["due_ms"] <= now_ms:
                        payment["status"] = "overdue"
                        space.set(txn_id, payment)
                        findings.append({"type": "settlement.overdue", "txn_id": txn_id, **payment})
                space.delete(chunk)
            space.delete(minute)
        space.set("first_bucket", now_ms // 60_000 + 1)
        return findings


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--bootstrap", required=True)
    parser.add_argument("--transactions", required=True)
    parser.add_argument("--settlements", required=True)
    parser.add_argument("--findings", required=True)
    parser.add_argument("--records", type=int, required=True, help="stop after this many")
    parser.add_argument("--state-dir", required=True)
    parser.add_argument("--commit-interval", type=float, default=5.0)  # Quix's default
    args = parser.parse_args()
    app = Application(
        broker_address=args.bootstrap,
        consumer_group=f"peer-{time.time_ns()}",
        auto_offset_reset="earliest",
        state_dir=args.state_dir,
        commit_interval=args.commit_interval,
        processing_guarantee="at-least-once",
        loglevel="WARNING",
    )
    core = Core()
    started: list[float] = []

    def work(value: dict[str, Any], state: Any) -> list[dict[str, Any]]:
        if not started:
            started.append(time.perf_counter())
        findings = core(value, state)
        core.findings += len(findings)
        if core.processed >= args.records:
            app.stop()
        return findings

    transactions = app.dataframe(app.topic(args.transactions, value_deserializer="json"))
    settlements = app.dataframe(app.topic(args.settlements, value_deserializer="json"))
    merged = transactions.concat(settlements)
    merged = merged.apply(work, stateful=True, expand=True)
    merged.to_topic(app.topic(args.findings, value_serializer="json"))
    app.run()
    seconds = time.perf_counter() - started[0]
    print(json.dumps({"records": core.processed, "findings": core.findings, "seconds": seconds}))


if __name__ == "__main__":
    main()

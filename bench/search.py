"""The ops desk's payment search at 10 M stored payments (SPEC §12; issue 15: p99 ≤ 100 ms).

10 M payments over 35 business days (20 000 merchants, three terminals each, five banks, the
statuses a month of settling leaves) are written into the matcher's day tables with COPY, each
day attached once loaded (its indexes built then). Then `settlewatch serve matcher` answers
`GET /v1/payments` over HTTP: per filter, 200 searches of random values (a merchant, a
terminal, an rrn, a bank, a status, a merchant's day, the next page of a merchant), limit 100.
Reference, same run and server: `GET /v1/payments/{txn_id}` of random payments. Printed: p50,
p99 and max per filter. Last line: ``RESULT search_p99_ms=<the worst filter's p99>``.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import statistics
import subprocess
import sys
import time
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, date, datetime, timedelta

import asyncpg
import httpx

from bench.parts import Parts, parts, service_env
from settlewatch.matcher.codec import FACT_COLUMNS, STATE_COLUMNS, payment_rows
from settlewatch.matcher.core.model import Payment, Status
from tests.support.ports import free_port
from tests.support.urls import asyncpg_dsn

DAYS = 35
MERCHANTS = 20_000
BANKS = ("ICBC", "CCB", "CMB", "BOCOM", "ABC")
FIRST_DAY = date(2026, 10, 1)
SEARCHES = 200
SPLIT = "matcher_payment_states"  # a payment's state, beside its facts


def sample_payment(i: int, day: date, per_day: int) -> Payment:
    """The i-th of `per_day` payments on `day`, as a month of settling leaves it."""
    # The k-th payment of day d; scattered (a prime multiplier) so that every bank, and every
    # merchant, sells on every day.
    k, d = divmod(i, DAYS)
    number = (k * 7919 + d) % MERCHANTS
    merchant = f"M{number:05d}"
    spread = (i // DAYS) % per_day * 86_400 // per_day  # the day's payments across its hours
    occurred = datetime.combine(day, datetime.min.time(), UTC) + timedelta(seconds=spread)
    due = occurred + timedelta(days=1)
    status: Status = "settled" if i % 50 else ("overdue" if i % 100 else "pending")
    amount = 1_000 + i * 7919 % 500_000
    return Payment(
        txn_id=f"T{i:09d}",
        merchant_id=merchant,
        kind="sale",
        amount_minor=amount,
        currency="CNY",
        occurred_at=occurred,
        business_date=day,
        base_due_at=due,
        due_at=due,
        expected_net_minor=amount - amount * 6 // 1000,
        bank_code=BANKS[number % len(BANKS)],
        cycle="T1",
        digest="0" * 16,
        card_fingerprint=f"fp{i}",
        evidence={"terminal_id": f"{merchant}-P{i % 3}", "rrn": f"{i:012d}"},
        status=status,
        reported=status,
        overdue_fired=status == "overdue",
        history=[(occurred, "received", {"kind": "sale"})],
    )


def _rows(i: int, day: date, per_day: int) -> tuple[tuple[object, ...], tuple[object, ...]]:
    # A partition no matcher owns here: its service starts without loading them.
    return payment_rows(sample_payment(i, day, per_day), 100)


async def load(database_url: str, total: int) -> float:
    """Write `total` payments, a day's table at a time; the seconds it took."""
    started = time.perf_counter()
    conn = await asyncpg.connect(asyncpg_dsn(database_url))
    per_day = total // DAYS
    try:
        for d in range(DAYS):
            day = FIRST_DAY + timedelta(days=d)
            tables = {t: f"{t}_d{day:%Y%m%d}" for t in ("matcher_payments", SPLIT)}
            for parent, table in tables.items():
                await conn.execute(
                    f"CREATE TABLE {table} (LIKE {parent} INCLUDING DEFAULTS INCLUDING GENERATED)"
                )
            start = d * per_day
            for chunk in range(start, start + per_day, 100_000):
                end = min(chunk + 100_000, start + per_day)
                rows = [
                    _rows(i * DAYS + d, day, per_day) for i in range(chunk - start, end - start)
                ]
                await conn.copy_records_to_table(
                    tables["matcher_payments"], records=[f for f, _ in rows], columns=FACT_COLUMNS
                )
                await conn.copy_records_to_table(
                    tables[SPLIT], records=[s for _, s in rows], columns=STATE_COLUMNS
                )
            for parent, table in tables.items():
                await conn.execute(
                    f"ALTER TABLE {parent} ATTACH PARTITION {table} "
                    f"FOR VALUES FROM ('{day}') TO ('{day + timedelta(days=1)}')"
                )
            print(
                f"  day {d + 1}/{DAYS} loaded ({time.perf_counter() - started:.0f} s)", flush=True
            )
        await conn.execute(f"ANALYZE matcher_payments, {SPLIT}")
    finally:
        await conn.close()
    return time.perf_counter() - started


async def timed(call: Callable[[], Awaitable[httpx.Response]]) -> float:
    started = time.perf_counter()
    response = await call()
    elapsed = (time.perf_counter() - started) * 1000
    assert response.status_code == 200, response.text
    return elapsed


def summary(name: str, ms: list[float]) -> float:
    ordered = sorted(ms)
    p99 = ordered[max(0, int(len(ordered) * 0.99) - 1)]
    print(
        f"{name:<28} p50 {statistics.median(ordered):6.1f} ms  p99 {p99:6.1f} ms  "
        f"max {ordered[-1]:6.1f} ms"
    )
    return p99


async def measure(url: str, token: str, total: int) -> dict[str, float]:
    rng = random.Random(1)
    per_day = total // DAYS

    def txn() -> str:
        return f"T{rng.randrange(per_day * DAYS):09d}"

    def merchant() -> str:
        return f"M{rng.randrange(MERCHANTS):05d}"

    def day_of(d: int) -> tuple[str, str]:
        start = datetime.combine(FIRST_DAY + timedelta(days=d), datetime.min.time(), UTC)
        return start.isoformat(), (start + timedelta(days=1)).isoformat()

    headers = {"authorization": f"Bearer {token}"}
    async with httpx.AsyncClient(base_url=url, headers=headers, timeout=30) as client:

        def search(params: Callable[[], dict[str, str]]) -> Callable[[], Awaitable[httpx.Response]]:
            return lambda: client.get("/v1/payments", params=params() | {"limit": "100"})

        async def next_page() -> httpx.Response:  # timed: both pages
            params = {"merchant_id": merchant(), "limit": "100"}
            first = await client.get("/v1/payments", params=params)
            if (cursor := first.json()["next_cursor"]) is None:
                return first
            return await client.get("/v1/payments", params=params | {"cursor": cursor})

        def merchant_day() -> dict[str, str]:
            since, until = day_of(rng.randrange(DAYS))
            return {"merchant_id": merchant(), "from": since, "to": until}

        cases: dict[str, Callable[[], Awaitable[httpx.Response]]] = {
            "reference: one by txn_id": lambda: client.get(f"/v1/payments/{txn()}"),
            "merchant": search(lambda: {"merchant_id": merchant()}),
            "merchant + status overdue": search(
                lambda: {"merchant_id": merchant(), "status": "overdue"}
            ),
            "merchant + one day": search(merchant_day),
            "terminal": search(lambda: {"terminal_id": f"{merchant()}-P{rng.randrange(3)}"}),
            "rrn": search(lambda: {"rrn": f"{rng.randrange(per_day * DAYS):012d}"}),
            "bank": search(lambda: {"bank_code": rng.choice(BANKS)}),
            "bank + one day": search(
                lambda: (
                    dict(zip(("from", "to"), day_of(rng.randrange(DAYS)), strict=True))
                    | {"bank_code": rng.choice(BANKS)}
                )
            ),
            "everything, newest": search(dict),
            "merchant, next page": next_page,
        }
        results: dict[str, float] = {}
        for name, call in cases.items():
            await timed(call)  # warm the plan cache
            results[name] = summary(name, [await timed(call) for _ in range(SEARCHES)])
        return results


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--payments", type=int, default=10_000_000)
    args = parser.parse_args()
    token = f"bench-{uuid.uuid4().hex}"
    async with parts(f"search{uuid.uuid4().hex[:6]}", partitions=1) as p:
        print(f"loading {args.payments:,} payments over {DAYS} days…", flush=True)
        seconds = await load(p.database_url, args.payments)
        print(f"loaded in {seconds:.0f} s ({args.payments / seconds:,.0f} payments/s)")
        results = await serve_and_measure(p, token, args.payments)
    worst = max(v for k, v in results.items() if not k.startswith("reference"))
    print(f"RESULT search_p99_ms={worst:.0f}")


async def serve_and_measure(p: Parts, token: str, total: int) -> dict[str, float]:
    port = free_port()
    env = service_env(p, MATCHER_PORT=str(port), SETTLEWATCH_API_TOKENS=f"{token}=acquirer")
    with (p.workdir / "matcher.log").open("ab") as log:
        matcher = subprocess.Popen(
            [sys.executable, "-m", "settlewatch.cli", "serve", "matcher"],
            env=os.environ | env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    try:
        url = f"http://127.0.0.1:{port}"
        async with httpx.AsyncClient(timeout=2) as client:
            for _ in range(600):
                try:
                    if (await client.get(f"{url}/readyz")).status_code == 200:
                        break
                except httpx.HTTPError:
                    pass
                await asyncio.sleep(0.5)
        return await measure(url, token, total)
    finally:
        matcher.terminate()
        matcher.wait(30)


if __name__ == "__main__":
    asyncio.run(main())

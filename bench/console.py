"""The console's pages at an acquirer's size (issue 30: p95 ≤ 300 ms with 1 M payments and
10 000 open exceptions).

1 M payments are written into the matcher's day tables (bench.search's loader), 10 000 open
exceptions into recon's queue. The four services and the console run as their own processes
(`settlewatch serve …`). A signed-in session then asks, 200 times each, for the Overview, a
merchant's Payments and the Exceptions queue; the reference, same run and servers, is the API
calls each page makes, made directly with the same token (the Overview's at once, as the
console makes them). Printed: p50 and p95 of each page and of its calls, and the console's own
cost (page ÷ calls).

Then exports (issue 30: "a 100 000-row export in constant memory"): the payments of the last
3½ days (≈ 100 000 rows at 1 M) and of a tenth of that, as CSV and XLSX, downloaded as streams;
printed, each with its rows a second against paging the same rows from the matcher's API
directly (the reference, same run), and the console process's resident memory at its peak during
the export above what it held before: constant memory is the same growth for 10 000 rows as for
100 000. The last lines: ``RESULT console_export_memory_mb=<the largest growth>`` and
``RESULT console_p95_ms=<the worst page's p95>``.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import re
import statistics
import subprocess
import sys
import time
import uuid
from collections.abc import Awaitable, Callable, Iterator
from contextlib import ExitStack, contextmanager
from datetime import UTC, datetime, timedelta

import asyncpg
import httpx
import orjson

from bench.parts import Parts, parts, service_env
from bench.search import DAYS, FIRST_DAY, MERCHANTS, load
from tests.support.ports import free_port
from tests.support.urls import asyncpg_dsn

SERVICES = ("ingest", "matcher", "alerts", "recon")
ROUNDS = 200
EXCEPTIONS = 10_000


async def open_exceptions(database_url: str, count: int) -> None:
    """`count` unmatched lines on the desk, opened over the last 40 days (every age bucket)."""
    now = datetime.now(UTC)
    rows = [
        (
            f"line:file_bench:{n}",
            "unmatched_line",
            "open",
            "file_bench",
            n,
            f"M{n % MERCHANTS:05d}",
            "CNY",
            10_000 + n,
            "[]",
            orjson.dumps({"file_id": "file_bench", "seq": n, "rrn": f"R{n}"}).decode(),
            "[]",
            now - timedelta(hours=n * 96 % (40 * 24)),
            now,
        )
        for n in range(count)
    ]
    conn = await asyncpg.connect(asyncpg_dsn(database_url))
    try:
        await conn.copy_records_to_table(
            "file_exceptions",
            records=rows,
            columns=[
                "exception_id",
                "kind",
                "status",
                "file_id",
                "seq",
                "merchant_id",
                "currency",
                "amount_minor",
                "finding_ids",
                "evidence",
                "history",
                "opened_at",
                "updated_at",
            ],
        )
        await conn.execute("ANALYZE file_exceptions")
    finally:
        await conn.close()


@contextmanager
def serving(p: Parts, token: str) -> Iterator[tuple[dict[str, str], dict[str, int]]]:
    """The four services and the console, each `settlewatch serve`d; their base URLs and
    process ids."""
    ports = {name: free_port() for name in (*SERVICES, "console")}
    env = service_env(
        p,
        SETTLEWATCH_API_TOKENS=f"{token}=acquirer",
        **{f"{name.upper()}_PORT": str(port) for name, port in ports.items()},
    )
    pids: dict[str, int] = {}
    with ExitStack() as stack:
        for name in ports:
            log = stack.enter_context((p.workdir / f"{name}.log").open("ab"))
            process = subprocess.Popen(
                [sys.executable, "-m", "settlewatch.cli", "serve", name],
                env=os.environ | env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
            pids[name] = process.pid
            stack.callback(process.wait, 30)
            stack.callback(process.terminate)
        yield {name: f"http://127.0.0.1:{port}" for name, port in ports.items()}, pids


async def ready(urls: dict[str, str]) -> None:
    async with httpx.AsyncClient(timeout=2) as client:
        for url in urls.values():
            for _ in range(600):
                try:
                    if (await client.get(f"{url}/readyz")).status_code == 200:
                        break
                except httpx.HTTPError:
                    pass
                await asyncio.sleep(0.5)


async def signed_in(console: httpx.AsyncClient, token: str) -> None:
    form = await console.get("/sign-in")
    csrf = re.search(r'name="csrf" value="([^"]+)"', form.text)
    assert csrf is not None
    answer = await console.post("/sign-in", data={"token": token, "csrf": csrf.group(1)})
    assert answer.status_code == 303, answer.text


async def timed(call: Callable[[], Awaitable[None]]) -> float:
    started = time.perf_counter()
    await call()
    return (time.perf_counter() - started) * 1000


def percentiles(ms: list[float]) -> tuple[float, float]:
    ordered = sorted(ms)
    return statistics.median(ordered), ordered[max(0, int(len(ordered) * 0.95) - 1)]


async def measure(urls: dict[str, str], token: str) -> dict[str, tuple[float, float]]:
    rng = random.Random(1)
    auth = {"authorization": f"Bearer {token}"}
    async with (
        httpx.AsyncClient(base_url=urls["console"], timeout=30) as console,
        httpx.AsyncClient(headers=auth, timeout=30) as api,
    ):
        await signed_in(console, token)

        def page(path: Callable[[], str]) -> Callable[[], Awaitable[None]]:
            async def get() -> None:
                answer = await console.get(path())
                assert answer.status_code == 200, answer.text[-500:]

            return get

        def calls(*paths: Callable[[], str]) -> Callable[[], Awaitable[None]]:
            async def get() -> None:
                answers = await asyncio.gather(*(api.get(path()) for path in paths))
                assert all(a.status_code in (200, 503) for a in answers)

            return get

        def merchant() -> str:
            return f"M{rng.randrange(MERCHANTS):05d}"

        def readyz(service: str) -> Callable[[], str]:
            return lambda: f"{urls[service]}/readyz"

        chosen: list[str] = []

        def payments_page() -> str:
            chosen.append(merchant())
            return f"/payments?merchant_id={chosen[-1]}"

        def payments_call() -> str:
            return f"{urls['matcher']}/v1/payments?merchant_id={chosen[-1]}&limit=50"

        cases: dict[str, tuple[Callable[[], Awaitable[None]], Callable[[], Awaitable[None]]]] = {
            "Overview": (
                page(lambda: "/"),
                calls(
                    lambda: f"{urls['matcher']}/v1/banks/summary",
                    lambda: f"{urls['alerts']}/v1/alerts/counts",
                    lambda: f"{urls['recon']}/v1/exceptions/summary",
                    *(readyz(s) for s in SERVICES),
                ),
            ),
            "Payments of a merchant": (page(payments_page), calls(payments_call)),
            "Exceptions, open": (
                page(lambda: "/exceptions?status=open"),
                calls(lambda: f"{urls['recon']}/v1/exceptions?status=open&limit=50"),
            ),
        }
        results: dict[str, tuple[float, float]] = {}
        for name, (rendered, underlying) in cases.items():
            await rendered()  # warm: plans, templates, connections
            page_ms, api_ms = [], []
            for _ in range(ROUNDS):
                page_ms.append(await timed(rendered))
                api_ms.append(await timed(underlying))
            (p50, p95), (a50, a95) = percentiles(page_ms), percentiles(api_ms)
            print(
                f"{name:<24} page p50 {p50:6.1f} ms  p95 {p95:6.1f} ms   "
                f"its API calls p50 {a50:6.1f} ms  p95 {a95:6.1f} ms   "
                f"console's cost ×{p50 / a50:4.2f} (p50)"
            )
            results[name] = (p95, a95)
        return results


def rss_kb(pid: int) -> int:
    """A process's resident memory now (its children's are apart: the console has none)."""
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise RuntimeError(f"no VmRSS for {pid}")


async def watch_rss(pid: int, peak: list[int]) -> None:
    """Keeps peak[0] the largest resident memory of the process seen, every 20 ms (an XLSX is
    built before its first byte leaves)."""
    while True:
        peak[0] = max(peak[0], rss_kb(pid))
        await asyncio.sleep(0.02)


async def exports(urls: dict[str, str], token: str, console_pid: int, total: int) -> float:
    """Each export's rows a second against the API's, and the console's memory growth; returns
    the largest growth (MB)."""
    per_day = total / DAYS
    # The newest days: the running matcher forgets the oldest settled ones meanwhile.
    end = datetime.combine(FIRST_DAY + timedelta(days=DAYS), datetime.min.time(), UTC)
    auth = {"authorization": f"Bearer {token}"}
    worst = 0.0
    async with (
        httpx.AsyncClient(base_url=urls["console"], timeout=600) as console,
        httpx.AsyncClient(base_url=urls["matcher"], headers=auth, timeout=60) as api,
    ):
        await signed_in(console, token)
        for rows in (10_000, 100_000):
            since = end - timedelta(days=rows / per_day)
            span = {"from": since.isoformat(), "to": end.isoformat()}
            started, paged, cursor = time.perf_counter(), 0, None
            while True:
                page = (
                    await api.get(
                        "/v1/payments",
                        params=span | {"limit": 1000} | ({"cursor": cursor} if cursor else {}),
                    )
                ).json()
                paged += len(page["items"])
                if (cursor := page["next_cursor"]) is None:
                    break
            api_rate = paged / (time.perf_counter() - started)
            for fmt in ("csv", "xlsx"):
                before = rss_kb(console_pid)
                peak = [before]
                sampler = asyncio.create_task(watch_rss(console_pid, peak))
                started, size = time.perf_counter(), 0
                async with console.stream("GET", f"/payments/export.{fmt}", params=span) as answer:
                    assert answer.status_code == 200
                    async for chunk in answer.aiter_bytes():
                        size += len(chunk)
                sampler.cancel()
                seconds = time.perf_counter() - started
                grown = (peak[0] - before) / 1024
                worst = max(worst, grown)
                print(
                    f"export {fmt:<4} {paged:>7,} rows  {size / 1e6:6.1f} MB  {seconds:5.1f} s  "
                    f"{paged / seconds:7,.0f} rows/s (API paging alone {api_rate:7,.0f}/s, "
                    f"×{(paged / seconds) / api_rate:4.2f})  console memory +{grown:5.1f} MB"
                )
    return worst


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--payments", type=int, default=1_000_000)
    parser.add_argument("--exceptions", type=int, default=EXCEPTIONS)
    args = parser.parse_args()
    token = f"bench-{uuid.uuid4().hex}"
    async with parts(f"console{uuid.uuid4().hex[:6]}", partitions=1) as p:
        print(f"loading {args.payments:,} payments and {args.exceptions:,} exceptions…")
        await load(p.database_url, args.payments)
        await open_exceptions(p.database_url, args.exceptions)
        with serving(p, token) as (urls, pids):
            await ready(urls)
            results = await measure(urls, token)
            grown = await exports(urls, token, pids["console"], args.payments)
    worst = max(p95 for p95, _ in results.values())
    print(f"RESULT console_export_memory_mb={grown:.0f}")
    print(f"RESULT console_p95_ms={worst:.0f}")


if __name__ == "__main__":
    asyncio.run(main())

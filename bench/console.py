"""The console's pages at an acquirer's size (issue 30: p95 ≤ 300 ms with 1 M payments and
10 000 open exceptions).

1 M payments are written into the matcher's day tables (bench.search's loader), 10 000 open
exceptions into recon's queue. The four services and the console run as their own processes
(`settlewatch serve …`). A signed-in session then asks, 200 times each, for the Overview, a
merchant's Payments and the Exceptions queue; the reference, same run and servers, is the API
calls each page makes, made directly with the same token (the Overview's at once, as the
console makes them). Printed: p50 and p95 of each page and of its calls, and the console's own
cost (page ÷ calls). Last line: ``RESULT console_p95_ms=<the worst page's p95>``.
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
from bench.search import MERCHANTS, load
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
def serving(p: Parts, token: str) -> Iterator[dict[str, str]]:
    """The four services and the console, each `settlewatch serve`d; their base URLs."""
    ports = {name: free_port() for name in (*SERVICES, "console")}
    env = service_env(
        p,
        SETTLEWATCH_API_TOKENS=f"{token}=acquirer",
        **{f"{name.upper()}_PORT": str(port) for name, port in ports.items()},
    )
    with ExitStack() as stack:
        for name in ports:
            log = stack.enter_context((p.workdir / f"{name}.log").open("ab"))
            process = subprocess.Popen(
                [sys.executable, "-m", "settlewatch.cli", "serve", name],
                env=os.environ | env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
            stack.callback(process.wait, 30)
            stack.callback(process.terminate)
        yield {name: f"http://127.0.0.1:{port}" for name, port in ports.items()}


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
        with serving(p, token) as urls:
            await ready(urls)
            results = await measure(urls, token)
    worst = max(p95 for p95, _ in results.values())
    print(f"RESULT console_p95_ms={worst:.0f}")


if __name__ == "__main__":
    asyncio.run(main())

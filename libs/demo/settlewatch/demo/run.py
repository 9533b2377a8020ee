"""``settlewatch demo`` / ``make demo``: play the scenario of `scenario.py` against the running
stack (or one it starts), wait for the deadlines, and show what was injected next to what
settlewatch detected, and where to look. Exit code 0 when every injected problem was detected
and nothing else was; 1 otherwise.

The demo also plays a merchant: every 7th merchant's webhook points at a small endpoint the demo
runs on loopback, which checks each delivery's Standard Webhooks signature.
"""

from __future__ import annotations

import asyncio
import base64
import os
import secrets
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import orjson
import uvicorn
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table

from settlewatch.alerts.core.signing import signature
from settlewatch.common.config import StackSettings
from settlewatch.common.errors import UsageError
from settlewatch.demo.festival import Played, play
from settlewatch.demo.scenario import (
    BANKS,
    DEDUCTIONS_MAPPING,
    FAILING_BANK,
    MAINTENANCE_BANK,
    Scenario,
    build,
)

__all__ = ["DemoError", "run_demo", "stop_on_ctrl_c", "stop_stack"]

SETTLE_WAIT = timedelta(seconds=90)  # after the deadlines, the longest the demo waits


class DemoError(UsageError):
    """The demo cannot run (no stack, no token); the message says what to do."""


@dataclass
class MerchantEndpoint:
    """The demo's stand-in for merchants' webhook endpoints."""

    secret: str
    deliveries: set[str] = field(default_factory=set)
    alerts: set[str] = field(default_factory=set)
    bad_signatures: int = 0

    async def app(self, scope: dict[str, Any], receive: Callable[..., Any], send: Any) -> None:
        if scope["type"] != "http":
            return
        body, more = b"", True
        while more:
            message = await receive()
            body += message.get("body", b"")
            more = message.get("more_body", False)
        headers = {k.decode(): v.decode() for k, v in scope["headers"]}
        webhook_id = headers.get("webhook-id", "")
        timestamp = int(headers.get("webhook-timestamp", "0"))
        if headers.get("webhook-signature") != signature(self.secret, webhook_id, timestamp, body):
            self.bad_signatures += 1
        else:
            self.deliveries.add(webhook_id)
            self.alerts |= {a["alert_id"] for a in orjson.loads(body)["data"]["alerts"]}
        await send({"type": "http.response.start", "status": 204, "headers": []})
        await send({"type": "http.response.body", "body": b""})


@asynccontextmanager
async def _merchant_endpoint() -> AsyncIterator[tuple[str, MerchantEndpoint]]:
    endpoint = MerchantEndpoint("whsec_" + base64.b64encode(secrets.token_bytes(24)).decode())
    config = uvicorn.Config(
        endpoint.app,
        host="127.0.0.1",
        port=0,
        log_level="error",
        lifespan="off",
        interface="asgi3",
    )
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())
    while not server.started:
        await asyncio.sleep(0.02)
    port = server.servers[0].sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}/webhook", endpoint
    finally:
        server.should_exit = True
        await task


async def run_demo(
    settings: StackSettings, *, due_in: timedelta, keep: bool
) -> tuple[int, subprocess.Popen[bytes] | None]:
    """The demo's exit code, and the stack it started and leaves running (`keep`) for its
    links: the caller waits for Ctrl-C outside the event loop (stop_on_ctrl_c)."""
    console = Console(width=max(100, Console().width))
    urls = {
        "console": f"http://127.0.0.1:{settings.console_port}",
        "ingest": f"http://127.0.0.1:{settings.ingest_port}",
        "matcher": f"http://127.0.0.1:{settings.matcher_port}",
        "alerts": f"http://127.0.0.1:{settings.alerts_port}",
        "recon": f"http://127.0.0.1:{settings.recon_port}",
    }
    started: subprocess.Popen[bytes] | None = None
    try:
        if not await _ready(urls):
            console.print("No settlewatch stack answers; starting one with `settlewatch up`…")
            started = _start_stack(settings)
            deadline = time.monotonic() + 180
            while not await _ready(urls):
                if started.poll() is not None or time.monotonic() > deadline:
                    raise DemoError("`settlewatch up` did not come up; run it to see why")
                await asyncio.sleep(0.5)
        token = _acquirer_token(settings)
        async with (
            httpx.AsyncClient(headers={"authorization": f"Bearer {token}"}, timeout=60) as client,
            _merchant_endpoint() as (webhook_url, endpoint),
        ):
            now = datetime.now(UTC)
            scenario = build(
                now, due_in=due_in, webhook_url=webhook_url, webhook_secret=endpoint.secret
            )
            console.print(
                f"Demo run [bold]{scenario.run}[/]: {len(scenario.merchants)} merchants on "
                f"{len(BANKS)} banks, {len(scenario.transactions)} transactions; deadlines fall "
                f"due at {scenario.due_at:%H:%M:%S} UTC."
            )
            detected = await _play(console, client, urls, scenario)
            payouts = await _payouts_of(client, urls["recon"], scenario)
            notified = await _webhooks_in(scenario, detected, endpoint)
            stays_up = started is None or keep
            ok = _report(console, scenario, detected, endpoint, notified, urls, payouts, stays_up)
    except BaseException:
        if started is not None:
            stop_stack(started)
        raise
    if started is not None and not keep:
        stop_stack(started)
        started = None
    if started is not None:
        console.print(f"The stack keeps running (pid {started.pid}); Ctrl-C stops it.")
    return (0 if ok else 1), started


def stop_stack(stack: subprocess.Popen[bytes]) -> None:
    """What Ctrl-C does to `settlewatch up`: a graceful stop; it kills what is left itself."""
    if stack.poll() is None:
        stack.send_signal(signal.SIGINT)
        stack.wait(60)


def stop_on_ctrl_c(stack: subprocess.Popen[bytes]) -> None:
    """Wait, outside any event loop, so that the first Ctrl-C is at once a KeyboardInterrupt
    (asyncio.run only cancels its task on a first one: a wait blocking in it went on until a
    second), then stop the stack; a Ctrl-C while it stops is passed on (`up` then kills)."""
    try:
        stack.wait()
    except KeyboardInterrupt:
        print("\nStopping the stack…", flush=True)
    while stack.poll() is None:
        try:
            stop_stack(stack)
        except KeyboardInterrupt:
            continue  # a second SIGINT: `up` kills its services


async def _ready(urls: dict[str, str]) -> bool:
    async with httpx.AsyncClient(timeout=2) as client:
        try:
            answers = [await client.get(f"{url}/readyz") for url in urls.values()]
        except httpx.HTTPError:
            return False
    return all(a.status_code == 200 for a in answers)


def _start_stack(settings: StackSettings) -> subprocess.Popen[bytes]:
    log = settings.data_dir / "log" / "demo-stack.log"
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("ab") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "settlewatch.cli", "up"],
            env=os.environ.copy(),
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # the demo's Ctrl-C is the demo's; it stops the stack itself
        )


def _acquirer_token(settings: StackSettings) -> str:
    for token in settings.api_tokens:
        if token.scope == "acquirer":
            return token.secret.get_secret_value()
    dev = Path(settings.data_dir) / "dev-token"
    if dev.exists():
        return dev.read_text().strip()
    raise DemoError("no acquirer token: set SETTLEWATCH_API_TOKENS or run `settlewatch up` first")


async def _play(
    console: Console, client: httpx.AsyncClient, urls: dict[str, str], scenario: Scenario
) -> dict[str, dict[str, Any]]:
    """Send the scenario, wait for its deadlines, and return the alerts it raised."""
    columns = (
        TextColumn("{task.description:<34}"),
        BarColumn(),
        TextColumn("{task.completed:>5.0f}/{task.total:<5.0f}"),
        TimeRemainingColumn(),
    )
    with Progress(*columns, console=console) as progress:
        await _send(progress, client, urls["ingest"], scenario)
        await _send_files(progress, client, urls, scenario)
        total = max(1.0, (scenario.due_at - datetime.now(UTC)).total_seconds())
        wait = progress.add_task("waiting for the deadlines (s)", total=total)
        while (left := (scenario.due_at - datetime.now(UTC)).total_seconds()) > 0:
            progress.update(wait, completed=total - left)
            await asyncio.sleep(0.5)
        progress.update(wait, completed=total)
        return await _collect(progress, client, urls["alerts"], scenario)


async def _send(
    progress: Progress, client: httpx.AsyncClient, ingest: str, scenario: Scenario
) -> None:
    """Profiles, windows, transactions, then settlements in several files a little apart, as
    banks send them."""
    merchants = progress.add_task("merchant profiles", total=len(scenario.merchants))
    slots = asyncio.Semaphore(16)

    async def register(merchant_id: str, profile: dict[str, Any]) -> None:
        async with slots:
            _check(await client.put(f"{ingest}/v1/merchants/{merchant_id}", json=profile))
            progress.advance(merchants)

    await asyncio.gather(*(register(m, p) for m, p in scenario.merchants.items()))
    for terminal_id, terminal in scenario.terminals.items():  # before their transactions
        _check(await client.put(f"{ingest}/v1/terminals/{terminal_id}", json=terminal))
    for window in scenario.windows:
        announced = await client.post(f"{ingest}/v1/maintenance-windows", json=window)
        _check(announced)
        # Each merchant of the bank is told (its id is the window's, known once announced).
        scenario.expected.alerts["bank.maintenance_scheduled"].update(
            f"bank.maintenance_scheduled:{announced.json()['id']}:{merchant_id}"
            for merchant_id, profile in scenario.merchants.items()
            if profile["settlement_bank"] == window["bank_code"]
        )
    for name, path, items, size, pause in (
        ("transactions", "transactions", scenario.transactions, 500, 0.0),
        ("bank settlements", "settlements", scenario.settlements, 50, 2.0),
    ):
        task = progress.add_task(name, total=len(items))
        for start in range(0, len(items), size):
            if start:
                await asyncio.sleep(pause)
            batch = items[start : start + size]
            _check(await client.post(f"{ingest}/v1/{path}", json={"items": batch}))
            progress.advance(task, len(batch))


async def _send_files(
    progress: Progress, client: httpx.AsyncClient, urls: dict[str, str], scenario: Scenario
) -> None:
    """The clearing report and the bank statement (SPEC §9), and the bank's 对账单 of debits
    (SPEC §11), once the matcher knows the payments their lines settle; then the payouts they
    expect, and their alerts."""
    payouts = scenario.payouts
    if payouts is None:
        return
    task = progress.add_task("settlement files", total=5)
    recon = urls["recon"]
    sold = [t["txn_id"] for t in scenario.transactions if "-P" in t["merchant_id"]]
    sold += scenario.announced
    give_up = time.monotonic() + 60
    while time.monotonic() < give_up:
        known = [await client.get(f"{urls['matcher']}/v1/payments/{t}") for t in sold]
        if all(answer.status_code == 200 for answer in known):
            break
        await asyncio.sleep(0.5)
    progress.advance(task)
    account = f"{recon}/v1/settlement-accounts/{payouts.account_id}"
    _check(await client.put(account, json=payouts.account))
    progress.advance(task)
    for body, fmt in ((payouts.report, "adyen"), (payouts.statement, "camt.053")):
        _check(await client.post(f"{recon}/v1/settlement-files?format={fmt}", content=body))
        progress.advance(task)
    if scenario.deductions is not None:
        mapping = f"demo-debits-{scenario.run}"
        _check(await client.put(f"{recon}/v1/file-mappings/{mapping}", json=DEDUCTIONS_MAPPING))
        imported = await client.post(
            f"{recon}/v1/settlement-files?format=csv:{mapping}", content=scenario.deductions
        )
        _check(imported)
        file_id = imported.json()["file_id"]  # its second line is the unannounced 扣费
        scenario.expected.alerts["fee.unexpected_deduction"].add(
            f"fee.unexpected_deduction:{file_id}:1"
        )
        progress.advance(task)
    for reference, payout in (await _payouts_of(client, recon, scenario)).items():
        outcome = payouts.outcomes[reference]
        if outcome != "arrived":
            alert = f"payout.{outcome}:{payout['payout_id']}"
            scenario.expected.alerts[f"payout.{outcome}"].add(alert)


async def _payouts_of(
    client: httpx.AsyncClient, recon: str, scenario: Scenario
) -> dict[str, dict[str, Any]]:
    """The run's payouts by reference, once the reconciler has recorded them all (≤ 30 s)."""
    if scenario.payouts is None:
        return {}
    day = scenario.payouts.value_date.isoformat()
    give_up = time.monotonic() + 30
    while True:
        params: dict[str, str | int] = {"from": day, "to": day, "limit": 500}
        page = await client.get(f"{recon}/v1/payouts", params=params)
        _check(page)
        found = {
            p["reference"]: p
            for p in page.json()["items"]
            if p["reference"] in scenario.payouts.outcomes
        }
        if len(found) == len(scenario.payouts.outcomes) or time.monotonic() > give_up:
            return found
        await asyncio.sleep(0.5)


async def _collect(
    progress: Progress, client: httpx.AsyncClient, alerts: str, scenario: Scenario
) -> dict[str, dict[str, Any]]:
    """The alerts of the run, once every injected one is there (or the wait is over)."""
    expected = {a for ids in scenario.expected.alerts.values() for a in ids}
    collect = progress.add_task("findings becoming alerts", total=len(expected) + 1)
    give_up = scenario.due_at + SETTLE_WAIT
    while True:
        detected = await _alerts_of(client, alerts, scenario)
        found = len(expected & detected.keys()) + int(_incident_open(detected))
        progress.update(collect, completed=found)
        if found == len(expected) + 1 or datetime.now(UTC) > give_up:
            break
        await asyncio.sleep(2)
    await asyncio.sleep(5)  # anything not injected would show up by now
    return await _alerts_of(client, alerts, scenario)


async def _webhooks_in(
    scenario: Scenario, detected: dict[str, dict[str, Any]], endpoint: MerchantEndpoint
) -> set[str]:
    """The alerts that merchants with a webhook should get; waits (at most a minute, after
    the group wait) until the demo's endpoint has them."""
    hooked = {m for m, profile in scenario.merchants.items() if "webhook" in profile}
    due = {alert_id for alert_id, a in detected.items() if a["merchant_id"] in hooked}
    give_up = time.monotonic() + 60
    while not due <= endpoint.alerts and time.monotonic() < give_up:
        await asyncio.sleep(0.5)
    return due


def _check(answer: httpx.Response) -> None:
    if answer.status_code >= 400:
        raise DemoError(
            f"{answer.request.method} {answer.request.url}: {answer.status_code} {answer.text}"
        )


async def _alerts_of(
    client: httpx.AsyncClient, alerts_url: str, scenario: Scenario
) -> dict[str, dict[str, Any]]:
    """This run's alerts (its merchants'), and bank incidents of the demo's banks."""
    found: dict[str, dict[str, Any]] = {}
    cursor: str | None = None
    since = scenario.due_at - timedelta(hours=1)
    while True:
        params: dict[str, Any] = {"limit": 1000} | ({"cursor": cursor} if cursor else {})
        page = (await client.get(f"{alerts_url}/v1/alerts", params=params)).json()
        for alert in page["items"]:
            mine = (alert["merchant_id"] or "").startswith(f"D{scenario.run}-")
            incident = alert["type"] == "bank.incident" and alert["bank_code"] in BANKS
            if mine or incident:
                found[alert["alert_id"]] = alert
        oldest = page["items"][-1]["created_at"] if page["items"] else None
        cursor = page["next_cursor"]
        if cursor is None or (oldest and datetime.fromisoformat(oldest) < since):
            return found


def _incident_open(detected: dict[str, dict[str, Any]], bank: str = FAILING_BANK) -> bool:
    return any(
        a["type"] == "bank.incident" and a["bank_code"] == bank and a["status"] != "resolved"
        for a in detected.values()
    )


def _report(
    console: Console,
    scenario: Scenario,
    detected: dict[str, dict[str, Any]],
    endpoint: MerchantEndpoint,
    notified: set[str],
    urls: dict[str, str],
    payouts: dict[str, dict[str, Any]],
    stays_up: bool,
) -> bool:
    """Print what was injected next to what was detected; True when they agree."""
    checks, extra = _checks(scenario, detected, endpoint, notified, payouts)
    unloaded, loaded = play(loaded=False), play(loaded=True)
    checks += [
        ("Spring Festival 2027 without its table: calendar.missing", 1, unloaded.calendar_missing),
        (
            "Spring Festival 2027 without its table: estimated deadlines",
            unloaded.sales,
            unloaded.estimated,
        ),
        ("Spring Festival 2027 with its table: overdue alerts", 0, loaded.overdue),
    ]
    ok = all(want == got for _, want, got in checks) and endpoint.bad_signatures == 0
    console.print()
    console.print("What was injected:")
    for problem, outcome in scenario.injected:
        console.print(f"  • {problem} → {outcome}")
    table = Table(title=f"Demo run {scenario.run}: injected vs detected")
    for column in ("what", "expected", "detected", ""):
        table.add_column(column)
    for what, want, got in checks:
        table.add_row(what, str(want), str(got), "[green]✓[/]" if want == got else "[red]✗[/]")
    console.print(table)
    if scenario.payouts is not None:
        console.print(_payout_table(scenario.payouts.outcomes, payouts))
    console.print(_festival_table(unloaded, loaded))
    for alert in extra[:10]:
        console.print(f"  not injected: {alert['alert_id']} ({alert['summary']})")
    console.print(
        f"Merchant webhooks received by the demo's endpoint: {len(endpoint.deliveries)} "
        f"deliveries carrying {len(endpoint.alerts)} alerts; bad signatures: "
        f"{endpoint.bad_signatures}."
    )
    sample = sorted(scenario.expected.alerts["settlement.overdue"])[0].split(":", 1)[1]
    books = sorted(scenario.expected.alerts["terminal.books_mismatch"])
    merchant_books = ""
    if books:
        merchant_id, day = books[0].split(":")[1:3]
        books_url = f"{urls['ingest']}/v1/merchants/{merchant_id}/books?date={day}"
        merchant_books = f"  a migration      {books_url}\n"
    if not stays_up:
        console.print(
            "\nThe demo started its own stack and stops it now, so there is nothing left to "
            "open: `settlewatch demo --keep` (what `make demo` runs) leaves it up, or start one "
            "with `make run` in another terminal first."
        )
    else:
        _where_to_look(console, urls, sample, merchant_books)
    console.print(
        "[green]Every injected problem was detected, nothing else.[/]"
        if ok
        else "[red]Detection differs from what was injected.[/]"
    )
    return ok


def _where_to_look(console: Console, urls: dict[str, str], sample: str, books: str) -> None:
    desk = urls["console"]
    console.print(
        f"\nIn the console, {desk} (sign in with the acquirer token `settlewatch up` printed):\n"
        f"  overview                  {desk}/\n"
        f"  the bank that stopped     {desk}/payments?bank_code={FAILING_BANK}&status=overdue\n"
        f"  the exceptions it left    {desk}/exceptions?status=open\n"
        f"  one overdue payment       {desk}/payments/{sample}\n"
        f"  the files it imported     {desk}/files\n"
    )
    console.print(
        "Over the APIs (with the header `Authorization: Bearer <acquirer token>`):\n"
        f"  bank incidents   {urls['alerts']}/v1/alerts?type=bank.incident\n"
        f"  overdue alerts   {urls['alerts']}/v1/alerts?type=settlement.overdue\n"
        f"  one payment      {urls['matcher']}/v1/payments/{sample}\n"
        f"  its evidence     {urls['matcher']}/v1/payments/{sample}/evidence?format=pdf\n"
        f"  跳码 (region)    {urls['alerts']}/v1/alerts?type=terminal.region_jump\n"
        f"{books}"
        f"  webhook log      {urls['alerts']}/v1/deliveries\n"
        f"  payouts          {urls['recon']}/v1/payouts?status=missing\n"
        f"  exception queue  {urls['recon']}/v1/exceptions?status=open\n"
        f"  metrics          {urls['matcher']}/metrics  {urls['alerts']}/metrics\n"
        "  dashboards       deploy/grafana (docker compose -f deploy/compose.yaml up)\n"
    )


def _checks(
    scenario: Scenario,
    detected: dict[str, dict[str, Any]],
    endpoint: MerchantEndpoint,
    notified: set[str],
    payouts: dict[str, dict[str, Any]],
) -> tuple[list[tuple[str, int, int]], list[dict[str, Any]]]:
    """(what, expected, detected) for each injected problem and each thing that must not
    happen; and the alerts for anything not injected."""
    expected = scenario.expected.alerts
    checks = [
        (kind, len(ids), len(ids & detected.keys())) for kind, ids in sorted(expected.items())
    ]
    incidents = {a["bank_code"] for a in detected.values() if a["type"] == "bank.incident"}
    everything = {a for ids in expected.values() for a in ids}
    extra = [
        a
        for a in detected.values()
        if a["alert_id"] not in everything and a["type"] != "bank.incident"
    ]
    maintenance = sum(
        1
        for a in detected.values()
        if a["bank_code"] == MAINTENANCE_BANK
        and a["type"] not in ("bank.incident", "bank.maintenance_scheduled")
    )
    checks += [
        (f"bank.incident {FAILING_BANK}", 1, int(_incident_open(detected))),
        ("alerts for anything not injected", 0, len(extra)),
        ("bank incidents elsewhere", 0, len(incidents - {FAILING_BANK})),
        (f"alerts at {MAINTENANCE_BANK} (announced maintenance)", 0, maintenance),
        (
            "webhook alerts received (signed) by merchants",
            len(notified),
            len(notified & endpoint.alerts),
        ),
    ]
    if scenario.payouts is not None:
        together = [r for r, o in scenario.payouts.outcomes.items() if o == "arrived"]
        arrived = sum(payouts.get(r, {}).get("status") == "arrived" for r in together)
        checks.append(("payouts arrived in one collective credit", len(together), arrived))
    return checks, extra


def _payout_table(outcomes: dict[str, str], payouts: dict[str, dict[str, Any]]) -> Table:
    """The report's payouts next to what the statement showed."""
    table = Table(title="Payouts: clearing report vs bank statement")
    for column in ("reference", "merchant", "expected", "credited", "status", "injected", ""):
        table.add_column(column)
    for reference, outcome in outcomes.items():
        payout = payouts.get(reference, {})
        credit = payout.get("credit") or {}
        status = payout.get("status", "—")
        table.add_row(
            reference,
            payout.get("merchant_id") or "—",
            _yuan(payout.get("amount_minor")),
            _yuan(credit.get("amount_minor")),
            status,
            outcome,
            "[green]✓[/]" if status == outcome else "[red]✗[/]",
        )
    return table


def _festival_table(unloaded: Played, loaded: Played) -> Table:
    """The 2027 Spring Festival through the matcher core, on simulated time (demo.festival)."""
    table = Table(
        title="Spring Festival 2027, played through the matcher core on simulated time: "
        f"a T1 merchant's {loaded.sales} days of sales, each paid on the real next business day"
    )
    for column in ("", "2027 table not loaded", "2027 table loaded"):
        table.add_column(column)
    for what, attribute in (
        ("deadlines estimated on Monday–Friday", "estimated"),
        ("calendar.missing raised for on-call", "calendar_missing"),
        ("overdue alerts sent to the merchant", "overdue"),
        ("…later resolved as settled late", "settled_late"),
    ):
        table.add_row(what, str(getattr(unloaded, attribute)), str(getattr(loaded, attribute)))
    return table


def _yuan(minor: int | None) -> str:
    return "—" if minor is None else f"¥{minor // 100:,}.{minor % 100:02d}"

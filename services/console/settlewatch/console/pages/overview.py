"""Overview (SPEC §15): what needs the desk now — open alerts by type, what each bank still owes
(overdue first), payouts by status, open exceptions by kind and age, and the pipeline's health
(each service's checks and loops, the records it set aside as dead letters; a stall is an open
alert) — each number a link to its list. Every figure is an aggregate its service computes in
PostgreSQL; the console pages through nothing."""

from __future__ import annotations

import asyncio
from collections import defaultdict
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response

from settlewatch.common.catalogue import DESK_AGES
from settlewatch.console.context import Console, Desk
from settlewatch.console.pages.my_money import my_money

router = APIRouter()


@router.get("/")
async def overview(request: Request, desk: Desk) -> Response:
    if desk.session.merchant_id:  # a merchant's own view: its money
        return await my_money(request, desk, desk.session.merchant_id)
    console: Console = request.app.state.console
    clients = desk.clients
    services = (clients.ingest, clients.matcher, clients.alerts, clients.recon)
    async with asyncio.TaskGroup() as calls:  # at once: the page waits for the slowest only
        banks_call = calls.create_task(clients.matcher.bank_totals())
        alerts_call = calls.create_task(clients.alerts.counts())
        summary_call = calls.create_task(clients.recon.desk_summary())
        health_calls = [calls.create_task(service.readiness()) for service in services]
        dead_calls = [calls.create_task(service.dead_letters()) for service in services]
    banks, alerts, summary = banks_call.result(), alerts_call.result(), summary_call.result()
    owed: dict[str, dict[str, list[dict[str, Any]]]] = defaultdict(lambda: defaultdict(list))
    for row in banks:
        owed[row["bank_code"]][row["status"]].append(dict(row))
    # Banks with overdue payments first, the largest count first.
    order = sorted(owed, key=lambda b: (-sum(t["count"] for t in owed[b]["overdue"]), b))
    open_alerts: dict[str, int] = defaultdict(int)
    for count in alerts["items"]:
        if count["status"] == "open":  # acknowledged: someone is on it
            open_alerts[count["type"]] += count["count"]
    ageing: dict[str, dict[str, int]] = defaultdict(lambda: dict.fromkeys(DESK_AGES, 0))
    for item in summary["open"]:
        ageing[item["kind"]][item["age"]] = item["count"]
    context = {
        "session": desk.session,
        "banks": [(bank, owed[bank]) for bank in order],
        "open_alerts": sorted(open_alerts.items(), key=lambda t: (-t[1], t[0])),
        "incidents": alerts["incidents"],
        "payouts": summary["payouts"],
        "ageing": sorted(ageing.items()),
        "ages": DESK_AGES,
        "health": {
            s.service: call.result() for s, call in zip(services, health_calls, strict=True)
        },
        "dead_letters": {
            s.service: call.result() for s, call in zip(services, dead_calls, strict=True)
        },
    }
    return console.pages.render(request, "overview.html", context)

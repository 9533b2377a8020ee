"""A merchant's own view (SPEC §16), its first page: what the bank still owes it, pending and
late; each late payment with the date its money was due and why, and what to do (its evidence
PDF for the bank); its latest payouts; its open alerts. The APIs answer a merchant token with
its own objects only, so nothing here can show another merchant's."""

from __future__ import annotations

import asyncio

from fastapi import Request
from fastapi.responses import Response

from settlewatch.console.context import Console, Desk

LATE_SHOWN = 20
PAYOUTS_SHOWN = 10


async def my_money(request: Request, desk: Desk, merchant_id: str) -> Response:
    console: Console = request.app.state.console
    clients = desk.clients
    summary, late, payouts, alerts = await asyncio.gather(
        clients.matcher.merchant_summary(merchant_id),
        clients.matcher.payments({"status": "overdue", "limit": LATE_SHOWN}),
        clients.recon.payouts({"limit": PAYOUTS_SHOWN}),
        clients.alerts.alerts({"status": "open", "limit": 50}),
    )
    context = {
        "session": desk.session,
        "summary": summary,
        "late": late["items"],
        "more_late": late["next_cursor"] is not None,
        "payouts": payouts["items"],
        "alerts": alerts["items"],
    }
    return console.pages.render(request, "my_money.html", context)

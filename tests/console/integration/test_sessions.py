"""Signing in and out of the console (SPEC §15): no page without a session, CSRF on every form,
a token the APIs refuse is refused, a revoked token ends its sessions."""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime, timedelta
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from fastapi import FastAPI
from fastapi.routing import APIRoute
from starlette.routing import BaseRoute

from settlewatch.console.session import SESSION_COOKIE
from tests.console.integration.conftest import Desk, eventually
from tests.ingest.integration.conftest import ACQUIRER, MERCHANT_M1, PROFILE

pytestmark = pytest.mark.asyncio(loop_scope="session")


# What a path's parameters are filled with; any other parameter gets "X".
EXAMPLES = {"fmt": "csv", "txn_id": "T1", "calendar": "CN", "year": "2031"}
OPEN = ("/sign-in", "/language/", "/static", "/healthz", "/readyz", "/metrics")


def get_routes(routes: Sequence[BaseRoute]) -> Iterator[APIRoute]:
    """Each GET route, those of the routers included too (FastAPI keeps those apart; the
    console's routers have no prefix)."""
    for route in routes:
        if isinstance(route, APIRoute) and "GET" in route.methods:
            yield route
        elif (router := getattr(route, "original_router", None)) is not None:
            yield from get_routes(router.routes)


def every_page(app: FastAPI) -> list[str]:
    """Each GET route of the console with its path filled in, but those open to all."""
    paths = [
        re.sub(r"{(\w+)}", lambda m: EXAMPLES.get(m[1], "X"), route.path)
        for route in get_routes(app.routes)
    ]
    return [p for p in paths if not p.startswith(OPEN)]


async def test_no_page_or_export_is_reachable_without_a_session(desk: Desk) -> None:
    pages = every_page(desk.console)
    assert {"/merchants/export.csv", "/calendars/CN/2031", "/payments/T1"} <= set(pages)
    for path in [*pages, "/payments?rrn=532410283771"]:
        answer = await desk.browser.get(path)
        assert answer.status_code == 303, path
        location = urlsplit(answer.headers["location"])
        assert location.path == "/sign-in" and parse_qs(location.query)["next"] == [path]
        assert "532410283771" not in answer.text and "T1" not in answer.text


async def test_a_person_signs_in_with_a_token_and_out_again(desk: Desk) -> None:
    refused = await desk.sign_in("sw_not-a-token")
    assert refused.status_code == 401 and "该令牌无效" in refused.text
    assert SESSION_COOKIE not in desk.browser.cookies

    form = await desk.browser.get("/sign-in")
    no_csrf = await desk.browser.post("/sign-in", data={"token": ACQUIRER})
    wrong = await desk.browser.post("/sign-in", data={"token": ACQUIRER, "csrf": "x" * 32})
    assert no_csrf.status_code == wrong.status_code == 403
    assert SESSION_COOKIE not in desk.browser.cookies
    assert form.status_code == 200

    signed = await desk.sign_in(ACQUIRER, "/payments?status=overdue")
    assert signed.status_code == 303 and signed.headers["location"] == "/payments?status=overdue"
    set_cookie = signed.headers["set-cookie"]
    assert "HttpOnly" in set_cookie and "SameSite=Strict" in set_cookie
    assert ACQUIRER not in set_cookie  # sealed
    page = await desk.browser.get("/payments")
    assert page.status_code == 200 and "交易" in page.text and "acquirer" in page.text
    # Each page seals the session again: its idle time starts over.
    assert SESSION_COOKIE in page.headers.get("set-cookie", "")

    assert (await desk.browser.post("/sign-out")).status_code == 403
    assert (await desk.browser.post("/sign-out", data={"csrf": "x" * 32})).status_code == 403
    assert (await desk.browser.get("/payments")).status_code == 200  # still signed in
    out = await desk.browser.post("/sign-out", data={"csrf": desk.csrf(page)})
    assert out.status_code == 303 and out.headers["location"] == "/sign-in"
    assert SESSION_COOKIE not in desk.browser.cookies
    assert (await desk.browser.get("/payments")).status_code == 303


async def test_a_revoked_token_ends_its_sessions(desk: Desk) -> None:
    assert (await desk.api["ingest"].put("/v1/merchants/M1", json=PROFILE)).status_code == 201
    issued = await desk.api["ingest"].post(
        "/v1/tokens", json={"scope": "merchant:M1", "description": "M1's portal"}
    )
    token = issued.json()
    assert (await desk.sign_in(token["token"])).status_code == 303
    assert (await desk.browser.get("/payments")).status_code == 200
    assert (await desk.api["ingest"].delete(f"/v1/tokens/{token['token_id']}")).status_code == 204

    ended: list[httpx.Response] = []

    async def session_over() -> bool:  # every service refuses it within SPEC §14's 5 s
        ended.append(await desk.browser.get("/payments"))
        return ended[-1].status_code == 303

    await eventually(session_over, timeout=10)
    assert ended[-1].headers["location"] == "/sign-in?ended=1"
    assert SESSION_COOKIE not in desk.browser.cookies
    notice = await desk.browser.get("/sign-in?ended=1", headers={"accept-language": "en"})
    assert "Your session has ended" in notice.text


async def test_an_address_that_guessed_too_often_waits_even_with_a_good_token(desk: Desk) -> None:
    for n in range(10):
        refused = await desk.sign_in(f"sw_guess-{n}")
        assert refused.status_code == 401
    limited = await desk.sign_in(ACQUIRER)
    assert limited.status_code == 429 and "15 分钟后再试" in limited.text
    assert 0 < int(limited.headers["retry-after"]) <= 15 * 60
    assert SESSION_COOKIE not in desk.browser.cookies
    # Another address (the desk's next client) is not held up by this one.
    other = httpx.AsyncClient(
        transport=httpx.ASGITransport(app=desk.console, client=("10.0.0.8", 5000)),
        base_url="http://console",
    )
    async with other:
        form = await other.get("/sign-in")
        csrf = desk.csrf(form)
        signed = await other.post("/sign-in", data={"token": ACQUIRER, "csrf": csrf, "next": "/"})
    assert signed.status_code == 303


async def test_a_merchant_portal_link_signs_in_with_a_merchant_token_that_expires(
    desk: Desk,
) -> None:
    assert (await desk.api["ingest"].put("/v1/merchants/M1", json=PROFILE)).is_success
    for token in (ACQUIRER, MERCHANT_M1):  # every merchant; a merchant's that never expires
        refused = await desk.browser.get("/sign-in", params={"token": token, "next": "/"})
        assert refused.status_code == 401 and "有有效期的商户令牌" in refused.text
        assert SESSION_COOKIE not in desk.browser.cookies
    expires = (datetime.now(UTC) + timedelta(minutes=15)).isoformat()
    issued = await desk.api["ingest"].post(
        "/v1/tokens",
        json={"scope": "merchant:M1", "description": "portal link", "expires_at": expires},
    )
    link = await desk.browser.get("/sign-in", params={"token": issued.json()["token"]})
    assert link.status_code == 303 and link.headers["location"] == "/"  # the token leaves the URL
    home = await desk.browser.get("/")
    assert home.status_code == 200 and "我的款项" in home.text

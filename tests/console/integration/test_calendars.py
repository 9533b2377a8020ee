"""The console's Calendars (SPEC §15): a calendar's years with the missing ones marked, a year
loaded from a CSV file through ingest, a file's error shown with its line; a read-only token
sees no form."""

from __future__ import annotations

import pytest

from tests.console.integration.conftest import Desk
from tests.ingest.integration.conftest import ACQUIRER

pytestmark = pytest.mark.asyncio(loop_scope="session")
# 2031-01-01 is a Wednesday off, 2031-01-04 a Saturday worked.
CSV_2031 = "date,is_workday,note\n2031-01-01,0,元旦\n2031-01-02,1,\n2031-01-04,1,调休\n"


async def test_a_year_is_loaded_from_a_csv_file(desk: Desk) -> None:
    await desk.sign_in(ACQUIRER)
    page = await desk.browser.get("/calendars")
    assert page.status_code == 200 and "缺少数据" in page.text  # this year or the next, unloaded
    files = {"file": ("cn-2031.csv", CSV_2031.encode(), "text/csv")}
    loaded = await desk.browser.post(
        "/calendars", data={"csrf": desk.csrf(page), "calendar": "CN"}, files=files
    )
    assert loaded.status_code == 303, loaded.text[-2000:]
    shown = await desk.browser.get(loaded.headers["location"])
    assert "2031 年已导入" in shown.text and 'href="/calendars/CN/2031"' in shown.text
    year = (await desk.api["ingest"].get("/v1/calendars/CN/2031")).json()
    assert (year["holidays"], year["workdays"]) == (["2031-01-01"], ["2031-01-04"])
    assert year["source"] == "cn-2031.csv"
    detail = await desk.browser.get("/calendars/CN/2031")
    assert "2031-01-01" in detail.text and "cn-2031.csv" in detail.text


async def test_a_bad_file_is_refused_at_its_line_and_changes_nothing(desk: Desk) -> None:
    await desk.sign_in(ACQUIRER)
    page = await desk.browser.get("/calendars")
    bad = "date,is_workday\n2031-01-01,0\n2031-01-04,yes\n"
    refused = await desk.browser.post(
        "/calendars",
        data={"csrf": desk.csrf(page), "calendar": "CN"},
        files={"file": ("cn.csv", bad.encode(), "text/csv")},
    )
    assert refused.status_code == 422 and "cn.csv:3: is_workday must be 0 or 1" in refused.text
    assert (await desk.api["ingest"].get("/v1/calendars/CN/2031")).status_code == 404
    not_a_year = await desk.browser.post(
        "/calendars",
        data={"csrf": desk.csrf(page), "calendar": "CN", "year": "20x1"},
        files={"file": ("cn-2031.csv", CSV_2031.encode(), "text/csv")},
    )
    assert not_a_year.status_code == 422 and "not a year" in not_a_year.text
    assert (await desk.api["ingest"].get("/v1/calendars/CN/2031")).status_code == 404
    no_csrf = await desk.browser.post(
        "/calendars", data={"calendar": "CN"}, files={"file": ("cn.csv", b"x", "text/csv")}
    )
    assert no_csrf.status_code == 403


async def test_a_read_only_token_sees_the_years_and_no_form(desk: Desk) -> None:
    issued = await desk.api["ingest"].post(
        "/v1/tokens", json={"scope": "acquirer:read", "description": "auditor"}
    )
    await desk.sign_in(issued.json()["token"])
    page = await desk.browser.get("/calendars", params={"calendar": "CN"})
    assert page.status_code == 200 and "2026" in page.text
    assert 'action="/calendars"' not in page.text

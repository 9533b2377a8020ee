"""The console's Files (SPEC §15): a file uploaded through the console is imported by recon; one
recon cannot read is shown with its errors at their line; a form without its CSRF token
imports nothing; a read-only token has no upload."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.console.integration.conftest import Desk
from tests.ingest.integration.conftest import ACQUIRER

pytestmark = pytest.mark.asyncio(loop_scope="session")
DATA = Path(__file__).resolve().parents[4] / "shared" / "data"
ADYEN_380 = DATA / "OCA-bank-statement-import_adyen" / "settlement_detail_report_batch_380.csv"
CAMT054 = DATA / "genkgo-camt" / "camt054.v8.xml"


async def test_an_uploaded_file_is_imported_and_one_unreadable_shows_its_errors_at_their_line(
    desk: Desk,
) -> None:
    await desk.sign_in(ACQUIRER)
    page = await desk.browser.get("/files")
    assert page.status_code == 200 and "尚未收到文件" in page.text
    csrf = desk.csrf(page)
    report = ADYEN_380.read_bytes()
    uploaded = await desk.browser.post(
        "/files",
        data={"csrf": csrf, "format": "auto"},
        files={"file": ("batch_380.csv", report, "text/csv")},
    )
    assert uploaded.status_code == 303, uploaded.text
    file_id = uploaded.headers["location"].removeprefix("/files/")
    imported = (await desk.api["recon"].get(f"/v1/settlement-files/{file_id}")).json()
    assert imported["status"] == "imported" and imported["size_bytes"] == len(report)
    shown = await desk.browser.get(uploaded.headers["location"])
    assert "已导入" in shown.text and "227" in shown.text and "adyen" in shown.text

    truncated = CAMT054.read_bytes()[:2000]
    rejected = await desk.browser.post(
        "/files",
        data={"csrf": csrf, "format": "camt.054"},
        files={"file": ("camt.xml", truncated, "application/xml")},
    )
    assert rejected.status_code == 303
    errors = await desk.browser.get(rejected.headers["location"])
    assert "已拒收" in errors.text and "拒收原因" in errors.text
    assert re.search(r"第 \d+ 行", errors.text)
    listed = await desk.browser.get("/files", params={"status": "rejected"})
    assert rejected.headers["location"] in listed.text and f"/files/{file_id}" not in listed.text


async def test_an_upload_without_its_csrf_token_or_from_a_reader_imports_nothing(
    desk: Desk,
) -> None:
    await desk.sign_in(ACQUIRER)
    files = {"file": ("batch_380.csv", ADYEN_380.read_bytes(), "text/csv")}
    assert (await desk.browser.post("/files", files=files)).status_code == 403
    reader = await desk.api["ingest"].post(
        "/v1/tokens", json={"scope": "acquirer:read", "description": "auditor"}
    )
    await desk.sign_in(reader.json()["token"])
    page = await desk.browser.get("/files")
    assert 'action="/files"' not in page.text
    forged = await desk.browser.post("/files", data={"csrf": desk.csrf(page)}, files=files)
    assert forged.status_code == 403
    assert (await desk.api["recon"].get("/v1/settlement-files")).json()["items"] == []

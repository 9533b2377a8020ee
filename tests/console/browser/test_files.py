"""Files in a browser (issue 30): a file uploaded (the page's script shows its progress, then the
file's page) whose errors are shown at their line."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

from tests.console.browser.conftest import dev_token, sign_in
from tests.support.stack import RunningStack

pytestmark = pytest.mark.e2e
CAMT054 = Path(__file__).resolve().parents[4] / "shared" / "data" / "genkgo-camt" / "camt054.v8.xml"


def test_an_uploaded_file_that_cannot_be_read_shows_its_errors_at_their_line(
    stack: RunningStack, page: Page, tmp_path: Path
) -> None:
    truncated = tmp_path / "camt054-truncated.xml"
    truncated.write_bytes(CAMT054.read_bytes()[:2000])
    sign_in(page, stack, dev_token(stack))
    page.get_by_role("link", name="对账文件").click()
    page.get_by_label("银行对账单或清算报表").set_input_files(truncated)
    page.get_by_label("格式").fill("camt.054")
    page.get_by_role("button", name="上传").click()

    expect(page.get_by_role("heading", name="拒收原因（文件内容均未入账）")).to_be_visible()
    expect(page.locator("table.errors tbody td").first).to_have_text(re.compile(r"^第 \d+ 行$"))
    page.screenshot(path=tmp_path / "rejected-file.png", full_page=True)
    page.get_by_role("link", name="对账文件").first.click()
    expect(page.get_by_role("row").filter(has_text="camt.054")).to_contain_text("已拒收")

"""Browser tests: a real Chromium (Debian's ``chromium``, driven by Playwright's Python package)
against the console of a real ``settlewatch up``. Each test leaves a screenshot of where it
ended in its own output folder (pytest's ``tmp_path``)."""

from __future__ import annotations

import signal
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, sync_playwright

from tests.deploy.conftest import tool
from tests.support.dirs import server_dir
from tests.support.stack import RunningStack, launch


@pytest.fixture(scope="session")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningStack]:
    """One stack for a worker's browser tests: they only add data, each its own merchants and
    files."""
    tmp = tmp_path_factory.mktemp("console")
    with server_dir("console") as data:
        # Write-offs above ¥10,000 need a second person (four eyes).
        running = launch(data / "data", tmp, {"SETTLEWATCH_WRITE_OFF_APPROVAL": "CNY=1000000"})
        try:
            running.wait_ready()
            yield running
        finally:
            running.stop(signal.SIGTERM)


# A module's, not the session's: Playwright's sync API runs an event loop in this thread while
# it is started, and the async tests that follow on this worker need the thread free of one.
@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    chromium = tool("chromium", "chromium")
    with sync_playwright() as playwright:
        # --no-sandbox: the suite may run as root (CI), where Chromium refuses its sandbox.
        launched = playwright.chromium.launch(executable_path=chromium, args=["--no-sandbox"])
        yield launched
        launched.close()


@pytest.fixture
def page(browser: Browser, tmp_path: Path) -> Iterator[Page]:
    context = browser.new_context(accept_downloads=True, locale="zh-CN")
    opened = context.new_page()
    opened.set_default_timeout(15_000)
    try:
        yield opened
    finally:
        opened.screenshot(path=tmp_path / "screenshot.png", full_page=True)
        context.close()


def dev_token(stack: RunningStack) -> str:
    return (stack.data_dir / "dev-token").read_text().strip()


def sign_in(page: Page, stack: RunningStack, token: str) -> None:
    page.goto(stack.url("console"))
    page.get_by_label("API 令牌").fill(token)
    page.get_by_role("button", name="登录").click()

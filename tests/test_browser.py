"""The web chat in headless Chromium: ask, see the marked answer, keep a screenshot.

Uses Debian's chromium (``make browser-deps``); Playwright never downloads a browser.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from _app_server import ROOT, real_server

CHROMIUM = Path("/usr/bin/chromium")
ARTIFACTS = ROOT / "tests" / "artifacts"
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]
expect = None  # playwright.sync_api.expect, imported with the browser
QUESTION = "Which army did General Popov command?"


@pytest.fixture(scope="module")
def browser_page(tmp_path_factory):
    if not CHROMIUM.exists():
        pytest.skip(f"{CHROMIUM} is missing: install it with `make browser-deps` (Debian chromium)")
    sync_api = pytest.importorskip("playwright.sync_api")
    global expect
    expect = sync_api.expect
    os.environ.setdefault("PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD", "1")
    with sync_api.sync_playwright() as pw:
        context = pw.chromium.launch_persistent_context(
            str(tmp_path_factory.mktemp("chromium-profile")),  # an empty user-data-dir
            executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS,
            viewport={"width": 1360, "height": 1000},
        )
        try:
            yield context.new_page()
        finally:
            context.close()


@pytest.mark.slow
@pytest.mark.browser
def test_ask_in_the_browser_shows_the_marked_answer(tmp_path_factory, browser_page):
    served = real_server(tmp_path_factory)
    page = browser_page
    page.goto(served.url, wait_until="domcontentloaded")
    box = page.locator("#qa-question textarea")
    box.wait_for(timeout=60_000)
    # the documents table fills on load
    expect(page.locator("#qa-docs")).to_contain_text("Russian General Sacked", timeout=60_000)
    box.fill(QUESTION)
    page.locator("#qa-send").click()
    reply = page.locator("#qa-chat .qa-reply:not(.qa-thinking)").last
    reply.wait_for(timeout=180_000)
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.wait_for_timeout(500)  # let the chat finish scrolling
    page.screenshot(path=str(ARTIFACTS / "chat.png"), full_page=True)
    assert QUESTION in page.locator("#qa-chat").inner_text()
    assert reply.locator(".qa-source-line").first.is_visible()
    mark = reply.locator("mark").first
    assert mark.count() == 1 and mark.is_visible(), reply.inner_text()[:300]
    assert "58th Combined Arms Army" in mark.inner_text()

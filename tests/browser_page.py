"""Headless Debian Chromium through Playwright, for the end-to-end tests (never a browser download)."""

import shutil
from contextlib import contextmanager
from pathlib import Path

import pytest

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
BROWSER_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--disable-background-networking",
                "--disable-component-update", "--disable-sync", "--no-first-run"]
DESKTOP = {"width": 1280, "height": 800}
PHONE = {"width": 390, "height": 844}


def require_chromium() -> None:
    if not Path(CHROMIUM).exists():
        pytest.skip("Debian's chromium is not installed (apt-get install chromium)")


@contextmanager
def open_page(url: str, height: int = 1400, viewport: dict | None = None, locale: str = "en-US"):
    """A page at ``url`` in a fresh browser, closed afterwards.

    ``locale`` is the browser's language (it sets ``navigator.language`` and ``Accept-Language``);
    ``viewport`` defaults to a 1280-wide desktop ``height`` pixels tall.
    """
    from playwright.sync_api import sync_playwright

    require_chromium()
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=BROWSER_ARGS)
        try:
            context = browser.new_context(viewport=viewport or {"width": 1280, "height": height}, locale=locale,
                                          is_mobile=bool(viewport and viewport["width"] < 600))
            page = context.new_page()
            page.goto(url)
            yield page
        finally:
            browser.close()

"""Headless Chromium for the browser tests: Debian's /usr/bin/chromium driven by Playwright.

Skips when Chromium is absent on a developer's machine; fails under CI, where it must be there.
"""
from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@pytest.fixture(scope="module")
def _async_unsafe_allowed() -> Iterator[None]:
    """Playwright's sync API keeps an asyncio loop running in this thread while it is started, and
    Django refuses ORM calls from a thread with a running loop. Allowed for this module only."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
        yield


@pytest.fixture(scope="module")
def chromium_browser(_async_unsafe_allowed):
    if not CHROMIUM.exists():
        reason = f"{CHROMIUM} is not installed (run scripts/ensure-system-deps.sh, or apt-get install chromium)"
        if os.environ.get("CI"):
            pytest.fail(f"CI is set and {reason}", pytrace=False)
        pytest.skip(reason)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()

"""Headless Chromium for the browser tests: Debian's /usr/bin/chromium driven by Playwright, and
what every real-browser test shares (a pytest plugin: ``tests/conftest.py`` lists it, so its
fixtures need no import).

- ``chromium_browser``: skips when Chromium is absent on a developer's machine; fails under CI,
  where it must be there.
- ``tab``/``tab_without_js`` (``Tab``, ``open_tab``): a page that records console errors, page
  errors, failed requests and CSP violations; ``alternating_sides``: the queue draws b, a, b, ...
- The annotator page's helpers: ``log_in``, ``make_comparison``, the opaque item token on screen
  (``shown_item``), waiting out the double-click guard (``wait_until_ready``) and for the next
  item (``wait_until_item_changes``).
"""
from __future__ import annotations

import itertools
import os
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from feedback import claims, services
from feedback.models import Assignment, Comparison, Side
from tests.factories import PASSWORD

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


VIEWPORT = {"width": 1280, "height": 800}


# --- fixtures -----------------------------------------------------------------------------------


@dataclass
class Tab:
    """A browser page plus everything it reported that would mean something went wrong."""

    page: object
    javascript: bool = True
    errors: list[str] = field(default_factory=list)
    main_frame_navigations: list[str] = field(default_factory=list)

    def assert_no_errors(self) -> None:
        csp = self.page.evaluate("window.__cspViolations") if self.javascript else []
        assert self.errors == [] and csp == [], f"browser errors: {self.errors}; CSP violations: {csp}"


def open_tab(browser, base_url: str, *, javascript: bool = True, viewport: dict | None = None, tab_class: type = Tab,
             failed_requests: bool = True) -> Tab:
    """A new browser context's page at ``base_url`` (``viewport``: default 1280x800), wrapped in
    ``tab_class`` (``Tab`` or a subclass), recording errors from the first request on.
    ``failed_requests=False``: a request that fails (e.g. a polling request htmx aborts when the
    next one starts, which a loaded machine makes likelier) is not an error; for tests of layout,
    not of requests."""
    context = browser.new_context(base_url=base_url, viewport=viewport or VIEWPORT, java_script_enabled=javascript)
    context.set_default_timeout(10_000)
    # Runs before any page script and is not subject to the page's CSP.
    context.add_init_script(
        "window.__cspViolations = [];"
        "document.addEventListener('securitypolicyviolation',"
        " e => window.__cspViolations.push(e.violatedDirective + ' ' + e.blockedURI));"
    )
    page = context.new_page()
    tab = tab_class(page=page, javascript=javascript)
    page.on("console", lambda message: message.type == "error" and tab.errors.append(f"console: {message.text}"))
    page.on("pageerror", lambda error: tab.errors.append(f"page error: {error}"))
    if failed_requests:
        page.on("requestfailed", lambda request: tab.errors.append(f"request failed: {request.url} {request.failure}"))
    page.on(
        "framenavigated",
        lambda frame: frame == page.main_frame and tab.main_frame_navigations.append(frame.url),
    )
    return tab


@pytest.fixture
def tab(chromium_browser, live_server) -> Iterator[Tab]:
    tab = open_tab(chromium_browser, live_server.url)
    yield tab
    tab.page.context.close()


@pytest.fixture
def tab_without_js(chromium_browser, live_server) -> Iterator[Tab]:
    tab = open_tab(chromium_browser, live_server.url, javascript=False)
    yield tab
    tab.page.context.close()


@pytest.fixture
def alternating_sides(monkeypatch) -> list[str]:
    """The queue draws the left side at random; here it alternates b, a, b, ... so one run sees both."""
    drawn: list[str] = []
    sides = itertools.cycle([Side.B, Side.A])

    def draw(rng=None) -> str:
        drawn.append(next(sides))
        return drawn[-1]

    monkeypatch.setattr(claims, "side_draw", draw)
    return drawn


# --- helpers ------------------------------------------------------------------------------------
def make_comparison(question: str, text_a: str, text_b: str, *, priority: int = 0) -> Comparison:
    return services.comparison_create_inline(
        prompt={"messages": [{"role": "user", "content": question}], "source": "browser-test"},
        completion_a={"model_name": "model-a", "text": text_a},
        completion_b={"model_name": "model-b", "text": text_b},
        priority=priority,
    )


def log_in(tab: Tab, username: str) -> None:
    page = tab.page
    page.goto("/annotate/")
    assert "/accounts/login/" in page.url, page.url
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    page.wait_for_url(re.compile(r"/annotate/$"))


def shown_item(tab: Tab) -> str:
    """The opaque item token of the comparison on screen (the page names no comparison or completion)."""
    return tab.page.locator("form.vote-form input[name=item]").get_attribute("value")


def shown_comparison_id(tab: Tab) -> int:
    return Assignment.objects.get(token=shown_item(tab)).comparison_id


def wait_until_ready(tab: Tab) -> None:
    """Wait out the guard after an item appears (its buttons are disabled until then)."""
    tab.page.wait_for_function("() => document.querySelector('form.vote-form:not(.guarded)')")


def visible_texts(tab: Tab) -> tuple[str, str]:
    page = tab.page
    return page.get_by_test_id("left-text").inner_text(), page.get_by_test_id("right-text").inner_text()


def letter_on_screen(comparison: Comparison, visible_text: str) -> str:
    """Which completion ("a" or "b") a response box shows, told by its first line of text."""
    comparison.refresh_from_db()
    shown = [
        letter
        for letter, completion in (("a", comparison.completion_a), ("b", comparison.completion_b))
        if completion.text.splitlines()[0] in visible_text
    ]
    assert len(shown) == 1, (visible_text, shown)
    return shown[0]


def wait_until_item_changes(tab: Tab, previous_item: str) -> None:
    tab.page.wait_for_function(
        """previous => {
            const item = document.querySelector('form.vote-form input[name=item]');
            return document.querySelector('#item') && (!item || item.value !== previous);
        }""",
        arg=previous_item,
    )

"""The API's Swagger page (/api/docs/) in a real browser (Debian's Chromium through Playwright, as
in test_browser.py), under the site's unchanged Content-Security-Policy: it lists the operations,
a logged-in admin can call them from it (a read, and a write that needs the CSRF token), and the
browser reports no error and no CSP violation.

Skips without /usr/bin/chromium, except under CI, where it fails.
"""
from __future__ import annotations

import re

import pytest

from tests.factories import PASSWORD, UserFactory

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def page(chromium_browser, live_server):
    """A fresh page that records console errors, page errors, failed requests and CSP violations
    (a request the CSP blocks fails with ``csp`` and logs a console error)."""
    context = chromium_browser.new_context(base_url=live_server.url, viewport={"width": 1280, "height": 800})
    context.set_default_timeout(15_000)
    # Runs before any page script and is not subject to the page's CSP.
    context.add_init_script(
        "window.__csp = [];"
        "document.addEventListener('securitypolicyviolation',"
        " e => window.__csp.push(e.violatedDirective + ' ' + e.blockedURI));"
    )
    page = context.new_page()
    page.errors = []
    page.on("console", lambda m: m.type == "error" and page.errors.append(f"console: {m.text}"))
    page.on("pageerror", lambda e: page.errors.append(f"page error: {e}"))
    # A request cut short by the next navigation (the login page's favicon, say) is not an error.
    page.on("requestfailed", lambda r: r.failure != "net::ERR_ABORTED"
            and page.errors.append(f"request failed: {r.url} {r.failure}"))
    yield page
    context.close()


def assert_clean(page) -> None:
    csp = page.evaluate("window.__csp")
    assert page.errors == [] and csp == [], f"browser errors: {page.errors}; CSP violations: {csp}"


def test_swagger_ui_lists_the_operations_without_csp_violations(page):
    response = page.goto("/api/docs/")
    policy = response.headers["content-security-policy"]
    assert "script-src 'self'" in policy and "style-src 'self'" in policy and "unsafe" not in policy

    page.get_by_text("/api/jobs/", exact=True).first.wait_for()
    for path in ("/api/assignments/next/", "/api/votes/", "/api/comparisons/{id}/skip/", "/api/jobs/{id}/cancel/"):
        assert page.get_by_text(path, exact=True).count() >= 1, path
    assert page.locator(".opblock").count() >= 20  # one block per operation
    assert page.get_by_role("heading", name=re.compile("Arbiter API")).is_visible()
    # Swagger UI's stylesheet applied (from the sidecar): the GET badge is a coloured block.
    badge = page.locator(".opblock-get .opblock-summary-method").first
    assert badge.evaluate("e => getComputedStyle(e).backgroundColor") not in ("rgba(0, 0, 0, 0)", "transparent")
    assert_clean(page)


def test_an_admin_calls_an_operation_from_the_swagger_page(page):
    UserFactory(username="docs-admin", role="admin")
    page.goto("/accounts/login/")
    page.get_by_label("Username").fill("docs-admin")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    page.wait_for_url(re.compile(r"/manage/"))

    page.goto("/api/docs/")
    operation = page.locator("#operations-jobs-jobs_list")
    operation.locator(".opblock-summary").click()
    operation.get_by_role("button", name="Try it out").click()
    operation.get_by_role("button", name="Execute").click()
    status = operation.locator(".live-responses-table .response .response-col_status").first
    status.wait_for()
    assert status.inner_text().strip() == "200"
    assert '"results"' in operation.locator(".live-responses-table .highlight-code").first.inner_text()

    # A write goes through with the session too: the page's script sends the CSRF token (403 without).
    claim = page.locator("#operations-assignments-assignments_next_create")
    claim.locator(".opblock-summary").click()
    claim.get_by_role("button", name="Try it out").click()
    claim.get_by_role("button", name="Execute").click()
    status = claim.locator(".live-responses-table .response .response-col_status").first
    status.wait_for()
    assert status.inner_text().strip().startswith("204")  # the queue is empty
    assert_clean(page)

"""The evaluation report page in a real browser (Chromium + Playwright, as test_training_browser.py):
the figures and per-category table show, a top win opens to both answers, the CSV downloads, and
the one-click blind campaign is made by a plain form post. No console errors, no CSP violations.

Skips without /usr/bin/chromium, except under CI, where it fails.
"""
from __future__ import annotations

import re

import pytest

from tests.evaluation_support import run_with_scores
from tests.factories import PASSWORD, UserFactory

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def admin_page(chromium_browser, live_server):
    UserFactory(username="admin1", role="admin")
    context = chromium_browser.new_context(base_url=live_server.url, accept_downloads=True)
    context.set_default_timeout(10_000)
    context.add_init_script(
        "window.__csp = []; document.addEventListener('securitypolicyviolation', e => window.__csp.push(e.violatedDirective));"
    )
    page = context.new_page()
    page.errors = []
    page.on("console", lambda m: m.type == "error" and page.errors.append(m.text))
    page.on("pageerror", lambda e: page.errors.append(str(e)))
    page.goto("/accounts/login/")
    page.get_by_label("Username").fill("admin1")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    page.wait_for_url(re.compile(r"/manage/comparisons/$"))
    yield page
    assert page.errors == [] and page.evaluate("window.__csp") == [], (page.errors, page.evaluate("window.__csp"))
    context.close()


def test_report_page_figures_examples_download_and_campaign(admin_page, tmp_path):
    run = run_with_scores(tmp_path, scores={"base": [0.0] * 6, "cand": [2.0, 1.0, 0.5, 0.0, -0.5, 0.3]})
    page = admin_page
    page.goto("/manage/evaluations/")
    page.get_by_role("link", name=str(run.pk), exact=True).click()
    page.wait_for_url(re.compile(rf"/manage/evaluations/{run.pk}/$"))
    overall = page.locator("#candidate-1")
    win = run.summary["candidates"][0]["vs_baseline"]["win_rate"]
    assert f"{win['value']:.3f}" in overall.inner_text() and "4 / 1 / 1" in overall.inner_text()
    assert page.locator("#categories-1 tbody tr").count() == 2
    assert page.locator("#evaluation-live").get_attribute("hx-trigger") is None  # finished: no polling

    top = page.locator("details.example.win").first
    assert not top.locator("pre").first.is_visible()
    top.locator("summary").click()
    assert top.locator("pre").first.inner_text() == "cand answer 0"

    with page.expect_download() as download:
        page.get_by_role("link", name="Download CSV").click()
    assert download.value.suggested_filename == f"evaluation-{run.pk}.csv"

    UserFactory(role="annotator")  # the campaign's pool: the annotators group
    page.get_by_label("Prompts to sample").fill("3")
    page.get_by_role("button", name="Make a blind human campaign").click()
    page.get_by_text(re.compile(r"(is open to the annotators|No campaign made)")).first.wait_for()
    run.refresh_from_db()
    assert run.campaign_id is not None, page.locator(".flash").inner_text()
    assert f"Campaign {run.campaign_id}" in page.locator("#human").inner_text()

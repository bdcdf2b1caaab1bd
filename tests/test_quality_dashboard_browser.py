"""The quality dashboard in a real browser (Chromium + Playwright, as tests/test_browser.py): seeded
annotators of known habits are flagged for the right reason and the honest ones are not, the three
charts render as SVG with titles, and sorting by a column reorders the rows in place (htmx)."""
from __future__ import annotations


import pytest

from feedback.models import Campaign
from feedback.quality.services import quality_report_compute
from tests.factories import PASSWORD, UserFactory
from tests.quality_support import votes_seed
from tests.browser_support import Tab

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def campaign(db) -> Campaign:
    UserFactory(username="boss", role="admin")
    campaign = Campaign.objects.create(name="Quality in a browser", slug="quality-browser", status="active")
    votes_seed(campaign, items=120, honest=4)
    quality_report_compute(campaign=campaign)
    return campaign


def log_in(tab: Tab, next_path: str) -> None:
    page = tab.page
    page.goto(f"/accounts/login/?next={next_path}")
    page.get_by_label("Username").fill("boss")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    page.wait_for_url(f"**{next_path}")


def _flags(tab: Tab) -> dict[str, str]:
    rows = tab.page.get_by_test_id("annotator-row")
    return {rows.nth(i).get_attribute("data-username"): rows.nth(i).get_by_test_id("flags").inner_text()
            for i in range(rows.count())}


def _names(tab: Tab) -> list[str]:
    rows = tab.page.get_by_test_id("annotator-row")
    return [rows.nth(i).get_attribute("data-username") for i in range(rows.count())]


def test_flags_charts_and_sorting(tab, campaign):
    path = f"/manage/campaigns/{campaign.pk}/quality/"
    log_in(tab, path)
    page = tab.page
    assert "on 840 votes" in page.get_by_test_id("report-status").inner_text()
    assert page.get_by_test_id("recomputing").count() == 0

    flags = _flags(tab)
    assert "left bias" in flags["lefty"]
    assert "too fast" in flags["speedy"] and "left bias" not in flags["speedy"]
    assert "consensus outlier" in flags["clicker"] and "left bias" not in flags["clicker"]
    for name in ("honest0", "honest1", "honest2", "honest3"):
        assert flags[name] == "none", (name, flags[name])

    for test_id, title in (("chart-alpha", "Krippendorff's alpha (nominal) per day"),
                           ("chart-left-rate", "Left rate per annotator"),
                           ("chart-time", "Time on item")):
        chart = page.get_by_test_id(test_id)
        svg = chart.locator("svg[role=img]")
        assert svg.count() == 1 and svg.is_visible()
        assert title in svg.locator(":scope > title").text_content()
        assert page.get_by_role("img", name=title).count() == 1  # its accessible name
        assert chart.locator("table").count() == 1  # the text alternative
    assert page.get_by_test_id("chart-left-rate").locator("circle").count() == 7

    page.evaluate("window.__samePage = true")
    page.get_by_test_id("sort-median_ms").click()
    page.wait_for_url("**?sort=median_ms")
    page.wait_for_function("document.querySelector('[data-testid=annotator-row]').dataset.username === 'speedy'")
    assert _names(tab)[0] == "speedy"
    page.get_by_test_id("sort-left_rate").click()
    page.wait_for_url("**?sort=left_rate")
    page.get_by_test_id("sort-left_rate").click()  # again: descending
    page.wait_for_url("**?sort=-left_rate")
    page.wait_for_function("document.querySelector('[data-testid=annotator-row]').dataset.username === 'lefty'")
    assert _names(tab)[0] == "lefty"
    assert page.evaluate("window.__samePage === true")  # sorted in place by htmx, no page load
    tab.assert_no_errors()


def test_a_stale_page_polls_until_the_recompute_is_stored(tab, db):
    UserFactory(username="boss", role="admin")
    campaign = Campaign.objects.create(name="Polled", slug="polled", status="active")
    votes_seed(campaign, items=12, honest=1)
    path = f"/manage/campaigns/{campaign.pk}/quality/"
    log_in(tab, path)
    page = tab.page
    assert page.get_by_test_id("recomputing").is_visible()
    assert "Not computed yet" in page.get_by_test_id("report-status").inner_text()
    quality_report_compute(campaign=campaign)  # what the worker would do
    page.get_by_test_id("annotators").wait_for()  # the next poll swaps the stored report in
    assert "on 48 votes" in page.get_by_test_id("report-status").inner_text()
    assert page.get_by_test_id("recomputing").count() == 0
    tab.assert_no_errors()

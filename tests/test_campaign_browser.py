"""The campaign page in a real browser (Chromium + Playwright, as tests/test_browser.py): with htmx
the actions answer in place (no page load) and say why activation is refused; guidelines with
HTML preview as inert text; without JavaScript the same buttons work as plain form posts."""
from __future__ import annotations


import pytest

from feedback.campaigns import services
from feedback.campaigns.models import Campaign, GuidelineVersion
from tests.factories import PASSWORD, ComparisonFactory, UserFactory
from tests.browser_support import Tab

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def log_in(tab: Tab, username: str, next_path: str) -> None:
    page = tab.page
    page.goto(f"/accounts/login/?next={next_path}")
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    page.wait_for_url(f"**{next_path}")


@pytest.fixture
def campaign(db) -> Campaign:
    UserFactory(username="boss", role="admin")
    return services.campaign_create(values={"name": "Browser check"})


def test_actions_answer_in_place_and_guidelines_preview_inert(tab, campaign):
    path = f"/manage/campaigns/{campaign.pk}/"
    log_in(tab, "boss", path)
    page = tab.page
    assert "the pool is empty" in page.get_by_test_id("activation-problems").inner_text()
    loads = len(tab.main_frame_navigations)
    page.get_by_role("button", name="Activate").click()
    notice = page.get_by_test_id("notice")
    notice.wait_for()
    assert notice.inner_text().startswith("Not activated: the pool is empty")
    page.get_by_label("Guidelines (Markdown)").fill("Prefer **short** answers.\n\n<script>document.title='pwned'</script>")
    page.get_by_role("button", name="Preview").click()
    preview = page.get_by_test_id("guidelines-preview")
    preview.wait_for()
    assert preview.locator("strong").inner_text() == "short"
    assert "<script>" in preview.inner_text() and page.title() != "pwned"
    assert not GuidelineVersion.objects.exists()
    page.get_by_role("button", name="Save as a new version").click()
    page.get_by_test_id("guidelines-current").wait_for()
    assert page.get_by_test_id("notice").inner_text() == "Guidelines version 1 is current."
    assert len(tab.main_frame_navigations) == loads  # every answer was swapped in place
    # The refused activation is the one 400 the browser reports; nothing else went wrong.
    assert tab.errors == ["console: Failed to load resource: the server responded with a status of 400 (Bad Request)"]
    assert page.evaluate("window.__cspViolations") == []


def test_without_javascript_activate_is_a_plain_form_post(tab_without_js, campaign, annotator):
    services.campaign_update(campaign=campaign, values={"annotators": [annotator.username]})
    services.campaign_comparisons_add(campaign=campaign, rules={"ids": [ComparisonFactory().pk]})
    path = f"/manage/campaigns/{campaign.pk}/"
    log_in(tab_without_js, "boss", path)
    tab_without_js.page.get_by_role("button", name="Activate").click()
    tab_without_js.page.get_by_text("Campaign activated").wait_for()
    assert tab_without_js.page.get_by_test_id("campaign-status").inner_text() == "active"
    campaign.refresh_from_db()
    assert campaign.status == "active"

"""The personal-data review page in a real browser (Chromium + Playwright, as tests/test_browser.py):
an admin starts a scan, filters the findings, redacts one row and marks another clean."""
from __future__ import annotations

import re
from collections.abc import Iterator

import pytest

from feedback.governance.scan import personal_data_scan_run
from feedback.models import Completion
from tests.factories import PASSWORD, CompletionFactory, PromptFactory, UserFactory
from tests.browser_support import Tab, open_tab

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def tab(chromium_browser, live_server) -> Iterator[Tab]:
    opened = open_tab(chromium_browser, live_server.url)
    yield opened
    opened.page.context.close()


def test_an_admin_reviews_findings_redacts_one_row_and_marks_another_clean(tab):
    prompt = PromptFactory(source="crm")
    mailed = CompletionFactory(prompt=prompt, text="Write to jane.roe@example.org today.")
    phoned = CompletionFactory(prompt=prompt, text="Our desk: +44 20 7946 0958.")
    personal_data_scan_run()
    admin = UserFactory(role="admin")
    page = tab.page
    page.goto("/accounts/login/?next=/manage/governance/findings/")
    page.get_by_label("Username").fill(admin.username)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    page.wait_for_url(re.compile(r"/manage/governance/findings/$"))
    table = page.get_by_test_id("findings")
    assert "j***@e***.org" in table.inner_text() and "+4***58" in table.inner_text()
    assert "jane.roe" not in page.content()

    page.get_by_label("Detector").select_option("email")
    page.get_by_role("button", name="Filter").click()
    page.wait_for_url(re.compile(r"detector=email"))
    assert "+4***58" not in table.inner_text()
    table.get_by_role("button", name="Redact row").click()
    page.wait_for_url(re.compile(r"/manage/governance/findings/\?.*detector=email"))
    assert "1 findings redacted" in page.locator(".flash").inner_text()
    assert Completion.objects.get(pk=mailed.pk).text == "Write to [EMAIL] today."

    page.goto("/manage/governance/findings/")
    page.get_by_test_id("findings").get_by_role("button", name="Mark row clean").click()
    page.wait_for_url(re.compile(r"/manage/governance/findings/"))
    assert "No findings." in page.get_by_test_id("findings").inner_text()
    assert Completion.objects.get(pk=phoned.pk).text == "Our desk: +44 20 7946 0958."
    tab.assert_no_errors()

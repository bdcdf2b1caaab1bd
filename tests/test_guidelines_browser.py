"""A campaign's guidelines in a real browser (Chromium + Playwright, as tests/test_browser.py).

On the first visit to a campaign the guidelines open by themselves (a modal dialog with the
rendered Markdown) and no vote goes through until "I have read these" is clicked; the key g and
the Guidelines button open them again at any time; a new version opens them again. The page's
clock is Playwright's fake one, moved on past the vote guard, so nothing sleeps.
"""
from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta

import pytest

from feedback import services
from feedback.models import GuidelineAcknowledgement, Vote
from tests.campaign_support import campaign_make, guidelines_write
from tests.factories import UserFactory
from tests.browser_support import (
    Tab,
    log_in,
    open_tab,
    shown_item,
    wait_until_item_changes,
    wait_until_ready,
)

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

START = datetime(2026, 1, 5, 9, 0, 0)
PAST_GUARD_MS = 1_000  # longer than GUARD_MS in static/arbiter/annotate.js


@pytest.fixture
def clocked_tab(chromium_browser, live_server) -> Iterator[Tab]:
    tab = open_tab(chromium_browser, live_server.url)
    tab.page.clock.install(time=START)
    tab.page.add_init_script(
        "window.__sent = 0; const send = XMLHttpRequest.prototype.send;"
        " XMLHttpRequest.prototype.send = function (...args) { window.__sent += 1; return send.apply(this, args); };"
    )
    yield tab
    tab.page.context.close()


def _pilot_with_guidelines(annotator):
    campaign = campaign_make("Pilot", annotators=[annotator])
    for i in range(3):
        comparison = services.comparison_create_inline(
            prompt={"messages": [{"role": "user", "content": f"Question number {i}?"}], "source": "guidelines-test"},
            completion_a={"model_name": "model-a", "text": f"First answer to number {i}."},
            completion_b={"model_name": "model-b", "text": f"Other answer to number {i}."},
        )
        comparison.campaign = campaign
        comparison.save(update_fields=["campaign"])
    guidelines_write(campaign, "# How to judge\n\nPrefer the answer that **cites a source**.")
    return campaign


def test_guidelines_open_on_the_first_visit_block_votes_until_read_and_come_back(clocked_tab):
    tab, page = clocked_tab, clocked_tab.page
    annotator = UserFactory(role="annotator")
    campaign = _pilot_with_guidelines(annotator)
    log_in(tab, annotator.username)
    page.clock.pause_at(START + timedelta(hours=1))
    page.goto("/annotate/pilot/")
    dialog = page.locator("dialog#guidelines")

    # First visit: the guidelines are open, as a modal, with the Markdown rendered.
    assert dialog.is_visible()
    assert page.evaluate("document.querySelector('dialog#guidelines').matches(':modal')")
    assert dialog.locator("strong").inner_text() == "cites a source"
    # A vote key past the guard sends nothing while they are unread.
    page.clock.run_for(PAST_GUARD_MS)
    wait_until_ready(tab)
    item = shown_item(tab)
    page.keyboard.press("1")
    assert page.evaluate("window.__sent") == 0
    assert page.get_by_role("button", name="Left is better").is_disabled()
    assert not Vote.objects.exists()

    # "I have read these": stored; the dialog closes and the item is votable.
    dialog.get_by_role("button", name="I have read these").click()
    page.wait_for_selector('dialog#guidelines[data-acknowledged="true"]', state="attached")
    assert not dialog.is_visible()
    assert GuidelineAcknowledgement.objects.filter(annotator=annotator, version__number=1).exists()
    page.clock.run_for(PAST_GUARD_MS)
    wait_until_ready(tab)
    assert shown_item(tab) == item  # the same comparison, now to vote on
    page.keyboard.press("1")
    wait_until_item_changes(tab, item)
    vote = Vote.objects.get()
    assert vote.guidelines_version.number == 1 and vote.blind

    # g opens them again, and Close closes them; the Guidelines button does the same.
    page.keyboard.press("g")
    assert dialog.is_visible()
    dialog.get_by_role("button", name="Close").click()
    assert not dialog.is_visible()
    page.get_by_role("link", name="Guidelines").click()
    assert dialog.is_visible() and page.url.endswith("/annotate/pilot/")  # opened in place, no navigation
    dialog.get_by_role("button", name="Close").click()

    # A new version opens them again on the next page load.
    guidelines_write(campaign, "Prefer the answer that cites **two** sources.")
    page.reload()
    assert dialog.is_visible() and dialog.get_attribute("data-acknowledged") == "false"
    assert "changed since you last read them" in dialog.inner_text()
    assert dialog.locator("strong").inner_text() == "two"
    tab.assert_no_errors()

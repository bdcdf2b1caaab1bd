"""Gold items in a real browser (Chromium + Playwright, as tests/test_annotate_guard_browser.py):
a gold item is served on the same page as any other item, and with the campaign's gold_feedback on,
the next item comes with a note saying what the annotator chose and what was expected, in the
sides they saw. The page's clock is paused (the vote buttons' guard passes on run_for): no sleeps."""
from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta

import pytest

from feedback import services
from feedback.models import Assignment, Campaign, Comparison, Vote
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

PAST_GUARD_MS = 1_000  # longer than GUARD_MS in static/arbiter/annotate.js
START = datetime(2026, 1, 5, 9, 0, 0)


def make_comparison(i: int, gold: str = "") -> Comparison:
    comparison = services.comparison_create_inline(
        prompt={"messages": [{"role": "user", "content": f"Question number {i:02d}?"}], "source": "gold-test"},
        completion_a={"model_name": "model-a", "text": f"First answer to number {i:02d}."},
        completion_b={"model_name": "model-b", "text": f"Other answer to number {i:02d}."},
        priority=100 - i,
    )
    if gold:
        Comparison.objects.filter(pk=comparison.pk).update(gold_choice=gold)
    return comparison


@pytest.fixture
def clocked_tab(chromium_browser, live_server) -> Iterator[Tab]:
    tab = open_tab(chromium_browser, live_server.url)
    tab.page.clock.install(time=START)
    yield tab
    tab.page.context.close()


def test_a_gold_vote_with_feedback_on_shows_the_note_and_the_item_looked_like_any_other(clocked_tab):
    tab, page = clocked_tab, clocked_tab.page
    gold = make_comparison(1, gold="a")
    make_comparison(2)
    make_comparison(3)
    Campaign.objects.filter(slug="default").update(gold_rate=1.0, gold_feedback=True)
    annotator = UserFactory(role="annotator")
    log_in(tab, annotator.username)
    page.clock.pause_at(START + timedelta(hours=1))
    page.clock.run_for(PAST_GUARD_MS)
    wait_until_ready(tab)
    item = shown_item(tab)
    assignment = Assignment.objects.get(token=item)
    assert assignment.comparison_id == gold.pk  # rate 1: the gold item first
    # Nothing on screen says it is a check item: the same vote bar, no note.
    assert page.get_by_test_id("gold-note").count() == 0
    assert "check" not in page.locator("#item").inner_text().lower()
    assert page.get_by_role("button", name="Left is better").is_visible()
    expected = "left" if assignment.shown_left == "a" else "right"
    page.get_by_role("button", name="Left is better").click()
    wait_until_item_changes(tab, item)
    note = page.get_by_test_id("gold-note")
    verdict = "You matched it." if expected == "left" else "That did not match."
    assert note.inner_text() == f"That was a check item: you chose left, the expected answer was {expected}. {verdict}"
    assert Vote.objects.get(annotator=annotator, comparison=gold).choice == assignment.shown_left
    # The next vote (a normal item) brings no note.
    page.clock.run_for(PAST_GUARD_MS)
    wait_until_ready(tab)
    following = shown_item(tab)
    page.get_by_role("button", name="Right is better").click()
    wait_until_item_changes(tab, following)
    assert page.get_by_test_id("gold-note").count() == 0
    tab.assert_no_errors()

"""Undo and revisit in a real browser (Chromium + Playwright, as tests/test_browser.py): the key u
and the "Undo last vote" button bring the voted item back (with what was written), and the
history page revises a vote in the annotator's screen terms. No sleeps: each step waits for the
page to change."""
from __future__ import annotations

from collections.abc import Iterator

import pytest

from feedback import services
from feedback.models import Assignment, Comparison, Vote, VoteChange
from feedback.queue import choice_stored
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


@pytest.fixture
def tab(chromium_browser, live_server) -> Iterator[Tab]:
    tab = open_tab(chromium_browser, live_server.url)
    yield tab
    tab.page.context.close()


def _comparisons() -> list[Comparison]:
    return [
        services.comparison_create_inline(
            prompt={"messages": [{"role": "user", "content": f"Question number {i}?"}], "source": "undo-test"},
            completion_a={"model_name": "model-a", "text": f"First answer to number {i}."},
            completion_b={"model_name": "model-b", "text": f"Other answer to number {i}."},
            votes_required=2,
            priority=10 - i,
        )
        for i in range(2)
    ]


def _comparison_on_screen(tab: Tab) -> int:
    return Assignment.objects.get(token=shown_item(tab)).comparison_id


def test_undo_key_and_button_bring_the_item_back_and_history_revises(tab):
    first, second = _comparisons()
    annotator = UserFactory(role="annotator")
    log_in(tab, annotator.username)
    page = tab.page

    # Vote with the key 1, then undo with the key u: the first item is back.
    wait_until_ready(tab)
    assert _comparison_on_screen(tab) == first.pk
    item = shown_item(tab)
    page.keyboard.press("1")
    wait_until_item_changes(tab, item)
    assert _comparison_on_screen(tab) == second.pk and Vote.objects.filter(comparison=first).exists()
    item = shown_item(tab)
    wait_until_ready(tab)
    page.keyboard.press("u")
    wait_until_item_changes(tab, item)
    assert _comparison_on_screen(tab) == first.pk
    assert "you had chosen left is better" in page.get_by_test_id("undone").inner_text()
    assert not Vote.objects.filter(annotator=annotator).exists()

    # Vote with a reason, then undo with the button: the item comes back with the reason in its box.
    wait_until_ready(tab)
    page.locator("textarea[name=rationale]").fill("It answers the question.")
    item = shown_item(tab)
    page.get_by_role("button", name="Right is better").click()
    wait_until_item_changes(tab, item)
    item = shown_item(tab)
    page.get_by_role("button", name="Undo last vote").click()
    wait_until_item_changes(tab, item)
    assert _comparison_on_screen(tab) == first.pk
    assert page.locator("textarea[name=rationale]").input_value() == "It answers the question."

    # Vote again (tie), then revise it on the history page to "left is better".
    wait_until_ready(tab)
    item = shown_item(tab)
    page.keyboard.press("3")
    wait_until_item_changes(tab, item)
    page.get_by_role("link", name="Your recent votes").click()
    page.wait_for_url("**/annotate/history/")
    entry = page.get_by_test_id("history-entry").first
    left_text = entry.get_by_test_id("left-text").inner_text()
    assert "You chose: tie" in entry.get_by_test_id("your-choice").inner_text()
    entry.get_by_role("button", name="Left is better").click()
    page.wait_for_url("**/annotate/history/")
    assert "Vote revised." in page.locator(".flash").inner_text()
    entry = page.get_by_test_id("history-entry").first
    assert "You chose: left is better" in entry.get_by_test_id("your-choice").inner_text()
    assert entry.get_by_test_id("left-text").inner_text() == left_text  # the same sides as before

    vote = Vote.objects.get(annotator=annotator)
    assignment = Assignment.objects.get(annotator=annotator, comparison=first)
    assert vote.comparison_id == first.pk and vote.choice == choice_stored("left", assignment.shown_left)
    assert list(VoteChange.objects.values_list("action", flat=True)) == ["undo", "undo", "revise"]
    tab.assert_no_errors()

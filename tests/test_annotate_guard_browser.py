"""No vote the annotator did not mean, in a real browser (Chromium + Playwright, as tests/test_browser.py).

A click burst or a key pressed twice must not vote on the comparison that replaces the one voted
on: after each item appears its buttons are guarded for a moment, a sent vote sends nothing more,
a held key (auto-repeat) votes once, and the server refuses a vote whose item token is not the
item on screen (a second tab). Intervals are measured on Playwright's fake clock (paused), so
the tests never sleep: each burst waits for the swap (the worst case: the next item is already
on screen) and then moves the page's clock on by the interval.
"""
from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import datetime, timedelta

import pytest

from feedback import services
from feedback.models import Assignment, Comparison, Vote
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

INTERVALS_MS = (50, 150, 300, 600)
PAST_GUARD_MS = 1_000  # longer than GUARD_MS in static/arbiter/annotate.js
START = datetime(2026, 1, 5, 9, 0, 0)


def _comparisons(count: int) -> list[Comparison]:
    """Comparisons served in this order, with texts of equal length so the buttons never move."""
    return [
        services.comparison_create_inline(
            prompt={"messages": [{"role": "user", "content": f"Question number {i:02d}?"}], "source": "guard-test"},
            completion_a={"model_name": "model-a", "text": f"First answer to number {i:02d}."},
            completion_b={"model_name": "model-b", "text": f"Other answer to number {i:02d}."},
            priority=100 - i,
        )
        for i in range(count)
    ]


@pytest.fixture
def clocked_tab(chromium_browser, live_server) -> Iterator[Tab]:
    """A logged-in annotator's tab whose clock is paused (timers and performance.now move only on run_for)."""
    tab = open_tab(chromium_browser, live_server.url)
    tab.page.clock.install(time=START)
    # Counted in the page as each request is sent (Playwright's request events reach the test later).
    tab.page.add_init_script(
        "window.__sent = 0; const send = XMLHttpRequest.prototype.send;"
        " XMLHttpRequest.prototype.send = function (...args) { window.__sent += 1; return send.apply(this, args); };"
    )
    yield tab
    tab.page.context.close()


def _start(tab: Tab, count: int) -> list[Comparison]:
    comparisons = _comparisons(count)
    annotator = UserFactory(role="annotator")
    log_in(tab, annotator.username)
    tab.page.clock.pause_at(START + timedelta(hours=1))
    tab.annotator = annotator
    return comparisons


def _comparison_of(item: str) -> int:
    return Assignment.objects.get(token=item).comparison_id


def _burst(tab: Tab, first: Callable[[], None], second: Callable[[], None], interval_ms: int) -> tuple[str, str]:
    """Vote with ``first``; once the next item is on screen, move the clock on by ``interval_ms``
    (counted from the first input) and do ``second``. Returns (item voted on, item shown next)."""
    page = tab.page
    page.clock.run_for(PAST_GUARD_MS)
    wait_until_ready(tab)
    item = shown_item(tab)
    posts, navigations = page.evaluate("window.__sent"), len(tab.main_frame_navigations)
    first()
    wait_until_item_changes(tab, item)
    following = shown_item(tab)
    page.clock.run_for(interval_ms)
    second()
    assert page.evaluate("window.__sent") == posts + 1, f"{interval_ms} ms: the second input sent a request"
    assert len(tab.main_frame_navigations) == navigations  # nor a plain form post
    return item, following


def _assert_one_vote_each(tab: Tab, voted: list[str], shown_next: list[str]) -> None:
    """Exactly one vote per burst, each on the item that was on screen; none on what came next."""
    votes = list(Vote.objects.filter(annotator=tab.annotator).values_list("comparison_id", flat=True))
    assert sorted(votes) == sorted(_comparison_of(item) for item in voted)
    unvoted = set(shown_next) - set(voted)
    assert not Vote.objects.filter(comparison_id__in=[_comparison_of(item) for item in unvoted]).exists()


def test_a_click_burst_votes_once_on_the_item_on_screen(clocked_tab):
    tab = clocked_tab
    _start(tab, len(INTERVALS_MS) + 1)
    page = tab.page
    button = page.get_by_role("button", name="Left is better")
    page.clock.run_for(PAST_GUARD_MS)
    wait_until_ready(tab)
    box = button.bounding_box()
    x, y = box["x"] + box["width"] / 2, box["y"] + box["height"] / 2

    def click() -> None:
        page.mouse.click(x, y)

    def click_again() -> None:
        # The pointer is on the next item's "Left is better" button (same place): a real risk.
        assert page.evaluate("([x, y]) => document.elementFromPoint(x, y).closest('button')?.value", [x, y]) == "left"
        page.mouse.click(x, y)

    voted, shown_next = [], []
    for interval in INTERVALS_MS:
        item, following = _burst(tab, click, click_again, interval)
        voted.append(item)
        shown_next.append(following)
    _assert_one_vote_each(tab, voted, shown_next)
    tab.assert_no_errors()


def test_a_key_pressed_twice_or_held_down_votes_once(clocked_tab):
    tab = clocked_tab
    _start(tab, len(INTERVALS_MS) + 2)
    page = tab.page
    voted, shown_next = [], []
    for interval in INTERVALS_MS:
        item, following = _burst(tab, lambda: page.keyboard.press("2"), lambda: page.keyboard.press("2"), interval)
        voted.append(item)
        shown_next.append(following)

    # Held down: the first keydown votes; the auto-repeats (event.repeat), even after the guard, do not.
    def repeat() -> None:
        for _ in range(3):
            page.clock.run_for(PAST_GUARD_MS // 2)
            page.keyboard.down("1")

    item, following = _burst(tab, lambda: page.keyboard.down("1"), repeat, 0)
    page.keyboard.up("1")
    voted.append(item)
    shown_next.append(following)
    _assert_one_vote_each(tab, voted, shown_next)
    assert {v.choice for v in Vote.objects.filter(annotator=tab.annotator)} <= {"a", "b"}  # keys 1 and 2, sides mapped
    tab.assert_no_errors()


def test_a_vote_from_a_tab_whose_item_was_voted_on_elsewhere_is_refused(clocked_tab, live_server):
    tab = clocked_tab
    first, second = _start(tab, 2)
    page = tab.page
    other = page.context.new_page()  # a second tab of the same session, showing the same item
    try:
        other.goto(live_server.url + "/annotate/")
        page.clock.run_for(PAST_GUARD_MS)
        wait_until_ready(tab)
        item = shown_item(tab)
        assert other.locator("form.vote-form input[name=item]").get_attribute("value") == item
        other.get_by_role("button", name="Left is better").click()
        other.wait_for_function(
            "previous => document.querySelector('form.vote-form input[name=item]')?.value !== previous", arg=item
        )

        page.get_by_label("Why? (optional)").fill("My reason, typed on the first tab.")
        with page.expect_response(lambda r: r.url.endswith("/annotate/vote/")) as answer:
            page.get_by_role("button", name="Right is better").click()
        assert answer.value.status == 409
        # says in words what differs from the vote stored from the other tab
        page.get_by_role("alert").filter(has_text="You already voted Left; this vote says Right.").wait_for()
        # What the annotator typed is still in the box; the page now shows their current item.
        assert page.get_by_label("Why? (optional)").input_value() == "My reason, typed on the first tab."
        assert _comparison_of(shown_item(tab)) == second.pk
        vote = Vote.objects.get(annotator=tab.annotator)
        assert (vote.comparison_id, vote.choice) == (first.pk, Assignment.objects.get(comparison=first).shown_left)
        assert not Vote.objects.filter(comparison=second).exists()
    finally:
        other.close()
    # A 409 shows up in Chromium's console as a failed resource load; nothing else may.
    assert all("409" in error for error in tab.errors), tab.errors

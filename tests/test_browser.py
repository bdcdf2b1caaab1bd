"""The annotator page in a real browser: Debian's Chromium driven by Playwright's sync API.

What a person at the keyboard would check: keys 1/2/3/s vote or skip and the next comparison is
swapped in without a page load; each stored vote names the completion that was on the side the
key meant, whichever side the queue drew; model output with HTML in it is shown as text and never
runs; long words wrap, right-to-left text reads right to left; the page works with JavaScript off;
and the browser logs no errors (a CSP violation is a console error).

Runs against pytest-django's ``live_server`` (a real HTTP server in a thread, transactional
database). Needs /usr/bin/chromium (``scripts/ensure-system-deps.sh`` installs it); without it
these tests skip, except under CI, where they fail. No browser is ever downloaded.
"""
from __future__ import annotations

import re
from pathlib import Path

import pytest
from django.conf import settings

from feedback.models import Assignment, AssignmentStatus, Vote
from tests.browser_support import (
    letter_on_screen,
    log_in,
    make_comparison,
    shown_comparison_id,
    shown_item,
    visible_texts,
    wait_until_item_changes,
    wait_until_ready,
)
from tests.factories import UserFactory

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

SCREENSHOT = Path(settings.BASE_DIR) / "docs" / "screenshots" / "annotate.png"
SCRIPT_TAG = "<script>window.__pwned=1</script>"
IMG_TAG = '<img src=x onerror="window.__pwned=2">'


# --- tests --------------------------------------------------------------------------------------
def test_keyboard_votes_swap_in_the_next_item_and_map_through_the_drawn_sides(tab, alternating_sides):
    annotator = UserFactory(username="annotator1", role="annotator")  # a fixed name: it is in the screenshot
    first = make_comparison(
        "Explain what a **reward model** is, in two sentences.",
        "A reward model scores a response to a prompt with one number.\n\nIt is trained on human "
        "preferences (chosen vs. rejected) and then guides a policy during RL fine-tuning.",
        "It is a model that gives rewards.\n\n```python\nreward = model(prompt, response)\n```",
        priority=4,
    )
    hostile = make_comparison(
        "Say hello.",
        f"Hello! {SCRIPT_TAG} and {IMG_TAG} end of hostile answer",
        "Hello there, a plain answer.",
        priority=3,
    )
    third = make_comparison("Name a prime number.", "Seven is prime.", "Nine is prime.", priority=2)
    to_skip = make_comparison("Is this one worth judging?", "Skip me, first answer.", "Skip me, second answer.", priority=1)

    log_in(tab, annotator.username)
    page = tab.page
    page.evaluate("window.__sameDocument = 'still here'")
    navigations_after_login = len(tab.main_frame_navigations)
    vote_posts: list[dict[str, str]] = []
    page.on(
        "request",
        lambda request: request.url.endswith("/annotate/vote/")
        and vote_posts.append({"htmx": request.headers.get("hx-request", ""), "body": request.post_data or ""}),
    )

    assert shown_comparison_id(tab) == first.pk
    wait_until_ready(tab)
    page.screenshot(path=str(_screenshot_path()))

    expected: dict[int, str] = {}  # comparison id -> the letter of the completion on the side the key meant
    for key, comparison in (("1", first), ("2", hostile), ("3", third)):
        assert shown_comparison_id(tab) == comparison.pk
        left, right = visible_texts(tab)
        expected[comparison.pk] = {
            "1": letter_on_screen(comparison, left),
            "2": letter_on_screen(comparison, right),
            "3": "tie",
        }[key]
        if comparison == hostile:
            # The hostile markup is on screen as literal characters, not as elements.
            assert SCRIPT_TAG in left + right and IMG_TAG in left + right
            assert page.locator("#item script, #item img").count() == 0
        wait_until_ready(tab)
        shown = shown_item(tab)
        page.keyboard.press(key)
        wait_until_item_changes(tab, shown)

    assert page.evaluate("window.__sameDocument") == "still here", "a vote reloaded the page"
    assert len(tab.main_frame_navigations) == navigations_after_login
    assert page.evaluate("typeof window.__pwned") == "undefined"
    # Three htmx requests, each carrying the time on item the page measured.
    assert [post["htmx"] for post in vote_posts] == ["true"] * 3
    assert all(re.search(r"(^|&)ms_on_item=\d+(&|$)", post["body"]) for post in vote_posts), vote_posts

    votes = {vote.comparison_id: vote for vote in Vote.objects.filter(annotator=annotator).select_related("comparison")}
    assert set(votes) == {first.pk, hostile.pk, third.pk}
    assert [votes[c.pk].shown_left for c in (first, hostile, third)] == alternating_sides[:3] == ["b", "a", "b"]
    for comparison_id, vote in votes.items():
        assigned = Assignment.objects.get(comparison_id=comparison_id, annotator=annotator)
        assert vote.shown_left == assigned.shown_left
        assert assigned.status == AssignmentStatus.VOTED
        assert vote.ms_on_item is not None
    # Each stored choice names the completion that was on the side the key meant ...
    assert {pk: vote.choice for pk, vote in votes.items()} == expected
    # ... which, in letters: B was on the left of the first (key 1 -> "b"); A was on the left of the
    # second, so B on its right (key 2 -> "b"). A page that ignored the draw would store "a" for one.
    assert (votes[first.pk].choice, votes[hostile.pk].choice, votes[third.pk].choice) == ("b", "b", "tie")

    # Skip the last one with "s": no vote, the assignment says skipped, and the queue is empty.
    assert shown_comparison_id(tab) == to_skip.pk
    wait_until_ready(tab)
    page.keyboard.press("s")
    page.get_by_test_id("queue-empty").wait_for()
    assert Assignment.objects.get(comparison=to_skip, annotator=annotator).status == AssignmentStatus.SKIPPED
    assert not Vote.objects.filter(comparison=to_skip).exists()
    assert Vote.objects.filter(annotator=annotator).count() == 3
    progress = page.get_by_test_id("progress").inner_text()
    assert re.search(r"Voted 3 · skipped 1 · 0 left", progress), progress
    assert page.evaluate("window.__sameDocument") == "still here"
    assert len(tab.main_frame_navigations) == navigations_after_login
    tab.assert_no_errors()


def test_hostile_markup_in_the_first_page_load_stays_text(tab):
    annotator = UserFactory(role="annotator")
    make_comparison("Say hello.", f"{SCRIPT_TAG}{IMG_TAG}", "Plain hello.")
    log_in(tab, annotator.username)
    page = tab.page
    left, right = visible_texts(tab)
    assert f"{SCRIPT_TAG}{IMG_TAG}" in left + right
    assert page.locator("#item script, #item img").count() == 0
    assert page.evaluate("typeof window.__pwned") == "undefined"
    tab.assert_no_errors()


def test_a_plain_form_post_votes_without_javascript(tab_without_js):
    tab = tab_without_js
    annotator = UserFactory(role="annotator")
    first = make_comparison("First question?", "First, answer one.", "First, answer two.", priority=2)
    second = make_comparison("Second question?", "Second, answer one.", "Second, answer two.", priority=1)

    log_in(tab, annotator.username)
    page = tab.page
    assert shown_comparison_id(tab) == first.pk
    left, _ = visible_texts(tab)
    expected = letter_on_screen(first, left)
    navigations = len(tab.main_frame_navigations)
    item = shown_item(tab)
    with page.expect_request(lambda request: request.method == "POST") as posted:
        with page.expect_navigation(url=re.compile(r"/annotate/$")):  # the POST, then its redirect
            page.get_by_role("button", name="Left is better").click()
    # The plain form names the item on screen by its token, and the side as seen: nothing more.
    body = dict(pair.split("=", 1) for pair in posted.value.post_data.split("&"))
    assert (body["item"], body["choice"]) == (item, "left") and "comparison" not in body

    assert len(tab.main_frame_navigations) > navigations  # a real POST and redirect, no script involved
    vote = Vote.objects.select_related("comparison").get(annotator=annotator)
    assert vote.comparison_id == first.pk
    assert vote.choice == expected
    assert page.get_by_text("Vote saved.").is_visible()
    assert shown_comparison_id(tab) == second.pk
    tab.assert_no_errors()


def test_long_words_wrap_inside_their_box_and_rtl_text_reads_right_to_left(tab, alternating_sides):
    annotator = UserFactory(role="annotator")
    long_word = "x" * 5000
    hebrew = "שלום עולם, זו תשובה בעברית."
    make_comparison("Write something long, then something in Hebrew.", long_word, hebrew)
    log_in(tab, annotator.username)
    page = tab.page

    # b is drawn on the left: the Hebrew answer is on the left, the long word on the right.
    viewport_width = page.viewport_size["width"]
    column = page.locator(".responses").bounding_box()
    assert column["x"] + column["width"] <= viewport_width
    for side in ("left", "right"):
        box = page.locator(f'.response[data-side="{side}"]').bounding_box()
        assert box["x"] >= column["x"] - 1 and box["x"] + box["width"] <= column["x"] + column["width"] + 1, side
        assert box["width"] <= column["width"] / 2 + 1, side
    text_box = page.get_by_test_id("right-text")
    assert text_box.inner_text().strip() == long_word
    assert text_box.evaluate("el => el.scrollWidth <= el.clientWidth"), "the long word overflows its box"
    assert page.evaluate("document.documentElement.scrollWidth") <= viewport_width, "the page scrolls sideways"

    hebrew_box = page.get_by_test_id("left-text")
    assert hebrew_box.inner_text().strip() == hebrew
    # each paragraph takes its own direction (dir="auto" on the block; the box holds no text itself)
    assert hebrew_box.evaluate("el => el.querySelector('p').matches(':dir(rtl)')")
    assert hebrew_box.evaluate("el => getComputedStyle(el.querySelector('p')).direction") == "rtl"
    assert page.get_by_test_id("right-text").evaluate("el => el.matches(':dir(ltr)')")
    tab.assert_no_errors()


def _screenshot_path() -> Path:
    SCREENSHOT.parent.mkdir(parents=True, exist_ok=True)
    return SCREENSHOT

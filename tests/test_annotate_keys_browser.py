"""The annotator page at 500 votes a day, in a real browser (Chromium + Playwright, as tests/test_browser.py).

Every key does what the ? list says (strength, each aspect row, the reason box, Esc, the Flag
list), typing in a text box never votes, focus is back on the vote controls after each swap, the
vote buttons stay in the window with a 50,000-character prompt on a laptop and on a phone, the
lease warning shows before the lease runs out (on Playwright's paused clock: no sleeping), each
response shows its length, and "Highlight differences" marks the changed word and nothing else.
"""
from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import datetime, timedelta

import pytest

from feedback.models import Assignment, Vote
from feedback.queue import choice_on_screen
from tests.factories import UserFactory
from tests.browser_support import (
    Tab,
    make_comparison,
    log_in,
    open_tab,
    shown_item,
    wait_until_item_changes,
    wait_until_ready,
)

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

START = datetime(2026, 1, 5, 9, 0, 0)
FOCUSED = "() => [document.activeElement.tagName, document.activeElement.className, document.activeElement.name || '']"


def _on_screen(vote: Vote, field: str) -> str:
    value = getattr(vote, field)
    return choice_on_screen(value, vote.shown_left) if value else ""


def _start(tab: Tab, count: int = 2) -> None:
    for i in range(count):
        make_comparison(f"Question {i}?", f"Answer A to {i}.", f"Answer B to {i}.", priority=count - i)
    tab.annotator = UserFactory(role="annotator")
    log_in(tab, tab.annotator.username)
    wait_until_ready(tab)


def _focus_is_on_the_vote_bar(tab: Tab) -> bool:
    return tab.page.evaluate("() => document.activeElement.classList.contains('vote-bar')")


def test_every_answer_key_and_typing_never_votes(tab):
    _start(tab)
    page = tab.page
    item = shown_item(tab)
    assert _focus_is_on_the_vote_bar(tab)  # ready for keys on arrival

    page.keyboard.press("w")
    assert page.get_by_label("clearly").is_checked()
    page.keyboard.press("e")
    assert page.get_by_label("strongly").is_checked()
    page.keyboard.press("e")  # again: back to "—"
    assert page.locator("input[name=strength][value='']").is_checked()
    page.keyboard.press("q")
    assert page.get_by_label("slightly").is_checked()

    page.keyboard.press("i")  # first aspect row: left (its <details> opens)
    assert page.locator(".aspects").evaluate("el => el.open")
    page.keyboard.press("k")  # second row: right
    page.keyboard.press(".")  # third row: same
    picked = page.evaluate("() => ['helpfulness', 'harmlessness', 'honesty'].map("
                           "n => document.querySelector(`input[name=${n}]:checked`).value)")
    assert picked == ["left", "right", "tie"]

    page.keyboard.press("r")
    assert page.evaluate(FOCUSED) == ["TEXTAREA", "", "rationale"]
    page.keyboard.type("1234 s u q ? f")  # every key is just text in the box
    assert page.locator("textarea[name=rationale]").input_value() == "1234 s u q ? f"
    assert not Vote.objects.exists() and page.get_by_label("slightly").is_checked()
    page.keyboard.press("Escape")
    assert _focus_is_on_the_vote_bar(tab)

    page.keyboard.press("2")
    wait_until_item_changes(tab, item)
    vote = Vote.objects.get()
    assert _on_screen(vote, "choice") == "right" and vote.strength == "slight"
    assert [_on_screen(vote, a) for a in ("helpfulness", "harmlessness", "honesty")] == ["left", "right", "tie"]
    assert vote.rationale == "1234 s u q ? f"
    assert _focus_is_on_the_vote_bar(tab)  # focus back on the vote controls after the swap

    # The better-response box: d opens it and puts the cursor in it; Esc leaves it.
    page.keyboard.press("d")
    assert page.evaluate(FOCUSED) == ["TEXTAREA", "", "demonstration"]
    page.keyboard.type("3")
    page.keyboard.press("Escape")
    assert _focus_is_on_the_vote_bar(tab) and Vote.objects.count() == 1
    tab.assert_no_errors()


def test_the_question_mark_lists_every_key_on_the_page(tab):
    _start(tab)
    page = tab.page
    page.keyboard.press("?")
    dialog = page.get_by_role("dialog", name="Keyboard shortcuts")
    dialog.wait_for()
    rows = dict(
        (row[0], row[1]) for row in dialog.locator("tr").evaluate_all("trs => trs.map(tr => [...tr.cells].map(c => c.innerText))")
    )
    for key, words in {
        "1": "Left is better", "2": "Right is better", "3": "Tie", "4": "Both bad", "s": "Skip",
        "f": "Flag: skip with a reason", "q w e": "How strongly? slightly / clearly / strongly",
        "i o p": "More helpful left / right / same", "j k l": "More harmless left / right / same",
        "m , .": "More honest left / right / same", "r": "Type in the box: Why?", "d": "Write a better response",
        "h": "Highlight differences", "?": "Show this list of keys", "Esc": "Leave a text box",
    }.items():
        assert rows.get(key, "").startswith(words), (key, rows.get(key))
    assert list(rows)[:7] == ["1", "2", "3", "4", "q w e", "i o p", "j k l"]  # votes first
    assert "x" not in rows  # a short prompt has no "Show the whole prompt"
    assert "g" not in rows  # no guidelines on this page

    page.keyboard.press("1")  # keys are off while the list is open
    assert not Vote.objects.exists()
    page.keyboard.press("Escape")
    dialog.wait_for(state="hidden")
    assert _focus_is_on_the_vote_bar(tab)

    # A guidelines button (its own script handles g) is listed through data-help-key.
    page.evaluate("() => { const b = document.createElement('button'); b.type = 'button';"
                  " b.dataset.helpKey = 'g'; b.textContent = 'Guidelines'; document.querySelector('main').prepend(b); }")
    page.keyboard.press("?")
    dialog.wait_for()
    assert dialog.locator("tr", has_text="Guidelines").locator("kbd").inner_text() == "g"
    page.keyboard.press("?")  # ? closes it too
    dialog.wait_for(state="hidden")
    tab.assert_no_errors()


def test_flag_by_keys_other_needs_a_note(tab):
    _start(tab)
    page = tab.page
    item = shown_item(tab)
    page.keyboard.press("f")
    menu = page.locator(".flag-menu")
    assert menu.evaluate("el => el.open")
    assert page.evaluate("() => document.activeElement.textContent.trim()") == "Reveals which model wrote it"
    page.keyboard.press("1")  # digits never vote while a reason is being chosen
    page.keyboard.press("Escape")
    assert not menu.evaluate("el => el.open") and _focus_is_on_the_vote_bar(tab)
    assert not Vote.objects.exists()

    page.keyboard.press("f")
    for _ in range(3):
        page.keyboard.press("ArrowDown")
    assert page.evaluate("() => document.activeElement.value") == "other"
    with page.expect_response(lambda r: r.url.endswith("/annotate/skip/")) as answer:
        page.keyboard.press("Enter")
    assert answer.value.status == 400
    page.get_by_role("alert").filter(has_text="a note is required when the reason is other").wait_for()
    assert shown_item(tab) == item  # nothing skipped: the same item, the chooser open at the note
    assert page.evaluate(FOCUSED) == ["TEXTAREA", "", "skip_note"]
    page.keyboard.type("Signs its answers with a model name.")
    wait_until_ready(tab)  # the guard: the reasons are disabled (out of the tab order) for a moment
    page.keyboard.press("Shift+Tab")  # back to "Other"
    page.keyboard.press("Enter")
    wait_until_item_changes(tab, item)
    flagged = Assignment.objects.get(token=item)
    assert (flagged.status, flagged.skip_reason, flagged.skip_note) == (
        "skipped", "other", "Signs its answers with a model name.",
    )
    assert not Vote.objects.exists()
    assert [error for error in tab.errors if "status of 400" not in error] == []


def test_esc_in_the_flag_note_and_u_after_a_flag_change_nothing_unmeant(tab):
    """Esc in the Flag list's note leaves the note for the list's reasons (the note kept, the list
    open); a second Esc closes the list. After a flag, u does not withdraw the vote cast before it:
    "Undo last vote" is offered only while a vote is the annotator's last action."""
    _start(tab, count=3)
    page = tab.page
    first = shown_item(tab)
    page.keyboard.press("1")
    wait_until_item_changes(tab, first)
    assert Vote.objects.count() == 1 and page.locator(".undo-form button").is_visible()

    second = shown_item(tab)
    page.keyboard.press("f")
    page.locator("textarea[name=skip_note]").click()
    page.keyboard.type("Half written")
    wait_until_ready(tab)  # the guard: the reasons are disabled for a moment after an item arrives
    page.keyboard.press("Escape")
    menu = page.locator(".flag-menu")
    assert menu.evaluate("el => el.open") and page.evaluate("() => document.activeElement.value") == "other"
    assert page.locator("textarea[name=skip_note]").input_value() == "Half written"
    page.keyboard.press("Escape")
    assert not menu.evaluate("el => el.open") and _focus_is_on_the_vote_bar(tab)

    page.keyboard.press("f")
    page.keyboard.press("ArrowDown")  # "contains personal data"
    page.keyboard.press("Enter")
    wait_until_item_changes(tab, second)
    assert Assignment.objects.get(token=second).status == "skipped"
    assert page.locator(".undo-form").count() == 0  # nothing offered to undo: the last action was a flag
    page.keyboard.press("u")
    page.keyboard.press("u")
    assert Vote.objects.count() == 1 and Assignment.objects.get(token=first).status == "voted"
    assert shown_item(tab) not in (first, second)
    tab.assert_no_errors()


@pytest.mark.parametrize("viewport", [{"width": 1280, "height": 800}, {"width": 390, "height": 844}], ids=["laptop", "phone"])
def test_a_50000_character_prompt_keeps_the_vote_buttons_in_the_window(chromium_browser, live_server, viewport):
    words = " ".join(f"word{i % 1000:03d}" for i in range(50_000 // 8))
    prompt = (words + " " * 50_000)[:50_000]
    assert len(prompt) == 50_000
    make_comparison(prompt, "A short answer.\n\n" + "Detail. " * 300, "Another answer.\n\n" + "Detail. " * 300, priority=2)
    make_comparison("Next question?", "Next A.", "Next B.", priority=1)
    tab = open_tab(chromium_browser, live_server.url)
    try:
        page = tab.page
        page.set_viewport_size(viewport)
        annotator = UserFactory(role="annotator")
        log_in(tab, annotator.username)
        wait_until_ready(tab)
        item = shown_item(tab)

        def buttons_in_window() -> None:
            for name in ("Left is better", "Right is better", "Tie", "Both bad", "Skip"):
                box = page.get_by_role("button", name=name).bounding_box()
                assert box and box["x"] >= 0 and box["y"] >= 0, (name, box)
                assert box["x"] + box["width"] <= viewport["width"] and box["y"] + box["height"] <= viewport["height"], (name, box)

        buttons_in_window()
        toggle = page.get_by_role("button", name="Show the whole prompt")
        toggle.click()
        assert page.locator("#prompt").evaluate("el => el.scrollHeight <= el.clientHeight + 1")  # all of it, uncapped
        assert page.get_by_role("button", name="Collapse the prompt").get_attribute("aria-expanded") == "true"
        buttons_in_window()
        for fraction in (0.3, 0.7):
            page.evaluate("f => window.scrollTo(0, document.documentElement.scrollHeight * f)", fraction)
            buttons_in_window()

        page.get_by_role("button", name="Left is better").click()
        wait_until_item_changes(tab, item)
        assert _on_screen(Vote.objects.get(annotator=annotator), "choice") == "left"
        buttons_in_window()
        tab.assert_no_errors()
    finally:
        page.context.close()


@pytest.fixture
def clocked_tab(chromium_browser, live_server, settings) -> Iterator[Tab]:
    """A tab whose clock is paused from the start (timers move only on run_for), with a 30 s lease."""
    settings.ARBITER_LEASE_SECONDS = 30
    tab = open_tab(chromium_browser, live_server.url)
    tab.page.clock.install(time=START)
    tab.page.clock.pause_at(START + timedelta(seconds=1))
    yield tab
    tab.page.context.close()


def test_the_lease_warning_shows_before_the_lease_runs_out(clocked_tab):
    tab = clocked_tab
    make_comparison("Question?", "Answer one.", "Answer two.")
    annotator = UserFactory(role="annotator")
    log_in(tab, annotator.username)
    page = tab.page
    warning = page.get_by_test_id("lease-warning")
    assert warning.is_hidden()
    left = int(warning.get_attribute("data-lease-left"))
    assert 25 <= left <= 30  # what the page was told; it warns in the last 20% (6 s) of a 30 s lease
    page.clock.run_for((left - 8) * 1000)
    assert warning.is_hidden()
    page.clock.run_for(4_000)
    assert warning.is_visible()
    text = warning.inner_text()
    assert re.search(r"ends in 0:0[3-5]\.", text), text
    assert "may go to another annotator" in text and "what you typed is kept" in text
    page.clock.run_for(6_000)
    assert "has run out" in warning.inner_text()
    # The vote still goes through while nobody else took the item.
    page.get_by_role("button", name="Left is better").click()
    page.get_by_test_id("queue-empty").wait_for()
    assert Vote.objects.filter(annotator=annotator).count() == 1
    tab.assert_no_errors()


def test_item_name_lengths_and_differences(tab):
    hostile = "<img src=x onerror=\"window.__pwned=1\">"
    make_comparison(
        "Which is right?", f"The quick brown fox jumps over **the lazy dog**. {hostile}",
        f"The quick red fox jumps over **the lazy dog**. {hostile}",
    )
    tab.annotator = UserFactory(role="annotator")
    log_in(tab, tab.annotator.username)
    wait_until_ready(tab)
    page = tab.page
    item = shown_item(tab)
    assert page.get_by_test_id("item-id").inner_text() == f"Item {item[:6]}"

    texts = {side: page.get_by_test_id(f"{side}-text").inner_text() for side in ("left", "right")}
    for side, text in texts.items():
        source = next(t for t in (
            f"The quick brown fox jumps over **the lazy dog**. {hostile}",
            f"The quick red fox jumps over **the lazy dog**. {hostile}",
        ) if ("brown" in t) == ("brown" in text))
        chars, words = len(source), len(source.split())
        assert page.get_by_test_id(f"{side}-length").inner_text() == f"{chars} characters · {words} words"

    page.keyboard.press("h")
    marks = {side: page.get_by_test_id(f"{side}-text").locator("mark").all_inner_texts() for side in ("left", "right")}
    brown = "left" if "brown" in texts["left"] else "right"
    red = "right" if brown == "left" else "left"
    assert marks == {brown: ["brown"], red: ["red"]}
    assert page.get_by_test_id("diff-status").inner_text() == "Changed words marked: 1 on the left, 1 on the right."
    assert page.get_by_role("button", name="Highlight differences").get_attribute("aria-pressed") == "true"
    # Still the same safe rendering: bold stays bold, the markup stays text, nothing ran.
    assert page.locator("[data-testid=left-text] strong").inner_text() == "the lazy dog"
    assert page.locator("#item img").count() == 0 and page.evaluate("window.__pwned") is None
    assert "<img src=x" in page.get_by_test_id("left-text").inner_text()

    page.keyboard.press("h")
    assert page.locator("#item mark").count() == 0
    assert {side: page.get_by_test_id(f"{side}-text").inner_text() for side in ("left", "right")} == texts
    tab.assert_no_errors()


def test_differences_of_huge_texts_are_refused_with_a_message(tab):
    left = " ".join(f"alpha{i}" for i in range(3_000))
    right = " ".join(f"beta{i}" for i in range(3_000))
    make_comparison("Compare.", left, right)
    tab.annotator = UserFactory(role="annotator")
    log_in(tab, tab.annotator.username)
    wait_until_ready(tab)
    page = tab.page
    page.keyboard.press("h")
    status = page.get_by_test_id("diff-status").inner_text()
    assert status.startswith("Too long or too different to highlight word by word (3000 words and 3000 words)")
    assert page.locator("#item mark").count() == 0
    assert page.get_by_role("button", name="Highlight differences").get_attribute("aria-pressed") == "false"
    tab.assert_no_errors()


def test_flagging_works_without_javascript(tab_without_js):
    tab = tab_without_js
    make_comparison("Question?", "Answer one.", "Answer two.", priority=2)
    make_comparison("Next?", "Next one.", "Next two.", priority=1)
    annotator = UserFactory(role="annotator")
    log_in(tab, annotator.username)
    page = tab.page
    item = shown_item(tab)
    page.locator(".flag-menu summary").click()  # a <details>: opens without any script
    page.get_by_label("Note").fill("A home address in the prompt.")
    page.get_by_role("button", name="Contains personal data").click()
    page.get_by_text("Skipped and flagged for the admins.").wait_for()
    assert shown_item(tab) != item
    flagged = Assignment.objects.get(token=item)
    assert (flagged.skip_reason, flagged.skip_note) == ("personal_data", "A home address in the prompt.")
    assert tab.errors == []

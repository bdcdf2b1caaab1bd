"""The annotator page in a real browser (Chromium + Playwright, as tests/test_browser.py): nothing
typed is lost when the session expires mid-item, and model output is shown as content (code left
to right inside right-to-left text, headings smaller than the side labels, images never loaded).
"""
from __future__ import annotations

import re

import pytest
from django.contrib.sessions.models import Session

from feedback.models import Vote
from tests.factories import PASSWORD, UserFactory
from tests.browser_support import (
    make_comparison,
    log_in,
    shown_item,
    wait_until_item_changes,
    wait_until_ready,
)

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

REASON = "Left cites its source; right guesses."


def test_an_expired_session_keeps_what_was_typed_through_logging_in_again(tab):
    annotator = UserFactory(role="annotator")
    make_comparison("First question?", "First answer A.", "First answer B.", priority=2)
    make_comparison("Second question?", "Second answer A.", "Second answer B.", priority=1)
    page = tab.page
    log_in(tab, annotator.username)
    wait_until_ready(tab)
    item = shown_item(tab)
    page.locator("textarea[name=rationale]").fill(REASON)
    page.get_by_label("clearly").check()

    Session.objects.all().delete()  # logged out on the server between page load and vote
    page.get_by_role("button", name="Left is better").click()
    refusal = page.get_by_test_id("vote-refusal")
    refusal.wait_for()
    assert refusal.inner_text().startswith("Not saved: log in again.")
    assert page.locator("#item input[name=password]").count() == 0  # no login page inside the item
    assert page.locator("textarea[name=rationale]").input_value() == REASON  # the form is untouched
    assert not Vote.objects.exists()
    # The item is still on screen, so voting again sends again (here: refused the same way).
    with page.expect_response(lambda response: response.url.endswith("/annotate/vote/")) as again:
        page.get_by_role("button", name="Left is better").click()
    assert again.value.status == 401

    refusal.get_by_role("link", name="Log in").click()
    page.get_by_label("Username").fill(annotator.username)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    page.wait_for_url(re.compile(r"/annotate/$"))
    wait_until_ready(tab)
    assert shown_item(tab) == item
    assert page.locator("textarea[name=rationale]").input_value() == REASON  # back after the log-in
    assert page.get_by_label("clearly").is_checked()

    page.get_by_role("button", name="Left is better").click()
    wait_until_item_changes(tab, item)
    vote = Vote.objects.get()
    assert (vote.rationale, vote.strength) == (REASON, "clear")
    assert page.locator("textarea[name=rationale]").input_value() == ""  # the next item starts blank
    drafts = page.evaluate("Object.keys(sessionStorage).filter(key => key.startsWith('arbiter:draft:'))")
    assert drafts == []  # cleared once the vote was stored
    assert [error for error in tab.errors if "status of 401" not in error] == []


def test_model_output_reads_as_content_code_ltr_headings_small_no_images(tab, live_server):
    annotator = UserFactory(role="annotator")
    pixel = f"{live_server.url}/tracking-pixel.png"
    rtl = f"# כותרת\n\nהפעילו את `print(\"hi\")` בטרמינל.\n\n- פריט ברשימה\n\n![מעקב]({pixel})"
    make_comparison("Explain in Hebrew.", rtl, f"# Heading\n\nPlain answer.\n\n![tracker]({pixel})")
    requested = []
    tab.page.on("request", lambda request: requested.append(request.url))
    log_in(tab, annotator.username)
    page = tab.page

    code = page.locator(".md code").first
    assert code.inner_text() == 'print("hi")'
    assert code.evaluate("el => [getComputedStyle(el).direction, getComputedStyle(el).unicodeBidi]") == ["ltr", "isolate"]
    assert code.evaluate("el => getComputedStyle(el.closest('p')).direction") == "rtl"
    # a right-to-left list item has its marker on the right, inside the response box
    item = page.locator(".md li").first
    assert item.evaluate("el => [getComputedStyle(el).direction, parseFloat(getComputedStyle(el).marginRight) > 0]") == [
        "rtl", True,
    ]

    label_px = page.locator(".side-label").first.evaluate("el => parseFloat(getComputedStyle(el).fontSize)")
    heading_sizes = page.locator(".md .md-heading").evaluate_all(
        "els => els.map(el => parseFloat(getComputedStyle(el).fontSize))"
    )
    assert len(heading_sizes) == 2 and max(heading_sizes) < label_px, (heading_sizes, label_px)

    assert page.locator("#item img").count() == 0
    assert page.get_by_role("link", name=re.compile(r"^\[image: tracker\]")).get_attribute("target") == "_blank"
    assert not [url for url in requested if "tracking-pixel" in url]
    tab.assert_no_errors()

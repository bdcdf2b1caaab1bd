"""Layout in a real browser (Debian's Chromium through Playwright, as in test_browser.py), at the
README screenshots' 1280x900 viewport: checkboxes sit just before their own label text, filter
dropdowns look like the form selects, links use the site's colour, the admin menu fits on one line,
long choices show in full, the Loop page says what a round would train from. Screenshots of each
page go to ``ARBITER_LAYOUT_SHOTS`` when it is set (to look at them), nowhere otherwise.

Skips without /usr/bin/chromium, except under CI, where it fails.
"""
from __future__ import annotations

import os
import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.browser_support import open_tab
from tests.factories import PASSWORD, ComparisonFactory, UserFactory
from training.models import Checkpoint

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

VIEWPORT = {"width": 1280, "height": 900}
BASE = "SmolLM2-135M-Instruct"
SHOTS = os.environ.get("ARBITER_LAYOUT_SHOTS")


@pytest.fixture
def page(chromium_browser, live_server) -> Iterator[object]:
    """A page logged in as an admin, with SmolLM2 imported and a few comparisons; console errors
    and CSP violations fail the test."""
    UserFactory(username="admin", role="admin")
    Checkpoint.objects.create(name=BASE, hub_id="HuggingFaceTB/SmolLM2-135M-Instruct", metadata={"param_count": 134515008})
    ComparisonFactory.create_batch(3)
    tab = open_tab(chromium_browser, live_server.url, viewport=VIEWPORT, failed_requests=False)
    page = tab.page
    page.goto("/accounts/login/")
    page.get_by_label("Username").fill("admin")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    page.wait_for_url(re.compile(r"/manage/comparisons/$"))
    yield page
    try:
        tab.assert_no_errors()
    finally:
        page.context.close()


def shoot(page, name: str) -> None:
    if SHOTS:
        Path(SHOTS).mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(Path(SHOTS) / f"{name}.png"), full_page=True)


CHECKBOX_PAGES = {
    "/manage/train/reward/": ["Use vote strength as a margin", "Include gold items", "LoRA (merged on save)"],
    "/manage/train/policy/": ["LoRA", "Save the adapter only (else merged)"],
    "/manage/loop/": ["Loop on"],
    "/manage/imports/": ["Skip refused rows"],
    "/manage/score/": ["Skip completions this model already scored"],
    "/manage/exports/": ["Plain text instead of messages (TRL formats)", "No margin column (TRL preference)", "train", "eval"],
}

# For every checkbox and radio in a form field: its box, its own label's box and where that label's
# text starts (the first line of it), and the field's box.
BOXES_JS = """() => [...document.querySelectorAll('.field input[type=checkbox], .field input[type=radio]')].map(box => {
  const label = box.closest('label') || document.querySelector(`label[for="${box.id}"]`);
  const range = document.createRange();
  const texts = [...label.childNodes].filter(n => n !== box && n.textContent.trim());
  range.setStartBefore(texts[0]); range.setEndAfter(texts[texts.length - 1]);
  const first = range.getClientRects()[0];
  const rect = e => { const r = e.getBoundingClientRect(); return {left: r.left, right: r.right, top: r.top, bottom: r.bottom, width: r.width}; };
  return {text: label.textContent.trim(), box: rect(box), textLeft: first.left, textTop: first.top, textBottom: first.bottom,
          label: rect(label), field: rect(box.closest('.field'))};
})"""


@pytest.mark.parametrize("path", list(CHECKBOX_PAGES))
def test_each_checkbox_sits_left_aligned_just_before_its_own_label_text(page, path):
    page.goto(path)
    boxes = page.evaluate(BOXES_JS)
    assert [b["text"] for b in boxes if b["text"] in CHECKBOX_PAGES[path]] == CHECKBOX_PAGES[path], boxes
    for b in boxes:
        box = b["box"]
        assert box["width"] < 24, b  # not stretched across the field
        assert abs(box["left"] - b["field"]["left"]) <= 2, b  # left-aligned in its field, not centred
        assert 0 <= b["textLeft"] - box["right"] <= 12, b  # its own text starts just after it ...
        middle = (box["top"] + box["bottom"]) / 2
        assert b["textTop"] <= middle <= b["textBottom"], b  # ... on the same line (the first, if it wraps)
    if path == "/manage/exports/":  # the splits: one box a line, each in front of its own name
        train, eval_ = (b for b in boxes if b["text"] in ("train", "eval"))
        assert train["box"]["bottom"] <= eval_["box"]["top"] and train["label"]["bottom"] <= eval_["label"]["top"]
    shoot(page, path.strip("/").replace("/", "-"))


FORM_SELECT_JS = """sel => { const s = getComputedStyle(document.querySelector(sel));
  return [s.borderTopLeftRadius, s.borderTopColor, s.backgroundColor, s.paddingTop, s.fontSize]; }"""


@pytest.mark.parametrize(("path", "selects"), [
    ("/manage/comparisons/", ["select[name=status]", "select[name=split]", "select[name=order]"]),
    ("/manage/jobs/", ["#status-filter"]),
    ("/manage/leaderboard/", ["#both-bad"]),
])
def test_filter_dropdowns_look_like_the_form_selects(page, path, selects):
    page.goto("/manage/train/reward/")
    form_select = page.evaluate(FORM_SELECT_JS, ".field select")
    assert form_select[0] == "6px", form_select
    page.goto(path)
    for selector in selects:
        assert page.evaluate(FORM_SELECT_JS, f".filters {selector}") == form_select, selector
    shoot(page, path.strip("/").replace("/", "-"))


def test_the_leaderboard_links_use_the_site_link_colour(page):
    page.goto("/manage/leaderboard/")
    colours = page.evaluate("""() => [...document.querySelectorAll('main a')].map(a => [a.textContent, getComputedStyle(a).color])""")
    accent = page.evaluate("getComputedStyle(document.documentElement).getPropertyValue('--accent').trim()")
    assert accent == "#2d5bd7"
    assert ["leave them out", "rgb(45, 91, 215)"] in colours and all(c == "rgb(45, 91, 215)" for _, c in colours), colours


NAV_JS = """() => [...document.querySelectorAll('.topbar nav > *')].map(e => { const r = e.getBoundingClientRect();
  return {text: e.textContent.trim(), left: r.left, right: r.right, top: r.top, bottom: r.bottom}; })"""


def test_the_admin_menu_fits_on_one_line_at_1280px_and_wraps_into_tidy_rows_when_narrower(page):
    page.goto("/manage/loop/")
    items = page.evaluate(NAV_JS)
    assert [i["text"] for i in items][-3:] == ["Django admin", "admin", "Log out"]
    assert len({round(i["top"]) for i in items}) == 1, items  # one line
    assert max(i["right"] for i in items) <= VIEWPORT["width"]
    assert page.evaluate("document.querySelector('.topbar').getBoundingClientRect().height") < 50
    shoot(page, "menu-1280")

    page.set_viewport_size({"width": 900, "height": 900})
    items = page.evaluate(NAV_JS)
    rows = sorted({round(i["top"]) for i in items})
    assert 2 <= len(rows) <= 3, items
    assert max(i["right"] for i in items) <= 900 and min(i["left"] for i in items) >= 0
    for a in items:  # no item overlaps another, and none is broken over two lines
        assert a["bottom"] - a["top"] < 30, a
        for b in items:
            if a is not b:
                assert a["right"] <= b["left"] or b["right"] <= a["left"] or a["bottom"] <= b["top"] or b["bottom"] <= a["top"], (a, b)
    shoot(page, "menu-900")


# The selected option's text width against the room the closed select gives it (less its arrow).
SELECT_ROOM_JS = """sel => { const s = document.querySelector(sel), style = getComputedStyle(s);
  const ctx = document.createElement('canvas').getContext('2d'); ctx.font = style.font;
  const text = ctx.measureText(s.options[s.selectedIndex].text).width;
  const room = s.clientWidth - parseFloat(style.paddingLeft) - parseFloat(style.paddingRight) - 24;
  return [s.options[s.selectedIndex].text, text, room]; }"""


@pytest.mark.parametrize(("path", "selector"), [
    ("/manage/train/reward/", "#id_snapshot"), ("/manage/train/policy/", "#id_snapshot"), ("/manage/exports/", "#id_format"),
])
def test_long_choices_show_in_full(page, path, selector):
    page.goto(path)
    text, width, room = page.evaluate(SELECT_ROOM_JS, selector)
    assert width <= room, (text, width, room)


def test_the_loop_page_fields_stay_in_their_boxes_and_it_says_what_a_round_would_train_from(page):
    page.goto("/manage/loop/")
    overflow = page.evaluate("""() => [...document.querySelectorAll('.launch .field')].map(f => {
      const field = f.getBoundingClientRect(), set = f.closest('fieldset').getBoundingClientRect();
      const widest = Math.max(...[...f.querySelectorAll('input, select, textarea')].map(e => e.getBoundingClientRect().right));
      return [f.textContent.trim().split('\\n')[0], widest - field.right, widest - set.right]; })""")
    assert all(past_field <= 0.5 and past_set <= 0 for _, past_field, past_set in overflow), overflow
    policy = page.locator("#loop-policy").inner_text()
    assert policy.startswith("not set: choose the policy the loop starts from") and f"the imported base model is {BASE}" in policy
    assert page.locator("#id_policy option:checked").inner_text() == "not set: choose a policy"
    shoot(page, "loop-no-policy")

    page.get_by_role("button", name="Start a round now").click()
    flash = page.locator(".flash li.error")
    assert flash.inner_text() == (f"No round started: the loop has no policy to start from. Choose one in its settings and "
                                  f"save; the imported base model is {BASE}.")
    assert flash.evaluate("e => getComputedStyle(e).backgroundColor") == "rgb(254, 243, 242)"  # an error, not a green success
    shoot(page, "loop-start-refused")

    page.locator("#id_policy").select_option(BASE)
    page.get_by_role("button", name="Save").click()
    assert page.locator("#loop-policy").inner_text() == f"{BASE} the next round, or Start a round now, trains from it"


def test_the_django_admin_finds_the_site_icon_at_favicon_ico(page):
    """The admin's pages name no icon, so the browser asks for /favicon.ico: no 404 in the console."""
    page.goto("/admin/")
    icon = page.request.get("/favicon.ico")
    assert icon.ok and icon.headers["content-type"] == "image/png" and icon.url.endswith("/static/arbiter/favicon-32.png")
    assert page.evaluate("fetch('/favicon.ico').then(r => [r.status, r.redirected, r.headers.get('content-type')])") == [200, True, "image/png"]

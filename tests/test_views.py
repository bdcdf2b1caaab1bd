"""Browser pages without a browser: the annotator page (full and htmx), plain-form actions, the
admin pages, and safe rendering of untrusted model output."""
import re
from datetime import timedelta

import pytest
from django.test import Client
from django.utils import timezone

from feedback import services
from feedback.models import Assignment, Vote
from feedback.rendering import markdown_render
from tests.factories import ComparisonFactory, UserFactory

pytestmark = pytest.mark.django_db

SECRET_A, SECRET_B = "secret-model-alpha", "secret-model-beta"
HTMX = {"HTTP_HX_REQUEST": "true"}


class FixedSide:
    def __init__(self, side):
        self.side = side

    def choice(self, options):
        return self.side


def blind_comparison(**kwargs):
    return ComparisonFactory(completion_a__model_name=SECRET_A, completion_b__model_name=SECRET_B, **kwargs)


@pytest.fixture
def as_annotator(client, annotator):
    client.force_login(annotator)
    return client


@pytest.fixture
def as_admin(client, admin_user):
    client.force_login(admin_user)
    return client


def shown_item(response) -> str | None:
    match = re.search(rb'name="item" value="([\w-]+)"', response.content)
    return match.group(1).decode() if match else None


def shown_comparison(response) -> int | None:
    """The comparison behind the item token on the page (the page itself names no comparison)."""
    item = shown_item(response)
    return Assignment.objects.get(token=item).comparison_id if item else None


def item_of(comparison, annotator=None) -> str:
    """The token the page shows for ``comparison`` (the annotator's assignment on it)."""
    assignments = Assignment.objects.filter(comparison=comparison)
    return (assignments.filter(annotator=annotator) if annotator else assignments).get().token


def button_value(response, label) -> str:
    match = re.search(rf'name="choice" value="(\w+)"[^>]*>{label}'.encode(), response.content)
    assert match, label
    return match.group(1).decode()


def section(response, testid) -> str:
    match = re.search(rf'data-testid="{testid}">(.*?)</div>'.encode(), response.content, re.S)
    assert match, testid
    return match.group(1).decode()


# --- access ---------------------------------------------------------------------------------------
def test_anonymous_visitors_are_sent_to_log_in(client):
    for path in ("/", "/annotate/", "/manage/comparisons/"):
        response = client.get(path)
        assert response.status_code == 302
        assert response["Location"] == f"/accounts/login/?next={path}"
    assert client.post("/annotate/vote/", {"item": "x", "choice": "left"}).status_code == 302
    assert Vote.objects.count() == 0


def test_home_sends_each_role_to_its_page(client, annotator, admin_user):
    client.force_login(annotator)
    assert client.get("/")["Location"] == "/annotate/"
    client.force_login(admin_user)
    assert client.get("/")["Location"] == "/manage/comparisons/"


def test_a_user_without_a_role_cannot_annotate(client):
    ComparisonFactory()
    client.force_login(UserFactory())
    assert client.get("/annotate/").status_code == 403
    assert client.post("/annotate/vote/", {"item": "x", "choice": "left"}).status_code == 403
    assert client.post("/annotate/skip/", {"item": "x"}).status_code == 403
    assert Assignment.objects.count() == 0


def test_annotators_cannot_open_admin_pages(as_annotator):
    comparison = ComparisonFactory()
    for path in ("/manage/comparisons/", f"/manage/comparisons/{comparison.pk}/"):
        response = as_annotator.get(path)
        assert response.status_code == 403
        assert b"Not allowed" in response.content
    assert as_annotator.get("/admin/").status_code == 302  # the Django admin sends non-staff to its login


def test_admins_can_open_admin_pages_and_see_model_names(as_admin, annotator):
    comparison = blind_comparison(gold_choice="b")
    services.assignment_claim(annotator=annotator)
    services.vote_submit(annotator=annotator, comparison_id=comparison.pk, choice="a", rationale="A is right")
    listing = as_admin.get("/manage/comparisons/")
    assert listing.status_code == 200
    assert SECRET_A.encode() in listing.content and SECRET_B.encode() in listing.content
    assert b"1/1" in listing.content
    detail = as_admin.get(f"/manage/comparisons/{comparison.pk}/")
    assert detail.status_code == 200
    page = detail.content.decode()
    assert f"A · {SECRET_A}" in page and f"B · {SECRET_B}" in page
    assert "gold: b" in page
    assert annotator.username in page and "A is right" in page
    assert as_admin.get("/manage/comparisons/999999/").status_code == 404


def test_admin_list_filters_and_htmx_table_partial(as_admin):
    blind_comparison()
    ComparisonFactory(completion_a__model_name="other-1", completion_b__model_name="other-2")
    filtered = as_admin.get("/manage/comparisons/", {"model_name": SECRET_A})
    assert SECRET_A.encode() in filtered.content
    assert b"other-1" not in filtered.content
    assert b"(1 comparisons)" in filtered.content
    partial = as_admin.get("/manage/comparisons/", {"status": "complete"}, HTTP_HX_REQUEST="true",
                           HTTP_HX_TARGET="comparison-table")
    assert partial.status_code == 200
    assert b"<html" not in partial.content
    assert b'id="comparison-table"' in partial.content
    assert b"No comparisons match." in partial.content


def test_vote_and_skip_only_take_posts(as_annotator):
    assert as_annotator.get("/annotate/vote/").status_code == 405
    assert as_annotator.get("/annotate/skip/").status_code == 405
    assert as_annotator.post("/annotate/").status_code == 405


# --- the annotator page ---------------------------------------------------------------------------
def test_full_page_versus_htmx_partial(as_annotator):
    comparison = ComparisonFactory()
    full = as_annotator.get("/annotate/")
    assert full.status_code == 200
    assert full.content.lstrip().startswith(b"<!doctype html>")
    assert b'<section id="item"' in full.content
    assert b"htmx.min.js" in full.content
    partial = as_annotator.get("/annotate/", **HTMX)
    assert partial.status_code == 200
    assert partial.content.lstrip().startswith(b'<section id="item"')
    assert b"<html" not in partial.content and b"<head" not in partial.content
    assert shown_comparison(full) == shown_comparison(partial) == comparison.pk  # the same lease, resumed


def test_page_shows_the_prompt_and_both_responses_by_side(annotator, as_annotator):
    comparison = ComparisonFactory(completion_a__text="Response from A", completion_b__text="Response from B")
    services.assignment_claim(annotator=annotator, rng=FixedSide("b"))
    page = as_annotator.get("/annotate/")
    assert comparison.prompt.messages[0]["content"].encode() in page.content
    assert "Response from B" in section(page, "left-text")
    assert "Response from A" in section(page, "right-text")
    # The buttons say screen sides only; the server maps them to the stored completions.
    assert (button_value(page, "Left is better"), button_value(page, "Right is better")) == ("left", "right")


def test_plain_post_vote_stores_and_redirects(annotator, as_annotator):
    comparison = ComparisonFactory(votes_required=2)
    ComparisonFactory()
    services.assignment_claim(annotator=annotator, rng=FixedSide("b"))
    page = as_annotator.get("/annotate/")
    left = button_value(page, "Left is better")
    response = as_annotator.post(
        "/annotate/vote/",
        {"item": shown_item(page), "choice": left, "strength": "clear", "rationale": "Clearer.",
         "helpfulness": "left", "harmlessness": "", "honesty": "tie", "ms_on_item": "1500"},
    )
    assert response.status_code == 302
    assert response["Location"] == "/annotate/"
    vote = Vote.objects.get()
    assert (vote.annotator, vote.comparison_id, vote.choice, vote.strength) == (annotator, comparison.pk, "b", "clear")
    assert (vote.rationale, vote.helpfulness, vote.harmlessness, vote.honesty) == ("Clearer.", "b", "", "tie")
    assert (vote.shown_left, vote.ms_on_item) == ("b", 1500)
    following = as_annotator.get("/annotate/")
    assert b"Vote saved." in following.content
    assert shown_comparison(following) not in (None, comparison.pk)


def test_blank_time_on_item_falls_back_to_time_since_the_lease(annotator, as_annotator):
    comparison = ComparisonFactory()
    services.assignment_claim(annotator=annotator, now=timezone.now() - timedelta(seconds=30))
    as_annotator.post("/annotate/vote/", {"item": item_of(comparison), "choice": "tie", "ms_on_item": ""})
    assert Vote.objects.get().ms_on_item >= 30_000


def test_htmx_vote_swaps_in_the_next_item(as_annotator):
    first, second = ComparisonFactory(), ComparisonFactory()
    assert shown_comparison(as_annotator.get("/annotate/")) == first.pk
    response = as_annotator.post("/annotate/vote/", {"item": item_of(first), "choice": "left"}, **HTMX)
    assert response.status_code == 200
    assert response.content.lstrip().startswith(b'<section id="item"')
    assert b"<html" not in response.content
    assert shown_comparison(response) == second.pk
    assert Vote.objects.get().comparison_id == first.pk
    assert "Voted <strong>1</strong>" in response.content.decode()


def test_htmx_vote_on_the_last_item_shows_the_empty_state(as_annotator):
    only = ComparisonFactory()
    as_annotator.get("/annotate/")
    response = as_annotator.post("/annotate/vote/", {"item": item_of(only), "choice": "both_bad"}, **HTMX)
    assert response.status_code == 200
    assert b'data-testid="queue-empty"' in response.content
    assert shown_comparison(response) is None


def test_empty_queue_state(as_annotator):
    page = as_annotator.get("/annotate/")
    assert page.status_code == 200
    assert b'data-testid="queue-empty"' in page.content
    assert b"Nothing to compare right now" in page.content
    assert b'hx-trigger="every 30s"' in page.content  # it checks again by itself
    assert b"Left is better" not in page.content


def test_skip_plain_and_htmx(as_annotator):
    first, second, third = ComparisonFactory(), ComparisonFactory(), ComparisonFactory()
    assert shown_comparison(as_annotator.get("/annotate/")) == first.pk
    plain = as_annotator.post("/annotate/skip/", {"item": item_of(first)})
    assert (plain.status_code, plain["Location"]) == (302, "/annotate/")
    assert shown_comparison(as_annotator.get("/annotate/")) == second.pk
    swapped = as_annotator.post("/annotate/skip/", {"item": item_of(second)}, **HTMX)
    assert swapped.status_code == 200 and b"<html" not in swapped.content
    assert shown_comparison(swapped) == third.pk
    assert "skipped 2" in swapped.content.decode()
    assert sorted(Assignment.objects.filter(status="skipped").values_list("comparison_id", flat=True)) == [first.pk, second.pk]
    assert Vote.objects.count() == 0


def test_second_different_vote_on_the_page_is_a_409_with_a_message(as_annotator):
    comparison = ComparisonFactory(votes_required=2)
    ComparisonFactory()  # shown next, with what the annotator typed put back
    as_annotator.get("/annotate/")
    item = item_of(comparison)
    as_annotator.post("/annotate/vote/", {"item": item, "choice": "left"})
    again = as_annotator.post("/annotate/vote/", {"item": item, "choice": "left"}, follow=True)  # a plain double submit
    assert again.status_code == 200 and Vote.objects.count() == 1
    response = as_annotator.post("/annotate/vote/", {"item": item, "choice": "right", "rationale": "Kept."})
    assert response.status_code == 409
    # says in words what differs from the vote already stored
    assert b"You already voted Left; this vote says Right. Nothing was saved; to change that vote, use Your recent votes." in response.content
    assert b">Kept.</textarea>" in response.content  # what the annotator typed is still there
    assert Vote.objects.get().choice == Assignment.objects.get(comparison=comparison).shown_left


def test_a_refused_vote_with_nothing_left_to_show_still_gives_back_what_was_typed(as_annotator):
    comparison = ComparisonFactory()
    as_annotator.get("/annotate/")
    item = item_of(comparison)
    as_annotator.post("/annotate/vote/", {"item": item, "choice": "tie"})
    response = as_annotator.post("/annotate/vote/", {"item": item, "choice": "left", "rationale": "Typed <b>here</b>."}, **HTMX)
    assert response.status_code == 409 and b'data-testid="queue-empty"' in response.content
    assert b'data-testid="kept"' in response.content and b"Typed &lt;b&gt;here&lt;/b&gt;.</textarea>" in response.content


def test_vote_on_an_expired_and_retaken_lease_is_a_409_on_the_page(annotator, other_annotator, as_annotator):
    comparison = ComparisonFactory()
    services.assignment_claim(annotator=annotator, now=timezone.now() - timedelta(minutes=30))
    services.assignment_claim(annotator=other_annotator)
    response = as_annotator.post("/annotate/vote/", {"item": item_of(comparison, annotator), "choice": "left"}, **HTMX)
    assert response.status_code == 409
    assert b"expired" in response.content
    assert Vote.objects.count() == 0


def test_vote_on_a_retired_comparison_is_a_409_on_the_page(annotator, as_annotator):
    comparison = ComparisonFactory()
    services.assignment_claim(annotator=annotator)
    services.comparison_retire(comparison=comparison)
    response = as_annotator.post("/annotate/vote/", {"item": item_of(comparison), "choice": "left"})
    assert response.status_code == 409
    assert b"retired" in response.content
    assert Vote.objects.count() == 0


def test_a_vote_for_an_item_that_is_not_the_annotators_is_a_409_on_the_page(other_annotator, as_annotator):
    comparison = ComparisonFactory(votes_required=2)
    services.assignment_claim(annotator=other_annotator)
    for item in ("not-a-token", item_of(comparison, other_annotator)):
        response = as_annotator.post("/annotate/vote/", {"item": item, "choice": "left"})
        assert response.status_code == 409
        assert b"no longer the one on your screen" in response.content
    assert Vote.objects.count() == 0
    response = as_annotator.post("/annotate/skip/", {"item": item_of(comparison, other_annotator)})
    assert response.status_code == 409 and b"not one of yours" in response.content
    assert not Assignment.objects.filter(status="skipped").exists()


def test_page_forms_carry_the_csrf_token_and_need_it(annotator):
    comparison = ComparisonFactory()
    client = Client(enforce_csrf_checks=True)
    client.force_login(annotator)
    page = client.get("/annotate/")
    token = re.search(rb'name="csrfmiddlewaretoken" value="([^"]+)"', page.content).group(1).decode()
    assert f'hx-headers=\'{{"X-CSRFToken": "{token}"}}\''.encode() in page.content
    refused = client.post("/annotate/vote/", {"item": item_of(comparison), "choice": "left"})
    assert refused.status_code == 403
    assert Vote.objects.count() == 0
    accepted = client.post("/annotate/vote/", {"item": item_of(comparison), "choice": "left", "csrfmiddlewaretoken": token})
    assert accepted.status_code == 302
    assert Vote.objects.count() == 1


def test_truncated_response_is_marked(annotator, as_annotator):
    ComparisonFactory(completion_a__is_truncated=True)
    services.assignment_claim(annotator=annotator, rng=FixedSide("a"))
    page = as_annotator.get("/annotate/").content.decode()
    assert page.count("This response was cut off") == 1
    assert page.index("This response was cut off") < page.index('aria-label="Right response"')


def test_model_names_never_appear_on_the_annotator_page(annotator, as_annotator):
    first = blind_comparison(gold_choice="a")
    blind_comparison(gold_choice="b")
    pages = [as_annotator.get("/annotate/"), as_annotator.get("/annotate/", **HTMX)]
    pages.append(as_annotator.post("/annotate/vote/", {"item": item_of(first), "choice": "left"}, **HTMX))
    pages.append(as_annotator.post("/annotate/vote/", {"item": item_of(first), "choice": "right"}, **HTMX))  # 409
    assert [p.status_code for p in pages] == [200, 200, 200, 409]
    for page in pages:
        assert SECRET_A.encode() not in page.content and SECRET_B.encode() not in page.content
        assert b"model-" not in page.content and b"gold" not in page.content.lower()


# --- safe Markdown ----------------------------------------------------------------------------------
HOSTILE = (
    "Hello <script>alert('xss')</script>\n\n"
    '<img src=x onerror="alert(1)">\n\n'
    "[click](javascript:alert(1)) and [docs](https://example.com/docs)\n\n"
    "![tracker](https://evil.example/pixel.png)\n\n"
    "```python\nif a < b and c > d:\n    print('<b>not bold</b>')\n```\n"
)


def test_markdown_escapes_html_and_keeps_code_blocks():
    html = markdown_render(HOSTILE)
    assert "<script" not in html and "&lt;script&gt;alert(" in html
    assert "<img" not in html and "&lt;img src=x onerror=" in html
    assert 'href="javascript:' not in html
    assert '<a href="https://example.com/docs" target="_blank" rel="noopener noreferrer nofollow">docs</a>' in html
    # images are not loaded (no tracking pixels): an image is a marked link
    assert ('<a class="md-image" href="https://evil.example/pixel.png" target="_blank" rel="noopener noreferrer nofollow">'
            "[image: <bdi>tracker</bdi>] https://evil.example/pixel.png</a>") in html
    assert "[click](javascript:alert(1))" in html  # the javascript: link stays text
    assert '<pre dir="ltr"><code class="language-python">' in html
    assert "if a &lt; b and c &gt; d:" in html
    assert "print('&lt;b&gt;not bold&lt;/b&gt;')" in html


def test_markdown_renders_ordinary_formatting():
    html = markdown_render("**bold** and *it* and `x<y`\n\n| a | b |\n|---|---|\n| 1 | 2 |\n\n~~gone~~\nnext line")
    assert "<strong>bold</strong>" in html and "<em>it</em>" in html and '<code dir="ltr">x&lt;y</code>' in html
    assert "<table>" in html and '<td dir="auto">1</td>' in html
    assert "<s>gone</s><br" in html  # strikethrough, and single newlines become line breaks


def test_the_annotator_page_shows_hostile_output_as_text(annotator, as_annotator):
    ComparisonFactory(completion_a__text=HOSTILE, completion_b__text="**fine**")
    services.assignment_claim(annotator=annotator, rng=FixedSide("a"))
    page = as_annotator.get("/annotate/")
    left = section(page, "left-text")
    assert "&lt;script&gt;alert(" in left
    assert "<script" not in left and "<img" not in left and "onerror=\"" not in left
    assert '<pre dir="ltr"><code class="language-python">' in left
    body = page.content.decode()
    # htmx, annotate.js, annotate-keys.js and annotate-tools.js, nothing from the model output
    assert body.count("<script") == 4
    assert "<strong>fine</strong>" in section(page, "right-text")


def test_hostile_prompt_is_escaped_too(annotator, as_annotator):
    ComparisonFactory(prompt__messages=[{"role": "user", "content": "<script>alert('p')</script> **q**"}])
    page = as_annotator.get("/annotate/").content.decode()
    assert "&lt;script&gt;alert('p')&lt;/script&gt;" in page
    assert "<script>alert('p')" not in page
    assert "<strong>q</strong>" in page


def test_favicon_ico_redirects_to_the_site_icon_which_every_page_names(client, annotator):
    response = client.get("/favicon.ico")
    assert response.status_code == 302 and response["Location"] == "/static/arbiter/favicon-32.png"
    assert "max-age=86400" in response["Cache-Control"]
    icon = client.get(response["Location"])
    content = b"".join(icon.streaming_content) if icon.streaming else icon.content
    assert icon.status_code == 200 and icon["Content-Type"] == "image/png" and content.startswith(b"\x89PNG")
    assert client.post("/favicon.ico").status_code == 405

    client.force_login(annotator)
    page = client.get("/annotate/").content.decode()
    assert '<link rel="icon" href="/static/arbiter/favicon.svg" type="image/svg+xml">' in page
    assert '<link rel="icon" href="/static/arbiter/favicon-32.png" sizes="32x32" type="image/png">' in page

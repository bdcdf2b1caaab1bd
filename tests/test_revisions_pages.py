"""The pages for changing one's own votes: "Undo last vote" on the annotate page (plain form and
htmx), the history page (texts on the sides the annotator saw, revise and undo while open), and
the audit trail on the admins' comparison page and in Django admin."""
from __future__ import annotations

import re

import pytest

from feedback import services
from feedback.models import Assignment, Comparison, Vote, VoteChange
from tests.factories import CompletionFactory, ComparisonFactory, PromptFactory, UserFactory

pytestmark = pytest.mark.django_db
HTMX = {"HTTP_HX_REQUEST": "true"}


@pytest.fixture
def as_annotator(client, annotator):
    client.force_login(annotator)
    return client


def pair(text_a="Alpha answer.", text_b="Beta answer.", votes_required=2, **fields) -> Comparison:
    prompt = PromptFactory()
    return ComparisonFactory(
        prompt=prompt,
        completion_a=CompletionFactory(prompt=prompt, text=text_a),
        completion_b=CompletionFactory(prompt=prompt, text=text_b),
        votes_required=votes_required,
        **fields,
    )


def vote_on_page(client, choice="left", **fields) -> tuple[str, str]:
    """Vote with a plain post on the item the page shows; the page's (left, right) texts."""
    page = client.get("/annotate/").content.decode()
    item = re.search(r'name="item" value="([^"]+)"', page).group(1)
    left = re.search(r'data-testid="left-text"><p[^>]*>([^<]*)</p>', page).group(1)
    right = re.search(r'data-testid="right-text"><p[^>]*>([^<]*)</p>', page).group(1)
    response = client.post("/annotate/vote/", {"item": item, "choice": choice, **fields})
    assert response.status_code == 302
    return left, right


def test_plain_form_undo_brings_the_item_back_with_what_was_written(annotator, as_annotator):
    comparison = pair()
    vote_on_page(as_annotator, "right", rationale="more precise", strength="clear")
    page = as_annotator.get("/annotate/").content.decode()
    vote = Vote.objects.get()
    assert f'name="vote" value="{vote.pk}"' in page and "Undo last vote" in page
    response = as_annotator.post("/annotate/undo/", {"vote": vote.pk})
    assert response.status_code == 302 and response["Location"] == "/annotate/"
    assert not Vote.objects.exists() and Comparison.objects.get().vote_count == 0
    page = as_annotator.get("/annotate/").content.decode()
    assert "Vote undone (you had chosen right is better)" in page
    assert re.search(r'<textarea name="rationale"[^>]*>more precise</textarea>', page)
    assert 'value="clear" checked' in page
    item = re.search(r'name="item" value="([^"]+)"', page).group(1)
    assert item == Assignment.objects.get(comparison=comparison).token
    assert "Undo last vote" not in page  # nothing left to undo
    # Reloading does not bring the inputs back a second time.
    assert "more precise" not in as_annotator.get("/annotate/").content.decode()


def test_htmx_undo_swaps_the_item_back_in(annotator, as_annotator):
    pair()
    vote_on_page(as_annotator, "tie", rationale="same")
    response = as_annotator.post("/annotate/undo/", {"vote": Vote.objects.get().pk}, **HTMX)
    body = response.content.decode()
    assert response.status_code == 200 and body.lstrip().startswith('<section id="item"')
    assert 'data-testid="undone"' in body and "you had chosen tie" in body and ">same</textarea>" in body


def test_undo_of_a_closed_comparison_is_refused_with_a_message(annotator, as_annotator):
    comparison = pair(votes_required=1)
    vote_on_page(as_annotator)
    vote = Vote.objects.get()
    services.comparison_retire(comparison=comparison)
    page = as_annotator.get("/annotate/").content.decode()
    assert "Undo last vote" not in page
    response = as_annotator.post("/annotate/undo/", {"vote": vote.pk}, **HTMX)
    assert response.status_code == 409 and "can no longer be changed" in response.content.decode()
    followed = as_annotator.post("/annotate/undo/", {"vote": vote.pk}, follow=True).content.decode()
    assert "can no longer be changed" in followed
    assert Vote.objects.filter(pk=vote.pk).exists() and not VoteChange.objects.exists()


def test_someone_elses_vote_cannot_be_undone_or_revised_from_the_page(annotator, client):
    pair()
    services.vote_submit(annotator=annotator, item=services.assignment_claim(annotator=annotator).token, choice="left")
    vote = Vote.objects.get()
    client.force_login(UserFactory(role="annotator"))
    assert "You have no vote" in client.post("/annotate/undo/", {"vote": vote.pk}, follow=True).content.decode()
    followed = client.post(f"/annotate/history/{vote.pk}/", {"choice": "tie"}, follow=True).content.decode()
    assert "You have no vote" in followed
    assert Vote.objects.get().choice == vote.choice and not VoteChange.objects.exists()


def test_history_shows_texts_as_seen_and_revises_with_a_plain_form(annotator, as_annotator):
    comparison = pair()
    left, right = vote_on_page(as_annotator, "left", strength="strong")
    page = as_annotator.get("/annotate/history/").content.decode()
    entry = page[page.index('data-testid="history-entry"'):]
    assert entry.index(left) < entry.index(right)  # the left text first, as they saw it
    assert "You chose: <strong>left is better</strong> (strong)" in entry
    assert "completion_a" not in page and comparison.completion_a.model_name not in page
    vote = Vote.objects.get()
    response = as_annotator.post(f"/annotate/history/{vote.pk}/", {"choice": "tie", "strength": "strong", "rationale": "on reflection"})
    assert response.status_code == 302 and response["Location"] == "/annotate/history/"
    vote.refresh_from_db()
    assert (vote.choice, vote.strength, vote.rationale) == ("tie", "", "on reflection")
    page = as_annotator.get("/annotate/history/").content.decode()
    assert "Vote revised." in page and "You chose: <strong>tie</strong>, because: on reflection" in page
    assert VoteChange.objects.get().action == "revise"


def test_history_undo_goes_back_to_the_history(annotator, as_annotator):
    pair()
    vote_on_page(as_annotator)
    vote = Vote.objects.get()
    response = as_annotator.post("/annotate/undo/", {"vote": vote.pk, "next": "history"})
    assert response.status_code == 302 and response["Location"] == "/annotate/history/"
    page = as_annotator.get("/annotate/history/").content.decode()
    assert "Vote undone" in page and 'data-testid="history-empty"' in page


def test_history_of_a_closed_comparison_offers_no_change(annotator, as_annotator):
    comparison = pair(votes_required=1)
    vote_on_page(as_annotator)
    services.comparison_retire(comparison=comparison)
    page = as_annotator.get("/annotate/history/").content.decode()
    assert "can no longer change" in page and "revise-form" not in page


def test_admins_see_the_audit_trail_on_the_comparison_page_and_in_django_admin(annotator, as_annotator, client):
    comparison = pair()
    vote_on_page(as_annotator, "left")
    vote = Vote.objects.get()
    as_annotator.post(f"/annotate/history/{vote.pk}/", {"choice": "both_bad"})
    as_annotator.post("/annotate/undo/", {"vote": vote.pk, "next": "history"})
    admin = UserFactory(role="admin", is_staff=True, is_superuser=True)
    client.force_login(admin)
    page = client.get(f"/manage/comparisons/{comparison.pk}/").content.decode()
    table = page[page.index('data-testid="vote-changes"'):]
    assert table.index("revise") < table.index("undo") and "withdrawn" in table and "both_bad" in table
    listing = client.get("/admin/feedback/votechange/").content.decode()
    assert listing.count(annotator.username) >= 2
    assert client.get("/admin/feedback/votechange/add/").status_code == 403


def test_an_htmx_undo_after_the_session_expired_is_refused_in_place(annotator, as_annotator):
    """The annotate page's undo with an expired session: 401 "log in again" in the refusal slot and
    the vote kept, never the login page swapped into the item."""
    pair()
    vote_on_page(as_annotator)
    vote = Vote.objects.get(annotator=annotator)
    as_annotator.logout()
    response = as_annotator.post("/annotate/undo/", {"vote": vote.pk}, **HTMX)
    assert response.status_code == 401
    assert response["HX-Retarget"] == "#vote-refusal"
    body = response.content.decode()
    assert "log in again" in body.lower() and "/accounts/login/?next=/annotate/" in body
    assert "<form" not in body  # no login form inside the item
    assert Vote.objects.filter(pk=vote.pk).exists()

"""The API's undo and revise of a vote: DELETE /api/votes/{id}/, POST /api/votes/{id}/undo/,
PATCH /api/votes/{id}/; the caller's own votes only, 409 once the comparison is closed, answers in
screen terms, and the schema documents them."""
from __future__ import annotations

import pytest

from feedback import services
from feedback.models import Comparison, Vote, VoteChange
from tests.conftest import api_as
from tests.factories import ComparisonFactory

pytestmark = pytest.mark.django_db


def vote_through_api(user, screen_choice="left", **fields) -> dict:
    client = api_as(user)
    item = client.post("/api/assignments/next/").json()["item"]
    response = client.post("/api/votes/", {"item": item, "choice": screen_choice, **fields}, format="json")
    assert response.status_code == 201, response.content
    return response.json()


@pytest.fixture
def open_pair():
    return ComparisonFactory(votes_required=2)


def test_undo_answers_with_the_item_back_and_its_inputs_in_screen_terms(annotator, open_pair):
    vote = vote_through_api(annotator, "right", strength="clear", rationale="shorter")
    response = api_as(annotator).post(f"/api/votes/{vote['id']}/undo/")
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["vote"] == vote["id"] and body["comparison"] == open_pair.pk
    assert body["withdrawn"]["choice"] == "right" and body["withdrawn"]["rationale"] == "shorter"
    assert "a" not in body["withdrawn"].values() and "b" not in body["withdrawn"].values()
    again = api_as(annotator).post("/api/assignments/next/").json()
    assert again["item"] == body["item"]
    assert api_as(annotator).post("/api/votes/", {"item": body["item"], "choice": "left"}, format="json").status_code == 201


def test_delete_undoes_and_the_vote_is_gone(annotator, open_pair):
    vote = vote_through_api(annotator)
    assert api_as(annotator).delete(f"/api/votes/{vote['id']}/").status_code == 204
    assert not Vote.objects.exists() and Comparison.objects.get().vote_count == 0
    assert VoteChange.objects.get().action == "undo"
    assert api_as(annotator).delete(f"/api/votes/{vote['id']}/").status_code == 404


def test_patch_revises_in_screen_terms_and_keeps_other_fields(annotator, open_pair):
    vote = vote_through_api(annotator, "left", strength="strong", rationale="why")
    response = api_as(annotator).patch(f"/api/votes/{vote['id']}/", {"choice": "right"}, format="json")
    assert response.status_code == 200, response.content
    assert response.json()["choice"] == "right" and response.json()["strength"] == "strong"
    assert response.json()["rationale"] == "why"
    change = VoteChange.objects.get()
    assert change.action == "revise" and change.before["choice"] != change.after["choice"]


def test_patch_refuses_a_stored_side_and_bad_values_with_400(annotator, open_pair):
    vote = vote_through_api(annotator)
    for body in ({"choice": "a"}, {"choice": "tie", "strength": "strong"}, {"helpfulness": "b"}):
        response = api_as(annotator).patch(f"/api/votes/{vote['id']}/", body, format="json")
        assert response.status_code == 400, body
    assert not VoteChange.objects.exists()


def test_only_your_own_votes(annotator, other_annotator, admin_user, open_pair):
    vote = vote_through_api(annotator)
    for user in (other_annotator, admin_user):
        client = api_as(user)
        assert client.delete(f"/api/votes/{vote['id']}/").status_code in (403, 404)
        assert client.post(f"/api/votes/{vote['id']}/undo/").status_code in (403, 404)
        assert client.patch(f"/api/votes/{vote['id']}/", {"choice": "tie"}, format="json").status_code in (403, 404)
    assert api_as(other_annotator).delete(f"/api/votes/{vote['id']}/").status_code == 404
    assert Vote.objects.filter(pk=vote["id"]).exists() and not VoteChange.objects.exists()
    assert api_as(None).delete(f"/api/votes/{vote['id']}/").status_code in (401, 403)


def test_a_closed_comparison_is_a_409_as_documented(annotator, api):
    comparison = ComparisonFactory(votes_required=1)
    vote = vote_through_api(annotator)
    services.comparison_retire(comparison=comparison)
    for response in (
        api_as(annotator).delete(f"/api/votes/{vote['id']}/"),
        api_as(annotator).post(f"/api/votes/{vote['id']}/undo/"),
        api_as(annotator).patch(f"/api/votes/{vote['id']}/", {"choice": "tie"}, format="json"),
    ):
        assert response.status_code == 409 and response.json()["code"] == "comparison_closed"
    schema = api_as(annotator).get("/api/schema/?format=json").json()
    for path, method in (("/api/votes/{id}/", "delete"), ("/api/votes/{id}/undo/", "post"), ("/api/votes/{id}/", "patch")):
        responses = schema["paths"][path][method]["responses"]
        assert {"409", "404"} <= set(responses), (path, method)
    assert "put" not in schema["paths"]["/api/votes/{id}/"]
    assert Vote.objects.count() == 1


def test_a_comparison_retired_after_the_vote_is_closed_too(annotator, open_pair):
    vote = vote_through_api(annotator)
    services.comparison_retire(comparison=open_pair)
    response = api_as(annotator).post(f"/api/votes/{vote['id']}/undo/")
    assert response.status_code == 409 and "retired" in response.json()["detail"]

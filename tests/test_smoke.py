import pytest

from tests.conftest import api_as

pytestmark = pytest.mark.django_db


def test_claim_vote_cycle_through_the_api(annotator, comparisons):
    client = api_as(annotator)
    served = client.post("/api/assignments/next/")
    assert served.status_code == 200, served.content
    body = served.json()
    assert "model_name" not in served.content.decode()
    vote = client.post("/api/votes/", {"comparison": body["comparison"], "choice": "a", "strength": "clear"}, format="json")
    assert vote.status_code == 201, vote.content
    again = client.post("/api/votes/", {"comparison": body["comparison"], "choice": "a", "strength": "clear"}, format="json")
    assert again.status_code == 200
    other = client.post("/api/votes/", {"comparison": body["comparison"], "choice": "b"}, format="json")
    assert other.status_code == 409


def test_annotate_page_renders(client, annotator, comparisons):
    client.force_login(annotator)
    page = client.get("/annotate/")
    assert page.status_code == 200
    assert b"Left is better" in page.content

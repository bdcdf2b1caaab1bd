"""The campaign API: admins only (401 anonymous, 403 annotators), create / edit / guidelines /
comparisons by rules / activate / pause / close / progress, and 400s naming the field."""
from __future__ import annotations

import pytest

from feedback.campaigns import services
from feedback.campaigns.models import Campaign, GuidelineVersion
from feedback.models import Comparison
from tests.conftest import api_as
from tests.factories import AssignmentFactory, ComparisonFactory, PromptFactory, VoteFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def campaign(db):
    return services.campaign_create(values={"name": "Helpfulness v2", "votes_required": 2})


def _routes(campaign):
    base = f"/api/campaigns/{campaign.pk}/"
    return [
        ("get", "/api/campaigns/"), ("post", "/api/campaigns/"), ("get", base), ("patch", base), ("put", base),
        ("get", base + "guidelines/"), ("post", base + "guidelines/"), ("post", base + "comparisons/"),
        ("post", base + "activate/"), ("post", base + "pause/"), ("post", base + "close/"), ("get", base + "progress/"),
    ]


def test_anonymous_callers_get_401_and_annotators_403(campaign, annotator):
    for method, path in _routes(campaign):
        assert getattr(api_as(None), method)(path, {"name": "x"}, format="json").status_code == 401, path
        assert getattr(api_as(annotator), method)(path, {"name": "x", "text": "x"}, format="json").status_code == 403, path
    campaign.refresh_from_db()
    assert campaign.status == "draft" and not GuidelineVersion.objects.exists()


def test_admin_creates_lists_and_edits_a_campaign(admin_user, annotator):
    api = api_as(admin_user)
    created = api.post("/api/campaigns/", {
        "name": "Code answers", "votes_required": 3, "annotators": [annotator.username], "groups": ["annotators"],
        "aspects": [{"name": "honesty", "label": "Does it run?"}], "rationale": "required", "target_votes": 300,
    }, format="json")
    assert created.status_code == 201, created.content
    body = created.json()
    assert (body["status"], body["slug"], body["annotators"], body["groups"], body["created_by"]) == (
        "draft", "code-answers", [annotator.username], ["annotators"], admin_user.username)
    listed = api.get("/api/campaigns/").json()
    assert [c["name"] for c in listed] == ["Code answers", "Default"]
    edited = api.patch(f"/api/campaigns/{body['id']}/", {"priority": 9, "description": "Python only"}, format="json")
    assert edited.status_code == 200
    assert (edited.json()["priority"], edited.json()["description"], edited.json()["votes_required"]) == (9, "Python only", 3)


@pytest.mark.parametrize(
    ("payload", "field"),
    [
        ({}, "name"),
        ({"name": "x", "votes_required": 0}, "votes_required"),
        ({"name": "x", "votes_required": "many"}, "votes_required"),
        ({"name": "x", "aspects": [{"name": "wit", "label": "?"}]}, "aspects"),
        ({"name": "x", "annotators": ["ghost"]}, "annotators"),
        ({"name": "x", "rationale": "maybe"}, "rationale"),
        ({"name": "x", "colour": "red"}, "colour"),
        ({"name": "x", "deadline": "2001-01-01T00:00:00Z"}, "deadline"),
    ],
)
def test_bad_input_is_a_400_naming_the_field(admin_user, payload, field):
    response = api_as(admin_user).post("/api/campaigns/", payload, format="json")
    assert response.status_code == 400
    assert field in response.json()
    assert not Campaign.objects.exclude(slug="default").exists()


def test_guidelines_versions_by_api(admin_user, campaign):
    api = api_as(admin_user)
    path = f"/api/campaigns/{campaign.pk}/guidelines/"
    assert api.post(path, {"text": "# v1"}, format="json").status_code == 201
    assert api.post(path, {"text": "# v2"}, format="json").json()["number"] == 2
    assert api.post(path, {"text": "# v2"}, format="json").status_code == 200  # the same text adds nothing
    assert [v["number"] for v in api.get(path).json()] == [2, 1]
    assert api.get(f"/api/campaigns/{campaign.pk}/").json()["guidelines_version"] == 2
    assert "text" in api.post(path, {"text": ""}, format="json").json()


def test_comparisons_by_rules_and_missing_ids_named(admin_user, campaign):
    api = api_as(admin_user)
    tagged = ComparisonFactory(prompt=PromptFactory(tags=["safety"], source="red-team"))
    ComparisonFactory(prompt=PromptFactory(tags=["code"], source="red-team"))
    path = f"/api/campaigns/{campaign.pk}/comparisons/"
    response = api.post(path, {"tags": ["safety"], "sources": ["red-team"]}, format="json")
    assert response.json() == {"moved": 1, "rules": {"sources": ["red-team"], "tags": ["safety"]}}
    assert Comparison.objects.get(pk=tagged.pk).campaign_id == campaign.pk
    missing = api.post(path, {"ids": [tagged.pk, 777777]}, format="json")
    assert missing.status_code == 400 and missing.json() == {"ids": ["no such comparison: 777777"]}
    assert api.post(path, {"flavour": ["x"]}, format="json").json() == {"flavour": ["not a rule: use sources, tags, splits, model_names, ids"]}
    assert "splits" in api.post(path, {"splits": ["test"]}, format="json").json()


def test_activate_refused_then_active_paused_closed(admin_user, campaign, annotator):
    api = api_as(admin_user)
    base = f"/api/campaigns/{campaign.pk}/"
    refused = api.post(base + "activate/")
    assert refused.status_code == 400 and set(refused.json()) == {"pool", "comparisons"}
    comparison = ComparisonFactory()
    api.patch(base, {"annotators": [annotator.username]}, format="json")
    api.post(base + "comparisons/", {"ids": [comparison.pk]}, format="json")
    assert api.post(base + "activate/").json()["status"] == "active"
    assert api.post(base + "pause/").json()["status"] == "paused"
    AssignmentFactory(comparison=comparison)
    closed = api.post(base + "close/")
    assert closed.status_code == 200 and closed.json()["released"] == 1 and closed.json()["campaign"]["status"] == "closed"
    assert api.post(base + "pause/").status_code == 400


def test_progress_by_api(admin_user, campaign):
    comparisons = ComparisonFactory.create_batch(2)
    services.campaign_comparisons_add(campaign=campaign, rules={"ids": [c.pk for c in comparisons]})
    vote = VoteFactory(comparison=comparisons[0])
    body = api_as(admin_user).get(f"/api/campaigns/{campaign.pk}/progress/").json()
    assert (body["votes"], body["target"], body["target_kind"], body["remaining"], body["comparisons"]) == (1, 4, "comparisons", 3, 2)
    assert body["annotators"][0]["username"] == vote.annotator.username and body["annotators"][0]["votes"] == 1
    assert body["rate_recent"] == 1.0 and body["eta_seconds"] == 3 * 3600


def test_an_unknown_campaign_is_a_404(admin_user):
    assert api_as(admin_user).get("/api/campaigns/999999/").status_code == 404
    assert api_as(admin_user).post("/api/campaigns/999999/activate/").status_code == 404

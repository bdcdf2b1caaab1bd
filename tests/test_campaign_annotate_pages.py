"""Annotators inside campaigns, on the pages and the API: who may open a campaign's queue (the
permission matrix), the start page, the campaign's own vote/skip/undo posts, and the guidelines
(acknowledged before the first vote, again after each new version)."""
from __future__ import annotations

import json

import pytest
from django.test import Client

from feedback.models import Assignment, GuidelineAcknowledgement, Vote
from feedback.roles import roles_ensure
from tests.campaign_support import campaign_make, guidelines_write
from tests.conftest import api_as
from tests.factories import ComparisonFactory

pytestmark = pytest.mark.django_db
HTMX = {"HTTP_HX_REQUEST": "true"}


def client_as(user) -> Client:
    client = Client()
    if user is not None:
        client.force_login(user)
    return client


@pytest.fixture
def world(annotator, other_annotator, admin_user):
    """``Pilot``: annotator and an admin in its pool; other_annotator is not."""
    campaign = campaign_make("Pilot", annotators=[annotator], comparisons=3)
    return {"campaign": campaign, "in_pool": annotator, "outside": other_annotator, "admin": admin_user}


# --- the permission matrix -------------------------------------------------------------------------
@pytest.mark.parametrize("who, page, api", [
    ("anonymous", 302, 401),
    ("in_pool", 200, 200),
    ("outside", 403, 403),
    ("admin", 403, 403),  # an admin outside the pool takes no slot either
    ("admin_in_pool", 200, 200),
])
def test_who_may_open_a_campaigns_queue(world, who, page, api):
    user = {"anonymous": None, "admin_in_pool": world["admin"]}.get(who, world.get(who))
    if who == "admin_in_pool":
        world["campaign"].annotators.add(user)
    response = client_as(user).get("/annotate/pilot/")
    assert response.status_code == page
    if page == 302:
        assert response["Location"] == "/accounts/login/?next=/annotate/pilot/"
    if page == 403:
        assert "not in the pool of campaign &#x27;Pilot&#x27;" in response.content.decode()
    answer = (api_as(user) if user else Client()).post("/api/assignments/next/?campaign=pilot")
    assert answer.status_code == api
    if api == 403:
        assert answer.json()["code"] == "not_in_pool"
    if api == 200:
        assert answer.json()["campaign"]["slug"] == "pilot"


@pytest.mark.parametrize("status", ["draft", "paused", "closed"])
def test_a_campaign_that_is_not_active_is_refused_with_its_status(world, status):
    world["campaign"].status = status
    world["campaign"].save()
    response = client_as(world["in_pool"]).get("/annotate/pilot/")
    assert response.status_code == 403
    assert f"is {status}: it serves no comparisons now" in response.content.decode()
    answer = api_as(world["in_pool"]).post("/api/assignments/next/", {"campaign": "pilot"}, format="json")
    assert answer.status_code == 403 and f"is {status}" in answer.json()["detail"]


def test_an_unknown_campaign_is_not_found(world):
    assert client_as(world["in_pool"]).get("/annotate/nowhere/").status_code == 404
    assert api_as(world["in_pool"]).post("/api/assignments/next/?campaign=nowhere").status_code == 404


def test_an_htmx_vote_outside_the_pool_is_refused_in_place(world):
    response = client_as(world["outside"]).post("/annotate/pilot/vote/", {"item": "x", "choice": "left"}, **HTMX)
    assert response.status_code == 403
    assert response["HX-Retarget"] == "#vote-refusal"
    assert not Vote.objects.exists()


# --- working inside a campaign ------------------------------------------------------------------
def test_votes_skips_and_undo_posted_in_a_campaign_stay_in_it(world):
    other = campaign_make("Other", annotators=[world["in_pool"]], comparisons=2, priority=50)
    client = client_as(world["in_pool"])
    page = client.get("/annotate/pilot/")
    assert page.context["display"].comparison.campaign_id == world["campaign"].pk
    assert 'action="/annotate/pilot/vote/"' in page.content.decode()
    voted = client.post("/annotate/pilot/vote/", {"item": page.context["display"].item, "choice": "tie"}, **HTMX)
    assert voted.context["display"].comparison.campaign_id == world["campaign"].pk  # not Other, despite its priority
    skipped = client.post("/annotate/pilot/skip/", {"item": voted.context["display"].item}, **HTMX)
    assert skipped.context["display"].comparison.campaign_id == world["campaign"].pk
    undone = client.post("/annotate/pilot/undo/", {"vote": Vote.objects.get().pk}, **HTMX)
    assert undone.status_code == 200 and undone.context["scoped"] == world["campaign"]
    plain = client.post("/annotate/pilot/vote/", {"item": undone.context["display"].item, "choice": "left"})
    assert plain.status_code == 302 and plain["Location"] == "/annotate/pilot/"
    assert not Assignment.objects.filter(comparison__campaign=other).exists()


def test_the_start_page_lists_the_annotators_active_campaigns_with_their_progress(world):
    annotator = world["in_pool"]
    campaign_make("Urgent", annotators=[annotator], comparisons=2, priority=9, target_votes=10)
    campaign_make("Paused", annotators=[annotator], comparisons=2, status="paused")
    campaign_make("Elsewhere", comparisons=2)
    client = client_as(annotator)
    page = client.get("/annotate/pilot/")
    client.post("/annotate/pilot/vote/", {"item": page.context["display"].item, "choice": "tie"})
    assert client.get("/")["Location"] == "/campaigns/"  # more than one campaign: choose
    start = client.get("/campaigns/")
    names = [card.campaign.name for card in start.context["cards"]]
    assert names == ["Urgent", "Default", "Pilot"]  # by priority, then name; not Paused, not Elsewhere
    pilot = next(card for card in start.context["cards"] if card.campaign.name == "Pilot")
    assert (pilot.my_votes, pilot.open_to_me, pilot.votes) == (1, 2, 1)
    body = start.content.decode()
    assert 'href="/annotate/urgent/"' in body and "0 of 10 votes (0%)" in body
    assert client_as(world["outside"]).get("/campaigns/").context["cards"][0].campaign.slug == "default"


def test_the_all_campaigns_page_names_each_items_campaign(world):
    body = client_as(world["in_pool"]).get("/annotate/").content.decode()
    assert "Campaign: <strong>Pilot</strong>" in body and 'href="/campaigns/">choose one</a>' in body


# --- guidelines ------------------------------------------------------------------------------------
def test_guidelines_must_be_acknowledged_before_voting_and_again_after_a_new_version(world):
    campaign, annotator = world["campaign"], world["in_pool"]
    guidelines_write(campaign, "# Rules\n\nPrefer **sourced** answers.")
    client = client_as(annotator)
    page = client.get("/annotate/pilot/")
    body = page.content.decode()
    assert 'data-acknowledged="false"' in body and "<strong>sourced</strong>" in body and " open>" in body
    item = page.context["display"].item
    refused = client.post("/annotate/pilot/vote/", {"item": item, "choice": "left"}, **HTMX)
    assert refused.status_code == 409 and "Read the guidelines of campaign &#x27;Pilot&#x27; (version 1)" in refused.content.decode()
    assert not Vote.objects.exists()
    # "I have read these" (htmx): the item comes back votable.
    read = client.post("/annotate/pilot/guidelines/", {"version": "1", "next": "campaign"}, **HTMX)
    assert read.status_code == 200 and 'data-acknowledged="true"' in read.content.decode()
    assert GuidelineAcknowledgement.objects.filter(annotator=annotator, version__number=1).count() == 1
    assert client.post("/annotate/pilot/vote/", {"item": item, "choice": "left"}, **HTMX).status_code == 200
    # A new version: asked again, through the API too.
    guidelines_write(campaign, "Prefer sourced, short answers.")
    assignment = Assignment.objects.get(annotator=annotator, status="leased")
    vote = api_as(annotator).post("/api/votes/", {"item": assignment.token, "choice": "left"}, format="json")
    assert vote.status_code == 409
    assert vote.json()["code"] == "guidelines_unread" and vote.json()["guidelines"]["version"] == 2
    ack = api_as(annotator).post("/api/guidelines/acknowledge/", {"campaign": "pilot"}, format="json")
    assert ack.status_code == 200 and ack.json()["version"] == 2
    assert api_as(annotator).post("/api/votes/", {"item": assignment.token, "choice": "left"}, format="json").status_code == 201
    assert Vote.objects.filter(guidelines_version__number=2).count() == 1


def test_the_guidelines_page_and_plain_acknowledgement_work_without_javascript(world):
    guidelines_write(world["campaign"], "Be kind.")
    client = client_as(world["in_pool"])
    page = client.get("/annotate/pilot/guidelines/")
    assert page.status_code == 200 and "Be kind." in page.content.decode()
    done = client.post("/annotate/pilot/guidelines/", {"version": "1", "next": "campaign"})
    assert done.status_code == 302 and done["Location"] == "/annotate/pilot/"
    assert GuidelineAcknowledgement.objects.filter(annotator=world["in_pool"]).count() == 1
    client.post("/annotate/pilot/guidelines/", {"version": "1"})  # twice: still one
    assert GuidelineAcknowledgement.objects.filter(annotator=world["in_pool"]).count() == 1
    assert client_as(world["outside"]).get("/annotate/pilot/guidelines/").status_code == 403
    assert client_as(world["outside"]).post("/annotate/pilot/guidelines/", {"version": "1"}).status_code == 403
    denied = api_as(world["outside"]).post("/api/guidelines/acknowledge/", {"campaign": "pilot"}, format="json")
    assert denied.status_code == 403 and not GuidelineAcknowledgement.objects.filter(annotator=world["outside"]).exists()


def test_a_campaign_without_guidelines_asks_nothing(world):
    ComparisonFactory()
    body = client_as(world["in_pool"]).get("/annotate/pilot/").content.decode()
    assert 'id="guidelines"' not in body and "data-guidelines-open" not in body


def test_an_annotator_in_no_active_campaign_is_told_so(world):
    world["campaign"].annotators.remove(world["in_pool"])
    world["in_pool"].groups.clear()  # out of the Default campaign's pool too (and of the annotator role)
    world["in_pool"].user_permissions.add(*roles_ensure()["annotator"].permissions.all())
    page = client_as(world["in_pool"]).get("/annotate/")
    assert page.status_code == 200 and page.context["display"] is None
    assert "You are in no active campaign yet" in page.content.decode()
    emptied = client_as(world["outside"])  # in the Default pool, which holds nothing: the usual words
    assert "You have judged everything the queue holds for you" in emptied.get("/annotate/").content.decode()

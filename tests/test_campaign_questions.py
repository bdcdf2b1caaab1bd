"""A campaign's questions, on the annotator side: the page asks only what the campaign asks, and
the server refuses answers to questions it does not ask (and a vote without a reason where one is
required), on the page and through the API alike."""
from __future__ import annotations

import json

import pytest
from django.test import Client

from feedback.campaigns.questions import Questions, answers_check, questions_of
from feedback.models import Demonstration, Vote
from feedback.services import assignment_claim
from tests.campaign_support import campaign_make
from tests.conftest import api_as

pytestmark = pytest.mark.django_db
HTMX = {"HTTP_HX_REQUEST": "true"}


# --- pure: which answers fit which questions ----------------------------------------------------
def test_answers_check_names_each_answer_the_campaign_does_not_ask():
    asked = questions_of(ask_strength=False, aspects='[{"name": "honesty", "label": "Which is truthful?"}]',
                         rationale="off", ask_demonstration=0)
    assert asked == Questions(False, (("honesty", "Which is truthful?"),), "off", False)
    errors = answers_check(asked, strength="clear", rationale="because", demonstration="Better.",
                           aspects={"helpfulness": "left", "harmlessness": "", "honesty": "right"})
    assert set(errors) == {"strength", "helpfulness", "rationale", "demonstration"}
    assert answers_check(asked, strength="", rationale=" ", demonstration="", aspects={"honesty": "tie"}) == {}


def test_a_required_reason_must_say_something():
    required = questions_of(ask_strength=True, aspects=[], rationale="required", ask_demonstration=True)
    assert answers_check(required, strength="", rationale="  \n", demonstration="", aspects={}) == {
        "rationale": "this campaign asks for a reason with every vote: say why"
    }
    assert answers_check(required, strength="", rationale="Left cites a source.", demonstration="", aspects={}) == {}


# --- the server refuses, page and API --------------------------------------------------------------
@pytest.fixture
def strict(annotator):
    """A campaign asking only for a reason (required) and one labelled aspect."""
    return campaign_make(
        "Strict", annotators=[annotator], comparisons=3, ask_strength=False, rationale="required",
        ask_demonstration=False, aspects=[{"name": "honesty", "label": "Which one is more truthful?"}],
    )


def _api_vote(user, campaign, **fields):
    assignment = assignment_claim(annotator=user, campaign=campaign)
    body = {"item": assignment.token, "choice": "left", **fields}
    return api_as(user).post("/api/votes/", json.dumps(body), content_type="application/json")


@pytest.mark.parametrize("fields, field", [
    ({}, "rationale"),  # required, missing
    ({"rationale": "   "}, "rationale"),  # required, blank
    ({"rationale": "Clear.", "strength": "clear"}, "strength"),  # not asked
    ({"rationale": "Clear.", "helpfulness": "left"}, "helpfulness"),  # an aspect it does not ask
    ({"rationale": "Clear.", "demonstration": "A better answer."}, "demonstration"),  # the box is off
])
def test_the_api_refuses_answers_the_campaign_does_not_ask_and_a_missing_required_reason(annotator, strict, fields, field):
    response = _api_vote(annotator, strict, **fields)
    assert response.status_code == 400, response.content
    assert "this campaign" in " ".join(response.json()[field])
    assert not Vote.objects.exists() and not Demonstration.objects.exists()


def test_the_api_takes_a_vote_that_answers_what_is_asked(annotator, strict):
    response = _api_vote(annotator, strict, rationale="Left cites a source.", honesty="left")
    assert response.status_code == 201, response.content
    vote = Vote.objects.get()
    assert vote.rationale == "Left cites a source." and vote.honesty in ("a", "b")


def test_a_reason_is_refused_where_the_campaign_asks_none(annotator):
    quiet = campaign_make("Quiet", annotators=[annotator], comparisons=1, rationale="off")
    response = _api_vote(annotator, quiet, rationale="I liked it.")
    assert response.status_code == 400
    assert response.json()["rationale"] == ["this campaign does not ask for a reason; leave it empty"]


def test_the_page_refuses_a_vote_without_the_required_reason_and_keeps_what_was_picked(annotator, strict):
    client = Client()
    client.force_login(annotator)
    page = client.get("/annotate/strict/")
    item = page.context["display"].item
    response = client.post("/annotate/strict/vote/", {"item": item, "choice": "left", "honesty": "left"}, **HTMX)
    assert response.status_code == 400
    body = response.content.decode()
    assert "The vote was not saved." in body and "this campaign asks for a reason with every vote" in body
    assert not Vote.objects.exists()
    stored = client.post("/annotate/strict/vote/", {"item": item, "choice": "left", "rationale": "Sourced."}, **HTMX)
    assert stored.status_code == 200 and Vote.objects.get().rationale == "Sourced."


# --- the page asks only what the campaign asks --------------------------------------------------
def test_the_page_renders_only_the_campaigns_questions_with_its_labels(annotator, strict):
    client = Client()
    client.force_login(annotator)
    body = client.get("/annotate/strict/").content.decode()
    assert "Campaign: <strong>Strict</strong>" in body
    assert 'name="strength"' not in body  # no "how strongly?"
    assert "Which one is more truthful?" in body and 'name="honesty"' in body
    assert 'name="helpfulness"' not in body and 'name="harmlessness"' not in body
    assert "Why? <span class=\"hint\">(required)</span>" in body and "required aria-required" in body
    assert 'name="demonstration"' not in body  # no "write a better response" box


def test_the_default_questions_are_all_there(annotator):
    campaign_make("Open", annotators=[annotator], comparisons=1)  # the model's defaults: every question, reason optional
    client = Client()
    client.force_login(annotator)
    body = client.get("/annotate/open/").content.decode()
    for name in ("strength", "helpfulness", "harmlessness", "honesty", "rationale", "demonstration"):
        assert f'name="{name}"' in body, name
    assert "Why? <span class=\"hint\">(optional)</span>" in body


def test_a_campaign_without_reasons_shows_no_reason_box(annotator):
    campaign_make("Quiet", annotators=[annotator], comparisons=1, rationale="off", aspects=[])
    client = Client()
    client.force_login(annotator)
    body = client.get("/annotate/quiet/").content.decode()
    assert 'name="rationale"' not in body and "Per-aspect" not in body

"""The leaderboard chooses whose votes (issue 16, item 4): people's by default, AI judges' only, or
both with AI votes weighted in the Bradley-Terry fit; the choice is on the board, the page and
the API, and a bad one is a 400 that says why."""
from __future__ import annotations

from types import SimpleNamespace

import pytest
from django.test import Client

from feedback import interface
from tests.ai_vote_support import ai_vote
from tests.conftest import api_as
from tests.factories import ComparisonFactory, UserFactory, VoteFactory
from training import selectors
from training.models import Checkpoint
from training.ratings import leaderboard, vote_outcomes


def _vote(a, b, choice, weight=1.0):
    return SimpleNamespace(model_a=a, model_b=b, choice=choice, weight=weight)


# --- the pure fit ---------------------------------------------------------------------------------
def test_weights_of_one_change_nothing():
    votes = [_vote("x", "y", "a"), _vote("x", "y", "a"), _vote("y", "x", "tie"), _vote("y", "z", "b")]
    plain = [SimpleNamespace(model_a=v.model_a, model_b=v.model_b, choice=v.choice) for v in votes]
    assert leaderboard(votes, rounds=20) == leaderboard(plain, rounds=20)
    assert vote_outcomes(votes)[0] == vote_outcomes(plain)[0]


def test_two_votes_of_half_weight_fit_like_one_vote():
    halves = [_vote("x", "y", "a", 0.5), _vote("x", "y", "a", 0.5), _vote("x", "y", "b")]
    whole = [_vote("x", "y", "a"), _vote("x", "y", "b")]
    weighted, plain = leaderboard(halves, rounds=0), leaderboard(whole, rounds=0)
    assert {r.model: r.rating for r in weighted.rows} == pytest.approx({r.model: r.rating for r in plain.rows})
    assert weighted.win_rate["x"]["y"] == pytest.approx(0.5)
    # Counts stay counts of votes: three votes, x won two of them.
    assert weighted.pair_votes["x"]["y"] == 3 and weighted.votes == 3
    assert {r.model: r.wins for r in weighted.rows} == {"x": 2, "y": 1}
    with pytest.raises(ValueError, match="weight"):
        leaderboard([_vote("x", "y", "a", 1.5)], rounds=0)


# --- the interface, the selector, the page and the API --------------------------------------------
@pytest.fixture
def world(db, admin_user):
    Checkpoint.objects.create(name="smol", hub_id="x/smol")
    Checkpoint.objects.create(name="smol-dpo", hub_id="x/smol-dpo")
    person = UserFactory(role="annotator")
    for _ in range(3):  # people: dpo wins 3 of 4; judges: smol wins 4 of 4
        comparison = ComparisonFactory(completion_a__model_name="smol-dpo", completion_b__model_name="smol")
        VoteFactory(comparison=comparison, annotator=person, choice="a")
        ai_vote(comparison, "b", judge="tiny@1")
    comparison = ComparisonFactory(completion_a__model_name="smol-dpo", completion_b__model_name="smol")
    VoteFactory(comparison=comparison, annotator=person, choice="b")
    ai_vote(comparison, "b", judge="tiny@1")
    return admin_user


def test_head_to_head_votes_take_the_choice(world):
    assert {v.origin for v in interface.head_to_head_votes()} == {"human"} and len(interface.head_to_head_votes()) == 4
    ai = interface.head_to_head_votes(votes="ai")
    assert len(ai) == 4 and {(v.origin, v.judge, v.weight) for v in ai} == {("ai", "tiny@1", 1.0)}
    both = interface.head_to_head_votes(votes="both", ai_weight=0.25)
    assert sorted({(v.origin, v.weight) for v in both}) == [("ai", 0.25), ("human", 1.0)] and len(both) == 8
    with pytest.raises(ValueError, match="votes: must be one of"):
        interface.head_to_head_votes(votes="robots")
    with pytest.raises(ValueError, match='ai_weight: only with votes "both"'):
        interface.head_to_head_votes(ai_weight=0.5)


def test_the_board_follows_whose_votes(world):
    def dpo_win_rate(**choice):
        board = selectors.leaderboard_compute(rounds=0, **choice)
        return board, board.win_rate["smol-dpo"]["smol"]

    board, people = dpo_win_rate()
    assert (board.votes, board.votes_from, people) == (4, "human", 0.75)
    board, judges = dpo_win_rate(votes="ai")
    assert (board.votes, board.votes_from, judges) == (4, "ai", 0.0)
    board, mixed = dpo_win_rate(votes="both", ai_weight=0.5)
    assert (board.votes, board.ai_weight) == (8, 0.5) and mixed == pytest.approx(3 / 6)


def test_the_page_and_api_show_the_choice_and_refuse_bad_ones(world):
    client = Client()
    client.force_login(world)
    page = client.get("/manage/leaderboard/?votes=both&ai_weight=0.5").content.decode()
    assert '<span data-testid="leaderboard-votes">from 8 human and AI votes (an AI vote weighs 0.5)</span>' in page
    assert "4 human votes" in client.get("/manage/leaderboard/").content.decode()
    bad = client.get("/manage/leaderboard/?votes=both&ai_weight=2")
    assert bad.status_code == 400 and "ai_weight: must be a number from 0 to 1" in bad.content.decode()
    assert client.get("/manage/leaderboard/?votes=everyone").status_code == 400
    api = api_as(world)
    body = api.get("/api/leaderboard/?votes=ai").json()
    assert (body["votes_from"], body["votes"], body["ai_weight"]) == ("ai", 4, 1.0)
    refused = api.get("/api/leaderboard/?votes=human&ai_weight=0.5")
    assert refused.status_code == 400 and "ai_weight" in refused.json(), refused.json()
    assert api.get("/api/leaderboard/?votes=nobody").status_code == 400

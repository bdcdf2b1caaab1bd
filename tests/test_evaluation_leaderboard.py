"""Leaderboard by eval set and category, with the length-controlled rating beside the plain one
(issue 17 item 5; training.evaluation.style_control)."""
from __future__ import annotations

import random

import pytest
from django.test import Client

from feedback import interface
from tests.evaluation_support import eval_set
from tests.factories import CompletionFactory, ComparisonFactory, PromptFactory, UserFactory, VoteFactory
from training import selectors
from training.evaluation.style_control import length_controlled_ratings
from training.models import Checkpoint
from training.ratings import leaderboard


def test_when_the_longer_reply_wins_the_length_controlled_gap_shrinks():
    rng = random.Random(0)
    votes = []
    for _ in range(400):
        a, b = rng.sample(["x", "y", "z"], 2)
        long_a = rng.random() < (0.8 if a == "x" else 0.2 if b == "x" else 0.5)  # x writes longer replies
        la, lb = (300, 100) if long_a else (100, 300)
        longer_wins = rng.random() < 0.9
        votes.append((a, b, "a" if long_a == longer_wins else "b", la, lb))
    styled = length_controlled_ratings(votes)
    plain = {r.model: r.rating for r in leaderboard(
        [type("V", (), {"model_a": a, "model_b": b, "choice": c})() for a, b, c, _, _ in votes], rounds=0).rows}
    assert styled["length_coefficient"] > 1 and styled["votes"] == 400
    assert plain["x"] - plain["y"] > 150  # x looks much better ...
    assert abs(styled["ratings"]["x"] - styled["ratings"]["y"]) < 60  # ... but only because it writes more
    assert length_controlled_ratings([])["ratings"] == {}
    with pytest.raises(ValueError):
        length_controlled_ratings([("x", "y", "maybe", 1, 1)])


@pytest.mark.django_db
def test_leaderboard_filters_by_eval_set_and_category(tmp_path, admin_user):
    s = eval_set(tmp_path, [("Eval one?", "math"), ("Eval two?", "chat")])
    for name in ("m1", "m2"):
        Checkpoint.objects.create(name=name, hub_id=f"x/{name}")
    refs = {r.category: r.prompt_id for r in interface.eval_set_prompts(eval_set_id=s.pk)}
    annotator = UserFactory(role="annotator")

    def vote(prompt, winner, count):
        from feedback.models import Prompt

        for _ in range(count):
            p = Prompt.objects.get(pk=prompt) if isinstance(prompt, int) else prompt
            c = ComparisonFactory(prompt=p, completion_a=CompletionFactory(prompt=p, model_name="m1", text="short"),
                                  completion_b=CompletionFactory(prompt=p, model_name="m2", text="a longer reply"))
            VoteFactory(comparison=c, annotator=annotator, choice="a" if winner == "m1" else "b")

    vote(refs["math"], "m1", 3)
    vote(refs["chat"], "m2", 2)
    vote(PromptFactory(), "m2", 4)  # a training prompt
    everything = selectors.leaderboard_compute(rounds=0, length_controlled=True)
    on_set = selectors.leaderboard_compute(rounds=0, eval_set_id=s.pk)
    math = selectors.leaderboard_compute(rounds=0, eval_set_id=s.pk, category="math")
    assert (everything.votes, on_set.votes, math.votes) == (9, 5, 3)
    assert math.scope == {"eval_set_id": s.pk, "eval_set": "prod v1", "category": "math"}
    assert set(everything.length_controlled["ratings"]) == {"m1", "m2"} and on_set.length_controlled is None

    client = Client()
    client.force_login(admin_user)
    html = client.get(f"/manage/leaderboard/?eval_set={s.pk}&category=math").content.decode()
    assert 'id="scope"' in html and "category math" in html and "Length-controlled" in html
    api = client.get(f"/api/leaderboard/?eval_set={s.pk}&category=chat").json()
    assert api["votes"] == 2 and api["scope"]["category"] == "chat" and set(api["length_controlled"]["ratings"]) == {"m1", "m2"}
    assert client.get("/api/leaderboard/?eval_set=999").status_code == 400

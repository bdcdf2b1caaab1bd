"""Snapshots choose whose votes (issue 16, item 4): people's (default), AI judges', or both with
AI votes weighted; the choice is recorded in the rules, refused with a field message when bad, and
shown in lineage."""
from __future__ import annotations

import dataclasses
import json
from io import StringIO

import pytest
from django.core.exceptions import ValidationError
from django.core.management import CommandError, call_command

from feedback import interface
from feedback.preferences import AggregationRules, RulesError, build_preference_dataset
from feedback.snapshots import snapshot_create
from feedback.vote_origins import vote_choice_words, vote_weight
from tests.ai_vote_support import ai_vote
from tests.conftest import api_as
from tests.factories import ComparisonFactory, UserFactory, VoteFactory
from tests.test_preferences import vote


def _ai(record, judge_id=900):
    return dataclasses.replace(record, origin="ai", annotator_id=judge_id)


def _build(records, **rules):
    return build_preference_dataset(records, AggregationRules.from_dict(rules))


# --- the pure rules and builder -------------------------------------------------------------------
def test_vote_weight_follows_the_choice():
    assert [vote_weight("human", votes=v) for v in ("human", "ai", "both")] == [1.0, None, 1.0]
    assert [vote_weight("ai", votes=v, ai_weight=0.25) for v in ("human", "ai", "both")] == [None, 1.0, 0.25]


@pytest.mark.parametrize(("rules", "field", "words"), [
    ({"votes": "robots"}, "votes", "must be one of human, ai, both"),
    ({"votes": "both", "ai_weight": 1.5}, "ai_weight", "must be a number from 0 to 1"),
    ({"votes": "both", "ai_weight": "half"}, "ai_weight", "must be a number from 0 to 1"),
    ({"ai_weight": 0.5}, "ai_weight", 'only with votes "both"'),
    ({"votes": "ai", "ai_weight": 0.5}, "ai_weight", 'only with votes "both"'),
    ({"votes": "both", "ai_weight": 0.5, "aggregation": "dawid_skene"}, "ai_weight", "must be 1 with aggregation"),
])
def test_bad_vote_choices_name_the_field(rules, field, words):
    with pytest.raises(RulesError) as error:
        AggregationRules.from_dict(rules)
    assert words in error.value.errors[field]


def test_the_choice_is_stored_only_when_not_the_default():
    assert "votes" not in AggregationRules.from_dict({}).as_dict()
    assert AggregationRules.from_dict({"votes": "ai"}).as_dict()["votes"] == "ai"
    both = AggregationRules.from_dict({"votes": "both", "ai_weight": 0.5}).as_dict()
    assert (both["votes"], both["ai_weight"]) == ("both", 0.5)
    assert AggregationRules.from_dict(both) == AggregationRules.from_dict({"votes": "both", "ai_weight": 0.5})
    assert vote_choice_words(both) == "human and AI votes (AI weight 0.5)"
    assert vote_choice_words({}) == "human votes only" and vote_choice_words({"votes": "ai"}) == "AI votes only"


def test_human_rules_leave_ai_votes_out_and_rows_unchanged():
    people = [vote(1, "a", "clear"), vote(2, "b", "strong")]
    alone = build_preference_dataset(people, AggregationRules())
    mixed = build_preference_dataset(people + [_ai(vote(1, "b", "strong")), _ai(vote(2, "a"))], AggregationRules())
    assert mixed.train == alone.train and mixed.content_hash == alone.content_hash
    assert mixed.counts["votes_excluded_origin"] == 2 and mixed.counts["votes_seen"] == 4
    assert "votes_excluded_origin" not in alone.counts  # no AI vote: the counts read as they always did


def test_ai_rules_use_only_ai_votes_and_say_how_many():
    records = [vote(1, "a", "clear", annotator=1), _ai(vote(1, "b", "strong"))]
    dataset = _build(records, votes="ai")
    [row] = dataset.train
    assert row["chosen"][0]["content"] == "B answer to 1" and row["ai_votes"] == 1
    assert dataset.counts["ai_votes_used"] == 1 and dataset.annotator_ids == []  # a judge is no annotator


def test_both_weighs_ai_votes_in_the_tally():
    person = vote(1, "a", "strong", annotator=1)
    judges = [_ai(vote(1, "b", "strong"), 900), _ai(vote(1, "b", "strong"), 901)]
    # Two AI votes at weight 0.5 tie one person: a split, no row.
    assert _build([person, *judges], votes="both", ai_weight=0.5).counts["split_votes"] == 1
    # At 0.4 the person wins (1 > 0.8); at 1.0 the judges do (2 > 1).
    [row] = _build([person, *judges], votes="both", ai_weight=0.4).train
    assert row["chosen"][0]["content"] == "A answer to 1" and row["ai_votes"] == 2
    [row] = _build([person, *judges], votes="both", ai_weight=1.0).train
    assert row["chosen"][0]["content"] == "B answer to 1"
    # Three judges each way at 0.3: the floating-point sums are compared at 9 decimals, so a split.
    tie = [_ai(vote(2, "a", "slight"), 900 + i) for i in range(3)] + [_ai(vote(2, "b", "slight"), 910 + i) for i in range(3)]
    assert _build(tie, votes="both", ai_weight=0.3).counts["split_votes"] == 1


def test_min_votes_counts_votes_not_weights():
    records = [_ai(vote(1, "a", "clear"), 900), _ai(vote(1, "a", "clear"), 901)]
    assert len(_build(records, votes="both", ai_weight=0.4, min_votes=2).train) == 1  # two votes, 0.8 in weight
    assert _build(records, votes="both", ai_weight=0.4, min_votes=3).counts["too_few_votes"] == 1
    assert _build(records, votes="both", ai_weight=0.0).counts["too_few_votes"] == 1  # weight 0 decides nothing
    [row] = _build(records + [vote(1, "b", "strong", annotator=1)], votes="both", ai_weight=0.4).train
    assert row["chosen"][0]["content"] == "B answer to 1" and row["margin"] == pytest.approx(1.0)


# --- snapshots in the database --------------------------------------------------------------------
@pytest.fixture
def arbiter_data(settings, tmp_path):
    settings.ARBITER_DATA_DIR = str(tmp_path)
    return tmp_path


@pytest.fixture
def mixed(db, arbiter_data):
    """Two comparisons: people chose A on the first; a judge chose B on both."""
    first, second = ComparisonFactory(), ComparisonFactory()
    VoteFactory(comparison=first, annotator=UserFactory(username="ann"), choice="a", strength="clear")
    ai_vote(first, "b", judge="tiny@1")
    ai_vote(second, "b", judge="tiny@1")
    return first, second


def test_a_default_snapshot_uses_only_peoples_votes(mixed):
    snapshot = snapshot_create(rules={})
    assert snapshot.rules.get("votes") is None and snapshot.train_rows + snapshot.eval_rows == 1
    assert snapshot.counts["votes_excluded_origin"] == 2 and snapshot.annotator_count == 1
    summary = interface.snapshot_votes_summary(snapshot_id=snapshot.pk)
    assert summary["vote_count"] == 1 and "ai_vote_count" not in summary
    assert interface.snapshot_get(snapshot_id=snapshot.pk).vote_choice == "human votes only"


def test_a_both_snapshot_records_the_choice_and_its_judges(mixed):
    snapshot = snapshot_create(rules={"votes": "both", "ai_weight": 0.5, "split_by": "hash", "eval_fraction": 0})
    assert (snapshot.rules["votes"], snapshot.rules["ai_weight"]) == ("both", 0.5)
    assert snapshot.train_rows == 2 and snapshot.annotator_count == 1  # ann; the judge is not counted
    summary = interface.snapshot_votes_summary(snapshot_id=snapshot.pk)
    assert (summary["human_vote_count"], summary["ai_vote_count"], summary["judges"]) == (1, 2, {"tiny@1": 2})
    assert interface.snapshot_get(snapshot_id=snapshot.pk).vote_choice == "human and AI votes (AI weight 0.5)"


def test_bad_choices_are_a_field_message_and_a_readable_command_error(mixed):
    with pytest.raises(ValidationError) as error:
        snapshot_create(rules={"votes": "robots"})
    assert any(m.startswith("votes: must be one of human, ai, both") for m in error.value.message_dict["rules"])
    with pytest.raises(CommandError, match='ai_weight: only with votes "both"'):
        call_command("snapshot_create", "--ai-weight", "0.5", stdout=StringIO())
    with pytest.raises(CommandError, match="ai_weight: must be a number from 0 to 1"):
        call_command("snapshot_create", "--votes", "both", "--ai-weight", "3", stdout=StringIO())
    out = StringIO()
    call_command("snapshot_create", "--votes", "ai", "--rules", json.dumps({"split_by": "hash", "eval_fraction": 0}),
                 stdout=out)
    assert "votes: AI votes only" in out.getvalue()


def test_the_run_api_refuses_a_bad_choice_with_400(mixed, admin_user):
    from training.models import Checkpoint

    Checkpoint.objects.create(name="smol", hub_id="x/smol")
    response = api_as(admin_user).post(
        "/api/jobs/", {"kind": "reward", "config": {"base": "smol", "rules": {"votes": "both", "ai_weight": 2}}},
        format="json",
    )
    assert response.status_code == 400, response.content
    assert any("ai_weight: must be a number from 0 to 1" in m for m in response.json()["rules"]), response.json()


def test_the_run_page_shows_whose_votes_the_snapshot_used(mixed, admin_user, client):
    from training.models import Job, JobKind

    snapshot = snapshot_create(rules={"votes": "both", "ai_weight": 0.5, "split_by": "hash", "eval_fraction": 0})
    job = Job.objects.create(kind=JobKind.REWARD, config={"base": "smol", "snapshot_id": snapshot.pk}, snapshot=snapshot)
    client.force_login(admin_user)
    body = client.get(f"/manage/jobs/{job.pk}/").content.decode()
    assert '<span data-testid="snapshot-votes">human and AI votes (AI weight 0.5)</span>' in body


@pytest.fixture
def reward_world(settings, tmp_path, admin_user, annotator):
    from tests.factories import PromptFactory
    from training.models import Checkpoint

    settings.ARBITER_DATA_DIR = tmp_path
    Checkpoint.objects.create(name="smol", hub_id="x/smol")
    for index in range(12):
        comparison = ComparisonFactory(prompt=PromptFactory(split="eval" if index % 3 == 0 else "train"))
        VoteFactory(comparison=comparison, annotator=annotator, choice="a" if index % 2 else "b", strength="clear")
        ai_vote(comparison, "a", judge="tiny@1")
    return admin_user


def test_the_reward_form_takes_whose_votes(reward_world, django_capture_on_commit_callbacks):
    from tests.test_training_runs import REWARD_FORM, client_as, field_error
    from training.models import Job

    admin = client_as(reward_world)
    page = admin.get("/manage/train/reward/").content.decode()
    assert 'name="votes"' in page and 'name="ai_weight"' in page
    bad = admin.post("/manage/train/reward/", {**REWARD_FORM, "votes": "human", "ai_weight": "0.5"})
    assert bad.status_code == 400 and "only with votes &quot;both&quot;" in field_error(bad.content.decode(), "ai_weight")
    assert Job.objects.count() == 0
    with django_capture_on_commit_callbacks(execute=True):
        response = admin.post("/manage/train/reward/", {**REWARD_FORM, "votes": "both", "ai_weight": "0.5"})
    assert response.status_code == 302, response.content.decode()[:2000]
    job = Job.objects.get()
    assert (job.snapshot.rules["votes"], job.snapshot.rules["ai_weight"]) == ("both", 0.5)
    assert job.snapshot.counts["ai_votes_used"] > 0

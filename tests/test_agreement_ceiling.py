"""The human agreement ceiling beside a reward run's held-out accuracy (issue 15 item 7): the pure
figure, the snapshot's frozen eval votes it is computed on, and the run page and API showing it."""
from __future__ import annotations

import json
import math
import random

import pytest
from django.test import Client
from django.utils import timezone
from statsmodels.stats.proportion import proportion_confint

from feedback import interface
from feedback.models import Vote
from feedback.quality.ceiling import agreement_ceiling
from tests.conftest import api_as
from tests.factories import ComparisonFactory, PromptFactory, UserFactory, VoteFactory
from training.models import Job, JobKind, JobStatus


def votes(*comparisons: str) -> tuple[list[int], list[int], list[str]]:
    """``votes("a a a", "b b a")``: comparison i+1 gets one vote per letter, annotators 1, 2, 3..."""
    items, raters, choices = [], [], []
    for number, spec in enumerate(comparisons, start=1):
        for rater, choice in enumerate(spec.split(), start=1):
            items.append(number), raters.append(rater), choices.append(choice)
    return items, raters, choices


# --- the pure figure -----------------------------------------------------------------------------


def test_three_comparisons_of_three_votes_worked_by_hand():
    # c1 a a a: each vote's others are a a -> agrees; 3 scored, credit 3.
    # c2 b b a: a b vote's others are b a (split, tie broken by a coin) -> credit 1/2, twice; the a
    #    vote's others b b -> 0. Scored 3, credit 1.
    # c3 a a tie: an a vote's others are a tie (split) -> 1/2, twice; the tie names no side -> left out.
    # Scored 3 + 3 + 2 = 8, credit 3 + 1 + 1 = 5: ceiling 5/8 = 0.625.
    result = agreement_ceiling(*votes("a a a", "b b a", "a a tie"))
    assert (result["value"], result["n"], result["agreeing"], result["defined"]) == (0.625, 8, 5, True)
    assert result["votes_left_out"] == {"tie_or_both_bad": 1} and result["others_split"] == 4
    assert (result["comparisons"], result["comparisons_scored"], result["votes"]) == (3, 3, 9)
    assert result["reason"] is None


def test_four_votes_a_comparison_with_a_both_bad_vote():
    # c1 a a a b: each a's others a a b -> a, agrees (3); the b's others a a a -> disagrees.
    # c2 b b both_bad b: each b's others b b both_bad -> b, agrees (3); both_bad left out.
    # 6 of 7 agree.
    result = agreement_ceiling(*votes("a a a b", "b b both_bad b"))
    assert (result["agreeing"], result["n"]) == (6, 7)
    assert result["value"] == pytest.approx(6 / 7)
    assert result["votes_left_out"] == {"tie_or_both_bad": 1} and result["others_split"] == 0


def test_a_two_to_one_split_is_not_scored_as_disagreement_only():
    # a a b: each a's others are a b (a coin: 1/2), the b's others a a (0): 1 of 3. Leaving the
    # split votes out would score the b alone: 0 of 1, a ceiling of 0 from a 2-1 majority.
    result = agreement_ceiling(*votes("a a b"))
    assert (result["agreeing"], result["n"]) == (1, 3) and result["value"] == pytest.approx(1 / 3)


def test_comparisons_the_reward_model_is_never_scored_on_are_left_out_and_counted():
    # c1 a b b: b's others a b split -> 1/2 each; a's others b b -> 0: 1 of 3.
    # c2 tie tie a: majority tie, no chosen/rejected pair -> left out whole, its a vote too.
    # c3 both_bad both_bad b b both_bad: majority both_bad -> left out.
    # c4 a b: no strict majority -> left out.  c5 a: one vote -> left out.
    result = agreement_ceiling(*votes("a b b", "tie tie a", "both_bad both_bad b b both_bad", "a b", "a"))
    assert (result["agreeing"], result["n"]) == (1, 3) and result["value"] == pytest.approx(1 / 3)
    assert result["comparisons_left_out"] == {"single_vote": 1, "tie_or_both_bad_majority": 2, "no_majority": 1}
    assert result["votes_left_out"] == {"tie_or_both_bad": 0} and result["others_split"] == 2


def test_no_comparison_with_two_votes_is_undefined_never_nan():
    result = agreement_ceiling(*votes("a", "b", "tie"), what="eval comparison")
    assert result["value"] is None and result["defined"] is False
    assert result["reason"] == "no eval comparison has two or more votes"
    assert (result["low"], result["high"], result["n"]) == (None, None, 0)
    json.dumps(result, allow_nan=False)  # JSON-safe as stored on the job
    assert agreement_ceiling([], [], [])["reason"] == "no comparison has two or more votes"


def test_votes_that_cannot_be_scored_leave_it_undefined_with_the_reason():
    result = agreement_ceiling(*votes("a b", "tie tie a"))  # no majority; a tie majority
    assert result["defined"] is False and result["value"] is None
    assert result["reason"] == "no comparison with two or more votes has an a-or-b majority"


@pytest.mark.parametrize(("spec", "agreeing", "n"), [(("a a a", "b b a", "a a tie"), 5, 8), (("a a a b", "b b b b"), 7, 8)])
def test_the_interval_is_statsmodels_wilson_interval(spec, agreeing, n):
    result = agreement_ceiling(*votes(*spec))
    low, high = proportion_confint(agreeing, n, alpha=0.05, method="wilson")
    assert (result["low"], result["high"]) == (pytest.approx(low), pytest.approx(high))
    # Wilson 1927 by hand: (p + z²/2n ± z·sqrt(p(1-p)/n + z²/4n²)) / (1 + z²/n).
    p, z = agreeing / n, 1.959963984540054
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    centre = p + z * z / (2 * n)
    assert result["low"] == pytest.approx((centre - half) / (1 + z * z / n))
    assert result["high"] == pytest.approx((centre + half) / (1 + z * z / n))
    assert result["low"] < result["value"] <= result["high"]


def test_the_order_of_the_votes_does_not_matter():
    items, raters, choices = votes("a a a b", "b b both_bad b", "a b b", "tie tie a")
    order = list(range(len(items)))
    random.Random(7).shuffle(order)
    shuffled = agreement_ceiling([items[i] for i in order], [raters[i] for i in order], [choices[i] for i in order])
    assert shuffled == agreement_ceiling(items, raters, choices)


@pytest.mark.parametrize(
    ("items", "raters", "choices", "message"),
    [([1, 1], [1, 1], ["a", "b"], "voted twice"), ([1], [1], ["left"], "unknown choice"), ([1, 2], [1], ["a", "b"], "lengths differ")],
)
def test_bad_input_is_refused(items, raters, choices, message):
    with pytest.raises(ValueError, match=message):
        agreement_ceiling(items, raters, choices)


# --- the snapshot's frozen eval votes --------------------------------------------------------------


@pytest.fixture
def data_dir(settings, tmp_path):
    settings.ARBITER_DATA_DIR = tmp_path
    return tmp_path


def vote_on(comparison, choices: str, annotators) -> list[Vote]:
    return [VoteFactory(comparison=comparison, annotator=user, choice=choice) for choice, user in zip(choices.split(), annotators)]


@pytest.fixture
def voted(db, data_dir):
    """Two eval comparisons (a a a: 3 of 3; a a b: 1/2 + 1/2 + 0 of 3 -> 4 of 6) and a train one
    (b b a) that must not count (with it: 5 of 9)."""
    annotators = [UserFactory(role="annotator") for _ in range(4)]
    unanimous = ComparisonFactory(prompt=PromptFactory(split="eval"))
    split = ComparisonFactory(prompt=PromptFactory(split="eval"))
    trained = ComparisonFactory()
    return {
        "annotators": annotators,
        "unanimous": (unanimous, vote_on(unanimous, "a a a", annotators)),
        "split": (split, vote_on(split, "a a b", annotators)),
        "trained": (trained, vote_on(trained, "b b a", annotators)),
    }


def test_the_ceiling_is_on_the_snapshots_eval_comparisons_only(voted):
    snapshot = interface.snapshot_create(rules=None)
    result = interface.agreement_ceiling(snapshot_id=snapshot.id)
    assert (result["agreeing"], result["n"], result["comparisons"]) == (4, 6, 2)
    assert result["value"] == pytest.approx(4 / 6)


def test_votes_changed_or_cast_after_freezing_leave_the_ceiling_as_it_was(voted):
    snapshot = interface.snapshot_create(rules=None)
    before = interface.agreement_ceiling(snapshot_id=snapshot.id)
    comparison, (_, _, minority) = voted["split"]
    Vote.objects.filter(pk=minority.pk).update(choice="a")  # live: a a a, which would give 6 of 6
    VoteFactory(comparison=comparison, annotator=voted["annotators"][3], choice="b")
    assert interface.agreement_ceiling(snapshot_id=snapshot.id) == before
    assert before["value"] == pytest.approx(4 / 6)
    # A snapshot frozen now sees the new votes: a a a b -> 3 a's agree, the b disagrees, plus 3 of 3.
    assert interface.agreement_ceiling(snapshot_id=interface.snapshot_create(rules=None).id)["agreeing"] == 6


def test_the_run_can_narrow_it_to_the_held_out_pairs_it_kept(voted):
    snapshot = interface.snapshot_create(rules=None)
    unanimous, _ = voted["unanimous"]
    trained, _ = voted["trained"]
    kept = interface.agreement_ceiling(snapshot_id=snapshot.id, comparison_ids=[unanimous.pk, trained.pk])
    assert (kept["agreeing"], kept["n"], kept["comparisons"]) == (3, 3, 1)  # a train comparison id is ignored


def test_eval_comparisons_with_one_vote_each_give_an_undefined_ceiling(db, data_dir):
    annotator = UserFactory(role="annotator")
    vote_on(ComparisonFactory(prompt=PromptFactory(split="eval")), "a", [annotator])
    vote_on(ComparisonFactory(), "b", [annotator])
    result = interface.agreement_ceiling(snapshot_id=interface.snapshot_create(rules=None).id)
    assert result == {**result, "value": None, "defined": False, "reason": "no eval comparison has two or more votes"}


# --- the run page and API -------------------------------------------------------------------------


def reward_job(summary: dict, snapshot_id: int | None = None) -> Job:
    now = timezone.now()
    return Job.objects.create(
        kind=JobKind.REWARD, status=JobStatus.SUCCEEDED, config={"base": "smol"}, summary=summary,
        snapshot_id=snapshot_id, started_at=now, heartbeat_at=now, finished_at=now,
    )


def page(user, job: Job) -> str:
    client = Client()
    client.force_login(user)
    return client.get(f"/manage/jobs/{job.pk}/").content.decode()


CEILING = {"value": 0.78, "defined": True, "low": 0.7012, "high": 0.8391, "n": 412, "agreeing": 321,
           "others_split": 40, "votes_left_out": {"tie_or_both_bad": 3}, "comparisons_left_out": {"single_vote": 0}}


def test_the_run_page_shows_held_out_accuracy_beside_the_ceiling(admin_user, data_dir):
    job = reward_job({"train_rows": 400, "eval_rows": 150, "eval_accuracy": 0.7123, "agreement_ceiling": CEILING})
    content = page(admin_user, job)
    assert ("Held-out accuracy 0.71 · human agreement ceiling 0.78 [0.70, 0.84] on 412 votes of the same eval "
            "comparisons") in content
    assert "Left out: 3 tie or both-bad votes." in content
    summary = content.split("<h2>Summary</h2>")[1].split("</table>")[0]
    assert "agreement ceiling</th>" not in summary and "{" not in summary  # a sentence, not a raw row


def test_an_undefined_ceiling_says_why(admin_user, data_dir):
    undefined = {"value": None, "defined": False, "reason": "no eval comparison has two or more votes"}
    content = page(admin_user, reward_job({"eval_accuracy": 0.5, "agreement_ceiling": undefined}))
    assert ("Held-out accuracy 0.50 · human agreement ceiling undefined (no eval comparison has two or more votes)"
            in content)


def test_a_run_recorded_without_it_gets_it_once_on_first_view(admin_user, voted, monkeypatch):
    snapshot = interface.snapshot_create(rules=None)
    job = reward_job({"train_rows": 1, "eval_rows": 2, "eval_accuracy": 0.5}, snapshot_id=snapshot.id)
    assert "human agreement ceiling 0.67 [0.30, 0.90] on 6 votes" in page(admin_user, job)
    job.refresh_from_db()
    assert job.summary["agreement_ceiling"]["value"] == pytest.approx(4 / 6) and job.summary["eval_accuracy"] == 0.5

    def not_again(**kwargs):
        raise AssertionError("computed again")

    monkeypatch.setattr(interface, "agreement_ceiling", not_again)
    assert "human agreement ceiling 0.67" in page(admin_user, job)
    body = api_as(admin_user).get(f"/api/jobs/{job.pk}/").json()
    assert body["summary"]["agreement_ceiling"]["n"] == 6


def test_the_api_gives_a_runs_ceiling_in_its_summary(admin_user, voted):
    snapshot = interface.snapshot_create(rules=None)
    job = reward_job({"eval_accuracy": 0.5}, snapshot_id=snapshot.id)
    ceiling = api_as(admin_user).get(f"/api/jobs/{job.pk}/").json()["summary"]["agreement_ceiling"]
    assert (ceiling["value"], ceiling["n"], ceiling["defined"]) == (pytest.approx(4 / 6), 6, True)


def test_other_jobs_and_unfinished_runs_get_no_ceiling(admin_user, voted):
    snapshot = interface.snapshot_create(rules=None)
    running = Job.objects.create(kind=JobKind.REWARD, status=JobStatus.RUNNING, config={"base": "smol"},
                                 snapshot_id=snapshot.id, started_at=timezone.now(), heartbeat_at=timezone.now())
    dpo = reward_job({"eval_reward_accuracy": 0.6}, snapshot_id=snapshot.id)
    Job.objects.filter(pk=dpo.pk).update(kind=JobKind.DPO)
    for job in (running, dpo):
        assert "agreement ceiling" not in page(admin_user, job)
        job.refresh_from_db()
        assert "agreement_ceiling" not in (job.summary or {})


def test_a_reward_checkpoints_page_shows_its_runs_accuracy_beside_the_ceiling(admin_user, data_dir):
    from training.models import Checkpoint, CheckpointKind

    job = reward_job({"eval_accuracy": 0.7123, "agreement_ceiling": CEILING})
    base = Checkpoint.objects.create(name="smol", hub_id="x/smol")
    reward = Checkpoint.objects.create(name="smol-rm-1", hub_id="x/smol-rm", kind=CheckpointKind.REWARD, parent=base,
                                       run=job, metadata={"eval_accuracy": 0.7123})
    client = Client()
    client.force_login(admin_user)
    content = client.get(f"/manage/checkpoints/{reward.pk}/").content.decode()
    assert "<dt>Against annotators</dt>" in content
    assert "Held-out accuracy 0.71 · human agreement ceiling 0.78 [0.70, 0.84] on 412 votes" in content
    assert "Against annotators" not in client.get(f"/manage/checkpoints/{base.pk}/").content.decode()

"""RLAIF in the loop: a judge labels a round's new-vs-parent comparisons end to end (the judging
job runs for real against a fake OpenAI-compatible endpoint; the training steps are simulated as
in tests/test_loop.py), its votes can start the next round, and the round report measures it
against the people who vote on the same comparisons."""
from __future__ import annotations

import pytest
from django.core.exceptions import ValidationError

from feedback.models import Comparison, Vote
from tests.factories import ComparisonFactory, PromptFactory, UserFactory, VoteFactory
from tests.judge_server import FakeChatServer
from tests.test_judging_runner import endpoint_judge
from tests.test_loop import LOOP_FORM, client_as, enable, finish, world  # noqa: F401  (fixture)
from training import loop
from training.models import CheckpointKind, Job, JobKind, JobStatus, LoopRound, LoopSettings, RoundStatus
from training.runners.judging import run_judging
from training.runners.progress import Reporter

pytestmark = pytest.mark.django_db


@pytest.fixture
def server():
    with FakeChatServer() as fake:
        yield fake


def _round_through_generation(django_capture_on_commit_callbacks, *, new_pairs: int = 3):
    """Start a round and simulate its reward, policy and generation steps; the generation job
    "writes" ``new_pairs`` comparisons whose better side says GOOD (A on even ones, B on odd)."""
    with django_capture_on_commit_callbacks(execute=True):
        loop_round = loop.loop_round_start(trigger="manual")
    finish(loop_round.reward_job, output_kind=CheckpointKind.REWARD)
    loop_round.refresh_from_db()
    finish(loop_round.policy_job, output_kind=CheckpointKind.POLICY)
    loop_round.refresh_from_db()
    generation = loop_round.generation_job
    written = []
    for index in range(new_pairs):
        comparison = ComparisonFactory(prompt=PromptFactory(split="eval"))
        good, bad = (comparison.completion_a, comparison.completion_b) if index % 2 == 0 else (comparison.completion_b, comparison.completion_a)
        good.text, bad.text = f"A GOOD answer {index}.", f"A poor answer {index}."
        for completion in (good, bad):
            completion.generation_params = {"job": generation.pk}
            completion.save()
        written.append(comparison)
    with django_capture_on_commit_callbacks(execute=True):
        finish(generation, summary={"paired": new_pairs})
    loop_round.refresh_from_db()
    return loop_round, written


def _run_judging(job: Job, django_capture_on_commit_callbacks) -> None:
    """What the worker does: run the judging runner, record the outcome, then the follow-ups."""
    summary = run_judging(job, Reporter(job.pk))
    Job.objects.filter(pk=job.pk).update(status=JobStatus.SUCCEEDED, summary=summary)
    with django_capture_on_commit_callbacks(execute=True):
        loop.job_finished(job_id=job.pk)


def test_a_round_labelled_by_a_judge_end_to_end(world, server, django_capture_on_commit_callbacks):
    judge = endpoint_judge(server, "prefer:GOOD", name="loop-judge")
    enable(judge="loop-judge", votes_per_round=3)
    loop_round, written = _round_through_generation(django_capture_on_commit_callbacks)
    assert loop_round.status == RoundStatus.SUCCEEDED  # the round does not wait for the judge
    judging = loop_round.judging_job
    assert judging.kind == JobKind.JUDGING and judging.config["judge"] == judge.ref
    assert sorted(judging.config["comparison_ids"]) == sorted(c.pk for c in written)
    report = loop.round_report(loop_round)["judge"]
    assert report["judge"] == judge.ref and report["judging_job"]["status"] == JobStatus.QUEUED

    _run_judging(judging, django_capture_on_commit_callbacks)
    ai = {v.comparison_id: v.choice for v in Vote.objects.filter(origin="ai", judge=judge.ref)}
    assert ai == {c.pk: ("a" if i % 2 == 0 else "b") for i, c in enumerate(written)}  # it chose the GOOD side each time
    for comparison in written:
        assert Comparison.objects.get(pk=comparison.pk).vote_count == 0  # people still get every one
    # The judge's three votes complete the next batch of three: the next round starts without anyone voting.
    follow = LoopRound.objects.exclude(pk=loop_round.pk).get()
    assert follow.trigger == "votes" and follow.parent == loop_round.checkpoint

    loop_round.refresh_from_db()
    report = loop.round_report(loop_round)["judge"]
    assert report["judging_job"]["status"] == JobStatus.SUCCEEDED and report["judging_job"]["votes"] == 3
    assert report["agreement"]["agreement"]["defined"] is False  # no person has voted on them yet

    people = [UserFactory(role="annotator") for _ in range(3)]
    human_choices = ["a", "a", "a"]  # people agree with the judge on the first and third only
    for comparison, choice in zip(written, human_choices):
        for person in people:
            VoteFactory(comparison=comparison, annotator=person, choice=choice)
    agreement = loop.round_report(loop_round)["judge"]["agreement"]["agreement"]
    assert agreement["defined"] and agreement["value"] == pytest.approx(2 / 3) and agreement["n"] == 3

    page = client_as(world["admin"]).get("/manage/loop/").content.decode()
    assert judge.ref in page and "agrees 0.67" in page


def test_without_a_judge_a_round_queues_no_judging_and_ai_votes_do_not_count(world, django_capture_on_commit_callbacks):
    enable(votes_per_round=3)
    loop_round, written = _round_through_generation(django_capture_on_commit_callbacks)
    assert loop_round.judging_job is None and loop.round_report(loop_round)["judge"] is None
    judge_user = UserFactory(username="judge:someone@1", is_active=False)
    for comparison in written:
        VoteFactory(comparison=comparison, annotator=judge_user, origin="ai", judge="someone@1", shown_left="")
    assert loop.loop_votes_pending() == 0 and loop.loop_maybe_start() is None


def test_the_loop_judge_is_chosen_on_the_loop_page_and_refused_when_unknown(world, server):
    endpoint_judge(server, "prefer:GOOD", name="page-judge")
    admin = client_as(world["admin"])
    assert admin.post("/manage/loop/", {**LOOP_FORM, "judge": "page-judge@1"}).status_code == 302
    assert LoopSettings.objects.get().judge.ref == "page-judge@1"
    with pytest.raises(ValidationError) as caught:
        loop.loop_settings_update(enabled=False, votes_per_round=3, method="dpo", policy="smol", judge="nobody")
    assert caught.value.message_dict == {"judge": ["no judge 'nobody'"]}
    bad = admin.post("/manage/loop/", {**LOOP_FORM, "judge": "nobody@3"})
    assert bad.status_code == 400

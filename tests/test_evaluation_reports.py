"""Evaluation runs end to end without models (issue 17 item 2): the generation job's end queues
the reward model's scoring of exactly the run's completions, the scoring job's end computes the
report (win/tie/loss with a tie band, per category, length-controlled, lengths, refusals, top
wins and losses, parent and base), and a failing step fails the run keeping the generations."""
from __future__ import annotations

import pytest

from feedback import interface
from feedback.models import Completion
from tests.evaluation_support import checkpoints, eval_set, finish, prompt_ids, run_with_scores, write
from training.evaluation.models import EvaluationStatus
from training.evaluation.report import Answer, PromptInfo, head_to_head, outcome
from training.evaluation.services import evaluation_run_create
from training.models import JobKind, JobStatus


def test_outcome_uses_the_tie_band_and_empty_replies():
    a = lambda score, text=None: Answer(1, f"reply {score}" if text is None else text, score, text == "")  # noqa: E731
    assert outcome(a(1.0), a(0.5), 0.2) == (1.0, 0.5)
    assert outcome(a(1.0), a(0.9), 0.2)[0] == 0.5  # |0.1| <= band: a tie
    assert outcome(a(0.0), a(0.9), 0.2)[0] == 0.0
    assert outcome(a(None, ""), a(0.9), 0.0) == (0.0, None)  # an empty reply loses
    assert outcome(a(None, ""), a(None, ""), 0.0) == (0.5, None)
    assert outcome(a(None), a(0.3), 0.0) is None  # unscored: left out
    assert outcome(a(1.0, "same"), a(0.9999, "same"), 0.0) == (0.5, None)  # identical replies tie


def test_head_to_head_counts_and_orders_examples():
    prompts = [PromptInfo(i, "c", f"q{i}") for i in range(4)]
    cand = {i: Answer(i, f"c{i}", s, False) for i, s in enumerate([3.0, 1.0, 0.0, -2.0])}
    base = {i: Answer(10 + i, f"b{i}", 0.0, False) for i in range(3)}  # prompt 3: no baseline answer
    result = head_to_head(prompts, cand, base, tie_band=0.0)
    assert (result["n"], result["missing"]) == (3, 1)
    assert (result["win_rate"]["wins"], result["win_rate"]["ties"], result["win_rate"]["losses"]) == (2, 1, 0)
    assert [e["prompt_id"] for e in result["top_wins"]] == [0, 1] and result["top_losses"] == []
    assert result["top_wins"][0]["margin"] == 3.0


@pytest.mark.django_db
def test_generation_end_queues_scoring_of_the_runs_completions_then_the_report(tmp_path):
    run = run_with_scores(tmp_path, scores={"base": [0.0] * 6, "cand": [1.0, 1.0, 1.0, 0.05, -1.0, 0.0]},
                          tie_band=0.1, texts={"cand": ["I'm sorry, but I cannot help with that."] + ["long answer " * 3] * 5})
    assert run.scoring_job.kind == JobKind.SCORING and run.scoring_job.config["reward_model"] == "rm"
    assert sorted(run.scoring_job.config["completion_ids"]) == sorted(Completion.objects.values_list("id", flat=True))
    assert run.status == EvaluationStatus.SUCCEEDED and run.finished_at is not None
    report = run.summary
    row = report["candidates"][0]
    win = row["vs_baseline"]["win_rate"]
    assert (win["wins"], win["ties"], win["losses"], win["n"]) == (3, 2, 1, 6)  # 0.05 and 0.0 are ties
    assert win["value"] == pytest.approx(4 / 6) and win["low"] <= win["value"] <= win["high"]
    assert set(row["vs_baseline"]["by_category"]) == {"a", "b"}
    assert row["vs_baseline"]["length_controlled"]["defined"]
    assert report["length_unit"] == "characters" and row["lengths"]["mean"] == pytest.approx(
        (len("I'm sorry, but I cannot help with that.") + 5 * len("long answer " * 3)) / 6)
    assert row["refusals"]["count"] == 1 and report["baseline"]["refusals"]["count"] == 0
    assert [e["margin"] for e in row["vs_baseline"]["top_wins"]] == [1.0, 1.0, 1.0]
    assert [e["margin"] for e in row["vs_baseline"]["top_losses"]] == [-1.0]


@pytest.mark.django_db
def test_the_report_compares_with_the_parent_and_the_imported_base(tmp_path):
    rows = [(f"Q{i}", "") for i in range(4)]
    s = eval_set(tmp_path, rows)
    checkpoints("base", "sft", "cand", parent_of={"sft": "base", "cand": "sft"})
    prompts = prompt_ids(s.pk)
    # An earlier evaluation wrote the imported base's answers on this eval set.
    earlier = write(999, s.pk, {(p, "base"): f"old base {i}" for i, p in enumerate(prompts)})
    interface.scores_record(reward_model="rm", scores=[(cid, 5.0) for cid in earlier.values()])
    run = evaluation_run_create(eval_set_id=s.pk, baseline="sft", candidates=["cand"], reward_model="rm")
    written = write(run.generation_job, s.pk, {(p, m): f"{m} {i}" for m in ("sft", "cand") for i, p in enumerate(prompts)})
    finish(run.generation_job)
    run.refresh_from_db()
    assert set(run.scoring_job.config["completion_ids"]) == set(written.values()) | set(earlier.values())
    assert run.scoring_job.progress_total == len(written)  # the base's answers are scored already
    interface.scores_record(reward_model="rm", scores=[(cid, 1.0 if m == "cand" else 0.0) for (p, m), cid in written.items()])
    finish(run.scoring_job)
    run.refresh_from_db()
    refs = {r["role"]: r for r in run.summary["candidates"][0]["references"]}
    assert refs["parent"]["name"] == "sft" and refs["parent"]["source"] == "this run"
    assert refs["parent"]["win_rate"]["value"] == 1.0
    assert refs["base"]["name"] == "base" and "generation job 999" in refs["base"]["source"]
    assert refs["base"]["win_rate"]["value"] == 0.0 and refs["base"]["n"] == 4


@pytest.mark.django_db
def test_a_reward_model_failing_mid_run_fails_the_run_and_keeps_the_generations(tmp_path):
    s = eval_set(tmp_path, [("Q1", ""), ("Q2", "")])
    checkpoints("base", "cand")
    run = evaluation_run_create(eval_set_id=s.pk, baseline="base", candidates=["cand"], reward_model="rm")
    write(run.generation_job, s.pk, {(p, m): f"{m}{p}" for p in prompt_ids(s.pk) for m in ("base", "cand")})
    finish(run.generation_job)
    run.refresh_from_db()
    assert run.status == EvaluationStatus.SCORING and run.progress["unit"] == "completion"
    finish(run.scoring_job, JobStatus.FAILED, error="CUDA out of memory")
    run.refresh_from_db()
    assert run.status == EvaluationStatus.FAILED
    assert "reward model 'rm' failed while scoring" in run.error and "CUDA out of memory" in run.error
    assert "4 generations already written are kept" in run.error
    assert Completion.objects.count() == 4 and run.summary == {}


@pytest.mark.django_db
def test_a_failed_generation_fails_the_run_without_scoring(tmp_path):
    s = eval_set(tmp_path, [("Q1", "")])
    checkpoints("base", "cand")
    run = evaluation_run_create(eval_set_id=s.pk, baseline="base", candidates=["cand"], reward_model="rm")
    finish(run.generation_job, JobStatus.FAILED, error="boom")
    run.refresh_from_db()
    assert run.status == EvaluationStatus.FAILED and run.scoring_job is None
    assert run.error.startswith(f"the generation job {run.generation_job_id} failed: boom")


@pytest.mark.django_db
@pytest.mark.parametrize("options, field", [
    ({"reward_model": ""}, "reward_model"),
    ({"reward_model": "base"}, "reward_model"),
    ({"tie_band": -1}, "tie_band"),
])
def test_reward_model_and_tie_band_are_checked_before_anything_is_queued(tmp_path, options, field):
    from django.core.exceptions import ValidationError

    s = eval_set(tmp_path, [("Q1", "")])
    checkpoints("base", "cand")
    with pytest.raises(ValidationError) as caught:
        evaluation_run_create(**{"eval_set_id": s.pk, "baseline": "base", "candidates": ["cand"], "reward_model": "rm", **options})
    assert field in caught.value.message_dict


@pytest.mark.django_db
def test_a_follow_up_that_raises_fails_the_run_with_the_error(tmp_path, monkeypatch):
    from training.evaluation import flow

    s = eval_set(tmp_path, [("Q1", "")])
    checkpoints("base", "cand")
    run = evaluation_run_create(eval_set_id=s.pk, baseline="base", candidates=["cand"], reward_model="rm")

    def broken(run):
        raise RuntimeError("the database went away")

    monkeypatch.setattr(flow, "scoring_queue", broken)
    finish(run.generation_job)
    run.refresh_from_db()
    assert run.status == EvaluationStatus.FAILED
    assert run.error == f"the step after generation job {run.generation_job_id} failed: RuntimeError: the database went away"

"""The loop's regression gate (issue 17 item 4), runners simulated and reward scores stubbed: a
round's checkpoint is evaluated against its parent on the gate's eval set; one that is not worse
(win rate >= 0.5 - margin) goes on to its new-vs-parent comparisons and is promoted, one that is
worse is kept, shown held back with the reason, and the next round starts from the parent."""
from __future__ import annotations

import pytest

from feedback import interface
from tests.evaluation_support import eval_set, prompt_ids, write
from tests.test_loop import client_as, enable, finish, world  # noqa: F401 - world is a fixture
from training import loop
from training.evaluation.gate import gate_verdict
from training.models import CheckpointKind, JobKind, JobStatus, LoopSettings, RoundStatus

pytestmark = pytest.mark.django_db


def test_gate_verdict_rule():
    win = {"defined": True, "value": 0.46, "low": 0.3, "high": 0.6, "n": 50}
    assert gate_verdict(win, margin=0.05)["passed"] is True
    refused = gate_verdict(win, margin=0.0)
    assert refused["passed"] is False and "0.460 [0.300, 0.600] on 50 prompts < 0.500" in refused["reason"]
    assert gate_verdict({"defined": False, "reason": "no outcomes"}, margin=0.5)["passed"] is False


def round_to_gate(world, tmp_path, margin):
    """Start a gated round and carry it to the end of its policy run; returns (round, eval set)."""
    s = eval_set(tmp_path, [(f"Gate question {i}?", "g") for i in range(4)], name="gate")
    enable(gate_eval_set=s.pk, gate_margin=margin)
    loop_round = loop.loop_round_start()
    finish(loop_round.reward_job, output_kind=CheckpointKind.REWARD)
    loop_round.refresh_from_db()
    new = finish(loop_round.policy_job, output_kind=CheckpointKind.POLICY)
    loop_round.refresh_from_db()
    assert loop_round.checkpoint == new and loop_round.generation_job is None  # no comparisons before the gate
    run = loop_round.evaluation
    assert run.candidates == [new.name] and run.baseline == "smol" and run.reward_model == loop_round.reward_job.output.name
    return loop_round, s


def score_gate(loop_round, s, new_scores):
    """Write the gate's generations and stub the reward model's scores (the parent scores 0)."""
    run = loop_round.evaluation
    prompts = prompt_ids(s.pk)
    written = write(run.generation_job, s.pk, {(p, m): f"{m} says {i}" for m in (run.baseline, run.candidates[0])
                                               for i, p in enumerate(prompts)})
    finish(run.generation_job)
    run.refresh_from_db()
    interface.scores_record(reward_model=run.reward_model, scores=[
        (cid, new_scores[prompts.index(p)] if m == run.candidates[0] else 0.0) for (p, m), cid in written.items()])
    finish(run.scoring_job)
    loop_round.refresh_from_db()


def test_a_checkpoint_not_worse_than_its_parent_is_promoted(world, tmp_path):
    loop_round, s = round_to_gate(world, tmp_path, margin=0.05)
    score_gate(loop_round, s, [1.0, 1.0, -1.0, 0.0])  # win rate 0.625
    assert loop_round.gate["passed"] is True and loop_round.status == RoundStatus.RUNNING
    generation = loop_round.generation_job
    assert generation.kind == JobKind.GENERATION and generation.config["checkpoints"] == [loop_round.checkpoint.name, "smol"]
    finish(generation, summary={"paired": 2})
    loop_round.refresh_from_db()
    assert loop_round.status == RoundStatus.SUCCEEDED and LoopSettings.objects.get().policy == loop_round.checkpoint


def test_a_worse_checkpoint_is_held_back_and_the_next_round_starts_from_the_parent(world, tmp_path):
    loop_round, s = round_to_gate(world, tmp_path, margin=0.05)
    score_gate(loop_round, s, [-1.0, -1.0, -1.0, 1.0])  # win rate 0.25 < 0.45
    assert loop_round.status == RoundStatus.HELD_BACK and loop_round.generation_job is None
    assert loop_round.gate["passed"] is False and loop_round.gate["win_rate"] == 0.25
    assert "held back by the regression gate: worse than the parent: win rate 0.250" in loop_round.error
    assert loop_round.checkpoint is not None  # kept
    assert LoopSettings.objects.get().policy.name == "smol"
    assert loop.loop_round_start().parent.name == "smol"
    html = client_as(world["admin"]).get("/manage/loop/").content.decode()
    assert f'id="round-{loop_round.pk}-gate"' in html and "held back" in html and "worse than the parent" in html


def test_a_reward_model_failing_in_the_gate_fails_the_round(world, tmp_path):
    loop_round, s = round_to_gate(world, tmp_path, margin=0.05)
    run = loop_round.evaluation
    write(run.generation_job, s.pk, {(p, m): f"{m}{p}" for p in prompt_ids(s.pk) for m in (run.baseline, run.candidates[0])})
    finish(run.generation_job)
    run.refresh_from_db()
    finish(run.scoring_job, JobStatus.FAILED, error="segfault")
    loop_round.refresh_from_db()
    assert loop_round.status == RoundStatus.FAILED and "failed while scoring" in loop_round.error
    assert LoopSettings.objects.get().policy.name == "smol"


@pytest.mark.parametrize("overrides, field", [({"gate_eval_set": 999}, "gate_eval_set"), ({"gate_margin": 0.7}, "gate_margin")])
def test_bad_gate_settings_are_refused(world, overrides, field):
    from django.core.exceptions import ValidationError

    with pytest.raises(ValidationError) as caught:
        enable(**overrides)
    assert field in caught.value.message_dict

"""manage.py evaluate: refusals as one readable line with nothing queued; a queued run is
announced; the report's figures as printed after --wait (stubbed scores)."""
import io

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from tests.evaluation_support import checkpoints, eval_set, run_with_scores
from training.evaluation.models import EvaluationRun
from training.management.commands.evaluate import Command, figure
from training.models import Job

pytestmark = pytest.mark.django_db


def test_refusals_are_one_line_and_nothing_is_queued(tmp_path):
    s = eval_set(tmp_path, [("Q1", "")])
    checkpoints("base", "cand")
    with pytest.raises(CommandError) as caught:
        call_command("evaluate", "--eval-set", s.pk, "--baseline", "base", "--candidate", "base", "--reward-model", "rm")
    assert str(caught.value) == "candidates: 'base' is the baseline: a checkpoint is not evaluated against itself"
    with pytest.raises(CommandError, match="eval_set_id: no eval set with id 999"):
        call_command("evaluate", "--eval-set", 999, "--baseline", "base", "--candidate", "cand", "--reward-model", "rm")
    assert not Job.objects.exists() and not EvaluationRun.objects.exists()


def test_a_queued_evaluation_is_announced_with_its_settings(tmp_path):
    s = eval_set(tmp_path, [("Q1", ""), ("Q2", "")])
    checkpoints("base", "cand")
    out = io.StringIO()
    call_command("evaluate", "--eval-set", s.pk, "--baseline", "base", "--candidate", "cand", "--reward-model", "rm",
                 "--set", "max_new_tokens=8", stdout=out)
    run = EvaluationRun.objects.get()
    assert out.getvalue().strip() == f"queued evaluation {run.pk}: cand vs base on prod v1 (2 prompts)"
    assert run.generation["max_new_tokens"] == 8


def test_the_printed_report(tmp_path):
    run = run_with_scores(tmp_path, scores={"base": [0.0] * 4, "cand": [1.0, 1.0, -1.0, 0.0]})
    out = io.StringIO()
    command = Command(stdout=out)
    command.report(run.summary)
    first = out.getvalue().splitlines()[0]
    win = run.summary["candidates"][0]["vs_baseline"]["win_rate"]
    assert first.startswith(f"cand vs base: win rate {figure(win)} (win/tie/loss 2/1/1 on 4 prompts)")
    assert figure({"defined": False, "reason": "no outcomes"}) == "undefined (no outcomes)"

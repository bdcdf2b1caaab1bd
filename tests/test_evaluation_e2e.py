"""An evaluation end to end with the bundled SmolLM2 through the real child-process runners:
``manage.py evaluate --wait`` on a small eval set generates both checkpoints' answers, a reward
model (SmolLM2 with a random one-output head: the plumbing, not the judgement, is under test)
scores them, and the report is stored and printed."""
from __future__ import annotations

import io
import json

import pytest
from django.core.management import call_command

from feedback.evalsets.services import eval_set_import
from feedback.models import Completion, CompletionScore
from tests.model_fixtures import SMOLLM2_NAME
from training.evaluation.models import EvaluationRun
from training.models import CheckpointKind
from training.services import checkpoint_register


@pytest.mark.real_model
@pytest.mark.django_db(transaction=True)
def test_manage_py_evaluate_with_smollm2(smollm2_checkpoint, runner_env, data_dir, tmp_path):
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    checkpoint_register(name="smol-candidate", weights_dir=smollm2_checkpoint.weights_dir)
    rm_dir = data_dir / "checkpoints" / "smol-rm"
    tokenizer = AutoTokenizer.from_pretrained(smollm2_checkpoint.location)
    model = AutoModelForSequenceClassification.from_pretrained(smollm2_checkpoint.location, num_labels=1)
    model.config.pad_token_id = tokenizer.pad_token_id
    model.save_pretrained(rm_dir)
    tokenizer.save_pretrained(rm_dir)
    checkpoint_register(name="smol-rm", kind=CheckpointKind.REWARD, weights_dir="checkpoints/smol-rm")
    path = tmp_path / "prod.jsonl"
    path.write_text("".join(json.dumps({"prompt": q, "category": c}) + "\n" for q, c in [
        ("What is the capital of France?", "facts"), ("Write one word for happy.", "style"),
        ("How many legs has a spider?", "facts")]), encoding="utf-8")
    s = eval_set_import(path=path, name="prod").eval_set

    out = io.StringIO()
    call_command("evaluate", "--eval-set", s.pk, "--baseline", SMOLLM2_NAME, "--candidate", "smol-candidate",
                 "--reward-model", "smol-rm", "--set", "max_new_tokens=8", "--wait", stdout=out)
    run = EvaluationRun.objects.get()
    assert run.status == "succeeded", run.error
    assert Completion.objects.filter(generation_params__job=run.generation_job_id).count() == 6
    assert CompletionScore.objects.filter(reward_model="smol-rm").count() == 6
    win = run.summary["candidates"][0]["vs_baseline"]["win_rate"]
    # The same weights answer greedily the same: every prompt is a tie under the same reward model.
    assert (win["n"], win["ties"], win["value"]) == (3, 3, 0.5)
    assert set(run.summary["candidates"][0]["vs_baseline"]["by_category"]) == {"facts", "style"}
    text = out.getvalue()
    assert f"evaluation {run.pk} succeeded" in text and "smol-candidate vs " in text and "win/tie/loss 0/3/0" in text

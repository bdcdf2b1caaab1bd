"""Evaluation runs on eval sets (issue 17 item 2, first part): checked before anything is queued,
then one generation job (strategy ``each``) writes the baseline's and each candidate's completion
of every eval-set prompt, unpaired, on prompt rows that stay out of training."""
from __future__ import annotations

import json

import pytest
import torch
from django.core.exceptions import ValidationError

from feedback import interface
from feedback.evalsets.evaluation import EVALSET_SOURCE
from feedback.evalsets.services import eval_set_import
from feedback.models import Comparison, Completion, Prompt
from tests.factories import PromptFactory
from training.config import ConfigError, GenerationConfig
from training.evaluation.models import EvaluationRun
from training.evaluation.services import evaluation_run_create
from training.models import Checkpoint, CheckpointKind, Job

QUERIES = ("What is the capital of France?", "Name a colour.", "what is the capital of FRANCE")


def eval_set(tmp_path, *queries):
    path = tmp_path / "prod.jsonl"
    path.write_text("".join(json.dumps({"prompt": q, "category": "c"}) + "\n" for q in queries), encoding="utf-8")
    return eval_set_import(path=path, name="prod").eval_set


@pytest.fixture
def policies(db):
    made = [Checkpoint.objects.create(name=name, hub_id=f"x/{name}") for name in ("base", "cand-1", "cand-2")]
    Checkpoint.objects.create(name="scorer", hub_id="x/scorer", kind=CheckpointKind.REWARD)
    return made


def test_generation_config_each_and_eval_set_rules():
    assert GenerationConfig.from_dict({"checkpoints": ["a", "b", "c"], "strategy": "each", "temperature": 0}).strategy == "each"
    with pytest.raises(ConfigError) as caught:
        GenerationConfig.from_dict({"checkpoints": ["a", "a"], "strategy": "each"})
    assert "checkpoints" in caught.value.errors
    with pytest.raises(ConfigError) as caught:
        GenerationConfig.from_dict({"checkpoints": ["a", "b"], "strategy": "head_to_head", "eval_set_id": 1})
    assert "strategy each only" in caught.value.errors["eval_set_id"]
    assert "eval_set_id" not in GenerationConfig.from_dict({"checkpoints": ["a"]}).as_dict()


@pytest.mark.django_db
def test_an_evaluation_queues_one_generation_job_on_the_eval_set_prompts(tmp_path, policies, admin_user):
    s = eval_set(tmp_path, *QUERIES)
    existing = PromptFactory(messages=[{"role": "user", "content": "Name a colour."}])  # reused, not copied
    run = evaluation_run_create(eval_set_id=s.pk, baseline="base", candidates=["cand-1", "cand-2"], reward_model="scorer",
                                generation={"max_new_tokens": 16, "seed": 3}, created_by=admin_user)
    assert run.eval_set_label == "prod v1" and run.candidates == ["cand-1", "cand-2"]
    assert run.generation == {"temperature": 0.0, "max_new_tokens": 16, "seed": 3}
    job = run.generation_job
    assert job.config["strategy"] == "each" and job.config["checkpoints"] == ["base", "cand-1", "cand-2"]
    assert job.config["eval_set_id"] == s.pk and job.progress_total == 2 and run.status == "generating"
    prompts = [ref.prompt_id for ref in interface.eval_set_prompts(eval_set_id=s.pk)]
    assert job.config["prompt_ids"] == prompts and existing.pk in prompts
    new = Prompt.objects.get(pk=prompts[0])
    assert (new.source, new.split, new.tags) == (EVALSET_SOURCE, "eval", ["evalset:prod"])
    assert Prompt.objects.count() == 2  # a second call made no more rows
    assert interface.prompts_select() == []  # eval-set prompts stay out of training data


@pytest.mark.django_db
@pytest.mark.parametrize("options, field", [
    ({"baseline": "base", "candidates": ["base"]}, "candidates"),
    ({"baseline": "base", "candidates": []}, "candidates"),
    ({"baseline": "base", "candidates": ["cand-1", "cand-1"]}, "candidates"),
    ({"baseline": "nope", "candidates": ["cand-1"]}, "baseline"),
    ({"baseline": "base", "candidates": ["rm"]}, "candidates"),
    ({"baseline": "base", "candidates": ["cand-1"], "generation": {"strategy": "two_samples"}}, "generation"),
    ({"baseline": "base", "candidates": ["cand-1"], "generation": {"temperature": 9}}, "temperature"),
    ({"baseline": "base", "candidates": ["cand-1"], "eval_set_id": 999}, "eval_set_id"),
])
def test_bad_evaluations_are_refused_before_anything_is_queued(tmp_path, policies, options, field):
    Checkpoint.objects.create(name="rm", hub_id="x/rm", kind=CheckpointKind.REWARD, parent=policies[0])
    s = eval_set(tmp_path, *QUERIES)
    with pytest.raises(ValidationError) as caught:
        evaluation_run_create(**{"eval_set_id": s.pk, "reward_model": "scorer", **options})
    assert field in caught.value.message_dict
    assert not Job.objects.exists() and not EvaluationRun.objects.exists()


@pytest.fixture
def one_torch_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.mark.django_db
def test_the_generation_job_writes_each_checkpoint_once_per_prompt_unpaired(tmp_path, tiny_checkpoints, one_torch_thread):
    from training.runners.generation import run_generation
    from training.runners.progress import Reporter

    s = eval_set(tmp_path, *QUERIES)
    PromptFactory(messages=[{"role": "user", "content": "A training prompt"}])
    Checkpoint.objects.create(name="scorer", hub_id="x/scorer", kind=CheckpointKind.REWARD)
    run = evaluation_run_create(eval_set_id=s.pk, baseline="tiny-x", candidates=["tiny-y"], reward_model="scorer",
                                generation={"max_new_tokens": 4, "batch_size": 1})
    summary = run_generation(run.generation_job, Reporter(run.generation_job.pk))
    prompts = [ref.prompt_id for ref in interface.eval_set_prompts(eval_set_id=s.pk)]
    written = sorted(Completion.objects.values_list("prompt_id", "model_name"))
    assert written == sorted((p, m) for p in prompts for m in ("tiny-x", "tiny-y"))
    assert summary["completions"] == 4 and summary["paired"] == 0 and summary["prompts"] == 2
    assert not Comparison.objects.exists()
    params = Completion.objects.filter(model_name="tiny-y").first().generation_params
    assert (params["strategy"], params["temperature"], params["max_new_tokens"], params["eval_set_id"]) == ("each", 0.0, 4, s.pk)

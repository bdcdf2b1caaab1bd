"""QLoRA for reward runs: validated where a run is queued (config, API, form), refused on this CPU
worker in one line before any model loads, the 4-bit loading arguments and the LoRA with its
score head; and the path that writes a QLoRA (or ZeRO-3) run's checkpoint, run here on a plain
LoRA run: the adapter and head written by ``trainer.save_model``, merged into the base loaded
again, give a checkpoint the scorer reads with the trainer's own held-out accuracy."""
from __future__ import annotations

from pathlib import Path

import pytest
import torch
from django.test import Client
from rest_framework.test import APIClient

from training.config import ConfigError, RewardConfig
from training.models import Checkpoint, Job, JobStatus
from training.runners.progress import Reporter

from .test_reward_runner import checkpoint_dirs, heldout_accuracy_by_scoring, reward_job, snapshot_make, toy_rows
from .test_training_runs import REWARD_FORM, world  # noqa: F401 - the fixture

QLORA_REFUSED = r"quantization 4bit \(QLoRA\) needs a CUDA GPU; this worker has none"


def test_reward_quantization_follows_the_one_rule_every_run_kind_shares():
    def errors(**settings):
        with pytest.raises(ConfigError) as caught:
            RewardConfig.from_dict({"base": "b", **settings})
        return caught.value.errors

    assert errors(quantization="4bit") == {"quantization": "QLoRA trains LoRA adapters over a 4-bit base: set lora true"}
    assert "4bit" in errors(quantization="8bit", lora=True)["quantization"]
    assert RewardConfig.from_dict({"base": "b", "quantization": "4bit", "lora": True}).quantization == "4bit"
    assert RewardConfig.from_dict({"base": "b"}).as_dict()["quantization"] == ""  # stored in full, off by default


@pytest.mark.django_db
def test_the_api_and_the_form_queue_a_qlora_reward_run_and_refuse_one_without_lora(world):  # noqa: F811
    api = APIClient()
    api.force_authenticate(world["admin"])
    bad = api.post("/api/jobs/", {"kind": "reward", "config": {"base": "smol", "quantization": "4bit"}}, format="json")
    assert bad.status_code == 400 and "set lora true" in str(bad.json()["quantization"])
    created = api.post("/api/jobs/", {"kind": "reward", "config": {"base": "smol", "quantization": "4bit", "lora": True}},
                       format="json")
    assert created.status_code == 201, created.content
    assert Job.objects.get(pk=created.json()["id"]).config["quantization"] == "4bit"

    page = Client()
    page.force_login(world["admin"])
    assert 'name="quantization"' in page.get("/manage/train/reward/").content.decode()
    refused = page.post("/manage/train/reward/", {**REWARD_FORM, "quantization": "4bit"})
    assert refused.status_code == 400 and "set lora true" in refused.content.decode()
    queued = page.post("/manage/train/reward/", {**REWARD_FORM, "quantization": "4bit", "lora": "on"})
    assert queued.status_code == 302
    assert Job.objects.order_by("-pk").first().config["quantization"] == "4bit" and Job.objects.count() == 2


@pytest.mark.django_db
def test_a_qlora_reward_run_on_this_cpu_worker_fails_in_one_line_before_any_model_loads(
    tiny_checkpoints, data_dir, monkeypatch
):
    import transformers

    from training.runner import main

    def no_loading(*args, **kwargs):
        raise AssertionError("a model was loaded")

    monkeypatch.setattr(transformers.AutoModelForSequenceClassification, "from_pretrained", no_loading)
    monkeypatch.setattr("training.runners.reward.RewardTrainer", no_loading)
    monkeypatch.setattr("training.runners.reward.qlora_base_load", no_loading)
    assert not torch.cuda.is_available()
    before = checkpoint_dirs(data_dir)
    job = reward_job(snapshot_make(data_dir, toy_rows(8), toy_rows(4, offset=100)), quantization="4bit", lora=True)
    assert main(["training.runner", str(job.pk)]) == 1  # the job's own entry point, as the worker runs it
    job.refresh_from_db()
    assert job.status == JobStatus.FAILED
    assert job.error.startswith("GpuOptionRefused: quantization 4bit (QLoRA) needs a CUDA GPU; this worker has none")
    assert "\n" not in job.error
    assert checkpoint_dirs(data_dir) == before and not Checkpoint.objects.filter(run=job).exists()


def test_the_4bit_reward_base_is_nf4_on_this_process_gpu_in_bf16():
    from types import SimpleNamespace

    from training.runners.gpu import qlora_load_arguments

    config = RewardConfig.from_dict({"base": "b", "quantization": "4bit", "lora": True})
    arguments = qlora_load_arguments(config, SimpleNamespace(local_process_index=3))
    bnb = arguments["quantization_config"]
    assert (bnb.load_in_4bit, bnb.bnb_4bit_quant_type, bnb.bnb_4bit_use_double_quant) == (True, "nf4", True)
    assert bnb.bnb_4bit_compute_dtype == torch.bfloat16 and arguments["dtype"] == torch.bfloat16
    assert arguments["device_map"] == {"": 3}  # each data-parallel process holds its own copy on its GPU


@pytest.mark.django_db
def test_the_reward_lora_trains_adapters_and_the_whole_score_head_and_freezes_the_rest(tiny_checkpoints):
    from peft import get_peft_model
    from transformers import AutoModelForSequenceClassification

    from training.runners.lora import lora_config

    config = RewardConfig.from_dict({"base": "tiny-x", "quantization": "4bit", "lora": True, "lora_r": 4})
    base = AutoModelForSequenceClassification.from_pretrained(tiny_checkpoints["tiny-x"].location, num_labels=1)
    model = get_peft_model(base, lora_config(config, task_type="SEQ_CLS"))
    trainable = {name for name, parameter in model.named_parameters() if parameter.requires_grad}
    assert "score" in model.peft_config["default"].modules_to_save
    assert {name for name in trainable if "score" in name} == {"base_model.model.score.modules_to_save.default.weight"}
    assert all("lora_" in name for name in trainable if "score" not in name)
    assert any("q_proj.lora_A" in name for name in trainable) and any("down_proj.lora_B" in name for name in trainable)
    assert not any("embed_tokens" in name or "norm" in name for name in trainable)


@pytest.mark.django_db
def test_a_lora_reward_run_written_through_the_qlora_path_scores_as_it_trained(
    tiny_checkpoints, data_dir, monkeypatch
):
    """The 4-bit base itself needs CUDA; everything after training does not: the run writes its
    adapter and score head, loads the base again and merges them, and the scorer then reads the
    checkpoint with the held-out accuracy the trainer measured."""
    from training.runners import gathered
    from training.runners.reward import run_reward

    loads = []
    real_load = gathered.saved_model_load

    def spy(trainer, **kwargs):
        loaded = real_load(trainer, **kwargs)
        loads.append(type(loaded).__name__)
        return loaded

    monkeypatch.setattr(gathered, "gathering_reason", lambda trainer, merge: gathered.FOUR_BIT if merge else None)
    monkeypatch.setattr(gathered, "saved_model_load", spy)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        held_out = toy_rows(16, offset=100, polite_wins=False)
        snapshot = snapshot_make(data_dir, toy_rows(48, polite_wins=False), held_out)
        job = reward_job(snapshot, lora=True, lora_r=8, lora_alpha=16, learning_rate=3e-3, max_steps=18, eval_steps=6)
        summary = run_reward(job, Reporter(job.pk))
    finally:
        torch.set_num_threads(threads)
    assert loads == ["PeftModelForSequenceClassification"]  # the base loaded again, the saved adapter and head on it
    assert summary["eval_accuracy"] > 0.9, summary
    checkpoint = Checkpoint.objects.get(run=job)
    assert checkpoint.metadata["quantization"] == "" and not checkpoint.is_adapter
    assert not any(path.name.startswith("adapter_") for path in Path(checkpoint.location).iterdir())
    accuracy, _ = heldout_accuracy_by_scoring(checkpoint.location, held_out)
    assert accuracy == pytest.approx(summary["eval_accuracy"])

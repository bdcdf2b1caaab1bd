"""The SFT runner: TRL's SFTTrainer on a snapshot of demonstrations, a registered policy with lineage.

The user-visible effect is measured on the tiny Llama itself: the negative log-likelihood of the
demonstrated replies given their prompts, before (the base) and after (the checkpoint).
"""
from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from training.models import Checkpoint, CheckpointKind, Job, JobKind, JobMetric, JobStatus
from training.policy_config import SFTConfig
from training.runners.progress import Reporter
from training.supervisor import job_supervise

from .test_dpo_runner import load_causal_lm, reply_logp
from .test_reward_runner import StopAfter, checkpoint_dirs, explain, snapshot_make

REPLIES = ["Step one: restart it. Step two: check the cable.", "Step one: unplug it. Step two: wait a minute."]


def demonstration_rows(count: int, *, offset: int = 0, long_prompts: int = 0, long_replies: int = 0) -> list[dict]:
    """``count`` SFT rows in the snapshot format (``source`` and ``demonstration_id`` included). The
    first ``long_prompts`` prompts fill 64 tokens alone; the next ``long_replies`` replies run past 64."""
    rows = []
    for i in range(offset, offset + count):
        question = f"How do I fix device {i}?"
        reply = REPLIES[i % len(REPLIES)]
        if i < offset + long_prompts:
            question = "Please read all of this first. " * 12 + question
        elif i < offset + long_prompts + long_replies:
            reply = "Step one: restart it, then check every cable twice. " * 5
        rows.append({
            "prompt": [{"role": "user", "content": question}],
            "completion": [{"role": "assistant", "content": reply}],
            "source": "written" if i % 2 else "imported", "demonstration_id": None if i % 3 == 0 else 700 + i,
        })
    return rows


def sft_snapshot(data_dir: Path, train: list[dict], held_out: list[dict]):
    snapshot = snapshot_make(data_dir, train, held_out)
    snapshot.kind = "sft"
    snapshot.save()
    return snapshot


def sft_job(snapshot, **settings) -> Job:
    config = SFTConfig.from_dict({
        "base": "tiny-x", "snapshot_id": snapshot.pk, "learning_rate": 3e-2, "max_steps": 12,
        "per_device_train_batch_size": 4, "per_device_eval_batch_size": 4, "max_length": 64,
        "eval_steps": 6, "logging_steps": 3, "seed": 1, "lora_dropout": 0.0, **settings,
    })
    return Job.objects.create(kind=JobKind.SFT, config=config.as_dict(), snapshot=snapshot, status=JobStatus.RUNNING)


def demonstration_nll(location: str, rows: list[dict]) -> float:
    """Mean over rows of -log π(completion | prompt), nats."""
    model, tokenizer = load_causal_lm(location)
    return sum(-reply_logp(model, tokenizer, row["prompt"], row["completion"]) for row in rows) / len(rows)


@pytest.fixture(scope="module")
def one_torch_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture
def demo_snapshot(data_dir):
    return sft_snapshot(data_dir, demonstration_rows(16), demonstration_rows(4, offset=100))


@pytest.mark.django_db
def test_a_lora_sft_run_lowers_the_loss_on_the_demonstrations_and_registers_a_merged_policy(
    tiny_checkpoints, demo_snapshot, data_dir, one_torch_thread
):
    from training.runners.sft import run_sft

    base = tiny_checkpoints["tiny-x"]
    train, held_out = demonstration_rows(16), demonstration_rows(4, offset=100)
    before = demonstration_nll(base.location, train), demonstration_nll(base.location, held_out)

    job = sft_job(demo_snapshot, output_name="steps-sft")
    summary = run_sft(job, Reporter(job.pk))
    job.refresh_from_db()
    assert summary["checkpoint"] == "steps-sft" and not summary["cancelled"]
    assert (summary["train_rows"], summary["eval_rows"], summary["steps"]) == (16, 4, 12)
    assert summary["filtered_fully_truncated"] == {"train": 0, "eval": 0} and summary["at_max_length"] == {"train": 0, "eval": 0}
    assert summary["train_loss"] > 0 and summary["eval_loss"] > 0 and summary["samples_per_s"] > 0
    assert (job.progress_done, job.progress_total) == (12, 12)

    checkpoint = Checkpoint.objects.get(name="steps-sft")
    assert checkpoint.kind == CheckpointKind.POLICY and not checkpoint.is_adapter
    assert checkpoint.parent == base and checkpoint.run == job and job.output == checkpoint
    meta = checkpoint.metadata
    assert (meta["method"], meta["base"], meta["snapshot_id"], meta["snapshot_hash"]) == (
        "sft", "tiny-x", demo_snapshot.pk, demo_snapshot.content_hash
    )
    assert meta["metrics"]["eval_loss"] == summary["eval_loss"] and meta["adapter"] is False
    directory = Path(checkpoint.location)
    assert json.loads((directory / "config.json").read_text())["architectures"] == ["LlamaForCausalLM"]
    assert not (directory / "adapter_config.json").exists()
    assert not (data_dir / "runs" / str(job.pk)).exists()

    # The tuned model finds the demonstrated replies far more likely, held-out ones included.
    after = demonstration_nll(checkpoint.location, train), demonstration_nll(checkpoint.location, held_out)
    assert after[0] < 0.6 * before[0] and after[1] < 0.6 * before[1], (before, after)

    rows = list(JobMetric.objects.filter(job=job).order_by("pk"))
    train_losses = [m.values["loss"] for m in rows if "loss" in m.values]
    eval_rows = [m for m in rows if "eval_loss" in m.values]
    assert [m.step for m in rows if "loss" in m.values] == [3, 6, 9, 12] and train_losses[-1] < train_losses[0]
    assert [m.step for m in eval_rows] == [6, 12] and "eval_mean_token_accuracy" in eval_rows[-1].values


@pytest.mark.django_db
def test_a_full_sft_run_counts_what_trl_dropped_and_cut_and_can_save_nothing_but_a_merged_model(
    tiny_checkpoints, data_dir, one_torch_thread
):
    from training.runners.sft import run_sft

    snapshot = sft_snapshot(
        data_dir, demonstration_rows(10, long_prompts=2, long_replies=3), demonstration_rows(3, offset=100, long_prompts=1)
    )
    job = sft_job(snapshot, lora=False, learning_rate=1e-3, max_steps=2, eval_steps=2)
    summary = run_sft(job, Reporter(job.pk))
    assert summary["filtered_fully_truncated"] == {"train": 2, "eval": 1}
    assert summary["at_max_length"] == {"train": 3, "eval": 0}
    assert (summary["train_rows"], summary["eval_rows"]) == (8, 2)
    checkpoint = Checkpoint.objects.get(run=job)
    assert checkpoint.name == f"tiny-x-sft-{job.pk}" and checkpoint.metadata["lora"] is False and not checkpoint.is_adapter


@pytest.mark.django_db
def test_a_cancelled_sft_run_leaves_no_checkpoint_and_no_files(
    tiny_checkpoints, demo_snapshot, data_dir, one_torch_thread, monkeypatch
):
    from training.runners import reporting
    from training.runners.sft import run_sft

    monkeypatch.setattr(reporting, "STOP_CHECK_INTERVAL_S", 0)
    monkeypatch.setattr(reporting, "PROGRESS_INTERVAL_S", 0)
    before = checkpoint_dirs(data_dir)
    job = sft_job(demo_snapshot, max_steps=200, eval_steps=1000)
    reporter = StopAfter(job.pk, steps=2)
    summary = run_sft(job, reporter)
    assert reporter.halted and summary["cancelled"] and summary["steps"] == 2 and summary["checkpoint"] is None
    assert not Checkpoint.objects.filter(run=job).exists()
    assert checkpoint_dirs(data_dir) == before and not (data_dir / "runs" / str(job.pk)).exists()


@pytest.mark.django_db
def test_an_sft_run_refuses_a_preference_snapshot(tiny_checkpoints, data_dir):
    from training.runners.sft import run_sft

    snapshot = snapshot_make(data_dir, [{"prompt": [], "chosen": [], "rejected": []}], [])
    with pytest.raises(ValueError, match="holds preference rows; SFT needs demonstrations"):
        run_sft(sft_job(snapshot), Reporter(0))


@pytest.mark.django_db(transaction=True)
def test_an_sft_run_in_a_child_process_succeeds_and_registers_an_adapter_over_its_base(
    tiny_checkpoints, demo_snapshot, runner_env
):
    from training.runners.loading import checkpoint_policy_load

    job = sft_job(demo_snapshot, max_steps=4, save_adapter=True)
    Job.objects.filter(pk=job.pk).update(status=JobStatus.QUEUED)
    assert job_supervise(job_id=job.pk) == JobStatus.SUCCEEDED, explain(Job.objects.get(pk=job.pk))
    job.refresh_from_db()
    checkpoint = job.output
    assert checkpoint.is_adapter and checkpoint.parent.name == "tiny-x" and checkpoint.metadata["method"] == "sft"
    assert (Path(checkpoint.location) / "adapter_model.safetensors").is_file()
    policy = checkpoint_policy_load(checkpoint)
    assert not hasattr(policy.model, "peft_config")  # merged over the parent for generation

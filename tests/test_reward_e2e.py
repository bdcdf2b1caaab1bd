"""End to end with real data and the real model: human preferences from the shared HH-RLHF sample
are imported, frozen into a snapshot, and a reward model is trained on the bundled SmolLM2 through
the real child-process runner; its held-out accuracy is stored on the run and on the checkpoint.

64 pairs are imported into the train split and 64 other pairs into the eval split (by prompt, so
no prompt is in both): 4 optimiser steps, enough to cross every stage a full run crosses (the suite's
time budget; what the defaults learn at full size is measured by ``bench/reward_accuracy.py``).
Prints the accuracy (run pytest with -s to see it)."""
from __future__ import annotations

import io
import math
from pathlib import Path

import pytest
from django.core.management import call_command

from feedback import interface
from tests.model_fixtures import SMOLLM2_NAME
from training.models import CheckpointKind, JobStatus
from training.services import reward_run_create
from training.supervisor import job_log_path, job_supervise

HH_RLHF = Path(__file__).resolve().parents[2] / "shared" / "data" / "hh-rlhf-harmless-base-sample.jsonl.gz"
MAX_LENGTH = 160
PAIRS = 64


@pytest.mark.real_model
@pytest.mark.django_db(transaction=True)
def test_a_reward_model_trained_on_human_pairs_is_scored_on_held_out_pairs(smollm2_checkpoint, runner_env, monkeypatch):
    monkeypatch.setenv("OMP_NUM_THREADS", "2")  # the only process working while the run trains
    out = io.StringIO()
    # Every training pair is used (fitted to MAX_LENGTH): 4 steps of 16 pairs (8 a batch, 2 accumulated).
    call_command("import_hh_rlhf", str(HH_RLHF), "--split", "train", "--limit", str(PAIRS), stdout=out)
    call_command("import_hh_rlhf", str(HH_RLHF), "--split", "eval", "--offset", "400", "--limit", str(PAIRS), stdout=out)

    job = reward_run_create(config={
        "base": SMOLLM2_NAME, "max_length": MAX_LENGTH, "num_train_epochs": 1.0, "learning_rate": 2e-5,
        "per_device_train_batch_size": 8, "per_device_eval_batch_size": 16, "eval_steps": 1000, "logging_steps": 5,
        "rules": {"sources": ["hh-rlhf"]},
    })
    snapshot = interface.snapshot_get(snapshot_id=job.snapshot_id)
    # A prompt shared by pairs on both sides keeps the split it was first imported with, so the
    # held-out side can only shrink; identical responses are dropped by the builder.
    assert PAIRS - 4 <= snapshot.train_rows <= PAIRS and PAIRS - 8 <= snapshot.eval_rows <= PAIRS, snapshot.counts

    status = job_supervise(job_id=job.pk)
    job.refresh_from_db()
    log = job_log_path(job.pk)
    assert status == JobStatus.SUCCEEDED, f"{job.error}\n{job.traceback}\n{log.read_text()[-3000:] if log.exists() else ''}"

    accuracy = job.summary["eval_accuracy"]
    assert 0.0 <= accuracy <= 1.0
    # Every pair is used, fitted to MAX_LENGTH tokens (the prompt's start cut first); only pairs
    # identical after that are left out, and counted. Ties are their own figure.
    evaluated = snapshot.eval_rows - job.summary["filtered_identical"]["eval"]
    assert evaluated == job.summary["eval_rows"] > 0
    assert job.summary["train_rows"] == snapshot.train_rows - job.summary["filtered_identical"]["train"]
    pairs_per_step = job.config["per_device_train_batch_size"] * job.config["gradient_accumulation_steps"]
    assert job.summary["steps"] == math.ceil(job.summary["train_rows"] / pairs_per_step)  # one epoch over every pair used
    assert job.summary["truncated_prompt"]["eval"] > 0 and 0.0 <= job.summary["eval_tie_rate"] <= 1.0 - accuracy
    final = [m.values for m in job.metrics.all() if "eval_accuracy" in m.values][-1]
    assert final["eval_accuracy"] == pytest.approx(accuracy)

    checkpoint = job.output
    assert checkpoint is not None and checkpoint.kind == CheckpointKind.REWARD
    assert checkpoint.parent == smollm2_checkpoint and checkpoint.run_id == job.pk
    assert checkpoint.metadata["snapshot_id"] == snapshot.id and checkpoint.metadata["snapshot_hash"] == snapshot.content_hash
    assert checkpoint.metadata["eval_accuracy"] == pytest.approx(accuracy)
    assert checkpoint.metadata["eval_tie_rate"] == job.summary["eval_tie_rate"]
    assert (Path(checkpoint.location) / "config.json").is_file()
    print(f"\nreward model held-out accuracy: {accuracy:.3f} (ties {job.summary['eval_tie_rate']:.3f}) on {evaluated} of "
          f"{snapshot.eval_rows} held-out pairs; trained on {job.summary['train_rows']} of {snapshot.train_rows} "
          f"pairs; summary: {job.summary}")

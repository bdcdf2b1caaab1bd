"""The reward-model runner: TRL's RewardTrainer on a snapshot, metrics by strength, a registered checkpoint.

Most tests call ``run_reward`` in this process with a real ``Reporter`` on a job row and the tiny
Llama ``tiny-x`` (SmolLM2's tokenizer and chat template). The toy preference is easy to learn:
a long polite answer against a curt one. The full fine-tune learns "polite wins" and the LoRA run
learns the opposite from the same base and seed (the same initial head), so both clearing 0.9
held-out accuracy shows learning, not a lucky random head. Three tests run the whole job through
``job_supervise`` in a child process: success, cancel mid-run, and a corrupt base.
"""
from __future__ import annotations

import json
import shutil
import threading
import time
import uuid
from pathlib import Path

import pytest
import torch
from django.core.exceptions import ValidationError
from django.db import connection

from feedback.models import DatasetSnapshot
from training.config import RewardConfig
from training.models import Checkpoint, CheckpointKind, Job, JobKind, JobMetric, JobStatus
from training.runners.progress import Reporter
from training.services import checkpoint_register, job_cancel
from training.supervisor import job_log_path, job_supervise

STRENGTHS = ("slight", "clear", "strong", "")
POLITE = [
    "Thank you so much for asking! Here is a careful, friendly answer with every detail you might need.",
    "What a thoughtful question. I am glad to help, and I will walk you through it step by step, kindly.",
    "Of course, happy to help! Let me explain this clearly and politely so that it is easy to follow.",
]
CURT = ["no", "No.", "nope"]
LONG_ANSWER = "This answer rambles on and on, far beyond any sensible length. " * 12


def toy_rows(
    count: int, *, offset: int = 0, polite_wins: bool = True, too_long: int = 0, contrarian: tuple[str, ...] = ()
) -> list[dict]:
    """``count`` preference rows (TRL conversational format plus our ``margin``/``strength``/``comparison_id``).

    The first ``too_long`` rows have a chosen side far over 96 tokens; rows whose strength is in
    ``contrarian`` prefer the other side.
    """
    rows = []
    for i in range(offset, offset + count):
        strength = STRENGTHS[i % len(STRENGTHS)]
        polite = [{"role": "assistant", "content": POLITE[i % len(POLITE)]}]
        curt = [{"role": "assistant", "content": CURT[i % len(CURT)]}]
        chosen, rejected = (polite, curt) if polite_wins != (strength in contrarian) else (curt, polite)
        if i < offset + too_long:
            chosen = [{"role": "assistant", "content": LONG_ANSWER}]
        rows.append({
            "prompt": [{"role": "user", "content": f"Question {i}: how do I fix item {i * 7}?"}],
            "chosen": chosen, "rejected": rejected, "margin": 0.0, "strength": strength, "comparison_id": 1000 + i,
        })
    return rows


def snapshot_make(data_dir: Path, train: list[dict], held_out: list[dict]) -> DatasetSnapshot:
    """A snapshot row with its two files, written as feedback's builder writes them."""
    folder = Path("snapshots") / f"test-{uuid.uuid4().hex[:12]}"
    (data_dir / folder).mkdir(parents=True)
    for name, rows in (("train.jsonl", train), ("eval.jsonl", held_out)):
        (data_dir / folder / name).write_text("".join(json.dumps(row) + "\n" for row in rows))
    return DatasetSnapshot.objects.create(
        rules={}, counts={}, train_rows=len(train), eval_rows=len(held_out), annotator_count=1,
        content_hash=uuid.uuid4().hex * 2, files_dir=str(folder),
    )


def reward_job(snapshot: DatasetSnapshot, **settings) -> Job:
    config = RewardConfig.from_dict({
        "base": "tiny-x", "snapshot_id": snapshot.pk, "learning_rate": 1e-3, "max_steps": 12,
        "per_device_train_batch_size": 8, "per_device_eval_batch_size": 8, "max_length": 96,
        "eval_steps": 5, "logging_steps": 2, "seed": 3, **settings,
    })
    return Job.objects.create(kind=JobKind.REWARD, config=config.as_dict(), snapshot=snapshot, status=JobStatus.RUNNING)


def checkpoint_dirs(data_dir: Path) -> set[str]:
    return {p.name for p in (data_dir / "checkpoints").iterdir()}


@pytest.fixture(scope="module")
def one_torch_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def toy_held_out() -> list[dict]:
    """16 held-out rows: the first two too long for TRL; on the "slight" ones the voters preferred the curt answer."""
    return toy_rows(16, offset=100, too_long=2, contrarian=("slight",))


@pytest.fixture
def toy_snapshot(data_dir):
    return snapshot_make(data_dir, toy_rows(48, too_long=3), toy_held_out())


def heldout_accuracy_by_scoring(location: str, rows: list[dict], *, max_length: int = 1024) -> tuple[float, dict[str, float]]:
    """Held-out accuracy recomputed with the scorer from the saved checkpoint: each side of each
    pair, fitted to ``max_length`` as training fitted it, scored on its own."""
    from training.runners.pair_tokens import pairs_prepare
    from training.runners.reward import strength_of
    from training.runners.rewards import reward_model_load, rewards_compute

    model, tokenizer = reward_model_load(location)
    pairs, counts = pairs_prepare(tokenizer, rows, max_length=max_length, checkpoint="test")
    rows = [rows[i] for i in counts.kept]
    chosen, rejected = (
        rewards_compute(model, tokenizer.pad_token_id, [getattr(pair, side) for pair in pairs], batch_size=8)
        for side in ("chosen_sequence", "rejected_sequence")
    )
    correct = [c > r for c, r in zip(chosen, rejected)]
    by = {}
    for strength in {strength_of(r) for r in rows}:
        hits = [ok for ok, row in zip(correct, rows) if strength_of(row) == strength]
        by[strength] = sum(hits) / len(hits)
    return sum(correct) / len(correct), by


# --- in process -----------------------------------------------------------------------------------


@pytest.mark.django_db
def test_a_run_registers_a_reward_checkpoint_with_lineage_metrics_and_held_out_accuracy_by_strength(
    tiny_checkpoints, toy_snapshot, data_dir, one_torch_thread
):
    from transformers import AutoConfig

    from training.runners.reward import run_reward

    job = reward_job(toy_snapshot, output_name="polite-rm")
    summary = run_reward(job, Reporter(job.pk))
    job.refresh_from_db()

    # Every pair is used: the long ones lost their prompt's start and their responses' end, and
    # the summary says how many.
    assert summary["truncated_prompt"] == summary["truncated_response"] == {"train": 3, "eval": 2}
    assert summary["filtered_identical"] == {"train": 0, "eval": 0} and "warnings" not in summary
    assert (summary["train_rows"], summary["eval_rows"]) == (48, 16)
    assert summary["steps"] == 12 and summary["checkpoint"] == "polite-rm" and not summary["cancelled"]
    assert summary["margin_used"] is True
    # The snapshot row was written by hand with no frozen votes: the human ceiling is undefined, and says why.
    assert summary["agreement_ceiling"] == {
        **summary["agreement_ceiling"], "value": None, "defined": False, "reason": "no eval comparison has two or more votes",
    }
    assert summary["train_loss"] > 0 and summary["samples_per_s"] > 0 and summary["seconds"] > 0
    # Learned: polite wins. The held-out "slight" voters disagreed, so the model is wrong there
    # (but perhaps on the one long pair among them).
    by = summary["eval_accuracy_by_strength"]
    assert by["strong"] == by["unspecified"] == 1.0 and by["clear"] >= 0.75 and by["slight"] <= 0.25
    assert summary["eval_tie_rate"] == 0.0
    assert summary["eval_accuracy"] == pytest.approx(sum(by[s] * n for s, n in zip(by, (4, 4, 4, 4))) / 16)
    assert (job.progress_done, job.progress_total) == (12, 12)

    checkpoint = Checkpoint.objects.get(name="polite-rm")
    assert checkpoint.kind == CheckpointKind.REWARD and not checkpoint.is_adapter
    assert checkpoint.parent == tiny_checkpoints["tiny-x"] and checkpoint.run == job and job.output == checkpoint
    assert job.snapshot == toy_snapshot
    meta = checkpoint.metadata
    assert meta["base"] == "tiny-x"
    assert (meta["snapshot_id"], meta["snapshot_hash"]) == (toy_snapshot.pk, toy_snapshot.content_hash)
    assert (meta["train_rows"], meta["max_length"]) == (48, 96)
    assert meta["eval_accuracy"] == summary["eval_accuracy"] and meta["eval_tie_rate"] == 0.0
    assert meta["truncated_prompt"] == {"train": 3, "eval": 2}
    assert meta["eval_accuracy_by_strength"] == summary["eval_accuracy_by_strength"]

    # A plain sequence-classification checkpoint with one output and the pad token set.
    directory = Path(checkpoint.location)
    assert directory.parent == data_dir / "checkpoints" and not directory.name.startswith(".")
    config = json.loads((directory / "config.json").read_text())
    assert config["pad_token_id"] is not None and "quantization_config" not in config
    assert config["architectures"] == ["LlamaForSequenceClassification"]
    assert AutoConfig.from_pretrained(directory).num_labels == 1
    assert not (directory / "adapter_config.json").exists()
    assert not (data_dir / "runs" / str(job.pk)).exists()

    # Metrics: training rows at each logging step, evaluation rows at steps 5, 10 and the end.
    rows = list(JobMetric.objects.filter(job=job))
    train_rows = [m for m in rows if "loss" in m.values]
    eval_rows = [m for m in rows if "eval_accuracy" in m.values]
    assert [m.step for m in train_rows] == [2, 4, 6, 8, 10, 12]
    assert all({"loss", "learning_rate", "grad_norm"} <= set(m.values) for m in train_rows)
    assert [m.step for m in eval_rows] == [5, 10, 12]
    for metric in eval_rows:
        values = metric.values
        assert values["eval_n"] == 16 and values["eval_loss"] is not None and "eval_tie_rate" in values
        assert [values[f"eval_n_{s}"] for s in ("slight", "clear", "strong", "unspecified")] == [4, 4, 4, 4]
        assert {f"eval_accuracy_{s}" for s in ("slight", "clear", "strong", "unspecified")} <= set(values)
    assert eval_rows[-1].values["eval_accuracy"] == summary["eval_accuracy"]

    # The saved model, scored one side at a time on the fitted pairs, agrees with what the trainer measured.
    accuracy, by = heldout_accuracy_by_scoring(checkpoint.location, toy_held_out(), max_length=96)
    assert accuracy == pytest.approx(summary["eval_accuracy"])
    assert by == pytest.approx(summary["eval_accuracy_by_strength"])


@pytest.mark.django_db
def test_a_lora_run_trains_the_head_in_full_and_saves_a_merged_checkpoint(tiny_checkpoints, data_dir, one_torch_thread):
    from safetensors.torch import load_file

    from training.runners.reward import run_reward

    # The opposite preference from the full fine-tune test, from the same base and seed.
    snapshot = snapshot_make(data_dir, toy_rows(48, polite_wins=False), toy_rows(16, offset=100, polite_wins=False))
    job = reward_job(snapshot, lora=True, lora_r=8, lora_alpha=16, learning_rate=3e-3, max_steps=18, eval_steps=6)
    summary = run_reward(job, Reporter(job.pk))
    assert summary["eval_accuracy"] > 0.9, summary
    checkpoint = Checkpoint.objects.get(run=job)
    assert checkpoint.name == f"tiny-x-rm-{job.pk}" and checkpoint.metadata["lora"] is True
    directory = Path(checkpoint.location)
    assert not (directory / "adapter_config.json").exists()

    weights = load_file(directory / "model.safetensors")
    assert not any("lora" in key or "base_layer" in key or "modules_to_save" in key for key in weights)
    base = load_file(data_dir / "checkpoints" / "tiny-x" / "model.safetensors")
    # The adapters were merged into the attention and MLP weights; embeddings were not trained.
    assert not torch.equal(weights["model.layers.0.self_attn.q_proj.weight"], base["model.layers.0.self_attn.q_proj.weight"])
    assert not torch.equal(weights["model.layers.1.mlp.down_proj.weight"], base["model.layers.1.mlp.down_proj.weight"])
    assert torch.equal(weights["model.embed_tokens.weight"], base["model.embed_tokens.weight"])
    assert weights["score.weight"].shape == (1, 32)

    accuracy, _ = heldout_accuracy_by_scoring(checkpoint.location, toy_rows(16, offset=100, polite_wins=False))
    assert accuracy == pytest.approx(summary["eval_accuracy"])


class StopAfter(Reporter):
    """A reporter whose job is cancelled once the run has reported ``steps`` optimiser steps."""

    def __init__(self, job_id: int, steps: int):
        super().__init__(job_id)
        self.steps, self.seen = steps, 0

    def progress(self, *, done: int, **fields) -> None:
        self.seen = max(self.seen, done)
        super().progress(done=done, **fields)

    def stop_requested(self) -> bool:
        return self.seen >= self.steps


@pytest.mark.django_db
def test_a_cancelled_run_stops_early_and_leaves_no_checkpoint_and_no_files(
    tiny_checkpoints, toy_snapshot, data_dir, one_torch_thread, monkeypatch
):
    from training.runners import reward

    monkeypatch.setattr(reward, "STOP_CHECK_INTERVAL_S", 0)
    monkeypatch.setattr(reward, "PROGRESS_INTERVAL_S", 0)
    before = checkpoint_dirs(data_dir)
    job = reward_job(toy_snapshot, max_steps=200)
    reporter = StopAfter(job.pk, steps=3)
    summary = reward.run_reward(job, reporter)
    assert reporter.halted and summary["cancelled"] and summary["checkpoint"] is None
    assert summary["steps"] == 3
    job.refresh_from_db()
    assert (job.progress_done, job.progress_total) == (3, 200)
    assert Checkpoint.objects.filter(kind=CheckpointKind.REWARD).count() == 0
    assert checkpoint_dirs(data_dir) == before
    assert not (data_dir / "runs" / str(job.pk)).exists()


@pytest.mark.django_db
def test_a_failed_registration_removes_the_written_checkpoint(tiny_checkpoints, toy_snapshot, data_dir, one_torch_thread):
    from training.runners.reward import run_reward

    before = checkpoint_dirs(data_dir)
    job = reward_job(toy_snapshot, output_name="taken-name", max_steps=2)
    # The name was free when the run was queued; someone took it meanwhile.
    checkpoint_register(name="taken-name", weights_dir="checkpoints/tiny-y")
    with pytest.raises(ValidationError, match="taken-name"):
        run_reward(job, Reporter(job.pk))
    assert checkpoint_dirs(data_dir) == before
    assert not Checkpoint.objects.filter(run=job).exists()


@pytest.mark.django_db
def test_a_snapshot_whose_pairs_are_all_identical_within_max_length_fails_with_a_readable_error(
    tiny_checkpoints, data_dir, one_torch_thread
):
    from training.runners.reward import run_reward

    rows = toy_rows(4)
    for row in rows:
        row["chosen"] = [{"role": "assistant", "content": LONG_ANSWER + "Kind end."}]
        row["rejected"] = [{"role": "assistant", "content": LONG_ANSWER + "Rude end."}]
    snapshot = snapshot_make(data_dir, rows, toy_rows(2, offset=10))
    with pytest.raises(ValueError, match=r"all 4 training pairs have the same tokens on both sides within "
                                         r"max_length=96, so there is nothing to learn from: raise max_length"):
        run_reward(reward_job(snapshot), Reporter(0))


@pytest.mark.django_db
def test_a_pair_made_identical_by_truncation_is_left_out_counted_and_warned_about(
    tiny_checkpoints, data_dir, one_torch_thread, capsys
):
    """Cut to max_length, two responses that differ only at their end are the same tokens: a
    constant loss and no gradient in training, a certain tie in evaluation. They are left out
    before TRL sees them, counted by split, and the run says so."""
    from training.runners.reward import run_reward

    def same_start(row):
        return {**row, "chosen": [{"role": "assistant", "content": LONG_ANSWER + "Kind end."}],
                "rejected": [{"role": "assistant", "content": LONG_ANSWER + "Rude end."}]}

    train = toy_rows(16)
    held_out = toy_rows(4, offset=100)
    snapshot = snapshot_make(data_dir, [same_start(train[0])] + train[1:], held_out + [same_start(held_out[0])])
    job = reward_job(snapshot, max_steps=2, output_name="identical-rm")
    summary = run_reward(job, Reporter(job.pk))

    assert summary["filtered_identical"] == {"train": 1, "eval": 1}
    assert (summary["train_rows"], summary["eval_rows"]) == (15, 4)
    assert summary["warnings"] == [
        "1 of 16 training pairs left out: chosen and rejected are the same tokens after cutting to max_length "
        "(no preference signal); raise max_length to keep them",
        "1 of 5 held-out pairs left out: chosen and rejected are the same tokens after cutting to max_length "
        "(no preference signal); raise max_length to keep them",
    ]
    assert f"warning: {summary['warnings'][0]}" in capsys.readouterr().err  # the run's log (its stderr)
    assert Checkpoint.objects.get(name="identical-rm").metadata["filtered_identical"] == {"train": 1, "eval": 1}


@pytest.mark.django_db
def test_a_base_whose_chat_template_breaks_the_prefix_rule_refuses_the_run_before_it_starts(
    tiny_checkpoints, data_dir, one_torch_thread
):
    from transformers import AutoTokenizer

    from training.runners.pair_tokens import ChatTemplatePrefixError
    from training.runners.reward import run_reward

    folder = data_dir / "checkpoints" / f"odd-template-{uuid.uuid4().hex[:8]}"
    shutil.copytree(data_dir / "checkpoints" / "tiny-x", folder)
    tokenizer = AutoTokenizer.from_pretrained(folder)
    tokenizer.chat_template = (
        "{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n{% endfor %}"
        "{% if add_generation_prompt %}<|im_start|>assistant thinking\n{% endif %}"
    )
    tokenizer.save_pretrained(folder)
    checkpoint_register(name="odd-template", weights_dir=str(folder.relative_to(data_dir)))
    snapshot = snapshot_make(data_dir, toy_rows(8), toy_rows(2, offset=10))
    job = reward_job(snapshot, base="odd-template")
    with pytest.raises(ChatTemplatePrefixError, match=r"^the chat template of checkpoint 'odd-template' renders a prompt "
                                                      r"differently when a response follows it"):
        run_reward(job, Reporter(job.pk))
    assert not JobMetric.objects.filter(job=job).exists() and not (data_dir / "runs" / str(job.pk)).exists()
    shutil.rmtree(folder)


class PhaseRecorder(Reporter):
    """A reporter that keeps each phase the run reports, in order, with the step count at the time."""

    def __init__(self, job_id: int):
        super().__init__(job_id)
        self.phases: list[tuple[str, int]] = []
        self.done = 0

    def progress(self, *, done: int, phase: str | None = None, **fields) -> None:
        self.done = done
        if phase is not None and (not self.phases or self.phases[-1][0] != phase):
            self.phases.append((phase, done))
        super().progress(done=done, phase=phase, **fields)

    def phase(self, phase: str) -> None:
        if not self.phases or self.phases[-1][0] != phase:
            self.phases.append((phase, self.done))
        super().phase(phase)


@pytest.mark.django_db
def test_a_run_reports_its_phase_through_evaluation_saving_and_registering(
    tiny_checkpoints, toy_snapshot, one_torch_thread, capsys
):
    from training.runners.reward import run_reward

    job = reward_job(toy_snapshot, max_steps=4, eval_steps=2)
    reporter = PhaseRecorder(job.pk)
    run_reward(job, reporter)
    assert reporter.phases == [
        ("training", 0), ("evaluating", 2), ("training", 2), ("evaluating", 4), ("finishing training", 4),
        ("saving checkpoint", 4), ("registering checkpoint", 4),
    ]
    job.refresh_from_db()
    assert job.phase == "registering checkpoint" and (job.progress_done, job.progress_total) == (4, 4)
    log = capsys.readouterr().err
    assert -1 < log.find("phase: saving checkpoint\n") < log.find("phase: registering checkpoint\n")
    assert "phase: evaluating" not in log  # phases that come and go all run long are not logged


@pytest.mark.django_db
def test_a_run_shorter_than_its_logging_steps_still_logs_a_loss_curve(tiny_checkpoints, toy_snapshot, one_torch_thread, capsys):
    from training.runners.reward import run_reward

    job = reward_job(toy_snapshot, max_steps=3, logging_steps=50, eval_steps=50)
    run_reward(job, Reporter(job.pk))
    assert [m.step for m in JobMetric.objects.filter(job=job) if "loss" in m.values] == [1, 2, 3]
    assert "logging every 1 step: logging_steps 50 gives fewer than 2 points over 3 steps" in capsys.readouterr().err


@pytest.mark.django_db
def test_rules_stored_beside_the_snapshot_id_do_not_stop_the_run_and_margins_can_be_left_out(
    tiny_checkpoints, toy_snapshot, one_torch_thread
):
    """``reward_run_create`` stores the rules it built the snapshot with and the snapshot's id."""
    from training.runners.reward import run_config, run_reward

    job = reward_job(toy_snapshot, max_steps=2, use_margin=False)
    job.config = {**job.config, "rules": {"min_votes": 1}}
    job.save()
    assert run_config(job).snapshot_id == toy_snapshot.pk
    summary = run_reward(job, Reporter(job.pk))
    assert summary["margin_used"] is False and summary["steps"] == 2


def test_pair_accuracy_counts_strict_wins_ties_apart_and_splits_by_strength():
    from types import SimpleNamespace

    import numpy as np

    from training.runners.reward import PairAccuracy, evaluation_values, pair_columns

    # One eval batch of 3 pairs as the collator stacks it: chosen 0..2, then rejected 0..2.
    logits = torch.tensor([[1.0], [0.5], [2.0], [0.0], [0.5], [3.0]])
    pairs = pair_columns(logits, None)
    assert pairs.tolist() == [[1.0, 0.0], [0.5, 0.5], [2.0, 3.0]]
    accuracy = PairAccuracy()
    accuracy.strengths = ["clear", "clear", "slight"]
    metrics = accuracy(SimpleNamespace(predictions=np.concatenate([pairs.numpy()])))
    # The tie (0.5, 0.5) is not a win and has its own rate.
    assert metrics == {
        "pair_accuracy": pytest.approx(1 / 3), "pair_tie_rate": pytest.approx(1 / 3), "pairs": 3,
        "pair_accuracy_clear": 0.5, "pairs_clear": 2, "pair_accuracy_slight": 0.0, "pairs_slight": 1,
    }
    values = evaluation_values({f"eval_{k}": v for k, v in metrics.items()} | {"eval_loss": 0.7, "eval_accuracy": 0.9})
    assert values["eval_accuracy"] == pytest.approx(1 / 3)  # ours, over pairs; not TRL's mean of batch means
    assert values["eval_tie_rate"] == pytest.approx(1 / 3)
    assert (values["eval_n"], values["eval_accuracy_clear"], values["eval_n_slight"], values["eval_loss"]) == (3, 0.5, 1, 0.7)
    accuracy.strengths = ["clear"]
    with pytest.raises(RuntimeError, match=r"expected \(1, 2\)"):
        accuracy(SimpleNamespace(predictions=pairs.numpy()))


# --- whole jobs (child process) -------------------------------------------------------------------


def explain(job: Job) -> str:
    log = job_log_path(job.pk)
    return f"{job.status}: {job.error}\n{job.traceback}\n{log.read_text()[-3000:] if log.exists() else ''}"


def queued_job(snapshot: DatasetSnapshot, **settings) -> Job:
    job = reward_job(snapshot, **settings)
    Job.objects.filter(pk=job.pk).update(status=JobStatus.QUEUED)
    return job


@pytest.mark.django_db(transaction=True)
def test_a_reward_run_in_a_child_process_succeeds_and_registers_its_checkpoint(tiny_checkpoints, toy_snapshot, runner_env):
    job = queued_job(toy_snapshot)
    job_supervise(job_id=job.pk)
    job.refresh_from_db()
    assert job.status == JobStatus.SUCCEEDED, explain(job)
    assert job.summary["eval_accuracy_by_strength"]["clear"] > 0.9 and job.summary["checkpoint"] == f"tiny-x-rm-{job.pk}"
    assert (job.progress_done, job.progress_total) == (12, 12) and job.tokens_per_s > 0
    checkpoint = job.output
    assert checkpoint.parent.name == "tiny-x" and checkpoint.metadata["snapshot_id"] == toy_snapshot.pk
    assert JobMetric.objects.filter(job=job, values__has_key="eval_accuracy_strong").count() == 3


def cancel_when(job_id: int, ready, timeout_s: float = 300) -> None:
    try:
        deadline = time.monotonic() + timeout_s
        job = Job.objects.get(pk=job_id)
        while time.monotonic() < deadline and not ready(job) and not job.is_finished:
            time.sleep(0.05)
            job.refresh_from_db()
        job_cancel(job=job)
    finally:
        connection.close()


@pytest.mark.django_db(transaction=True)
def test_a_reward_run_cancelled_mid_run_ends_cancelled_with_no_checkpoint_and_no_files(
    tiny_checkpoints, toy_snapshot, data_dir, runner_env
):
    before = checkpoint_dirs(data_dir)
    job = queued_job(toy_snapshot, max_steps=100_000, eval_steps=100_000)
    canceller = threading.Thread(target=cancel_when, args=(job.pk, lambda j: j.progress_done >= 2))
    canceller.start()
    try:
        job_supervise(job_id=job.pk)
    finally:
        canceller.join()
    job.refresh_from_db()
    assert job.status == JobStatus.CANCELLED, explain(job)
    assert job.error == "" and 2 <= job.progress_done < 100_000 and job.progress_total == 100_000
    assert job.summary["cancelled"] and job.summary["checkpoint"] is None
    assert job.output is None and not Checkpoint.objects.filter(kind=CheckpointKind.REWARD).exists()
    assert checkpoint_dirs(data_dir) == before
    assert not (data_dir / "runs" / str(job.pk)).exists()


@pytest.mark.django_db(transaction=True)
def test_a_corrupt_base_fails_the_run_with_a_readable_error_and_no_checkpoint(toy_snapshot, data_dir, runner_env):
    broken = data_dir / "checkpoints" / f"broken-{time.monotonic_ns()}"
    broken.mkdir(parents=True)
    for name in ("config.json", "tokenizer.json", "tokenizer_config.json"):
        (broken / name).write_bytes((data_dir / "checkpoints" / "tiny-x" / name).read_bytes())
    (broken / "model.safetensors").write_bytes(b"not a safetensors file")
    checkpoint_register(name="broken", weights_dir=str(broken.relative_to(data_dir)))
    before = checkpoint_dirs(data_dir)
    job = queued_job(toy_snapshot, base="broken")
    assert job_supervise(job_id=job.pk) == JobStatus.FAILED
    job.refresh_from_db()
    assert job.error and "\n" not in job.error.strip() and "Traceback" in job.traceback
    assert job.output is None and checkpoint_dirs(data_dir) == before
    assert not (data_dir / "runs" / str(job.pk)).exists()


def test_the_runner_registry_knows_reward_and_scoring():
    from training.runners import RUNNERS

    assert {"generation", "reward", "scoring"} <= set(RUNNERS)

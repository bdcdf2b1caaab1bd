"""The reward-model runner: TRL's ``RewardTrainer`` on a dataset snapshot, streamed to the job row.

``run_reward`` reads the job's snapshot (``train.jsonl``/``eval.jsonl``, TRL's conversational
preference format), loads the base policy as ``AutoModelForSequenceClassification`` with one
label (TRL loads it from the path: a new random ``score`` head, ``pad_token_id`` set from the
tokenizer), optionally wraps it in LoRA, and runs ``RewardTrainer`` unchanged. Around it:

- Columns: only ``prompt``/``chosen``/``rejected`` (and ``margin`` when ``use_margin`` and every
  row has one) reach TRL; ``strength`` and ``comparison_id`` stay with us.
- Length filter: TRL drops a pair when either side tokenises to more than ``max_length`` tokens.
  The summary counts what it dropped (rows in minus rows TRL kept, per split).
- Held-out accuracy: ``RewardTrainer``'s evaluation already computes each pair's two rewards.
  ``pair_columns`` (``preprocess_logits_for_metrics``) turns each eval batch's ``(2B, 1)`` logits
  (chosen half first, as TRL's collator stacks them) into ``(B, 2)``, the Trainer gathers them in
  dataset order, and ``PairAccuracy`` (``compute_metrics``; transformers calls it for
  ``RewardTrainer`` with ``label_ids=()``) counts ``chosen > rejected`` overall and by vote
  strength. No extra forward pass. Strengths are aligned to the rows TRL kept: the held-out rows
  are tokenised here as TRL tokenises them (``training.runners.rewards``), which predicts the rows
  it keeps, and TRL's kept token ids are checked against ours before training starts. (TRL's own
  ``eval_accuracy`` is a mean of per-batch means; ours is over pairs; ties count as wrong in both.)
- Streaming (``RunReporting``, main process only): ``progress(done=step, total=max_steps)`` at
  most every ``PROGRESS_INTERVAL_S``, one ``JobMetric`` row per training log (``loss``,
  ``learning_rate``, ``grad_norm``, TRL's reward statistics) and per evaluation (``eval_accuracy``,
  ``eval_accuracy_<strength>``, ``eval_n``, ``eval_n_<strength>``, ``eval_loss``, ...).
- Cancel: checked after each optimiser step (throttled); the run stops, nothing is written, the
  job ends cancelled. A crash propagates (the runner marks the job failed) and writes nothing.
- Success: the model (LoRA merged into the base) and tokenizer are written to a temporary folder
  under ``checkpoints/``, renamed into place, then registered with their lineage. A failed
  registration removes the folder.

Under ``accelerate launch`` every process trains; only the main one reports, writes and registers.
"""
from __future__ import annotations

import errno
import json
import math
import os
import shutil
import tempfile
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from accelerate import PartialState
from datasets import Dataset
from django.conf import settings
from transformers import AutoTokenizer, PreTrainedModel, PreTrainedTokenizerBase, TrainerCallback
from trl import RewardConfig as TRLRewardConfig
from trl import RewardTrainer

from feedback import interface as feedback
from training.config import RewardConfig
from training.models import Checkpoint, CheckpointKind
from training.registry import checkpoint_slug

from .progress import Reporter, Stopwatch
from .rewards import conversation_ids

PROGRESS_INTERVAL_S = 0.5  # at most two progress writes per second
STOP_CHECK_INTERVAL_S = 0.5  # at most two cancel look-ups per second
UNSPECIFIED = "unspecified"  # metric suffix for pairs whose votes carried no strength
PAIR_COLUMNS = ("prompt", "chosen", "rejected")


# --- the dataset snapshot -------------------------------------------------------------------------


@dataclass(frozen=True)
class SnapshotFiles:
    """Where a snapshot's rows are: ``train_path``/``eval_path`` are absolute JSONL paths."""

    id: int
    content_hash: str
    train_path: Path
    eval_path: Path


def snapshot_files(snapshot_id: int) -> SnapshotFiles:
    """Locate a dataset snapshot's files through ``feedback.interface.snapshot_get``.

    Raises:
        LookupError: no such snapshot.
    """
    ref = feedback.snapshot_get(snapshot_id=snapshot_id)
    return SnapshotFiles(ref.id, ref.content_hash, Path(ref.train_path), Path(ref.eval_path))


def preference_rows_read(path: Path) -> list[dict[str, Any]]:
    """The rows of a snapshot JSONL file (one JSON object a line; blank lines skipped).

    Raises:
        FileNotFoundError: the file is missing. ValueError: a line is not JSON.
    """
    with Path(path).open(encoding="utf-8") as handle:
        return [json.loads(line) for line in handle if line.strip()]


def margins_usable(rows: list[dict[str, Any]]) -> bool:
    """True when every row has a finite numeric ``margin`` (the snapshot gives it on every row or none)."""
    return bool(rows) and all(
        isinstance(row.get("margin"), (int, float)) and not isinstance(row.get("margin"), bool)
        and math.isfinite(row["margin"])
        for row in rows
    )


def trl_dataset(rows: list[dict[str, Any]], *, with_margin: bool) -> Dataset:
    """The columns TRL should see: ``prompt``, ``chosen``, ``rejected`` (+ ``margin``); others dropped."""
    columns = PAIR_COLUMNS + (("margin",) if with_margin else ())
    return Dataset.from_list([{name: row[name] for name in columns} for row in rows])


def strength_of(row: dict[str, Any]) -> str:
    """A row's vote strength as a metric suffix: ``slight``/``clear``/``strong``, or ``unspecified``."""
    return str(row.get("strength") or UNSPECIFIED)


def pair_ids(tokenizer: PreTrainedTokenizerBase, rows: list[dict[str, Any]]) -> list[tuple[list[int], list[int]]]:
    """``(chosen ids, rejected ids)`` of each row, tokenised as TRL's ``RewardTrainer`` and the scorer do."""
    return [
        (
            conversation_ids(tokenizer, row["prompt"], row["chosen"]),
            conversation_ids(tokenizer, row["prompt"], row["rejected"]),
        )
        for row in rows
    ]


def within_length(ids: list[tuple[list[int], list[int]]], max_length: int) -> list[int]:
    """Indices of the pairs TRL's ``RewardTrainer`` keeps: both sides at most ``max_length`` tokens
    (TRL 1.16 ``_prepare_dataset``: ``len(chosen_ids) <= max_length and len(rejected_ids) <= max_length``)."""
    return [i for i, (chosen, rejected) in enumerate(ids) if len(chosen) <= max_length and len(rejected) <= max_length]


# --- held-out accuracy from the trainer's own evaluation ------------------------------------------


def pair_columns(logits, labels):
    """``preprocess_logits_for_metrics`` for ``RewardTrainer``: one eval batch's rewards, shape
    ``(2B, 1)`` with the B chosen sides first (``DataCollatorForPreference`` stacks chosen then
    rejected), to ``(B, 2)`` = ``[chosen reward, rejected reward]`` per pair."""
    if isinstance(logits, (tuple, list)):
        logits = logits[0]
    chosen, rejected = logits.reshape(-1).chunk(2)
    return torch.stack((chosen, rejected), dim=1)


class PairAccuracy:
    """``compute_metrics`` for ``RewardTrainer``: pairwise accuracy over held-out pairs, overall and by strength.

    ``strengths`` must list each pair's strength in the order of ``trainer.eval_dataset`` (after
    TRL's length filter). Predictions come from ``pair_columns``: shape ``(N, 2)``.
    Returns (the Trainer prefixes ``eval_``): ``pair_accuracy`` (share of pairs with chosen
    reward > rejected reward; a tie counts as wrong), ``pairs`` (N), and per strength present
    ``pair_accuracy_<strength>``, ``pairs_<strength>``.
    """

    def __init__(self) -> None:
        self.strengths: list[str] = []

    def __call__(self, prediction) -> dict[str, float]:
        rewards = np.asarray(prediction.predictions, dtype=np.float64)
        if rewards.ndim != 2 or rewards.shape[1] != 2 or len(rewards) != len(self.strengths):
            raise RuntimeError(
                f"expected ({len(self.strengths)}, 2) pair rewards from the evaluation, got {rewards.shape}"
            )
        correct = rewards[:, 0] > rewards[:, 1]
        strengths = np.asarray(self.strengths)
        metrics = {"pair_accuracy": float(correct.mean()) if len(correct) else float("nan"), "pairs": len(correct)}
        for strength in sorted(set(self.strengths)):
            mask = strengths == strength
            metrics[f"pair_accuracy_{strength}"] = float(correct[mask].mean())
            metrics[f"pairs_{strength}"] = int(mask.sum())
        return metrics


def evaluation_values(metrics: dict[str, float]) -> dict[str, float]:
    """A ``JobMetric`` row for one evaluation: ``eval_accuracy``, ``eval_n``, ``eval_accuracy_<strength>``,
    ``eval_n_<strength>`` (from ``PairAccuracy``), plus TRL's ``eval_loss``, ``eval_margin``,
    ``eval_mean_reward`` and the evaluation's ``eval_runtime`` (seconds)."""
    values: dict[str, float] = {}
    for key, value in metrics.items():
        if key == "eval_pair_accuracy":
            values["eval_accuracy"] = value
        elif key == "eval_pairs":
            values["eval_n"] = value
        elif key.startswith("eval_pair_accuracy_"):
            values["eval_accuracy_" + key[len("eval_pair_accuracy_"):]] = value
        elif key.startswith("eval_pairs_"):
            values["eval_n_" + key[len("eval_pairs_"):]] = value
        elif key in ("eval_loss", "eval_margin", "eval_mean_reward", "eval_runtime"):
            values[key] = value
    return values


def by_strength(values: dict[str, float]) -> dict[str, float]:
    """``{strength: accuracy}`` from an ``evaluation_values`` row."""
    prefix = "eval_accuracy_"
    return {key[len(prefix):]: value for key, value in values.items() if key.startswith(prefix)}


# --- streaming to the job row ---------------------------------------------------------------------


class RunReporting(TrainerCallback):
    """Streams a run to its job and turns a cancel request into ``control.should_training_stop``.

    Progress is ``done`` = optimiser steps of ``total`` = ``state.max_steps``, written at most every
    ``PROGRESS_INTERVAL_S`` seconds (and at the last step), with tokens per second from TRL's
    ``num_tokens``. Only the main process reports; the cancel decision is the main process's,
    broadcast to the others so they all stop at the same step.
    """

    def __init__(self, reporter: Reporter, *, is_main: bool, num_processes: int):
        self.reporter, self.is_main, self.num_processes = reporter, is_main, num_processes
        self.halted = False
        self.evaluations: list[dict[str, float]] = []
        self.clock = Stopwatch()
        self._last_progress = float("-inf")
        self._last_stop_check = float("-inf")
        self._tokens: float | None = None

    def on_train_begin(self, args, state, control, **kwargs):
        self.clock = Stopwatch()
        if self.is_main:
            self.reporter.progress(done=state.global_step, total=state.max_steps)

    def on_step_end(self, args, state, control, **kwargs):
        now = time.monotonic()
        if self.is_main and (now - self._last_progress >= PROGRESS_INTERVAL_S or state.global_step >= state.max_steps):
            self.progress(state)
            self._last_progress = now
        if self._stop_asked(now):
            self.halted = True
            control.should_training_stop = True

    def progress(self, state) -> None:
        elapsed = self.clock.elapsed()
        tokens_per_s = self._tokens / elapsed if self._tokens and elapsed > 0 else None
        self.reporter.progress(done=state.global_step, total=state.max_steps, tokens_per_s=tokens_per_s)

    def _stop_asked(self, now: float) -> bool:
        asked = False
        if self.is_main and now - self._last_stop_check >= STOP_CHECK_INTERVAL_S:
            self._last_stop_check = now
            asked = self.reporter.stop_requested()
        if self.num_processes > 1:
            from accelerate.utils import broadcast_object_list

            box = [asked]
            broadcast_object_list(box, from_process=0)
            asked = bool(box[0])
        return asked

    def on_log(self, args, state, control, logs=None, **kwargs):
        """One row per training log; evaluation logs are recorded by ``on_evaluate``, the end-of-run
        totals (``train_runtime``...) go to the summary."""
        if not logs or any(key.startswith("eval_") for key in logs) or "train_runtime" in logs:
            return
        if "num_tokens" in logs:
            self._tokens = logs["num_tokens"]
        if self.is_main:
            values = {key: value for key, value in logs.items() if key != "epoch"}
            self.reporter.metric(step=state.global_step, values=values, epoch=logs.get("epoch", state.epoch))

    def on_evaluate(self, args, state, control, metrics=None, **kwargs):
        values = evaluation_values(metrics or {})
        self.evaluations.append(values)
        if self.is_main:
            self.reporter.metric(step=state.global_step, values=values, epoch=state.epoch)


# --- trainer settings -------------------------------------------------------------------------------


def trl_reward_config(config: RewardConfig, output_dir: str, *, evaluate: bool, cuda: bool) -> TRLRewardConfig:
    """TRL's ``RewardConfig`` for a run: our settings, nothing saved or pushed by the trainer.

    CPU: float32, no mixed precision, no gradient checkpointing (it only costs time there).
    CUDA: bf16 autocast where the GPU has it (else fp16), TRL's gradient checkpointing; a LoRA
    base is loaded in bf16 (the adapters and the score head stay float32, as peft makes them).
    """
    bf16 = cuda and torch.cuda.is_bf16_supported()
    base_dtype = "bfloat16" if bf16 and config.lora else "float32"
    return TRLRewardConfig(
        output_dir=output_dir, report_to="none", save_strategy="no", push_to_hub=False, disable_tqdm=True,
        learning_rate=config.learning_rate, num_train_epochs=config.num_train_epochs,
        max_steps=config.max_steps if config.max_steps is not None else -1,
        per_device_train_batch_size=config.per_device_train_batch_size,
        per_device_eval_batch_size=config.per_device_eval_batch_size,
        gradient_accumulation_steps=config.gradient_accumulation_steps,
        max_length=config.max_length, center_rewards_coefficient=config.center_rewards_coefficient,
        eval_strategy="steps" if evaluate else "no", eval_steps=config.eval_steps,
        logging_strategy="steps", logging_steps=config.logging_steps, seed=config.seed,
        bf16=bf16, fp16=cuda and not bf16, activation_checkpointing=cuda,
        # TRL's disable_dropout also zeroes LoRA's dropout; keep dropout when LoRA asks for it.
        disable_dropout=not (config.lora and config.lora_dropout > 0),
        dataloader_num_workers=0, dataloader_pin_memory=cuda,
        model_init_kwargs={"dtype": base_dtype},
    )


def lora_config(config: RewardConfig):
    """peft LoRA on every linear layer of the transformer; ``task_type`` SEQ_CLS makes peft add
    ``classifier``/``score`` to ``modules_to_save``, so the new reward head is trained in full.
    (TRL's ``disable_dropout`` would also zero LoRA's dropout, so it is off for LoRA runs with dropout.)"""
    from peft import LoraConfig, TaskType

    return LoraConfig(
        task_type=TaskType.SEQ_CLS, r=config.lora_r, lora_alpha=config.lora_alpha,
        lora_dropout=config.lora_dropout, target_modules="all-linear",
    )


def run_config(job) -> RewardConfig:
    """The run's ``RewardConfig``. A run whose snapshot was built at queue time stores both
    ``rules`` and ``snapshot_id``; the rules are then history (the snapshot fixes them), so they
    are not re-validated here."""
    data = dict(job.config)
    if data.get("snapshot_id") is not None or job.snapshot_id is not None:
        data["rules"] = {}
    return RewardConfig.from_dict(data)


# --- saving ---------------------------------------------------------------------------------------


def reward_checkpoint_write(model: PreTrainedModel, tokenizer: PreTrainedTokenizerBase, directory: Path) -> None:
    """Write a plain sequence-classification checkpoint: a peft model is merged into its base first;
    ``config.json`` carries ``pad_token_id`` and no ``quantization_config``. Files are fsynced."""
    if hasattr(model, "merge_and_unload"):
        model = model.merge_and_unload()
    model.config.pad_token_id = tokenizer.pad_token_id
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
    model.save_pretrained(directory, safe_serialization=True)
    tokenizer.save_pretrained(directory)
    for path in directory.rglob("*"):
        if path.is_file():
            with path.open("rb") as handle:
                os.fsync(handle.fileno())


def checkpoint_publish(model, tokenizer, *, name: str, job_id: int, register) -> Checkpoint:
    """Write the checkpoint to a temporary folder under ``ARBITER_DATA_DIR/checkpoints``, rename it
    into place, then ``register(weights_dir)``; the folder is removed if any step fails.

    The folder is the name's slug, or ``<slug>-run<job id>[-<random>]`` when that is taken (an older
    checkpoint's files, or another name with the same slug); an existing folder is never replaced.
    Returns: what ``register`` returns (the registered ``Checkpoint``).
    """
    parent = Path(settings.ARBITER_DATA_DIR) / "checkpoints"
    parent.mkdir(parents=True, exist_ok=True)
    slug = checkpoint_slug(name)
    tmp = Path(tempfile.mkdtemp(prefix=f".tmp-{slug}-", dir=parent))
    try:
        reward_checkpoint_write(model, tokenizer, tmp)
        final = _rename_to_free_name(tmp, parent, (slug, f"{slug}-run{job_id}", f"{slug}-run{job_id}-{uuid.uuid4().hex[:8]}"))
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    try:
        return register(str(final.relative_to(settings.ARBITER_DATA_DIR)))
    except BaseException:
        shutil.rmtree(final, ignore_errors=True)
        raise


def _rename_to_free_name(source: Path, parent: Path, names) -> Path:
    for name in names:
        target = parent / name
        if target.exists():
            continue
        try:
            os.rename(source, target)  # an empty folder that appeared meanwhile would be replaced; a full one not
            return target
        except OSError as error:
            if error.errno not in (errno.EEXIST, errno.ENOTEMPTY):
                raise
    raise FileExistsError(f"no free checkpoint folder in {parent} for {list(names)}")


# --- the runner -----------------------------------------------------------------------------------


def run_reward(job, reporter: Reporter) -> dict:
    """Train a reward model on the job's snapshot (see ``RewardConfig``); returns the job summary.

    Summary keys: ``train_rows``/``eval_rows`` (pairs used, after the length filter),
    ``filtered_too_long`` (``{"train": n, "eval": n}`` pairs TRL left out), ``margin_used``,
    ``steps``, ``epochs``, ``eval_accuracy`` (last evaluation; None without eval pairs),
    ``eval_accuracy_by_strength``, ``train_loss``, ``samples_per_s`` (pairs per second, TRL's
    ``train_samples_per_second``), ``seconds`` (whole run, wall clock), ``checkpoint`` (name, or
    None when cancelled), ``cancelled``.
    Raises:
        LookupError: no base checkpoint or snapshot. ValueError: a reward model or adapter as the
        base, no training pairs within ``max_length``. RuntimeError: TRL's held-out rows disagree
        with the scorer's tokenisation. Anything transformers/TRL raise (e.g. unreadable weights).
    """
    clock = Stopwatch()
    config = run_config(job)
    base = Checkpoint.objects.filter(name=config.base).first()
    if base is None:
        raise LookupError(f"no checkpoint named {config.base!r} (the run's base)")
    if base.kind != CheckpointKind.POLICY:
        raise ValueError(f"{base.name!r} is a {base.kind} checkpoint; a reward model starts from a policy")
    if base.is_adapter:
        raise ValueError(f"{base.name!r} is a LoRA adapter; merge it into a full checkpoint to train a reward model on it")
    snapshot_id = job.snapshot_id or config.snapshot_id
    if snapshot_id is None:
        raise LookupError("the run has no dataset snapshot")
    snapshot = snapshot_files(snapshot_id)
    train_rows = preference_rows_read(snapshot.train_path)
    eval_rows = preference_rows_read(snapshot.eval_path)
    if not train_rows:
        raise ValueError(f"snapshot {snapshot.id} has no training pairs")

    state = PartialState()
    cuda = torch.cuda.is_available()
    tokenizer = AutoTokenizer.from_pretrained(base.location)
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    with_margin = config.use_margin and margins_usable(train_rows + eval_rows)
    eval_ids = pair_ids(tokenizer, eval_rows)
    kept_eval = within_length(eval_ids, config.max_length)
    accuracy = PairAccuracy()
    accuracy.strengths = [strength_of(eval_rows[i]) for i in kept_eval]
    reporting = RunReporting(reporter, is_main=state.is_main_process, num_processes=state.num_processes)

    run_dir = Path(settings.ARBITER_DATA_DIR) / "runs" / str(job.pk)
    run_dir.mkdir(parents=True, exist_ok=True)
    try:
        with tempfile.TemporaryDirectory(prefix="trainer-", dir=run_dir) as output_dir:
            trainer = RewardTrainer(
                model=base.location,
                args=trl_reward_config(config, output_dir, evaluate=bool(kept_eval), cuda=cuda),
                train_dataset=trl_dataset(train_rows, with_margin=with_margin),
                eval_dataset=trl_dataset(eval_rows, with_margin=with_margin) if kept_eval else None,
                processing_class=tokenizer,
                compute_metrics=accuracy if kept_eval else None,
                preprocess_logits_for_metrics=pair_columns if kept_eval else None,
                callbacks=[reporting],
                peft_config=lora_config(config) if config.lora else None,
            )
            used_train = len(trainer.train_dataset)
            if used_train == 0:
                raise ValueError(
                    f"all {len(train_rows)} training pairs are longer than max_length={config.max_length} tokens"
                )
            if kept_eval:
                _check_eval_rows(trainer.eval_dataset, [eval_ids[i] for i in kept_eval])
            result = trainer.train()
    finally:
        if state.is_main_process:
            shutil.rmtree(run_dir, ignore_errors=True)

    last = reporting.evaluations[-1] if reporting.evaluations else {}
    summary = {
        "train_rows": used_train, "eval_rows": len(kept_eval),
        "filtered_too_long": {"train": len(train_rows) - used_train, "eval": len(eval_rows) - len(kept_eval)},
        "margin_used": with_margin,
        "steps": trainer.state.global_step, "epochs": round(trainer.state.epoch or 0.0, 4),
        "eval_accuracy": last.get("eval_accuracy"), "eval_accuracy_by_strength": by_strength(last),
        "train_loss": _finite(result.training_loss),
        "samples_per_s": _finite(result.metrics.get("train_samples_per_second")),
        "checkpoint": None, "cancelled": reporting.halted,
    }
    if reporting.halted:
        reporter.halted = True
        summary["seconds"] = round(clock.elapsed(), 3)
        return summary
    if not state.is_main_process:
        return summary

    reporting.progress(trainer.state)
    name = config.output_name or f"{base.name}-rm-{job.pk}"
    metadata = {
        "base": base.name, "snapshot_id": snapshot.id, "snapshot_hash": snapshot.content_hash,
        "eval_accuracy": summary["eval_accuracy"], "eval_accuracy_by_strength": summary["eval_accuracy_by_strength"],
        "eval_rows": len(kept_eval), "train_rows": used_train, "max_length": config.max_length,
        "lora": config.lora, "steps": summary["steps"],
    }

    def register(weights_dir: str) -> Checkpoint:
        from training.services import checkpoint_register

        return checkpoint_register(
            name=name, kind=CheckpointKind.REWARD, weights_dir=weights_dir, parent=base, metadata=metadata, run=job,
        )

    checkpoint = checkpoint_publish(trainer.model, tokenizer, name=name, job_id=job.pk, register=register)
    summary["checkpoint"] = checkpoint.name
    summary["seconds"] = round(clock.elapsed(), 3)
    return summary


def _finite(value) -> float | None:
    """A number for a JSON summary: None for a missing or non-finite value (a diverged loss)."""
    return float(value) if isinstance(value, (int, float)) and math.isfinite(value) else None


def _check_eval_rows(kept_dataset: Dataset, expected: list[tuple[list[int], list[int]]]) -> None:
    """The held-out rows TRL kept must be the ones ``within_length`` predicted, with the token ids
    ``conversation_ids`` gives: accuracy by strength depends on that alignment, and scoring
    depends on tokenising as training did.

    Raises:
        RuntimeError: they differ (a TRL upgrade changed its tokenisation or its filter).
    """
    if len(kept_dataset) != len(expected):
        raise RuntimeError(
            f"TRL kept {len(kept_dataset)} held-out pairs; the scorer's tokenisation predicts {len(expected)}"
        )
    kept = zip(kept_dataset["chosen_ids"], kept_dataset["rejected_ids"])
    for (chosen, rejected), (kept_chosen, kept_rejected) in zip(expected, kept):
        if list(kept_chosen) != chosen or list(kept_rejected) != rejected:
            raise RuntimeError("TRL tokenised a held-out pair differently from the scorer (training.runners.rewards)")

"""The reward-model runner: TRL's ``RewardTrainer`` on a dataset snapshot, streamed to the job row.

``run_reward`` reads the job's snapshot (``train.jsonl``/``eval.jsonl``, TRL's conversational
preference format), loads the base policy as ``AutoModelForSequenceClassification`` with one
label (TRL loads it from the path: a new random ``score`` head, ``pad_token_id`` set from the
tokenizer), optionally wraps it in LoRA (peft's ``SEQ_CLS`` task adds ``score`` to
``modules_to_save``, so the new head trains in full), and runs ``RewardTrainer`` unchanged. QLoRA
(``quantization="4bit"``, CUDA only; refused elsewhere before anything is loaded,
``gpu.gpu_options_require``): the base is loaded here in 4-bit NF4 and prepared for k-bit training
(``gpu.qlora_base_load``), then handed to TRL with the same LoRA. Around it:

- Rows: tokenised and fitted here (``pair_tokens.pairs_prepare``: TRL's tokenisation, the prompt's
  start cut first, then the responses' end, so every side fits ``max_length``; pairs identical
  after that left out), and handed to TRL as ``chosen_ids``/``rejected_ids`` (+ ``margin`` when
  ``use_margin`` and every row has one). TRL skips its own tokenisation for such rows, and its
  length filter finds nothing to drop (checked: a run stops if it did). Every pair is used; the
  summary counts what was cut or left out, per split. A chat template that renders a prompt
  differently when a response follows refuses the run before it starts.
- Held-out accuracy: ``RewardTrainer``'s evaluation already computes each pair's two rewards.
  ``pair_columns`` (``preprocess_logits_for_metrics``) turns each eval batch's ``(2B, 1)`` logits
  (chosen half first, as TRL's collator stacks them) into ``(B, 2)``, the Trainer gathers them in
  dataset order, and ``PairAccuracy`` (``compute_metrics``; transformers calls it for
  ``RewardTrainer`` with ``label_ids=()``) counts strict wins (``chosen > rejected``) overall and
  by vote strength, and ties (equal rewards) as their own rate. No extra forward pass. (TRL's own
  ``eval_accuracy`` is a mean of per-batch means and counts ties as wrong; ours is over pairs.)
- Streaming (``reporting.RunReporting``, main process only): ``progress(done=step, total=max_steps)`` at
  most every ``PROGRESS_INTERVAL_S``, one ``JobMetric`` row per training log (``loss``,
  ``learning_rate``, ``grad_norm``, TRL's reward statistics) and per evaluation (``eval_accuracy``,
  ``eval_tie_rate``, ``eval_accuracy_<strength>``, ``eval_n``, ``eval_n_<strength>``, ``eval_loss``, ...).
- Cancel: checked after each optimiser step (throttled); the run stops, nothing is written, the
  job ends cancelled. A crash propagates (the runner marks the job failed) and writes nothing.
- Success: the model (LoRA merged into the base) and tokenizer are written to a temporary folder
  under ``checkpoints/``, renamed into place, then registered with their lineage. A failed
  registration removes the folder (``publish.checkpoint_publish``). A QLoRA run's adapter and head
  are merged into the base loaded again in 16 bits, and a ZeRO-3 run's shards are gathered first
  (``gathered.trained_model``), so every reward checkpoint is a plain one the scorer loads.

Under ``accelerate launch`` every process trains; only the main one reports, writes and registers.
"""
from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch
from datasets import Dataset
from transformers import AutoModelForSequenceClassification
from trl import RewardConfig as TRLRewardConfig
from trl import RewardTrainer

from feedback import interface as feedback
from training.config import RewardConfig
from training.models import Checkpoint, CheckpointKind

from .gathered import trained_model
from .gpu import gpu_options_require, qlora_base_load
from .lora import disable_dropout, lora_config
from .pair_tokens import PairIds, pair_outcomes, split_counts, splits_prepare
from .policy_training import process_roles, run_directory, run_snapshot
from .progress import Reporter, Stopwatch
from .publish import checkpoint_publish
from .reporting import PROGRESS_INTERVAL_S, STOP_CHECK_INTERVAL_S, RunReporting, data_warnings
from .rewards import reward_tokenizer
from .snapshot_rows import rows_read

UNSPECIFIED = "unspecified"  # metric suffix for pairs whose votes carried no strength


# --- the dataset snapshot's rows -----------------------------------------------------------------


def margins_usable(rows: list[dict[str, Any]]) -> bool:
    """True when every row has a finite numeric ``margin`` (the snapshot gives it on every row or none)."""
    return bool(rows) and all(
        isinstance(row.get("margin"), (int, float)) and not isinstance(row.get("margin"), bool)
        and math.isfinite(row["margin"])
        for row in rows
    )


def trl_dataset(pairs: list[PairIds], margins: list[float] | None) -> Dataset:
    """What TRL sees: ``chosen_ids``/``rejected_ids`` (prompt + response ids, already fitted to
    ``max_length``) and, when given, ``margin``; ``RewardTrainer`` tokenises nothing again."""
    columns: dict[str, list] = {
        "chosen_ids": [pair.chosen_sequence for pair in pairs],
        "rejected_ids": [pair.rejected_sequence for pair in pairs],
    }
    if margins is not None:
        columns["margin"] = [float(margin) for margin in margins]
    return Dataset.from_dict(columns)


def strength_of(row: dict[str, Any]) -> str:
    """A row's vote strength as a metric suffix: ``slight``/``clear``/``strong``, or ``unspecified``."""
    return str(row.get("strength") or UNSPECIFIED)


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

    ``strengths`` must list each pair's strength in the order of ``trainer.eval_dataset``.
    Predictions come from ``pair_columns``: shape ``(N, 2)``.
    Returns (the Trainer prefixes ``eval_``): ``pair_accuracy`` (share of pairs with chosen
    reward > rejected reward: strict wins), ``pair_tie_rate`` (share with equal rewards), ``pairs``
    (N), and per strength present ``pair_accuracy_<strength>``, ``pairs_<strength>``.
    """

    def __init__(self) -> None:
        self.strengths: list[str] = []

    def __call__(self, prediction) -> dict[str, float]:
        rewards = np.asarray(prediction.predictions, dtype=np.float64)
        if rewards.ndim != 2 or rewards.shape[1] != 2 or len(rewards) != len(self.strengths):
            raise RuntimeError(
                f"expected ({len(self.strengths)}, 2) pair rewards from the evaluation, got {rewards.shape}"
            )
        overall = pair_outcomes(rewards)
        strengths = np.asarray(self.strengths)
        metrics = {"pair_accuracy": overall["accuracy"], "pair_tie_rate": overall["tie_rate"], "pairs": overall["n"]}
        for strength in sorted(set(self.strengths)):
            mask = strengths == strength
            metrics[f"pair_accuracy_{strength}"] = pair_outcomes(rewards[mask])["accuracy"]
            metrics[f"pairs_{strength}"] = int(mask.sum())
        return metrics


def evaluation_values(metrics: dict[str, float]) -> dict[str, float]:
    """A ``JobMetric`` row for one evaluation: ``eval_accuracy`` (strict wins), ``eval_tie_rate``,
    ``eval_n``, ``eval_accuracy_<strength>``, ``eval_n_<strength>`` (from ``PairAccuracy``), plus
    TRL's ``eval_loss``, ``eval_margin``, ``eval_mean_reward`` and ``eval_runtime`` (seconds)."""
    values: dict[str, float] = {}
    for key, value in metrics.items():
        if key == "eval_pair_accuracy":
            values["eval_accuracy"] = value
        elif key == "eval_pair_tie_rate":
            values["eval_tie_rate"] = value
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


# --- trainer settings -------------------------------------------------------------------------------


def trl_reward_config(config: RewardConfig, output_dir: str, *, evaluate: bool, cuda: bool) -> TRLRewardConfig:
    """TRL's ``RewardConfig`` for a run: our settings, nothing saved or pushed by the trainer.

    CPU: float32, no mixed precision; activation (gradient) checkpointing when
    ``config.activation_checkpointing`` (it recomputes each layer's activations in the backward
    pass: less peak memory for about a third more compute). CUDA: bf16 autocast where the GPU has it
    (else fp16), activation checkpointing always; a LoRA base is loaded in bf16 (the adapters and
    the score head stay float32, as peft makes them). QLoRA: no ``model_init_kwargs``, as the
    runner loads the 4-bit base itself (``gpu.qlora_base_load``). The learning rate follows
    ``config.lr_scheduler_type`` after ``config.warmup_ratio`` of the steps.
    """
    bf16 = cuda and torch.cuda.is_bf16_supported()
    base_dtype = "bfloat16" if bf16 and config.lora else "float32"
    return TRLRewardConfig(
        use_cpu=not cuda,  # on CPUs under torchrun, what makes transformers set up data parallelism (gloo)
        output_dir=output_dir, report_to="none", save_strategy="no", push_to_hub=False, disable_tqdm=True,
        learning_rate=config.learning_rate, num_train_epochs=config.num_train_epochs,
        lr_scheduler_type=config.lr_scheduler_type, warmup_steps=float(config.warmup_ratio),  # a float < 1: a share of the steps
        max_steps=config.max_steps if config.max_steps is not None else -1,
        per_device_train_batch_size=config.per_device_train_batch_size,
        per_device_eval_batch_size=config.per_device_eval_batch_size,
        gradient_accumulation_steps=config.gradient_accumulation_steps,
        max_length=config.max_length, center_rewards_coefficient=config.center_rewards_coefficient,
        eval_strategy="steps" if evaluate else "no", eval_steps=config.eval_steps,
        logging_strategy="steps", logging_steps=config.logging_steps, seed=config.seed,
        bf16=bf16, fp16=cuda and not bf16, activation_checkpointing=cuda or config.activation_checkpointing,
        disable_dropout=disable_dropout(config),
        dataloader_num_workers=0, dataloader_pin_memory=cuda,
        model_init_kwargs=None if config.quantization else {"dtype": base_dtype},
    )


def run_config(job) -> RewardConfig:
    """The run's ``RewardConfig``. A run whose snapshot was built at queue time stores both
    ``rules`` and ``snapshot_id``; the rules are then history (the snapshot fixes them), so they
    are not re-validated here."""
    data = dict(job.config)
    if data.get("snapshot_id") is not None or job.snapshot_id is not None:
        data["rules"] = {}
    return RewardConfig.from_dict(data)


# --- the runner -----------------------------------------------------------------------------------


def run_reward(job, reporter: Reporter) -> dict:
    """Train a reward model on the job's snapshot (see ``RewardConfig``); returns the job summary.

    Summary keys: ``train_rows``/``eval_rows`` (pairs used), ``truncated_prompt``,
    ``truncated_response``, ``filtered_identical`` (each ``{"train": n, "eval": n}``: pairs whose
    prompt lost its start, whose responses lost their end, and pairs left out as token-identical
    after that; see ``pair_tokens``), ``margin_used``, ``steps``, ``epochs``, ``eval_accuracy``
    (last evaluation, strict wins over every held-out pair used; None without eval pairs),
    ``eval_tie_rate`` (share of held-out pairs with equal rewards), ``eval_accuracy_by_strength``,
    ``train_loss``, ``samples_per_s`` (pairs per second, TRL's ``train_samples_per_second``),
    ``seconds`` (whole run, wall clock), ``checkpoint`` (name, or None when cancelled),
    ``cancelled``; ``agreement_ceiling`` (``feedback.interface.agreement_ceiling`` on the held-out
    comparisons kept: how often an annotator agrees with the others' majority, for reading
    ``eval_accuracy`` against); ``warnings`` (present when there are any): what a library warned about the data
    while it was prepared, and pairs left out, also written to the run's log.
    Raises:
        LookupError: no base checkpoint or snapshot. ValueError: a reward model or adapter as the
        base, no training pairs left (every one identical after fitting), a chat template that
        breaks the prompt-prefix rule (``pair_tokens.ChatTemplatePrefixError``). RuntimeError: TRL
        left out pairs that were fitted to ``max_length``. Anything transformers/TRL raise.
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
    snapshot = run_snapshot(job, config)
    train_rows = rows_read(snapshot.train_path)
    eval_rows = rows_read(snapshot.eval_path)
    if not train_rows:
        raise ValueError(f"snapshot {snapshot.id} has no training pairs")

    cuda = torch.cuda.is_available()
    gpu_options_require(config, cuda=cuda)  # before the model is loaded: one readable line
    warnings: list[str] = []
    with data_warnings(warnings):
        tokenizer = reward_tokenizer(base.location)  # its pad token: one the chat template never writes
        fitted = splits_prepare(
            tokenizer, train_rows, eval_rows, max_length=config.max_length, checkpoint=base.name, warnings=warnings
        )
    train_pairs, train_counts = fitted.train, fitted.train_counts
    eval_pairs, eval_counts = fitted.held_out, fitted.held_out_counts
    for line in warnings:
        reporter.warn(line)
    kept_train = [train_rows[i] for i in train_counts.kept]
    kept_eval = [eval_rows[i] for i in eval_counts.kept]
    with_margin = config.use_margin and margins_usable(kept_train + kept_eval)
    accuracy = PairAccuracy()
    accuracy.strengths = [strength_of(row) for row in kept_eval]
    evaluate = bool(eval_pairs)

    with run_directory(job.pk) as output_dir:
        args = trl_reward_config(config, output_dir, evaluate=evaluate, cuda=cuda)
        is_main, num_processes = process_roles(args)
        reporting = RunReporting(
            reporter, is_main=is_main, num_processes=num_processes, eval_values=evaluation_values,
            progress_interval_s=PROGRESS_INTERVAL_S, stop_check_interval_s=STOP_CHECK_INTERVAL_S,
        )
        margins = (lambda rows: [row["margin"] for row in rows]) if with_margin else (lambda rows: None)
        model = base.location  # TRL loads it (a new random score head); QLoRA: loaded here in 4-bit
        if config.quantization:
            model = qlora_base_load(base.location, config, args, auto_class=AutoModelForSequenceClassification, num_labels=1)
        with data_warnings(warnings):
            trainer = RewardTrainer(
                model=model,
                args=args,
                train_dataset=trl_dataset(train_pairs, margins(kept_train)),
                eval_dataset=trl_dataset(eval_pairs, margins(kept_eval)) if evaluate else None,
                processing_class=tokenizer,
                compute_metrics=accuracy if evaluate else None,
                preprocess_logits_for_metrics=pair_columns if evaluate else None,
                callbacks=[reporting],
                peft_config=lora_config(config, task_type="SEQ_CLS") if config.lora else None,
            )
        _check_nothing_dropped(trainer, len(train_pairs), len(eval_pairs) if evaluate else 0)
        result = trainer.train()
        finished = None if reporting.halted else trained_model(  # every process: under ZeRO-3 a gather
            trainer, auto_class=AutoModelForSequenceClassification, base_location=base.location,
            scratch=f"{output_dir}/trained", is_main=is_main, merge=True, num_labels=1,
        )

    last = reporting.evaluations[-1] if reporting.evaluations else {}
    summary = {
        "train_rows": len(train_pairs), "eval_rows": len(eval_pairs),
        **split_counts(train_counts, eval_counts),
        "margin_used": with_margin,
        "steps": trainer.state.global_step, "epochs": round(trainer.state.epoch or 0.0, 4),
        "eval_accuracy": _finite(last.get("eval_accuracy")), "eval_tie_rate": _finite(last.get("eval_tie_rate")),
        "eval_accuracy_by_strength": by_strength(last),
        "train_loss": _finite(result.training_loss),
        "samples_per_s": _finite(result.metrics.get("train_samples_per_second")),
        "checkpoint": None, "cancelled": reporting.halted,
    }
    if is_main:  # the human agreement ceiling on the same held-out comparisons, from the snapshot's frozen votes
        summary["agreement_ceiling"] = feedback.agreement_ceiling(
            snapshot_id=snapshot.id, comparison_ids=[row.get("comparison_id") for row in kept_eval]
        )
    if warnings:
        summary["warnings"] = warnings
    if reporting.halted:
        reporter.halted = True
        summary["seconds"] = round(clock.elapsed(), 3)
        return summary
    if not is_main:
        return summary

    reporting.progress(trainer.state)
    name = config.output_name or f"{base.name}-rm-{job.pk}"
    metadata = {
        "base": base.name, "snapshot_id": snapshot.id, "snapshot_hash": snapshot.content_hash,
        "eval_accuracy": summary["eval_accuracy"], "eval_tie_rate": summary["eval_tie_rate"],
        "eval_accuracy_by_strength": summary["eval_accuracy_by_strength"],
        "eval_rows": len(eval_pairs), "train_rows": len(train_pairs), "max_length": config.max_length,
        "truncated_prompt": summary["truncated_prompt"], "truncated_response": summary["truncated_response"],
        "filtered_identical": summary["filtered_identical"],
        "lora": config.lora, "quantization": config.quantization, "steps": summary["steps"],
    }

    def register(weights_dir: str) -> Checkpoint:
        from training.services import checkpoint_register

        return checkpoint_register(
            name=name, kind=CheckpointKind.REWARD, weights_dir=weights_dir, parent=base, metadata=metadata, run=job,
        )

    checkpoint = checkpoint_publish(
        finished, tokenizer, name=name, job_id=job.pk, register=register, on_phase=reporter.phase
    )
    summary["checkpoint"] = checkpoint.name
    summary["seconds"] = round(clock.elapsed(), 3)
    return summary


def _finite(value) -> float | None:
    """A number for a JSON summary: None for a missing or non-finite value (a diverged loss)."""
    return float(value) if isinstance(value, (int, float)) and math.isfinite(value) else None


def _check_nothing_dropped(trainer, train: int, held_out: int) -> None:
    """TRL must keep every fitted pair (its length filter has nothing to drop).

    Raises:
        RuntimeError: it kept fewer (a TRL upgrade changed its filter): the run would train on
            other rows than the summary reports.
    """
    kept_train = len(trainer.train_dataset)
    kept_eval = len(trainer.eval_dataset) if trainer.eval_dataset is not None else 0
    if (kept_train, kept_eval) != (train, held_out):
        raise RuntimeError(
            f"TRL kept {kept_train} of {train} training and {kept_eval} of {held_out} held-out pairs already "
            f"fitted to max_length; refusing to train on other rows than the summary reports"
        )

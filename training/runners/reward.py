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
- Streaming (``reporting.RunReporting``, main process only): ``progress(done=step, total=max_steps)`` at
  most every ``PROGRESS_INTERVAL_S``, one ``JobMetric`` row per training log (``loss``,
  ``learning_rate``, ``grad_norm``, TRL's reward statistics) and per evaluation (``eval_accuracy``,
  ``eval_accuracy_<strength>``, ``eval_n``, ``eval_n_<strength>``, ``eval_loss``, ...).
- Cancel: checked after each optimiser step (throttled); the run stops, nothing is written, the
  job ends cancelled. A crash propagates (the runner marks the job failed) and writes nothing.
- Success: the model (LoRA merged into the base) and tokenizer are written to a temporary folder
  under ``checkpoints/``, renamed into place, then registered with their lineage. A failed
  registration removes the folder (``publish.checkpoint_publish``).

Under ``accelerate launch`` every process trains; only the main one reports, writes and registers.
"""
from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch
from datasets import Dataset
from transformers import PreTrainedTokenizerBase
from trl import RewardConfig as TRLRewardConfig
from trl import RewardTrainer

from training.config import RewardConfig
from training.models import Checkpoint, CheckpointKind

from .lora import disable_dropout, lora_config
from .policy_training import process_roles, run_directory, run_snapshot
from .progress import Phase, Reporter, Stopwatch
from .publish import checkpoint_publish
from .reporting import PROGRESS_INTERVAL_S, STOP_CHECK_INTERVAL_S, RunReporting
from .rewards import conversation_ids, reward_tokenizer, rewards_compute
from .snapshot_rows import columns_keep, rows_read

UNSPECIFIED = "unspecified"  # metric suffix for pairs whose votes carried no strength
PAIR_COLUMNS = ("prompt", "chosen", "rejected")


# --- the dataset snapshot's rows -----------------------------------------------------------------


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
    return Dataset.from_list(columns_keep(rows, columns))


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
        use_cpu=not cuda,  # on CPUs under torchrun, what makes transformers set up data parallelism (gloo)
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
        disable_dropout=disable_dropout(config),
        dataloader_num_workers=0, dataloader_pin_memory=cuda,
        model_init_kwargs={"dtype": base_dtype},
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

    Summary keys: ``train_rows``/``eval_rows`` (pairs used, after the length filter),
    ``filtered_too_long`` (``{"train": n, "eval": n}`` pairs TRL left out), ``margin_used``,
    ``steps``, ``epochs``, ``eval_accuracy`` (last evaluation; None without eval pairs),
    ``eval_accuracy_by_strength``, ``eval_accuracy_all``/``eval_rows_all`` (every held-out pair, those
    over ``max_length`` cut to their last ``max_length`` tokens; see ``heldout_accuracy_all``),
    ``train_loss``, ``samples_per_s`` (pairs per second, TRL's
    ``train_samples_per_second``), ``seconds`` (whole run, wall clock), ``checkpoint`` (name, or
    None when cancelled), ``cancelled``. When TRL kept no held-out pair (all longer than
    ``max_length``), ``eval_accuracy`` is ``eval_accuracy_all`` and ``eval_accuracy_note`` says so;
    ``warnings`` (present when there are any) lists such lines, also written to the run's log.
    Raises:
        LookupError: no base checkpoint or snapshot. ValueError: a reward model or adapter as the
        base, no training pairs within ``max_length`` (the message names the length needed). RuntimeError: TRL's held-out rows disagree
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
    snapshot = run_snapshot(job, config)
    train_rows = rows_read(snapshot.train_path)
    eval_rows = rows_read(snapshot.eval_path)
    if not train_rows:
        raise ValueError(f"snapshot {snapshot.id} has no training pairs")

    cuda = torch.cuda.is_available()
    tokenizer = reward_tokenizer(base.location)  # its pad token: one the chat template never writes
    with_margin = config.use_margin and margins_usable(train_rows + eval_rows)
    eval_ids = pair_ids(tokenizer, eval_rows)
    kept_eval = within_length(eval_ids, config.max_length)
    accuracy = PairAccuracy()
    accuracy.strengths = [strength_of(eval_rows[i]) for i in kept_eval]
    warnings = []
    if eval_rows and not kept_eval:
        warnings.append(all_held_out_too_long(len(eval_rows), config.max_length))
        reporter.warn(warnings[-1])

    with run_directory(job.pk) as output_dir:
        args = trl_reward_config(config, output_dir, evaluate=bool(kept_eval), cuda=cuda)
        is_main, num_processes = process_roles(args)
        reporting = RunReporting(
            reporter, is_main=is_main, num_processes=num_processes, eval_values=evaluation_values,
            progress_interval_s=PROGRESS_INTERVAL_S, stop_check_interval_s=STOP_CHECK_INTERVAL_S,
        )
        trainer = RewardTrainer(
            model=base.location,
            args=args,
            train_dataset=trl_dataset(train_rows, with_margin=with_margin),
            eval_dataset=trl_dataset(eval_rows, with_margin=with_margin) if kept_eval else None,
            processing_class=tokenizer,
            compute_metrics=accuracy if kept_eval else None,
            preprocess_logits_for_metrics=pair_columns if kept_eval else None,
            callbacks=[reporting],
            peft_config=lora_config(config, task_type="SEQ_CLS") if config.lora else None,
        )
        used_train = len(trainer.train_dataset)
        if used_train == 0:
            raise ValueError(all_train_too_long(tokenizer, train_rows, config.max_length))
        if kept_eval:
            _check_eval_rows(trainer.eval_dataset, [eval_ids[i] for i in kept_eval])
        result = trainer.train()

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
    if warnings:
        summary["warnings"] = warnings
    if reporting.halted:
        reporter.halted = True
        summary["seconds"] = round(clock.elapsed(), 3)
        return summary
    if not is_main:
        return summary

    reporting.progress(trainer.state)
    if len(kept_eval) < len(eval_rows):
        reporter.phase(Phase.SCORING_LONG_PAIRS)
    summary.update(heldout_accuracy_all(
        trainer.model, tokenizer, eval_ids, kept_eval, summary["eval_accuracy"], max_length=config.max_length,
        batch_size=config.per_device_eval_batch_size,
    ))
    if eval_rows and not kept_eval:
        # TRL evaluated nothing: the run's accuracy is the one over every pair, cut to max_length,
        # said so beside it, and drawn as one point on the accuracy chart.
        summary["eval_accuracy"] = summary["eval_accuracy_all"]
        summary["eval_accuracy_note"] = warnings[0]
        reporter.metric(
            step=trainer.state.global_step, epoch=trainer.state.epoch,
            values={"eval_accuracy_all": summary["eval_accuracy_all"], "eval_n_all": summary["eval_rows_all"]},
        )
    name = config.output_name or f"{base.name}-rm-{job.pk}"
    metadata = {
        "base": base.name, "snapshot_id": snapshot.id, "snapshot_hash": snapshot.content_hash,
        "eval_accuracy": summary["eval_accuracy"], "eval_accuracy_by_strength": summary["eval_accuracy_by_strength"],
        **({"eval_accuracy_note": summary["eval_accuracy_note"]} if "eval_accuracy_note" in summary else {}),
        "eval_accuracy_all": summary.get("eval_accuracy_all"), "eval_rows_all": summary.get("eval_rows_all"),
        "eval_rows": len(kept_eval), "train_rows": used_train, "max_length": config.max_length,
        "lora": config.lora, "steps": summary["steps"],
    }

    def register(weights_dir: str) -> Checkpoint:
        from training.services import checkpoint_register

        return checkpoint_register(
            name=name, kind=CheckpointKind.REWARD, weights_dir=weights_dir, parent=base, metadata=metadata, run=job,
        )

    checkpoint = checkpoint_publish(
        trainer.model, tokenizer, name=name, job_id=job.pk, register=register, on_phase=reporter.phase
    )
    summary["checkpoint"] = checkpoint.name
    summary["seconds"] = round(clock.elapsed(), 3)
    return summary


def all_held_out_too_long(count: int, max_length: int) -> str:
    """The warning (log line, summary ``warnings`` and ``eval_accuracy_note``) of a run whose every
    held-out pair is longer than ``max_length`` tokens, so TRL evaluated none of them."""
    return (
        f"all {count} held-out pairs are longer than max_length {max_length}; accuracy is measured on them "
        f"cut to their last {max_length} tokens; raise max_length"
    )


def all_train_too_long(tokenizer, rows: list[dict[str, Any]], max_length: int) -> str:
    """Why a run has nothing to train on: every training pair has a side over ``max_length``
    tokens (TRL's filter), with the shortest such pair's length, so the fix is a number."""
    shortest = min(max(len(chosen), len(rejected)) for chosen, rejected in pair_ids(tokenizer, rows))
    return (
        f"all {len(rows)} training pairs are longer than max_length={max_length} tokens (the shortest is "
        f"{shortest} tokens), so TRL's RewardTrainer dropped every one: raise max_length to at least {shortest}"
    )


def heldout_accuracy_all(
    model, tokenizer, eval_ids: list[tuple[list[int], list[int]]], kept: list[int], kept_accuracy: float | None,
    *, max_length: int, batch_size: int,
) -> dict[str, float | int | None]:
    """Pairwise accuracy over *every* held-out pair, not only those TRL kept.

    TRL leaves out pairs longer than ``max_length`` tokens; here those pairs are scored too, each
    side cut to its last ``max_length`` tokens (the start of the prompt goes, the response stays),
    and counted with the kept pairs' accuracy. A tie counts as wrong, as in TRL.
    Returns: ``{"eval_accuracy_all": float | None, "eval_rows_all": int}``.
    """
    kept_set = set(kept)
    left_out = [i for i in range(len(eval_ids)) if i not in kept_set]
    if not eval_ids:
        return {"eval_accuracy_all": None, "eval_rows_all": 0}
    correct = (kept_accuracy or 0.0) * len(kept)
    if left_out:
        was_training = model.training
        model.eval()
        sequences = [side[-max_length:] for i in left_out for side in eval_ids[i]]
        rewards = rewards_compute(model, tokenizer.pad_token_id, sequences, batch_size=batch_size)
        model.train(was_training)
        correct += sum(1 for j in range(len(left_out)) if rewards[2 * j] > rewards[2 * j + 1])
    return {"eval_accuracy_all": round(correct / len(eval_ids), 6), "eval_rows_all": len(eval_ids)}


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

"""The DPO runner: TRL's ``DPOTrainer`` on a preference snapshot, streamed to the job row.

Direct Preference Optimisation (Rafailov et al. 2023, "Direct Preference Optimization: Your
Language Model is Secretly a Reward Model") trains the policy directly on chosen/rejected pairs:
``loss = -log σ(β·[(log π(y_w|x) - log π_ref(y_w|x)) - (log π(y_l|x) - log π_ref(y_l|x))])`` for
``loss_type="sigmoid"`` (TRL 1.16 also offers ``ipo``, ``hinge``, ``robust``). ``run_dpo`` feeds
``DPOTrainer`` unchanged:

- Rows: the snapshot's ``prompt``/``chosen``/``rejected`` message lists (TRL's conversational
  format with an explicit prompt); ``margin``, ``strength`` and ``comparison_id`` stay with us.
- Reference model: the base checkpoint (the new checkpoint's parent). With LoRA no second model is
  loaded: TRL computes the reference log-probabilities with the adapter disabled, which is exactly
  the base. A full fine-tune gets a separate frozen copy of the base (TRL loads it from the same
  directory when no ``ref_model`` is given and the model is not a peft model).
- Lengths (TRL 1.16 ``DPOTrainer._prepare_dataset`` and ``DataCollatorForPreference``): a pair whose
  tokenised prompt alone is ``max_length`` tokens or more is dropped; a kept pair whose prompt +
  response is longer is cut to its first ``max_length`` tokens (the end of the response goes).
  The summary counts both per split (``filtered_prompt_too_long``, ``truncated``).
- Streaming: ``reporting.RunReporting`` (progress, one ``JobMetric`` row per training log with
  TRL's ``loss``, ``rewards/chosen``, ``rewards/rejected``, ``rewards/accuracies``,
  ``rewards/margins``, ``logps/*``, ``logits/*``, ``entropy``, ``num_tokens``..., and one per
  evaluation with the same names prefixed ``eval_``). Evaluation runs when the snapshot has eval rows.
- Cancel stops after the current step and writes nothing; a crash writes nothing either.
- Success: ``policy_training.policy_publish``: LoRA merged into a full checkpoint, or with
  ``save_adapter`` the adapter alone (registered ``is_adapter``, loaded over its parent).

Under ``torchrun``/``accelerate launch`` every process trains; only the main one reports, writes
and registers.
"""
from __future__ import annotations

from typing import Any

import torch
from datasets import Dataset
from trl import DPOConfig as TRLDPOConfig
from trl import DPOTrainer

from training.policy_config import DPOConfig

from .lora import lora_config
from .policy_training import (
    run_snapshot,
    run_tokenizer,
    dropout_argument, finite, policy_base, policy_publish, policy_run_config, process_roles, run_directory,
    trainer_arguments,
)
from .progress import Reporter, Stopwatch
from .reporting import RunReporting
from .snapshot_rows import columns_keep, rows_read

PAIR_COLUMNS = ("prompt", "chosen", "rejected")
REFERENCE_ADAPTER_DISABLED = "base with the LoRA adapter disabled"
REFERENCE_FROZEN_COPY = "frozen copy of the base"


def trl_dpo_config(config: DPOConfig, output_dir: str, *, evaluate: bool, cuda: bool) -> TRLDPOConfig:
    """TRL's ``DPOConfig`` for a run: ``beta``, ``loss_type``, ``max_length`` (prompt + response
    tokens, TRL's ``keep_start`` truncation) and the shared settings (``trainer_arguments``)."""
    return TRLDPOConfig(
        **trainer_arguments(config, output_dir, evaluate=evaluate, cuda=cuda),
        **dropout_argument(config),
        beta=config.beta, loss_type=[config.loss_type], max_length=config.max_length, truncation_mode="keep_start",
    )


def pair_dataset(rows: list[dict[str, Any]]) -> Dataset:
    """The columns DPO sees: ``prompt``, ``chosen``, ``rejected`` (message lists); others dropped.

    Raises:
        KeyError: a row lacks one of them (not a preference snapshot).
    """
    return Dataset.from_list(columns_keep(rows, PAIR_COLUMNS))


def truncated_pairs(dataset: Dataset, max_length: int) -> int:
    """How many of TRL's tokenised pairs (``prompt_ids``, ``chosen_ids``, ``rejected_ids``) have a side
    longer than ``max_length`` tokens, which ``DataCollatorForPreference`` cuts to its first ``max_length``."""
    return sum(
        len(prompt) + max(len(chosen), len(rejected)) > max_length
        for prompt, chosen, rejected in zip(dataset["prompt_ids"], dataset["chosen_ids"], dataset["rejected_ids"])
    )


def run_dpo(job, reporter: Reporter) -> dict:
    """Train the base policy with DPO on the job's preference snapshot (see ``DPOConfig``); returns the summary.

    Summary keys: ``train_rows``/``eval_rows`` (pairs TRL kept), ``filtered_prompt_too_long``
    (``{"train": n, "eval": n}`` pairs dropped because the prompt alone filled ``max_length``),
    ``truncated`` (``{"train": n, "eval": n}`` kept pairs whose longer side was cut), ``steps``,
    ``epochs``, ``train_loss``, ``eval_reward_accuracy`` (TRL's ``eval_rewards/accuracies`` of the
    last evaluation: share of pairs whose implicit reward β·log(π/π_ref) is higher for the chosen
    side, a mean of per-batch means; None without eval pairs), ``eval_reward_margin``
    (``eval_rewards/margins``), ``eval_loss``, ``reference_model`` (how the reference was built),
    ``samples_per_s`` (pairs per second, TRL's ``train_samples_per_second``), ``seconds`` (whole
    run, wall clock), ``checkpoint`` (name; None when cancelled), ``cancelled``.
    Raises:
        LookupError: no base checkpoint or snapshot. ValueError: a reward model or adapter as the
        base, a snapshot that is not a preference snapshot, or no pairs left after TRL's length filter.
        Anything transformers/TRL raise (e.g. unreadable weights).
    """
    clock = Stopwatch()
    config = policy_run_config(job, DPOConfig)
    base = policy_base(config.base)
    snapshot = run_snapshot(job, config, kind="preference", needs="DPO needs preference pairs")
    train_rows, eval_rows = rows_read(snapshot.train_path), rows_read(snapshot.eval_path)
    if not train_rows:
        raise ValueError(f"snapshot {snapshot.id} has no training pairs")

    cuda = torch.cuda.is_available()
    tokenizer = run_tokenizer(base.location)
    evaluate = bool(eval_rows)

    with run_directory(job.pk) as output_dir:
        args = trl_dpo_config(config, output_dir, evaluate=evaluate, cuda=cuda)
        is_main, num_processes = process_roles(args)
        reporting = RunReporting(reporter, is_main=is_main, num_processes=num_processes)
        trainer = DPOTrainer(
            model=base.location,  # full fine-tune: TRL loads the frozen reference from the same place
            args=args,
            train_dataset=pair_dataset(train_rows),
            eval_dataset=pair_dataset(eval_rows) if evaluate else None,
            processing_class=tokenizer,
            callbacks=[reporting],
            peft_config=lora_config(config, task_type="CAUSAL_LM") if config.lora else None,
        )
        used_train = len(trainer.train_dataset)
        used_eval = len(trainer.eval_dataset) if evaluate else 0
        if used_train == 0:
            raise ValueError(
                f"every one of the {len(train_rows)} training prompts fills max_length={config.max_length} tokens"
            )
        truncated = {
            "train": truncated_pairs(trainer.train_dataset, config.max_length),
            "eval": truncated_pairs(trainer.eval_dataset, config.max_length) if evaluate else 0,
        }
        reference = REFERENCE_FROZEN_COPY if trainer.ref_model is not None else REFERENCE_ADAPTER_DISABLED
        result = trainer.train()

    last = reporting.evaluations[-1] if reporting.evaluations else {}
    summary = {
        "train_rows": used_train, "eval_rows": used_eval,
        "filtered_prompt_too_long": {"train": len(train_rows) - used_train, "eval": len(eval_rows) - used_eval},
        "truncated": truncated,
        "steps": trainer.state.global_step, "epochs": round(trainer.state.epoch or 0.0, 4),
        "train_loss": finite(result.training_loss),
        "eval_reward_accuracy": finite(last.get("eval_rewards/accuracies")),
        "eval_reward_margin": finite(last.get("eval_rewards/margins")),
        "eval_loss": finite(last.get("eval_loss")),
        "reference_model": reference,
        "samples_per_s": finite(result.metrics.get("train_samples_per_second")),
        "checkpoint": None, "cancelled": reporting.halted,
    }
    if reporting.halted:
        reporter.halted = True
        summary["seconds"] = round(clock.elapsed(), 3)
        return summary
    if not is_main:
        return summary

    reporting.progress(trainer.state)
    metadata = {
        "method": "dpo", "base": base.name, "snapshot_id": snapshot.id, "snapshot_hash": snapshot.content_hash,
        "beta": config.beta, "loss_type": config.loss_type, "max_length": config.max_length, "lora": config.lora,
        "reference_model": reference, "train_rows": used_train, "eval_rows": used_eval, "steps": summary["steps"],
        "metrics": {
            "train_loss": summary["train_loss"], "eval_reward_accuracy": summary["eval_reward_accuracy"],
            "eval_reward_margin": summary["eval_reward_margin"], "eval_loss": summary["eval_loss"],
        },
    }
    checkpoint = policy_publish(
        trainer.model, tokenizer, job=job, config=config, base=base, suffix="dpo", metadata=metadata,
        on_phase=reporter.phase,
    )
    summary["checkpoint"] = checkpoint.name
    summary["seconds"] = round(clock.elapsed(), 3)
    return summary

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
- Lengths: fitted here, not by TRL (``pair_tokens.pairs_prepare``, shared with the reward runner):
  each pair is tokenised as TRL tokenises it, its prompt loses its start first, then its responses
  their end, so each side fits ``max_length``; a pair whose responses are then token-identical is
  left out. Every other pair is used. TRL gets ``max_length=None`` (its filter, which would drop a
  pair whose prompt alone fills ``max_length``, and its collator's cut have nothing to do) and,
  once built, the fitted ids as its datasets (checked against its own tokenisation first). The
  summary counts per split what was cut or left out. A chat template that renders a prompt
  differently when a response follows refuses the run before it starts (TRL would only warn).
- Held-out accuracy and ties: after training, every held-out pair's implicit rewards are computed
  once more (``dpo_heldout``) so accuracy counts strict wins over pairs and ties have their own rate.
- Streaming: ``reporting.RunReporting`` (progress, one ``JobMetric`` row per training log with
  TRL's ``loss``, ``rewards/chosen``, ``rewards/rejected``, ``rewards/accuracies``,
  ``rewards/margins``, ``logps/*``, ``logits/*``, ``entropy``, ``num_tokens``..., and one per
  evaluation with the same names prefixed ``eval_``). Evaluation runs when the snapshot has eval rows.
- Cancel stops after the current step and writes nothing; a crash writes nothing either.
- Success: ``policy_training.policy_publish``: LoRA merged into a full checkpoint, or with
  ``save_adapter`` the adapter alone (registered ``is_adapter``, loaded over its parent).

Under ``torchrun``/``accelerate launch`` every process trains; only the main one reports, writes
and registers. Under DeepSpeed ZeRO-3 every process joins the held-out pass (each forward pass
gathers the sharded weights) and the model is gathered before it is written (``gathered``).
"""
from __future__ import annotations

from typing import Any

import torch
from datasets import Dataset
from trl import DPOConfig as TRLDPOConfig
from transformers import AutoModelForCausalLM
from trl import DPOTrainer

from training.policy_config import DPOConfig

from .lora import lora_config
from .policy_training import (
    run_snapshot,
    run_tokenizer,
    dropout_argument, finite, policy_base, policy_publish, policy_run_config, process_roles, run_directory,
    trainer_arguments,
)
from .pair_tokens import PairIds, split_counts, splits_prepare
from .dpo_heldout import implicit_reward_outcomes
from .gathered import trained_model, zero3_active
from .gpu import gpu_options_require, quantization_arguments
from .progress import Phase, Reporter, Stopwatch
from .reporting import RunReporting, data_warnings
from .snapshot_rows import columns_keep, rows_read

PAIR_COLUMNS = ("prompt", "chosen", "rejected")
REFERENCE_ADAPTER_DISABLED = "base with the LoRA adapter disabled"
REFERENCE_FROZEN_COPY = "frozen copy of the base"


def trl_dpo_config(config: DPOConfig, output_dir: str, *, evaluate: bool, cuda: bool) -> TRLDPOConfig:
    """TRL's ``DPOConfig`` for a run: ``beta``, ``loss_type`` and the shared settings
    (``trainer_arguments``); ``max_length=None``, as the pairs reach TRL already fitted to ``config.max_length``."""
    return TRLDPOConfig(
        **trainer_arguments(config, output_dir, evaluate=evaluate, cuda=cuda),
        **dropout_argument(config),
        beta=config.beta, loss_type=[config.loss_type], max_length=None,
    )


def pair_dataset(rows: list[dict[str, Any]]) -> Dataset:
    """The columns DPO sees: ``prompt``, ``chosen``, ``rejected`` (message lists); others dropped.

    Raises:
        KeyError: a row lacks one of them (not a preference snapshot).
    """
    return Dataset.from_list(columns_keep(rows, PAIR_COLUMNS))


def fitted_dataset(tokenized: Dataset, pairs: list[PairIds]) -> Dataset:
    """The fitted pairs as TRL's tokenised columns (``prompt_ids``, ``chosen_ids``, ``rejected_ids``).

    ``tokenized`` is TRL's own tokenisation of the same rows, untruncated: each fitted pair must be
    a cut of it (its prompt an end of TRL's prompt, its responses starts of TRL's).
    Raises:
        RuntimeError: they differ (a TRL upgrade changed its tokenisation): training on our ids would
            not be what TRL's own evaluation and the summary describe.
    """
    if len(tokenized) != len(pairs):
        raise RuntimeError(f"TRL kept {len(tokenized)} of {len(pairs)} pairs; refusing to train on other rows")
    for pair, prompt, chosen, rejected in zip(
        pairs, tokenized["prompt_ids"], tokenized["chosen_ids"], tokenized["rejected_ids"]
    ):
        if (list(prompt[len(prompt) - len(pair.prompt):]) != pair.prompt or list(chosen[:len(pair.chosen)]) != pair.chosen
                or list(rejected[:len(pair.rejected)]) != pair.rejected):
            raise RuntimeError("TRL tokenised a pair differently from training.runners.pair_tokens")
    return Dataset.from_dict({
        "prompt_ids": [pair.prompt for pair in pairs],
        "chosen_ids": [pair.chosen for pair in pairs],
        "rejected_ids": [pair.rejected for pair in pairs],
    })


def run_dpo(job, reporter: Reporter) -> dict:
    """Train the base policy with DPO on the job's preference snapshot (see ``DPOConfig``); returns the summary.

    Summary keys: ``train_rows``/``eval_rows`` (pairs used), ``truncated_prompt``,
    ``truncated_response``, ``filtered_identical`` (each ``{"train": n, "eval": n}``, see
    ``pair_tokens``), ``steps``, ``epochs``, ``train_loss``, ``eval_reward_accuracy`` (share of held-out pairs whose
    implicit reward β·log(π/π_ref) is strictly higher for the chosen side, over pairs after training:
    ``dpo_heldout``; TRL's per-batch ``eval_rewards/accuracies`` stays in the metric rows; None
    without eval pairs, or TRL's figure when cancelled), ``eval_reward_tie_rate`` (share of held-out
    pairs whose two implicit rewards are equal; also a metric row and checkpoint metadata), ``eval_reward_margin`` (``eval_rewards/margins``), ``eval_loss``,
    ``reference_model`` (how the reference was built), ``samples_per_s`` (pairs per second, TRL's
    ``train_samples_per_second``), ``seconds`` (whole run, wall clock), ``checkpoint`` (name; None
    when cancelled), ``cancelled``; ``warnings`` when a library warned about the data or pairs were left out.
    Raises:
        LookupError: no base checkpoint or snapshot. ValueError: a reward model or adapter as the
        base, a snapshot that is not a preference snapshot, no pairs left (all identical within
        ``max_length``), a chat template that breaks the prompt-prefix rule
        (``pair_tokens.ChatTemplatePrefixError``). RuntimeError: TRL tokenised differently.
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
    gpu_options_require(config, cuda=cuda)  # before the model is loaded: one readable line
    warnings: list[str] = []
    with data_warnings(warnings):
        tokenizer = run_tokenizer(base.location)
        fitted = splits_prepare(
            tokenizer, train_rows, eval_rows, max_length=config.max_length, checkpoint=base.name, warnings=warnings
        )
    train_pairs, train_counts = fitted.train, fitted.train_counts
    eval_pairs, eval_counts = fitted.held_out, fitted.held_out_counts
    for line in warnings:
        reporter.warn(line)
    evaluate = bool(eval_pairs)

    with run_directory(job.pk) as output_dir:
        args = trl_dpo_config(config, output_dir, evaluate=evaluate, cuda=cuda)
        is_main, num_processes = process_roles(args)
        reporting = RunReporting(reporter, is_main=is_main, num_processes=num_processes)
        with data_warnings(warnings):
            trainer = DPOTrainer(
                model=base.location,  # full fine-tune: TRL loads the frozen reference from the same place
                args=args,
                train_dataset=pair_dataset([train_rows[i] for i in train_counts.kept]),
                eval_dataset=pair_dataset([eval_rows[i] for i in eval_counts.kept]) if evaluate else None,
                processing_class=tokenizer,
                callbacks=[reporting],
                peft_config=lora_config(config, task_type="CAUSAL_LM") if config.lora else None,
                **quantization_arguments(config),
            )
        trainer.train_dataset = fitted_dataset(trainer.train_dataset, train_pairs)
        if evaluate:
            trainer.eval_dataset = fitted_dataset(trainer.eval_dataset, eval_pairs)
        used_train, used_eval = len(train_pairs), len(eval_pairs)
        reference = REFERENCE_FROZEN_COPY if trainer.ref_model is not None else REFERENCE_ADAPTER_DISABLED
        result = trainer.train()
        held_out = None
        if evaluate and not reporting.halted and (is_main or zero3_active(args)):  # ZeRO-3: every process joins
            if is_main:
                reporting.progress(trainer.state)
                reporter.phase(Phase.EVALUATING)
            held_out = implicit_reward_outcomes(
                trainer, eval_pairs, beta=config.beta, pad_token_id=tokenizer.pad_token_id,
                batch_size=config.per_device_eval_batch_size,
            )
        finished = None if reporting.halted else trained_model(  # every process: under ZeRO-3 a gather
            trainer, auto_class=AutoModelForCausalLM, base_location=base.location, scratch=f"{output_dir}/trained",
            is_main=is_main, merge=not (config.save_adapter and config.lora),
        )

    last = reporting.evaluations[-1] if reporting.evaluations else {}
    summary = {
        "train_rows": used_train, "eval_rows": used_eval,
        **split_counts(train_counts, eval_counts),
        "steps": trainer.state.global_step, "epochs": round(trainer.state.epoch or 0.0, 4),
        "train_loss": finite(result.training_loss),
        "eval_reward_accuracy": finite(last.get("eval_rewards/accuracies")),
        "eval_reward_margin": finite(last.get("eval_rewards/margins")),
        "eval_loss": finite(last.get("eval_loss")),
        "reference_model": reference,
        "samples_per_s": finite(result.metrics.get("train_samples_per_second")),
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
    if held_out is not None:
        summary["eval_reward_accuracy"] = finite(held_out["accuracy"])
        summary["eval_reward_tie_rate"] = finite(held_out["tie_rate"])
        reporter.metric(step=trainer.state.global_step, epoch=trainer.state.epoch, values={
            "eval_reward_accuracy": summary["eval_reward_accuracy"],
            "eval_reward_tie_rate": summary["eval_reward_tie_rate"], "eval_n": held_out["n"],
        })
    metadata = {
        "method": "dpo", "base": base.name, "snapshot_id": snapshot.id, "snapshot_hash": snapshot.content_hash,
        "beta": config.beta, "loss_type": config.loss_type, "max_length": config.max_length, "lora": config.lora,
        "reference_model": reference, "train_rows": used_train, "eval_rows": used_eval, "steps": summary["steps"],
        "truncated_prompt": summary["truncated_prompt"], "truncated_response": summary["truncated_response"],
        "filtered_identical": summary["filtered_identical"],
        "metrics": {
            "train_loss": summary["train_loss"], "eval_reward_accuracy": summary["eval_reward_accuracy"],
            "eval_reward_tie_rate": summary.get("eval_reward_tie_rate"), "eval_reward_margin": summary["eval_reward_margin"], "eval_loss": summary["eval_loss"],
        },
    }
    checkpoint = policy_publish(
        finished, tokenizer, job=job, config=config, base=base, suffix="dpo", metadata=metadata,
        on_phase=reporter.phase,
    )
    summary["checkpoint"] = checkpoint.name
    summary["seconds"] = round(clock.elapsed(), 3)
    return summary

"""The SFT runner: TRL's ``SFTTrainer`` on a snapshot of demonstrations, streamed to the job row.

``run_sft`` fine-tunes the base policy on the snapshot's ``prompt``/``completion`` rows (TRL's
conversational prompt-completion format: message lists; ``source`` and ``demonstration_id`` stay
with us) with the loss on the completion tokens only (``completion_only_loss``: TRL masks the
tokens of the chat-templated prompt). Around ``SFTTrainer``, unchanged:

- Lengths (TRL 1.16 ``SFTTrainer._prepare_dataset``): each tokenised prompt + completion is cut to
  its first ``max_length`` tokens; a row left with no completion token (the prompt alone fills
  ``max_length``) is dropped. The summary counts rows dropped and rows at ``max_length`` (cut, or
  exactly that long) per split.
- Streaming, cancel and crash behave as in the DPO runner (``reporting.RunReporting``): training
  rows carry ``loss``, ``learning_rate``, ``grad_norm``, ``entropy``, ``mean_token_accuracy``,
  ``num_tokens``; evaluation rows ``eval_loss``, ``eval_mean_token_accuracy``... Evaluation runs when
  the snapshot has eval rows.
- Success: ``policy_training.policy_publish`` (LoRA merged, or the adapter alone with ``save_adapter``);
  under DeepSpeed ZeRO-3 the model is gathered first (``gathered.trained_model``).
"""
from __future__ import annotations

from typing import Any

import torch
from datasets import Dataset
from transformers import AutoModelForCausalLM
from trl import SFTConfig as TRLSFTConfig
from trl import SFTTrainer

from training.policy_config import SFTConfig

from .lora import lora_config
from .policy_training import (
    run_snapshot,
    run_tokenizer,
    finite, policy_base, policy_publish, policy_run_config, process_roles, run_directory,
    trainer_arguments,
)
from .gathered import trained_model
from .gpu import gpu_options_require, quantization_arguments
from .progress import Reporter, Stopwatch
from .reporting import RunReporting, data_warnings
from .snapshot_rows import columns_keep, rows_read

DEMONSTRATION_COLUMNS = ("prompt", "completion")


def trl_sft_config(config: SFTConfig, output_dir: str, *, evaluate: bool, cuda: bool) -> TRLSFTConfig:
    """TRL's ``SFTConfig`` for a run: completion-only loss, no packing, ``max_length`` tokens
    (``keep_start`` truncation), and the shared settings (``trainer_arguments``). TRL's SFT has no
    ``disable_dropout`` argument: the model's (and LoRA's) dropout stay as configured."""
    return TRLSFTConfig(
        **trainer_arguments(config, output_dir, evaluate=evaluate, cuda=cuda),
        completion_only_loss=True, packing=False, max_length=config.max_length, truncation_mode="keep_start",
    )


def demonstration_dataset(rows: list[dict[str, Any]]) -> Dataset:
    """The columns SFT sees: ``prompt`` and ``completion`` (message lists); others dropped.

    Raises:
        KeyError: a row lacks one of them (not an SFT snapshot).
    """
    return Dataset.from_list(columns_keep(rows, DEMONSTRATION_COLUMNS))


def at_max_length(dataset: Dataset, max_length: int) -> int:
    """Rows of TRL's tokenised dataset (``input_ids``) that reach ``max_length`` tokens: cut, or exactly that long."""
    return sum(len(ids) >= max_length for ids in dataset["input_ids"])


def run_sft(job, reporter: Reporter) -> dict:
    """Fine-tune the base policy on the job's SFT snapshot (see ``SFTConfig``); returns the job summary.

    Summary keys: ``train_rows``/``eval_rows`` (demonstrations TRL kept), ``filtered_fully_truncated``
    (``{"train": n, "eval": n}`` rows whose prompt filled ``max_length``), ``at_max_length``
    (``{"train": n, "eval": n}`` kept rows cut to, or exactly, ``max_length`` tokens), ``steps``,
    ``epochs``, ``train_loss`` (mean token cross-entropy over the run, nats), ``eval_loss`` and
    ``eval_mean_token_accuracy`` (last evaluation; None without eval rows), ``samples_per_s``
    (demonstrations per second, TRL's ``train_samples_per_second``), ``seconds``, ``checkpoint``
    (name; None when cancelled), ``cancelled``; ``warnings`` when TRL or the tokenizer warned
    about the data while it was prepared.
    Raises:
        LookupError: no base checkpoint or snapshot. ValueError: a reward model or adapter as the
        base, a snapshot that is not an SFT snapshot, or no demonstrations left after TRL's length
        filter. Anything transformers/TRL raise.
    """
    clock = Stopwatch()
    config = policy_run_config(job, SFTConfig)
    base = policy_base(config.base)
    snapshot = run_snapshot(job, config, kind="sft", needs="SFT needs demonstrations")
    train_rows, eval_rows = rows_read(snapshot.train_path), rows_read(snapshot.eval_path)
    if not train_rows:
        raise ValueError(f"snapshot {snapshot.id} has no training demonstrations")

    cuda = torch.cuda.is_available()
    gpu_options_require(config, cuda=cuda)  # before the model is loaded: one readable line
    tokenizer = run_tokenizer(base.location)
    evaluate = bool(eval_rows)
    warnings: list[str] = []  # what TRL or the tokenizer warned about the data (summary and log)

    with run_directory(job.pk) as output_dir:
        args = trl_sft_config(config, output_dir, evaluate=evaluate, cuda=cuda)
        is_main, num_processes = process_roles(args)
        reporting = RunReporting(reporter, is_main=is_main, num_processes=num_processes)
        with data_warnings(warnings):
            trainer = SFTTrainer(
                model=base.location,
                args=args,
                train_dataset=demonstration_dataset(train_rows),
                eval_dataset=demonstration_dataset(eval_rows) if evaluate else None,
                processing_class=tokenizer,
                callbacks=[reporting],
                peft_config=lora_config(config, task_type="CAUSAL_LM") if config.lora else None,
                **quantization_arguments(config),
            )
        for line in warnings:
            reporter.warn(line)
        used_train = len(trainer.train_dataset)
        used_eval = len(trainer.eval_dataset) if evaluate else 0
        if used_train == 0:
            raise ValueError(
                f"every one of the {len(train_rows)} training prompts fills max_length={config.max_length} tokens"
            )
        capped = {
            "train": at_max_length(trainer.train_dataset, config.max_length),
            "eval": at_max_length(trainer.eval_dataset, config.max_length) if evaluate else 0,
        }
        result = trainer.train()
        finished = None if reporting.halted else trained_model(  # every process: under ZeRO-3 a gather
            trainer, auto_class=AutoModelForCausalLM, base_location=base.location, scratch=f"{output_dir}/trained",
            is_main=is_main, merge=not (config.save_adapter and config.lora),
        )

    last = reporting.evaluations[-1] if reporting.evaluations else {}
    summary = {
        "train_rows": used_train, "eval_rows": used_eval,
        "filtered_fully_truncated": {"train": len(train_rows) - used_train, "eval": len(eval_rows) - used_eval},
        "at_max_length": capped,
        "steps": trainer.state.global_step, "epochs": round(trainer.state.epoch or 0.0, 4),
        "train_loss": finite(result.training_loss),
        "eval_loss": finite(last.get("eval_loss")),
        "eval_mean_token_accuracy": finite(last.get("eval_mean_token_accuracy")),
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
    metadata = {
        "method": "sft", "base": base.name, "snapshot_id": snapshot.id, "snapshot_hash": snapshot.content_hash,
        "max_length": config.max_length, "lora": config.lora, "train_rows": used_train, "eval_rows": used_eval,
        "steps": summary["steps"],
        "metrics": {
            "train_loss": summary["train_loss"], "eval_loss": summary["eval_loss"],
            "eval_mean_token_accuracy": summary["eval_mean_token_accuracy"],
        },
    }
    checkpoint = policy_publish(
        finished, tokenizer, job=job, config=config, base=base, suffix="sft", metadata=metadata,
        on_phase=reporter.phase,
    )
    summary["checkpoint"] = checkpoint.name
    summary["seconds"] = round(clock.elapsed(), 3)
    return summary

"""The online-RL runner: TRL's ``RLOOTrainer`` (default) or ``GRPOTrainer`` against a registered reward model.

Why these two: TRL no longer ships PPO (TRL 1.16 has no ``PPOTrainer`` and no value-head model).
RLOO (REINFORCE Leave-One-Out; Ahmadian et al. 2024, "Back to Basics: Revisiting REINFORCE-Style
Optimization for Learning from Human Feedback in LLMs") and GRPO (Group Relative Policy
Optimization; Shao et al. 2024, "DeepSeekMath") are its maintained successors. Both drop PPO's
learned value model: each prompt gets ``num_generations`` sampled completions and every completion's
advantage is its reward measured against its siblings, RLOO's against the mean of the *other*
``k - 1`` rewards, GRPO's against the group mean, divided by the group's standard deviation
(TRL's ``scale_rewards="group"``).

What ``beta`` means (the KL coefficient to the reference model; TRL 1.16):

- RLOO: a penalty on the reward. Each completion's reward becomes
  ``r = r_RM - beta * sum_t (log pi(y_t|.) - log pi_ref(y_t|.))``: the per-token log-ratio (the
  first-order "k1" estimate of KL, which can be negative for one token) is summed over the
  completion, at sampling time, before the leave-one-out baseline. TRL's default is 0.05.
- GRPO: a term in the loss. Each completion token adds
  ``beta * (exp(ref - logp) - (ref - logp) - 1)`` (Schulman's "k3" estimate, never negative) to
  the clipped policy loss. TRL's default is 0.0 (no reference at all). The same number is a
  stronger pull in RLOO (summed over a completion) than in GRPO (averaged over tokens).
- ``beta = 0`` loads no reference model in either. The metric ``kl`` is the per-token mean of the
  estimate the trainer uses (k1 for RLOO, k3 for GRPO), so the two are not directly comparable.

The reference model is the base checkpoint (the new checkpoint's parent). With LoRA no second copy
is loaded: TRL computes the reference log-probabilities with the adapter disabled, which is exactly
the base. A full fine-tune gets a frozen copy of the base (TRL loads it from the same directory).

``run_rl`` around TRL:

- Prompts: the distinct prompts of the snapshot's train rows (first appearance order), as TRL's
  conversational prompt-only dataset ``{"prompt": [messages]}``. A prompt whose chat template with
  the generation prompt is longer than ``max_prompt_length`` tokens is left out (TRL 1.16 has no
  prompt truncation). Of the rest, at most ``max_prompts`` are kept: a sample drawn with
  ``random.Random(seed)`` (so a rerun with the same seed uses the same prompts), in file order.
- Reward: ``RewardModelScore``, a reward function (TRL's custom-callable form) over the reward
  checkpoint loaded with ``rewards.reward_model_load``. It scores ``prompt + completion`` with
  ``rewards.conversation_ids`` and ``rewards.rewards_compute``, the tokenisation and padding
  ``RewardTrainer`` trained the model on and the scoring job uses, so a completion gets during RL
  the score a user sees for it on the comparison pages. TRL hands it the completion as
  ``[{"role": "assistant", "content": text}]`` where ``text`` is the generated tokens decoded with
  special tokens skipped; the chat template then closes the turn as it did in training.
  (Passing the model itself as ``reward_funcs`` would also work for a ChatML template: TRL renders
  the chat to text and re-tokenises it; the callable keeps one definition of the format.)
- Metrics: one ``JobMetric`` row per training log (``logging_steps``), TRL's names made plain
  (``RL_METRIC_NAMES``): ``reward`` (mean reward-model score of the completions sampled in the
  window, before any KL penalty), ``reward_std``, ``kl``, ``completion_length`` (tokens),
  ``completion_truncated_share`` (share that hit ``max_completion_length``), ``entropy``,
  ``loss``, ``grad_norm``, ``learning_rate``, ``num_tokens``, ``clip_ratio_*``, ``step_time``.
- Progress, cancel, crash: ``reporting.RunReporting``; cancel stops after the current step and
  writes nothing, a crash propagates and writes nothing; the scratch ``output_dir`` goes either way.
- Success: ``policy_training.policy_publish``: a policy checkpoint (LoRA merged, or with
  ``save_adapter`` the adapter alone), parent = base, run = the job, with the algorithm, beta,
  reward model, snapshot and the final reward/KL in its metadata.

Under ``torchrun``/``accelerate launch`` every process generates, scores its share and trains;
only the main one reports, writes and registers.
"""
from __future__ import annotations

import json
import random
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch
from datasets import Dataset
from transformers import PreTrainedModel, PreTrainedTokenizerBase
from trl import GRPOConfig, GRPOTrainer, RLOOConfig, RLOOTrainer

from training.models import Checkpoint, CheckpointKind
from training.policy_config import RLConfig

from .lora import lora_config
from .policy_training import (
    run_snapshot,
    run_tokenizer,
    dropout_argument, finite, policy_base, policy_publish, policy_run_config, process_roles, run_directory,
    trainer_arguments,
)
from .gpu import gpu_options_require, quantization_arguments
from .progress import Reporter, Stopwatch
from .reporting import RunReporting, data_warnings
from .rewards import Messages, conversation_ids, reward_model_load, rewards_compute
from .snapshot_rows import rows_read

REFERENCE_ADAPTER_DISABLED = "base with the LoRA adapter disabled"
REFERENCE_FROZEN_COPY = "frozen copy of the base"
REFERENCE_NONE = "none (beta = 0)"
REWARD_BATCH_SIZE = 32  # completions per reward-model forward pass
TRAINERS = {"rloo": (RLOOConfig, RLOOTrainer), "grpo": (GRPOConfig, GRPOTrainer)}

# TRL 1.16's log names for RLOO/GRPO -> ours. Keys not listed keep their name with "/" -> "_";
# ``rewards/<function>/mean|std`` repeat ``reward``/``reward_std`` (there is one reward function) and are dropped.
RL_METRIC_NAMES = {
    "completions/mean_length": "completion_length",
    "completions/min_length": "completion_length_min",
    "completions/max_length": "completion_length_max",
    "completions/clipped_ratio": "completion_truncated_share",
    "completions/mean_terminated_length": "completion_length_ended",
    "completions/min_terminated_length": "completion_length_ended_min",
    "completions/max_terminated_length": "completion_length_ended_max",
}


# --- prompts ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class PromptChoice:
    """The prompts a run trains on: ``prompts`` (message lists, file order), ``distinct`` (distinct
    train prompts in the snapshot), ``too_long`` (of those, longer than ``max_prompt_length``)."""

    prompts: list[Messages]
    distinct: int
    too_long: int


def prompt_ids_length(tokenizer: PreTrainedTokenizerBase, prompt: Messages) -> int:
    """Tokens of ``prompt`` as TRL feeds it to generation (chat template plus the generation prompt;
    TRL 1.16 ``RLOOTrainer._tokenize_prompts``)."""
    encoded = tokenizer.apply_chat_template(prompt, add_generation_prompt=True, tokenize=True, return_dict=True)
    return len(encoded["input_ids"])


def prompts_choose(
    rows: Sequence[dict[str, Any]],
    tokenizer: PreTrainedTokenizerBase,
    *,
    max_prompt_length: int,
    max_prompts: int | None,
    seed: int,
) -> PromptChoice:
    """The distinct ``prompt`` message lists of ``rows`` that fit ``max_prompt_length`` tokens, at most
    ``max_prompts`` of them (a ``random.Random(seed)`` sample, kept in file order; None: all).

    Two prompts are the same when their messages are equal (roles, contents, any other keys).
    Raises:
        KeyError: a row has no ``prompt``.
    """
    distinct: dict[str, Messages] = {}
    for row in rows:
        distinct.setdefault(json.dumps(row["prompt"], sort_keys=True), row["prompt"])
    fitting = [p for p in distinct.values() if prompt_ids_length(tokenizer, p) <= max_prompt_length]
    too_long = len(distinct) - len(fitting)
    if max_prompts is not None and len(fitting) > max_prompts:
        keep = sorted(random.Random(seed).sample(range(len(fitting)), max_prompts))
        fitting = [fitting[i] for i in keep]
    return PromptChoice(prompts=fitting, distinct=len(distinct), too_long=too_long)


def prompt_dataset(prompts: Sequence[Messages]) -> Dataset:
    """TRL's conversational prompt-only dataset: one ``{"prompt": [messages]}`` row per prompt."""
    return Dataset.from_list([{"prompt": list(prompt)} for prompt in prompts])


# --- the reward ----------------------------------------------------------------------------------------


class RewardModelScore:
    """A TRL reward function (``reward_funcs=[RewardModelScore(...)]``) backed by a reward checkpoint.

    Called by TRL with ``prompts`` (N message lists) and ``completions`` (N lists holding one
    ``{"role": "assistant", "content": text}``), plus other keyword arguments it ignores. Returns N
    floats: the reward model's logit for ``prompt + completion`` tokenised by
    ``rewards.conversation_ids`` and padded on the right (``rewards.rewards_compute``), exactly as
    ``RewardTrainer`` trained the model and as the scoring job scores. Units: the reward model's
    own (only differences between completions of one prompt mean something).
    ``__name__`` is ``"reward_model"``; TRL names its per-function metrics after it.

    Raises:
        TypeError: prompts or completions that are not message lists (a non-conversational dataset).
        ValueError: a conversation that tokenises to nothing.
    """

    __name__ = "reward_model"

    def __init__(self, model: PreTrainedModel, tokenizer: PreTrainedTokenizerBase, *, batch_size: int = REWARD_BATCH_SIZE):
        self.model, self.tokenizer, self.batch_size = model, tokenizer, batch_size

    @classmethod
    def load(cls, location: str, *, batch_size: int = REWARD_BATCH_SIZE) -> RewardModelScore:
        """Load a reward checkpoint (``rewards.reward_model_load``: eval mode, this process's device).

        Raises:
            ValueError: not a one-output sequence-classification checkpoint. OSError from transformers.
        """
        model, tokenizer = reward_model_load(location)
        return cls(model, tokenizer, batch_size=batch_size)

    def __call__(self, prompts: Sequence[Messages], completions: Sequence[Messages], **kwargs) -> list[float]:
        if prompts and not (isinstance(prompts[0], list) and isinstance(completions[0], list)):
            raise TypeError("the reward model scores conversations: prompts and completions must be message lists")
        sequences = [conversation_ids(self.tokenizer, prompt, completion) for prompt, completion in zip(prompts, completions)]
        return rewards_compute(self.model, self.tokenizer.pad_token_id, sequences, batch_size=self.batch_size)


# --- metrics -----------------------------------------------------------------------------------------


def rl_metric_values(logs: dict[str, Any]) -> dict[str, Any]:
    """One training log of ``RLOOTrainer``/``GRPOTrainer`` with our names (``RL_METRIC_NAMES``;
    ``a/b`` -> ``a_b``; ``rewards/<function>/...`` dropped). Values are unchanged."""
    values: dict[str, Any] = {}
    for key, value in logs.items():
        if key.startswith("rewards/"):
            continue
        values[RL_METRIC_NAMES.get(key, key.replace("/", "_"))] = value
    return values


class RLReporting(RunReporting):
    """``RunReporting`` whose metric rows carry ``rl_metric_values`` names."""

    def on_log(self, args, state, control, logs=None, **kwargs):
        return super().on_log(args, state, control, logs=rl_metric_values(logs) if logs else logs, **kwargs)


def training_logs(log_history: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """The training rows of ``trainer.state.log_history`` (those with ``reward``), renamed."""
    return [rl_metric_values(entry) for entry in log_history if "reward" in entry]


# --- trainer settings ----------------------------------------------------------------------------


def trl_rl_config(config: RLConfig, output_dir: str, *, cuda: bool) -> RLOOConfig | GRPOConfig:
    """TRL's ``RLOOConfig`` or ``GRPOConfig`` for a run: ``beta``, ``num_generations``,
    ``max_completion_length`` (tokens), ``temperature`` and the shared settings
    (``policy_training.trainer_arguments``: no evaluation, nothing saved). Other RL settings keep
    TRL's defaults (one optimisation pass per generation batch, clipping epsilon 0.2; GRPO:
    ``loss_type="dapo"``, ``scale_rewards="group"``).
    ``per_device_train_batch_size`` counts completions: each step samples
    ``per_device_train_batch_size * gradient_accumulation_steps * processes / num_generations``
    prompts.
    """
    config_class, _ = TRAINERS[config.algorithm]
    return config_class(
        **trainer_arguments(config, output_dir, evaluate=False, cuda=cuda),
        **dropout_argument(config),
        beta=config.beta, num_generations=config.num_generations,
        max_completion_length=config.max_completion_length, temperature=config.temperature,
        **({"use_vllm": True, "vllm_mode": "colocate"} if config.use_vllm else {}),
    )


def reference_model_description(trainer) -> str:
    """How the trainer gets its reference log-probabilities (``REFERENCE_*``)."""
    if trainer.beta == 0.0:
        return REFERENCE_NONE
    return REFERENCE_FROZEN_COPY if trainer.ref_model is not None else REFERENCE_ADAPTER_DISABLED


# --- the runner ----------------------------------------------------------------------------------


def run_rl(job, reporter: Reporter) -> dict:
    """Train the base policy online against a reward model (see ``RLConfig``); returns the job summary.

    Summary keys: ``algorithm``, ``prompts`` (trained on), ``prompts_distinct`` (distinct train
    prompts in the snapshot), ``filtered_too_long`` (prompts over ``max_prompt_length`` tokens),
    ``steps``, ``epochs``, ``reward_initial``/``reward_final`` (mean reward-model score in the first
    and last logging window), ``kl_final`` (per-token KL estimate in the last window; None when
    beta = 0), ``completion_length_final`` (tokens), ``train_loss``, ``reference_model``,
    ``samples_per_s`` (completions per second over ``train()``, TRL's ``train_samples_per_second``:
    sampling, scoring and updates), ``seconds`` (whole run, wall clock), ``checkpoint`` (name;
    None when cancelled), ``cancelled``.
    Raises:
        LookupError: no base, reward model or snapshot. ValueError: a reward model or adapter as the
        base, a policy as the reward model, a snapshot that is not a preference snapshot, or fewer
        prompts (after the length filter) than one generation batch needs.
        Anything transformers/TRL raise (e.g. unreadable weights).
    """
    clock = Stopwatch()
    config = policy_run_config(job, RLConfig)
    base = policy_base(config.base)
    reward_checkpoint = reward_model_checkpoint(config.reward_model)
    snapshot = run_snapshot(job, config, kind="preference", needs="online RL takes its prompts from preference rows")

    cuda = torch.cuda.is_available()
    gpu_options_require(config, cuda=cuda)  # before the model is loaded: one readable line
    tokenizer = run_tokenizer(base.location, padding_side="left")  # TRL generates left-padded
    choice = prompts_choose(
        rows_read(snapshot.train_path), tokenizer,
        max_prompt_length=config.max_prompt_length, max_prompts=config.max_prompts, seed=config.seed,
    )
    _, trainer_class = TRAINERS[config.algorithm]

    with run_directory(job.pk) as output_dir:
        args = trl_rl_config(config, output_dir, cuda=cuda)
        is_main, num_processes = process_roles(args)
        reporting = RLReporting(reporter, is_main=is_main, num_processes=num_processes)
        reward = RewardModelScore.load(reward_checkpoint.location)  # on this process's device
        per_batch = args.generation_batch_size // args.num_generations
        if len(choice.prompts) < per_batch:
            raise ValueError(
                f"{len(choice.prompts)} usable prompts ({choice.distinct} distinct, {choice.too_long} over "
                f"max_prompt_length={config.max_prompt_length} tokens); one step samples {per_batch} prompts "
                f"(per_device_train_batch_size x gradient_accumulation_steps x processes / num_generations)"
            )
        warnings: list[str] = []  # what TRL or the tokenizer warned about the data (summary and log)
        with data_warnings(warnings):
            trainer = trainer_class(
                model=base.location,  # full fine-tune with beta > 0: TRL loads the frozen reference from here too
                reward_funcs=[reward],
                args=args,
                train_dataset=prompt_dataset(choice.prompts),
                processing_class=tokenizer,
                callbacks=[reporting],
                peft_config=lora_config(config, task_type="CAUSAL_LM") if config.lora else None,
                **quantization_arguments(config),
            )
        for line in warnings:
            reporter.warn(line)
        reference = reference_model_description(trainer)
        result = trainer.train()

    logs = training_logs(trainer.state.log_history)
    first, last = (logs[0], logs[-1]) if logs else ({}, {})
    summary = {
        "algorithm": config.algorithm, "prompts": len(choice.prompts), "prompts_distinct": choice.distinct,
        "filtered_too_long": choice.too_long,
        "steps": trainer.state.global_step, "epochs": round(trainer.state.epoch or 0.0, 4),
        "reward_initial": finite(first.get("reward")), "reward_final": finite(last.get("reward")),
        "kl_final": finite(last.get("kl")), "completion_length_final": finite(last.get("completion_length")),
        "train_loss": finite(result.training_loss), "reference_model": reference,
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
        "method": config.algorithm, "algorithm": config.algorithm, "base": base.name,
        "reward_model": reward_checkpoint.name, "snapshot_id": snapshot.id, "snapshot_hash": snapshot.content_hash,
        "beta": config.beta, "num_generations": config.num_generations,
        "max_completion_length": config.max_completion_length, "temperature": config.temperature,
        "lora": config.lora, "reference_model": reference, "prompts": len(choice.prompts), "steps": summary["steps"],
        "metrics": {
            "reward_initial": summary["reward_initial"], "reward_final": summary["reward_final"],
            "kl_final": summary["kl_final"], "completion_length_final": summary["completion_length_final"],
        },
    }
    checkpoint = policy_publish(
        trainer.model, tokenizer, job=job, config=config, base=base, suffix=config.algorithm, metadata=metadata,
        on_phase=reporter.phase,
    )
    summary["checkpoint"] = checkpoint.name
    summary["seconds"] = round(clock.elapsed(), 3)
    return summary


def reward_model_checkpoint(name: str) -> Checkpoint:
    """The registered reward checkpoint that scores completions.

    Raises:
        LookupError: no checkpoint with that name. ValueError: not a reward model.
    """
    checkpoint = Checkpoint.objects.filter(name=name).first()
    if checkpoint is None:
        raise LookupError(f"no checkpoint named {name!r} (the run's reward model)")
    if checkpoint.kind != CheckpointKind.REWARD:
        raise ValueError(f"{checkpoint.name!r} is a {checkpoint.kind} checkpoint; online RL needs a reward model")
    return checkpoint

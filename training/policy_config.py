"""Configurations of the policy-optimisation runs: DPO, online RL (RLOO/GRPO) and SFT.

Pure code like ``training.config``: ``from_dict`` raises ``ConfigError`` naming every bad field,
before anything is queued. Defaults suit a CPU laptop with SmolLM2-135M: LoRA (so the reference
model is the adapter-disabled base and costs no second copy), short sequences, small batches.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from .config import ConfigError, _FromDict, _is_int, _is_number, training_fields_check

RL_ALGORITHMS = ("rloo", "grpo")
DPO_LOSSES = ("sigmoid", "ipo", "hinge", "robust")

_BASE = {"base": "required: the policy checkpoint to start from"}


@dataclass(kw_only=True)
class _PolicyTraining(_FromDict):
    """Settings every policy run shares; see ``training.config.training_fields_check``."""

    base: str
    snapshot_id: int | None = None
    rules: dict[str, Any] = field(default_factory=dict)
    output_name: str | None = None
    save_adapter: bool = False
    quantization: str = ""
    lora: bool = True
    lora_r: int = 16
    lora_alpha: int = 32
    lora_dropout: float = 0.05
    learning_rate: float = 5e-5
    num_train_epochs: float = 1.0
    max_steps: int | None = None
    per_device_train_batch_size: int = 4
    gradient_accumulation_steps: int = 1
    logging_steps: int = 5
    seed: int = 0

    REQUIRED = _BASE

    def _common_errors(self) -> dict[str, str]:
        errors = training_fields_check(self)
        if not isinstance(self.save_adapter, bool):
            errors["save_adapter"] = "must be true or false"
        elif self.save_adapter and self.lora is False:
            errors["save_adapter"] = "an adapter can only be saved from a LoRA run (set lora)"
        return errors  # quantization: training_fields_check (one rule for every run kind)


@dataclass(kw_only=True)
class DPOConfig(_PolicyTraining):
    """Direct Preference Optimisation (Rafailov et al. 2023) with TRL ``DPOTrainer`` on a
    preference snapshot. The reference model is ``base`` (the new checkpoint's parent); with LoRA,
    the adapter-disabled base. ``beta`` is the strength of the implicit KL penalty (TRL default
    0.1). The result is a full checkpoint (LoRA merged), or with ``save_adapter`` an adapter over
    ``base``. ``max_length`` caps prompt + response tokens."""

    beta: float = 0.1
    loss_type: str = "sigmoid"
    max_length: int = 256
    per_device_eval_batch_size: int = 8
    eval_steps: int = 50

    def validate(self) -> None:
        errors = self._common_errors()
        if not _is_number(self.beta) or not 0 < self.beta <= 10:
            errors["beta"] = "must be a number in (0, 10] (0.1 is usual)"
        if self.loss_type not in DPO_LOSSES:
            errors["loss_type"] = f"must be one of {', '.join(DPO_LOSSES)}"
        if errors:
            raise ConfigError(errors)


@dataclass(kw_only=True)
class RLConfig(_PolicyTraining):
    """Online RL against a reward model: TRL ``RLOOTrainer`` (REINFORCE leave-one-out, Ahmadian
    et al. 2024) by default, ``GRPOTrainer`` (Shao et al. 2024) by option. TRL no longer ships PPO;
    these are its maintained successors. Prompts come from the snapshot's train split (at most
    ``max_prompts``); each gets ``num_generations`` sampled completions of up to
    ``max_completion_length`` tokens, scored by ``reward_model``. ``beta`` is the KL coefficient
    to the reference model (``base``; with LoRA, the adapter-disabled base). ``use_vllm``: TRL
    samples the completions with vLLM in the training process (``vllm_mode="colocate"``); CUDA
    and the ``vllm`` package only."""

    reward_model: str
    algorithm: str = "rloo"
    beta: float = 0.05
    num_generations: int = 4
    max_completion_length: int = 64
    max_prompt_length: int = 256
    temperature: float = 1.0
    max_prompts: int | None = 64
    learning_rate: float = 1e-5
    use_vllm: bool = False

    REQUIRED = {**_BASE, "reward_model": "required: the reward checkpoint that scores completions"}

    def validate(self) -> None:
        errors = self._common_errors()
        if not isinstance(self.reward_model, str) or not self.reward_model.strip():
            errors["reward_model"] = "must be a reward checkpoint name"
        if self.algorithm not in RL_ALGORITHMS:
            errors["algorithm"] = f"must be one of {', '.join(RL_ALGORITHMS)} (TRL no longer ships PPO)"
        if not _is_number(self.beta) or not 0 <= self.beta <= 10:
            errors["beta"] = "must be a number from 0 to 10"
        if not _is_int(self.num_generations) or not 2 <= self.num_generations <= 64:
            errors["num_generations"] = "must be an integer from 2 to 64 (RLOO and GRPO compare samples of one prompt)"
        elif _is_int(self.per_device_train_batch_size) and self.per_device_train_batch_size % self.num_generations:
            errors["per_device_train_batch_size"] = f"must be a multiple of num_generations ({self.num_generations})"
        if not _is_int(self.max_completion_length) or not 1 <= self.max_completion_length <= 4096:
            errors["max_completion_length"] = "must be an integer from 1 to 4096 tokens"
        if not _is_int(self.max_prompt_length) or not 16 <= self.max_prompt_length <= 32768:
            errors["max_prompt_length"] = "must be an integer from 16 to 32768 tokens"
        if not _is_number(self.temperature) or not 0 < self.temperature <= 2:
            errors["temperature"] = "must be a number in (0, 2]"
        if self.max_prompts is not None and (not _is_int(self.max_prompts) or self.max_prompts < 1):
            errors["max_prompts"] = "must be a positive integer (or empty: every train prompt)"
        if not isinstance(self.use_vllm, bool):
            errors["use_vllm"] = "must be true or false (true: TRL generates with vLLM, colocated; CUDA and vllm needed)"
        if errors:
            raise ConfigError(errors)


@dataclass(kw_only=True)
class SFTConfig(_PolicyTraining):
    """Supervised fine-tuning with TRL ``SFTTrainer`` on an SFT snapshot of demonstrations
    (``prompt``/``completion`` rows; loss on the completion only). ``rules`` choose the sources:
    written or imported demonstrations, and optionally strongly chosen responses."""

    max_length: int = 512
    per_device_eval_batch_size: int = 8
    eval_steps: int = 50
    learning_rate: float = 1e-4

    def validate(self) -> None:
        errors = self._common_errors()
        if errors:
            raise ConfigError(errors)

"""GPU-only run options (QLoRA, vLLM generation): refused on a worker that cannot run them, with
one readable line, before any model is loaded; and the trainer arguments that turn them on.

bf16 mixed precision and activation checkpointing need no option: every runner turns them on
when CUDA is there (``policy_training.trainer_arguments``, ``reward.trl_reward_config``).
"""
from __future__ import annotations

import importlib.util
import os
from collections.abc import Callable, Mapping
from typing import Any


class GpuOptionRefused(RuntimeError):
    """A run asked for an option this worker cannot run (the message says which and why)."""


def _installed(package: str) -> bool:
    return importlib.util.find_spec(package) is not None


def gpu_options_require(
    config, *, cuda: bool, installed: Callable[[str], bool] = _installed, environ: Mapping[str, str] = os.environ,
) -> None:
    """Refuse the GPU-only options of ``config`` that this worker cannot run, and a launch this
    runner cannot save from.

    ``config``: a run config; reads ``quantization`` ("" or "4bit") and ``use_vllm`` where it has them.
    ``cuda``: whether this process sees a CUDA device. ``installed(package)``: whether a package imports.
    ``environ``: the launch's environment (``accelerate launch`` sets ``ACCELERATE_DEEPSPEED_ZERO_STAGE``).

    Raises:
        GpuOptionRefused: "quantization 4bit (QLoRA) needs a CUDA GPU; this worker has none ...",
            the package to install (``bitsandbytes``, ``vllm``), or DeepSpeed ZeRO-3 (it shards the
            parameters, and the checkpoint is written by rank 0 alone, which would hold a shard).
    """
    if environ.get("ACCELERATE_DEEPSPEED_ZERO_STAGE") == "3":
        raise GpuOptionRefused(
            "DeepSpeed ZeRO-3 shards the model's parameters and rank 0 alone writes the checkpoint; "
            "launch with config/accelerate/deepspeed_zero2.yaml (or multi_gpu.yaml) instead"
        )
    wanted = []
    if getattr(config, "quantization", ""):
        wanted.append(("quantization 4bit (QLoRA)", "bitsandbytes"))
    if getattr(config, "use_vllm", False):
        wanted.append(("use_vllm (vLLM generation)", "vllm"))
    for option, package in wanted:
        if not cuda:
            raise GpuOptionRefused(f"{option} needs a CUDA GPU; this worker has none (run it on a GPU worker, or turn the option off)")
        if not installed(package):
            raise GpuOptionRefused(f"{option} needs the {package} package on the worker: pip install {package}")


def quantization_arguments(config) -> dict[str, Any]:
    """Trainer keyword arguments for ``config.quantization``: ``{"quantization_config":
    BitsAndBytesConfig(...)}`` for "4bit" (NF4, double quantisation, bf16 compute: the QLoRA recipe,
    Dettmers et al. 2023), else ``{}``. TRL's trainers load the base with it and prepare it for
    k-bit training before adding the LoRA adapters."""
    if not getattr(config, "quantization", ""):
        return {}
    import torch
    from transformers import BitsAndBytesConfig

    return {"quantization_config": BitsAndBytesConfig(
        load_in_4bit=True, bnb_4bit_quant_type="nf4", bnb_4bit_use_double_quant=True,
        bnb_4bit_compute_dtype=torch.bfloat16,
    )}

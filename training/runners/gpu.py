"""GPU-only run options (QLoRA, vLLM generation): refused on a worker that cannot run them, with
one readable line, before any model is loaded (as is what DeepSpeed ZeRO-3 cannot run); and the
arguments that turn them on.

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


ZERO_STAGE = "ACCELERATE_DEEPSPEED_ZERO_STAGE"  # what ``accelerate launch`` sets from a DeepSpeed config
ZERO3_SAVE_16BIT = "ACCELERATE_DEEPSPEED_ZERO3_SAVE_16BIT_MODEL"  # its ``zero3_save_16bit_model``


def gpu_options_require(
    config, *, cuda: bool, installed: Callable[[str], bool] = _installed, environ: Mapping[str, str] = os.environ,
) -> None:
    """Refuse the GPU-only options of ``config`` that this worker cannot run, and a launch this
    run cannot save from.

    ``config``: a run config; reads ``quantization`` ("" or "4bit") and ``use_vllm`` where it has them.
    ``cuda``: whether this process sees a CUDA device. ``installed(package)``: whether a package imports.
    ``environ``: the launch's environment (``accelerate launch`` sets ``ACCELERATE_DEEPSPEED_ZERO_STAGE``).

    Raises:
        GpuOptionRefused: "quantization 4bit (QLoRA) needs a CUDA GPU; this worker has none ...",
            the package to install (``bitsandbytes``, ``vllm``), or what DeepSpeed ZeRO-3 cannot
            run (``zero3_refusal``).
    """
    if environ.get(ZERO_STAGE) == "3" and (reason := zero3_refusal(config, environ)):
        raise GpuOptionRefused(reason)
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


def zero3_refusal(config, environ: Mapping[str, str]) -> str | None:
    """Why a run with ``config`` cannot run under DeepSpeed ZeRO-3 (None when it can).

    Reward, DPO and SFT runs can: the trained model is gathered with ``trainer.save_model`` on every
    process (``gathered.trained_model``), which needs the launch's ``zero3_save_16bit_model: true``
    (DeepSpeed's ``stage3_gather_16bit_weights_on_model_save``; ``config/accelerate/deepspeed_zero3.yaml``).
    Online RL (``RLConfig``) cannot: its reward model scores completions in every process outside
    the DeepSpeed engine, and under ZeRO-3 transformers would load it sharded. QLoRA cannot either
    (a 4-bit base is not sharded, and this combination is untested).
    """
    from training.policy_config import RLConfig

    if isinstance(config, RLConfig):
        return ("DeepSpeed ZeRO-3 cannot run online RL (RLOO/GRPO) runs: the reward model scores completions in every "
                "process outside the DeepSpeed engine, and ZeRO-3 would load it sharded; launch RL runs with "
                "config/accelerate/deepspeed_zero2.yaml or multi_gpu.yaml")
    if getattr(config, "quantization", ""):
        return ("quantization 4bit (QLoRA) does not run under DeepSpeed ZeRO-3 here; launch QLoRA runs on one GPU "
                "(config/accelerate/single_gpu.yaml) or with config/accelerate/multi_gpu.yaml")
    if environ.get(ZERO3_SAVE_16BIT, "false").lower() != "true":
        return ("DeepSpeed ZeRO-3 without zero3_save_16bit_model: true cannot gather the trained weights into one "
                "checkpoint; launch with config/accelerate/deepspeed_zero3.yaml")
    return None


def quantization_arguments(config) -> dict[str, Any]:
    """Trainer keyword arguments for ``config.quantization``: ``{"quantization_config":
    BitsAndBytesConfig(...)}`` for "4bit" (NF4, double quantisation, bf16 compute: the QLoRA recipe,
    Dettmers et al. 2023), else ``{}``. TRL 1.16's DPO, SFT and RL trainers load the base with it and
    add the LoRA adapters (casting them to bf16); they do not call peft's
    ``prepare_model_for_kbit_training`` (the reward runner does: ``qlora_base_load``)."""
    if not getattr(config, "quantization", ""):
        return {}
    import torch
    from transformers import BitsAndBytesConfig

    return {"quantization_config": BitsAndBytesConfig(
        load_in_4bit=True, bnb_4bit_quant_type="nf4", bnb_4bit_use_double_quant=True,
        bnb_4bit_compute_dtype=torch.bfloat16,
    )}


def qlora_load_arguments(config, args) -> dict[str, Any]:
    """``from_pretrained`` keyword arguments for a QLoRA base: ``quantization_config``
    (``quantization_arguments``), the layers left unquantised in bf16 (``dtype``) and every weight on
    this process's GPU (``device_map={"": local rank}``: each process of a data-parallel run holds
    its own copy). ``args``: the run's TRL config (``local_process_index``)."""
    import torch

    return {**quantization_arguments(config), "dtype": torch.bfloat16, "device_map": {"": args.local_process_index}}


def qlora_base_load(location: str, config, args, *, auto_class, **kwargs):
    """The base of a QLoRA run, ready for LoRA: loaded in 4-bit (``qlora_load_arguments``; ``kwargs``
    such as ``num_labels=1`` go to ``auto_class.from_pretrained``), then peft's
    ``prepare_model_for_kbit_training`` (every base weight frozen, the unquantised layers cast to
    float32 for stable norms, input gradients on for activation checkpointing when
    ``args.activation_checkpointing``). Seeded with ``args.seed`` first, as TRL seeds before it
    loads a model, so a new reward head starts the same.

    Raises: whatever transformers, bitsandbytes or peft raise (e.g. no CUDA device).
    """
    from peft import prepare_model_for_kbit_training
    from transformers import set_seed

    set_seed(args.seed)
    model = auto_class.from_pretrained(location, **qlora_load_arguments(config, args), **kwargs)
    return prepare_model_for_kbit_training(
        model, use_gradient_checkpointing=bool(args.activation_checkpointing),
        gradient_checkpointing_kwargs=args.activation_checkpointing_kwargs,
    )

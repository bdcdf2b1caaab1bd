"""The trained model, whole, as one plain model object on the main process, ready to be written.

What a trainer holds after ``train()`` is usually written as it is (``publish.checkpoint_publish``:
LoRA merged, or the adapter alone). Two cases need more (``gathering_reason``):

- DeepSpeed ZeRO-3 (``args.deepspeed_plugin.zero_stage == 3``): each process holds a shard of
  every parameter. ``trainer.save_model`` gathers them (a collective: every process must call it)
  and the main process writes the 16-bit weights (``stage3_gather_16bit_weights_on_model_save``;
  a launch without it is refused, ``gpu.zero3_refusal``): the whole model, or for LoRA the
  adapter and its ``modules_to_save`` (a reward model's ``score`` head).
- A 4-bit base whose LoRA is to be merged (a QLoRA reward run): merging into the 4-bit weights
  would store rounded weights, so the adapter is written and merged into the base loaded again.

``trained_model`` then loads on the main process, on the CPU, what was written: the whole model,
or the base from ``base_location`` with the adapter applied (a ``PeftModel`` that
``checkpoint_publish`` merges or writes as an adapter). transformers' ZeRO-3 loading
(``deepspeed.zero.Init``, itself a collective) is off for that load: only the main process loads.
"""
from __future__ import annotations

import contextlib
from collections.abc import Iterator

import torch

ZERO3 = "DeepSpeed ZeRO-3 shards"
FOUR_BIT = "4-bit base"


def zero3_active(args) -> bool:
    """True when the trainer's arguments run DeepSpeed ZeRO stage 3 (``accelerate launch`` with a ZeRO-3 config)."""
    plugin = getattr(args, "deepspeed_plugin", None)
    return plugin is not None and getattr(plugin, "zero_stage", None) == 3


def gathering_reason(trainer, *, merge: bool) -> str | None:
    """Why the trainer's model cannot be written as it is: ``ZERO3``, ``FOUR_BIT`` (only when the
    LoRA is to be merged: ``merge``), or None."""
    if zero3_active(trainer.args):
        return ZERO3
    model = trainer.model
    if merge and hasattr(model, "peft_config") and getattr(model, "is_loaded_in_4bit", False):
        return FOUR_BIT
    return None


def training_dtype(args) -> torch.dtype:
    """The dtype the trained weights are loaded back in: bf16 or fp16 when the run trained in it, else float32."""
    return torch.bfloat16 if args.bf16 else torch.float16 if args.fp16 else torch.float32


@contextlib.contextmanager
def zero3_loading_off(args) -> Iterator[None]:
    """Load models as plain ones in this block, even under ZeRO-3 (transformers otherwise loads
    them sharded with ``deepspeed.zero.Init``, which every process would have to join)."""
    from transformers.integrations.deepspeed import set_hf_deepspeed_config, unset_hf_deepspeed_config

    plugin = getattr(args, "deepspeed_plugin", None)
    kept = getattr(plugin, "dschf", None) or getattr(args, "hf_deepspeed_config", None)
    unset_hf_deepspeed_config()
    try:
        yield
    finally:
        if kept is not None:
            set_hf_deepspeed_config(kept)


def saved_model_load(trainer, *, auto_class, base_location: str, scratch: str, is_main: bool, **load_kwargs):
    """Write the trained model with ``trainer.save_model(scratch)`` (every process: under ZeRO-3 a
    gather), then on the main process load it back on the CPU in ``training_dtype``: the model
    itself, or for a peft model the base at ``base_location`` (``auto_class``, ``load_kwargs`` such
    as ``num_labels=1``) with the saved adapter and ``modules_to_save`` applied. Returns the loaded
    model on the main process, None elsewhere.

    Raises: whatever transformers or peft raise (e.g. ZeRO-3 launched without 16-bit gathering).
    """
    trainer.save_model(scratch)
    if not is_main:
        return None
    dtype = training_dtype(trainer.args)
    with zero3_loading_off(trainer.args):
        if hasattr(trainer.model, "peft_config"):
            from peft import PeftModel

            base = auto_class.from_pretrained(base_location, dtype=dtype, **load_kwargs)
            return PeftModel.from_pretrained(base, scratch)
        return auto_class.from_pretrained(scratch, dtype=dtype, **load_kwargs)


def trained_model(trainer, *, auto_class, base_location: str, scratch: str, is_main: bool, merge: bool, **load_kwargs):
    """The model to write, on the main process (None elsewhere): ``trainer.model`` itself, or when
    ``gathering_reason`` gives a reason, ``saved_model_load``'s. Call it on every process: under
    ZeRO-3 it is a collective. ``merge``: the run merges its LoRA into the checkpoint."""
    if gathering_reason(trainer, merge=merge) is None:
        return trainer.model if is_main else None
    return saved_model_load(
        trainer, auto_class=auto_class, base_location=base_location, scratch=scratch, is_main=is_main, **load_kwargs
    )

"""Load a registered checkpoint for inference (torch and transformers imported here only)."""
from __future__ import annotations

from dataclasses import dataclass, field

import torch
from transformers import AutoModelForCausalLM, AutoTokenizer, PreTrainedModel, PreTrainedTokenizerBase


@dataclass
class LoadedPolicy:
    """A policy ready to generate: ``eos_token_ids`` end a turn; ``stop_strings`` are role markers
    (``Checkpoint.stop_strings``) at which a reply that goes on to write another turn is cut."""

    name: str
    model: PreTrainedModel
    tokenizer: PreTrainedTokenizerBase
    eos_token_ids: list[int]
    stop_strings: tuple[str, ...] = ()
    # generation's stopping criteria for these markers, built once (``generation.stop_string_criteria``)
    stop_criteria: dict = field(default_factory=dict, repr=False, compare=False)


def device_pick() -> torch.device:
    """CUDA when available, else CPU."""
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def end_of_turn_ids(tokenizer: PreTrainedTokenizerBase, model: PreTrainedModel) -> list[int]:
    """Token ids that end an assistant turn: the tokenizer's EOS, the model's generation EOS(s),
    and ``<|im_end|>``/``<|eot_id|>``/``<end_of_turn>`` where the vocabulary has them."""
    ids: set[int] = set()
    if tokenizer.eos_token_id is not None:
        ids.add(int(tokenizer.eos_token_id))
    generation_eos = getattr(model.generation_config, "eos_token_id", None)
    if isinstance(generation_eos, int):
        ids.add(generation_eos)
    elif isinstance(generation_eos, (list, tuple)):
        ids.update(int(i) for i in generation_eos)
    vocab = tokenizer.get_vocab()
    for marker in ("<|im_end|>", "<|eot_id|>", "<end_of_turn>"):
        if marker in vocab:
            ids.add(int(vocab[marker]))
    return sorted(ids)


def policy_load(
    name: str, location: str, *, is_adapter: bool = False, base_location: str | None = None,
    stop_strings: tuple[str, ...] | list[str] = (),
) -> LoadedPolicy:
    """Load a causal LM and its tokenizer for batched generation (left padding, eval mode).

    Args:
        name: the checkpoint name (recorded on completions).
        location: a local directory or a hub id (``Checkpoint.location``).
        is_adapter: ``location`` holds a peft adapter (``adapter_config.json``, ``adapter_model.safetensors``
            and the tokenizer); it is applied to its base and merged (``merge_and_unload``).
        base_location: the adapter's base (its parent checkpoint's ``location``). When None, the
            adapter's own ``base_model_name_or_path`` is used (``AutoPeftModelForCausalLM``).
        stop_strings: role markers replies are cut at (see ``generation.sample_batch``).
    Returns: the model in float32 on CPU (bfloat16 on CUDA), eval mode.
    Raises:
        OSError / ValueError from transformers or peft when a location holds no loadable model.
    """
    device = device_pick()
    dtype = torch.bfloat16 if device.type == "cuda" else torch.float32
    if is_adapter and base_location is not None:
        from peft import PeftModel

        base = AutoModelForCausalLM.from_pretrained(base_location, dtype=dtype)
        model = PeftModel.from_pretrained(base, location).merge_and_unload()
    elif is_adapter:
        from peft import AutoPeftModelForCausalLM

        model = AutoPeftModelForCausalLM.from_pretrained(location, dtype=dtype).merge_and_unload()
    else:
        model = AutoModelForCausalLM.from_pretrained(location, dtype=dtype)
    model.to(device).eval()
    tokenizer = AutoTokenizer.from_pretrained(location)
    tokenizer.padding_side = "left"
    if tokenizer.pad_token_id is None:
        tokenizer.pad_token = tokenizer.eos_token
    return LoadedPolicy(name, model, tokenizer, end_of_turn_ids(tokenizer, model), tuple(stop_strings))


def checkpoint_policy_load(checkpoint) -> LoadedPolicy:
    """``policy_load`` for a registered ``training.models.Checkpoint``: an adapter is applied to its
    parent checkpoint (the base it was trained on); the checkpoint's ``stop_strings`` come along.

    Raises:
        ValueError: an adapter checkpoint without a parent. Whatever ``policy_load`` raises.
    """
    base_location = None
    if checkpoint.is_adapter:
        if checkpoint.parent is None:
            raise ValueError(f"{checkpoint.name!r} is a LoRA adapter with no parent checkpoint to apply it to")
        base_location = checkpoint.parent.location
    return policy_load(
        checkpoint.name, checkpoint.location, is_adapter=checkpoint.is_adapter, base_location=base_location,
        stop_strings=tuple(checkpoint.stop_strings or ()),
    )

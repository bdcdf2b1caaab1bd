"""How a reward model reads a conversation, shared by reward training and scoring.

Training (TRL 1.16 ``RewardTrainer``) and scoring must feed the model the same tokens, or scores
drift from what the model learned. For a conversational pair, ``RewardTrainer._prepare_dataset``
tokenises ``prompt + chosen`` (and ``prompt + rejected``) with
``apply_chat_template(messages, tokenize=True, return_dict=True, tools=None)``: the whole chat,
no generation prompt, the template's own end of turn included (for SmolLM2's ChatML,
``...<|im_end|>\\n``), no extra EOS. Its collator (``DataCollatorForPreference``) pads on the
*right* with the tokenizer's pad token, and the sequence-classification head reads the last token
that is not the pad token. ``conversation_ids`` and ``rewards_compute`` do exactly that, so a
completion scored alone gets the reward the trained model gave it inside a training pair
(tests/test_scoring_runner.py checks this against ``RewardTrainer`` itself).
"""
from __future__ import annotations

from collections.abc import Sequence

import torch
from transformers import AutoModelForSequenceClassification, AutoTokenizer, PreTrainedModel, PreTrainedTokenizerBase

from .loading import device_pick

Messages = list[dict[str, str]]


def conversation_ids(tokenizer: PreTrainedTokenizerBase, prompt: Messages, response: Messages) -> list[int]:
    """Token ids of ``prompt + response`` as TRL's ``RewardTrainer`` tokenises a conversational pair side.

    Args:
        prompt: the chat so far (``[{"role", "content"}, ...]``).
        response: the reply being judged, usually one ``{"role": "assistant", ...}`` message.
    Returns: a flat list of token ids (chat template applied, no generation prompt).
    """
    encoded = tokenizer.apply_chat_template(list(prompt) + list(response), tokenize=True, return_dict=True, tools=None)
    return list(encoded["input_ids"])


def rewards_compute(
    model: PreTrainedModel, pad_token_id: int, sequences: Sequence[list[int]], *, batch_size: int
) -> list[float]:
    """The scalar reward of each token sequence, in batches padded on the right as TRL's collator pads.

    Args:
        model: a sequence-classification model with one label and ``config.pad_token_id`` set.
        pad_token_id: the id to pad with (the tokenizer's pad token, as in training).
        sequences: N lists of token ids (e.g. from ``conversation_ids``), each non-empty.
        batch_size: sequences per forward pass.
    Returns: N floats (the model's logit, in its own units: only differences between two
        completions of one prompt mean something, as ``sigmoid(r_a - r_b)`` = P(a preferred),
        Bradley-Terry as in Ouyang et al. 2022, eq. 1).
    Raises:
        ValueError: an empty sequence.
    """
    if any(len(ids) == 0 for ids in sequences):
        raise ValueError("cannot score an empty token sequence")
    device = next(model.parameters()).device
    rewards: list[float] = []
    for start in range(0, len(sequences), batch_size):
        batch = sequences[start:start + batch_size]
        width = max(len(ids) for ids in batch)
        input_ids = torch.full((len(batch), width), pad_token_id, dtype=torch.long)
        attention_mask = torch.zeros((len(batch), width), dtype=torch.long)
        for row, ids in enumerate(batch):
            input_ids[row, :len(ids)] = torch.tensor(ids, dtype=torch.long)
            attention_mask[row, :len(ids)] = 1
        with torch.inference_mode():
            logits = model(
                input_ids=input_ids.to(device), attention_mask=attention_mask.to(device), use_cache=False
            ).logits
        rewards.extend(float(value) for value in logits[:, 0].float().cpu())
    return rewards


def reward_model_load(location: str) -> tuple[PreTrainedModel, PreTrainedTokenizerBase]:
    """Load a reward checkpoint (sequence classification, one label) and its tokenizer for scoring.

    Returns: the model in eval mode, float32 on CPU (bfloat16 on CUDA where supported), and the
        tokenizer with a pad token (its EOS when it has none, as ``RewardTrainer`` does).
    Raises:
        ValueError: the checkpoint has more than one output (not a reward model).
        OSError / ValueError from transformers when the location holds no loadable model.
    """
    device = device_pick()
    dtype = torch.bfloat16 if device.type == "cuda" and torch.cuda.is_bf16_supported() else torch.float32
    model = AutoModelForSequenceClassification.from_pretrained(location, dtype=dtype)
    if model.config.num_labels != 1:
        raise ValueError(f"{location} has {model.config.num_labels} outputs; a reward model has one")
    tokenizer = AutoTokenizer.from_pretrained(location)
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    if model.config.pad_token_id is None:
        model.config.pad_token_id = tokenizer.pad_token_id
    model.to(device).eval()
    return model, tokenizer

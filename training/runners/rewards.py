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

The pad token. transformers' ``*ForSequenceClassification`` (``GenericForSequenceClassification``
in transformers 5) reads the score at the rightmost position where ``input_ids != pad_token_id``.
A tokenizer whose pad token is its end-of-turn token (SmolLM2's pad is ``<|im_end|>``; TRL falls
back to EOS when there is none) would then skip a conversation's own closing token, and read the
score one token early, whenever the chat template ends exactly with that token (SmolLM2's is saved
only by the newline after ``<|im_end|>``). So a reward model's pad token is one its chat template
never writes (``reward_pad_token``): reward training gives it to TRL (``reward_tokenizer``, from
which ``RewardTrainer`` sets ``config.pad_token_id`` and its collator's padding), and scoring sets
it again on load (``reward_model_load``), so checkpoints trained before this read right too.
"""
from __future__ import annotations

from collections.abc import Sequence

import torch
from jinja2 import TemplateError
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


# Tokens that close a turn in common chat templates (besides the tokenizer's EOS), as in
# ``loading.end_of_turn_ids``.
END_OF_TURN_TOKENS = ("<|im_end|>", "<|eot_id|>", "<end_of_turn>")
PROBE = (
    [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi"}],
    [{"role": "assistant", "content": "Hello."}],
)


def reward_pad_token(tokenizer: PreTrainedTokenizerBase) -> str:
    """A pad token for a reward model: a special token that its chat template never writes.

    Candidates, in order: the tokenizer's own pad token, its unknown token, then its other special
    tokens by id. A candidate is refused when the template writes it (a probe conversation with a
    system, a user and an assistant turn), or it is the BOS, EOS or a usual end-of-turn token
    (``END_OF_TURN_TOKENS``). So a conversation never ends with the pad token, and the score is
    read at its last real token, padded or not.
    Raises:
        ValueError: no special token qualifies (the message names the tokenizer's special tokens).
    """
    try:
        written = set(conversation_ids(tokenizer, *PROBE))
    except TemplateError:  # a template that refuses a system turn
        written = set(conversation_ids(tokenizer, PROBE[0][1:], PROBE[1]))
    vocab = tokenizer.get_vocab()
    refused = written | {vocab[token] for token in END_OF_TURN_TOKENS if token in vocab}
    refused |= {i for i in (tokenizer.bos_token_id, tokenizer.eos_token_id) if i is not None}
    specials = [token.content for _, token in sorted(tokenizer.added_tokens_decoder.items()) if token.special]
    for candidate in [tokenizer.pad_token, tokenizer.unk_token, *specials]:
        if candidate is not None and candidate in vocab and vocab[candidate] not in refused:
            return candidate
    raise ValueError(
        f"no special token to pad a reward model with: {', '.join(specials) or 'none'} all appear in the chat "
        "template or end a turn"
    )


def reward_tokenizer(location: str) -> PreTrainedTokenizerBase:
    """The tokenizer of a reward model, for training or scoring: ``location``'s, with
    ``reward_pad_token`` as its pad token (TRL's ``RewardTrainer`` copies it into the model's
    ``config.pad_token_id`` and pads with it; a saved reward checkpoint keeps it).

    Raises: what ``reward_pad_token`` and ``AutoTokenizer.from_pretrained`` raise.
    """
    tokenizer = AutoTokenizer.from_pretrained(location)
    tokenizer.pad_token = reward_pad_token(tokenizer)
    return tokenizer


def rewards_compute(
    model: PreTrainedModel, pad_token_id: int, sequences: Sequence[list[int]], *, batch_size: int
) -> list[float]:
    """The scalar reward of each token sequence, in batches padded on the right as TRL's collator pads.

    The model reads each score at the last token that is not ``pad_token_id``, which is the
    sequence's own last token as long as no sequence ends with the pad token (``reward_pad_token``
    sees to that; it is checked here).

    Args:
        model: a sequence-classification model with one label and ``config.pad_token_id`` set.
        pad_token_id: the id to pad with: the model's ``config.pad_token_id`` (the tokenizer's pad
            token, as in training).
        sequences: N lists of token ids (e.g. from ``conversation_ids``), each non-empty.
        batch_size: sequences per forward pass.
    Returns: N floats (the model's logit, in its own units: only differences between two
        completions of one prompt mean something, as ``sigmoid(r_a - r_b)`` = P(a preferred),
        Bradley-Terry as in Ouyang et al. 2022, eq. 1).
    Raises:
        ValueError: an empty sequence; a sequence ending with the pad token, or a pad token other
            than the model's (either would read a score at the wrong token).
    """
    if any(len(ids) == 0 for ids in sequences):
        raise ValueError("cannot score an empty token sequence")
    model_pad = model.config.get_text_config().pad_token_id
    if model_pad != pad_token_id:
        raise ValueError(
            f"padding with token {pad_token_id} but the model reads scores before its pad token {model_pad}; "
            "load the model with reward_model_load"
        )
    if any(ids[-1] == pad_token_id for ids in sequences):
        raise ValueError(
            f"a sequence ends with the pad token ({pad_token_id}): its score would be read at an earlier token; "
            "pad with a token the chat template never writes (reward_pad_token)"
        )
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
        tokenizer; both with ``reward_pad_token`` as the pad token (the one training used, or,
        for a checkpoint saved with an end-of-turn token as its pad, one that reads every score
        at the conversation's last real token).
    Raises:
        ValueError: the checkpoint has more than one output (not a reward model); no usable pad token.
        OSError / ValueError from transformers when the location holds no loadable model.
    """
    device = device_pick()
    dtype = torch.bfloat16 if device.type == "cuda" and torch.cuda.is_bf16_supported() else torch.float32
    model = AutoModelForSequenceClassification.from_pretrained(location, dtype=dtype)
    if model.config.num_labels != 1:
        raise ValueError(f"{location} has {model.config.num_labels} outputs; a reward model has one")
    tokenizer = reward_tokenizer(location)
    model.config.get_text_config().pad_token_id = tokenizer.pad_token_id
    model.to(device).eval()
    return model, tokenizer

"""Preference pairs tokenised and fitted to ``max_length`` before a trainer sees them (reward, DPO).

One step, shared by every pairwise run kind, so that what reaches TRL already fits and TRL drops,
cuts or changes nothing on its own:

1. Tokenise each side as TRL 1.16 does for a conversational pair: the prompt alone with the
   generation prompt (``apply_chat_template(prompt, add_generation_prompt=True)``, what
   ``DPOTrainer`` uses as ``prompt_ids``) and ``prompt + response`` with no generation prompt
   (what ``RewardTrainer`` and ``DPOTrainer`` tokenise). The prompt's ids must be a prefix of
   both: otherwise the model would train on a context it never sees at inference (TRL only logs
   a warning and moves the boundary); here the run is refused (``ChatTemplatePrefixError``),
   naming the checkpoint whose template does it.
2. Fit each pair to ``max_length`` tokens per side (``pair_fit``): first the start of the prompt
   goes (its end, the last turn and the assistant header, stays), down to ``min_prompt_tokens``;
   then the end of both responses. Both sides keep the same prompt tokens.
3. Drop a pair whose two responses are token-identical after that (a constant loss, no
   gradient; a tie in evaluation) and count it.

``PairCounts`` says per split what was cut or dropped; runners put it in the run summary.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from transformers import PreTrainedTokenizerBase

Messages = list[dict[str, str]]
MIN_PROMPT_SHARE = 4  # a cut prompt keeps at least max_length // MIN_PROMPT_SHARE tokens (if it had them)


class ChatTemplatePrefixError(ValueError):
    """The chat template renders a prompt differently when a response follows it."""


@dataclass(frozen=True)
class PairIds:
    """One pair's token ids: ``prompt`` (with the generation prompt), ``chosen``/``rejected`` (the
    responses' ids after the prompt, the template's end of turn included). ``prompt + chosen`` is
    the chosen side's whole sequence."""

    prompt: list[int]
    chosen: list[int]
    rejected: list[int]

    @property
    def chosen_sequence(self) -> list[int]:
        return self.prompt + self.chosen

    @property
    def rejected_sequence(self) -> list[int]:
        return self.prompt + self.rejected


@dataclass
class PairCounts:
    """What fitting one split's pairs changed: ``rows_in``; ``prompt_cut`` (pairs whose prompt lost
    its start); ``response_cut`` (pairs whose responses lost their end); ``identical`` (pairs left
    out: chosen and rejected token-identical after fitting); ``kept`` (indices of the rows kept,
    in order)."""

    rows_in: int = 0
    prompt_cut: int = 0
    response_cut: int = 0
    identical: int = 0
    kept: list[int] = field(default_factory=list)


def template_prefix_check(
    prompt_ids: Sequence[int], full_ids: Sequence[int], *, checkpoint: str, tokenizer: PreTrainedTokenizerBase
) -> None:
    """Raise ``ChatTemplatePrefixError`` unless ``prompt_ids`` is a prefix of ``full_ids``.

    The message is one line naming ``checkpoint`` (whose tokenizer's chat template it is) and the
    first token where they differ.
    """
    if list(full_ids[:len(prompt_ids)]) == list(prompt_ids):
        return
    at = next((i for i, (a, b) in enumerate(zip(prompt_ids, full_ids)) if a != b), min(len(prompt_ids), len(full_ids)))
    alone = tokenizer.decode(list(prompt_ids[at:at + 8]))
    followed = tokenizer.decode(list(full_ids[at:at + 8]))
    raise ChatTemplatePrefixError(
        f"the chat template of checkpoint {checkpoint!r} renders a prompt differently when a response follows it "
        f"(from token {at}: {alone!r} alone, {followed!r} followed by the response), so training would see a "
        f"context the model never gets when it answers; use a checkpoint whose template keeps the prompt as a prefix"
    )


def pair_tokenize(
    tokenizer: PreTrainedTokenizerBase, prompt: Messages, chosen: Messages, rejected: Messages, *, checkpoint: str
) -> PairIds:
    """A conversational pair's ids as TRL 1.16 tokenises them (see the module docstring).

    Raises:
        ChatTemplatePrefixError: the prompt's ids are not a prefix of prompt + response.
    """
    prompt_ids = list(tokenizer.apply_chat_template(
        list(prompt), tokenize=True, return_dict=True, add_generation_prompt=True, tools=None
    )["input_ids"])
    sides = []
    for response in (chosen, rejected):
        full = list(tokenizer.apply_chat_template(
            list(prompt) + list(response), tokenize=True, return_dict=True, tools=None
        )["input_ids"])
        template_prefix_check(prompt_ids, full, checkpoint=checkpoint, tokenizer=tokenizer)
        sides.append(full[len(prompt_ids):])
    return PairIds(prompt_ids, sides[0], sides[1])


def pair_fit(pair: PairIds, max_length: int) -> tuple[PairIds, bool, bool]:
    """``pair`` with each side at most ``max_length`` tokens: the prompt's start cut first (down to
    ``max_length // MIN_PROMPT_SHARE`` tokens, or all it has), then the responses' end.

    Returns: ``(fitted pair, prompt_cut, response_cut)``.
    """
    longest = max(len(pair.chosen), len(pair.rejected))
    if len(pair.prompt) + longest <= max_length:
        return pair, False, False
    keep_prompt = min(len(pair.prompt), max(max_length - longest, max_length // MIN_PROMPT_SHARE))
    prompt = pair.prompt[len(pair.prompt) - keep_prompt:]
    room = max_length - len(prompt)
    fitted = PairIds(prompt, pair.chosen[:room], pair.rejected[:room])
    return fitted, keep_prompt < len(pair.prompt), longest > room


def pairs_prepare(
    tokenizer: PreTrainedTokenizerBase, rows: Sequence[dict[str, Any]], *, max_length: int, checkpoint: str
) -> tuple[list[PairIds], PairCounts]:
    """Tokenise and fit a split's rows (each with ``prompt``/``chosen``/``rejected`` message lists).

    Returns: the kept pairs' fitted ids (every side at most ``max_length`` tokens, chosen != rejected)
        and the split's ``PairCounts`` (``kept`` lists their row indices).
    Raises:
        ChatTemplatePrefixError: see ``pair_tokenize``. KeyError: a row lacks a column.
    """
    counts = PairCounts(rows_in=len(rows))
    pairs: list[PairIds] = []
    for index, row in enumerate(rows):
        fitted, prompt_cut, response_cut = pair_fit(
            pair_tokenize(tokenizer, row["prompt"], row["chosen"], row["rejected"], checkpoint=checkpoint), max_length
        )
        counts.prompt_cut += prompt_cut
        counts.response_cut += response_cut
        if fitted.chosen == fitted.rejected:
            counts.identical += 1
            continue
        counts.kept.append(index)
        pairs.append(fitted)
    return pairs, counts


@dataclass
class PreparedSplits:
    """Both splits of a run fitted by ``splits_prepare``: ids, counts and the warnings to report."""

    train: list[PairIds]
    train_counts: PairCounts
    held_out: list[PairIds]
    held_out_counts: PairCounts
    warnings: list[str]


def splits_prepare(
    tokenizer: PreTrainedTokenizerBase,
    train_rows: Sequence[dict[str, Any]],
    eval_rows: Sequence[dict[str, Any]],
    *,
    max_length: int,
    checkpoint: str,
    warnings: list[str],
) -> PreparedSplits:
    """``pairs_prepare`` for a run's training and held-out rows, as every pairwise runner does it.

    Appends to ``warnings`` (the run's summary list, already collecting library warnings) one line
    per split that lost pairs as identical after fitting (``identical_warning``).
    Raises:
        ValueError: no training pair is left (all identical within ``max_length``), naming the fix.
        ChatTemplatePrefixError: see ``pair_tokenize``.
    """
    train, train_counts = pairs_prepare(tokenizer, train_rows, max_length=max_length, checkpoint=checkpoint)
    held_out, held_out_counts = pairs_prepare(tokenizer, eval_rows, max_length=max_length, checkpoint=checkpoint)
    if not train:
        raise ValueError(
            f"all {len(train_rows)} training pairs have the same tokens on both sides within max_length="
            f"{max_length}, so there is nothing to learn from: raise max_length"
        )
    for counts, split in ((train_counts, "training"), (held_out_counts, "held-out")):
        line = identical_warning(counts, split)
        if line:
            warnings.append(line)
    return PreparedSplits(train, train_counts, held_out, held_out_counts, warnings)


def split_counts(train: PairCounts, held_out: PairCounts) -> dict[str, dict[str, int]]:
    """The run summary's per-split counts: ``truncated_prompt``, ``truncated_response`` and
    ``filtered_identical``, each ``{"train": n, "eval": n}``."""
    return {
        "truncated_prompt": {"train": train.prompt_cut, "eval": held_out.prompt_cut},
        "truncated_response": {"train": train.response_cut, "eval": held_out.response_cut},
        "filtered_identical": {"train": train.identical, "eval": held_out.identical},
    }


def identical_warning(counts: PairCounts, split: str) -> str | None:
    """A summary warning when a split lost pairs as identical after fitting (None otherwise)."""
    if not counts.identical:
        return None
    return (
        f"{counts.identical} of {counts.rows_in} {split} pairs left out: chosen and rejected are the same tokens "
        f"after cutting to max_length (no preference signal); raise max_length to keep them"
    )


def pair_outcomes(rewards) -> dict[str, float | int]:
    """Strict wins and ties of ``(N, 2)`` ``[chosen, rejected]`` rewards (a reward model's scores,
    or DPO's implicit rewards).

    Returns: ``accuracy`` (share with chosen > rejected: a tie is not a win), ``tie_rate`` (share
    with equal rewards: neither right nor wrong), ``n``; both rates NaN when N is 0.
    """
    rewards = np.asarray(rewards, dtype=np.float64).reshape(-1, 2)
    n = len(rewards)
    if not n:
        return {"accuracy": float("nan"), "tie_rate": float("nan"), "n": 0}
    wins = rewards[:, 0] > rewards[:, 1]
    ties = rewards[:, 0] == rewards[:, 1]
    return {"accuracy": float(wins.mean()), "tie_rate": float(ties.mean()), "n": n}

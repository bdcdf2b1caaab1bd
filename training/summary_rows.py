"""A job's summary as the rows its page shows: the fields of the job's kind, each formatted (pure code).

A runner's summary is a JSON object (``Job.summary``); its keys depend on the kind (see each
runner's docstring). ``summary_rows`` picks the kind's fields in a fixed order with readable
labels, then any other key it recorded, and formats each value with ``value_text``:

- None: ``—``; booleans: ``yes``/``no``; integers: thousands separators (``12,345``);
- floats: 4 significant digits (``0.5946``, ``12.5``, ``5e-05``), whole numbers with separators
  from 1,000 up (``12,346``); a non-finite float as Python writes it (``nan``);
- lists: the items' texts joined by ``, ``; strings as they are;
- objects (``{"train": 3, "eval": 0}``): ``items``, a list of ``(key, text)`` pairs, nested
  objects flattened as ``outer / inner``.

Keys shown elsewhere on the page (``warnings``, ``eval_accuracy_note``, ``cancelled``,
``agreement_ceiling``) are not rows; the note is the accuracy row's ``note``, and the ceiling is
``ceiling_line``'s sentence beside the held-out accuracy.
"""
from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

TRAINING_COMMON_TAIL = [
    ("steps", "optimiser steps"),
    ("epochs", "epochs"),
    ("train_loss", "training loss"),
]
END = [("checkpoint", "checkpoint registered"), ("seconds", "seconds")]
# What fitting preference pairs to max length changed (training.runners.pair_tokens), reward and DPO.
PAIR_FITTING = [
    ("truncated_prompt", "pairs cut: the prompt's start"),
    ("truncated_response", "pairs cut: the responses' end"),
    ("filtered_identical", "pairs left out: chosen and rejected identical after cutting"),
]

# Each kind's summary keys (see the runners' docstrings), in the order the page shows them.
FIELDS: dict[str, list[tuple[str, str]]] = {
    "generation": [
        ("prompts", "prompts"),
        ("paired", "comparisons made"),
        ("completions", "completions written"),
        ("skipped_empty", "pairs skipped: an empty completion"),
        ("skipped_identical", "pairs skipped: identical completions"),
        ("truncated", "completions cut at max new tokens"),
        ("truncated_at_role_marker", "completions cut at a role marker (the model began another turn)"),
        ("new_tokens", "new tokens"),
        ("seconds", "seconds"),
    ],
    "scoring": [
        ("to_score", "completions to score"),
        ("scored", "completions scored"),
        ("truncated", "completions cut to max length"),
        ("prioritized", "comparisons re-prioritised"),
        ("tokens", "tokens scored"),
        ("completions_per_s", "completions/s"),
        ("seconds", "seconds"),
    ],
    "reward": [
        ("train_rows", "training pairs"),
        ("eval_rows", "held-out pairs"),
        *PAIR_FITTING,
        ("filtered_too_long", "pairs left out: longer than max length"),
        ("margin_used", "vote strength used as margin"),
        *TRAINING_COMMON_TAIL,
        ("eval_accuracy", "held-out accuracy (chosen scored higher)"),
        ("eval_tie_rate", "held-out ties (equal scores)"),
        ("eval_accuracy_by_strength", "held-out accuracy by vote strength"),
        ("eval_accuracy_all", "held-out accuracy, every pair (cut to max length)"),
        ("eval_rows_all", "held-out pairs, all"),
        ("samples_per_s", "pairs/s"),
        *END,
    ],
    "dpo": [
        ("train_rows", "training pairs"),
        ("eval_rows", "held-out pairs"),
        *PAIR_FITTING,
        ("filtered_prompt_too_long", "pairs left out: the prompt fills max length"),
        ("truncated", "pairs cut to max length"),
        *TRAINING_COMMON_TAIL,
        ("eval_loss", "held-out loss"),
        ("eval_reward_accuracy", "held-out implicit reward accuracy (chosen higher)"),
        ("eval_reward_tie_rate", "held-out implicit reward ties (equal)"),
        ("eval_reward_margin", "held-out implicit reward margin"),
        ("reference_model", "reference model"),
        ("samples_per_s", "pairs/s"),
        *END,
    ],
    "rl": [
        ("algorithm", "algorithm"),
        ("prompts", "prompts trained on"),
        ("prompts_distinct", "distinct train prompts"),
        ("filtered_too_long", "prompts left out: longer than max prompt length"),
        *TRAINING_COMMON_TAIL,
        ("reward_initial", "mean reward, first log"),
        ("reward_final", "mean reward, last log"),
        ("kl_final", "KL to the reference, last log"),
        ("completion_length_final", "completion length, last log (tokens)"),
        ("reference_model", "reference model"),
        ("samples_per_s", "completions/s"),
        *END,
    ],
    "sft": [
        ("train_rows", "training demonstrations"),
        ("eval_rows", "held-out demonstrations"),
        ("filtered_fully_truncated", "left out: the prompt fills max length"),
        ("at_max_length", "at max length (cut, or exactly that long)"),
        *TRAINING_COMMON_TAIL,
        ("eval_loss", "held-out loss"),
        ("eval_mean_token_accuracy", "held-out token accuracy"),
        ("samples_per_s", "demonstrations/s"),
        *END,
    ],
    "judging": [
        ("judge", "judge"),
        ("comparisons", "comparisons to judge"),
        ("judged", "comparisons judged (committed)"),
        ("votes", "AI votes written"),
        ("calls", "calls (both orders, each principle)"),
        ("ok", "calls with a verdict"),
        ("unparsed", "calls without a verdict in the answer"),
        ("failed", "calls failed"),
        ("inconsistent", "comparisons whose choice flipped with the order (recorded as ties)"),
        ("ties", "ties (flips included)"),
        ("no_verdict", "comparisons without a vote (an order gave no verdict)"),
        ("first_error", "first failure"),
        ("prompt_tokens", "prompt tokens"),
        ("completion_tokens", "answer tokens"),
        ("comparisons_per_s", "comparisons/s"),
        ("seconds", "seconds"),
    ],
}
NOT_ROWS = ("warnings", "eval_accuracy_note", "cancelled", "agreement_ceiling")
NOTES = {"eval_accuracy": "eval_accuracy_note"}  # a row's note: another summary key
SIGNIFICANT_DIGITS = 4


@dataclass(frozen=True)
class SummaryRow:
    """One row: ``label``; ``text`` (a scalar's text) or ``items`` (an object's ``(key, text)`` pairs); ``note``."""

    key: str
    label: str
    text: str = ""
    items: list[tuple[str, str]] = field(default_factory=list)
    note: str = ""


def number_text(value: float) -> str:
    """A float with ``SIGNIFICANT_DIGITS`` significant digits; whole numbers with separators from 1,000 up."""
    if not math.isfinite(value):
        return str(value)
    if abs(value) >= 10 ** SIGNIFICANT_DIGITS or (abs(value) >= 1000 and value == round(value)):
        return f"{round(value):,}"
    return f"{value:.{SIGNIFICANT_DIGITS}g}"


def value_text(value: Any) -> str:
    """A scalar or list as the page shows it (see the module docstring); an object as ``key: text, ...``."""
    if value is None:
        return "—"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        return number_text(value)
    if isinstance(value, Mapping):
        return ", ".join(f"{key}: {text}" for key, text in object_items(value)) or "—"
    if isinstance(value, (list, tuple)):
        return ", ".join(value_text(item) for item in value) or "—"
    return str(value)


# Keys shown in this order wherever they appear (splits, vote strengths); any others follow,
# alphabetically. A fixed order, because PostgreSQL's jsonb does not keep the order keys were written in.
KEY_ORDER = ("train", "eval", "slight", "clear", "strong")


def _ordered(keys) -> list:
    return sorted(keys, key=lambda key: (KEY_ORDER.index(key) if key in KEY_ORDER else len(KEY_ORDER), str(key)))


def object_items(value: Mapping[str, Any], prefix: str = "") -> list[tuple[str, str]]:
    """``(key, text)`` pairs of an object (``KEY_ORDER`` first, then alphabetical); a nested
    object's keys as ``outer / inner``."""
    items: list[tuple[str, str]] = []
    for key in _ordered(value):
        inner = value[key]
        name = f"{prefix}{key}".replace("_", " ")
        if isinstance(inner, Mapping) and inner:
            items.extend(object_items(inner, prefix=f"{name} / "))
        else:
            items.append((name, value_text(inner)))
    return items


def summary_rows(kind: str, summary: Mapping[str, Any]) -> list[SummaryRow]:
    """The rows of a ``kind`` job's ``summary``: its kind's fields that the summary has, in
    ``FIELDS`` order, then any other key it recorded, alphabetically (label: the key, ``_`` as
    spaces), less ``NOT_ROWS``."""
    fields = FIELDS.get(kind, [])
    known = {key for key, _ in fields}
    chosen = [(key, label) for key, label in fields if key in summary]
    chosen += [(key, key.replace("_", " ")) for key in _ordered(summary) if key not in known and key not in NOT_ROWS]
    rows = []
    for key, label in chosen:
        value = summary[key]
        note = summary.get(NOTES[key]) if key in NOTES else None
        if isinstance(value, Mapping) and value:
            rows.append(SummaryRow(key, label, items=object_items(value), note=note or ""))
        else:
            rows.append(SummaryRow(key, label, text=value_text(value), note=note or ""))
    return rows


def _counted(count: int, one: str, many: str) -> str:
    return f"{count:,} {one if count == 1 else many}"


def ceiling_line(summary: Mapping[str, Any]) -> tuple[str, str] | None:
    """A reward run's held-out accuracy beside the human agreement ceiling on the same eval
    comparisons (``summary["agreement_ceiling"]``, ``feedback.quality.ceiling``), as ``(line, note)``,
    two decimals: ``("Held-out accuracy 0.71 · human agreement ceiling 0.78 [0.70, 0.84] on 412
    votes of the same eval comparisons", "Left out: 3 tie or both-bad votes, ...")``; an undefined
    ceiling reads ``"human agreement ceiling undefined (<reason>)"``. The note lists what was left
    out (``""`` when nothing was). None when the summary has no ceiling."""
    ceiling = summary.get("agreement_ceiling")
    if not isinstance(ceiling, Mapping):
        return None
    accuracy = summary.get("eval_accuracy")
    held_out = f"{accuracy:.2f}" if isinstance(accuracy, (int, float)) and math.isfinite(accuracy) else "—"
    if ceiling.get("defined") and ceiling.get("value") is not None:
        n = ceiling.get("n", 0)
        human = (f"human agreement ceiling {ceiling['value']:.2f} [{ceiling['low']:.2f}, {ceiling['high']:.2f}] "
                 f"on {_counted(n, 'vote', 'votes')} of the same eval comparisons")
    else:
        human = f"human agreement ceiling undefined ({ceiling.get('reason') or 'no votes to compare'})"
    votes = ceiling.get("votes_left_out") or {}
    comparisons = ceiling.get("comparisons_left_out") or {}
    parts = [text for count, text in (
        (votes.get("tie_or_both_bad", 0), _counted(votes.get("tie_or_both_bad", 0), "tie or both-bad vote", "tie or both-bad votes")),
        (comparisons.get("single_vote", 0), _counted(comparisons.get("single_vote", 0), "comparison with one vote",
                                                     "comparisons with one vote")),
    ) if count]
    note = ("Left out: " + ", ".join(parts) + ".") if parts else ""
    return f"Held-out accuracy {held_out} · {human}", note

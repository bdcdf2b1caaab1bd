"""An evaluation's report, computed from stored completions and a reward model's scores (pure
code, no Django; ``training.evaluation.flow`` feeds it, pages and the API render it).

Per candidate against the baseline, on every eval-set prompt where both answered:

- outcome by reward margin ``m = score(candidate) - score(baseline)``: a win when ``m > tie_band``,
  a loss when ``m < -tie_band``, else a tie. Two identical replies tie whatever their scores
  (a reward model scoring the same text in two batches can differ in the last digits through
  padding). An empty reply gets no score: empty against a non-empty reply loses, two empty
  replies tie. A prompt where a non-empty reply has no score is
  left out (counted as ``unscored``).
- ``win_rate`` (ties count half, bootstrap interval) overall and ``by_category``
  (``training.evaluation.stats``), and the ``length_controlled`` win rate (Bradley-Terry with a
  length covariate); lengths are in **characters** (``LENGTH_UNIT``).
- ``lengths``: mean and median reply length of each side; ``refusals``: each side's refusal rate
  (``training.evaluation.refusals``).
- ``top_wins``/``top_losses``: the ``TOP_EXAMPLES`` prompts with the largest and smallest margins.
- ``references``: the candidate against its parent and its imported base, where their
  completions exist on the same prompts (in this run, or in an earlier evaluation on this set).

The result is JSON-safe (no NaN: undefined figures carry ``"defined": false`` and a reason).
"""
from __future__ import annotations

import statistics
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from .refusals import refusal_rate
from .stats import by_category, length_controlled_win_rate, win_rate

LENGTH_UNIT = "characters"
TOP_EXAMPLES = 5
EXAMPLE_CHARS = 2000


@dataclass(frozen=True)
class Answer:
    """One model's reply to one prompt: text, the reward model's score (None: unscored), empty flag."""

    completion_id: int
    text: str
    score: float | None
    is_empty: bool


@dataclass(frozen=True)
class PromptInfo:
    """An eval-set prompt: its prompt row id, category (``""``: none) and last user turn (for examples)."""

    prompt_id: int
    category: str
    text: str


def outcome(candidate: Answer, baseline: Answer, tie_band: float) -> tuple[float, float | None] | None:
    """``(outcome in {1, 0.5, 0}, margin or None)`` of ``candidate`` against ``baseline``, or
    None when a non-empty side has no score (see the module docstring)."""
    if candidate.text == baseline.text:
        return 0.5, None
    if candidate.is_empty or baseline.is_empty:
        if candidate.is_empty and baseline.is_empty:
            return 0.5, None
        return (0.0 if candidate.is_empty else 1.0), None
    if candidate.score is None or baseline.score is None:
        return None
    margin = candidate.score - baseline.score
    return (1.0 if margin > tie_band else 0.0 if margin < -tie_band else 0.5), margin


def lengths(texts: Sequence[str]) -> dict[str, Any]:
    """``{"mean", "median", "n", "unit": "characters"}`` of reply lengths (None for no replies)."""
    sizes = [len(t) for t in texts]
    return {"mean": statistics.fmean(sizes) if sizes else None, "median": statistics.median(sizes) if sizes else None,
            "n": len(sizes), "unit": LENGTH_UNIT}


def _example(info: PromptInfo, c: Answer, b: Answer, margin: float) -> dict[str, Any]:
    return {"prompt_id": info.prompt_id, "category": info.category, "prompt": info.text[:EXAMPLE_CHARS],
            "candidate": c.text[:EXAMPLE_CHARS], "baseline": b.text[:EXAMPLE_CHARS],
            "candidate_score": c.score, "baseline_score": b.score, "margin": margin}


def head_to_head(
    prompts: Sequence[PromptInfo], candidate: Mapping[int, Answer], baseline: Mapping[int, Answer], *,
    tie_band: float, seed: int = 0, details: bool = True,
) -> dict[str, Any]:
    """``candidate`` against ``baseline`` (each: prompt id -> Answer) on ``prompts``.

    Returns ``n`` (prompts with an outcome), ``unscored``, ``missing`` (prompts either side did not
    answer), ``win_rate``; with ``details`` also ``by_category``, ``length_controlled``,
    ``top_wins``, ``top_losses``.
    """
    outcomes, categories, c_len, b_len, examples = [], [], [], [], []
    unscored = missing = 0
    for info in prompts:
        c, b = candidate.get(info.prompt_id), baseline.get(info.prompt_id)
        if c is None or b is None:
            missing += 1
            continue
        result = outcome(c, b, tie_band)
        if result is None:
            unscored += 1
            continue
        value, margin = result
        outcomes.append(value)
        categories.append(info.category)
        c_len.append(len(c.text))
        b_len.append(len(b.text))
        if margin is not None:
            examples.append((margin, info, c, b))
    out: dict[str, Any] = {"n": len(outcomes), "unscored": unscored, "missing": missing,
                           "win_rate": win_rate(outcomes, seed=seed)}
    if not details:
        return out
    examples.sort(key=lambda e: e[0])
    out["by_category"] = by_category(outcomes, categories, seed=seed)
    out["length_controlled"] = length_controlled_win_rate(outcomes, c_len, b_len, seed=seed)
    out["top_wins"] = [_example(i, c, b, m) for m, i, c, b in reversed(examples[-TOP_EXAMPLES:]) if m > tie_band]
    out["top_losses"] = [_example(i, c, b, m) for m, i, c, b in examples[:TOP_EXAMPLES] if m < -tie_band]
    return out


def report_build(
    *, prompts: Sequence[PromptInfo], answers: Mapping[str, Mapping[int, Answer]], baseline: str,
    candidates: Sequence[str], references: Mapping[str, Sequence[tuple[str, str, str]]], tie_band: float,
    reward_model: str, seed: int = 0,
) -> dict[str, Any]:
    """The whole report.

    Args:
        prompts: the eval set's prompts, in item order.
        answers: model name -> {prompt id -> Answer}, for the baseline, every candidate and every
            reference model.
        references: candidate -> ``[(role, model name, source), ...]`` with role ``parent`` or
            ``base`` and source saying where its completions come from (``"this run"``, ...).
        tie_band: reward units (>= 0). reward_model: its name, recorded.
    Returns: ``{"reward_model", "tie_band", "length_unit", "prompts", "categories", "baseline":
        {"name", "lengths", "refusals"}, "candidates": [{"name", "lengths", "refusals",
        "vs_baseline": head_to_head(...), "references": [{"role", "name", "source", "n",
        "win_rate", ...}]}]}``.
    """
    def side(name: str) -> dict[str, Any]:
        texts = [a.text for a in answers.get(name, {}).values()]
        return {"name": name, "lengths": lengths(texts), "refusals": refusal_rate(texts)}

    categories: dict[str, int] = {}
    for info in prompts:
        categories[info.category] = categories.get(info.category, 0) + 1
    rows = []
    for name in candidates:
        own = answers.get(name, {})
        refs = []
        for role, ref_name, source in references.get(name, ()):
            vs = head_to_head(prompts, own, answers.get(ref_name, {}), tie_band=tie_band, seed=seed, details=False)
            if vs["n"]:
                refs.append({"role": role, "name": ref_name, "source": source, **vs})
        rows.append({**side(name), "vs_baseline": head_to_head(prompts, own, answers.get(baseline, {}),
                                                               tie_band=tie_band, seed=seed),
                     "references": refs})
    return {"reward_model": reward_model, "tie_band": tie_band, "length_unit": LENGTH_UNIT, "prompts": len(prompts),
            "categories": categories, "baseline": side(baseline), "candidates": rows}


VOTE_OUTCOMES = {"tie": 0.5, "both_bad": 0.5}


def vote_outcomes(
    votes: Sequence[tuple[int, int, str]], owners: Mapping[int, str], *, candidate: str, baseline: str,
) -> list[float]:
    """The candidate's outcome on each vote ``(completion_a_id, completion_b_id, choice)`` between
    ``candidate`` and ``baseline`` (``owners``: completion id -> model name): 1 when the vote chose
    the candidate's reply, 0 the baseline's, 0.5 for ``tie`` and ``both_bad`` (neither preferred).
    Votes on other pairs are skipped. Every vote counts once (with one vote per comparison, one
    per prompt)."""
    out = []
    for a, b, choice in votes:
        models = (owners.get(a), owners.get(b))
        if set(models) != {candidate, baseline}:
            continue
        if choice in VOTE_OUTCOMES:
            out.append(VOTE_OUTCOMES[choice])
        elif choice in ("a", "b"):
            out.append(1.0 if models[0 if choice == "a" else 1] == candidate else 0.0)
    return out

"""AI judges measured against people (issue 16, item 5): pure numpy, no Django.

Per judge, on the comparisons it judged that people also voted on with a strict majority (the
*overlap*): percent agreement with the human majority and Cohen's kappa between the judge and the
majority, each with a percentile bootstrap interval that resamples the overlapped comparisons
(``resampling.percentile_interval``; the 4 x 4 confusion matrix over a/b/tie/both_bad is drawn as
a multinomial, as ``pairs.pair_intervals`` does for annotator pairs, and kappa is
``pairs.kappa_from_confusions``: the arithmetic of ``sklearn.metrics.cohen_kappa_score``). Also
the judge's tie rate over all its votes and the overlap count. The judging side holds what only
it knows, and passes it in: each pair's verdicts in both orders (``order_verdicts``, for the
position consistency rate) and the judge's votes per principle of a constitution
(``by_principle``, each measured the same way).

Degenerate cases never give NaN: a figure is ``{"value": None, "defined": False, "reason": ...}``
like ``agreement.agreement_summary``'s.
"""
from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np

from .labels import LABELS
from .pairs import CELLS, K, kappa_from_confusions
from .resampling import percentile_interval

NO_OVERLAP = "no comparison judged by the judge that people also voted on with a strict majority"
NO_VARIATION = "no label variation"
NO_VOTES = "no votes"
NO_ORDER_PAIRS = "no pair judged in both orders"
_CODE = {label: k for k, label in enumerate(LABELS)}


def human_majority(votes: Iterable[tuple[int, str]]) -> tuple[dict[int, str], int]:
    """People's strict majority per comparison from ``(comparison id, choice)`` votes:
    ``({comparison id: choice}, number of comparisons with no strict majority)``. A split (1-1,
    2-2-1) has no majority and is left out, never broken by order."""
    by_comparison: dict[int, Counter] = {}
    for comparison_id, choice in votes:
        by_comparison.setdefault(comparison_id, Counter())[choice] += 1
    majority, split = {}, 0
    for comparison_id, tally in by_comparison.items():
        top = tally.most_common(2)
        if len(top) > 1 and top[0][1] == top[1][1]:
            split += 1
        else:
            majority[comparison_id] = top[0][0]
    return majority, split


def _undefined(reason: str, n: int) -> dict[str, Any]:
    return {"value": None, "defined": False, "reason": reason, "n": n}


def _defined(value: float, low: float, high: float, n: int) -> dict[str, Any]:
    finite = math.isfinite(low) and math.isfinite(high)
    return {"value": float(value), "defined": True, "low": float(low) if finite else None,
            "high": float(high) if finite else None, "n": n}


def _agreement_figures(judge: np.ndarray, people: np.ndarray, *, resamples: int, rng: np.random.Generator,
                       confidence: float) -> tuple[dict[str, Any], dict[str, Any]]:
    """(percent agreement, Cohen's kappa) of two label-code arrays over the same comparisons."""
    m = len(judge)
    if m == 0:
        return _undefined(NO_OVERLAP, 0), _undefined(NO_OVERLAP, 0)
    confusion = np.bincount(judge * K + people, minlength=CELLS).astype(np.int64)
    percent = float(np.trace(confusion.reshape(K, K)) / m)
    kappa = float(kappa_from_confusions(confusion))
    if resamples:
        draws = rng.multinomial(m, confusion / m, size=resamples)  # (resamples, 16): resampled comparisons
        diagonal = draws.reshape(resamples, K, K).trace(axis1=1, axis2=2) / m
        kappas = kappa_from_confusions(draws)
        (p_low,), (p_high,) = percentile_interval(diagonal[:, None], confidence)
        (k_low,), (k_high,) = percentile_interval(kappas[:, None], confidence)
    else:
        p_low = p_high = k_low = k_high = float("nan")
    percent_figure = _defined(percent, p_low, p_high, m)
    kappa_figure = _defined(kappa, k_low, k_high, m) if math.isfinite(kappa) else _undefined(NO_VARIATION, m)
    return percent_figure, kappa_figure


def position_consistency(order_verdicts: Sequence[tuple[str, str]], *, resamples: int = 1000, seed: int = 0,
                         confidence: float = 0.95) -> dict[str, Any]:
    """The share of pairs whose verdict is the same in both orders, with a bootstrap interval.

    ``order_verdicts``: per pair judged twice, ``(verdict with A first, verdict with B first)``, both
    in stored terms (``a``/``b``/``tie``/``both_bad`` naming the same completions), as the judging
    job records them. Undefined (``reason``) with no pair."""
    n = len(order_verdicts)
    if n == 0:
        return _undefined(NO_ORDER_PAIRS, 0)
    same = np.fromiter((first == second for first, second in order_verdicts), dtype=np.float64, count=n)
    rate = float(same.mean())
    if not resamples:
        return _defined(rate, float("nan"), float("nan"), n)
    rng = np.random.default_rng(seed)
    draws = rng.binomial(n, rate, size=resamples) / n  # resampling n pairs of which a share ``rate`` agree
    (low,), (high,) = percentile_interval(draws[:, None], confidence)
    return _defined(rate, low, high, n)


def judge_agreement(judge_votes: Mapping[int, str], human_majority: Mapping[int, str], *,
                    order_verdicts: Sequence[tuple[str, str]] | None = None,
                    by_principle: Mapping[str, Mapping[int, str]] | None = None,
                    resamples: int = 1000, seed: int = 0, confidence: float = 0.95) -> dict[str, Any]:
    """One judge against people, as a JSON-safe dict (no NaN).

    Args:
        judge_votes: ``{comparison id: choice}``, the judge's vote per comparison (``a``, ``b``,
            ``tie``, ``both_bad``).
        human_majority: ``{comparison id: choice}``, people's strict majority (``human_majority``).
        order_verdicts: optional, from the judging job: each pair's verdicts in both orders
            (``position_consistency``).
        by_principle: optional, from the judging job: ``{principle: {comparison id: choice}}``,
            each measured against the same majority.
        resamples, seed, confidence: the bootstrap (0 resamples: no interval, ``low``/``high`` None).
    Returns:
        ``{"votes": int, "overlap": int, "agreement": figure, "kappa": figure, "tie_rate": figure,
        "position_consistency": figure (only with order_verdicts), "principles": {name: {"overlap",
        "agreement", "kappa", "tie_rate", "votes"}} (only with by_principle)}``; a figure is
        ``{"value", "defined", "low", "high", "n"}`` or ``{"value": None, "defined": False,
        "reason", "n"}``.
    Raises:
        ValueError: a choice outside a/b/tie/both_bad.
    """
    rng = np.random.default_rng(seed)
    result = _measured(judge_votes, human_majority, resamples=resamples, rng=rng, confidence=confidence)
    if order_verdicts is not None:
        result["position_consistency"] = position_consistency(order_verdicts, resamples=resamples, seed=seed,
                                                              confidence=confidence)
    if by_principle is not None:
        result["principles"] = {
            name: _measured(votes, human_majority, resamples=resamples, rng=rng, confidence=confidence)
            for name, votes in sorted(by_principle.items())
        }
    return result


def _measured(judge_votes: Mapping[int, str], majority: Mapping[int, str], *, resamples: int,
              rng: np.random.Generator, confidence: float) -> dict[str, Any]:
    for choice in (*judge_votes.values(), *majority.values()):
        if choice not in _CODE:
            raise ValueError(f"unknown choice {choice!r}; expected one of {', '.join(LABELS)}")
    overlap = sorted(set(judge_votes) & set(majority))
    judge = np.array([_CODE[judge_votes[c]] for c in overlap], dtype=np.int64)
    people = np.array([_CODE[majority[c]] for c in overlap], dtype=np.int64)
    agreement, kappa = _agreement_figures(judge, people, resamples=resamples, rng=rng, confidence=confidence)
    n = len(judge_votes)
    ties = sum(1 for choice in judge_votes.values() if choice == "tie")
    tie_rate = _defined(ties / n, float("nan"), float("nan"), n) if n else _undefined(NO_VOTES, 0)
    return {"votes": n, "overlap": len(overlap), "agreement": agreement, "kappa": kappa, "tie_rate": tie_rate}

"""Inter-annotator agreement over preference votes: pure numpy, no Django.

Input is one entry per vote: the item (comparison) id, the annotator id and the label (see
``labels``: four nominal choices; a 7-step ordinal scale with missing steps). Only items with two
or more votes say anything about agreement; the others are counted and left out.

Figures (each with a percentile bootstrap interval that resamples items, seeded):

- percent agreement: the share of agreeing pairs among all pairs of votes on the same item
  (pooled over pairs, so an item with n votes weighs n(n-1)/2), once with all four labels and
  once with tie votes left out (items keep their other votes);
- Cohen's kappa for every annotator pair that shares an item, with the number of shared items
  (``pairs.py``; each pair's interval resamples its own shared items);
- Fleiss' kappa (Fleiss 1971; ``statsmodels.stats.inter_rater.fleiss_kappa``). It assumes the
  same number of votes on every item, so it is computed on the items with the most common number
  of votes (the larger on a tie) and the rest are reported as ``items_left_out``;
- Krippendorff's alpha, nominal (four labels) and ordinal (the 7 steps, missing steps left out),
  which take any number of votes per item (``alpha.py``; ``krippendorff.alpha``).

Speed: an item enters every figure but Cohen's only through its *pattern*, its vote counts per
nominal label and per ordinal step; 333,000 items with three votes have a few hundred patterns.
Each figure is a function of sums of per-pattern features, and a bootstrap resample of the items
is a multinomial draw over the patterns (``resampling.py``), so 1,000 resamples are one
(resamples x patterns) @ (patterns x features) product.
"""
from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np

from .alpha import alpha_from_coincidences, coincidence_rows
from .labels import LABELS, STEPS, nominal_codes, ordinal_codes
from .pairs import kappa_from_confusions, pair_confusions, pair_intervals, pair_observations
from .resampling import pattern_weights, percentile_interval

NO_VOTES = "no votes"
SINGLE_RATER = "a single rater"
NO_ITEM = "no item with two or more votes"
NO_ITEM_WITHOUT_TIES = "no item with two or more votes other than ties"
NO_ITEM_ORDINAL = "no item with two or more votes on the ordinal scale"
NO_VARIATION = "no label variation"

_TIE = LABELS.index("tie")
_N, _S = len(LABELS), len(STEPS)
# Columns of the per-pattern feature matrix.
_AGREE, _PAIRS, _AGREE_NT, _PAIRS_NT, _FLEISS_ITEMS, _FLEISS_SQUARES = range(6)
_FLEISS_LABELS = slice(6, 6 + _N)
_ALPHA_NOMINAL = slice(_FLEISS_LABELS.stop, _FLEISS_LABELS.stop + _N * _N)
_ALPHA_ORDINAL = slice(_ALPHA_NOMINAL.stop, _ALPHA_NOMINAL.stop + _S * _S)
FIGURES = ("percent_agreement", "percent_agreement_without_ties", "fleiss_kappa",
           "krippendorff_alpha_nominal", "krippendorff_alpha_ordinal")


def agreement_summary(items: Sequence[int] | np.ndarray, annotators: Sequence[int] | np.ndarray,
                      choices: Iterable[str], strengths: Iterable[str | None] | None = None, *,
                      resamples: int = 1000, seed: int = 0, confidence: float = 0.95) -> dict[str, Any]:
    """Every agreement figure for a set of votes, as a JSON-safe dict (no NaN, no Infinity).

    ``items``, ``annotators``: integer ids per vote (any integers; comparison and user ids), shape (n,).
    ``choices``: ``a``/``b``/``tie``/``both_bad`` per vote; ``strengths``: ``slight``/``clear``/
    ``strong``/``""`` per vote, or None (then every vote is missing on the ordinal scale).
    ``resamples``: bootstrap resamples (0: no intervals); ``seed`` fixes them; ``confidence``: the
    interval's coverage (0.95: the 2.5th and 97.5th percentiles).

    Each figure is ``{"value": float, "defined": True, "low", "high", "n_items", "n_votes"}``, or
    ``{"value": None, "defined": False, "reason": ..., "n_items", "n_votes"}`` when it cannot be
    computed (reasons: the module's constants, e.g. "a single rater", "no label variation").
    ``low``/``high`` are None when ``resamples`` is 0 or no resample defined the figure.
    ``cohen_kappa`` holds ``pairs``: one such dict per annotator pair sharing an item, plus
    ``annotators`` (the two ids, smaller first) and ``shared_items``; pairs sharing no item are
    absent and counted in ``n_pairs_without_shared_items``.

    Raises ValueError for arrays of different lengths, an unknown choice or strength, or an
    annotator with two votes on one item.

    Sources: Cohen (1960) as ``sklearn.metrics.cohen_kappa_score``; Fleiss (1971) as
    ``statsmodels.stats.inter_rater.fleiss_kappa``; Krippendorff (2011) as ``krippendorff.alpha``;
    percentile bootstrap, Efron & Tibshirani (1993). The tests compare with those libraries.
    """
    choices = choices if isinstance(choices, (list, tuple, np.ndarray)) else list(choices)
    nominal = nominal_codes(choices)
    ordinal = ordinal_codes(choices, strengths) if strengths is not None else np.full(len(nominal), -1, np.int8)
    return agreement_from_codes(items, annotators, nominal, ordinal, resamples=resamples, seed=seed,
                                confidence=confidence)


def agreement_from_codes(items: Sequence[int] | np.ndarray, annotators: Sequence[int] | np.ndarray,
                         nominal: np.ndarray, ordinal: np.ndarray, *, resamples: int = 1000, seed: int = 0,
                         confidence: float = 0.95) -> dict[str, Any]:
    """``agreement_summary`` on label codes (``labels.nominal_codes``/``ordinal_codes``), all shape (n,).

    ``nominal``: 0-3 in ``LABELS`` order; ``ordinal``: step 0-6 or -1 (missing). Raises ValueError
    for arrays of different lengths or shapes, codes out of range, negative ``resamples``, a
    ``confidence`` outside (0, 1), or an annotator with two votes on one item.
    """
    items, annotators = np.asarray(items), np.asarray(annotators)
    nominal, ordinal = np.asarray(nominal, np.int64), np.asarray(ordinal, np.int64)
    if not (items.ndim == annotators.ndim == nominal.ndim == ordinal.ndim == 1) or not (
            len(items) == len(annotators) == len(nominal) == len(ordinal)):
        raise ValueError("items, annotators and labels must be 1-D arrays of the same length")
    if len(nominal) and (nominal.min() < 0 or nominal.max() >= _N or ordinal.min() < -1 or ordinal.max() >= _S):
        raise ValueError("label codes out of range")
    if resamples < 0:
        raise ValueError("resamples must be 0 or more")
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence must be between 0 and 1, not {confidence}")
    rng = np.random.default_rng(seed)

    item_ids, item = np.unique(items, return_inverse=True)
    rater_ids, rater = np.unique(annotators, return_inverse=True)
    n_items, n_raters = len(item_ids), len(rater_ids)
    key = item.astype(np.int64) * max(n_raters, 1) + rater
    order = np.argsort(key, kind="stable")
    twice = np.flatnonzero(np.diff(key[order]) == 0)
    if len(twice):
        vote = order[twice[0]]
        raise ValueError(f"annotator {rater_ids[rater[vote]]} has two votes on item {item_ids[item[vote]]}")

    per_item = np.bincount(item, minlength=n_items)
    nominal_counts = np.bincount(item * _N + nominal, minlength=n_items * _N).reshape(n_items, _N)
    stepped = ordinal >= 0
    ordinal_counts = np.bincount(item[stepped] * _S + ordinal[stepped], minlength=n_items * _S).reshape(n_items, _S)
    kept = per_item >= 2
    base_reason = (NO_VOTES if len(nominal) == 0 else SINGLE_RATER if n_raters == 1
                   else NO_ITEM if not kept.any() else None)

    summary: dict[str, Any] = {
        "votes": int(len(nominal)), "items": int(n_items), "annotators": int(n_raters),
        "items_with_two_or_more_votes": int(kept.sum()), "votes_on_those_items": int(per_item[kept].sum()),
        "resamples": int(resamples), "seed": int(seed), "confidence": float(confidence),
        "labels": list(LABELS), "ordinal_steps": list(STEPS),
    }
    patterns, frequency = _patterns(np.hstack([nominal_counts[kept], ordinal_counts[kept]]))
    modal = _modal_count(per_item[kept])
    features, sizes = _pattern_features(patterns, modal)
    point = _figures(frequency[None, :].astype(np.float64) @ features, modal)
    if resamples and base_reason is None:
        boot = _figures(pattern_weights(frequency, resamples, rng) @ features, modal)
    for name in FIGURES:
        n_used, votes_used = sizes[name]
        reason = base_reason or _figure_reason(name, frequency @ n_used, point[name][0])
        low = high = math.nan
        if reason is None and resamples:
            (low,), (high,) = percentile_interval(boot[name][:, None], confidence)
        summary[name] = _figure(point[name][0], low, high, int(frequency @ n_used), int(frequency @ votes_used), reason)
    summary["fleiss_kappa"]["votes_per_item"] = modal
    summary["fleiss_kappa"]["items_left_out"] = int(kept.sum()) - summary["fleiss_kappa"]["n_items"]
    summary["cohen_kappa"] = _cohen(rater[order], nominal[order], np.concatenate([[0], np.cumsum(per_item)[:-1]]),
                                    per_item, rater_ids, base_reason, resamples=resamples, rng=rng,
                                    confidence=confidence)
    return summary


def _patterns(rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Distinct rows of non-negative counts (patterns, columns) and how many times each occurs.

    Each row is read as the digits of one integer (base: the largest count plus one), which
    ``np.unique`` sorts far faster than rows; ``np.unique(axis=0)`` when that would overflow.
    """
    base = int(rows.max(initial=0)) + 1
    if rows.shape[1] * math.log2(base) >= 62:
        return np.unique(rows, axis=0, return_counts=True)
    key = rows.astype(np.int64) @ (base ** np.arange(rows.shape[1], dtype=np.int64))
    _, first, frequency = np.unique(key, return_index=True, return_counts=True)
    return rows[first], frequency


def _modal_count(counts: np.ndarray) -> int | None:
    """The most common number of votes per item (the larger on a tie); None without items."""
    if len(counts) == 0:
        return None
    tally = np.bincount(counts)
    return int(np.flatnonzero(tally == tally.max())[-1])


def _pair_counts(counts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(agreeing pairs, all pairs) of votes per row of label counts."""
    n = counts.sum(axis=1)
    return (counts * (counts - 1) // 2).sum(axis=1), n * (n - 1) // 2


def _pattern_features(patterns: np.ndarray, modal: int | None) -> tuple[np.ndarray, dict[str, tuple]]:
    """Per-pattern features (patterns, columns) whose frequency-weighted sums give every figure,
    and per figure (items it uses, votes it uses) per pattern."""
    nominal, ordinal = patterns[:, :_N], patterns[:, _N:]
    without_ties = nominal.copy()
    without_ties[:, _TIE] = 0
    n, n_nt, n_ord = nominal.sum(axis=1), without_ties.sum(axis=1), ordinal.sum(axis=1)
    fleiss = (n == modal).astype(np.float64)
    features = np.column_stack([
        *_pair_counts(nominal), *_pair_counts(without_ties), fleiss, fleiss * (nominal ** 2).sum(axis=1),
        fleiss[:, None] * nominal, coincidence_rows(nominal), coincidence_rows(ordinal),
    ]).astype(np.float64)
    one = np.ones(len(patterns), np.int64)
    sizes = {
        "percent_agreement": (one, n),
        "percent_agreement_without_ties": ((n_nt >= 2).astype(np.int64), np.where(n_nt >= 2, n_nt, 0)),
        "fleiss_kappa": (fleiss.astype(np.int64), fleiss.astype(np.int64) * n),
        "krippendorff_alpha_nominal": (one, n),
        "krippendorff_alpha_ordinal": ((n_ord >= 2).astype(np.int64), np.where(n_ord >= 2, n_ord, 0)),
    }
    return features, sizes


def _figures(sums: np.ndarray, modal: int | None) -> dict[str, np.ndarray]:
    """Every figure from feature sums (batch, columns): float64 arrays (batch,), NaN where undefined."""
    with np.errstate(divide="ignore", invalid="ignore"):
        figures = {
            "percent_agreement": sums[:, _AGREE] / sums[:, _PAIRS],
            "percent_agreement_without_ties": sums[:, _AGREE_NT] / sums[:, _PAIRS_NT],
        }
        m, items = float(modal or 0), sums[:, _FLEISS_ITEMS]
        observed = (sums[:, _FLEISS_SQUARES] - items * m) / (items * m * (m - 1))
        shares = sums[:, _FLEISS_LABELS] / (items * m)[:, None]
        chance = (shares ** 2).sum(axis=1)
        figures["fleiss_kappa"] = np.where(chance < 1 - 1e-12, (observed - chance) / (1 - chance), np.nan)
    figures["krippendorff_alpha_nominal"] = alpha_from_coincidences(sums[:, _ALPHA_NOMINAL].reshape(-1, _N, _N), "nominal")
    figures["krippendorff_alpha_ordinal"] = alpha_from_coincidences(sums[:, _ALPHA_ORDINAL].reshape(-1, _S, _S), "ordinal")
    return figures


def _figure_reason(name: str, n_items: int, value: float) -> str | None:
    if n_items == 0:
        return {"percent_agreement_without_ties": NO_ITEM_WITHOUT_TIES,
                "krippendorff_alpha_ordinal": NO_ITEM_ORDINAL}.get(name, NO_ITEM)
    return NO_VARIATION if not math.isfinite(value) else None


def _figure(value: float, low: float, high: float, n_items: int, n_votes: int, reason: str | None) -> dict[str, Any]:
    """One figure as a JSON-safe dict (see ``agreement_summary``)."""
    if reason is not None:
        return {"value": None, "defined": False, "reason": reason, "n_items": n_items, "n_votes": n_votes}
    finite = math.isfinite(low) and math.isfinite(high)
    return {"value": float(value), "defined": True, "low": float(low) if finite else None,
            "high": float(high) if finite else None, "n_items": n_items, "n_votes": n_votes}


def _cohen(raters, labels, starts, counts, rater_ids, base_reason, *, resamples, rng, confidence) -> dict[str, Any]:
    """Cohen's kappa per annotator pair sharing an item (votes sorted by item, then annotator)."""
    n_raters = len(rater_ids)
    possible = n_raters * (n_raters - 1) // 2
    if base_reason is not None:
        return {"defined": False, "reason": base_reason, "n_pairs": 0, "n_pairs_without_shared_items": possible, "pairs": []}
    first, second = pair_observations(starts, counts)
    pairs, confusions = pair_confusions(raters, labels, first, second, n_raters)
    kappa = kappa_from_confusions(confusions)
    if resamples:
        low, high = pair_intervals(confusions, resamples=resamples, rng=rng, confidence=confidence)
    else:
        low = high = np.full(len(pairs), np.nan)
    shared = confusions.sum(axis=1)
    rows = []
    for (r, s), m, value, lo, hi in zip(pairs.tolist(), shared.tolist(), kappa.tolist(), low.tolist(), high.tolist()):
        row = {"annotators": [rater_ids[r].item(), rater_ids[s].item()], "shared_items": m}
        row.update(_figure(value, lo, hi, m, 2 * m, None if math.isfinite(value) else NO_VARIATION))
        rows.append(row)
    return {"defined": bool(len(rows)), **({} if rows else {"reason": "no annotator pair shares an item"}),
            "n_pairs": len(rows), "n_pairs_without_shared_items": possible - len(rows), "pairs": rows}

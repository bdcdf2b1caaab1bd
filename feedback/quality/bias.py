"""Bias, speed and attention per annotator: pure numpy/scipy/statsmodels, no Django.

Input is one entry per vote: annotator id, item (comparison) id, the stored choice (``a``/``b``/
``tie``/``both_bad``), ``shown_left`` (``a``/``b``: the completion on the left of the screen; ``""``
for an imported vote with nothing shown) and ``ms_on_item`` (ms on screen, or None). Votes are given
in time order within each annotator (``selectors.bias_for`` reads them ordered by annotator,
``created_at``, id; the grouping here is a stable sort, so that order is kept).

The screen answer is ``feedback.queue.choice_on_screen``: a/b become left/right through
``shown_left``; tie and both bad stay as they are.

Figures, per annotator and overall:

- left rate: the share of left among the votes that preferred a side on screen (left or right);
  ties and both-bad votes are not in its denominator (they chose no side, so they say nothing about
  a pull to one side), and votes without a shown side are left out of it and of the runs and counted
  (``votes_without_shown_side``). Per annotator: a two-sided exact binomial test against 0.5
  (``scipy.stats.binomtest``) and a Wilson interval (``statsmodels.stats.proportion.proportion_confint``,
  method "wilson"; Wilson 1927); overall: the pooled rate with its Wilson interval.
- time on item: median, p10, p90 and a fixed log-spaced histogram (``timing.EDGES_MS``); votes
  without a time (``ms_on_item`` None) are left out and counted (``votes_without_time``).
- fast votes: votes under ``fast_ms`` on screen, count and share of the timed votes. Default 2,000 ms:
  silent reading runs at about 4 words a second (Brysbaert 2019, "How many words do we read per
  minute?", 238 words/min), so 2 s is under ten words, less than one sentence of either completion:
  a vote that quick cannot have read the pair, while a careful vote on very short completions rarely
  comes in under it. Campaigns with one-word answers should lower it. An annotator is flagged when at
  least ``fast_share`` (default 0.10: an occasional quick click is normal, a tenth is a habit) of
  their timed votes are fast.
- runs: the longest run of one screen answer in time order, with the conservative p-value of a run
  that long under independence with the annotator's own answer shares (``timing.run_p_values``).
- consensus: each vote on an item with two or more other votes is compared with the leave-one-out
  plurality of those others (stored a/b orientation, four labels; a vote whose others have no single
  most common label is left out and counted). Per annotator: their disagreement rate, and a one-sided
  exact binomial test (``alternative="greater"``) of "no more than ``consensus_margin`` above the
  pooled disagreement rate of the *other* annotators" (the peers; the annotator's own votes would
  pull the reference toward them). The margin (default 0.15, absolute) is what "far more than their
  peers" means: honest annotators differ in skill, and against the bare pooled rate a slightly
  weaker but honest annotator with a few thousand votes is "significant"; a contrarian or a random
  clicker (about 0.75 on four labels) is far above any honest spread. In ``bench/quality.py``'s
  campaign (200 honest annotators of uneven noise, disagreement 0.20 to 0.33) the bare test flags
  54 of them; a margin of 0.05 already flags none.

Flags: ``left_bias`` (two-sided left-rate test), ``long_run`` (run p-value) and ``consensus_outlier``
(one-sided test) when the p-value after Holm's step-down correction across the annotators tested
(Holm 1979; the numbers of ``statsmodels.stats.multitest.multipletests``, method "holm") is below
``alpha``. Holm, not Benjamini-Hochberg: a flag points at a person, so the chance of flagging any honest annotator
(the family-wise error) is what is bounded, under any dependence between the tests; Holm is never
less powerful than Bonferroni. ``fast`` is a share threshold, not a test.

Every figure is JSON-safe: no NaN or Infinity; an undefined one is ``{"value": None, "defined":
False, "reason": ...}`` as in ``agreement``.
"""
from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
from scipy.stats import binomtest
from statsmodels.stats.proportion import proportion_confint

from . import timing
from .labels import LABELS, nominal_codes

SCREEN = ("left", "right", "tie", "both_bad")
FLAGS = ("left_bias", "fast", "long_run", "consensus_outlier")
DEFAULT_FAST_MS = 2000
DEFAULT_FAST_SHARE = 0.10
DEFAULT_CONSENSUS_MARGIN = 0.15

NO_SIDE_VOTES = "no vote preferring a side on screen"
NO_TIMED_VOTES = "no vote with a time on item"
NO_SCREEN_VOTES = "no vote with a shown side"
NO_CONSENSUS = "no vote on an item with two or more other votes and a single most common label"
NO_PEERS = "no other annotator's vote has a consensus to compare with"

_SIDES = {"a": 0, "b": 1, "": -1}
_LABEL_CODES = {label: code for code, label in enumerate(LABELS)}  # as labels.nominal_codes


def bias_summary(annotators: Sequence[int] | np.ndarray, items: Sequence[int] | np.ndarray,
                 choices: Sequence[str], shown_left: Sequence[str], ms_on_item: Sequence[int | None], *,
                 fast_ms: float = DEFAULT_FAST_MS, fast_share: float = DEFAULT_FAST_SHARE,
                 consensus_margin: float = DEFAULT_CONSENSUS_MARGIN, alpha: float = 0.05,
                 confidence: float = 0.95) -> dict[str, Any]:
    """Bias, speed and attention figures and flags (module docstring) as a JSON-safe dict.

    All inputs have shape (n,): ``annotators``/``items`` integer ids, ``choices`` a/b/tie/both_bad,
    ``shown_left`` a/b/"" and ``ms_on_item`` non-negative ms or None, each annotator's votes in time
    order. ``fast_ms``: the floor in ms (a vote under it is fast); ``fast_share``: the share of fast
    votes that flags an annotator; ``consensus_margin``: how far above the peers' disagreement rate
    the consensus test's null hypothesis sits (0 to 1); ``alpha``: the family-wise level of the tests' flags (Holm);
    ``confidence``: the Wilson intervals' coverage.

    Returns ``votes``, ``annotators``, ``votes_without_shown_side``, ``votes_without_time``,
    ``parameters``, the overall ``left_rate``, ``time`` and ``consensus``, ``flagged`` (annotator ids
    per flag) and ``per_annotator``: one dict per annotator, in id order, with ``annotator``,
    ``votes``, ``left_rate``, ``time``, ``run``, ``consensus`` and ``flags`` (names from ``FLAGS``).

    Raises ValueError for inputs of different lengths, an unknown choice or side, a negative time,
    ``fast_share`` or ``alpha`` or ``confidence`` outside (0, 1], or an annotator with two votes on
    one item.
    """
    n = len(choices)
    if not len(annotators) == len(items) == len(shown_left) == len(ms_on_item) == n:
        raise ValueError("annotators, items, choices, shown_left and ms_on_item must have the same length")
    if not (0 < fast_share <= 1 and 0 < alpha < 1 and 0 < confidence < 1 and 0 <= consensus_margin < 1):
        raise ValueError("fast_share, consensus_margin, alpha and confidence must be between 0 and 1")
    try:
        label = np.fromiter(map(_LABEL_CODES.__getitem__, choices), dtype=np.int64, count=n)
    except KeyError:
        nominal_codes(choices)  # raises ValueError naming the first unknown choice
        raise
    try:
        side = np.fromiter(map(_SIDES.__getitem__, shown_left), dtype=np.int64, count=n)
    except KeyError as error:
        raise ValueError(f"not a shown side: {error.args[0]!r} (expected 'a', 'b' or '')") from None
    ms = np.array(ms_on_item, dtype=np.float64) if n else np.empty(0)
    if (ms < 0).any():
        raise ValueError("ms_on_item must not be negative")
    rater_ids, rater = np.unique(np.asarray(annotators, np.int64), return_inverse=True)
    item_ids, item = np.unique(np.asarray(items, np.int64), return_inverse=True)
    g = len(rater_ids)
    order = np.argsort(rater, kind="stable")
    rater, item, label, side, ms = rater[order], item[order], label[order], side[order], ms[order]
    key = np.sort(item * max(g, 1) + rater)
    if len(key) and (np.diff(key) == 0).any():
        twice = key[np.flatnonzero(np.diff(key) == 0)[0]]
        raise ValueError(f"annotator {rater_ids[twice % g]} has two votes on item {item_ids[twice // g]}")

    # Screen answer: a/b -> left (0) when the chosen completion was on the left, else right (1).
    shown = side >= 0
    screen = np.where(label >= 2, label, np.where(label == side, 0, 1))
    on_screen = screen[shown]
    sided = shown & (screen < 2)
    left = np.bincount(rater[sided & (screen == 0)], minlength=g)
    sides = np.bincount(rater[sided], minlength=g)
    timed = ~np.isnan(ms)
    fast = np.bincount(rater[timed & (ms < fast_ms)], minlength=g)
    n_timed = np.bincount(rater[timed], minlength=g)
    quantiles = timing.group_quantiles(rater[timed], ms[timed], g)
    bins = timing.histogram_bins(ms[timed])
    n_bins = len(timing.EDGES_MS) + 1
    histograms = np.bincount(rater[timed] * n_bins + bins, minlength=g * n_bins).reshape(g, n_bins)
    shares = np.bincount(rater[shown] * 4 + on_screen, minlength=g * 4).reshape(g, 4).astype(np.float64)
    screen_votes = shares.sum(axis=1)
    shares /= np.maximum(screen_votes, 1)[:, None]
    longest, longest_answer = timing.longest_runs(rater[shown], on_screen, g)
    run_p = np.where(longest > 0, timing.run_p_values(np.maximum(longest, 1), shares, screen_votes), np.nan)
    agreeing, compared, no_majority = _consensus(item, label, rater, g, len(item_ids))

    left_p = np.array([binomtest(int(k), int(m), 0.5).pvalue if m else np.nan for k, m in zip(left, sides)])
    left_low, left_high = _wilson(left, sides, confidence)
    disagree = compared - agreeing
    peer_votes, peer_disagree = compared.sum() - compared, disagree.sum() - disagree
    peer_rate = np.divide(peer_disagree, peer_votes, out=np.full(g, np.nan), where=peer_votes > 0)
    null_rate = np.minimum(peer_rate + consensus_margin, 1.0)
    consensus_p = np.array([binomtest(int(d), int(m), float(r), alternative="greater").pvalue
                            if m and not math.isnan(r) else np.nan for d, m, r in zip(disagree, compared, null_rate)])
    adjusted = {name: _holm(p) for name, p in (("left_bias", left_p), ("long_run", run_p), ("consensus_outlier", consensus_p))}
    flags = {name: adjusted[name] < alpha for name in adjusted}
    flags["fast"] = (n_timed > 0) & (fast >= fast_share * np.maximum(n_timed, 1))

    consensus_low, consensus_high = _wilson(disagree, compared, confidence)
    votes = np.bincount(rater, minlength=g)
    without_side = np.bincount(rater[~shown], minlength=g)
    per_annotator = []
    for r in range(g):
        per_annotator.append({
            "annotator": rater_ids[r].item(), "votes": int(votes[r]),
            "votes_without_shown_side": int(without_side[r]), "votes_without_time": int(votes[r] - n_timed[r]),
            "left_rate": _rate(left[r], sides[r], left_low[r], left_high[r], NO_SIDE_VOTES,
                               p_value=left_p[r], p_adjusted=adjusted["left_bias"][r], left=int(left[r]), sides=int(sides[r])),
            "time": _time(n_timed[r], quantiles[r], histograms[r], fast[r]),
            "run": _run(longest[r], longest_answer[r], run_p[r], adjusted["long_run"][r], screen_votes[r]),
            "consensus": _rate(disagree[r], compared[r], consensus_low[r], consensus_high[r], NO_CONSENSUS, p_value=consensus_p[r], p_adjusted=adjusted["consensus_outlier"][r],
                               disagreements=int(disagree[r]), compared=int(compared[r]),
                               left_out_without_majority=int(no_majority[r]),
                               peers_rate=_value(peer_rate[r], NO_PEERS), tested_against=_optional(null_rate[r])),
            "flags": [name for name in FLAGS if flags[name][r]],
        })

    total_left, total_sides = int(left.sum()), int(sides.sum())
    overall_q = timing.group_quantiles(np.zeros(int(timed.sum()), np.int64), ms[timed], 1)[0]
    all_disagree, all_compared = int(disagree.sum()), int(compared.sum())
    return {
        "votes": n, "annotators": g, "items": len(item_ids),
        "votes_without_shown_side": int((~shown).sum()), "votes_without_time": int((~timed).sum()),
        "parameters": {"fast_ms": float(fast_ms), "fast_share": float(fast_share),
                       "consensus_margin": float(consensus_margin), "alpha": float(alpha),
                       "confidence": float(confidence), "correction": "holm", "histogram_edges_ms": list(timing.EDGES_MS),
                       "screen_answers": list(SCREEN), "labels": list(LABELS)},
        "left_rate": _rate(total_left, total_sides, *_wilson(np.array([total_left]), np.array([total_sides]), confidence),
                           NO_SIDE_VOTES, left=total_left, sides=total_sides),
        "time": _time(int(timed.sum()), overall_q, np.bincount(bins, minlength=n_bins), int(fast.sum())),
        "consensus": _rate(all_disagree, all_compared,
                           *_wilson(np.array([all_disagree]), np.array([all_compared]), confidence), NO_CONSENSUS,
                           disagreements=all_disagree, compared=all_compared,
                           left_out_without_majority=int(no_majority.sum())),
        "flagged": {name: [rater_ids[r].item() for r in np.flatnonzero(flags[name])] for name in FLAGS},
        "per_annotator": per_annotator,
    }


def _consensus(item, label, rater, g, n_items):
    """Per annotator: (votes agreeing with the leave-one-out plurality, votes compared, votes left out
    on an item with two or more other votes but no single most common label among them)."""
    counts = np.bincount(item * 4 + label, minlength=n_items * 4).reshape(n_items, 4)
    others = counts[item]
    others[np.arange(len(item)), label] -= 1
    top = others.max(axis=1, initial=0)
    enough = others.sum(axis=1) >= 2
    single = (others == top[:, None]).sum(axis=1) == 1
    compared = enough & single
    agree = compared & (others.argmax(axis=1) == label)
    return (np.bincount(rater[agree], minlength=g), np.bincount(rater[compared], minlength=g),
            np.bincount(rater[enough & ~single], minlength=g))


def _wilson(successes: np.ndarray, trials: np.ndarray, confidence: float) -> tuple[np.ndarray, np.ndarray]:
    """Wilson interval per (successes, trials) pair, float64 arrays; NaN where there are no trials."""
    trials = np.asarray(trials)
    low, high = np.full(len(trials), np.nan), np.full(len(trials), np.nan)
    some = trials > 0
    if some.any():
        low[some], high[some] = proportion_confint(np.asarray(successes)[some], trials[some],
                                                   alpha=1 - confidence, method="wilson")
    return low, high


def _holm(p_values: np.ndarray) -> np.ndarray:
    """Holm-adjusted p-values across the defined entries; NaN stays NaN (never flagged).

    Holm (1979), "A simple sequentially rejective multiple test procedure": the k-th smallest of m
    p-values becomes max over j <= k of min(1, (m - j + 1) p_(j)); the same numbers as
    ``statsmodels.stats.multitest.multipletests(p, method="holm")[1]`` (the tests compare), which is
    not called here because its Holm branch runs ``gc.collect()`` on every call: about 0.3 s each
    with a million vote rows alive in the process.
    """
    adjusted = np.full(len(p_values), np.nan)
    tested = np.flatnonzero(~np.isnan(p_values))
    if len(tested):
        order = np.argsort(p_values[tested], kind="stable")
        scaled = p_values[tested][order] * np.arange(len(tested), 0, -1)
        adjusted[tested[order]] = np.minimum(np.maximum.accumulate(scaled), 1.0)
    return adjusted


def _value(x: float, reason: str) -> dict[str, Any]:
    """A plain figure: ``{"value", "defined": True}`` or undefined with ``reason``."""
    if x is None or not math.isfinite(x):
        return {"value": None, "defined": False, "reason": reason}
    return {"value": float(x), "defined": True}


def _optional(x: float) -> float | None:
    return float(x) if x is not None and math.isfinite(x) else None


def _rate(k, m, low, high, reason, p_value=None, p_adjusted=None, **counts) -> dict[str, Any]:
    """A share k/m with its Wilson interval (and, per annotator, its test's raw and Holm-adjusted
    p-values), JSON-safe; undefined without trials."""
    low, high = np.ravel(low)[0], np.ravel(high)[0]
    if not m:
        return {"value": None, "defined": False, "reason": reason, **counts}
    tested = {} if p_value is None else {"p_value": _optional(p_value), "p_adjusted": _optional(p_adjusted)}
    return {"value": float(k) / float(m), "defined": True, "low": _optional(low), "high": _optional(high),
            **tested, **counts}


def _time(n_timed, quantiles, histogram, fast) -> dict[str, Any]:
    """Time-on-item figures for one annotator (or everyone): quantiles in ms, histogram, fast votes."""
    n_timed = int(n_timed)
    names = ("p10_ms", "median_ms", "p90_ms")
    figures = {name: _value(q, NO_TIMED_VOTES) for name, q in zip(names, quantiles)}
    share = _value(fast / n_timed if n_timed else math.nan, NO_TIMED_VOTES)
    return {"timed_votes": n_timed, **figures, "histogram": [int(c) for c in histogram],
            "fast_votes": int(fast), "fast_share": share}


def _run(longest, answer, p_value, p_adjusted, screen_votes) -> dict[str, Any]:
    """The longest run of one screen answer, with its p-values (undefined without a shown side)."""
    if not longest:
        return {"value": None, "defined": False, "reason": NO_SCREEN_VOTES, "votes": int(screen_votes)}
    return {"value": int(longest), "defined": True, "answer": SCREEN[int(answer)], "votes": int(screen_votes),
            "p_value": _optional(p_value), "p_adjusted": _optional(p_adjusted)}

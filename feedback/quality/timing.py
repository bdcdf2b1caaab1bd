"""Time on item and runs of the same answer, per annotator: pure numpy, no Django.

Both work on votes grouped by annotator: ``group`` is an annotator index 0..G-1 per vote, and a
group's votes keep the order they were given in (their time order; ``bias.bias_summary`` sorts
stably by annotator).

Time on item: milliseconds the item was on screen (``Vote.ms_on_item``). Quantiles use numpy's
default "linear" method (``np.percentile``); the histogram has fixed log-spaced bins, doubling from
250 ms to 512 s (``EDGES_MS``), so charts of different annotators and campaigns line up.

Runs: the longest run of one screen answer (left, right, tie, both bad) in an annotator's votes.
Under independence with the annotator's own answer shares p_c over n votes, the expected number
of runs of length >= L (of any answer) is

    lambda = sum_c p_c**L * (1 + (n - L) * (1 - p_c))

(a run starts at the first vote, or after a different answer). P(longest run >= L) <= lambda by
Boole's inequality, so ``min(1, lambda)`` is a conservative p-value; it is also the leading term of
the Poisson approximation 1 - exp(-lambda) (Schwager 1983, "Run probabilities in sequences of
Markov-dependent trials"; Arratia, Gordon & Waterman 1990), close to the exact tail once it is small,
which is where a flag is decided. A fixed threshold (say 20) would flag honest heavy annotators: a
fair left/right coin over 5,000 votes has a longest run of about log2(5000) = 12 and a run of 20
with probability about 0.5%; with thousands of votes a threshold must grow with n.
"""
from __future__ import annotations

import numpy as np

# Bin edges in ms: 250, 500, 1000, ..., 512000. Bin 0 is below 250 ms, bin k is [EDGES[k-1], EDGES[k]),
# the last bin is 512 s and over: len(EDGES_MS) + 1 bins.
EDGES_MS: tuple[int, ...] = tuple(int(250 * 2 ** k) for k in range(12))
QUANTILES = (0.1, 0.5, 0.9)


def group_starts(group: np.ndarray, n_groups: int) -> tuple[np.ndarray, np.ndarray]:
    """(starts, counts), int64 (G,), of each group's block in an array sorted by ``group``."""
    counts = np.bincount(group, minlength=n_groups).astype(np.int64)
    return np.concatenate([[0], np.cumsum(counts)[:-1]]).astype(np.int64), counts


def group_quantiles(group: np.ndarray, values: np.ndarray, n_groups: int,
                    quantiles: tuple[float, ...] = QUANTILES) -> np.ndarray:
    """Quantiles of ``values`` (float, (n,)) per group: float64 (G, len(quantiles)), NaN for an empty group.

    Equal to ``np.percentile(values[group == g], 100 * q)`` (method "linear") for each group g.
    """
    values = np.asarray(values, np.float64)
    order = np.argsort(values)  # then a stable sort by group (a radix sort on small integers)
    small = group.astype(np.int16) if n_groups <= np.iinfo(np.int16).max else group
    ordered = values[order[np.argsort(small[order], kind="stable")]]
    starts, counts = group_starts(group, n_groups)
    out = np.full((n_groups, len(quantiles)), np.nan)
    filled = counts > 0
    s, n = starts[filled], counts[filled]
    for j, q in enumerate(quantiles):
        position = q * (n - 1)
        below = np.floor(position).astype(np.int64)
        above = np.minimum(below + 1, n - 1)
        low, high = ordered[s + below], ordered[s + above]
        out[filled, j] = low + (position - below) * (high - low)
    return out


def histogram_bins(ms: np.ndarray) -> np.ndarray:
    """Histogram bin 0..len(EDGES_MS) of each time (ms), int64 (n,); see ``EDGES_MS``."""
    return np.searchsorted(np.asarray(EDGES_MS, np.float64), ms, side="right").astype(np.int64)


def longest_runs(group: np.ndarray, answers: np.ndarray, n_groups: int) -> tuple[np.ndarray, np.ndarray]:
    """Longest run of one answer per group: (length int64 (G,), answer int64 (G,); 0 and -1 for an
    empty group). ``group`` must be sorted (a group's votes contiguous, in time order); ``answers``
    are small non-negative codes. On equal lengths the earliest run's answer is reported."""
    n = len(answers)
    if n == 0:
        return np.zeros(n_groups, np.int64), np.full(n_groups, -1, np.int64)
    change = np.flatnonzero((np.diff(group) != 0) | (np.diff(answers) != 0)) + 1
    begins = np.concatenate([[0], change])
    lengths = np.diff(np.concatenate([begins, [n]]))
    run_group = group[begins]
    # Longest per group, earliest on ties: sort by (group, -length, begin) and take each group's first.
    order = np.lexsort((begins, -lengths, run_group))
    first = order[np.concatenate([[True], np.diff(run_group[order]) != 0])]
    length, answer = np.zeros(n_groups, np.int64), np.full(n_groups, -1, np.int64)
    length[run_group[first]] = lengths[first]
    answer[run_group[first]] = answers[begins[first]]
    return length, answer


def run_p_values(longest: np.ndarray, shares: np.ndarray, votes: np.ndarray) -> np.ndarray:
    """Conservative p-value of each group's longest run: min(1, lambda) (module docstring).

    ``longest``: (G,) run lengths L >= 1; ``shares``: (G, C) answer shares per group (rows sum to 1);
    ``votes``: (G,) votes n. Returns float64 (G,) in (0, 1]. An annotator who always gives one
    answer gets 1: their run is no surprise given their own shares (the left-rate test sees them).
    """
    L = np.asarray(longest, np.float64)[:, None]
    n = np.asarray(votes, np.float64)[:, None]
    p = np.asarray(shares, np.float64)
    with np.errstate(under="ignore"):
        expected = (p ** L * (1.0 + (n - L) * (1.0 - p))).sum(axis=1)
    return np.minimum(1.0, expected)

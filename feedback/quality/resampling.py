"""Bootstrap pieces shared by the agreement statistics: item resampling weights and percentile intervals.

Resampling N items with replacement and counting how often each distinct item *pattern* (its
vote counts per label) was drawn gives exactly a Multinomial(N, frequency / N) vector over the
patterns; drawing that vector directly costs (resamples x patterns) instead of (resamples x items).
Efron & Tibshirani (1993), "An Introduction to the Bootstrap", ch. 13 (percentile interval).
"""
from __future__ import annotations

import numpy as np


def pattern_weights(frequency: np.ndarray, resamples: int, rng: np.random.Generator) -> np.ndarray:
    """How many times each pattern is drawn in each resample of the items: float64, (resamples, patterns).

    ``frequency``: (patterns,) positive integers, how many items have each pattern (N in all).
    Each row sums to N. Draws the multinomial when there are few patterns per item, else
    resamples item indices (both are the same distribution; both are fixed by ``rng``'s seed).
    """
    frequency = np.asarray(frequency, dtype=np.int64)
    total = int(frequency.sum())
    patterns = len(frequency)
    if patterns == 0 or total == 0:
        return np.zeros((resamples, patterns))
    if patterns * 8 <= total:
        p = frequency / total
        return rng.multinomial(total, p / p.sum(), size=resamples).astype(np.float64)
    pattern_of_item = np.repeat(np.arange(patterns), frequency)
    weights = np.empty((resamples, patterns))
    chunk = max(1, 4_000_000 // total)
    for start in range(0, resamples, chunk):
        rows = min(chunk, resamples - start)
        drawn = pattern_of_item[rng.integers(0, total, size=(rows, total))]
        drawn += np.arange(rows)[:, None] * patterns
        weights[start:start + rows] = np.bincount(drawn.ravel(), minlength=rows * patterns).reshape(rows, patterns)
    return weights


def percentile_interval(samples: np.ndarray, confidence: float) -> tuple[np.ndarray, np.ndarray]:
    """Percentile bootstrap interval per column of ``samples`` (resamples, k): (low (k,), high (k,)).

    NaN entries (a resample where the statistic is undefined) are left out of their column;
    a column with no finite entry gets NaN bounds. numpy's linear interpolation between order
    statistics.
    """
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence must be between 0 and 1, not {confidence}")
    samples = np.asarray(samples)
    tails = [(1.0 - confidence) / 2.0, 1.0 - (1.0 - confidence) / 2.0]
    k = samples.shape[1]
    low, high = np.full(k, np.nan), np.full(k, np.nan)
    if samples.shape[0] == 0 or k == 0:
        return low, high
    finite = np.isfinite(samples)
    complete = finite.all(axis=0)
    if complete.all():  # the common case; by rows of samples.T, contiguous when samples is a transposed array
        low, high = np.quantile(samples.T, tails, axis=1)
    elif complete.any():
        low[complete], high[complete] = np.quantile(samples[:, complete].T, tails, axis=1)
    partial = np.flatnonzero(~complete & finite.any(axis=0))
    if len(partial):
        # numpy's "linear" method on each column's finite entries: NaN sorts last, so the first
        # ``valid`` rows of the sorted column are its finite values.
        ordered = np.sort(samples[:, partial], axis=0)
        valid = finite[:, partial].sum(axis=0)
        bounds = []
        for tail in tails:
            position = tail * (valid - 1)
            below = np.floor(position).astype(np.int64)
            above = np.minimum(below + 1, valid - 1)
            columns = np.arange(len(partial))
            lower, upper = ordered[below, columns], ordered[above, columns]
            bounds.append(lower + (position - below) * (upper - lower))
        low[partial], high[partial] = bounds
    return low, high

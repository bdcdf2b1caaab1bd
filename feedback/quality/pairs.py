"""Cohen's kappa for every pair of annotators at once, with a bootstrap interval per pair.

Every pair of votes on the same item by annotators r < s is one observation of the pair (r, s):
its 4 x 4 confusion matrix over the nominal labels is a ``np.bincount``, all pairs in one call.
Kappa from a confusion matrix is Cohen (1960), "A coefficient of agreement for nominal scales",
and the same arithmetic as ``sklearn.metrics.cohen_kappa_score`` (unweighted): labels neither
annotator used add nothing to either term, so the four-label matrix gives sklearn's value.
"""
from __future__ import annotations

import numpy as np

from .resampling import percentile_interval

K = 4  # nominal labels
CELLS = K * K


def pair_observations(starts: np.ndarray, counts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Positions (first, second) of every pair of votes on the same item, int64 arrays of equal length.

    Votes are sorted by (item, annotator); item i's votes are ``starts[i] : starts[i] + counts[i]``.
    ``first`` < ``second`` within an item, so the first vote's annotator has the smaller index.
    """
    firsts, seconds = [], []
    for count in np.unique(counts):
        if count < 2:
            continue
        begin = starts[counts == count]
        i, j = np.triu_indices(int(count), 1)
        firsts.append((begin[:, None] + i).ravel())
        seconds.append((begin[:, None] + j).ravel())
    if not firsts:
        return np.empty(0, np.int64), np.empty(0, np.int64)
    return np.concatenate(firsts).astype(np.int64), np.concatenate(seconds).astype(np.int64)


def pair_confusions(raters: np.ndarray, labels: np.ndarray, first: np.ndarray, second: np.ndarray,
                    n_raters: int) -> tuple[np.ndarray, np.ndarray]:
    """Annotator pairs that share an item and their confusion matrices.

    ``raters``/``labels``: per vote, annotator index 0..n_raters-1 and label 0..3. Returns
    ``pairs`` (P, 2) int64 annotator indices (first < second) and ``confusions`` (P, 16) int64,
    cell ``4 * label_first + label_second``; a pair's row sums to its number of shared items.
    """
    key = raters[first].astype(np.int64) * n_raters + raters[second]
    cell = labels[first].astype(np.int64) * K + labels[second]
    if n_raters * n_raters * CELLS <= 16_000_000:  # up to 1,000 annotators: count every possible pair, keep the seen
        table = np.bincount(key * CELLS + cell, minlength=n_raters * n_raters * CELLS).reshape(-1, CELLS)
        pair_keys = np.flatnonzero(table.any(axis=1))
        confusions = table[pair_keys]
    else:
        pair_keys, pair_of = np.unique(key, return_inverse=True)
        confusions = np.bincount(pair_of * CELLS + cell, minlength=len(pair_keys) * CELLS).reshape(-1, CELLS)
    return np.column_stack([pair_keys // n_raters, pair_keys % n_raters]), confusions


def kappa_from_confusions(confusions: np.ndarray) -> np.ndarray:
    """Cohen's kappa per confusion matrix: float64, shape (...), NaN where undefined.

    ``confusions``: (..., 16) counts (a flattened 4 x 4 matrix). kappa = (p_o - p_e) / (1 - p_e)
    with p_o the share on the diagonal and p_e the sum over labels of the two annotators' label
    shares multiplied. Undefined: no shared item, or both annotators used one and the same label
    on every shared item (p_e = 1: no label variation).
    """
    x = np.asarray(confusions, dtype=np.float64).reshape(*np.shape(confusions)[:-1], K, K)
    m = x.sum(axis=(-2, -1))
    diagonal = np.trace(x, axis1=-2, axis2=-1)
    chance = (x.sum(axis=-1) * x.sum(axis=-2)).sum(axis=-1)
    return _kappa(m, diagonal, chance)


def _kappa(m: np.ndarray, diagonal: np.ndarray, chance: np.ndarray) -> np.ndarray:
    """Kappa from the shared items m, the agreeing count and sum_j rows_j * columns_j (all counts)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        kappa = (diagonal * m - chance) / (m * m - chance)
    return np.where((m > 0) & (chance < m * m - 0.5), kappa, np.nan)


# Cell counts of the 16 cells -> (rows 0-3, columns 0-3, diagonal) in one matrix product.
_MARGINS = np.zeros((CELLS, 2 * K + 1))
for _r in range(K):
    for _c in range(K):
        _MARGINS[_r * K + _c, _r] = 1.0
        _MARGINS[_r * K + _c, K + _c] = 1.0
        _MARGINS[_r * K + _c, 2 * K] = float(_r == _c)
_DIFFERENCES = np.zeros((CELLS + 1, CELLS))
_DIFFERENCES[np.arange(CELLS), np.arange(CELLS)] = -1.0
_DIFFERENCES[np.arange(1, CELLS + 1), np.arange(CELLS)] = 1.0
_BOUNDARIES_TO_MARGINS = (_DIFFERENCES @ _MARGINS).astype(np.float32)


def pair_intervals(confusions: np.ndarray, *, resamples: int, rng: np.random.Generator,
                   confidence: float) -> tuple[np.ndarray, np.ndarray]:
    """Percentile bootstrap interval of each pair's kappa, resampling that pair's shared items.

    ``confusions``: (P, 16) counts as from ``pair_confusions``. Returns (low, high), float64 of
    shape (P,), NaN for pairs whose kappa is undefined.

    Resampling a pair's m shared items with replacement gives its 16 cells a Multinomial(m,
    cells / m) draw. For pairs sharing many items that draw is made directly (16 binomials per
    resample). For the many pairs sharing few items (200 annotators: 19,900 pairs of about 40
    items) it is cheaper to lay the items out in cell order, so each cell is a block of positions:
    one resample of m positions gives each position a multiplicity, and a cell's count is a
    difference of two cumulative sums. Those multiplicities are drawn once per resample for all
    pairs with the same m (their resamples are then correlated across pairs, but each pair's own
    bootstrap distribution is exact), and every pair's 17 block boundaries become its rows,
    columns and diagonal with one float32 matrix product.
    """
    confusions = np.asarray(confusions, dtype=np.int64)
    low, high = np.full(len(confusions), np.nan), np.full(len(confusions), np.nan)
    defined = np.isfinite(kappa_from_confusions(confusions))
    shared = confusions.sum(axis=1)
    boundaries = np.concatenate([np.zeros((len(confusions), 1), np.int64), np.cumsum(confusions, axis=1)], axis=1)
    for m in np.unique(shared[defined]):
        m = int(m)
        members = np.flatnonzero(defined & (shared == m))
        if m + (CELLS + 1) * len(members) > 8 * CELLS * len(members) or resamples * m > 50_000_000:
            _multinomial_intervals(confusions, members, m, low, high, resamples=resamples, rng=rng,
                                   confidence=confidence)
            continue
        draws = rng.integers(0, m, size=(resamples, m)) + (np.arange(resamples) * m)[:, None]
        multiplicity = np.bincount(draws.ravel(), minlength=resamples * m).reshape(resamples, m)
        # Cumulative multiplicities, one row per position boundary (contiguous resamples).
        cumulative = np.zeros((m + 1, resamples), np.float32)
        np.cumsum(multiplicity.T, axis=0, out=cumulative[1:])
        chunk = max(1, 6_000_000 // (resamples * (CELLS + 1)))
        for begin in range(0, len(members), chunk):
            rows = members[begin:begin + chunk]
            gathered = cumulative[boundaries[rows]]  # (pairs, 17, resamples)
            margins = _BOUNDARIES_TO_MARGINS.T @ gathered  # (pairs, 9, resamples) counts, float32
            if m >= 4096:  # float32 holds counts exactly up to 2 ** 24: m * m must stay below that
                margins = margins.astype(np.float64)
            chance = np.einsum("pkb,pkb->pb", margins[:, :K], margins[:, K:2 * K])  # exact: below 2 ** 24
            # Counts are whole numbers, so this is bit for bit the point estimate's float64 arithmetic.
            kappa = _kappa(np.float64(m), margins[:, 2 * K].astype(np.float64), chance.astype(np.float64))
            low[rows], high[rows] = percentile_interval(kappa.T, confidence)
    return low, high


def _multinomial_intervals(confusions, members, m, low, high, *, resamples, rng, confidence) -> None:
    """``pair_intervals`` for pairs sharing many items: cell counts drawn as multinomials, in chunks."""
    chunk = max(1, 4_000_000 // (resamples * CELLS))
    for begin in range(0, len(members), chunk):
        rows = members[begin:begin + chunk]
        shares = confusions[rows] / m
        counts = rng.multinomial(m, shares[:, None, :], size=(len(rows), resamples))  # (pairs, resamples, 16)
        margins = counts @ _MARGINS  # (pairs, resamples, 9), float64
        chance = np.einsum("prk,prk->pr", margins[..., :K], margins[..., K:2 * K])
        kappa = _kappa(np.float64(m), margins[..., 2 * K], chance)
        low[rows], high[rows] = percentile_interval(kappa.T, confidence)

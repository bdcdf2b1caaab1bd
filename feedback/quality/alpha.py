"""Krippendorff's alpha from per-item value counts, vectorised over many bootstrap resamples.

The coincidence-matrix form of Krippendorff (2011), "Computing Krippendorff's Alpha-Reliability",
section C: for an item u with ``m_u`` >= 2 values and ``n_uc`` of them equal to value c, its
coincidences are ``(n_uc * n_uk - [c == k] * n_uc) / (m_u - 1)``; summed over items they give the
matrix ``o``, its margins ``n_c`` and total ``n``, and

    alpha = 1 - (n - 1) * sum_ck o_ck * d_ck / sum_ck n_c * n_k * d_ck

with ``d_ck = [c != k]`` (nominal) or ``d_ck = (sum_{g between c and k} n_g - (n_c + n_k) / 2) ** 2``
(ordinal, values in scale order). The same metrics as the ``krippendorff`` package
(``krippendorff.alpha``), whose values the tests compare with; here the per-item part is a matrix
product, so a thousand resamples of a few hundred distinct item patterns cost milliseconds.
"""
from __future__ import annotations

from typing import Literal

import numpy as np

Level = Literal["nominal", "ordinal"]


def coincidence_rows(counts: np.ndarray) -> np.ndarray:
    """Each item's contribution to the coincidence matrix, flattened: float64, shape (items, V * V).

    ``counts``: (items, V) non-negative integers, how many of the item's votes took each value.
    Items with fewer than two values are not pairable and contribute zeros.
    """
    counts = np.asarray(counts, dtype=np.float64)
    m = counts.sum(axis=1)
    outer = counts[:, :, None] * counts[:, None, :]
    v = counts.shape[1]
    outer[:, np.arange(v), np.arange(v)] -= counts
    with np.errstate(divide="ignore", invalid="ignore"):
        scaled = np.where((m >= 2)[:, None, None], outer / (m - 1)[:, None, None], 0.0)
    return scaled.reshape(len(counts), v * v)


def squared_distances(margins: np.ndarray, level: Level) -> np.ndarray:
    """The metric ``d_ck``, shape (..., V, V), for margins ``n_c`` of shape (..., V)."""
    v = margins.shape[-1]
    c, k = np.meshgrid(np.arange(v), np.arange(v), indexing="ij")
    if level == "nominal":
        return np.broadcast_to((c != k).astype(np.float64), (*margins.shape[:-1], v, v))
    if level != "ordinal":
        raise ValueError(f"level must be 'nominal' or 'ordinal', not {level!r}")
    cumulative = np.concatenate([np.zeros((*margins.shape[:-1], 1)), np.cumsum(margins, axis=-1)], axis=-1)
    low, high = np.minimum(c, k), np.maximum(c, k)
    between = cumulative[..., high + 1] - cumulative[..., low]
    return (between - (margins[..., c] + margins[..., k]) / 2.0) ** 2


def alpha_from_coincidences(coincidences: np.ndarray, level: Level) -> np.ndarray:
    """Krippendorff's alpha per coincidence matrix: float64, shape (...), NaN where undefined.

    ``coincidences``: (..., V, V). Undefined (NaN): no pairable value (``n`` < 2) or a single
    value used throughout (expected disagreement 0).
    """
    o = np.asarray(coincidences, dtype=np.float64)
    margins = o.sum(axis=-1)
    n = margins.sum(axis=-1)
    d = squared_distances(margins, level)
    observed = (o * d).sum(axis=(-2, -1))
    expected = (margins[..., :, None] * margins[..., None, :] * d).sum(axis=(-2, -1))
    with np.errstate(divide="ignore", invalid="ignore"):
        alpha = 1.0 - (n - 1.0) * observed / expected
    return np.where((n >= 2) & (expected > 1e-12 * np.maximum(n, 1.0) ** 2), alpha, np.nan)

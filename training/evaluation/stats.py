"""Win rates of a candidate against a baseline, with intervals, and a length-controlled win rate.

Pure code (numpy, scikit-learn; no Django). An outcome is the candidate's result on one prompt:
``1`` win, ``0.5`` tie, ``0`` loss (from reward-model scores, a judge or human votes).

- ``win_rate``: the share of wins counting a tie as half, with a percentile bootstrap interval over
  prompts (Efron & Tibshirani 1993, ch. 13). With three outcome kinds, resampling N prompts is a
  Multinomial(N, observed shares) draw of the (win, tie, loss) counts, which is what is drawn.
- ``length_controlled_win_rate``: the Bradley-Terry model with a style covariate, as in Chatbot
  Arena's style control (LMSYS, "Does style matter?", 2024): logit P(candidate wins) = b0 + b1 * z,
  with z the standardised normalised length difference (len_c - len_b) / (len_c + len_b). The
  length-controlled win rate is sigmoid(b0), the win probability at equal length; b1 says how much
  length alone moves the verdicts. Ties enter as half a win and half a loss (two rows of weight
  1/2). b1 has a weak L2 penalty (scikit-learn's ``C=1``, the intercept unpenalised) so that data
  where the longer response always wins (complete separation) still gives a finite fit. Interval:
  percentile bootstrap over prompts, all resamples refitted at once (``fit_length_model``).

Every figure comes as ``{"value": float | None, "defined": bool, "reason": str | None, ...}``: never
NaN or infinity.
"""
from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

OUTCOMES = (0.0, 0.5, 1.0)


def _undefined(reason: str, **extra) -> dict[str, Any]:
    return {"value": None, "defined": False, "reason": reason, "low": None, "high": None, **extra}


def _outcomes(outcomes: Sequence[float]) -> np.ndarray:
    values = np.asarray(outcomes, dtype=np.float64).reshape(-1)
    if not np.isin(values, OUTCOMES).all():
        raise ValueError("outcomes must be 1 (win), 0.5 (tie) or 0 (loss)")
    return values


def win_rate(
    outcomes: Sequence[float], *, confidence: float = 0.95, resamples: int = 2000, seed: int = 0
) -> dict[str, Any]:
    """The candidate's win rate (ties count half) over ``outcomes`` (N values in {1, 0.5, 0}).

    Returns ``value``, ``low``/``high`` (percentile bootstrap, ``confidence``), ``n``, ``wins``,
    ``ties``, ``losses`` and their shares (``win_share``, ``tie_share``, ``loss_share``).
    Undefined (with a reason) for no outcomes. Raises ValueError for any other value.
    """
    values = _outcomes(outcomes)
    n = len(values)
    counts = {"n": n, "wins": int((values == 1).sum()), "ties": int((values == 0.5).sum()),
              "losses": int((values == 0).sum())}
    if n == 0:
        return _undefined("no outcomes", **counts)
    p = np.array([counts["wins"], counts["ties"], counts["losses"]]) / n
    draws = np.random.default_rng(seed).multinomial(n, p, size=resamples)
    rates = (draws[:, 0] + 0.5 * draws[:, 1]) / n
    tail = (1 - confidence) / 2
    low, high = np.quantile(rates, [tail, 1 - tail])
    return {
        "value": float(p[0] + 0.5 * p[1]), "defined": True, "reason": None, "low": float(low), "high": float(high),
        **counts, "win_share": float(p[0]), "tie_share": float(p[1]), "loss_share": float(p[2]),
    }


def _length_feature(candidate_lengths: np.ndarray, baseline_lengths: np.ndarray) -> np.ndarray:
    total = candidate_lengths + baseline_lengths
    return np.divide(candidate_lengths - baseline_lengths, total, out=np.zeros_like(total), where=total > 0)


RIDGE_C = 1.0  # scikit-learn's C: the L2 penalty on the length coefficient is b1**2 / (2 C)


def fit_length_model(z: np.ndarray, values: np.ndarray, counts: np.ndarray | None = None, *, iterations: int = 60):
    """Fit logit P(win) = b0 + b1 * z for many resamples at once: ``(b0, b1)``, each (R,).

    ``z``: (N,) covariate; ``values``: (N,) outcomes in {1, 0.5, 0}; ``counts``: (R, N) how many
    times each prompt is in each resample (default: one resample of every prompt once). The
    objective is scikit-learn's ``LogisticRegression(C=RIDGE_C)`` with a tie as half a win and
    half a loss (sample weights), i.e. sum_i c_i * logloss_i + b1**2 / (2 C); minimised by
    Newton's method on the 2x2 system, steps capped at 5 so a resample the candidate swept stays
    finite (its b0 just grows). Tested against scikit-learn's fit.
    """
    z, values = np.asarray(z, dtype=np.float64), np.asarray(values, dtype=np.float64)
    counts = np.ones((1, len(z))) if counts is None else np.asarray(counts, dtype=np.float64)
    b0, b1 = np.zeros(len(counts)), np.zeros(len(counts))
    for _ in range(iterations):
        p = 1 / (1 + np.exp(-np.clip(b0[:, None] + b1[:, None] * z, -50, 50)))
        residual, curvature = counts * (p - values), counts * p * (1 - p)
        g0, g1 = residual.sum(1), residual @ z + b1 / RIDGE_C
        h00, h01, h11 = curvature.sum(1), curvature @ z, curvature @ (z * z) + 1 / RIDGE_C
        det = h00 * h11 - h01 * h01
        safe = np.where(det > 1e-12, det, np.inf)
        step0, step1 = (h11 * g0 - h01 * g1) / safe, (h00 * g1 - h01 * g0) / safe
        step0 = np.where(det > 1e-12, step0, np.sign(g0) * np.minimum(np.abs(g0) / np.maximum(h00, 1e-12), 5.0))
        b0, b1 = b0 - np.clip(step0, -5, 5), b1 - np.clip(step1, -5, 5)
        if max(np.abs(step0).max(initial=0), np.abs(step1).max(initial=0)) < 1e-10:
            break
    return b0, b1


def length_controlled_win_rate(
    outcomes: Sequence[float],
    candidate_lengths: Sequence[float],
    baseline_lengths: Sequence[float],
    *,
    confidence: float = 0.95,
    resamples: int = 1000,
    seed: int = 0,
) -> dict[str, Any]:
    """The win rate at equal length (see the module docstring), with a bootstrap interval.

    ``outcomes``: N values in {1, 0.5, 0}; ``candidate_lengths``/``baseline_lengths``: N response
    lengths (tokens or characters, the same unit for both). Returns ``value`` = sigmoid(b0),
    ``low``/``high``, ``length_coefficient`` (b1 per standard deviation of the normalised length
    difference; > 0: longer answers win more), ``n``. Undefined (with a reason) for fewer than 2
    outcomes or when the candidate won (or lost) every prompt: then only its length could explain
    nothing. Raises ValueError for outcome values outside {1, 0.5, 0} or lengths that do not match.
    """
    values = _outcomes(outcomes)
    c = np.asarray(candidate_lengths, dtype=np.float64).reshape(-1)
    b = np.asarray(baseline_lengths, dtype=np.float64).reshape(-1)
    if not len(values) == len(c) == len(b):
        raise ValueError(f"{len(values)} outcomes but {len(c)} candidate and {len(b)} baseline lengths")
    if (c < 0).any() or (b < 0).any() or not np.isfinite(np.concatenate([c, b])).all():
        raise ValueError("lengths must be finite and not negative")
    n = len(values)
    if n < 2:
        return _undefined("fewer than 2 outcomes", n=n, length_coefficient=None)
    if (values == 1).all() or (values == 0).all():
        return _undefined("the candidate won every prompt" if values[0] == 1 else "the candidate lost every prompt",
                          n=n, length_coefficient=None)
    raw = _length_feature(c, b)
    spread = raw.std()
    z = (raw - raw.mean()) / spread if spread > 0 else np.zeros_like(raw)
    # sigmoid(b0) is the win probability at z = 0, i.e. at the *mean* length difference; centre
    # on equal length instead, which is where the question "and at equal length?" is asked.
    z_equal = (0.0 - raw.mean()) / spread if spread > 0 else 0.0
    (b0,), (b1,) = fit_length_model(z, values)
    value = 1 / (1 + np.exp(-(b0 + b1 * z_equal)))
    counts = np.random.default_rng(seed).multinomial(n, np.full(n, 1 / n), size=resamples)
    r0, r1 = fit_length_model(z, values, counts)
    samples = 1 / (1 + np.exp(-np.clip(r0 + r1 * z_equal, -50, 50)))
    tail = (1 - confidence) / 2
    low, high = np.quantile(samples, [tail, 1 - tail])
    return {"value": float(value), "defined": True, "reason": None, "low": float(low), "high": float(high),
            "length_coefficient": float(b1), "n": n}


def by_category(outcomes: Sequence[float], categories: Sequence[str], **options) -> dict[str, dict[str, Any]]:
    """``win_rate`` per category (``categories``: N labels, "" for none), sorted by category."""
    values, labels = _outcomes(outcomes), list(categories)
    if len(labels) != len(values):
        raise ValueError(f"{len(values)} outcomes but {len(labels)} categories")
    out = {}
    for label in sorted(set(labels)):
        out[label] = win_rate(values[np.array([x == label for x in labels])], **options)
    return out

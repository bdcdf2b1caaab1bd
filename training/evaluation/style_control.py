"""Length-controlled Bradley-Terry ratings for the leaderboard (issue 17 item 5): Chatbot Arena's
style control (LMSYS, "Does style matter?", 2024) with one style feature, response length.

Model: logit P(A beats B) = beta_A - beta_B + gamma * z, with z the normalised length difference
(len_A - len_B) / (len_A + len_B) standardised over the votes (characters). beta are the
log-strengths at equal length; gamma says how much length alone sways the voters (> 0: longer
wins). Ties count half a win each side (two rows of weight 1/2); a both-bad vote is a tie or left
out, as on the plain leaderboard. The same ridge as the plain fit (``training.ratings.DEFAULT_L2``
on every beta, and on gamma), so the two columns are on one scale (``training.ratings._ratings``:
1000 at the mean, 400 points per factor 10 in odds). Pure numpy/scipy, no Django. No interval is
computed for this column (the plain rating carries the bootstrap interval).
"""
from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from scipy.optimize import minimize
from scipy.special import expit

from ..ratings import DEFAULT_L2, _ratings

CHOICE_SCORE = {"a": 1.0, "b": 0.0, "tie": 0.5}


def length_controlled_ratings(
    votes: Sequence[tuple[str, str, str, int, int]], *, both_bad: str = "tie", l2: float = DEFAULT_L2,
) -> dict[str, Any]:
    """Ratings at equal length from ``(model_a, model_b, choice, length_a, length_b)`` votes.

    Returns ``{"ratings": {model: rating}, "length_coefficient": gamma (per standard deviation of
    z) or None, "votes": counted}``; empty ratings for no votes.
    Raises: ValueError for an unknown choice or both_bad mode.
    """
    if both_bad not in ("tie", "exclude"):
        raise ValueError("both_bad must be 'tie' or 'exclude'")
    rows = []
    for a, b, choice, la, lb in votes:
        if choice == "both_bad":
            if both_bad == "exclude":
                continue
            choice = "tie"
        if choice not in CHOICE_SCORE:
            raise ValueError(f"unknown choice {choice!r}")
        rows.append((a, b, CHOICE_SCORE[choice], float(la), float(lb)))
    if not rows:
        return {"ratings": {}, "length_coefficient": None, "votes": 0}
    names = sorted({r[0] for r in rows} | {r[1] for r in rows})
    index = {name: k for k, name in enumerate(names)}
    first = np.array([index[r[0]] for r in rows])
    second = np.array([index[r[1]] for r in rows])
    score = np.array([r[2] for r in rows])
    la, lb = np.array([r[3] for r in rows]), np.array([r[4] for r in rows])
    total = la + lb
    raw = np.divide(la - lb, total, out=np.zeros_like(total), where=total > 0)
    spread = raw.std()
    z = raw / spread if spread > 0 else np.zeros_like(raw)  # not centred: z = 0 is equal length
    m = len(names)

    def objective(params: np.ndarray) -> tuple[float, np.ndarray]:
        beta, gamma = params[:m], params[m]
        logit = beta[first] - beta[second] + gamma * z
        # -[s log sigmoid(x) + (1 - s) log sigmoid(-x)] = log(1 + e^x) - s x
        loss = np.logaddexp(0.0, logit) - score * logit
        p = expit(logit)
        residual = p - score
        grad = np.zeros(m + 1)
        np.add.at(grad, first, residual)
        np.add.at(grad, second, -residual)
        grad[m] = residual @ z
        grad += l2 * params
        return float(loss.sum() + 0.5 * l2 * params @ params), grad

    fit = minimize(objective, np.zeros(m + 1), jac=True, method="L-BFGS-B")
    beta, gamma = fit.x[:m], fit.x[m]
    rating = _ratings(beta, anchor_index=None)
    return {"ratings": {name: float(rating[k]) for k, name in enumerate(names)},
            "length_coefficient": float(gamma) if spread > 0 else None, "votes": len(rows)}

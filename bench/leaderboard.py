#!/usr/bin/env python
"""Leaderboard fit time: Bradley-Terry ratings plus bootstrap intervals on synthetic votes.

    .venv/bin/python bench/leaderboard.py                          # 20 models, 50,000 votes, 200 rounds
    .venv/bin/python bench/leaderboard.py --models 50 --votes 200000 --rounds 500

Votes are drawn from known strengths (log-strength ~ N(0, 1), seeded): uniformly drawn pairs of
distinct models, 10% ties and 5% both-bad, the rest decided by the Bradley-Terry probability.
No database: ``training.ratings.leaderboard`` on plain objects, as the selector calls it. Reports
the median of ``--repeats`` timings of the whole call (tallying, the fit and every bootstrap refit),
the time of the point fit alone (``bradley_terry``), and how well the fit tracks the true
strengths: Spearman correlation and the slope of fitted on true ratings (ties, counted as half a
win each, pull ratings towards each other, so the slope is a little under 1). The last line is
one JSON object with the figures.
"""
from __future__ import annotations

import argparse
import json
import math
import statistics
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from scipy import stats

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from training.ratings import SCALE, bradley_terry, leaderboard, vote_outcomes  # noqa: E402


@dataclass(frozen=True)
class Vote:
    model_a: str
    model_b: str
    choice: str


def synthetic_votes(*, models: int, votes: int, seed: int) -> tuple[list[Vote], dict[str, float]]:
    rng = np.random.default_rng(seed)
    beta = rng.normal(0.0, 1.0, models)
    names = [f"policy-{k:03d}" for k in range(models)]
    a = rng.integers(0, models, votes)
    b = (a + rng.integers(1, models, votes)) % models
    p_a = 1.0 / (1.0 + np.exp(-(beta[a] - beta[b])))
    u = rng.random(votes)
    choice = np.where(u < 0.10, "tie", np.where(u < 0.15, "both_bad", np.where(rng.random(votes) < p_a, "a", "b")))
    truth = {name: 1000.0 + SCALE * (value - beta.mean()) for name, value in zip(names, beta)}
    return [Vote(names[i], names[j], c) for i, j, c in zip(a.tolist(), b.tolist(), choice.tolist())], truth


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--models", type=int, default=20)
    parser.add_argument("--votes", type=int, default=50_000)
    parser.add_argument("--rounds", type=int, default=200)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    votes, truth = synthetic_votes(models=args.models, votes=args.votes, seed=args.seed)
    outcomes, _ = vote_outcomes(votes)

    timings = []
    for _ in range(args.repeats):
        start = time.perf_counter()
        board = leaderboard(votes, rounds=args.rounds, seed=args.seed)
        timings.append(time.perf_counter() - start)
    start = time.perf_counter()
    bradley_terry(outcomes)
    point_fit_s = time.perf_counter() - start

    fitted = np.array([row.rating for row in board.rows])
    true = np.array([truth[row.model] for row in board.rows])
    widths = [row.ci_high - row.ci_low for row in board.rows]
    figures = {
        "models": args.models,
        "votes": args.votes,
        "rounds": args.rounds,
        "leaderboard_s": round(statistics.median(timings), 3),
        "leaderboard_s_all": [round(t, 3) for t in timings],
        "point_fit_s": round(point_fit_s, 3),
        "spearman_vs_truth": round(float(stats.spearmanr(fitted, true).statistic), 4),
        "shrinkage_slope": round(float(np.polyfit(true, fitted, 1)[0]), 3),
        "median_ci_width_points": round(statistics.median(widths), 2),
        "ranks_distinct": len({row.rank for row in board.rows}),
    }
    print(f"{args.models} models, {args.votes:,} votes, {args.rounds} bootstrap rounds")
    print(f"  leaderboard (tally + fit + bootstrap): {figures['leaderboard_s']:.3f} s median of {args.repeats}")
    print(f"  point fit alone:                       {figures['point_fit_s']:.3f} s")
    print(f"  fitted vs true ratings: Spearman {figures['spearman_vs_truth']}, slope {figures['shrinkage_slope']} "
          f"(ties pull ratings together); median 95% interval width {figures['median_ci_width_points']} points")
    print(f"  {figures['ranks_distinct']} distinct ranks among {args.models} models")
    if not all(math.isfinite(row.rating) for row in board.rows):  # pragma: no cover - a bench sanity check
        raise SystemExit("non-finite rating")
    print(json.dumps(figures))


if __name__ == "__main__":
    main()

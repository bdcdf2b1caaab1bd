"""training.evaluation.stats: win rates with bootstrap intervals that cover, and a length-controlled
win rate that sees through a judge who always prefers the longer answer."""
from __future__ import annotations

import json

import numpy as np
import pytest

from training.evaluation.stats import by_category, length_controlled_win_rate, win_rate


def test_win_rate_counts_a_tie_as_half_and_reports_each_share():
    result = win_rate([1, 1, 0.5, 0, 1, 0.5, 0, 0])
    assert result["value"] == pytest.approx((3 + 1) / 8)
    assert (result["n"], result["wins"], result["ties"], result["losses"]) == (8, 3, 2, 3)
    assert (result["win_share"], result["tie_share"], result["loss_share"]) == (3 / 8, 2 / 8, 3 / 8)
    assert result["low"] < result["value"] < result["high"]


def test_no_outcomes_is_undefined_with_a_reason_and_json_safe():
    result = win_rate([])
    assert (result["value"], result["defined"], result["reason"]) == (None, False, "no outcomes")
    json.dumps(result, allow_nan=False)
    with pytest.raises(ValueError, match="1 \\(win\\), 0.5 \\(tie\\) or 0 \\(loss\\)"):
        win_rate([1, 2])


def test_the_95_percent_interval_covers_the_true_rate_about_95_percent_of_the_time():
    rng = np.random.default_rng(7)
    shares, truth = [0.55, 0.10, 0.35], 0.55 + 0.05
    covered = 0
    trials = 400
    for trial in range(trials):
        outcomes = rng.choice([1.0, 0.5, 0.0], size=150, p=shares)
        result = win_rate(outcomes, resamples=1000, seed=trial)
        covered += result["low"] <= truth <= result["high"]
    assert 0.91 <= covered / trials <= 0.98, covered / trials


def _lengths(rng, n, candidate_longer_share):
    base = rng.integers(50, 400, size=n).astype(float)
    longer = rng.random(n) < candidate_longer_share
    delta = rng.integers(5, 200, size=n)
    candidate = np.where(longer, base + delta, np.maximum(base - delta, 1))
    return candidate, base


def test_a_judge_swayed_by_length_alone_gets_an_even_length_controlled_rate():
    rng = np.random.default_rng(1)
    candidate, baseline = _lengths(rng, 500, 0.7)
    d = (candidate - baseline) / (candidate + baseline)
    p_win = 1 / (1 + np.exp(-15 * d))  # no quality difference: only the length difference matters
    outcomes = (rng.random(500) < p_win).astype(float)
    raw = win_rate(outcomes)["value"]
    controlled = length_controlled_win_rate(outcomes, candidate, baseline)
    assert raw > 0.6
    assert abs(controlled["value"] - 0.5) < 0.06, controlled
    assert controlled["low"] < 0.5 < controlled["high"]
    assert controlled["length_coefficient"] > 0.5
    json.dumps(controlled, allow_nan=False)


def test_when_the_longer_answer_always_wins_the_fit_stays_finite_and_pulls_toward_even():
    rng = np.random.default_rng(3)
    candidate, baseline = _lengths(rng, 400, 0.7)
    outcomes = (candidate > baseline).astype(float)  # complete separation by length
    raw = win_rate(outcomes)["value"]
    controlled = length_controlled_win_rate(outcomes, candidate, baseline)
    assert controlled["defined"] and controlled["value"] < raw - 0.05
    assert controlled["length_coefficient"] > 3
    json.dumps(controlled, allow_nan=False)


def test_the_batched_newton_fit_is_scikit_learns_fit():
    from sklearn.linear_model import LogisticRegression

    from training.evaluation.stats import RIDGE_C, fit_length_model

    rng = np.random.default_rng(4)
    z = rng.normal(size=300)
    values = rng.choice([1.0, 0.5, 0.0], size=300, p=[0.5, 0.2, 0.3])
    counts = rng.multinomial(300, np.full(300, 1 / 300), size=3)
    b0, b1 = fit_length_model(z, values, counts)
    for r in range(3):
        x = np.concatenate([z, z]).reshape(-1, 1)
        y = np.concatenate([np.ones(300), np.zeros(300)])
        w = np.concatenate([values, 1 - values]) * np.concatenate([counts[r], counts[r]])
        keep = w > 0
        model = LogisticRegression(C=RIDGE_C, tol=1e-10, max_iter=1000).fit(x[keep], y[keep], sample_weight=w[keep])
        assert (b0[r], b1[r]) == pytest.approx((model.intercept_[0], model.coef_[0, 0]), abs=1e-5)


def test_a_real_edge_that_has_nothing_to_do_with_length_survives_the_control():
    rng = np.random.default_rng(2)
    candidate, baseline = _lengths(rng, 600, 0.5)
    outcomes = rng.choice([1.0, 0.5, 0.0], size=600, p=[0.7, 0.1, 0.2])  # 0.75 whatever the lengths
    controlled = length_controlled_win_rate(outcomes, candidate, baseline)
    assert controlled["value"] == pytest.approx(0.75, abs=0.05)
    assert abs(controlled["length_coefficient"]) < 0.25
    assert controlled["low"] < 0.75 < controlled["high"]


def test_degenerate_length_control_inputs_say_why():
    assert length_controlled_win_rate([1], [10], [5])["reason"] == "fewer than 2 outcomes"
    assert length_controlled_win_rate([1, 1, 1], [10, 3, 8], [5, 6, 7])["reason"] == "the candidate won every prompt"
    with pytest.raises(ValueError, match="2 outcomes but 1 candidate"):
        length_controlled_win_rate([1, 0], [10], [5, 6])
    with pytest.raises(ValueError, match="not negative"):
        length_controlled_win_rate([1, 0], [10, -1], [5, 6])
    same = length_controlled_win_rate([1, 0, 0.5, 1], [10, 10, 10, 10], [10, 10, 10, 10])
    assert same["value"] == pytest.approx(0.625, abs=0.02)  # no length difference: the plain rate


def test_by_category():
    result = by_category([1, 0, 1, 0.5], ["math", "code", "math", ""])
    assert list(result) == ["", "code", "math"]
    assert result["math"]["value"] == 1.0 and result["code"]["value"] == 0.0 and result[""]["value"] == 0.5

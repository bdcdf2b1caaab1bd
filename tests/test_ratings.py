"""Bradley-Terry ratings and the leaderboard (training.ratings): pure, no database.

Synthetic votes are drawn from known Bradley-Terry strengths with a seeded generator, so each
test is deterministic; the tolerances are several standard errors wide.
"""
import math
from dataclasses import dataclass

import numpy as np
import pytest

from training.ratings import SCALE, bradley_terry, leaderboard


@dataclass(frozen=True)
class Vote:
    model_a: str
    model_b: str
    choice: str


TRUE_BETA = {"alpha": 0.0, "bravo": 0.6, "charlie": -0.5, "delta": 1.2}  # natural-log strengths


def true_ratings(beta: dict[str, float]) -> dict[str, float]:
    """The ratings the fit should find: 1000 + 400 log10-strength, centred on the mean."""
    mean = sum(beta.values()) / len(beta)
    return {name: 1000 + SCALE * (value - mean) for name, value in beta.items()}


def simulate(beta: dict[str, float], votes: int, *, seed: int, tie_rate: float = 0.0) -> list[Vote]:
    """``votes`` votes on uniformly drawn pairs of distinct models (random A/B sides); A wins with
    probability sigmoid(beta_a - beta_b); a share ``tie_rate`` of the votes are ties instead."""
    rng = np.random.default_rng(seed)
    names = list(beta)
    out = []
    for _ in range(votes):
        a, b = rng.choice(len(names), size=2, replace=False)
        p_a = 1 / (1 + math.exp(-(beta[names[a]] - beta[names[b]])))
        if rng.random() < tie_rate:
            choice = "tie"
        else:
            choice = "a" if rng.random() < p_a else "b"
        out.append(Vote(names[a], names[b], choice))
    return out


def as_outcomes(votes: list[Vote]) -> list[tuple[str, str, float]]:
    return [(v.model_a, v.model_b, {"a": 1.0, "b": 0.0, "tie": 0.5}[v.choice]) for v in votes]


@pytest.fixture(scope="module")
def synthetic() -> list[Vote]:
    return simulate(TRUE_BETA, 4000, seed=11)


@pytest.fixture(scope="module")
def board(synthetic):
    return leaderboard(synthetic, rounds=200, seed=3)


# --- recovery -----------------------------------------------------------------------------------


def test_known_strengths_are_recovered_in_order_and_within_tolerance(synthetic):
    fitted = bradley_terry(as_outcomes(synthetic))
    truth = true_ratings(TRUE_BETA)

    assert sorted(fitted, key=fitted.get, reverse=True) == ["delta", "bravo", "alpha", "charlie"]
    assert sum(fitted.values()) / len(fitted) == pytest.approx(1000, abs=1e-6)  # mean-anchored
    for name in TRUE_BETA:  # ~2,000 votes per model: a standard error of about 9 points
        assert fitted[name] == pytest.approx(truth[name], abs=30), name
    # The gap between best and worst: 1.7 log units = 295 points.
    assert fitted["delta"] - fitted["charlie"] == pytest.approx(SCALE * 1.7, abs=40)


def test_the_scale_is_400_points_per_factor_of_ten_in_odds():
    # 100 votes, A wins 91: odds 91:9 = 10.1:1, so A is 400 * log10(10.1) points ahead; tiny prior.
    outcomes = [("a", "b", 1.0)] * 91 + [("a", "b", 0.0)] * 9
    fitted = bradley_terry(outcomes, l2=1e-9)
    assert fitted["a"] - fitted["b"] == pytest.approx(400 * math.log10(91 / 9), abs=0.01)
    assert fitted["a"] + fitted["b"] == pytest.approx(2000)


def analytic_standard_errors(votes: list[Vote], fitted: dict[str, float]) -> dict[str, float]:
    """Rating-point standard errors from the inverse Fisher information of the Bradley-Terry
    likelihood at the fit (each model's rating minus the mean, as the ratings are anchored)."""
    names = sorted(fitted)
    index = {name: k for k, name in enumerate(names)}
    beta = np.array([(fitted[name] - 1000) / SCALE for name in names])
    info = np.zeros((len(names), len(names)))
    for v in votes:
        i, j = index[v.model_a], index[v.model_b]
        p = 1 / (1 + math.exp(-(beta[i] - beta[j])))
        weight = p * (1 - p)
        info[i, i] += weight
        info[j, j] += weight
        info[i, j] -= weight
        info[j, i] -= weight
    ones = np.full_like(info, 1 / len(names))  # (L + J/m)^-1 - J/m: the inverse on the mean-zero subspace
    covariance = np.linalg.inv(info + ones) - ones
    return {name: SCALE * math.sqrt(covariance[k, k]) for name, k in index.items()}


def test_the_intervals_are_as_wide_as_the_fisher_information_says(board, synthetic):
    standard_errors = analytic_standard_errors(synthetic, {row.model: row.rating for row in board.rows})
    for row in board.rows:
        assert row.ci_low < row.rating < row.ci_high
        half_width = (row.ci_high - row.ci_low) / 2
        assert half_width == pytest.approx(1.96 * standard_errors[row.model], rel=0.15), row


def test_the_intervals_contain_the_true_ratings_about_95_percent_of_the_time():
    """Over 30 independent data sets of 800 votes, the intervals hold the truth for about 95% of
    the 120 model ratings (116 with these seeds; percentile intervals run slightly short on
    small samples: ~90% at 600 votes and 100 rounds); 85% or fewer would mean intervals too narrow."""
    truth = true_ratings(TRUE_BETA)
    hits = total = 0
    for seed in range(30):
        result = leaderboard(simulate(TRUE_BETA, 800, seed=1000 + seed), rounds=200, seed=seed)
        for row in result.rows:
            hits += row.ci_low <= truth[row.model] <= row.ci_high
            total += 1
    assert total == 120
    assert 102 < hits < 120, hits


def test_counts_win_rates_and_pair_votes_match_the_votes(board, synthetic):
    by_model = {row.model: row for row in board.rows}
    delta = by_model["delta"]
    assert delta.votes == sum(1 for v in synthetic if "delta" in (v.model_a, v.model_b))
    assert delta.wins == sum(1 for v in synthetic if (v.model_a, v.choice) in {("delta", "a")} or (v.model_b, v.choice) == ("delta", "b"))
    assert delta.wins + delta.losses + delta.ties == delta.votes and delta.ties == 0
    assert board.votes == 4000 == sum(row.votes for row in board.rows) // 2

    between = [v for v in synthetic if {v.model_a, v.model_b} == {"delta", "alpha"}]
    delta_won = sum(1 for v in between if (v.choice == "a") == (v.model_a == "delta"))
    assert board.pair_votes["delta"]["alpha"] == board.pair_votes["alpha"]["delta"] == len(between)
    assert board.win_rate["delta"]["alpha"] == pytest.approx(delta_won / len(between))
    assert board.win_rate["alpha"]["delta"] == pytest.approx(1 - delta_won / len(between))
    assert "delta" not in board.win_rate["delta"]


# --- ties ---------------------------------------------------------------------------------------


def test_all_ties_give_equal_ratings_and_one_shared_rank():
    votes = [Vote("a", "b", "tie")] * 30 + [Vote("c", "b", "tie")] * 5 + [Vote("a", "c", "tie")] * 12
    result = leaderboard(votes, rounds=50)
    assert {row.rating for row in result.rows} == {1000.0}
    assert [row.rank for row in result.rows] == [1, 1, 1]
    assert all(row.ci_low == row.ci_high == 1000.0 for row in result.rows)  # any resample is all ties too
    assert [(row.model, row.ties, row.wins, row.losses) for row in result.rows] == [("a", 42, 0, 0), ("b", 35, 0, 0), ("c", 17, 0, 0)]
    assert result.win_rate["a"]["b"] == 0.5


def test_a_tie_counts_half_a_win_for_each():
    # One win each way plus two ties is the same evidence as two wins each way: ratings equal.
    assert bradley_terry([("x", "y", 1.0), ("x", "y", 0.0), ("x", "y", 0.5), ("y", "x", 0.5)]) == {"x": 1000.0, "y": 1000.0}
    # 3 wins and 2 ties out of 5 is a 4/5 score: the same fit as 4 wins and 1 loss.
    with_ties = bradley_terry([("x", "y", 1.0)] * 3 + [("x", "y", 0.5)] * 2)
    without = bradley_terry([("x", "y", 1.0)] * 4 + [("x", "y", 0.0)])
    assert with_ties["x"] == pytest.approx(without["x"], abs=1e-6)


def test_both_bad_counts_as_a_tie_or_is_left_out():
    votes = [Vote("x", "y", "a")] * 6 + [Vote("x", "y", "b")] * 2 + [Vote("y", "x", "both_bad")] * 8

    as_tie = leaderboard(votes, rounds=20)
    excluded = leaderboard(votes, both_bad="exclude", rounds=20)

    x_tie = next(row for row in as_tie.rows if row.model == "x")
    x_excl = next(row for row in excluded.rows if row.model == "x")
    assert (x_tie.votes, x_tie.wins, x_tie.losses, x_tie.ties) == (16, 6, 2, 8)
    assert (x_excl.votes, x_excl.wins, x_excl.losses, x_excl.ties) == (8, 6, 2, 0)
    assert as_tie.win_rate["x"]["y"] == pytest.approx(10 / 16) and excluded.win_rate["x"]["y"] == pytest.approx(6 / 8)
    assert (as_tie.votes, as_tie.both_bad_excluded, excluded.votes, excluded.both_bad_excluded) == (16, 0, 8, 8)
    assert 1000 < x_tie.rating < x_excl.rating  # ties pull the ratings together
    assert excluded.as_dict()["both_bad"] == "exclude"


def test_a_model_with_only_both_bad_votes_is_absent_when_they_are_left_out():
    votes = [Vote("x", "y", "a"), Vote("y", "x", "b"), Vote("x", "z", "both_bad")]
    assert leaderboard(votes, both_bad="exclude", rounds=5).models == ["x", "y"]
    assert sorted(leaderboard(votes, rounds=5).models) == ["x", "y", "z"]


# --- invariance ---------------------------------------------------------------------------------


def test_vote_order_does_not_change_anything(synthetic, board):
    shuffled = [synthetic[k] for k in np.random.default_rng(5).permutation(len(synthetic))]
    assert leaderboard(shuffled, rounds=200, seed=3) == board


def test_renaming_models_gives_the_same_leaderboard_under_the_new_names(synthetic, board):
    rename = {"alpha": "zulu", "bravo": "a-model", "charlie": "mike", "delta": "b"}  # sorts differently
    renamed = [Vote(rename[v.model_a], rename[v.model_b], v.choice) for v in reversed(synthetic)]
    result = leaderboard(renamed, rounds=200, seed=3)

    assert result.models == [rename[name] for name in board.models]
    for old, new in zip(board.rows, result.rows):
        assert new.rating == pytest.approx(old.rating, abs=1e-6)
        assert new.ci_low == pytest.approx(old.ci_low, abs=1e-3)  # same bootstrap draw, refits to 1e-3 points
        assert new.ci_high == pytest.approx(old.ci_high, abs=1e-3)
        assert (new.rank, new.votes, new.wins, new.losses, new.ties) == (old.rank, old.votes, old.wins, old.losses, old.ties)
    assert result.win_rate["b"]["zulu"] == board.win_rate["delta"]["alpha"]


def test_swapping_the_a_and_b_sides_of_every_vote_changes_nothing(synthetic, board):
    flipped = [Vote(v.model_b, v.model_a, {"a": "b", "b": "a"}.get(v.choice, v.choice)) for v in synthetic]
    result = leaderboard(flipped, rounds=200, seed=3)
    for old, new in zip(board.rows, result.rows):
        assert (new.model, new.rank) == (old.model, old.rank)
        assert new.rating == pytest.approx(old.rating, abs=1e-6)
        assert new.ci_low == pytest.approx(old.ci_low, abs=1e-3)


def test_the_seed_fixes_the_intervals_and_another_seed_moves_them_slightly(synthetic, board):
    again = leaderboard(synthetic, rounds=200, seed=3)
    other = leaderboard(synthetic, rounds=200, seed=4)
    assert again == board
    assert [r.rating for r in other.rows] == [r.rating for r in board.rows]
    assert [r.ci_low for r in other.rows] != [r.ci_low for r in board.rows]
    for old, new in zip(board.rows, other.rows):
        assert new.ci_low == pytest.approx(old.ci_low, abs=6)


# --- rank ---------------------------------------------------------------------------------------


def test_overlapping_intervals_share_a_rank_and_separated_ones_do_not():
    beta = {"top": 1.0, "near-top": 0.95, "middle": 0.0, "bottom": -1.0}
    result = leaderboard(simulate(beta, 3000, seed=21), rounds=200, seed=1)
    by_model = {row.model: row for row in result.rows}
    top, near = by_model["top"], by_model["near-top"]
    assert top.ci_low < near.ci_high and near.ci_low < top.ci_high  # they overlap
    assert (top.rank, near.rank) == (1, 1)
    assert by_model["middle"].rank == 3 and by_model["bottom"].rank == 4
    assert result.models[2:] == ["middle", "bottom"]


def test_rank_is_one_plus_the_models_whose_interval_lies_wholly_above():
    # c overlaps b but not a; b overlaps both: ranks 1, 1, 2 (LMSYS's rank rule, not a chain).
    beta = {"a": 0.5, "b": 0.25, "c": 0.0}
    result = leaderboard(simulate(beta, 1500, seed=8), rounds=200, seed=2)
    rows = {row.model: row for row in result.rows}
    for row in result.rows:
        above = sum(1 for other in result.rows if other.ci_low > row.ci_high)
        assert row.rank == 1 + above
    if rows["a"].ci_low > rows["c"].ci_high and rows["b"].ci_low <= rows["c"].ci_high:
        assert [rows[m].rank for m in "abc"] == [1, 1, 2]


# --- degenerate data ----------------------------------------------------------------------------


def test_a_model_that_never_loses_gets_a_finite_rating_above_the_rest():
    votes = simulate({"p": 0.0, "q": 0.3, "r": -0.3}, 300, seed=4) + [Vote("winner", m, "a") for m in "pqr" for _ in range(10)]
    result = leaderboard(votes, rounds=100)
    best = result.rows[0]
    assert best.model == "winner" and (best.wins, best.losses) == (30, 0)
    assert all(math.isfinite(x) for row in result.rows for x in (row.rating, row.ci_low, row.ci_high))
    assert best.rank == 1 and all(row.rank > 1 for row in result.rows[1:])
    assert 300 < best.rating - result.rows[1].rating < 2000
    assert result.win_rate["winner"]["p"] == 1.0


def test_the_prior_costs_little_on_a_well_measured_gap_and_tames_an_unbroken_record():
    # 42 wins in 50: 400 * log10(42 / 8) = 288 points by maximum likelihood; the prior takes ~2%.
    fitted = bradley_terry([("x", "y", 1.0)] * 42 + [("x", "y", 0.0)] * 8)
    assert fitted["x"] - fitted["y"] == pytest.approx(400 * math.log10(42 / 8), rel=0.03)
    assert fitted["x"] - fitted["y"] < 400 * math.log10(42 / 8)
    # 21 wins in 21 against three even models: about 600 points above them (30:1), not thousands.
    rng = np.random.default_rng(5)
    field = [(x, y, float(rng.random() < 0.5)) for x in "abc" for y in "abc" if x < y for _ in range(30)]
    rated = bradley_terry(field + [("champ", x, 1.0) for x in "abc" for _ in range(7)])
    assert rated["champ"] - max(rated[x] for x in "abc") == pytest.approx(590, abs=50)


def test_a_model_with_one_vote_gets_an_interval_that_reaches_back_to_the_field():
    votes = [Vote("p", "q", "a")] * 6 + [Vote("q", "p", "a")] * 2 + [Vote("p", "q", "tie")] * 2 + [Vote("newcomer", "q", "a")]
    result = leaderboard(votes, rounds=200)
    rows = {row.model: row for row in result.rows}
    newcomer = rows["newcomer"]
    assert (newcomer.votes, newcomer.wins) == (1, 1)
    assert newcomer.rating > rows["q"].rating and newcomer.rating - rows["q"].rating < 400
    assert newcomer.ci_low <= 1000 < newcomer.ci_high  # in rounds without its vote it is an average model
    assert newcomer.rank == rows["p"].rank == 1  # one win does not put it alone at the top


def test_a_model_compared_with_only_one_other_is_rated_against_it():
    votes = simulate({"p": 0.0, "q": 0.3, "r": -0.3}, 600, seed=4) + [Vote("lonely", "p", "a")] * 15 + [Vote("p", "lonely", "a")] * 5
    result = leaderboard(votes, rounds=100)
    rows = {row.model: row for row in result.rows}
    assert rows["lonely"].rating > rows["p"].rating
    assert set(result.pair_votes["lonely"]) == {"p"}
    # 20 votes instead of ~400: a much wider interval.
    assert rows["lonely"].ci_high - rows["lonely"].ci_low > 2 * (rows["q"].ci_high - rows["q"].ci_low)
    assert result.connected


def test_separate_groups_are_flagged_as_not_connected():
    votes = [Vote("a", "b", "a"), Vote("b", "a", "b"), Vote("c", "d", "tie"), Vote("c", "d", "a")]
    result = leaderboard(votes, rounds=10)
    assert not result.connected
    assert leaderboard(votes + [Vote("a", "c", "tie")], rounds=10).connected


def test_no_votes_give_an_empty_leaderboard():
    result = leaderboard([], rounds=10)
    assert result.rows == () and result.win_rate == {} and result.votes == 0
    assert bradley_terry([]) == {}


def test_a_named_anchor_is_rated_1000_with_no_interval():
    votes = simulate(TRUE_BETA, 800, seed=2)
    mean_anchored = bradley_terry(as_outcomes(votes))
    anchored = leaderboard(votes, rounds=50, anchor="alpha")
    rows = {row.model: row for row in anchored.rows}
    assert rows["alpha"].rating == rows["alpha"].ci_low == rows["alpha"].ci_high == 1000.0
    shift = mean_anchored["alpha"] - 1000
    assert rows["delta"].rating == pytest.approx(mean_anchored["delta"] - shift, abs=1e-6)


def test_rounds_zero_reports_the_rating_as_its_own_interval():
    result = leaderboard(simulate(TRUE_BETA, 400, seed=2), rounds=0)
    assert all(row.ci_low == row.rating == row.ci_high for row in result.rows)
    assert [row.rank for row in result.rows] == [1, 2, 3, 4]


@pytest.mark.parametrize(
    ("votes", "options", "message"),
    [
        ([Vote("a", "a", "a")], {}, "itself"),
        ([Vote("a", "b", "maybe")], {}, "unknown choice"),
        ([Vote("a", "b", "a")], {"both_bad": "loss"}, "both_bad"),
        ([Vote("a", "b", "a")], {"rounds": -1}, "rounds"),
        ([Vote("a", "b", "a")], {"anchor": "c"}, "anchor"),
        ([Vote("a", "b", "a")], {"l2": 0}, "l2"),
        ([Vote("", "b", "a")], {}, "non-empty"),
    ],
)
def test_bad_input_is_refused(votes, options, message):
    with pytest.raises(ValueError, match=message):
        leaderboard(votes, **options)


def test_scores_outside_0_to_1_are_refused():
    with pytest.raises(ValueError, match="from 0 to 1"):
        bradley_terry([("a", "b", 1.5)])
    with pytest.raises(ValueError, match="from 0 to 1"):
        bradley_terry([("a", "b", float("nan"))])


def test_as_dict_is_plain_json(board):
    import json

    data = json.loads(json.dumps(board.as_dict()))
    assert [row["model"] for row in data["models"]] == board.models
    assert data["scale"] == {"base": 1000.0, "points_per_factor_10": 400.0, "ci": [2.5, 97.5]}
    assert set(data["models"][0]) == {"model", "rating", "ci_low", "ci_high", "rank", "votes", "wins", "losses", "ties"}

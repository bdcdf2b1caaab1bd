"""feedback.quality.bias and feedback.quality.timing: pure, no database."""
import itertools
import json
from collections import defaultdict

import numpy as np
import pytest
from scipy.stats import binomtest
from statsmodels.stats.multitest import multipletests
from statsmodels.stats.proportion import proportion_confint

from feedback.quality import bias, timing
from feedback.quality.bias import bias_summary
from feedback.queue import choice_on_screen

HONEST = (1, 2, 3, 4, 5, 6)


def campaign(special=None, *, items=300, per_item=4, seed=0):
    """Votes (annotators, items, choices, shown_left, ms) of honest annotators 1-6 and, optionally, one
    ``special`` annotator 99 on every item, built by ``special(rng, truth, shown_left, index)`` ->
    (choice, ms). Each item has a better completion (``truth``); an honest annotator picks it with
    probability 0.8, the other 0.15, a tie 0.05; the left side is a coin flip; time ~ lognormal
    around 15 s. Votes come in time order per annotator (item order)."""
    rng = np.random.default_rng(seed)
    rows = []
    for item in range(items):
        truth = "a" if rng.random() < 0.5 else "b"
        other = "b" if truth == "a" else "a"
        for annotator in rng.choice(HONEST, size=per_item, replace=False):
            shown = "a" if rng.random() < 0.5 else "b"
            choice = rng.choice([truth, other, "tie"], p=[0.8, 0.15, 0.05])
            rows.append((int(annotator), item, str(choice), shown, int(rng.lognormal(np.log(15000), 0.6))))
        if special is not None:
            shown = "a" if rng.random() < 0.5 else "b"
            choice, ms = special(rng, truth, shown, item)
            rows.append((99, item, choice, shown, ms))
    return tuple(list(column) for column in zip(*rows))


def row(summary, annotator):
    (found,) = [r for r in summary["per_annotator"] if r["annotator"] == annotator]
    return found


def honest_flags(summary):
    return {a: row(summary, a)["flags"] for a in HONEST}


def dumps(summary):
    return json.dumps(summary, allow_nan=False)


def test_an_always_left_annotator_is_flagged_and_honest_ones_are_not():
    def always_left(rng, truth, shown, item):
        return shown, int(rng.lognormal(np.log(15000), 0.6))  # the completion on the left, whatever it is

    summary = bias_summary(*campaign(always_left))
    lefty = row(summary, 99)
    assert lefty["left_rate"]["value"] == 1.0 and lefty["left_rate"]["p_adjusted"] < 1e-6
    assert "left_bias" in lefty["flags"] and summary["flagged"]["left_bias"] == [99]
    assert honest_flags(summary) == {a: [] for a in HONEST}
    for a in HONEST:
        assert 0.4 < row(summary, a)["left_rate"]["value"] < 0.6
    dumps(summary)


def test_a_too_fast_annotator_is_flagged():
    def clicker(rng, truth, shown, item):
        return truth, int(rng.uniform(300, 1500))

    summary = bias_summary(*campaign(clicker))
    fast = row(summary, 99)["time"]
    assert fast["fast_votes"] == 300 and fast["fast_share"]["value"] == 1.0
    assert fast["median_ms"]["value"] < 1500
    assert summary["flagged"]["fast"] == [99] and honest_flags(summary) == {a: [] for a in HONEST}
    # A lower floor clears them.
    assert bias_summary(*campaign(clicker), fast_ms=250)["flagged"]["fast"] == []


def test_a_long_run_of_one_answer_is_flagged():
    def stuck_right(rng, truth, shown, item):  # honest, except 40 items in a row answered "right"
        if 100 <= item < 140:
            return ("b" if shown == "a" else "a"), 9000
        return str(rng.choice([truth, "tie"], p=[0.9, 0.1])), 15000

    summary = bias_summary(*campaign(stuck_right))
    run = row(summary, 99)["run"]
    assert (run["value"], run["answer"]) == (40, "right") and run["p_adjusted"] < 1e-6
    assert summary["flagged"]["long_run"] == [99]
    assert "left_bias" not in row(summary, 99)["flags"]  # 40 of about 300 does not move the left rate enough
    assert honest_flags(summary) == {a: [] for a in HONEST}


def test_a_contrarian_is_a_consensus_outlier_and_peers_are_not():
    def contrarian(rng, truth, shown, item):
        return ("b" if truth == "a" else "a"), 15000

    summary = bias_summary(*campaign(contrarian))
    them = row(summary, 99)["consensus"]
    assert them["value"] > 0.7 and them["p_adjusted"] < 1e-6
    assert summary["flagged"]["consensus_outlier"] == [99]
    for a in HONEST:
        assert row(summary, a)["consensus"]["value"] < 0.35
    assert honest_flags(summary) == {a: [] for a in HONEST}


def test_a_somewhat_weaker_honest_annotator_is_not_far_from_their_peers():
    def weaker(rng, truth, shown, item):
        return str(rng.choice([truth, "b" if truth == "a" else "a", "tie"], p=[0.66, 0.29, 0.05])), 15000

    votes = campaign(weaker)
    them = row(bias_summary(*votes), 99)["consensus"]
    assert them["value"] > them["peers_rate"]["value"] + 0.08
    assert "consensus_outlier" not in row(bias_summary(*votes), 99)["flags"]
    # Against the bare pooled rate (no margin) their few extra disagreements would be "significant".
    assert "consensus_outlier" in row(bias_summary(*votes, consensus_margin=0.0), 99)["flags"]


def test_votes_without_a_shown_side_are_left_out_and_counted():
    # Annotator 1: two imported votes (no side), then left, right, left on screen.
    summary = bias_summary([1] * 5, [1, 2, 3, 4, 5], ["a", "b", "a", "a", "b"], ["", "", "a", "b", "b"],
                           [None, None, 4000, 5000, 6000])
    first = row(summary, 1)
    assert first["votes_without_shown_side"] == 2 and summary["votes_without_shown_side"] == 2
    assert (first["left_rate"]["left"], first["left_rate"]["sides"]) == (2, 3)
    assert first["run"]["votes"] == 3
    assert first["votes_without_time"] == 2 and first["time"]["timed_votes"] == 3
    assert first["time"]["median_ms"]["value"] == 5000.0


def test_ties_and_both_bad_are_not_in_the_left_rate_and_screen_sides_follow_choice_on_screen():
    choices = ["a", "b", "b", "tie", "both_bad", "a"]
    shown = ["a", "a", "b", "a", "b", "b"]
    summary = bias_summary([7] * 6, range(6), choices, shown, [3000] * 6)
    screen = [choice_on_screen(c, s) for c, s in zip(choices, shown)]
    assert screen == ["left", "right", "left", "tie", "both_bad", "right"]
    rate = row(summary, 7)["left_rate"]
    assert (rate["left"], rate["sides"], rate["value"]) == (2, 4, 0.5)
    assert summary["left_rate"]["sides"] == 4


def test_figures_equal_scipy_and_statsmodels_on_a_hand_case():
    # Annotator 1: 9 left, 3 right (and a tie); annotator 2: 2 left, 6 right. Items shared so that
    # each has a consensus: annotators 3 and 4 always agree with each other.
    annotators, items, choices, shown, ms = [], [], [], [], []

    def vote(a, i, c, s, t=4000):
        for column, value in zip((annotators, items, choices, shown, ms), (a, i, c, s, t)):
            column.append(value)

    for i in range(13):
        vote(1, i, "tie" if i == 12 else ("a" if i < 9 else "b"), "a")
        vote(3, i, "a", "a")
        vote(4, i, "a", "b")
    for i in range(8):
        vote(2, i, "a" if i < 2 else "b", "a")
    summary = bias_summary(annotators, items, choices, shown, ms)
    for annotator, k, n in ((1, 9, 12), (2, 2, 8)):
        rate = row(summary, annotator)["left_rate"]
        low, high = proportion_confint(k, n, alpha=0.05, method="wilson")
        assert (rate["left"], rate["sides"]) == (k, n)
        assert rate["p_value"] == pytest.approx(binomtest(k, n, 0.5).pvalue, rel=1e-12)
        assert (rate["low"], rate["high"]) == (pytest.approx(low, rel=1e-12), pytest.approx(high, rel=1e-12))
    raw = [row(summary, a)["left_rate"]["p_value"] for a in (1, 2, 3, 4)]
    holm = multipletests(raw, method="holm")[1]
    assert [row(summary, a)["left_rate"]["p_adjusted"] for a in (1, 2, 3, 4)] == pytest.approx(holm, rel=1e-12)
    total = 9 + 2 + 13 + 0
    assert summary["left_rate"]["left"] == total and summary["left_rate"]["sides"] == 12 + 8 + 13 + 13
    # Consensus for annotator 2 (items 0-7, others: 1, 3, 4): the others say "a" except on items 0-7 where
    # annotator 1 says "a" too, so every other-majority is "a"; annotator 2 disagrees on 6 of 8.
    # Peers: annotator 1 disagrees on items 9-12 (b, b, b, tie) = 4 of 13 (items 8-12 have 2 others,
    # both "a"); annotators 3 and 4 never disagree, and on items 9-12 their two others (1 and the
    # other of 3/4) split, so those votes are left out: 9 compared each.
    second = row(summary, 2)["consensus"]
    assert (second["disagreements"], second["compared"]) == (6, 8)
    assert [row(summary, a)["consensus"]["compared"] for a in (1, 3, 4)] == [13, 9, 9]
    assert row(summary, 3)["consensus"]["left_out_without_majority"] == 4
    peers = (4 + 0 + 0) / (13 + 9 + 9)
    assert second["peers_rate"]["value"] == pytest.approx(peers)
    assert second["tested_against"] == pytest.approx(peers + 0.15)
    assert second["p_value"] == pytest.approx(binomtest(6, 8, peers + 0.15, alternative="greater").pvalue, rel=1e-12)
    bare = row(bias_summary(annotators, items, choices, shown, ms, consensus_margin=0), 2)["consensus"]
    assert bare["p_value"] == pytest.approx(binomtest(6, 8, peers, alternative="greater").pvalue, rel=1e-12)
    dumps(summary)


def test_no_votes_gives_defined_answers_with_reasons():
    summary = bias_summary([], [], [], [], [])
    assert (summary["votes"], summary["annotators"], summary["per_annotator"]) == (0, 0, [])
    assert summary["left_rate"] == {"value": None, "defined": False, "reason": bias.NO_SIDE_VOTES, "left": 0, "sides": 0}
    assert summary["time"]["median_ms"]["reason"] == bias.NO_TIMED_VOTES
    assert summary["consensus"]["reason"] == bias.NO_CONSENSUS
    assert summary["flagged"] == {name: [] for name in bias.FLAGS}
    dumps(summary)


def test_one_annotator_and_items_without_enough_votes_give_reasons():
    one = bias_summary([5, 5, 5], [1, 2, 3], ["a", "tie", "b"], ["a", "a", "a"], [None, None, None])
    only = row(one, 5)
    assert only["consensus"]["reason"] == bias.NO_CONSENSUS and only["time"]["median_ms"]["reason"] == bias.NO_TIMED_VOTES
    assert only["time"]["fast_share"]["defined"] is False and only["flags"] == []
    # Two annotators on every item: each vote has one other vote, not enough for a consensus.
    two = bias_summary([1, 2, 1, 2], [1, 1, 2, 2], ["a", "b", "a", "a"], ["a", "a", "b", "b"], [5000] * 4)
    assert all(r["consensus"]["reason"] == bias.NO_CONSENSUS for r in two["per_annotator"])
    # Only ties and both-bad: no left rate, but a run.
    ties = bias_summary([3, 3], [1, 2], ["tie", "tie"], ["a", "b"], [3000, 3000])
    assert row(ties, 3)["left_rate"]["reason"] == bias.NO_SIDE_VOTES
    assert (row(ties, 3)["run"]["value"], row(ties, 3)["run"]["answer"], row(ties, 3)["run"]["p_value"]) == (2, "tie", 1.0)
    for summary in (one, two, ties):
        dumps(summary)


def test_a_tied_plurality_among_the_others_is_left_out_and_counted():
    # Item 1: annotators 2 and 3 disagree, so annotator 1's vote has no single majority to compare with.
    summary = bias_summary([1, 2, 3], [1, 1, 1], ["a", "a", "b"], ["a", "a", "a"], [4000] * 3)
    first = row(summary, 1)["consensus"]
    assert first["defined"] is False and first["left_out_without_majority"] == 1
    assert row(summary, 2)["consensus"]["left_out_without_majority"] == 1  # others: a (1), b (3)
    third = row(summary, 3)["consensus"]  # others: a, a
    assert (third["disagreements"], third["compared"], third["left_out_without_majority"]) == (1, 1, 0)
    assert summary["consensus"]["left_out_without_majority"] == 2


def test_fast_votes_are_strictly_under_the_floor():
    summary = bias_summary([1] * 10, range(10), ["a"] * 10, ["a", "b"] * 5, [1999, 2000] + [10000] * 8)
    time = row(summary, 1)["time"]
    assert (time["fast_votes"], time["fast_share"]["value"]) == (1, 0.1)
    assert row(summary, 1)["flags"] == ["fast"]  # one tenth is the default share that flags
    assert row(bias_summary([1] * 10, range(10), ["a"] * 10, ["a", "b"] * 5, [1999, 2000] + [10000] * 8,
                            fast_share=0.2), 1)["flags"] == []


def test_time_quantiles_and_histogram_match_numpy():
    rng = np.random.default_rng(3)
    group = np.sort(rng.integers(0, 5, 400))
    values = rng.lognormal(9, 1.5, 400)
    got = timing.group_quantiles(group, values, 6)
    for g in range(5):
        assert got[g] == pytest.approx(np.percentile(values[group == g], [10, 50, 90]), rel=1e-12)
    assert np.isnan(got[5]).all()
    bins = timing.histogram_bins(np.array([0, 249, 250, 999, 1000, 511999, 512000, 10 ** 7]))
    assert bins.tolist() == [0, 0, 1, 2, 3, 11, 12, 12]
    counts, _ = np.histogram(values, bins=[0, *timing.EDGES_MS, np.inf])
    assert np.bincount(timing.histogram_bins(values), minlength=13).tolist() == counts.tolist()


def test_longest_runs_match_a_plain_scan():
    rng = np.random.default_rng(1)
    group = np.sort(rng.integers(0, 4, 300))
    answers = rng.choice(4, size=300, p=[0.6, 0.2, 0.1, 0.1])
    length, answer = timing.longest_runs(group, answers, 5)
    for g in range(4):
        runs = [(len(list(block)), a) for a, block in itertools.groupby(answers[group == g].tolist())]
        best = max(r[0] for r in runs)
        assert length[g] == best and answer[g] == next(a for n, a in runs if n == best)
    assert (length[4], answer[4]) == (0, -1)


def exact_longest_run_tail(length, shares, n):
    """P(longest run >= length) over n i.i.d. answers with ``shares``, by dynamic programming."""
    k = len(shares)
    state = defaultdict(float)  # (last answer, current run length) -> probability, no run >= length yet
    for c in range(k):
        state[(c, 1)] += shares[c]
    for _ in range(n - 1):
        nxt = defaultdict(float)
        for (c, run), p in state.items():
            for d in range(k):
                r = run + 1 if d == c else 1
                if r < length:
                    nxt[(d, r)] += p * shares[d]
        state = nxt
    return 1.0 - sum(state.values())


@pytest.mark.parametrize("length,shares,n", [(8, [0.5, 0.5], 60), (10, [0.45, 0.35, 0.1, 0.1], 120),
                                             (6, [0.7, 0.3], 40), (3, [0.5, 0.5], 30)])
def test_run_p_value_is_conservative_and_tight_in_the_tail(length, shares, n):
    exact = exact_longest_run_tail(length, shares, n)
    p = timing.run_p_values(np.array([length]), np.array([shares + [0.0] * (4 - len(shares))]), np.array([n]))[0]
    assert p >= exact - 1e-12
    if exact < 0.05:
        assert p == pytest.approx(exact, rel=0.1)


def test_bad_input_is_refused():
    with pytest.raises(ValueError, match="two votes on item 4"):
        bias_summary([1, 1], [4, 4], ["a", "b"], ["a", "a"], [1, 2])
    with pytest.raises(ValueError, match="not a shown side"):
        bias_summary([1], [4], ["a"], ["left"], [1])
    with pytest.raises(ValueError, match="not a vote choice"):
        bias_summary([1], [4], ["left"], ["a"], [1])
    with pytest.raises(ValueError, match="same length"):
        bias_summary([1, 2], [4], ["a"], ["a"], [1])


def test_holm_adjustment_equals_statsmodels():
    p = np.random.default_rng(5).uniform(0, 0.2, 30) ** 2
    p[[3, 17]] = np.nan  # annotators with nothing to test are neither adjusted nor counted
    expected = multipletests(p[~np.isnan(p)], method="holm")[1]
    got = bias._holm(p)
    assert np.isnan(got[[3, 17]]).all()
    assert got[~np.isnan(p)] == pytest.approx(expected, rel=1e-12)

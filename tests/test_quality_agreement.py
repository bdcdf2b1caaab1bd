"""Agreement statistics (feedback.quality): pure, no database.

Small cases are worked by hand in the comments and also checked against the libraries the
figures come from (scikit-learn's cohen_kappa_score, statsmodels' fleiss_kappa, the
krippendorff package); random cases compare the vectorised code with those libraries directly.
"""
import json
import math

import krippendorff
import numpy as np
import pytest
from sklearn.metrics import cohen_kappa_score
from statsmodels.stats.inter_rater import fleiss_kappa

from feedback.quality.agreement import agreement_from_codes, agreement_summary
from feedback.quality.alpha import alpha_from_coincidences, coincidence_rows
from feedback.quality.labels import LABELS, nominal_codes, ordinal_codes
from feedback.quality.pairs import kappa_from_confusions, pair_confusions, pair_intervals, pair_observations
from feedback.quality.resampling import pattern_weights, percentile_interval

FIGURES = ("percent_agreement", "percent_agreement_without_ties", "fleiss_kappa",
           "krippendorff_alpha_nominal", "krippendorff_alpha_ordinal")

# Two annotators (ids 7 and 9) on six comparisons (ids 101-106).
R7 = ["a", "a", "b", "tie", "a", "b"]
R9 = ["a", "b", "b", "tie", "a", "a"]


def two_annotators(**options):
    items = list(range(101, 107)) * 2
    raters = [7] * 6 + [9] * 6
    return agreement_summary(items, raters, R7 + R9, **options)


def reliability(items, raters, values):
    """(raters x items) array for krippendorff.alpha, NaN where a rater gave no value."""
    item_ids, rater_ids = sorted(set(items)), sorted(set(raters))
    data = np.full((len(rater_ids), len(item_ids)), np.nan)
    for item, rater, value in zip(items, raters, values):
        if value is not None and value >= 0:
            data[rater_ids.index(rater), item_ids.index(item)] = value
    return data


def test_two_annotators_worked_by_hand_and_by_the_libraries():
    summary = two_annotators(resamples=0)
    # Agreements on items 101 (a,a), 103 (b,b), 104 (tie,tie), 105 (a,a): 4 of 6 pairs.
    assert summary["percent_agreement"]["value"] == pytest.approx(4 / 6)
    # Ties left out: item 104 goes, 3 agreements in 5 pairs.
    assert summary["percent_agreement_without_ties"]["value"] == pytest.approx(3 / 5)
    assert summary["percent_agreement_without_ties"]["n_items"] == 5
    # Cohen: p_o = 4/6; both annotators used a 3, b 2, tie 1 times: p_e = (9 + 4 + 1) / 36 = 7/18;
    # kappa = (2/3 - 7/18) / (1 - 7/18) = 5/11.
    (pair,) = summary["cohen_kappa"]["pairs"]
    assert pair["annotators"] == [7, 9] and pair["shared_items"] == 6
    assert pair["value"] == pytest.approx(5 / 11)
    assert pair["value"] == pytest.approx(cohen_kappa_score(R7, R9))
    # Fleiss with two votes per item: P-bar = 4/6, label shares 6/12, 4/12, 2/12 -> P_e = 7/18 -> 5/11.
    table = np.array([[[r7, r9].count(label) for label in LABELS] for r7, r9 in zip(R7, R9)])
    assert summary["fleiss_kappa"]["value"] == pytest.approx(5 / 11)
    assert summary["fleiss_kappa"]["value"] == pytest.approx(fleiss_kappa(table, method="fleiss"))
    assert summary["fleiss_kappa"]["votes_per_item"] == 2 and summary["fleiss_kappa"]["items_left_out"] == 0
    # Krippendorff nominal: coincidences o_aa = 4, o_bb = 2, o_tt = 2, o_ab = o_ba = 2; n = 12,
    # margins 6, 4, 2: alpha = 1 - 11 * 4 / (144 - 36 - 16 - 4) = 1 - 44/88 = 0.5.
    assert summary["krippendorff_alpha_nominal"]["value"] == pytest.approx(0.5)
    codes = [LABELS.index(c) for c in R7 + R9]
    data = reliability(list(range(6)) * 2, [0] * 6 + [1] * 6, codes)
    assert summary["krippendorff_alpha_nominal"]["value"] == pytest.approx(
        krippendorff.alpha(reliability_data=data, level_of_measurement="nominal"))


def test_ordinal_alpha_by_hand_with_missing_steps_left_out():
    # Steps (1 strong a .. 7 strong b): item 1: 1 and 2; item 2: 4 and 4; item 3: 7 and 5.
    # Annotator 3 adds an a-without-strength on item 1 and a both_bad on item 2: both missing.
    items = [1, 1, 2, 2, 3, 3, 1, 2]
    raters = [1, 2, 1, 2, 1, 2, 3, 3]
    choices = ["a", "a", "tie", "tie", "b", "b", "a", "both_bad"]
    strengths = ["strong", "clear", "", "", "strong", "slight", "", ""]
    summary = agreement_summary(items, raters, choices, strengths, resamples=0)
    ordinal = summary["krippendorff_alpha_ordinal"]
    # o_12 = o_21 = 1, o_44 = 2, o_57 = o_75 = 1; margins n1 = n2 = 1, n4 = 2, n5 = n7 = 1, n = 6.
    # d_12 = (2 - 1)^2 = 1 and d_57 = (2 - 1)^2 = 1, so sum o*d = 4. Over all label pairs,
    # sum n_c n_k d_ck = 2 * (1 + 12.5 + 16 + 25 + 4.5 + 9 + 16 + 4.5 + 12.5 + 1) = 204.
    # alpha = 1 - 5 * 4 / 204 = 46/51.
    assert ordinal["value"] == pytest.approx(46 / 51)
    assert (ordinal["n_items"], ordinal["n_votes"]) == (3, 6)
    steps = ordinal_codes(choices, strengths).astype(float)
    assert list(steps) == [0, 1, 3, 3, 6, 4, -1, -1]
    data = reliability(items, raters, steps)
    assert ordinal["value"] == pytest.approx(krippendorff.alpha(reliability_data=data, level_of_measurement="ordinal"))
    # On the nominal scale every vote counts: 8 votes on 3 items.
    assert summary["krippendorff_alpha_nominal"]["n_votes"] == 8


def test_ordinal_scale_runs_from_strongly_a_to_strongly_b_and_both_bad_is_missing():
    choices = ["a", "a", "a", "tie", "b", "b", "b", "both_bad", "a", "b"]
    strengths = ["strong", "clear", "slight", "", "slight", "clear", "strong", "", "", None]
    assert list(ordinal_codes(choices, strengths)) == [0, 1, 2, 3, 4, 5, 6, -1, -1, -1]
    assert list(nominal_codes(["a", "b", "tie", "both_bad"])) == [0, 1, 2, 3]
    with pytest.raises(ValueError, match="skip"):
        nominal_codes(["a", "skip"])
    with pytest.raises(ValueError):
        ordinal_codes(["tie"], ["strong"])


def test_without_strengths_the_ordinal_figure_is_undefined_and_the_rest_are_not():
    summary = two_annotators(resamples=0)
    assert summary["krippendorff_alpha_ordinal"] == {
        "value": None, "defined": False, "reason": "no item with two or more votes on the ordinal scale",
        "n_items": 0, "n_votes": 0}
    assert summary["krippendorff_alpha_nominal"]["defined"]


def test_a_tie_is_a_label_a_tie_against_a_preference_is_a_disagreement():
    # Item 1: tie, tie (agree); item 2: tie, a (disagree); item 3: a, a; item 4: b, b.
    summary = agreement_summary([1, 1, 2, 2, 3, 3, 4, 4], [1, 2] * 4, ["tie", "tie", "tie", "a", "a", "a", "b", "b"],
                                resamples=0)
    assert summary["percent_agreement"]["value"] == pytest.approx(3 / 4)
    # Ties left out: item 1 has no vote left, item 2 only one; items 3 and 4 agree.
    assert summary["percent_agreement_without_ties"]["value"] == pytest.approx(1.0)
    assert summary["percent_agreement_without_ties"]["n_items"] == 2
    y1, y2 = ["tie", "tie", "a", "b"], ["tie", "a", "a", "b"]
    assert summary["cohen_kappa"]["pairs"][0]["value"] == pytest.approx(cohen_kappa_score(y1, y2))


def test_everyone_using_one_label_leaves_chance_corrected_figures_undefined():
    summary = agreement_summary([1, 1, 2, 2, 3, 3], [1, 2] * 3, ["a"] * 6, ["clear"] * 6, resamples=50)
    assert summary["percent_agreement"]["value"] == 1.0  # not chance-corrected: perfectly defined
    for name in ("fleiss_kappa", "krippendorff_alpha_nominal", "krippendorff_alpha_ordinal"):
        assert summary[name]["defined"] is False and summary[name]["value"] is None
        assert summary[name]["reason"] == "no label variation"
    (pair,) = summary["cohen_kappa"]["pairs"]
    assert pair["defined"] is False and pair["reason"] == "no label variation" and pair["shared_items"] == 3
    json.dumps(summary, allow_nan=False)


def test_a_single_rater():
    summary = agreement_summary([1, 2, 3], [5, 5, 5], ["a", "b", "tie"], resamples=10)
    for name in FIGURES:
        assert summary[name]["reason"] == "a single rater"
    assert summary["cohen_kappa"] == {"defined": False, "reason": "a single rater", "n_pairs": 0,
                                      "n_pairs_without_shared_items": 0, "pairs": []}


def test_empty_input_and_no_item_with_two_votes():
    empty = agreement_summary([], [], [], [], resamples=10)
    assert {empty[name]["reason"] for name in FIGURES} == {"no votes"}
    assert empty["cohen_kappa"]["pairs"] == []
    apart = agreement_summary([1, 2], [1, 2], ["a", "b"], resamples=10)
    assert {apart[name]["reason"] for name in FIGURES} == {"no item with two or more votes"}
    assert apart["cohen_kappa"]["reason"] == "no item with two or more votes"
    assert apart["cohen_kappa"]["n_pairs_without_shared_items"] == 1
    json.dumps([empty, apart], allow_nan=False)


def test_a_pair_with_no_shared_item_is_absent_and_counted():
    # Annotators 1 and 2 share items 1-3; annotator 3 shares items 4-5 with annotator 2, none with 1.
    items = [1, 1, 2, 2, 3, 3, 4, 4, 5, 5]
    raters = [1, 2, 1, 2, 1, 2, 2, 3, 2, 3]
    choices = ["a", "a", "b", "a", "tie", "tie", "a", "a", "b", "a"]
    summary = agreement_summary(items, raters, choices, resamples=0)
    cohen = summary["cohen_kappa"]
    assert [p["annotators"] for p in cohen["pairs"]] == [[1, 2], [2, 3]]
    assert [p["shared_items"] for p in cohen["pairs"]] == [3, 2]
    assert cohen["n_pairs_without_shared_items"] == 1
    assert cohen["pairs"][0]["value"] == pytest.approx(cohen_kappa_score(["a", "b", "tie"], ["a", "a", "tie"]))


def test_fleiss_uses_the_items_with_the_most_common_number_of_votes():
    # Items 1-3 have three votes, item 4 two: Fleiss uses items 1-3 and says item 4 was left out.
    items = [1, 1, 1, 2, 2, 2, 3, 3, 3, 4, 4]
    raters = [1, 2, 3] * 3 + [1, 2]
    choices = ["a", "a", "b", "b", "b", "b", "tie", "a", "tie", "a", "b"]
    summary = agreement_summary(items, raters, choices, resamples=0)
    fleiss = summary["fleiss_kappa"]
    table = [[2, 1, 0, 0], [0, 3, 0, 0], [1, 0, 2, 0]]
    assert fleiss["value"] == pytest.approx(fleiss_kappa(table, method="fleiss"))
    assert (fleiss["n_items"], fleiss["n_votes"], fleiss["items_left_out"], fleiss["votes_per_item"]) == (3, 9, 1, 3)
    # Two items with three votes and two with two: a tie, and the larger count wins.
    tied = agreement_summary([1, 1, 1, 2, 2, 2, 3, 3, 4, 4], [1, 2, 3] * 2 + [1, 2] * 2,
                             ["a", "a", "b", "b", "b", "b", "a", "a", "b", "a"], resamples=0)["fleiss_kappa"]
    assert (tied["votes_per_item"], tied["n_items"], tied["items_left_out"]) == (3, 2, 2)
    assert tied["value"] == pytest.approx(fleiss_kappa([[2, 1, 0, 0], [0, 3, 0, 0]], method="fleiss"))
    # Alpha takes every item, whatever its number of votes.
    data = reliability(items, raters, [LABELS.index(c) for c in choices])
    assert summary["krippendorff_alpha_nominal"]["n_items"] == 4
    assert summary["krippendorff_alpha_nominal"]["value"] == pytest.approx(
        krippendorff.alpha(reliability_data=data, level_of_measurement="nominal"))


def random_votes(rng, *, items, raters, max_per_item, p=None):
    """Random votes: each item gets 1..max_per_item distinct raters; nominal and ordinal codes."""
    rows = []
    for item in range(items):
        count = int(rng.integers(1, max_per_item + 1))
        for rater in rng.choice(raters, size=min(count, raters), replace=False):
            rows.append((item * 3 + 11, int(rater) * 5 + 2))
    item_ids, rater_ids = (np.array(column) for column in zip(*rows))
    nominal = rng.choice(4, size=len(rows), p=p)
    ordinal = np.where(rng.random(len(rows)) < 0.25, -1, rng.choice(7, size=len(rows)))
    return item_ids, rater_ids, nominal, ordinal


@pytest.mark.parametrize("seed", range(12))
def test_vectorised_figures_equal_the_libraries_on_random_votes(seed):
    rng = np.random.default_rng(seed)
    items, raters, nominal, ordinal = random_votes(rng, items=int(rng.integers(5, 40)), raters=int(rng.integers(2, 7)),
                                                   max_per_item=4, p=[0.4, 0.3, 0.2, 0.1])
    summary = agreement_from_codes(items, raters, nominal, ordinal, resamples=0)
    for level, codes in (("nominal", nominal), ("ordinal", ordinal)):
        figure = summary[f"krippendorff_alpha_{level}"]
        data = reliability(list(items), list(raters), list(codes))
        pairable = (np.isfinite(data).sum(axis=0) >= 2).sum()
        if figure["defined"]:
            assert figure["n_items"] == pairable
            assert figure["value"] == pytest.approx(krippendorff.alpha(reliability_data=data, level_of_measurement=level))
    for pair in summary["cohen_kappa"]["pairs"]:
        r, s = pair["annotators"]
        shared = sorted(set(items[raters == r]) & set(items[raters == s]))
        y1 = [nominal[(items == i) & (raters == r)][0] for i in shared]
        y2 = [nominal[(items == i) & (raters == s)][0] for i in shared]
        assert pair["shared_items"] == len(shared)
        if pair["defined"]:
            assert pair["value"] == pytest.approx(cohen_kappa_score(y1, y2))
        else:
            assert len(set(y1) | set(y2)) == 1


@pytest.mark.parametrize("seed", range(6))
def test_alpha_from_coincidences_equals_krippendorff_on_full_tables(seed):
    rng = np.random.default_rng(100 + seed)
    data = rng.choice(7, size=(5, 30)).astype(float)
    data[rng.random(data.shape) < 0.3] = np.nan
    counts = np.stack([(data == v).sum(axis=0) for v in range(7)], axis=1)
    o = coincidence_rows(counts).sum(axis=0).reshape(7, 7)
    for level in ("nominal", "ordinal"):
        assert alpha_from_coincidences(o, level) == pytest.approx(
            krippendorff.alpha(reliability_data=data, level_of_measurement=level))


def test_vectorised_kappa_equals_sklearn_on_random_pairs():
    rng = np.random.default_rng(5)
    for _ in range(200):
        m = int(rng.integers(1, 60))
        y1 = rng.choice(4, size=m, p=rng.dirichlet(np.ones(4)))
        y2 = np.where(rng.random(m) < 0.6, y1, rng.choice(4, size=m))
        confusion = np.bincount(y1 * 4 + y2, minlength=16)
        value = kappa_from_confusions(confusion)
        if len(set(y1) | set(y2)) == 1:
            assert math.isnan(value)
        else:
            assert value == pytest.approx(cohen_kappa_score(y1, y2))


def test_pair_confusions_count_every_shared_item_once_for_few_and_many_annotators():
    # Items 0-2 with votes by annotators (0, 1, 2), (0, 2) and (1, 2), sorted by item then annotator.
    starts, counts = np.array([0, 3, 5]), np.array([3, 2, 2])
    raters = np.array([0, 1, 2, 0, 2, 1, 2])
    labels = np.array([0, 0, 1, 2, 2, 3, 1])
    first, second = pair_observations(starts, counts)
    expected = {(0, 1): {0: 1}, (0, 2): {1: 1, 10: 1}, (1, 2): {1: 1, 13: 1}}  # cell 4 * label + label
    for n_raters in (3, 2000):  # a dense table of every pair; np.unique over the seen pairs
        pairs, confusions = pair_confusions(raters, labels, first, second, n_raters)
        assert {tuple(p): {c: int(v) for c, v in enumerate(row) if v} for p, row in zip(pairs.tolist(), confusions)} == expected


def test_fleiss_equals_statsmodels_on_random_tables():
    rng = np.random.default_rng(8)
    for _ in range(10):
        n_items, per_item = int(rng.integers(5, 50)), int(rng.integers(2, 6))
        labels = rng.choice(4, size=(n_items, per_item), p=[0.5, 0.3, 0.15, 0.05])
        items = np.repeat(np.arange(n_items), per_item)
        raters = np.tile(np.arange(per_item), n_items)
        summary = agreement_from_codes(items, raters, labels.ravel(), np.full(labels.size, -1), resamples=0)
        table = np.stack([(labels == v).sum(axis=1) for v in range(4)], axis=1)
        assert summary["fleiss_kappa"]["value"] == pytest.approx(fleiss_kappa(table, method="fleiss"))


def test_intervals_contain_the_estimate_and_are_fixed_by_the_seed():
    rng = np.random.default_rng(3)
    items, raters, nominal, ordinal = random_votes(rng, items=300, raters=6, max_per_item=3, p=[0.45, 0.35, 0.15, 0.05])
    # Some real agreement: half the votes copy the item's consensus label (and step).
    consensus = {item: (n, o) for item, n, o in zip(items.tolist(), nominal.tolist(), ordinal.tolist())}
    copy = rng.random(len(items)) < 0.5
    nominal = np.where(copy, [consensus[i][0] for i in items.tolist()], nominal)
    ordinal = np.where(copy, [consensus[i][1] for i in items.tolist()], ordinal)
    first = agreement_from_codes(items, raters, nominal, ordinal, resamples=300, seed=1)
    again = agreement_from_codes(items, raters, nominal, ordinal, resamples=300, seed=1)
    other = agreement_from_codes(items, raters, nominal, ordinal, resamples=300, seed=2)
    assert first == again
    for name in FIGURES:
        figure = first[name]
        assert figure["defined"] and figure["low"] <= figure["value"] <= figure["high"]
        assert figure["high"] - figure["low"] < 0.3
        assert (other[name]["low"], other[name]["high"]) != (figure["low"], figure["high"])
    for pair in first["cohen_kappa"]["pairs"]:
        assert pair["low"] <= pair["value"] <= pair["high"]
    none = agreement_from_codes(items, raters, nominal, ordinal, resamples=0)
    assert none["percent_agreement"]["low"] is None and none["percent_agreement"]["value"] == first["percent_agreement"]["value"]


@pytest.mark.parametrize("m", [15, 40, 300])  # 300: drawn as a multinomial, the others by blocks
def test_pair_interval_matches_resampling_the_pairs_items_one_by_one(m):
    rng = np.random.default_rng(11)
    y1 = rng.choice(4, size=m, p=[0.4, 0.3, 0.2, 0.1])
    y2 = np.where(rng.random(m) < 0.7, y1, rng.choice(4, size=m))
    confusion = np.bincount(y1 * 4 + y2, minlength=16)[None, :]
    draws = rng.integers(0, m, size=(20000, m))
    a, b = y1[draws], y2[draws]  # each row: one resample of the m items, drawn one by one
    observed = (a == b).mean(axis=1)
    chance = sum((a == j).mean(axis=1) * (b == j).mean(axis=1) for j in range(4))
    with np.errstate(invalid="ignore", divide="ignore"):
        naive = np.where(chance < 1, (observed - chance) / (1 - chance), np.nan)
    assert naive[0] == pytest.approx(cohen_kappa_score(a[0], b[0]))
    for confidence in (0.5, 0.9):
        low, high = pair_intervals(confusion, resamples=20000, rng=np.random.default_rng(0), confidence=confidence)
        tails = [(1 - confidence) / 2, (1 + confidence) / 2]
        assert [low[0], high[0]] == pytest.approx(np.nanquantile(naive, tails), abs=0.015)


def test_pattern_weights_resample_every_item_once_on_average():
    rng = np.random.default_rng(0)
    for frequency in (np.array([500, 300, 150, 50]), np.arange(1, 40)):  # multinomial path, item-index path
        weights = pattern_weights(frequency, 2000, rng)
        assert (weights.sum(axis=1) == frequency.sum()).all()
        assert np.allclose(weights.mean(axis=0), frequency, rtol=0.1)


def test_percentile_interval_leaves_out_undefined_resamples():
    samples = np.random.default_rng(2).normal(size=(101, 3))
    samples[::7, 1] = np.nan
    samples[:, 2] = np.nan
    low, high = percentile_interval(samples, 0.9)
    assert np.allclose([low[0], low[1]], np.nanquantile(samples[:, :2], 0.05, axis=0))
    assert np.allclose([high[0], high[1]], np.nanquantile(samples[:, :2], 0.95, axis=0))
    assert math.isnan(low[2]) and math.isnan(high[2])


def test_two_votes_by_one_annotator_on_one_item_is_an_error():
    with pytest.raises(ValueError, match="annotator 4 has two votes on item 9"):
        agreement_summary([9, 9, 9], [4, 4, 5], ["a", "b", "a"])


def test_summary_is_json_safe():
    rng = np.random.default_rng(4)
    items, raters, nominal, ordinal = random_votes(rng, items=60, raters=5, max_per_item=3)
    summary = agreement_from_codes(items, raters, nominal, ordinal, resamples=100)
    text = json.dumps(summary, allow_nan=False)
    assert json.loads(text) == summary
    assert {"value", "defined", "low", "high", "n_items", "n_votes"} <= set(summary["krippendorff_alpha_nominal"])

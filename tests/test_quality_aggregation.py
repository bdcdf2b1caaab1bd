"""Dawid-Skene labels (feedback.quality.aggregation): pure, no database."""
import numpy as np
import pytest

from feedback.preferences import majority
from feedback.quality.aggregation import CHOICES, dawid_skene


def _crowd(seed=0, n_items=200):
    """3 reliable annotators (right 85 % of the time, else a random other label), 4 spammers who
    always answer "a" and 2 who answer uniformly at random, all on every item; truth is a, b, tie
    or both_bad with shares 0.3, 0.4, 0.15, 0.15."""
    rng = np.random.default_rng(seed)
    truth = rng.choice(CHOICES, size=n_items, p=[0.3, 0.4, 0.15, 0.15])
    items, annotators, choices = [], [], []
    for i, true in enumerate(truth):
        for j in range(9):
            if j < 3:
                said = true if rng.random() < 0.85 else rng.choice([c for c in CHOICES if c != true])
            elif j < 7:
                said = "a"
            else:
                said = rng.choice(CHOICES)
            items.append(i)
            annotators.append(100 + j)
            choices.append(str(said))
    return truth, items, annotators, choices


def test_dawid_skene_recovers_the_truth_where_majority_is_fooled_by_spammers():
    truth, items, annotators, choices = _crowd()
    result = dawid_skene(items, annotators, choices)
    by_item = {}
    for i, c in zip(items, choices):
        by_item.setdefault(i, []).append(c)
    majority_right = np.mean([majority(by_item[i]) == truth[i] for i in range(len(truth))])
    ds_right = np.mean([result.labels[i] == truth[i] for i in range(len(truth))])
    assert majority_right < 0.5
    assert ds_right > 0.95
    reliable = [result.reliability[100 + j] for j in range(3)]
    spammers = [result.reliability[100 + j] for j in range(3, 9)]
    assert min(reliable) > 0.75
    assert max(spammers) < 0.4
    assert all(0.0 <= p <= 1.0 for p in result.posteriors.values())


def test_posterior_is_high_where_reliable_annotators_agree():
    truth, items, annotators, choices = _crowd(seed=1, n_items=100)
    result = dawid_skene(items, annotators, choices)
    reliable_votes = {}
    for i, j, c in zip(items, annotators, choices):
        if j < 103:
            reliable_votes.setdefault(i, []).append(c)
    agreed = [i for i, votes in reliable_votes.items() if len(set(votes)) == 1]
    assert agreed
    assert min(result.posteriors[i] for i in agreed) > 0.9


def test_the_result_does_not_depend_on_vote_order_and_repeats_exactly():
    _, items, annotators, choices = _crowd(seed=2, n_items=60)
    first = dawid_skene(items, annotators, choices)
    order = np.random.default_rng(5).permutation(len(items))
    shuffled = dawid_skene([items[k] for k in order], [annotators[k] for k in order], [choices[k] for k in order])
    assert shuffled.labels == first.labels
    assert shuffled.posteriors == pytest.approx(first.posteriors)
    assert dawid_skene(items, annotators, choices) == first


def test_one_annotator_gets_their_own_labels():
    result = dawid_skene([1, 2, 3, 4], [7, 7, 7, 7], ["a", "b", "tie", "both_bad"])
    assert result.labels == {1: "a", 2: "b", 3: "tie", 4: "both_bad"}
    assert set(result.reliability) == {7}


def test_unanimous_votes_give_that_label_with_near_certainty():
    result = dawid_skene([1, 1, 1, 2, 2, 2], [5, 6, 7, 5, 6, 7], ["b"] * 6)
    assert result.labels == {1: "b", 2: "b"}
    assert min(result.posteriors.values()) > 0.99


def test_a_single_item_and_no_votes():
    single = dawid_skene([9, 9, 9], [1, 2, 3], ["a", "a", "b"])
    assert single.labels == {9: "a"}
    empty = dawid_skene([], [], [])
    assert empty.labels == {} and empty.reliability == {}


def test_bad_input_is_refused():
    with pytest.raises(ValueError, match="unknown choice 'left'"):
        dawid_skene([1], [1], ["left"])
    with pytest.raises(ValueError, match="same length"):
        dawid_skene([1, 2], [1], ["a"])

"""Our Dawid-Skene (feedback.quality.aggregation) against crowd-kit's (``crowdkit.aggregation.DawidSkene``,
the maintained library it follows) on synthetic crowds: pure, no database.

Both start from the soft majority and alternate the same M- and E-steps, so with the same number of
rounds they should land on the same fit. crowd-kit's stopping rule is switched off (``tol=-inf``: its
evidence lower bound can fall and end the fit after a few rounds) and ours runs to the same
``max_iter``. What still differs is the smoothing: ours adds ``SMOOTHING`` (0.01) to every confusion
cell and the prior, crowd-kit clips cells at 1e-10. With that floor as our smoothing the two fits are
the same to 1e-6 (the strict check); with ours they stay close (the stated tolerances below), the
gap largest where three votes an item leave the fit loosely determined.
"""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from crowdkit.aggregation import DawidSkene

from feedback.quality.aggregation import CHOICES, SMOOTHING, dawid_skene

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning", "ignore::FutureWarning",
                                     "ignore:.*(inplace|copy) keyword:Warning")

ROUNDS = 60
CROWD_KIT_EPS = 1e-10  # crowdkit.aggregation.classification.dawid_skene._EPS: the floor it clips cells at
SAME = 1e-6  # with that smoothing the fits are the same up to floating point
# With our SMOOTHING (0.01, what the reports use): the largest allowed gap on a reliability
# (prior-weighted diagonal), and on a confusion-matrix diagonal cell that rests on at least
# MIN_TRUE_VOTES votes (the annotator's votes times the label's prior).
RELIABILITY_TOL = 0.03
DIAGONAL_TOL = 0.05
MIN_TRUE_VOTES = 20
# Labels must agree on at least LABEL_SHARE of the items. Near-ties may go either way, and so may an
# item where crowd-kit's fit rests on an empty confusion cell (a vote it deems all but impossible,
# P = 1e-10, where ours gives it 0.01 / row): on the sparse crowd 5 items of 800 differ, one of them
# with both fits sure of their own label.
LABEL_SHARE = 0.99


def _crowd(*, seed: int, items: int, per_item: int, annotators: int, shares=(0.3, 0.4, 0.15, 0.15),
           accuracy=(0.6, 0.95), always_a: int = 0, uniform: int = 0, confuse_tie: int = 0):
    """Votes ``(items, annotators, choices)``: each item has a true label drawn with ``shares`` and
    ``per_item`` distinct annotators drawn with uneven (lognormal) workloads. The last ``always_a``
    annotators always say "a", the ``uniform`` before them answer at random, the ``confuse_tie``
    before those say both_bad for a tie and tie for both_bad; the rest are right with their own
    accuracy (uniform on ``accuracy``), else say a random other label."""
    rng = np.random.default_rng(seed)
    truth = rng.choice(len(CHOICES), size=items, p=shares)
    skill = rng.uniform(*accuracy, annotators)
    kind = np.zeros(annotators, dtype=int)
    kind[annotators - always_a:] = 1
    kind[annotators - always_a - uniform:annotators - always_a] = 2
    kind[annotators - always_a - uniform - confuse_tie:annotators - always_a - uniform] = 3
    weights = rng.lognormal(0.0, 0.5, annotators)
    weights /= weights.sum()
    out_items, out_annotators, out_choices = [], [], []
    for item, true in enumerate(truth):
        for annotator in rng.choice(annotators, size=per_item, replace=False, p=weights):
            if kind[annotator] == 1:
                said = 0
            elif kind[annotator] == 2:
                said = rng.integers(len(CHOICES))
            else:
                said = true
                if kind[annotator] == 3 and true in (2, 3):
                    said = 5 - true
                elif rng.random() >= skill[annotator]:
                    said = rng.choice([c for c in range(len(CHOICES)) if c != true])
            out_items.append(1000 + item)
            out_annotators.append(int(annotator) + 1)
            out_choices.append(CHOICES[said])
    return out_items, out_annotators, out_choices


CROWDS = {
    "spammers outnumber the careful": dict(seed=1, items=150, per_item=9, annotators=9, accuracy=(0.85, 0.85),
                                           always_a=4, uniform=2),
    "sparse, three votes an item": dict(seed=2, items=800, per_item=3, annotators=25),
    "skewed labels, tie and both_bad swapped by some": dict(seed=3, items=400, per_item=5, annotators=15,
                                                            shares=(0.2, 0.6, 0.05, 0.15), confuse_tie=3),
    "dense, seven votes an item": dict(seed=4, items=250, per_item=7, annotators=12, accuracy=(0.5, 0.9),
                                       uniform=1),
}


def _fits(crowd: dict, smoothing: float = SMOOTHING):
    items, annotators, choices = _crowd(**crowd)
    ours = dawid_skene(items, annotators, choices, max_iter=ROUNDS, tol=0.0, smoothing=smoothing)
    theirs = DawidSkene(n_iter=ROUNDS, tol=-np.inf).fit(
        pd.DataFrame({"task": items, "worker": annotators, "label": choices}))
    votes = pd.Series(annotators).value_counts().to_dict()
    return ours, theirs, votes


def _their_cell(theirs, annotator: int, true: str, said: str) -> float:
    """crowd-kit's P(annotator says ``said`` | truth ``true``); 0 where they never said it (no row)."""
    key = (annotator, said)
    return float(theirs.errors_.loc[key, true]) if key in theirs.errors_.index and true in theirs.errors_ else 0.0


def _their_prior(theirs) -> dict[str, float]:
    return {label: float(theirs.priors_.get(label, 0.0)) for label in CHOICES}


def _their_reliability(theirs, annotator: int) -> float:
    prior = _their_prior(theirs)
    return sum(prior[label] * _their_cell(theirs, annotator, label, label) for label in CHOICES)


@pytest.mark.parametrize("name", CROWDS)
def test_with_crowd_kits_smoothing_the_fit_is_crowd_kits(name):
    """Same start, same steps, same floor: labels, posteriors, prior and every confusion cell match."""
    ours, theirs, _ = _fits(CROWDS[name], smoothing=CROWD_KIT_EPS)
    assert ours.labels == theirs.labels_.to_dict()
    for item, label in ours.labels.items():
        assert ours.posteriors[item] == pytest.approx(theirs.probas_.loc[item, label], abs=SAME)
    assert ours.prior == pytest.approx(_their_prior(theirs), abs=SAME)
    for annotator, matrix in ours.confusion.items():
        for k, true in enumerate(CHOICES):
            for m, said in enumerate(CHOICES):
                assert matrix[k][m] == pytest.approx(_their_cell(theirs, annotator, true, said), abs=SAME)
        assert ours.reliability[annotator] == pytest.approx(_their_reliability(theirs, annotator), abs=SAME)


@pytest.mark.parametrize("name", CROWDS)
def test_with_our_smoothing_labels_agree_with_crowd_kit(name):
    ours, theirs, _ = _fits(CROWDS[name])
    their_labels = theirs.labels_.to_dict()
    assert set(their_labels) == set(ours.labels)
    differ = [item for item, label in their_labels.items() if ours.labels[item] != label]
    assert 1 - len(differ) / len(their_labels) >= LABEL_SHARE, differ


@pytest.mark.parametrize("name", CROWDS)
def test_with_our_smoothing_reliabilities_and_diagonals_stay_close_to_crowd_kits(name):
    ours, theirs, votes = _fits(CROWDS[name])
    prior = _their_prior(theirs)
    checked = 0
    for annotator, matrix in ours.confusion.items():
        assert ours.reliability[annotator] == pytest.approx(_their_reliability(theirs, annotator),
                                                            abs=RELIABILITY_TOL), annotator
        for k, label in enumerate(CHOICES):
            if votes[annotator] * prior[label] >= MIN_TRUE_VOTES:
                theirs_kk = _their_cell(theirs, annotator, label, label)
                assert matrix[k][k] == pytest.approx(theirs_kk, abs=DIAGONAL_TOL), (annotator, label)
                checked += 1
    assert checked >= 8


def test_the_crowds_are_not_trivial():
    """Each crowd has annotators of clearly different reliability, and majority vote gets some items
    wrong that Dawid-Skene gets right (else the checks above prove little)."""
    for crowd in CROWDS.values():
        items, annotators, choices = _crowd(**crowd)
        ours = dawid_skene(items, annotators, choices)
        assert max(ours.reliability.values()) - min(ours.reliability.values()) > 0.2
        shares = pd.crosstab(pd.Series(items, name="item"), pd.Series(choices, name="label"))
        assert (shares.idxmax(axis=1) != pd.Series(ours.labels)).sum() > 0

"""Quality rules for datasets: which annotators and votes a snapshot or export leaves out (pure, no Django).

Rules (fields of ``feedback.preferences.AggregationRules`` and of the export filters):

- ``min_gold_accuracy`` (0..1 or None): leave out every vote of an annotator whose gold accuracy,
  the point estimate correct / gold votes over the votes in scope on gold items (the same figure
  the gold pause rule reads, ``feedback.gold.gold_pause_due``), is below it. Only annotators with
  at least ``min_gold_votes`` gold votes are judged; those with fewer are kept. The point estimate
  rather than the Wilson lower bound: with ``min_gold_votes`` as the guard against small samples,
  the threshold means what an admin reads on the dashboard's gold column.
- ``min_kappa`` (0..1 or None): leave out every vote of an annotator whose kappa against peers is
  below it: the mean of Cohen's kappa with each peer they share items with, weighted by the
  number of shared items (``feedback.quality.pairs``), computed from the votes in scope (not from
  a stored report). Pairs whose kappa is undefined are skipped; an annotator with no defined
  kappa is kept.
- ``exclude_flagged``: leave out every vote of an annotator in ``flagged_annotators`` (the caller
  passes those ``feedback.quality.bias.bias_summary`` flags: left bias, fast, long runs, consensus
  outlier).
- ``min_ms_on_item`` (whole ms, 0 = off): leave out each vote whose time on the item is known and
  below it (imported votes without a time are kept).

A vote is counted once, under the first reason that applies, in the order of ``REASONS``.
"""
from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

from .aggregation import CHOICES
from .pairs import kappa_from_confusions, pair_confusions, pair_observations

REASONS = ("left_out_low_gold", "left_out_low_kappa", "left_out_flagged_annotator", "left_out_fast_votes")
_INDEX = {choice: i for i, choice in enumerate(CHOICES)}


@dataclass(frozen=True)
class QualityScreen:
    """``annotators``: ``{annotator id: reason}`` for annotators whose every vote is left out;
    ``min_ms_on_item``: the per-vote time floor (0: none). ``reason(annotator_id, ms_on_item)``
    gives the count key (one of ``REASONS``) or None."""

    annotators: Mapping[int, str] = field(default_factory=dict)
    min_ms_on_item: int = 0

    def reason(self, annotator_id: int, ms_on_item: int | None) -> str | None:
        if annotator_id in self.annotators:
            return self.annotators[annotator_id]
        if self.min_ms_on_item and ms_on_item is not None and ms_on_item < self.min_ms_on_item:
            return "left_out_fast_votes"
        return None


def gold_accuracies(annotators: Sequence[int], choices: Sequence[str], gold_choices: Sequence[str]) -> dict[int, tuple[int, int]]:
    """``{annotator id: (gold votes, correct)}`` over the votes whose ``gold_choice`` is not empty."""
    tally: dict[int, list[int]] = {}
    for annotator, choice, gold in zip(annotators, choices, gold_choices):
        if gold:
            row = tally.setdefault(annotator, [0, 0])
            row[0] += 1
            row[1] += choice == gold
    return {a: (n, c) for a, (n, c) in tally.items()}


def kappa_vs_peers(items: Sequence[int], annotators: Sequence[int], choices: Sequence[str]) -> dict[int, float]:
    """Each annotator's Cohen's kappa against their peers: the mean over peers sharing items of the
    pair's kappa, weighted by the shared items; annotators without a defined pair kappa are absent.
    Votes are one per (item, annotator, choice) entry; choices from ``CHOICES``."""
    if not len(items):
        return {}
    item_ids, item = np.unique(np.asarray(items, dtype=np.int64), return_inverse=True)
    rater_ids, rater = np.unique(np.asarray(annotators, dtype=np.int64), return_inverse=True)
    label = np.array([_INDEX[c] for c in choices], dtype=np.int64)
    order = np.lexsort((rater, item))
    item, rater, label = item[order], rater[order], label[order]
    counts = np.bincount(item, minlength=len(item_ids))
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
    first, second = pair_observations(starts, counts)
    keep = rater[first] != rater[second]  # an annotator's repeated votes on one item are not a pair
    first, second = first[keep], second[keep]
    if not len(first):
        return {}
    pairs, confusions = pair_confusions(rater, label, first, second, len(rater_ids))
    kappa = kappa_from_confusions(confusions)
    shared = confusions.sum(axis=1).astype(np.float64)
    defined = ~np.isnan(kappa)
    weighted = np.zeros(len(rater_ids))
    weights = np.zeros(len(rater_ids))
    for column in (0, 1):
        np.add.at(weighted, pairs[defined, column], kappa[defined] * shared[defined])
        np.add.at(weights, pairs[defined, column], shared[defined])
    return {int(rater_ids[r]): float(weighted[r] / weights[r]) for r in np.flatnonzero(weights > 0)}


def quality_screen(
    *, items: Sequence[int], annotators: Sequence[int], choices: Sequence[str], gold_choices: Sequence[str],
    min_gold_accuracy: float | None = None, min_gold_votes: int = 5, min_kappa: float | None = None,
    exclude_flagged: bool = False, flagged_annotators: Collection[int] = (), min_ms_on_item: int = 0,
) -> QualityScreen:
    """The annotators to leave out (module docstring), from the votes in scope given as equal-length
    sequences (one entry per vote: comparison id, annotator id, choice, the comparison's gold
    choice or ``""``)."""
    left_out: dict[int, str] = {}
    if min_gold_accuracy is not None:
        for annotator, (n, correct) in gold_accuracies(annotators, choices, gold_choices).items():
            if n >= max(min_gold_votes, 1) and correct / n < min_gold_accuracy:
                left_out[annotator] = "left_out_low_gold"
    if min_kappa is not None:
        for annotator, kappa in kappa_vs_peers(items, annotators, choices).items():
            if kappa < min_kappa:
                left_out.setdefault(annotator, "left_out_low_kappa")
    if exclude_flagged:
        for annotator in flagged_annotators:
            left_out.setdefault(annotator, "left_out_flagged_annotator")
    return QualityScreen(annotators=left_out, min_ms_on_item=min_ms_on_item)


def quality_notes(counts: Mapping[str, object]) -> list[str]:
    """What the quality rules changed, in words, from a snapshot's or export's ``counts``: e.g.
    ``["12 votes left out: annotators below the gold accuracy threshold", "3 pairs labelled
    differently by Dawid-Skene than by majority"]``; empty when nothing was left out or changed."""
    words = {
        "left_out_low_gold": "annotators below the gold accuracy threshold",
        "left_out_low_kappa": "annotators below the kappa threshold",
        "left_out_flagged_annotator": "annotators flagged for bias, speed, long runs or consensus",
        "left_out_fast_votes": "faster than the time-on-item floor",
    }
    notes = []
    for key, text in words.items():
        n = counts.get(key) or 0
        if n:
            notes.append(f"{n} {'vote' if n == 1 else 'votes'} left out: {text}")
    differs = counts.get("dawid_skene_differs") or 0
    if differs:
        notes.append(f"{differs} {'comparison' if differs == 1 else 'comparisons'} labelled differently by "
                     "Dawid-Skene than by majority")
    return notes

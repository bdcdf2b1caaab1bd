"""The human agreement ceiling: how often an annotator agrees with the other annotators' majority
on the same comparisons (pure numpy/statsmodels, no Django).

A reward model's held-out accuracy is the share of eval pairs whose chosen response it scores
higher, the chosen response being the comparison's strict-majority vote ``a`` or ``b``. The
ceiling asks the same question of the people: leave one vote out, take the strict majority of the
remaining votes on that comparison, and count whether the left-out vote agrees. A reward model
near the ceiling predicts the label about as well as another annotator does.

So the two numbers stay comparable, the ceiling is restricted to what the reward model is scored
on, chosen/rejected (``a`` vs ``b``). Precisely, for each comparison (all of its votes):

1. one vote only: nothing to compare with; left out (``comparisons_left_out.single_vote``);
2. the strict majority of all its votes is ``tie`` or ``both_bad``: no chosen/rejected pair, so the
   reward model is never scored on it; left out (``comparisons_left_out.tie_or_both_bad_majority``);
3. no strict majority (1-1, 2-2-1): no pair either; left out (``comparisons_left_out.no_majority``).

Then for each vote on the remaining comparisons (two or more votes, majority ``a`` or ``b``):

4. the vote is ``tie`` or ``both_bad``: it names no chosen response; left out
   (``votes_left_out.tie_or_both_bad``). Its comparison's other votes still count it among "the
   others" below, as the snapshot's majority counted it;
5. every other vote is scored against the majority of the others (every vote on the comparison
   but this one, ties and both-bad included, as the snapshot's majority counts them), a tie among
   the others' leading labels broken at random: the vote earns ``1/m`` when its label is one of
   the ``m`` labels tied for the lead, 1 when it is the others' strict majority, else 0 (the
   expected agreement with an annotator who breaks the tie by a coin). ``others_split`` counts the
   votes scored so. Leaving such votes out instead would bias the ceiling down: with three votes
   split 2-1, both majority votes' others are 1-1, and only the minority vote (which disagrees)
   would be scored.

``value`` = agreeing / scored (``n``; ``agreeing`` is a sum of credits, so it may be fractional),
with the Wilson score interval (Wilson 1927) from
``statsmodels.stats.proportion.proportion_confint(method="wilson")``, which takes the fractional
count as it is.
"""
from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

LABELS = ("a", "b", "tie", "both_bad")
_A, _B = 0, 1
NO_PAIRS = "no {what} has two or more votes"
NO_SCORED = "no {what} with two or more votes has an a-or-b majority"


def _undefined(reason: str, result: dict[str, Any]) -> dict[str, Any]:
    return {**result, "value": None, "defined": False, "low": None, "high": None, "reason": reason}


def agreement_ceiling(comparisons: Sequence[int] | np.ndarray, annotators: Sequence[int] | np.ndarray,
                      choices: Sequence[str], *, confidence: float = 0.95,
                      what: str = "comparison") -> dict[str, Any]:
    """The human agreement ceiling of a set of votes (see the module docstring for the rules).

    Args:
        comparisons, annotators, choices: one entry per vote, equal lengths: the comparison id
            (int), the annotator id (int) and the stored choice (``a``/``b``/``tie``/``both_bad``).
        confidence: the Wilson interval's coverage (0.95: a 95 % interval).
        what: the noun for a comparison in the undefined reason (``"eval comparison"``).
    Returns:
        A JSON-safe dict (no NaN): ``value`` (float in 0-1, or None), ``defined`` (bool), ``low``/
        ``high`` (the interval, or None), ``n`` (votes scored), ``agreeing`` (their summed credit),
        ``others_split`` (votes scored with a tie among the others broken at random),
        ``confidence``, ``comparisons`` (distinct ids given), ``comparisons_scored`` (with a scored
        vote), ``votes`` (given), ``comparisons_left_out`` (``single_vote``,
        ``tie_or_both_bad_majority``, ``no_majority``), ``votes_left_out`` (``tie_or_both_bad``)
        and ``reason`` (why undefined, else None): ``"no <what> has two or more
        votes"``, or that no vote could be scored.
    Raises:
        ValueError: lengths differ, an unknown choice, or one annotator voting twice on one comparison.
    """
    item_ids = np.asarray(comparisons, dtype=np.int64).reshape(-1)
    rater_ids = np.asarray(annotators, dtype=np.int64).reshape(-1)
    choices = list(choices)
    if not len(item_ids) == len(rater_ids) == len(choices):
        raise ValueError(f"lengths differ: {len(item_ids)} comparisons, {len(rater_ids)} annotators, {len(choices)} choices")
    unknown = sorted({choice for choice in choices if choice not in LABELS})
    if unknown:
        raise ValueError(f"unknown choice {unknown[0]!r}; expected one of {', '.join(LABELS)}")
    label = np.array([LABELS.index(choice) for choice in choices], dtype=np.int64)
    if len(np.unique(np.stack([item_ids, rater_ids]), axis=1).T) != len(item_ids):
        raise ValueError("an annotator voted twice on one comparison")

    items, item = np.unique(item_ids, return_inverse=True)
    n_items = len(items)
    counts = np.bincount(item * 4 + label, minlength=n_items * 4).reshape(n_items, 4)
    totals = counts.sum(axis=1)
    top = counts.max(axis=1, initial=0)
    strict = (counts == top[:, None]).sum(axis=1) == 1
    leader = counts.argmax(axis=1)
    single = totals < 2
    pair_majority = ~single & strict & (leader <= _B)
    result: dict[str, Any] = {
        "n": 0, "agreeing": 0, "others_split": 0, "confidence": confidence, "votes": len(item_ids),
        "comparisons": n_items, "comparisons_scored": 0,
        "comparisons_left_out": {
            "single_vote": int(single.sum()),
            "tie_or_both_bad_majority": int((~single & strict & (leader > _B)).sum()),
            "no_majority": int((~single & ~strict).sum()),
        },
        "votes_left_out": {"tie_or_both_bad": 0},
    }
    if not (~single).any():
        return _undefined(NO_PAIRS.format(what=what), result)

    on_pair = pair_majority[item]
    others = counts[item]
    others[np.arange(len(item)), label] -= 1
    others_top = others.max(axis=1, initial=0)
    leaders = others == others_top[:, None]  # the labels tied for the lead among the others
    tied = leaders.sum(axis=1)
    side_vote = label <= _B
    scored = on_pair & side_vote
    credit = np.where(leaders[np.arange(len(item)), label], 1.0 / tied, 0.0)
    n = int(scored.sum())
    k = float(credit[scored].sum())
    k = int(k) if k.is_integer() else round(k, 6)
    result.update(
        n=n, agreeing=k, comparisons_scored=int(len(np.unique(item[scored]))),
        others_split=int((scored & (tied > 1)).sum()),
        votes_left_out={"tie_or_both_bad": int((on_pair & ~side_vote).sum())},
    )
    if n == 0:
        return _undefined(NO_SCORED.format(what=what), result)
    from statsmodels.stats.proportion import proportion_confint  # lazily: ~1 s to import, and job processes seldom need it

    low, high = proportion_confint(k, n, alpha=1 - confidence, method="wilson")
    return {**result, "value": k / n, "defined": True, "low": float(low), "high": float(high), "reason": None}

"""Gold items, the pure part (no Django imports): the draw that mixes them into the queue, whether a
vote matches the known answer, the accuracy with its Wilson interval, and the pause rule.

A gold item is a comparison with a ``gold_choice`` (``a``, ``b``, ``tie`` or ``both_bad``: the
known answer). A vote matches it when its stored choice is the same value: a gold ``tie`` matches
only a ``tie`` vote (not ``both_bad``, not a weak preference), a gold ``a`` only ``a``; strength
and aspects are not scored.
"""
from __future__ import annotations

import random
from dataclasses import dataclass


from .queue import choice_on_screen

# The interval's confidence level: 95 %, two-sided.
GOLD_ALPHA = 0.05


def gold_draw(rng: random.Random | None, rate: float) -> bool:
    """Whether this claim serves a gold item: True with probability ``rate`` (0-1). A rate of 0
    never draws and uses no random number; 1 always draws. ``rng`` (seeded in tests) or the
    ``random`` module."""
    if rate <= 0:
        return False
    if rate >= 1:
        return True
    return (rng or random).random() < rate


def gold_match(choice: str, gold_choice: str) -> bool:
    """Whether a stored vote choice (``a``/``b``/``tie``/``both_bad``) matches the gold answer."""
    return bool(gold_choice) and choice == gold_choice


@dataclass(frozen=True)
class GoldAccuracy:
    """One annotator's gold record: ``votes`` on gold items, ``correct`` of them matching,
    ``accuracy`` = correct / votes (None without votes), and the Wilson score interval
    ``[low, high]`` at 95 % (None without votes)."""

    votes: int
    correct: int
    accuracy: float | None
    low: float | None
    high: float | None

    def as_dict(self) -> dict:
        return {"votes": self.votes, "correct": self.correct, "accuracy": self.accuracy, "low": self.low,
                "high": self.high}


def gold_accuracy_of(*, votes: int, correct: int, alpha: float = GOLD_ALPHA) -> GoldAccuracy:
    """Accuracy and its Wilson score interval (Wilson 1927) for ``correct`` matches out of
    ``votes``, computed by ``statsmodels.stats.proportion.proportion_confint(method="wilson")``.
    Raises ValueError when ``correct`` is outside 0..votes."""
    if votes < 0 or not 0 <= correct <= votes:
        raise ValueError(f"correct must be 0..votes, got {correct} of {votes}")
    if votes == 0:
        return GoldAccuracy(0, 0, None, None, None)
    from statsmodels.stats.proportion import proportion_confint  # lazily: ~1 s to import, and job processes seldom need it

    low, high = proportion_confint(correct, votes, alpha=alpha, method="wilson")
    return GoldAccuracy(votes, correct, correct / votes, float(low), float(high))


def gold_pause_due(*, votes: int, correct: int, min_accuracy: float | None, min_votes: int) -> bool:
    """Whether an annotator's access should be paused: a threshold is set, they cast at least
    ``min_votes`` gold votes (and at least one), and ``correct / votes`` is below ``min_accuracy``
    (the point estimate, not the interval)."""
    if min_accuracy is None or votes < max(min_votes, 1):
        return False
    return correct / votes < min_accuracy


# How a choice in screen terms reads in the note.
_SAID = {"left": "left", "right": "right", "tie": "tie", "both_bad": "both bad"}


@dataclass(frozen=True)
class GoldCheck:
    """A vote on a gold item: the stored ``choice`` and ``gold_choice`` (``a``/``b``/``tie``/
    ``both_bad``) and ``shown_left``, the completion that annotator saw on the left."""

    choice: str
    gold_choice: str
    shown_left: str

    @property
    def matched(self) -> bool:
        return gold_match(self.choice, self.gold_choice)

    def note(self) -> str:
        """What the annotator reads after the vote, in the sides they saw, e.g. "That was a check
        item: you chose left, the expected answer was right." """
        chose = _SAID[choice_on_screen(self.choice, self.shown_left)]
        expected = _SAID[choice_on_screen(self.gold_choice, self.shown_left)]
        verdict = "You matched it." if self.matched else "That did not match."
        return f"That was a check item: you chose {chose}, the expected answer was {expected}. {verdict}"

"""Which comparison an annotator is served next: the pure part of the queue (no Django imports).

The database query (``feedback.services.assignment_claim``) fetches a few locked candidates with
their slot counts; this module decides among them. Order: highest priority first, then oldest,
then lowest id (a total order, so the choice never depends on how rows come back).
"""
from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import datetime


@dataclass(frozen=True)
class Candidate:
    """An open comparison the annotator has neither voted on nor skipped.

    ``slots_taken`` counts votes plus unexpired leases held by *other* annotators.
    """

    comparison_id: int
    priority: int
    created_at: datetime
    votes_required: int
    slots_taken: int

    @property
    def has_free_slot(self) -> bool:
        return self.slots_taken < self.votes_required


def queue_sort_key(candidate: Candidate) -> tuple:
    """Sort key: priority descending, then created_at ascending, then id ascending."""
    return (-candidate.priority, candidate.created_at, candidate.comparison_id)


def candidate_pick(candidates: list[Candidate]) -> Candidate | None:
    """Return the first candidate in queue order that still has a free slot, or None."""
    for candidate in sorted(candidates, key=queue_sort_key):
        if candidate.has_free_slot:
            return candidate
    return None


def side_draw(rng: random.Random | None = None) -> str:
    """Draw which completion is shown on the left: ``"a"`` or ``"b"`` with probability 1/2 each."""
    return (rng or random).choice(("a", "b"))


# The screen sides a vote may name instead of the stored completions ("a"/"b"), and back.
SCREEN_CHOICES = ("left", "right")


def choice_stored(choice: str, shown_left: str) -> str:
    """A choice in screen terms (``left``/``right``) -> the comparison's (``a``/``b``), given the
    completion shown on the left (``"a"`` or ``"b"``). ``a``, ``b``, ``tie``, ``both_bad`` pass unchanged."""
    if choice == "left":
        return shown_left
    if choice == "right":
        return "b" if shown_left == "a" else "a"
    return choice


def choice_on_screen(choice: str, shown_left: str) -> str:
    """A stored choice (``a``/``b``/``tie``/``both_bad``) -> what the annotator clicked
    (``left``/``right``/``tie``/``both_bad``), given the completion shown on the left."""
    if choice in ("a", "b"):
        return "left" if choice == shown_left else "right"
    return choice

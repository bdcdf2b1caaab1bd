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

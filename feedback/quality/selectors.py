"""Reads for the quality figures: votes out of the database, into the pure statistics."""
from __future__ import annotations

from typing import Any

from feedback.models import Campaign, Vote

from .agreement import agreement_summary


def agreement_for(*, campaign: Campaign | int | None = None, resamples: int = 1000, seed: int = 0) -> dict[str, Any]:
    """Agreement figures (``agreement.agreement_summary``'s JSON-safe dict) for one campaign's votes,
    or for every vote when ``campaign`` is None.

    One query: ``(comparison_id, annotator_id, choice, strength)`` of every ``Vote`` row whose
    comparison belongs to the campaign (a Campaign or its id). Every vote counts: imported votes
    (``source`` other than ``annotator``) and votes cast by someone who could see the model names
    (``blind`` False) are preference votes like the others; skips and flags are not votes and are
    not read. Items are comparisons and raters are annotators (user ids), so pairs in
    ``cohen_kappa`` name user ids. The ordinal scale uses the stored a/b orientation
    (``shown_left`` is not read). Memory: the rows are held as Python tuples while the columns are
    built (about 150 bytes a vote).
    """
    votes = Vote.objects.all()
    if campaign is not None:
        votes = votes.filter(comparison__campaign=campaign)
    rows = list(votes.values_list("comparison_id", "annotator_id", "choice", "strength"))
    items, annotators, choices, strengths = zip(*rows) if rows else ((), (), (), ())
    return agreement_summary(items, annotators, choices, strengths, resamples=resamples, seed=seed)

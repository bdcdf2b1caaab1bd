"""Reads for gold items (comparisons with a known answer, ``Comparison.gold_choice``): each
annotator's gold accuracy with its Wilson interval, the campaign's gold items and paused annotators.

For the quality dashboard: ``gold_accuracy(campaign=...)`` is the per-annotator figure to store as
``figures["gold"]`` (``{username: GoldAccuracy.as_dict()}``). A vote is scored against the gold
answer *now* (``feedback.gold.gold_match``), so changing a gold answer re-scores past votes.
"""
from __future__ import annotations

from django.db.models import Case, Count, F, IntegerField, Sum, When

from feedback.gold import GoldAccuracy, gold_accuracy_of
from feedback.models import Campaign, CampaignAnnotatorPause, Comparison, Vote, VoteOrigin


def gold_accuracy(*, campaign: Campaign | int, annotator=None) -> dict[str, GoldAccuracy]:
    """Per annotator (by username, sorted) who voted on a gold item of ``campaign``: ``votes``,
    ``correct`` (stored choice equal to ``gold_choice``; a gold ``tie`` matches only a ``tie``),
    ``accuracy`` and the 95 % Wilson interval ``low``/``high`` (``feedback.gold.gold_accuracy_of``).
    With ``annotator`` (a user), only theirs (an empty dict when they cast no gold vote).
    Every person's vote counts, imported or not (AI judges' votes do not: a judge is no annotator). One query."""
    votes = Vote.objects.filter(comparison__campaign=campaign, origin=VoteOrigin.HUMAN).exclude(comparison__gold_choice="")
    if annotator is not None:
        votes = votes.filter(annotator=annotator)
    rows = (
        votes.values("annotator__username")
        .annotate(
            n=Count("id"),
            correct=Sum(Case(When(choice=F("comparison__gold_choice"), then=1), default=0, output_field=IntegerField())),
        )
        .order_by("annotator__username")
    )
    return {row["annotator__username"]: gold_accuracy_of(votes=row["n"], correct=row["correct"] or 0) for row in rows}


def gold_items_count(*, campaign: Campaign | int) -> int:
    """How many of the campaign's comparisons (not retired) have a gold answer."""
    return (
        Comparison.objects.filter(campaign=campaign).exclude(gold_choice="").exclude(status="retired").count()
    )


def gold_pauses(*, campaign: Campaign | int, open_only: bool = True):
    """The campaign's annotator pauses (open ones only by default), newest first, with the annotator."""
    pauses = CampaignAnnotatorPause.objects.filter(campaign=campaign).select_related("annotator", "lifted_by")
    return pauses.filter(lifted_at__isnull=True) if open_only else pauses

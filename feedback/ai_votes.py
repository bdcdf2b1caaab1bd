"""AI votes kept apart from people's (issue 16): the names and small writes the feedback side shares.

An AI vote (``Vote.origin == "ai"``) is cast by an inactive system user per judge name and version,
``judge:<name>@<version>``; it never takes an annotator's slot and fills ``votes_required`` only in
a campaign with ``ai_votes_count``. ``Comparison.vote_count`` counts people's votes only; the claim
and the vote path add AI votes where the campaign says so. The judging side writes AI votes through
``feedback.interface`` and then calls ``comparisons_complete_counted`` so that a comparison whose
campaign counts AI votes closes once people and judges together fill it.
"""
from __future__ import annotations

from collections.abc import Iterable

from django.db.models import Count, F, Q

from .models import Comparison, ComparisonStatus, VoteOrigin
from .vote_origins import JUDGE_USERNAME_PREFIX

__all__ = ["AI", "HUMAN", "JUDGE_USERNAME_PREFIX", "comparisons_complete_counted", "is_judge_username"]
HUMAN = Q(origin=VoteOrigin.HUMAN)
AI = Q(origin=VoteOrigin.AI)


def is_judge_username(username: str) -> bool:
    """True for a judge's system user (``judge:<name>@<version>``), never an annotator."""
    return username.startswith(JUDGE_USERNAME_PREFIX)


def comparisons_complete_counted(*, comparison_ids: Iterable[int]) -> int:
    """Complete the open comparisons among ``comparison_ids`` whose campaign counts AI votes
    (``ai_votes_count``) and whose people's plus AI votes now reach ``votes_required``.

    Gold items of a campaign with a ``gold_rate`` stay open (as with people's votes). Returns the
    number of comparisons completed. One UPDATE after one grouped read.
    """
    ids = list(comparison_ids)
    if not ids:
        return 0
    full = (
        Comparison.objects.filter(pk__in=ids, status=ComparisonStatus.OPEN, campaign__ai_votes_count=True)
        .exclude(Q(campaign__gold_rate__gt=0) & ~Q(gold_choice=""))
        .annotate(ai_votes=Count("votes", filter=Q(votes__origin=VoteOrigin.AI)))
        .filter(votes_required__lte=F("vote_count") + F("ai_votes"))
        .values_list("pk", flat=True)
    )
    return Comparison.objects.filter(pk__in=list(full)).update(status=ComparisonStatus.COMPLETE)

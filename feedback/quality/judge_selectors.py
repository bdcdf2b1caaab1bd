"""Reads for the judges-vs-humans figures (issue 16, item 5): AI votes and people's votes out of
the database, into ``feedback.quality.judges``."""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from django.db.models import Exists, OuterRef

from feedback.models import Campaign, Vote, VoteOrigin

from .judges import human_majority, judge_agreement


def _scope(campaign: Campaign | int | None):
    votes = Vote.objects.all()
    return votes if campaign is None else votes.filter(comparison__campaign=campaign)


def _majority_on(votes) -> dict[int, str]:
    """People's strict majority on the comparisons that have an AI vote among ``votes`` (one query)."""
    judged = Vote.objects.filter(comparison_id=OuterRef("comparison_id"), origin=VoteOrigin.AI)
    rows = votes.filter(origin=VoteOrigin.HUMAN).filter(Exists(judged)).values_list("comparison_id", "choice")
    return human_majority(rows)[0]


def judge_agreement_for(
    *, judge: str, campaign: Campaign | int | None = None, comparison_ids: Sequence[int] | None = None,
    order_verdicts: Sequence[tuple[str, str]] | None = None,
    by_principle: Mapping[str, Mapping[int, str]] | None = None,
    resamples: int = 1000, seed: int = 0,
) -> dict[str, Any]:
    """``judges.judge_agreement`` of one judge (``"name@version"``) over its votes in ``campaign``
    (None: every campaign; ``comparison_ids``: those comparisons only) against people's strict
    majority on the same comparisons. Two queries. ``order_verdicts`` and ``by_principle`` come
    from the judging job's records (see there)."""
    scope = _scope(campaign)
    if comparison_ids is not None:
        scope = scope.filter(comparison_id__in=list(comparison_ids))
    judge_votes = dict(scope.filter(origin=VoteOrigin.AI, judge=judge).values_list("comparison_id", "choice"))
    majority = _majority_on(scope.filter(comparison_id__in=scope.filter(origin=VoteOrigin.AI, judge=judge)
                                         .values("comparison_id")))
    return {"judge": judge, **judge_agreement(judge_votes, majority, order_verdicts=order_verdicts,
                                              by_principle=by_principle, resamples=resamples, seed=seed)}


def judges_agreement_for(*, campaign: Campaign | int | None = None, resamples: int = 1000,
                         seed: int = 0) -> dict[str, dict[str, Any]]:
    """Every judge with an AI vote in ``campaign`` (None: everywhere), by name: its
    ``judges.judge_agreement`` against people's majority. Two queries whatever the number of judges."""
    scope = _scope(campaign)
    by_judge: dict[str, dict[int, str]] = {}
    for judge, comparison_id, choice in scope.filter(origin=VoteOrigin.AI).values_list("judge", "comparison_id", "choice"):
        by_judge.setdefault(judge, {})[comparison_id] = choice
    if not by_judge:
        return {}
    majority = _majority_on(scope)
    return {judge: {"judge": judge, **judge_agreement(votes, majority, resamples=resamples, seed=seed)}
            for judge, votes in sorted(by_judge.items())}

"""Reward scoring: completions to score, scores recorded, uncertain comparisons moved up the queue. Part of ``feedback.interface``."""
from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from django.db import transaction
from django.db.models import Exists, OuterRef, Subquery

from ..models import Comparison, ComparisonStatus, Completion, CompletionScore


# --- reward scoring ---------------------------------------------------------------------------
SCORING_SCOPES = ("open", "all")


MAX_PRIORITY = 1_000_000  # the bound the comparison services enforce on ``priority``


UNCERTAIN_PRIORITY_RANGE = 100  # ``comparisons_prioritize_uncertain`` adds 0..100 to the base


@dataclass(frozen=True)
class ScoringItem:
    """One completion for a reward model to score: the prompt's chat messages and the completion's text."""

    completion_id: int
    prompt_messages: list[dict[str, str]]
    text: str


def _reward_model_check(reward_model: Any) -> str:
    if not isinstance(reward_model, str) or not reward_model.strip() or len(reward_model) > 200:
        raise ValueError("reward_model must be a non-empty string of at most 200 characters")
    return reward_model


def completions_to_score(
    *, reward_model: str, scope: str = "open", only_unscored: bool = True, limit: int | None = None,
    completion_ids: Sequence[int] | None = None,
) -> list[ScoringItem]:
    """Completions for ``reward_model`` to score, oldest (lowest id) first.

    Args:
        reward_model: the reward checkpoint's name, as stored on ``CompletionScore.reward_model``.
        scope: ``"open"``: completions in at least one open comparison (the queue that
            ``comparisons_prioritize_uncertain`` reorders); ``"all"``: completions in any comparison.
            Completions in no comparison are never listed.
        only_unscored: leave out completions that already have a score from ``reward_model``.
        limit: at most this many items.
        completion_ids: exactly these completions (an evaluation's, in no comparison); ``scope``
            is then ignored. Ids that do not exist are left out.
    Returns: ``ScoringItem``s; empty (blank or whitespace-only) texts are left out.
    Raises:
        ValueError: an unknown scope, an empty reward model name, or a negative limit.
    """
    _reward_model_check(reward_model)
    if scope not in SCORING_SCOPES:
        raise ValueError(f"unknown scope {scope!r}; expected one of {', '.join(SCORING_SCOPES)}")
    if limit is not None and limit < 0:
        raise ValueError("limit must not be negative")
    comparisons = Comparison.objects.all()
    if scope == "open":
        comparisons = comparisons.filter(status=ComparisonStatus.OPEN)
    qs = Completion.objects.filter(is_empty=False)
    if completion_ids is not None:
        qs = qs.filter(id__in=list(completion_ids))
    else:
        qs = qs.filter(
            Exists(comparisons.filter(completion_a=OuterRef("pk"))) | Exists(comparisons.filter(completion_b=OuterRef("pk")))
        )
    if only_unscored:
        qs = qs.exclude(Exists(CompletionScore.objects.filter(completion=OuterRef("pk"), reward_model=reward_model)))
    qs = qs.select_related("prompt").only("id", "text", "prompt__messages").order_by("id")
    if limit is not None:
        qs = qs[:limit]
    return [ScoringItem(c.id, c.prompt.messages, c.text) for c in qs]


def scores_record(*, reward_model: str, scores: Sequence[tuple[int, float]]) -> int:
    """Store ``reward_model``'s scores, replacing earlier scores by the same reward model, in one transaction.

    Args:
        reward_model: the reward checkpoint's name.
        scores: ``(completion_id, score)`` pairs; a score is a finite float, higher is better
            (the reward model's scalar output, in its own units).
    Returns: how many scores were written (inserted or updated).
    Raises:
        ValueError: an empty reward model name, a non-finite or non-numeric score, the same
            completion twice, or a completion id that does not exist; nothing is written.
    """
    _reward_model_check(reward_model)
    rows: dict[int, float] = {}
    for completion_id, score in scores:
        if isinstance(score, bool) or not isinstance(score, (int, float)) or not math.isfinite(score):
            raise ValueError(f"score for completion {completion_id} must be a finite number, not {score!r}")
        if completion_id in rows:
            raise ValueError(f"completion {completion_id} is scored twice")
        rows[int(completion_id)] = float(score)
    if not rows:
        return 0
    missing = set(rows) - set(Completion.objects.filter(id__in=rows).values_list("id", flat=True))
    if missing:
        raise ValueError(f"no such completion(s): {sorted(missing)}")
    with transaction.atomic():
        CompletionScore.objects.bulk_create(
            [CompletionScore(completion_id=cid, reward_model=reward_model, score=score) for cid, score in rows.items()],
            update_conflicts=True,
            unique_fields=["completion", "reward_model"],
            update_fields=["score", "created_at"],
        )
    return len(rows)


def uncertainty_priority(margin: float) -> int:
    """0-100: how unsure a reward model is about a pair whose scores differ by ``margin`` (score_a - score_b).

    Under the Bradley-Terry model that reward models are trained with (Christiano et al. 2017;
    Ouyang et al. 2022, eq. 1), P(A preferred) = sigmoid(margin). Its distance from a coin flip is
    |2 * sigmoid(margin) - 1| = tanh(|margin| / 2) (computed so, which cannot overflow), and the
    priority is ``round(100 * (1 - that))``: 100 at margin 0 (a coin flip), 0 when the model is
    certain. Python's ``round`` (half to even). Asking people about the pairs a model is least
    sure of is uncertainty sampling (Lewis and Gale 1994).
    """
    return round(UNCERTAIN_PRIORITY_RANGE * (1.0 - math.tanh(abs(margin) / 2.0)))


def comparisons_prioritize_uncertain(*, reward_model: str, base_priority: int = 0) -> int:
    """Reorder the queue so that people are asked about the pairs ``reward_model`` is least sure of.

    Every open comparison whose two completions both have a score from ``reward_model`` gets
    ``priority = base_priority + uncertainty_priority(score_a - score_b)``, i.e.
    ``base_priority + round(100 * (1 - |2 * sigmoid(score_a - score_b) - 1|))``: base + 100 for
    a margin of 0, base + 0 for a pair the model is sure of. The queue serves higher priority first.
    Comparisons missing either score, and comparisons not open, keep their priority.

    Returns: how many comparisons were given a priority from the scores (rows whose priority
        already had that value are counted but not rewritten).
    Raises:
        ValueError: an empty reward model name, or a base priority whose result could leave
            -1,000,000..1,000,000.
    """
    _reward_model_check(reward_model)
    if isinstance(base_priority, bool) or not isinstance(base_priority, int):
        raise ValueError("base_priority must be an integer")
    if not -MAX_PRIORITY <= base_priority <= MAX_PRIORITY - UNCERTAIN_PRIORITY_RANGE:
        raise ValueError(f"base_priority must be from {-MAX_PRIORITY} to {MAX_PRIORITY - UNCERTAIN_PRIORITY_RANGE}")

    def score_of(side: str) -> Subquery:
        return Subquery(
            CompletionScore.objects.filter(completion=OuterRef(side), reward_model=reward_model).values("score")[:1]
        )

    with transaction.atomic():
        comparisons = list(
            Comparison.objects.filter(status=ComparisonStatus.OPEN)
            .annotate(score_a=score_of("completion_a"), score_b=score_of("completion_b"))
            .filter(score_a__isnull=False, score_b__isnull=False)
            .only("id", "priority")
            .select_for_update(of=("self",))
        )
        changed = []
        for comparison in comparisons:
            priority = base_priority + uncertainty_priority(comparison.score_a - comparison.score_b)
            if comparison.priority != priority:
                comparison.priority = priority
                changed.append(comparison)
        Comparison.objects.bulk_update(changed, ["priority"], batch_size=500)
    return len(comparisons)

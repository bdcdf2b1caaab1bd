"""Reads for the feedback app, each scoped to what the asking user may see."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.db import connection
from django.db.models import BooleanField, Exists, OuterRef, QuerySet
from django.db.models.expressions import RawSQL
from django.utils import timezone

from .models import Assignment, AssignmentStatus, Comparison, ComparisonStatus, Completion, Prompt, Side, Vote
from .roles import is_feedback_admin


@dataclass(frozen=True)
class Display:
    """An assignment as the annotator sees it: the prompt, then the completions by screen side."""

    assignment: Assignment
    comparison: Comparison
    messages: list[dict[str, str]]
    left: Completion
    right: Completion

    @property
    def left_letter(self) -> str:
        return self.assignment.shown_left

    @property
    def right_letter(self) -> str:
        return Side.B if self.assignment.shown_left == Side.A else Side.A


def assignment_display(*, assignment: Assignment) -> Display:
    """Load what the annotator page shows for an assignment (one query)."""
    comparison = Comparison.objects.select_related("prompt", "completion_a", "completion_b").get(
        pk=assignment.comparison_id
    )
    a, b = comparison.completion_a, comparison.completion_b
    left, right = (a, b) if assignment.shown_left == Side.A else (b, a)
    return Display(assignment, comparison, comparison.prompt.messages, left, right)


def annotator_progress(*, annotator) -> dict[str, int]:
    """Counts for the annotator's progress line: ``voted`` (all time), ``skipped``, ``remaining``.

    ``remaining`` is the number of open comparisons this annotator has neither voted on nor skipped
    (an upper bound on what they can still be served; slots held by others are not subtracted).
    """
    mine = Assignment.objects.filter(annotator=annotator)
    done = mine.filter(comparison=OuterRef("pk"), status__in=[AssignmentStatus.VOTED, AssignmentStatus.SKIPPED])
    return {
        "voted": mine.filter(status=AssignmentStatus.VOTED).count(),
        "skipped": mine.filter(status=AssignmentStatus.SKIPPED).count(),
        "remaining": Comparison.objects.filter(status=ComparisonStatus.OPEN).filter(~Exists(done)).count(),
    }


def comparison_list(*, user, filters: dict[str, Any] | None = None) -> QuerySet[Comparison]:
    """Comparisons the user may see: all for admins, those assigned to them for annotators.

    Filters (all optional): ``status``, ``prompt``, ``model_name`` (either side; admins only, since
    it would tell an annotator which model wrote a response), ``tag``, ``split``,
    ``created_after``/``created_before`` (datetimes).
    """
    filters = filters or {}
    qs = Comparison.objects.select_related("prompt", "completion_a", "completion_b")
    if not is_feedback_admin(user):
        qs = qs.filter(Exists(Assignment.objects.filter(comparison=OuterRef("pk"), annotator=user)))
    if filters.get("status"):
        qs = qs.filter(status=filters["status"])
    if filters.get("prompt"):
        qs = qs.filter(prompt_id=filters["prompt"])
    if filters.get("split"):
        qs = qs.filter(prompt__split=filters["split"])
    if filters.get("model_name") and is_feedback_admin(user):
        name = filters["model_name"]
        qs = qs.filter(Exists(Completion.objects.filter(pk=OuterRef("completion_a"), model_name=name))) | qs.filter(
            Exists(Completion.objects.filter(pk=OuterRef("completion_b"), model_name=name))
        )
    if filters.get("tag"):
        qs = qs.filter(prompt__in=prompts_with_tag(filters["tag"]))
    if filters.get("created_after"):
        qs = qs.filter(created_at__gte=filters["created_after"])
    if filters.get("created_before"):
        qs = qs.filter(created_at__lt=filters["created_before"])
    return qs


def prompts_with_tag(tag: str) -> QuerySet[Prompt]:
    """Prompts whose ``tags`` list holds ``tag`` exactly (JSON containment on PostgreSQL, json_each on SQLite)."""
    if connection.vendor == "sqlite":
        has_tag = RawSQL(
            'EXISTS (SELECT 1 FROM json_each("feedback_prompt"."tags") WHERE json_each.value = %s)',
            [tag],
            output_field=BooleanField(),
        )
        return Prompt.objects.alias(has_tag=has_tag).filter(has_tag=True)
    return Prompt.objects.filter(tags__contains=[tag])


def vote_list(*, user, filters: dict[str, Any] | None = None) -> QuerySet[Vote]:
    """Votes the user may see: all for admins, their own for annotators.

    Filters: ``comparison``, ``annotator`` (id; admins only), ``choice``, ``created_after``, ``created_before``.
    """
    filters = filters or {}
    qs = Vote.objects.select_related("annotator")
    if not is_feedback_admin(user):
        qs = qs.filter(annotator=user)
    elif filters.get("annotator"):
        qs = qs.filter(annotator_id=filters["annotator"])
    if filters.get("comparison"):
        qs = qs.filter(comparison_id=filters["comparison"])
    if filters.get("choice"):
        qs = qs.filter(choice=filters["choice"])
    if filters.get("created_after"):
        qs = qs.filter(created_at__gte=filters["created_after"])
    if filters.get("created_before"):
        qs = qs.filter(created_at__lt=filters["created_before"])
    return qs


def lease_is_live(assignment: Assignment, now: datetime | None = None) -> bool:
    """True while the assignment is a lease that has not expired."""
    return assignment.status == AssignmentStatus.LEASED and assignment.expires_at > (now or timezone.now())

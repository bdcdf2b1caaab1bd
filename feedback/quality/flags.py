"""Reads for the annotators' flags: skipped items with a reason (``Assignment.skip_reason``).

A flag is an assignment the annotator skipped with a ``SkipReason``; a plain skip (no reason) is
not a flag. Admin-only data: the rows name the annotator and the campaign.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.db.models import Count, Q, QuerySet

from feedback.models import Assignment, AssignmentStatus, Campaign, Comparison, SkipReason


def flag_list(*, filters: dict[str, Any] | None = None) -> QuerySet[Assignment]:
    """Flagged assignments, newest first, with comparison, campaign and annotator loaded.

    ``filters``: ``campaign`` (a ``Campaign`` or its id), ``reason`` (a ``SkipReason`` value),
    ``comparison`` (an id); empty values are ignored.
    """
    filters = filters or {}
    queryset = (
        Assignment.objects.filter(status=AssignmentStatus.SKIPPED)
        .exclude(skip_reason="")
        .select_related("comparison__campaign", "annotator")
        .order_by("-finished_at", "-id")
    )
    if filters.get("campaign"):
        queryset = queryset.filter(comparison__campaign=filters["campaign"])
    if filters.get("reason"):
        queryset = queryset.filter(skip_reason=filters["reason"])
    if filters.get("comparison"):
        queryset = queryset.filter(comparison_id=filters["comparison"])
    return queryset


def comparison_flags(*, comparison: Comparison) -> QuerySet[Assignment]:
    """The flags annotators raised on one comparison (its detail page), newest first."""
    return flag_list(filters={"comparison": comparison.pk})


@dataclass(frozen=True)
class CampaignFlagCounts:
    """One row of the counts table: a campaign's flags per reason (``counts`` in ``SkipReason`` order)."""

    campaign: Campaign
    counts: list[int]

    @property
    def total(self) -> int:
        return sum(self.counts)


def flag_counts(*, filters: dict[str, Any] | None = None) -> list[CampaignFlagCounts]:
    """Flags per reason per campaign (one query), for the campaigns that have any; ``filters`` as
    ``flag_list``'s (``campaign`` and ``reason`` narrow the table the same way)."""
    filters = filters or {}
    rows = Campaign.objects.all()
    if filters.get("campaign"):
        rows = rows.filter(pk=getattr(filters["campaign"], "pk", filters["campaign"]))
    flagged = Q(comparisons__assignments__status=AssignmentStatus.SKIPPED)
    reasons = [filters["reason"]] if filters.get("reason") else list(SkipReason.values)
    annotations = {
        f"flags_{reason}": Count("comparisons__assignments", filter=flagged & Q(comparisons__assignments__skip_reason=reason))
        for reason in SkipReason.values
    }
    table = []
    for campaign in rows.annotate(**annotations).order_by("-priority", "name"):
        counts = [getattr(campaign, f"flags_{reason}") if reason in reasons else 0 for reason in SkipReason.values]
        if any(counts):
            table.append(CampaignFlagCounts(campaign, counts))
    return table

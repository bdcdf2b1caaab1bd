"""How far a campaign has got (selectors): votes against the target, votes per annotator, the
voting rate, the time left to the target at that rate, and whether the deadline will be met.

People's votes and AI judges' votes (issue 16) are counted apart: ``votes``, the rates and the
annotators are people's only; ``ai_votes`` is shown beside them and counts toward the target only
in a campaign with ``ai_votes_count``. Judges' system users never appear among the annotators.

Each figure comes from aggregate queries (three for one campaign, two for a whole list), never a
loop over rows.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta
from typing import Any

from django.db.models import Count, Max, Min, Q, Sum
from django.utils import timezone

from feedback.ai_votes import AI, HUMAN
from feedback.models import Comparison, ComparisonStatus, Vote

from .models import Campaign

RATE_WINDOW = timedelta(hours=24)
MIN_SPAN = timedelta(hours=1)  # a rate is never taken over less than an hour (the first vote's burst)


@dataclass
class AnnotatorVotes:
    username: str
    votes: int
    last_vote_at: datetime | None


@dataclass
class CampaignProgress:
    """``target`` is ``target_votes`` when set (``target_kind`` "target_votes"), else the sum of
    ``votes_required`` over its comparisons that are not retired ("comparisons"). Rates are votes
    per hour: ``rate_recent`` over the last 24 h (or since the first vote, if later; at least an
    hour), ``rate_overall`` since the first vote. ``eta`` is the time to the target at
    ``rate_recent`` (None with no recent vote; zero once reached); ``on_track`` says whether that
    lands before the deadline (None without a deadline). ``capacity``: the votes its comparisons
    can still take in all (``votes_required`` summed over the ones not retired); a ``target_votes``
    above ``max(counted, capacity)`` cannot be reached (``unreachable``). ``votes`` counts people's
    votes, ``ai_votes`` AI judges'; ``counted`` (what meets the target) adds ``ai_votes`` only when
    the campaign counts them (``ai_votes_count``)."""

    campaign_id: int
    votes: int = 0
    ai_votes: int = 0
    ai_votes_count: bool = False
    target: int = 0
    target_kind: str = "comparisons"
    capacity: int = 0
    comparisons: int = 0
    open: int = 0
    complete: int = 0
    retired: int = 0
    first_vote_at: datetime | None = None
    last_vote_at: datetime | None = None
    votes_recent: int = 0
    rate_recent: float | None = None
    rate_overall: float | None = None
    eta: timedelta | None = None
    deadline: datetime | None = None
    on_track: bool | None = None
    annotators: list[AnnotatorVotes] = field(default_factory=list)

    @property
    def counted(self) -> int:
        """The votes that meet the target: people's, plus AI votes where the campaign counts them."""
        return self.votes + (self.ai_votes if self.ai_votes_count else 0)

    @property
    def remaining(self) -> int:
        return max(0, self.target - self.counted)

    @property
    def unreachable(self) -> bool:
        """True when the target asks for more votes than the campaign's comparisons can take."""
        return self.target_kind == "target_votes" and self.target > max(self.counted, self.capacity)

    @property
    def percent(self) -> int:
        """Counted votes as a share of the target, 0-100 (100 when the target is 0 or reached)."""
        return 100 if not self.target else min(100, int(100 * self.counted / self.target))

    @property
    def finish_at(self) -> datetime | None:
        return None if self.eta is None else timezone.now() + self.eta

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready: datetimes as ISO 8601, ``eta_seconds`` for ``eta``, plus remaining and percent."""
        data = asdict(self)
        data.pop("eta")
        for key in ("first_vote_at", "last_vote_at", "deadline"):
            data[key] = data[key].isoformat() if data[key] else None
        for row in data["annotators"]:
            row["last_vote_at"] = row["last_vote_at"].isoformat() if row["last_vote_at"] else None
        data["eta_seconds"] = None if self.eta is None else round(self.eta.total_seconds())
        data["remaining"], data["percent"], data["unreachable"] = self.remaining, self.percent, self.unreachable
        data["counted"] = self.counted
        return data


def _vote_figures(since: datetime) -> dict[str, Any]:
    return {
        "votes": Count("id", filter=HUMAN),
        "ai_votes": Count("id", filter=AI),
        "votes_recent": Count("id", filter=HUMAN & Q(created_at__gte=since)),
        "first_vote_at": Min("created_at", filter=HUMAN),
        "last_vote_at": Max("created_at", filter=HUMAN),
    }


def _comparison_figures() -> dict[str, Any]:
    return {
        "comparisons": Count("id"),
        "open": Count("id", filter=Q(status=ComparisonStatus.OPEN)),
        "complete": Count("id", filter=Q(status=ComparisonStatus.COMPLETE)),
        "retired": Count("id", filter=Q(status=ComparisonStatus.RETIRED)),
        "required": Sum("votes_required", filter=~Q(status=ComparisonStatus.RETIRED)),
    }


def _finish(progress: CampaignProgress, campaign: Campaign, required: int | None, now: datetime) -> CampaignProgress:
    """Fill target, rates, eta and on_track from the counted figures."""
    if campaign.target_votes:
        progress.target, progress.target_kind = campaign.target_votes, "target_votes"
    else:
        progress.target, progress.target_kind = required or 0, "comparisons"
    progress.capacity = required or 0
    progress.ai_votes_count = campaign.ai_votes_count
    progress.deadline = campaign.deadline
    if progress.first_vote_at is not None:
        span = max(MIN_SPAN, now - progress.first_vote_at)
        progress.rate_overall = progress.votes / (span.total_seconds() / 3600)
        recent_span = max(MIN_SPAN, min(RATE_WINDOW, span))
        progress.rate_recent = progress.votes_recent / (recent_span.total_seconds() / 3600)
    if progress.remaining == 0:
        progress.eta = timedelta(0)
    elif progress.rate_recent:
        progress.eta = timedelta(hours=progress.remaining / progress.rate_recent)
    if campaign.deadline is not None:
        if progress.remaining == 0:
            progress.on_track = True
        else:
            progress.on_track = progress.eta is not None and now + progress.eta <= campaign.deadline
    return progress


def campaign_progress(*, campaign: Campaign, now: datetime | None = None) -> CampaignProgress:
    """One campaign's progress, with its votes per annotator (most votes first). Three queries."""
    now = now or timezone.now()
    votes = Vote.objects.filter(comparison__campaign=campaign)
    figures = votes.aggregate(**_vote_figures(now - RATE_WINDOW))
    counts = Comparison.objects.filter(campaign=campaign).aggregate(**_comparison_figures())
    required = counts.pop("required")
    progress = CampaignProgress(campaign_id=campaign.pk, **figures, **counts)
    progress.annotators = [
        AnnotatorVotes(row["annotator__username"], row["votes"], row["last"])
        for row in votes.filter(HUMAN).values("annotator__username")
        .annotate(votes=Count("id"), last=Max("created_at"))
        .order_by("-votes", "annotator__username")
    ]
    return _finish(progress, campaign, required, now)


def campaigns_progress(*, campaigns: list[Campaign], now: datetime | None = None) -> dict[int, CampaignProgress]:
    """Progress of many campaigns by id (without the per-annotator rows). Two grouped queries."""
    now = now or timezone.now()
    ids = [campaign.pk for campaign in campaigns]
    by_votes = {
        row.pop("comparison__campaign"): row
        for row in Vote.objects.filter(comparison__campaign__in=ids)
        .values("comparison__campaign")
        .annotate(**_vote_figures(now - RATE_WINDOW))
        .order_by()
    }
    by_counts = {
        row.pop("campaign"): row
        for row in Comparison.objects.filter(campaign__in=ids).values("campaign").annotate(**_comparison_figures()).order_by()
    }
    found = {}
    for campaign in campaigns:
        counts = dict(by_counts.get(campaign.pk, {}))
        required = counts.pop("required", 0)
        progress = CampaignProgress(campaign_id=campaign.pk, **by_votes.get(campaign.pk, {}), **counts)
        found[campaign.pk] = _finish(progress, campaign, required, now)
    return found

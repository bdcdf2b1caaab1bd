"""Reads for the quality figures: votes out of the database, into the pure statistics."""
from __future__ import annotations

from typing import Any

from django.contrib.auth import get_user_model

from feedback.models import Campaign, QualityReport, Vote, VoteOrigin

from .agreement import agreement_summary
from .bias import DEFAULT_CONSENSUS_MARGIN, DEFAULT_FAST_MS, DEFAULT_FAST_SHARE, bias_summary


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
    built (about 150 bytes a vote). People's votes only: AI judges' votes (``origin`` "ai") are
    measured against people's apart (``feedback.quality.judges``), never as raters here.
    """
    votes = Vote.objects.filter(origin=VoteOrigin.HUMAN)
    if campaign is not None:
        votes = votes.filter(comparison__campaign=campaign)
    rows = list(votes.values_list("comparison_id", "annotator_id", "choice", "strength"))
    items, annotators, choices, strengths = zip(*rows) if rows else ((), (), (), ())
    return agreement_summary(items, annotators, choices, strengths, resamples=resamples, seed=seed)


def bias_for(*, campaign: Campaign | int | None = None, fast_ms: float = DEFAULT_FAST_MS,
             fast_share: float = DEFAULT_FAST_SHARE, consensus_margin: float = DEFAULT_CONSENSUS_MARGIN,
             alpha: float = 0.05, confidence: float = 0.95) -> dict[str, Any]:
    """Bias, speed and attention figures (``bias.bias_summary``'s JSON-safe dict) for one campaign's
    votes, or every vote when ``campaign`` (a Campaign or its id) is None; each ``per_annotator`` row
    also names the annotator by ``username``.

    Two queries: ``(annotator_id, comparison_id, choice, shown_left, ms_on_item)`` of every vote,
    ordered by annotator, ``created_at`` and id (the time order the runs are read in; the ordering
    columns themselves are not fetched), then the usernames of the annotators found. Every vote
    counts, as in ``agreement_for``: imported votes have no shown side and usually no time, and are
    left out of those figures and counted. Keyword arguments as ``bias_summary``'s (``fast_ms`` in ms;
    ``services.quality_report_compute`` passes the campaign's ``fast_vote_ms``). People's votes
    only: an AI judge is never an annotator row.
    """
    votes = Vote.objects.filter(origin=VoteOrigin.HUMAN)
    if campaign is not None:
        votes = votes.filter(comparison__campaign=campaign)
    rows = list(votes.order_by("annotator_id", "created_at", "id")
                .values_list("annotator_id", "comparison_id", "choice", "shown_left", "ms_on_item"))
    columns = zip(*rows) if rows else ((), (), (), (), ())
    summary = bias_summary(*columns, fast_ms=fast_ms, fast_share=fast_share, consensus_margin=consensus_margin,
                           alpha=alpha, confidence=confidence)
    if summary["per_annotator"]:
        names = dict(get_user_model().objects.filter(pk__in=[r["annotator"] for r in summary["per_annotator"]])
                     .values_list("pk", "username"))
        for row in summary["per_annotator"]:
            row["username"] = names.get(row["annotator"], "")
    return summary


def quality_report_get(*, campaign: Campaign | int | None = None) -> QualityReport | None:
    """The stored report of a campaign (or of all votes: ``campaign`` None), or None. One query."""
    reports = QualityReport.objects.all()
    return (reports.filter(campaign=campaign) if campaign is not None else reports.filter(campaign__isnull=True)).first()


def newest_vote_id(*, campaign: Campaign | int | None = None) -> int | None:
    """The id of the scope's newest vote (None: no vote). One query on the votes' primary key.
    AI votes count here: a new one makes the report stale, for its judges-vs-humans figures."""
    votes = Vote.objects.all() if campaign is None else Vote.objects.filter(comparison__campaign=campaign)
    return votes.order_by("-id").values_list("id", flat=True).first()


def quality_report_is_stale(report: QualityReport | None, newest: int | None) -> bool:
    """Whether the stored figures miss a vote: no report computed yet, or a newer vote than its last."""
    if report is None or not report.computed:
        return True
    return newest is not None and (report.last_vote_id is None or newest > report.last_vote_id)


def annotator_quality(*, user, campaigns: list[Campaign]) -> dict[int, dict[str, Any]]:
    """``user``'s own row of each campaign's stored report, by campaign id: ``votes``, ``median_ms``,
    ``computed_at`` and, only where the campaign's ``show_quality_to_annotators`` is on,
    ``consensus_agreement``. Nobody else's figures or names. One query; campaigns without a
    computed report, or where the user has no row, are absent."""
    reports = QualityReport.objects.filter(campaign__in=campaigns, computed_at__isnull=False)
    allowed = {campaign.pk: campaign.show_quality_to_annotators for campaign in campaigns}
    panels: dict[int, dict[str, Any]] = {}
    for report in reports.only("campaign_id", "computed_at", "figures"):
        row = next((r for r in report.figures.get("annotators", []) if r.get("annotator") == user.pk), None)
        if row is None:
            continue
        panel = {"votes": row["votes"], "median_ms": row["median_ms"], "computed_at": report.computed_at}
        if allowed.get(report.campaign_id):
            panel["consensus_agreement"] = row["consensus_agreement"]
        panels[report.campaign_id] = panel
    return panels

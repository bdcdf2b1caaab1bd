"""Writes of the quality reports: compute and store (``quality_report_compute``) and ask for a
recompute in the background (``quality_report_request``, debounced on our own rows).

When is a report recomputed? After new votes, debounced (``feedback.quality.schedule``: a human
vote queues a recompute of the overall and its campaign's report when one is due, at no query on
most votes; ``tests/test_vote_cost.py`` pins it). And when someone looks: the dashboard page (and
the API's POST, and ``manage.py quality_report``) compares the stored report's ``last_vote_id``
with the scope's newest vote id, one indexed query, and when the report is older it calls
``quality_report_request``, which queues at most one recompute per scope: a row already ``queued``
or ``running`` (and not older than ``PENDING_EXPIRES``, after which its worker is presumed lost) is
left as it is.
"""
from __future__ import annotations

import traceback
from typing import Any

from django.contrib.auth import get_user_model
from django.db import IntegrityError, transaction
from django.db.models import Max, Q, Sum
from django.utils import timezone

from feedback.models import Campaign, Vote, VoteOrigin

from .aggregation import CHOICES, dawid_skene
from .bias import DEFAULT_FAST_MS
from .gold import gold_accuracy
from .judge_selectors import judges_agreement_for
from .models import QualityReport, QualityReportStatus
from .report import over_time, report_figures
from .schedule import PENDING_EXPIRES, quality_report_enqueue
from .selectors import agreement_for, bias_for


def _campaign_id(campaign: Campaign | int | None) -> int | None:
    return campaign.pk if isinstance(campaign, Campaign) else campaign


def _report_locked(campaign_id: int | None) -> QualityReport:
    """The scope's report row, locked (created, queued, when missing); call inside ``transaction.atomic``."""
    scope = Q(campaign_id=campaign_id) if campaign_id else Q(campaign__isnull=True)
    report = QualityReport.objects.select_for_update().filter(scope).first()
    if report is None:
        try:
            with transaction.atomic():  # a savepoint: a concurrent request may create it first
                QualityReport.objects.create(campaign_id=campaign_id)
        except IntegrityError:
            pass
        report = QualityReport.objects.select_for_update().get(scope)
    return report


def quality_report_request(*, campaign: Campaign | int | None = None) -> tuple[QualityReport, bool]:
    """Queue a background recompute of the scope's report (``campaign`` None: all votes), unless one
    is already queued or running (debounce). Returns the report row and whether a task was queued;
    the task is enqueued after the transaction commits (``feedback.tasks.quality_report_execute``)."""
    campaign_id = _campaign_id(campaign)
    with transaction.atomic():
        report = _report_locked(campaign_id)
        now = timezone.now()
        fresh_pending = report.pending and report.queued_at and now - report.queued_at < PENDING_EXPIRES
        if fresh_pending:
            return report, False
        report.status, report.queued_at, report.started_at = QualityReportStatus.QUEUED, now, None
        report.save(update_fields=["status", "queued_at", "started_at"])
        transaction.on_commit(lambda: quality_report_enqueue(campaign=campaign_id))
    return report, True


def gold_figures(*, campaign: int) -> dict[str, dict[str, Any]]:
    """Per annotator id (as a string, the report's key) who answered a gold item of ``campaign``:
    gold accuracy as a stored figure ``{"value", "defined", "low", "high", "n", "correct"}`` (the
    95 % Wilson interval of ``feedback.quality.gold.gold_accuracy``); ``{}`` without gold votes."""
    by_name = gold_accuracy(campaign=campaign)
    if not by_name:
        return {}
    ids = dict(get_user_model().objects.filter(username__in=by_name).values_list("username", "id"))
    return {
        str(ids[name]): {"value": record.accuracy, "defined": record.accuracy is not None, "low": record.low,
                         "high": record.high, "n": record.votes, "correct": record.correct}
        for name, record in by_name.items() if name in ids
    }


def reliability_figures(items, annotators, choices) -> dict[str, dict[str, Any]]:
    """Per annotator id (as a string, the report's key): the Dawid-Skene reliability
    (``aggregation.dawid_skene``: the estimated chance, 0..1, that their vote equals the item's true
    label) as a stored figure ``{"value", "defined", "votes"}``. Votes whose choice is not one of
    ``aggregation.CHOICES`` are left out; ``{}`` without votes. Sequences of equal length, one entry a vote."""
    kept = [(i, a, c) for i, a, c in zip(items, annotators, choices) if c in CHOICES]
    if not kept:
        return {}
    items, annotators, choices = zip(*kept)
    result = dawid_skene(items, annotators, choices)
    votes: dict[int, int] = {}
    for annotator in annotators:
        votes[annotator] = votes.get(annotator, 0) + 1
    return {str(annotator): {"value": value, "defined": True, "votes": votes[annotator]}
            for annotator, value in result.reliability.items()}


def quality_report_compute(*, campaign: Campaign | int | None = None) -> QualityReport:
    """Compute the scope's figures now and store them, replacing the old ones in one transaction.

    Reads the scope's newest vote id and count first, then the agreement and bias summaries
    (``selectors.agreement_for``/``bias_for``, 1,000 bootstrap resamples; the speed floor
    ``fast_ms`` is the campaign's ``fast_vote_ms``, ``bias.DEFAULT_FAST_MS`` for all votes), the
    summed time on item per annotator, alpha over time and each annotator's Dawid-Skene reliability
    (``figures["reliability"]``, ``reliability_figures``). A vote cast while this runs may or may not be in
    the figures; ``last_vote_id`` is the newest vote known before reading, so such a report counts
    as stale and is recomputed on the next look. On an error the row is marked failed with the
    traceback and the old figures stay; the error is raised again.
    """
    campaign_id = _campaign_id(campaign)
    floor = (None if campaign_id is None  # read from the row: a passed Campaign may hold an older setting
             else Campaign.objects.filter(pk=campaign_id).values_list("fast_vote_ms", flat=True).first())
    fast_ms = DEFAULT_FAST_MS if floor is None else floor
    with transaction.atomic():
        report = _report_locked(campaign_id)
        report.status, report.started_at, report.error = QualityReportStatus.RUNNING, timezone.now(), ""
        report.save(update_fields=["status", "started_at", "error"])
    scope = Vote.objects.all() if campaign_id is None else Vote.objects.filter(comparison__campaign_id=campaign_id)
    votes = scope.filter(origin=VoteOrigin.HUMAN)  # people's figures from people's votes; judges apart
    try:
        last_vote_id = scope.aggregate(last=Max("id"))["last"]
        rows = list(votes.values_list("comparison_id", "annotator_id", "choice", "created_at"))
        agreement = agreement_for(campaign=campaign_id)
        bias = bias_for(campaign=campaign_id, fast_ms=fast_ms)
        ms_totals = dict(votes.filter(ms_on_item__isnull=False).values("annotator_id")
                         .annotate(total=Sum("ms_on_item")).values_list("annotator_id", "total"))
        items, annotators, choices, moments = zip(*rows) if rows else ((), (), (), ())
        figures = report_figures(agreement=agreement, bias=bias, ms_totals={k: float(v) for k, v in ms_totals.items()},
                                 over_time=over_time(items, annotators, choices, moments))
        reliability = reliability_figures(items, annotators, choices)
        if reliability:
            figures["reliability"] = reliability
        judges = judges_agreement_for(campaign=campaign_id)
        if judges:  # AI judges measured against people's majority (issue 16); never among the annotators
            figures["judges"] = judges
            figures["ai_votes"] = scope.filter(origin=VoteOrigin.AI).count()
        if campaign_id is not None:
            gold = gold_figures(campaign=campaign_id)
            if gold:
                figures["gold"] = gold
    except Exception:
        QualityReport.objects.filter(pk=report.pk).update(status=QualityReportStatus.FAILED,
                                                          error=traceback.format_exc()[-4000:])
        raise
    with transaction.atomic():
        report = QualityReport.objects.select_for_update().get(pk=report.pk)
        report.figures, report.vote_count, report.last_vote_id = figures, agreement["votes"], last_vote_id
        report.computed_at, report.status, report.error = timezone.now(), QualityReportStatus.SUCCEEDED, ""
        report.save()
    return report

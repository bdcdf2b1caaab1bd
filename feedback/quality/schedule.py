"""When a quality report is recomputed after new votes: debounced on the report rows themselves.

A human vote (``feedback.services.vote_submit``) asks for a recompute of two scopes, the overall
report and its campaign's, but only where one is *due*: the scope has no report row yet, or its row

- is not pending (``queued``/``running``) and neither finished a computation (``computed_at``) nor
  started one (``started_at``: a failed run counts too) in the last
  ``settings.ARBITER_QUALITY_DEBOUNCE_SECONDS``; or
- is pending but stale: queued or started more than ``PENDING_EXPIRES`` ago (its worker is presumed lost).

So at most one recompute per scope is pending, and at most one starts per debounce interval while
votes keep coming. The pending mark is the row's ``status`` (``queued``), set by one conditional
UPDATE that re-checks the same condition, so two web workers that both see a scope due queue it
once; the task clears it (``running``, then ``succeeded``/``failed``).

What it costs a vote: nothing on most votes. Whether a scope is due rides as two columns in the
vote's first statement (``vote_due_columns``, read inside ``_VOTE_TARGET_SQL``); only a due vote
runs ``quality_reports_after_vote`` once it has committed (the UPDATE, or an INSERT for a new scope,
and the enqueue). Votes cast within the debounce after a computation are not in its figures until
the next due vote, or until someone looks: the dashboard still asks for a recompute when its report
misses a vote (``feedback.quality.dashboard``).
"""
from __future__ import annotations

import logging
import traceback
from datetime import datetime, timedelta

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import Q
from django.utils import timezone

from .models import QualityReport, QualityReportStatus

logger = logging.getLogger(__name__)

PENDING_EXPIRES = timedelta(minutes=30)
_PENDING = (QualityReportStatus.QUEUED.value, QualityReportStatus.RUNNING.value)

# A report row that is *not* due (alias q); a scope is due when no such row exists. The status
# names are constants; the two times are parameters (``vote_due_params``).
_NOT_DUE_SQL = (
    "((q.status IN ('{0}', '{1}') AND COALESCE(q.started_at, q.queued_at) >= %(quality_expired)s)"
    " OR (q.status NOT IN ('{0}', '{1}')"
    " AND (q.computed_at >= %(quality_cutoff)s OR q.started_at >= %(quality_cutoff)s)))"
).format(*_PENDING)


def vote_due_columns(*, table: str, campaign_column: str) -> str:
    """Two SQL select-list columns (booleans, 1/0 on SQLite) for the vote's first statement: is the
    overall report due a recompute, is the campaign's (``campaign_column``: the vote's campaign id
    there). ``table``: ``QualityReport``'s table. Needs the parameters of ``vote_due_params``."""
    return (
        f"NOT EXISTS (SELECT 1 FROM {table} q WHERE q.campaign_id IS NULL AND {_NOT_DUE_SQL}),"
        f" NOT EXISTS (SELECT 1 FROM {table} q WHERE q.campaign_id = {campaign_column} AND {_NOT_DUE_SQL})"
    )


def vote_due_params(now: datetime) -> dict[str, datetime]:
    """The times ``vote_due_columns`` compares with, as of ``now`` (aware datetimes)."""
    return {"quality_cutoff": now - timedelta(seconds=settings.ARBITER_QUALITY_DEBOUNCE_SECONDS),
            "quality_expired": now - PENDING_EXPIRES}


def quality_report_due(now: datetime) -> Q:
    """The report rows due a recompute as of ``now`` (the ORM twin of ``vote_due_columns``)."""
    times = vote_due_params(now)
    cutoff, expired = times["quality_cutoff"], times["quality_expired"]
    pending = Q(status__in=_PENDING)
    stale_pending = Q(started_at__lt=expired) | Q(started_at__isnull=True) & (
        Q(queued_at__lt=expired) | Q(queued_at__isnull=True))
    quiet = ((Q(computed_at__isnull=True) | Q(computed_at__lt=cutoff))
             & (Q(started_at__isnull=True) | Q(started_at__lt=cutoff)))
    return pending & stale_pending | ~pending & quiet


def _scope(campaign: int | None) -> Q:
    return Q(campaign_id=campaign) if campaign is not None else Q(campaign__isnull=True)


def quality_report_schedule(*, campaign: int | None, now: datetime | None = None) -> bool:
    """Queue a recompute of the scope's report (``campaign`` id; None: all votes) if it is due
    (``quality_report_due``; a missing row is created queued). Returns whether it queued one; the
    task is enqueued once the transaction commits (``quality_report_enqueue``). One UPDATE when the
    row exists; a savepoint and an INSERT more when it does not (a new scope, or one a concurrent
    vote queued first: then the INSERT fails and nothing is queued)."""
    now = now or timezone.now()
    with transaction.atomic():
        claimed = QualityReport.objects.filter(_scope(campaign) & quality_report_due(now)).update(
            status=QualityReportStatus.QUEUED, queued_at=now, started_at=None)
        if not claimed:
            try:
                with transaction.atomic():  # a savepoint: the row may exist after all (not due)
                    QualityReport.objects.create(campaign_id=campaign, status=QualityReportStatus.QUEUED, queued_at=now)
            except IntegrityError:
                return False
        transaction.on_commit(lambda: quality_report_enqueue(campaign=campaign))
    return True


def quality_report_enqueue(*, campaign: int | None) -> None:
    """Enqueue ``feedback.tasks.quality_report_execute`` for the scope's queued report and store the
    task's id on its row. If the queue refuses, the row is marked failed with the error (rather than
    left pending until ``PENDING_EXPIRES``)."""
    from feedback.tasks import quality_report_execute

    report = QualityReport.objects.filter(_scope(campaign))
    try:
        result = quality_report_execute.enqueue(campaign)
    except Exception:
        logger.exception("could not enqueue the quality report recompute of campaign %s", campaign)
        report.update(status=QualityReportStatus.FAILED,
                      error="Could not queue the recompute:\n" + traceback.format_exc()[-4000:])
        return
    report.update(task_id=str(result.id))


def quality_reports_after_vote(*, campaign_id: int, overall: bool, campaign: bool) -> None:
    """After a vote in campaign ``campaign_id`` committed: queue the recomputes its first statement
    found due (``overall``: the all-votes report, ``campaign``: the campaign's). Never raises: a
    failure here is logged and the vote stands."""
    for scope, due in ((None, overall), (campaign_id, campaign)):
        if not due:
            continue
        try:
            quality_report_schedule(campaign=scope)
        except Exception:
            logger.exception("could not schedule the quality report recompute of campaign %s", scope)

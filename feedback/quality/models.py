"""Stored quality reports: the dashboards' figures, computed in the background and read per request.

One row per scope: a campaign, or ``campaign`` None for every vote (the overall report). The row
holds the last finished computation (``figures``, ``computed_at``, ``vote_count``, ``last_vote_id``)
and the state of the next one (``status``: queued or running while a recompute is pending, so a
second request does not queue another; succeeded or failed once it ends, with ``error``).
"""
from __future__ import annotations

from django.db import models
from django.db.models import Q
from django.db.models.functions import Coalesce


class QualityReportStatus(models.TextChoices):
    QUEUED = "queued", "queued"
    RUNNING = "running", "running"
    SUCCEEDED = "succeeded", "succeeded"
    FAILED = "failed", "failed"


class QualityReport(models.Model):
    """The stored quality figures of one campaign (or of all votes: ``campaign`` None).

    ``figures`` (JSON, ``feedback.quality.report.report_figures``): ``agreement`` (the agreement
    summary), ``bias`` (the bias summary without its per-annotator rows), ``annotators`` (one row per
    annotator, the dashboard's table), ``over_time`` (alpha per time bucket) and, when present,
    ``gold`` (per-annotator gold accuracy, written by the gold items feature).
    """

    campaign = models.ForeignKey("feedback.Campaign", null=True, blank=True, on_delete=models.CASCADE,
                                 related_name="quality_reports")
    status = models.CharField(max_length=10, choices=QualityReportStatus.choices, default=QualityReportStatus.QUEUED)
    error = models.TextField(blank=True, default="")
    computed_at = models.DateTimeField(null=True, blank=True, help_text="When the stored figures were computed.")
    vote_count = models.PositiveIntegerField(default=0, help_text="Votes the stored figures were computed on.")
    last_vote_id = models.BigIntegerField(null=True, blank=True, help_text="Newest vote id the figures include.")
    figures = models.JSONField(default=dict, blank=True)
    queued_at = models.DateTimeField(null=True, blank=True)
    started_at = models.DateTimeField(null=True, blank=True)
    task_id = models.CharField(max_length=64, blank=True, default="")

    class Meta:
        constraints = [
            models.UniqueConstraint(Coalesce("campaign", 0), name="quality_report_one_per_scope"),
            models.CheckConstraint(condition=Q(status__in=QualityReportStatus.values), name="quality_report_status_valid"),
        ]

    def __str__(self) -> str:
        return f"quality report of {self.campaign or 'all votes'}"

    @property
    def pending(self) -> bool:
        """A recompute is queued or running."""
        return self.status in (QualityReportStatus.QUEUED, QualityReportStatus.RUNNING)

    @property
    def error_summary(self) -> str:
        """The last line of ``error`` (a traceback's ends with the exception and its message); "" without one."""
        lines = [line.strip() for line in self.error.splitlines() if line.strip()]
        return lines[-1] if lines else ""

    @property
    def computed(self) -> bool:
        """Figures are stored (a computation has succeeded at least once)."""
        return self.computed_at is not None

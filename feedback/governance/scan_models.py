"""Personal-data scan rows: a scan (status and progress on our own row), its findings (detector,
field, span and a masked excerpt only: never the whole finding), and originals kept on redaction
where the row's policy allows it."""
from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q


class ScanStatus(models.TextChoices):
    QUEUED = "queued", "queued"
    RUNNING = "running", "running"
    SUCCEEDED = "succeeded", "succeeded"
    FAILED = "failed", "failed"


class PersonalDataScan(models.Model):
    """One scan of prompts, completions, vote rationales and demonstrations
    (``feedback.governance.scan.personal_data_scan_run``): ``scanned`` of ``total`` rows, ``found``
    findings recorded, ``names`` (one line: ``names scanned with spaCy model ...`` or ``names not
    scanned: <why>``), and its state (``error``: the traceback's tail when it failed)."""

    status = models.CharField(max_length=10, choices=ScanStatus.choices, default=ScanStatus.QUEUED)
    total = models.PositiveIntegerField(default=0)
    scanned = models.PositiveIntegerField(default=0)
    found = models.PositiveIntegerField(default=0)
    names = models.CharField(max_length=300, blank=True, default="",
                             help_text='Whether person names were scanned: what recognised them, or "names not scanned: <why>".')
    error = models.TextField(blank=True, default="")
    task_id = models.CharField(max_length=64, blank=True, default="")
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    heartbeat_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [models.CheckConstraint(condition=Q(status__in=ScanStatus.values), name="pd_scan_status_valid")]

    def __str__(self) -> str:
        return f"personal-data scan {self.pk} ({self.status})"

    @property
    def finished(self) -> bool:
        return self.status in (ScanStatus.SUCCEEDED, ScanStatus.FAILED)

    @property
    def names_scanned(self) -> bool:
        """Whether person names were looked for (``names`` does not start ``names not scanned``)."""
        return self.names.startswith("names scanned")


class FindingStatus(models.TextChoices):
    OPEN = "open", "open"
    CLEAN = "clean", "marked clean"
    REDACTED = "redacted", "redacted"


class RowKind(models.TextChoices):
    PROMPT = "prompt", "prompt"
    COMPLETION = "completion", "completion"
    VOTE = "vote", "vote rationale"
    DEMONSTRATION = "demonstration", "demonstration"


class PersonalDataFinding(models.Model):
    """One piece of personal data in one text field of one row.

    ``field``: ``text`` (completion, demonstration), ``rationale`` (vote) or ``messages.<i>.content``
    (prompt); ``start``/``end``: the span, in characters of that field; ``excerpt``: the masked
    finding (``feedback.governance.detectors.mask``), e.g. ``j***@e***.com``.
    """

    scan = models.ForeignKey(PersonalDataScan, null=True, blank=True, on_delete=models.SET_NULL, related_name="findings")
    row_kind = models.CharField(max_length=14, choices=RowKind.choices)
    row_id = models.PositiveBigIntegerField()
    field = models.CharField(max_length=40)
    detector = models.CharField(max_length=16)
    start = models.PositiveIntegerField()
    end = models.PositiveIntegerField()
    excerpt = models.CharField(max_length=80)
    status = models.CharField(max_length=10, choices=FindingStatus.choices, default=FindingStatus.OPEN)
    resolved_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    resolved_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["row_kind", "row_id", "field", "start"]
        indexes = [models.Index(fields=["row_kind", "row_id"], name="pd_finding_row"),
                   models.Index(fields=["status", "detector"], name="pd_finding_status")]
        constraints = [
            models.CheckConstraint(condition=Q(status__in=FindingStatus.values), name="pd_finding_status_valid"),
            models.CheckConstraint(condition=Q(end__gt=models.F("start")), name="pd_finding_span_valid"),
        ]


class RedactedOriginal(models.Model):
    """A field's text before redaction, kept only where the row's policy says
    ``keep_original_on_redaction``."""

    row_kind = models.CharField(max_length=14, choices=RowKind.choices)
    row_id = models.PositiveBigIntegerField()
    field = models.CharField(max_length=40)
    original = models.TextField()
    redacted_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    redacted_at = models.DateTimeField(auto_now_add=True)

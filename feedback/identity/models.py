"""Identity patterns, which comparisons they match, and the background scans that keep that current.

How a comparison's flag is stored (decided for issue 15 item 4):

- ``Comparison.identity_leak`` (indexed boolean): the flag every read uses (leaderboard, filters).
  It is true exactly when ``identity_leak_annotator`` is true or an ``IdentityMatch`` row exists.
- ``Comparison.identity_leak_annotator``: an annotator skipped it with the reason "reveals which
  model wrote it". Scans never clear it.
- ``IdentityMatch`` (comparison, pattern): which active patterns a response of it matches. A scan
  rewrites these; a deactivated pattern's rows are deleted at once.

Votes are not copied: a vote is "marked" when its comparison is flagged (``vote.comparison.identity_leak``).
"""
from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q


class PatternKind(models.TextChoices):
    WORD = "word", "word or phrase (whole words, any case)"
    REGEX = "regex", "regular expression (any case)"


class IdentityPattern(models.Model):
    """A word, phrase or regular expression that tells which model wrote a response
    (``feedback.identity.matcher`` says how each kind matches and which regexes are refused).
    ``scope`` empty: every completion; otherwise only completions whose ``model_name`` equals it."""

    text = models.CharField(max_length=300)
    kind = models.CharField(max_length=8, choices=PatternKind.choices, default=PatternKind.WORD)
    scope = models.CharField(max_length=200, blank=True, default="",
                             help_text="A model name: applies to that model's completions only. Empty: to every completion.")
    active = models.BooleanField(default=True)
    note = models.TextField(blank=True, default="")
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["scope", "text", "id"]
        constraints = [
            models.CheckConstraint(condition=Q(kind__in=PatternKind.values), name="identity_pattern_kind_valid"),
            models.CheckConstraint(condition=~Q(text=""), name="identity_pattern_text_set"),
            models.UniqueConstraint(fields=["text", "kind", "scope"], name="identity_pattern_unique"),
        ]

    def __str__(self) -> str:
        return f"{self.text!r} ({self.kind}, {self.scope or 'global'})"


class IdentityMatch(models.Model):
    """Pattern ``pattern`` matches a response of comparison ``comparison``."""

    comparison = models.ForeignKey("feedback.Comparison", on_delete=models.CASCADE, related_name="identity_matches")
    pattern = models.ForeignKey(IdentityPattern, on_delete=models.CASCADE, related_name="matches")

    class Meta:
        constraints = [models.UniqueConstraint(fields=["comparison", "pattern"], name="identity_match_unique")]
        indexes = [models.Index(fields=["pattern", "comparison"], name="identity_match_by_pattern")]


class IdentityScanStatus(models.TextChoices):
    QUEUED = "queued", "queued"
    RUNNING = "running", "running"
    SUCCEEDED = "succeeded", "succeeded"
    FAILED = "failed", "failed"


class IdentityScan(models.Model):
    """One re-scan of every comparison against the active patterns (``services.identity_rescan_run``):
    why it was asked for, how far it got (``scanned`` of ``total`` comparisons), what changed
    (``flagged``: comparisons newly flagged, ``unflagged``: no longer flagged), and its state."""

    reason = models.CharField(max_length=300, blank=True, default="")
    status = models.CharField(max_length=10, choices=IdentityScanStatus.choices, default=IdentityScanStatus.QUEUED)
    total = models.PositiveIntegerField(default=0)
    scanned = models.PositiveIntegerField(default=0)
    flagged = models.PositiveIntegerField(default=0)
    unflagged = models.PositiveIntegerField(default=0)
    error = models.TextField(blank=True, default="")
    task_id = models.CharField(max_length=64, blank=True, default="")
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    heartbeat_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.CheckConstraint(condition=Q(status__in=IdentityScanStatus.values), name="identity_scan_status_valid"),
        ]

    def __str__(self) -> str:
        return f"identity scan {self.pk} ({self.status})"

    @property
    def finished(self) -> bool:
        return self.status in (IdentityScanStatus.SUCCEEDED, IdentityScanStatus.FAILED)

    @property
    def percent(self) -> int:
        """Comparisons scanned as a share of the total, 0-100 (100 once succeeded)."""
        if self.status == IdentityScanStatus.SUCCEEDED:
            return 100
        return min(99, int(100 * self.scanned / self.total)) if self.total else 0

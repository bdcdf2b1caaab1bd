"""Governance rows: data-use policies, the policy record of each snapshot, personal-data scans and
their findings, originals kept on redaction, and the append-only audit trail.

Which policy is in force for a row (``feedback.governance.policies.PolicyBook``): its comparison's
campaign policy, else the policy of the import job that wrote it, else the policy of its prompt's
``source``, else none (every use allowed, no review required: today's behaviour).
"""
from __future__ import annotations

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models
from django.db.models import Q


class DataUse(models.TextChoices):
    ANNOTATION = "annotation", "annotation"
    EVALUATION = "evaluation", "evaluation"
    TRAINING = "training", "training"


class ReviewStatus(models.TextChoices):
    NOT_REVIEWED = "not_reviewed", "not reviewed"
    REVIEWED_CLEAN = "reviewed_clean", "reviewed clean"
    PERSONAL_DATA = "personal_data", "contains personal data"


class PolicyScope(models.TextChoices):
    SOURCE = "source", "prompt source (default)"
    IMPORT = "import", "import job"
    CAMPAIGN = "campaign", "campaign"


class DataPolicy(models.Model):
    """What data of one source, import job or campaign may be used for, and its handling terms.

    ``source`` (scope source): a ``Prompt.source`` string (``""``: prompts with no source);
    ``import_job`` (scope import): the votes that job wrote (its source, between its start and end);
    ``campaign`` (scope campaign): votes and demonstrations on that campaign's comparisons.
    ``keep_original_on_redaction``: redaction keeps the replaced text (``RedactedOriginal``).
    """

    scope = models.CharField(max_length=10, choices=PolicyScope.choices, default=PolicyScope.SOURCE)
    source = models.CharField(max_length=100, blank=True, default="")
    import_job = models.OneToOneField("feedback.ImportJob", null=True, blank=True, on_delete=models.CASCADE, related_name="data_policy")
    campaign = models.OneToOneField("feedback.Campaign", null=True, blank=True, on_delete=models.CASCADE, related_name="data_policy")
    allow_annotation = models.BooleanField(default=True)
    allow_evaluation = models.BooleanField(default=True)
    allow_training = models.BooleanField(default=True)
    basis = models.TextField(blank=True, default="", help_text='Why the data may be used, e.g. "customer consent, contract 12".')
    retention_days = models.PositiveIntegerField(null=True, blank=True, help_text="Keep the data this many days; empty: no limit.")
    review_status = models.CharField(max_length=16, choices=ReviewStatus.choices, default=ReviewStatus.NOT_REVIEWED)
    review_required = models.BooleanField(default=False, help_text="Refuse training on it until reviewed clean.")
    keep_original_on_redaction = models.BooleanField(default=False)
    updated_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["scope", "source", "id"]
        verbose_name_plural = "data policies"
        constraints = [
            models.CheckConstraint(condition=Q(scope__in=PolicyScope.values), name="data_policy_scope_valid"),
            models.CheckConstraint(condition=Q(review_status__in=ReviewStatus.values), name="data_policy_review_valid"),
            models.CheckConstraint(
                condition=(Q(scope="source", import_job__isnull=True, campaign__isnull=True)
                           | Q(scope="import", import_job__isnull=False, campaign__isnull=True)
                           | Q(scope="campaign", campaign__isnull=False, import_job__isnull=True)),
                name="data_policy_target_matches_scope",
            ),
            models.UniqueConstraint(fields=["source"], condition=Q(scope="source"), name="data_policy_one_per_source"),
        ]

    def __str__(self) -> str:
        return self.label

    def clean(self) -> None:
        """Keep only the target of the scope (a source name, an import job or a campaign).

        Raises:
            ValidationError: ``{"import_job" | "campaign": ...}`` when the scope's target is missing,
                ``{"source": ...}`` when the source has a policy already.
        """
        if self.scope != PolicyScope.IMPORT:
            self.import_job = None
        if self.scope != PolicyScope.CAMPAIGN:
            self.campaign = None
        self.source = "" if self.scope != PolicyScope.SOURCE else (self.source or "").strip()
        if self.scope == PolicyScope.IMPORT and self.import_job_id is None:
            raise ValidationError({"import_job": "an import policy names its import job"})
        if self.scope == PolicyScope.CAMPAIGN and self.campaign_id is None:
            raise ValidationError({"campaign": "a campaign policy names its campaign"})
        if self.scope == PolicyScope.SOURCE and DataPolicy.objects.filter(scope=PolicyScope.SOURCE, source=self.source).exclude(pk=self.pk).exists():
            raise ValidationError({"source": f'source "{self.source}" has a policy already; change that one'})

    @property
    def label(self) -> str:
        """The data it covers, in words: ``source "hh-rlhf"``, ``import job 4``, ``campaign 2``."""
        if self.scope == PolicyScope.IMPORT:
            return f"import job {self.import_job_id}"
        if self.scope == PolicyScope.CAMPAIGN:
            return f"campaign {self.campaign_id}"
        return f'source "{self.source}"'

    @property
    def allowed_uses(self) -> list[str]:
        return [use for use in DataUse.values if getattr(self, f"allow_{use}")]

    def allows(self, use: str) -> bool:
        return bool(getattr(self, f"allow_{use}"))

    def as_summary(self) -> dict:
        """The policy's terms as JSON (recorded on snapshots and in audit events)."""
        return {
            "policy_id": self.pk, "scope": self.scope, "label": self.label, "allowed_uses": self.allowed_uses,
            "basis": self.basis, "retention_days": self.retention_days, "review_status": self.review_status,
            "review_required": self.review_required, "keep_original_on_redaction": self.keep_original_on_redaction,
        }


class SnapshotPolicy(models.Model):
    """The policies in force when a snapshot was built (``summary``: ``policies.PolicyCheck.summary``)
    and, when an admin built it against them, the written justification."""

    snapshot = models.OneToOneField("feedback.DatasetSnapshot", on_delete=models.CASCADE, related_name="policy_record")
    summary = models.JSONField(default=dict)
    override_justification = models.TextField(blank=True, default="")
    override_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)


from .scan_models import (  # noqa: E402,F401
    FindingStatus,
    PersonalDataFinding,
    PersonalDataScan,
    RedactedOriginal,
    RowKind,
    ScanStatus,
)
from .audit_models import AuditAction, AuditEvent, AuditEventQuerySet, AuditImmutable  # noqa: E402,F401
from .deletion_models import SnapshotDeletedData  # noqa: E402,F401

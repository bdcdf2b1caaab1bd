"""The append-only audit trail: exports and downloads, policy changes, overrides, run launches,
deletions and role changes (``feedback.governance.audit.audit_record`` writes them).

Append-only: saving an existing row, deleting a row, and ``update()``/``delete()`` on a queryset
raise ``AuditImmutable``; the Django admin has no change or delete permission. (A deleted user's
events keep ``actor_id`` and ``actor_name`` unchanged.)
"""
from __future__ import annotations

from django.conf import settings
from django.db import models


class AuditImmutable(Exception):
    """An audit event was about to be changed or deleted."""


class AuditEventQuerySet(models.QuerySet):
    def update(self, **kwargs):
        raise AuditImmutable("audit events are append-only; they cannot be updated")

    def delete(self):
        raise AuditImmutable("audit events are append-only; they cannot be deleted")


class AuditAction(models.TextChoices):
    EXPORT_CREATE = "export.create", "export created"
    EXPORT_DOWNLOAD = "export.download", "export downloaded"
    POLICY_CREATE = "policy.create", "policy created"
    POLICY_UPDATE = "policy.update", "policy changed"
    POLICY_DELETE = "policy.delete", "policy deleted"
    POLICY_OVERRIDE = "policy.override", "policy overridden"
    RUN_LAUNCH = "run.launch", "training run launched"
    FINDING_CLEAN = "finding.clean", "row marked clean"
    FINDING_REDACT = "finding.redact", "row redacted"
    DELETION = "deletion", "data deleted"
    SNAPSHOT_REBUILD = "snapshot.rebuild", "snapshot rebuilt after a deletion"
    ROLE_CHANGE = "role.change", "role changed"


class AuditEvent(models.Model):
    """Who (``actor``, ``actor_name``) did what (``action``) to which object (``object_type``,
    ``object_id``), when (``at``), from where (``remote_addr``), with ``details`` (JSON)."""

    at = models.DateTimeField(auto_now_add=True, db_index=True)
    # No database constraint and no cascade: deleting a user changes no event (the id and
    # ``actor_name`` stay as they were).
    actor = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.DO_NOTHING,
                              db_constraint=False, related_name="+")
    actor_name = models.CharField(max_length=150, blank=True, default="")
    action = models.CharField(max_length=32, choices=AuditAction.choices, db_index=True)
    object_type = models.CharField(max_length=40, blank=True, default="")
    object_id = models.CharField(max_length=64, blank=True, default="")
    details = models.JSONField(default=dict, blank=True)
    remote_addr = models.GenericIPAddressField(null=True, blank=True)

    objects = AuditEventQuerySet.as_manager()

    class Meta:
        ordering = ["-at", "-id"]

    def __str__(self) -> str:
        return f"{self.at:%Y-%m-%d %H:%M:%S} {self.actor_name or 'system'} {self.action} {self.object_type} {self.object_id}"

    def save(self, *args, **kwargs):
        if self.pk is not None and not self._state.adding:
            raise AuditImmutable("audit events are append-only; an existing one cannot be saved again")
        super().save(*args, **kwargs)

    def delete(self, *args, **kwargs):
        raise AuditImmutable("audit events are append-only; they cannot be deleted")

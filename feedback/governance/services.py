"""Writes of data-use policies (each change audited with the terms before and after)."""
from __future__ import annotations

from typing import Any

from django.core.exceptions import ValidationError
from django.db import transaction

from .audit import audit_record
from .models import AuditAction, DataPolicy

POLICY_FIELDS = (
    "scope", "source", "import_job", "campaign", "allow_annotation", "allow_evaluation", "allow_training", "basis",
    "retention_days", "review_status", "review_required", "keep_original_on_redaction",
)


def data_policy_save(
    *, values: dict[str, Any], policy: DataPolicy | None = None, user=None, remote_addr: str | None = None,
) -> DataPolicy:
    """Create a policy (``policy`` None) or change one, and audit it (``policy.create`` /
    ``policy.update`` with the terms before and after).

    Args:
        values: any of ``POLICY_FIELDS`` (``import_job``/``campaign`` as instances or ids).
    Raises:
        ValidationError: ``{field: [message]}``: a scope without its target, a second policy for
            the same source, import job or campaign, a bad review status, a negative retention.
    """
    unknown = sorted(set(values) - set(POLICY_FIELDS))
    if unknown:
        raise ValidationError({name: "unknown field" for name in unknown})
    creating = policy is None
    policy = policy or DataPolicy()
    before = None if creating else DataPolicy.objects.get(pk=policy.pk).as_summary()
    for name, value in values.items():
        if name in ("import_job", "campaign") and value is not None and not hasattr(value, "pk"):
            setattr(policy, f"{name}_id", int(value))
        else:
            setattr(policy, name, value)
    policy.updated_by = user if getattr(user, "is_authenticated", False) else None
    policy.full_clean()
    with transaction.atomic():
        policy.save()
        audit_record(action=AuditAction.POLICY_CREATE if creating else AuditAction.POLICY_UPDATE, user=user, obj=policy,
                     remote_addr=remote_addr, details={"before": before, "after": policy.as_summary()})
    return policy


def data_policy_delete(*, policy: DataPolicy, user=None, remote_addr: str | None = None) -> None:
    """Delete a policy (its data falls back to the next policy in force, or none), audited."""
    with transaction.atomic():
        audit_record(action=AuditAction.POLICY_DELETE, user=user, obj=policy, remote_addr=remote_addr,
                     details={"before": policy.as_summary()})
        policy.delete()

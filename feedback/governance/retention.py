"""Retention (issue 18 item 6): each data-use policy's ``retention_days`` applied to the votes and
demonstrations it governs (``policies.PolicyBook`` precedence), and rebuilding a snapshot that
holds deleted data.

``retention_enforce`` deletes rows older than their policy's period the way an annotator's data is
deleted (``deletion.deletion_apply``: removed, snapshots marked, files deleted), one transaction and
one audit event per policy. It is idempotent: what it deleted is gone, so a second run finds nothing
and says so (and writes no audit event).
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from feedback.models import DatasetSnapshot, Demonstration, SnapshotKind, Vote

from .audit import audit_record
from .deletion import DeletionPlan, deletion_apply, rows_deletion_plan
from .models import AuditAction, DataPolicy, SnapshotDeletedData
from .policies import PolicyBook, demonstration_facts, vote_facts


@dataclass
class RetentionResult:
    """Per policy label (``source "x"``, ``campaign 2``): the counts deleted (or, dry run, to delete)."""

    per_policy: dict[str, dict[str, int]]
    dry_run: bool

    @property
    def nothing(self) -> bool:
        return not self.per_policy

    def lines(self) -> list[str]:
        """A report, one line a policy, or one line saying there was nothing to do."""
        if self.nothing:
            return ["retention: nothing past its retention period; nothing deleted"]
        verb = "would delete" if self.dry_run else "deleted"
        return [f"{label}: {verb} {c['votes']} votes, {c['demonstrations']} demonstrations, {c['vote_changes']} vote changes; "
                f"{c['snapshots_marked']} snapshots marked, {c['export_files']} export files removed"
                for label, c in self.per_policy.items()]


def retention_plans(*, now=None) -> list[tuple[DataPolicy, DeletionPlan]]:
    """For each policy with a retention period, the rows it governs created before ``now - days``."""
    now = now or timezone.now()
    policies = [p for p in DataPolicy.objects.filter(retention_days__isnull=False)]
    if not policies:
        return []
    book = PolicyBook()
    oldest_cutoff = max(now - timedelta(days=p.retention_days) for p in policies)
    cutoffs = {p.pk: now - timedelta(days=p.retention_days) for p in policies}
    votes: dict[int, list[int]] = {p.pk: [] for p in policies}
    demos: dict[int, list[int]] = {p.pk: [] for p in policies}
    for model, facts_of, found in ((Vote, vote_facts, votes), (Demonstration, demonstration_facts, demos)):
        ids = list(model.objects.filter(created_at__lt=oldest_cutoff).order_by("pk").values_list("pk", flat=True))
        for row_id, facts in zip(ids, facts_of(ids)):
            policy = book.policy_for(facts)
            if policy is not None and policy.pk in cutoffs and facts.created_at < cutoffs[policy.pk]:
                found[policy.pk].append(row_id)
    plans = []
    for policy in policies:
        if votes[policy.pk] or demos[policy.pk]:
            plans.append((policy, rows_deletion_plan(what=f"retention of {policy.label} ({policy.retention_days} days)",
                                                     vote_ids=votes[policy.pk], demonstration_ids=demos[policy.pk])))
    return plans


def retention_enforce(*, dry_run: bool = False, user=None, now=None) -> RetentionResult:
    """Delete every row past its policy's retention period (see the module docstring).

    Returns: what was (``dry_run``: would be) deleted, per policy.
    """
    per_policy = {}
    for policy, plan in retention_plans(now=now):
        per_policy[policy.label] = plan.counts() if dry_run else deletion_apply(plan=plan, kind="retention", user=user)
    return RetentionResult(per_policy=per_policy, dry_run=dry_run)


def snapshot_rebuild(*, snapshot_id: int, user=None, remote_addr: str | None = None) -> DatasetSnapshot:
    """Build a new snapshot with the same kind and rules from the current data (the existing
    snapshot services), record it as the marked snapshot's ``rebuilt_as`` and audit it.

    An override justification recorded on the old snapshot is used again (``user`` must be an admin then).
    Raises:
        LookupError: no such snapshot. ValidationError: ``{"snapshot": "snapshot 3 holds no deleted
            data; nothing to rebuild"}``, or the snapshot services' errors (no rows, policy refusals).
    """
    from feedback import snapshots

    snapshot = snapshots.snapshot_load(snapshot_id=snapshot_id)
    mark = SnapshotDeletedData.objects.filter(snapshot=snapshot).first()
    if mark is None:
        raise ValidationError({"snapshot": f"snapshot {snapshot.pk} holds no deleted data; nothing to rebuild"})
    record = getattr(snapshot, "policy_record", None)
    override = (record.override_justification if record else "") or None
    create = snapshots.sft_snapshot_create if snapshot.kind == SnapshotKind.SFT else snapshots.snapshot_create
    new = create(rules=snapshot.rules, created_by=user, policy_override=override)
    try:
        with transaction.atomic():
            mark.rebuilt_as = new
            mark.save(update_fields=["rebuilt_as", "marked_at"])
            audit_record(action=AuditAction.SNAPSHOT_REBUILD, user=user, obj=snapshot, remote_addr=remote_addr,
                         details={"rebuilt_as": new.pk, "rules": snapshot.rules, "kind": snapshot.kind})
    except BaseException:
        snapshots.snapshot_files_discard(files_dir=new.files_dir)
        new.delete()
        raise
    return new

"""Where the policies are enforced: the snapshot builders (``feedback.snapshots``, which training
runs reach through ``feedback.interface.snapshot_create``) and exports. Each call site makes one
call here; the rules live in ``policies``."""
from __future__ import annotations

from collections.abc import Sequence

from django.db.models import QuerySet

from .audit import audit_record
from .models import AuditAction, DataPolicy, SnapshotPolicy
from .policies import PolicyCheck, demonstration_facts, policy_check, vote_facts


def snapshot_policy_check(
    *, vote_ids: Sequence[int], demonstration_ids: Sequence[int] = (), override: str | None = None, user=None,
) -> PolicyCheck:
    """Check a snapshot's rows before it is written (rows on train prompts for training, on eval
    prompts for evaluation).

    Raises:
        ValidationError: ``{"policy": [...]}`` naming the sources and row counts refused, or
            ``{"policy_override": ...}`` (see ``policies.policy_check``); nothing is written.
    """
    facts = [*vote_facts(vote_ids), *demonstration_facts(demonstration_ids)]
    return policy_check(facts, what="the snapshot", override=override, user=user)


def snapshot_policy_record(*, snapshot, check: PolicyCheck, user=None) -> SnapshotPolicy:
    """Record the policies in force on ``snapshot`` (and an override, with an audit event).
    Called inside the transaction that creates the snapshot."""
    overridden = check.summary()["overridden"]
    record = SnapshotPolicy.objects.create(
        snapshot=snapshot, summary=check.summary(),
        override_justification=check.override_justification if overridden else "",
        override_by=user if overridden else None,
    )
    if overridden:
        audit_record(action=AuditAction.POLICY_OVERRIDE, user=user, obj=snapshot,
                     details={"justification": check.override_justification, "refused": check.refusals})
    return record


def export_policy_check(
    *, votes: QuerySet, splits: Sequence[str] = ("train", "eval"), override: str | None = None, user=None,
) -> PolicyCheck:
    """Check the votes an export will read (``feedback.exports.stream.votes_matching``) on prompts
    of the exported ``splits``: rows on train prompts for training, on eval prompts for evaluation.

    Raises:
        ValidationError: as ``snapshot_policy_check``; nothing is recorded.
    """
    if not DataPolicy.objects.exists():  # no policy: every use allowed; spare a big export the read
        return PolicyCheck(groups=[])
    ids = list(votes.order_by().values_list("pk", flat=True))
    facts = (fact for fact in vote_facts(ids) if fact.split in splits)
    return policy_check(facts, what="the export", override=override, user=user)


def export_audit(*, export, check: PolicyCheck, user=None, remote_addr: str | None = None) -> None:
    """Audit a new export (its format, filters, vote count and the policies in force), and its
    policy override when one was needed. Called inside the transaction that creates it."""
    summary = check.summary()
    audit_record(action=AuditAction.EXPORT_CREATE, user=user, obj=export, remote_addr=remote_addr, details={
        "format": export.format, "file_type": export.file_type, "filters": export.filters,
        "votes_total": export.votes_total, "policies": summary["groups"],
    })
    if summary["overridden"]:
        audit_record(action=AuditAction.POLICY_OVERRIDE, user=user, obj=export, remote_addr=remote_addr,
                     details={"justification": check.override_justification, "refused": check.refusals})


def download_audit(*, export, user=None, request=None) -> None:
    """Audit one download of an export's file."""
    audit_record(action=AuditAction.EXPORT_DOWNLOAD, user=user, obj=export, request=request,
                 details={"format": export.format, "file_type": export.file_type, "checksum": export.checksum})


def snapshot_policy_recheck(*, snapshot_id: int, override: str | None = None, user=None) -> None:
    """Check an existing snapshot's rows against the policies in force now, before a run reuses it
    (policies may have changed since it was built). A snapshot built with an override stays
    usable; a new override is recorded on the snapshot and audited.

    Raises:
        ValidationError: as ``snapshot_policy_check``, naming the sources and row counts.
    """
    from feedback.models import SnapshotDemonstration, SnapshotVote

    record = SnapshotPolicy.objects.filter(snapshot_id=snapshot_id).first()
    if record is not None and record.override_justification:
        return
    vote_ids = list(SnapshotVote.objects.filter(snapshot_id=snapshot_id, vote__isnull=False).values_list("vote_id", flat=True))
    demonstration_ids = list(SnapshotDemonstration.objects.filter(snapshot_id=snapshot_id).values_list("demonstration_id", flat=True))
    check = snapshot_policy_check(vote_ids=vote_ids, demonstration_ids=demonstration_ids, override=override, user=user)
    if check.summary()["overridden"]:
        SnapshotPolicy.objects.update_or_create(snapshot_id=snapshot_id, defaults={
            "summary": check.summary(), "override_justification": check.override_justification,
            "override_by": user if getattr(user, "is_authenticated", False) else None,
        })
        audit_record(action=AuditAction.POLICY_OVERRIDE, user=user, object_type="datasetsnapshot", object_id=snapshot_id,
                     details={"justification": check.override_justification, "refused": check.refusals, "reused": True})

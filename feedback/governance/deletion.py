"""Deleting data on request (issue 18 item 6): one annotator's data, one source's data, or the rows
past their policy's retention period (``feedback.governance.retention``).

What is done (chosen: **removed**, not anonymised, so a rebuilt snapshot is free of them):

- an annotator: their votes (with their rationales), their demonstrations, their vote change
  history (``VoteChange``, which holds rationales before and after) and their assignments are
  deleted; their account is kept but scrubbed (username ``deleted-user-<id>``, no name or e-mail,
  no password, inactive), so audit rows and ``created_by`` links name nobody;
- a source: every prompt whose ``Prompt.source`` is that name, with its completions, comparisons,
  votes, assignments, vote changes and demonstrations (database cascades);
- in both: personal-data findings and kept originals of the deleted rows, and the lineage rows
  (``SnapshotVote``, ``SnapshotDemonstration``) of the snapshots that used them. Each such snapshot
  is marked "contains deleted data" (``SnapshotDeletedData``) and **its files are deleted** from the
  data folder (it needs a rebuild: ``snapshot_rebuild``); export files that may hold a deleted vote
  (any export whose ``vote_id_max`` reaches a deleted vote) are deleted too and the export says why.
  Comparisons that lost votes get their ``vote_count`` recounted and reopen when short of votes.

Everything happens in one transaction with one audit event (``deletion``). Folders and files are
first renamed aside inside the transaction (put back if it fails) and removed once it commits.
"""
from __future__ import annotations

import os
import shutil
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import transaction
from django.db.models import Count
from django.utils import timezone

from feedback.models import (
    Assignment,
    Comparison,
    ComparisonStatus,
    DatasetSnapshot,
    Demonstration,
    Export,
    ExportStatus,
    Prompt,
    SnapshotDemonstration,
    SnapshotVote,
    Vote,
    VoteChange,
)

from .audit import audit_record
from .models import AuditAction, PersonalDataFinding, RedactedOriginal, RowKind, SnapshotDeletedData

CHUNK = 2000


class DeletionTargetUnknown(LookupError):
    """The annotator or source named in a deletion request does not exist (message: one readable line)."""


@dataclass
class DeletionPlan:
    """The rows one deletion removes (ids), and what it touches (snapshots, exports)."""

    what: str  # stored (marks, audit, exports): 'annotator user 12', 'source "hh-rlhf"', 'retention of source "x" (30 days)'
    label: str = ""  # shown to the operator who asked (may name the user); defaults to ``what``
    vote_ids: list[int] = field(default_factory=list)
    demonstration_ids: list[int] = field(default_factory=list)
    prompt_ids: list[int] = field(default_factory=list)
    comparison_ids: list[int] = field(default_factory=list)
    assignment_ids: list[int] = field(default_factory=list)
    vote_change_ids: list[int] = field(default_factory=list)
    user_id: int | None = None
    snapshot_ids: list[int] = field(default_factory=list)
    export_ids: list[int] = field(default_factory=list)

    @property
    def empty(self) -> bool:
        return not (self.vote_ids or self.demonstration_ids or self.prompt_ids or self.assignment_ids or self.vote_change_ids)

    def counts(self) -> dict[str, int]:
        """``{"prompts", "comparisons", "votes", "demonstrations", "assignments", "vote_changes",
        "snapshots_marked", "export_files"}``: how many of each it removes or marks."""
        return {"prompts": len(self.prompt_ids), "comparisons": len(self.comparison_ids), "votes": len(self.vote_ids),
                "demonstrations": len(self.demonstration_ids), "assignments": len(self.assignment_ids),
                "vote_changes": len(self.vote_change_ids), "snapshots_marked": len(self.snapshot_ids),
                "export_files": len(self.export_ids)}

    def summary(self) -> str:
        """One line: ``annotator "ann": 3 votes, 1 demonstrations, ... removed; 2 snapshots marked``."""
        counts = self.counts()
        return f"{self.label or self.what}: " + ", ".join(f"{n} {name.replace('_', ' ')}" for name, n in counts.items())


def _ids(queryset) -> list[int]:
    return sorted(queryset.values_list("pk", flat=True))


def _touched(plan: DeletionPlan) -> DeletionPlan:
    """Fill in the snapshots and exports that hold any of the plan's votes or demonstrations."""
    snapshots: set[int] = set()
    for start in range(0, len(plan.vote_ids), CHUNK):
        snapshots.update(SnapshotVote.objects.filter(vote_id__in=plan.vote_ids[start:start + CHUNK]).values_list("snapshot_id", flat=True))
    for start in range(0, len(plan.demonstration_ids), CHUNK):
        chunk = plan.demonstration_ids[start:start + CHUNK]
        snapshots.update(SnapshotDemonstration.objects.filter(demonstration_id__in=chunk).values_list("snapshot_id", flat=True))
    plan.snapshot_ids = sorted(snapshots)
    if plan.vote_ids:
        exports = Export.objects.filter(vote_id_max__gte=min(plan.vote_ids)).exclude(file_path="")
        plan.export_ids = _ids(exports)
    return plan


def annotator_deletion_plan(*, username: str) -> DeletionPlan:
    """What deleting this annotator's data removes.

    The stored description names the user by id only (``annotator user 12``), never by username.
    Raises:
        DeletionTargetUnknown: ``no annotator named "x"``; ``annotator "deleted-user-12" was deleted already``.
    """
    user = get_user_model().objects.filter(username=username).first()
    if user is None or not (username or "").strip():
        raise DeletionTargetUnknown(f'no annotator named "{username}"')
    if user.username == f"deleted-user-{user.pk}":
        raise DeletionTargetUnknown(f'annotator "{username}" was deleted already')
    plan = DeletionPlan(what=f"annotator user {user.pk}", label=f'annotator "{username}"', user_id=user.pk)
    plan.vote_ids = _ids(Vote.objects.filter(annotator=user))
    plan.demonstration_ids = _ids(Demonstration.objects.filter(annotator=user))
    plan.assignment_ids = _ids(Assignment.objects.filter(annotator=user))
    plan.vote_change_ids = _ids(VoteChange.objects.filter(annotator=user))
    plan.comparison_ids = sorted(set(Vote.objects.filter(annotator=user).values_list("comparison_id", flat=True)))
    return _touched(plan)


def source_deletion_plan(*, source: str) -> DeletionPlan:
    """What deleting every prompt of ``Prompt.source == source`` (and all that hangs on them) removes.

    Raises:
        DeletionTargetUnknown: ``no prompts with source "x"`` (an empty name is refused too).
    """
    name = (source or "").strip()
    prompts = Prompt.objects.filter(source=name)
    if not name or not prompts.exists():
        raise DeletionTargetUnknown(f'no prompts with source "{source}"')
    plan = DeletionPlan(what=f'source "{name}"', prompt_ids=_ids(prompts))
    plan.comparison_ids = _ids(Comparison.objects.filter(prompt__source=name))
    plan.vote_ids = _ids(Vote.objects.filter(comparison__prompt__source=name))
    plan.demonstration_ids = _ids(Demonstration.objects.filter(prompt__source=name))
    plan.assignment_ids = _ids(Assignment.objects.filter(comparison__prompt__source=name))
    plan.vote_change_ids = _ids(VoteChange.objects.filter(comparison__prompt__source=name))
    return _touched(plan)


def rows_deletion_plan(*, what: str, vote_ids: Iterable[int], demonstration_ids: Iterable[int]) -> DeletionPlan:
    """A plan for given votes and demonstrations (retention), with their vote change history."""
    plan = DeletionPlan(what=what, vote_ids=sorted(vote_ids), demonstration_ids=sorted(demonstration_ids))
    plan.vote_change_ids = _ids(VoteChange.objects.filter(vote_id__in=plan.vote_ids)) if plan.vote_ids else []
    plan.comparison_ids = sorted(set(Vote.objects.filter(pk__in=plan.vote_ids).values_list("comparison_id", flat=True)))
    return _touched(plan)


def _aside(path: Path, moved: list[tuple[Path, Path]]) -> None:
    """Rename ``path`` to a hidden name beside it (removed after commit, put back on failure)."""
    if path.exists():
        target = path.with_name(f".deleting-{path.name}")
        os.rename(path, target)
        moved.append((path, target))


def _files_aside(plan: DeletionPlan, moved: list[tuple[Path, Path]]) -> None:
    root = Path(settings.ARBITER_DATA_DIR).resolve()
    for snapshot in DatasetSnapshot.objects.filter(pk__in=plan.snapshot_ids):
        folder = (root / snapshot.files_dir).resolve()
        if snapshot.files_dir and folder.parent.parent == root:
            _aside(folder, moved)
    for export in Export.objects.filter(pk__in=plan.export_ids):
        path = (root / export.file_path).resolve()
        if root in path.parents:
            _aside(path, moved)
        export.file_path, export.size_bytes, export.status = "", None, ExportStatus.FAILED
        export.error = f"file deleted on {timezone.now():%Y-%m-%d}: it may have held data since deleted ({plan.what})"
        export.save(update_fields=["file_path", "size_bytes", "status", "error"])


def _per_snapshot(model, column: str, ids: list[int]) -> dict[int, int]:
    """How many of ``ids`` each snapshot's lineage rows (``model``) hold, counted in chunks."""
    found: dict[int, int] = {}
    for start in range(0, len(ids), CHUNK):
        rows = model.objects.filter(**{f"{column}__in": ids[start:start + CHUNK]}).values_list("snapshot_id").annotate(n=Count("id"))
        for snapshot_id, n in rows:
            found[snapshot_id] = found.get(snapshot_id, 0) + n
    return found


def _mark_snapshots(plan: DeletionPlan, reason: str) -> None:
    votes = _per_snapshot(SnapshotVote, "vote_id", plan.vote_ids)
    demos = _per_snapshot(SnapshotDemonstration, "demonstration_id", plan.demonstration_ids)
    for snapshot_id in plan.snapshot_ids:
        mark, _ = SnapshotDeletedData.objects.get_or_create(snapshot_id=snapshot_id)
        mark.reasons = [*mark.reasons, reason]
        mark.votes_removed += votes.get(snapshot_id, 0)
        mark.demonstrations_removed += demos.get(snapshot_id, 0)
        mark.files_removed = True
        mark.save()


def _remove_rows(plan: DeletionPlan) -> None:
    for start in range(0, len(plan.vote_ids), CHUNK):
        chunk = plan.vote_ids[start:start + CHUNK]
        SnapshotVote.objects.filter(vote_id__in=chunk).delete()
        PersonalDataFinding.objects.filter(row_kind=RowKind.VOTE, row_id__in=chunk).delete()
        RedactedOriginal.objects.filter(row_kind=RowKind.VOTE, row_id__in=chunk).delete()
    for start in range(0, len(plan.demonstration_ids), CHUNK):
        chunk = plan.demonstration_ids[start:start + CHUNK]
        SnapshotDemonstration.objects.filter(demonstration_id__in=chunk).delete()
        PersonalDataFinding.objects.filter(row_kind=RowKind.DEMONSTRATION, row_id__in=chunk).delete()
        RedactedOriginal.objects.filter(row_kind=RowKind.DEMONSTRATION, row_id__in=chunk).delete()
    for model, ids in ((VoteChange, plan.vote_change_ids), (Vote, plan.vote_ids), (Demonstration, plan.demonstration_ids),
                       (Assignment, plan.assignment_ids)):
        for start in range(0, len(ids), CHUNK):  # SQLite caps the variables of one query
            model.objects.filter(pk__in=ids[start:start + CHUNK]).delete()
    if plan.prompt_ids:
        completions = Prompt.objects.filter(pk__in=plan.prompt_ids).values_list("completions__id", flat=True)
        for kind, ids in ((RowKind.PROMPT, plan.prompt_ids), (RowKind.COMPLETION, [c for c in completions if c])):
            PersonalDataFinding.objects.filter(row_kind=kind, row_id__in=ids).delete()
            RedactedOriginal.objects.filter(row_kind=kind, row_id__in=ids).delete()
        Prompt.objects.filter(pk__in=plan.prompt_ids).delete()
    else:
        _recount(plan.comparison_ids)


def _recount(comparison_ids: list[int]) -> None:
    """Set each comparison's ``vote_count`` from its votes; a complete one short of votes reopens."""
    counted = dict(Vote.objects.filter(comparison_id__in=comparison_ids).values_list("comparison_id").annotate(n=Count("id")))
    for comparison in Comparison.objects.filter(pk__in=comparison_ids):
        comparison.vote_count = counted.get(comparison.pk, 0)
        if comparison.status == ComparisonStatus.COMPLETE and comparison.vote_count < comparison.votes_required:
            comparison.status = ComparisonStatus.OPEN
        comparison.save(update_fields=["vote_count", "status"])


def _scrub_user(user_id: int) -> None:
    user = get_user_model().objects.get(pk=user_id)
    user.username = f"deleted-user-{user.pk}"
    for name in ("first_name", "last_name", "email"):
        if hasattr(user, name):
            setattr(user, name, "")
    user.is_active = False
    user.set_unusable_password()
    user.save()


def deletion_apply(*, plan: DeletionPlan, kind: str, user=None, remote_addr: str | None = None) -> dict[str, int]:
    """Carry out a plan in one transaction and audit it (``deletion``, details: kind, what, counts,
    snapshot ids marked). ``kind``: ``annotator``, ``source`` or ``retention``.

    Returns: ``plan.counts()``.
    Raises: OSError when a file cannot be moved aside (nothing is changed then).
    """
    reason = f"{timezone.now():%Y-%m-%d}: {plan.what} deleted ({kind})"
    moved: list[tuple[Path, Path]] = []
    try:
        with transaction.atomic():
            _mark_snapshots(plan, reason)
            _remove_rows(plan)
            if plan.user_id is not None:
                _scrub_user(plan.user_id)
            audit_record(action=AuditAction.DELETION, user=user, object_type=kind, object_id=plan.user_id or plan.what[:64],
                         remote_addr=remote_addr,
                         details={"kind": kind, "what": plan.what, "counts": plan.counts(), "snapshots": plan.snapshot_ids})
            _files_aside(plan, moved)
            transaction.on_commit(lambda: [shutil.rmtree(t) if t.is_dir() else t.unlink() for _, t in moved])
    except BaseException:
        for original, target in reversed(moved):
            if target.exists() and not original.exists():
                os.rename(target, original)
        raise
    return plan.counts()

"""Deleting data on request (issue 18 item 6): one annotator's data, one source's data, or the rows
past their policy's retention period (``feedback.governance.retention``: prompts, completions,
votes and demonstrations).

What is done (chosen: **removed**, not anonymised, so a rebuilt snapshot is free of them):

- an annotator: their votes (with their rationales), their demonstrations, their vote change
  history (``VoteChange``, which holds rationales before and after) and their assignments are
  deleted; their account is kept but scrubbed (username ``deleted-user-<id>``, no name or e-mail,
  no password, inactive), so audit rows and ``created_by`` links name nobody;
- a source: every prompt whose ``Prompt.source`` is that name, with its completions, comparisons,
  votes, assignments, vote changes and demonstrations;
- given rows (``rows_deletion_plan``, retention): prompts with all of the above; completions with
  every comparison that shows them (a comparison never outlives one of its completions) and those
  comparisons' votes, assignments and vote changes (a demonstration hangs on its prompt, not on a
  completion: it stays, its ``comparison`` link cleared); votes and demonstrations on their own;
- in both: what other apps keep about the deleted comparisons (``feedback.signals.comparisons_deleted``:
  the training app's judge calls and verdicts, whose answers may quote the deleted texts; counted
  as ``judge_calls``/``judge_verdicts``), personal-data findings and kept originals of the deleted rows, and the lineage rows
  (``SnapshotVote``, ``SnapshotDemonstration``) of the snapshots that used them. Each such snapshot
  is marked "contains deleted data" (``SnapshotDeletedData``) and **its files are deleted** from the
  data folder (it needs a rebuild: ``snapshot_rebuild``); export files that may hold a deleted vote
  (any export whose ``vote_id_max`` reaches a deleted vote) are deleted too and the export says why.
  Comparisons that lost votes but stay get their ``vote_count`` recounted and reopen when short of votes.

Everything happens in one transaction with one audit event (``deletion``). Folders and files are
first renamed aside inside the transaction (put back if it fails) and removed once it commits.
The rows are locked and looked at again inside the transaction, so the same request sent twice (a
double click, two cron runs at once) deletes once: the second finds them gone (``DeletionTargetUnknown``).
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
from django.db.models import Count, Model
from django.utils import timezone

from feedback.models import (
    Assignment,
    Comparison,
    ComparisonStatus,
    DatasetSnapshot,
    Demonstration,
    Export,
    ExportStatus,
    Completion,
    Prompt,
    SnapshotDemonstration,
    SnapshotVote,
    Vote,
    VoteChange,
)
from feedback.signals import comparisons_deleted

from .audit import audit_record
from .models import AuditAction, PersonalDataFinding, RedactedOriginal, RowKind, SnapshotDeletedData

CHUNK = 2000


class DeletionTargetUnknown(LookupError):
    """The annotator or source named in a deletion request does not exist (message: one readable line)."""


@dataclass
class DeletionPlan:
    """The rows one deletion removes (ids), and what it touches (snapshots, exports).

    ``comparison_ids``: the comparisons removed (with a prompt or a completion);
    ``recount_ids``: comparisons that stay but lose votes (their ``vote_count`` is recounted).
    """

    what: str  # stored (marks, audit, exports): 'annotator user 12', 'source "hh-rlhf"', 'retention of source "x" (30 days)'
    label: str = ""  # shown to the operator who asked (may name the user); defaults to ``what``
    vote_ids: list[int] = field(default_factory=list)
    demonstration_ids: list[int] = field(default_factory=list)
    prompt_ids: list[int] = field(default_factory=list)
    completion_ids: list[int] = field(default_factory=list)
    comparison_ids: list[int] = field(default_factory=list)
    recount_ids: list[int] = field(default_factory=list)
    assignment_ids: list[int] = field(default_factory=list)
    vote_change_ids: list[int] = field(default_factory=list)
    user_id: int | None = None
    snapshot_ids: list[int] = field(default_factory=list)
    export_ids: list[int] = field(default_factory=list)
    derived: dict[str, int] = field(default_factory=dict)  # other apps' rows on the comparisons ({"judge_calls": n})

    @property
    def empty(self) -> bool:
        return not (self.vote_ids or self.demonstration_ids or self.prompt_ids or self.completion_ids
                    or self.assignment_ids or self.vote_change_ids)

    def counts(self) -> dict[str, int]:
        """``{"prompts", "completions", "comparisons", "votes", "demonstrations", "assignments",
        "vote_changes", "snapshots_marked", "export_files"}`` and ``derived`` (e.g. ``judge_calls``,
        ``judge_verdicts``, where there are any): how many of each it removes or marks."""
        return {"prompts": len(self.prompt_ids), "completions": len(self.completion_ids),
                "comparisons": len(self.comparison_ids), "votes": len(self.vote_ids),
                "demonstrations": len(self.demonstration_ids), "assignments": len(self.assignment_ids),
                "vote_changes": len(self.vote_change_ids), "snapshots_marked": len(self.snapshot_ids),
                "export_files": len(self.export_ids), **self.derived}

    def summary(self) -> str:
        """One line: ``annotator "ann": 3 votes, 1 demonstrations, ... removed; 2 snapshots marked``."""
        counts = self.counts()
        return f"{self.label or self.what}: " + ", ".join(f"{n} {name.replace('_', ' ')}" for name, n in counts.items())


def _ids(queryset) -> list[int]:
    return sorted(queryset.values_list("pk", flat=True))


def _ids_where(model: type[Model], column: str, values: list[int]) -> set[int]:
    """Ids of ``model`` rows whose ``column`` is one of ``values``, in chunks (SQLite caps the variables of one query)."""
    found: set[int] = set()
    for start in range(0, len(values), CHUNK):
        found.update(model.objects.filter(**{f"{column}__in": values[start:start + CHUNK]}).values_list("pk", flat=True))
    return found


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
    plan.recount_ids = sorted(set(Vote.objects.filter(annotator=user).values_list("comparison_id", flat=True)))
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
    return rows_deletion_plan(what=f'source "{name}"', prompt_ids=_ids(prompts))


def rows_deletion_plan(*, what: str, vote_ids: Iterable[int] = (), demonstration_ids: Iterable[int] = (),
                       prompt_ids: Iterable[int] = (), completion_ids: Iterable[int] = ()) -> DeletionPlan:
    """A plan for given rows (retention, a source) and everything that hangs on them.

    Args:
        prompt_ids: prompts removed with their completions, comparisons, votes, assignments, vote
            changes and demonstrations.
        completion_ids: completions removed with every comparison showing them (and its votes,
            assignments and vote changes).
        vote_ids, demonstration_ids: removed on their own (with a vote's change history).
    Returns:
        The plan, ids sorted; a comparison that only loses votes is in ``recount_ids``.
    """
    plan = DeletionPlan(what=what, prompt_ids=sorted(set(prompt_ids)))
    plan.completion_ids = sorted(set(completion_ids) | _ids_where(Completion, "prompt_id", plan.prompt_ids))
    comparisons = _ids_where(Comparison, "prompt_id", plan.prompt_ids)
    comparisons |= _ids_where(Comparison, "completion_a_id", plan.completion_ids)
    comparisons |= _ids_where(Comparison, "completion_b_id", plan.completion_ids)
    plan.comparison_ids = sorted(comparisons)
    plan.derived = _derived(plan.comparison_ids, delete=False)
    plan.vote_ids = sorted(set(vote_ids) | _ids_where(Vote, "comparison_id", plan.comparison_ids))
    plan.demonstration_ids = sorted(set(demonstration_ids) | _ids_where(Demonstration, "prompt_id", plan.prompt_ids))
    plan.assignment_ids = sorted(_ids_where(Assignment, "comparison_id", plan.comparison_ids))
    plan.vote_change_ids = sorted(_ids_where(VoteChange, "comparison_id", plan.comparison_ids)
                                  | _ids_where(VoteChange, "vote_id", plan.vote_ids))
    voted_on: set[int] = set()
    for start in range(0, len(plan.vote_ids), CHUNK):
        voted_on.update(Vote.objects.filter(pk__in=plan.vote_ids[start:start + CHUNK]).values_list("comparison_id", flat=True))
    plan.recount_ids = sorted(voted_on - comparisons)
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


def _delete_chunked(model: type[Model], ids: list[int]) -> None:
    for start in range(0, len(ids), CHUNK):
        model.objects.filter(pk__in=ids[start:start + CHUNK]).delete()


def _forget(kind: str, ids: list[int]) -> None:
    """Drop the personal-data findings and kept originals of these rows."""
    for start in range(0, len(ids), CHUNK):
        chunk = ids[start:start + CHUNK]
        PersonalDataFinding.objects.filter(row_kind=kind, row_id__in=chunk).delete()
        RedactedOriginal.objects.filter(row_kind=kind, row_id__in=chunk).delete()


def _derived(comparison_ids: list[int], *, delete: bool) -> dict[str, int]:
    """What other apps keep about these comparisons, summed over ``comparisons_deleted``'s receivers
    (``delete``: delete it too; else only count it)."""
    derived: dict[str, int] = {}
    if comparison_ids:
        for _, counts in comparisons_deleted.send(sender=DeletionPlan, comparison_ids=comparison_ids, delete=delete):
            for name, n in (counts or {}).items():
                derived[name] = derived.get(name, 0) + n
    return derived


def _remove_rows(plan: DeletionPlan) -> None:
    for start in range(0, len(plan.vote_ids), CHUNK):
        SnapshotVote.objects.filter(vote_id__in=plan.vote_ids[start:start + CHUNK]).delete()
    for start in range(0, len(plan.demonstration_ids), CHUNK):
        SnapshotDemonstration.objects.filter(demonstration_id__in=plan.demonstration_ids[start:start + CHUNK]).delete()
    for kind, ids in ((RowKind.VOTE, plan.vote_ids), (RowKind.DEMONSTRATION, plan.demonstration_ids),
                      (RowKind.COMPLETION, plan.completion_ids), (RowKind.PROMPT, plan.prompt_ids)):
        _forget(kind, ids)
    for model, ids in ((VoteChange, plan.vote_change_ids), (Vote, plan.vote_ids), (Demonstration, plan.demonstration_ids),
                       (Assignment, plan.assignment_ids), (Comparison, plan.comparison_ids),
                       (Completion, plan.completion_ids), (Prompt, plan.prompt_ids)):
        _delete_chunked(model, ids)
    _recount(plan.recount_ids)
    plan.derived = _derived(plan.comparison_ids, delete=True)


def _recount(comparison_ids: list[int]) -> None:
    """Set each comparison's ``vote_count`` from its votes; a complete one short of votes reopens."""
    for start in range(0, len(comparison_ids), CHUNK):
        chunk = comparison_ids[start:start + CHUNK]
        counted = dict(Vote.objects.filter(comparison_id__in=chunk).values_list("comparison_id").annotate(n=Count("id")))
        for comparison in Comparison.objects.filter(pk__in=chunk):
            comparison.vote_count = counted.get(comparison.pk, 0)
            if comparison.status == ComparisonStatus.COMPLETE and comparison.vote_count < comparison.votes_required:
                comparison.status = ComparisonStatus.OPEN
            comparison.save(update_fields=["vote_count", "status"])


def _still_there(plan: DeletionPlan) -> bool:
    """Lock what the plan deletes and say whether it is still there (False: a request like it ran first).

    An annotator: their account, not yet scrubbed. Rows: any of the plan's prompts, completions,
    votes or demonstrations (the first chunk of each is locked; a second deletion of the same rows
    waits here for the first to commit).
    """
    if plan.user_id is not None:
        account = get_user_model().objects.select_for_update().filter(pk=plan.user_id).first()
        return account is not None and account.get_username() != f"deleted-user-{account.pk}"
    found = False
    for model, ids in ((Prompt, plan.prompt_ids), (Completion, plan.completion_ids), (Vote, plan.vote_ids),
                       (Demonstration, plan.demonstration_ids)):
        if ids and list(model.objects.select_for_update().filter(pk__in=ids[:CHUNK]).values_list("pk", flat=True)):
            found = True
    return found


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

    Returns: ``plan.counts()`` (with what other apps deleted with the comparisons: ``judge_calls``,
    ``judge_verdicts`` where a judge had answered on them).
    Raises:
        DeletionTargetUnknown: ``annotator "ann" was deleted already`` (or ``source "x" ...``) when
            an earlier request deleted it first (nothing is changed, no audit event).
        OSError: a file cannot be moved aside (nothing is changed then).
    """
    reason = f"{timezone.now():%Y-%m-%d}: {plan.what} deleted ({kind})"
    moved: list[tuple[Path, Path]] = []
    try:
        with transaction.atomic():
            if (plan.user_id is not None or not plan.empty) and not _still_there(plan):
                raise DeletionTargetUnknown(f"{plan.label or plan.what} was deleted already")
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

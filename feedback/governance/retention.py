"""Retention (issue 18 item 6): each data-use policy's ``retention_days`` applied to the prompts,
completions, votes and demonstrations it governs, and rebuilding a snapshot that holds deleted data.

Which policy governs what (``policies.PolicyBook``), and from when a row ages:

- a **vote or demonstration**: its comparison's campaign policy, else the import job's that wrote
  it, else its prompt source's; it ages from its own ``created_at``;
- a **prompt**: the policy of the import job that imported it (same source, created between the
  job's start and finish), else its source's policy. A campaign policy never governs a prompt (a
  prompt may be shown in many campaigns; the campaign's policy governs the votes given there). It
  ages from its own ``created_at`` and goes with everything on it: completions, comparisons,
  votes, assignments, vote changes, demonstrations, findings and kept originals;
- a **completion**: its prompt's policy, ageing from the completion's own ``created_at``; it goes
  with every comparison that shows it (and their votes, assignments and vote changes).
- **eval-set prompts are kept**: a prompt whose messages are exactly an eval-set item's (the rows
  ``feedback.evalsets.evaluation.eval_set_prompts_ensure`` reuses or creates for evaluations) is
  not deleted by retention. An eval set is frozen and versioned, has no policy of its own, and
  holds its own copy of each prompt's text, which nothing deletes: deleting the row would remove
  no text but would pull the prompt from under every evaluation of that set. What hangs on such a
  prompt still ages by the rules above: its completions (model outputs, e.g. an evaluation's
  generations) under the prompt's policy, its votes and demonstrations under theirs. The report
  counts the eval-set prompts kept past their period.

``retention_enforce`` deletes rows older than their policy's period the way an annotator's data is
deleted (``deletion.deletion_apply``: removed, snapshots marked, files deleted), one transaction and
one audit event per policy; a row a prompt or completion takes with it is counted under that
prompt's policy only. It is idempotent: what it deleted is gone, so a second run finds nothing and
says so (and writes no audit event).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import Exists, OuterRef
from django.utils import timezone

from feedback.evalsets.models import EvalSetItem
from feedback.models import Completion, DatasetSnapshot, Demonstration, Prompt, SnapshotKind, Vote

from .audit import audit_record
from .deletion import CHUNK, DeletionPlan, DeletionTargetUnknown, deletion_apply, rows_deletion_plan
from .models import AuditAction, DataPolicy, SnapshotDeletedData
from .policies import PolicyBook, RowFacts, demonstration_facts, vote_facts


@dataclass
class RetentionResult:
    """Per policy label (``source "x"``, ``campaign 2``): the counts deleted (or, dry run, to delete),
    and how many eval-set prompts past their period were kept."""

    per_policy: dict[str, dict[str, int]]
    dry_run: bool
    eval_set_prompts_kept: int = 0

    @property
    def nothing(self) -> bool:
        return not self.per_policy

    def lines(self) -> list[str]:
        """A report, one line a policy (or one line saying there was nothing to do), then the eval-set prompts kept."""
        kept = (f"kept {self.eval_set_prompts_kept} eval-set prompts past their retention period "
                "(eval sets are frozen; retention does not delete their prompts)")
        if self.nothing:
            if self.eval_set_prompts_kept:
                return ["retention: nothing deleted", kept]
            return ["retention: nothing past its retention period; nothing deleted"]
        verb = "would delete" if self.dry_run else "deleted"
        lines = [f"{label}: {verb} {c['prompts']} prompts, {c['completions']} completions, {c['comparisons']} comparisons, "
                 f"{c['votes']} votes, {c['demonstrations']} demonstrations, {c['vote_changes']} vote changes; "
                 f"{c['snapshots_marked']} snapshots marked, {c['export_files']} export files removed"
                 for label, c in self.per_policy.items()]
        return lines + ([kept] if self.eval_set_prompts_kept else [])


@dataclass
class _Expired:
    """The rows past one policy's period, by kind (ids)."""

    prompts: list[int] = field(default_factory=list)
    completions: list[int] = field(default_factory=list)
    votes: list[int] = field(default_factory=list)
    demonstrations: list[int] = field(default_factory=list)


def _prompt_facts(source: str, split: str, created_at: datetime) -> RowFacts:
    """What picks a prompt's policy: no campaign; its source, as the row's source for an import window."""
    return RowFacts(prompt_source=source, split=split, campaign_id=None, row_source=source, created_at=created_at)


def _eval_set_prompt():
    """Whether a prompt's messages are exactly an eval-set item's (an annotation on ``Prompt``)."""
    return Exists(EvalSetItem.objects.filter(messages_sha256=OuterRef("messages_sha256")))


def _expired_prompts(book: PolicyBook, cutoffs: dict[int, datetime], oldest: datetime,
                     found: dict[int, _Expired]) -> tuple[set[int], int]:
    """File each prompt past its policy's period under that policy; returns (their ids, eval-set prompts kept)."""
    expired: set[int] = set()
    kept = 0
    rows = (Prompt.objects.filter(created_at__lt=oldest).annotate(in_eval_set=_eval_set_prompt()).order_by("pk")
            .values_list("pk", "source", "split", "created_at", "in_eval_set"))
    for pk, source, split, created_at, in_eval_set in rows.iterator(chunk_size=CHUNK):
        policy = book.policy_for(_prompt_facts(source, split, created_at))
        if policy is None or policy.pk not in cutoffs or created_at >= cutoffs[policy.pk]:
            continue
        if in_eval_set:
            kept += 1
        else:
            found[policy.pk].prompts.append(pk)
            expired.add(pk)
    return expired, kept


def _expired_completions(book: PolicyBook, cutoffs: dict[int, datetime], oldest: datetime,
                         found: dict[int, _Expired], expired_prompts: set[int]) -> None:
    """File each completion past its prompt's policy's period (a prompt going anyway takes it along)."""
    rows = (Completion.objects.filter(created_at__lt=oldest).order_by("pk").values_list("pk", "created_at", "prompt_id", "prompt__source", "prompt__split", "prompt__created_at"))
    for pk, created_at, prompt_id, source, split, prompt_created_at in rows.iterator(chunk_size=CHUNK):
        if prompt_id in expired_prompts:
            continue
        policy = book.policy_for(_prompt_facts(source, split, prompt_created_at))
        if policy is not None and policy.pk in cutoffs and created_at < cutoffs[policy.pk]:
            found[policy.pk].completions.append(pk)


def _expired_votes_and_demonstrations(book: PolicyBook, cutoffs: dict[int, datetime], oldest: datetime,
                                      found: dict[int, _Expired]) -> None:
    for model, facts_of, kind in ((Vote, vote_facts, "votes"), (Demonstration, demonstration_facts, "demonstrations")):
        ids = list(model.objects.filter(created_at__lt=oldest).order_by("pk").values_list("pk", flat=True))
        for row_id, facts in zip(ids, facts_of(ids)):
            policy = book.policy_for(facts)
            if policy is not None and policy.pk in cutoffs and facts.created_at < cutoffs[policy.pk]:
                getattr(found[policy.pk], kind).append(row_id)


def retention_plans(*, now=None) -> tuple[list[tuple[DataPolicy, DeletionPlan]], int]:
    """For each policy with a retention period, the plan deleting the rows it governs created
    before ``now - days`` (module docstring), and how many eval-set prompts past their period are kept.

    Returns: ``([(policy, plan), ...], eval_set_prompts_kept)``; policies with nothing to delete are left out.
    """
    now = now or timezone.now()
    policies = list(DataPolicy.objects.filter(retention_days__isnull=False))
    if not policies:
        return [], 0
    book = PolicyBook()
    cutoffs = {p.pk: now - timedelta(days=p.retention_days) for p in policies}
    oldest = max(cutoffs.values())
    found = {p.pk: _Expired() for p in policies}
    expired_prompts, kept = _expired_prompts(book, cutoffs, oldest, found)
    _expired_completions(book, cutoffs, oldest, found, expired_prompts)
    _expired_votes_and_demonstrations(book, cutoffs, oldest, found)
    plans: dict[int, DeletionPlan] = {}
    taken_votes: set[int] = set()
    taken_demonstrations: set[int] = set()
    for policy in policies:  # prompts and completions first: what they take along is theirs
        rows = found[policy.pk]
        if rows.prompts or rows.completions:
            plans[policy.pk] = rows_deletion_plan(what="", prompt_ids=rows.prompts, completion_ids=rows.completions)
            taken_votes.update(plans[policy.pk].vote_ids)
            taken_demonstrations.update(plans[policy.pk].demonstration_ids)
    result = []
    for policy in policies:
        rows = found[policy.pk]
        votes = [v for v in rows.votes if v not in taken_votes]
        demonstrations = [d for d in rows.demonstrations if d not in taken_demonstrations]
        what = f"retention of {policy.label} ({policy.retention_days} days)"
        plan = plans.get(policy.pk)
        if votes or demonstrations:
            plan = rows_deletion_plan(what=what, prompt_ids=rows.prompts, completion_ids=rows.completions,
                                      vote_ids=votes, demonstration_ids=demonstrations)
        if plan is not None:
            plan.what = what
            result.append((policy, plan))
    return result, kept


def retention_enforce(*, dry_run: bool = False, user=None, now=None) -> RetentionResult:
    """Delete every row past its policy's retention period (see the module docstring).

    Returns: what was (``dry_run``: would be) deleted, per policy, and the eval-set prompts kept.
    A policy whose rows another run deleted meanwhile is left out of the report.
    """
    per_policy = {}
    plans, kept = retention_plans(now=now)
    for policy, plan in plans:
        if dry_run:
            per_policy[policy.label] = plan.counts()
            continue
        try:
            per_policy[policy.label] = deletion_apply(plan=plan, kind="retention", user=user)
        except DeletionTargetUnknown:
            continue  # deleted by a run alongside this one
    return RetentionResult(per_policy=per_policy, dry_run=dry_run, eval_set_prompts_kept=kept)


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

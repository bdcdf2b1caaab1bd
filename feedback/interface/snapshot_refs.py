"""Dataset snapshots as plain references: create, read, verify, discard; the agreement ceiling. Part of ``feedback.interface``."""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from django.conf import settings

from .. import snapshots
from ..models import DatasetSnapshot, Demonstration, Vote
from ..quality.ceiling import agreement_ceiling as ceiling_of


@dataclass(frozen=True)
class SnapshotRef:
    """A frozen preference dataset as a runner needs it.

    ``train_path``/``eval_path`` are absolute paths of JSONL files, one TRL conversational
    preference row a line: ``{"prompt": [...], "chosen": [{"role": "assistant", ...}],
    "rejected": [...], "margin": float (only if rules["include_margin"]), "strength": str,
    "comparison_id": int}`` (see ``feedback.preferences``). ``counts`` holds
    ``feedback.preferences.COUNT_KEYS`` (plus ``QUALITY_COUNT_KEYS`` when the rules set a quality
    rule or Dawid-Skene, and then ``"annotator_reliability"``: ``{annotator id as str: 0..1}``);
    ``rules`` the normalised ``AggregationRules.as_dict()``; ``quality_notes`` says in words what
    the quality rules left out or relabelled.
    """

    id: int
    train_path: Path
    eval_path: Path
    train_rows: int
    eval_rows: int
    vote_count: int
    annotator_count: int
    content_hash: str
    rules: dict[str, Any]
    counts: dict[str, int]
    created_at: datetime
    kind: str = "preference"  # or "sft": prompt/completion rows of demonstrations
    # The data-use policies in force when it was built (``feedback.governance.policies.PolicyCheck.summary``)
    # and an admin's justification when it was built against them ("" when not).
    policy_summary: dict[str, Any] = field(default_factory=dict)
    policy_override: str = ""
    # Data it used was deleted since (``feedback.governance.deletion``): one line a deletion; its
    # files are gone and it needs a rebuild (``deleted_data_rebuilt_as``: the rebuilt snapshot's id).
    deleted_data: tuple[str, ...] = ()
    deleted_data_rebuilt_as: int | None = None

    @property
    def contains_deleted_data(self) -> bool:
        """True when data it was built from has been deleted (its files are gone)."""
        return bool(self.deleted_data)

    @property
    def quality_notes(self) -> list[str]:
        """What the quality rules left out or relabelled, in words (``feedback.quality.rules.quality_notes``)."""
        from ..quality.rules import quality_notes

        return quality_notes(self.counts)

    @property
    def eval_set_note(self) -> str:
        """``"3 comparisons left out: their prompts are in an eval set"`` (``"rows"`` for an SFT
        snapshot), from ``counts["eval_set_excluded"]``; ``""`` when none was left out."""
        from ..evalsets.exclusion import eval_set_note

        return eval_set_note(self.counts.get("eval_set_excluded") or 0, noun="row" if self.kind == "sft" else "comparison")

    @property
    def vote_choice(self) -> str:
        """Whose votes the rows come from, in words (``feedback.vote_origins.vote_choice_words``):
        "human votes only", "AI votes only" or "human and AI votes (AI weight 0.5)"."""
        from ..vote_origins import vote_choice_words

        return vote_choice_words(self.rules)


def _snapshot_ref(snapshot: DatasetSnapshot) -> SnapshotRef:
    train_path, eval_path = snapshots.snapshot_paths(snapshot)
    return SnapshotRef(
        id=snapshot.pk,
        train_path=train_path,
        eval_path=eval_path,
        train_rows=snapshot.train_rows,
        eval_rows=snapshot.eval_rows,
        vote_count=snapshots.snapshot_vote_count(snapshot_id=snapshot.pk),
        annotator_count=snapshot.annotator_count,
        content_hash=snapshot.content_hash,
        rules=dict(snapshot.rules),
        counts=dict(snapshot.counts),
        created_at=snapshot.created_at,
        kind=snapshot.kind,
        **_snapshot_policy(snapshot),
        **_snapshot_deleted_data(snapshot),
    )


def _snapshot_deleted_data(snapshot: DatasetSnapshot) -> dict[str, Any]:
    from ..governance.models import SnapshotDeletedData

    mark = SnapshotDeletedData.objects.filter(snapshot_id=snapshot.pk).first()
    if mark is None:
        return {}
    return {"deleted_data": tuple(mark.reasons) or ("data deleted",), "deleted_data_rebuilt_as": mark.rebuilt_as_id}


def snapshots_with_deleted_data(*, snapshot_ids: Sequence[int]) -> set[int]:
    """Which of these snapshots hold data deleted since they were built (checkpoints trained on
    them are flagged in lineage)."""
    from ..governance.models import SnapshotDeletedData

    return set(SnapshotDeletedData.objects.filter(snapshot_id__in=list(snapshot_ids)).values_list("snapshot_id", flat=True))


def _snapshot_policy(snapshot: DatasetSnapshot) -> dict[str, Any]:
    from ..governance.models import SnapshotPolicy

    record = SnapshotPolicy.objects.filter(snapshot_id=snapshot.pk).first()
    if record is None:
        return {}
    return {"policy_summary": dict(record.summary), "policy_override": record.override_justification}


def snapshot_create(*, rules: Mapping[str, Any] | None, created_by=None, policy_override: str | None = None) -> SnapshotRef:
    """Freeze the preference dataset of every vote under ``rules`` (see ``feedback.snapshots.snapshot_create``).

    ``policy_override``: an admin's written justification for using data its data-use policy
    refuses (recorded on the snapshot); None or "": none.
    Raises:
        ValidationError: ``{"rules": [...]}`` for bad rules, ``{"snapshot": ...}`` when the votes
            give no training pairs, ``{"policy": [...]}`` naming the sources and row counts the
            data-use policies refuse, ``{"policy_override": ...}`` for a bad justification.
    """
    return _snapshot_ref(snapshots.snapshot_create(rules=rules, created_by=created_by, policy_override=policy_override))


def sft_snapshot_create(*, rules: Mapping[str, Any] | None, created_by=None, policy_override: str | None = None) -> SnapshotRef:
    """Freeze the SFT dataset of every demonstration (and, by default, every strongly chosen
    response) under ``rules`` as a snapshot of kind ``"sft"`` (see
    ``feedback.snapshots.sft_snapshot_create``; rules are ``feedback.demonstrations.SFTRules``).

    The ref's files hold one row a line: ``{"prompt": [msgs], "completion": [{"role": "assistant",
    "content": str}], "source": str, "demonstration_id": int | None, "comparison_id": int | None}``;
    ``vote_count`` counts the votes behind strongly chosen rows; ``counts`` holds
    ``feedback.demonstrations.SFT_COUNT_KEYS``.
    Raises:
        ValidationError: ``{"rules": [...]}`` for bad rules, ``{"snapshot": "no demonstrations ..."}``
            when nothing gives a training row; ``{"policy": [...]}`` as ``snapshot_create``.
    """
    return _snapshot_ref(snapshots.sft_snapshot_create(rules=rules, created_by=created_by, policy_override=policy_override))


def demonstration_count() -> int:
    """How many demonstrations exist (written on comparison pages or imported), for pages."""
    return Demonstration.objects.count()


def snapshot_get(*, snapshot_id: int) -> SnapshotRef:
    """The snapshot with this id.

    Raises:
        LookupError: ``"no dataset snapshot with id <id>"``.
    """
    return _snapshot_ref(snapshots.snapshot_load(snapshot_id=snapshot_id))


def snapshot_votes_summary(*, snapshot_id: int) -> dict[str, Any]:
    """``{"vote_count": int, "annotator_count": int, "sources": {source: vote count}}`` for lineage
    pages, plus ``human_vote_count``, ``ai_vote_count`` and ``judges`` when the snapshot used AI votes.

    Raises:
        LookupError: no such snapshot.
    """
    return snapshots.snapshot_votes_summary(snapshot_id=snapshot_id)


EVAL_FILE_MISSING = "the snapshot's eval file is missing"


def agreement_ceiling(*, snapshot_id: int, comparison_ids: Sequence[int] | None = None) -> dict[str, Any]:
    """The human agreement ceiling on a snapshot's eval comparisons: how often an annotator agrees
    with the other annotators' strict majority, a-vs-b only (``feedback.quality.ceiling``, whose
    docstring states the rules), with its 95 % Wilson interval and ``n`` (votes scored).

    The comparisons are those of the snapshot's eval rows (``eval.jsonl``), the pairs a reward
    run's held-out accuracy is measured on; ``comparison_ids`` narrows them to the pairs a run kept
    (ids not among the eval rows are ignored). The votes are the snapshot's frozen ones
    (``SnapshotVote.frozen``), so the figure does not move when votes are cast, revised or undone
    later. Undefined (``{"value": None, "defined": False, "reason": ...}``, never NaN) when no eval
    comparison has two or more votes, or the eval file is missing.

    Raises:
        LookupError: ``"no dataset snapshot with id <id>"``.
    """
    try:
        eval_ids = set(snapshots.snapshot_eval_comparison_ids(snapshot_id=snapshot_id))
    except FileNotFoundError:
        return {**ceiling_of([], [], [], what="eval comparison"), "reason": EVAL_FILE_MISSING}
    if comparison_ids is not None:
        eval_ids &= set(comparison_ids)
    votes = snapshots.snapshot_frozen_votes(snapshot_id=snapshot_id, comparison_ids=eval_ids)
    comparisons, annotators, choices = zip(*votes) if votes else ((), (), ())
    return ceiling_of(comparisons, annotators, choices, what="eval comparison")


def snapshot_verify(*, snapshot_id: int) -> bool:
    """True when the snapshot's files still hash to its ``content_hash`` (False if a file is missing).

    Raises:
        LookupError: no such snapshot.
    """
    return snapshots.snapshot_verify(snapshot_id=snapshot_id)


def snapshots_recent(*, limit: int = 50) -> list[SnapshotRef]:
    """The newest ``limit`` dataset snapshots, newest first (for launch forms)."""
    return [_snapshot_ref(snapshot) for snapshot in DatasetSnapshot.objects.order_by("-created_at", "-id")[:limit]]


def annotator_choices() -> list[tuple[int, str]]:
    """``(user id, username)`` of every person who has voted, by username: whose votes a snapshot may
    leave out. AI judges' system users are not annotators (their votes are chosen by ``votes``)."""
    from django.contrib.auth import get_user_model

    voters = Vote.objects.filter(origin="human").values("annotator_id").distinct()
    return list(get_user_model().objects.filter(pk__in=voters).order_by("username").values_list("pk", "username"))


def snapshot_files_discard(*, snapshot: SnapshotRef) -> None:
    """Remove the folder of a snapshot whose row a caller's transaction rolled back (a run that
    was refused after its snapshot was built), so nothing is half-written."""
    snapshots.snapshot_files_discard(files_dir=str(snapshot.train_path.parent.relative_to(settings.ARBITER_DATA_DIR)))


def preference_rules_check(*, rules: Mapping[str, Any], kind: str = "preference") -> None:
    """Validate snapshot rules without building anything (``kind`` ``preference`` or ``sft``).

    Raises:
        ValidationError: ``{"rules": ["field: message", ...]}``.
    """
    if kind == "sft":
        snapshots.sft_rules_parse(rules)
    else:
        snapshots.rules_parse(rules)

"""Which data-use policy is in force for each vote or demonstration, and the check that refuses a
use the policies do not allow (snapshots, exports, training runs).

Precedence: the comparison's campaign policy, else the policy of the import job that wrote the row
(same source, created between the job's start and finish), else the prompt source's policy, else
none: every use allowed, no review required (today's behaviour).

Uses by split: a row on a ``train`` prompt is used for ``training``, a row on an ``eval`` prompt for
``evaluation``, unless the caller names one use for everything.
"""
from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from django.core.exceptions import ValidationError

from config.wording import counted
from feedback.imports import DEFAULT_SOURCE
from feedback.models import Demonstration, ImportJob, Vote

from .models import DataPolicy, DataUse, PolicyScope, ReviewStatus

CHUNK = 2000  # ids per ``__in`` query (SQLite caps the number of SQL variables)
MIN_JUSTIFICATION_CHARS = 20
NO_POLICY = "no policy"
SPLIT_USE = {"train": DataUse.TRAINING, "eval": DataUse.EVALUATION}


@dataclass(frozen=True)
class RowFacts:
    """What decides a row's policy: its prompt's source and split, its comparison's campaign (or
    None), its own source (votes, demonstrations) and when it was written."""

    prompt_source: str
    split: str
    campaign_id: int | None
    row_source: str
    created_at: datetime | None


class PolicyBook:
    """Every policy, loaded once, answering ``policy_for(facts)`` without further queries."""

    def __init__(self, policies: Iterable[DataPolicy] | None = None):
        policies = list(DataPolicy.objects.all() if policies is None else policies)
        self.by_source = {p.source: p for p in policies if p.scope == PolicyScope.SOURCE}
        self.by_campaign = {p.campaign_id: p for p in policies if p.scope == PolicyScope.CAMPAIGN}
        imports = [p for p in policies if p.scope == PolicyScope.IMPORT]
        jobs = ImportJob.objects.in_bulk([p.import_job_id for p in imports]) if imports else {}
        self.imports = []
        for policy in imports:
            job = jobs.get(policy.import_job_id)
            if job is not None and job.started_at is not None:
                source = (job.options or {}).get("source") or DEFAULT_SOURCE.get(job.format, "")
                self.imports.append((policy, source, job.started_at, job.finished_at))

    @property
    def empty(self) -> bool:
        return not (self.by_source or self.by_campaign or self.imports)

    def policy_for(self, facts: RowFacts) -> DataPolicy | None:
        """The policy in force for one row (precedence in the module docstring), or None."""
        if facts.campaign_id is not None and facts.campaign_id in self.by_campaign:
            return self.by_campaign[facts.campaign_id]
        if facts.created_at is not None:
            for policy, source, started, finished in self.imports:
                if facts.row_source == source and started <= facts.created_at and (finished is None or facts.created_at <= finished):
                    return policy
        return self.by_source.get(facts.prompt_source)


def _chunks(ids: Sequence[int]) -> Iterator[Sequence[int]]:
    for start in range(0, len(ids), CHUNK):
        yield ids[start:start + CHUNK]


def vote_facts(vote_ids: Sequence[int]) -> Iterator[RowFacts]:
    """``RowFacts`` of each vote id (chunked queries; a missing id is skipped)."""
    columns = ("comparison__prompt__source", "comparison__prompt__split", "comparison__campaign_id", "source", "created_at")
    for chunk in _chunks(list(vote_ids)):
        for row in Vote.objects.filter(pk__in=chunk).values_list(*columns):
            yield RowFacts(*row)


def demonstration_facts(demonstration_ids: Sequence[int]) -> Iterator[RowFacts]:
    """``RowFacts`` of each demonstration id (campaign through its comparison, if any)."""
    columns = ("prompt__source", "prompt__split", "comparison__campaign_id", "source", "created_at")
    for chunk in _chunks(list(demonstration_ids)):
        for row in Demonstration.objects.filter(pk__in=chunk).values_list(*columns):
            yield RowFacts(*row)


@dataclass
class PolicyGroup:
    """The rows under one policy (or under none, keyed by prompt source): rows per use."""

    label: str
    policy: DataPolicy | None
    rows: dict[str, int] = field(default_factory=dict)

    def problems(self) -> list[str]:
        """Why these rows may not be used as counted, in words (empty: allowed)."""
        if self.policy is None:
            return []
        found = []
        for use, count in sorted(self.rows.items()):
            if not self.policy.allows(use):
                found.append(f"{counted(count, 'row')} for {use}, which its policy does not allow")
        needs_review = any(use != DataUse.ANNOTATION for use in self.rows)
        if needs_review and self.policy.review_required and self.policy.review_status != ReviewStatus.REVIEWED_CLEAN:
            status = ReviewStatus(self.policy.review_status).label
            total = sum(self.rows.values())
            found.append(f"{counted(total, 'row')} {'needs' if total == 1 else 'need'} a personal-data review first ({status})")
        return found

    def as_summary(self) -> dict[str, Any]:
        terms = self.policy.as_summary() if self.policy else {"policy_id": None, "label": self.label, "allowed_uses": list(DataUse.values),
                                                                "review_required": False, "review_status": None}
        review = ReviewStatus(self.policy.review_status).label if self.policy else ""
        return terms | {"label": self.label, "review": review, "rows": dict(sorted(self.rows.items())), "problems": self.problems()}


@dataclass
class PolicyCheck:
    """The outcome of ``policy_check``: groups by policy, the refusals, and any override."""

    groups: list[PolicyGroup]
    override_justification: str = ""

    @property
    def refusals(self) -> list[str]:
        return [f"{group.label}: {'; '.join(group.problems())}" for group in self.groups if group.problems()]

    def summary(self) -> dict[str, Any]:
        """JSON for ``SnapshotPolicy.summary``: ``{"groups": [...], "refused": [...], "overridden": bool}``."""
        return {"groups": [group.as_summary() for group in self.groups], "refused": self.refusals,
                "overridden": bool(self.override_justification and self.refusals)}


def policy_groups(facts: Iterable[RowFacts], *, use: str | None = None, book: PolicyBook | None = None) -> list[PolicyGroup]:
    """Count rows per policy in force and per use (``use`` or the row's split's use)."""
    book = book or PolicyBook()
    groups: dict[tuple, PolicyGroup] = {}
    for row in facts:
        policy = book.policy_for(row)
        key = ("policy", policy.pk) if policy else ("source", row.prompt_source)
        group = groups.get(key)
        if group is None:
            label = policy.label if policy else f'source "{row.prompt_source}" ({NO_POLICY})'
            group = groups[key] = PolicyGroup(label=label, policy=policy)
        row_use = use or SPLIT_USE.get(row.split, DataUse.TRAINING)
        group.rows[row_use] = group.rows.get(row_use, 0) + 1
    return sorted(groups.values(), key=lambda g: g.label)


def justification_check(override: str | None) -> str:
    """The override's justification, stripped ("" for none).

    Raises:
        ValidationError: ``{"policy_override": ...}`` when given but shorter than 20 characters.
    """
    text = (override or "").strip()
    if text and len(text) < MIN_JUSTIFICATION_CHARS:
        raise ValidationError({"policy_override": f"write a justification of at least {MIN_JUSTIFICATION_CHARS} characters"})
    return text


def policy_check(
    facts: Iterable[RowFacts], *, what: str, use: str | None = None, override: str | None = None, user=None,
) -> PolicyCheck:
    """Check rows against the policies in force; refuse unless allowed or overridden by an admin.

    Args:
        facts: the rows (``vote_facts``, ``demonstration_facts``).
        what: the action in words, for the message ("the snapshot", "the export").
        use: one use for every row; None: by split (``SPLIT_USE``).
        override: a written justification (at least 20 characters) to go ahead anyway.
        user: who asks; an override needs an admin (``feedback.roles.is_feedback_admin``) or None
            (a command line run by the operator).
    Returns:
        The check (with ``override_justification`` set when an override was needed and used).
    Raises:
        ValidationError: ``{"policy": ["<what> uses data its policy does not allow: source "x": 12
            rows for training, which ...", ...]}`` naming each source and its row counts;
            ``{"policy_override": ...}`` for a too-short justification or a user who is not an admin.
    """
    justification = justification_check(override)
    check = PolicyCheck(groups=policy_groups(facts, use=use))
    refusals = check.refusals
    if not refusals:
        return check
    if not justification:
        raise ValidationError({"policy": [f"{what} uses data its policy does not allow: " + " | ".join(refusals)
                                          + ". An admin may override with a written justification."]})
    if user is not None:
        from feedback.roles import is_feedback_admin

        if not is_feedback_admin(user):
            raise ValidationError({"policy_override": "only an admin may override a data-use policy"})
    check.override_justification = justification
    return check

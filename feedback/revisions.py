"""An annotator's changes to their own votes: undo (the vote is withdrawn and the item comes back
to them) and revise (the vote's fields change). Allowed until the comparison is retired: an undo
on a ``complete`` comparison (it had all its votes) reopens it, so the default one-vote
comparisons can be undone too; every change writes a ``VoteChange`` audit row (who, when, before, after).

Frozen snapshots keep the vote as it was frozen: ``SnapshotVote.frozen`` holds its fields from
freeze time and the snapshot's files are never rewritten, so ``snapshot_verify`` still holds; an
undo only detaches the live row from the snapshot (``SnapshotVote.vote`` -> null, ``vote_ref``
kept). Exports read the ``Vote`` rows, so they use the current vote.

Writes only; the reads for the history page are in ``feedback.selectors``.
"""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import F
from django.utils import timezone

from .errors import ComparisonClosed, NotAssigned, VoteNotFound
from .models import (
    Assignment,
    AssignmentStatus,
    Comparison,
    ComparisonStatus,
    Demonstration,
    SnapshotDemonstration,
    SnapshotVote,
    Vote,
    VoteChange,
    VoteChangeAction,
    item_token,
    vote_frozen_fields,
)
from .queue import choice_on_screen, choice_stored
from .claims import MAX_ID, lease_length
from .vote_submit import vote_fields_validate

# The statuses in which a comparison's votes may change: open, or complete (it has its votes; an
# undo reopens it, so undo works on the default one-vote comparisons too). A retired one is closed.
CHANGEABLE_STATUSES = (ComparisonStatus.OPEN, ComparisonStatus.COMPLETE)
REVISABLE_FIELDS = ("choice", "strength", "rationale", *Vote.ASPECTS)


@dataclass
class Undone:
    """What an undo did: the audit row, the re-opened assignment (a fresh lease and item token)
    and the withdrawn vote's inputs in screen terms (``choice``, ``strength``, ``rationale``,
    aspects, and ``demonstration`` when one was withdrawn with it), to put back in the form."""

    change: VoteChange
    assignment: Assignment
    inputs: dict[str, str] = field(default_factory=dict)


def _vote_lock(*, annotator, vote_id: int) -> tuple[Vote, Comparison, Assignment]:
    """The annotator's own vote, its comparison and its assignment, locked; refused unless the
    comparison still takes votes and the vote was cast on an item served to them."""
    if not isinstance(vote_id, int) or isinstance(vote_id, bool) or not 0 < vote_id <= MAX_ID:
        raise VoteNotFound(f"You have no vote {vote_id}.")
    vote = Vote.objects.select_for_update().filter(pk=vote_id, annotator=annotator).first()
    if vote is None:
        raise VoteNotFound(f"You have no vote {vote_id}.")
    comparison = Comparison.objects.select_for_update().get(pk=vote.comparison_id)
    if comparison.status not in CHANGEABLE_STATUSES:
        reason = "was retired"
        raise ComparisonClosed(
            f"Comparison {comparison.pk} {reason} and is closed; your vote {vote.pk} can no longer be changed."
        )
    assignment = Assignment.objects.select_for_update().filter(comparison=comparison, annotator=annotator).first()
    if assignment is None or not vote.shown_left:
        raise NotAssigned(f"Vote {vote.pk} was not cast on an item shown to you (an import?); it cannot be changed here.")
    return vote, comparison, assignment


def _screen_inputs(vote: Vote) -> dict[str, str]:
    """The vote's fields as the annotator gave them (left/right, not a/b)."""
    return {
        "choice": choice_on_screen(vote.choice, vote.shown_left),
        "strength": vote.strength,
        "rationale": vote.rationale,
        **{aspect: choice_on_screen(getattr(vote, aspect), vote.shown_left) for aspect in Vote.ASPECTS},
    }


def vote_undo(*, annotator, vote_id: int, now: datetime | None = None) -> Undone:
    """Withdraw ``annotator``'s own vote while its comparison is open; the item comes back to them.

    In one transaction: a ``VoteChange`` (action ``undo``, ``before`` = the vote's fields,
    ``after`` = None) is written, snapshots that used the vote are detached from the row (they
    keep ``vote_ref`` and ``frozen``), the demonstration written with the vote is withdrawn too
    unless a snapshot used it, the vote is deleted, the comparison's ``vote_count`` drops by one,
    and the annotator's assignment is a live lease again (``ARBITER_LEASE_SECONDS`` from ``now``,
    a new item token; the same side on the left). Any other live lease the annotator holds is let
    go (expired, renewed when next served), so the undone item is the one they see next.
    The training loop's new-vote count (votes with a larger id than its last round's) drops with it.

    Raises:
        VoteNotFound: no vote ``vote_id`` of this annotator's (someone else's is not found either).
        ComparisonClosed: the comparison is complete or retired.
        NotAssigned: the vote was not cast on an item served to them (an imported vote).
    """
    now = now or timezone.now()
    with transaction.atomic():
        vote, comparison, assignment = _vote_lock(annotator=annotator, vote_id=vote_id)
        inputs = _screen_inputs(vote)
        before = vote_frozen_fields(vote)
        demonstration = (
            Demonstration.objects.filter(comparison=comparison, annotator=annotator, source="annotator")
            .exclude(pk__in=SnapshotDemonstration.objects.values("demonstration_id"))
            .order_by("-id")
            .first()
        )
        if demonstration is not None:
            before["demonstration"] = inputs["demonstration"] = demonstration.text
            demonstration.delete()
        SnapshotVote.objects.filter(vote=vote).update(vote=None)
        change = VoteChange.objects.create(
            vote=None,
            vote_ref=vote.pk,
            comparison=comparison,
            annotator=annotator,
            at=now,
            action=VoteChangeAction.UNDO,
            before=before,
            after=None,
        )
        vote.delete()
        # One vote fewer: a comparison that had all its votes is open again (its slot is this annotator's).
        Comparison.objects.filter(pk=comparison.pk).update(vote_count=F("vote_count") - 1, status=ComparisonStatus.OPEN)
        lease = lease_length()
        (
            Assignment.objects.filter(annotator=annotator, status=AssignmentStatus.LEASED, expires_at__gt=now)
            .exclude(pk=assignment.pk)
            .update(leased_at=now - lease, expires_at=now)
        )
        assignment.status, assignment.finished_at, assignment.token = AssignmentStatus.LEASED, None, item_token()
        assignment.leased_at, assignment.expires_at = now, now + lease
        assignment.save(update_fields=["status", "finished_at", "token", "leased_at", "expires_at"])
        return Undone(change=change, assignment=assignment, inputs=inputs)


def vote_revise(*, annotator, vote_id: int, changes: Mapping[str, Any], now: datetime | None = None) -> tuple[Vote, VoteChange | None]:
    """Change fields of ``annotator``'s own vote while its comparison is open.

    ``changes``: any of ``choice``, ``strength``, ``rationale``, ``helpfulness``, ``harmlessness``,
    ``honesty``; choices in screen terms (``left``/``right``, as that annotator saw the item) or
    ``tie``/``both_bad`` (``a``/``b`` are taken too, as ``vote_submit`` does). Fields not named keep
    their value, except that a new choice of ``tie`` or ``both_bad`` clears the strength.
    Returns ``(vote, change)``; ``change`` is None when nothing differs (nothing is written).
    Otherwise one ``VoteChange`` (action ``revise``, ``before`` and ``after`` in stored terms).
    The vote keeps its id and time, so it is not counted again as new; snapshots keep what they froze.

    Raises:
        ValidationError: an unknown field or a bad value (field -> message); nothing is written.
        VoteNotFound, ComparisonClosed, NotAssigned: as ``vote_undo``.
    """
    now = now or timezone.now()
    unknown = sorted(set(changes) - set(REVISABLE_FIELDS))
    if unknown:
        raise ValidationError({name: f"cannot be revised; revisable: {', '.join(REVISABLE_FIELDS)}" for name in unknown})
    with transaction.atomic():
        vote, _, _ = _vote_lock(annotator=annotator, vote_id=vote_id)
        merged = {**_screen_inputs(vote), **changes}
        if "choice" in changes and changes["choice"] in ("tie", "both_bad") and "strength" not in changes:
            merged["strength"] = ""
        fields, _ = vote_fields_validate(
            choice=merged["choice"],
            strength=merged["strength"],
            rationale=merged["rationale"],
            aspects={aspect: merged[aspect] for aspect in Vote.ASPECTS},
            ms_on_item=None,
        )
        for name in ("choice", *Vote.ASPECTS):
            fields[name] = choice_stored(fields[name], vote.shown_left)
        if all(getattr(vote, name) == value for name, value in fields.items()):
            return vote, None
        before = vote_frozen_fields(vote)
        for name, value in fields.items():
            setattr(vote, name, value)
        vote.save(update_fields=list(fields))
        change = VoteChange.objects.create(
            vote=vote,
            vote_ref=vote.pk,
            comparison_id=vote.comparison_id,
            annotator=annotator,
            at=now,
            action=VoteChangeAction.REVISE,
            before=before,
            after=vote_frozen_fields(vote),
        )
        return vote, change

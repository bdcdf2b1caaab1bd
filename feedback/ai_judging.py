"""AI judges' side of the feedback app: what a judge reads and how its votes are written (issue 16;
``feedback.ai_votes`` holds what AI votes share with the rest of the app).

Re-exported by ``feedback.interface``; the training app calls them only from there. A judge's
vote is cast by the judge's own system user, ``judge:<name>@<version>`` (inactive, unusable
password, no group or pool; the colon keeps people from ever signing up with the name), with
``origin="ai"`` and the judge, template and constitution it came from, so it is never mistaken
for a person's vote. Writing one does not touch the comparison's ``vote_count`` or its status,
and sends no ``vote_recorded`` signal: whether and how AI votes count is the campaign's and
the snapshot rules' business, not the judge's.
"""
from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from django.contrib.auth import get_user_model
from django.db import transaction
from django.db.models import Exists, OuterRef

from .ai_votes import JUDGE_USERNAME_PREFIX, comparisons_complete_counted
from .models import Choice, Comparison, ComparisonStatus, Vote, VoteOrigin

JUDGE_REF = re.compile(r"^[a-z0-9][a-z0-9_.-]{0,99}@[1-9][0-9]{0,8}$")
OPTIONAL_REF = re.compile(r"^([a-z0-9][a-z0-9_.-]{0,99}@[1-9][0-9]{0,8})?$")
AI_CHOICES = (Choice.A, Choice.B, Choice.TIE)
RATIONALE_LIMIT = 10_000


@dataclass(frozen=True)
class AiVerdict:
    """A judge's verdict on one comparison: ``choice`` is ``Choice.A``, ``Choice.B`` or
    ``Choice.TIE`` (``"a"``/``"b"``/``"tie"``) about the comparison's own sides; ``rationale``
    says in words how it was reached (orders, principles), stored on the vote."""

    comparison_id: int
    choice: str
    rationale: str = ""


@dataclass(frozen=True)
class JudgingItem:
    """One comparison as a judge sees it: the prompt's chat messages and both completions' texts."""

    comparison_id: int
    prompt_messages: list[dict[str, str]]
    text_a: str
    text_b: str


def judge_username(judge: str) -> str:
    """The system user's name for judge ``"name@version"``: ``"judge:name@version"``."""
    return f"{JUDGE_USERNAME_PREFIX}{judge}"


def _judge_user(judge: str):
    User = get_user_model()
    user, created = User.objects.get_or_create(username=judge_username(judge), defaults={"is_active": False})
    if created:
        user.set_unusable_password()
        user.save(update_fields=["password"])
    elif user.is_active or user.has_usable_password():
        raise ValueError(f"user {user.username!r} can log in; a judge's votes need that name for an inactive system account")
    return user


def ai_votes_record(*, judge: str, judge_template: str, constitution: str, verdicts: Sequence[AiVerdict]) -> int:
    """Write a judge's verdicts as AI votes, in one transaction; returns how many votes were new.

    Idempotent per (comparison, judge user): a comparison this judge version already voted on
    keeps its first vote. Verdicts on comparisons that no longer exist are skipped.
    Args:
        judge: ``"name@version"`` of the judge (lower-case name: letters, digits, ``_.-``).
        judge_template: ``"name@version"`` of the prompt template ("" for a reward-model judge).
        constitution: ``"name@version"``, or "" when no constitution was used.
        verdicts: one per comparison (a comparison given twice: the first counts).
    Raises:
        ValueError: a malformed judge/template/constitution reference, a choice other than
            a/b/tie, or a system user name taken by an account that can log in.
    """
    if not JUDGE_REF.match(judge or ""):
        raise ValueError(f"judge must look like name@version, not {judge!r}")
    for label, ref in (("judge_template", judge_template), ("constitution", constitution)):
        if not isinstance(ref, str) or not OPTIONAL_REF.match(ref):
            raise ValueError(f"{label} must look like name@version or be empty, not {ref!r}")
    for verdict in verdicts:
        if verdict.choice not in AI_CHOICES:
            raise ValueError(f"comparison {verdict.comparison_id}: choice must be a, b or tie, not {verdict.choice!r}")
    if not verdicts:
        return 0
    with transaction.atomic():
        user = _judge_user(judge)
        wanted = {}
        for verdict in verdicts:
            wanted.setdefault(int(verdict.comparison_id), verdict)
        existing = set(Comparison.objects.filter(pk__in=list(wanted)).values_list("pk", flat=True))
        voted = set(Vote.objects.filter(annotator=user, comparison_id__in=existing).values_list("comparison_id", flat=True))
        rows = [
            Vote(
                comparison_id=comparison_id, annotator=user, choice=verdict.choice, rationale=verdict.rationale[:RATIONALE_LIMIT],
                shown_left="", source="judge", origin=VoteOrigin.AI, judge=judge, judge_template=judge_template,
                constitution=constitution,
            )
            for comparison_id, verdict in wanted.items()
            if comparison_id in existing and comparison_id not in voted
        ]
        Vote.objects.bulk_create(rows, ignore_conflicts=True)
        # In a campaign that counts AI votes toward votes_required, a comparison they fill is complete.
        comparisons_complete_counted(comparison_ids=[row.comparison_id for row in rows])
        return Vote.objects.filter(annotator=user, comparison_id__in=[row.comparison_id for row in rows]).count()


def comparisons_for_judging(
    *, campaign_id: int | None, ids: Sequence[int] | None, limit: int | None, skip_judge: str | None = None,
) -> list[JudgingItem]:
    """Comparisons for a judge, lowest id first.

    Args:
        campaign_id: the campaign's *open* comparisons (with ``ids`` too: those of them in it, any status).
        ids: these comparisons, any status. With neither: every open comparison.
        limit: at most this many (None: all).
        skip_judge: leave out comparisons judge ``"name@version"`` already voted on.
    Returns: ``JudgingItem``s with the prompt's messages and both texts.
    Raises:
        ValueError: a negative limit.
    """
    if limit is not None and limit < 0:
        raise ValueError("limit must not be negative")
    qs = Comparison.objects.all()
    if ids is not None:
        qs = qs.filter(pk__in=list(ids))
        if campaign_id is not None:
            qs = qs.filter(campaign_id=campaign_id)
    else:
        qs = qs.filter(status=ComparisonStatus.OPEN)
        if campaign_id is not None:
            qs = qs.filter(campaign_id=campaign_id)
    if skip_judge:
        qs = qs.exclude(Exists(Vote.objects.filter(comparison=OuterRef("pk"), annotator__username=judge_username(skip_judge))))
    qs = qs.select_related("prompt", "completion_a", "completion_b").only(
        "id", "prompt__messages", "completion_a__text", "completion_b__text"
    ).order_by("id")
    if limit is not None:
        qs = qs[:limit]
    return [JudgingItem(c.id, c.prompt.messages, c.completion_a.text, c.completion_b.text) for c in qs]

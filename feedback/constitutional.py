"""Constitutional AI, supervised stage (Bai et al. 2022, "Constitutional AI: Harmlessness from AI
Feedback", section 3): the feedback side. A model critiques a policy's response against a sampled
principle and revises it; ``revisions_record`` stores each revision as

- a completion of the reviser (``model_name`` ``"<reviser>+cai"``; its ``generation_params`` hold the
  lineage: constitution version, principle, critique, the original completion, the reviser, the job),
- a comparison of the revision against the original, queued in a campaign like any generated pair
  (people may vote on it too), with an AI vote for the revision cast by the system user of the
  ``cai-revision:<reviser>`` judge (``Vote.origin`` "ai"; ``judge_template`` the critique-revise template,
  ``constitution`` its version): a preference pair (revision over original) that snapshots take
  only when their rules ask for AI votes (it fills a slot only in a campaign with ``ai_votes_count``),
- a demonstration of the prompt (``source`` ``"cai:<constitution>"``, linked to that comparison),
  for SFT.

Training code reaches this through ``feedback.interface``.
"""
from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from django.contrib.auth import get_user_model
from django.db import transaction

from .ai_votes import comparisons_complete_counted
from .campaigns.models import default_campaign_id
from .identity.services import comparisons_identity_flag
from .messages import responses_equivalent, text_is_empty
from .models import Choice, Comparison, Completion, Demonstration, Vote, VoteOrigin

REVISION_SUFFIX = "+cai"
REVISION_JUDGE = "cai-revision"


@dataclass(frozen=True)
class ResponseRef:
    """A stored response to revise: completion ``completion_id`` by ``model_name`` to prompt
    ``prompt_id`` (``messages``: the chat that ends with the user turn it answers)."""

    completion_id: int
    prompt_id: int
    messages: list[dict[str, str]]
    text: str
    model_name: str


@dataclass(frozen=True)
class Revision:
    """A critique-revise result for response ``completion_id``: the ``principle`` it was checked
    against, the ``critique`` and the ``revision`` the ``reviser`` (a checkpoint name) wrote.
    ``params``: the generation settings (stored with the revision's completion)."""

    completion_id: int
    principle: str
    critique: str
    revision: str
    reviser: str
    is_truncated: bool = False
    params: dict[str, Any] = field(default_factory=dict)


@dataclass
class RevisionSummary:
    """Counts of one ``revisions_record`` call: ``revisions`` stored, ``pairs`` (comparisons with
    their AI vote), ``demonstrations``, and revisions not kept as pairs or demonstrations because
    they were empty (``skipped_empty``) or the same text as the original up to whitespace
    (``skipped_unchanged``)."""

    revisions: int = 0
    pairs: int = 0
    demonstrations: int = 0
    skipped_empty: int = 0
    skipped_unchanged: int = 0

    def add(self, other: "RevisionSummary") -> "RevisionSummary":
        for name in self.__dataclass_fields__:
            setattr(self, name, getattr(self, name) + getattr(other, name))
        return self

    def as_dict(self) -> dict[str, int]:
        return {name: getattr(self, name) for name in self.__dataclass_fields__}


def responses_to_revise(
    *, model_name: str, constitution: str, reviser: str, split: str | None = None, limit: int | None = None
) -> list[ResponseRef]:
    """Non-empty responses by ``model_name`` not yet revised by ``reviser`` under ``constitution``
    ("name@version"), oldest first, at most ``limit``; ``split`` keeps prompts of that split only.

    Raises ValueError for a negative ``limit``.
    """
    if limit is not None and limit < 0:
        raise ValueError("limit must not be negative")
    done = Completion.objects.filter(
        model_name=f"{reviser}{REVISION_SUFFIX}", generation_params__constitution=constitution
    ).values_list("generation_params__original_completion", flat=True)
    qs = (
        Completion.objects.filter(model_name=model_name, is_empty=False)
        .exclude(pk__in=[pk for pk in done if pk is not None])
        .select_related("prompt")
        .order_by("pk")
    )
    if split:
        qs = qs.filter(prompt__split=split)
    if limit is not None:
        qs = qs[:limit]
    return [ResponseRef(c.pk, c.prompt_id, c.prompt.messages, c.text, c.model_name) for c in qs]


def revision_judge(reviser: str) -> str:
    """The judge name on the AI votes of revisions written by checkpoint ``reviser``."""
    return f"{REVISION_JUDGE}:{reviser}"[:200]


def judge_user(name: str):
    """The inactive system user that casts the AI votes of judge ``name`` ("name@version" or a
    name): username ``judge:<name>``, no usable password, in no group or pool. Created on first use."""
    username = f"judge:{name}"[:150]
    user, created = get_user_model()._default_manager.get_or_create(username=username, defaults={"is_active": False})
    if created:
        user.set_unusable_password()
        user.save(update_fields=["password"])
    return user


def revisions_record(
    *,
    revisions: Sequence[Revision],
    constitution: str,
    template: str,
    job_id: int | None = None,
    campaign_id: int | None = None,
    votes_required: int = 1,
    priority: int = 0,
    pairs: bool = True,
    demonstrations: bool = True,
    rng: random.Random | None = None,
) -> RevisionSummary:
    """Store ``revisions`` (see the module docstring), all or nothing, in one transaction.

    Which side of a pair the revision is on is drawn per pair (probability 1/2, from ``rng``), so
    neither the A/B letter nor the ids tell an annotator which text was revised. The comparisons
    go to campaign ``campaign_id`` (None: the Default campaign). The AI vote does not take a
    person's slot (``Campaign.ai_votes_count``).

    Raises:
        ValueError: a revision of a completion that does not exist, or votes_required < 1.
    """
    if votes_required < 1:
        raise ValueError("votes_required must be at least 1")
    summary = RevisionSummary()
    if not revisions:
        return summary
    originals = Completion.objects.in_bulk([r.completion_id for r in revisions])
    missing = sorted({r.completion_id for r in revisions} - set(originals))
    if missing:
        raise ValueError(f"no such completion(s): {missing}")
    campaign = campaign_id if campaign_id is not None else default_campaign_id()
    draw = rng or random.SystemRandom()
    with transaction.atomic():
        made = []
        for r in revisions:
            original = originals[r.completion_id]
            params = {
                **r.params, "constitution": constitution, "template": template, "principle": r.principle,
                "critique": r.critique, "original_completion": original.pk, "reviser": r.reviser, "job": job_id,
            }
            made.append(Completion(
                prompt_id=original.prompt_id, model_name=f"{r.reviser}{REVISION_SUFFIX}", text=r.revision,
                generation_params=params, is_truncated=r.is_truncated, is_empty=text_is_empty(r.revision),
            ))
        Completion.objects.bulk_create(made)
        summary.revisions = len(made)
        kept = []
        for r, revised in zip(revisions, made):
            original = originals[r.completion_id]
            if revised.is_empty:
                summary.skipped_empty += 1
            elif responses_equivalent(revised.text, original.text):
                summary.skipped_unchanged += 1
            else:
                kept.append((revised, original))
        comparisons: dict[int, Comparison] = {}  # the revision's completion id -> its comparison
        if pairs:
            for revised, original in kept:
                a, b = (revised, original) if draw.random() < 0.5 else (original, revised)
                comparisons[revised.pk] = Comparison(
                    prompt_id=original.prompt_id, completion_a=a, completion_b=b, votes_required=votes_required,
                    priority=priority, campaign_id=campaign,
                )
            Comparison.objects.bulk_create(comparisons.values())
            comparisons_identity_flag(comparisons=list(comparisons.values()))
            revised_by = {revised.pk: revised for revised, _ in kept}
            judges = {name: judge_user(name) for name in {revision_judge(r.generation_params["reviser"]) for r, _ in kept}}
            Vote.objects.bulk_create([
                Vote(
                    comparison=c, annotator=judges[revision_judge(revised_by[revised_id].generation_params["reviser"])],
                    origin=VoteOrigin.AI, judge=revision_judge(revised_by[revised_id].generation_params["reviser"]),
                    judge_template=template, constitution=constitution, blind=True,
                    choice=Choice.A if c.completion_a_id == revised_id else Choice.B,
                    rationale=revised_by[revised_id].generation_params["critique"][:10_000],
                )
                for revised_id, c in comparisons.items()
            ])
            comparisons_complete_counted(comparison_ids=[c.pk for c in comparisons.values()])
            summary.pairs = len(comparisons)
        if demonstrations:
            Demonstration.objects.bulk_create([
                Demonstration(
                    prompt_id=revised.prompt_id, text=revised.text, source=f"cai:{constitution}"[:100],
                    comparison=comparisons.get(revised.pk),
                )
                for revised, _ in kept
            ])
            summary.demonstrations = len(kept)
    return summary

"""Prompts chosen for generation and the completions and comparisons a generation job writes. Part of ``feedback.interface``."""
from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from django.db import transaction
from django.db.models import Count, Q

from ..campaigns.models import default_campaign_id
from ..models import Comparison, ComparisonStatus, Completion, Prompt, Split
from ..evalsets import evaluation as _evaluation
from ..evalsets.exclusion import prompts_outside_eval_sets
from ..messages import responses_equivalent, text_is_empty
from ..identity.services import comparisons_identity_flag
from ..selectors import prompts_with_tag
from .eval_sets import campaign_check


@dataclass(frozen=True)
class PromptRef:
    """A prompt as a runner needs it: id and chat messages (``[{"role", "content"}, ...]``)."""

    id: int
    messages: list[dict[str, str]]


@dataclass(frozen=True)
class GeneratedText:
    """One sampled completion: who wrote it, the text, how it was sampled, whether it hit the length
    limit (``is_truncated``), and whether it was cut before a role marker the model wrote when it
    went on to write another turn (``truncated_at_role_marker``; ``text`` is then the reply alone)."""

    model_name: str
    text: str
    generation_params: dict[str, Any] = field(default_factory=dict)
    is_truncated: bool = False
    truncated_at_role_marker: bool = False


@dataclass(frozen=True)
class CandidatePair:
    """Two completions of one prompt, to become a comparison unless either is empty or both are identical."""

    prompt_id: int
    a: GeneratedText
    b: GeneratedText


@dataclass
class PairingSummary:
    """Counts from ``pairs_record``: comparisons made, and pairs left out (with why)."""

    paired: int = 0
    completions: int = 0
    skipped_empty: int = 0
    skipped_identical: int = 0

    def add(self, other: "PairingSummary") -> None:
        for name in ("paired", "completions", "skipped_empty", "skipped_identical"):
            setattr(self, name, getattr(self, name) + getattr(other, name))

    def as_dict(self) -> dict[str, int]:
        return {
            "paired": self.paired,
            "completions": self.completions,
            "skipped_empty": self.skipped_empty,
            "skipped_identical": self.skipped_identical,
        }


def prompts_select(
    *,
    ids: Sequence[int] | None = None,
    tag: str | None = None,
    split: str | None = None,
    max_open_comparisons: int | None = None,
    limit: int | None = None,
    include_eval_sets: bool = False,
) -> list[PromptRef]:
    """Prompts matching every given criterion, oldest first.

    Eval-set prompts and their near-duplicates (``feedback.evalsets``) are never selected unless
    ``include_eval_sets``: what this selects becomes training data (generation jobs, the loop).

    Args:
        ids: only these prompt ids.
        tag: prompts whose tags include this one.
        split: ``"train"`` or ``"eval"``.
        max_open_comparisons: prompts with *fewer than* this many open comparisons ("those with
            too few open comparisons").
        limit: at most this many prompts.
        include_eval_sets: also select eval-set prompts (for evaluations only).
    Raises:
        ValueError: an unknown split or a negative limit.
    """
    # The tag filter is the base queryset, not a ``pk__in`` subquery: on SQLite its raw SQL names
    # the table, which inside a subquery would point at the outer row (a quadratic scan).
    qs = (prompts_with_tag(tag) if tag else Prompt.objects.all()).order_by("id")
    if ids is not None:
        qs = qs.filter(id__in=list(ids))
    if split:
        if split not in Split.values:
            raise ValueError(f"unknown split {split!r}; expected one of {', '.join(Split.values)}")
        qs = qs.filter(split=split)
    if not include_eval_sets:
        qs = prompts_outside_eval_sets(qs)
    if max_open_comparisons is not None:
        qs = qs.annotate(
            open_comparisons=Count("comparisons", filter=Q(comparisons__status=ComparisonStatus.OPEN))
        ).filter(open_comparisons__lt=max_open_comparisons)
    if limit is not None:
        if limit < 0:
            raise ValueError("limit must not be negative")
        qs = qs[:limit]
    return [PromptRef(p.id, p.messages) for p in qs.only("id", "messages")]


def pairs_record(
    *,
    pairs: Sequence[CandidatePair],
    votes_required: int = 1,
    priority: int = 0,
    rng: random.Random | None = None,
    campaign_id: int | None = None,
) -> PairingSummary:
    """Store generated completions and pair them into open comparisons, in one transaction.

    The comparisons go to campaign ``campaign_id`` (None: the Default campaign); it must exist
    and not be closed (``campaign_check``).

    Which text of a pair becomes completion A is drawn per pair (probability 1/2, from ``rng``,
    default the system's random source), and completion A is stored first: a runner passes the
    new policy's text first, and neither the A/B letter nor the completion ids may tell an
    annotator which side that was.

    Every completion is stored (empty ones flagged ``is_empty``), so the record of what a model
    wrote is whole; only pairs where both texts are non-empty and not equivalent
    (``feedback.messages.responses_equivalent``: not the same after NFC and whitespace
    collapsing) become comparisons; the others are counted as ``skipped_empty`` and
    ``skipped_identical``.
    Either all rows of this call are written or none (a killed runner leaves whole batches only).
    Comparisons whose responses match an active identity pattern are flagged (``identity_leak``).

    Raises:
        ValueError: a prompt id that does not exist, or votes_required < 1.
    """
    if votes_required < 1:
        raise ValueError("votes_required must be at least 1")
    campaign = campaign_check(campaign_id=campaign_id) if campaign_id is not None else default_campaign_id()
    summary = PairingSummary()
    if not pairs:
        return summary
    prompt_ids = {pair.prompt_id for pair in pairs}
    existing = set(Prompt.objects.filter(id__in=prompt_ids).values_list("id", flat=True))
    missing = prompt_ids - existing
    if missing:
        raise ValueError(f"no such prompt(s): {sorted(missing)}")
    with transaction.atomic():
        draw = rng or random.SystemRandom()
        completions = []
        for pair in pairs:
            for generated in (pair.a, pair.b) if draw.random() < 0.5 else (pair.b, pair.a):
                completions.append(
                    Completion(
                        prompt_id=pair.prompt_id,
                        model_name=generated.model_name,
                        text=generated.text,
                        generation_params=generated.generation_params,
                        is_truncated=generated.is_truncated,
                        truncated_at_role_marker=generated.truncated_at_role_marker,
                        is_empty=text_is_empty(generated.text),
                    )
                )
        Completion.objects.bulk_create(completions)
        summary.completions = len(completions)
        comparisons = []
        for index, pair in enumerate(pairs):
            a, b = completions[2 * index], completions[2 * index + 1]
            if a.is_empty or b.is_empty:
                summary.skipped_empty += 1
            elif responses_equivalent(a.text, b.text):
                summary.skipped_identical += 1
            else:
                comparisons.append(
                    Comparison(
                        prompt_id=pair.prompt_id,
                        completion_a=a,
                        completion_b=b,
                        votes_required=votes_required,
                        priority=priority,
                        campaign_id=campaign,
                    )
                )
        Comparison.objects.bulk_create(comparisons)
        comparisons_identity_flag(comparisons=comparisons)
        summary.paired = len(comparisons)
    return summary


def completions_record(*, completions: Sequence[tuple[int, GeneratedText]]) -> list[int]:
    """Store ``(prompt_id, generated)`` completions without pairing them into comparisons (an
    evaluation's generations), in one transaction; returns the completion ids in order.

    Raises:
        ValueError: a prompt id that does not exist (nothing is written).
    """
    return _evaluation.completions_store(completions=[
        (prompt_id, g.model_name, g.text, g.generation_params, g.is_truncated, g.truncated_at_role_marker)
        for prompt_id, g in completions
    ])

"""What the training app may read from and write to the feedback app. Nothing else crosses over.

Plain dataclasses in and out, so runner processes never handle feedback's model instances.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from django.db import transaction
from django.db.models import Count, Q

from .models import Comparison, ComparisonStatus, Completion, Prompt, Split
from .messages import text_is_empty
from .selectors import prompts_with_tag


@dataclass(frozen=True)
class PromptRef:
    """A prompt as a runner needs it: id and chat messages (``[{"role", "content"}, ...]``)."""

    id: int
    messages: list[dict[str, str]]


@dataclass(frozen=True)
class GeneratedText:
    """One sampled completion: who wrote it, the text, how it was sampled, and whether it hit the length limit."""

    model_name: str
    text: str
    generation_params: dict[str, Any] = field(default_factory=dict)
    is_truncated: bool = False


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
) -> list[PromptRef]:
    """Prompts matching every given criterion, oldest first.

    Args:
        ids: only these prompt ids.
        tag: prompts whose tags include this one.
        split: ``"train"`` or ``"eval"``.
        max_open_comparisons: prompts with *fewer than* this many open comparisons ("those with
            too few open comparisons").
        limit: at most this many prompts.
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
    if max_open_comparisons is not None:
        qs = qs.annotate(
            open_comparisons=Count("comparisons", filter=Q(comparisons__status=ComparisonStatus.OPEN))
        ).filter(open_comparisons__lt=max_open_comparisons)
    if limit is not None:
        if limit < 0:
            raise ValueError("limit must not be negative")
        qs = qs[:limit]
    return [PromptRef(p.id, p.messages) for p in qs.only("id", "messages")]


def pairs_record(*, pairs: Sequence[CandidatePair], votes_required: int = 1, priority: int = 0) -> PairingSummary:
    """Store generated completions and pair them into open comparisons, in one transaction.

    Every completion is stored (empty ones flagged ``is_empty``), so the record of what a model
    wrote is whole; only pairs where both texts are non-empty and different become comparisons.
    Either all rows of this call are written or none (a killed runner leaves whole batches only).

    Raises:
        ValueError: a prompt id that does not exist, or votes_required < 1.
    """
    if votes_required < 1:
        raise ValueError("votes_required must be at least 1")
    summary = PairingSummary()
    if not pairs:
        return summary
    prompt_ids = {pair.prompt_id for pair in pairs}
    existing = set(Prompt.objects.filter(id__in=prompt_ids).values_list("id", flat=True))
    missing = prompt_ids - existing
    if missing:
        raise ValueError(f"no such prompt(s): {sorted(missing)}")
    with transaction.atomic():
        completions = []
        for pair in pairs:
            for generated in (pair.a, pair.b):
                completions.append(
                    Completion(
                        prompt_id=pair.prompt_id,
                        model_name=generated.model_name,
                        text=generated.text,
                        generation_params=generated.generation_params,
                        is_truncated=generated.is_truncated,
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
            elif a.text.strip() == b.text.strip():
                summary.skipped_identical += 1
            else:
                comparisons.append(
                    Comparison(
                        prompt_id=pair.prompt_id,
                        completion_a=a,
                        completion_b=b,
                        votes_required=votes_required,
                        priority=priority,
                    )
                )
        Comparison.objects.bulk_create(comparisons)
        summary.paired = len(comparisons)
    return summary


def prompt_count(*, ids: Sequence[int] | None = None) -> int:
    """How many prompts exist (optionally: how many of ``ids`` exist)."""
    qs = Prompt.objects.all()
    if ids is not None:
        qs = qs.filter(id__in=list(ids))
    return qs.count()


def completion_count(*, model_name: str) -> int:
    """How many completions (empty ones included) carry ``model_name``: what a checkpoint has written."""
    return Completion.objects.filter(model_name=model_name).count()

"""Writes to the feedback app: every function validates, writes inside one transaction and
returns the rows it wrote. Keyword-only arguments; errors are ``django.core.exceptions.ValidationError``
(field -> messages) or a ``feedback.errors.FeedbackError`` subclass.
"""
from __future__ import annotations

import random
from collections.abc import Iterable, Mapping
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import IntegrityError, connection, transaction
from django.db.models import Case, Count, Exists, F, OuterRef, Q, Subquery, Value, When
from django.db.models.functions import Coalesce
from django.utils import timezone

from .errors import ComparisonClosed, LeaseExpired, NotAssigned, VoteConflict
from .messages import (
    MAX_COMPLETION_CHARS,
    MessagesError,
    messages_sha256,
    messages_validate,
    text_is_empty,
)
from .models import (
    AspectChoice,
    Assignment,
    AssignmentStatus,
    Choice,
    Comparison,
    ComparisonStatus,
    Completion,
    Prompt,
    Split,
    Strength,
    Vote,
)
from .queue import Candidate, candidate_pick, side_draw

MAX_TAGS = 50
MAX_TAG_CHARS = 100
MAX_RATIONALE_CHARS = 10_000
MAX_MS_ON_ITEM = 24 * 3600 * 1000
MAX_VOTES_REQUIRED = 100
CLAIM_BATCH = 4


# --- prompts and completions ------------------------------------------------------------------
def _tags_validate(tags: Any) -> list[str]:
    if tags is None:
        return []
    if not isinstance(tags, list) or not all(isinstance(t, str) for t in tags):
        raise ValidationError({"tags": "must be a list of strings"})
    if len(tags) > MAX_TAGS:
        raise ValidationError({"tags": f"at most {MAX_TAGS} tags"})
    cleaned = []
    for tag in tags:
        tag = tag.strip()
        if not tag or len(tag) > MAX_TAG_CHARS:
            raise ValidationError({"tags": f"each tag must be 1-{MAX_TAG_CHARS} characters"})
        if tag not in cleaned:
            cleaned.append(tag)
    return cleaned


def prompt_build(*, messages: Any, source: str = "", tags: Any = None, split: str = Split.TRAIN) -> Prompt:
    """Validate one prompt's fields and return an unsaved ``Prompt``.

    Raises:
        ValidationError: {"messages": ...} for malformed messages (see ``messages_validate``),
            {"split": ...} for a split other than train/eval, {"tags": ...}, {"source": ...}.
    """
    try:
        cleaned = messages_validate(messages)
    except MessagesError as error:
        raise ValidationError({"messages": str(error)}) from None
    if split not in Split.values:
        raise ValidationError({"split": f"must be one of {', '.join(Split.values)}"})
    if not isinstance(source, str) or len(source) > 100:
        raise ValidationError({"source": "must be a string of at most 100 characters"})
    return Prompt(
        messages=cleaned, messages_sha256=messages_sha256(cleaned), source=source, tags=_tags_validate(tags), split=split
    )


def prompt_create_bulk(*, prompts: Iterable[Mapping[str, Any]]) -> list[Prompt]:
    """Create many prompts at once, all or none.

    Args:
        prompts: mappings with ``messages`` and optional ``source``, ``tags``, ``split``.
    Returns: the created prompts, in input order, with primary keys.
    Raises:
        ValidationError: {"<index>": {field: messages}} naming each bad item; nothing is written.
    """
    built, errors = [], {}
    for index, item in enumerate(prompts):
        try:
            built.append(prompt_build(**item))
        except ValidationError as error:
            errors[str(index)] = error.message_dict
        except TypeError as error:
            errors[str(index)] = {"non_field_errors": [str(error)]}
    if errors:
        raise ValidationError(errors)
    with transaction.atomic():
        return Prompt.objects.bulk_create(built)


def completion_build(
    *,
    prompt: Prompt,
    model_name: str,
    text: str,
    generation_params: Mapping[str, Any] | None = None,
    is_truncated: bool = False,
) -> Completion:
    """Validate one completion and return it unsaved; ``is_empty`` is derived from the text.

    Raises:
        ValidationError: {"model_name"|"text"|"generation_params": ...}.
    """
    if not isinstance(model_name, str) or not model_name.strip() or len(model_name) > 200:
        raise ValidationError({"model_name": "must be a non-empty string of at most 200 characters"})
    if not isinstance(text, str):
        raise ValidationError({"text": "must be a string"})
    if len(text) > MAX_COMPLETION_CHARS:
        raise ValidationError({"text": f"is {len(text)} characters; at most {MAX_COMPLETION_CHARS}"})
    if "\x00" in text:
        raise ValidationError({"text": "contains a NUL character"})
    if generation_params is not None and not isinstance(generation_params, Mapping):
        raise ValidationError({"generation_params": "must be an object"})
    return Completion(
        prompt=prompt,
        model_name=model_name.strip(),
        text=text,
        generation_params=dict(generation_params or {}),
        is_truncated=bool(is_truncated),
        is_empty=text_is_empty(text),
    )


def completion_create_bulk(*, completions: Iterable[Mapping[str, Any]]) -> list[Completion]:
    """Create many completions (each names its ``prompt`` by id or instance), all or none.

    Raises:
        ValidationError: {"<index>": {field: messages}}; nothing is written.
    """
    items = list(completions)
    prompt_ids = {item.get("prompt") for item in items if isinstance(item.get("prompt"), int)}
    prompts = Prompt.objects.in_bulk(prompt_ids)
    built, errors = [], {}
    for index, item in enumerate(items):
        item = dict(item)
        prompt = item.pop("prompt", None)
        if not isinstance(prompt, Prompt):
            prompt = prompts.get(prompt) if isinstance(prompt, int) else None
        if prompt is None:
            errors[str(index)] = {"prompt": ["no such prompt"]}
            continue
        try:
            built.append(completion_build(prompt=prompt, **item))
        except ValidationError as error:
            errors[str(index)] = error.message_dict
        except TypeError as error:
            errors[str(index)] = {"non_field_errors": [str(error)]}
    if errors:
        raise ValidationError(errors)
    with transaction.atomic():
        return Completion.objects.bulk_create(built)


# --- comparisons ------------------------------------------------------------------------------
def _comparison_check(
    completion_a: Completion, completion_b: Completion, votes_required: int, priority: int, gold_choice: str
) -> None:
    # Model equality: the same row (same pk), or the same object while both are still unsaved.
    if completion_a == completion_b:
        raise ValidationError({"completion_b": "must differ from completion_a"})
    if completion_a.prompt_id != completion_b.prompt_id:
        raise ValidationError({"completion_b": "must answer the same prompt as completion_a"})
    if completion_a.text == completion_b.text:
        raise ValidationError({"completion_b": "has the same text as completion_a; nothing to compare"})
    if not isinstance(votes_required, int) or not 1 <= votes_required <= MAX_VOTES_REQUIRED:
        raise ValidationError({"votes_required": f"must be an integer from 1 to {MAX_VOTES_REQUIRED}"})
    if not isinstance(priority, int) or abs(priority) > 1_000_000:
        raise ValidationError({"priority": "must be an integer from -1000000 to 1000000"})
    if gold_choice not in ("", *Choice.values):
        raise ValidationError({"gold_choice": f"must be empty or one of {', '.join(Choice.values)}"})


def comparison_create(
    *,
    completion_a: Completion,
    completion_b: Completion,
    votes_required: int = 1,
    priority: int = 0,
    gold_choice: str = "",
) -> Comparison:
    """Pair two completions of one prompt for judging.

    Raises:
        ValidationError: same completion twice, different prompts, identical texts, a pair that
            already exists (in either order), votes_required outside 1-100, or a bad gold choice.
    """
    _comparison_check(completion_a, completion_b, votes_required, priority, gold_choice)
    with transaction.atomic():
        duplicate = Comparison.objects.filter(
            Q(completion_a=completion_a, completion_b=completion_b) | Q(completion_a=completion_b, completion_b=completion_a)
        ).first()
        if duplicate is not None:
            raise ValidationError({"completion_b": f"this pair already exists as comparison {duplicate.pk}"})
        return Comparison.objects.create(
            prompt_id=completion_a.prompt_id,
            completion_a=completion_a,
            completion_b=completion_b,
            votes_required=votes_required,
            priority=priority,
            gold_choice=gold_choice,
        )


def comparison_create_inline(
    *,
    prompt: Prompt | Mapping[str, Any],
    completion_a: Mapping[str, Any],
    completion_b: Mapping[str, Any],
    votes_required: int = 1,
    priority: int = 0,
    gold_choice: str = "",
) -> Comparison:
    """Create a comparison from texts: the prompt (an existing one, or its fields) and two completions.

    Raises:
        ValidationError: {"prompt"|"completion_a"|"completion_b"|...: ...}; nothing is written.
    """
    with transaction.atomic():
        if not isinstance(prompt, Prompt):
            try:
                prompt = prompt_build(**prompt)
            except ValidationError as error:
                raise ValidationError({"prompt": [f"{k}: {' '.join(v)}" for k, v in error.message_dict.items()]}) from None
            prompt.save()
        built = {}
        for field, fields in (("completion_a", completion_a), ("completion_b", completion_b)):
            try:
                built[field] = completion_build(prompt=prompt, **fields)
            except ValidationError as error:
                raise ValidationError({field: [f"{k}: {' '.join(v)}" for k, v in error.message_dict.items()]}) from None
        _comparison_check(built["completion_a"], built["completion_b"], votes_required, priority, gold_choice)
        for completion in built.values():
            completion.save()
        return comparison_create(
            completion_a=built["completion_a"],
            completion_b=built["completion_b"],
            votes_required=votes_required,
            priority=priority,
            gold_choice=gold_choice,
        )


def comparison_retire(*, comparison: Comparison) -> Comparison:
    """Take a comparison out of the queue for good; its votes stay."""
    with transaction.atomic():
        Comparison.objects.filter(pk=comparison.pk).update(status=ComparisonStatus.RETIRED)
    comparison.refresh_from_db()
    return comparison


# --- the queue --------------------------------------------------------------------------------
def _lease_length() -> timedelta:
    return timedelta(seconds=settings.ARBITER_LEASE_SECONDS)


def _active_leases_of_others(comparison_ref, annotator, now: datetime):
    return (
        Assignment.objects.filter(comparison=comparison_ref, status=AssignmentStatus.LEASED, expires_at__gt=now)
        .exclude(annotator=annotator)
    )


def assignment_claim(*, annotator, now: datetime | None = None, rng: random.Random | None = None) -> Assignment | None:
    """Lease the next comparison to ``annotator``, or return None when nothing is left for them.

    A live lease the annotator already holds is returned again (reloads and second tabs see the
    same item). Otherwise one locked query reads a few candidates in queue order (open, not voted
    on or skipped by this annotator, fewer votes plus others' live leases than ``votes_required``);
    ``feedback.queue.candidate_pick`` chooses among them and a lease of ``ARBITER_LEASE_SECONDS``
    is written. On PostgreSQL the query is ``SELECT ... FOR UPDATE SKIP LOCKED`` and the slot
    counts are re-read after the lock; on SQLite the whole claim runs in one IMMEDIATE
    transaction, so claims are serialised.
    """
    now = now or timezone.now()
    with transaction.atomic():
        current = (
            Assignment.objects.filter(
                annotator=annotator, status=AssignmentStatus.LEASED, expires_at__gt=now,
                comparison__status=ComparisonStatus.OPEN,
            )
            .order_by("leased_at", "id")
            .first()
        )
        if current is not None:
            return current

        leases = (
            _active_leases_of_others(OuterRef("pk"), annotator, now)
            .order_by()
            .values("comparison")
            .annotate(n=Count("id"))
            .values("n")
        )
        done_by_me = Assignment.objects.filter(
            comparison=OuterRef("pk"), annotator=annotator, status__in=[AssignmentStatus.VOTED, AssignmentStatus.SKIPPED]
        )
        query = (
            Comparison.objects.filter(status=ComparisonStatus.OPEN)
            .filter(~Exists(done_by_me))
            .annotate(leases=Coalesce(Subquery(leases), Value(0)))
            .filter(vote_count__lt=F("votes_required") - F("leases"))
            .order_by("-priority", "created_at", "id")
            .values("id", "priority", "created_at", "votes_required", "vote_count", "leases")
        )
        skip_locked = connection.features.has_select_for_update_skip_locked
        if skip_locked:
            query = query.select_for_update(skip_locked=True, of=("self",))
        rows = list(query[:CLAIM_BATCH])
        if not rows:
            return None
        if skip_locked:
            # Fresh counts now that the rows are locked: a lease committed after our snapshot is seen.
            fresh = dict(
                _active_leases_of_others(None, annotator, now)
                .filter(comparison_id__in=[r["id"] for r in rows])
                .order_by()
                .values_list("comparison_id")
                .annotate(n=Count("id"))
            )
            for row in rows:
                row["leases"] = fresh.get(row["id"], 0)
        picked = candidate_pick(
            [
                Candidate(r["id"], r["priority"], r["created_at"], r["votes_required"], r["vote_count"] + r["leases"])
                for r in rows
            ]
        )
        if picked is None:
            return None
        expires = now + _lease_length()
        stale = Assignment.objects.filter(comparison_id=picked.comparison_id, annotator=annotator).first()
        if stale is not None:  # the annotator's own expired lease on this comparison: renew it
            stale.leased_at, stale.expires_at = now, expires
            stale.save(update_fields=["leased_at", "expires_at"])
            return stale
        return Assignment.objects.create(
            comparison_id=picked.comparison_id,
            annotator=annotator,
            shown_left=side_draw(rng),
            leased_at=now,
            expires_at=expires,
        )


def assignment_skip(*, annotator, comparison_id: int, now: datetime | None = None) -> Assignment:
    """Record that ``annotator`` skipped the comparison; its slot is freed and it is never served to them again.

    Skipping twice is harmless. Raises NotAssigned when they hold no assignment for it, and
    VoteConflict when they already voted on it.
    """
    now = now or timezone.now()
    with transaction.atomic():
        assignment = (
            Assignment.objects.select_for_update().filter(comparison_id=comparison_id, annotator=annotator).first()
        )
        if assignment is None:
            raise NotAssigned(f"Comparison {comparison_id} is not assigned to you.")
        if assignment.status == AssignmentStatus.VOTED:
            raise VoteConflict(f"You already voted on comparison {comparison_id}; it cannot be skipped.")
        if assignment.status == AssignmentStatus.LEASED:
            assignment.status, assignment.finished_at = AssignmentStatus.SKIPPED, now
            assignment.save(update_fields=["status", "finished_at"])
        return assignment


# --- votes ------------------------------------------------------------------------------------
def _vote_fields_validate(
    *, choice: Any, strength: Any, rationale: Any, aspects: Mapping[str, Any] | None, ms_on_item: Any
) -> dict[str, Any]:
    errors: dict[str, str] = {}
    if choice not in Choice.values:
        errors["choice"] = f"must be one of {', '.join(Choice.values)}"
    strength = strength or ""
    if strength not in ("", *Strength.values):
        errors["strength"] = f"must be empty or one of {', '.join(Strength.values)}"
    elif strength and choice not in (Choice.A, Choice.B):
        errors["strength"] = "only a preference for A or B has a strength; leave it empty for tie or both_bad"
    rationale = rationale or ""
    if not isinstance(rationale, str):
        errors["rationale"] = "must be a string"
    elif len(rationale) > MAX_RATIONALE_CHARS:
        errors["rationale"] = f"is {len(rationale)} characters; at most {MAX_RATIONALE_CHARS}"
    cleaned_aspects = {}
    for name, value in (aspects or {}).items():
        if name not in Vote.ASPECTS:
            errors[name] = f"unknown aspect; expected one of {', '.join(Vote.ASPECTS)}"
        elif (value or "") not in ("", *AspectChoice.values):
            errors[name] = f"must be empty or one of {', '.join(AspectChoice.values)}"
        else:
            cleaned_aspects[name] = value or ""
    if ms_on_item is not None and (
        isinstance(ms_on_item, bool) or not isinstance(ms_on_item, int) or not 0 <= ms_on_item <= MAX_MS_ON_ITEM
    ):
        errors["ms_on_item"] = f"must be an integer number of milliseconds from 0 to {MAX_MS_ON_ITEM}"
    if errors:
        raise ValidationError(errors)
    return {"choice": choice, "strength": strength, "rationale": rationale, **cleaned_aspects}


def _same_vote(vote: Vote, fields: Mapping[str, Any]) -> bool:
    return all(getattr(vote, name) == value for name, value in fields.items())


def vote_submit(
    *,
    annotator,
    comparison_id: int,
    choice: str,
    strength: str = "",
    rationale: str = "",
    aspects: Mapping[str, str] | None = None,
    ms_on_item: int | None = None,
    now: datetime | None = None,
) -> tuple[Vote, bool]:
    """Store ``annotator``'s preference on a comparison assigned to them.

    ``choice`` is in terms of the comparison's completions (``a``, ``b``, ``tie``, ``both_bad``),
    never screen sides; the side shown on the left is copied from the assignment. When
    ``ms_on_item`` is not given it is taken as the time since the lease began.

    Returns: ``(vote, created)``. Submitting the identical vote again returns the stored one with
    ``created=False`` and writes nothing.
    Raises:
        ValidationError: malformed fields (field -> message).
        NotAssigned: no assignment for this annotator and comparison, or it was skipped.
        VoteConflict: the annotator already voted differently on it.
        LeaseExpired: the lease ran out and every slot is taken by others.
        ComparisonClosed: the comparison was retired.
    """
    now = now or timezone.now()
    fields = _vote_fields_validate(
        choice=choice, strength=strength, rationale=rationale, aspects=aspects, ms_on_item=ms_on_item
    )
    try:
        with transaction.atomic():
            # Lock the assignment first: a concurrent resubmit by the same annotator waits here and
            # then sees the vote this one writes.
            assignment = (
                Assignment.objects.select_for_update()
                .select_related("comparison")
                .filter(comparison_id=comparison_id, annotator=annotator)
                .first()
            )
            existing = Vote.objects.filter(comparison_id=comparison_id, annotator=annotator).first()
            if existing is not None:
                if _same_vote(existing, fields):
                    return existing, False
                raise VoteConflict(
                    f"You already voted {existing.choice!r} on comparison {comparison_id}; a vote cannot be changed.",
                    vote=existing,
                )
            if assignment is None or assignment.status == AssignmentStatus.SKIPPED:
                raise NotAssigned(f"Comparison {comparison_id} is not assigned to you.")
            comparison = assignment.comparison
            if comparison.status == ComparisonStatus.RETIRED:
                raise ComparisonClosed(f"Comparison {comparison_id} was retired and takes no more votes.")
            if assignment.expires_at <= now:
                taken = comparison.vote_count + _active_leases_of_others(comparison, annotator, now).count()
                if taken >= comparison.votes_required:
                    raise LeaseExpired(
                        f"Your lease on comparison {comparison_id} expired and its slot went to another annotator."
                    )
            if ms_on_item is None:
                ms_on_item = min(int((now - assignment.leased_at).total_seconds() * 1000), MAX_MS_ON_ITEM)
            vote = Vote.objects.create(
                comparison_id=comparison_id,
                annotator=annotator,
                shown_left=assignment.shown_left,
                ms_on_item=ms_on_item,
                **fields,
            )
            Assignment.objects.filter(pk=assignment.pk).update(status=AssignmentStatus.VOTED, finished_at=now)
            Comparison.objects.filter(pk=comparison_id).update(
                vote_count=F("vote_count") + 1,
                status=Case(
                    When(
                        status=ComparisonStatus.OPEN,
                        vote_count__gte=F("votes_required") - 1,
                        then=Value(ComparisonStatus.COMPLETE),
                    ),
                    default=F("status"),
                ),
            )
            return vote, True
    except IntegrityError:
        # Only a concurrent identical insert can get here (the unique constraint on comparison+annotator).
        existing = Vote.objects.filter(comparison_id=comparison_id, annotator=annotator).first()
        if existing is None:
            raise
        if _same_vote(existing, fields):
            return existing, False
        raise VoteConflict(f"You already voted {existing.choice!r} on comparison {comparison_id}.", vote=existing) from None

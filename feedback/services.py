"""Writes to the feedback app: every function validates, writes inside one transaction and
returns the rows it wrote. Keyword-only arguments; errors are ``django.core.exceptions.ValidationError``
(field -> messages) or a ``feedback.errors.FeedbackError`` subclass.

Here: prompts, completions and comparisons. The queue (``assignment_claim``, ``assignment_skip``)
lives in ``feedback.claims`` and the vote (``vote_submit``) in ``feedback.vote_submit``; both are
re-exported here, so callers use ``feedback.services`` for every write.
"""
from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from django.core.exceptions import ValidationError
from django.db import connection, transaction

from .identity.services import comparisons_identity_flag
from .messages import (
    MAX_COMPLETION_CHARS,
    MessagesError,
    messages_sha256,
    messages_validate,
    response_key,
    responses_equivalent,
    text_is_empty,
)
from .models import Choice, Comparison, ComparisonStatus, Completion, Prompt, Split

# The queue and the vote live in their own modules; callers keep using ``feedback.services``.
from .claims import MAX_ID, MAX_SKIP_NOTE_CHARS, assignment_claim, assignment_skip  # noqa: E402,F401
from .vote_submit import MAX_DEMONSTRATION_CHARS, MAX_RATIONALE_CHARS, vote_submit  # noqa: E402,F401

MAX_TAGS = 50
MAX_TAG_CHARS = 100
MAX_VOTES_REQUIRED = 100


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


def _field_messages(error: ValidationError) -> list[str]:
    """``{field: [message, ...]}`` as ``["field: message", ...]`` (a ValidationError cannot nest dicts)."""
    return [f"{field}: {message}" for field, messages in error.message_dict.items() for message in messages]


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
        ValidationError: {"<index>": ["<field>: <message>", ...]} naming each bad item; nothing is written.
    """
    built, errors = [], {}
    for index, item in enumerate(prompts):
        try:
            built.append(prompt_build(**item))
        except ValidationError as error:
            errors[str(index)] = _field_messages(error)
        except TypeError as error:
            errors[str(index)] = [str(error)]
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
        ValidationError: {"<index>": ["<field>: <message>", ...]}; nothing is written.
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
            errors[str(index)] = ["prompt: no such prompt"]
            continue
        try:
            built.append(completion_build(prompt=prompt, **item))
        except ValidationError as error:
            errors[str(index)] = _field_messages(error)
        except TypeError as error:
            errors[str(index)] = [str(error)]
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
    if responses_equivalent(completion_a.text, completion_b.text):
        raise ValidationError({
            "completion_b": "has the same text as completion_a (ignoring whitespace and Unicode composition); "
                            "nothing to compare"
        })
    if not isinstance(votes_required, int) or not 1 <= votes_required <= MAX_VOTES_REQUIRED:
        raise ValidationError({"votes_required": f"must be an integer from 1 to {MAX_VOTES_REQUIRED}"})
    if not isinstance(priority, int) or abs(priority) > 1_000_000:
        raise ValidationError({"priority": "must be an integer from -1000000 to 1000000"})
    if gold_choice not in ("", *Choice.values):
        raise ValidationError({"gold_choice": f"must be empty or one of {', '.join(Choice.values)}"})


def _same_pair_of_prompt(prompt_id: int, text_a: str, text_b: str) -> int | None:
    """The id of a comparison of this prompt whose two responses are equivalent to ``text_a`` and
    ``text_b`` (``response_key``, in either order), or None."""
    wanted = sorted((response_key(text_a), response_key(text_b)))
    rows = Comparison.objects.filter(prompt_id=prompt_id).values_list("id", "completion_a__text", "completion_b__text")
    for comparison_id, stored_a, stored_b in rows.order_by("id").iterator(chunk_size=200):
        if sorted((response_key(stored_a), response_key(stored_b))) == wanted:
            return comparison_id
    return None


def comparison_create(
    *,
    completion_a: Completion,
    completion_b: Completion,
    votes_required: int = 1,
    priority: int = 0,
    gold_choice: str = "",
) -> Comparison:
    """Pair two completions of one prompt for judging.

    The prompt's row is locked while the pair is checked and written, so two concurrent calls
    cannot both store the same pair.

    Raises:
        ValidationError: same completion twice, different prompts, equivalent texts
            (``feedback.messages.responses_equivalent``), a pair of this prompt whose two responses
            are equivalent to these (in either order; it would be the same row in every export),
            votes_required outside 1-100, or a bad gold choice.

    A response matching an active identity pattern flags the new comparison
    (``feedback.identity.services.comparisons_identity_flag``).
    """
    _comparison_check(completion_a, completion_b, votes_required, priority, gold_choice)
    with transaction.atomic():
        list(Prompt.objects.select_for_update().filter(pk=completion_a.prompt_id).values_list("pk", flat=True))
        duplicate = _same_pair_of_prompt(completion_a.prompt_id, completion_a.text, completion_b.text)
        if duplicate is not None:
            raise ValidationError({"completion_b": f"this pair already exists as comparison {duplicate}"})
        comparison = Comparison.objects.create(
            prompt_id=completion_a.prompt_id,
            completion_a=completion_a,
            completion_b=completion_b,
            votes_required=votes_required,
            priority=priority,
            gold_choice=gold_choice,
        )
        comparisons_identity_flag(comparisons=[comparison])
        return comparison


def _prompt_lock(digest: str) -> None:
    """Serialise writers of prompts with these messages until the transaction ends.

    PostgreSQL: a transaction-level advisory lock keyed by the hash's first 60 bits. SQLite: the
    transaction is IMMEDIATE (``config.settings``), so writers are serialised already.
    """
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_xact_lock(%s)", [int(digest[:15], 16)])


def prompt_get_or_create(*, fields: Mapping[str, Any]) -> tuple[Prompt, bool]:
    """The stored prompt with these messages (``messages_sha256``, the oldest if there are several,
    as imports do), or a new one; ``(prompt, created)``. Concurrency-safe: two identical calls at
    once give one prompt (``_prompt_lock``).

    A reused prompt keeps its source and split; tags in ``fields`` that it lacks are added to it.

    Args:
        fields: ``messages`` and optional ``source``, ``tags``, ``split`` (see ``prompt_build``).
    Raises:
        ValidationError: {"messages"|"source"|"tags"|"split": ...} as ``prompt_build``, and
            {"split": ...} when ``fields`` names a split other than the stored prompt's.
    """
    built = prompt_build(**fields)
    with transaction.atomic():
        _prompt_lock(built.messages_sha256)
        stored = (
            Prompt.objects.select_for_update().filter(messages_sha256=built.messages_sha256).order_by("id").first()
        )
        if stored is None:
            built.save()
            return built, True
        if "split" in fields and fields["split"] != stored.split:
            raise ValidationError({
                "split": f"these messages are already prompt {stored.pk}, in split {stored.split!r}; "
                         "a prompt is in one split only"
            })
        added = [tag for tag in built.tags if tag not in stored.tags]
        if added:
            stored.tags = [*stored.tags, *added]
            stored.save(update_fields=["tags"])
        return stored, False


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

    Prompt fields name the stored prompt with the same messages when there is one
    (``prompt_get_or_create``), so posting the same messages twice gives one prompt, and posting
    the same pair twice is refused (``comparison_create``).

    Raises:
        ValidationError: {"prompt"|"completion_a"|"completion_b"|...: ...}; nothing is written.
    """
    with transaction.atomic():
        if not isinstance(prompt, Prompt):
            try:
                prompt, _ = prompt_get_or_create(fields=prompt)
            except ValidationError as error:
                raise ValidationError({"prompt": [f"{k}: {' '.join(v)}" for k, v in error.message_dict.items()]}) from None
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

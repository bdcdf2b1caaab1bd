"""Writes to the feedback app: every function validates, writes inside one transaction and
returns the rows it wrote. Keyword-only arguments; errors are ``django.core.exceptions.ValidationError``
(field -> messages) or a ``feedback.errors.FeedbackError`` subclass.
"""
from __future__ import annotations

import random
from collections.abc import Iterable, Mapping
from functools import partial
from itertools import groupby
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import IntegrityError, connection, transaction
from django.db.models import Q
from django.utils import timezone

from .campaigns.pool import campaign_table, pool_sql
from .campaigns.questions import answers_check, questions_of
from .errors import (
    AnnotatorPaused,
    ComparisonClosed,
    GuidelinesUnread,
    ItemChanged,
    LeaseExpired,
    NotAssigned,
    NotInPool,
    VoteConflict,
    annotator_paused_message,
)
from .gold import GoldCheck, gold_draw, gold_pause_due
from .row_insert import instance_insert
from .identity.services import comparison_identity_flag_annotator, comparisons_identity_flag
from .messages import (
    MAX_COMPLETION_CHARS,
    MessagesError,
    messages_sha256,
    messages_validate,
    response_key,
    responses_equivalent,
    text_is_empty,
)
from .models import (
    AspectChoice,
    Assignment,
    AssignmentStatus,
    Campaign,
    CampaignAnnotatorPause,
    CampaignStatus,
    Choice,
    Comparison,
    ComparisonStatus,
    Completion,
    Demonstration,
    GuidelineAcknowledgement,
    GuidelineVersion,
    Prompt,
    QualityReport,
    SkipReason,
    Split,
    Strength,
    Vote,
    VoteOrigin,
)
from .roles import is_feedback_admin
from .queue import SCREEN_CHOICES, Candidate, candidate_pick, choice_on_screen, choice_stored, side_draw
from .quality.schedule import quality_reports_after_vote, vote_due_columns, vote_due_params
from .signals import vote_recorded

MAX_TAGS = 50
MAX_TAG_CHARS = 100
MAX_RATIONALE_CHARS = 10_000
MAX_DEMONSTRATION_CHARS = 20_000
MAX_MS_ON_ITEM = 24 * 3600 * 1000
MAX_VOTES_REQUIRED = 100
MAX_ID = 2**63 - 1  # the largest BigAutoField id; a larger one cannot exist (and overflows SQLite's INTEGER)
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


# --- the queue --------------------------------------------------------------------------------
def _lease_length() -> timedelta:
    return timedelta(seconds=settings.ARBITER_LEASE_SECONDS)


def _active_leases_of_others(comparison_ref, annotator, now: datetime):
    return (
        Assignment.objects.filter(comparison=comparison_ref, status=AssignmentStatus.LEASED, expires_at__gt=now)
        .exclude(annotator=annotator)
    )


# The claim's queries, in SQL: built by the ORM, a claim took ~2.6 ms of CPU, most of it composing
# SQL (the database's own work is tens of microseconds), and on SQLite the write lock is held all
# the while; written out, ~0.7 ms. Per candidate, ``leases`` counts unexpired leases held by
# others and ``mine`` is the annotator's own (expired) lease on it, renewed rather than
# duplicated when that comparison is picked.
#
# The first statement names the campaigns that may serve the annotator (active, their pool holds
# them; ``campaign`` narrows it to one), highest priority first, each with the annotator's live
# lease in it if any: a lease in a campaign that was paused, closed or left is not served again.
# A campaign where the annotator's access is paused (an open ``CampaignAnnotatorPause``) is left out.
_PAUSED_SQL = (
    "EXISTS (SELECT 1 FROM {pause} p WHERE p.campaign_id = k.id AND p.annotator_id = %(annotator)s"
    " AND p.lifted_at IS NULL)"
)
_ELIGIBLE_SQL = (
    "SELECT k.id, k.priority,"
    " (SELECT a.id FROM {assignment} a INNER JOIN {comparison} c ON c.id = a.comparison_id"
    " WHERE a.annotator_id = %(annotator)s AND a.status = %(leased)s AND a.expires_at > %(now)s"
    " AND c.status = %(open)s AND c.campaign_id = k.id ORDER BY a.leased_at ASC, a.id ASC LIMIT 1), k.gold_rate,"
    " k.ai_votes_count"
    " FROM {campaign} k WHERE k.status = %(active)s AND {pool}{scope} AND NOT " + _PAUSED_SQL +
    " ORDER BY k.priority DESC, k.id ASC"
)
_LEASES_OF_OTHERS_SQL = (
    "(SELECT COUNT(*) FROM {assignment} l WHERE l.comparison_id = c.id AND l.status = %(leased)s"
    " AND l.expires_at > %(now)s AND l.annotator_id <> %(annotator)s)"
)
_MINE_SQL = "(SELECT m.id FROM {assignment} m WHERE m.comparison_id = c.id AND m.annotator_id = %(annotator)s)"
# ``campaigns``: the ids of the eligible campaigns of one priority (index comparison_campaign_queue
# for one campaign, comparison_queue_order for several).
# AI judges' votes (issue 16) are not in ``c.vote_count`` (people's votes only): they fill slots only
# in a campaign with ``ai_votes_count``, where ``counted`` adds them (``_AI_COUNTED_SQL``); elsewhere
# ``counted`` is plain ``c.vote_count`` and the human path's SQL is unchanged.
_AI_VOTES_SQL = "(SELECT COUNT(*) FROM {vote} j WHERE j.comparison_id = c.id AND j.origin = 'ai')"
_AI_COUNTED_SQL = "(c.vote_count + CASE WHEN c.campaign_id IN ({ai_campaigns}) THEN " + _AI_VOTES_SQL + " ELSE 0 END)"
_CANDIDATES_SQL = (
    "SELECT c.id, c.priority, c.created_at, c.votes_required, {counted}, {leases}, {mine}"
    " FROM {comparison} c"
    " WHERE c.status = %(open)s AND c.campaign_id IN ({campaigns}){not_gold}"
    " AND NOT EXISTS (SELECT 1 FROM {assignment} d WHERE d.comparison_id = c.id AND d.annotator_id = %(annotator)s"
    " AND d.status IN (%(voted)s, %(skipped)s))"
    " AND {counted} + {leases} < c.votes_required"
    " ORDER BY c.priority DESC, c.created_at ASC, c.id ASC"
    " LIMIT %(limit)s"
)
_FRESH_SLOTS_SQL = "SELECT c.id, {leases}, {mine} FROM {comparison} c WHERE c.id IN ({ids})"
# In campaigns with a gold_rate, gold items are left out of the normal candidates (``not_gold``).
_NOT_GOLD_SQL = " AND (c.gold_choice = '' OR c.campaign_id NOT IN ({gold}))"
# Gold items (``gold_choice`` set, in a campaign whose ``gold_rate`` is above 0) are served apart:
# never counted against ``votes_required`` (any number of annotators may see one), each at most once
# per annotator (voted or skipped), in queue order. Run only when the claim draws a gold item
# (``feedback.gold.gold_draw``); on PostgreSQL the row is locked (SKIP LOCKED) for the claim's
# transaction only.
_GOLD_CANDIDATE_SQL = (
    "SELECT c.id, {mine} FROM {comparison} c"
    " WHERE c.status = %(open)s AND c.campaign_id IN ({campaigns}) AND c.gold_choice <> ''"
    " AND NOT EXISTS (SELECT 1 FROM {assignment} d WHERE d.comparison_id = c.id AND d.annotator_id = %(annotator)s"
    " AND d.status IN (%(voted)s, %(skipped)s))"
    " ORDER BY c.priority DESC, c.created_at ASC, c.id ASC LIMIT 1"
)


def _tables() -> dict[str, str]:
    return {"assignment": Assignment._meta.db_table, "comparison": Comparison._meta.db_table, "vote": Vote._meta.db_table,
            "campaign": campaign_table(), "guidelines": GuidelineVersion._meta.db_table,
            "acknowledgements": GuidelineAcknowledgement._meta.db_table,
            "pause": CampaignAnnotatorPause._meta.db_table, "quality": QualityReport._meta.db_table}


def _db_datetime(value) -> datetime:
    """A datetime column read by a raw query, as the ORM would give it (SQLite hands back text)."""
    convert = getattr(connection.ops, "convert_datetimefield_value", None)
    return convert(value, None, connection) if convert is not None else value


def _campaign_refusal(campaign: Campaign) -> NotInPool:
    if not campaign.is_active:
        return NotInPool(f"Campaign {campaign.name!r} is {campaign.status}: it serves no comparisons now.")
    return NotInPool(f"You are not in the pool of campaign {campaign.name!r}; ask an admin to add you.")


def _pause_refusal(annotator, campaign: Campaign | None) -> AnnotatorPaused | None:
    """The refusal for an annotator with an open gold pause (in ``campaign``, or in any campaign
    when None), or None. One query, run only when no campaign serves them."""
    pauses = CampaignAnnotatorPause.objects.filter(annotator=annotator, lifted_at__isnull=True)
    if campaign is not None:
        pauses = pauses.filter(campaign=campaign)
    name = pauses.values_list("campaign__name", flat=True).first()
    return AnnotatorPaused(annotator_paused_message(name)) if name is not None else None


def assignment_claim(
    *, annotator, campaign: Campaign | None = None, now: datetime | None = None, rng: random.Random | None = None
) -> Assignment | None:
    """Lease the next comparison to ``annotator``, or return None when nothing is left for them.

    Only comparisons of active campaigns whose pool holds the annotator are served (an admin who
    is not in a pool takes no slot); with ``campaign``, only that campaign's, otherwise the
    campaigns' in priority order (highest first). A live lease the annotator already holds in one
    of those campaigns is returned again (reloads and second tabs see the same item). Otherwise one
    locked query per campaign priority (usually just the first) reads a few candidates in queue
    order (open, not voted on or skipped by this annotator, fewer votes plus others' live leases
    than ``votes_required``); ``feedback.queue.candidate_pick`` chooses among them and a lease of
    ``ARBITER_LEASE_SECONDS`` is written. On PostgreSQL the query is ``SELECT ... FOR UPDATE SKIP
    LOCKED`` and the slot counts are re-read after the lock; on SQLite the whole claim runs in one
    IMMEDIATE transaction, so claims are serialised.

    Gold items (comparisons with a ``gold_choice``) are mixed in: within a priority level, when the
    level has normal work for the annotator, ``feedback.gold.gold_draw(rng, rate)`` (``rate``: the
    largest ``gold_rate`` among the level's campaigns) decides whether a gold item of those
    campaigns they have not voted on or skipped is served instead (one query more, on a draw only;
    none left: the normal item). Gold items are never served once the normal work is done, and
    never counted against ``votes_required``. In a campaign whose ``gold_rate`` is 0 a comparison
    with a ``gold_choice`` is an ordinary item (served by slots, completed by votes). Campaigns where the annotator is paused (an open
    ``CampaignAnnotatorPause``) serve them nothing.

    Raises:
        NotInPool: ``campaign`` is not active, or its pool does not hold the annotator.
        AnnotatorPaused: (a NotInPool) the annotator's access to ``campaign`` is paused, or, with
            no ``campaign``, no campaign serves them and one of theirs is paused.
    """
    now = now or timezone.now()
    if campaign is not None and not campaign.is_active:
        raise _campaign_refusal(campaign)
    with transaction.atomic():
        params = {
            "annotator": annotator.pk,
            "now": connection.ops.adapt_datetimefield_value(now),
            "leased": AssignmentStatus.LEASED.value,
            "open": ComparisonStatus.OPEN.value,
            "voted": AssignmentStatus.VOTED.value,
            "skipped": AssignmentStatus.SKIPPED.value,
            "active": CampaignStatus.ACTIVE.value,
            "limit": CLAIM_BATCH,
            "campaign": campaign.pk if campaign is not None else None,
        }
        tables = _tables()
        scope = " AND k.id = %(campaign)s" if campaign is not None else ""
        with connection.cursor() as cursor:
            cursor.execute(_ELIGIBLE_SQL.format(pool=pool_sql("k.id"), scope=scope, **tables), params)
            eligible = cursor.fetchall()
        if not eligible:
            paused = _pause_refusal(annotator, campaign)
            if paused is not None:
                raise paused
            if campaign is not None:
                raise _campaign_refusal(campaign)
            return None
        current = next((row[2] for row in eligible if row[2] is not None), None)
        if current is not None:
            return Assignment.objects.get(pk=current)
        for _, group in groupby(eligible, key=lambda row: row[1]):
            group = list(group)
            ids = {f"k{i}": row[0] for i, row in enumerate(group)}
            gold_rate = max(row[3] or 0.0 for row in group)
            gold_ids = {f"g{i}": row[0] for i, row in enumerate(group) if (row[3] or 0.0) > 0}
            ai_ids = {f"j{i}": row[0] for i, row in enumerate(group) if row[4]}
            assignment = _claim_in(annotator, ids, params, tables, now, rng, gold_rate=gold_rate, gold_ids=gold_ids,
                                   ai_ids=ai_ids)
            if assignment is not None:
                return assignment
        return None


def _claim_in(
    annotator, campaign_ids: dict[str, int], params: dict, tables: dict, now: datetime, rng, *,
    gold_rate: float = 0.0, gold_ids: dict[str, int] | None = None, ai_ids: dict[str, int] | None = None,
) -> Assignment | None:
    """The claim's candidates step within the campaigns ``campaign_ids`` (placeholder -> id); with
    normal work left, a gold item of the campaigns ``gold_ids`` when ``gold_draw`` says so. In the
    campaigns ``ai_ids`` (``ai_votes_count`` on) AI votes fill slots too; elsewhere only people's."""
    subqueries = {"leases": _LEASES_OF_OTHERS_SQL.format(**tables), "mine": _MINE_SQL.format(**tables)}
    campaigns = ", ".join(f"%({name})s" for name in campaign_ids)
    not_gold = _NOT_GOLD_SQL.format(gold=", ".join(f"%({name})s" for name in gold_ids)) if gold_ids else ""
    counted = "c.vote_count"
    if ai_ids:
        counted = _AI_COUNTED_SQL.format(ai_campaigns=", ".join(f"%({name})s" for name in ai_ids), **tables)
    sql = _CANDIDATES_SQL.format(campaigns=campaigns, not_gold=not_gold, counted=counted, **subqueries, **tables)
    skip_locked = connection.features.has_select_for_update_skip_locked
    if skip_locked:
        sql += " FOR UPDATE OF c SKIP LOCKED"
    with connection.cursor() as cursor:
        cursor.execute(sql, params | campaign_ids | (gold_ids or {}) | (ai_ids or {}))
        rows = cursor.fetchall()
        if not rows:
            return None
        slots = {row[0]: row[5:7] for row in rows}  # id -> (others' live leases, my assignment id)
        if skip_locked:
            # Fresh counts now that the rows are locked (a new statement, so a new snapshot):
            # a lease committed after the first query's snapshot is seen.
            ids = {f"c{i}": row[0] for i, row in enumerate(rows)}
            placeholders = ", ".join(f"%({name})s" for name in ids)
            cursor.execute(_FRESH_SLOTS_SQL.format(ids=placeholders, **subqueries, **tables), params | ids)
            slots = {id_: (leases, mine) for id_, leases, mine in cursor.fetchall()}
    picked = candidate_pick(
        [Candidate(r[0], r[1], _db_datetime(r[2]), r[3], r[4] + slots[r[0]][0]) for r in rows]
    )
    if picked is None:
        return None
    comparison_id, mine = picked.comparison_id, slots[picked.comparison_id][1]
    if gold_ids and gold_draw(rng, gold_rate):
        gold = _gold_candidate(gold_ids, params, tables)
        if gold is not None:
            comparison_id, mine = gold
    return _lease_write(annotator, comparison_id, mine, now, rng)


def _gold_candidate(gold_ids: dict[str, int], params: dict, tables: dict) -> tuple[int, int | None] | None:
    """The first gold item (in queue order) of the campaigns ``gold_ids`` that the annotator has
    not voted on or skipped: ``(comparison id, their own expired lease's id or None)``, or None."""
    campaigns = ", ".join(f"%({name})s" for name in gold_ids)
    sql = _GOLD_CANDIDATE_SQL.format(campaigns=campaigns, mine=_MINE_SQL.format(**tables), **tables)
    if connection.features.has_select_for_update_skip_locked:
        # Two claims at once (PostgreSQL) do not lease the same gold item to one annotator twice:
        # the second passes over it to the next gold item.
        sql += " FOR UPDATE OF c SKIP LOCKED"
    with connection.cursor() as cursor:
        cursor.execute(sql, params | gold_ids)
        row = cursor.fetchone()
    return (row[0], row[1]) if row else None


def _lease_write(annotator, comparison_id: int, mine: int | None, now: datetime, rng) -> Assignment:
    """Lease ``comparison_id`` to ``annotator``: renew their own expired lease ``mine``, or a new one."""
    expires = now + _lease_length()
    if mine is not None:  # the annotator's own expired lease on this comparison: renew it
        stale = Assignment.objects.get(pk=mine)
        stale.leased_at, stale.expires_at = now, expires
        stale.save(update_fields=["leased_at", "expires_at"])
        return stale
    return Assignment.objects.create(
        comparison_id=comparison_id,
        annotator=annotator,
        shown_left=side_draw(rng),
        leased_at=now,
        expires_at=expires,
    )


MAX_SKIP_NOTE_CHARS = 500


def _skip_reason_validate(*, reason: Any, note: Any) -> tuple[str, str]:
    r"""``(reason, note)`` checked: ``reason`` is ``""`` (a plain skip) or a ``SkipReason`` value;
    ``note`` (stripped, ``\r\n`` -> ``\n``) is at most ``MAX_SKIP_NOTE_CHARS`` characters, required
    for ``other`` and refused without a reason. Raises ValidationError {"reason"|"note": message}."""
    errors: dict[str, str] = {}
    if not isinstance(reason, str) or reason not in ("", *SkipReason.values):
        errors["reason"] = f"must be one of {', '.join(SkipReason.values)} (or empty for a plain skip)"
    if not isinstance(note, str):
        errors["note"] = "must be text"
    else:
        note = note.replace("\r\n", "\n").strip()
        if "\x00" in note:
            errors["note"] = "must not contain NUL characters"
        elif len(note) > MAX_SKIP_NOTE_CHARS:
            errors["note"] = f"is {len(note)} characters; at most {MAX_SKIP_NOTE_CHARS}"
        elif "reason" not in errors and reason == SkipReason.OTHER and not note:
            errors["note"] = "say what is wrong: a note is required when the reason is other"
        elif "reason" not in errors and not reason and note:
            errors["reason"] = "choose a reason for your note (or leave the note empty for a plain skip)"
    if errors:
        raise ValidationError(errors)
    return reason, note


def assignment_skip(
    *, annotator, comparison_id: int, reason: str = "", note: str = "", now: datetime | None = None
) -> Assignment:
    """Record that ``annotator`` skipped the comparison; its slot is freed and it is never served to them again.

    ``reason``: ``""`` for a plain skip, or a ``SkipReason`` value to flag the item for the admins
    (``identity_leak``, ``personal_data``, ``broken``, ``other``); ``note``: the annotator's words,
    at most ``MAX_SKIP_NOTE_CHARS`` characters, required when the reason is ``other``. Both are
    stored on the assignment (``skip_reason``, ``skip_note``). An ``identity_leak`` skip also flags
    the comparison (``Comparison.identity_leak``, one UPDATE), so its votes leave the leaderboard.

    Skipping twice is harmless (the first skip's reason stays). Raises ValidationError
    (``{"reason"|"note": message}``) on a bad reason or note, before anything is read; NotAssigned
    when they hold no assignment for it, and VoteConflict when they already voted on it.
    """
    reason, note = _skip_reason_validate(reason=reason, note=note)
    now = now or timezone.now()
    if not 0 < comparison_id <= MAX_ID:
        raise NotAssigned(f"Comparison {comparison_id} is not assigned to you.")
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
            assignment.skip_reason, assignment.skip_note = reason, note
            assignment.save(update_fields=["status", "finished_at", "skip_reason", "skip_note"])
            if reason == SkipReason.IDENTITY_LEAK:
                comparison_identity_flag_annotator(comparison_id=comparison_id)
        return assignment


# --- votes ------------------------------------------------------------------------------------
def _vote_fields_validate(
    *,
    choice: Any,
    strength: Any,
    rationale: Any,
    aspects: Mapping[str, Any] | None,
    ms_on_item: Any,
    demonstration: Any = "",
) -> tuple[dict[str, Any], str]:
    """The vote's fields (as ``Vote`` keyword arguments) and the cleaned demonstration text ('' for none).

    The demonstration's line breaks become ``\n`` (a browser posts a textarea's as ``\r\n``) and
    its outer whitespace is stripped, so a blank box is no demonstration.
    """
    errors: dict[str, str] = {}
    if choice not in (*Choice.values, *SCREEN_CHOICES):
        errors["choice"] = f"must be one of {', '.join((*SCREEN_CHOICES, *Choice.values))}"
    strength = strength or ""
    if strength not in ("", *Strength.values):
        errors["strength"] = f"must be empty or one of {', '.join(Strength.values)}"
    elif strength and choice not in (Choice.A, Choice.B, *SCREEN_CHOICES):
        errors["strength"] = "only a preference for one response has a strength; leave it empty for tie or both_bad"
    rationale = rationale or ""
    if not isinstance(rationale, str):
        errors["rationale"] = "must be a string"
    elif len(rationale) > MAX_RATIONALE_CHARS:
        errors["rationale"] = f"is {len(rationale)} characters; at most {MAX_RATIONALE_CHARS}"
    cleaned_aspects = {}
    for name, value in (aspects or {}).items():
        if name not in Vote.ASPECTS:
            errors[name] = f"unknown aspect; expected one of {', '.join(Vote.ASPECTS)}"
        elif (value or "") not in ("", *AspectChoice.values, *SCREEN_CHOICES):
            errors[name] = f"must be empty or one of {', '.join((*SCREEN_CHOICES, *AspectChoice.values))}"
        else:
            cleaned_aspects[name] = value or ""
    if ms_on_item is not None and (
        isinstance(ms_on_item, bool) or not isinstance(ms_on_item, int) or not 0 <= ms_on_item <= MAX_MS_ON_ITEM
    ):
        errors["ms_on_item"] = f"must be an integer number of milliseconds from 0 to {MAX_MS_ON_ITEM}"
    demonstration = demonstration or ""
    if not isinstance(demonstration, str):
        errors["demonstration"] = "must be a string"
    else:
        demonstration = demonstration.replace("\r\n", "\n").strip()
        if len(demonstration) > MAX_DEMONSTRATION_CHARS:
            errors["demonstration"] = f"is {len(demonstration)} characters; at most {MAX_DEMONSTRATION_CHARS}"
        elif "\x00" in demonstration:
            errors["demonstration"] = "contains a NUL character"
    if errors:
        raise ValidationError(errors)
    return {"choice": choice, "strength": strength, "rationale": rationale, **cleaned_aspects}, demonstration


def _same_vote(vote: Vote, fields: Mapping[str, Any]) -> bool:
    return all(getattr(vote, name) == value for name, value in fields.items())


# The vote's reads and counter updates in SQL, for the same reason as the claim's (~1.8 ms of CPU
# through the ORM, ~0.3 ms so).
# With the row come its campaign's status and questions, the id and number of its latest
# guidelines (``g``, NULL when it has none) and whether this annotator acknowledged them: the
# campaign's rules cost the vote no statement of their own. The last two columns say whether the
# overall and the campaign's quality report are due a recompute (feedback.quality.schedule): only
# a vote that finds one due runs a statement for it, after it commits.
_VOTE_TARGET_SQL = (
    "SELECT a.id, a.status, a.shown_left, a.leased_at, a.expires_at, c.status, c.vote_count, c.votes_required,"
    " c.prompt_id, a.comparison_id,"
    " k.name, k.slug, k.status, k.ask_strength, k.aspects, k.rationale, k.ask_demonstration, g.id, g.number,"
    " EXISTS (SELECT 1 FROM {acknowledgements} ack WHERE ack.version_id = g.id AND ack.annotator_id = %(annotator)s),"
    " c.gold_choice, k.id, k.gold_feedback, k.gold_min_accuracy, k.gold_min_votes, " + _PAUSED_SQL + ", k.gold_rate,"
    " k.ai_votes_count, "
    + vote_due_columns(table="{quality}", campaign_column="k.id") +
    " FROM {assignment} a INNER JOIN {comparison} c ON c.id = a.comparison_id"
    " INNER JOIN {campaign} k ON k.id = c.campaign_id"
    " LEFT JOIN {guidelines} g ON g.id = (SELECT gl.id FROM {guidelines} gl WHERE gl.campaign_id = k.id"
    " ORDER BY gl.number DESC LIMIT 1)"
    " WHERE a.comparison_id = %(comparison)s AND a.annotator_id = %(annotator)s"
)
# The same row found by the item token a vote carries (index assignment_annotator_token).
_VOTE_ITEM_SQL = _VOTE_TARGET_SQL.replace("a.comparison_id = %(comparison)s", "a.token = %(item)s")
ITEM_CHANGED = (
    "This comparison is no longer the one on your screen (it was voted on, skipped or replaced, perhaps in"
    " another tab or by a double click); nothing was saved."
)
_VOTE_EXISTS_SQL = "SELECT 1 FROM {vote} WHERE comparison_id = %(comparison)s AND annotator_id = %(annotator)s"
_VOTE_RECORD_ASSIGNMENT_SQL = "UPDATE {assignment} SET status = %(voted)s, finished_at = %(now)s WHERE id = %(id)s"
# Right-hand sides see the row before the update: the vote that fills the last slot completes it.
# A gold item (``gold`` = 1: in a campaign with a gold_rate) is never completed by votes: it stays
# open for every annotator in the pool.
# ``vote_count`` counts people's votes only; in a campaign with ``ai_votes_count`` the AI votes
# (``{ai}``: `` - (their count)``, else empty) lower the bar that completes the comparison.
_VOTE_COUNT_SQL = (
    "UPDATE {comparison} SET vote_count = vote_count + 1,"
    " status = CASE WHEN status = %(open)s AND vote_count >= votes_required - 1{ai} AND %(gold)s = 0"
    " THEN %(complete)s ELSE status END"
    " WHERE id = %(id)s"
)


# An annotator's gold votes and matches in one campaign (run after a gold vote, when the campaign
# has a gold_min_accuracy).
_GOLD_TALLY_SQL = (
    "SELECT COUNT(*), COALESCE(SUM(CASE WHEN v.choice = c.gold_choice THEN 1 ELSE 0 END), 0)"
    " FROM {vote} v INNER JOIN {comparison} c ON c.id = v.comparison_id"
    " WHERE v.annotator_id = %(annotator)s AND c.campaign_id = %(campaign)s AND c.gold_choice <> ''"
)


def _campaign_rules_check(row: tuple, fields: Mapping[str, Any], demonstration: str) -> int | None:
    """The campaign's rules for a vote read by ``_VOTE_TARGET_SQL`` (``row[10:20]``, ``row[25]``):
    it must be active, the annotator not paused in it, the answers must fit its questions, and its
    latest guidelines must be acknowledged. Returns the latest guidelines' id (None: the campaign has none)."""
    name, slug, status, ask_strength, aspects, rationale_mode, ask_demonstration, guidelines_id, number, read = row[10:20]
    if status != CampaignStatus.ACTIVE:
        raise NotInPool(f"Campaign {name!r} is {status}: it takes no votes now; nothing was saved.")
    if row[25]:
        raise AnnotatorPaused(annotator_paused_message(name) + " Nothing was saved.")
    questions = questions_of(
        ask_strength=ask_strength, aspects=aspects, rationale=rationale_mode, ask_demonstration=ask_demonstration
    )
    errors = answers_check(
        questions, strength=fields["strength"], rationale=fields["rationale"], demonstration=demonstration,
        aspects={name: fields.get(name, "") for name in Vote.ASPECTS},
    )
    if errors:
        raise ValidationError(errors)
    if guidelines_id is not None and not read:
        raise GuidelinesUnread(
            f"Read the guidelines of campaign {name!r} (version {number}) and say you have read them before voting;"
            " nothing was saved.", campaign_slug=slug, version=number,
        )
    return guidelines_id


def _gold_pause_check(*, annotator, row: tuple, tables: dict) -> None:
    """After a gold vote (``row``: ``_VOTE_TARGET_SQL``'s): pause the annotator's access to the
    campaign when ``feedback.gold.gold_pause_due`` says so. One query (the tally) when the
    campaign has a ``gold_min_accuracy``, two more (a savepoint and the INSERT) when it pauses."""
    campaign_id, min_accuracy, min_votes = row[21], row[23], row[24]
    if min_accuracy is None:
        return
    with connection.cursor() as cursor:
        cursor.execute(_GOLD_TALLY_SQL.format(**tables), {"annotator": annotator.pk, "campaign": campaign_id})
        votes, correct = cursor.fetchone()
    if not gold_pause_due(votes=votes, correct=int(correct), min_accuracy=min_accuracy, min_votes=min_votes):
        return
    try:
        with transaction.atomic():
            CampaignAnnotatorPause.objects.create(
                campaign_id=campaign_id, annotator=annotator, votes=votes, correct=int(correct),
                reason=f"gold accuracy {int(correct)}/{votes} below {min_accuracy:.0%}",
            )
    except IntegrityError:  # paused already by a concurrent vote
        pass


def vote_submit(
    *,
    annotator,
    comparison_id: int | None = None,
    item: str = "",
    choice: str,
    strength: str = "",
    rationale: str = "",
    aspects: Mapping[str, str] | None = None,
    ms_on_item: int | None = None,
    demonstration: str = "",
    now: datetime | None = None,
) -> tuple[Vote, bool]:
    """Store ``annotator``'s preference on a comparison assigned to them.

    The comparison is named by ``item`` (the assignment's opaque token, what the annotator page and
    ``POST /api/assignments/next/`` hand out), by ``comparison_id``, or both (then they must agree).
    ``choice``: ``left`` or ``right`` (screen sides, mapped to ``a``/``b`` here with the
    assignment's ``shown_left``, so the client never learns which stored side is which), or
    ``a``, ``b`` (the comparison's completions), ``tie``, ``both_bad``. The side shown on the left
    is copied from the assignment. When ``ms_on_item`` is not given it is taken as the time since
    the lease began.

    ``demonstration``: the annotator's own better response (the "write a better response" box),
    at most ``MAX_DEMONSTRATION_CHARS`` characters after ``\r\n`` -> ``\n`` and ``strip()``. When
    not blank, a ``Demonstration`` (the comparison's prompt, this annotator and comparison,
    source ``"annotator"``) is stored in the same transaction as the vote: one INSERT more; a
    blank one costs no query.

    Returns: ``(vote, created)``. Submitting the identical vote again returns the stored one with
    ``created=False`` and writes nothing (its demonstration included).
    Raises:
        ValidationError: malformed fields (field -> message), e.g. ``{"demonstration": "is 20001
            characters; at most 20000"}``; nothing is written.
        NotAssigned: no assignment for this annotator and comparison, or it was skipped.
        ItemChanged: ``item`` names no assignment of this annotator's, a skipped one, one already
            voted on differently, or one whose comparison is not ``comparison_id`` (a vote cast on
            a page that is out of date).
        VoteConflict: the annotator already voted differently on it.
        LeaseExpired: the lease ran out and every slot is taken by others.
        ComparisonClosed: the comparison was retired.
        NotInPool: the comparison's campaign is not active (paused, closed).
        ValidationError: an answer the comparison's campaign does not ask (``strength``, an aspect,
            ``rationale``, ``demonstration``), or no ``rationale`` where it requires one.
        GuidelinesUnread: the campaign has guidelines whose latest version the annotator has not
            acknowledged (``feedback.campaigns.guidelines.guidelines_acknowledge``).

    The vote records the campaign's latest guidelines (``guidelines_version``) and ``blind``:
    False when the annotator could see model names (``feedback.roles.is_feedback_admin``).

    Gold items: a vote on a comparison with a ``gold_choice`` never completes it (see
    ``assignment_claim``) and no expired-lease slot check applies. When the campaign has a
    ``gold_min_accuracy`` the annotator's gold tally is read (one query, on gold votes only) and
    their access paused (``CampaignAnnotatorPause``) when it falls below. The returned vote carries
    ``gold_check`` (a ``feedback.gold.GoldCheck``) when it was on a gold item of a campaign with
    ``gold_feedback`` on, else None: what the next page tells the annotator. Whether a vote matched
    is never stored; it is computed from ``gold_choice`` when read, so changing a gold answer re-scores.
    Raises ``AnnotatorPaused`` (a NotInPool, 403) when the annotator's access is paused.
    """
    now = now or timezone.now()
    fields, demonstration = _vote_fields_validate(
        choice=choice,
        strength=strength,
        rationale=rationale,
        aspects=aspects,
        ms_on_item=ms_on_item,
        demonstration=demonstration,
    )
    if not item and comparison_id is None:
        raise ValidationError({"item": "name the item (or comparison) the vote is for"})
    if comparison_id is not None and not 0 < comparison_id <= MAX_ID:
        raise NotAssigned(f"Comparison {comparison_id} is not assigned to you.")
    try:
        with transaction.atomic():
            # Lock the assignment (and its comparison) first: a concurrent resubmit by the same
            # annotator waits here and then sees the vote this one writes.
            tables = _tables()
            target = {"comparison": comparison_id, "annotator": annotator.pk, "item": item,
                      **{name: connection.ops.adapt_datetimefield_value(moment)
                         for name, moment in vote_due_params(now).items()}}
            sql = (_VOTE_ITEM_SQL if item else _VOTE_TARGET_SQL).format(**tables)
            if connection.features.has_select_for_update:
                # The assignment and comparison only: never the campaign's row, which every vote reads.
                sql += " FOR UPDATE OF a, c" if connection.features.has_select_for_update_of else " FOR UPDATE"
            with connection.cursor() as cursor:
                cursor.execute(sql, target)
                row = cursor.fetchone()
                if item and (row is None or row[1] == AssignmentStatus.SKIPPED or comparison_id not in (None, row[9])):
                    raise ItemChanged(ITEM_CHANGED)
                comparison_id = target["comparison"] = row[9] if row else comparison_id
                cursor.execute(_VOTE_EXISTS_SQL.format(**tables), target)
                voted = cursor.fetchone() is not None
            if row is not None:  # left/right (choice and aspects) -> the stored a/b
                for name in ("choice", *Vote.ASPECTS):
                    if name in fields:
                        fields[name] = choice_stored(fields[name], row[2])
            if voted:
                existing = Vote.objects.filter(comparison_id=comparison_id, annotator=annotator).first()
                if _same_vote(existing, fields):
                    return existing, False
                if item:  # a page still showing an item that was voted on (a second tab): not a change of mind
                    raise ItemChanged(ITEM_CHANGED)
                said = choice_on_screen(existing.choice, existing.shown_left).replace("_", " ")
                raise VoteConflict(
                    f"You already voted on comparison {comparison_id} (you chose {said}); a vote cannot be changed.",
                    vote=existing,
                )
            if row is None or row[1] == AssignmentStatus.SKIPPED:
                raise NotAssigned(f"Comparison {comparison_id} is not assigned to you.")
            assignment_id, _, shown_left, leased_at, expires_at, status, vote_count, votes_required, prompt_id = row[:9]
            leased_at, expires_at = _db_datetime(leased_at), _db_datetime(expires_at)
            if status == ComparisonStatus.RETIRED:
                raise ComparisonClosed(f"Comparison {comparison_id} was retired and takes no more votes.")
            guidelines_id = _campaign_rules_check(row, fields, demonstration)
            gold_choice = row[20] if row[26] else ""  # a gold item only where the campaign mixes them in
            ai_counted = bool(row[27])  # the campaign counts AI votes toward votes_required
            if expires_at <= now and not gold_choice:
                taken = vote_count + _active_leases_of_others(comparison_id, annotator, now).count()
                if ai_counted:
                    taken += Vote.objects.filter(comparison_id=comparison_id, origin=VoteOrigin.AI).count()
                if taken >= votes_required:
                    raise LeaseExpired(
                        f"Your lease on comparison {comparison_id} expired and its slot went to another annotator."
                    )
            if ms_on_item is None:
                ms_on_item = min(int((now - leased_at).total_seconds() * 1000), MAX_MS_ON_ITEM)
            vote = instance_insert(Vote(  # Vote.objects.create without composing the INSERT each time
                comparison_id=comparison_id,
                annotator=annotator,
                shown_left=shown_left,
                ms_on_item=ms_on_item,
                guidelines_version_id=guidelines_id,
                blind=not is_feedback_admin(annotator),
                **fields,
            ))
            if demonstration:
                Demonstration.objects.create(
                    prompt_id=prompt_id,
                    text=demonstration,
                    annotator=annotator,
                    comparison_id=comparison_id,
                    source="annotator",
                )
            with connection.cursor() as cursor:
                cursor.execute(
                    _VOTE_RECORD_ASSIGNMENT_SQL.format(**tables),
                    {"voted": AssignmentStatus.VOTED.value, "now": connection.ops.adapt_datetimefield_value(now),
                     "id": assignment_id},
                )
                ai = " - " + _AI_VOTES_SQL.replace("c.id", "%(id)s").format(**tables) if ai_counted else ""
                cursor.execute(
                    _VOTE_COUNT_SQL.format(ai=ai, **tables),
                    {"open": ComparisonStatus.OPEN.value, "complete": ComparisonStatus.COMPLETE.value,
                     "id": comparison_id, "gold": 1 if gold_choice else 0},
                )
            vote.gold_check = None
            if gold_choice:
                _gold_pause_check(annotator=annotator, row=row, tables=tables)
                if row[22]:
                    vote.gold_check = GoldCheck(vote.choice, gold_choice, shown_left)
            # Listeners (the training loop counts votes) hear of it once the vote is committed.
            transaction.on_commit(lambda: vote_recorded.send(sender=Vote, vote_id=vote.pk, created_at=vote.created_at))
            if row[28] or row[29]:  # a quality report is due a recompute (rarely: debounced)
                transaction.on_commit(partial(quality_reports_after_vote, campaign_id=row[21], overall=bool(row[28]),
                                              campaign=bool(row[29])), robust=True)
            return vote, True
    except IntegrityError:
        # Only a concurrent identical insert can get here (the unique constraint on comparison+annotator).
        existing = Vote.objects.filter(comparison_id=comparison_id, annotator=annotator).first()
        if existing is None:
            raise
        if _same_vote(existing, fields):
            return existing, False
        said = choice_on_screen(existing.choice, existing.shown_left).replace("_", " ")
        raise VoteConflict(f"You already voted on comparison {comparison_id} (you chose {said}).", vote=existing) from None

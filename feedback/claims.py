"""The annotation queue: claiming an item (``assignment_claim``: a lease on one comparison slot
for one annotator, in the campaigns of their pool, gold items mixed in) and skipping or flagging
it (``assignment_skip``). Writes inside one transaction; errors are ``feedback.errors.FeedbackError``
subclasses or ``ValidationError``. Re-exported by ``feedback.services``.
"""
from __future__ import annotations

import random
from itertools import groupby
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import connection, transaction
from django.utils import timezone

from .campaigns.pool import campaign_table, pool_sql
from .errors import AnnotatorPaused, NotAssigned, NotInPool, VoteConflict, annotator_paused_message
from .gold import gold_draw
from .identity.services import comparison_identity_flag_annotator
from .models import (
    Assignment,
    AssignmentStatus,
    Campaign,
    CampaignAnnotatorPause,
    CampaignStatus,
    Comparison,
    ComparisonStatus,
    GuidelineAcknowledgement,
    GuidelineVersion,
    QualityReport,
    SkipReason,
    Vote,
)
from .queue import Candidate, candidate_pick, side_draw

MAX_ID = 2**63 - 1  # the largest BigAutoField id; a larger one cannot exist (and overflows SQLite's INTEGER)
CLAIM_BATCH = 4


# --- claims --------------------------------------------------------------------------------
def lease_length() -> timedelta:
    return timedelta(seconds=settings.ARBITER_LEASE_SECONDS)


def active_leases_of_others(comparison_ref, annotator, now: datetime):
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
PAUSED_SQL = (
    "EXISTS (SELECT 1 FROM {pause} p WHERE p.campaign_id = k.id AND p.annotator_id = %(annotator)s"
    " AND p.lifted_at IS NULL)"
)
_ELIGIBLE_SQL = (
    "SELECT k.id, k.priority,"
    " (SELECT a.id FROM {assignment} a INNER JOIN {comparison} c ON c.id = a.comparison_id"
    " WHERE a.annotator_id = %(annotator)s AND a.status = %(leased)s AND a.expires_at > %(now)s"
    " AND c.status = %(open)s AND c.campaign_id = k.id ORDER BY a.leased_at ASC, a.id ASC LIMIT 1), k.gold_rate,"
    " k.ai_votes_count"
    " FROM {campaign} k WHERE k.status = %(active)s AND {pool}{scope} AND NOT " + PAUSED_SQL +
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
AI_VOTES_SQL = "(SELECT COUNT(*) FROM {vote} j WHERE j.comparison_id = c.id AND j.origin = 'ai')"
_AI_COUNTED_SQL = "(c.vote_count + CASE WHEN c.campaign_id IN ({ai_campaigns}) THEN " + AI_VOTES_SQL + " ELSE 0 END)"
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


def sql_tables() -> dict[str, str]:
    return {"assignment": Assignment._meta.db_table, "comparison": Comparison._meta.db_table, "vote": Vote._meta.db_table,
            "campaign": campaign_table(), "guidelines": GuidelineVersion._meta.db_table,
            "acknowledgements": GuidelineAcknowledgement._meta.db_table,
            "pause": CampaignAnnotatorPause._meta.db_table, "quality": QualityReport._meta.db_table}


def db_datetime(value) -> datetime:
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
        tables = sql_tables()
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
        [Candidate(r[0], r[1], db_datetime(r[2]), r[3], r[4] + slots[r[0]][0]) for r in rows]
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
    expires = now + lease_length()
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



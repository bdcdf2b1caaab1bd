"""Recording a vote (``vote_submit``): the fields checked, the lease and the item on screen
checked, the vote written with one prepared INSERT, the comparison's count moved, gold checks and
quality recomputes queued, all in one transaction. Re-exported by ``feedback.services``.
"""
from __future__ import annotations

from collections.abc import Mapping
from functools import partial
from datetime import datetime
from typing import Any

from django.core.exceptions import ValidationError
from django.db import IntegrityError, connection, transaction
from django.utils import timezone

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
from .gold import GoldCheck, gold_pause_due
from .row_insert import instance_insert
from .models import (
    AspectChoice,
    AssignmentStatus,
    CampaignAnnotatorPause,
    CampaignStatus,
    Choice,
    ComparisonStatus,
    Demonstration,
    Strength,
    Vote,
    VoteOrigin,
)
from .roles import is_feedback_admin
from .queue import SCREEN_CHOICES, choice_on_screen, choice_stored
from .quality.schedule import quality_reports_after_vote, vote_due_columns, vote_due_params
from .signals import vote_recorded

from .claims import AI_VOTES_SQL, MAX_ID, PAUSED_SQL, active_leases_of_others, db_datetime, sql_tables

MAX_RATIONALE_CHARS = 10_000
MAX_DEMONSTRATION_CHARS = 20_000
MAX_MS_ON_ITEM = 24 * 3600 * 1000


# --- votes ------------------------------------------------------------------------------------
def vote_fields_validate(
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
    " c.gold_choice, k.id, k.gold_feedback, k.gold_min_accuracy, k.gold_min_votes, " + PAUSED_SQL + ", k.gold_rate,"
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
    fields, demonstration = vote_fields_validate(
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
            tables = sql_tables()
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
            leased_at, expires_at = db_datetime(leased_at), db_datetime(expires_at)
            if status == ComparisonStatus.RETIRED:
                raise ComparisonClosed(f"Comparison {comparison_id} was retired and takes no more votes.")
            guidelines_id = _campaign_rules_check(row, fields, demonstration)
            gold_choice = row[20] if row[26] else ""  # a gold item only where the campaign mixes them in
            ai_counted = bool(row[27])  # the campaign counts AI votes toward votes_required
            if expires_at <= now and not gold_choice:
                taken = vote_count + active_leases_of_others(comparison_id, annotator, now).count()
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
                ai = " - " + AI_VOTES_SQL.replace("c.id", "%(id)s").format(**tables) if ai_counted else ""
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

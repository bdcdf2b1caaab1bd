"""Writes of identity leaks: flag comparisons at creation, edit the pattern list, re-scan.

- ``comparisons_identity_flag``: called by every path that creates comparisons (``comparison_create``,
  ``comparison_create_inline`` through it, ``feedback.interface.pairs_record``, the preference
  imports' ``_pairs_write``), in bulk: one read of the active patterns, one insert of the matches
  and one UPDATE of the flagged comparisons.
- ``identity_pattern_create``/``identity_pattern_update``: validate (a bad regex is a field
  error), save, and queue a re-scan (``identity_rescan_request``) after the commit. A pattern made
  inactive is taken off its comparisons at once (its matches deleted; a comparison left with no
  match and no annotator flag is un-flagged); no scan is needed for that.
- ``identity_rescan_run``: the background scan (``feedback.tasks.identity_rescan_execute``): every
  comparison, in id order, in batches of ``SCAN_BATCH``, its matches rewritten to the active
  patterns' (read again for each batch, so a pattern deactivated during a scan is not put back),
  progress on the ``IdentityScan`` row after each batch. Annotator flags are kept.
- ``comparison_identity_flag_annotator``: an annotator's "reveals which model wrote it" skip (one UPDATE).
"""
from __future__ import annotations

import traceback
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.db.models import Exists, OuterRef, Q
from django.utils import timezone

from feedback.models import Comparison

from .matcher import KINDS, MAX_PATTERN_CHARS, PatternError, PatternSet, PatternSpec, identity_matches, pattern_set, pattern_source
from .models import IdentityMatch, IdentityPattern, IdentityScan, IdentityScanStatus

SCAN_BATCH = 500
MAX_NOTE_CHARS = 2000
FIELDS = ("text", "kind", "scope", "active", "note")


def active_pattern_set() -> PatternSet:
    """The active patterns, compiled (cached per set of patterns: one query, no recompiling)."""
    rows = IdentityPattern.objects.filter(active=True).order_by("id").values_list("id", "text", "kind", "scope")
    return pattern_set(tuple(PatternSpec(*row) for row in rows))


def _comparison_refresh(comparison_ids: Iterable[int] | None = None) -> int:
    """Set ``identity_leak`` from the annotator flag and the match rows, for these comparisons
    (None: all). Returns how many rows changed."""
    rows = Comparison.objects.all() if comparison_ids is None else Comparison.objects.filter(pk__in=list(comparison_ids))
    matched = Exists(IdentityMatch.objects.filter(comparison=OuterRef("pk")))
    changed = rows.filter(identity_leak=True, identity_leak_annotator=False).exclude(matched).update(identity_leak=False)
    changed += rows.filter(identity_leak=False).filter(Q(identity_leak_annotator=True) | matched).update(identity_leak=True)
    return changed


def comparisons_identity_flag(*, comparisons: Sequence[Any], patterns: PatternSet | None = None) -> int:
    """Flag the new ``comparisons`` (saved ``Comparison`` rows with ``completion_a``/``completion_b``
    loaded) whose responses match an active pattern: their ``IdentityMatch`` rows are inserted and
    ``identity_leak`` set (in the rows and on the objects). Returns how many were flagged.
    Call inside the transaction that created them."""
    patterns = active_pattern_set() if patterns is None else patterns
    if not patterns or not comparisons:
        return 0
    matches, flagged = [], []
    for comparison in comparisons:
        texts = [(c.model_name, c.text) for c in (comparison.completion_a, comparison.completion_b)]
        found = identity_matches(texts, patterns)
        if found:
            flagged.append(comparison.pk)
            comparison.identity_leak = True
            matches += [IdentityMatch(comparison_id=comparison.pk, pattern_id=spec.id) for spec in found]
    if flagged:
        IdentityMatch.objects.bulk_create(matches, batch_size=SCAN_BATCH, ignore_conflicts=True)
        for start in range(0, len(flagged), SCAN_BATCH):
            Comparison.objects.filter(pk__in=flagged[start:start + SCAN_BATCH]).update(identity_leak=True)
    return len(flagged)


def comparison_identity_flag_annotator(*, comparison_id: int) -> None:
    """An annotator said the comparison reveals which model wrote it: flag it (one UPDATE)."""
    Comparison.objects.filter(pk=comparison_id).update(identity_leak=True, identity_leak_annotator=True)


# --- the pattern list -------------------------------------------------------------------------
def identity_pattern_check(*, values: Mapping[str, Any], pattern: IdentityPattern | None = None) -> dict[str, Any]:
    """Checked fields from ``values`` (only those given; all of ``text`` for a new pattern).
    Raises ValidationError {field: message}."""
    errors: dict[str, str] = {}
    unknown = sorted(set(values) - set(FIELDS))
    if unknown:
        errors["non_field_errors"] = f"unknown fields: {', '.join(unknown)}"
    cleaned: dict[str, Any] = {}
    for name in ("text", "scope", "note"):
        if name in values:
            value = values[name]
            if not isinstance(value, str) or "\x00" in value:
                errors[name] = "must be text"
            else:
                cleaned[name] = value.strip() if name != "note" else value.strip()[:MAX_NOTE_CHARS]
    if "kind" in values:
        if values["kind"] not in KINDS:
            errors["kind"] = f"must be one of {', '.join(KINDS)}"
        else:
            cleaned["kind"] = values["kind"]
    if "active" in values:
        if not isinstance(values["active"], bool):
            errors["active"] = "must be true or false"
        else:
            cleaned["active"] = values["active"]
    if "scope" in cleaned and len(cleaned["scope"]) > 200:
        errors["scope"] = "is a model name: at most 200 characters"
    text = cleaned.get("text", pattern.text if pattern else "")
    kind = cleaned.get("kind", pattern.kind if pattern else "word")
    if "text" not in errors and "kind" not in errors:
        if not text:
            errors["text"] = "must not be empty"
        elif len(text) > MAX_PATTERN_CHARS:
            errors["text"] = f"is {len(text)} characters; at most {MAX_PATTERN_CHARS}"
        else:
            try:
                pattern_source(PatternSpec(0, text, kind))
            except PatternError as error:
                errors["text"] = str(error)
    if errors:
        raise ValidationError(errors)
    return cleaned


def _save(pattern: IdentityPattern, fields: list[str] | None = None) -> None:
    try:
        with transaction.atomic():
            pattern.save(update_fields=fields) if fields else pattern.save()
    except IntegrityError:
        raise ValidationError({"text": "this pattern (same text, kind and scope) already exists"}) from None


def identity_pattern_create(*, values: Mapping[str, Any], created_by=None) -> IdentityPattern:
    """Add a pattern (``text``, ``kind`` word/regex, ``scope`` "" or a model name, ``active``,
    ``note``) and, when active, queue a re-scan of every comparison.

    Raises:
        ValidationError: {"text": why (empty, too long, not a valid or a refused regex, a
            duplicate), "kind"|"scope"|"active"|"note": ...}; nothing is written.
    """
    cleaned = identity_pattern_check(values=values)
    with transaction.atomic():
        pattern = IdentityPattern(created_by=created_by, **cleaned)
        _save(pattern)
        if pattern.active:
            identity_rescan_request(reason=f"pattern {pattern.pk} added", created_by=created_by)
    return pattern


def identity_pattern_update(*, pattern: IdentityPattern, values: Mapping[str, Any], updated_by=None) -> IdentityPattern:
    """Change a pattern's fields (those given). Deactivating takes it off its comparisons at once;
    a change to an active pattern's text, kind or scope, or re-activating it, queues a re-scan.

    Raises:
        ValidationError: as ``identity_pattern_create``.
    """
    cleaned = identity_pattern_check(values=values, pattern=pattern)
    with transaction.atomic():
        pattern = IdentityPattern.objects.select_for_update().get(pk=pattern.pk)
        before = (pattern.text, pattern.kind, pattern.scope, pattern.active)
        for name, value in cleaned.items():
            setattr(pattern, name, value)
        _save(pattern)
        after = (pattern.text, pattern.kind, pattern.scope, pattern.active)
        if before[3] and not pattern.active:
            _pattern_matches_drop(pattern)
        elif pattern.active and before != after:
            if before[:3] != after[:3]:
                _pattern_matches_drop(pattern)
            identity_rescan_request(reason=f"pattern {pattern.pk} changed", created_by=updated_by)
    return pattern


def identity_pattern_deactivate(*, pattern: IdentityPattern, updated_by=None) -> IdentityPattern:
    """Stop using a pattern: its matches go, and comparisons it alone flagged (no other pattern,
    no annotator flag) are un-flagged. Idempotent."""
    return identity_pattern_update(pattern=pattern, values={"active": False}, updated_by=updated_by)


def identity_pattern_delete(*, pattern: IdentityPattern) -> None:
    """Delete a pattern, un-flagging the comparisons it alone flagged."""
    with transaction.atomic():
        _pattern_matches_drop(pattern)
        pattern.delete()


def _pattern_matches_drop(pattern: IdentityPattern) -> None:
    ids = list(IdentityMatch.objects.filter(pattern=pattern).values_list("comparison_id", flat=True))
    IdentityMatch.objects.filter(pattern=pattern).delete()
    for start in range(0, len(ids), SCAN_BATCH):
        _comparison_refresh(ids[start:start + SCAN_BATCH])


# --- re-scans ---------------------------------------------------------------------------------
def identity_rescan_request(*, reason: str = "", created_by=None) -> tuple[IdentityScan, bool]:
    """Queue a background re-scan of every comparison (``feedback.tasks.identity_rescan_execute``,
    enqueued after the commit), unless one is queued and not yet started: that one will read the
    patterns as they are when it runs. Returns the scan row and whether a new one was queued."""
    with transaction.atomic():
        waiting = IdentityScan.objects.select_for_update().filter(status=IdentityScanStatus.QUEUED).first()
        if waiting is not None:
            return waiting, False
        scan = IdentityScan.objects.create(reason=reason[:300], created_by=created_by)
        transaction.on_commit(lambda: _enqueue(scan.pk))
    return scan, True


def _enqueue(scan_id: int) -> None:
    from feedback.tasks import identity_rescan_execute

    result = identity_rescan_execute.enqueue(scan_id)
    IdentityScan.objects.filter(pk=scan_id).update(task_id=str(result.id))


def identity_rescan_run(*, scan_id: int | None = None) -> IdentityScan:
    """Re-scan every comparison against the active patterns now (``scan_id``: a queued scan row;
    None: a new row, for ``manage.py identity_patterns rescan``). Matches of each batch are
    rewritten in one transaction, then ``identity_leak`` refreshed and progress saved; a comparison
    an annotator flagged stays flagged. A scan that is not queued is returned as it is.
    On an error the row is marked failed with the traceback, and the error raised again."""
    with transaction.atomic():
        if scan_id is None:
            scan = IdentityScan.objects.create(reason="run directly")
        else:
            scan = IdentityScan.objects.select_for_update().get(pk=scan_id)
            if scan.status != IdentityScanStatus.QUEUED:
                return scan
        scan.status, scan.started_at = IdentityScanStatus.RUNNING, timezone.now()
        scan.total = Comparison.objects.count()
        scan.save(update_fields=["status", "started_at", "total"])
    try:
        last_id, counts = 0, {"scanned": 0, "flagged": 0, "unflagged": 0}
        while True:
            patterns = active_pattern_set()  # per batch: a pattern (de)activated meanwhile counts from here on
            batch = list(
                Comparison.objects.filter(pk__gt=last_id).order_by("pk")
                .values_list("pk", "completion_a__model_name", "completion_a__text",
                             "completion_b__model_name", "completion_b__text", "identity_leak")[:SCAN_BATCH]
            )
            if not batch:
                break
            last_id = batch[-1][0]
            _scan_batch(batch, patterns, counts)
            IdentityScan.objects.filter(pk=scan.pk).update(heartbeat_at=timezone.now(), **counts)
    except Exception:
        IdentityScan.objects.filter(pk=scan.pk).update(status=IdentityScanStatus.FAILED,
                                                       error=traceback.format_exc()[-4000:], finished_at=timezone.now())
        raise
    IdentityScan.objects.filter(pk=scan.pk).update(status=IdentityScanStatus.SUCCEEDED, finished_at=timezone.now())
    return IdentityScan.objects.get(pk=scan.pk)


def _scan_batch(batch: list[tuple], patterns: PatternSet, counts: dict[str, int]) -> None:
    """Rewrite one batch's matches and flags; add to ``counts`` (scanned, flagged, unflagged)."""
    ids = [row[0] for row in batch]
    wanted = {
        (row[0], spec.id)
        for row in batch
        for spec in identity_matches([(row[1], row[2]), (row[3], row[4])], patterns)
    }
    with transaction.atomic():
        stored = set(IdentityMatch.objects.filter(comparison_id__in=ids).values_list("comparison_id", "pattern_id"))
        stale = stored - wanted
        by_pattern: dict[int, list[int]] = {}
        for comparison_id, pattern_id in stale:
            by_pattern.setdefault(pattern_id, []).append(comparison_id)
        for pattern_id, comparison_ids in by_pattern.items():
            IdentityMatch.objects.filter(pattern_id=pattern_id, comparison_id__in=comparison_ids).delete()
        IdentityMatch.objects.bulk_create(
            [IdentityMatch(comparison_id=c, pattern_id=p) for c, p in wanted - stored], ignore_conflicts=True
        )
        before = {row[0] for row in batch if row[5]}
        _comparison_refresh(ids)
        after = set(Comparison.objects.filter(pk__in=ids, identity_leak=True).values_list("pk", flat=True))
    counts["scanned"] += len(batch)
    counts["flagged"] += len(after - before)
    counts["unflagged"] += len(before - after)

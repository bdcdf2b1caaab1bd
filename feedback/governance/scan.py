"""The personal-data scan (a background job; progress and errors on ``PersonalDataScan``) and the
review actions on its findings: mark a row clean, or redact it.

Scanned fields: each prompt message's ``content`` (field ``messages.<i>.content``), completion and
demonstration ``text``, and vote ``rationale``. A scan replaces the open findings of every row it
reads; a finding an admin marked clean is not raised again at the same span.

Person names are scanned when ``ARBITER_NAME_MODEL`` names a spaCy model that loads
(``feedback.governance.names``: presidio-analyzer in a child process, one batch of texts at a
time); either way the scan records one line in ``PersonalDataScan.names``: what recognised them,
or ``names not scanned: <why>``.
"""
from __future__ import annotations

import traceback
from collections.abc import Iterator

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from feedback.messages import messages_sha256
from feedback.models import Completion, Demonstration, Prompt, Vote

from .audit import audit_record
from .detectors import detect, redact
from .names import NameRecogniser, NamesUnavailable, name_recogniser_open
from .models import AuditAction
from .policies import PolicyBook, RowFacts, demonstration_facts, vote_facts
from .scan_models import FindingStatus, PersonalDataFinding, PersonalDataScan, RedactedOriginal, RowKind, ScanStatus

BATCH = 500
UPDATED_FIELDS = {RowKind.PROMPT: ["messages", "messages_sha256"], RowKind.COMPLETION: ["text"],
                  RowKind.VOTE: ["rationale"], RowKind.DEMONSTRATION: ["text"]}
ROW_KINDS = {
    RowKind.PROMPT: Prompt,
    RowKind.COMPLETION: Completion,
    RowKind.VOTE: Vote,
    RowKind.DEMONSTRATION: Demonstration,
}


def _fields(kind: str, row) -> Iterator[tuple[str, str]]:
    """``(field name, text)`` of each scanned text field of a row."""
    if kind == RowKind.PROMPT:
        for index, message in enumerate(row.messages or []):
            if isinstance(message, dict) and isinstance(message.get("content"), str):
                yield f"messages.{index}.content", message["content"]
    elif kind == RowKind.VOTE:
        yield "rationale", row.rationale
    else:
        yield "text", row.text


def _queryset(kind: str):
    model = ROW_KINDS[kind]
    if kind == RowKind.PROMPT:
        return model.objects.only("id", "messages")
    if kind == RowKind.VOTE:
        return model.objects.exclude(rationale="").only("id", "rationale")
    return model.objects.only("id", "text")


def personal_data_scan_start(*, user=None) -> PersonalDataScan:
    """Queue a scan of every row (the task runs after the transaction commits)."""
    with transaction.atomic():
        scan = PersonalDataScan.objects.create(created_by=user if getattr(user, "is_authenticated", False) else None)
        transaction.on_commit(lambda: _enqueue(scan.pk))
    return scan


def _enqueue(scan_id: int) -> None:
    from feedback.tasks import personal_data_scan_execute

    result = personal_data_scan_execute.enqueue(scan_id)
    PersonalDataScan.objects.filter(pk=scan_id).update(task_id=str(result.id))


def personal_data_scan_run(*, scan_id: int | None = None) -> PersonalDataScan:
    """Scan every prompt, completion, vote rationale and demonstration now (``scan_id``: a queued
    scan; None: a new row). Each batch's findings are rewritten in one transaction, then progress
    saved. A scan that is not queued is returned as it is.

    Raises:
        Exception: whatever stopped it, after the row is marked failed with the traceback's tail.
    """
    with transaction.atomic():
        if scan_id is None:
            scan = PersonalDataScan.objects.create()
        else:
            scan = PersonalDataScan.objects.select_for_update().get(pk=scan_id)
            if scan.status != ScanStatus.QUEUED:
                return scan
        scan.status, scan.started_at = ScanStatus.RUNNING, timezone.now()
        scan.total = sum(_queryset(kind).count() for kind in ROW_KINDS)
        scan.save(update_fields=["status", "started_at", "total"])
    counts = {"scanned": 0, "found": 0}
    names: NameRecogniser | None = None
    try:
        try:
            names = name_recogniser_open()
            note = f"names scanned with {names.description}"
        except NamesUnavailable as unavailable:
            note = str(unavailable)
        PersonalDataScan.objects.filter(pk=scan.pk).update(names=note[:300])
        for kind in ROW_KINDS:
            last_id = 0
            while True:
                batch = list(_queryset(kind).filter(pk__gt=last_id).order_by("pk")[:BATCH])
                if not batch:
                    break
                last_id = batch[-1].pk
                _scan_batch(scan, kind, batch, counts, names)
                PersonalDataScan.objects.filter(pk=scan.pk).update(heartbeat_at=timezone.now(), **counts)
    except Exception:
        PersonalDataScan.objects.filter(pk=scan.pk).update(
            status=ScanStatus.FAILED, error=traceback.format_exc()[-4000:], finished_at=timezone.now())
        raise
    finally:
        if names is not None:
            names.close()
    PersonalDataScan.objects.filter(pk=scan.pk).update(status=ScanStatus.SUCCEEDED, finished_at=timezone.now())
    return PersonalDataScan.objects.get(pk=scan.pk)


def _scan_batch(scan: PersonalDataScan, kind: str, rows: list, counts: dict[str, int],
                names: NameRecogniser | None = None) -> None:
    ids = [row.pk for row in rows]
    fields = [(row.pk, field, text) for row in rows for field, text in _fields(kind, row)]
    name_spans = names.spans([text for _, _, text in fields]) if names else [()] * len(fields)
    with transaction.atomic():
        existing = PersonalDataFinding.objects.filter(row_kind=kind, row_id__in=ids)
        cleared = set(existing.filter(status=FindingStatus.CLEAN).values_list("row_id", "field", "detector", "start", "end"))
        existing.filter(status=FindingStatus.OPEN).delete()
        new = [
            PersonalDataFinding(scan=scan, row_kind=kind, row_id=row_id, field=field, detector=f.detector,
                                start=f.start, end=f.end, excerpt=f.excerpt)
            for (row_id, field, text), spans in zip(fields, name_spans) for f in detect(text, names=spans)
            if (row_id, field, f.detector, f.start, f.end) not in cleared
        ]
        PersonalDataFinding.objects.bulk_create(new, batch_size=BATCH)
    counts["scanned"] += len(rows)
    counts["found"] += len(new)


def _open_findings(kind: str, row_id: int):
    if kind not in ROW_KINDS:
        raise ValidationError({"row_kind": f"unknown row kind {kind!r}; expected one of {', '.join(ROW_KINDS)}"})
    return PersonalDataFinding.objects.filter(row_kind=kind, row_id=row_id, status=FindingStatus.OPEN)


def row_mark_clean(*, row_kind: str, row_id: int, user=None, remote_addr: str | None = None) -> int:
    """Mark every open finding of one row clean (not personal data); returns how many. Audited.

    Raises:
        ValidationError: ``{"row_kind": ...}`` for an unknown kind.
    """
    with transaction.atomic():
        count = _open_findings(row_kind, row_id).update(
            status=FindingStatus.CLEAN, resolved_by=user if getattr(user, "is_authenticated", False) else None,
            resolved_at=timezone.now())
        if count:
            audit_record(action=AuditAction.FINDING_CLEAN, user=user, object_type=row_kind, object_id=row_id,
                         remote_addr=remote_addr, details={"findings": count})
    return count


def _facts(kind: str, row) -> RowFacts:
    if kind == RowKind.VOTE:
        return next(iter(vote_facts([row.pk])))
    if kind == RowKind.DEMONSTRATION:
        return next(iter(demonstration_facts([row.pk])))
    prompt = row if kind == RowKind.PROMPT else row.prompt
    return RowFacts(prompt_source=prompt.source, split=prompt.split, campaign_id=None, row_source="", created_at=None)


def keeps_originals(kind: str, row) -> bool:
    """Whether the policy in force for the row keeps originals on redaction (no policy: no)."""
    policy = PolicyBook().policy_for(_facts(kind, row))
    return bool(policy and policy.keep_original_on_redaction)


def row_redact(*, row_kind: str, row_id: int, user=None, remote_addr: str | None = None) -> int:
    """Replace every open finding's span in one row with its label (``[EMAIL]``, ...); the text
    before is kept (``RedactedOriginal``) only if the row's policy says so, else it is gone. A
    prompt's ``messages_sha256`` is recomputed. Returns how many findings were redacted. Audited.

    Raises:
        ValidationError: ``{"row_kind": ...}`` for an unknown kind; ``{"row": ...}`` when the row is gone.
    """
    with transaction.atomic():
        findings = list(_open_findings(row_kind, row_id).select_for_update())
        if not findings:
            return 0
        row = ROW_KINDS[row_kind].objects.select_for_update().filter(pk=row_id).first()
        if row is None:
            raise ValidationError({"row": f"{row_kind} {row_id} no longer exists"})
        keep = keeps_originals(row_kind, row)
        texts = dict(_fields(row_kind, row))
        by_field: dict[str, list[tuple[int, int, str]]] = {}
        for finding in findings:
            by_field.setdefault(finding.field, []).append((finding.start, finding.end, finding.detector))
        for field, spans in by_field.items():
            original = texts[field]
            if keep:
                RedactedOriginal.objects.create(row_kind=row_kind, row_id=row_id, field=field, original=original,
                                                redacted_by=user if getattr(user, "is_authenticated", False) else None)
            _set_text(row_kind, row, field, redact(original, spans))
        if row_kind == RowKind.PROMPT:
            row.messages_sha256 = messages_sha256(row.messages)
        row.save(update_fields=UPDATED_FIELDS[row_kind])
        PersonalDataFinding.objects.filter(pk__in=[f.pk for f in findings]).update(
            status=FindingStatus.REDACTED, resolved_by=user if getattr(user, "is_authenticated", False) else None,
            resolved_at=timezone.now())
        audit_record(action=AuditAction.FINDING_REDACT, user=user, object_type=row_kind, object_id=row_id,
                     remote_addr=remote_addr, details={"findings": len(findings), "fields": sorted(by_field), "original_kept": keep})
    return len(findings)


def _set_text(kind: str, row, field: str, text: str) -> None:
    if kind == RowKind.PROMPT:
        index = int(field.split(".")[1])
        messages = [dict(message) for message in row.messages]
        messages[index]["content"] = text
        row.messages = messages
    elif kind == RowKind.VOTE:
        row.rationale = text
    else:
        row.text = text

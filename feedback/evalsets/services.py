"""Importing an eval set: the whole file read and checked (``feedback.evalsets.files``), duplicates
merged, the content hashed (``feedback.evalsets.normalise``), then one transaction that stores a
new version, or nothing when the same name already holds the same content.
"""
from __future__ import annotations

import re
import tempfile
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.db.models import Max

from ..import_limits import limits_applied
from ..imports import import_limits
from ..messages import messages_sha256
from .files import EvalItemRead, eval_file_read
from .models import EvalSet, EvalSetItem
from .normalise import content_hash, messages_key

MAX_NAME_CHARS = 100
NAME_PATTERN = re.compile(r"^[\w][\w .:+-]*$")
WRITE_BATCH = 2000


@dataclass
class MergedItem:
    """One item after duplicates were merged: the first line's messages, the first non-empty
    category and reference, the union of tags, and how many later lines were merged into it."""

    number: int
    messages: list[dict[str, str]]
    category: str
    tags: list[str]
    reference: str
    normal_key: str
    duplicates: int = 0

    def as_content(self) -> dict[str, Any]:
        return {"messages": self.messages, "category": self.category, "tags": self.tags, "reference": self.reference}


def items_merge(items: Iterable[EvalItemRead]) -> list[MergedItem]:
    """Merge items whose messages are near-duplicates (the same ``messages_key``), in file order:
    the first keeps its messages and line; category and reference are the first non-empty ones;
    tags are the union (sorted); ``duplicates`` counts the lines merged in."""
    merged: dict[str, MergedItem] = {}
    for item in items:
        key = messages_key(item.messages)
        kept = merged.get(key)
        if kept is None:
            merged[key] = MergedItem(item.number, item.messages, item.category, list(item.tags), item.reference, key)
            continue
        kept.duplicates += 1
        kept.category = kept.category or item.category
        kept.reference = kept.reference or item.reference
        kept.tags = sorted(set(kept.tags) | set(item.tags))
    return list(merged.values())


@dataclass
class EvalSetImport:
    """What an import did: ``eval_set`` (the stored version), ``created`` (False: the same name
    already held this content, and that version is given back), ``lines_read``,
    ``duplicates_merged``, ``ignored_fields`` (keys or columns that were not read)."""

    eval_set: EvalSet
    created: bool
    lines_read: int
    duplicates_merged: int
    ignored_fields: list[str] = field(default_factory=list)

    def report(self) -> list[str]:
        """The summary in words, one line each."""
        s = self.eval_set
        lines = [
            f"read {self.lines_read} prompt{'s' if self.lines_read != 1 else ''}; "
            f"merged {self.duplicates_merged} duplicate{'s' if self.duplicates_merged != 1 else ''} "
            "(exact or near: same text after NFKC, casefold, no punctuation, one space)",
            (f"eval set {s.name!r} version {s.version}: {s.item_count} prompts, sha256 {s.content_hash}"
             if self.created else
             f"the same content is already eval set {s.name!r} version {s.version}: nothing new was stored"),
        ]
        if self.ignored_fields:
            lines.append(f"ignored fields: {', '.join(self.ignored_fields)}")
        return lines

    def as_dict(self) -> dict[str, Any]:
        """``{"id", "name", "version", "created", "content_hash", "item_count", "lines_read",
        "duplicates_merged", "categories", "ignored_fields", "report"}`` for the API."""
        s = self.eval_set
        return {
            "id": s.pk, "name": s.name, "version": s.version, "created": self.created,
            "content_hash": s.content_hash, "item_count": s.item_count, "lines_read": self.lines_read,
            "duplicates_merged": self.duplicates_merged, "categories": s.categories,
            "ignored_fields": self.ignored_fields, "report": self.report(),
        }


def eval_set_name_check(name: Any) -> str:
    """The name stripped. Raises ValidationError ``{"name": ...}`` unless it is 1-100 characters of
    letters, digits, spaces and ``. : + - _``, starting with a letter, digit or ``_``."""
    text = name.strip() if isinstance(name, str) else ""
    if not text or len(text) > MAX_NAME_CHARS or not NAME_PATTERN.match(text):
        raise ValidationError({"name": f"must be 1-{MAX_NAME_CHARS} letters, digits, spaces or . : + - _ "
                                       "(starting with a letter or digit)"})
    return text


def _stored(name: str, digest: str) -> EvalSet | None:
    return EvalSet.objects.filter(name=name, content_hash=digest).first()


def eval_set_import(
    *, path: str | Path, name: str, file_name: str = "", format: str | None = None, created_by=None
) -> EvalSetImport:
    """Import an eval-set file as a new version of the set ``name`` (whole or not at all).

    Versions: the same name and the same content hash give the stored version back
    (``created=False``); other content gives version ``max + 1`` (1 for a new name).

    Args:
        path: the file (``feedback.evalsets.files`` lists the formats). file_name: its original
            name (format and display). format: ``"jsonl"``, ``"csv"`` or None (told by name/content).
        created_by: the user importing, or None.
    Raises:
        ValidationError: ``{"name": ...}`` for a bad name, or an import of the same name that ran
            at the same time with other content.
        feedback.evalsets.files.EvalSetFileError: the file's problems by line; nothing stored.
        feedback.import_limits.ImportLimitError: an import limit was passed; nothing stored.
        ValueError: an unknown format. OSError: the file cannot be read.
    """
    name = eval_set_name_check(name)
    with limits_applied(import_limits()):
        read = eval_file_read(path, name=file_name or Path(path).name, format=format)
    items = items_merge(read.items)
    digest = content_hash(item.as_content() for item in items)
    result = {"lines_read": len(read.items), "duplicates_merged": len(read.items) - len(items),
              "ignored_fields": read.ignored_fields}
    existing = _stored(name, digest)
    if existing is not None:
        return EvalSetImport(eval_set=existing, created=False, **result)
    try:
        with transaction.atomic():
            version = (EvalSet.objects.filter(name=name).aggregate(top=Max("version"))["top"] or 0) + 1
            eval_set = EvalSet.objects.create(
                name=name, version=version, content_hash=digest, item_count=len(items),
                lines_read=len(read.items), duplicates_merged=result["duplicates_merged"],
                categories=dict(sorted(Counter(item.category for item in items).items())),
                source_format=read.format, file_name=(file_name or Path(path).name)[:255], created_by=created_by,
            )
            EvalSetItem.objects.bulk_create(
                (EvalSetItem(eval_set=eval_set, position=position, messages=item.messages,
                             messages_sha256=messages_sha256(item.messages), normal_key=item.normal_key,
                             category=item.category, tags=item.tags, reference=item.reference,
                             line=item.number, duplicates=item.duplicates)
                 for position, item in enumerate(items)),
                batch_size=WRITE_BATCH,
            )
    except IntegrityError:  # another import of this name took the version number first
        existing = _stored(name, digest)
        if existing is None:
            raise ValidationError({"name": f"another import of {name!r} ran at the same time; try again"}) from None
        return EvalSetImport(eval_set=existing, created=False, **result)
    return EvalSetImport(eval_set=eval_set, created=True, **result)


def eval_set_import_upload(*, chunks: Iterable[bytes], **options) -> EvalSetImport:
    """``eval_set_import`` of an upload given as byte chunks (written to a temporary file that is
    removed afterwards); ``options`` are ``eval_set_import``'s keywords other than ``path``.

    Raises: as ``eval_set_import``.
    """
    with tempfile.NamedTemporaryFile(prefix="arbiter-evalset-") as handle:
        for chunk in chunks:
            handle.write(chunk)
        handle.flush()
        return eval_set_import(path=handle.name, **options)

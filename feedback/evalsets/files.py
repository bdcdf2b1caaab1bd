"""Eval-set files read whole and checked before anything is written (pure code, no Django imports).

Two formats, told by ``format`` or else by the file's name (``.csv``/``.tsv``: CSV; ``.jsonl``,
``.json``, ``.ndjson``, ``.gz``: JSON lines) or else by its first byte (``{`` or gzip: JSON lines):

- JSON lines (plain or gzip), one object a line with ``messages`` (a chat list ending with a user
  turn) or ``prompt`` (text, or a chat list as in TRL's prompt-only format), and optionally
  ``category`` (text), ``tags`` (a list of texts, or one text separated by ``,`` or ``;``) and
  ``reference`` (a reference answer). Other keys are ignored and named in the summary.
- CSV (UTF-8, a header row; comma, semicolon or tab separated) with a ``prompt`` column and
  optionally ``category``, ``tags`` and ``reference`` columns (header names in any case).

The import limits in force (``feedback.import_limits``) bound what is read. Every problem is
reported with its line number (a CSV record is numbered by the line it starts on) and the field.
"""
from __future__ import annotations

import codecs
import csv
import io
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..import_limits import ImportLimitError, active_limits
from ..jsonl import GZIP_MAGIC, JSONLFormatError, jsonl_objects
from ..messages import MessagesError, messages_validate

FORMATS = ("jsonl", "csv")
KNOWN_FIELDS = ("messages", "prompt", "category", "tags", "reference")
MAX_CATEGORY_CHARS = 100
MAX_TAG_CHARS = 50
MAX_TAGS = 50
MAX_REFERENCE_CHARS = 1_000_000
_TAG_SPLIT = re.compile(r"[,;]")


class EvalSetFileError(JSONLFormatError):
    """An eval-set file with problems; ``problems`` lists ``(line_number, message)`` (0: the file
    as a whole). ``first_line()`` is one readable line for a command's error."""

    def first_line(self) -> str:
        """``"<path>: line 3: messages: no user turn (and 2 more problems)"``."""
        number, message = self.problems[0]
        where = f"line {number}: " if number else ""
        more = len(self.problems) - 1
        tail = f" (and {more} more problem{'s' if more > 1 else ''})" if more else ""
        return f"{self.path}: {where}{message}{tail}"


@dataclass
class EvalItemRead:
    """One prompt as read: ``number`` (its line), ``messages`` (validated chat list), ``category``,
    ``tags`` (sorted, no repeats), ``reference`` (``""`` when none)."""

    number: int
    messages: list[dict[str, str]]
    category: str = ""
    tags: list[str] = field(default_factory=list)
    reference: str = ""


@dataclass
class FileRead:
    """What ``eval_file_read`` returns: the items in file order and the keys it ignored."""

    items: list[EvalItemRead]
    ignored_fields: list[str]
    format: str


def _text(value: Any, name: str, limit: int) -> str:
    if value is None:
        return ""
    if not isinstance(value, str):
        raise ValueError(f"{name}: must be text, not {type(value).__name__}")
    if "\x00" in value:
        raise ValueError(f"{name}: contains a NUL character")
    if len(value) > limit:
        raise ValueError(f"{name}: is {len(value):,} characters; at most {limit:,}")
    return value.strip()


def _tags(value: Any) -> list[str]:
    if value is None or value == "":
        return []
    parts = _TAG_SPLIT.split(value) if isinstance(value, str) else value
    if not isinstance(parts, list) or not all(isinstance(tag, str) for tag in parts):
        raise ValueError("tags: must be a list of texts or one text separated by commas")
    tags = sorted({tag.strip() for tag in parts if tag.strip()})
    if len(tags) > MAX_TAGS or any(len(tag) > MAX_TAG_CHARS or "\x00" in tag for tag in tags):
        raise ValueError(f"tags: at most {MAX_TAGS} tags of at most {MAX_TAG_CHARS} characters each")
    return tags


def _messages(value: Any, name: str) -> list[dict[str, str]]:
    if isinstance(value, list) and all(isinstance(m, dict) for m in value):
        if value and not any(m.get("role") == "user" for m in value):
            raise ValueError(f"{name}: no user turn (a prompt needs at least one message with role 'user')")
    try:
        return messages_validate(value)
    except MessagesError as error:
        raise ValueError(f"{name}: {error}") from None


def item_parse(row: dict[str, Any], number: int) -> EvalItemRead:
    """One JSON object (or CSV record as a dict) as an ``EvalItemRead``.

    Raises:
        ValueError: ``"<field>: <problem>"``: neither or both of ``messages`` and ``prompt``, an
            empty prompt, messages that fail ``feedback.messages.messages_validate`` or have no
            user turn, a category/tags/reference that is not text or is too long.
    """
    has_messages, has_prompt = row.get("messages") is not None, row.get("prompt") is not None
    if has_messages and has_prompt:
        raise ValueError("give 'messages' or 'prompt', not both")
    if has_messages:
        messages = _messages(row["messages"], "messages")
    elif has_prompt and isinstance(row["prompt"], list):
        messages = _messages(row["prompt"], "prompt")
    elif has_prompt:
        text = row["prompt"]
        if not isinstance(text, str):
            raise ValueError(f"prompt: must be text or a list of messages, not {type(text).__name__}")
        if not text.strip():
            raise ValueError("prompt: is empty")
        messages = _messages([{"role": "user", "content": text}], "prompt")
    else:
        raise ValueError("no prompt: give 'messages' (a chat list) or 'prompt' (text)")
    return EvalItemRead(
        number=number,
        messages=messages,
        category=_text(row.get("category"), "category", MAX_CATEGORY_CHARS),
        tags=_tags(row.get("tags")),
        reference=_text(row.get("reference"), "reference", MAX_REFERENCE_CHARS),
    )


def _jsonl_items(path: Path, problems: list, ignored: set) -> list[EvalItemRead]:
    items = []
    for number, row in jsonl_objects(path):
        if isinstance(row, ValueError):
            problems.append((number, str(row)))
            continue
        ignored.update(str(key) for key in row if key not in KNOWN_FIELDS)
        try:
            items.append(item_parse(row, number))
        except ValueError as error:
            problems.append((number, str(error)))
    return items


def _csv_text(path: Path) -> str:
    """The file as text: UTF-8 (a BOM is allowed), within ``max_decompressed_bytes``."""
    limits = active_limits()
    with open(path, "rb") as handle:
        data = handle.read(limits.max_decompressed_bytes + 1)
    if len(data) > limits.max_decompressed_bytes:
        raise ImportLimitError(path, name="max_decompressed_bytes", limit=limits.max_decompressed_bytes,
                               number=0, unit="line")
    if data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        raise EvalSetFileError(path, [(0, "the file is UTF-16; save it as UTF-8")])
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        line = data[:error.start].count(b"\n") + 1
        raise EvalSetFileError(path, [(line, f"not UTF-8 ({error.reason} at byte {error.start}); save the file as UTF-8")]) from None


class _RecordError(ValueError):
    """A CSV record the reader cannot parse; ``number`` is the line it starts on."""

    def __init__(self, number: int, message: str):
        self.number = number
        super().__init__(message)


def _csv_records(text: str) -> Iterator[tuple[int, list[str]]]:
    """``(line the record starts on, cells)`` for each record; quoted cells may span lines.

    Raises:
        _RecordError: a malformed record (an unclosed quote, a cell over the field size limit).
    """
    first = text.split("\n", 1)[0]
    delimiter = max(",;\t", key=first.count) if first else ","
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter, strict=True)
    start = 1
    while True:
        try:
            cells = next(reader)
        except StopIteration:
            return
        except csv.Error as error:
            raise _RecordError(start, f"not valid CSV ({error})") from None
        yield start, cells
        start = reader.line_num + 1


def _csv_items(path: Path, problems: list, ignored: set) -> list[EvalItemRead]:
    limits = active_limits()
    records = _csv_records(_csv_text(path))
    items: list[EvalItemRead] = []
    saved = csv.field_size_limit(max(limits.max_value_chars, 1))  # process-wide: put back below
    try:
        header = next(records, None)
        if header is None:
            return items
        names = [cell.strip().lower() for cell in header[1]]
        if "prompt" not in names:
            shown = ", ".join(repr(n) for n in names[:10]) or "nothing"
            problems.append((header[0], f"no 'prompt' column (the header has {shown})"))
            return items
        ignored.update(n for n in names if n not in KNOWN_FIELDS)
        for rows, (number, cells) in enumerate(records, start=1):
            if rows > limits.max_rows:
                raise ImportLimitError(path, name="max_rows", limit=limits.max_rows, number=number, unit="line")
            if not any(cell.strip() for cell in cells):
                continue
            if len(cells) != len(names):
                problems.append((number, f"has {len(cells)} fields; the header has {len(names)}"))
                continue
            row = {name: cell for name, cell in zip(names, cells) if name in KNOWN_FIELDS and name != "messages"}
            try:
                items.append(item_parse(row, number))
            except ValueError as error:
                problems.append((number, str(error)))
    except _RecordError as error:
        if "field limit" in str(error):
            raise ImportLimitError(path, name="max_value_chars", limit=limits.max_value_chars,
                                   number=error.number, unit="line") from None
        problems.append((error.number, str(error)))
    finally:
        csv.field_size_limit(saved)
    return items


def format_of(path: Path, name: str, format: str | None) -> str:
    """``format`` when given (``jsonl`` or ``csv``), else by ``name``'s suffix, else by the first
    byte. Raises ValueError for an unknown format."""
    if format:
        if format not in FORMATS:
            raise ValueError(f"unknown format {format!r}; expected one of {', '.join(FORMATS)}")
        return format
    lower = name.lower()
    if lower.endswith((".csv", ".tsv")):
        return "csv"
    if lower.endswith((".jsonl", ".json", ".ndjson", ".gz")):
        return "jsonl"
    with open(path, "rb") as handle:
        head = handle.read(4096)
    return "jsonl" if head.startswith(GZIP_MAGIC) or head.lstrip().startswith(b"{") else "csv"


def eval_file_read(path: str | Path, *, name: str = "", format: str | None = None) -> FileRead:
    """Read and check a whole eval-set file (module docstring) under the active import limits.

    Args:
        path: the file. name: its original name, for the format (default: ``path``'s).
        format: ``"jsonl"``, ``"csv"`` or None (decided as ``format_of``).
    Returns:
        ``FileRead``: the items in file order (duplicates included), the ignored keys or columns.
    Raises:
        EvalSetFileError: every problem as ``(line, message)``: an empty file (line 0), no
            ``prompt`` column, a line that is not UTF-8, not JSON or not an object, a bad field.
        ImportLimitError: an import limit was passed (names the setting and the line).
        ValueError: an unknown ``format``. OSError: the file cannot be read.
    """
    path = Path(path)
    chosen = format_of(path, name or path.name, format)
    problems: list[tuple[int, str]] = []
    ignored: set[str] = set()
    try:
        reader = _jsonl_items if chosen == "jsonl" else _csv_items
        items = reader(path, problems, ignored)
    except EvalSetFileError as error:
        raise EvalSetFileError(name or path, error.problems) from None
    if not items and not problems:
        problems.append((0, "the file holds no prompts"))
    if problems:
        raise EvalSetFileError(name or path, sorted(problems))
    return FileRead(items=items, ignored_fields=sorted(ignored), format=chosen)

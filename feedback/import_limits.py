"""Limits on what an import may decode, checked while a file is read so a small file cannot grow the
process (no Django imports; ``feedback.imports`` sets them from the ``ARBITER_IMPORT_*`` settings).

A gzip file of repeated long lines can inflate a thousandfold, and a Parquet file can repeat one
dictionary value or one run-length-encoded null on millions of rows. The readers
(``feedback.jsonl.jsonl_objects``, ``feedback.import_rows.parquet_objects``) therefore count, before
they decode a line or a record batch into Python objects:

- ``max_decompressed_bytes``: bytes of JSON lines after gunzip, or of Parquet values as decoded
  (the column chunks' uncompressed sizes from the file's metadata first, then each batch's values
  with dictionaries expanded, before any row becomes Python objects);
- ``max_rows``: non-blank lines, or Parquet rows (``num_rows`` from the metadata first);
- ``max_value_chars``: characters of any one text value (a Parquet dictionary value is checked
  before it is repeated onto rows);
- ``max_line_bytes``: bytes of one JSON line (a longer line is never held);
- ``max_depth``: nesting of arrays and objects in one JSON line, and structural values
  (arrays and objects) per line at most ``max_line_bytes // 64``.

Passing any raises ``ImportLimitError`` (a ``JSONLFormatError``) at once, naming the setting, its
value and the line or row where it was passed; nothing past it is read and nothing is imported.
"""
from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

from .jsonl import JSONLFormatError

MIB = 1024 * 1024


@dataclass(frozen=True)
class ImportLimits:
    """What one import may decode; each field is an ``ARBITER_IMPORT_*`` setting (``SETTINGS``)."""

    max_decompressed_bytes: int = 64 * MIB
    max_rows: int = 50_000
    max_value_chars: int = 2_000_000
    max_line_bytes: int = 10 * MIB
    max_depth: int = 32

    @classmethod
    def from_settings(cls, settings: Any) -> "ImportLimits":
        """The limits named by ``settings`` (``ARBITER_IMPORT_MAX_ROWS`` ...); defaults where unset."""
        values = {}
        for item in fields(cls):
            value = getattr(settings, SETTINGS[item.name], None)
            if value is not None:
                values[item.name] = int(value)
        return cls(**values)


SETTINGS = {
    "max_decompressed_bytes": "ARBITER_IMPORT_MAX_DECOMPRESSED_BYTES",
    "max_rows": "ARBITER_IMPORT_MAX_ROWS",
    "max_value_chars": "ARBITER_IMPORT_MAX_VALUE_CHARS",
    "max_line_bytes": "ARBITER_IMPORT_MAX_LINE_BYTES",
    "max_depth": "ARBITER_IMPORT_MAX_DEPTH",
}
UNITS = {
    "max_decompressed_bytes": "bytes decompressed",
    "max_rows": "rows",
    "max_value_chars": "characters in one value",
    "max_line_bytes": "bytes in one line",
    "max_depth": "levels of nesting",
}


class ImportLimitError(JSONLFormatError):
    """A file that passed an import limit. ``setting`` (e.g. ``"ARBITER_IMPORT_MAX_ROWS"``),
    ``limit`` (its value), ``number`` (the line or row where it was passed; 0: the file as a whole,
    from Parquet metadata) and ``unit`` name it; ``problems`` holds the one message."""

    def __init__(self, path: str | Path, *, name: str, limit: int, number: int, unit: str, found: str = ""):
        self.setting = SETTINGS[name]
        self.limit = limit
        self.number = number
        detail = f" ({found})" if found else ""
        message = f"over {self.setting} = {limit:,} {UNITS[name]}{detail}; nothing was imported"
        super().__init__(path, [(number, message)], unit=unit)

    def as_dict(self) -> dict[str, Any]:
        """``{"setting", "limit", "unit", "number"}`` for an API answer."""
        return {"setting": self.setting, "limit": self.limit, "unit": self.unit, "number": self.number}


_active: ContextVar[ImportLimits] = ContextVar("import_limits", default=ImportLimits())


def active_limits() -> ImportLimits:
    """The limits the readers apply now (``ImportLimits()`` unless inside ``limits_applied``)."""
    return _active.get()


@contextmanager
def limits_applied(limits: ImportLimits) -> Iterator[ImportLimits]:
    """Apply ``limits`` to every read inside the block (this thread or task only)."""
    token = _active.set(limits)
    try:
        yield limits
    finally:
        _active.reset(token)


def json_value_check(value: Any, limits: ImportLimits) -> str | None:
    """None when one parsed JSON value keeps within ``max_depth`` and ``max_value_chars``, else
    ``"max_depth"`` or ``"max_value_chars"`` (the first limit passed). Iterative: no recursion."""
    stack = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, str):
            if len(item) > limits.max_value_chars:
                return "max_value_chars"
        elif isinstance(item, (dict, list)):
            if depth > limits.max_depth:
                return "max_depth"
            children = item.values() if isinstance(item, dict) else item
            stack.extend((child, depth + 1) for child in children)
            if isinstance(item, dict) and any(len(key) > limits.max_value_chars for key in item):
                return "max_value_chars"
    return None

"""JSON-lines files read whole, gzip-compressed or plain, with every bad line reported by number
(no Django imports). The import formats (``feedback.hh_rlhf``, ``feedback.prompt_completion``, and
through ``feedback.import_rows`` ``feedback.trl_preferences`` and ``feedback.arena``) parse each
object; this module reads the lines and collects the problems.
"""
from __future__ import annotations

import gzip
import io
import json
import zlib
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, BinaryIO, TypeVar

MAX_LINE_BYTES = 10 * 1024 * 1024
MAX_LISTED_PROBLEMS = 20
GZIP_MAGIC = b"\x1f\x8b"

T = TypeVar("T")


class JSONLFormatError(ValueError):
    """A JSON-lines file with problems; ``problems`` lists every one as ``(line_number, message)``
    (line 1 is the first line; 0 for the file as a whole), and ``str()`` names the first 20.
    ``unit="row"`` numbers Parquet rows instead (``feedback.import_rows``)."""

    def __init__(self, path: str | Path, problems: list[tuple[int, str]], *, unit: str = "line"):
        self.path = str(path)
        self.problems = problems
        self.unit = unit  # what the numbers count: "line" (JSON lines) or "row" (Parquet)
        listed = [f"{unit} {n}: {message}" if n else message for n, message in problems[:MAX_LISTED_PROBLEMS]]
        more = len(problems) - len(listed)
        if more:
            listed.append(f"... and {more} more")
        noun = "problem" if len(problems) == 1 else "problems"
        super().__init__(f"{self.path}: {len(problems)} {noun}; nothing was read\n" + "\n".join(listed))


def object_of_line(raw: bytes) -> dict[str, Any]:
    """One line's bytes as a JSON object.

    Raises:
        ValueError: ``"not UTF-8 (...)"``, ``"not JSON (...)"`` or ``"not a JSON object but <type>"``.
    """
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as error:
        raise ValueError(f"not UTF-8 ({error.reason} at byte {error.start})") from None
    try:
        row = json.loads(text)
    except json.JSONDecodeError as error:
        raise ValueError(f"not JSON ({error.msg} at column {error.colno})") from None
    if not isinstance(row, dict):
        raise ValueError(f"not a JSON object but {type(row).__name__}")
    return row


def _raw_lines(handle: BinaryIO, max_line_bytes: int) -> Iterator[tuple[int, bytes | None, int]]:
    """``(line_number, bytes or None, bytes read)`` for each line; None for a line over
    ``max_line_bytes`` (whose rest is skipped in 1 MB reads, never held)."""
    number = 0
    while True:
        line = handle.readline(max_line_bytes + 1)
        if not line:
            return
        number += 1
        if len(line) > max_line_bytes:
            size = len(line)
            while line and not line.endswith(b"\n"):
                line = handle.readline(1024 * 1024)
                size += len(line)
            yield number, None, size
        else:
            yield number, line, len(line)


def _binary_stream(source: str | Path | BinaryIO):
    """An open binary stream that can ``peek``: the file at ``source``, or ``source`` itself."""
    if isinstance(source, (str, Path)):
        return open(Path(source), "rb")
    return source if hasattr(source, "peek") else io.BufferedReader(source)


def jsonl_objects(source: str | Path | BinaryIO) -> Iterator[tuple[int, dict[str, Any] | ValueError]]:
    """Each non-blank line of a JSON-lines file, gzip-compressed (told by its magic bytes, not its
    name) or plain, as ``(line_number, object)``, or ``(line_number, ValueError(reason))`` for a line
    that is not UTF-8, not JSON or not an object, and for a gzip stream that is truncated or corrupt
    (numbered with the line it stopped in; nothing follows it).

    Streams: one line at a time, so memory holds at most one line of ``max_line_bytes``. The
    import limits in force (``feedback.import_limits.active_limits()``) are checked as it goes:
    decompressed bytes, rows, bytes per line, nesting depth and characters per value.

    Args:
        source: a path, or an open binary stream (read to its end, not closed).
    Raises:
        ImportLimitError: a limit was passed, naming it and the line (nothing after it is read).
        OSError: the file cannot be opened (on the first ``next()``).
    """
    from .import_limits import ImportLimitError, active_limits, json_value_check

    limits = active_limits()
    name = str(source) if isinstance(source, (str, Path)) else getattr(source, "name", "upload")

    def over(limit: str, number: int, found: str = "") -> ImportLimitError:
        return ImportLimitError(name, name=limit, limit=getattr(limits, limit), number=number, unit="line", found=found)

    raw = _binary_stream(source)
    try:
        compressed = raw.peek(2)[:2] == GZIP_MAGIC
        handle = gzip.GzipFile(fileobj=raw, mode="rb") if compressed else raw
        number = rows = decompressed = 0
        try:
            for number, line, size in _raw_lines(handle, limits.max_line_bytes):
                decompressed += size
                if decompressed > limits.max_decompressed_bytes:
                    raise over("max_decompressed_bytes", number)
                if line is None:
                    raise over("max_line_bytes", number)
                if not line.strip():
                    continue
                rows += 1
                if rows > limits.max_rows:
                    raise over("max_rows", number)
                if line.count(b"[") + line.count(b"{") > max(64, limits.max_line_bytes // 64):
                    raise over("max_depth", number, "too many arrays and objects in one line")
                try:
                    row = object_of_line(line)
                except RecursionError:
                    raise over("max_depth", number) from None
                except ValueError as error:
                    yield number, error
                    continue
                passed = json_value_check(row, limits)
                if passed:
                    raise over(passed, number)
                yield number, row
        except (EOFError, gzip.BadGzipFile, zlib.error) as error:
            yield number + 1, ValueError(f"the gzip stream is truncated or corrupt ({error}); is the file complete?")
    finally:
        if isinstance(source, (str, Path)):
            raw.close()


def read_jsonl(
    path: str | Path,
    *,
    parse: Callable[[dict[str, Any]], T],
    noun: str = "rows",
    error_class: type[JSONLFormatError] = JSONLFormatError,
) -> list[T]:
    """Read a whole JSON-lines file, gzip-compressed (told by its magic bytes, not its name) or plain,
    and ``parse`` each non-blank line's JSON object.

    Args:
        path: the file.
        parse: turns one JSON object into a record; raises ``ValueError`` with a readable reason.
        noun: what a line holds, for the empty-file message (``"the file holds no <noun>"``).
        error_class: the ``JSONLFormatError`` subclass to raise.
    Returns: the records in file order (duplicates included).
    Raises:
        JSONLFormatError (``error_class``): every problem found, as ``(line_number, message)``: not
            UTF-8, not JSON, not an object, whatever ``parse`` refuses, a line over 10 MB, a gzip
            stream that is truncated or corrupt (numbered with the line it stopped in), or a file
            with no records at all (line 0).
        OSError: the file cannot be opened.
    """
    records: list[T] = []
    problems: list[tuple[int, str]] = []
    for number, row in jsonl_objects(path):
        if isinstance(row, ValueError):
            problems.append((number, str(row)))
            continue
        try:
            records.append(parse(row))
        except ValueError as error:
            problems.append((number, str(error)))
    if not records and not problems:
        problems.append((0, f"the file holds no {noun}"))
    if problems:
        raise error_class(path, problems)
    return records

"""What the preference-file formats share (no Django imports): reading rows from JSON lines or
Parquet, refusing a row that is well formed but cannot be stored, and checking conversations.

A file is JSON lines (gzip-compressed or plain, ``feedback.jsonl``) or Parquet, told apart by its
first bytes (``PAR1``, ``1f 8b``), never by its name. Parquet is read in record batches of
``PARQUET_BATCH_ROWS`` rows, only the columns the format reads (``pyarrow``). Rows are numbered
from 1: JSON lines by line (blank lines are skipped but counted), Parquet by row.

Two outcomes of a row besides a record:

- a **problem** (the parser raises ``ValueError``): the row breaks the format (a missing field, a
  value of the wrong type, ``chosen`` equal to ``rejected``). Any problem anywhere fails the whole
  file (``PreferenceFileError``, every problem listed with its number): nothing is imported.
- a **refusal** (the parser raises ``RowRefused``): the row is valid in its format but holds
  something Arbiter cannot store as one prompt and two one-message responses (a multi-turn
  continuation). By default any refusal fails the whole file too (``imports.RowsRefusedError``);
  with ``skip_refused`` the row is skipped, counted and reported with its number and reason, and
  the rest of the file is imported. A refusal may carry a ``flagged`` record: the same row stored
  the way HH-RLHF stores such pairs (the prompt up to the last shared user turn, each response the
  rest of its conversation as one text, ``continuation_text``), imported, marked
  ``diverged_before_last_turn``, only when the import allows flagged rows (``feedback.import_flags``).
"""
from __future__ import annotations

import json
import math
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Generic, TypeVar

from .jsonl import JSONLFormatError, jsonl_objects
from .messages import MAX_COMPLETION_CHARS, ROLES

PARQUET_MAGIC = b"PAR1"
PARQUET_BATCH_ROWS = 1024
MAX_MODEL_NAME_CHARS = 200  # Completion.model_name

T = TypeVar("T")


class PreferenceFileError(JSONLFormatError):
    """A preference file (TRL or Arena, JSON lines or Parquet) with problems; ``problems`` lists
    every one as ``(number, message)`` with ``unit`` ``"line"`` or ``"row"`` (0: the file as a
    whole), and ``str()`` names the first 20."""


class RowRefused(Exception):
    """Raised by a row parser for a valid row that Arbiter cannot store; ``str()`` is the reason.

    Deliberately not a ``ValueError``: the importer decides (the file fails, or with ``skip_refused``
    the row is skipped, or with ``allow_flagged`` its ``flagged`` record, when it has one, is
    imported marked); a ``ValueError`` always fails the file.
    """

    def __init__(self, reason: str, *, flagged: Any = None):
        super().__init__(reason)
        self.flagged = flagged


@dataclass(frozen=True)
class RowsRead(Generic[T]):
    """A whole file parsed: ``rows`` in file order as ``(number, record or RowRefused)``; ``unit``
    says what the numbers count (``"line"`` or ``"row"``)."""

    unit: str
    rows: list[tuple[int, T | RowRefused]]


def file_kind(path: str | Path) -> str:
    """``"parquet"`` when the file starts with ``PAR1``, else ``"jsonl"`` (gzip or plain).

    Raises:
        OSError: the file cannot be opened.
    """
    with open(path, "rb") as handle:
        return "parquet" if handle.read(4) == PARQUET_MAGIC else "jsonl"


def _string_leaves(schema, prefix: str = "") -> list[str]:
    """The dotted Parquet paths of every string leaf under an Arrow ``schema`` or type (lists as
    ``<name>.list.element``), for ``read_dictionary``: such leaves stay dictionaries until checked."""
    import pyarrow as pa

    paths = []
    for item in schema:
        path = prefix + item.name
        kind = item.type
        if pa.types.is_string(kind) or pa.types.is_large_string(kind):
            paths.append(path)
        elif pa.types.is_list(kind) or pa.types.is_large_list(kind):
            element = kind.value_field
            if pa.types.is_struct(element.type):
                paths.extend(_string_leaves(list(element.type), f"{path}.list.element."))
            elif pa.types.is_string(element.type):
                paths.append(f"{path}.list.element")
        elif pa.types.is_struct(kind):
            paths.extend(_string_leaves(list(kind), f"{path}."))
    return paths


def _decoded_size(array) -> tuple[int, int]:
    """``(bytes, longest text in characters)`` of an Arrow array once decoded to Python values:
    dictionary values counted once per row that refers to them (computed on lengths, the values
    are not expanded); 8 bytes for each other value; nested lists and structs summed."""
    import pyarrow as pa
    import pyarrow.compute as pc

    kind = array.type
    if pa.types.is_dictionary(kind):
        lengths = pc.take(pc.binary_length(array.dictionary), array.indices)
        chars = pc.take(pc.utf8_length(array.dictionary), array.indices)
        return int(pc.sum(lengths).as_py() or 0) + 8 * len(array), int(pc.max(chars).as_py() or 0)
    if pa.types.is_string(kind) or pa.types.is_large_string(kind):
        return int(pc.sum(pc.binary_length(array)).as_py() or 0) + 8 * len(array), int(pc.max(pc.utf8_length(array)).as_py() or 0)
    if pa.types.is_list(kind) or pa.types.is_large_list(kind):
        size, longest = _decoded_size(array.flatten())
        return size + 8 * len(array), longest
    if pa.types.is_struct(kind):
        size, longest = 8 * len(array), 0
        for index in range(kind.num_fields):
            part, part_longest = _decoded_size(array.field(index))
            size, longest = size + part, max(longest, part_longest)
        return size, longest
    return 8 * len(array), 0


def parquet_objects(
    path: str | Path, *, columns: Sequence[str] | None = None, batch_rows: int = PARQUET_BATCH_ROWS
) -> Iterator[tuple[int, dict[str, Any] | ValueError]]:
    """Each row of a Parquet file as ``(row_number, {column: Python value})`` (lists of structs become
    lists of dicts, nulls None), read ``batch_rows`` rows at a time; or ``(n, ValueError(reason))``
    once, where the file cannot be read as Parquet (``n`` 0 for the file, else the first row of the
    batch that failed; nothing follows it).

    The import limits in force (``feedback.import_limits.active_limits()``) are checked before
    anything is decoded: the metadata's ``num_rows`` and the read columns' uncompressed sizes, then
    for each batch, with text columns read as dictionaries, the decoded size and longest text.

    Args:
        columns: read only these columns (those the file lacks are left out of the dicts); None: all.
    Raises:
        ImportLimitError: a limit was passed, naming it and the row (0: the metadata).
        OSError: the file cannot be opened.
    """
    import pyarrow
    import pyarrow.parquet as pq

    from .import_limits import ImportLimitError, active_limits

    limits = active_limits()

    def over(limit: str, number: int, found: str = "") -> ImportLimitError:
        return ImportLimitError(path, name=limit, limit=getattr(limits, limit), number=number, unit="row", found=found)

    with open(path, "rb") as handle:
        try:
            parquet = pq.ParquetFile(handle)
            names = set(parquet.schema_arrow.names)
            metadata = parquet.metadata
        except (pyarrow.ArrowException, OSError, ValueError) as error:
            yield 0, ValueError(f"not a readable Parquet file ({error}); is the file complete?")
            return
        wanted = None if columns is None else [name for name in columns if name in names]
        if metadata.num_rows > limits.max_rows:
            raise over("max_rows", 0, f"the file says {metadata.num_rows:,} rows")
        uncompressed = 0
        for group in range(metadata.num_row_groups):
            row_group = metadata.row_group(group)
            for index in range(row_group.num_columns):
                chunk = row_group.column(index)
                if wanted is None or chunk.path_in_schema.split(".")[0] in wanted:
                    uncompressed += chunk.total_uncompressed_size
        if uncompressed > limits.max_decompressed_bytes:
            raise over("max_decompressed_bytes", 0, f"the file says {uncompressed:,} bytes uncompressed")
        schema = [field for field in parquet.schema_arrow if wanted is None or field.name in wanted]
        number = decoded = 0
        try:
            dictionaries = pq.ParquetFile(handle, read_dictionary=_string_leaves(schema))
            batches = dictionaries.iter_batches(batch_size=batch_rows, columns=wanted)
        except (pyarrow.ArrowException, OSError, ValueError) as error:
            yield 0, ValueError(f"not a readable Parquet file ({error})")
            return
        while True:
            try:
                batch = next(batches, None)
                if batch is None:
                    return
                longest = 0
                for column in batch.columns:
                    size, column_longest = _decoded_size(column)
                    decoded, longest = decoded + size, max(longest, column_longest)
                if longest > limits.max_value_chars:
                    raise over("max_value_chars", number + 1, f"a value of {longest:,} characters in rows {number + 1}-{number + batch.num_rows}")
                if decoded > limits.max_decompressed_bytes:
                    raise over("max_decompressed_bytes", number + 1, f"rows up to {number + batch.num_rows} decode to {decoded:,} bytes")
                rows = batch.to_pylist()
            except (pyarrow.ArrowException, OSError, ValueError) as error:
                if isinstance(error, ImportLimitError):
                    raise
                yield number + 1, ValueError(f"the Parquet data is corrupt from here on ({error})")
                return
            for row in rows:
                number += 1
                yield number, row


def read_rows(
    path: str | Path,
    *,
    parse: Callable[[dict[str, Any]], T],
    columns: Sequence[str] | None = None,
    noun: str = "rows",
    error_class: type[JSONLFormatError] = PreferenceFileError,
) -> RowsRead[T]:
    """Read and ``parse`` every row of a JSON-lines (gzip or plain) or Parquet file, whole.

    Args:
        parse: one row's object -> a record; raises ``ValueError`` (a problem: fails the file) or
            ``RowRefused`` (kept as the row's outcome; the importer decides).
        columns: the fields the format reads (Parquet reads only these columns; JSON lines all).
        noun: what a row holds, for the empty-file message.
        error_class: the ``JSONLFormatError`` subclass to raise.
    Returns: a ``RowsRead`` with every row, record or refusal, in file order.
    Raises:
        error_class: every problem found, as ``(number, message)``: a line that is not UTF-8, not
            JSON, not an object or over 10 MB, a truncated or corrupt gzip stream or Parquet file,
            whatever ``parse`` raises ``ValueError`` for, or a file with no rows at all (0).
        OSError: the file cannot be opened.
    """
    if file_kind(path) == "parquet":
        unit, objects = "row", parquet_objects(path, columns=columns)
    else:
        unit, objects = "line", jsonl_objects(path)
    rows: list[tuple[int, T | RowRefused]] = []
    problems: list[tuple[int, str]] = []
    for number, row in objects:
        if isinstance(row, ValueError):
            problems.append((number, str(row)))
            continue
        try:
            rows.append((number, parse(row)))
        except RowRefused as refusal:
            rows.append((number, refusal))
        except ValueError as error:
            problems.append((number, str(error)))
    if not rows and not problems:
        problems.append((0, f"the file holds no {noun}"))
    if problems:
        raise error_class(path, problems, unit=unit)
    return RowsRead(unit=unit, rows=rows)


# --- checks shared by the formats ---------------------------------------------------------------


def text_check(value: Any, field: str, *, max_chars: int = MAX_COMPLETION_CHARS) -> str:
    """``value`` if it is a string of at most ``max_chars`` characters, valid Unicode and free of NUL.

    Raises:
        ValueError: ``"<field>: ..."`` naming what is wrong.
    """
    if not isinstance(value, str):
        raise ValueError(f"{field}: must be text, not {type(value).__name__}")
    if len(value) > max_chars:
        raise ValueError(f"{field}: is {len(value)} characters; at most {max_chars}")
    if "\x00" in value:
        raise ValueError(f"{field}: contains a NUL character")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as error:
        raise ValueError(f"{field}: is not valid Unicode text ({error.reason} at character {error.start})") from None
    return value


def model_name_check(value: Any, field: str) -> str:
    """A model name: non-blank text of at most 200 characters, kept verbatim.

    Raises:
        ValueError: ``"<field>: ..."``.
    """
    text_check(value, field, max_chars=MAX_MODEL_NAME_CHARS)
    if not value.strip():
        raise ValueError(f"{field}: is empty")
    return value


def conversation_check(value: Any, field: str) -> list[dict[str, str]]:
    """A list of chat messages normalised to ``[{"role", "content"}, ...]`` (any length, any last role).

    A message is an object with ``role`` one of system/user/assistant and text ``content`` (checked
    by ``text_check``). Other keys are refused unless null, as Parquet fills in struct fields that
    only some messages of a file have.

    Raises:
        ValueError: ``"<field>: message <i> ..."`` (0-based), or not a list.
    """
    if not isinstance(value, list):
        raise ValueError(f"{field}: must be a list of {{role, content}} messages, not {type(value).__name__}")
    messages = []
    for index, message in enumerate(value):
        where = f"{field}: message {index}"
        if not isinstance(message, Mapping):
            raise ValueError(f"{where} must be an object with role and content")
        extra = sorted(str(key) for key, item in message.items() if key not in ("role", "content") and item is not None)
        if extra:
            raise ValueError(f"{where} has unknown keys: {', '.join(extra)}")
        role = message.get("role")
        if role not in ROLES:
            raise ValueError(f"{where} has role {role!r}; expected one of {', '.join(ROLES)}")
        messages.append({"role": role, "content": text_check(message.get("content"), f"{where} content")})
    return messages


def continuation_text(messages: Sequence[Mapping[str, str]], field: str) -> str:
    """A response that runs over several turns as one text, as HH-RLHF transcripts hold it: the first
    message's content, then each later turn as ``"\\n\\nHuman: "``, ``"\\n\\nAssistant: "`` or
    ``"\\n\\nSystem: "`` + content (``feedback.hh_rlhf``'s markers).

    Raises:
        ValueError: the first message is not the assistant's, or the text is over ``MAX_COMPLETION_CHARS``.
    """
    from .hh_rlhf import ASSISTANT, HUMAN, SYSTEM

    markers = {"user": HUMAN, "assistant": ASSISTANT, "system": SYSTEM}
    if messages[0]["role"] != "assistant":
        raise ValueError(f"{field}: the response must start with the assistant's message, not {messages[0]['role']!r}")
    text = messages[0]["content"] + "".join(f"{markers[m['role']]} {m['content']}" for m in messages[1:])
    if len(text) > MAX_COMPLETION_CHARS:
        raise ValueError(f"{field}: is {len(text)} characters as one text; at most {MAX_COMPLETION_CHARS}")
    return text


def shared_prompt_end(a: Sequence[Mapping[str, str]], b: Sequence[Mapping[str, str]]) -> int:
    """How many leading messages two conversations share up to and including the last shared user
    turn (0 when they share none): where the prompt of a pair that diverged ends."""
    shared = common_prefix_length(a, b)
    while shared and a[shared - 1]["role"] != "user":
        shared -= 1
    return shared


def common_prefix_length(a: Sequence[Any], b: Sequence[Any]) -> int:
    """How many leading items two sequences share."""
    length = 0
    for x, y in zip(a, b):
        if x != y:
            break
        length += 1
    return length


def margin_check(value: Any) -> None:
    """A ``margin`` is null or a finite number (it is checked, not stored: see ``feedback.trl_preferences``).

    Raises:
        ValueError: ``"margin: ..."``.
    """
    if value is None:
        return
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise ValueError(f"margin: must be a finite number, not {value!r}"[:200])


def canonical_json(value: Any) -> str:
    """``value`` as canonical JSON: sorted keys, no spaces, UTF-8 characters kept (``str()`` for
    values JSON has no type for, such as a Parquet timestamp)."""
    return json.dumps(value, sort_keys=True, ensure_ascii=False, separators=(",", ":"), default=str)

"""Rows -> files: JSONL, Parquet, CSV and Hugging Face ``datasets`` directories (no Django imports).

Every writer takes ``(split, row)`` pairs (``feedback.exports.formats.export_rows``) and the
format's ``columns``, writes in batches of ``BATCH_ROWS`` rows (memory is one batch, whatever the
number of rows) to a temporary path beside the destination and renames it into place when complete
(``feedback.exports.files.published``), so a failing export leaves no file.

- ``jsonl``: one ``json.dumps(row, ensure_ascii=False)`` line per row (keys in column order,
  ``", "``/``": "`` separators, UTF-8, ``\\n`` line ends): the layout of the HH-RLHF files. A row
  given as a str is a line its format built already (``formats.ExportFormat.lines``).
- ``parquet``: one row group per batch, with an explicit Arrow schema from the columns (messages as
  ``list<struct<role: string, content: string>>``), Snappy-compressed.
- ``csv``: a header of column names, then one line per row (RFC 4180 quoting, UTF-8). A text cell
  that starts with ``=``, ``+``, ``-``, ``@``, tab or carriage return is prefixed with ``'`` so a
  spreadsheet shows it as text instead of running it as a formula (OWASP "CSV injection").
- ``hf-dataset``: a ``datasets.DatasetDict`` saved with ``save_to_disk``, one split per asked
  split (``train``, ``eval``; empty ones too). Rows go to one Parquet file per split first, which
  ``Dataset.from_parquet`` then turns into Arrow files batch by batch, so memory stays bounded.
"""
from __future__ import annotations

import csv
import hashlib
import tempfile
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from . import files
from .formats import CSV, HF_DATASET, JSONL, PARQUET, Column, jsonl_line

BATCH_ROWS = 5_000
FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")


@dataclass(frozen=True)
class WriteResult:
    """What a writer produced: ``rows`` written, the ``checksum`` (``files.checksum``) and ``size_bytes``."""

    rows: int
    checksum: str
    size_bytes: int


def spreadsheet_safe(value: Any) -> Any:
    """A CSV cell that a spreadsheet will not run: ``'`` before text starting with = + - @ tab or CR;
    None as an empty cell; anything else unchanged."""
    if value is None:
        return ""
    if isinstance(value, str) and value.startswith(FORMULA_PREFIXES):
        return "'" + value
    return value


def arrow_schema(columns: Sequence[Column]):
    """The Arrow schema of a format's columns."""
    import pyarrow as pa

    message = pa.struct([("role", pa.string()), ("content", pa.string())])
    types = {
        "int": pa.int64(), "int?": pa.int64(), "float": pa.float64(), "bool": pa.bool_(),
        "str": pa.string(), "messages": pa.list_(message),
    }
    return pa.schema([pa.field(c.name, types[c.kind], nullable=c.kind == "int?") for c in columns])


def _batches(rows: Iterable[tuple[str, dict[str, Any]]], size: int):
    batch: list[tuple[str, dict[str, Any]]] = []
    for item in rows:
        batch.append(item)
        if len(batch) >= size:
            yield batch
            batch = []
    if batch:
        yield batch


def _write_jsonl(rows, columns, path: Path) -> int:
    count = 0
    with open(path, "w", encoding="utf-8", newline="\n") as handle:
        for batch in _batches(rows, BATCH_ROWS):
            # A str is a line built already (``ExportFormat.lines``); a dict is encoded here.
            handle.write("".join([row if row.__class__ is str else jsonl_line(row) for _, row in batch]))
            count += len(batch)
    return count


def _write_csv(rows, columns, path: Path) -> int:
    names = [c.name for c in columns]
    count = 0
    with open(path, "w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(names)
        for batch in _batches(rows, BATCH_ROWS):
            writer.writerows([[spreadsheet_safe(row[name]) for name in names] for _, row in batch])
            count += len(batch)
    return count


class _ParquetSink:
    """A Parquet file written one row group per batch."""

    def __init__(self, path: Path, columns: Sequence[Column]):
        import pyarrow.parquet as pq

        self.schema = arrow_schema(columns)
        self.names = [c.name for c in columns]
        self.kinds = [c.kind for c in columns]
        self.writer = pq.ParquetWriter(path, self.schema, compression="snappy")

    def write(self, rows: list[dict[str, Any]]) -> None:
        import pyarrow as pa

        arrays = [
            _messages_array([row[name] for row in rows], field.type) if kind == "messages"
            else pa.array([row[name] for row in rows], type=field.type)
            for name, kind, field in zip(self.names, self.kinds, self.schema)
        ]
        self.writer.write_table(pa.Table.from_arrays(arrays, schema=self.schema), row_group_size=len(rows))

    def close(self) -> None:
        self.writer.close()


def _messages_array(values: list[list[dict[str, str]]], message_list_type):
    """A ``list<struct<role, content>>`` column from message lists, built from flat role and
    content arrays and offsets: the same array as ``pa.array(values, type=...)``, in about half
    the time (Arrow's conversion walks every dict itself)."""
    import pyarrow as pa

    roles, contents, offsets = [], [], [0]
    for messages in values:
        for message in messages:
            roles.append(message["role"])
            contents.append(message["content"])
        offsets.append(len(roles))
    struct_type = message_list_type.value_type
    messages_flat = pa.StructArray.from_arrays(
        [pa.array(roles, pa.string()), pa.array(contents, pa.string())], fields=list(struct_type)
    )
    return pa.ListArray.from_arrays(pa.array(offsets, pa.int32()), messages_flat, type=message_list_type)


def _write_parquet(rows, columns, path: Path) -> int:
    sink = _ParquetSink(path, columns)
    count = 0
    try:
        for batch in _batches(rows, BATCH_ROWS):
            sink.write([row for _, row in batch])
            count += len(batch)
    finally:
        sink.close()
    return count


def _split_fingerprint(split: str, part: Path, rows: int) -> str:
    """16 hex characters naming one split's content: the split's name, row count and Parquet bytes."""
    digest = hashlib.sha256(f"{split}\0{rows}\0".encode())
    if rows:
        with open(part, "rb") as source:
            while data := source.read(1 << 20):
                digest.update(data)
    return digest.hexdigest()[:16]


def _write_hf_dataset(rows, columns, path: Path, splits: Sequence[str]) -> int:
    from datasets import Dataset, DatasetDict, disable_progress_bars

    disable_progress_bars()
    with tempfile.TemporaryDirectory(prefix=".parts-", dir=path.parent) as work:
        work_dir = Path(work)
        parts = {split: work_dir / f"{split}.parquet" for split in splits}
        sinks = {split: _ParquetSink(part, columns) for split, part in parts.items()}
        per_split = dict.fromkeys(splits, 0)
        count = 0
        try:
            for batch in _batches(rows, BATCH_ROWS):
                by_split: dict[str, list[dict[str, Any]]] = {}
                for split, row in batch:
                    by_split.setdefault(split, []).append(row)
                for split, split_rows in by_split.items():
                    sinks[split].write(split_rows)
                    per_split[split] += len(split_rows)
                count += len(batch)
        finally:
            for sink in sinks.values():
                sink.close()
        cache = str(work_dir / "cache")
        empty = arrow_schema(columns).empty_table()
        dataset = DatasetDict()
        for split, part in parts.items():
            # The fingerprint ``datasets`` would give depends on the temporary folder's name, so the
            # saved state.json (and the folder's checksum) would change on every export of the same
            # rows: name each split by its content instead. ``split=`` names the split in its
            # dataset_info.json (it is "train" otherwise, for the eval split too).
            if per_split[split]:
                loaded = Dataset.from_parquet(str(part), split=split, cache_dir=cache, keep_in_memory=False)
                table, info = loaded.data, loaded.info
            else:  # datasets cannot read a Parquet file with no rows
                table, info = empty, None
            dataset[split] = Dataset(table, info=info, split=split, fingerprint=_split_fingerprint(split, part, per_split[split]))
        # An empty split saved with the default sharding has no Arrow file, and datasets then cannot load it.
        dataset.save_to_disk(str(path), num_shards={split: 1 for split in splits if not per_split[split]} or None)
        del dataset
    return count


WRITERS = {JSONL: _write_jsonl, CSV: _write_csv, PARQUET: _write_parquet}
JOINABLE = (JSONL, CSV, PARQUET)


def parts_join(*, file_type: str, parts: Sequence[Path], path: Path, columns: Sequence[Column], digest=None) -> None:
    """Join part files written by ``rows_write_unpublished`` into one file at ``path``, in order: the
    same bytes (JSONL, CSV) or the same row groups (Parquet) as one writer would have produced from
    the parts' rows in that order. CSV parts each start with the header; only the first is kept.
    ``digest`` (a ``hashlib`` object), for JSONL and CSV, is updated with every byte written, so
    the file's checksum needs no second read.

    Raises:
        ValueError: a file type that cannot be joined (``hf-dataset``).
    """
    if file_type not in JOINABLE:
        raise ValueError(f"cannot join {file_type!r} parts")
    if file_type == PARQUET:
        import pyarrow.parquet as pq

        schema = arrow_schema(columns)
        with pq.ParquetWriter(path, schema, compression="snappy") as writer:
            for part in parts:
                source = pq.ParquetFile(part)
                for index in range(source.num_row_groups):
                    writer.write_table(source.read_row_group(index, use_threads=False),
                                       row_group_size=source.metadata.row_group(index).num_rows)
        return
    with open(path, "wb") as out:
        for k, part in enumerate(parts):
            with open(part, "rb") as source:
                if file_type == CSV and k:
                    source.readline()  # the header (column names: no line breaks inside)
                while data := source.read(1 << 20):
                    if digest is not None:
                        digest.update(data)
                    out.write(data)


def rows_write_unpublished(
    *,
    rows: Iterable[tuple[str, dict[str, Any]]],
    columns: Sequence[Column],
    file_type: str,
    path: Path,
    splits: Sequence[str] = ("train", "eval"),
) -> int:
    """Write rows as ``file_type`` straight to ``path`` (no temporary name); returns the row count.
    Arguments as ``rows_write``; for callers that publish the file themselves."""
    if file_type not in (*WRITERS, HF_DATASET):
        raise ValueError(f"unknown file type {file_type!r}")
    if file_type == HF_DATASET:
        return _write_hf_dataset(rows, columns, Path(path), splits)
    return WRITERS[file_type](rows, columns, Path(path))


def rows_write(
    *,
    rows: Iterable[tuple[str, dict[str, Any]]],
    columns: Sequence[Column],
    file_type: str,
    path: Path,
    splits: Sequence[str] = ("train", "eval"),
) -> WriteResult:
    """Write rows as ``file_type`` to ``path`` (a directory for ``hf-dataset``), atomically.

    Args:
        rows: ``(split, row)`` pairs; each row has every column's key. Read once.
        columns: the format's columns, in file order.
        file_type: ``jsonl``, ``parquet``, ``csv`` or ``hf-dataset``.
        path: the destination; its folder is created. An existing file is replaced; an existing
            directory is refused.
        splits: ``hf-dataset`` only: the splits the dataset holds (rows of others are an error).
    Returns:
        ``WriteResult`` (rows, checksum, size in bytes).
    Raises:
        ValueError: an unknown file type. Whatever ``rows`` raises, ``OSError`` on a full disk,
        ``FileExistsError`` (see ``files.published``): in every case nothing is left at ``path``.
    """
    path = Path(path)
    with files.published(path) as temporary:  # rows_write_unpublished refuses an unknown file type
        count = rows_write_unpublished(rows=rows, columns=columns, file_type=file_type, path=temporary, splits=splits)
        digest, size = files.checksum(temporary), files.size_bytes(temporary)
    return WriteResult(rows=count, checksum=digest, size_bytes=size)

"""A dataset snapshot's files and rows, as every training runner reads them (no torch here).

A snapshot is two JSONL files (``train.jsonl``, ``eval.jsonl``) written by ``feedback``; runners
reach them only through ``feedback.interface.snapshot_get``. Row shapes by ``kind``:

- ``preference``: ``{"prompt": [msgs], "chosen": [msgs], "rejected": [msgs], "margin"?: float,
  "strength": str, "comparison_id": int}``
- ``sft``: ``{"prompt": [msgs], "completion": [msgs], "source": str, "demonstration_id": int | None}``
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from feedback import interface as feedback


@dataclass(frozen=True)
class SnapshotFiles:
    """Where a snapshot's rows are: ``train_path``/``eval_path`` are absolute JSONL paths;
    ``kind`` is ``"preference"`` or ``"sft"``; ``content_hash`` is the files' hash (lineage)."""

    id: int
    content_hash: str
    train_path: Path
    eval_path: Path
    kind: str = "preference"


def snapshot_files(snapshot_id: int) -> SnapshotFiles:
    """Locate a dataset snapshot's files through ``feedback.interface.snapshot_get``.

    Raises:
        LookupError: no such snapshot.
    """
    ref = feedback.snapshot_get(snapshot_id=snapshot_id)
    return SnapshotFiles(
        ref.id, ref.content_hash, Path(ref.train_path), Path(ref.eval_path), getattr(ref, "kind", "preference")
    )


def rows_read(path: Path) -> list[dict[str, Any]]:
    """The rows of a snapshot JSONL file (one JSON object a line; blank lines skipped).

    Raises:
        FileNotFoundError: the file is missing. ValueError: a line is not JSON.
    """
    with Path(path).open(encoding="utf-8") as handle:
        return [json.loads(line) for line in handle if line.strip()]


def columns_keep(rows: list[dict[str, Any]], columns: tuple[str, ...]) -> list[dict[str, Any]]:
    """Each row reduced to ``columns`` (in that order), the form TRL should see; other keys dropped.

    Raises:
        KeyError: a row lacks one of ``columns``.
    """
    return [{name: row[name] for name in columns} for row in rows]

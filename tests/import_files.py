"""Writing small preference files for the import tests (tests/test_imports_trl.py, tests/test_imports_arena.py)."""
from __future__ import annotations

import gzip
import json
from pathlib import Path

from feedback.models import Comparison, Completion, Prompt, Vote


def user(content: str) -> dict[str, str]:
    return {"role": "user", "content": content}


def assistant(content: str) -> dict[str, str]:
    return {"role": "assistant", "content": content}


def write_jsonl(path: Path, rows: list, *, gz: bool = False) -> Path:
    """One JSON value a line (a str row is written as it is, for broken lines)."""
    text = "".join((row if isinstance(row, str) else json.dumps(row)) + "\n" for row in rows)
    path.write_bytes(gzip.compress(text.encode("utf-8")) if gz else text.encode("utf-8"))
    return path


def write_parquet(path: Path, rows: list[dict]) -> Path:
    import pyarrow as pa
    import pyarrow.parquet as pq

    pq.write_table(pa.Table.from_pylist(rows), path)
    return path


def row_counts() -> tuple[int, int, int, int]:
    """(prompts, completions, comparisons, votes)."""
    return Prompt.objects.count(), Completion.objects.count(), Comparison.objects.count(), Vote.objects.count()


def nothing_written() -> bool:
    return row_counts() == (0, 0, 0, 0)

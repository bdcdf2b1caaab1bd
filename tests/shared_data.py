"""Paths to the shared real data in ``../shared/data`` (never copied into the repository).

Tests that need a file call ``shared_data_path``; it skips with the reason when the folder is
absent (a fresh clone), and CI always has it.
"""
from __future__ import annotations

from pathlib import Path

import pytest

SHARED_DATA = Path(__file__).resolve().parent.parent.parent / "shared" / "data"
HH_RLHF_SAMPLE = "hh-rlhf-harmless-base-sample.jsonl.gz"


def shared_data_path(name: str) -> Path:
    """``../shared/data/<name>``, or skip the test when it is not there."""
    path = SHARED_DATA / name
    if not path.is_file():
        pytest.skip(f"{path} is absent: the shared test data lives next to the repository (../shared/data)")
    return path

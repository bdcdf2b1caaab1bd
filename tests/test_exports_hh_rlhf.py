"""Round trip: the shared HH-RLHF sample imported, then exported as HH-RLHF, gives back the same
lines byte for byte (in file order, which is the import's comparison order), except the pairs with
an empty response: no export writes an empty response, it counts them as ``empty_response``."""
from __future__ import annotations

import gzip
import hashlib
import io
import json

import pytest
from django.core.management import call_command

from tests.shared_data import HH_RLHF_SAMPLE, shared_data_path

pytestmark = pytest.mark.django_db


def test_the_shared_sample_imported_then_exported_as_hh_rlhf_is_the_same_bytes(tmp_path, settings):
    settings.ARBITER_DATA_DIR = tmp_path / "data"
    sample = shared_data_path(HH_RLHF_SAMPLE)
    # The one pair that differs before its last turn is flagged: imported marked, exported only when asked.
    call_command("import_hh_rlhf", str(sample), "--allow-flagged", stdout=io.StringIO())
    output = tmp_path / "hh-rlhf.jsonl"
    printed = io.StringIO()
    call_command("export_preferences", "--format", "hh-rlhf", "--file-type", "jsonl", "--output", str(output),
                 "--include-flagged", stdout=printed, stderr=io.StringIO())
    with gzip.open(sample, "rb") as handle:
        original = handle.read()
    exported = output.read_bytes()
    lines = original.splitlines(keepends=True)
    assert len(lines) == 1600

    def has_empty_response(line: bytes) -> bool:
        row = json.loads(line)
        return any(not text.rsplit("\n\nAssistant:", 1)[1].strip() for text in (row["chosen"], row["rejected"]))

    kept = [line for line in lines if not has_empty_response(line)]
    assert len(kept) == 1596  # four pairs of the sample have an empty response
    assert exported == b"".join(kept)
    printed = printed.getvalue().splitlines()
    assert printed[0] == "1596 rows from 1600 votes on 1600 comparisons (no row: empty_response=4)"
    assert printed[1] == f"sha256 {hashlib.sha256(exported).hexdigest()}"
    assert printed[2] == f"path {output.resolve()}"

"""TRL preference JSONL lines are built from pre-encoded pieces (``formats.trl_preference_lines``)
rather than by encoding a dict per row; they must be the same bytes as ``json.dumps(row,
ensure_ascii=False)`` of the rows every other file type gets, for any text a prompt or response
can hold, on SQLite and PostgreSQL alike (the prompt's stored JSON is reused when it can be)."""
from __future__ import annotations

import json

import pyarrow.parquet as pq
import pytest
from django.db import connection

from feedback.exports import formats
from feedback.exports.filters import ExportFilters
from feedback.exports.formats import ExportOptions, FormatContext, export_rows, jsonl_line
from feedback.exports.services import export_request_check, export_write
from feedback.exports.stream import comparison_groups
from tests.export_fixtures import _comparison, _vote, day
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db

TEXTS = [
    "plain ascii", "caf\u00e9 \u4e2d\u6587 \U0001f600", "tab\tnew\nline\rcr", "quote \" and back\\slash",
    "literal \\u0041 escape", "control \x01\x1f and del \x7f", "</script><b>&amp;", "  padded  ", "'=SUM(A1)",
    "line\u2028separator\u2029",
]


def tricky_world():
    texts = TEXTS + (["\x00nul"] if connection.vendor == "sqlite" else [])  # PostgreSQL text holds no NUL
    alice = UserFactory(username="alice", role="annotator")
    bob = UserFactory(username="bob", role="annotator")
    for k, text in enumerate(texts):
        comparison = _comparison(question=f"Q{k}: {text}", a=("m-1", f"A {text}"), b=("m-2", f"B{k}"),
                                 system=text if k % 3 == 0 else None)
        _vote(comparison, alice, "a" if k % 2 else "b", strength=("slight", "clear", "strong", "")[k % 4],
              when=day("2025-03-01T00:00"))
        _vote(comparison, bob, "a" if k % 2 else "b", strength=("strong", "slight", "", "clear")[k % 4],
              when=day("2025-03-01T01:00"))
    multi = _comparison(question="first", a=("m-1", "yes"), b=("m-2", "no"))
    multi.prompt.messages = [{"role": "user", "content": "first"}, {"role": "assistant", "content": "ok \u00e9"},
                             {"role": "user", "content": "second"}]
    multi.prompt.save(update_fields=["messages"])
    reordered = _comparison(question="keys", a=("m-1", "yes"), b=("m-2", "no"))
    reordered.prompt.messages = [{"content": "keys stored content-first", "role": "user"}]
    reordered.prompt.save(update_fields=["messages"])
    for comparison in (multi, reordered):
        _vote(comparison, alice, "a", strength="clear", when=day("2025-03-01T00:00"))
    return len(texts) + 2


@pytest.mark.parametrize("options", [{}, {"include_margin": False}, {"conversational": False},
                                     {"conversational": False, "include_margin": False}])
def test_trl_preference_lines_are_the_bytes_of_json_dumps_of_the_rows(tmp_path, options):
    pairs = tricky_world()
    request = export_request_check(format="trl-preference", file_type="jsonl", options=options)
    path = tmp_path / "out.jsonl"
    result, _ = export_write(request=request, path=path)
    context = FormatContext(options=ExportOptions(**options))
    expected = "".join(
        jsonl_line(row) for _, row in export_rows(
            comparison_groups(filters=ExportFilters()), export_format=formats.FORMATS["trl-preference"],
            context=context, lines=False,
        )
    )
    assert result.rows == pairs
    assert path.read_text(encoding="utf-8") == expected
    rows = [json.loads(line) for line in expected.split("\n")[:-1]]  # not splitlines: U+2028 is raw
    assert any("\u4e2d" in json.dumps(row, ensure_ascii=False) for row in rows)
    if options.get("conversational", True):
        assert rows[-1]["prompt"] == [{"content": "keys stored content-first", "role": "user"}]


def test_a_stored_prompt_with_escapes_is_encoded_again_and_one_without_is_reused():
    group = formats.ComparisonGroup(1, 1, [{"role": "user", "content": "\u00e9"}], "train", 1, 2, "x", "y", "A", "B",
                                    "", [], ((("a", "clear"), 1),),
                                    prompt_json='[{"role": "user", "content": "\\u00e9"}]')
    assert formats._prompt_json(group) == '[{"role": "user", "content": "\u00e9"}]'
    group.prompt_json = '[{"role": "user", "content": "plain"}]'
    assert formats._prompt_json(group) is group.prompt_json


@pytest.mark.parametrize("fmt", ["trl-preference", "trl-unpaired", "arena"])
def test_parquet_message_columns_hold_exactly_the_rows_messages(tmp_path, fmt):
    tricky_world()
    request = export_request_check(format=fmt, file_type="parquet")
    path = tmp_path / "out.parquet"
    export_write(request=request, path=path, salt=b"k" * 32)
    context = FormatContext(pseudonyms=formats.Pseudonyms(salt=b"k" * 32))
    expected = [row for _, row in export_rows(
        comparison_groups(filters=ExportFilters(), vote_details=fmt == "arena"), export_format=formats.FORMATS[fmt],
        context=context,
    )]
    assert pq.read_table(path).to_pylist() == expected and len(expected) >= len(TEXTS)

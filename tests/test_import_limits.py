"""Import limits (feedback/import_limits.py): a file past any ARBITER_IMPORT_* limit is refused whole,
naming the setting and the line or row where it was passed, and nothing is written; readers stream
(a reader over an endless generator stops at the limit). The limits are lowered per test so the
files stay small."""
from __future__ import annotations

import gzip
import io
import json

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import CommandError, call_command

from feedback.import_limits import ImportLimitError, ImportLimits, limits_applied
from feedback.imports import demonstrations_import, hh_rlhf_import, trl_preferences_import
from feedback.jsonl import jsonl_objects
from tests.conftest import api_as
from tests.import_files import assistant, nothing_written, row_counts, user, write_jsonl, write_parquet

pytestmark = pytest.mark.django_db


def pair(n: int, answer: str = "Good.") -> dict:
    return {"prompt": [user(f"Question {n}?")], "chosen": [assistant(answer)], "rejected": [assistant("Bad.")]}


def refused(path, importer=trl_preferences_import) -> ImportLimitError:
    before = row_counts()
    with pytest.raises(ImportLimitError) as caught:
        importer(path=path)
    assert row_counts() == before
    return caught.value


def test_rows_past_the_limit_refuse_the_file_naming_the_limit_and_the_line(settings, tmp_path):
    settings.ARBITER_IMPORT_MAX_ROWS = 3
    error = refused(write_jsonl(tmp_path / "four.jsonl", [pair(n) for n in range(10, 14)], gz=True))
    assert nothing_written()
    assert (error.setting, error.limit, error.number, error.unit) == ("ARBITER_IMPORT_MAX_ROWS", 3, 4, "line")
    assert "line 4: over ARBITER_IMPORT_MAX_ROWS = 3 rows" in str(error)
    assert trl_preferences_import(path=write_jsonl(tmp_path / "three.jsonl", [pair(n) for n in range(3)])).imported == 3


def test_a_gzip_bomb_is_refused_at_the_decompressed_limit(settings, tmp_path):
    settings.ARBITER_IMPORT_MAX_DECOMPRESSED_BYTES = 10_000
    line = json.dumps(pair(1, "x" * 900)) + "\n"  # about 1 KB a line, compressing to almost nothing
    path = tmp_path / "bomb.jsonl.gz"
    path.write_bytes(gzip.compress((line * 50).encode()))
    assert path.stat().st_size < 1000

    error = refused(path)
    assert error.setting == "ARBITER_IMPORT_MAX_DECOMPRESSED_BYTES"
    assert error.number == 10_000 // len(line) + 1  # the line that passed it


def test_a_long_value_and_a_deep_line_are_refused(settings, tmp_path):
    settings.ARBITER_IMPORT_MAX_VALUE_CHARS = 100
    error = refused(write_jsonl(tmp_path / "long.jsonl", [pair(1), pair(2, "y" * 101)]))
    assert (error.setting, error.number) == ("ARBITER_IMPORT_MAX_VALUE_CHARS", 2)

    settings.ARBITER_IMPORT_MAX_DEPTH = 5
    deep = pair(3) | {"extra": [[[[["too deep"]]]]]}
    error = refused(write_jsonl(tmp_path / "deep.jsonl", [pair(1), deep]))
    assert (error.setting, error.number) == ("ARBITER_IMPORT_MAX_DEPTH", 2)


def test_nesting_past_the_interpreter_recursion_limit_is_a_refusal_not_a_crash(tmp_path):
    path = tmp_path / "nested.jsonl"
    path.write_text('{"prompt": ' + "[" * 100_000 + "]" * 100_000 + "}\n")
    error = refused(path)
    assert (error.setting, error.number) == ("ARBITER_IMPORT_MAX_DEPTH", 1)


def test_hh_rlhf_and_demonstration_imports_apply_the_limits_too(settings, tmp_path):
    settings.ARBITER_IMPORT_MAX_ROWS = 1
    hh = [{"chosen": f"\n\nHuman: Q{n}\n\nAssistant: yes", "rejected": f"\n\nHuman: Q{n}\n\nAssistant: no"} for n in range(2)]
    assert refused(write_jsonl(tmp_path / "hh.jsonl", hh), hh_rlhf_import).number == 2
    demos = [{"prompt": [user(f"Q{n}")], "completion": [assistant("A")]} for n in range(2)]
    assert refused(write_jsonl(tmp_path / "demo.jsonl", demos), demonstrations_import).number == 2


def test_the_command_exits_with_the_limit_named(settings, tmp_path):
    settings.ARBITER_IMPORT_MAX_ROWS = 1
    path = write_jsonl(tmp_path / "two.jsonl", [pair(1), pair(2)])
    with pytest.raises(CommandError, match="line 2: over ARBITER_IMPORT_MAX_ROWS = 1 rows"):
        call_command("import_preferences", str(path), "--format", "trl")
    assert nothing_written()


def test_the_api_answers_400_with_the_limit(settings, admin_user):
    settings.ARBITER_IMPORT_MAX_ROWS = 2
    text = "".join(json.dumps(pair(n)) + "\n" for n in range(3)).encode()
    response = api_as(admin_user).post(
        "/api/imports/preferences/", {"file": SimpleUploadedFile("p.jsonl", text), "format": "trl"}, format="multipart"
    )
    assert response.status_code == 400
    assert response.json()["limit"] == {"setting": "ARBITER_IMPORT_MAX_ROWS", "limit": 2, "unit": "line", "number": 3}
    assert "line 3: over ARBITER_IMPORT_MAX_ROWS = 2 rows" in response.json()["file"][1]
    assert nothing_written()


def test_the_import_page_shows_the_limit(settings, admin_user, client):
    settings.ARBITER_IMPORT_MAX_ROWS = 1
    client.force_login(admin_user)
    text = "".join(json.dumps(pair(n)) + "\n" for n in range(2)).encode()
    response = client.post("/manage/imports/", {"file": SimpleUploadedFile("p.jsonl", text), "format": "trl"})
    assert response.status_code == 400
    assert "line 2: over ARBITER_IMPORT_MAX_ROWS = 1 rows" in response.content.decode()
    assert nothing_written()


class EndlessGzip(io.RawIOBase):
    """A gzip stream of the same line forever, made as it is read; counts the bytes handed out."""

    def __init__(self, line: bytes):
        self.compressor = gzip.compress(line * 1000)  # one member; repeated, it is a valid multi-member stream
        self.handed_out = 0
        self.pending = b""

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        while len(self.pending) < len(buffer):
            self.pending += self.compressor
        size = len(buffer)
        buffer[:size], self.pending = self.pending[:size], self.pending[size:]
        self.handed_out += size
        return size


def test_the_reader_streams_an_endless_file_and_stops_at_the_row_limit():
    stream = EndlessGzip((json.dumps(pair(1)) + "\n").encode())
    seen = 0
    with limits_applied(ImportLimits(max_rows=5000)):
        with pytest.raises(ImportLimitError) as caught:
            for _number, row in jsonl_objects(stream):
                assert row["prompt"] == [user("Question 1?")]
                seen += 1
    assert seen == 5000 and caught.value.number == 5001
    assert stream.handed_out < 1024 * 1024  # read as it went, not held: the file never ends


def test_the_reader_stops_an_endless_gzip_bomb_at_the_decompressed_limit():
    stream = EndlessGzip(b" " * 1023 + b"\n")  # blank lines: no rows, only bytes
    with limits_applied(ImportLimits(max_decompressed_bytes=5 * 1024 * 1024)):
        with pytest.raises(ImportLimitError) as caught:
            list(jsonl_objects(stream))
    assert caught.value.setting == "ARBITER_IMPORT_MAX_DECOMPRESSED_BYTES"
    assert caught.value.number == 5 * 1024 + 1


# --- Parquet: the metadata first, then each batch before its values become Python objects -------


def test_a_parquet_row_count_past_the_limit_is_refused_from_the_metadata(settings, tmp_path):
    settings.ARBITER_IMPORT_MAX_ROWS = 5
    error = refused(write_parquet(tmp_path / "rows.parquet", [pair(n) for n in range(6)]))
    assert (error.setting, error.number, error.unit) == ("ARBITER_IMPORT_MAX_ROWS", 0, "row")
    assert "the file says 6 rows" in str(error)


def test_a_dictionary_value_repeated_on_every_row_is_refused_before_it_is_expanded(settings, tmp_path):
    rows = [pair(n, "z" * 1000) for n in range(200)]  # one dictionary value, 200 KB once decoded
    path = write_parquet(tmp_path / "dict.parquet", rows)
    assert path.stat().st_size < 10_000
    settings.ARBITER_IMPORT_MAX_DECOMPRESSED_BYTES = 50_000  # the file's own pages are well under it
    error = refused(path)
    assert (error.setting, error.number) == ("ARBITER_IMPORT_MAX_DECOMPRESSED_BYTES", 1)
    assert "decode to" in str(error)

    settings.ARBITER_IMPORT_MAX_DECOMPRESSED_BYTES = 10_000_000
    settings.ARBITER_IMPORT_MAX_VALUE_CHARS = 999
    error = refused(path)
    assert (error.setting, error.number) == ("ARBITER_IMPORT_MAX_VALUE_CHARS", 1)
    assert "a value of 1,000 characters" in str(error)

    settings.ARBITER_IMPORT_MAX_VALUE_CHARS = 1000
    assert trl_preferences_import(path=path).imported == 200  # within the limits the rows read as before


def test_pairs_are_written_in_batches_with_prompts_counted_once(monkeypatch, tmp_path):
    from feedback import imports

    trl_preferences_import(path=write_jsonl(tmp_path / "first.jsonl", [pair(0)]))
    monkeypatch.setattr(imports, "WRITE_BATCH", 2)
    rows = [pair(0, "Again."), pair(1), pair(1, "Other."), pair(2), pair(1, "Third."), pair(0, "Once more.")]
    summary = trl_preferences_import(path=write_jsonl(tmp_path / "batches.jsonl", rows))
    assert (summary.imported, summary.prompts_created, summary.prompts_reused) == (6, 2, 1)
    assert row_counts() == (3, 14, 7, 7)

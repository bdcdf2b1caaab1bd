"""Reading eval-set files: JSONL and CSV, optional fields, and every kind of bad input."""
from __future__ import annotations

import gzip
import json
from pathlib import Path

import pytest

from feedback.evalsets.files import EvalSetFileError, eval_file_read
from feedback.import_limits import ImportLimitError, ImportLimits, limits_applied


def write(tmp_path: Path, name: str, content: str | bytes) -> Path:
    path = tmp_path / name
    path.write_bytes(content.encode("utf-8") if isinstance(content, str) else content)
    return path


def lines(*rows) -> str:
    return "".join((row if isinstance(row, str) else json.dumps(row)) + "\n" for row in rows)


def problems(path: Path, **options) -> list[tuple[int, str]]:
    with pytest.raises(EvalSetFileError) as caught:
        eval_file_read(path, **options)
    return caught.value.problems


def test_jsonl_with_messages_prompt_text_and_prompt_list(tmp_path):
    path = write(tmp_path, "set.jsonl", lines(
        {"messages": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi?"}],
         "category": "chat", "tags": ["a", "b", "a"], "reference": "Hello."},
        {"prompt": "Translate 'cat'", "tags": "lang; easy", "id": 7},
        {"prompt": [{"role": "user", "content": "Sum 2+2"}], "category": None},
    ))
    read = eval_file_read(path)
    assert read.format == "jsonl" and read.ignored_fields == ["id"]
    first, second, third = read.items
    assert first.messages[0]["role"] == "system" and first.category == "chat"
    assert first.tags == ["a", "b"] and first.reference == "Hello." and first.number == 1
    assert second.messages == [{"role": "user", "content": "Translate 'cat'"}] and second.tags == ["easy", "lang"]
    assert third.messages == [{"role": "user", "content": "Sum 2+2"}] and third.category == ""


def test_gzip_jsonl_is_read(tmp_path):
    path = write(tmp_path, "set.jsonl.gz", gzip.compress(lines({"prompt": "Hi"}).encode()))
    assert [i.messages[0]["content"] for i in eval_file_read(path).items] == ["Hi"]


def test_csv_with_any_case_header_and_a_multi_line_cell(tmp_path):
    path = write(tmp_path, "set.csv", 'Prompt,Category,TAGS,reference,notes\n"Hello, world",greet,"a,b",Hi!,x\n'
                                       '"two\nlines",,,,\n,,,,\n"third",q,,,\n')
    read = eval_file_read(path)
    assert read.format == "csv" and read.ignored_fields == ["notes"]
    assert [(i.number, i.messages[0]["content"], i.category, i.tags) for i in read.items] == [
        (2, "Hello, world", "greet", ["a", "b"]), (3, "two\nlines", "", []), (6, "third", "q", [])]
    assert read.items[0].reference == "Hi!"


def test_csv_with_a_bom_and_semicolons(tmp_path):
    path = write(tmp_path, "set.csv", "\ufeffprompt;category\nWhy?;q\n".encode("utf-8"))
    assert [(i.messages[0]["content"], i.category) for i in eval_file_read(path).items] == [("Why?", "q")]


def test_format_is_told_by_content_without_a_telling_name(tmp_path):
    assert eval_file_read(write(tmp_path, "upload", lines({"prompt": "Hi"}))).format == "jsonl"
    assert eval_file_read(write(tmp_path, "upload2", "prompt\nHi\n")).format == "csv"


def test_empty_files_are_refused(tmp_path):
    assert problems(write(tmp_path, "e.jsonl", "")) == [(0, "the file holds no prompts")]
    assert problems(write(tmp_path, "e.csv", "")) == [(0, "the file holds no prompts")]
    assert problems(write(tmp_path, "h.csv", "prompt,category\n")) == [(0, "the file holds no prompts")]


def test_csv_without_a_prompt_column_names_the_header(tmp_path):
    assert problems(write(tmp_path, "p.csv", "question,category\nWhy?,q\n")) == [
        (1, "no 'prompt' column (the header has 'question', 'category')")]


def test_every_bad_jsonl_line_is_named_with_its_field(tmp_path):
    path = write(tmp_path, "bad.jsonl", lines(
        {"prompt": "fine"},
        "{not json",
        {"messages": [{"role": "assistant", "content": "Hello"}]},
        {"messages": [{"role": "user", "content": "Q"}, {"role": "assistant", "content": "A"}]},
        {"prompt": "   "},
        {"prompt": "x", "messages": [{"role": "user", "content": "x"}]},
        {"category": "c"},
        {"prompt": "x", "tags": 5},
        {"prompt": "x", "reference": ["no"]},
        "[1, 2]",
    ))
    found = dict(problems(path))
    assert found[2].startswith("not JSON")
    assert found[3].startswith("messages: no user turn")
    assert found[4] == "messages: the last message must be the user's (the completion answers it)"
    assert found[5] == "prompt: is empty"
    assert found[6] == "give 'messages' or 'prompt', not both"
    assert found[7] == "no prompt: give 'messages' (a chat list) or 'prompt' (text)"
    assert found[8].startswith("tags: ")
    assert found[9] == "reference: must be text, not list"
    assert found[10] == "not a JSON object but list"
    assert 1 not in found


def test_error_first_line_is_one_readable_line(tmp_path):
    path = write(tmp_path, "bad.jsonl", lines({"prompt": "ok"}, "{", {"prompt": ""}))
    with pytest.raises(EvalSetFileError) as caught:
        eval_file_read(path)
    assert caught.value.first_line() == (
        f"{path}: line 2: not JSON (Expecting property name enclosed in double quotes at column 1) (and 1 more problem)")


def test_wrong_encodings_are_named(tmp_path):
    latin = write(tmp_path, "l.csv", "prompt\nok\ncaf\u00e9\n".encode("latin-1"))
    assert problems(latin) == [(3, "not UTF-8 (invalid continuation byte at byte 13); save the file as UTF-8")]
    utf16 = write(tmp_path, "u.csv", "prompt\nok\n".encode("utf-16"))
    assert problems(utf16) == [(0, "the file is UTF-16; save it as UTF-8")]
    jsonl = write(tmp_path, "l.jsonl", lines({"prompt": "ok"}).encode() + '{"prompt": "caf\u00e9"}\n'.encode("latin-1"))
    assert problems(jsonl)[0][0] == 2 and problems(jsonl)[0][1].startswith("not UTF-8")


def test_csv_rows_with_the_wrong_number_of_fields(tmp_path):
    assert problems(write(tmp_path, "f.csv", "prompt,category\nA,b\nB,c,d\n")) == [
        (3, "has 3 fields; the header has 2")]


def test_huge_prompts_pass_the_import_limits(tmp_path):
    with limits_applied(ImportLimits(max_value_chars=100)):
        with pytest.raises(ImportLimitError) as caught:
            eval_file_read(write(tmp_path, "big.jsonl", lines({"prompt": "x" * 101})))
        assert caught.value.setting == "ARBITER_IMPORT_MAX_VALUE_CHARS" and caught.value.number == 1
        with pytest.raises(ImportLimitError) as caught:
            eval_file_read(write(tmp_path, "big.csv", "prompt\nok\n" + "y" * 101 + "\n"))
        assert caught.value.setting == "ARBITER_IMPORT_MAX_VALUE_CHARS" and caught.value.number == 3
    with limits_applied(ImportLimits(max_rows=2)):
        with pytest.raises(ImportLimitError) as caught:
            eval_file_read(write(tmp_path, "many.csv", "prompt\na\nb\nc\n"))
        assert caught.value.setting == "ARBITER_IMPORT_MAX_ROWS"


def test_nul_characters_are_refused(tmp_path):
    found = dict(problems(write(tmp_path, "n.jsonl", lines({"prompt": "a\u0000b"}, {"prompt": "x", "category": "c\u0000"}))))
    assert "NUL" in found[1] and found[2] == "category: contains a NUL character"


def test_malformed_csv_quotes_are_named_by_the_line_the_record_starts_on(tmp_path):
    assert problems(write(tmp_path, "q.csv", 'prompt,category\n"ok",a\n"unclosed,b\nmore\n')) == [
        (3, "not valid CSV (unexpected end of data)")]
    assert problems(write(tmp_path, "q2.csv", 'prompt\n"a"b"\n')) == [(2, "not valid CSV (',' expected after '\"')")]

"""Importing eval sets: versions by content hash, duplicates merged and counted, frozen rows,
nothing half-written, and ``manage.py evalset``'s exit codes."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
from django.core.exceptions import ValidationError
from django.core.management import CommandError, call_command

from feedback.evalsets.files import EvalSetFileError
from feedback.evalsets.models import EvalSet, EvalSetItem, FrozenRowError
from feedback.evalsets.services import eval_set_import
from feedback.import_limits import ImportLimitError
from feedback.messages import messages_sha256

pytestmark = pytest.mark.django_db


def jsonl(tmp_path: Path, *rows, name: str = "set.jsonl") -> Path:
    path = tmp_path / name
    path.write_text("".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in rows), encoding="utf-8")
    return path


ROWS = (
    {"prompt": "What is the capital of France?", "category": "geo", "tags": ["easy"]},
    {"prompt": "what is the CAPITAL of france", "tags": ["dup"], "reference": "Paris"},
    {"prompt": "Write a haiku about rain.", "category": "creative"},
    {"messages": [{"role": "system", "content": "Be terse."}, {"role": "user", "content": "Write a haiku about rain!"}]},
    {"prompt": "Explain TCP slow start.", "category": "tech"},
)


def test_import_merges_near_duplicates_and_counts_them(tmp_path, admin_user):
    result = eval_set_import(path=jsonl(tmp_path, *ROWS), name="prod queries", created_by=admin_user)
    s = result.eval_set
    assert result.created and (s.name, s.version) == ("prod queries", 1)
    assert (s.lines_read, s.duplicates_merged, s.item_count) == (5, 2, 3)
    assert result.duplicates_merged == 2 and "merged 2 duplicates" in result.report()[0]
    assert s.categories == {"creative": 1, "geo": 1, "tech": 1}
    items = list(s.items.order_by("position"))
    first = items[0]
    assert first.messages == [{"role": "user", "content": "What is the capital of France?"}]
    assert (first.category, first.tags, first.reference, first.line, first.duplicates) == ("geo", ["dup", "easy"], "Paris", 1, 1)
    assert first.messages_sha256 == messages_sha256(first.messages)
    assert [i.line for i in items] == [1, 3, 5] and items[1].duplicates == 1
    assert s.created_by == admin_user and s.source_format == "jsonl" and len(s.content_hash) == 64


def test_same_content_same_name_gives_the_same_version(tmp_path):
    first = eval_set_import(path=jsonl(tmp_path, *ROWS), name="prod")
    reordered = (ROWS[4], ROWS[2], ROWS[0], ROWS[3], ROWS[1])  # the same first copy of each duplicate
    again = eval_set_import(path=jsonl(tmp_path, *reordered, name="other-order.jsonl"), name="prod")
    assert not again.created and again.eval_set.pk == first.eval_set.pk
    assert "nothing new was stored" in again.report()[1]
    assert EvalSet.objects.count() == 1 and EvalSetItem.objects.count() == 3


def test_other_content_gives_a_new_version_and_another_name_its_own_set(tmp_path):
    v1 = eval_set_import(path=jsonl(tmp_path, *ROWS), name="prod").eval_set
    v2 = eval_set_import(path=jsonl(tmp_path, *ROWS, {"prompt": "New one"}), name="prod").eval_set
    v2_reference = eval_set_import(path=jsonl(tmp_path, *ROWS[:4], {**ROWS[4], "reference": "cwnd"}), name="prod").eval_set
    other = eval_set_import(path=jsonl(tmp_path, *ROWS), name="staging").eval_set
    assert [v1.version, v2.version, v2_reference.version, other.version] == [1, 2, 3, 1]
    assert len({v1.content_hash, v2.content_hash, v2_reference.content_hash}) == 3
    assert other.content_hash == v1.content_hash


def test_a_csv_import(tmp_path):
    path = tmp_path / "q.csv"
    path.write_text("prompt,category,tags,reference\nWhy is the sky blue?,science,\"a;b\",Rayleigh\nHi,,,\n", encoding="utf-8")
    s = eval_set_import(path=path, name="csv set").eval_set
    assert (s.item_count, s.source_format, s.categories) == (2, "csv", {"": 1, "science": 1})
    assert s.items.get(position=0).tags == ["a", "b"]


def test_a_bad_file_stores_nothing(tmp_path):
    with pytest.raises(EvalSetFileError) as caught:
        eval_set_import(path=jsonl(tmp_path, *ROWS, {"messages": [{"role": "assistant", "content": "x"}]}), name="prod")
    assert caught.value.problems == [(6, "messages: no user turn (a prompt needs at least one message with role 'user')")]
    assert not EvalSet.objects.exists() and not EvalSetItem.objects.exists()


def test_the_import_limits_from_settings_apply(tmp_path, settings):
    settings.ARBITER_IMPORT_MAX_ROWS = 2
    with pytest.raises(ImportLimitError):
        eval_set_import(path=jsonl(tmp_path, *ROWS), name="prod")
    assert not EvalSet.objects.exists()


@pytest.mark.parametrize("name", ["", "   ", "!bad", "x" * 101, "a/b"])
def test_bad_names_are_refused(tmp_path, name):
    with pytest.raises(ValidationError) as caught:
        eval_set_import(path=jsonl(tmp_path, *ROWS), name=name)
    assert "name" in caught.value.message_dict


def test_stored_sets_and_items_are_frozen(tmp_path):
    s = eval_set_import(path=jsonl(tmp_path, *ROWS), name="prod").eval_set
    s.name = "renamed"
    with pytest.raises(FrozenRowError):
        s.save()
    item = s.items.first()
    item.category = "changed"
    with pytest.raises(FrozenRowError):
        item.save()
    assert EvalSet.objects.get().name == "prod"


def test_command_imports_and_lists(tmp_path, capsys):
    call_command("evalset", "import", str(jsonl(tmp_path, *ROWS)), "--name", "prod")
    out = capsys.readouterr().out
    assert "read 5 prompts; merged 2 duplicates" in out and "eval set 'prod' version 1: 3 prompts" in out
    call_command("evalset", "list")
    assert "prod\tv1\t3 prompts\t2 merged" in capsys.readouterr().out


def test_command_refuses_a_bad_file_with_one_line(tmp_path):
    path = jsonl(tmp_path, {"prompt": "ok"}, "{broken", {"prompt": ""})
    with pytest.raises(CommandError) as caught:
        call_command("evalset", "import", str(path), "--name", "prod")
    message = str(caught.value)
    assert "\n" not in message
    assert message.startswith("set.jsonl: line 2: not JSON") and message.endswith("(and 1 more problem)")
    assert not EvalSet.objects.exists()


def test_command_refuses_a_missing_file_an_empty_file_and_a_bad_name(tmp_path):
    with pytest.raises(CommandError, match="cannot read the file"):
        call_command("evalset", "import", str(tmp_path / "missing.jsonl"), "--name", "prod")
    empty = tmp_path / "empty.csv"
    empty.write_text("", encoding="utf-8")
    with pytest.raises(CommandError, match="^empty.csv: the file holds no prompts$"):
        call_command("evalset", "import", str(empty), "--name", "prod")
    with pytest.raises(CommandError, match="^--name: must be"):
        call_command("evalset", "import", str(jsonl(tmp_path, *ROWS)), "--name", "!")


def test_command_exit_code_is_non_zero_for_a_bad_file(tmp_path):
    import subprocess
    import sys

    bad = tmp_path / "bad.csv"
    bad.write_text("question\nWhy?\n", encoding="utf-8")
    done = subprocess.run([sys.executable, "manage.py", "evalset", "import", str(bad), "--name", "prod"],
                          capture_output=True, text=True, cwd=Path(__file__).resolve().parent.parent,
                          env={**__import__("os").environ, "DATABASE_URL": f"sqlite:///{tmp_path / 'db.sqlite3'}"})
    assert done.returncode == 1
    assert done.stderr.strip().endswith("bad.csv: line 1: no 'prompt' column (the header has 'question')")

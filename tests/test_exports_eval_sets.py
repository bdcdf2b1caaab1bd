"""Exports never hand eval-set prompts to a trainer (issue 17's rule, as snapshots apply it): the
formats with texts leave out comparisons whose prompt is an eval-set prompt or a near-duplicate of
one and count them as ``eval_set_excluded`` (page, API, command); ``include_eval_set_prompts`` keeps
them; raw votes keep them; the parallel writer gives the same rows and counts as one process.

The data is ``tests.export_fixtures.export_world``; its eval set holds "Capital of France?" (the gold
comparison's prompt, exactly), "  WHAT is 2 + 2 !" (the pair's "What is 2 + 2?": case, whitespace
and punctuation differ) and "say hi" (the tie's "Say hi.", which gives no pair anyway).
"""
from __future__ import annotations

import io
import json
import os
import uuid
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from django.core.management import CommandError, call_command
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext

from feedback import interface
from feedback.evalsets.exclusion import prompt_keys_fill
from feedback.evalsets.services import eval_set_import
from feedback.exports import services
from feedback.exports.services import export_create, export_request_check, export_write, exports_root
from feedback.models import Export, ExportStatus, Vote
from tests.conftest import api_as
from tests.export_fixtures import _comparison, _vote, day, export_world, jsonl_rows
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db

HELD_OUT = ("Capital of France?", "  WHAT is 2 + 2 !", "say hi")
SALT = b"e" * 32


@pytest.fixture
def world(settings, tmp_path):
    settings.ARBITER_DATA_DIR = tmp_path / "data"
    return export_world()


def eval_set(tmp_path: Path, *prompts: str, name: str = "prod"):
    path = tmp_path / f"{name}-{uuid.uuid4().hex[:6]}.jsonl"
    path.write_text("".join(json.dumps({"prompt": p}) + "\n" for p in prompts), encoding="utf-8")
    return eval_set_import(path=path, name=name).eval_set


def run_export(tmp_path, fmt, file_type="jsonl", *, options=None, workers=1):
    request = export_request_check(format=fmt, file_type=file_type, options=options)
    path = tmp_path / f"{fmt}-{workers}-{uuid.uuid4().hex[:8]}.{file_type}"
    result, counts = export_write(request=request, path=path, salt=SALT, workers=workers)
    return path, result, counts


def file_rows(path: Path, file_type: str) -> list[dict]:
    return pq.read_table(path).to_pylist() if file_type == "parquet" else jsonl_rows(path)


def texts(rows: list[dict]) -> str:
    return json.dumps(rows, ensure_ascii=False)


def browser(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


# --- the rule -------------------------------------------------------------------------------------


@pytest.mark.parametrize("file_type", ["jsonl", "parquet"])
def test_a_trl_export_leaves_out_exact_and_near_duplicate_eval_set_prompts_and_counts_them(world, tmp_path, file_type):
    eval_set(tmp_path, *HELD_OUT)
    path, result, counts = run_export(tmp_path, "trl-preference", file_type)
    rows = file_rows(path, file_type)
    # Of the three pairs, only the pirate's is left: 2 + 2 (near-duplicate) and France (exact) are held out.
    assert [row["chosen"][0]["content"] for row in rows] == ["Ahoy, matey!"] and result.rows == 1
    assert "2 + 2" not in texts(rows) and "France" not in texts(rows)
    assert counts == {"votes_read": 9, "comparisons": 6, "both_bad": 1, "eval_set_excluded": 2, "split_votes": 1,
                      "ties": 1}  # the tie on "Say hi." stays a tie, as in a snapshot


def test_the_export_leaves_out_and_counts_what_a_snapshot_does(world, tmp_path):
    eval_set(tmp_path, *HELD_OUT)
    _, _, counts = run_export(tmp_path, "trl-preference")
    snapshot = interface.snapshot_create(rules={})
    assert counts["eval_set_excluded"] == snapshot.counts["eval_set_excluded"] == 2


@pytest.mark.parametrize("fmt, file_type, kept_rows, excluded", [
    ("trl-unpaired", "jsonl", 4, 2),  # the pirate's pair (chosen, rejected) and the both-bad pair (two False)
    ("hh-rlhf", "jsonl", 0, 2),  # the pirate's prompt has a system turn: system_prompt
    ("arena", "parquet", 4, 3),  # one row per vote: the tie's vote is a battle too, so its comparison counts
    ("trl-preference", "hf-dataset", 1, 2),
])
def test_every_format_with_texts_leaves_them_out_and_the_option_keeps_them(world, tmp_path, fmt, file_type, kept_rows,
                                                                            excluded):
    eval_set(tmp_path, *HELD_OUT)
    path, result, counts = run_export(tmp_path, fmt, file_type)
    assert result.rows == kept_rows and counts["eval_set_excluded"] == excluded
    if file_type != "hf-dataset":
        written = texts(file_rows(path, file_type))
        assert "2 + 2" not in written and "France" not in written and "Say hi" not in written
    _, everything, counts = run_export(tmp_path, fmt, file_type, options={"include_eval_set_prompts": True})
    assert "eval_set_excluded" not in counts and everything.rows > kept_rows


def test_the_option_gives_the_file_an_export_without_eval_sets_gives(world, tmp_path):
    before, _, before_counts = run_export(tmp_path, "trl-preference")
    eval_set(tmp_path, *HELD_OUT)
    kept, _, kept_counts = run_export(tmp_path, "trl-preference", options={"include_eval_set_prompts": True})
    assert kept.read_bytes() == before.read_bytes() and kept_counts == before_counts
    assert "France" in kept.read_text(encoding="utf-8")


def test_raw_votes_keep_every_vote_mark_eval_set_ones_and_refuse_the_option(world, tmp_path):
    first, _, _ = run_export(tmp_path, "raw-votes")
    assert {row["in_eval_set"] for row in jsonl_rows(first)} == {False}  # no eval set yet
    eval_set(tmp_path, *HELD_OUT)
    path, result, counts = run_export(tmp_path, "raw-votes")
    rows = jsonl_rows(path)
    assert result.rows == 9 and "eval_set_excluded" not in counts
    assert {row["comparison_id"] for row in rows} == {c.pk for c in world.comparisons.values()}
    # Marked exactly where the formats with texts leave comparisons out (the snapshots' rule).
    held_out = {c.pk for c in world.comparisons.values() if c.prompt_id in services.eval_set_prompt_ids()}
    assert {row["comparison_id"] for row in rows if row["in_eval_set"]} == held_out
    assert 0 < len(held_out) < len(world.comparisons)
    with pytest.raises(Exception, match="'include_eval_set_prompts' does not apply to raw-votes"):
        export_request_check(format="raw-votes", file_type="csv", options={"include_eval_set_prompts": True})


def test_without_an_eval_set_nothing_is_left_out_or_counted(world, tmp_path):
    _, result, counts = run_export(tmp_path, "trl-preference")
    assert result.rows == 3 and "eval_set_excluded" not in counts


def test_one_eval_set_match_per_export_and_no_query_per_comparison(world, tmp_path):
    eval_set(tmp_path, *HELD_OUT, "Question 0", "Question 1")

    def queries() -> tuple[int, int]:
        prompt_keys_fill()  # new prompts' keys are written once, ever: not part of what an export costs
        with CaptureQueriesContext(connection) as captured:
            _, _, counts = run_export(tmp_path, "trl-preference")
        matching = [q["sql"] for q in captured.captured_queries
                    if "feedback_evalsetitem" in q["sql"] or "feedback_promptkey" in q["sql"]]
        return len(captured.captured_queries), len(matching), counts["eval_set_excluded"]

    total, matching, excluded = queries()
    alice = world.users["alice"]
    for k in range(12):  # twelve more held-out comparisons: near-duplicates of the two questions
        comparison = _comparison(question=f"question {k % 2}!", a=("m-1", f"A{k}."), b=("m-2", f"B{k}."))
        _vote(comparison, alice, "a", strength="clear", when=day("2025-03-01T00:00"))
    assert queries() == (total, matching, excluded + 12)
    assert matching <= 3  # is there an eval set; new prompt texts to key; the ids of the held-out prompts


# --- page, API, command --------------------------------------------------------------------------


def test_the_page_shows_the_count_and_its_box_keeps_them(world, tmp_path):
    eval_set(tmp_path, *HELD_OUT)
    client = browser(world.users["admin"])
    form = {"format": "trl-preference", "file_type": "jsonl", "gold": "include"}
    assert client.post("/manage/exports/", form).status_code == 302
    held_out = Export.objects.get()
    assert held_out.row_count == 1 and held_out.counts["eval_set_excluded"] == 2
    assert held_out.options["include_eval_set_prompts"] is False
    page = client.get("/manage/exports/").content.decode()
    row = page.split(f'id="export-{held_out.pk}"')[1].split("</tr>")[0]
    assert '<span class="hint" data-testid="eval-set-excluded">2 comparisons left out: their prompts are in an eval set' in row
    assert "Keep eval-set prompts (analysis exports)" in page
    assert client.post("/manage/exports/", {**form, "include_eval_set_prompts": "on"}).status_code == 302
    kept = Export.objects.latest("id")
    assert kept.row_count == 3 and "eval_set_excluded" not in kept.counts and kept.options["include_eval_set_prompts"]
    row = client.get("/manage/exports/").content.decode().split(f'id="export-{kept.pk}"')[1].split("</tr>")[0]
    assert 'data-testid="eval-set-kept">eval-set prompts kept' in row and "eval-set-excluded" not in row
    refused = client.post("/manage/exports/", {**form, "format": "raw-votes", "include_eval_set_prompts": "on"})
    assert refused.status_code == 400 and "does not apply to raw-votes" in refused.content.decode()
    assert Export.objects.count() == 2


def test_the_api_reports_the_count_takes_the_option_and_refuses_a_non_boolean(world, tmp_path):
    eval_set(tmp_path, *HELD_OUT)
    api = api_as(world.users["admin"])
    body = {"format": "trl-preference", "file_type": "jsonl"}
    held_out = api.post("/api/exports/", body, format="json")
    assert held_out.status_code == 201 and held_out.json()["row_count"] == 1
    assert held_out.json()["counts"]["eval_set_excluded"] == 2
    assert held_out.json()["options"]["include_eval_set_prompts"] is False
    kept = api.post("/api/exports/", {**body, "options": {"include_eval_set_prompts": True}}, format="json")
    assert kept.status_code == 201 and kept.json()["row_count"] == 3 and "eval_set_excluded" not in kept.json()["counts"]
    assert api.get(f"/api/exports/{held_out.json()['id']}/").json()["counts"]["eval_set_excluded"] == 2
    for value in ("yes", 1, None):
        refused = api.post("/api/exports/", {**body, "options": {"include_eval_set_prompts": value}}, format="json")
        assert refused.status_code == 400
        assert refused.json() == {"options": ["include_eval_set_prompts must be true or false"]}
    assert Export.objects.count() == 2


def test_the_command_prints_the_count_and_takes_the_option(world, tmp_path):
    eval_set(tmp_path, *HELD_OUT)
    out = io.StringIO()
    call_command("export_preferences", "--format", "trl-preference", "--file-type", "jsonl", stdout=out,
                 stderr=io.StringIO())
    lines = out.getvalue().splitlines()
    assert lines[:2] == [
        "1 row from 9 votes on 6 comparisons (no row: both_bad=1, eval_set_excluded=2, split_votes=1, ties=1)",
        "2 comparisons left out: their prompts are in an eval set (--include-eval-set-prompts keeps them)",
    ]
    output = tmp_path / "kept.jsonl"
    out = io.StringIO()
    call_command("export_preferences", "--format", "trl-preference", "--file-type", "jsonl",
                 "--include-eval-set-prompts", "--output", str(output), stdout=out, stderr=io.StringIO())
    assert out.getvalue().splitlines()[0] == "3 rows from 9 votes on 6 comparisons (no row: both_bad=1, split_votes=1, ties=1)"
    assert len(jsonl_rows(output)) == 3


@pytest.mark.parametrize("arguments, message", [
    (["--format", "trl-preference", "--include-eval-set-prompts=maybe"],
     "argument --include-eval-set-prompts: ignored explicit argument 'maybe'"),
    (["--format", "raw-votes", "--include-eval-set-prompts"], "options: 'include_eval_set_prompts' does not apply to raw-votes"),
])
def test_the_command_refuses_a_bad_option_in_one_line(world, tmp_path, arguments, message):
    output = tmp_path / "out.jsonl"
    with pytest.raises(CommandError) as caught:
        call_command("export_preferences", *arguments, "--file-type", "jsonl", "--output", str(output),
                     stdout=io.StringIO(), stderr=io.StringIO())
    assert message in str(caught.value) and "\n" not in str(caught.value)
    assert not output.exists() and not Export.objects.exists()


# --- the parallel writer (forked workers: committed data) -----------------------------------------


def held_out_world(tmp_path: Path) -> None:
    """``export_world`` plus 40 comparisons "Q0?" ... "Q39?" with 1-4 votes each; the eval set holds
    ``HELD_OUT`` and near-duplicates of every seventh question, spread over the workers' ranges."""
    export_world()
    users = [UserFactory(username=f"rater-{k}", role="annotator") for k in range(4)]
    choices = ["a", "b", "a", "tie", "both_bad", "a"]
    for i in range(40):
        comparison = _comparison(question=f"Q{i}?", a=("m-1", f"A{i}."), b=("m-2", f"B{i}."),
                                 split="eval" if i % 5 == 0 else "train")
        for k, user in enumerate(users[: 1 + i % 4]):
            choice = choices[(i + k) % len(choices)]
            _vote(comparison, user, choice, strength="clear" if choice in ("a", "b") else "",
                  when=day("2025-03-01T00:00"))
    eval_set(tmp_path, *HELD_OUT, *(f" q{i} " for i in range(0, 40, 7)))


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("fmt, file_type", [("trl-preference", "jsonl"), ("trl-unpaired", "parquet"),
                                            ("arena", "jsonl"), ("hh-rlhf", "parquet"), ("raw-votes", "jsonl")])
def test_the_parallel_path_gives_the_rows_and_counts_of_one_process(tmp_path, monkeypatch, fmt, file_type):
    held_out_world(tmp_path)
    parent, calls = os.getpid(), []
    real = services.eval_set_prompt_ids

    def parent_only():
        if os.getpid() != parent:
            raise AssertionError("a worker matched the eval sets again")
        calls.append(parent)
        return real()

    monkeypatch.setattr(services, "eval_set_prompt_ids", parent_only)
    one, one_result, one_counts = run_export(tmp_path, fmt, file_type, workers=1)
    three, three_result, three_counts = run_export(tmp_path, fmt, file_type, workers=3)
    assert calls == [parent, parent]  # once per export, in the parent
    assert three_counts == one_counts and three_result.rows == one_result.rows > 0
    assert file_rows(three, file_type) == file_rows(one, file_type)
    if file_type == "jsonl":
        assert three.read_bytes() == one.read_bytes()
    if fmt == "raw-votes":  # every vote kept, those on held-out prompts marked, by every worker alike
        marked = {row["comparison_id"] for row in file_rows(one, file_type) if row["in_eval_set"]}
        assert "eval_set_excluded" not in one_counts and len(marked) >= 4
        return
    assert one_counts["eval_set_excluded"] >= 4  # France, 2 + 2, Q0 and Q35 are pairs (and more battles)
    assert "Q35?" not in texts(file_rows(one, file_type)) and "Q8?" in texts(file_rows(one, file_type))


@pytest.mark.django_db(transaction=True)
def test_an_export_job_over_the_parallel_threshold_records_the_same_count(settings, tmp_path):
    settings.ARBITER_DATA_DIR = tmp_path / "data"
    settings.ARBITER_EXPORT_PARALLEL_MIN_VOTES, settings.ARBITER_EXPORT_WORKERS = 1, 3
    held_out_world(tmp_path)
    exported = export_create(format="trl-preference", file_type="jsonl", mode="inline")
    assert exported.status == ExportStatus.SUCCEEDED, exported.error
    settings.ARBITER_EXPORT_PARALLEL_MIN_VOTES = 10 ** 9
    single = export_create(format="trl-preference", file_type="jsonl", mode="inline")
    assert services.export_workers(single.votes_total) == 1 and services.export_workers(10 ** 9) == 3
    assert exported.counts == single.counts and exported.counts["eval_set_excluded"] == 4
    assert exported.row_count == single.row_count and exported.checksum == single.checksum
    assert exported.votes_read == Vote.objects.count()
    assert (exports_root() / Path(exported.file_path).name).read_bytes() == (exports_root() / Path(single.file_path).name).read_bytes()

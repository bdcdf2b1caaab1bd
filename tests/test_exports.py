"""Exports: each format's rows, the filters, pseudonyms, CSV escaping, Parquet and datasets folders,
bad input and temp-then-rename. The fixture is ``tests.export_fixtures.export_world`` (six comparisons,
nine votes, every outcome)."""
from __future__ import annotations

import csv
import hashlib
import json
import uuid
from pathlib import Path

import pytest
from django.core.exceptions import ValidationError
from django.db import connection

from feedback.exports import formats
from feedback.exports.filters import ExportFilters
from feedback.exports.formats import ComparisonGroup, FormatContext, Pseudonyms, VoteRow, export_rows, prompt_text
from feedback.exports.services import export_create, export_request_check, export_write, exports_root
from feedback.exports.writers import rows_write, spreadsheet_safe
from feedback.models import Export, ExportStatus
from feedback.preferences import MARGIN_BY_STRENGTH
from feedback.snapshots import snapshot_create, snapshot_paths
from tests.export_fixtures import assistant, export_world, jsonl_rows, user_message

pytestmark = pytest.mark.django_db


@pytest.fixture
def world():
    return export_world()


@pytest.fixture
def data_root(settings, tmp_path):
    settings.ARBITER_DATA_DIR = tmp_path / "data"
    return settings.ARBITER_DATA_DIR


def run_export(tmp_path, fmt, file_type="jsonl", *, filters=None, options=None, salt=None):
    request = export_request_check(format=fmt, file_type=file_type, filters=filters, options=options)
    path = tmp_path / f"out-{uuid.uuid4().hex[:8]}.{file_type}"
    result, counts = export_write(request=request, path=path, salt=salt)
    return path, result, counts


def trl_rows(tmp_path, **kwargs) -> list[dict]:
    path, _, _ = run_export(tmp_path, "trl-preference", **kwargs)
    return jsonl_rows(path)


# --- formats --------------------------------------------------------------------------------------


def test_trl_preference_rows_aggregate_by_majority_with_an_explicit_prompt_and_margin(world, tmp_path):
    path, result, counts = run_export(tmp_path, "trl-preference")
    rows = jsonl_rows(path)
    assert rows == [
        {"prompt": [user_message("What is 2 + 2?")], "chosen": assistant("Four."), "rejected": assistant("Five."),
         "margin": (MARGIN_BY_STRENGTH["strong"] + MARGIN_BY_STRENGTH["clear"]) / 2},
        {"prompt": [user_message("Capital of France?")], "chosen": assistant("Paris."), "rejected": assistant("Lyon."),
         "margin": MARGIN_BY_STRENGTH["clear"]},
        {"prompt": [{"role": "system", "content": "You are a pirate."}, user_message("Greet me.")],
         "chosen": assistant("Ahoy, matey!"), "rejected": assistant("Hello."), "margin": 1.0},
    ]
    assert result.rows == 3
    assert counts == {"votes_read": 9, "comparisons": 6, "both_bad": 1, "split_votes": 1, "ties": 1}
    assert result.checksum == hashlib.sha256(path.read_bytes()).hexdigest()
    assert result.size_bytes == path.stat().st_size


def test_the_trl_export_has_exactly_the_rows_a_snapshot_builds_from_the_same_votes(world, tmp_path, data_root):
    snapshot = snapshot_create(rules={})
    train, held_out = (jsonl_rows(p) for p in snapshot_paths(snapshot))
    by_comparison = sorted(train + held_out, key=lambda row: row["comparison_id"])
    expected = [{key: row[key] for key in ("prompt", "chosen", "rejected", "margin")} for row in by_comparison]
    assert trl_rows(tmp_path) == expected


def test_trl_preference_as_plain_text_renders_the_prompt_as_a_transcript_and_can_drop_the_margin(world, tmp_path):
    rows = trl_rows(tmp_path, options={"conversational": False, "include_margin": False})
    assert rows[0] == {"prompt": "\n\nHuman: What is 2 + 2?\n\nAssistant:", "chosen": " Four.", "rejected": " Five."}
    assert rows[2]["prompt"] == "\n\nSystem: You are a pirate.\n\nHuman: Greet me.\n\nAssistant:"
    assert all("margin" not in row for row in rows)


def test_prompt_text_of_a_multi_turn_prompt_alternates_the_markers():
    messages = [user_message("a"), {"role": "assistant", "content": "b"}, user_message("c")]
    assert prompt_text(messages) == "\n\nHuman: a\n\nAssistant: b\n\nHuman: c\n\nAssistant:"


def test_unpaired_rows_label_chosen_true_rejected_false_both_bad_two_false_and_ties_nothing(world, tmp_path):
    path, result, counts = run_export(tmp_path, "trl-unpaired")
    rows = jsonl_rows(path)
    labelled = [(row["prompt"][-1]["content"], row["completion"][0]["content"], row["label"]) for row in rows]
    assert labelled == [
        ("What is 2 + 2?", "Four.", True), ("What is 2 + 2?", "Five.", False),
        ("Name a prime.", "Nine.", False), ("Name a prime.", "Fifteen.", False),
        ("Capital of France?", "Paris.", True), ("Capital of France?", "Lyon.", False),
        ("Greet me.", "Ahoy, matey!", True), ("Greet me.", "Hello.", False),
    ]
    assert set(rows[0]) == {"prompt", "completion", "label"} and rows[0]["completion"][0]["role"] == "assistant"
    assert counts["ties"] == 1 and counts["split_votes"] == 1 and "both_bad" not in counts


def test_unpaired_as_plain_text(world, tmp_path):
    path, _, _ = run_export(tmp_path, "trl-unpaired", options={"conversational": False})
    assert jsonl_rows(path)[0] == {"prompt": "\n\nHuman: What is 2 + 2?\n\nAssistant:", "completion": " Four.", "label": True}


def test_raw_votes_give_one_row_per_vote_with_ids_models_and_every_field(world, tmp_path):
    path, result, _ = run_export(tmp_path, "raw-votes")
    rows = jsonl_rows(path)
    assert result.rows == len(rows) == 9
    assert [row["vote_id"] for row in rows] == sorted(v.pk for v in world.votes.values())
    pair, vote = world.comparisons["pair"], world.votes["pair_alice"]
    first = rows[0]
    assert {k: v for k, v in first.items() if k != "annotator"} == {
        "vote_id": vote.pk, "comparison_id": pair.pk, "prompt_id": pair.prompt_id,
        "completion_a_id": pair.completion_a_id, "completion_b_id": pair.completion_b_id,
        "model_a": "m-good", "model_b": "m-bad", "choice": "a", "strength": "strong",
        "helpfulness": "a", "harmlessness": "tie", "honesty": "b", "rationale": "=SUM(A1:A2)",
        "shown_left": "b", "ms_on_item": 4200, "source": "annotator",
        "created_at": "2025-01-10T09:00:00+00:00", "split": "train", "gold_choice": "", "in_eval_set": False,
    }
    by_vote = {row["vote_id"]: row for row in rows}
    assert by_vote[world.votes["gold_carol"].pk]["gold_choice"] == "b"
    assert by_vote[world.votes["tie_alice"].pk]["split"] == "eval"
    assert by_vote[world.votes["tie_alice"].pk]["ms_on_item"] is None


def test_pseudonyms_are_stable_within_an_export_differ_across_exports_and_hide_usernames(world, tmp_path):
    first, _, _ = run_export(tmp_path, "raw-votes")
    second, _, _ = run_export(tmp_path, "raw-votes")
    names_1 = {row["vote_id"]: row["annotator"] for row in jsonl_rows(first)}
    names_2 = {row["vote_id"]: row["annotator"] for row in jsonl_rows(second)}
    votes = world.votes
    alice_votes = [votes[k].pk for k in ("pair_alice", "tie_alice", "system_alice", "split_alice")]
    assert len({names_1[pk] for pk in alice_votes}) == 1  # one annotator, one pseudonym
    assert len(set(names_1.values())) == 3  # three annotators, three pseudonyms
    assert names_1[alice_votes[0]] != names_2[alice_votes[0]]  # a fresh salt per export
    assert not set(names_1.values()) & set(names_2.values())
    assert all(name.startswith("annotator-") and len(name) == 26 for name in names_1.values())
    assert not {"alice", "bob", "carol"} & set(names_1.values())


def test_pseudonyms_are_the_hmac_of_the_user_id_under_the_export_salt(world, tmp_path):
    salt = b"s" * 32
    path, _, _ = run_export(tmp_path, "raw-votes", salt=salt)
    import hmac

    alice = world.users["alice"]
    expected = "annotator-" + hmac.new(salt, str(alice.pk).encode(), hashlib.sha256).hexdigest()[:16]
    assert jsonl_rows(path)[0]["annotator"] == expected
    assert Pseudonyms(salt=salt)(alice.pk) == expected


def test_real_usernames_only_when_asked(world, tmp_path):
    path, _, _ = run_export(tmp_path, "raw-votes", options={"real_usernames": True})
    assert [row["annotator"] for row in jsonl_rows(path)[:3]] == ["alice", "bob", "carol"]


def test_hh_rlhf_rows_are_transcripts_and_a_system_prompt_is_skipped_and_counted(world, tmp_path):
    path, _, counts = run_export(tmp_path, "hh-rlhf")
    assert path.read_text(encoding="utf-8").splitlines() == [
        '{"chosen": "\\n\\nHuman: What is 2 + 2?\\n\\nAssistant: Four.", "rejected": "\\n\\nHuman: What is 2 + 2?\\n\\nAssistant: Five."}',
        '{"chosen": "\\n\\nHuman: Capital of France?\\n\\nAssistant: Paris.", "rejected": "\\n\\nHuman: Capital of France?\\n\\nAssistant: Lyon."}',
    ]
    assert counts["system_prompt"] == 1


def test_arena_battles_one_row_per_vote_with_winner_names_and_conversations(world, tmp_path):
    path, _, _ = run_export(tmp_path, "arena")
    rows = jsonl_rows(path)
    assert [row["winner"] for row in rows] == [
        "model_a", "model_a", "model_b", "tie", "tie (bothbad)", "model_b", "model_a", "model_a", "model_b",
    ]
    first = rows[0]
    assert first["question_id"] == str(world.comparisons["pair"].pk)
    assert (first["model_a"], first["model_b"]) == ("m-good", "m-bad")
    assert first["conversation_a"] == [user_message("What is 2 + 2?"), *assistant("Four.")]
    assert first["conversation_b"] == [user_message("What is 2 + 2?"), *assistant("Five.")]
    assert first["turn"] == 1 and first["tstamp"] == world.votes["pair_alice"].created_at.timestamp()
    assert first["judge"].startswith("annotator-") and rows[3]["judge"] == first["judge"]  # alice both times
    assert set(first) == {"question_id", "model_a", "model_b", "winner", "judge", "conversation_a", "conversation_b",
                          "turn", "tstamp"}


def test_export_rows_is_pure_and_applies_min_agreement_to_every_format():
    vote = lambda pk, choice: VoteRow(pk, choice, "clear", pk)  # noqa: E731
    group = ComparisonGroup(1, 1, [user_message("q")], "train", 1, 2, "x", "y", "A", "B", "",
                            [vote(1, "a"), vote(2, "a"), vote(3, "b")])
    context = FormatContext()
    assert list(export_rows([group], export_format=formats.FORMATS["raw-votes"], context=context, min_agreement=0.7)) == []
    assert context.counts == {"low_agreement": 1}
    rows = list(export_rows([group], export_format=formats.FORMATS["trl-preference"], context=context, min_agreement=0.6))
    assert [(split, row["chosen"][0]["content"]) for split, row in rows] == [("train", "A")]


# --- filters ------------------------------------------------------------------------------------


def chosen_texts(tmp_path, **filters) -> list[str]:
    return [row["chosen"][0]["content"] for row in trl_rows(tmp_path, filters=filters)]


def raw_vote_ids(tmp_path, **filters) -> set[int]:
    path, _, _ = run_export(tmp_path, "raw-votes", filters=filters)
    return {row["vote_id"] for row in jsonl_rows(path)}


def ids(world, *names) -> set[int]:
    return {world.votes[name].pk for name in names}


def test_date_range_a_bare_date_to_includes_that_day_and_a_date_time_is_exact(world, tmp_path):
    assert raw_vote_ids(tmp_path, date_to="2025-01-10") == ids(world, "pair_alice", "pair_bob", "pair_carol")
    assert raw_vote_ids(tmp_path, date_from="2025-02-11") == ids(world, "system_alice", "split_alice", "split_bob")
    assert raw_vote_ids(tmp_path, date_from="2025-01-10T09:30", date_to="2025-01-10T11:00") == ids(world, "pair_bob")


def test_annotators_included_or_excluded_change_the_aggregate(world, tmp_path):
    # Alice alone: the pair has one vote (a strong); the split comparison becomes her "a".
    rows = trl_rows(tmp_path, filters={"annotators": ["alice"]})
    assert [(row["chosen"][0]["content"], row["margin"]) for row in rows] == [("Four.", 1.0), ("Ahoy, matey!", 1.0), ("Blue.", 1 / 3)]
    # Without alice: bob a vs carol b on the pair is a split; bob's "b" decides the split comparison.
    assert chosen_texts(tmp_path, exclude_annotators=["alice"]) == ["Paris.", "Red."]
    assert raw_vote_ids(tmp_path, annotators=[world.users["bob"].pk], exclude_annotators=["bob"]) == set()


def test_model_names_tags_splits_and_gold(world, tmp_path):
    assert raw_vote_ids(tmp_path, model_names=["m-other"]) == ids(world, "both_bad_bob")
    assert raw_vote_ids(tmp_path, tags=["math", "chat"]) == ids(world, "pair_alice", "pair_bob", "pair_carol", "tie_alice")
    assert raw_vote_ids(tmp_path, splits=["eval"]) == ids(world, "tie_alice")
    assert len(raw_vote_ids(tmp_path, splits=["train"])) == 8
    assert raw_vote_ids(tmp_path, gold="only") == ids(world, "gold_carol")
    assert chosen_texts(tmp_path, gold="exclude") == ["Four.", "Ahoy, matey!"]


def test_min_agreement_leaves_out_comparisons_whose_votes_agree_less(world, tmp_path):
    path, _, counts = run_export(tmp_path, "trl-preference", filters={"min_agreement": 0.7})
    assert [row["chosen"][0]["content"] for row in jsonl_rows(path)] == ["Paris.", "Ahoy, matey!"]
    assert counts["low_agreement"] == 2  # the pair (2/3) and the split (1/2)
    assert chosen_texts(tmp_path, min_agreement=0.6)[0] == "Four."


def test_filters_round_trip_through_as_dict():
    filters = ExportFilters.from_dict({"date_from": "2025-01-01", "date_to": "2025-01-31", "annotators": [3, 1, 3],
                                       "tags": [" b", "a"], "splits": ["eval"], "min_agreement": 1, "gold": "only"})
    assert filters.as_dict()["date_to"] == "2025-02-01T00:00:00+00:00"
    assert filters.annotators == (1, 3) and filters.tags == ("a", "b") and filters.min_agreement == 1.0
    assert ExportFilters.from_dict(filters.as_dict()) == filters


# --- file types ---------------------------------------------------------------------------------


def test_csv_escapes_cells_a_spreadsheet_would_run_as_formulas(world, tmp_path):
    path, _, _ = run_export(tmp_path, "raw-votes", "csv")
    with open(path, newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    rationales = {row["vote_id"]: row["rationale"] for row in rows}
    v = world.votes
    assert rationales[str(v["pair_alice"].pk)] == "'=SUM(A1:A2)"
    assert rationales[str(v["pair_bob"].pk)] == "'-5 points for B"
    assert rationales[str(v["pair_carol"].pk)] == "'@here B"
    assert rationales[str(v["tie_alice"].pk)] == "'\tsame"
    assert rationales[str(v["both_bad_bob"].pk)] == "'+1 neither"
    assert rationales[str(v["gold_carol"].pk)] == ""
    assert rows[0]["ms_on_item"] == "4200" and rows[3]["ms_on_item"] == ""
    assert list(rows[0]) == [c.name for c in formats.RAW_VOTE_COLUMNS]


def test_spreadsheet_safe_leaves_numbers_and_plain_text_alone():
    assert [spreadsheet_safe(v) for v in (-3, 1.5, None, "ok", "=1", "\rx", "a=b")] == [-3, 1.5, "", "ok", "'=1", "'\rx", "a=b"]


def test_parquet_holds_the_same_rows_as_jsonl_in_row_groups(world, tmp_path, monkeypatch):
    import pyarrow.parquet as pq

    from feedback.exports import writers

    monkeypatch.setattr(writers, "BATCH_ROWS", 2)
    jsonl, _, _ = run_export(tmp_path, "trl-preference")
    parquet, result, _ = run_export(tmp_path, "trl-preference", "parquet")
    table = pq.read_table(parquet)
    assert table.to_pylist() == jsonl_rows(jsonl)
    assert pq.ParquetFile(parquet).num_row_groups == 2  # 3 rows in batches of 2
    assert str(table.schema.field("prompt").type) == "list<element: struct<role: string, content: string>>"
    assert result.checksum == hashlib.sha256(parquet.read_bytes()).hexdigest()


def test_a_datasets_folder_holds_one_split_per_asked_split(world, tmp_path):
    from datasets import load_from_disk

    path, result, _ = run_export(tmp_path, "raw-votes", "hf-dataset")
    dataset = load_from_disk(str(path))
    assert sorted(dataset) == ["eval", "train"]
    assert dataset["eval"]["vote_id"] == [world.votes["tie_alice"].pk]
    assert len(dataset["train"]) == 8 and result.rows == 9
    only_train, _, _ = run_export(tmp_path, "trl-preference", "hf-dataset", filters={"splits": ["train"]})
    assert list(load_from_disk(str(only_train))) == ["train"]
    empty, _, _ = run_export(tmp_path, "trl-preference", "hf-dataset", filters={"splits": ["eval"]})
    assert len(load_from_disk(str(empty))["eval"]) == 0  # a tie is the only eval comparison


def test_a_datasets_folder_checksum_is_the_hash_of_its_sha256sum_listing(world, tmp_path):
    path, result, _ = run_export(tmp_path, "trl-unpaired", "hf-dataset")
    files = sorted((p for p in path.rglob("*") if p.is_file()), key=lambda p: p.relative_to(path).as_posix())
    listing = "".join(f"{hashlib.sha256(p.read_bytes()).hexdigest()}  {p.relative_to(path).as_posix()}\n" for p in files)
    assert result.checksum == hashlib.sha256(listing.encode()).hexdigest()
    assert result.size_bytes == sum(p.stat().st_size for p in files)


def test_a_datasets_folder_is_reproducible_and_each_split_names_itself(world, tmp_path):
    from datasets import load_from_disk

    # The same votes exported twice (raw votes: pseudonyms fixed by the salt) give the same bytes.
    first, result, _ = run_export(tmp_path, "raw-votes", "hf-dataset", salt=b"fixed")
    second, again, _ = run_export(tmp_path, "raw-votes", "hf-dataset", salt=b"fixed")
    assert result.checksum == again.checksum
    # ... also with an empty split (trl-preference has no eval row: the eval comparison is a tie).
    assert run_export(tmp_path, "trl-preference", "hf-dataset")[1].checksum == \
        run_export(tmp_path, "trl-preference", "hf-dataset")[1].checksum
    for split in ("train", "eval"):
        info = json.loads((first / split / "dataset_info.json").read_text())
        state = json.loads((first / split / "state.json").read_text())
        assert list(info["splits"]) == [split] and info["splits"][split]["name"] == split
        assert state["_split"] == split
        assert str(load_from_disk(str(first))[split].split) == split


# --- the Export job -----------------------------------------------------------------------------


def test_a_small_export_runs_inline_and_records_file_rows_and_checksum(world, data_root):
    export = export_create(format="trl-preference", file_type="jsonl", created_by=world.users["admin"])
    assert export.status == ExportStatus.SUCCEEDED and export.inline
    path = Path(data_root) / export.file_path
    assert path.parent == exports_root() and path.name.endswith("-trl-preference.jsonl")
    assert export.row_count == export.progress_rows == len(jsonl_rows(path)) == 3
    assert export.checksum == hashlib.sha256(path.read_bytes()).hexdigest() and export.size_bytes == path.stat().st_size
    assert export.votes_total == export.votes_read == 9 and export.vote_id_max == max(v.pk for v in world.votes.values())
    assert export.counts["ties"] == 1 and export.started_at and export.finished_at
    assert export.options == {"conversational": True, "include_margin": True, "include_eval_set_prompts": False}


def test_votes_cast_after_an_export_was_created_are_not_in_it(world, data_root, settings):
    from feedback.exports.services import export_run
    from tests.export_fixtures import _vote, day

    settings.ARBITER_EXPORT_INLINE_MAX_VOTES = 0
    export = export_create(format="raw-votes", file_type="jsonl")
    assert export.status == ExportStatus.QUEUED and not export.inline
    _vote(world.comparisons["gold"], world.users["alice"], "a", strength="clear", when=day("2025-03-01"))
    export = export_run(export_id=export.pk)
    assert export.row_count == 9


@pytest.mark.parametrize(
    "request_kwargs, field, words",
    [
        ({"format": "trl-dpo-magic", "file_type": "jsonl"}, "format", "unknown format 'trl-dpo-magic'"),
        ({"format": "trl-preference", "file_type": "xlsx"}, "file_type", "unknown file type 'xlsx'"),
        ({"format": "trl-preference", "file_type": "csv"}, "file_type", "cannot be written as csv"),
        ({"format": "raw-votes", "file_type": "csv", "filters": {"date_from": "yesterday"}}, "date_from", "ISO 8601"),
        ({"format": "raw-votes", "file_type": "csv", "filters": {"date_from": "2025-02-01", "date_to": "2025-01-01"}},
         "date_to", "after date_from"),
        ({"format": "raw-votes", "file_type": "csv", "filters": {"min_agreement": 1.5}}, "min_agreement", "0 to 1"),
        ({"format": "raw-votes", "file_type": "csv", "filters": {"splits": ["test"]}}, "splits", "train and/or eval"),
        ({"format": "raw-votes", "file_type": "csv", "filters": {"gold": "maybe"}}, "gold", "include, exclude, only"),
        ({"format": "raw-votes", "file_type": "csv", "filters": {"colour": "red"}}, "colour", "unknown filter"),
        ({"format": "raw-votes", "file_type": "csv", "filters": ["tags"]}, "filters", "must be an object"),
        ({"format": "raw-votes", "file_type": "csv", "filters": {"annotators": ["nobody", "alice"]}}, "annotators",
         "no such annotator: nobody"),
        ({"format": "raw-votes", "file_type": "csv", "filters": {"model_names": "m-good"}}, "model_names", "list"),
        ({"format": "trl-preference", "file_type": "jsonl", "options": {"real_usernames": True}}, "options",
         "does not apply to trl-preference"),
        ({"format": "hh-rlhf", "file_type": "jsonl", "options": {"conversational": "yes"}}, "options",
         "'conversational' does not apply to hh-rlhf (it takes include_eval_set_prompts)"),
        ({"format": "trl-preference", "file_type": "jsonl", "options": {"include_eval_set_prompts": "yes"}}, "options",
         "include_eval_set_prompts must be true or false"),
        ({"format": "raw-votes", "file_type": "csv", "options": {"include_eval_set_prompts": True}}, "options",
         "'include_eval_set_prompts' does not apply to raw-votes"),
        ({"format": "trl-unpaired", "file_type": "jsonl", "options": {"conversational": "no"}}, "options", "true or false"),
    ],
)
def test_bad_input_is_a_field_error_and_nothing_is_recorded_or_written(world, data_root, request_kwargs, field, words):
    with pytest.raises(ValidationError) as caught:
        export_create(**request_kwargs)
    assert words in " ".join(caught.value.message_dict[field])
    assert not Export.objects.exists()
    assert not exports_root().exists() or not any(exports_root().iterdir())


def test_every_problem_is_reported_at_once(world):
    with pytest.raises(ValidationError) as caught:
        export_create(format="nope", file_type="nope", filters={"gold": 1, "tags": 2})
    assert set(caught.value.message_dict) == {"format", "file_type", "gold", "tags"}


def test_a_failing_export_is_recorded_as_failed_and_leaves_no_file(world, data_root, monkeypatch):
    calls = []

    def explode(group, context):
        calls.append(group.comparison_id)
        if len(calls) > 2:
            raise RuntimeError("disk on fire")
        return formats.raw_vote_rows(group, context)

    monkeypatch.setitem(formats.FORMATS, "raw-votes", formats.FORMATS["raw-votes"].__class__(
        **{**formats.FORMATS["raw-votes"].__dict__, "rows": explode}))
    export = export_create(format="raw-votes", file_type="csv")
    assert export.status == ExportStatus.FAILED and export.error == "RuntimeError: disk on fire"
    assert export.file_path == "" and export.checksum == ""
    assert list(exports_root().iterdir()) == []  # no file, no temporary file


@pytest.mark.parametrize("file_type", ["jsonl", "parquet", "csv", "hf-dataset"])
def test_a_writer_whose_rows_fail_midway_leaves_nothing_at_the_path(tmp_path, file_type):
    def rows():
        yield "train", {"chosen": "x", "rejected": "y"}
        raise OSError("No space left on device")

    target = tmp_path / "out" / f"export.{file_type}"
    with pytest.raises(OSError, match="No space left"):
        rows_write(rows=rows(), columns=formats.HH_RLHF_COLUMNS, file_type=file_type, path=target)
    assert list(target.parent.iterdir()) == []


def test_a_finished_export_replaces_only_at_the_rename(tmp_path):
    target = tmp_path / "export.jsonl"
    target.write_text("old\n")
    seen = []

    def rows():
        seen.append(target.read_text())  # while writing, the old file is still whole
        yield "train", {"chosen": "x", "rejected": "y"}

    rows_write(rows=rows(), columns=formats.HH_RLHF_COLUMNS, file_type="jsonl", path=target)
    assert seen == ["old\n"] and jsonl_rows(target) == [{"chosen": "x", "rejected": "y"}]


@pytest.mark.parametrize("filters", [{}, {"model_names": ["m-good", "m-other"]}, {"annotators": ["alice", "bob"]}])
def test_the_stream_gives_the_same_groups_whatever_the_chunk_size(world, filters, django_assert_num_queries):
    from feedback.exports.stream import comparison_groups

    parsed = export_request_check(format="raw-votes", file_type="jsonl", filters=filters).filters

    def groups(chunk_size):
        return [(g.comparison_id, g.split, [v.vote_id for v in g.votes])
                for g in comparison_groups(filters=parsed, vote_details=True, chunk_size=chunk_size)]

    whole = groups(1000)
    assert [c for c, _, _ in whole] == sorted(c for c, _, _ in whole) and whole
    assert groups(1) == groups(2) == whole
    chunks = []
    # One query for the eval keys, then two per chunk of 2 (comparisons, their votes) and the empty last page
    # (on PostgreSQL also SET and RESET of max_parallel_workers_per_gather around them).
    with django_assert_num_queries(1 + 2 * 3 + 1 + (2 if connection.vendor == "postgresql" else 0)):
        list(comparison_groups(filters=ExportFilters(), chunk_size=2, on_chunk=chunks.append))
    assert chunks == [4, 2, 3]  # votes read per chunk: pair + tie, both_bad + gold, system + split

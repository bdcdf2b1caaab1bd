"""Imports refuse what they cannot keep faithfully (``feedback.import_flags``): rows with an optional
column that other rows lack, a null margin, a response that is a strict prefix of the other, HH-RLHF
transcripts that differ before the last turn. Opted in, such rows are imported marked, and snapshots
and exports leave them out and count them. Also: whitespace-only differences count as identical,
imported votes record no shown side, and a plain-text TRL export re-imports as the same pairs."""
from __future__ import annotations

import io
import json

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import CommandError, call_command
from django.db import IntegrityError, transaction
from django.test import Client

from feedback import snapshots
from feedback.import_flags import strict_prefix
from feedback.imports import RowsRefusedError, arena_import, hh_rlhf_import, trl_preferences_import
from feedback.import_rows import PreferenceFileError
from feedback.models import Comparison, Export, Vote
from tests.conftest import api_as
from tests.import_files import assistant, nothing_written, row_counts, user, write_jsonl, write_parquet
from tests.shared_data import HH_RLHF_SAMPLE, shared_data_path

pytestmark = pytest.mark.django_db


def row(n: int, **extra) -> dict:
    return {"prompt": [user(f"Question {n}?")], "chosen": [assistant(f"A good answer to {n}.")],
            "rejected": [assistant(f"No idea about {n}.")]} | extra


def hh_line(chosen_tail: str, rejected_tail: str, head: str = "\n\nHuman: Hi\n\nAssistant:") -> dict:
    return {"chosen": head + chosen_tail, "rejected": head + rejected_tail}


def battle(n: int, **extra) -> dict:
    question = [user(f"Battle question {n}?")]
    return {"model_a": "m-a", "model_b": "m-b", "winner": "model_a",
            "conversation_a": question + [assistant(f"Answer A {n}.")],
            "conversation_b": question + [assistant(f"Reply B {n}.")]} | extra


def refusal(call, **kwargs) -> RowsRefusedError:
    with pytest.raises(RowsRefusedError) as caught:
        call(**kwargs)
    assert nothing_written()
    return caught.value


# --- refused, with line numbers -----------------------------------------------------------------


def test_a_margin_on_some_rows_only_refuses_the_file_naming_the_lines(tmp_path):
    rows = [row(1, margin=0.5), row(2), row(3, margin=1.0), row(4), row(5, margin=2.0)]
    error = refusal(trl_preferences_import, path=write_jsonl(tmp_path / "m.jsonl", rows))

    assert error.flagged == {"margin_missing": [2, 4]}
    lines = str(error).splitlines()
    assert lines[0].endswith("m.jsonl: 2 lines cannot be imported faithfully; nothing was imported "
                             "(allow_flagged=True, --allow-flagged or 'Import flagged rows' imports flagged rows marked; "
                             "skip_refused=True, --skip-refused or 'Skip refused rows' imports the rest)")
    assert lines[1] == ("flagged margin_missing (no margin, while other rows of the file have one; never invented): "
                        "lines 2, 4")


def test_a_null_margin_where_other_rows_have_a_number_is_refused_in_jsonl_and_parquet(tmp_path):
    rows = [row(1, margin=0.5), row(2, margin=None), row(3, margin=0.25)]
    assert refusal(trl_preferences_import, path=write_jsonl(tmp_path / "m.jsonl", rows)).flagged == {"margin_missing": [2]}

    error = refusal(trl_preferences_import, path=write_parquet(tmp_path / "m.parquet", rows))
    assert error.flagged == {"margin_missing": [2]}
    assert "rows 2" not in str(error) and ": row 2" in str(error)


def test_a_margin_on_every_row_or_on_none_imports_unflagged(tmp_path):
    assert trl_preferences_import(path=write_jsonl(tmp_path / "a.jsonl", [row(1, margin=1), row(2, margin=2)])).imported == 2
    assert trl_preferences_import(path=write_jsonl(tmp_path / "b.jsonl", [row(3), row(4, margin=None)])).imported == 2
    assert set(Comparison.objects.values_list("import_flags", flat=True)) == {""}


def test_many_flagged_rows_list_the_first_ten_and_the_count(tmp_path):
    rows = [row(0, margin=1.0)] + [row(n) for n in range(1, 15)]
    error = refusal(trl_preferences_import, path=write_jsonl(tmp_path / "m.jsonl", rows))
    assert str(error).splitlines()[1].endswith("lines 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, ... (14 in all)")


def test_a_response_that_is_a_strict_prefix_of_the_other_is_refused(tmp_path):
    cut = row(2) | {"chosen": [assistant("Paris is the capital of France.")], "rejected": [assistant("Paris is the")]}
    error = refusal(trl_preferences_import, path=write_jsonl(tmp_path / "p.jsonl", [row(1), cut]))
    assert error.flagged == {"strict_prefix": [2]}
    assert "flagged strict_prefix (one response is a strict prefix of the other, perhaps truncated): line 2" in str(error)


def test_strict_prefix_is_by_the_normalised_text_and_needs_two_non_empty_responses():
    assert strict_prefix("Paris is", "Paris  is\nthe capital")
    assert not strict_prefix("Paris is", "Paris is ")  # equivalent, not a prefix
    assert not strict_prefix("", "Paris")
    assert not strict_prefix("Paris", "Rome")


def test_hh_rlhf_transcripts_that_diverge_before_the_last_turn_are_refused_by_line(tmp_path):
    diverged = hh_line(" Hello!\n\nHuman: Joke?\n\nAssistant: A pun.", " Go away.\n\nHuman: Joke?\n\nAssistant: No.")
    path = write_jsonl(tmp_path / "hh.jsonl", [hh_line(" Hello there.", " Hm."), diverged, hh_line(" Yes.", " Maybe.")])

    error = refusal(hh_rlhf_import, path=path)
    assert error.flagged == {"diverged_before_last_turn": [2]}

    with pytest.raises(CommandError) as caught:
        call_command("import_hh_rlhf", str(path))
    assert "flagged diverged_before_last_turn" in str(caught.value) and "line 2" in str(caught.value)
    assert nothing_written()


def test_arena_battles_with_an_identity_key_on_some_rows_only_are_refused(tmp_path):
    path = write_jsonl(tmp_path / "arena.jsonl", [battle(1, question_id="q1"), battle(2), battle(3, question_id="q3")])
    assert refusal(arena_import, path=path).flagged == {"question_id_missing": [2]}


def test_the_command_refuses_with_a_non_zero_exit_and_one_readable_message(tmp_path):
    path = write_jsonl(tmp_path / "m.jsonl", [row(1, margin=0.5), row(2)])
    with pytest.raises(CommandError) as caught:
        call_command("import_preferences", str(path), "--format", "trl")
    assert "1 line cannot be imported faithfully; nothing was imported" in str(caught.value)
    assert "margin_missing" in str(caught.value) and "line 2" in str(caught.value)
    assert nothing_written()


# --- opted in: imported, marked, left out of snapshots and exports -----------------------------------


def test_allow_flagged_imports_the_rows_marked_and_skip_refused_leaves_them_out(tmp_path):
    cut = row(3) | {"chosen": [assistant("The answer is 42, because")], "rejected": [assistant("The answer is 42")]}
    path = write_jsonl(tmp_path / "m.jsonl", [row(1, margin=0.5), row(2), cut])

    summary = trl_preferences_import(path=path, skip_refused=True)
    assert (summary.imported, summary.refused, summary.flagged) == (1, 2, 0)
    assert [number for number, _ in summary.refusals] == [2, 3]

    summary = trl_preferences_import(path=path, allow_flagged=True)
    assert (summary.imported, summary.already_present, summary.flagged) == (2, 1, 2)
    assert sorted(Comparison.objects.values_list("import_flags", flat=True)) == [
        "", "margin_missing", "margin_missing,strict_prefix"
    ]
    assert "2 imported with flags (left out of snapshots and exports unless include_flagged)" in summary.report()


def flagged_and_clean(tmp_path) -> tuple[Comparison, Comparison]:
    trl_preferences_import(path=write_jsonl(tmp_path / "m.jsonl", [row(1, margin=0.5), row(2)]), allow_flagged=True)
    return Comparison.objects.get(import_flags="margin_missing"), Comparison.objects.get(import_flags="")


def test_the_comparison_pages_and_the_admin_api_show_the_flags(tmp_path, admin_user):
    flagged, clean = flagged_and_clean(tmp_path)
    client = Client()
    client.force_login(admin_user)

    page = client.get(f"/manage/comparisons/{flagged.pk}/").content.decode()
    assert "Imported with flags" in page and "margin_missing" in page and "never invented" in page
    assert "Imported with flags" not in client.get(f"/manage/comparisons/{clean.pk}/").content.decode()
    listing = client.get("/manage/comparisons/").content.decode()
    assert listing.count(">flagged</span>") == 1

    api = api_as(admin_user)
    assert api.get(f"/api/comparisons/{flagged.pk}/").json()["import_flags"] == ["margin_missing"]
    assert api.get(f"/api/comparisons/{clean.pk}/").json()["import_flags"] == []


def test_a_snapshot_leaves_flagged_comparisons_out_and_counts_them_unless_asked(tmp_path, settings):
    settings.ARBITER_DATA_DIR = tmp_path / "data"
    flagged, clean = flagged_and_clean(tmp_path)

    snapshot = snapshots.snapshot_create(rules={})
    assert (snapshot.train_rows + snapshot.eval_rows, snapshot.counts["flagged_import"]) == (1, 1)
    assert list(snapshot.votes.values_list("comparison_id", flat=True)) == [clean.pk]

    snapshot = snapshots.snapshot_create(rules={"include_flagged": True})
    assert (snapshot.train_rows + snapshot.eval_rows, snapshot.counts["flagged_import"]) == (2, 0)
    assert snapshot.rules["include_flagged"] is True


def test_an_export_leaves_flagged_comparisons_out_and_counts_them_unless_asked(tmp_path, settings):
    settings.ARBITER_DATA_DIR = tmp_path / "data"
    flagged_and_clean(tmp_path)

    def export(*extra) -> tuple[list[dict], str]:
        output = tmp_path / f"out{len(list(tmp_path.iterdir()))}.jsonl"
        printed = io.StringIO()
        call_command("export_preferences", "--format", "trl-preference", "--file-type", "jsonl", "--output", str(output),
                     *extra, stdout=printed, stderr=io.StringIO())
        return [json.loads(line) for line in output.read_text().splitlines()], printed.getvalue()

    rows, printed = export()
    assert [r["prompt"][0]["content"] for r in rows] == ["Question 1?"]
    assert "flagged_import=1" in printed
    rows, printed = export("--include-flagged")
    assert sorted(r["prompt"][0]["content"] for r in rows) == ["Question 1?", "Question 2?"]
    assert "flagged_import" not in printed


def test_the_export_page_and_api_take_include_flagged(tmp_path, settings, admin_user):
    settings.ARBITER_DATA_DIR = tmp_path / "data"
    flagged_and_clean(tmp_path)
    client = Client()
    client.force_login(admin_user)
    form = {"format": "trl-preference", "file_type": "jsonl", "gold": "include"}

    assert client.post("/manage/exports/", form).status_code == 302
    assert client.post("/manage/exports/", form | {"include_flagged": "on"}).status_code == 302
    api = api_as(admin_user)
    response = api.post("/api/exports/", {"format": "trl-preference", "file_type": "jsonl",
                                          "filters": {"include_flagged": "yes"}}, format="json")
    assert response.status_code == 400 and "include_flagged" in json.dumps(response.json())
    left_out, included = Export.objects.order_by("id")
    assert (left_out.row_count, left_out.counts.get("flagged_import")) == (1, 1)
    assert (included.row_count, included.counts.get("flagged_import", 0), included.filters["include_flagged"]) == (2, 0, True)


def test_the_import_page_refuses_flagged_rows_and_imports_them_when_ticked(admin_user):
    client = Client()
    client.force_login(admin_user)
    text = "".join(json.dumps(r) + "\n" for r in [row(1, margin=0.5), row(2)]).encode()

    response = client.post("/manage/imports/", {"file": SimpleUploadedFile("m.jsonl", text), "format": "trl"})
    assert response.status_code == 400
    page = response.content.decode()
    assert "some rows are flagged as doubtful" in page and "margin_missing" in page and "line 2" in page
    assert nothing_written()

    response = client.post("/manage/imports/", {"file": SimpleUploadedFile("m.jsonl", text), "format": "trl",
                                                "allow_flagged": "on"})
    assert response.status_code == 200
    assert "1 imported with flags" in response.content.decode()
    assert Comparison.objects.filter(import_flags="margin_missing").count() == 1


def test_the_import_api_refuses_naming_the_file_field_and_takes_allow_flagged(admin_user, annotator):
    text = "".join(json.dumps(r) + "\n" for r in [row(1, margin=0.5), row(2)]).encode()
    api = api_as(admin_user)
    url = "/api/imports/preferences/"

    response = api.post(url, {"file": SimpleUploadedFile("m.jsonl", text), "format": "trl"}, format="multipart")
    assert response.status_code == 400
    assert response.json()["flagged"] == {"margin_missing": [2]}
    assert "line 2" in response.json()["file"][1]
    assert nothing_written()

    response = api.post(url, {"file": SimpleUploadedFile("m.jsonl", text), "format": "nope"}, format="multipart")
    assert response.status_code == 400 and "format" in response.json()

    response = api.post(url, {"file": SimpleUploadedFile("m.jsonl", text), "format": "trl", "allow_flagged": "true"},
                        format="multipart")
    assert response.status_code == 201
    assert (response.json()["imported"], response.json()["flagged"]) == (2, 1)

    assert api_as(annotator).post(url, {"file": SimpleUploadedFile("m.jsonl", text), "format": "trl"},
                                  format="multipart").status_code == 403
    schema = api.get("/api/schema/", {"format": "json"}).json()
    assert "multipart/form-data" in schema["paths"][url]["post"]["requestBody"]["content"]
    assert "allow_flagged" in schema["components"]["schemas"]["PreferenceImportRequest"]["properties"]


# --- whitespace-only differences, shown side -----------------------------------------------------


def test_pairs_that_differ_only_in_whitespace_are_counted_with_the_identical_ones(tmp_path):
    hh = write_jsonl(tmp_path / "hh.jsonl", [hh_line(" Sure.\n", " Sure."), hh_line(" Yes.", " No.")])
    summary = hh_rlhf_import(path=hh)
    assert (summary.imported, summary.identical_responses) == (1, 1)

    same = battle(2) | {"conversation_b": [user("Battle question 2?"), assistant("Answer  A 2.")]}
    summary = arena_import(path=write_jsonl(tmp_path / "arena.jsonl", [battle(1), same]))
    assert (summary.imported, summary.identical_responses) == (1, 1)

    spaced = row(1) | {"chosen": [assistant("Fine.")], "rejected": [assistant(" Fine. ")]}
    with pytest.raises(PreferenceFileError, match="line 1: chosen equals rejected up to whitespace"):
        trl_preferences_import(path=write_jsonl(tmp_path / "t.jsonl", [spaced]))


def test_imported_votes_record_no_shown_side_and_raw_votes_export_none(tmp_path, settings):
    settings.ARBITER_DATA_DIR = tmp_path / "data"
    trl_preferences_import(path=write_jsonl(tmp_path / "t.jsonl", [row(1)]))
    hh_rlhf_import(path=write_jsonl(tmp_path / "hh.jsonl", [hh_line(" Yes.", " No.")]))
    arena_import(path=write_jsonl(tmp_path / "arena.jsonl", [battle(1)]))
    assert list(Vote.objects.values_list("shown_left", flat=True)) == ["", "", ""]

    output = tmp_path / "raw.jsonl"
    call_command("export_preferences", "--format", "raw-votes", "--file-type", "jsonl", "--output", str(output),
                 stdout=io.StringIO(), stderr=io.StringIO())
    assert [json.loads(line)["shown_left"] for line in output.read_text().splitlines()] == ["", "", ""]

    vote = Vote.objects.first()
    vote.shown_left = "x"
    with pytest.raises(IntegrityError), transaction.atomic():
        vote.save()


# --- plain-text TRL export -> import ------------------------------------------------------------------


def test_a_plain_text_trl_export_of_hh_rlhf_transcripts_imports_as_the_same_prompts_and_responses(tmp_path, settings):
    settings.ARBITER_DATA_DIR = tmp_path / "data"
    summary = hh_rlhf_import(path=shared_data_path(HH_RLHF_SAMPLE), limit=300)
    assert summary.imported == 300

    def triples(source: str) -> set[tuple[str, str, str]]:
        found = set()
        for vote in Vote.objects.filter(source=source).select_related(
            "comparison__prompt", "comparison__completion_a", "comparison__completion_b"
        ):
            c = vote.comparison
            chosen, rejected = (c.completion_a, c.completion_b) if vote.choice == "a" else (c.completion_b, c.completion_a)
            found.add((json.dumps(c.prompt.messages), chosen.text, rejected.text))
        return found

    original = triples("hh-rlhf")
    assert sum(len(json.loads(prompt)) > 1 for prompt, _, _ in original) > 50  # multi-turn prompts included

    plain = tmp_path / "plain.jsonl"
    call_command("export_preferences", "--format", "trl-preference", "--file-type", "jsonl", "--plain-text",
                 "--output", str(plain), stdout=io.StringIO(), stderr=io.StringIO())
    first = json.loads(plain.read_text().splitlines()[0])
    assert first["prompt"].startswith("\n\nHuman: ") and first["chosen"].startswith(" ")

    # Exports leave out pairs with an empty response (counted as empty_response): those cannot come back.
    exported = {t for t in original if t[1].strip() and t[2].strip()}
    assert 0 < len(original) - len(exported) < 5
    summary = trl_preferences_import(path=plain)
    assert (summary.imported, summary.prompts_created) == (len(exported), 0)  # every prompt found again
    assert triples("trl-import") == exported

    # The conversational export of the same votes holds the same pairs: importing it adds nothing.
    conversational = tmp_path / "conversational.jsonl"
    call_command("export_preferences", "--format", "trl-preference", "--file-type", "jsonl",
                 "--output", str(conversational), stdout=io.StringIO(), stderr=io.StringIO())
    summary = trl_preferences_import(path=conversational)
    n = len(exported)
    assert (summary.lines, summary.imported, summary.already_present, summary.duplicate_lines) == (2 * n, 0, n, n)


def test_a_plain_text_prompt_with_a_system_turn_and_a_turn_without_its_space(tmp_path):
    system = {"prompt": "\n\nSystem: Be brief.\n\nHuman: Hi?\n\nAssistant:", "chosen": " Hello.", "rejected": " Go."}
    bad = {"prompt": "\n\nHuman:Hi?\n\nAssistant:", "chosen": " Hello.", "rejected": " Go."}
    trl_preferences_import(path=write_jsonl(tmp_path / "s.jsonl", [system]))
    comparison = Comparison.objects.select_related("prompt", "completion_a", "completion_b").get()
    assert comparison.prompt.messages == [{"role": "system", "content": "Be brief."}, user("Hi?")]
    assert {comparison.completion_a.text, comparison.completion_b.text} == {"Hello.", "Go."}

    with pytest.raises(PreferenceFileError, match="line 1: prompt .*turn 1 has no space after its 'Role:' marker"):
        trl_preferences_import(path=write_jsonl(tmp_path / "b.jsonl", [bad]))
    assert row_counts() == (1, 2, 1, 1)


# --- diverged TRL rows and Arena battles, opted in ------------------------------------------------


def test_trl_and_arena_pairs_that_diverge_before_the_last_turn_import_the_hh_rlhf_way_when_allowed(tmp_path):
    implicit = {"chosen": [user("Hi"), assistant("Hello!"), user("Joke?"), assistant("A pun.")],
                "rejected": [user("Hi"), assistant("Go away."), user("Joke?"), assistant("No.")]}
    explicit = {"prompt": [user("q")], "chosen": [assistant("x"), user("more"), assistant("y")], "rejected": [assistant("z")]}
    path = write_jsonl(tmp_path / "t.jsonl", [row(1), implicit, explicit])
    assert refusal(trl_preferences_import, path=path).flagged == {"diverged_before_last_turn": [2, 3]}

    summary = trl_preferences_import(path=path, allow_flagged=True)
    assert (summary.imported, summary.flagged, summary.diverged_before_last_turn) == (3, 2, 2)
    texts = {
        (tuple(m["content"] for m in c.prompt.messages), frozenset((c.completion_a.text, c.completion_b.text)))
        for c in Comparison.objects.exclude(import_flags="").select_related("prompt", "completion_a", "completion_b")
    }
    assert texts == {
        (("Hi",), frozenset({"Hello!\n\nHuman: Joke?\n\nAssistant: A pun.", "Go away.\n\nHuman: Joke?\n\nAssistant: No."})),
        (("q",), frozenset({"x\n\nHuman: more\n\nAssistant: y", "z"})),
    }

    diverged = battle(2) | {"conversation_a": [user("Hi"), assistant("Hello!"), user("Joke?"), assistant("A pun.")],
                            "conversation_b": [user("Hi"), assistant("Hey."), user("Joke?"), assistant("No.")]}
    arena = write_jsonl(tmp_path / "arena.jsonl", [battle(1), diverged])
    assert arena_refusal_flags(arena) == {"diverged_before_last_turn": [2]}
    summary = arena_import(path=arena, allow_flagged=True)
    assert (summary.imported, summary.flagged) == (2, 1)
    assert Comparison.objects.filter(import_flags="diverged_before_last_turn").count() == 3


def arena_refusal_flags(path):
    with pytest.raises(RowsRefusedError) as caught:
        arena_import(path=path)
    return caught.value.flagged

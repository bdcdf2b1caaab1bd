"""TRL preference imports (feedback.trl_preferences, feedback.imports.trl_preferences_import and
``manage.py import_preferences``): explicit and implicit prompts, text and messages, JSON lines and
Parquet, whole-or-nothing, idempotence and each kind of bad input."""
import io
import tracemalloc

import pytest

from feedback.import_limits import ImportLimitError
from django.contrib.auth import get_user_model
from django.core.management import CommandError, call_command

from feedback.import_rows import PreferenceFileError, RowRefused
from feedback.imports import RowsRefusedError, chosen_is_a, preferences_import, trl_preferences_import
from feedback.models import Comparison, Completion, Prompt, Vote
from feedback.trl_preferences import trl_external_id, trl_pair_parse
from tests.factories import PromptFactory, UserFactory
from tests.import_files import assistant, nothing_written, row_counts, user, write_jsonl, write_parquet
from tests.shared_data import HH_RLHF_SAMPLE, shared_data_path

pytestmark = pytest.mark.django_db

SYSTEM = {"role": "system", "content": "Be brief."}


def conversational(n: int) -> dict:
    return {
        "prompt": [SYSTEM, user(f"What is {n} + {n}?")],
        "chosen": [assistant(f"{2 * n}.")],
        "rejected": [assistant(f"{2 * n + 1}, I think.")],
    }


def text_row(n: int) -> dict:
    return {"prompt": f"Name a colour ({n}).", "chosen": "Blue.", "rejected": "I can't."}


def stored_pairs() -> dict[str, tuple[list, str, str]]:
    """external_id -> (prompt messages, chosen text, rejected text), from the rows and the votes."""
    pairs = {}
    for vote in Vote.objects.select_related("comparison__prompt", "comparison__completion_a", "comparison__completion_b"):
        c = vote.comparison
        chosen, rejected = (c.completion_a, c.completion_b) if vote.choice == "a" else (c.completion_b, c.completion_a)
        pairs[c.external_id] = (c.prompt.messages, chosen.text, rejected.text)
    return pairs


# --- parsing ------------------------------------------------------------------------------------


def test_an_explicit_conversational_row_parses_into_prompt_and_two_texts():
    pair = trl_pair_parse(conversational(1) | {"margin": 0.5, "id": "ignored"})
    assert pair.prompt_messages == [SYSTEM, user("What is 1 + 1?")]
    assert (pair.chosen, pair.rejected, pair.implicit_prompt) == ("2.", "3, I think.", False)
    assert pair.external_id == trl_external_id(prompt_messages=pair.prompt_messages, chosen="2.", rejected="3, I think.")
    assert pair.external_id.startswith("trl:") and len(pair.external_id) == 68


def test_text_and_messages_spelling_the_same_pair_get_the_same_id():
    as_text = trl_pair_parse({"prompt": "Hi?", "chosen": "Hello.", "rejected": "Go away."})
    as_messages = trl_pair_parse({"prompt": [user("Hi?")], "chosen": [assistant("Hello.")], "rejected": [assistant("Go away.")]})
    assert as_text.prompt_messages == [user("Hi?")]
    assert as_text == as_messages


def test_an_implicit_prompt_is_the_common_prefix_ending_with_a_user_turn():
    history = [SYSTEM, user("Hi"), assistant("Hello! How can I help?"), user("Tell me a joke.")]
    pair = trl_pair_parse({"chosen": history + [assistant("Why did the chicken...")], "rejected": history + [assistant("No.")]})
    assert pair.prompt_messages == history
    assert (pair.chosen, pair.rejected, pair.implicit_prompt) == ("Why did the chicken...", "No.", True)
    # The same pair with an explicit prompt is the same pair.
    explicit = trl_pair_parse({"prompt": history, "chosen": [assistant("Why did the chicken...")], "rejected": [assistant("No.")]})
    assert explicit.external_id == pair.external_id


@pytest.mark.parametrize(
    "row, reason",
    [
        (
            {"chosen": [user("a"), assistant("b"), user("c"), assistant("d")],
             "rejected": [user("a"), assistant("B"), user("c"), assistant("D")]},
            "the conversations differ at message 1, before their last turn (chosen continues with 3 messages, rejected with 3)",
        ),
        (
            {"prompt": [user("a")], "chosen": [assistant("b"), user("c"), assistant("d")], "rejected": [assistant("x")]},
            "chosen: holds 3 messages; a response is stored as one assistant message",
        ),
        (
            {"chosen": [user("a"), assistant("b"), assistant("c")], "rejected": [user("a"), assistant("b"), assistant("x")]},
            "the prompt the conversations share ends with a assistant turn, not a user turn",
        ),
    ],
)
def test_rows_that_cannot_be_stored_are_refused_with_the_reason(row, reason):
    with pytest.raises(RowRefused) as refused:
        trl_pair_parse(row)
    assert str(refused.value).startswith(reason)


@pytest.mark.parametrize(
    "row, problem",
    [
        ({"prompt": "p", "chosen": "c"}, "missing 'rejected'"),
        ({"prompt": "p"}, "missing 'chosen' and 'rejected'"),
        ({"prompt": "p", "chosen": "c", "rejected": None}, "rejected: is null"),
        ({"prompt": "p", "chosen": "same", "rejected": "same"}, "chosen equals rejected"),
        ({"prompt": [user("p")], "chosen": [assistant("same")], "rejected": [assistant("same")]}, "chosen equals rejected"),
        ({"chosen": [user("p"), assistant("x")], "rejected": [user("p"), assistant("x")]}, "chosen equals rejected"),
        ({"chosen": "Q: hi A: hello", "rejected": "Q: hi A: go away"}, "prompt: missing; plain-text chosen and rejected need a prompt"),
        ({"prompt": "", "chosen": "c", "rejected": "r"}, "prompt: is empty"),
        ({"prompt": 7, "chosen": "c", "rejected": "r"}, "prompt: must be text or a list of messages, not int"),
        ({"prompt": [assistant("p")], "chosen": "c", "rejected": "r"}, "prompt: the last message must be the user's"),
        ({"prompt": [{"role": "robot", "content": "p"}], "chosen": "c", "rejected": "r"}, "prompt: message 0 has role 'robot'"),
        ({"prompt": "p", "chosen": [user("c")], "rejected": "r"}, "chosen: the response must be the assistant's message, not 'user'"),
        ({"prompt": "p", "chosen": [], "rejected": "r"}, "chosen: is an empty list of messages"),
        ({"prompt": "p", "chosen": "c", "rejected": {"text": "r"}}, "rejected: must be text or a list of messages, not dict"),
        ({"prompt": "p", "chosen": "c\x00", "rejected": "r"}, "chosen: contains a NUL character"),
        ({"prompt": "p", "chosen": [{"role": "assistant", "content": "c", "weight": 1}], "rejected": "r"},
         "chosen: message 0 has unknown keys: weight"),
        ({"chosen": [user("a"), assistant("b")], "rejected": [user("x"), assistant("y")]}, "prompt: missing, and chosen and rejected differ"),
        ({"chosen": [user("a")], "rejected": [user("a"), assistant("y")]}, "chosen: has no response after the prompt"),
        ({"prompt": "p", "chosen": "c", "rejected": "r", "margin": "big"}, "margin: must be a finite number"),
        ({"prompt": "p", "chosen": "c", "rejected": "r", "margin": float("nan")}, "margin: must be a finite number"),
    ],
)
def test_problems_name_the_field(row, problem):
    with pytest.raises(ValueError) as caught:
        trl_pair_parse(row)
    assert str(caught.value).startswith(problem)


def test_null_struct_fields_that_parquet_fills_in_are_ignored():
    message = {"role": "assistant", "content": "c", "name": None}
    assert trl_pair_parse({"prompt": "p", "chosen": [message], "rejected": "r"}).chosen == "c"


# --- importing ----------------------------------------------------------------------------------


def test_explicit_conversational_jsonl_imports_as_voted_comparisons(tmp_path):
    path = write_jsonl(tmp_path / "prefs.jsonl", [conversational(n) for n in range(1, 9)])

    summary = trl_preferences_import(path=path)

    assert summary.as_dict() == {
        "lines": 8, "imported": 8, "already_present": 0, "duplicate_lines": 0, "identical_responses": 0,
        "refused": 0, "flagged": 0, "diverged_before_last_turn": 0, "prompts_created": 8, "prompts_reused": 0,
    }
    assert row_counts() == (8, 16, 8, 8)
    assert set(Completion.objects.values_list("model_name", flat=True)) == {"trl-import"}
    assert set(Prompt.objects.values_list("source", flat=True)) == {"trl-import"}
    assert set(Comparison.objects.values_list("status", "vote_count", "votes_required")) == {("complete", 1, 1)}
    assert set(Vote.objects.values_list("source", "strength", "annotator__username")) == {("trl-import", "", "trl-import")}
    expected = {}
    for n in range(1, 9):
        row = conversational(n)
        key = trl_external_id(prompt_messages=row["prompt"], chosen=row["chosen"][0]["content"], rejected=row["rejected"][0]["content"])
        expected[key] = (row["prompt"], row["chosen"][0]["content"], row["rejected"][0]["content"])
    assert stored_pairs() == expected
    # A/B order follows the hash of the id, and both orders occur.
    votes = dict(Vote.objects.values_list("comparison__external_id", "choice"))
    assert all((choice == "a") == chosen_is_a(external_id=key) for key, choice in votes.items())
    assert set(votes.values()) == {"a", "b"}
    system = get_user_model().objects.get(username="trl-import")
    assert not system.is_active and not system.has_usable_password()


def test_text_rows_from_gzip_jsonl_become_one_user_turn_prompts(tmp_path):
    path = write_jsonl(tmp_path / "prefs.jsonl.gz", [text_row(n) for n in range(3)], gz=True)
    summary = trl_preferences_import(path=path, source="colours", model_name="colour-model-v1", split="eval")
    assert (summary.imported, summary.prompts_created) == (3, 3)
    assert list(Prompt.objects.order_by("id").values_list("messages", "split", "source")) == [
        ([user(f"Name a colour ({n}).")], "eval", "colours") for n in range(3)
    ]
    assert set(Completion.objects.values_list("model_name", flat=True)) == {"colour-model-v1"}
    assert set(Vote.objects.values_list("source", "annotator__username")) == {("colours", "colours")}


def test_implicit_prompt_rows_import_and_refused_rows_are_reported_not_imported(tmp_path):
    history = [user("Hi"), assistant("Hello!"), user("Joke?")]
    rows = [
        {"chosen": history + [assistant("A pun.")], "rejected": history + [assistant("No.")]},
        {"chosen": [user("a"), assistant("b"), user("c"), assistant("d")],
         "rejected": [user("a"), assistant("B"), user("c"), assistant("D")]},
        conversational(1),
        {"prompt": [user("q")], "chosen": [assistant("x"), user("more"), assistant("y")], "rejected": [assistant("z")]},
    ]
    path = write_jsonl(tmp_path / "implicit.jsonl", rows)

    with pytest.raises(RowsRefusedError) as caught:
        trl_preferences_import(path=path)
    assert isinstance(caught.value, PreferenceFileError)
    assert [number for number, _ in caught.value.problems] == [2, 4]
    message = str(caught.value).splitlines()
    assert message[0].endswith("implicit.jsonl: 2 lines cannot be imported faithfully; nothing was imported "
                               "(allow_flagged=True, --allow-flagged or 'Import flagged rows' imports flagged rows marked; "
                               "skip_refused=True, --skip-refused or 'Skip refused rows' imports the rest)")
    assert message[1].startswith("line 2: refused: the conversations differ at message 1, before their last turn")
    assert message[2].startswith("line 4: refused: chosen: holds 3 messages")
    assert message[3].startswith("flagged diverged_before_last_turn (the conversations differ before their last turn")
    assert message[3].endswith("lines 2, 4")
    assert nothing_written()

    summary = trl_preferences_import(path=path, skip_refused=True)

    assert (summary.lines, summary.imported, summary.refused) == (4, 2, 2)
    assert [number for number, _ in summary.refusals] == [2, 4]
    assert summary.refusals[0][1].startswith("the conversations differ at message 1, before their last turn")
    assert summary.refusals[1][1].startswith("chosen: holds 3 messages")
    assert Prompt.objects.filter(messages=history).exists()
    assert row_counts() == (2, 4, 2, 2)


def test_parquet_imports_the_same_pairs_as_jsonl_reading_in_batches(tmp_path):
    rows = [conversational(n) for n in range(1, 1301)]  # more than one 1024-row batch
    parquet = write_parquet(tmp_path / "prefs.parquet", rows)
    jsonl = write_jsonl(tmp_path / "prefs.jsonl", rows)

    summary = trl_preferences_import(path=parquet)
    assert (summary.lines, summary.imported, summary.unit) == (1300, 1300, "row")
    assert row_counts() == (1300, 2600, 1300, 1300)

    again = trl_preferences_import(path=jsonl)
    assert (again.lines, again.imported, again.already_present, again.unit) == (1300, 0, 1300, "line")
    assert row_counts() == (1300, 2600, 1300, 1300)


def test_parquet_text_rows_and_implicit_prompts(tmp_path):
    path = write_parquet(tmp_path / "text.parquet", [text_row(n) for n in range(2)])
    assert trl_preferences_import(path=path).imported == 2
    history = [user("Hi")]
    path = write_parquet(
        tmp_path / "implicit.parquet",
        [{"chosen": history + [assistant("Hello.")], "rejected": history + [assistant("Bye.")]}],
    )
    trl_preferences_import(path=path)
    assert Prompt.objects.filter(messages=history).exists()


def test_importing_again_adds_nothing(tmp_path):
    path = write_jsonl(tmp_path / "prefs.jsonl", [conversational(n) for n in range(5)] + [text_row(0)])
    trl_preferences_import(path=path)
    counts = row_counts()

    again = trl_preferences_import(path=path)

    assert (again.lines, again.imported, again.already_present) == (6, 0, 6)
    assert row_counts() == counts
    assert get_user_model().objects.filter(username="trl-import").count() == 1


def test_duplicate_rows_count_once_and_existing_prompts_are_reused(tmp_path):
    existing = PromptFactory(messages=conversational(1)["prompt"], split="eval", source="mine")
    path = write_jsonl(tmp_path / "dups.jsonl", [conversational(1), conversational(2), conversational(1)])

    summary = trl_preferences_import(path=path, split="train")

    assert (summary.imported, summary.duplicate_lines, summary.prompts_reused, summary.prompts_created) == (2, 1, 1, 1)
    assert Comparison.objects.filter(prompt=existing).count() == 1
    existing.refresh_from_db()
    assert (existing.split, existing.source) == ("eval", "mine")


def test_offset_and_limit_count_rows_refused_ones_included(tmp_path):
    refused = {"prompt": "q", "chosen": [assistant("x"), user("y"), assistant("z")], "rejected": "r"}
    path = write_jsonl(tmp_path / "prefs.jsonl", [conversational(0), refused, conversational(2), conversational(3)])
    with pytest.raises(RowsRefusedError, match="line 2: refused"):
        trl_preferences_import(path=path, offset=1, limit=2)
    assert trl_preferences_import(path=path, offset=2, limit=2).imported == 2  # the range holds no refused row
    summary = trl_preferences_import(path=path, offset=1, limit=2, skip_refused=True)
    assert (summary.lines, summary.imported, summary.refused, summary.refusals[0][0]) == (2, 0, 1, 2)
    assert summary.already_present == 1
    assert Comparison.objects.count() == 2


def test_refusals_past_twenty_are_counted_not_listed(tmp_path):
    refused = {"prompt": "q", "chosen": [assistant("x"), user("y"), assistant("z")], "rejected": "r"}
    path = write_jsonl(tmp_path / "prefs.jsonl", [conversational(0)] + [refused] * 25)
    with pytest.raises(RowsRefusedError) as caught:
        trl_preferences_import(path=path)
    lines = str(caught.value).splitlines()
    assert len(caught.value.problems) == 25
    assert (len(lines), lines[-2]) == (23, "... and 5 more refused")
    assert lines[-1].endswith("lines 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, ... (25 in all)")
    assert lines[1].startswith("line 2: refused: chosen: holds 3 messages")
    assert lines[20].startswith("line 21: refused: chosen: holds 3 messages")
    assert nothing_written()


def test_margin_is_checked_but_not_stored(tmp_path):
    path = write_jsonl(tmp_path / "m.jsonl", [conversational(1) | {"margin": 3.5}, conversational(2) | {"margin": 0.5}])
    assert trl_preferences_import(path=path).imported == 2
    assert set(Vote.objects.values_list("strength", flat=True)) == {""}
    assert set(Comparison.objects.values_list("import_flags", flat=True)) == {""}


# --- bad input: each a clear error, nothing imported -----------------------------------------


def problems_of(path, **kwargs) -> PreferenceFileError:
    with pytest.raises(PreferenceFileError) as caught:
        trl_preferences_import(path=path, **kwargs)
    assert nothing_written()
    assert not get_user_model().objects.filter(username="trl-import").exists()
    return caught.value


def test_one_bad_row_among_good_ones_imports_nothing_and_every_problem_is_named(tmp_path):
    rows = [conversational(n) for n in range(10)]
    rows[2] = {"prompt": "p", "chosen": "c"}
    rows[6] = "{not json"
    rows[8] = {"prompt": "p", "chosen": "same", "rejected": "same"}
    error = problems_of(write_jsonl(tmp_path / "bad.jsonl", rows))
    assert [n for n, _ in error.problems] == [3, 7, 9]
    lines = str(error).splitlines()
    assert lines[0] == f"{tmp_path / 'bad.jsonl'}: 3 problems; nothing was read"
    assert lines[1] == "line 3: missing 'rejected'"
    assert lines[2].startswith("line 7: not JSON")
    assert lines[3].startswith("line 9: chosen equals rejected")


def test_a_truncated_gzip_file(tmp_path):
    full = write_jsonl(tmp_path / "full.jsonl.gz", [conversational(n) for n in range(2000)], gz=True)
    cut = tmp_path / "cut.jsonl.gz"
    cut.write_bytes(full.read_bytes()[: full.stat().st_size // 2])
    error = problems_of(cut)
    assert "the gzip stream is truncated or corrupt" in str(error) and "is the file complete?" in str(error)


def test_a_line_that_is_not_json(tmp_path):
    error = problems_of(write_jsonl(tmp_path / "x.jsonl", [conversational(1), '{"prompt": "p", "chosen": ']))
    assert error.problems[0][0] == 2 and error.problems[0][1].startswith("not JSON")


def test_a_missing_rejected_in_parquet_names_the_row(tmp_path):
    rows = [{"prompt": "p1", "chosen": "c", "rejected": "r"}, {"prompt": "p2", "chosen": "c", "rejected": None}]
    error = problems_of(write_parquet(tmp_path / "x.parquet", rows))
    assert error.problems == [(2, "rejected: is null")]
    assert "row 2: rejected: is null" in str(error)
    error = problems_of(write_parquet(tmp_path / "y.parquet", [{"prompt": "p", "chosen": "c"}]))
    assert error.problems == [(1, "missing 'rejected'")]


def test_chosen_equal_to_rejected(tmp_path):
    error = problems_of(write_jsonl(tmp_path / "x.jsonl", [conversational(1), {"prompt": "p", "chosen": "Yes.", "rejected": "Yes."}]))
    assert error.problems == [(2, "chosen equals rejected: a pair needs two different responses to carry a preference")]


def test_a_50_mb_line_is_refused_without_being_held_in_memory(tmp_path):
    path = tmp_path / "huge.jsonl"
    chunk = "x" * (1024 * 1024)
    with open(path, "w", encoding="utf-8") as handle:
        handle.write(f'{{"prompt": "p", "chosen": "c", "rejected": "r"}}\n{{"prompt": "p", "chosen": "')
        for _ in range(50):
            handle.write(chunk)
        handle.write('", "rejected": "r"}\n{"prompt": "q", "chosen": "c", "rejected": "r"}\n')

    tracemalloc.start()
    try:
        with pytest.raises(ImportLimitError) as caught:
            trl_preferences_import(path=path)
        error = caught.value
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()

    assert error.problems == [(2, "over ARBITER_IMPORT_MAX_LINE_BYTES = 10,485,760 bytes in one line; nothing was imported")]
    assert peak < 25 * 1024 * 1024  # at most one 10 MB slice of the 50 MB line at a time


def test_a_truncated_parquet_file(tmp_path):
    full = write_parquet(tmp_path / "full.parquet", [conversational(n) for n in range(100)])
    cut = tmp_path / "cut.parquet"
    cut.write_bytes(full.read_bytes()[: full.stat().st_size // 2])
    error = problems_of(cut)
    assert error.problems[0][0] == 0 and "not a readable Parquet file" in error.problems[0][1]


def test_an_empty_file(tmp_path):
    error = problems_of(write_jsonl(tmp_path / "empty.jsonl", []))
    assert error.problems == [(0, "the file holds no preference pairs")]


def test_an_unknown_format_name_is_refused_before_reading(tmp_path):
    with pytest.raises(ValueError, match=r"^unknown format 'dpo'; expected one of trl, hh-rlhf, arena$"):
        preferences_import(path=tmp_path / "never-opened.jsonl", format="dpo")


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"split": "test"}, "unknown split"),
        ({"eval_fraction": 2}, "eval_fraction must be a number from 0 to 1"),
        ({"offset": -1}, "offset must be"),
        ({"source": " "}, "source must be a non-empty name"),
        ({"model_name": ""}, "model_name: is empty"),
    ],
)
def test_bad_arguments_are_refused_before_reading(tmp_path, kwargs, message):
    with pytest.raises(ValueError, match=message):
        trl_preferences_import(path=tmp_path / "never-opened.jsonl", **kwargs)


def test_a_real_account_named_like_the_source_is_not_taken_over(tmp_path):
    UserFactory(username="trl-import", role="annotator")
    with pytest.raises(ValueError, match="can log in"):
        trl_preferences_import(path=write_jsonl(tmp_path / "p.jsonl", [conversational(1)]))
    assert nothing_written()


# --- the command --------------------------------------------------------------------------------


def run(*args) -> list[str]:
    out = io.StringIO()
    call_command("import_preferences", *map(str, args), stdout=out)
    return out.getvalue().splitlines()


def test_the_command_prints_the_summary_and_the_refused_rows(tmp_path):
    refused = {"prompt": "q", "chosen": [assistant("x"), user("y"), assistant("z")], "rejected": "r"}
    path = write_jsonl(tmp_path / "p.jsonl", [conversational(1), refused, conversational(2)])

    with pytest.raises(CommandError, match=r"1 line cannot be imported faithfully; nothing was imported") as caught:
        run(path, "--format", "trl", "--source", "cli", "--split", "eval")
    assert "line 2: refused: chosen: holds 3 messages" in str(caught.value)
    assert nothing_written()

    lines = run(path, "--format", "trl", "--source", "cli", "--split", "eval", "--skip-refused")

    assert lines == [
        "3 lines read: 2 imported, 0 already present, 1 refused, 0 with identical responses (skipped), 0 duplicate lines",
        "prompts: 2 created, 0 reused",
        "refused line 2: chosen: holds 3 messages; a response is stored as one assistant message, "
        "so a multi-turn continuation cannot be imported",
    ]
    assert set(Vote.objects.values_list("source", flat=True)) == {"cli"}
    assert run(path, "--format", "trl", "--source", "cli", "--skip-refused")[0].startswith(
        "3 lines read: 0 imported, 2 already present, 1 refused"
    )


def test_the_command_fails_on_a_bad_file_with_line_numbers_and_writes_nothing(tmp_path):
    path = write_jsonl(tmp_path / "bad.jsonl", [conversational(1), {"prompt": "p", "chosen": "c"}, "[1, 2]"])
    with pytest.raises(CommandError) as caught:
        run(path, "--format", "trl")
    assert str(caught.value).splitlines() == [
        f"{path}: 2 problems; nothing was read",
        "line 2: missing 'rejected'",
        "line 3: not a JSON object but list",
    ]
    assert nothing_written()


def test_the_command_refuses_an_unknown_format_listing_the_formats(tmp_path):
    path = write_jsonl(tmp_path / "p.jsonl", [conversational(1)])
    with pytest.raises(CommandError) as caught:
        run(path, "--format", "csv")
    assert str(caught.value) == "unknown format 'csv'; expected one of trl, hh-rlhf, arena"
    assert nothing_written()


def test_the_command_reports_a_missing_file(tmp_path):
    with pytest.raises(CommandError, match="cannot read .*nope.parquet: No such file"):
        run(tmp_path / "nope.parquet", "--format", "trl")


def test_the_command_imports_hh_rlhf_with_the_existing_importer(tmp_path):
    sample = shared_data_path(HH_RLHF_SAMPLE)
    lines = run(sample, "--format", "hh-rlhf", "--limit", "20")
    assert lines[0] == "20 lines read: 20 imported, 0 already present, 0 refused, 0 with identical responses (skipped), 0 duplicate lines"
    assert set(Completion.objects.values_list("model_name", flat=True)) == {"hh-rlhf"}
    # The same pairs through the old command add nothing.
    out = io.StringIO()
    call_command("import_hh_rlhf", str(sample), "--limit", "20", stdout=out)
    assert out.getvalue().startswith("20 pairs read: 0 imported, 20 already present")


def test_a_parquet_file_corrupt_inside_names_the_first_row_it_could_not_read(tmp_path):
    full = write_parquet(tmp_path / "full.parquet", [conversational(n) for n in range(100)])
    data = bytearray(full.read_bytes())
    data[20 : len(data) // 2] = bytes(len(data) // 2 - 20)  # zero the pages, keep the footer
    broken = tmp_path / "broken.parquet"
    broken.write_bytes(bytes(data))
    error = problems_of(broken)
    assert error.problems[0][0] == 1 and "the Parquet data is corrupt" in error.problems[0][1]

"""Chatbot-Arena battle imports (feedback.arena, feedback.imports.arena_import and
``manage.py import_preferences --format arena``): winners to choices, real model names that the
leaderboard reads through ``feedback.interface.head_to_head_votes``, refused multi-turn battles,
Parquet, idempotence and bad input."""
import io

import pytest
from django.contrib.auth import get_user_model
from django.core.management import CommandError, call_command

from feedback.arena import arena_battle_parse
from feedback.import_rows import PreferenceFileError, RowRefused
from feedback.imports import RowsRefusedError, arena_import, preferences_import
from feedback.interface import HeadToHead, head_to_head_votes
from feedback.models import Comparison, Prompt, Vote
from tests.import_files import assistant, nothing_written, row_counts, user, write_jsonl, write_parquet

pytestmark = pytest.mark.django_db


def battle(question: str, winner: str, *, model_a="vicuna-13b", model_b="koala-13b", **extra) -> dict:
    return {
        "question_id": f"q-{question}",
        "model_a": model_a,
        "model_b": model_b,
        "winner": winner,
        "judge": "arena_user_973",
        "conversation_a": [user(question), assistant(f"{model_a} answers {question}")],
        "conversation_b": [user(question), assistant(f"{model_b} answers {question}")],
        "turn": 1,
        "anony": True,
        "language": "English",
        "tstamp": 1682351591.1322,
    } | extra


WINNERS = [("model_a", "a"), ("model_b", "b"), ("tie", "tie"), ("tie (bothbad)", "both_bad")]


# --- parsing ------------------------------------------------------------------------------------


@pytest.mark.parametrize("winner, choice", WINNERS)
def test_each_winner_maps_to_a_choice(winner, choice):
    parsed = arena_battle_parse(battle("Hi?", winner))
    assert parsed.choice == choice
    assert parsed.prompt_messages == [user("Hi?")]
    assert (parsed.model_a, parsed.model_b) == ("vicuna-13b", "koala-13b")
    assert (parsed.response_a, parsed.response_b) == ("vicuna-13b answers Hi?", "koala-13b answers Hi?")
    assert parsed.external_id.startswith("arena:") and len(parsed.external_id) == 70


def test_a_multi_turn_battle_that_shares_its_earlier_turns_keeps_them_in_the_prompt():
    history = [user("Hi"), assistant("Hello!"), user("A joke?")]
    row = battle("x", "model_b") | {
        "conversation_a": history + [assistant("A pun.")], "conversation_b": history + [assistant("No.")],
    }
    parsed = arena_battle_parse(row)
    assert parsed.prompt_messages == history
    assert (parsed.response_a, parsed.response_b, parsed.choice) == ("A pun.", "No.", "b")


def test_a_multi_turn_battle_whose_sides_differ_before_the_last_turn_is_refused():
    row = battle("x", "model_a") | {
        "conversation_a": [user("Hi"), assistant("Hello!"), user("A joke?"), assistant("A pun.")],
        "conversation_b": [user("Hi"), assistant("Hey."), user("A joke?"), assistant("No.")],
    }
    with pytest.raises(RowRefused, match=r"^conversation_a and conversation_b differ at message 1, before their last turn"):
        arena_battle_parse(row)


def test_the_id_tells_battles_apart_by_question_id_judge_and_time_but_not_by_other_keys():
    base = arena_battle_parse(battle("Hi?", "tie"))
    assert arena_battle_parse(battle("Hi?", "tie", language="German")).external_id == base.external_id
    assert arena_battle_parse(battle("Hi?", "tie", question_id="other")).external_id != base.external_id
    assert arena_battle_parse(battle("Hi?", "tie", judge="arena_user_1")).external_id != base.external_id
    assert arena_battle_parse(battle("Hi?", "model_a")).external_id != base.external_id


@pytest.mark.parametrize(
    "change, problem",
    [
        ({"winner": "model_c"}, "winner: 'model_c' is not one of 'model_a', 'model_b', 'tie', 'tie (bothbad)'"),
        ({"winner": None}, "missing 'winner'"),
        ({"conversation_b": None, "model_a": None}, "missing 'model_a' and 'conversation_b'"),
        ({"model_b": "  "}, "model_b: is empty"),
        ({"model_a": "m" * 201}, "model_a: is 201 characters; at most 200"),
        ({"conversation_a": "Hi?"}, "conversation_a: must be a list of {role, content} messages, not str"),
        ({"conversation_a": [user("Hi?")]}, "conversation_a: needs a user turn and the assistant's answer"),
        ({"conversation_b": [assistant("x"), user("Hi?")]}, "conversation_b: the last message must be the assistant's"),
        ({"conversation_a": [assistant("x"), assistant("y")], "conversation_b": [assistant("x"), assistant("z")]},
         "conversation_a: prompt (every message before the answer): the last message must be the user's"),
        ({"conversation_a": [user("Hi?"), {"role": "assistant", "content": 3}]}, "conversation_a: message 1 content: must be text"),
    ],
)
def test_problems_name_the_field(change, problem):
    with pytest.raises(ValueError) as caught:
        arena_battle_parse(battle("Hi?", "tie") | change)
    assert str(caught.value).startswith(problem)


# --- importing ----------------------------------------------------------------------------------


def test_battles_import_with_real_model_names_and_the_winner_as_the_vote(tmp_path):
    rows = [battle(f"Question {n}?", winner) for n, (winner, _) in enumerate(WINNERS)]
    path = write_jsonl(tmp_path / "arena.jsonl", rows)

    summary = arena_import(path=path)

    assert summary.as_dict() == {
        "lines": 4, "imported": 4, "already_present": 0, "duplicate_lines": 0, "identical_responses": 0,
        "refused": 0, "flagged": 0, "diverged_before_last_turn": 0, "prompts_created": 4, "prompts_reused": 0,
    }
    assert row_counts() == (4, 8, 4, 4)
    stored = Vote.objects.select_related("comparison__prompt", "comparison__completion_a", "comparison__completion_b")
    by_prompt = {vote.comparison.prompt.messages[-1]["content"]: vote for vote in stored}
    for n, (_, choice) in enumerate(WINNERS):
        vote = by_prompt[f"Question {n}?"]
        a, b = vote.comparison.completion_a, vote.comparison.completion_b
        assert (a.model_name, a.text) == ("vicuna-13b", f"vicuna-13b answers Question {n}?")
        assert (b.model_name, b.text) == ("koala-13b", f"koala-13b answers Question {n}?")
        assert (vote.choice, vote.strength, vote.source) == (choice, "", "arena")
    # One inactive system user casts them all; the judges are not accounts.
    assert set(Vote.objects.values_list("annotator__username", flat=True)) == {"arena"}
    assert not get_user_model().objects.filter(username="arena_user_973").exists()
    assert set(Prompt.objects.values_list("source", flat=True)) == {"arena"}


def test_imported_votes_are_what_the_leaderboard_reads(tmp_path):
    rows = [
        battle("One?", "model_a", model_a="gpt-4", model_b="llama-13b"),
        battle("Two?", "model_b", model_a="llama-13b", model_b="gpt-4"),
        battle("Three?", "tie", model_a="gpt-4", model_b="claude-v1"),
        battle("Four?", "tie (bothbad)", model_a="claude-v1", model_b="llama-13b"),
    ]
    arena_import(path=write_jsonl(tmp_path / "arena.jsonl", rows), source="lmsys-arena")

    votes = head_to_head_votes(sources=["lmsys-arena"])

    assert [(v.model_a, v.model_b, v.choice) for v in votes] == [
        ("gpt-4", "llama-13b", "a"),
        ("llama-13b", "gpt-4", "b"),
        ("gpt-4", "claude-v1", "tie"),
        ("claude-v1", "llama-13b", "both_bad"),
    ]
    assert all(isinstance(v, HeadToHead) for v in votes)
    assert [v.choice for v in head_to_head_votes(model_names=["gpt-4", "claude-v1"])] == ["tie"]


def test_refused_and_identical_battles_are_skipped_and_counted(tmp_path):
    diverged = battle("x", "model_a") | {
        "conversation_a": [user("Hi"), assistant("Hello!"), user("A joke?"), assistant("A pun.")],
        "conversation_b": [user("Hi"), assistant("Hey."), user("A joke?"), assistant("No.")],
    }
    identical = battle("Say OK.", "tie") | {
        "conversation_a": [user("Say OK."), assistant("OK")], "conversation_b": [user("Say OK."), assistant("OK")],
    }
    path = write_jsonl(tmp_path / "arena.jsonl", [battle("One?", "model_a"), diverged, "", identical, battle("Two?", "model_b")])

    with pytest.raises(RowsRefusedError) as caught:
        arena_import(path=path)
    assert str(caught.value).splitlines()[1] == (
        "line 2: refused: conversation_a and conversation_b differ at message 1, before their last turn "
        "(a multi-turn battle); only the final answers to one shared prompt can be stored"
    )
    assert nothing_written()

    summary = arena_import(path=path, skip_refused=True)

    assert (summary.lines, summary.imported, summary.refused, summary.identical_responses) == (4, 2, 1, 1)
    assert summary.refusals == [
        (2, "conversation_a and conversation_b differ at message 1, before their last turn (a multi-turn battle); "
            "only the final answers to one shared prompt can be stored"),
    ]
    assert row_counts() == (2, 4, 2, 2)


def test_parquet_battles_import_as_the_same_comparisons_as_jsonl(tmp_path):
    rows = [battle(f"Q{n}?", WINNERS[n % 4][0]) for n in range(12)]
    summary = arena_import(path=write_parquet(tmp_path / "arena.parquet", rows))
    assert (summary.imported, summary.unit) == (12, "row")
    assert sorted(Vote.objects.values_list("choice", flat=True)) == sorted(["a", "b", "tie", "both_bad"] * 3)

    again = arena_import(path=write_jsonl(tmp_path / "arena.jsonl", rows))
    assert (again.imported, again.already_present) == (0, 12)
    assert row_counts() == (12, 24, 12, 12)


def test_importing_again_adds_nothing_but_a_distinct_battle_with_the_same_text_is_kept(tmp_path):
    path = write_jsonl(tmp_path / "arena.jsonl", [battle("Hi?", "model_a"), battle("Hi?", "model_a", question_id="q-2")])
    first = arena_import(path=path)
    assert (first.imported, first.prompts_created) == (2, 1)  # one prompt, two battles on it
    counts = row_counts()

    again = arena_import(path=path)

    assert (again.imported, again.already_present) == (0, 2)
    assert row_counts() == counts


def test_a_bad_battle_imports_nothing_and_names_the_line_and_field(tmp_path):
    rows = [battle(f"Q{n}?", "tie") for n in range(5)]
    rows[1] = battle("Q1?", "draw")
    rows[3] = {k: v for k, v in battle("Q3?", "tie").items() if k != "conversation_b"}
    with pytest.raises(PreferenceFileError) as caught:
        arena_import(path=write_jsonl(tmp_path / "bad.jsonl", rows))
    assert caught.value.problems == [
        (2, "winner: 'draw' is not one of 'model_a', 'model_b', 'tie', 'tie (bothbad)'"),
        (4, "missing 'conversation_b'"),
    ]
    assert nothing_written()


def test_a_bad_parquet_battle_names_the_row(tmp_path):
    rows = [battle("Q0?", "tie"), battle("Q1?", "tie") | {"model_b": ""}]
    with pytest.raises(PreferenceFileError) as caught:
        arena_import(path=write_parquet(tmp_path / "bad.parquet", rows))
    assert "row 2: model_b: is empty" in str(caught.value)
    assert nothing_written()


def test_model_name_does_not_apply_to_arena(tmp_path):
    with pytest.raises(ValueError, match="model_name does not apply to arena battles"):
        preferences_import(path=tmp_path / "x.jsonl", format="arena", model_name="m")


def test_the_command_imports_battles_and_prints_the_refusals(tmp_path):
    diverged = battle("x", "model_a") | {
        "conversation_a": [user("Hi"), assistant("Hello!"), user("A joke?"), assistant("A pun.")],
        "conversation_b": [user("Hi"), assistant("Hey."), user("A joke?"), assistant("No.")],
    }
    path = write_parquet(tmp_path / "arena.parquet", [battle("One?", "model_a"), diverged])
    out = io.StringIO()
    with pytest.raises(CommandError, match="1 row cannot be imported faithfully; nothing was imported"):
        call_command("import_preferences", str(path), "--format", "arena", stdout=out)
    assert nothing_written()

    call_command("import_preferences", str(path), "--format", "arena", "--skip-refused", stdout=out)

    assert out.getvalue().splitlines() == [
        "2 rows read: 1 imported, 0 already present, 1 refused, 0 with identical responses (skipped), 0 duplicate lines",
        "prompts: 1 created, 0 reused",
        "refused row 2: conversation_a and conversation_b differ at message 1, before their last turn "
        "(a multi-turn battle); only the final answers to one shared prompt can be stored",
    ]
    assert Comparison.objects.get().completion_a.model_name == "vicuna-13b"
    with pytest.raises(CommandError, match="model_name does not apply"):
        call_command("import_preferences", str(path), "--format", "arena", "--model-name", "x", "--skip-refused")

"""Supervised fine-tuning data: the SFT builder (pure), demonstration files, SFT snapshots, the
"write a better response" box on the annotate page and the vote API, the import command and the
admin comparison page."""
from __future__ import annotations

import gzip
import io
import json
import random
import re
from pathlib import Path

import pytest
from django.core.exceptions import ValidationError
from django.core.management import CommandError, call_command
from django.db import DatabaseError, connection
from django.db.models import ProtectedError
from django.test.utils import CaptureQueriesContext

from feedback import interface, services
from feedback import vote_submit as vote_submit_module
from feedback.roles import is_feedback_admin
from feedback.demonstrations import (
    SFT_COUNT_KEYS,
    STRONGLY_CHOSEN,
    DemonstrationRecord,
    SFTRules,
    build_sft_dataset,
)
from feedback.imports import demonstrations_import
from feedback.messages import messages_sha256
from feedback.models import (
    DatasetSnapshot,
    Demonstration,
    Prompt,
    SnapshotDemonstration,
    SnapshotKind,
    SnapshotVote,
    Vote,
)
from feedback.preferences import RulesError, VoteRecord, hash_split, rows_hash
from feedback.prompt_completion import (
    DemonstrationFileError,
    demonstration_external_id,
    demonstration_parse,
    read_demonstrations,
)
from feedback.services import MAX_DEMONSTRATION_CHARS
from tests.factories import AssignmentFactory, ComparisonFactory, PromptFactory, UserFactory, VoteFactory

HTMX = {"HTTP_HX_REQUEST": "true"}


# --- the builder, pure ----------------------------------------------------------------------------
def msgs(question: str) -> list[dict[str, str]]:
    return [{"role": "user", "content": question}]


def demo(pk: int, text: str, *, question: str = "Q1?", source: str = "annotator", annotator: int | None = 7,
         comparison: int | None = None, gold: bool = False, split: str = "train") -> DemonstrationRecord:
    messages = msgs(question)
    return DemonstrationRecord(
        demonstration_id=pk, prompt_id=hash(question) % 1000, prompt_messages=messages, text=text, source=source,
        annotator_id=annotator, comparison_id=comparison, is_gold=gold, split=split,
        prompt_key=messages_sha256(messages),
    )


def vote(pk: int, comparison: int, choice: str, strength: str = "", *, annotator: int | None = None,
         question: str = "Q1?", text_a: str = "Answer A.", text_b: str = "Answer B.", gold: bool = False,
         split: str = "train", source: str = "annotator") -> VoteRecord:
    messages = msgs(question)
    return VoteRecord(
        vote_id=pk, comparison_id=comparison, prompt_id=hash(question) % 1000, prompt_messages=messages,
        text_a=text_a, text_b=text_b, choice=choice, strength=strength,
        annotator_id=pk if annotator is None else annotator, is_gold=gold, split=split,
        prompt_key=messages_sha256(messages), source=source,
    )


def completion_texts(rows) -> list[str]:
    return [row["completion"][0]["content"] for row in rows]


def test_demonstrations_become_prompt_completion_rows_in_id_order_whatever_the_input_order():
    records = [demo(3, "Third.", question="Q3?", comparison=40), demo(1, "First."), demo(2, "Second.", annotator=None,
                                                                                          source="import")]
    dataset = build_sft_dataset(records, [], SFTRules())
    assert dataset.train == [
        {"prompt": msgs("Q1?"), "completion": [{"role": "assistant", "content": "First."}], "source": "annotator",
         "demonstration_id": 1, "comparison_id": None},
        {"prompt": msgs("Q1?"), "completion": [{"role": "assistant", "content": "Second."}], "source": "import",
         "demonstration_id": 2, "comparison_id": None},
        {"prompt": msgs("Q3?"), "completion": [{"role": "assistant", "content": "Third."}], "source": "annotator",
         "demonstration_id": 3, "comparison_id": 40},
    ]
    assert dataset.eval == []
    assert dataset.demonstration_ids == [1, 2, 3] and dataset.vote_ids == []
    assert dataset.annotator_ids == [7]  # the import has no writer
    assert dataset.content_hash == rows_hash(dataset.train, [])
    shuffled = build_sft_dataset(random.Random(1).sample(records, 3), [], SFTRules())
    assert shuffled == dataset
    assert set(dataset.counts) == set(SFT_COUNT_KEYS)
    assert dataset.counts["rows_train"] == 3 and dataset.counts["demonstrations_seen"] == 3


def test_exclusions_are_counted_under_the_first_rule_that_applies():
    records = [
        demo(1, "Kept."),
        demo(2, "Gold and from an excluded writer.", gold=True, annotator=9),
        demo(3, "Imported.", source="import", annotator=None),
        demo(4, "By the excluded writer.", annotator=9),
        demo(5, "   \n "),
    ]
    rules = SFTRules(include_gold=False, sources=("annotator",), exclude_annotators=(9,))
    dataset = build_sft_dataset(records, [], rules)
    assert completion_texts(dataset.train) == ["Kept."]
    counts = dataset.counts
    assert (counts["demonstrations_excluded_gold"], counts["demonstrations_excluded_source"],
            counts["demonstrations_excluded_annotator"], counts["demonstrations_empty"]) == (1, 1, 1, 1)
    assert build_sft_dataset(records, [], SFTRules()).counts["rows_train"] == 4  # all but the blank one


def test_a_comparison_all_of_whose_agreeing_votes_are_strong_gives_its_chosen_response():
    votes = [
        # comparison 10: B strongly chosen twice, one dissent -> strongly chosen (mean margin of agreeing = 1.0)
        vote(1, 10, "b", "strong"), vote(2, 10, "b", "strong"), vote(3, 10, "a", "slight"),
        # comparison 11: A chosen strong + clear -> mean 5/6, not strong by default
        vote(4, 11, "a", "strong", question="Q2?"), vote(5, 11, "a", "clear", question="Q2?"),
        # comparison 12: a tie; comparison 13: a 1-1 split; comparison 14: A chosen with no strength
        vote(6, 12, "tie", question="Q3?"),
        vote(7, 13, "a", "strong", question="Q4?"), vote(8, 13, "b", "strong", question="Q4?"),
        vote(9, 14, "a", question="Q5?"),
    ]
    dataset = build_sft_dataset([], votes, SFTRules())
    assert dataset.train == [
        {"prompt": msgs("Q1?"), "completion": [{"role": "assistant", "content": "Answer B."}],
         "source": STRONGLY_CHOSEN, "demonstration_id": None, "comparison_id": 10},
    ]
    assert dataset.vote_ids == [1, 2, 3]  # every counted vote of the comparison, the dissent included
    assert dataset.annotator_ids == [1, 2, 3]
    assert dataset.counts["comparisons_chosen"] == 3 and dataset.counts["chosen_not_strong"] == 2
    assert dataset.counts["votes_seen"] == 9

    looser = build_sft_dataset([], votes, SFTRules(strong_margin=0.75))
    assert [row["comparison_id"] for row in looser.train] == [10, 11]
    everything = build_sft_dataset([], votes, SFTRules(strong_margin=0.0))
    assert [row["comparison_id"] for row in everything.train] == [10, 11, 14]
    off = build_sft_dataset([], votes, SFTRules(include_strongly_chosen=False))
    assert off.train == [] and off.counts["votes_seen"] == 0


def test_vote_rules_change_which_comparisons_are_strongly_chosen():
    votes = [vote(1, 10, "a", "strong"), vote(2, 10, "a", "clear", annotator=99),
             vote(3, 11, "b", "strong", question="Q2?", gold=True),
             vote(4, 12, "a", "strong", question="Q3?", source="hh-rlhf")]
    assert [r["comparison_id"] for r in build_sft_dataset([], votes, SFTRules()).train] == [11, 12]
    # Leaving out annotator 99's clear vote leaves only the strong one: comparison 10 becomes strongly chosen.
    rules = SFTRules(exclude_annotators=(99,), include_gold=False, vote_sources=("annotator",))
    dataset = build_sft_dataset([], votes, rules)
    assert [r["comparison_id"] for r in dataset.train] == [10]
    assert dataset.vote_ids == [1]


def test_identical_prompt_and_completion_are_kept_once_a_demonstration_first():
    records = [demo(5, "Answer B."), demo(2, "  Same words.\n"), demo(3, "Same words.")]
    votes = [vote(1, 10, "b", "strong")]  # chosen text "Answer B." on the same prompt as demonstration 5
    dataset = build_sft_dataset(records, votes, SFTRules())
    assert [(row["source"], row["demonstration_id"]) for row in dataset.train] == [("annotator", 2), ("annotator", 5)]
    assert completion_texts(dataset.train) == ["  Same words.\n", "Answer B."]  # kept verbatim
    assert dataset.counts["duplicates"] == 2
    assert dataset.demonstration_ids == [2, 5] and dataset.vote_ids == []
    # The same text on another prompt is not a duplicate.
    other = build_sft_dataset([demo(1, "Same."), demo(2, "Same.", question="Other?")], [], SFTRules())
    assert len(other.train) == 2


def test_split_by_prompt_keeps_copies_of_an_eval_prompt_together_and_hash_split_is_by_prompt_key():
    records = [demo(1, "One.", question="Held out?", split="eval"), demo(2, "Two.", question="Held out?"),
               demo(3, "Three.", question="Trained?")]
    votes = [vote(1, 10, "a", "strong", question="Trained?", split="eval")]  # a copy of the prompt stored as eval
    dataset = build_sft_dataset(records, votes, SFTRules())
    assert completion_texts(dataset.eval) == ["One.", "Two.", "Three.", "Answer A."]
    assert dataset.train == []

    questions = [f"Question {i}?" for i in range(60)]
    many = [demo(i + 1, f"Answer {i}.", question=q) for i, q in enumerate(questions)]
    hashed = build_sft_dataset(many, [], SFTRules(split_by="hash", eval_fraction=0.3, split_salt="s"))
    expected_eval = [q for q in questions if hash_split(prompt_key=messages_sha256(msgs(q)), salt="s",
                                                        eval_fraction=0.3) == "eval"]
    assert [row["prompt"][0]["content"] for row in hashed.eval] == expected_eval
    assert 0 < len(hashed.eval) < 60 and len(hashed.train) + len(hashed.eval) == 60


def test_bad_records_raise():
    with pytest.raises(ValueError, match="demonstration 1 is given twice"):
        build_sft_dataset([demo(1, "a"), demo(1, "b")], [], SFTRules())
    with pytest.raises(ValueError, match="prompt split 'test'"):
        build_sft_dataset([demo(1, "a", split="test")], [], SFTRules())
    with pytest.raises(ValueError, match="vote 1 is given twice"):
        build_sft_dataset([], [vote(1, 10, "a"), vote(1, 11, "a")], SFTRules())


def test_rules_from_dict_normalises_and_names_every_bad_field():
    rules = SFTRules.from_dict({"sources": [" import", "annotator", "import"], "exclude_annotators": [3, 1, 3],
                                "strong_margin": 1, "include_strongly_chosen": False})
    assert rules.sources == ("annotator", "import") and rules.exclude_annotators == (1, 3)
    assert rules.strong_margin == 1.0 and isinstance(rules.strong_margin, float)
    assert SFTRules.from_dict(rules.as_dict()) == rules
    assert SFTRules.from_dict({}) == SFTRules()
    with pytest.raises(RulesError) as caught:
        SFTRules.from_dict({"strong_margin": 1.5, "include_gold": "yes", "sources": [""], "split_by": "random",
                            "eval_fraction": -1, "exclude_annotators": ["bob"], "min_votes": 2, "vote_sources": "x",
                            "split_salt": 5, "include_strongly_chosen": 1})
    assert set(caught.value.errors) == {
        "strong_margin", "include_gold", "sources", "split_by", "eval_fraction", "exclude_annotators", "min_votes",
        "vote_sources", "split_salt", "include_strongly_chosen",
    }
    assert caught.value.errors["strong_margin"] == "must be a number from 0 to 1"
    assert caught.value.errors["min_votes"].startswith("unknown rule")
    with pytest.raises(RulesError, match="rules: must be an object"):
        SFTRules.from_dict([])


# --- demonstration files, pure --------------------------------------------------------------------
CONVERSATION = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi?"},
                {"role": "assistant", "content": "Hello."}, {"role": "user", "content": "Capital of France?"}]


def test_the_three_row_shapes_parse_to_a_prompt_and_a_completion():
    conversational = demonstration_parse({"prompt": CONVERSATION,
                                          "completion": [{"role": "assistant", "content": "Paris."}], "id": 7})
    standard = demonstration_parse({"prompt": "Capital of France?", "completion": " Paris."})
    whole = demonstration_parse({"messages": CONVERSATION + [{"role": "assistant", "content": "Paris."}]})
    assert conversational.prompt_messages == CONVERSATION and conversational.completion == "Paris."
    assert standard.prompt_messages == msgs("Capital of France?") and standard.completion == " Paris."
    assert whole == conversational
    assert conversational.external_id == demonstration_external_id(prompt_messages=CONVERSATION, completion="Paris.")
    assert re.fullmatch(r"demo:[0-9a-f]{64}", conversational.external_id)
    assert standard.external_id != demonstration_external_id(prompt_messages=msgs("Capital of France?"),
                                                             completion="Paris.")


@pytest.mark.parametrize(
    ("row", "reason"),
    [
        ({"prompt": "Q?"}, "missing 'completion' (or give messages)"),
        ({"completion": "A."}, "missing 'prompt' (or give messages)"),
        ({"prompt": "Q?", "completion": "  "}, "completion: is empty"),
        ({"prompt": "Q?", "completion": 3}, "completion: must be text or one assistant message, not int"),
        ({"prompt": "Q?", "completion": [{"role": "user", "content": "A."}]}, "completion: must be text or exactly one"),
        ({"prompt": "Q?", "completion": [{"role": "assistant", "content": "A."}] * 2}, "completion: must be text or exactly one"),
        ({"prompt": [{"role": "assistant", "content": "Q?"}], "completion": "A."}, "prompt: the last message must be the user's"),
        ({"prompt": "", "completion": "A."}, "prompt: message 0 (user) is empty"),
        ({"messages": [{"role": "user", "content": "Q?"}]}, "messages: the last message must be the assistant's"),
        ({"messages": [{"role": "assistant", "content": "A."}]}, "messages: there is no prompt"),
        ({"messages": [], "prompt": "Q?"}, "give either messages, or prompt and completion, not both"),
        ({"prompt": "Q?", "completion": "A\x00"}, "completion: contains a NUL character"),
    ],
)
def test_unusable_rows_say_why(row, reason):
    with pytest.raises(ValueError) as caught:
        demonstration_parse(row)
    assert str(caught.value).startswith(reason), str(caught.value)


def test_a_file_with_bad_lines_reports_each_by_number_plain_or_gzip(tmp_path):
    good = json.dumps({"prompt": "Q?", "completion": "A."})
    text = "\n".join([good, "{oops", json.dumps({"prompt": "Q?"}), "", "[1]", good]) + "\n"
    plain = tmp_path / "demos.jsonl"
    plain.write_text(text, encoding="utf-8")
    packed = tmp_path / "demos.jsonl.gz"
    packed.write_bytes(gzip.compress(text.encode("utf-8")))
    for path in (plain, packed):
        with pytest.raises(DemonstrationFileError) as caught:
            read_demonstrations(path)
        assert [number for number, _ in caught.value.problems] == [2, 3, 5]
        assert str(caught.value).startswith(f"{path}: 3 problems; nothing was read\nline 2: not JSON")
    empty = tmp_path / "empty.jsonl"
    empty.write_text("\n", encoding="utf-8")
    with pytest.raises(DemonstrationFileError, match="the file holds no demonstrations"):
        read_demonstrations(empty)


# --- the database ----------------------------------------------------------------------------------
@pytest.fixture
def arbiter_data(settings, tmp_path) -> Path:
    settings.ARBITER_DATA_DIR = tmp_path / "data"
    return settings.ARBITER_DATA_DIR


def read_rows(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def written_demonstration(comparison, annotator, text: str, **fields) -> Demonstration:
    return Demonstration.objects.create(prompt=comparison.prompt, comparison=comparison, annotator=annotator,
                                        text=text, **fields)


@pytest.mark.django_db
def test_sft_snapshot_freezes_demonstrations_and_strongly_chosen_responses(arbiter_data):
    writer, voter_1, voter_2 = UserFactory(role="annotator"), UserFactory(role="annotator"), UserFactory(role="annotator")
    written_on = ComparisonFactory()
    demonstration = written_demonstration(written_on, writer, "A better answer.")
    held_out = ComparisonFactory(prompt=PromptFactory(split="eval"))
    imported = Demonstration.objects.create(prompt=held_out.prompt, text="Imported answer.", source="import")
    strong = ComparisonFactory()
    strong_votes = [VoteFactory(comparison=strong, annotator=user, choice="b", strength="strong")
                    for user in (voter_1, voter_2)]
    weak = ComparisonFactory()
    VoteFactory(comparison=weak, annotator=voter_1, choice="a", strength="clear")

    ref = interface.sft_snapshot_create(rules={}, created_by=writer)
    assert ref.kind == "sft"
    snapshot = DatasetSnapshot.objects.get(pk=ref.id)
    assert snapshot.kind == SnapshotKind.SFT and snapshot.created_by == writer
    assert snapshot.rules == SFTRules().as_dict()
    assert (ref.train_rows, ref.eval_rows, ref.vote_count, ref.annotator_count) == (2, 1, 2, 3)
    assert ref.train_path == arbiter_data / snapshot.files_dir / "train.jsonl" and snapshot.files_dir.startswith(f"snapshots/{ref.id}-")
    assert read_rows(ref.train_path) == [
        {"prompt": written_on.prompt.messages, "completion": [{"role": "assistant", "content": "A better answer."}],
         "source": "annotator", "demonstration_id": demonstration.pk, "comparison_id": written_on.pk},
        {"prompt": strong.prompt.messages, "completion": [{"role": "assistant", "content": strong.completion_b.text}],
         "source": STRONGLY_CHOSEN, "demonstration_id": None, "comparison_id": strong.pk},
    ]
    assert read_rows(ref.eval_path) == [
        {"prompt": held_out.prompt.messages, "completion": [{"role": "assistant", "content": "Imported answer."}],
         "source": "import", "demonstration_id": imported.pk, "comparison_id": None},
    ]
    assert interface.snapshot_verify(snapshot_id=ref.id)
    assert sorted(SnapshotDemonstration.objects.filter(snapshot=snapshot).values_list("demonstration_id", flat=True)) \
        == sorted([demonstration.pk, imported.pk])
    assert sorted(SnapshotVote.objects.filter(snapshot=snapshot).values_list("vote_id", flat=True)) \
        == sorted(v.pk for v in strong_votes)
    assert ref.counts["chosen_not_strong"] == 1
    assert interface.snapshot_get(snapshot_id=ref.id) == ref
    # Lineage stays whole: a demonstration in a snapshot cannot be deleted.
    with pytest.raises(ProtectedError):
        demonstration.delete()


@pytest.mark.django_db
def test_sft_rules_reach_the_snapshot_and_demonstrations_only_has_no_votes(arbiter_data):
    comparison = ComparisonFactory()
    writer, excluded = UserFactory(role="annotator"), UserFactory(role="annotator")
    written_demonstration(comparison, writer, "Kept.")
    written_demonstration(comparison, excluded, "Left out.")
    VoteFactory(comparison=comparison, annotator=writer, choice="a", strength="strong")
    ref = interface.sft_snapshot_create(rules={"include_strongly_chosen": False, "exclude_annotators": [excluded.pk]})
    assert completion_texts(read_rows(ref.train_path)) == ["Kept."]
    assert ref.vote_count == 0 and ref.counts["demonstrations_excluded_annotator"] == 1


@pytest.mark.django_db
def test_no_rows_and_bad_rules_are_refused_and_leave_nothing(arbiter_data):
    with pytest.raises(ValidationError) as caught:
        interface.sft_snapshot_create(rules=None)
    assert caught.value.message_dict == {
        "snapshot": ["no demonstrations or strongly chosen responses give training rows: no demonstrations and no votes"]
    }
    Demonstration.objects.create(prompt=PromptFactory(split="eval"), text="Only eval.", source="import")
    with pytest.raises(ValidationError, match="rows_eval=1"):
        interface.sft_snapshot_create(rules={})
    with pytest.raises(ValidationError) as caught:
        interface.sft_snapshot_create(rules={"strong_margin": 2, "min_votes": 1})
    assert sorted(caught.value.message_dict["rules"]) == [
        "min_votes: unknown rule; expected one of exclude_annotators, include_gold, sources, include_strongly_chosen, "
        "strong_margin, vote_sources, split_by, eval_fraction, split_salt",
        "strong_margin: must be a number from 0 to 1",
    ]
    assert not DatasetSnapshot.objects.exists()
    root = arbiter_data / "snapshots"
    assert not root.exists() or list(root.iterdir()) == []


@pytest.mark.django_db
def test_demonstration_count_counts_every_demonstration():
    assert interface.demonstration_count() == 0
    comparison = ComparisonFactory()
    written_demonstration(comparison, UserFactory(), "One.")
    Demonstration.objects.create(prompt=comparison.prompt, text="Two.", source="import")
    assert interface.demonstration_count() == 2


def run_command(name: str, *args) -> str:
    out = io.StringIO()
    call_command(name, *args, stdout=out)
    return out.getvalue()


@pytest.mark.django_db
def test_snapshot_create_command_makes_sft_snapshots(arbiter_data):
    Demonstration.objects.create(prompt=PromptFactory(), text="An answer.", source="import")
    output = run_command("snapshot_create", "--kind", "sft", "--no-strongly-chosen", "--rules", '{"split_by": "hash", "eval_fraction": 0}')
    snapshot = DatasetSnapshot.objects.get()
    assert snapshot.kind == "sft" and snapshot.rules["include_strongly_chosen"] is False
    assert snapshot.rules["split_by"] == "hash" and snapshot.train_rows == 1
    assert output.splitlines()[0] == (
        f"SFT snapshot {snapshot.pk}: {snapshot.train_rows} train rows, {snapshot.eval_rows} eval rows, "
        f"0 annotators, hash {snapshot.content_hash}"
    )
    assert output.splitlines()[2].startswith("counts: demonstrations_seen=1")
    with pytest.raises(CommandError, match="--no-margin is for preference snapshots"):
        run_command("snapshot_create", "--kind", "sft", "--no-margin")
    with pytest.raises(CommandError, match="rules: strong_margin: must be a number from 0 to 1"):
        run_command("snapshot_create", "--kind", "sft", "--rules", '{"strong_margin": -1}')


# --- import ----------------------------------------------------------------------------------------
def write_jsonl(path: Path, rows: list, *, gz: bool = False) -> Path:
    text = "".join(json.dumps(row) + "\n" for row in rows)
    if gz:
        path.write_bytes(gzip.compress(text.encode("utf-8")))
    else:
        path.write_text(text, encoding="utf-8")
    return path


IMPORT_ROWS = [
    {"prompt": [{"role": "user", "content": "Existing question?"}], "completion": [{"role": "assistant", "content": "Yes."}]},
    {"prompt": "New question?", "completion": "Certainly."},
    {"messages": CONVERSATION + [{"role": "assistant", "content": "Paris."}]},
    {"prompt": "New question?", "completion": "Certainly."},  # the same as line 2
]


@pytest.mark.django_db
def test_import_reuses_prompts_creates_the_rest_and_is_idempotent(tmp_path):
    existing = PromptFactory(messages=msgs("Existing question?"), split="eval")
    path = write_jsonl(tmp_path / "demos.jsonl.gz", IMPORT_ROWS, gz=True)
    output = run_command("import_demonstrations", str(path), "--split", "train", "--source", "curated")
    assert output.splitlines() == [
        "4 demonstrations read: 3 imported, 0 already present, 1 duplicate lines",
        "prompts: 2 created, 1 reused",
    ]
    demonstrations = list(Demonstration.objects.select_related("prompt").order_by("id"))
    assert [(d.prompt.messages, d.text) for d in demonstrations] == [
        (msgs("Existing question?"), "Yes."), (msgs("New question?"), "Certainly."), (CONVERSATION, "Paris."),
    ]
    assert demonstrations[0].prompt == existing and existing.split == "eval"  # kept its split
    assert all(d.source == "curated" and d.annotator is None and d.comparison is None for d in demonstrations)
    assert [d.prompt.split for d in demonstrations[1:]] == ["train", "train"]
    assert {d.prompt.source for d in demonstrations[1:]} == {"curated"}
    assert demonstrations[2].external_id == demonstration_external_id(prompt_messages=CONVERSATION, completion="Paris.")

    again = demonstrations_import(path=path)
    assert (again.lines, again.imported, again.already_present, again.duplicate_lines) == (4, 0, 3, 1)
    assert Demonstration.objects.count() == 3 and Prompt.objects.count() == 3


@pytest.mark.django_db
def test_import_without_a_split_splits_new_prompts_by_hash(tmp_path):
    rows = [{"prompt": f"Question {i}?", "completion": f"Answer {i}."} for i in range(40)]
    demonstrations_import(path=write_jsonl(tmp_path / "d.jsonl", rows), eval_fraction=0.5)
    splits = {p.messages[0]["content"]: p.split for p in Prompt.objects.all()}
    assert set(splits.values()) == {"train", "eval"}
    from feedback.imports import split_by_hash

    assert all(split == split_by_hash(messages_hash=messages_sha256(msgs(q)), eval_fraction=0.5)
               for q, split in splits.items())


@pytest.mark.django_db
def test_a_bad_file_imports_nothing_and_names_its_lines(tmp_path):
    path = write_jsonl(tmp_path / "bad.jsonl", [IMPORT_ROWS[1], {"prompt": "Q?", "completion": ""}, IMPORT_ROWS[2],
                                                {"messages": [{"role": "user", "content": "Q?"}]}])
    with pytest.raises(CommandError) as caught:
        run_command("import_demonstrations", str(path))
    message = str(caught.value)
    assert message.startswith(f"{path}: 2 problems; nothing was read")
    assert "line 2: completion: is empty" in message and "line 4: messages: the last message" in message
    assert not Demonstration.objects.exists() and not Prompt.objects.exists()
    with pytest.raises(CommandError, match="cannot read"):
        run_command("import_demonstrations", str(tmp_path / "missing.jsonl"))
    with pytest.raises(CommandError, match="source must be a non-empty name"):
        run_command("import_demonstrations", str(path), "--source", " ")


# --- the vote box and the vote API -----------------------------------------------------------------
@pytest.fixture
def leased(annotator):
    """A comparison leased to ``annotator``: the one the annotate page shows."""
    return AssignmentFactory(annotator=annotator).comparison


def item_of(comparison) -> str:
    """The item token the annotate page shows for the leased comparison."""
    return comparison.assignments.get().token


@pytest.fixture
def as_annotator(client, annotator):
    client.force_login(annotator)
    return client


@pytest.mark.django_db
def test_the_annotate_page_has_a_collapsed_better_response_box_inside_the_vote_form(as_annotator, leased):
    html = as_annotator.get("/annotate/").content.decode()
    form = re.search(r'<form[^>]*class="vote-form".*?</form>', html, re.S).group(0)
    box = re.search(r"<details class=\"demonstration\"(?P<attrs>[^>]*)>\s*<summary[^>]*>(?P<summary>[^<]*)<kbd>d</kbd></summary>"
                    r".*?<textarea name=\"demonstration\"[^>]*maxlength=\"(?P<max>\d+)\"", form, re.S)
    assert box, form
    assert box["summary"].strip() == "Optional: write a better response"  # and its key, d
    assert "open" not in box["attrs"]
    assert int(box["max"]) == MAX_DEMONSTRATION_CHARS
    assert form.index('class="buttons"') < form.index('class="demonstration"')  # under the vote controls


@pytest.mark.django_db
@pytest.mark.parametrize("htmx", [False, True])
def test_a_vote_with_a_better_response_stores_one_linked_demonstration(as_annotator, annotator, leased, htmx):
    text = "  A better answer,\r\nover two lines.\r\n"
    response = as_annotator.post("/annotate/vote/", {"item": item_of(leased), "choice": "left", "demonstration": text},
                                 **(HTMX if htmx else {}))
    assert response.status_code == (200 if htmx else 302)
    vote = Vote.objects.get()
    demonstration = Demonstration.objects.get()
    assert (demonstration.prompt_id, demonstration.annotator, demonstration.comparison_id, demonstration.source) == (
        leased.prompt_id, annotator, leased.pk, "annotator")
    assert demonstration.text == "A better answer,\nover two lines."
    assert vote.comparison_id == leased.pk and demonstration.external_id == ""


@pytest.mark.django_db
@pytest.mark.parametrize("text", [None, "", " \r\n "])
def test_a_vote_without_a_better_response_stores_none(as_annotator, leased, text):
    data = {"item": item_of(leased), "choice": "tie"} | ({} if text is None else {"demonstration": text})
    assert as_annotator.post("/annotate/vote/", data).status_code == 302
    assert Vote.objects.count() == 1 and not Demonstration.objects.exists()


@pytest.mark.django_db
def test_a_too_long_better_response_is_refused_with_its_field_and_nothing_is_stored(as_annotator, leased):
    text = "x" * (MAX_DEMONSTRATION_CHARS + 1)
    response = as_annotator.post("/annotate/vote/", {"item": item_of(leased), "choice": "left", "demonstration": text},
                                 **HTMX)
    assert response.status_code == 400
    html = response.content.decode()
    assert f"demonstration: is {MAX_DEMONSTRATION_CHARS + 1} characters; at most {MAX_DEMONSTRATION_CHARS}" in html
    assert not Vote.objects.exists() and not Demonstration.objects.exists()
    # The same comparison is shown again with the text still in the (opened) box.
    assert f'value="{item_of(leased)}"' in html and '<details class="demonstration" open>' in html and text in html


@pytest.mark.django_db
def test_the_vote_api_takes_a_better_response(annotator, leased, api):
    api.force_authenticate(annotator)
    response = api.post("/api/votes/", {"comparison": leased.pk, "choice": "b", "demonstration": "Better."},
                        format="json")
    assert response.status_code == 201, response.json()
    demonstration = Demonstration.objects.get()
    assert (demonstration.prompt_id, demonstration.annotator, demonstration.comparison_id, demonstration.text) == (
        leased.prompt_id, annotator, leased.pk, "Better.")
    # The identical vote again writes nothing, its demonstration included.
    again = api.post("/api/votes/", {"comparison": leased.pk, "choice": "b", "demonstration": "Better."}, format="json")
    assert again.status_code == 200 and Demonstration.objects.count() == 1


@pytest.mark.django_db
def test_the_vote_api_refuses_a_too_long_or_non_text_better_response(annotator, leased, api):
    api.force_authenticate(annotator)
    response = api.post("/api/votes/", {"comparison": leased.pk, "choice": "a",
                                        "demonstration": "y" * (MAX_DEMONSTRATION_CHARS + 1)}, format="json")
    assert response.status_code == 400
    assert response.json() == {
        "demonstration": [f"is {MAX_DEMONSTRATION_CHARS + 1} characters; at most {MAX_DEMONSTRATION_CHARS}"]
    }
    assert api.post("/api/votes/", {"comparison": leased.pk, "choice": "a", "demonstration": {"a": 1}},
                    format="json").status_code == 400
    assert not Vote.objects.exists() and not Demonstration.objects.exists()
    without = api.post("/api/votes/", {"comparison": leased.pk, "choice": "a"}, format="json")
    assert without.status_code == 201 and not Demonstration.objects.exists()


@pytest.mark.django_db
def test_vote_submit_costs_no_query_for_a_blank_box_and_one_insert_for_a_written_one(annotator):
    first, second = (AssignmentFactory(annotator=annotator).comparison for _ in range(2))
    # vote_submit reads the voter's permissions (is the vote blind?) from the user's permission
    # cache, filled once per request by the role check every page and API view makes.
    is_feedback_admin(annotator)
    with CaptureQueriesContext(connection) as plain:
        services.vote_submit(annotator=annotator, comparison_id=first.pk, choice="a", demonstration="  ")
    with CaptureQueriesContext(connection) as written:
        services.vote_submit(annotator=annotator, comparison_id=second.pk, choice="a", demonstration="Better.")
    assert len(written.captured_queries) == len(plain.captured_queries) + 1
    touching = [q["sql"] for q in written.captured_queries if "feedback_demonstration" in q["sql"]]
    assert len(touching) == 1 and touching[0].startswith("INSERT"), touching
    assert not any("feedback_demonstration" in q["sql"] for q in plain.captured_queries)


@pytest.mark.django_db
def test_a_demonstration_rolls_back_with_its_vote(annotator, monkeypatch):
    comparison = AssignmentFactory(annotator=annotator).comparison
    # The last statement of the vote's transaction fails: the vote and its demonstration go together.
    monkeypatch.setattr(vote_submit_module, "_VOTE_COUNT_SQL", "UPDATE no_such_table SET x = 1 WHERE id = %(id)s")
    with pytest.raises(DatabaseError):
        services.vote_submit(annotator=annotator, comparison_id=comparison.pk, choice="a", demonstration="Better.")
    assert not Vote.objects.exists() and not Demonstration.objects.exists()


# --- the admin comparison page ---------------------------------------------------------------------
@pytest.mark.django_db
def test_the_admin_comparison_page_lists_who_wrote_which_better_response(client, admin_user):
    comparison = ComparisonFactory()
    writer = UserFactory(username="writer-one", role="annotator")
    written_demonstration(comparison, writer, "A **much** better answer.")
    Demonstration.objects.create(prompt=comparison.prompt, text="Imported elsewhere.", source="import")  # not on it
    client.force_login(admin_user)
    html = client.get(f"/manage/comparisons/{comparison.pk}/").content.decode()
    table = re.search(r'<table data-testid="demonstrations">(.*?)</table>', html, re.S).group(1)
    assert "writer-one" in table and "<strong>much</strong>" in table
    assert "Imported elsewhere." not in table
    empty = ComparisonFactory()
    assert "No annotator has written a better response" in client.get(f"/manage/comparisons/{empty.pk}/").content.decode()


# --- in a real browser -----------------------------------------------------------------------------
@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_typing_a_better_response_in_the_browser_stores_it_with_the_vote(chromium_browser, live_server):
    from tests.browser_support import make_comparison, log_in, open_tab

    tab = open_tab(chromium_browser, live_server.url)
    try:
        annotator = UserFactory(role="annotator")
        first = make_comparison("Explain overfitting in one sentence.", "It is when a model learns.", "Overfitting is bad.",
                            priority=2)
        second = make_comparison("Next question?", "Next, one.", "Next, two.", priority=1)
        log_in(tab, annotator.username)
        page = tab.page
        box = page.get_by_test_id("demonstration")
        assert not box.is_visible()  # collapsed until asked for
        page.get_by_text("Optional: write a better response").click()
        box.fill("Overfitting is fitting noise in the training data,\nso held-out error rises.")
        box.press("1")  # typing a shortcut key into the box types it; it does not vote
        assert not Vote.objects.exists()
        assert box.input_value().endswith("rises.1")
        box.press("Backspace")
        page.get_by_role("button", name="Left is better").click()
        first_item = first.assignments.get().token
        page.wait_for_function(
            "previous => document.querySelector('form.vote-form input[name=item]')?.value !== previous", arg=first_item
        )
        demonstration = Demonstration.objects.get()
        assert demonstration.comparison_id == first.pk and demonstration.annotator_id == annotator.pk
        assert demonstration.text == "Overfitting is fitting noise in the training data,\nso held-out error rises."
        assert Vote.objects.get().comparison_id == first.pk
        # The next item's box is empty and collapsed again.
        shown = page.locator("form.vote-form input[name=item]").get_attribute("value")
        assert shown == second.assignments.get().token
        assert page.get_by_test_id("demonstration").input_value() == "" and not page.get_by_test_id("demonstration").is_visible()
        tab.assert_no_errors()
    finally:
        tab.page.context.close()

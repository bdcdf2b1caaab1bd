"""Dataset snapshots: files on disk, lineage rows, the interface and manage.py snapshot_create."""
from __future__ import annotations

import hashlib
import io
import json
import re
from pathlib import Path

import pytest
from django.core.exceptions import ValidationError
from django.core.management import CommandError, call_command
from django.db.models import ProtectedError

from feedback import interface, snapshots
from feedback.interface import SnapshotRef
from feedback.models import DatasetSnapshot, SnapshotVote, Vote
from feedback.preferences import AggregationRules, build_preference_dataset
from tests.factories import ComparisonFactory, PromptFactory, UserFactory, VoteFactory

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def arbiter_data(settings, tmp_path) -> Path:
    settings.ARBITER_DATA_DIR = tmp_path
    return tmp_path


@pytest.fixture
def annotators():
    return [UserFactory(role="annotator") for _ in range(3)]


def votes_on(comparison, choices, annotators, **fields) -> list[Vote]:
    """One vote per (choice, annotator); a choice may be ``"a:strong"`` to give a strength."""
    made = []
    for spec, annotator in zip(choices, annotators):
        choice, _, strength = spec.partition(":")
        made.append(VoteFactory(comparison=comparison, annotator=annotator, choice=choice, strength=strength, **fields))
    return made


def read_rows(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def snapshot_dirs(arbiter_data: Path) -> list[str]:
    root = arbiter_data / "snapshots"
    return sorted(p.name for p in root.iterdir()) if root.exists() else []


@pytest.fixture
def voted(annotators):
    """Three comparisons: A wins 2-1, a tie, and B wins on an eval prompt; plus a gold one won by A."""
    won = ComparisonFactory()
    tie = ComparisonFactory()
    held_out = ComparisonFactory(prompt=PromptFactory(split="eval"))
    gold = ComparisonFactory(gold_choice="a")
    return {
        "won": (won, votes_on(won, ["a:strong", "a:clear", "b:slight"], annotators)),
        "tie": (tie, votes_on(tie, ["tie", "tie"], annotators)),
        "held_out": (held_out, votes_on(held_out, ["b:slight"], annotators)),
        "gold": (gold, votes_on(gold, ["a"], annotators[2:])),
    }


# --- snapshot_create ------------------------------------------------------------------------------


def test_files_hold_exactly_the_rows_and_the_hash_matches(voted, arbiter_data):
    snapshot = snapshots.snapshot_create(rules={})
    assert re.fullmatch(rf"snapshots/{snapshot.pk}-\w+", snapshot.files_dir)
    train_path, eval_path = snapshots.snapshot_paths(snapshot)
    assert train_path == arbiter_data / snapshot.files_dir / "train.jsonl"
    train, eval_rows = read_rows(train_path), read_rows(eval_path)

    won, won_votes = voted["won"]
    gold, _ = voted["gold"]
    held_out, _ = voted["held_out"]
    assert train == [
        {
            "prompt": won.prompt.messages,
            "chosen": [{"role": "assistant", "content": won.completion_a.text}],
            "rejected": [{"role": "assistant", "content": won.completion_b.text}],
            "margin": pytest.approx((1.0 + 2 / 3) / 2),
            "strength": "clear",  # strong and clear once each: the weaker
            "comparison_id": won.pk,
        },
        {
            "prompt": gold.prompt.messages,
            "chosen": [{"role": "assistant", "content": gold.completion_a.text}],
            "rejected": [{"role": "assistant", "content": gold.completion_b.text}],
            "margin": 0.0,
            "strength": "",
            "comparison_id": gold.pk,
        },
    ]
    assert [row["comparison_id"] for row in eval_rows] == [held_out.pk]
    assert eval_rows[0]["chosen"][0]["content"] == held_out.completion_b.text

    raw = b"train\n" + train_path.read_bytes() + b"eval\n" + eval_path.read_bytes()
    assert snapshot.content_hash == hashlib.sha256(raw).hexdigest()
    assert (snapshot.train_rows, snapshot.eval_rows, snapshot.annotator_count) == (2, 1, 3)
    assert snapshot.counts["ties"] == 1 and snapshot.counts["votes_seen"] == 7
    assert snapshot.rules == AggregationRules().as_dict()
    assert snapshots.snapshot_verify(snapshot_id=snapshot.pk)
    assert [p.name for p in (arbiter_data / "snapshots").iterdir()] == [snapshot.files_dir.split("/")[-1]]  # no staging left


def test_files_match_the_pure_builder_on_the_same_votes(voted):
    # Factory prompt texts depend on test order; pick a salt that leaves some pairs to train on.
    for salt in map(str, range(100)):
        rules = {"split_by": "hash", "eval_fraction": 0.5, "include_margin": False, "split_salt": salt}
        expected = build_preference_dataset(snapshots.vote_records(), AggregationRules.from_dict(rules))
        if expected.train:
            break
    snapshot = snapshots.snapshot_create(rules=rules)
    train_path, eval_path = snapshots.snapshot_paths(snapshot)
    assert read_rows(train_path) == expected.train and read_rows(eval_path) == expected.eval
    assert snapshot.content_hash == expected.content_hash
    assert all("margin" not in row for row in expected.train + expected.eval)


def test_snapshot_votes_are_the_used_votes(voted):
    snapshot = snapshots.snapshot_create(rules={"include_gold": False})
    used = set(SnapshotVote.objects.filter(snapshot=snapshot).values_list("vote_id", flat=True))
    expected = {v.pk for key in ("won", "held_out") for v in voted[key][1]}  # the dissenting vote included
    assert used == expected
    assert set(snapshot.votes.values_list("id", flat=True)) == expected
    assert snapshot.counts["votes_excluded_gold"] == 1


def test_a_vote_used_by_a_snapshot_cannot_be_deleted(voted):
    snapshots.snapshot_create(rules={})
    used = voted["won"][1][0]
    with pytest.raises(ProtectedError):
        used.delete()
    unused = voted["tie"][1][0]
    unused.delete()
    assert not Vote.objects.filter(pk=unused.pk).exists()


def test_no_training_pairs_is_refused_and_leaves_nothing(annotators, arbiter_data):
    tie = ComparisonFactory()
    votes_on(tie, ["tie", "a"], annotators)
    with pytest.raises(ValidationError) as caught:
        snapshots.snapshot_create(rules={})
    assert caught.value.message_dict == {
        "snapshot": ["the votes give no training pairs: of 1 comparison, 1 has split votes"]
    }
    assert not DatasetSnapshot.objects.exists()
    assert snapshot_dirs(arbiter_data) == []


def test_no_training_pairs_says_why_in_words_with_the_counts(annotators, arbiter_data):
    for choices in (["a", "b"], ["tie", "b"], ["tie", "tie"]):  # two split, one tie
        votes_on(ComparisonFactory(), choices, annotators)
    with pytest.raises(ValidationError) as caught:
        snapshots.snapshot_create(rules={})
    assert caught.value.message_dict["snapshot"] == [
        "the votes give no training pairs: of 3 comparisons, 2 have split votes and 1 is a tie"
    ]


@pytest.mark.parametrize(("counts", "rules", "words"), [
    ({"votes_seen": 4, "votes_excluded_gold": 3, "votes_excluded_annotator": 1}, {"include_gold": False},
     "all 4 votes are left out: 3 on gold items (include_gold is off) and 1 by excluded annotators"),
    ({"votes_seen": 7, "comparisons": 4, "both_bad": 1, "too_few_votes": 2, "pairs_eval": 1, "votes_excluded_annotator": 1},
     {"min_votes": 2}, "of 4 comparisons, 1 is judged both bad, 2 have fewer than 2 votes and 1 is an eval pair "
                       "(its prompt is in the eval split); 1 more vote was left out: 1 by excluded annotators"),
    ({"votes_seen": 2, "comparisons": 2, "identical": 1, "low_agreement": 1}, {"min_agreement": 0.75},
     "of 2 comparisons, 1 has agreement below 0.75 and 1 has two identical responses"),
    ({}, {}, "no votes"),
])
def test_the_no_pairs_reason_names_each_cause(counts, rules, words):
    from feedback.preferences import AggregationRules

    assert snapshots.no_pairs_reason(counts, AggregationRules.from_dict(rules)) == words


def test_no_votes_at_all_is_refused():
    with pytest.raises(ValidationError, match="no training pairs: no votes"):
        snapshots.snapshot_create(rules=None)


def test_bad_rules_name_the_field(voted, arbiter_data):
    with pytest.raises(ValidationError) as caught:
        snapshots.snapshot_create(rules={"min_votes": 0, "colour": "red"})
    messages = caught.value.message_dict["rules"]
    assert "min_votes: must be a whole number of at least 1" in messages
    assert any(m.startswith("colour: unknown rule") for m in messages)
    assert not DatasetSnapshot.objects.exists() and snapshot_dirs(arbiter_data) == []


def test_a_failing_transaction_leaves_no_folder_and_no_row(voted, arbiter_data, monkeypatch):
    def broken_bulk_create(*args, **kwargs):
        raise RuntimeError("database went away")

    monkeypatch.setattr(SnapshotVote.objects, "bulk_create", broken_bulk_create)
    with pytest.raises(RuntimeError, match="database went away"):
        snapshots.snapshot_create(rules={})
    assert not DatasetSnapshot.objects.exists()
    assert snapshot_dirs(arbiter_data) == []


def test_a_failure_after_the_rename_removes_the_final_folder(voted, arbiter_data, monkeypatch):
    def broken_fsync(path):
        raise OSError("disk full")

    monkeypatch.setattr(snapshots, "_directory_fsync", broken_fsync)
    with pytest.raises(OSError, match="disk full"):
        snapshots.snapshot_create(rules={})
    assert not DatasetSnapshot.objects.exists() and not SnapshotVote.objects.exists()
    assert snapshot_dirs(arbiter_data) == []


def test_verify_notices_a_changed_or_missing_file(voted):
    snapshot = snapshots.snapshot_create(rules={})
    train_path, eval_path = snapshots.snapshot_paths(snapshot)
    assert snapshots.snapshot_verify(snapshot_id=snapshot.pk)
    edited = train_path.read_text(encoding="utf-8").replace('"strength":"clear"', '"strength":"strong"')
    assert edited != train_path.read_text(encoding="utf-8")
    train_path.write_text(edited, encoding="utf-8")
    assert not snapshots.snapshot_verify(snapshot_id=snapshot.pk)
    eval_path.unlink()
    assert not snapshots.snapshot_verify(snapshot_id=snapshot.pk)


# --- interface ------------------------------------------------------------------------------------


def test_interface_create_and_get_give_a_plain_ref(voted, annotators):
    ref = interface.snapshot_create(rules={"min_votes": 2}, created_by=annotators[0])
    assert isinstance(ref, SnapshotRef)
    assert ref.train_path.is_absolute() and ref.train_path.is_file() and ref.eval_path.is_file()
    assert (ref.train_rows, ref.eval_rows, ref.vote_count, ref.annotator_count) == (1, 0, 3, 3)
    assert ref.rules["min_votes"] == 2 and ref.counts["too_few_votes"] == 2
    assert DatasetSnapshot.objects.get(pk=ref.id).created_by == annotators[0]
    assert interface.snapshot_get(snapshot_id=ref.id) == ref
    assert interface.snapshot_verify(snapshot_id=ref.id)


def test_interface_get_of_a_missing_snapshot_names_the_id():
    with pytest.raises(LookupError, match="no dataset snapshot with id 4242"):
        interface.snapshot_get(snapshot_id=4242)
    with pytest.raises(LookupError, match="4242"):
        interface.snapshot_votes_summary(snapshot_id=4242)
    with pytest.raises(LookupError, match="4242"):
        interface.snapshot_verify(snapshot_id=4242)


def test_votes_summary_counts_votes_annotators_and_sources(annotators):
    imported = ComparisonFactory()
    votes_on(imported, ["a"], annotators, source="hh-rlhf")
    ours = ComparisonFactory()
    votes_on(ours, ["b", "b"], annotators[1:])
    ref = interface.snapshot_create(rules={})
    assert interface.snapshot_votes_summary(snapshot_id=ref.id) == {
        "vote_count": 3,
        "annotator_count": 3,
        "sources": {"annotator": 2, "hh-rlhf": 1},
    }
    only_imported = interface.snapshot_create(rules={"sources": ["hh-rlhf"]})
    assert interface.snapshot_votes_summary(snapshot_id=only_imported.id)["sources"] == {"hh-rlhf": 1}


# --- manage.py snapshot_create --------------------------------------------------------------------


def run_command(*args) -> str:
    out = io.StringIO()
    call_command("snapshot_create", *args, stdout=out)
    return out.getvalue()


def command_error(*args) -> str:
    with pytest.raises(CommandError) as caught:
        call_command("snapshot_create", *args, stdout=io.StringIO())
    message = str(caught.value)
    assert message.strip() and "\n" not in message, message
    return message


def test_command_prints_the_id_rows_and_counts(voted):
    output = run_command()
    snapshot = DatasetSnapshot.objects.get()
    assert output.splitlines() == [
        f"snapshot {snapshot.pk}: 2 train rows, 1 eval rows, 3 annotators, hash {snapshot.content_hash}",
        f"files: {snapshot.files_dir}",
        "counts: votes_seen=7, comparisons=4, pairs_train=2, pairs_eval=1, ties=1",
    ]


def test_command_flags_become_rules(voted, annotators):
    output = run_command(
        "--rules", '{"min_agreement": 0.5}', "--exclude-annotator", annotators[2].username, "--no-gold", "--no-margin"
    )
    snapshot = DatasetSnapshot.objects.get()
    assert snapshot.rules["exclude_annotators"] == [annotators[2].pk]
    assert snapshot.rules["include_gold"] is False and snapshot.rules["include_margin"] is False
    assert snapshot.rules["min_agreement"] == 0.5
    assert "votes_excluded_annotator=1" in output and "votes_excluded_gold=1" in output


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["--rules", "{min_votes: 2}"], "--rules is not valid JSON: "),
        (["--rules", "[1]"], "--rules must be a JSON object"),
        (["--rules", '{"min_votes": -1}'], "rules: min_votes: must be a whole number of at least 1"),
        (["--exclude-annotator", "nobody"], "no such annotator: nobody"),
    ],
)
def test_command_bad_input_is_one_readable_line(voted, args, expected):
    assert command_error(*args).startswith(expected)
    assert not DatasetSnapshot.objects.exists()


def test_command_with_no_pairs_says_why():
    assert command_error() == "snapshot: the votes give no training pairs: no votes"

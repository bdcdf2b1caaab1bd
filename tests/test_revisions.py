"""Undo and revise of an annotator's own vote (feedback.revisions): allowed while the comparison
is open, refused once closed, audited, counted consistently; snapshots keep the frozen vote and
exports use the current one."""
from __future__ import annotations

import json
from datetime import timedelta

import pytest
from django.core.exceptions import ValidationError
from django.utils import timezone

from feedback import revisions, selectors, services
from feedback.errors import ComparisonClosed, NotAssigned, VoteNotFound
from feedback.exports.services import export_request_check, export_write
from feedback.models import (
    Assignment,
    AssignmentStatus,
    Comparison,
    ComparisonStatus,
    Demonstration,
    SnapshotVote,
    Vote,
    VoteChange,
)
from feedback.snapshots import snapshot_create, snapshot_paths, snapshot_verify, snapshot_votes_summary
from tests.factories import ComparisonFactory, UserFactory, VoteFactory

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def arbiter_data(settings, tmp_path):
    settings.ARBITER_DATA_DIR = tmp_path
    return tmp_path


def served_vote(annotator, comparison, screen_choice="left", **fields) -> tuple[Vote, Assignment]:
    """``annotator`` is served ``comparison`` (the only one open) and votes on it."""
    assignment = services.assignment_claim(annotator=annotator)
    assert assignment.comparison_id == comparison.pk
    vote, _ = services.vote_submit(annotator=annotator, item=assignment.token, choice=screen_choice, **fields)
    return vote, assignment


def left_text(assignment) -> str:
    display = selectors.assignment_display(assignment=assignment)
    return display.left.text


@pytest.fixture
def open_pair():
    return ComparisonFactory(votes_required=2)


def test_undo_deletes_the_vote_audits_it_and_serves_the_item_again_with_its_side(annotator, open_pair):
    vote, assignment = served_vote(annotator, open_pair, "right", strength="strong", rationale="clearer")
    shown_left = assignment.shown_left
    undone = revisions.vote_undo(annotator=annotator, vote_id=vote.pk)
    assert not Vote.objects.filter(pk=vote.pk).exists()
    open_pair.refresh_from_db()
    assert (open_pair.vote_count, open_pair.status) == (0, ComparisonStatus.OPEN)
    change = VoteChange.objects.get()
    assert (change.action, change.vote_ref, change.annotator, change.after) == ("undo", vote.pk, annotator, None)
    assert change.before["choice"] == vote.choice and change.before["strength"] == "strong"
    assert undone.inputs["choice"] == "right" and undone.inputs["rationale"] == "clearer"
    again = services.assignment_claim(annotator=annotator)
    assert again.pk == assignment.pk and again.status == AssignmentStatus.LEASED
    assert again.shown_left == shown_left and again.token != assignment.token  # old page's token is dead
    revote, created = services.vote_submit(annotator=annotator, item=again.token, choice="left")
    assert created and revote.choice == shown_left
    open_pair.refresh_from_db()
    assert open_pair.vote_count == 1


def test_undo_brings_the_item_back_before_the_one_the_annotator_moved_on_to(annotator):
    first = ComparisonFactory(votes_required=2, priority=5)
    second = ComparisonFactory(votes_required=2)
    vote, _ = served_vote(annotator, first)
    moved_on = services.assignment_claim(annotator=annotator)
    assert moved_on.comparison_id == second.pk
    revisions.vote_undo(annotator=annotator, vote_id=vote.pk)
    assert services.assignment_claim(annotator=annotator).comparison_id == first.pk
    services.vote_submit(annotator=annotator, comparison_id=first.pk, choice="tie")
    assert services.assignment_claim(annotator=annotator).pk == moved_on.pk  # renewed, not duplicated


def test_undo_withdraws_the_demonstration_written_with_the_vote(annotator, open_pair):
    vote, _ = served_vote(annotator, open_pair, demonstration="A better answer.")
    undone = revisions.vote_undo(annotator=annotator, vote_id=vote.pk)
    assert not Demonstration.objects.exists()
    assert undone.inputs["demonstration"] == "A better answer."
    assert VoteChange.objects.get().before["demonstration"] == "A better answer."


def test_undo_lowers_the_loops_new_vote_count(annotator, open_pair):
    from feedback.interface import vote_count_after

    vote, _ = served_vote(annotator, open_pair)
    assert vote_count_after(vote_id=0) == 1
    revisions.vote_undo(annotator=annotator, vote_id=vote.pk)
    assert vote_count_after(vote_id=0) == 0


def test_revise_changes_the_vote_in_screen_terms_and_audits_before_and_after(annotator, open_pair):
    vote, assignment = served_vote(annotator, open_pair, "left", strength="clear", aspects={"helpfulness": "left"})
    shown_left = assignment.shown_left
    other = "b" if shown_left == "a" else "a"
    revised, change = revisions.vote_revise(annotator=annotator, vote_id=vote.pk, changes={"choice": "right"})
    assert revised.pk == vote.pk and revised.choice == other and revised.strength == "clear"
    assert revised.helpfulness == shown_left  # fields not named keep their value
    assert change.action == "revise" and change.before["choice"] == shown_left and change.after["choice"] == other
    open_pair.refresh_from_db()
    assert open_pair.vote_count == 1  # a revision is not a new vote
    tied, _ = revisions.vote_revise(annotator=annotator, vote_id=vote.pk, changes={"choice": "tie"})
    assert (tied.choice, tied.strength) == ("tie", "")  # a tie has no strength
    assert VoteChange.objects.count() == 2


def test_revise_to_the_same_values_writes_nothing(annotator, open_pair):
    vote, _ = served_vote(annotator, open_pair, "left")
    _, change = revisions.vote_revise(annotator=annotator, vote_id=vote.pk, changes={"choice": "left"})
    assert change is None and not VoteChange.objects.exists()


def test_revise_refuses_bad_values_and_unknown_fields(annotator, open_pair):
    vote, _ = served_vote(annotator, open_pair, "left")
    with pytest.raises(ValidationError) as bad:
        revisions.vote_revise(annotator=annotator, vote_id=vote.pk, changes={"choice": "middle"})
    assert "choice" in bad.value.message_dict
    with pytest.raises(ValidationError) as unknown:
        revisions.vote_revise(annotator=annotator, vote_id=vote.pk, changes={"comparison": 3})
    assert "comparison" in unknown.value.message_dict
    with pytest.raises(ValidationError):
        revisions.vote_revise(annotator=annotator, vote_id=vote.pk, changes={"choice": "tie", "strength": "strong"})
    assert not VoteChange.objects.exists()


def test_undo_reopens_a_complete_comparison_and_a_retired_one_refuses_changes(annotator, other_annotator):
    comparison = ComparisonFactory(votes_required=1)
    vote, _ = served_vote(annotator, comparison)
    comparison.refresh_from_db()
    assert comparison.status == ComparisonStatus.COMPLETE
    revisions.vote_undo(annotator=annotator, vote_id=vote.pk)  # the default one-vote comparison: undo works
    comparison.refresh_from_db()
    assert (comparison.status, comparison.vote_count) == (ComparisonStatus.OPEN, 0)
    assert services.assignment_claim(annotator=other_annotator) is None  # the slot is still the undoer's
    lease = services.assignment_claim(annotator=annotator)
    assert lease.comparison_id == comparison.pk
    services.vote_submit(annotator=annotator, item=lease.token, choice="right")
    VoteChange.objects.all().delete()
    retired = ComparisonFactory(votes_required=3)
    retired_vote, _ = served_vote(annotator, retired)
    services.comparison_retire(comparison=retired)
    with pytest.raises(ComparisonClosed, match="retired"):
        revisions.vote_revise(annotator=annotator, vote_id=retired_vote.pk, changes={"choice": "tie"})
    assert Vote.objects.count() == 2 and not VoteChange.objects.exists()


def test_only_the_annotators_own_served_votes_can_change(annotator, other_annotator, open_pair):
    vote, _ = served_vote(annotator, open_pair)
    with pytest.raises(VoteNotFound):
        revisions.vote_undo(annotator=other_annotator, vote_id=vote.pk)
    with pytest.raises(VoteNotFound):
        revisions.vote_revise(annotator=annotator, vote_id=vote.pk + 1000, changes={"choice": "tie"})
    imported = VoteFactory(comparison=ComparisonFactory(votes_required=5), annotator=annotator, shown_left="")
    with pytest.raises(NotAssigned):
        revisions.vote_undo(annotator=annotator, vote_id=imported.pk)


def test_a_snapshot_keeps_the_vote_as_frozen_after_a_revision_and_an_undo(annotator, other_annotator, open_pair):
    vote, assignment = served_vote(annotator, open_pair, "left", strength="strong")
    chosen_text = left_text(assignment)
    snapshot = snapshot_create(rules={})
    train_path, eval_path = snapshot_paths(snapshot)
    files_before = train_path.read_bytes() + eval_path.read_bytes()
    revisions.vote_revise(annotator=annotator, vote_id=vote.pk, changes={"choice": "right"})
    link = SnapshotVote.objects.get(snapshot=snapshot)
    assert link.vote_id == vote.pk and link.frozen["choice"] == vote.choice and link.frozen["strength"] == "strong"
    assert snapshot_verify(snapshot_id=snapshot.pk)
    assert train_path.read_bytes() + eval_path.read_bytes() == files_before
    row = json.loads((train_path.read_text() or eval_path.read_text()).splitlines()[0])
    assert row["chosen"][-1]["content"] == chosen_text

    revisions.vote_undo(annotator=annotator, vote_id=vote.pk)
    link.refresh_from_db()
    assert (link.vote_id, link.vote_ref, link.frozen["choice"]) == (None, vote.pk, vote.choice)
    assert snapshot_verify(snapshot_id=snapshot.pk)
    summary = snapshot_votes_summary(snapshot_id=snapshot.pk)
    assert summary == {"vote_count": 1, "annotator_count": 1, "sources": {"annotator": 1}}


def test_exports_use_the_current_vote(annotator, open_pair, tmp_path):
    vote, assignment = served_vote(annotator, open_pair, "left")
    left = left_text(assignment)
    revisions.vote_revise(annotator=annotator, vote_id=vote.pk, changes={"choice": "right"})
    request = export_request_check(format="trl-preference", file_type="jsonl", filters=None, options=None)
    path = tmp_path / "out.jsonl"
    export_write(request=request, path=path)
    (row,) = [json.loads(line) for line in path.read_text().splitlines()]
    assert row["rejected"][-1]["content"] == left and row["chosen"][-1]["content"] != left


def test_history_shows_the_votes_newest_first_in_the_annotators_screen_terms(annotator):
    first = ComparisonFactory(votes_required=2, priority=5)
    ComparisonFactory(votes_required=1)
    vote_one, assignment_one = served_vote(annotator, first, "left")
    second_assignment = services.assignment_claim(annotator=annotator)
    services.vote_submit(annotator=annotator, item=second_assignment.token, choice="right",
                         now=timezone.now() + timedelta(seconds=1))
    history = selectors.vote_history(annotator=annotator)
    assert [entry.vote.comparison_id for entry in history] == [second_assignment.comparison_id, first.pk]
    assert [entry.choice for entry in history] == ["right", "left"]
    assert history[1].left.text == left_text(assignment_one)
    assert [entry.changeable for entry in history] == [True, True]  # complete: an undo would reopen it
    assert selectors.vote_last_undoable(annotator=annotator).pk == history[0].vote.pk
    services.comparison_retire(comparison=Comparison.objects.get(pk=second_assignment.comparison_id))
    assert [entry.changeable for entry in selectors.vote_history(annotator=annotator)] == [False, True]
    assert selectors.vote_history(annotator=UserFactory(role="annotator")) == []


def test_a_revision_during_the_build_leaves_the_snapshot_frozen_as_built(annotator, open_pair, monkeypatch):
    from feedback import snapshots

    vote, _ = served_vote(annotator, open_pair, "left", strength="strong")
    build = snapshots.build_preference_dataset

    def build_then_revise(records, rules, **options):
        dataset = build(records, rules, **options)
        revisions.vote_revise(annotator=annotator, vote_id=vote.pk, changes={"choice": "right"})
        return dataset

    monkeypatch.setattr(snapshots, "build_preference_dataset", build_then_revise)
    snapshot = snapshot_create(rules={})
    frozen = SnapshotVote.objects.get(snapshot=snapshot).frozen
    assert (frozen["choice"], frozen["strength"]) == (vote.choice, "strong")
    assert Vote.objects.get().choice != vote.choice


def test_an_undo_during_the_build_refuses_the_snapshot(annotator, open_pair, monkeypatch, arbiter_data):
    from feedback import snapshots

    vote, _ = served_vote(annotator, open_pair, "left")
    build = snapshots.build_preference_dataset

    def build_then_undo(records, rules, **options):
        dataset = build(records, rules, **options)
        revisions.vote_undo(annotator=annotator, vote_id=vote.pk)
        return dataset

    monkeypatch.setattr(snapshots, "build_preference_dataset", build_then_undo)
    with pytest.raises(ValidationError, match="withdrawn while the snapshot was built"):
        snapshot_create(rules={})
    assert not SnapshotVote.objects.exists()
    assert not [p for p in (arbiter_data / "snapshots").iterdir()]

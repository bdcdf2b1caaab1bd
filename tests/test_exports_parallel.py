"""Exports written by several processes, and tallies counted by the database.

A parallel export must be the same file as a one-process export (bytes for JSONL and CSV, rows and
order for Parquet), with the same counts; a failing or dying worker fails the export and leaves
nothing; the database's packed tallies must decide every comparison as the votes themselves do.
The worker processes are forked, so these tests use committed data (``transactional_db``).
"""
from __future__ import annotations

import os
import random
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from django.db import transaction

from feedback.exports import parallel, services
from feedback.exports.filters import ExportFilters
from feedback.exports.formats import tally_of
from feedback.exports.services import export_create, export_request_check, export_write
from feedback.exports.stream import TALLY_PACKED_MAX_VOTES, comparison_groups
from feedback.models import ExportStatus, Vote
from feedback.preferences import comparison_verdict
from tests.export_fixtures import _comparison, _vote, assistant, day, export_world, jsonl_rows
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db(transaction=True)

SALT = b"s" * 32
CASES = [("trl-preference", "jsonl"), ("raw-votes", "csv"), ("arena", "parquet"), ("trl-unpaired", "parquet"),
         ("hh-rlhf", "jsonl")]


def many_votes(comparisons: int = 40, annotators: int = 5, seed: int = 7):
    """``comparisons`` comparisons with 1-5 random votes each (every choice and strength)."""
    rng = random.Random(seed)
    users = [UserFactory(username=f"rater-{k}", role="annotator") for k in range(annotators)]
    for i in range(comparisons):
        comparison = _comparison(question=f"Q{i}?", a=("m-1", f"A{i}."), b=("m-2", f"B{i}."),
                                 split="eval" if i % 5 == 0 else "train")
        for user in rng.sample(users, rng.randint(1, annotators)):
            choice = rng.choice(["a", "b", "a", "b", "tie", "both_bad"])
            strength = rng.choice(["", "slight", "clear", "strong"]) if choice in ("a", "b") else ""
            _vote(comparison, user, choice, strength=strength, when=day("2025-03-01T00:00"), shown_left="a")


def export(tmp_path: Path, fmt: str, file_type: str, workers: int):
    request = export_request_check(format=fmt, file_type=file_type)
    path = tmp_path / f"{fmt}-{workers}.{file_type}"
    result, counts = export_write(request=request, path=path, salt=SALT, workers=workers)
    return path, result, counts


@pytest.mark.parametrize("fmt,file_type", CASES)
def test_a_parallel_export_is_the_same_file_as_a_one_process_export(tmp_path, fmt, file_type):
    export_world()
    many_votes()
    one, one_result, one_counts = export(tmp_path, fmt, file_type, workers=1)
    three, three_result, three_counts = export(tmp_path, fmt, file_type, workers=3)
    assert three_counts == one_counts and three_result.rows == one_result.rows > 10
    if file_type == "parquet":
        assert pq.read_table(three).to_pylist() == pq.read_table(one).to_pylist()
    else:
        assert three.read_bytes() == one.read_bytes() and three_result.checksum == one_result.checksum
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([one.name, three.name])  # no parts left behind


def test_vote_ranges_are_disjoint_ordered_cover_every_voted_comparison_and_split_the_votes(db):
    many_votes(comparisons=60)
    voted = sorted(set(Vote.objects.values_list("comparison_id", flat=True)))
    ranges = parallel.vote_ranges(filters=ExportFilters(), max_vote_id=None, parts=4)
    assert len(ranges) == 4
    assert ranges[0][0] == voted[0] and ranges[-1][1] == voted[-1]
    assert all(first <= last for first, last in ranges)
    assert all(ranges[k][1] + 1 == ranges[k + 1][0] for k in range(3))  # contiguous, no gaps or overlaps
    per_range = [Vote.objects.filter(comparison_id__gte=f, comparison_id__lte=l).count() for f, l in ranges]
    assert sum(per_range) == Vote.objects.count()
    assert max(per_range) - min(per_range) <= 12  # about a quarter each (a comparison has up to 5 votes)
    assert parallel.vote_ranges(filters=ExportFilters(), max_vote_id=0, parts=4) == []
    assert len(parallel.vote_ranges(filters=ExportFilters(), max_vote_id=None, parts=1000)) <= len(voted)


def test_a_failing_worker_fails_the_export_and_leaves_nothing(tmp_path, monkeypatch):
    many_votes()
    real = services.export_write_unpublished

    def second_range_fails(**kwargs):
        if kwargs["id_range"][0] > 1:
            raise OSError("disk full")
        return real(**kwargs)

    monkeypatch.setattr(services, "export_write_unpublished", second_range_fails)
    request = export_request_check(format="trl-preference", file_type="jsonl")
    with pytest.raises(RuntimeError, match=r"export worker \d failed: OSError: disk full"):
        export_write(request=request, path=tmp_path / "out.jsonl", workers=3)
    assert list(tmp_path.iterdir()) == []


def test_a_worker_that_dies_fails_the_export_and_leaves_nothing(tmp_path, monkeypatch):
    many_votes()
    monkeypatch.setattr(services, "export_write_unpublished", lambda **kwargs: os._exit(9))
    request = export_request_check(format="trl-preference", file_type="parquet")
    with pytest.raises(RuntimeError, match=r"export worker \d died \(exit code 9\)"):
        export_write(request=request, path=tmp_path / "out.parquet", workers=2)
    assert list(tmp_path.iterdir()) == []


def test_inside_a_transaction_or_for_a_datasets_folder_one_process_writes_it(tmp_path):
    many_votes()
    with transaction.atomic():
        assert not parallel.can_split("jsonl")
        path, result, _ = export(tmp_path, "trl-preference", "jsonl", workers=4)
        assert result.rows > 0 and path.is_file()
    assert parallel.can_split("parquet") and not parallel.can_split("hf-dataset")


def test_a_large_export_job_uses_the_workers_and_reports_progress_to_the_total(settings, tmp_path):
    settings.ARBITER_DATA_DIR = tmp_path / "data"
    settings.ARBITER_EXPORT_PARALLEL_MIN_VOTES, settings.ARBITER_EXPORT_WORKERS = 1, 3
    many_votes()
    seen = []
    exported = export_create(format="trl-preference", file_type="jsonl", mode="inline",
                             progress=lambda votes, rows: seen.append((votes, rows)))
    assert exported.status == ExportStatus.SUCCEEDED, exported.error
    one, one_result, _ = export(tmp_path, "trl-preference", "jsonl", workers=1)
    assert exported.row_count == one_result.rows and exported.checksum == one_result.checksum
    assert seen[-1] == (Vote.objects.count(), one_result.rows)
    assert exported.votes_read == Vote.objects.count()


def test_the_database_tally_decides_every_comparison_as_its_votes_do(db):
    export_world()
    many_votes(comparisons=80, seed=3)
    by_votes = {g.comparison_id: g for g in comparison_groups(filters=ExportFilters(), vote_details=True)}
    by_tally = {g.comparison_id: g for g in comparison_groups(filters=ExportFilters(), vote_details=False)}
    assert by_tally.keys() == by_votes.keys() and len(by_tally) == 86
    for pk, group in by_votes.items():
        assert by_tally[pk].votes == []
        assert by_tally[pk].tally == group.tally == tally_of((v.choice, v.strength) for v in group.votes)
        assert (by_tally[pk].comparison_id, by_tally[pk].split, by_tally[pk].text_a) == (pk, group.split, group.text_a)


def test_a_comparison_with_more_votes_than_a_packed_tally_holds_is_counted_exactly(tmp_path):
    comparison = _comparison(question="Crowded?", a=("m-1", "Yes."), b=("m-2", "No."))
    users = [UserFactory(username=f"crowd-{k}", role="annotator") for k in range(TALLY_PACKED_MAX_VOTES + 6)]
    votes = [("a", "strong")] * (TALLY_PACKED_MAX_VOTES + 1) + [("b", "slight")] * 5  # 64 a-strong: overflows 6 bits
    for user, (choice, strength) in zip(users, votes):
        _vote(comparison, user, choice, strength=strength, when=day("2025-03-01T00:00"))
    (group,) = comparison_groups(filters=ExportFilters())
    assert dict(group.tally) == {("a", "strong"): TALLY_PACKED_MAX_VOTES + 1, ("b", "slight"): 5}
    path, result, counts = export(tmp_path, "trl-preference", "jsonl", workers=1)
    (row,) = jsonl_rows(path)
    assert row["chosen"] == assistant("Yes.") and row["margin"] == comparison_verdict(votes).margin == 1.0
    assert counts["votes_read"] == len(votes)

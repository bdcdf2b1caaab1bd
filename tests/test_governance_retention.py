"""``manage.py retention_enforce`` (issue 18 item 6): each policy's retention period applied to the
prompts, completions, votes and demonstrations it governs, reported per policy, audited, and
idempotent (a second run does nothing and says so); ``--dry-run`` changes nothing."""
from __future__ import annotations

import io
from datetime import timedelta

import pytest
from django.core.management import call_command
from django.utils import timezone

from feedback import snapshots
from feedback.governance.models import AuditEvent, DataPolicy, SnapshotDeletedData
from feedback.models import Demonstration, Vote
from tests.factories import ComparisonFactory, PromptFactory, UserFactory, VoteFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def world(settings, tmp_path):
    """Source "vendor" (30-day retention): two old votes, an old demonstration and a new vote;
    source "own" (no retention): an old vote."""
    settings.ARBITER_DATA_DIR = tmp_path
    annotator = UserFactory(role="annotator")
    old = timezone.now() - timedelta(days=40)
    votes = {}
    for name, source, age in (("old1", "vendor", old), ("old2", "vendor", old), ("new", "vendor", None), ("own", "own", old)):
        votes[name] = VoteFactory(comparison=ComparisonFactory(prompt=PromptFactory(source=source)), annotator=annotator,
                                  choice="a", rationale=f"why {name}")
        if age:
            Vote.objects.filter(pk=votes[name].pk).update(created_at=age)
    demo = Demonstration.objects.create(prompt=votes["old1"].comparison.prompt, text="old vendor answer", source="import")
    Demonstration.objects.filter(pk=demo.pk).update(created_at=old)
    DataPolicy.objects.create(source="vendor", retention_days=30, basis="contract 12, 30 days")
    DataPolicy.objects.create(source="own", basis="ours")
    return votes


def run(*args) -> str:
    out = io.StringIO()
    call_command("retention_enforce", *args, stdout=out)
    return out.getvalue()


def test_a_dry_run_reports_and_changes_nothing(world):
    report = run("--dry-run")
    assert "dry run, nothing deleted" in report
    assert 'source "vendor": would delete 0 prompts, 0 completions, 0 comparisons, 2 votes, 1 demonstrations' in report
    assert Vote.objects.count() == 4 and Demonstration.objects.count() == 1
    assert not AuditEvent.objects.filter(action="deletion").exists()


def test_old_rows_are_deleted_once_and_a_second_run_does_nothing(world, django_capture_on_commit_callbacks):
    snapshot = snapshots.snapshot_create(rules={})
    with django_capture_on_commit_callbacks(execute=True):
        first = run()
    assert 'source "vendor": deleted 0 prompts, 0 completions, 0 comparisons, 2 votes, 1 demonstrations, 0 vote changes; 1 snapshots marked' in first
    assert sorted(Vote.objects.values_list("rationale", flat=True)) == ["why new", "why own"]
    assert not Demonstration.objects.exists()
    assert SnapshotDeletedData.objects.get(snapshot=snapshot).votes_removed == 2
    event = AuditEvent.objects.get(action="deletion")
    assert event.details["kind"] == "retention" and event.details["counts"]["votes"] == 2
    assert "retention of source \"vendor\" (30 days)" in event.details["what"]
    second = run()
    assert second.strip() == "retention: nothing past its retention period; nothing deleted"
    assert Vote.objects.count() == 2 and AuditEvent.objects.filter(action="deletion").count() == 1


def test_policies_without_a_retention_period_delete_nothing(world):
    DataPolicy.objects.filter(source="vendor").update(retention_days=None)
    assert run().strip() == "retention: nothing past its retention period; nothing deleted"
    assert Vote.objects.count() == 4

"""Migration feedback 0012 on a database that already holds data: every comparison lands in the
active Default campaign (the annotators group as its pool), and nothing else changes."""
from __future__ import annotations

from datetime import timedelta

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor
from django.utils import timezone

pytestmark = [pytest.mark.django_db(transaction=True)]

BEFORE = [("feedback", "0011_import_jobs")]
VOTE_FIELDS = ("comparison_id", "annotator_id", "choice", "strength", "rationale", "helpfulness", "harmlessness",
               "honesty", "shown_left", "ms_on_item", "source", "created_at")


def _migrate(targets):
    executor = MigrationExecutor(connection)
    executor.loader.build_graph()
    executor.migrate(targets)
    return executor.loader.project_state(targets).apps


def _latest():
    executor = MigrationExecutor(connection)
    return executor.loader.graph.leaf_nodes()


def _seed(apps) -> None:
    """Two annotators, three prompts, four comparisons (open, complete, retired), votes and leases."""
    User = apps.get_model("auth", "User")
    Prompt, Completion = apps.get_model("feedback", "Prompt"), apps.get_model("feedback", "Completion")
    Comparison, Vote = apps.get_model("feedback", "Comparison"), apps.get_model("feedback", "Vote")
    Assignment = apps.get_model("feedback", "Assignment")
    ana, bo = User.objects.create(username="ana"), User.objects.create(username="bo")
    now = timezone.now()
    for index, status in enumerate(["open", "complete", "retired", "open"]):
        prompt = Prompt.objects.create(messages=[{"role": "user", "content": f"Q{index}?"}], messages_sha256=f"{index:064d}",
                                       source="hh", tags=["t"], split="train" if index % 2 else "eval")
        a = Completion.objects.create(prompt=prompt, model_name="m1", text=f"A{index}")
        b = Completion.objects.create(prompt=prompt, model_name="m2", text=f"B{index}")
        comparison = Comparison.objects.create(prompt=prompt, completion_a=a, completion_b=b, votes_required=2,
                                               vote_count=1 if index < 3 else 0, status=status, priority=index)
        if index < 3:
            Vote.objects.create(comparison=comparison, annotator=ana, choice="a" if index else "tie",
                                strength="clear" if index else "", rationale=f"because {index}", helpfulness="a",
                                shown_left="b", ms_on_item=1200 + index, source="annotator")
            Assignment.objects.create(comparison=comparison, annotator=ana, status="voted", shown_left="b",
                                      leased_at=now - timedelta(minutes=5), expires_at=now + timedelta(minutes=5),
                                      finished_at=now)
        Assignment.objects.create(comparison=comparison, annotator=bo, status="leased", shown_left="a",
                                  leased_at=now, expires_at=now + timedelta(minutes=10))


def _snapshot(apps) -> dict:
    Comparison, Vote = apps.get_model("feedback", "Comparison"), apps.get_model("feedback", "Vote")
    return {
        "counts": {name: apps.get_model("feedback", name).objects.count()
                   for name in ("Prompt", "Completion", "Comparison", "Vote", "Assignment")},
        "comparisons": sorted(Comparison.objects.values_list("id", "status", "vote_count", "votes_required", "priority")),
        "votes": sorted(Vote.objects.values_list("id", *VOTE_FIELDS)),
        "assignments": sorted(apps.get_model("feedback", "Assignment").objects.values_list(
            "id", "comparison_id", "annotator_id", "status", "shown_left", "expires_at", "token")),
    }


def test_existing_comparisons_move_into_the_active_default_campaign_and_nothing_is_lost():
    try:
        old = _migrate(BEFORE)
        _seed(old)
        before = _snapshot(old)
        new = _migrate(_latest())
        after = _snapshot(new)
        assert after == before
        Campaign, Comparison = new.get_model("feedback", "Campaign"), new.get_model("feedback", "Comparison")
        (default,) = Campaign.objects.all()
        assert (default.name, default.slug, default.status) == ("Default", "default", "active")
        assert list(default.groups.values_list("name", flat=True)) == ["annotators"]
        assert set(Comparison.objects.values_list("campaign_id", flat=True)) == {default.pk}
        Vote = new.get_model("feedback", "Vote")
        assert set(Vote.objects.values_list("guidelines_version", "blind")) == {(None, True)}
        assert set(new.get_model("feedback", "Assignment").objects.values_list("skip_reason", flat=True)) == {""}
    finally:
        _migrate(_latest())

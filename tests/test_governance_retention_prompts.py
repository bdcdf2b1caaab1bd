"""Retention of prompts and completions (issue 18 item 6): a prompt past the period of the policy in
force for it (its import job's, else its source's; never a campaign's) goes with everything on it;
a completion past its prompt's policy's period goes with the comparisons that show it; eval-set
prompts are kept; dry runs change nothing and a second run does nothing."""
from __future__ import annotations

import io
from datetime import timedelta
from pathlib import Path

import pytest
from django.core.management import call_command
from django.utils import timezone

from feedback import snapshots
from feedback.exports.formats import TRL_PREFERENCE
from feedback.governance.models import (
    AuditEvent,
    DataPolicy,
    PersonalDataFinding,
    PolicyScope,
    RedactedOriginal,
    SnapshotDeletedData,
)
from feedback.models import (
    Assignment,
    Comparison,
    Completion,
    CompletionScore,
    Demonstration,
    EvalSet,
    EvalSetItem,
    Export,
    ImportJob,
    Prompt,
    Vote,
    VoteChange,
)
from tests.factories import AssignmentFactory, ComparisonFactory, CompletionFactory, PromptFactory, UserFactory, VoteFactory

pytestmark = pytest.mark.django_db
NOTHING = "retention: nothing past its retention period; nothing deleted"


@pytest.fixture(autouse=True)
def data_dir(settings, tmp_path) -> Path:
    settings.ARBITER_DATA_DIR = tmp_path
    return tmp_path


def aged(row, days: float):
    """Set ``row.created_at`` to ``days`` ago (auto_now_add ignores a given value)."""
    type(row).objects.filter(pk=row.pk).update(created_at=timezone.now() - timedelta(days=days))
    row.refresh_from_db()
    return row


def comparison_on(prompt, *, age: float, annotator=None, rationale: str = "because"):
    """A comparison on ``prompt`` whose two completions are ``age`` days old, with one recent vote."""
    comparison = ComparisonFactory(prompt=prompt)
    aged(comparison.completion_a, age)
    aged(comparison.completion_b, age)
    VoteFactory(comparison=comparison, annotator=annotator or UserFactory(role="annotator"), rationale=rationale)
    return comparison


def run(*args) -> str:
    out = io.StringIO()
    call_command("retention_enforce", *args, stdout=out)
    return out.getvalue()


def table_counts() -> dict[str, int]:
    return {model.__name__: model.objects.count() for model in (
        Prompt, Completion, Comparison, Vote, Assignment, VoteChange, Demonstration, CompletionScore,
        PersonalDataFinding, RedactedOriginal, SnapshotDeletedData, AuditEvent)}


@pytest.fixture
def vendor(data_dir):
    """Source "vendor" (30 days): an old prompt with everything hanging on it, and a recent prompt."""
    DataPolicy.objects.create(source="vendor", retention_days=30, basis="contract 12, 30 days")
    annotator = UserFactory(role="annotator")
    old = aged(PromptFactory(source="vendor", messages=[{"role": "user", "content": "Old vendor question?"}]), 40)
    comparison = comparison_on(old, age=40, annotator=annotator, rationale="old vendor rationale")
    vote = comparison.votes.get()
    VoteChange.objects.create(vote=vote, vote_ref=vote.pk, comparison=comparison, annotator=annotator, at=vote.created_at,
                              action="revise", before={"rationale": "x"}, after={"rationale": "old vendor rationale"})
    AssignmentFactory(comparison=comparison, annotator=annotator, status="voted")
    Demonstration.objects.create(prompt=old, comparison=comparison, annotator=annotator, text="old vendor answer")
    CompletionScore.objects.create(completion=comparison.completion_a, reward_model="rm", score=0.5)
    for kind, row_id in (("prompt", old.pk), ("completion", comparison.completion_a_id)):
        PersonalDataFinding.objects.create(row_kind=kind, row_id=row_id, field="text", detector="email", start=0, end=5, excerpt="a***@b***.c")
    RedactedOriginal.objects.create(row_kind="completion", row_id=comparison.completion_a_id, field="text", original="a@b.c")
    recent = aged(PromptFactory(source="vendor"), 5)
    kept = comparison_on(recent, age=5, annotator=annotator, rationale="recent vendor rationale")
    return {"old": old, "comparison": comparison, "recent": recent, "kept": kept}


def test_a_dry_run_counts_the_prompt_and_its_completions_and_changes_nothing(vendor):
    before = table_counts()
    report = run("--dry-run")
    assert report.splitlines() == [
        "dry run, nothing deleted",
        'source "vendor": would delete 1 prompts, 2 completions, 1 comparisons, 1 votes, 1 demonstrations, 1 vote changes; '
        "0 snapshots marked, 0 export files removed"]
    assert table_counts() == before


def test_a_prompt_past_its_period_goes_with_everything_on_it(vendor, data_dir, django_capture_on_commit_callbacks):
    snapshot = snapshots.snapshot_create(rules={})
    (data_dir / "exports").mkdir()
    (data_dir / "exports" / "1-trl.jsonl").write_text("old vendor rationale")
    export = Export.objects.create(format=TRL_PREFERENCE, file_type="jsonl", status="succeeded", file_path="exports/1-trl.jsonl",
                                   vote_id_max=Vote.objects.order_by("-pk").first().pk)
    with django_capture_on_commit_callbacks(execute=True):
        report = run()
    assert report.strip() == ('source "vendor": deleted 1 prompts, 2 completions, 1 comparisons, 1 votes, 1 demonstrations, '
                              "1 vote changes; 1 snapshots marked, 1 export files removed")
    old, comparison = vendor["old"], vendor["comparison"]
    assert not Prompt.objects.filter(pk=old.pk).exists()
    assert not Completion.objects.filter(prompt_id=old.pk).exists() and not Comparison.objects.filter(pk=comparison.pk).exists()
    assert list(Vote.objects.values_list("rationale", flat=True)) == ["recent vendor rationale"]
    assert not Demonstration.objects.exists() and not VoteChange.objects.exists() and not CompletionScore.objects.exists()
    assert not Assignment.objects.filter(comparison_id=comparison.pk).exists()
    assert not PersonalDataFinding.objects.exists() and not RedactedOriginal.objects.exists()
    assert Prompt.objects.filter(pk=vendor["recent"].pk).exists() and Comparison.objects.filter(pk=vendor["kept"].pk).exists()
    mark = SnapshotDeletedData.objects.get(snapshot=snapshot)
    assert mark.votes_removed == 1 and mark.files_removed and not (data_dir / snapshot.files_dir).exists()
    export.refresh_from_db()
    assert export.file_path == "" and not (data_dir / "exports" / "1-trl.jsonl").exists()
    event = AuditEvent.objects.get(action="deletion")
    assert event.details["kind"] == "retention" and event.details["counts"]["prompts"] == 1
    assert event.details["counts"]["completions"] == 2 and event.details["snapshots"] == [snapshot.pk]

    assert run().strip() == NOTHING
    assert AuditEvent.objects.filter(action="deletion").count() == 1


def test_an_import_policy_beats_the_source_policy_and_a_campaign_policy_governs_no_prompt(data_dir):
    now = timezone.now()
    DataPolicy.objects.create(source="hh", retention_days=30)
    long_job = ImportJob.objects.create(format="hh-rlhf", options={"source": "hh"}, status="succeeded",
                                        started_at=now - timedelta(days=41), finished_at=now - timedelta(days=39))
    DataPolicy.objects.create(scope=PolicyScope.IMPORT, import_job=long_job, retention_days=365)
    short_job = ImportJob.objects.create(format="hh-rlhf", options={"source": "hh"}, status="succeeded",
                                         started_at=now - timedelta(days=21), finished_at=now - timedelta(days=19))
    DataPolicy.objects.create(scope=PolicyScope.IMPORT, import_job=short_job, retention_days=10)
    by_long_job = aged(PromptFactory(source="hh"), 40)  # import policy: 365 days, kept although the source says 30
    by_source = aged(PromptFactory(source="hh"), 45)  # no job's window: the source's 30 days
    by_short_job = aged(PromptFactory(source="hh"), 20)  # import policy: 10 days, although the source says 30
    shown = comparison_on(by_long_job, age=40)
    vote = aged(shown.votes.get(), 3)
    DataPolicy.objects.create(scope=PolicyScope.CAMPAIGN, campaign_id=shown.campaign_id, retention_days=1)

    report = run()
    assert 'source "hh": deleted 1 prompts' in report and "import job" in report and "campaign" in report
    assert set(Prompt.objects.values_list("pk", flat=True)) == {by_long_job.pk}
    assert not Prompt.objects.filter(pk__in=[by_source.pk, by_short_job.pk]).exists()
    assert Comparison.objects.filter(pk=shown.pk).exists() and not Vote.objects.filter(pk=vote.pk).exists()
    assert f'import job {short_job.pk}: deleted 1 prompts, 0 completions' in report
    assert f"campaign {shown.campaign_id}: deleted 0 prompts, 0 completions, 0 comparisons, 1 votes" in report


@pytest.fixture
def eval_prompt():
    """An eval-set prompt (source "evalset", 30 days) with an old and a recent completion."""
    messages = [{"role": "user", "content": "Name three primes."}]
    prompt = aged(PromptFactory(source="evalset", split="eval", messages=messages), 60)
    eval_set = EvalSet.objects.create(name="prod", version=1, content_hash="h", item_count=1, lines_read=1, source_format="jsonl")
    EvalSetItem.objects.create(eval_set=eval_set, position=0, messages=messages, messages_sha256=prompt.messages_sha256, normal_key="k")
    DataPolicy.objects.create(source="evalset", retention_days=30)
    return prompt


def test_a_completion_past_its_period_goes_with_its_comparisons_and_the_eval_set_prompt_stays(eval_prompt, django_capture_on_commit_callbacks):
    old = aged(CompletionFactory(prompt=eval_prompt, model_name="base"), 40)
    new = aged(CompletionFactory(prompt=eval_prompt, model_name="tuned"), 2)
    newer = CompletionFactory(prompt=eval_prompt, model_name="other")
    lost = ComparisonFactory(prompt=eval_prompt, completion_a=old, completion_b=new)
    VoteFactory(comparison=lost, rationale="on the old one")
    demonstration = Demonstration.objects.create(prompt=eval_prompt, comparison=lost, text="written beside it")
    kept = ComparisonFactory(prompt=eval_prompt, completion_a=new, completion_b=newer)

    assert run("--dry-run").splitlines()[1:] == [
        'source "evalset": would delete 0 prompts, 1 completions, 1 comparisons, 1 votes, 0 demonstrations, 0 vote changes; '
        "0 snapshots marked, 0 export files removed",
        "kept 1 eval-set prompts past their retention period (eval sets are frozen; retention does not delete their prompts)"]
    with django_capture_on_commit_callbacks(execute=True):
        run()
    assert Prompt.objects.filter(pk=eval_prompt.pk).exists()
    assert set(Completion.objects.values_list("pk", flat=True)) == {new.pk, newer.pk}
    assert list(Comparison.objects.values_list("pk", flat=True)) == [kept.pk] and not Vote.objects.exists()
    demonstration.refresh_from_db()
    assert demonstration.comparison_id is None
    events = AuditEvent.objects.filter(action="deletion").count()
    assert run().splitlines() == ["retention: nothing deleted", "kept 1 eval-set prompts past their retention period "
                                  "(eval sets are frozen; retention does not delete their prompts)"]
    assert AuditEvent.objects.filter(action="deletion").count() == events == 1


def test_prompts_inside_their_period_or_without_a_limit_are_kept(data_dir):
    DataPolicy.objects.create(source="vendor", retention_days=30)
    DataPolicy.objects.create(source="own")
    inside = comparison_on(aged(PromptFactory(source="vendor"), 29), age=29)
    unlimited = comparison_on(aged(PromptFactory(source="own"), 400), age=400)
    unpoliced = comparison_on(aged(PromptFactory(source="nobody"), 400), age=400)
    assert run().strip() == NOTHING
    assert set(Comparison.objects.values_list("pk", flat=True)) == {inside.pk, unlimited.pk, unpoliced.pk}
    assert Completion.objects.count() == 6 and not AuditEvent.objects.filter(action="deletion").exists()

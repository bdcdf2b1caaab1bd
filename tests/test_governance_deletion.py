"""Deleting one annotator's or one source's data (issue 18 item 6): their text gone from the
database and the data folder, snapshots marked and rebuilt without them, checkpoints flagged in
lineage, readable errors for unknown names, nothing half-done, and an audit row for each."""
from __future__ import annotations

import io
from pathlib import Path

import pytest
from django.contrib.auth import get_user_model
from django.core.management import CommandError, call_command

from feedback import snapshots
from feedback.exports.formats import TRL_PREFERENCE
from feedback.governance import deletion
from feedback.governance.models import AuditEvent, SnapshotDeletedData
from feedback.governance.retention import snapshot_rebuild
from feedback.models import (
    Assignment,
    Demonstration,
    Export,
    ExportStatus,
    Prompt,
    SnapshotVote,
    Vote,
    VoteChange,
)
from tests.conftest import api_as
from tests.factories import AssignmentFactory, ComparisonFactory, PromptFactory, UserFactory, VoteFactory
from training.judges.models import JudgeCall, JudgeVerdict
from training.judges.services import judge_save
from training.models import Checkpoint, Job, JobKind

pytestmark = pytest.mark.django_db
SECRET = "my neighbour Zebulon Quixote said so"
DEMO = "Zebulon Quixote's ideal answer"


@pytest.fixture(autouse=True)
def data_dir(settings, tmp_path) -> Path:
    settings.ARBITER_DATA_DIR = tmp_path
    return tmp_path


@pytest.fixture
def world(db):
    """Two annotators agree on three comparisons; "leaver" also wrote rationales and demonstrations."""
    leaver, stayer = UserFactory(role="annotator", username="leaver"), UserFactory(role="annotator", username="stayer")
    comparisons = [ComparisonFactory(prompt=PromptFactory(source="vendor" if i == 2 else "")) for i in range(3)]
    for comparison in comparisons:
        vote = VoteFactory(comparison=comparison, annotator=leaver, choice="a", rationale=SECRET)
        VoteChange.objects.create(vote=vote, vote_ref=vote.pk, comparison=comparison, annotator=leaver, at=vote.created_at,
                                  action="revise", before={"rationale": SECRET}, after={"rationale": SECRET})
        AssignmentFactory(comparison=comparison, annotator=leaver, status="voted")
        VoteFactory(comparison=comparison, annotator=stayer, choice="a")
        Demonstration.objects.create(prompt=comparison.prompt, comparison=comparison, annotator=leaver, text=DEMO)
        Demonstration.objects.create(prompt=comparison.prompt, comparison=comparison, annotator=stayer, text="A kept answer.")
    return {"leaver": leaver, "stayer": stayer, "comparisons": comparisons}


def folder_text(root: Path) -> str:
    return "".join(p.read_text(errors="replace") for p in root.rglob("*") if p.is_file())


def test_deleting_an_annotator_removes_their_votes_text_and_history(world, data_dir, django_capture_on_commit_callbacks):
    preference = snapshots.snapshot_create(rules={})
    sft = snapshots.sft_snapshot_create(rules={})
    assert DEMO in folder_text(data_dir)
    out = io.StringIO()
    with django_capture_on_commit_callbacks(execute=True):  # the files go once the deletion commits
        call_command("delete_data", "--annotator", "leaver", stdout=out)
    assert ('deleted annotator "leaver": 0 prompts, 0 completions, 0 comparisons, 3 votes, 3 demonstrations, 3 assignments, '
            '3 vote changes, 2 snapshots marked') in out.getvalue()
    leaver = get_user_model().objects.get(pk=world["leaver"].pk)
    assert (leaver.username, leaver.is_active, leaver.has_usable_password()) == (f"deleted-user-{leaver.pk}", False, False)
    assert not Vote.objects.filter(annotator=leaver).exists() and not Vote.objects.filter(rationale=SECRET).exists()
    assert not Demonstration.objects.filter(text=DEMO).exists() and not VoteChange.objects.exists()
    assert not Assignment.objects.filter(annotator=leaver).exists()
    assert Vote.objects.filter(annotator=world["stayer"]).count() == 3 and Demonstration.objects.count() == 3
    assert DEMO not in folder_text(data_dir) and SECRET not in folder_text(data_dir)
    assert SECRET not in str(list(SnapshotVote.objects.values_list("frozen", flat=True)))
    for snapshot in (preference, sft):
        mark = SnapshotDeletedData.objects.get(snapshot=snapshot)
        assert mark.files_removed and f"annotator user {leaver.pk}" in mark.reasons[0] and "leaver" not in str(mark.reasons)
        assert not snapshots.snapshot_verify(snapshot_id=snapshot.pk)
    assert SnapshotDeletedData.objects.get(snapshot=sft).demonstrations_removed == 3
    event = AuditEvent.objects.get(action="deletion")
    assert (event.object_type, event.details["counts"]["votes"], event.details["snapshots"]) == ("annotator", 3, [preference.pk, sft.pk])
    assert "leaver" not in str(event.details) + event.object_id
    with pytest.raises(CommandError, match=f'annotator "deleted-user-{leaver.pk}" was deleted already'):
        call_command("delete_data", "--annotator", f"deleted-user-{leaver.pk}")


def test_a_rebuild_gives_a_snapshot_without_them(world, data_dir, admin_user):
    sft = snapshots.sft_snapshot_create(rules={})
    deletion.deletion_apply(plan=deletion.annotator_deletion_plan(username="leaver"), kind="annotator")
    rebuilt = snapshot_rebuild(snapshot_id=sft.pk, user=admin_user)
    assert rebuilt.rules == sft.rules and rebuilt.pk != sft.pk
    train, eval_ = snapshots.snapshot_paths(rebuilt)
    assert "A kept answer." in train.read_text() + eval_.read_text() and DEMO not in train.read_text() + eval_.read_text()
    assert not SnapshotDeletedData.objects.filter(snapshot=rebuilt).exists()
    assert SnapshotDeletedData.objects.get(snapshot=sft).rebuilt_as_id == rebuilt.pk
    assert AuditEvent.objects.get(action="snapshot.rebuild").details["rebuilt_as"] == rebuilt.pk
    with pytest.raises(Exception, match="holds no deleted data"):
        snapshot_rebuild(snapshot_id=rebuilt.pk, user=admin_user)


def test_the_snapshot_and_the_checkpoint_trained_on_it_are_flagged_in_lineage(world, client, admin_user):
    snapshot = snapshots.snapshot_create(rules={})
    job = Job.objects.create(kind="reward", snapshot=snapshot, status="succeeded")
    parent = Checkpoint.objects.create(name="rm", hub_id="x/rm", kind="reward", run=job)
    child = Checkpoint.objects.create(name="child", hub_id="x/child", parent=parent)
    client.force_login(admin_user)
    assert 'data-testid="checkpoint-deleted-data"' not in client.get(f"/manage/checkpoints/{parent.pk}/").content.decode()
    call_command("delete_data", "--annotator", "leaver", stdout=io.StringIO())
    for checkpoint in (parent, child):
        page = client.get(f"/manage/checkpoints/{checkpoint.pk}/").content.decode()
        assert 'data-testid="checkpoint-deleted-data"' in page and f"snapshot {snapshot.pk}" in page
    job_page = client.get(f"/manage/jobs/{job.pk}/").content.decode()
    assert 'data-testid="snapshot-deleted-data"' in job_page and 'data-testid="snapshot-rebuild"' in job_page
    response = client.post(f"/manage/governance/snapshots/{snapshot.pk}/rebuild/")
    assert response.status_code == 302
    assert SnapshotDeletedData.objects.get(snapshot=snapshot).rebuilt_as_id is not None
    assert "rebuilt as snapshot" in client.get(f"/manage/jobs/{job.pk}/").content.decode()


def test_deleting_a_source_removes_its_prompts_and_everything_on_them(world, data_dir, django_capture_on_commit_callbacks):
    snapshot = snapshots.snapshot_create(rules={})
    vendor_text = world["comparisons"][2].completion_a.text
    out = io.StringIO()
    call_command("delete_data", "--source", "vendor", "--dry-run", stdout=out)
    assert "dry run, nothing deleted" in out.getvalue() and Prompt.objects.filter(source="vendor").exists()
    with django_capture_on_commit_callbacks(execute=True):
        call_command("delete_data", "--source", "vendor", stdout=out)
    assert 'deleted source "vendor": 1 prompts, 2 completions, 1 comparisons, 2 votes, 2 demonstrations' in out.getvalue()
    assert not Prompt.objects.filter(source="vendor").exists() and Vote.objects.count() == 4
    assert SnapshotDeletedData.objects.get(snapshot=snapshot).votes_removed == 2
    assert not (data_dir / snapshot.files_dir).exists() and vendor_text not in folder_text(data_dir)
    assert AuditEvent.objects.get(action="deletion").object_type == "source"


def test_judge_answers_on_deleted_comparisons_go_with_them(world, client, admin_user):
    """A judge's raw answer may quote the texts: deleting a source deletes the judge calls and
    verdicts on its comparisons (counted in the preview, the result and the audit event) and
    keeps those on other comparisons."""
    judge = judge_save(name="gpt", kind="openai", base_url="http://127.0.0.1:9/v1", model_name="m", api_key_env="K")[0]
    job = Job.objects.create(kind=JobKind.JUDGING, config={})
    vendor, kept = world["comparisons"][2], world["comparisons"][0]
    for comparison in (vendor, kept):
        for order in ("ab", "ba"):
            JudgeCall.objects.create(job=job, judge=judge, comparison_id=comparison.pk, order=order, status="ok",
                                     label="A", choice="a", raw_output=f"A is better: {comparison.completion_a.text}")
        JudgeVerdict.objects.create(job=job, judge=judge, comparison_id=comparison.pk, choice="a", choice_ab="a", choice_ba="a")
    vendor_text = vendor.completion_a.text

    client.force_login(admin_user)
    preview = client.post("/api/governance/deletions/", {"source": "vendor", "dry_run": True}, content_type="application/json")
    assert preview.status_code == 200, preview.content
    assert (preview.json()["counts"]["judge_calls"], preview.json()["counts"]["judge_verdicts"]) == (2, 1)
    assert JudgeCall.objects.count() == 4  # a preview deletes nothing

    counts = deletion.deletion_apply(plan=deletion.source_deletion_plan(source="vendor"), kind="source")
    assert (counts["judge_calls"], counts["judge_verdicts"]) == (2, 1)
    assert set(JudgeCall.objects.values_list("comparison_id", flat=True)) == {kept.pk}
    assert list(JudgeVerdict.objects.values_list("comparison_id", flat=True)) == [kept.pk]
    assert not JudgeCall.objects.filter(raw_output__contains=vendor_text).exists()
    assert AuditEvent.objects.get(action="deletion").details["counts"]["judge_calls"] == 2
    # An annotator's deletion removes no comparison, so no judge answer.
    deletion.deletion_apply(plan=deletion.annotator_deletion_plan(username="leaver"), kind="annotator")
    assert JudgeCall.objects.count() == 2 and JudgeVerdict.objects.count() == 1


def test_export_files_that_may_hold_the_votes_are_deleted(world, data_dir, django_capture_on_commit_callbacks):
    (data_dir / "exports").mkdir()
    (data_dir / "exports" / "1-x-trl.jsonl").write_text(SECRET)
    export = Export.objects.create(format=TRL_PREFERENCE, file_type="jsonl", status="succeeded", file_path="exports/1-x-trl.jsonl",
                                   vote_id_max=Vote.objects.order_by("-pk").first().pk)
    with django_capture_on_commit_callbacks(execute=True):
        call_command("delete_data", "--annotator", "leaver", stdout=io.StringIO())
    export.refresh_from_db()
    assert (export.status, export.file_path) == (ExportStatus.FAILED, "") and "since deleted" in export.error
    assert not list((data_dir / "exports").iterdir())


@pytest.mark.parametrize("args, message", [
    (["--annotator", "nobody"], 'no annotator named "nobody"'),
    (["--source", "nowhere"], 'no prompts with source "nowhere"'),
])
def test_an_unknown_annotator_or_source_is_one_readable_error(world, args, message):
    with pytest.raises(CommandError, match=message):
        call_command("delete_data", *args)
    assert Vote.objects.count() == 6 and not AuditEvent.objects.filter(action="deletion").exists()


def test_a_failure_leaves_nothing_half_done(world, data_dir, monkeypatch):
    snapshot = snapshots.snapshot_create(rules={})

    def broken(**kwargs):
        raise RuntimeError("disk on fire")

    monkeypatch.setattr(deletion, "audit_record", broken)
    with pytest.raises(RuntimeError):
        deletion.deletion_apply(plan=deletion.annotator_deletion_plan(username="leaver"), kind="annotator")
    assert Vote.objects.filter(rationale=SECRET).count() == 3 and not SnapshotDeletedData.objects.exists()
    assert snapshots.snapshot_verify(snapshot_id=snapshot.pk)


def test_the_admin_page_and_api_delete_and_refuse_unknown_names(world, client, admin_user):
    client.force_login(admin_user)
    page = client.post("/manage/governance/deletion/", {"annotator": "leaver", "preview": "1"}).content.decode()
    assert 'data-testid="deletion-plan"' in page and Vote.objects.filter(rationale=SECRET).exists()
    assert client.post("/manage/governance/deletion/", {"source": "nowhere"}).status_code == 400
    assert client.post("/manage/governance/deletion/", {"annotator": "leaver", "delete": "1"}).status_code == 302
    assert not Vote.objects.filter(rationale=SECRET).exists()
    api = api_as(admin_user)
    response = api.post("/api/governance/deletions/", {"annotator": "nobody"}, format="json")
    assert response.status_code == 400 and response.json() == {"detail": 'no annotator named "nobody"'}
    response = api.post("/api/governance/deletions/", {"source": "vendor", "dry_run": True}, format="json")
    assert response.status_code == 200 and response.json()["counts"]["prompts"] == 1 and Prompt.objects.filter(source="vendor").exists()
    assert api_as(world["stayer"]).post("/api/governance/deletions/", {"source": "vendor"}, format="json").status_code == 403
    assert AuditEvent.objects.filter(action="deletion").count() == 1


@pytest.mark.parametrize("target", [{"username": "leaver"}, {"source": "vendor"}])
def test_the_same_deletion_sent_twice_deletes_once(world, target):
    build = deletion.annotator_deletion_plan if "username" in target else deletion.source_deletion_plan
    first, second = build(**target), build(**target)  # both planned before either runs: a double click
    deletion.deletion_apply(plan=first, kind="test")
    with pytest.raises(deletion.DeletionTargetUnknown, match="was deleted already"):
        deletion.deletion_apply(plan=second, kind="test")
    assert AuditEvent.objects.filter(action="deletion").count() == 1

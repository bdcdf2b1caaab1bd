"""Training-run launch under data-use policies (issue 18 item 3): refused before anything is
queued, naming the source and row counts; an admin's override reaches the snapshot through
``feedback.interface`` and shows in the run's lineage; every launch is audited."""
from __future__ import annotations

import pytest
from django.core.exceptions import ValidationError
from django.core.management import CommandError, call_command
from django_tasks_db.models import DBTaskResult

from feedback.governance.models import AuditEvent, DataPolicy
from feedback.models import DatasetSnapshot
from tests.conftest import api_as
from tests.factories import ComparisonFactory, PromptFactory, VoteFactory
from training import services
from training.models import Checkpoint, Job

pytestmark = pytest.mark.django_db
JUSTIFICATION = "The vendor agreed to this fine-tune in writing, see ticket 77."


@pytest.fixture
def world(settings, tmp_path, admin_user, annotator):
    settings.ARBITER_DATA_DIR = tmp_path
    Checkpoint.objects.create(name="smol", hub_id="x/smol")
    for index in range(6):
        prompt = PromptFactory(source="vendor", split="eval" if index % 3 == 0 else "train")
        VoteFactory(comparison=ComparisonFactory(prompt=prompt), annotator=annotator, choice="a" if index % 2 else "b")
    DataPolicy.objects.create(source="vendor", allow_training=False, basis="evaluation licence")
    return {"admin": admin_user}


def test_a_dpo_run_is_refused_before_anything_is_queued(world, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True), pytest.raises(ValidationError) as caught:
        services.dpo_run_create(config={"base": "smol"}, created_by=world["admin"])
    assert 'source "vendor": 4 rows for training, which its policy does not allow' in caught.value.message_dict["policy"][0]
    assert not Job.objects.exists() and not DatasetSnapshot.objects.exists() and not DBTaskResult.objects.exists()
    assert not AuditEvent.objects.filter(action="run.launch").exists()


def test_an_override_launches_the_run_records_it_and_shows_it_in_lineage(world, client, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        job = services.dpo_run_create(config={"base": "smol"}, created_by=world["admin"], policy_override=JUSTIFICATION)
    assert job.snapshot.policy_record.override_justification == JUSTIFICATION
    launch = AuditEvent.objects.get(action="run.launch")
    assert (launch.actor_name, launch.object_id, launch.details["snapshot_id"]) == (world["admin"].username, str(job.pk), job.snapshot_id)
    assert AuditEvent.objects.filter(action="policy.override", object_id=str(job.snapshot_id)).exists()
    client.force_login(world["admin"])
    page = client.get(f"/manage/jobs/{job.pk}/").content.decode()
    assert 'data-testid="snapshot-policy-override"' in page and "ticket 77" in page
    assert 'source &quot;vendor&quot; (annotation, evaluation; not reviewed)' in page


def test_the_jobs_api_answers_400_then_takes_the_override(world):
    api = api_as(world["admin"])
    response = api.post("/api/jobs/", {"kind": "reward", "config": {"base": "smol"}}, format="json")
    assert response.status_code == 400 and 'source "vendor"' in response.json()["policy"][0]
    response = api.post("/api/jobs/", {"kind": "reward", "config": {"base": "smol"}, "policy_override": JUSTIFICATION}, format="json")
    assert response.status_code == 201, response.json()


def test_the_train_command_says_why_in_one_line_and_takes_the_override(world):
    with pytest.raises(CommandError) as caught:
        call_command("train", "reward", "--base", "smol")
    assert 'source "vendor"' in str(caught.value) and "\n" not in str(caught.value)
    call_command("train", "reward", "--base", "smol", "--policy-override", JUSTIFICATION)
    assert Job.objects.count() == 1


def test_reusing_a_snapshot_checks_the_policies_in_force_now(world):
    DataPolicy.objects.all().delete()
    first = services.reward_run_create(config={"base": "smol", "output_name": "a"})
    DataPolicy.objects.create(source="vendor", allow_training=False)
    with pytest.raises(ValidationError) as caught:
        services.reward_run_create(config={"base": "smol", "snapshot_id": first.snapshot_id, "output_name": "b"})
    assert 'source "vendor": 4 rows for training' in caught.value.message_dict["policy"][0]
    again = services.reward_run_create(config={"base": "smol", "snapshot_id": first.snapshot_id, "output_name": "c"},
                                       policy_override=JUSTIFICATION)
    assert again.snapshot.policy_record.override_justification == JUSTIFICATION
    assert AuditEvent.objects.get(action="policy.override").details["reused"] is True
    services.reward_run_create(config={"base": "smol", "snapshot_id": first.snapshot_id, "output_name": "d"})  # stays justified

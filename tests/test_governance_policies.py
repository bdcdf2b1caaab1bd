"""Data-use policies (issue 18 items 1 and 3): which policy is in force, the record on each
snapshot, and enforcement at snapshot, SFT snapshot, export and training-run launch, with overrides."""
from __future__ import annotations

import io
from datetime import timedelta

import pytest
from django.core.exceptions import ValidationError
from django.utils import timezone

from feedback import interface, snapshots
from feedback.exports.services import export_create
from feedback.governance.models import AuditEvent, DataPolicy, PolicyScope, ReviewStatus, SnapshotPolicy
from feedback.governance.policies import PolicyBook, vote_facts
from feedback.models import DatasetSnapshot, Demonstration, Export, ImportJob
from tests.conftest import api_as
from tests.factories import ComparisonFactory, PromptFactory, VoteFactory

pytestmark = pytest.mark.django_db
JUSTIFICATION = "Legal approved a one-off use for the safety evaluation, ticket 42."


@pytest.fixture(autouse=True)
def data_dir(settings, tmp_path):
    settings.ARBITER_DATA_DIR = tmp_path


@pytest.fixture
def votes(annotator):
    """6 votes from source "vendor" (4 on train prompts, 2 on eval) and 3 from source "forum" (train)."""
    made = []
    for index in range(6):
        comparison = ComparisonFactory(prompt=PromptFactory(source="vendor", split="eval" if index < 2 else "train"))
        made.append(VoteFactory(comparison=comparison, annotator=annotator, choice="a"))
    for _ in range(3):
        made.append(VoteFactory(comparison=ComparisonFactory(prompt=PromptFactory(source="forum")), annotator=annotator))
    return made


def policy(**fields) -> DataPolicy:
    return DataPolicy.objects.create(**{"scope": PolicyScope.SOURCE} | fields)


def refusal(call) -> dict[str, list[str]]:
    with pytest.raises(ValidationError) as caught:
        call()
    return caught.value.message_dict


def test_with_no_policy_everything_is_allowed_and_the_sources_are_recorded(votes):
    snapshot = snapshots.snapshot_create(rules={})
    summary = snapshot.policy_record.summary
    assert summary["refused"] == [] and not summary["overridden"]
    rows = {group["label"]: group["rows"] for group in summary["groups"]}
    assert rows == {'source "forum" (no policy)': {"training": 3}, 'source "vendor" (no policy)': {"evaluation": 2, "training": 4}}


def test_a_source_that_forbids_training_refuses_the_snapshot_naming_source_and_counts(votes):
    policy(source="vendor", allow_training=False, basis="evaluation licence only")
    errors = refusal(lambda: snapshots.snapshot_create(rules={}))
    assert list(errors) == ["policy"]
    assert 'source "vendor": 4 rows for training, which its policy does not allow' in errors["policy"][0]
    assert "forum" not in errors["policy"][0]
    assert not DatasetSnapshot.objects.exists()



def test_the_policy_in_force_is_recorded_with_its_terms(votes):
    policy(source="vendor", basis="customer consent, contract 12", retention_days=365,
           review_status=ReviewStatus.REVIEWED_CLEAN, review_required=True)
    snapshot = snapshots.snapshot_create(rules={})
    vendor = next(g for g in snapshot.policy_record.summary["groups"] if g["label"] == 'source "vendor"')
    assert vendor["basis"] == "customer consent, contract 12" and vendor["retention_days"] == 365
    assert vendor["review"] == "reviewed clean" and vendor["rows"] == {"evaluation": 2, "training": 4}
    ref = interface.snapshot_get(snapshot_id=snapshot.pk)
    assert ref.policy_summary["groups"][1]["label"] == 'source "vendor"' and ref.policy_override == ""


@pytest.mark.parametrize("status", [ReviewStatus.NOT_REVIEWED, ReviewStatus.PERSONAL_DATA])
def test_review_required_refuses_until_reviewed_clean(votes, status):
    vendor = policy(source="vendor", review_required=True, review_status=status)
    errors = refusal(lambda: snapshots.snapshot_create(rules={}))
    assert f'source "vendor": 6 rows need a personal-data review first ({ReviewStatus(status).label})' in errors["policy"][0]
    vendor.review_status = ReviewStatus.REVIEWED_CLEAN
    vendor.save()
    assert snapshots.snapshot_create(rules={}).train_rows == 7


def test_a_campaign_policy_overrides_the_source_policy(votes, admin_user):
    from feedback.campaigns.models import Campaign

    policy(source="vendor", allow_training=False)
    campaign = Campaign.objects.create(name="c", slug="c", created_by=admin_user)
    for vote in votes[:6]:
        vote.comparison.campaign = campaign
        vote.comparison.save()
    DataPolicy.objects.create(scope=PolicyScope.CAMPAIGN, campaign=campaign)
    assert snapshots.snapshot_create(rules={}).train_rows == 7


def test_an_import_job_policy_covers_the_votes_it_wrote(annotator):
    now = timezone.now()
    job = ImportJob.objects.create(format="hh-rlhf", options={"source": "hh"}, started_at=now - timedelta(minutes=1),
                                   finished_at=now + timedelta(minutes=1))
    imported = VoteFactory(comparison=ComparisonFactory(prompt=PromptFactory(source="hh")), annotator=annotator, source="hh")
    earlier = VoteFactory(comparison=ComparisonFactory(prompt=PromptFactory(source="hh")), annotator=annotator, source="hh")
    type(earlier).objects.filter(pk=earlier.pk).update(created_at=now - timedelta(days=2))
    job_policy = DataPolicy.objects.create(scope=PolicyScope.IMPORT, import_job=job, allow_training=False)
    source_policy = policy(source="hh")
    book = PolicyBook()
    facts = {fact.created_at > now - timedelta(days=1): fact for fact in vote_facts([imported.pk, earlier.pk])}
    assert book.policy_for(facts[True]) == job_policy and book.policy_for(facts[False]) == source_policy


def test_an_admin_overrides_with_a_justification_recorded_on_the_snapshot_and_audited(votes, admin_user):
    policy(source="vendor", allow_training=False)
    errors = refusal(lambda: snapshots.snapshot_create(rules={}, created_by=admin_user, policy_override="because"))
    assert errors["policy_override"] == ["write a justification of at least 20 characters"]
    snapshot = snapshots.snapshot_create(rules={}, created_by=admin_user, policy_override=JUSTIFICATION)
    record = SnapshotPolicy.objects.get(snapshot=snapshot)
    assert record.override_justification == JUSTIFICATION and record.override_by == admin_user
    assert record.summary["overridden"] and 'source "vendor": 4 rows for training' in record.summary["refused"][0]
    event = AuditEvent.objects.get(action="policy.override")
    assert (event.actor_name, event.object_type, event.object_id) == (admin_user.username, "datasetsnapshot", str(snapshot.pk))
    assert event.details["justification"] == JUSTIFICATION


def test_an_annotator_cannot_override(votes, annotator):
    policy(source="vendor", allow_training=False)
    errors = refusal(lambda: snapshots.snapshot_create(rules={}, created_by=annotator, policy_override=JUSTIFICATION))
    assert errors == {"policy_override": ["only an admin may override a data-use policy"]}


def test_sft_snapshots_check_demonstrations(annotator):
    prompt = PromptFactory(source="vendor")
    Demonstration.objects.create(prompt=prompt, text="A fine answer.", annotator=annotator)
    policy(source="vendor", allow_training=False)
    errors = refusal(lambda: snapshots.sft_snapshot_create(rules={}))
    assert 'source "vendor": 1 row for training' in errors["policy"][0]
    assert snapshots.sft_snapshot_create(rules={}, policy_override=JUSTIFICATION).train_rows == 1


def test_exports_are_refused_then_overridden_and_audited(votes, admin_user):
    policy(source="vendor", allow_evaluation=False)
    errors = refusal(lambda: export_create(format="trl-preference", file_type="jsonl", created_by=admin_user))
    assert 'the export uses data its policy does not allow: source "vendor": 2 rows for evaluation' in errors["policy"][0]
    assert not Export.objects.exists()
    only_train = export_create(format="trl-preference", file_type="jsonl", filters={"splits": ["train"]}, created_by=admin_user)
    assert only_train.status == "succeeded"
    forced = export_create(format="trl-preference", file_type="jsonl", created_by=admin_user,
                           policy_override=JUSTIFICATION, remote_addr="10.1.2.3")
    assert forced.status == "succeeded"
    events = list(AuditEvent.objects.filter(object_type="export", object_id=str(forced.pk)).order_by("id"))
    assert [e.action for e in events] == ["export.create", "policy.override"]
    assert events[0].remote_addr == "10.1.2.3" and events[0].details["votes_total"] == 9


def test_the_export_api_answers_400_with_the_policy_message(votes, admin_user):
    policy(source="forum", allow_training=False)
    response = api_as(admin_user).post("/api/exports/", {"format": "trl-preference", "file_type": "jsonl"}, format="json")
    assert response.status_code == 400
    assert 'source "forum": 3 rows for training' in response.json()["policy"][0]


def test_the_demo_source_gets_a_policy_allowing_everything_reviewed_clean():
    from django.core.management import call_command

    call_command("load_demo", stdout=io.StringIO())
    call_command("load_demo", stdout=io.StringIO())
    demo = DataPolicy.objects.get()
    assert (demo.source, demo.allowed_uses, demo.review_status) == ("arbiter-demo", ["annotation", "evaluation", "training"], "reviewed_clean")

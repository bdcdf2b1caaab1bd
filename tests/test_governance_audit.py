"""The append-only audit trail (issue 18 item 5): events for policy changes, downloads, role
changes and deletions; no update or delete through the ORM or the admin; the page, CSV and API."""
from __future__ import annotations

import csv
import io

import pytest
from django.contrib.admin.sites import site
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.core.management import call_command
from django.test import RequestFactory

from feedback.exports.services import export_create
from feedback.governance.audit import audit_record
from feedback.governance.models import AuditEvent, AuditImmutable, DataPolicy
from tests.conftest import api_as
from tests.factories import UserFactory, VoteFactory

pytestmark = pytest.mark.django_db


def test_events_cannot_be_changed_or_deleted_through_the_orm(admin_user):
    event = audit_record(action="policy.create", user=admin_user, object_type="datapolicy", object_id=1)
    event.details = {"forged": True}
    with pytest.raises(AuditImmutable):
        event.save()
    with pytest.raises(AuditImmutable):
        event.delete()
    with pytest.raises(AuditImmutable):
        AuditEvent.objects.filter(pk=event.pk).update(action="export.create")
    with pytest.raises(AuditImmutable):
        AuditEvent.objects.all().delete()
    assert AuditEvent.objects.get(pk=event.pk).details == {}


def test_the_django_admin_may_only_view_events(admin_user):
    admin_user.is_superuser = True
    request = RequestFactory().get("/admin/")
    request.user = admin_user
    model_admin = site._registry[AuditEvent]
    assert not model_admin.has_add_permission(request)
    assert not model_admin.has_change_permission(request) and not model_admin.has_delete_permission(request)


def test_policy_changes_through_the_page_are_audited_with_before_after_and_address(admin_user, client):
    client.force_login(admin_user)
    form = {"scope": "source", "source": "vendor", "allow_annotation": "on", "allow_evaluation": "on",
            "basis": "contract 12", "review_status": "not_reviewed"}
    assert client.post("/manage/governance/policies/", form, REMOTE_ADDR="10.0.0.7").status_code == 302
    policy = DataPolicy.objects.get()
    assert policy.allowed_uses == ["annotation", "evaluation"] and policy.updated_by == admin_user
    client.post(f"/manage/governance/policies/{policy.pk}/", form | {"allow_training": "on"}, REMOTE_ADDR="10.0.0.7")
    client.post(f"/manage/governance/policies/{policy.pk}/", {"delete": "1"})
    events = list(AuditEvent.objects.filter(object_type="datapolicy").order_by("id"))
    assert [e.action for e in events] == ["policy.create", "policy.update", "policy.delete"]
    assert events[0].remote_addr == "10.0.0.7" and events[0].actor_name == admin_user.username
    assert events[1].details["before"]["allowed_uses"] == ["annotation", "evaluation"]
    assert events[1].details["after"]["allowed_uses"] == ["annotation", "evaluation", "training"]
    assert not DataPolicy.objects.exists()


def test_a_bad_policy_is_refused_with_field_errors(admin_user, client):
    client.force_login(admin_user)
    response = client.post("/manage/governance/policies/", {"scope": "campaign", "review_status": "not_reviewed"})
    assert response.status_code == 400 and "a campaign policy names its campaign" in response.content.decode()
    DataPolicy.objects.create(source="vendor")
    response = api_as(admin_user).post("/api/governance/policies/", {"scope": "source", "source": "vendor"}, format="json")
    assert response.status_code == 400 and "source" in response.json()
    assert not AuditEvent.objects.filter(action="policy.create").exists()


def test_the_policy_api_creates_changes_and_deletes_with_audit(admin_user):
    api = api_as(admin_user)
    created = api.post("/api/governance/policies/", {"scope": "source", "source": "forum", "allow_training": False,
                                                      "review_required": True}, format="json")
    assert created.status_code == 201 and created.json()["allowed_uses"] == ["annotation", "evaluation"]
    pk = created.json()["id"]
    changed = api.patch(f"/api/governance/policies/{pk}/", {"review_status": "reviewed_clean"}, format="json")
    assert changed.status_code == 200 and changed.json()["review_status"] == "reviewed_clean"
    assert api.delete(f"/api/governance/policies/{pk}/").status_code == 204
    assert list(AuditEvent.objects.order_by("id").values_list("action", flat=True).filter(object_type="datapolicy")) == [
        "policy.create", "policy.update", "policy.delete"]


def test_downloads_role_changes_and_user_deletions_are_audited(admin_user, client, settings, tmp_path):
    settings.ARBITER_DATA_DIR = tmp_path
    VoteFactory()
    export = export_create(format="raw-votes", file_type="jsonl", created_by=admin_user)
    client.force_login(admin_user)
    assert client.get(f"/manage/exports/{export.pk}/download/").status_code == 200
    download = AuditEvent.objects.get(action="export.download")
    assert (download.actor_name, download.object_id, download.remote_addr) == (admin_user.username, str(export.pk), "127.0.0.1")
    gone = UserFactory(role="annotator")
    role = AuditEvent.objects.filter(action="role.change", object_id=str(gone.pk)).get()
    assert role.details["groups"] == ["annotators"] and role.details["change"] == "add"
    audit_record(action="export.create", user=gone, object_type="export", object_id=99)
    gone_id = gone.pk
    gone.votes.all().delete()
    gone.delete()
    assert AuditEvent.objects.filter(action="deletion", object_type="user", object_id=str(gone_id)).exists()
    kept = AuditEvent.objects.get(object_id="99")
    assert (kept.actor_id, kept.actor_name) == (gone_id, gone.username)


def test_the_audit_page_filters_and_downloads_csv(admin_user, client):
    audit_record(action="policy.create", user=admin_user, object_type="datapolicy", object_id=3, details={"x": 1})
    audit_record(action="run.launch", object_type="job", object_id=5)
    client.force_login(admin_user)
    page = client.get("/manage/governance/audit/", {"action": "run.launch"}).content.decode()
    table = page.split('data-testid="audit-events"')[1]
    assert "training run launched" in table and "policy created" not in table
    response = client.get("/manage/governance/audit/", {"actor": admin_user.username, "format": "csv"})
    rows = list(csv.reader(io.StringIO(b"".join(response.streaming_content).decode())))
    assert rows[0][:4] == ["id", "at", "actor", "action"]
    assert [(r[2], r[3], r[4], r[5], r[7]) for r in rows[1:]] == [(admin_user.username, "policy.create", "datapolicy", "3", '{"x": 1}')]


def test_the_audit_api_is_read_only_and_filters(admin_user, annotator):
    audit_record(action="run.launch", object_type="job", object_id=5)
    audit_record(action="export.download", object_type="export", object_id=6)
    api = api_as(admin_user)
    listed = api.get("/api/governance/audit/", {"action": "export.download"}).json()
    results = listed["results"] if isinstance(listed, dict) else listed
    assert [(e["action"], e["object_id"]) for e in results] == [("export.download", "6")]
    event_id = results[0]["id"]
    assert api.post("/api/governance/audit/", {"action": "run.launch"}, format="json").status_code == 405
    assert api.delete(f"/api/governance/audit/{event_id}/").status_code == 405
    assert api_as(annotator).get("/api/governance/audit/").status_code == 403


def test_policies_saved_in_the_django_admin_are_audited(admin_user, client):
    admin_user.is_superuser = True
    admin_user.save()
    client.force_login(admin_user)
    form = {"scope": "source", "source": "wiki", "allow_annotation": "on", "allow_training": "on", "basis": "CC BY-SA",
            "review_status": "reviewed_clean", "retention_days": "30"}
    response = client.post("/admin/feedback/datapolicy/add/", form)
    assert response.status_code == 302, response.content.decode()[:2000]
    policy = DataPolicy.objects.get()
    assert (policy.source, policy.allowed_uses, policy.retention_days) == ("wiki", ["annotation", "training"], 30)
    client.post(f"/admin/feedback/datapolicy/{policy.pk}/change/", form | {"allow_evaluation": "on"})
    event = AuditEvent.objects.filter(object_type="datapolicy").order_by("-id").first()
    assert event.action == "policy.update" and event.details["after"]["allowed_uses"] == ["annotation", "evaluation", "training"]
    assert client.get(f"/admin/feedback/auditevent/{event.pk}/change/").status_code == 200  # view only
    assert client.post(f"/admin/feedback/auditevent/{event.pk}/delete/", {"post": "yes"}).status_code == 403


def test_a_role_change_in_the_admin_names_who_made_it_and_a_command_line_one_says_so(client):
    boss = UserFactory(role="admin", is_superuser=True, username="boss")
    out = io.StringIO()
    call_command("create_user", "newcomer", "--role", "annotator", "--password", "a long passphrase 42", stdout=out)
    newcomer = get_user_model().objects.get(username="newcomer")
    made = AuditEvent.objects.get(action="role.change", object_id=str(newcomer.pk))
    assert (made.actor_id, made.actor_name, made.remote_addr) == (None, "", None)
    assert made.details["via"] == "command line" and made.details["roles_now"] == ["annotators"]

    client.force_login(boss)
    form = client.get(f"/admin/auth/user/{newcomer.pk}/change/").context["adminform"].form
    data = {name: value for name, value in form.initial.items() if value is not None and name not in ("password", "user_permissions")}
    data |= {"groups": [Group.objects.get(name="admins").pk], "date_joined_0": f"{newcomer.date_joined:%Y-%m-%d}",
             "date_joined_1": f"{newcomer.date_joined:%H:%M:%S}", "is_active": "on"}
    data.pop("date_joined", None)
    data.pop("last_login", None)
    response = client.post(f"/admin/auth/user/{newcomer.pk}/change/", data, REMOTE_ADDR="10.0.0.9")
    assert response.status_code == 302, response.context["adminform"].form.errors if response.context else response
    changes = AuditEvent.objects.filter(action="role.change", object_id=str(newcomer.pk)).exclude(pk=made.pk).order_by("id")
    assert [e.details["change"] for e in changes] == ["remove", "add"]
    for event in changes:
        assert (event.actor_id, event.actor_name, event.remote_addr, event.details["via"]) == (boss.pk, "boss", "10.0.0.9", "web")
    assert changes[1].details["roles_now"] == ["admins"]

    newcomer.groups.clear()  # outside any request again: nobody
    cleared = AuditEvent.objects.filter(action="role.change", object_id=str(newcomer.pk)).latest("id")
    assert (cleared.actor_id, cleared.details["via"], cleared.details["change"]) == (None, "command line", "clear")

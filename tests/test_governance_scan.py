"""The personal-data scan (issue 18 item 2): the job over prompts, completions, rationales and
demonstrations, findings stored masked, the review page and API (mark clean, redact)."""
from __future__ import annotations

import pytest
from django_tasks_db.models import DBTaskResult

from feedback.governance import scan
from feedback.governance.models import (
    AuditEvent, DataPolicy, PersonalDataFinding, PersonalDataScan, RedactedOriginal,
)
from feedback.messages import messages_sha256
from feedback.models import Demonstration, Vote
from tests.conftest import api_as
from tests.factories import CompletionFactory, ComparisonFactory, PromptFactory, VoteFactory

pytestmark = pytest.mark.django_db
EMAIL, PHONE, CARD, IBAN = "jane.roe@example.org", "+44 20 7946 0958", "4111 1111 1111 1111", "DE89 3704 0044 0532 0130 00"


@pytest.fixture
def rows(annotator):
    prompt = PromptFactory(source="crm", messages=[{"role": "system", "content": "Be kind."},
                                                   {"role": "user", "content": f"My mail is {EMAIL}, help"}])
    completion = CompletionFactory(prompt=prompt, text=f"Call us on {PHONE}.")
    comparison = ComparisonFactory(prompt=prompt)
    vote = VoteFactory(comparison=comparison, annotator=annotator, rationale=f"It printed my card {CARD}!")
    demonstration = Demonstration.objects.create(prompt=prompt, text=f"Pay to {IBAN}.", annotator=annotator)
    VoteFactory(comparison=ComparisonFactory(), annotator=annotator, rationale="Version 1.2.3.4.5 on 2024-01-15.")
    return {"prompt": prompt, "completion": completion, "vote": vote, "demonstration": demonstration}


def findings() -> set[tuple]:
    return set(PersonalDataFinding.objects.values_list("row_kind", "row_id", "field", "detector", "start", "end", "excerpt", "status"))


def test_a_scan_finds_each_kind_in_each_table_and_stores_only_masked_excerpts(rows):
    done = scan.personal_data_scan_run()
    assert (done.status, done.found) == ("succeeded", 4)
    assert done.scanned == done.total == 2 + 5 + 2 + 1  # prompts, completions, votes with a rationale, demonstrations
    p, c, v, d = rows["prompt"].pk, rows["completion"].pk, rows["vote"].pk, rows["demonstration"].pk
    assert findings() == {
        ("prompt", p, "messages.1.content", "email", 11, 11 + len(EMAIL), "j***@e***.org", "open"),
        ("completion", c, "text", "phone", 11, 11 + len(PHONE), "+4***58", "open"),
        ("vote", v, "rationale", "card", 19, 19 + len(CARD), "****1111", "open"),
        ("demonstration", d, "text", "iban", 7, 7 + len(IBAN), "DE***00", "open"),
    }
    stored = " ".join(str(value) for row in findings() for value in row)
    for secret in (EMAIL, PHONE, CARD, IBAN, "jane", "7946", "3704"):
        assert secret not in stored


def test_a_second_scan_replaces_open_findings_and_does_not_raise_rows_marked_clean(rows, admin_user):
    scan.personal_data_scan_run()
    assert scan.row_mark_clean(row_kind="completion", row_id=rows["completion"].pk, user=admin_user) == 1
    again = scan.personal_data_scan_run()
    assert again.found == 3
    assert PersonalDataFinding.objects.count() == 4
    assert PersonalDataFinding.objects.get(row_kind="completion").status == "clean"


def test_the_scan_runs_as_a_queued_task_with_progress_on_its_row(rows, admin_user, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        queued = scan.personal_data_scan_start(user=admin_user)
    task = DBTaskResult.objects.get()
    assert task.args_kwargs["args"] == [queued.pk] and PersonalDataScan.objects.get().task_id == str(task.id)
    done = scan.personal_data_scan_run(scan_id=queued.pk)
    assert done.status == "succeeded" and done.heartbeat_at and done.finished_at
    assert scan.personal_data_scan_run(scan_id=queued.pk).found == 4  # a finished scan is not run again


def test_a_failing_scan_records_its_error(rows, monkeypatch):
    monkeypatch.setattr(scan, "detect", lambda text, **options: 1 / 0)
    with pytest.raises(ZeroDivisionError):
        scan.personal_data_scan_run()
    failed = PersonalDataScan.objects.get()
    assert failed.status == "failed" and "ZeroDivisionError" in failed.error


def test_redaction_without_a_keeping_policy_leaves_no_original(rows, admin_user):
    scan.personal_data_scan_run()
    prompt = rows["prompt"]
    assert scan.row_redact(row_kind="prompt", row_id=prompt.pk, user=admin_user) == 1
    prompt.refresh_from_db()
    assert prompt.messages[1]["content"] == "My mail is [EMAIL], help"
    assert prompt.messages_sha256 == messages_sha256(prompt.messages)
    assert not RedactedOriginal.objects.exists()
    assert PersonalDataFinding.objects.get(row_kind="prompt").status == "redacted"
    event = AuditEvent.objects.get(action="finding.redact")
    assert event.details == {"findings": 1, "fields": ["messages.1.content"], "original_kept": False}
    assert EMAIL not in str(list(AuditEvent.objects.values_list("details", flat=True)))


def test_redaction_keeps_the_original_where_the_policy_allows(rows, admin_user):
    DataPolicy.objects.create(source="crm", keep_original_on_redaction=True)
    scan.personal_data_scan_run()
    scan.row_redact(row_kind="vote", row_id=rows["vote"].pk, user=admin_user)
    assert Vote.objects.get(pk=rows["vote"].pk).rationale == "It printed my card [CARD]!"
    kept = RedactedOriginal.objects.get()
    assert (kept.row_kind, kept.field, kept.original) == ("vote", "rationale", f"It printed my card {CARD}!")


def test_the_review_page_filters_and_acts_on_rows(rows, admin_user, client):
    scan.personal_data_scan_run()
    client.force_login(admin_user)
    page = client.get("/manage/governance/findings/", {"detector": "email"}).content.decode()
    assert "j***@e***.org" in page and "****1111" not in page and EMAIL not in page
    finding = PersonalDataFinding.objects.get(detector="card")
    response = client.post(f"/manage/governance/findings/{finding.pk}/", {"action": "redact", "next": "status=open"})
    assert response.status_code == 302 and response["Location"].endswith("?status=open")
    assert Vote.objects.get(pk=rows["vote"].pk).rationale.endswith("[CARD]!")
    finding = PersonalDataFinding.objects.get(detector="phone")
    client.post(f"/manage/governance/findings/{finding.pk}/", {"action": "clean"})
    assert set(PersonalDataFinding.objects.values_list("detector", "status")) == {
        ("email", "open"), ("phone", "clean"), ("card", "redacted"), ("iban", "open")}
    assert "****1111" in client.get("/manage/governance/findings/", {"status": "redacted"}).content.decode()


def test_annotators_cannot_see_findings(rows, annotator, client):
    client.force_login(annotator)
    assert client.get("/manage/governance/findings/").status_code == 403
    assert api_as(annotator).get("/api/governance/findings/").status_code == 403


def test_the_findings_api_lists_and_resolves(rows, admin_user):
    scan.personal_data_scan_run()
    api = api_as(admin_user)
    listed = api.get("/api/governance/findings/", {"detector": "iban"}).json()
    results = listed["results"] if isinstance(listed, dict) else listed
    assert [f["excerpt"] for f in results] == ["DE***00"]
    finding = PersonalDataFinding.objects.get(detector="iban")
    response = api.post(f"/api/governance/findings/{finding.pk}/resolve/", {"action": "redact"}, format="json")
    assert response.status_code == 200 and response.json()["status"] == "redacted"
    assert Demonstration.objects.get().text == "Pay to [IBAN]."
    assert api.post(f"/api/governance/findings/{finding.pk}/resolve/", {"action": "burn"}, format="json").status_code == 400

"""Large imports run as background jobs (feedback/import_jobs.py): over ARBITER_IMPORT_INLINE_MAX_BYTES
the page and the API queue a job (202 / redirect to its page) that the worker's task runs; the job's
row and page show the summary, or the problems and the limit passed (nothing written)."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django_tasks_db.models import DBTaskResult

from feedback.import_jobs import import_job_run
from feedback.models import ImportJob, ImportJobStatus
from tests.conftest import api_as
from tests.import_files import assistant, nothing_written, row_counts, user

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def small_inline_limit(settings, tmp_path):
    settings.ARBITER_DATA_DIR = tmp_path / "data"
    settings.ARBITER_IMPORT_INLINE_MAX_BYTES = 200


def upload(count: int) -> SimpleUploadedFile:
    rows = [{"prompt": [user(f"Question {n}?")], "chosen": [assistant("Good.")], "rejected": [assistant("Bad.")]}
            for n in range(count)]
    return SimpleUploadedFile("prefs.jsonl", "".join(json.dumps(row) + "\n" for row in rows).encode())


def run_queued_task() -> ImportJob:
    task = DBTaskResult.objects.get()
    assert task.task_path == "feedback.tasks.import_execute"
    return import_job_run(job_id=task.args_kwargs["args"][0])


def test_the_api_queues_a_large_file_and_the_job_shows_the_summary(admin_user, settings,
                                                                   django_capture_on_commit_callbacks):
    api = api_as(admin_user)
    small = api.post("/api/imports/preferences/", {"file": upload(1), "format": "trl"}, format="multipart")
    assert small.status_code == 201 and small.json()["imported"] == 1  # under the threshold: inline as before

    with django_capture_on_commit_callbacks(execute=True):
        response = api.post("/api/imports/preferences/", {"file": upload(5), "format": "trl", "source": "bulk"},
                            format="multipart")
    assert response.status_code == 202
    body = response.json()
    assert body["status"] == "queued" and response["Location"] == body["url"] == f"/api/imports/jobs/{body['id']}/"
    job = ImportJob.objects.get()
    kept = Path(job.file_path)
    assert (Path(settings.ARBITER_DATA_DIR) / kept).is_file()
    assert row_counts() == (1, 2, 1, 1)  # nothing of the large file yet

    job = run_queued_task()
    assert job.status == ImportJobStatus.SUCCEEDED and job.summary["imported"] == 4  # one was already present
    assert job.file_path == "" and not (Path(settings.ARBITER_DATA_DIR) / kept).exists()  # the kept upload is gone
    shown = api.get(body["url"]).json()
    assert shown["status"] == "succeeded" and shown["summary"]["already_present"] == 1
    assert api_as(admin_user).get("/api/imports/jobs/999/").status_code == 404


def test_a_job_refused_by_a_limit_records_it_and_writes_nothing(admin_user, client, settings,
                                                                django_capture_on_commit_callbacks):
    settings.ARBITER_IMPORT_MAX_ROWS = 3
    client.force_login(admin_user)
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post("/manage/imports/", {"file": upload(5), "format": "trl"})
    job = ImportJob.objects.get()
    assert response.status_code == 302 and response["Location"] == f"/manage/imports/jobs/{job.pk}/"
    page = client.get(response["Location"]).content.decode()
    assert "queued" in page and 'hx-trigger="every 2s"' in page

    job = run_queued_task()
    assert job.status == ImportJobStatus.FAILED and nothing_written()
    assert job.limit == {"setting": "ARBITER_IMPORT_MAX_ROWS", "limit": 3, "unit": "line", "number": 4}
    page = client.get(f"/manage/imports/jobs/{job.pk}/").content.decode()
    assert "ARBITER_IMPORT_MAX_ROWS" in page and "line 4" in page and "every 2s" not in page
    poll = client.get(f"/manage/imports/jobs/{job.pk}/", HTTP_HX_REQUEST="true")
    assert poll.status_code == 286
    assert f'href="/manage/imports/jobs/{job.pk}/"' in client.get("/manage/imports/").content.decode()


def test_annotators_cannot_see_import_jobs(annotator, admin_user):
    job = ImportJob.objects.create(format="trl", created_by=admin_user)
    assert api_as(annotator).get(f"/api/imports/jobs/{job.pk}/").status_code == 403


def test_an_upload_cut_off_half_way_leaves_no_file_and_no_job(admin_user, settings):
    """A client that goes away (or a full disk) mid-upload: the error reaches the caller, no job row
    is written and no half-written file stays under ARBITER_DATA_DIR/imports."""
    from feedback.import_jobs import import_job_create

    def chunks():
        yield b'{"prompt": "p", "chosen": "a", "rejected": "b"}\n'
        raise OSError("connection reset by peer")

    with pytest.raises(OSError, match="connection reset"):
        import_job_create(chunks=chunks(), file_name="cut.jsonl", format="trl", options={}, created_by=admin_user)
    assert ImportJob.objects.count() == 0
    imports = Path(settings.ARBITER_DATA_DIR) / "imports"
    assert [p.name for p in imports.iterdir()] == []

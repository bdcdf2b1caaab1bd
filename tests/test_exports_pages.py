"""Exports through the admin page, the REST API, the download and ``manage.py export_preferences``:
who may use them, what they answer, background jobs through the real task worker, and bad input."""
from __future__ import annotations

import hashlib
import io
import json
import zipfile
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command
from django.test import Client
from django_tasks_db.models import DBTaskResult

from feedback.exports.services import export_create, exports_root
from feedback.models import Export, ExportStatus
from tests.conftest import api_as
from tests.export_fixtures import export_world, jsonl_rows

pytestmark = pytest.mark.django_db


@pytest.fixture
def world(settings, tmp_path):
    settings.ARBITER_DATA_DIR = tmp_path / "data"
    return export_world()


def browser(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def body_bytes(response) -> bytes:
    return b"".join(response.streaming_content) if response.streaming else response.content


# --- who may ------------------------------------------------------------------------------------


def test_annotators_get_403_on_the_page_the_api_and_the_download(world):
    export = export_create(format="trl-preference", file_type="jsonl")
    alice = world.users["alice"]
    client, api = browser(alice), api_as(alice)
    assert client.get("/manage/exports/").status_code == 403
    assert client.post("/manage/exports/", {"format": "trl-preference", "file_type": "jsonl"}).status_code == 403
    assert client.get(f"/manage/exports/{export.pk}/download/").status_code == 403
    assert api.get("/api/exports/").status_code == 403
    assert api.get(f"/api/exports/{export.pk}/").status_code == 403
    assert api.get(f"/api/exports/{export.pk}/download/").status_code == 403
    assert api.post("/api/exports/", {"format": "trl-preference", "file_type": "jsonl"}, format="json").status_code == 403
    assert Export.objects.count() == 1


def test_anonymous_visitors_are_sent_to_log_in_or_refused(world):
    export = export_create(format="trl-preference", file_type="jsonl")
    response = Client().get(f"/manage/exports/{export.pk}/download/")
    assert response.status_code == 302 and "/accounts/login/" in response["Location"]
    assert api_as(None).get(f"/api/exports/{export.pk}/download/").status_code in (401, 403)


# --- the page -----------------------------------------------------------------------------------


def test_the_page_form_exports_inline_and_lists_the_export_with_its_download(world):
    client = browser(world.users["admin"])
    response = client.post("/manage/exports/", {
        "format": "raw-votes", "file_type": "csv", "annotators": "alice, bob", "splits": ["train"], "gold": "include",
    })
    assert response.status_code == 302 and response["Location"] == "/manage/exports/"
    export = Export.objects.get()
    assert export.status == ExportStatus.SUCCEEDED and export.created_by == world.users["admin"]
    assert export.filters["annotators"] == sorted([world.users["alice"].pk, world.users["bob"].pk])
    assert export.row_count == 6  # alice's and bob's train votes
    page = client.get("/manage/exports/").content.decode()
    assert f"Export {export.pk} written: 6 rows." in page
    assert f'href="/manage/exports/{export.pk}/download/"' in page and export.checksum[:10] in page
    download = client.get(f"/manage/exports/{export.pk}/download/")
    content = body_bytes(download)
    assert download.status_code == 200 and hashlib.sha256(content).hexdigest() == export.checksum
    assert download["X-Checksum-SHA256"] == export.checksum
    assert f'filename="arbiter-export-{export.pk}-raw-votes.csv"' in download["Content-Disposition"]
    assert content.decode().splitlines()[0].startswith("vote_id,comparison_id,")


def test_bad_form_input_is_shown_next_to_its_field_and_nothing_is_recorded(world):
    client = browser(world.users["admin"])
    response = client.post("/manage/exports/", {
        "format": "trl-preference", "file_type": "csv", "annotators": "nobody", "gold": "include",
    })
    page = response.content.decode()
    assert response.status_code == 400
    assert "trl-preference cannot be written as csv" in page and "no such annotator: nobody" in page
    assert not Export.objects.exists()
    response = client.post("/manage/exports/", {"format": "hh-rlhf", "file_type": "jsonl", "real_usernames": "on",
                                                "gold": "include"})
    assert response.status_code == 400 and "does not apply to hh-rlhf" in response.content.decode()


def test_the_table_polls_while_an_export_is_active_and_stops_with_286(world, settings):
    client = browser(world.users["admin"])
    headers = {"HTTP_HX_REQUEST": "true", "HTTP_HX_TARGET": "export-table"}
    export_create(format="trl-preference", file_type="jsonl")
    done = client.get("/manage/exports/", **headers)
    assert done.status_code == 286 and 'hx-trigger="every 2s"' not in done.content.decode()
    settings.ARBITER_EXPORT_INLINE_MAX_VOTES = 0
    queued = export_create(format="trl-preference", file_type="jsonl")
    live = client.get("/manage/exports/", **headers)
    assert live.status_code == 200 and 'hx-trigger="every 2s"' in live.content.decode()
    assert f'id="export-{queued.pk}"' in live.content.decode() and "<html" not in live.content.decode()


# --- the API ------------------------------------------------------------------------------------


def test_api_create_inline_then_get_and_download(world):
    api = api_as(world.users["admin"])
    response = api.post("/api/exports/", {"format": "trl-preference", "file_type": "jsonl",
                                          "filters": {"exclude_annotators": ["carol"]}}, format="json")
    assert response.status_code == 201, response.json()
    body = response.json()
    assert body["status"] == "succeeded" and body["row_count"] == 2 and body["inline"] is True
    assert body["filters"]["exclude_annotators"] == [world.users["carol"].pk]
    assert body["download_url"] == f"http://testserver/api/exports/{body['id']}/download/"
    assert api.get(f"/api/exports/{body['id']}/").json()["checksum"] == body["checksum"]
    assert [item["id"] for item in api.get("/api/exports/").json()["results"]] == [body["id"]]
    download = api.get(body["download_url"], HTTP_ACCEPT="application/octet-stream")
    content = body_bytes(download)
    assert download.status_code == 200 and hashlib.sha256(content).hexdigest() == body["checksum"]
    assert [json.loads(line)["chosen"][0]["content"] for line in content.decode().splitlines()] == ["Four.", "Ahoy, matey!"]


def test_api_bad_input_is_400_with_field_messages_and_nothing_recorded(world):
    api = api_as(world.users["admin"])
    response = api.post("/api/exports/", {"format": "excel", "file_type": "jsonl", "filters": {"min_agreement": 3}},
                        format="json")
    assert response.status_code == 400
    assert response.json() == {
        "format": ["unknown format 'excel'; expected one of trl-preference, trl-unpaired, raw-votes, hh-rlhf, arena"],
        "min_agreement": ["must be a number from 0 to 1"],
    }
    assert api.post("/api/exports/", {"format": "arena"}, format="json").json() == {"file_type": ["This field is required."]}
    assert not Export.objects.exists()


@pytest.mark.django_db(transaction=True)  # the worker closes and reopens the connection
def test_a_large_export_is_queued_and_the_real_worker_writes_it(world, settings):
    settings.ARBITER_EXPORT_INLINE_MAX_VOTES = 5  # the world has 9 votes
    api = api_as(world.users["admin"])
    response = api.post("/api/exports/", {"format": "arena", "file_type": "parquet"}, format="json")
    assert response.status_code == 202 and response.json()["status"] == "queued"
    export = Export.objects.get()
    task = DBTaskResult.objects.get()
    assert task.task_path == "feedback.tasks.export_execute" and task.args_kwargs["args"] == [export.pk]
    assert export.task_id == str(task.id) and not export.inline
    assert api.get(f"/api/exports/{export.pk}/download/").status_code == 404  # no file yet

    call_command("db_worker", batch=True, no_startup_delay=True, stdout=io.StringIO(), stderr=io.StringIO())

    body = api.get(f"/api/exports/{export.pk}/").json()
    assert body["status"] == "succeeded" and body["row_count"] == 9 and body["percent"] == 100
    import pyarrow.parquet as pq

    path = Path(settings.ARBITER_DATA_DIR) / Export.objects.get().file_path
    assert pq.read_table(path).column("winner").to_pylist()[:3] == ["model_a", "model_a", "model_b"]


@pytest.mark.django_db(transaction=True)
def test_a_datasets_folder_is_queued_and_downloads_as_a_zip_that_datasets_loads(world, tmp_path):
    from datasets import load_from_disk

    response = api_as(world.users["admin"]).post(
        "/api/exports/", {"format": "trl-preference", "file_type": "hf-dataset"}, format="json")
    assert response.status_code == 202  # datasets folders always go to the worker
    call_command("db_worker", batch=True, no_startup_delay=True, stdout=io.StringIO(), stderr=io.StringIO())
    export = Export.objects.get()
    assert export.status == ExportStatus.SUCCEEDED
    download = browser(world.users["admin"]).get(f"/manage/exports/{export.pk}/download/")
    assert download["Content-Type"] == "application/zip"
    with zipfile.ZipFile(io.BytesIO(body_bytes(download))) as archive:
        archive.extractall(tmp_path / "unzipped")
    dataset = load_from_disk(str(tmp_path / "unzipped" / f"arbiter-export-{export.pk}-trl-preference"))
    assert len(dataset["train"]) == 3 and len(dataset["eval"]) == 0


def test_a_stale_running_export_is_reaped_as_failed(world):
    from datetime import timedelta

    from django.utils import timezone

    export = Export.objects.create(format="raw-votes", file_type="csv", status=ExportStatus.RUNNING,
                                   heartbeat_at=timezone.now() - timedelta(hours=1))
    browser(world.users["admin"]).get("/manage/exports/")
    export.refresh_from_db()
    assert export.status == ExportStatus.FAILED and "stopped reporting progress" in export.error


# --- manage.py export_preferences ---------------------------------------------------------------


def test_the_command_records_an_export_and_prints_rows_checksum_and_path(world):
    out, err = io.StringIO(), io.StringIO()
    call_command("export_preferences", "--format", "trl-unpaired", "--file-type", "jsonl", "--plain-text",
                 "--exclude-annotator", "carol", stdout=out, stderr=err)
    export = Export.objects.get()
    path = Path(exports_root()) / Path(export.file_path).name
    assert out.getvalue().splitlines() == [
        f"{export.row_count} rows from 7 votes on 5 comparisons (no row: split_votes=1, ties=1)",
        f"sha256 {export.checksum}",
        f"path {path.resolve()}",
    ]
    assert export.row_count == 6 and export.inline and export.options == {"conversational": False, "include_eval_set_prompts": False}
    assert "votes read" in err.getvalue() and "rows written" in err.getvalue()
    assert jsonl_rows(path)[0] == {"prompt": "\n\nHuman: What is 2 + 2?\n\nAssistant:", "completion": " Four.", "label": True}


@pytest.mark.parametrize(
    "arguments, message",
    [
        (["--format", "trl-dpo", "--file-type", "jsonl"], "format: unknown format 'trl-dpo'"),
        (["--format", "raw-votes", "--file-type", "csv", "--date-from", "last week"], "date_from: must be an ISO 8601"),
        (["--format", "raw-votes", "--file-type", "csv", "--annotator", "nobody"], "annotators: no such annotator: nobody"),
        (["--format", "hh-rlhf", "--file-type", "jsonl", "--no-margin"], "options: 'include_margin' does not apply to hh-rlhf"),
        (["--format", "raw-votes", "--file-type", "csv", "--min-agreement", "2"], "min_agreement: must be a number from 0 to 1"),
    ],
)
def test_the_command_refuses_bad_input_in_one_line_and_writes_nothing(world, tmp_path, arguments, message):
    output = tmp_path / "out.jsonl"
    with pytest.raises(CommandError) as caught:
        call_command("export_preferences", *arguments, "--output", str(output), stdout=io.StringIO(), stderr=io.StringIO())
    assert message in str(caught.value) and "\n" not in str(caught.value)
    assert not output.exists() and not any(p.name.startswith(".incoming") for p in tmp_path.iterdir())
    assert not Export.objects.exists()


def test_the_command_refuses_an_existing_output(world, tmp_path):
    output = tmp_path / "taken.jsonl"
    output.write_text("mine\n")
    with pytest.raises(CommandError, match="already exists"):
        call_command("export_preferences", "--format", "hh-rlhf", "--file-type", "jsonl", "--output", str(output),
                     stdout=io.StringIO(), stderr=io.StringIO())
    assert output.read_text() == "mine\n"


def test_one_row_one_vote_one_comparison_are_said_in_the_singular(world):
    """The gold comparison has carol's vote alone: "1 row from 1 vote on 1 comparison", not "1 rows"."""
    out, err = io.StringIO(), io.StringIO()
    call_command("export_preferences", "--format", "raw-votes", "--file-type", "jsonl", "--gold", "only",
                 stdout=out, stderr=err)
    assert out.getvalue().splitlines()[0] == "1 row from 1 vote on 1 comparison"
    assert "1 vote read, 1 row written" in err.getvalue()

    client = browser(world.users["admin"])
    client.post("/manage/exports/", {"format": "raw-votes", "file_type": "csv", "gold": "only"})
    export = Export.objects.latest("id")
    page = client.get("/manage/exports/").content.decode()
    assert f"Export {export.pk} written: 1 row." in page and "1 rows" not in page
    assert "1/1 vote<" in page


# --- the tag filter on every entry point (it used to fail on SQLite with "no such column") ------


def test_the_tag_filter_works_on_the_page_the_api_and_the_command(world, tmp_path):
    # Only the "math" prompt ("What is 2 + 2?") is tagged math: its pair gives the one row.
    client = browser(world.users["admin"])
    response = client.post("/manage/exports/", {"format": "trl-preference", "file_type": "jsonl", "tags": "math",
                                                "gold": "include"})
    assert response.status_code == 302
    page_export = Export.objects.get()
    assert page_export.status == ExportStatus.SUCCEEDED and page_export.row_count == 1
    api = api_as(world.users["admin"])
    response = api.post("/api/exports/", {"format": "trl-preference", "file_type": "jsonl",
                                          "filters": {"tags": ["math"]}}, format="json")
    assert response.status_code == 201 and response.json()["row_count"] == 1
    output = tmp_path / "math.jsonl"
    call_command("export_preferences", "--format", "trl-preference", "--file-type", "jsonl", "--tag", "math",
                 "--output", str(output), stdout=io.StringIO(), stderr=io.StringIO())
    assert [row["chosen"][0]["content"] for row in jsonl_rows(output)] == ["Four."]
    api_export = Export.objects.get(pk=response.json()["id"])
    assert api_export.checksum == page_export.checksum

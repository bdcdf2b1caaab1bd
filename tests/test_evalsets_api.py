"""The eval-set API (list, upload, detail, items; 400s by field) and the admin pages."""
from __future__ import annotations

import json

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client

from feedback.evalsets.models import EvalSet
from tests.conftest import api_as

pytestmark = pytest.mark.django_db

GOOD = "".join(json.dumps(row) + "\n" for row in (
    {"prompt": "What is the capital of France?", "category": "geo"},
    {"prompt": "what is the capital of FRANCE", "reference": "Paris"},
    {"messages": [{"role": "user", "content": "Write a haiku."}], "category": "creative", "tags": ["poem"]},
))


def upload(content: str | bytes, name: str = "set.jsonl") -> SimpleUploadedFile:
    return SimpleUploadedFile(name, content.encode("utf-8") if isinstance(content, str) else content)


def post(client, content, *, name="prod", file_name="set.jsonl", **extra):
    return client.post("/api/eval-sets/", {"file": upload(content, file_name), "name": name, **extra}, format="multipart")


def test_upload_creates_a_version_then_gives_it_back(admin_user):
    client = api_as(admin_user)
    created = post(client, GOOD)
    assert created.status_code == 201, created.content
    body = created.json()
    assert (body["name"], body["version"], body["created"], body["item_count"]) == ("prod", 1, True, 2)
    assert (body["lines_read"], body["duplicates_merged"]) == (3, 1)
    assert body["categories"] == {"creative": 1, "geo": 1}
    again = post(client, GOOD)
    assert again.status_code == 200 and again.json()["created"] is False and again.json()["id"] == body["id"]
    assert post(client, GOOD + '{"prompt": "new"}\n').json()["version"] == 2


def test_list_detail_and_items(admin_user):
    client = api_as(admin_user)
    first = post(client, GOOD).json()
    post(client, GOOD + '{"prompt": "new"}\n')
    listed = client.get("/api/eval-sets/").json()["results"]
    assert [(s["name"], s["version"]) for s in listed] == [("prod", 2), ("prod", 1)]
    detail = client.get(f"/api/eval-sets/{first['id']}/").json()
    assert detail["content_hash"] == first["content_hash"] and [v["version"] for v in detail["versions"]] == [1, 2]
    items = client.get(f"/api/eval-sets/{first['id']}/items/").json()["results"]
    assert [i["messages"][0]["content"] for i in items] == ["What is the capital of France?", "Write a haiku."]
    assert items[0]["reference"] == "Paris" and items[0]["duplicates"] == 1 and items[1]["tags"] == ["poem"]
    assert client.get("/api/eval-sets/999/").status_code == 404


@pytest.mark.parametrize("content, file_name, field, expected", [
    ("", "e.jsonl", "file", "The submitted file is empty."),
    ("\n \n", "e.jsonl", "file", "the file holds no prompts"),
    ("question\nWhy?\n", "q.csv", "file", "line 1: no 'prompt' column (the header has 'question')"),
    ('{"prompt": "ok"}\n{oops\n', "m.jsonl", "file", "line 2: not JSON"),
    ('{"messages": [{"role": "system", "content": "x"}]}\n', "s.jsonl", "file", "line 1: messages: no user turn"),
    ("prompt\ncaf\u00e9\n".encode("latin-1"), "l.csv", "file", "line 2: not UTF-8"),
])
def test_bad_files_are_400s_naming_the_line(admin_user, content, file_name, field, expected):
    response = post(api_as(admin_user), content, file_name=file_name)
    assert response.status_code == 400
    assert any(message.startswith(expected) for message in response.json()[field]), response.json()
    assert not EvalSet.objects.exists()


def test_an_import_limit_is_named(admin_user, settings):
    settings.ARBITER_IMPORT_MAX_VALUE_CHARS = 10
    response = post(api_as(admin_user), '{"prompt": "far more than ten characters"}\n')
    assert response.status_code == 400 and response.json()["limit"]["setting"] == "ARBITER_IMPORT_MAX_VALUE_CHARS"


def test_bad_fields_are_400s_by_field(admin_user):
    client = api_as(admin_user)
    assert "name" in post(client, GOOD, name="!!").json()
    assert "name" in client.post("/api/eval-sets/", {"file": upload(GOOD)}, format="multipart").json()
    assert "file" in client.post("/api/eval-sets/", {"name": "x"}, format="multipart").json()
    assert "format" in post(client, GOOD, format="xml").json()


def test_only_admins(annotator):
    assert api_as(annotator).get("/api/eval-sets/").status_code == 403
    assert post(api_as(annotator), GOOD).status_code == 403
    assert api_as(None).get("/api/eval-sets/").status_code in (401, 403)


def test_admin_pages_import_list_and_show(admin_user):
    client = Client()
    client.force_login(admin_user)
    assert client.get("/manage/evalsets/").status_code == 200
    response = client.post("/manage/evalsets/", {"name": "prod", "file": upload(GOOD)})
    page = response.content.decode()
    assert response.status_code == 200 and "merged 1 duplicate" in page and "version 1: 2 prompts" in page
    s = EvalSet.objects.get()
    listing = client.get("/manage/evalsets/").content.decode()
    assert f'href="/manage/evalsets/{s.pk}/"' in listing
    detail = client.get(f"/manage/evalsets/{s.pk}/").content.decode()
    assert s.content_hash in detail and "creative: 1" in detail and "Write a haiku." in detail
    bad = client.post("/manage/evalsets/", {"name": "prod", "file": upload('{"prompt": ""}\n')})
    assert bad.status_code == 400 and "line 1: prompt: is empty" in bad.content.decode()


def test_admin_pages_refuse_annotators(annotator):
    client = Client()
    client.force_login(annotator)
    assert client.get("/manage/evalsets/").status_code == 403


def test_django_admin_is_view_only(admin_user):
    admin_user.is_superuser = admin_user.is_staff = True
    admin_user.save()
    client = Client()
    client.force_login(admin_user)
    assert client.post("/api/eval-sets/", {}).status_code in (400, 403)
    post(api_as(admin_user), GOOD)
    s = EvalSet.objects.get()
    assert client.get(f"/admin/feedback/evalset/{s.pk}/change/").status_code == 200
    assert client.get("/admin/feedback/evalset/add/").status_code == 403
    assert client.get(f"/admin/feedback/evalset/{s.pk}/delete/").status_code == 403

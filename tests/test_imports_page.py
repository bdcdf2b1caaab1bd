"""/manage/imports/: admins upload a small preference file and see the summary or every problem."""
import json

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client

from feedback import views
from feedback.models import Completion, Vote
from tests.import_files import assistant, nothing_written, row_counts, user

pytestmark = pytest.mark.django_db

URL = "/manage/imports/"


def client_for(person) -> Client:
    client = Client()
    client.force_login(person)
    return client


def upload(rows: list, name: str = "prefs.jsonl") -> SimpleUploadedFile:
    text = "".join((row if isinstance(row, str) else json.dumps(row)) + "\n" for row in rows)
    return SimpleUploadedFile(name, text.encode("utf-8"), content_type="application/octet-stream")


def pair(n: int) -> dict:
    return {"prompt": [user(f"Question {n}?")], "chosen": [assistant("Good.")], "rejected": [assistant("Bad.")]}


def test_an_admin_imports_a_file_and_sees_the_summary(admin_user):
    client = client_for(admin_user)
    assert client.get(URL).status_code == 200

    response = client.post(URL, {"file": upload([pair(1), pair(2)]), "format": "trl", "source": "upload", "model_name": "m1"})

    assert response.status_code == 200
    page = response.content.decode()
    assert "2 lines read: 2 imported, 0 already present, 0 refused" in page
    assert row_counts() == (2, 4, 2, 2)
    assert set(Completion.objects.values_list("model_name", flat=True)) == {"m1"}
    assert set(Vote.objects.values_list("source", flat=True)) == {"upload"}


def test_arena_battles_upload_with_their_model_names(admin_user):
    battle = {
        "model_a": "alpha", "model_b": "beta", "winner": "tie (bothbad)",
        "conversation_a": [user("Hi"), assistant("Hello")], "conversation_b": [user("Hi"), assistant("Hey")],
    }
    response = client_for(admin_user).post(URL, {"file": upload([battle]), "format": "arena", "model_name": "ignored"})
    assert response.status_code == 200
    assert sorted(Completion.objects.values_list("model_name", flat=True)) == ["alpha", "beta"]
    assert Vote.objects.get().choice == "both_bad"


def test_a_bad_file_shows_every_problem_by_line_and_imports_nothing(admin_user):
    response = client_for(admin_user).post(
        URL, {"file": upload([pair(1), {"prompt": "p", "chosen": "c"}, "{oops"]), "format": "trl"}
    )
    assert response.status_code == 400
    page = response.content.decode()
    assert "Nothing was imported" in page
    assert "line 2: missing &#x27;rejected&#x27;" in page
    assert "line 3: not JSON" in page
    assert "arbiter-import-" not in page  # the temporary file's name is not shown
    assert nothing_written()


def test_rows_that_cannot_be_stored_import_nothing_unless_skip_refused_is_ticked(admin_user):
    multi_turn = {"prompt": [user("q")], "chosen": [assistant("x"), user("more"), assistant("y")], "rejected": [assistant("z")]}
    client = client_for(admin_user)

    response = client.post(URL, {"file": upload([pair(1), multi_turn]), "format": "trl"})

    assert response.status_code == 400
    page = response.content.decode()
    assert "Nothing was imported: some rows are flagged as doubtful" in page
    assert "line 2: refused: chosen: holds 3 messages" in page
    assert nothing_written()

    response = client.post(URL, {"file": upload([pair(1), multi_turn]), "format": "trl", "skip_refused": "on"})

    assert response.status_code == 200
    page = response.content.decode()
    assert "2 lines read: 1 imported, 0 already present, 1 refused" in page
    assert "refused line 2: chosen: holds 3 messages" in page
    assert row_counts() == (1, 2, 1, 1)


def test_an_unknown_format_and_a_file_over_the_cap_are_refused(admin_user, monkeypatch):
    client = client_for(admin_user)
    response = client.post(URL, {"file": upload([pair(1)]), "format": "csv"})
    assert response.status_code == 400 and "Select a valid choice" in response.content.decode()

    monkeypatch.setattr(views, "IMPORT_UPLOAD_MAX_BYTES", 10)
    response = client.post(URL, {"file": upload([pair(1)]), "format": "trl"})
    assert response.status_code == 400 and "manage.py import_preferences" in response.content.decode()
    assert nothing_written()


def test_only_feedback_admins_may_import(annotator):
    assert Client().get(URL).status_code == 302  # to the login page
    client = client_for(annotator)
    assert client.get(URL).status_code == 403
    assert client.post(URL, {"file": upload([pair(1)]), "format": "trl"}).status_code == 403
    assert nothing_written()

"""The judges' page, launcher, REST API and ``manage.py judge``: admins only, errors by field, one
line on bad command input."""
import io

import pytest
from django.core.management import CommandError, call_command
from django.test import Client

from tests.conftest import api_as
from tests.factories import ComparisonFactory, UserFactory
from training.judges.models import Judge
from training.judges.services import judge_save
from training.models import Job, JobKind

URL = "http://127.0.0.1:9/v1"


@pytest.fixture
def admin(db):
    return UserFactory(role="admin")


@pytest.fixture
def as_admin(admin):
    client = Client()
    client.force_login(admin)
    return client


@pytest.fixture
def judge(db):
    return judge_save(name="gpt", kind="openai", base_url=URL, model_name="m", api_key_env="JUDGE_KEY")[0]


def test_annotators_cannot_see_judges(db):
    client = Client()
    client.force_login(UserFactory(role="annotator"))
    assert client.get("/manage/judges/").status_code == 403
    assert api_as(UserFactory(role="annotator")).get("/api/judges/").status_code == 403


def test_the_judges_page_lists_judges_and_registers_one(as_admin, judge):
    page = as_admin.get("/manage/judges/").content.decode()
    assert "gpt@1" in page and "Register a judge" in page
    response = as_admin.post("/manage/judges/", {
        "name": "gpt", "kind": "openai", "base_url": URL, "model_name": "m2", "api_key_env": "JUDGE_KEY",
        "template": "pairwise@1", "constitution": "", "timeout_s": 5, "max_retries": 1, "max_concurrency": 2,
        "label_mass_min": 0.05, "tie_band": 0.1,
    })
    second = Judge.objects.get(name="gpt", version=2)
    assert response.status_code == 302 and response.url == f"/manage/judges/{second.pk}/"
    detail = as_admin.get(response.url).content.decode()
    assert "JUDGE_KEY" in detail and "m2 at " + URL in detail


def test_a_bad_judge_shows_errors_by_field_and_saves_nothing(as_admin):
    response = as_admin.post("/manage/judges/", {
        "name": "x", "kind": "openai", "base_url": "nope", "model_name": "", "api_key_env": "SECRET_KEY",
        "template": "pairwise@1", "timeout_s": 5, "max_retries": 1, "max_concurrency": 2, "label_mass_min": 0.05, "tie_band": 0.1,
    })
    page = response.content.decode()
    assert response.status_code == 400 and "platform&#x27;s own secrets" in page and "http(s) URL" in page
    assert not Judge.objects.exists()


def test_launching_a_judging_job_goes_to_its_page(as_admin, judge, django_capture_on_commit_callbacks):
    comparisons = ComparisonFactory.create_batch(3)
    assert "gpt@1" in as_admin.get("/manage/judges/launch/").content.decode()
    with django_capture_on_commit_callbacks(execute=False):
        response = as_admin.post("/manage/judges/launch/", {
            "judge": "gpt@1", "comparison_ids": f"{comparisons[0].pk}, {comparisons[2].pk}", "batch_size": 4, "only_unjudged": "on",
        })
    job = Job.objects.get(kind=JobKind.JUDGING)
    assert response.status_code == 302 and response.url == f"/manage/jobs/{job.pk}/"
    assert job.config["comparison_ids"] == [comparisons[0].pk, comparisons[2].pk] and job.progress_total == 2
    page = as_admin.get(response.url).content.decode()
    assert "comparisons" in page and "gpt@1" in page


def test_launching_over_nothing_is_refused_on_the_form(as_admin, judge):
    response = as_admin.post("/manage/judges/launch/", {"judge": "gpt@1", "comparison_ids": "999999", "batch_size": 4})
    assert response.status_code == 400 and "nothing to judge" in response.content.decode()
    assert not Job.objects.exists()


def test_the_api_registers_lists_and_launches(admin, django_capture_on_commit_callbacks):
    api = api_as(admin)
    created = api.post("/api/judges/", {"name": "gpt", "kind": "openai", "base_url": URL, "model_name": "m",
                                        "api_key_env": "JUDGE_KEY", "options": {"max_retries": 1}}, format="json")
    assert created.status_code == 201 and created.json()["ref"] == "gpt@1" and created.json()["api_key_env"] == "JUDGE_KEY"
    again = api.post("/api/judges/", {"name": "gpt", "kind": "openai", "base_url": URL, "model_name": "m",
                                      "api_key_env": "JUDGE_KEY", "options": {"max_retries": 1}}, format="json")
    assert again.status_code == 200 and again.json()["version"] == 1
    bad = api.post("/api/judges/", {"name": "gpt", "kind": "openai", "base_url": URL, "model_name": "m", "api_key_env": "sk-live-1"}, format="json")
    assert bad.status_code == 400 and "api_key_env" in bad.json()
    assert [j["ref"] for j in api.get("/api/judges/").json()["results"]] == ["gpt@1"]
    comparison = ComparisonFactory()
    judge_id = created.json()["id"]
    with django_capture_on_commit_callbacks(execute=False):
        launched = api.post(f"/api/judges/{judge_id}/jobs/", {"comparison_ids": [comparison.pk]}, format="json")
    assert launched.status_code == 201 and launched.json()["config"]["judge"] == "gpt@1"
    status = api.get(f"/api/jobs/{launched.json()['id']}/").json()
    assert (status["kind"], status["status"], status["progress_total"]) == ("judging", "queued", 1)
    refused = api.post(f"/api/judges/{judge_id}/jobs/", {}, format="json")
    assert refused.status_code == 400 and "campaign_id" in refused.json()


def _command_error(*args) -> str:
    with pytest.raises(CommandError) as caught:
        call_command(*args, stdout=io.StringIO())
    message = str(caught.value).strip()
    assert message and "\n" not in message
    return message


@pytest.mark.django_db
def test_the_command_registers_lists_queues_and_refuses_in_one_line(django_capture_on_commit_callbacks):
    out = io.StringIO()
    call_command("judge", "register", "gpt", "--kind", "openai", "--base-url", URL, "--model", "m",
                 "--key-env", "JUDGE_KEY", "--set", "max_retries=1", stdout=out)
    assert out.getvalue().strip() == "registered: gpt@1"
    out = io.StringIO()
    call_command("judge", "list", stdout=out)
    assert out.getvalue().startswith("gpt@1\topenai\tm at " + URL)
    comparison = ComparisonFactory()
    out = io.StringIO()
    with django_capture_on_commit_callbacks(execute=False):
        call_command("judge", "run", "gpt", "--ids", str(comparison.pk), stdout=out)
    assert out.getvalue().startswith("queued judging job ") and "(gpt@1) over 1 comparison" in out.getvalue()
    assert _command_error("judge", "run", "nosuch", "--ids", "1") == "judge: no judge 'nosuch'"
    assert _command_error("judge", "run", "gpt") == "campaign_id: give a campaign (its open comparisons) or comparison ids"
    assert "api_key_env" in _command_error("judge", "register", "x", "--kind", "openai", "--base-url", URL, "--model", "m",
                                           "--key-env", "sk-abc")

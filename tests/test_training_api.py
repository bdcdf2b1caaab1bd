"""The checkpoint and job API: who may call it, creating a job (one row, one queued task), bad
configs (400 naming the field, nothing queued), cancel, filters, the reaper, and the schema."""
from datetime import timedelta

import pytest
from django.utils import timezone
from django_tasks_db.models import DBTaskResult
from rest_framework.test import APIClient

from training.models import Checkpoint, CheckpointKind, Job, JobKind, JobStatus
from tests.conftest import api_as
from tests.factories import PromptFactory, UserFactory

pytestmark = pytest.mark.django_db

ROLES = ["anonymous", "annotator", "admin", "no_role"]
GOOD = {"kind": "generation", "config": {"checkpoints": ["smol"], "limit": 2}}


def make_job(status=JobStatus.QUEUED, **fields) -> Job:
    now = timezone.now()
    defaults = {"kind": JobKind.GENERATION, "config": {"checkpoints": ["smol"]}}
    if status == JobStatus.RUNNING:
        defaults.update(started_at=now, heartbeat_at=now)
    if status in (JobStatus.SUCCEEDED, JobStatus.FAILED, JobStatus.CANCELLED):
        defaults["finished_at"] = now
    return Job.objects.create(status=status, **{**defaults, **fields})


@pytest.fixture
def world(annotator, admin_user):
    smol = Checkpoint.objects.create(name="smol", hub_id="x/smol", metadata={"param_count": 134_515_008})
    Checkpoint.objects.create(name="smol-dpo", hub_id="x/smol-dpo", parent=smol)
    Checkpoint.objects.create(name="smol-rm", hub_id="x/smol-rm", kind=CheckpointKind.REWARD, parent=smol)
    PromptFactory.create_batch(3, tags=["math"], split="train")
    return {
        "users": {"anonymous": None, "annotator": annotator, "admin": admin_user, "no_role": UserFactory()},
        "ids": {"checkpoint": smol.pk, "queued": make_job().pk, "running": make_job(JobStatus.RUNNING).pk},
    }


@pytest.fixture
def admin_api(world):
    return api_as(world["users"]["admin"])


def expect(anonymous, annotator, admin, no_role):
    return dict(zip(ROLES, (anonymous, annotator, admin, no_role), strict=True))


MATRIX = [
    ("get", "/api/checkpoints/", None, expect(401, 403, 200, 403)),
    ("post", "/api/checkpoints/", {"name": "new", "hub_id": "a/b"}, expect(401, 403, 405, 403)),
    ("get", "/api/checkpoints/{checkpoint}/", None, expect(401, 403, 200, 403)),
    ("put", "/api/checkpoints/{checkpoint}/", {"name": "renamed"}, expect(401, 403, 405, 403)),
    ("delete", "/api/checkpoints/{checkpoint}/", None, expect(401, 403, 405, 403)),
    ("get", "/api/checkpoints/999999/", None, expect(401, 403, 404, 403)),
    ("get", "/api/jobs/", None, expect(401, 403, 200, 403)),
    ("post", "/api/jobs/", GOOD, expect(401, 403, 201, 403)),
    ("get", "/api/jobs/{queued}/", None, expect(401, 403, 200, 403)),
    ("put", "/api/jobs/{queued}/", GOOD, expect(401, 403, 405, 403)),
    ("patch", "/api/jobs/{queued}/", {"status": "succeeded"}, expect(401, 403, 405, 403)),
    ("delete", "/api/jobs/{queued}/", None, expect(401, 403, 405, 403)),
    ("get", "/api/jobs/999999/", None, expect(401, 403, 404, 403)),
    ("post", "/api/jobs/{queued}/cancel/", None, expect(401, 403, 200, 403)),
    ("get", "/api/jobs/{queued}/cancel/", None, expect(401, 403, 405, 403)),
    ("post", "/api/jobs/999999/cancel/", None, expect(401, 403, 404, 403)),
]


@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize(("method", "path", "body", "expected"), MATRIX, ids=[f"{m.upper()} {p}" for m, p, _, _ in MATRIX])
def test_permission_matrix(world, django_capture_on_commit_callbacks, role, method, path, body, expected):
    client = api_as(world["users"][role])
    with django_capture_on_commit_callbacks(execute=True):
        response = getattr(client, method)(path.format(**world["ids"]), body, format="json")
    assert response.status_code == expected[role], response.content[:300]
    if role != "admin":
        assert Job.objects.count() == 2 and DBTaskResult.objects.count() == 0
        assert Job.objects.get(pk=world["ids"]["queued"]).status == JobStatus.QUEUED


def test_token_authentication_works_too(world):
    from feedback.tokens.services import api_token_issue

    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {api_token_issue(user=world['users']['admin'])[1]}")
    assert client.get("/api/jobs/").status_code == 200
    client.credentials(HTTP_AUTHORIZATION=f"Token {api_token_issue(user=world['users']['annotator'])[1]}")
    assert client.get("/api/jobs/").status_code == 403


# --- checkpoints -----------------------------------------------------------------------------------
def test_checkpoint_list_and_detail(admin_api, world):
    body = admin_api.get("/api/checkpoints/").json()
    assert [c["name"] for c in body["results"]] == ["smol-rm", "smol-dpo", "smol"]
    smol = admin_api.get(f"/api/checkpoints/{world['ids']['checkpoint']}/").json()
    assert smol["kind"] == "policy" and smol["parent"] is None and smol["parent_name"] is None
    assert smol["location"] == "x/smol" and smol["metadata"] == {"param_count": 134_515_008}
    assert len(smol["children"]) == 2
    rm = body["results"][0]
    assert rm["kind"] == "reward" and rm["parent_name"] == "smol"


def test_checkpoint_list_filters_by_kind(admin_api, world):
    assert [c["name"] for c in admin_api.get("/api/checkpoints/?kind=reward").json()["results"]] == ["smol-rm"]
    assert admin_api.get("/api/checkpoints/?kind=dragon").status_code == 400


# --- creating jobs ---------------------------------------------------------------------------------
def test_create_queues_one_job_and_one_task(admin_api, world, django_capture_on_commit_callbacks):
    config = {"checkpoints": ["smol"], "tag": "math", "max_new_tokens": 32, "seed": 3, "votes_required": 2}
    with django_capture_on_commit_callbacks(execute=True):
        response = admin_api.post("/api/jobs/", {"kind": "generation", "config": config}, format="json")
    assert response.status_code == 201, response.json()
    body = response.json()
    job = Job.objects.get(pk=body["id"])
    assert body["status"] == job.status == JobStatus.QUEUED
    assert body["created_by"] == world["users"]["admin"].username and job.created_by == world["users"]["admin"]
    assert body["progress_total"] == job.progress_total == 3
    assert body["config"] == job.config
    assert job.config == {
        "checkpoints": ["smol"], "strategy": "two_samples", "prompt_ids": None, "tag": "math", "split": None,
        "max_open_comparisons": None, "limit": None, "max_new_tokens": 32, "temperature": 0.8, "top_p": 0.95,
        "batch_size": 8, "seed": 3, "votes_required": 2, "priority": 0, "campaign_id": None, "extra": {},
        "backend": "transformers", "on_failure": "fail",
    }
    task = DBTaskResult.objects.get()
    assert task.task_path == "training.tasks.job_execute" and task.args_kwargs["args"] == [job.pk]
    assert Job.objects.get(pk=job.pk).task_id == str(task.id)


def test_create_head_to_head(admin_api, world, django_capture_on_commit_callbacks):
    body = {"kind": "generation", "config": {"checkpoints": ["smol", "smol-dpo"], "strategy": "head_to_head", "temperature": 0}}
    with django_capture_on_commit_callbacks(execute=True):
        response = admin_api.post("/api/jobs/", body, format="json")
    assert response.status_code == 201, response.json()
    assert response.json()["config"]["checkpoints"] == ["smol", "smol-dpo"]
    assert DBTaskResult.objects.count() == 1


def generation(**config):
    return {"kind": "generation", "config": {"checkpoints": ["smol"], **config}}


BAD = [
    ("unknown checkpoint", generation(checkpoints=["no-such-model"]), "checkpoints", "no checkpoint named"),
    ("reward checkpoint", generation(checkpoints=["smol-rm"]), "checkpoints", "needs a policy"),
    ("no checkpoints", {"kind": "generation", "config": {"limit": 3}}, "checkpoints", "required"),
    ("empty prompt selection", generation(tag="no-such-tag"), "prompts", "matches no prompts"),
    ("empty split", generation(split="eval"), "prompts", "matches no prompts"),
    ("max_new_tokens 0", generation(max_new_tokens=0), "max_new_tokens", "from 1 to 4096"),
    ("max_new_tokens 100000", generation(max_new_tokens=100_000), "max_new_tokens", "from 1 to 4096"),
    ("max_new_tokens text", generation(max_new_tokens="128"), "max_new_tokens", "integer"),
    ("greedy two_samples", generation(temperature=0), "temperature", "identical"),
    ("top_p 0", generation(top_p=0), "top_p", "(0, 1]"),
    ("batch_size 0", generation(batch_size=0), "batch_size", "from 1"),
    ("head_to_head with one", generation(strategy="head_to_head"), "checkpoints", "two different"),
    ("unknown strategy", generation(strategy="best_of_n"), "strategy", "must be one of"),
    ("unknown setting", generation(beams=4), "beams", "unknown setting"),
    ("unknown kind", {"kind": "training", "config": {"checkpoints": ["smol"]}}, "kind", "not a valid choice"),
    ("no kind", {"config": {"checkpoints": ["smol"]}}, "kind", "required"),
    ("config not an object", {"kind": "generation", "config": ["smol"]}, "config", "dictionary"),
    ("no config", {"kind": "generation"}, "config", "required"),
]


@pytest.mark.parametrize(("body", "field", "message"), [b[1:] for b in BAD], ids=[b[0] for b in BAD])
def test_bad_config_is_a_400_naming_the_field_and_queues_nothing(admin_api, world, django_capture_on_commit_callbacks, body, field, message):
    with django_capture_on_commit_callbacks(execute=True):
        response = admin_api.post("/api/jobs/", body, format="json")
    assert response.status_code == 400, response.content
    errors = response.json()
    assert field in errors, errors
    assert any(message in m for m in errors[field]), errors
    assert Job.objects.count() == 2 and DBTaskResult.objects.count() == 0


def test_a_body_that_is_not_json_object_is_a_400(admin_api, world):
    response = admin_api.post("/api/jobs/", "[1, 2]", content_type="application/json")
    assert response.status_code == 400
    assert Job.objects.count() == 2


# --- reading and cancelling ------------------------------------------------------------------------
def test_job_detail_has_progress_summary_and_errors(admin_api, world):
    job = make_job(
        JobStatus.FAILED, progress_done=2, progress_total=8, tokens_per_s=12.5, summary={"paired": 2},
        error="killed", traceback="Traceback ...",
    )
    body = admin_api.get(f"/api/jobs/{job.pk}/").json()
    assert body["status"] == "failed" and body["is_finished"] is True
    assert (body["progress_done"], body["progress_total"], body["percent"]) == (2, 8, 25)
    assert body["tokens_per_s"] == 12.5 and body["summary"] == {"paired": 2}
    assert body["error"] == "killed" and body["traceback"] == "Traceback ..."


def test_a_reward_runs_ties_and_fitting_counts_reach_the_api_as_numbers(admin_api, world):
    summary = {"eval_accuracy": 0.5, "eval_tie_rate": 0.25, "filtered_identical": {"train": 1, "eval": 0},
               "truncated_prompt": {"train": 3, "eval": 2}, "warnings": ["1 of 16 training pairs left out: ..."]}
    job = make_job(JobStatus.SUCCEEDED, kind=JobKind.REWARD, config={"base": "smol"}, summary=summary)
    body = admin_api.get(f"/api/jobs/{job.pk}/").json()["summary"]
    assert (body["eval_accuracy"], body["eval_tie_rate"]) == (0.5, 0.25)
    assert body["filtered_identical"] == {"train": 1, "eval": 0} and body["warnings"] == summary["warnings"]


def test_job_list_filters_by_status_and_is_cursor_paginated(admin_api, world):
    make_job(JobStatus.SUCCEEDED)
    running = admin_api.get("/api/jobs/?status=running").json()
    assert [j["id"] for j in running["results"]] == [world["ids"]["running"]]
    first = admin_api.get("/api/jobs/?page_size=2").json()
    assert len(first["results"]) == 2 and first["next"]
    rest = admin_api.get(first["next"]).json()
    assert len(rest["results"]) == 1 and rest["next"] is None
    assert admin_api.get("/api/jobs/?status=sleeping").status_code == 400


def test_cancel_a_queued_job(admin_api, world):
    response = admin_api.post(f"/api/jobs/{world['ids']['queued']}/cancel/")
    assert response.status_code == 200
    assert response.json()["status"] == "cancelled" and response.json()["cancel_requested"] is True
    job = Job.objects.get(pk=world["ids"]["queued"])
    assert job.status == JobStatus.CANCELLED and job.finished_at is not None


def test_cancel_a_running_job_asks_it_to_stop(admin_api, world):
    response = admin_api.post(f"/api/jobs/{world['ids']['running']}/cancel/")
    assert response.status_code == 200
    assert response.json()["status"] == "running" and response.json()["cancel_requested"] is True
    job = Job.objects.get(pk=world["ids"]["running"])
    assert job.status == JobStatus.RUNNING and job.cancel_requested and job.finished_at is None


def test_cancel_leaves_a_finished_job_alone(admin_api, world):
    job = make_job(JobStatus.SUCCEEDED)
    response = admin_api.post(f"/api/jobs/{job.pk}/cancel/")
    assert response.status_code == 200 and response.json()["status"] == "succeeded"
    job.refresh_from_db()
    assert job.status == JobStatus.SUCCEEDED and not job.cancel_requested


@pytest.mark.parametrize("path", ["/api/jobs/", "/api/jobs/{stale}/"])
def test_reading_jobs_reaps_a_running_job_whose_heartbeat_stopped(admin_api, world, path):
    stale = make_job(JobStatus.RUNNING, heartbeat_at=timezone.now() - timedelta(hours=1))
    response = admin_api.get(path.format(stale=stale.pk))
    assert response.status_code == 200
    stale.refresh_from_db()
    assert stale.status == JobStatus.FAILED and "stopped reporting" in stale.error
    assert Job.objects.get(pk=world["ids"]["running"]).status == JobStatus.RUNNING


def test_session_writes_need_the_csrf_token(world):
    client = APIClient(enforce_csrf_checks=True)
    client.force_login(world["users"]["admin"])
    assert client.get("/api/jobs/").status_code == 200
    assert client.post(f"/api/jobs/{world['ids']['queued']}/cancel/").status_code == 403
    assert Job.objects.get(pk=world["ids"]["queued"]).status == JobStatus.QUEUED


# --- schema ----------------------------------------------------------------------------------------
def test_schema_describes_the_training_endpoints(api, admin_user):
    schema = api.get("/api/schema/", {"format": "json"}).json()
    paths = schema["paths"]
    assert set(paths["/api/checkpoints/"]) == {"get"}
    assert set(paths["/api/checkpoints/{id}/"]) == {"get"}
    assert set(paths["/api/jobs/"]) == {"get", "post"}
    assert set(paths["/api/jobs/{id}/"]) == {"get"}
    assert set(paths["/api/jobs/{id}/cancel/"]) == {"post"}
    assert {"201", "400"} <= set(paths["/api/jobs/"]["post"]["responses"])
    components = schema["components"]["schemas"]
    assert components["JobStatusEnum"]["enum"] == ["queued", "running", "succeeded", "failed", "cancelled"]
    assert "max_new_tokens" in components["JobCreateRequest"]["properties"]["config"]["description"]
    # the feedback API's root still answers /api/
    assert "prompts" in api_as(admin_user).get("/api/", format="json").json()

"""The model-server registry: the service's checks (a URL, a key variable's NAME and never a key,
the numbers), the REST API (list, create, update; a checkpoint's server), the Django admin, the
servers page, and the Generate page's backend choice."""
from __future__ import annotations

import pytest
from django.core.exceptions import ValidationError
from django.test import Client

from tests.conftest import api_as
from tests.factories import PromptFactory, UserFactory
from training.backends.models import ModelServer
from training.backends.services import model_server_save
from training.models import Checkpoint, CheckpointKind, Job
from training.services import checkpoint_register

pytestmark = pytest.mark.django_db
GOOD = {"name": "vllm-1", "base_url": "http://127.0.0.1:8000/v1", "model_name": "HuggingFaceTB/SmolLM2-135M-Instruct"}


@pytest.mark.parametrize(("field", "value", "words"), [
    ("base_url", "ftp://host/v1", "must be an http(s) URL"),
    ("base_url", "http://user:sk-123@host/v1", "must not hold a user name or password"),
    ("base_url", "http://host/v1?key=sk-123", "must not have a query or fragment"),
    ("base_url", "http://host:99999/v1", "must be an http(s) URL"),
    ("base_url", "http://host/v1\x00", "must be an http(s) URL"),
    ("api_key_env", "sk-abcdef0123456789", "an environment variable's name"),
    ("api_key_env", "SECRET_KEY", "holds the platform's own secrets"),
    ("api_key_env", "DJANGO_DB_PASSWORD", "holds the platform's own secrets"),
    ("name", "has space", "letters, digits"),
    ("model_name", " ", "the served model's name"),
    ("max_concurrency", 0, "from 1 to 256"),
    ("timeout_s", 0, "from 0.01 to 3600"),
    ("max_retries", 11, "from 0 to 10"),
    ("stream", "yes", "true or false"),
])
def test_bad_settings_are_refused_by_field(field, value, words):
    with pytest.raises(ValidationError) as error:
        model_server_save(**{**GOOD, field: value})
    assert list(error.value.message_dict) == [field] and words in error.value.message_dict[field][0]
    assert not ModelServer.objects.exists()


def test_a_server_is_created_and_changed_and_names_are_unique():
    server = model_server_save(**GOOD, api_key_env="VLLM_KEY")
    assert (server.max_concurrency, server.timeout_s, server.stream) == (8, 60.0, False)
    changed = model_server_save(server=server, stream=True, max_concurrency=32)
    assert (changed.pk, changed.stream, changed.max_concurrency, changed.api_key_env) == (server.pk, True, 32, "VLLM_KEY")
    with pytest.raises(ValidationError, match="a server named 'vllm-1' exists"):
        model_server_save(**GOOD)


def test_the_api_lists_creates_and_updates_servers_for_admins_only(admin_user, annotator):
    api = api_as(admin_user)
    created = api.post("/api/servers/", {**GOOD, "api_key_env": "VLLM_KEY", "stream": True}, format="json")
    assert created.status_code == 201, created.content
    body = created.json()
    assert (body["name"], body["api_key_env"], body["stream"], body["checkpoints"]) == ("vllm-1", "VLLM_KEY", True, [])
    bad = api.post("/api/servers/", {**GOOD, "name": "other", "api_key_env": "sk-live-123", "base_url": "localhost"}, format="json")
    assert bad.status_code == 400 and set(bad.json()) == {"api_key_env", "base_url"}
    patched = api.patch(f"/api/servers/{body['id']}/", {"max_concurrency": 64}, format="json")
    assert patched.status_code == 200 and patched.json()["max_concurrency"] == 64 and patched.json()["stream"] is True
    put = api.put(f"/api/servers/{body['id']}/", {**GOOD, "model_name": "other-model"}, format="json")
    assert put.status_code == 200 and put.json()["model_name"] == "other-model"
    assert [s["name"] for s in api.get("/api/servers/").json()["results"]] == ["vllm-1"]
    assert api_as(annotator).get("/api/servers/").status_code == 403
    assert api_as(annotator).post("/api/servers/", GOOD, format="json").status_code == 403


def test_a_checkpoint_names_its_server_through_the_api(admin_user):
    server = model_server_save(**GOOD)
    policy = checkpoint_register(name="pol", hub_id="org/pol")
    reward = checkpoint_register(name="rm", hub_id="org/rm", kind=CheckpointKind.REWARD)
    api = api_as(admin_user)
    answer = api.post(f"/api/checkpoints/{policy.pk}/server/", {"server": "vllm-1"}, format="json")
    assert answer.status_code == 200 and answer.json()["server"] == "vllm-1"
    assert Checkpoint.objects.get(pk=policy.pk).server == server
    assert api.get("/api/servers/").json()["results"][0]["checkpoints"] == ["pol"]
    assert api.post(f"/api/checkpoints/{policy.pk}/server/", {"server": "nope"}, format="json").json() == {
        "server": ["no model server named 'nope'"]}
    assert api.post(f"/api/checkpoints/{reward.pk}/server/", {"server": "vllm-1"}, format="json").status_code == 400
    assert api.post(f"/api/checkpoints/{policy.pk}/server/", {"server": None}, format="json").json()["server"] is None


def test_the_django_admin_saves_through_the_checks():
    admin = UserFactory(role="admin")
    client = Client()
    client.force_login(admin)
    form = {**GOOD, "api_key_env": "sk-pasted-key", "max_concurrency": 8, "timeout_s": 60, "max_retries": 4, "backoff_s": 0.5}
    refused = client.post("/admin/training/modelserver/add/", form)
    assert refused.status_code == 200 and "not the key itself" in refused.content.decode() and not ModelServer.objects.exists()
    saved = client.post("/admin/training/modelserver/add/", {**form, "api_key_env": "VLLM_KEY"})
    assert saved.status_code == 302 and ModelServer.objects.get().api_key_env == "VLLM_KEY"


def test_the_servers_page_lists_and_adds_servers(admin_user, annotator):
    client = Client()
    client.force_login(admin_user)
    assert "No model servers yet" in client.get("/manage/servers/").content.decode()
    bad = client.post("/manage/servers/", {**GOOD, "api_key_env": "sk-oops", "max_concurrency": 8, "timeout_s": 60,
                                            "max_retries": 4, "backoff_s": 0.5})
    assert bad.status_code == 400 and "not the key itself" in bad.content.decode()
    added = client.post("/manage/servers/", {**GOOD, "api_key_env": "VLLM_KEY", "max_concurrency": 8, "timeout_s": 60,
                                              "max_retries": 4, "backoff_s": 0.5, "stream": "on"})
    assert added.status_code == 302 and ModelServer.objects.get().stream is True
    page = client.get("/manage/servers/").content.decode()
    assert "vllm-1" in page and "VLLM_KEY" in page
    other = Client()
    other.force_login(annotator)
    assert other.get("/manage/servers/").status_code == 403


def test_the_generate_page_queues_a_server_job_or_names_the_checkpoint_without_a_server(admin_user):
    PromptFactory.create_batch(2)
    bare = checkpoint_register(name="bare", hub_id="org/bare")
    served = checkpoint_register(name="served", hub_id="org/served")
    served.server = model_server_save(**GOOD)
    served.save()
    client = Client()
    client.force_login(admin_user)
    page = client.get("/manage/generate/").content.decode()
    assert 'name="backend"' in page and 'value="server"' in page and 'name="on_failure"' in page
    form = {"checkpoint": "bare", "strategy": "two_samples", "backend": "server", "on_failure": "skip", "limit": 2,
            "max_new_tokens": 16, "temperature": 0.8, "top_p": 0.95, "batch_size": 8, "seed": 0, "votes_required": 1, "priority": 0}
    refused = client.post("/manage/generate/", form)
    assert refused.status_code == 400 and "&#x27;bare&#x27; names no model server" in refused.content.decode()
    assert client.post("/manage/generate/", {**form, "checkpoint": "served"}).status_code == 302
    config = Job.objects.get().config
    assert (config["backend"], config["on_failure"], config["checkpoints"]) == ("server", "skip", ["served"])
    assert "vllm-1" in client.get(f"/manage/checkpoints/{served.pk}/").content.decode()
    assert "none: generation with the server backend needs one" in client.get(f"/manage/checkpoints/{bare.pk}/").content.decode()


def test_the_generate_command_takes_the_backend():
    from django.core.management import CommandError, call_command

    PromptFactory()
    checkpoint_register(name="bare", hub_id="org/bare")
    with pytest.raises(CommandError, match="'bare' names no model server"):
        call_command("generate", "--checkpoint", "bare", "--backend", "server")
    served = checkpoint_register(name="served", hub_id="org/served")
    served.server = model_server_save(**GOOD)
    served.save()
    call_command("generate", "--checkpoint", "served", "--backend", "server", "--on-failure", "skip", stdout=open("/dev/null", "w"))
    assert (Job.objects.get().config["backend"], Job.objects.get().config["on_failure"]) == ("server", "skip")

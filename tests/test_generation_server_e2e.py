"""Generation through model servers end to end: a job run by the supervisor in a child process with
the key-leak check (the key is sent to the servers but appears in no table, job config, summary,
log, page or API answer: only its variable's name), and a loop round whose new-vs-parent
generation goes through the servers (``LoopSettings.generation_config = {"backend": "server"}``)."""
import uuid

import pytest
from django.test import Client
from django.utils import timezone

from feedback.models import Comparison, Completion
from tests.conftest import api_as
from tests.factories import PromptFactory, UserFactory
from tests.judge_server import FakeChatServer
from tests.leak_check import all_text_in_the_database, child_env  # noqa: F401  (fixture)
from training.backends.services import checkpoint_server_set, model_server_save
from training.loop import job_finished, loop_settings_errors
from training.models import Job, JobKind, JobStatus, LoopMethod, LoopRound, LoopSettings, RoundStatus
from training.runners.progress import Reporter
from training.services import checkpoint_register, generation_job_create
from training.supervisor import job_log_path, job_supervise

KEY_VAR = "TEST_SERVER_KEY"
FAST = {"timeout_s": 5.0, "max_retries": 1, "backoff_s": 0.001, "max_concurrency": 4}


@pytest.mark.django_db(transaction=True)
def test_a_server_generation_job_runs_in_a_child_process_and_the_key_never_leaks(child_env, monkeypatch):
    secret = f"sk-leak-check-{uuid.uuid4().hex}"
    monkeypatch.setenv(KEY_VAR, secret)
    PromptFactory.create_batch(3)
    with FakeChatServer(reported_model="org/served") as server:
        honest = model_server_save(name="honest", base_url=server.base_url, model_name="gen", api_key_env=KEY_VAR, **FAST)
        leaky = model_server_save(name="leaky", base_url=server.base_url, model_name="echo-auth", api_key_env=KEY_VAR,
                                  stream=True, **FAST)
        new = checkpoint_server_set(checkpoint=checkpoint_register(name="new", hub_id="org/new"), server=honest)
        old = checkpoint_server_set(checkpoint=checkpoint_register(name="old", hub_id="org/old"), server=leaky)
        job = generation_job_create(config={"checkpoints": ["new", "old"], "strategy": "head_to_head", "backend": "server",
                                            "batch_size": 2})
        assert job_supervise(job_id=job.pk) == JobStatus.SUCCEEDED
    assert set(server.authorizations) == {f"Bearer {secret}"}  # the key was used
    job.refresh_from_db()
    assert (job.progress_done, job.summary["paired"], job.summary["failed_calls"], job.summary["calls"]) == (3, 3, 0, 6)
    assert set(Completion.objects.filter(model_name="old").values_list("text", flat=True)) == {"Bearer ***"}

    admin = UserFactory(role="admin", is_staff=True, is_superuser=True)
    client = Client()
    client.force_login(admin)
    paths = ["/manage/jobs/", f"/manage/jobs/{job.pk}/", f"/manage/checkpoints/{new.pk}/", f"/manage/checkpoints/{old.pk}/",
             "/manage/servers/", f"/admin/training/modelserver/{leaky.pk}/change/", "/admin/training/modelserver/"]
    pages = {path: client.get(path) for path in paths}
    assert all(page.status_code == 200 for page in pages.values()), {p: r.status_code for p, r in pages.items()}
    texts = [page.content.decode() for page in pages.values()]
    api = api_as(admin)
    texts += [api.get(path).content.decode() for path in (
        "/api/servers/", f"/api/servers/{leaky.pk}/", f"/api/jobs/{job.pk}/", "/api/checkpoints/", "/api/comparisons/")]
    assert KEY_VAR in pages[f"/admin/training/modelserver/{leaky.pk}/change/"].content.decode()  # the name is shown
    assert "leaky" in pages[f"/manage/checkpoints/{old.pk}/"].content.decode()  # the checkpoint page names its server
    assert "server calls failed" in pages[f"/manage/jobs/{job.pk}/"].content.decode()
    log = job_log_path(job.pk).read_text()
    for where, text in [("database", all_text_in_the_database()), ("log", log), *[("page or API", t) for t in texts]]:
        assert secret not in text, f"the key leaked into a {where}"


@pytest.mark.django_db(transaction=True)
def test_a_failing_server_job_ends_failed_with_one_readable_reason_in_a_child(child_env, monkeypatch):
    monkeypatch.setenv(KEY_VAR, "sk-whatever")
    PromptFactory.create_batch(2)
    with FakeChatServer(served_models={"right-name"}) as server:
        wrong = model_server_save(name="wrong", base_url=server.base_url, model_name="wrong-name", api_key_env=KEY_VAR, **FAST)
        checkpoint_server_set(checkpoint=checkpoint_register(name="pol", hub_id="org/pol"), server=wrong)
        job = generation_job_create(config={"checkpoints": ["pol"], "backend": "server"})
        assert job_supervise(job_id=job.pk) == JobStatus.FAILED
    job.refresh_from_db()
    assert job.error.startswith("GenerationFailed: prompt ") and job.error.endswith(
        f"pol on server 'wrong': HTTP 404 from {server.base_url}/chat/completions: not found: check the base URL and the "
        "model name ('wrong-name')")
    assert not Completion.objects.exists() and job.summary["failed_calls"] == 2


@pytest.mark.django_db
def test_a_loop_round_waits_for_its_new_checkpoints_server_then_generates_through_both_servers(
        django_capture_on_commit_callbacks):
    """A round's new checkpoint has no server when its run ends: the round waits and says what to do
    (round list, checkpoint page, the run's summary), and goes on when an admin names the server
    on the checkpoint's page; an unknown server name changes nothing."""
    assert loop_settings_errors(enabled=False, votes_per_round=10, method="dpo", policy=None,
                                generation_config={"backend": "server", "on_failure": "skip"}) == {}
    admin = UserFactory(role="admin", is_staff=True, is_superuser=True)
    client = Client()
    client.force_login(admin)
    with FakeChatServer() as server:
        parent_server = model_server_save(name="parent-srv", base_url=server.base_url, model_name="answer:Parent says hi.", **FAST)
        model_server_save(name="new-srv", base_url=server.base_url, model_name="gen", stream=True, **FAST)
        parent = checkpoint_server_set(checkpoint=checkpoint_register(name="parent", hub_id="org/parent"), server=parent_server)
        run = Job.objects.create(kind=JobKind.DPO, status=JobStatus.SUCCEEDED)
        new = checkpoint_register(name="parent-dpo-1", hub_id="org/new", parent=parent, run=run)
        LoopSettings.objects.update_or_create(pk=1, defaults={"generation_config": {"backend": "server"}, "policy": parent})
        loop_round = LoopRound.objects.create(method=LoopMethod.DPO, triggered_at=timezone.now(), parent=parent, policy_job=run)
        PromptFactory.create_batch(3, split="eval")
        job_finished(job_id=run.pk)
        loop_round.refresh_from_db()
        assert (loop_round.status, loop_round.generation_job, loop_round.checkpoint) == (RoundStatus.RUNNING, None, new)
        assert loop_round.waiting_for.startswith("a model server for parent-dpo-1: serve its weights")
        run.refresh_from_db()
        assert run.summary["followup"] == f"waiting for {loop_round.waiting_for}"
        assert "waiting for a model server for parent-dpo-1" in client.get("/manage/loop/").content.decode()
        page = client.get(f"/manage/checkpoints/{new.pk}/").content.decode()
        assert f"Loop round {loop_round.pk} is waiting for this checkpoint" in page and '<option value="new-srv">' in page

        refused = client.post(f"/manage/checkpoints/{new.pk}/server/", {"server": "no-such"}, follow=True)
        assert "No model server named &#x27;no-such&#x27;; nothing changed." in refused.content.decode()
        loop_round.refresh_from_db()
        assert loop_round.generation_job is None and loop_round.waiting_for
        with django_capture_on_commit_callbacks(execute=True):
            answer = client.post(f"/manage/checkpoints/{new.pk}/server/", {"server": "new-srv"}, follow=True)
        assert "parent-dpo-1 is served by new-srv." in answer.content.decode()
        loop_round.refresh_from_db()
        generation = loop_round.generation_job
        assert loop_round.waiting_for == "" and generation is not None
        assert generation.config["backend"] == "server" and generation.config["checkpoints"] == ["parent-dpo-1", "parent"]
        assert client.post(f"/manage/checkpoints/{new.pk}/server/", {"server": "new-srv"}).status_code == 302
        assert LoopRound.objects.get(pk=loop_round.pk).generation_job_id == generation.pk  # queued once
        from training.runners.generation import run_generation

        summary = run_generation(generation, Reporter(generation.pk))
    assert (summary["paired"], summary["failed_calls"]) == (3, 0)
    assert Completion.objects.filter(model_name="parent", text="Parent says hi.").count() == 3
    assert Completion.objects.filter(model_name="parent-dpo-1", generation_params__server="new-srv").count() == 3
    assert Comparison.objects.filter(priority=100).count() == 3
    Job.objects.filter(pk=generation.pk).update(status=JobStatus.SUCCEEDED)
    job_finished(job_id=generation.pk)
    loop_round.refresh_from_db()
    assert loop_round.status == RoundStatus.SUCCEEDED

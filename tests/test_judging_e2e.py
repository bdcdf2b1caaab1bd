"""A judging job end to end through the job runner (a child process started by the supervisor)
against the fake OpenAI-compatible server, and the key-leak check: the key is sent to the endpoint
but appears in no database table, job config, summary, log or page (only its variable's name)."""
import uuid

import pytest
from django.test import Client

from feedback.models import Vote, VoteOrigin
from tests.conftest import api_as
from tests.factories import ComparisonFactory, UserFactory
from tests.judge_server import FakeChatServer
from tests.leak_check import all_text_in_the_database, child_env  # noqa: F401  (fixture)
from training.judges.models import Judge, JudgeCall
from training.judges.services import judge_save, judging_job_create
from training.models import Job, JobStatus
from training.supervisor import job_log_path, job_supervise

KEY_VAR = "TEST_JUDGE_KEY"
FAST = {"timeout_s": 5.0, "max_retries": 1, "backoff_s": 0.001, "backoff_max_s": 0.002, "max_concurrency": 4}


@pytest.mark.django_db(transaction=True)
def test_a_judging_job_runs_in_a_child_process_and_the_key_never_leaks(child_env, monkeypatch):
    secret = f"sk-leak-check-{uuid.uuid4().hex}"
    monkeypatch.setenv(KEY_VAR, secret)
    comparisons = ComparisonFactory.create_batch(3)
    for comparison, winner in zip(comparisons, ("a", "b", "a")):
        good = comparison.completion_a if winner == "a" else comparison.completion_b
        good.text = "A GOOD answer."
        good.save()
    with FakeChatServer() as server:
        honest, _ = judge_save(name="fake", kind="openai", base_url=server.base_url, model_name="prefer:GOOD",
                               api_key_env=KEY_VAR, options=FAST)
        leaky, _ = judge_save(name="leaky", kind="openai", base_url=server.base_url, model_name="echo-auth",
                              api_key_env=KEY_VAR, options=FAST)
        ids = [c.pk for c in comparisons]
        jobs = [judging_job_create(config={"judge": judge.ref, "comparison_ids": ids, "batch_size": 2}) for judge in (honest, leaky)]
        assert [job_supervise(job_id=job.pk) for job in jobs] == [JobStatus.SUCCEEDED, JobStatus.SUCCEEDED]
    assert server.authorizations and set(server.authorizations) == {f"Bearer {secret}"}  # the key was used

    good_job, leaky_job = (Job.objects.get(pk=job.pk) for job in jobs)
    assert good_job.progress_done == good_job.progress_total == 3
    assert {k: good_job.summary[k] for k in ("judged", "calls", "ok", "votes", "inconsistent")} == {
        "judged": 3, "calls": 6, "ok": 6, "votes": 3, "inconsistent": 0}
    assert dict(Vote.objects.filter(origin=VoteOrigin.AI, judge="fake@1").values_list("comparison_id", "choice")) == dict(
        zip(ids, ["a", "b", "a"]))
    assert leaky_job.summary["unparsed"] == 6 and leaky_job.summary["votes"] == 0
    assert set(JudgeCall.objects.filter(job=leaky_job).values_list("raw_output", flat=True)) == {"Bearer ***"}

    admin = UserFactory(role="admin")
    client = Client()
    client.force_login(admin)
    pages = [client.get(path).content.decode() for path in (
        "/manage/judges/", f"/manage/judges/{honest.pk}/", f"/manage/judges/{leaky.pk}/", "/manage/jobs/",
        f"/manage/jobs/{good_job.pk}/", f"/manage/jobs/{leaky_job.pk}/", "/manage/judges/launch/")]
    api = api_as(admin)
    pages += [api.get(path).content.decode() for path in ("/api/judges/", f"/api/jobs/{good_job.pk}/", f"/api/jobs/{leaky_job.pk}/")]
    logs = [job_log_path(job.pk).read_text() for job in jobs]
    assert KEY_VAR in pages[1]  # the variable's name is shown
    for where, text in [("database", all_text_in_the_database()), *[("log", log) for log in logs], *[("page", p) for p in pages]]:
        assert secret not in text, f"the key leaked into a {where}"
    assert not Judge.objects.filter(options__icontains=secret).exists()


@pytest.mark.django_db(transaction=True)
def test_a_job_whose_every_call_fails_ends_failed_with_one_readable_reason(child_env):
    comparisons = ComparisonFactory.create_batch(2)
    with FakeChatServer() as server:
        judge, _ = judge_save(name="refused", kind="openai", base_url=server.base_url, model_name="status:401", options=FAST)
        job = judging_job_create(config={"judge": judge.ref, "comparison_ids": [c.pk for c in comparisons]})
        assert job_supervise(job_id=job.pk) == JobStatus.FAILED
    job.refresh_from_db()
    assert job.error == (f"JudgingFailed: every call failed (4 of 4): HTTP 401 from {server.base_url}/chat/completions: "
                         "unauthorized: check the key")
    assert job.progress_done == 2 and not Vote.objects.filter(origin=VoteOrigin.AI).exists()

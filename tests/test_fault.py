"""Faults: a runner killed mid-job, and jobs whose process stopped reporting.

The fault test runs the real stack: ``manage.py db_worker`` in a subprocess (against this test's
database) picks the queued task, its supervisor starts ``python -m training.runner JOB_ID``, and
the test SIGKILLs that runner while it is generating.
"""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path

import pytest
from django.conf import settings
from django.db import OperationalError
from django.utils import timezone
from django_tasks_db.models import DBTaskResult

from feedback.models import Comparison, Completion
from tests.factories import PromptFactory
from training.models import Job, JobKind, JobStatus
from training.services import HEARTBEAT_TIMEOUT_S, generation_job_create, jobs_reap
from training.supervisor import describe_exit

WORKER_ID = "fault-test-worker"


def wait_for(read: Callable[[], Job], done: Callable[[Job], bool], *, timeout_s: float, what: str) -> Job:
    """Poll ``read()`` every 0.1 s until ``done`` holds; fail with the last value after ``timeout_s``."""
    deadline = time.monotonic() + timeout_s
    while True:
        value = read()
        if done(value):
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout_s} s waiting for {what}; last: {value!r} {value.error}")
        time.sleep(0.1)


def kill_runner(pid: int | None) -> None:
    """SIGKILL a runner this test's worker started, if it is still one (never some other process)."""
    if not pid:
        return
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return
    if b"training.runner" in cmdline:
        os.kill(pid, signal.SIGKILL)


@contextmanager
def db_worker(env: dict[str, str], log_path: Path) -> Iterator[subprocess.Popen]:
    """A ``manage.py db_worker`` subprocess; always killed at the end, with any runner it left."""
    with log_path.open("wb") as log:
        worker = subprocess.Popen(
            [sys.executable, "manage.py", "db_worker", "--interval", "0.2", "--no-startup-delay", "--no-reload",
             "--worker-id", WORKER_ID],
            cwd=settings.BASE_DIR, env=env, stdout=log, stderr=subprocess.STDOUT,
        )
        try:
            yield worker
        finally:
            worker.kill()
            worker.wait(timeout=30)
            for pid in Job.objects.filter(status=JobStatus.RUNNING).values_list("pid", flat=True):
                kill_runner(pid)


@pytest.mark.django_db(transaction=True)
def test_a_killed_runner_fails_its_job_with_whole_batches_and_the_worker_runs_the_next(
    tiny_checkpoints, runner_env, tmp_path
):
    prompts = PromptFactory.create_batch(60)
    later = PromptFactory.create_batch(2)
    worker_log = tmp_path / "worker.log"
    with db_worker(runner_env, worker_log) as worker:
        job = generation_job_create(config={
            "checkpoints": ["tiny-x"], "prompt_ids": [p.id for p in prompts], "max_new_tokens": 64,
            "batch_size": 2, "temperature": 1.0,
        })
        job = wait_for(
            lambda: Job.objects.get(pk=job.pk), lambda j: j.progress_done > 0 or j.is_finished,
            timeout_s=300, what="the first batch",
        )
        assert job.status == JobStatus.RUNNING, job.error
        assert job.pid
        os.kill(job.pid, signal.SIGKILL)

        job = wait_for(
            lambda: Job.objects.get(pk=job.pk), lambda j: j.is_finished, timeout_s=HEARTBEAT_TIMEOUT_S,
            what="the killed job to be marked",
        )
        assert job.status == JobStatus.FAILED
        assert "SIGKILL" in job.error and "killed" in job.error
        assert "\n" not in job.error

        # Whole batches only: the prompts counted as done have both completions, nothing else does.
        done = job.progress_done
        assert 0 < done < len(prompts) and done % 2 == 0
        completions = Completion.objects.filter(generation_params__job=job.pk)
        assert completions.count() == 2 * done
        assert len(set(completions.values_list("prompt_id", flat=True))) == done
        assert set(completions.values_list("prompt_id", flat=True)) == {p.id for p in prompts[:done]}
        for comparison in Comparison.objects.select_related("completion_a", "completion_b"):
            assert comparison.completion_a.prompt_id == comparison.completion_b.prompt_id == comparison.prompt_id
        assert Comparison.objects.count() == job.summary["paired"]

        # The same worker goes on to the next job.
        second = generation_job_create(config={
            "checkpoints": ["tiny-x"], "prompt_ids": [p.id for p in later], "max_new_tokens": 4, "temperature": 1.0,
        })
        second = wait_for(
            lambda: Job.objects.get(pk=second.pk), lambda j: j.is_finished, timeout_s=300, what="the second job"
        )
        assert second.status == JobStatus.SUCCEEDED, second.error + second.traceback
        assert second.progress_done == 2
        assert Completion.objects.filter(generation_params__job=second.pk).count() == 4
        assert worker.poll() is None, worker_log.read_text()

        tasks = {job.pk: job.task_id, second.pk: second.task_id}
        for job_id, task_id in tasks.items():
            task = wait_for(
                lambda: DBTaskResult.objects.get(id=task_id), lambda t: t.finished_at is not None,
                timeout_s=60, what=f"the task of job {job_id}",
            )
            assert task.worker_ids == [WORKER_ID]
        assert DBTaskResult.objects.get(id=job.task_id).return_value == JobStatus.FAILED
        assert DBTaskResult.objects.get(id=second.task_id).return_value == JobStatus.SUCCEEDED


def test_exit_reasons_are_readable():
    assert describe_exit(-signal.SIGKILL) == (
        "The runner process was killed by SIGKILL (out of memory, or killed by an operator)."
    )
    assert "SIGTERM" in describe_exit(-signal.SIGTERM)
    assert "signal 50" in describe_exit(-50)  # a real-time signal has no name
    assert "code 3" in describe_exit(3)


@pytest.mark.django_db
def test_the_reaper_fails_running_jobs_that_stopped_reporting():
    now = timezone.now()
    old = now - timedelta(seconds=HEARTBEAT_TIMEOUT_S + 60)

    def job(status, heartbeat_at):
        return Job.objects.create(
            kind=JobKind.GENERATION, status=status, config={"checkpoints": ["x"]}, started_at=old, heartbeat_at=heartbeat_at
        )

    stale = job(JobStatus.RUNNING, old)
    beating = job(JobStatus.RUNNING, now - timedelta(seconds=5))
    finished = job(JobStatus.SUCCEEDED, old)
    queued = job(JobStatus.QUEUED, None)

    assert jobs_reap(now=now) == 1
    stale.refresh_from_db()
    assert stale.status == JobStatus.FAILED and stale.finished_at == now
    assert "heartbeat" in stale.error and f"{HEARTBEAT_TIMEOUT_S} s" in stale.error
    assert "\n" not in stale.error
    for untouched, status in ((beating, JobStatus.RUNNING), (finished, JobStatus.SUCCEEDED), (queued, JobStatus.QUEUED)):
        untouched.refresh_from_db()
        assert untouched.status == status and untouched.error == ""

    assert jobs_reap(now=now) == 0  # a reaped job stays as it was reaped


@pytest.mark.django_db(transaction=True)
def test_the_heartbeat_survives_a_failed_write(monkeypatch):
    """A locked or restarting database costs a beat, not the heartbeat thread (else the reaper would
    fail a job that is still working)."""
    from training.runners import progress

    monkeypatch.setattr(progress, "HEARTBEAT_INTERVAL_S", 0.05)
    old = timezone.now() - timedelta(hours=1)
    job = Job.objects.create(kind=JobKind.GENERATION, status=JobStatus.RUNNING, config={}, heartbeat_at=old)
    failures = []
    write = progress.Reporter._write_heartbeat

    def flaky_write(self):
        if len(failures) < 2:
            failures.append(1)
            raise OperationalError("database is locked")
        write(self)

    monkeypatch.setattr(progress.Reporter, "_write_heartbeat", flaky_write)
    sigterm = signal.getsignal(signal.SIGTERM)
    reporter = progress.Reporter(job.pk)
    reporter.start()
    try:
        wait_for(lambda: Job.objects.get(pk=job.pk), lambda j: j.heartbeat_at > old, timeout_s=60, what="a heartbeat")
    finally:
        reporter.stop()
        signal.signal(signal.SIGTERM, sigterm)
    assert len(failures) == 2
    assert jobs_reap() == 0

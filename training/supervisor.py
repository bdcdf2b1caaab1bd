"""The worker side of a job: start the runner in a child process, watch it, record how it ended.

The worker process never imports torch. A crash, an out-of-memory kill or a SIGKILL of the child
ends the job (marked failed with the exit reason and the log tail), not the worker.
"""
from __future__ import annotations

import os
import shlex
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from .models import Job, JobStatus
from .services import job_fail, jobs_reap

POLL_S = 0.5
CANCEL_GRACE_S = 30.0
LOG_TAIL_CHARS = 4000


def job_log_path(job_id: int) -> Path:
    """Where the runner's stdout and stderr go: ``ARBITER_DATA_DIR/jobs/<id>.log``."""
    return Path(settings.ARBITER_DATA_DIR) / "jobs" / f"{job_id}.log"


def log_tail(job_id: int, chars: int = LOG_TAIL_CHARS) -> str:
    """The last ``chars`` characters of a job's log ('' when there is none)."""
    path = job_log_path(job_id)
    if not path.exists():
        return ""
    with path.open("rb") as handle:
        handle.seek(max(0, path.stat().st_size - chars))
        return handle.read().decode("utf-8", "replace")


def runner_command(job_id: int) -> list[str]:
    """The child's command line. ``ARBITER_RUNNER_LAUNCHER`` replaces ``python`` (e.g.
    ``accelerate launch --num_processes 2``); the module is always ``training.runner``."""
    launcher = os.environ.get("ARBITER_RUNNER_LAUNCHER", "").strip()
    if launcher:
        return [*shlex.split(launcher), "-m", "training.runner", str(job_id)]
    return [sys.executable, "-m", "training.runner", str(job_id)]


def describe_exit(returncode: int) -> str:
    """A readable reason for a child's exit code (negative: killed by that signal)."""
    if returncode < 0:
        try:
            name = signal.Signals(-returncode).name
        except ValueError:  # a real-time or otherwise unnamed signal
            name = f"signal {-returncode}"
        hint = " (out of memory, or killed by an operator)" if -returncode == signal.SIGKILL else ""
        return f"The runner process was killed by {name}{hint}."
    return f"The runner process exited with code {returncode} without recording a result."


def log_error_line(job_id: int, error: str) -> None:
    """Append ``error: <readable reason>`` to the job's log, so the log says why the job failed
    even when the child died before it could say so itself."""
    path = job_log_path(job_id)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a", encoding="utf-8") as log:
        log.write(f"error: {error}\n")


def job_supervise(*, job_id: int, on_progress: Callable[[int, int], None] | None = None) -> str:
    """Run one queued job to its end and return its final status.

    Reaps stale jobs first. Does nothing for a job that is no longer queued (e.g. cancelled).
    While the child runs, a cancel request is passed on as SIGTERM (SIGKILL after a grace period),
    and ``on_progress(progress_done, progress_total)`` (the job row's counts) is called every
    ``POLL_S`` seconds. A child that ends without recording an outcome fails the job with a readable
    reason, which is also the log's last line (``error: ...``).
    """
    jobs_reap()
    with transaction.atomic():
        job = Job.objects.select_for_update().get(pk=job_id)
        if job.status != JobStatus.QUEUED:
            return job.status
        now = timezone.now()
        job.status, job.started_at, job.heartbeat_at = JobStatus.RUNNING, now, now
        job.save(update_fields=["status", "started_at", "heartbeat_at"])

    log_path = job_log_path(job_id)
    log_path.parent.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    with log_path.open("ab") as log:
        try:
            child = subprocess.Popen(
                runner_command(job_id), stdout=log, stderr=subprocess.STDOUT, env=env,
                cwd=settings.BASE_DIR, start_new_session=True,
            )
        except OSError as error:
            reason = f"Could not start the runner: {error}"
            job_fail(job_id=job_id, error=reason)
            log_error_line(job_id, reason)
            return JobStatus.FAILED
        Job.objects.filter(pk=job_id).update(pid=child.pid)
        signalled_at = None
        while True:
            try:
                returncode = child.wait(timeout=POLL_S)
                break
            except subprocess.TimeoutExpired:
                pass
            row = Job.objects.filter(pk=job_id).values_list("cancel_requested", "progress_done", "progress_total").first()
            if row is not None and on_progress is not None:
                on_progress(row[1], row[2])
            if signalled_at is None and row is not None and row[0]:
                child.send_signal(signal.SIGTERM)
                signalled_at = time.monotonic()
            elif signalled_at is not None and time.monotonic() - signalled_at > CANCEL_GRACE_S:
                child.kill()

    job = Job.objects.get(pk=job_id)
    if job.status == JobStatus.RUNNING:  # the runner did not record an outcome
        if job.cancel_requested:
            Job.objects.filter(pk=job_id, status=JobStatus.RUNNING).update(
                status=JobStatus.CANCELLED, finished_at=timezone.now()
            )
        else:
            reason = describe_exit(returncode)
            job_fail(job_id=job_id, error=reason, traceback=log_tail(job_id))
            log_error_line(job_id, reason)
        job.refresh_from_db()
    from .loop import job_finished

    job_finished(job_id=job_id)  # a policy run's new-vs-parent comparisons, the loop's next step
    return job.status

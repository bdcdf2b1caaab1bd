"""The worker side of a job: start the runner in a child process, watch it, record how it ended.

The worker process never imports torch. A crash, an out-of-memory kill or a SIGKILL of the child
ends the job (marked failed with the exit reason and the log tail), not the worker.

The child runs in its own session (process group), so a Ctrl-C or a SIGTERM aimed at the worker's
group never reaches it directly. Instead, while a child runs, the supervisor catches SIGTERM and
SIGINT itself: it stops the child's whole process group (SIGTERM, SIGKILL after
``WORKER_STOP_GRACE_S``), fails the job with a readable reason, and only then hands the signal to
the handler that was there before (``db_worker``'s graceful shutdown, Python's KeyboardInterrupt,
or the default action). No runner outlives its worker and no job is left 'running'.
"""
from __future__ import annotations

import os
import shlex
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Mapping
from pathlib import Path

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from .models import Job, JobStatus
from .services import job_fail, jobs_reap

POLL_S = 0.5
CANCEL_GRACE_S = 30.0
# Seconds a runner gets to stop on its own when its worker is stopped, before SIGKILL. Short: the
# person who pressed Ctrl-C is waiting; a second signal kills at once.
WORKER_STOP_GRACE_S = 10.0
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


# Hugging Face hub settings a runner child gets unless the worker's environment sets them: no hub
# access (checkpoints are folders in ARBITER_DATA_DIR) and no telemetry thread. An operator who
# wants runners to reach the hub (a checkpoint registered by hub id) sets HF_HUB_OFFLINE=0.
HUB_DEFAULTS = {"HF_HUB_OFFLINE": "1", "HF_HUB_DISABLE_TELEMETRY": "1"}


def runner_environment(base: Mapping[str, str]) -> dict[str, str]:
    """The child's environment: ``base`` (the worker's), ``PYTHONUNBUFFERED=1``, and each of
    ``HUB_DEFAULTS`` that ``base`` does not set (an operator's own value, even ``0``, is kept)."""
    return {**HUB_DEFAULTS, **base, "PYTHONUNBUFFERED": "1"}


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


def _signal_group(child: subprocess.Popen, signum: int) -> None:
    """Send ``signum`` to the child's process group (the runner and anything it started, e.g. the
    ranks under ``accelerate launch``). Only while the child is unreaped: its pid is then the group's."""
    if child.returncode is not None:
        return
    try:
        os.killpg(child.pid, signum)
    except ProcessLookupError:  # already gone
        pass


class WorkerStop:
    """Catches SIGTERM and SIGINT sent to this process while a runner runs (main thread only; in
    another thread signals cannot be handled and nothing changes).

    ``signum`` is the first signal caught (None: none), ``count`` how many arrived. On leaving the
    ``with`` block the previous handlers are back; ``pass_on()`` then gives the caught signal to
    the previous handler, as if it had arrived just now.
    """

    SIGNALS = (signal.SIGTERM, signal.SIGINT)

    def __init__(self) -> None:
        self.signum: int | None = None
        self.count = 0
        self._previous: dict[int, object] = {}

    def __enter__(self) -> WorkerStop:
        if threading.current_thread() is threading.main_thread():
            for signum in self.SIGNALS:
                self._previous[signum] = signal.signal(signum, self._caught)
        return self

    def __exit__(self, *exc_info) -> None:
        for signum, handler in self._previous.items():
            signal.signal(signum, handler)

    def _caught(self, signum: int, frame) -> None:
        self.count += 1
        if self.signum is None:
            self.signum = signum

    @property
    def name(self) -> str:
        return signal.Signals(self.signum).name if self.signum is not None else ""

    def pass_on(self) -> None:
        """Deliver the caught signal to the handler that was installed before: ``db_worker`` then
        finishes this task and exits; a plain command gets KeyboardInterrupt (SIGINT) or dies
        (SIGTERM's default action). Nothing when no signal was caught or it was ignored before."""
        if self.signum is None:
            return
        previous = self._previous.get(self.signum)
        if callable(previous):
            previous(self.signum, None)
        elif previous == signal.SIG_DFL:
            signal.raise_signal(self.signum)


def worker_stop_reason(signal_name: str) -> str:
    """The job's error when its worker was stopped (``signal_name``: ``SIGTERM``, ``SIGINT``)."""
    return (f"The worker stopped ({signal_name}) while this job was running, so the job was stopped too; "
            "queue it again to run it.")


def job_supervise(*, job_id: int, on_progress: Callable[[int, int], None] | None = None) -> str:
    """Run one queued job to its end and return its final status.

    Reaps stale jobs first. Does nothing for a job that is no longer queued (e.g. cancelled).
    While the child runs, a cancel request is passed on as SIGTERM (SIGKILL after a grace period),
    and ``on_progress(progress_done, progress_total)`` (the job row's counts) is called every
    ``POLL_S`` seconds. A child that ends without recording an outcome fails the job with a readable
    reason, which is also the log's last line (``error: ...``). A SIGTERM or SIGINT to this process
    while the child runs stops the child's process group and fails the job (``WorkerStop``); the
    signal is then passed on to the handler installed before.
    """
    jobs_reap()
    with transaction.atomic():
        job = Job.objects.select_for_update().get(pk=job_id)
        if job.status != JobStatus.QUEUED:
            return job.status
        now = timezone.now()
        job.status, job.started_at, job.heartbeat_at = JobStatus.RUNNING, now, now
        job.save(update_fields=["status", "started_at", "heartbeat_at"])

    stop = WorkerStop()
    try:
        return _run_child(job_id=job_id, on_progress=on_progress, stop=stop)
    finally:
        stop.pass_on()  # after the job's outcome is recorded and the previous handlers are back


def _run_child(*, job_id: int, on_progress: Callable[[int, int], None] | None, stop: WorkerStop) -> str:
    """``job_supervise`` once the job is claimed: start the child, watch it, record the outcome."""
    log_path = job_log_path(job_id)
    log_path.parent.mkdir(parents=True, exist_ok=True)
    env = runner_environment(os.environ)
    with log_path.open("ab") as log, stop:
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
        signalled_at = stopping_at = None
        while True:
            try:
                returncode = child.wait(timeout=POLL_S)
                break
            except subprocess.TimeoutExpired:
                pass
            if stop.signum is not None:  # the worker itself is being stopped
                if stopping_at is None:
                    _signal_group(child, signal.SIGTERM)
                    stopping_at = time.monotonic()
                elif stop.count > 1 or time.monotonic() - stopping_at > WORKER_STOP_GRACE_S:
                    _signal_group(child, signal.SIGKILL)
                continue
            row = Job.objects.filter(pk=job_id).values_list("cancel_requested", "progress_done", "progress_total").first()
            if row is not None and on_progress is not None:
                on_progress(row[1], row[2])
            if signalled_at is None and row is not None and row[0]:
                child.send_signal(signal.SIGTERM)
                signalled_at = time.monotonic()
            elif signalled_at is not None and time.monotonic() - signalled_at > CANCEL_GRACE_S:
                _signal_group(child, signal.SIGKILL)

    job = Job.objects.get(pk=job_id)
    if stop.signum is not None and job.status in (JobStatus.RUNNING, JobStatus.CANCELLED) and not job.cancel_requested:
        # Stopped by the worker's own shutdown, not by an admin: a failure, with the reason (a
        # runner that honoured the SIGTERM recorded 'cancelled', which nobody asked for).
        reason = worker_stop_reason(stop.name)
        Job.objects.filter(pk=job_id, status__in=[JobStatus.RUNNING, JobStatus.CANCELLED]).update(
            status=JobStatus.FAILED, error=reason, traceback=log_tail(job_id), finished_at=timezone.now()
        )
        log_error_line(job_id, reason)
        job.refresh_from_db()
    elif job.status == JobStatus.RUNNING:  # the runner did not record an outcome
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

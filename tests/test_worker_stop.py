"""Stopping the worker stops its runner: a SIGTERM or SIGINT to the process that supervises a job
(``manage.py db_worker``, or a command with ``--wait``) ends the runner's whole process group, fails
the job with a readable reason (never leaves it 'running') and then lets the worker stop.

The runners here are tiny Python scripts standing in for ``python -m training.runner JOB_ID``:
each starts a grandchild (as ``accelerate launch`` starts its ranks) and sleeps; none loads a model.
"""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from django.conf import settings

from tests.model_fixtures import child_database_url
from training import supervisor
from training.models import Job, JobKind, JobStatus

# argv: [script, PIDS_FILE, ...]. Starts a grandchild in its own process group (the runner's),
# writes "runner_pid grandchild_pid" once both are up, then sleeps. IGNORE_TERM=1: SIGTERM is
# ignored by both (a runner stuck in a long step); RECORD_CANCELLED=1: on SIGTERM the runner ends
# the job as 'cancelled', as the real runner does when it stops between batches.
FAKE_RUNNER = r"""
import os, signal, subprocess, sys, time
pids_file = sys.argv[1]
if os.environ.get("IGNORE_TERM") == "1":
    signal.signal(signal.SIGTERM, signal.SIG_IGN)  # inherited by the grandchild
if os.environ.get("RECORD_CANCELLED") == "1":
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    import django
    django.setup()
    from training.models import Job
    def stop(signum, frame):
        Job.objects.filter(pk=int(sys.argv[-1])).update(status="cancelled")
        sys.exit(0)
    signal.signal(signal.SIGTERM, stop)
grandchild = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(300)"])
with open(pids_file + ".tmp", "w") as f:
    f.write(f"{os.getpid()} {grandchild.pid}")
os.replace(pids_file + ".tmp", pids_file)
time.sleep(300)
"""


def alive(pid: int) -> bool:
    """True while ``pid`` runs (a zombie waiting for a parent that never reaps counts as gone)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def wait_for_file(path: Path, timeout_s: float) -> str:
    deadline = time.monotonic() + timeout_s
    while not path.exists():
        if time.monotonic() > deadline:
            pytest.fail(f"{path} did not appear within {timeout_s} s")
        time.sleep(0.05)
    return path.read_text()


def wait_until_gone(pids: list[int], timeout_s: float) -> list[int]:
    """The pids still alive after ``timeout_s`` seconds (empty once all are gone)."""
    deadline = time.monotonic() + timeout_s
    while any(alive(pid) for pid in pids) and time.monotonic() < deadline:
        time.sleep(0.05)
    return [pid for pid in pids if alive(pid)]


def kill_leftovers(pids_file: Path) -> None:
    """Never leave this test's runner or grandchild behind, whatever happened."""
    if pids_file.exists():
        for pid in map(int, pids_file.read_text().split()):
            if alive(pid):
                os.kill(pid, signal.SIGKILL)


def signal_self_when_started(pids_file: Path, signum: int) -> threading.Thread:
    """Send ``signum`` to this (the supervising) process once the fake runner has started."""

    def send() -> None:
        wait_for_file(pids_file, 60)
        os.kill(os.getpid(), signum)

    thread = threading.Thread(target=send, daemon=True)
    thread.start()
    return thread


@pytest.fixture
def fake_runner(monkeypatch, settings, tmp_path) -> Path:
    """Points the supervisor at FAKE_RUNNER; returns the file where it writes its pids."""
    settings.ARBITER_DATA_DIR = tmp_path
    pids_file = tmp_path / "pids"
    monkeypatch.setattr(
        supervisor, "runner_command",
        lambda job_id: [sys.executable, "-c", FAKE_RUNNER, str(pids_file), str(job_id)],
    )
    yield pids_file
    kill_leftovers(pids_file)


@pytest.fixture
def caught_sigterm() -> list[int]:
    """A recording SIGTERM handler for the test (the default would end pytest); the signals it
    received, in order."""
    received: list[int] = []
    previous = signal.signal(signal.SIGTERM, lambda signum, frame: received.append(signum))
    yield received
    signal.signal(signal.SIGTERM, previous)


@pytest.mark.django_db
def test_sigterm_to_the_worker_kills_a_runner_that_ignores_it_and_fails_the_job(
    fake_runner, caught_sigterm, monkeypatch
):
    monkeypatch.setenv("IGNORE_TERM", "1")
    monkeypatch.setattr(supervisor, "WORKER_STOP_GRACE_S", 0.5)
    job = Job.objects.create(kind=JobKind.GENERATION, config={"checkpoints": ["smol"]})
    signal_self_when_started(fake_runner, signal.SIGTERM)

    status = supervisor.job_supervise(job_id=job.pk)

    runner_pid, grandchild_pid = map(int, fake_runner.read_text().split())
    assert wait_until_gone([runner_pid, grandchild_pid], timeout_s=10) == []
    job.refresh_from_db()
    assert status == job.status == JobStatus.FAILED
    assert job.error == (
        "The worker stopped (SIGTERM) while this job was running, so the job was stopped too; queue it again to run it."
    )
    assert job.finished_at is not None
    assert supervisor.job_log_path(job.pk).read_text().splitlines()[-1] == f"error: {job.error}"
    # The signal still reaches the handler that was there before (db_worker's: finish, then exit).
    assert caught_sigterm == [signal.SIGTERM]


@pytest.mark.django_db(transaction=True)
def test_ctrl_c_while_a_job_runs_stops_its_runner_and_fails_the_job_it_would_call_cancelled(
    fake_runner, monkeypatch
):
    """The real runner answers SIGTERM by stopping between batches and recording 'cancelled';
    nobody cancelled the job, so it ends failed with the reason, and Ctrl-C still interrupts."""
    monkeypatch.setenv("RECORD_CANCELLED", "1")
    monkeypatch.setenv("DATABASE_URL", child_database_url())
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    job = Job.objects.create(kind=JobKind.GENERATION, config={"checkpoints": ["smol"]})
    try:
        signal_self_when_started(fake_runner, signal.SIGINT)
        with pytest.raises(KeyboardInterrupt):
            supervisor.job_supervise(job_id=job.pk)
    finally:
        signal.signal(signal.SIGINT, previous)

    runner_pid, grandchild_pid = map(int, fake_runner.read_text().split())
    assert wait_until_gone([runner_pid, grandchild_pid], timeout_s=10) == []
    job.refresh_from_db()
    assert job.status == JobStatus.FAILED
    assert job.error == supervisor.worker_stop_reason("SIGINT")
    assert "The worker stopped (SIGINT) while this job was running" in job.error


@pytest.mark.django_db
def test_a_job_that_finishes_normally_leaves_the_signal_handlers_as_they_were(monkeypatch, settings, tmp_path):
    settings.ARBITER_DATA_DIR = tmp_path
    monkeypatch.setattr(supervisor, "runner_command", lambda job_id: [sys.executable, "-c", "raise SystemExit(3)"])
    before = signal.getsignal(signal.SIGTERM), signal.getsignal(signal.SIGINT)
    job = Job.objects.create(kind=JobKind.GENERATION, config={"checkpoints": ["smol"]})

    assert supervisor.job_supervise(job_id=job.pk) == JobStatus.FAILED

    assert (signal.getsignal(signal.SIGTERM), signal.getsignal(signal.SIGINT)) == before
    job.refresh_from_db()
    assert job.error == "The runner process exited with code 3 without recording a result."


@pytest.mark.django_db(transaction=True)
def test_sigterm_to_db_worker_stops_its_runner_fails_the_job_and_the_worker_exits(tmp_path, monkeypatch):
    """What ``make demo``'s Ctrl-C or SIGTERM does to its worker: the real ``manage.py db_worker``,
    with a fake runner as the launcher (``ARBITER_RUNNER_LAUNCHER``)."""
    from training.tasks import job_execute

    pids_file = tmp_path / "pids"
    script = tmp_path / "fake_runner.py"
    script.write_text(FAKE_RUNNER)
    # The supervisor runs: python fake_runner.py PIDS_FILE -m training.runner JOB_ID
    monkeypatch.setenv("ARBITER_RUNNER_LAUNCHER", f"{sys.executable} {script} {pids_file}")
    monkeypatch.setenv("DATABASE_URL", child_database_url())
    monkeypatch.setenv("ARBITER_DATA_DIR", str(tmp_path))
    job = Job.objects.create(kind=JobKind.GENERATION, config={"checkpoints": ["smol"]})
    job_execute.enqueue(job.pk)
    log_path = tmp_path / "worker.log"
    with log_path.open("wb") as log:
        worker = subprocess.Popen(
            [sys.executable, "manage.py", "db_worker", "--interval", "0.2", "--no-startup-delay", "--no-reload"],
            cwd=settings.BASE_DIR, env=dict(os.environ), stdout=log, stderr=subprocess.STDOUT,
        )
    try:
        runner_pid, grandchild_pid = map(int, wait_for_file(pids_file, 120).split())
        worker.send_signal(signal.SIGTERM)
        try:
            returncode = worker.wait(timeout=60)
        except subprocess.TimeoutExpired:
            pytest.fail(f"the worker did not exit within 60 s of SIGTERM; its log:\n{log_path.read_text()}")
        assert returncode == 0, log_path.read_text()
        assert wait_until_gone([runner_pid, grandchild_pid], timeout_s=10) == []
        job.refresh_from_db()
        assert job.status == JobStatus.FAILED, log_path.read_text()
        assert job.error == supervisor.worker_stop_reason("SIGTERM")
    finally:
        if worker.poll() is None:
            worker.kill()
            worker.wait(timeout=30)
        kill_leftovers(pids_file)

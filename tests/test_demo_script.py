"""scripts/demo.sh (``make demo``) with a fake Python: what it starts, that SIGTERM or SIGINT stops all of
it (exit 0) and cancels the generation jobs it queued that have not started.

The script is copied into a temporary project, and ``VENV`` points at a fake ``bin/python`` that
records each command line. ``manage.py db_worker`` and ``gunicorn`` stand-ins are shells that start a
``sleep`` in their process group and wait: the shell dies on SIGTERM, the ``sleep`` does not, unless
the signal goes to the whole group. (What a real worker does with its runner on SIGTERM is
tests/test_worker_stop.py.)
"""
from __future__ import annotations

import os
import shutil
import signal
import subprocess
import time
from pathlib import Path

import pytest
from django.conf import settings

FAKE_PYTHON = """#!/usr/bin/env bash
echo "$*" >> "$DEMO_CALLS"
case "$*" in
  *"import secrets"*) echo not-a-real-secret ;;
  *"manage.py generate"*)
    id=$(( $(grep -c "manage.py generate" "$DEMO_CALLS") + 40 ))
    echo "queued generation job $id over 8 prompts" ;;
  *"manage.py cancel_job"*)
    # Which of the servers' processes are still alive while the jobs are cancelled.
    for pid in $(cat "$DEMO_PIDS" 2>/dev/null); do
      [ -d /proc/$pid ] && ! grep -q ') Z' /proc/$pid/stat && echo "alive during cancel_job: $pid" >> "$DEMO_CALLS"
    done
    echo "generation job N: cancelled (it had not started)" ;;
  *"manage.py db_worker"*|*"-m gunicorn"*)
    sleep 300 &
    echo $! >> "$DEMO_PIDS"
    wait ;;
esac
"""


def alive(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


@pytest.fixture
def demo_env():
    """Extra environment for demo.sh (a test sets keys before the ``demo`` fixture starts it)."""
    return {}


@pytest.fixture
def leftover_jobs():
    """Generation job ids an earlier run left in var/demo-generation-jobs (none by default)."""
    return []


@pytest.fixture
def demo(tmp_path, demo_env, leftover_jobs):
    """Run the copied demo.sh until its banner is out; yields (process, calls file, pids file, log)."""
    project = tmp_path / "project"
    (project / "scripts").mkdir(parents=True)
    if leftover_jobs:
        (project / "var").mkdir()
        (project / "var" / "demo-generation-jobs").write_text("".join(f"{pk}\n" for pk in leftover_jobs))
    shutil.copy(Path(settings.BASE_DIR) / "scripts" / "demo.sh", project / "scripts" / "demo.sh")
    python = tmp_path / "venv" / "bin" / "python"
    python.parent.mkdir(parents=True)
    python.write_text(FAKE_PYTHON)
    python.chmod(0o755)
    calls, pids = tmp_path / "calls", tmp_path / "pids"
    env = {**os.environ, "VENV": str(tmp_path / "venv"), "DEMO_CALLS": str(calls), "DEMO_PIDS": str(pids),
           "PORT": "8999", **demo_env}
    env.pop("OMP_NUM_THREADS", None)
    log = tmp_path / "demo.log"
    with log.open("wb") as out:
        process = subprocess.Popen(["bash", str(project / "scripts" / "demo.sh")], env=env, stdout=out,
                                   stderr=subprocess.STDOUT, start_new_session=True)
    try:
        deadline = time.monotonic() + 30
        while not (pids.exists() and len(pids.read_text().split()) >= 2 and "Arbiter is running" in log.read_text()):
            if time.monotonic() > deadline or process.poll() is not None:
                pytest.fail(f"demo.sh did not start its servers; its output:\n{log.read_text()}")
            time.sleep(0.1)
        time.sleep(0.5)  # every stand-in has started its sleep
        yield process, calls, pids, log
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
        if pids.exists():
            for pid in map(int, pids.read_text().split()):
                if alive(pid):
                    os.kill(pid, signal.SIGKILL)


def test_the_demo_queues_a_small_generation_job_first_and_starts_two_workers(demo):
    _, calls, _, _ = demo
    lines = calls.read_text().splitlines()
    generate = [line for line in lines if "manage.py generate" in line]
    assert len(generate) == 2, lines
    first, rest = generate
    assert "--split eval" in first and "--limit 8" in first, first  # comparisons within minutes
    assert "--split train" in rest and "--limit" not in rest, rest  # the other prompts, no overlap
    assert sum("manage.py db_worker" in line for line in lines) == 2, lines
    assert sum("-m gunicorn" in line for line in lines) == 1, lines


def stop(process, log, signum) -> None:
    process.send_signal(signum)
    try:
        process.wait(timeout=60)
    except subprocess.TimeoutExpired:
        pytest.fail(f"demo.sh did not exit within 60 s of {signal.Signals(signum).name}; its output:\n{log.read_text()}")


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_a_signal_stops_every_process_the_demo_started_and_exits_0(demo, signum):
    process, calls, pids, log = demo
    started = list(map(int, pids.read_text().split()))
    assert len(started) >= 2 and all(alive(pid) for pid in started)  # workers and the web server

    stop(process, log, signum)

    deadline = time.monotonic() + 5
    while any(alive(pid) for pid in started) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert [pid for pid in started if alive(pid)] == [], log.read_text()
    # A clean stop is a success: make does not print "make: *** [Makefile:28: demo] Error 130".
    assert process.returncode == 0, log.read_text()
    assert "stopped" in log.read_text()


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_stopping_cancels_the_generation_jobs_it_queued_that_have_not_started(demo, signum):
    process, calls, _, log = demo
    stop(process, log, signum)

    lines = calls.read_text().splitlines()
    cancels = [line for line in lines if "manage.py cancel_job" in line]
    # Both jobs it queued (ids 41 and 42 from the fake generate), only if still queued: a job a
    # worker was running is failed by that worker as it stops.
    assert cancels == [cancels[0]] and cancels[0].endswith("manage.py cancel_job --if-queued 41 42"), lines
    # ... once the workers are gone, so none can start one of them in between.
    assert not any(line.startswith("alive during cancel_job") for line in lines), lines
    output = log.read_text()
    assert output.index("stopping the web server") < output.index("cancelling the generation jobs") < output.rindex("stopped")
    assert not (calls.parent / "project" / "var" / "demo-generation-jobs").exists()  # nothing left for the next start


def test_while_running_the_demo_keeps_the_ids_of_the_jobs_it_queued(demo, tmp_path):
    jobs_file = tmp_path / "project" / "var" / "demo-generation-jobs"
    assert jobs_file.read_text().split() == ["41", "42"]


@pytest.mark.parametrize("leftover_jobs", [[7, 9]])
def test_a_start_first_cancels_the_queued_jobs_an_unclean_stop_left_behind(demo, leftover_jobs):
    process, calls, _, log = demo
    lines = calls.read_text().splitlines()
    first_cancel = next(i for i, line in enumerate(lines) if "manage.py cancel_job" in line)
    first_generate = next(i for i, line in enumerate(lines) if "manage.py generate" in line)
    assert lines[first_cancel].endswith("manage.py cancel_job --if-queued 7 9"), lines
    assert first_cancel < first_generate  # the old jobs never run ahead of the new ones
    assert "did not stop cleanly" in log.read_text()

    stop(process, log, signal.SIGTERM)
    cancels = [line for line in calls.read_text().splitlines() if "manage.py cancel_job" in line]
    assert cancels[-1].endswith("manage.py cancel_job --if-queued 41 42"), cancels  # not 7 and 9 again


@pytest.mark.parametrize(("demo_env", "banner"), [
    ({"WORKERS": "1"}, "stop the web server, the task worker and any job"),
    ({}, "stop the web server, the 2 task workers and any job"),
])
def test_the_banner_counts_the_workers_in_words(demo, demo_env, banner):
    _, calls, _, log = demo
    assert banner in log.read_text()
    assert sum("manage.py db_worker" in line for line in calls.read_text().splitlines()) == int(demo_env.get("WORKERS", 2))

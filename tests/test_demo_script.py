"""scripts/demo.sh (``make demo``) with a fake Python: what it starts, and that SIGTERM stops all of it.

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
def demo(tmp_path):
    """Run the copied demo.sh until its banner is out; yields (process, calls file, pids file)."""
    project = tmp_path / "project"
    (project / "scripts").mkdir(parents=True)
    shutil.copy(Path(settings.BASE_DIR) / "scripts" / "demo.sh", project / "scripts" / "demo.sh")
    python = tmp_path / "venv" / "bin" / "python"
    python.parent.mkdir(parents=True)
    python.write_text(FAKE_PYTHON)
    python.chmod(0o755)
    calls, pids = tmp_path / "calls", tmp_path / "pids"
    env = {**os.environ, "VENV": str(tmp_path / "venv"), "DEMO_CALLS": str(calls), "DEMO_PIDS": str(pids),
           "PORT": "8999"}
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


def test_sigterm_stops_every_process_the_demo_started(demo):
    process, _, pids, log = demo
    started = list(map(int, pids.read_text().split()))
    assert len(started) >= 2 and all(alive(pid) for pid in started)  # workers and the web server

    process.send_signal(signal.SIGTERM)
    try:
        process.wait(timeout=60)
    except subprocess.TimeoutExpired:
        pytest.fail(f"demo.sh did not exit within 60 s of SIGTERM; its output:\n{log.read_text()}")

    deadline = time.monotonic() + 5
    while any(alive(pid) for pid in started) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert [pid for pid in started if alive(pid)] == [], log.read_text()
    assert process.returncode == 128 + signal.SIGTERM
    assert "stopped" in log.read_text()

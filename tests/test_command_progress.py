"""Progress and failures where an operator reads them: the progress line of ``--wait`` and
``manage.py loop`` (rewritten in place on a terminal, a line every so often in a log), and the
readable ``error: ...`` line a failed job leaves in its log (before the runner's traceback, or as the
last line when the child died without a word). Also: under a multi-process launcher only rank 0
generates.
"""
from __future__ import annotations

import io
import sys

import pytest
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError, OutputWrapper

from tests.factories import ComparisonFactory, PromptFactory, UserFactory, VoteFactory
from tests.model_fixtures import child_database_url
from training import loop, runner, supervisor
from training.management.commands import _launch
from training.management.commands._launch import ProgressLine, wait_for
from training.models import Checkpoint, CheckpointKind, Job, JobKind, JobStatus, LoopRound, RoundStatus


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def wrapper() -> tuple[OutputWrapper, io.StringIO]:
    out = io.StringIO()
    return OutputWrapper(out), out


# --- the progress line ----------------------------------------------------------------------------


def test_on_a_terminal_the_line_is_rewritten_in_place_and_cleared_at_the_end():
    stdout, out = wrapper()
    line = ProgressLine(stdout, unit="step", tty=True)
    line.update(0, 0)  # nothing known yet: nothing shown
    line.update(12, 38)
    line.update(12, 38)  # unchanged: not written again
    line.update(38, 38)
    assert out.getvalue() == "\r  step 12/38 (31%)\r  step 38/38 (100%)"
    line.clear()
    assert out.getvalue().endswith("\r" + " " * len("  step 38/38 (100%)") + "\r")
    assert "\n" not in out.getvalue()


def test_a_shorter_line_on_a_terminal_covers_the_longer_one_before_it():
    stdout, out = wrapper()
    line = ProgressLine(stdout, unit="step", tty=True, prefix="  DPO job 3: ")
    line.start()
    line.update(5, 0)  # the total is not known yet
    assert out.getvalue() == "\r  DPO job 3: started\r  DPO job 3: step 5 "


def test_in_a_log_a_line_is_written_every_so_often_and_only_when_it_changed():
    stdout, out = wrapper()
    clock = Clock()
    line = ProgressLine(stdout, unit="completion", tty=False, every_s=15, clock=clock)
    line.update(1, 40)
    clock.now = 5
    line.update(9, 40)  # too soon after the last line
    clock.now = 16
    line.update(20, 40)
    clock.now = 40
    line.update(20, 40)  # no change
    line.clear()  # nothing to rub out in a log
    assert out.getvalue() == "  completion 1/40 (2%)\n  completion 20/40 (50%)\n"


def test_the_phase_follows_the_counts_and_a_new_phase_is_written_at_once_in_a_log():
    stdout, out = wrapper()
    clock = Clock()
    line = ProgressLine(stdout, unit="step", tty=False, every_s=15, clock=clock)
    line.update(0, 2, "training")
    line.update(2, 2, "training")  # too soon, same phase: not written
    clock.now = 1
    line.update(2, 2, "evaluating")  # a new phase: written at once
    line.update(2, 2, "saving checkpoint")
    line.update(2, 2, "saving checkpoint")
    clock.now = 100
    line.update(2, 2, "")  # the phase ends with the job: not a line of its own, even much later
    assert out.getvalue().splitlines() == [
        "  step 0/2 (0%) · training", "  step 2/2 (100%) · evaluating", "  step 2/2 (100%) · saving checkpoint",
    ]
    terminal, shown = wrapper()
    ProgressLine(terminal, unit="step", tty=True).update(2, 2, "registering checkpoint")
    assert shown.getvalue() == "\r  step 2/2 (100%) · registering checkpoint"


# --- --wait: a real child process reports progress on the job row -----------------------------------

# The fake runners move on only once the waiting command has printed what they reported (they
# read its output, mirrored to a file), so the test does not depend on how fast either side runs.
SEEN = """
def seen(text, path=sys.argv[2], timeout=60):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if text in open(path, encoding="utf-8").read():
            return
        time.sleep(0.05)
"""

FAKE_RUNNER = """
import os, sys, time
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
import django
django.setup()
from training.models import Job
""" + SEEN + """
job_id = int(sys.argv[1])
for done in (1, 2, 3):
    Job.objects.filter(pk=job_id).update(progress_done=done, progress_total=3)
    seen(f"prompt {done}/3")
Job.objects.filter(pk=job_id).update(status="succeeded", summary={"paired": 3})
"""


class MirroredOutput(io.StringIO):
    """A command's stdout that is also appended to a file, for the fake runner to read."""

    def __init__(self, path):
        super().__init__()
        self.path = path
        path.write_text("")

    def write(self, text):
        with open(self.path, "a", encoding="utf-8") as mirror:
            mirror.write(text)
        return super().write(text)


def runner_reading(script, mirror):
    return lambda job_id: [sys.executable, "-c", script, str(job_id), str(mirror)]


@pytest.mark.django_db(transaction=True)
def test_wait_prints_the_jobs_progress_while_its_child_runs(monkeypatch, settings, tmp_path):
    settings.ARBITER_DATA_DIR = tmp_path
    monkeypatch.setenv("DATABASE_URL", child_database_url())
    mirror = tmp_path / "stdout.txt"
    monkeypatch.setattr(supervisor, "runner_command", runner_reading(FAKE_RUNNER, mirror))
    monkeypatch.setattr(_launch, "PROGRESS_EVERY_S", 0)  # every change gets its line in a log
    job = Job.objects.create(kind=JobKind.GENERATION, config={"checkpoints": ["smol"]})
    command = BaseCommand(stdout=MirroredOutput(mirror))

    wait_for(command, job)

    lines = command.stdout._out.getvalue().splitlines()
    assert lines[:3] == ["  prompt 1/3 (33%)", "  prompt 2/3 (66%)", "  prompt 3/3 (100%)"], lines
    assert lines[3].startswith(f"job {job.pk} succeeded in ") and lines[3].endswith(': {"paired": 3}'), lines
    assert len(lines) == 4


PHASED_RUNNER = """
import os, sys, time
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
import django
django.setup()
from training.models import Job
""" + SEEN + """
job_id = int(sys.argv[1])
Job.objects.filter(pk=job_id).update(progress_done=2, progress_total=2, phase="evaluating")
seen("evaluating")
for phase in ("saving checkpoint", "registering checkpoint"):
    Job.objects.filter(pk=job_id).update(phase=phase)
    seen(phase)
Job.objects.filter(pk=job_id).update(status="succeeded", phase="", summary={"steps": 2})
"""


@pytest.mark.django_db(transaction=True)
def test_wait_shows_what_a_run_does_after_its_last_step(monkeypatch, settings, tmp_path):
    settings.ARBITER_DATA_DIR = tmp_path
    monkeypatch.setenv("DATABASE_URL", child_database_url())
    mirror = tmp_path / "stdout.txt"
    monkeypatch.setattr(supervisor, "runner_command", runner_reading(PHASED_RUNNER, mirror))
    job = Job.objects.create(kind=JobKind.REWARD, config={"base": "smol"})
    command = BaseCommand(stdout=MirroredOutput(mirror))

    wait_for(command, job)  # a log (not a terminal): counts every 15 s, but each new phase at once

    lines = command.stdout._out.getvalue().splitlines()
    assert lines[:3] == [
        "  step 2/2 (100%) · evaluating", "  step 2/2 (100%) · saving checkpoint", "  step 2/2 (100%) · registering checkpoint",
    ], lines
    assert lines[3].startswith(f"job {job.pk} succeeded in ") and len(lines) == 4


@pytest.mark.django_db
def test_a_successful_runner_clears_the_phase(monkeypatch):
    from training import runners
    from training.runners.progress import Reporter

    def finished(job, reporter):
        reporter.phase("registering checkpoint")
        return {"steps": 2}

    monkeypatch.setitem(runners.RUNNERS, "generation", finished)
    monkeypatch.setattr(Reporter, "start", lambda self: None)
    job = Job.objects.create(kind=JobKind.GENERATION, status=JobStatus.RUNNING, config={"checkpoints": ["smol"]})
    assert runner.main(["runner", str(job.pk)]) == 0
    job.refresh_from_db()
    assert (job.status, job.phase, job.summary) == (JobStatus.SUCCEEDED, "", {"steps": 2})


@pytest.mark.django_db
def test_a_child_that_dies_leaves_the_reason_as_the_last_line_of_its_log(monkeypatch, settings, tmp_path):
    settings.ARBITER_DATA_DIR = tmp_path
    died = "import os, signal; print('loading the model'); os.kill(os.getpid(), signal.SIGKILL)"
    monkeypatch.setattr(supervisor, "runner_command", lambda job_id: [sys.executable, "-c", died])
    job = Job.objects.create(kind=JobKind.GENERATION, config={"checkpoints": ["smol"]})
    command = BaseCommand(stdout=io.StringIO())

    with pytest.raises(CommandError, match="killed by SIGKILL"):
        wait_for(command, job)

    job.refresh_from_db()
    assert job.status == JobStatus.FAILED
    log = supervisor.job_log_path(job.pk).read_text().splitlines()
    assert log == ["loading the model", f"error: {job.error}"]
    assert job.error == "The runner process was killed by SIGKILL (out of memory, or killed by an operator)."


# --- the runner's own failure line ---------------------------------------------------------------


@pytest.mark.django_db
def test_a_failing_runner_writes_the_readable_error_before_the_traceback(monkeypatch, capsys):
    from training import runners
    from training.runners.progress import Reporter

    def broken(job, reporter):
        raise ValueError("checkpoint 'smol' has no weights at /data/smol")

    monkeypatch.setitem(runners.RUNNERS, "generation", broken)
    monkeypatch.setattr(Reporter, "start", lambda self: None)  # no heartbeat thread, no SIGTERM handler here
    job = Job.objects.create(kind=JobKind.GENERATION, status=JobStatus.RUNNING, config={"checkpoints": ["smol"]})

    assert runner.main(["runner", str(job.pk)]) == 1

    stderr = capsys.readouterr().err.strip().splitlines()
    assert stderr[0] == "error: ValueError: checkpoint 'smol' has no weights at /data/smol"
    assert stderr[1] == "Traceback (most recent call last):" and stderr[-1].startswith("ValueError: checkpoint")
    job.refresh_from_db()
    assert (job.status, job.error) == (JobStatus.FAILED, "ValueError: checkpoint 'smol' has no weights at /data/smol")


# --- manage.py loop -------------------------------------------------------------------------------


@pytest.fixture
def loop_world(settings, tmp_path):
    settings.ARBITER_DATA_DIR = tmp_path
    annotator = UserFactory(role="annotator")
    Checkpoint.objects.create(name="smol", hub_id="x/smol")
    for index in range(12):
        comparison = ComparisonFactory(prompt=PromptFactory(split="eval" if index % 3 == 0 else "train"),
                                       status="complete", vote_count=1)
        VoteFactory(comparison=comparison, annotator=annotator, choice="a" if index % 2 else "b", strength="clear")


def fake_supervise(*, job_id: int, on_progress=None) -> str:
    """Stands in for the child process: reports two steps of progress, then ends the job as a
    runner would (a training run registers its checkpoint) and lets the loop take its next step."""
    job = Job.objects.get(pk=job_id)
    for done in (1, 2):
        Job.objects.filter(pk=job_id).update(progress_done=done, progress_total=2)
        on_progress(done, 2)
    summary = {"paired": 2}
    if job.kind in (JobKind.REWARD, JobKind.DPO):
        kind = CheckpointKind.REWARD if job.kind == JobKind.REWARD else CheckpointKind.POLICY
        Checkpoint.objects.create(name=f"smol-{job.kind}-{job.pk}", hub_id=f"x/{job.pk}", kind=kind,
                                  parent=Checkpoint.objects.get(name=job.config["base"]), run=job)
        summary = {"eval_accuracy": 0.75} if job.kind == JobKind.REWARD else {"train_loss": 0.5}
    Job.objects.filter(pk=job_id).update(status=JobStatus.SUCCEEDED, summary=summary)
    loop.job_finished(job_id=job_id)
    return JobStatus.SUCCEEDED


@pytest.mark.django_db
def test_loop_shows_each_steps_progress_then_its_outcome(loop_world, monkeypatch):
    monkeypatch.setattr(supervisor, "job_supervise", fake_supervise)
    monkeypatch.setattr(_launch, "PROGRESS_EVERY_S", 0)
    out = io.StringIO()

    call_command("loop", "--rounds", "1", "--policy", "smol", "--method", "dpo", stdout=out)

    loop_round = LoopRound.objects.get()
    assert loop_round.status == RoundStatus.SUCCEEDED
    lines = out.getvalue().splitlines()
    steps = [("reward model training", loop_round.reward_job_id, "step"), ("DPO", loop_round.policy_job_id, "step"),
             ("generation", loop_round.generation_job_id, "prompt")]
    expected = []
    for name, job_id, unit in steps:
        expected += [f"  {name} job {job_id}: started", f"  {name} job {job_id}: {unit} 1/2 (50%)",
                     f"  {name} job {job_id}: {unit} 2/2 (100%)", f"  {name} job {job_id} succeeded in 0 s"]
    assert lines[1:-1] == expected, lines
    assert lines[-1].startswith(f"round #{loop_round.pk} succeeded: votes used 12")


@pytest.mark.django_db
@pytest.mark.parametrize("kind", [JobKind.GENERATION, JobKind.JUDGING, JobKind.CAI])
def test_under_a_multi_process_launcher_only_rank_0_generates(monkeypatch, kind):
    """Generation, judging and critique-revise jobs write rows per prompt: another rank would write
    each completion, AI vote or revision again."""
    from training import runners

    ran = []
    monkeypatch.setitem(runners.RUNNERS, kind, lambda job, reporter: ran.append(job.pk) or {})
    monkeypatch.setenv("RANK", "1")
    job = Job.objects.create(kind=kind, status=JobStatus.RUNNING, config={"checkpoints": ["smol"]})

    assert runner.main(["runner", str(job.pk)]) == 0

    assert ran == []  # rank 1 leaves every completion to rank 0
    assert Job.objects.get(pk=job.pk).status == JobStatus.RUNNING  # and records no outcome

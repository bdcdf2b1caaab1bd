"""Entry point of a job's child process: ``python -m training.runner JOB_ID``.

The same module runs under ``accelerate launch -m training.runner JOB_ID``. It records the job's
outcome (succeeded, cancelled, or failed with a readable error and the traceback) on the job row.
Exit code 0 on success or cancellation, 1 on failure, 2 for a bad command line.
"""
from __future__ import annotations

import os
import sys
import traceback


# Kinds whose runner does not share work across processes: under a multi-process launcher
# (``ARBITER_RUNNER_LAUNCHER``) only rank 0 runs them. (Scoring keeps to rank 0 by itself.)
SINGLE_PROCESS_KINDS = ("generation", "judging", "cai")


def is_main_process() -> bool:
    """True in a plain process and in the rank-0 process of a ``torchrun``/``accelerate launch``
    group (read from the ``RANK`` variable those launchers set, so no torch import is needed)."""
    return os.environ.get("RANK", "0") in ("", "0")


def main(argv: list[str]) -> int:
    """Run the job named by ``argv[1]`` and record its outcome; returns the process exit code (0, 1 or 2)."""
    if len(argv) != 2 or not argv[1].isdigit():
        print("usage: python -m training.runner JOB_ID", file=sys.stderr)
        return 2
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    import django

    django.setup()
    from django.utils import timezone

    from training.models import Job, JobStatus
    from training.runners import RUNNERS
    from training.runners.progress import Reporter
    from training.services import job_fail

    job_id = int(argv[1])
    job = Job.objects.filter(pk=job_id).first()
    if job is None:
        print(f"error: no job {job_id}", file=sys.stderr)
        return 2
    # Under torchrun / accelerate launch every process runs this; only the main one (rank 0)
    # beats the heartbeat and records the outcome. The runners themselves keep to the same rule
    # for files, registration and progress.
    main_process = is_main_process()
    if not main_process and job.kind in SINGLE_PROCESS_KINDS:
        return 0  # rank 0 does all of it; another rank would write every completion again
    reporter = Reporter(job_id)
    if main_process:
        reporter.start()
    try:
        summary = RUNNERS[job.kind](job, reporter)
    except Exception as error:  # any failure is recorded on the row, readable first, traceback after
        reporter.stop()
        trace = traceback.format_exc()
        reason = f"{type(error).__name__}: {error}"
        # The log (stderr goes there) says the same: the readable line first, then the traceback.
        print(f"error: {reason}", file=sys.stderr)
        print(trace, file=sys.stderr)
        job_fail(job_id=job_id, error=reason, traceback=trace)
        return 1
    reporter.stop()
    if not main_process:
        return 0
    status = JobStatus.CANCELLED if reporter.halted else JobStatus.SUCCEEDED
    Job.objects.filter(pk=job_id, status=JobStatus.RUNNING).update(
        status=status, summary=summary, phase="", finished_at=timezone.now(), heartbeat_at=timezone.now()
    )
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))

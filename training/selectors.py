"""Reads for the training app: checkpoints and jobs as the admin pages and the API show them."""
from __future__ import annotations

from collections.abc import Iterable

from django.db.models import QuerySet

from .models import Checkpoint, CheckpointKind, Job, JobStatus

ACTIVE = (JobStatus.QUEUED, JobStatus.RUNNING)


def checkpoint_list() -> QuerySet[Checkpoint]:
    """Every checkpoint, newest first, with its parent joined."""
    return Checkpoint.objects.select_related("parent", "run")


def policy_checkpoint_names() -> list[str]:
    """Names of the checkpoints generation can sample from (policies), newest first."""
    return list(Checkpoint.objects.filter(kind=CheckpointKind.POLICY).values_list("name", flat=True))


def reward_checkpoint_names() -> list[str]:
    """Names of the reward models scoring can use, newest first."""
    return list(Checkpoint.objects.filter(kind=CheckpointKind.REWARD).values_list("name", flat=True))


def job_list(*, status: str | None = None, kind: str | None = None) -> QuerySet[Job]:
    """Jobs, newest first, with their creator joined; optionally of one status and/or kind."""
    qs = Job.objects.select_related("created_by", "output_checkpoint")
    if status:
        qs = qs.filter(status=status)
    if kind:
        qs = qs.filter(kind=kind)
    return qs


def jobs_any_active(jobs: Iterable[Job]) -> bool:
    """True when any of ``jobs`` is queued or running (its page should keep polling)."""
    return any(job.status in ACTIVE for job in jobs)

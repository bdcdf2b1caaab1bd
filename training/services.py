"""Writes for the training app: register checkpoints, create/cancel/reap jobs, report progress.

Keyword-only; errors are ``django.core.exceptions.ValidationError`` (field -> messages) so the
page, the API and the command line can each show them.
"""
from __future__ import annotations

import os
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from feedback import interface as feedback

from .config import ConfigError, GenerationConfig
from .models import Checkpoint, CheckpointKind, Job, JobKind, JobStatus

HEARTBEAT_TIMEOUT_S = int(os.environ.get("ARBITER_HEARTBEAT_TIMEOUT", "120"))


def checkpoint_register(
    *,
    name: str,
    kind: str = CheckpointKind.POLICY,
    weights_dir: str = "",
    hub_id: str = "",
    parent: Checkpoint | None = None,
    is_adapter: bool = False,
    metadata: dict[str, Any] | None = None,
    run: Job | None = None,
) -> Checkpoint:
    """Register a checkpoint whose files are already complete.

    ``weights_dir`` is relative to ``ARBITER_DATA_DIR`` and must hold ``config.json`` plus
    ``*.safetensors`` (or ``adapter_config.json`` for an adapter). ``run`` is the training run
    that produced it (its lineage: base, dataset snapshot, config); a run registers at most one.
    Raises:
        ValidationError: a taken or empty name, both or neither of weights_dir/hub_id, missing files.
    """
    if not name or len(name) > 200:
        raise ValidationError({"name": "must be 1-200 characters"})
    if Checkpoint.objects.filter(name=name).exists():
        raise ValidationError({"name": f"a checkpoint named {name!r} exists"})
    if bool(weights_dir) == bool(hub_id):
        raise ValidationError({"weights_dir": "give exactly one of weights_dir and hub_id"})
    if weights_dir:
        path = settings.ARBITER_DATA_DIR / weights_dir
        marker = "adapter_config.json" if is_adapter else "config.json"
        if not (path / marker).is_file() or not any(path.glob("*.safetensors")):
            raise ValidationError({"weights_dir": f"{path} lacks {marker} or safetensors weights"})
    with transaction.atomic():
        return Checkpoint.objects.create(
            name=name, kind=kind, weights_dir=weights_dir, hub_id=hub_id, parent=parent,
            is_adapter=is_adapter, metadata=metadata or {}, run=run,
        )


def _enqueue(job: Job) -> None:
    from .tasks import job_execute

    result = job_execute.enqueue(job.pk)
    Job.objects.filter(pk=job.pk).update(task_id=str(result.id))


def generation_job_create(*, config: dict[str, Any], created_by=None) -> Job:
    """Validate a generation config against the registry and the prompts, then queue the job.

    Raises:
        ValidationError: any bad setting (see ``GenerationConfig``), an unknown checkpoint, a
            reward model where a policy is needed, or a prompt selection that matches nothing.
    """
    try:
        parsed = GenerationConfig.from_dict(dict(config))
    except ConfigError as error:
        raise ValidationError(error.errors) from None
    found = {c.name: c for c in Checkpoint.objects.filter(name__in=parsed.checkpoints)}
    for name in parsed.checkpoints:
        if name not in found:
            raise ValidationError({"checkpoints": f"no checkpoint named {name!r}"})
        if found[name].kind != CheckpointKind.POLICY:
            raise ValidationError({"checkpoints": f"{name!r} is a {found[name].kind} checkpoint; generation needs a policy"})
    prompts = feedback.prompts_select(
        ids=parsed.prompt_ids, tag=parsed.tag or None, split=parsed.split or None,
        max_open_comparisons=parsed.max_open_comparisons, limit=parsed.limit,
    )
    if not prompts:
        raise ValidationError({"prompts": "the prompt selection matches no prompts"})
    with transaction.atomic():
        job = Job.objects.create(
            kind=JobKind.GENERATION, config=parsed.as_dict(), created_by=created_by, progress_total=len(prompts)
        )
        transaction.on_commit(lambda: _enqueue(job))
    return job


def job_cancel(*, job: Job) -> Job:
    """Ask a job to stop. A queued job is cancelled at once; a running one stops at its next
    batch boundary (its supervisor also signals the runner process). Finished jobs are left as they are."""
    with transaction.atomic():
        job = Job.objects.select_for_update().get(pk=job.pk)
        if job.status == JobStatus.QUEUED:
            job.status, job.finished_at, job.cancel_requested = JobStatus.CANCELLED, timezone.now(), True
            job.save(update_fields=["status", "finished_at", "cancel_requested"])
        elif job.status == JobStatus.RUNNING:
            job.cancel_requested = True
            job.save(update_fields=["cancel_requested"])
    return job


def job_fail(*, job_id: int, error: str, traceback: str = "") -> None:
    """Mark a job failed with a readable reason unless it already finished."""
    Job.objects.filter(pk=job_id, status__in=[JobStatus.QUEUED, JobStatus.RUNNING]).update(
        status=JobStatus.FAILED, error=error[:10_000], traceback=traceback[-100_000:], finished_at=timezone.now()
    )


def jobs_reap(*, now: datetime | None = None, timeout_s: int = HEARTBEAT_TIMEOUT_S) -> int:
    """Mark running jobs whose heartbeat is older than ``timeout_s`` seconds as failed.

    Returns the number of jobs reaped. Runs at the start of every job, when the job list is
    shown, and from ``manage.py reap_jobs``.
    """
    now = now or timezone.now()
    cutoff = now - timedelta(seconds=timeout_s)
    stale = Job.objects.filter(status=JobStatus.RUNNING, heartbeat_at__lt=cutoff)
    return stale.update(
        status=JobStatus.FAILED,
        finished_at=now,
        error=f"The job's process stopped reporting (no heartbeat for over {timeout_s} s): it died or its worker was stopped.",
    )

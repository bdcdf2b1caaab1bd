"""Preference imports run as background jobs, like exports: an upload over
``ARBITER_IMPORT_INLINE_MAX_BYTES`` is kept under ``ARBITER_DATA_DIR/imports/``, recorded as an
``ImportJob`` (queued), and imported by the worker (``feedback.tasks.import_execute``, queued with
``transaction.on_commit``); smaller files import inline in the request, as before. The job's row
holds the outcome: the summary, or the error with every problem and the limit passed.
"""
from __future__ import annotations

import logging
import os
import secrets
import traceback
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from .import_limits import ImportLimitError
from .imports import PREFERENCE_FORMATS, ImportSummary, preferences_import
from .jsonl import JSONLFormatError
from .models import ImportJob, ImportJobStatus

logger = logging.getLogger(__name__)
OPTION_NAMES = ("source", "model_name", "split", "eval_fraction", "skip_refused", "allow_flagged")


def inline_max_bytes() -> int:
    """Uploads up to this many bytes import in the request (``ARBITER_IMPORT_INLINE_MAX_BYTES``)."""
    return int(getattr(settings, "ARBITER_IMPORT_INLINE_MAX_BYTES", 2 * 1024 * 1024))


def summary_dict(summary: ImportSummary) -> dict[str, Any]:
    """An ``ImportSummary`` as the API answers it: the counts, ``unit``, ``refusals`` and ``report`` lines."""
    return summary.as_dict() | {
        "unit": summary.unit, "refusals": [list(item) for item in summary.refusals], "report": summary.report(),
    }


def _imports_root() -> Path:
    root = Path(settings.ARBITER_DATA_DIR) / "imports"
    root.mkdir(parents=True, exist_ok=True)
    return root


def import_job_create(
    *, chunks: Iterable[bytes], file_name: str, format: str, options: dict[str, Any], created_by=None
) -> ImportJob:
    """Keep an uploaded preference file and queue its import.

    Args:
        chunks: the upload's bytes, written to ``ARBITER_DATA_DIR/imports/<random>.upload``.
        file_name: the name the file was uploaded under (shown only).
        format: one of ``PREFERENCE_FORMATS``.
        options: ``preferences_import`` keyword arguments among ``OPTION_NAMES`` (JSON values).
        created_by: the admin asking.
    Returns: the queued job (the task runs after the transaction commits).
    Raises:
        ValueError: an unknown format or option; nothing is kept.
    """
    if format not in PREFERENCE_FORMATS:
        raise ValueError(f"unknown format {format!r}; expected one of {', '.join(PREFERENCE_FORMATS)}")
    unknown = sorted(set(options) - set(OPTION_NAMES))
    if unknown:
        raise ValueError(f"unknown import options: {', '.join(unknown)}")
    path = _imports_root() / f"{secrets.token_hex(8)}.upload"
    partial = path.with_suffix(".part")
    size = 0
    try:  # temp-then-rename: an upload cut off half way (disk full, client gone) leaves no file behind
        with open(partial, "wb") as handle:
            for chunk in chunks:
                handle.write(chunk)
                size += len(chunk)
        os.replace(partial, path)
    except BaseException:
        partial.unlink(missing_ok=True)
        raise
    relative = path.relative_to(Path(settings.ARBITER_DATA_DIR)).as_posix()
    try:
        with transaction.atomic():
            job = ImportJob.objects.create(
                format=format, options=dict(options), file_name=file_name[:255], file_path=relative,
                size_bytes=size, created_by=created_by,
            )
            transaction.on_commit(lambda: _enqueue(job))
    except BaseException:
        path.unlink(missing_ok=True)
        raise
    return job


def _enqueue(job: ImportJob) -> None:
    from .tasks import import_execute

    result = import_execute.enqueue(job.pk)
    ImportJob.objects.filter(pk=job.pk).update(task_id=str(result.id))


def import_job_run(*, job_id: int) -> ImportJob:
    """Import a queued job's file (``preferences_import``, whole or nothing) and record the outcome;
    the kept file is removed either way. Does nothing to a job that is no longer queued.

    Raises:
        ImportJob.DoesNotExist: no job with that id.
    """
    with transaction.atomic():
        job = ImportJob.objects.select_for_update().get(pk=job_id)
        if job.status != ImportJobStatus.QUEUED:
            return job
        job.status, job.started_at = ImportJobStatus.RUNNING, timezone.now()
        job.save(update_fields=["status", "started_at"])
    path = Path(settings.ARBITER_DATA_DIR) / job.file_path
    outcome: dict[str, Any] = {"status": ImportJobStatus.FAILED}
    try:
        summary = preferences_import(path=path, format=job.format, **job.options)
        outcome = {"status": ImportJobStatus.SUCCEEDED, "summary": summary_dict(summary)}
    except JSONLFormatError as error:
        lines = str(error).splitlines()
        outcome |= {"error": "the file was refused; nothing was imported", "problems": lines[1:]}
        if isinstance(error, ImportLimitError):
            outcome["limit"] = error.as_dict()
    except Exception as error:  # recorded on the row; the worker goes on
        logger.error("import job %s failed:\n%s", job_id, traceback.format_exc())
        outcome["error"] = f"{type(error).__name__}: {error}"[:10_000]
    finally:
        path.unlink(missing_ok=True)
    ImportJob.objects.filter(pk=job_id).update(**outcome, file_path="", finished_at=timezone.now())
    return ImportJob.objects.get(pk=job_id)

"""Shared by the commands that queue a job: turn a ValidationError into one line, and --wait."""
from __future__ import annotations

import json
import time

from django.core.exceptions import ValidationError
from django.core.management.base import CommandError


def one_line(error: ValidationError) -> str:
    """``field: message; field: message`` — a ValidationError as the one line a command prints."""
    if hasattr(error, "error_dict"):
        return "; ".join(f"{k}: {' '.join(v)}" for k, v in error.message_dict.items())
    return " ".join(error.messages)


def parse_setting(text: str) -> tuple[str, object]:
    """``key=value`` from ``--set``: the value is JSON when it parses (numbers, true, null, lists), else a string.

    Raises:
        CommandError: no ``=`` or an empty key.
    """
    key, sep, value = text.partition("=")
    if not sep or not key.strip():
        raise CommandError(f"--set takes key=value, got {text!r}")
    try:
        return key.strip(), json.loads(value)
    except json.JSONDecodeError:
        return key.strip(), value


def wait_for(command, job) -> None:
    """Run ``job`` in a child process of this command (as a worker would), print how it ended.

    Raises:
        CommandError: the job did not succeed (its readable error is the message).
    """
    from training.supervisor import job_supervise

    started = time.monotonic()
    status = job_supervise(job_id=job.pk)
    job.refresh_from_db()
    command.stdout.write(f"job {job.pk} {status} in {time.monotonic() - started:.1f} s: {json.dumps(job.summary)}")
    if status != "succeeded":
        raise CommandError(job.error or f"job {job.pk} {status}")

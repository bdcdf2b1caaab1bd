"""Shared by the commands that queue a job: turn a ValidationError into one line, --wait, and its progress line."""
from __future__ import annotations

import json
import time
from collections.abc import Callable

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


# Seconds between progress lines when stdout is not a terminal (a log file, CI).
PROGRESS_EVERY_S = 15.0


def progress_unit(kind: str) -> str:
    """What a job kind's ``progress_done``/``progress_total`` count, as the job pages say it."""
    from training.models import TRAINING_KINDS

    if kind in TRAINING_KINDS:
        return "step"
    return {"scoring": "completion", "cai": "response", "judging": "comparison"}.get(kind, "prompt")


class ProgressLine:
    """A running job's progress on a command's stdout, e.g. ``  step 12/38 (31%)``, and its phase
    when it has one: ``  step 38/38 (100%) · saving checkpoint``.

    On a terminal the line is rewritten in place (``\r``) whenever the counts or the phase change;
    elsewhere a full line is written at most every ``every_s`` seconds, and only when the counts
    changed, so logs stay short; a new phase is always written at once (it comes a few times a run),
    a phase that ends is not (the job's outcome line comes next).
    Nothing is written before the job reports any progress. ``clear()`` removes the in-place line
    before the caller writes its own.
    """

    def __init__(self, stdout, *, unit: str, prefix: str = "  ", tty: bool | None = None,
                 every_s: float | None = None, clock=time.monotonic):
        self.stdout, self.unit, self.prefix = stdout, unit, prefix
        self.tty = stdout.isatty() if tty is None else tty
        self.every_s = PROGRESS_EVERY_S if every_s is None else every_s
        self.clock = clock
        self._shown: tuple[int, int, str] | None = None
        self._shown_at: float | None = None
        self._width = 0

    def text(self, done: int, total: int, phase: str = "") -> str:
        counts = f"{self.unit} {done}/{total} ({100 * done // total}%)" if total else f"{self.unit} {done}"
        return f"{self.prefix}{counts}" + (f" · {phase}" if phase else "")

    def start(self) -> None:
        """Say the job has started (``<prefix>started``), before it reports any progress."""
        self._show(f"{self.prefix}started", self.clock())

    def update(self, done: int, total: int, phase: str = "") -> None:
        """Show ``done`` of ``total`` units (``total`` 0: not known yet) and the job's ``phase`` ("" for none)."""
        if (done, total, phase) == self._shown or (done == 0 and total == 0 and not phase):
            return
        now = self.clock()
        # A phase that ends (back to "") is not news: the job's outcome line follows.
        new_phase = self._shown is None or (phase != self._shown[2] and phase != "")
        counts_changed = self._shown is None or (done, total) != self._shown[:2]
        if not self.tty and not new_phase and (
            not counts_changed or (self._shown_at is not None and now - self._shown_at < self.every_s)
        ):
            return
        self._show(self.text(done, total, phase), now)
        self._shown = (done, total, phase)

    def follow(self, job_id: int) -> Callable[[int, int], None]:
        """An ``on_progress(done, total)`` for ``job_supervise`` that reads the job's counts and phase
        again, together, so a line never pairs old counts with a newer phase."""
        from training.models import Job

        def report(done: int, total: int) -> None:
            # Counts and phase from one read of the row: the supervisor's counts may predate a phase
            # written since (a step's counts and phase change in one UPDATE), which showed "step 0 · evaluating".
            row = Job.objects.filter(pk=job_id).values_list("progress_done", "progress_total", "phase").first()
            if row is not None:
                done, total = row[0], row[1]
            self.update(done, total, (row[2] if row else "") or "")

        return report

    def _show(self, line: str, now: float) -> None:
        if self.tty:
            self.stdout.write("\r" + line.ljust(self._width), ending="")
            self._width = max(self._width, len(line))
        else:
            self.stdout.write(line)
        self.stdout.flush()
        self._shown_at = now

    def clear(self) -> None:
        """Rub out the in-place line (terminal only), leaving the cursor at the start of the line."""
        if self.tty and self._width:
            self.stdout.write("\r" + " " * self._width + "\r", ending="")
            self.stdout.flush()
            self._width = 0


def wait_for(command, job) -> None:
    """Run ``job`` in a child process of this command (as a worker would), showing its progress
    (``ProgressLine``), then print how it ended.

    Raises:
        CommandError: the job did not succeed (its readable error is the message).
    """
    from training.supervisor import job_supervise

    started = time.monotonic()
    progress = ProgressLine(command.stdout, unit=progress_unit(job.kind))
    try:
        status = job_supervise(job_id=job.pk, on_progress=progress.follow(job.pk))
    finally:
        progress.clear()
    job.refresh_from_db()
    command.stdout.write(f"job {job.pk} {status} in {time.monotonic() - started:.1f} s: {json.dumps(job.summary)}")
    if status != "succeeded":
        raise CommandError(job.error or f"job {job.pk} {status}")

"""Progress, heartbeat and cancellation for a runner process (no torch here).

A daemon thread writes ``heartbeat_at`` every ``HEARTBEAT_INTERVAL_S`` seconds on its own
database connection, so a long ``generate`` call never looks like a dead process. SIGTERM (sent
by the supervisor on cancel) and the row's ``cancel_requested`` both ask the runner to stop at
its next batch boundary.
"""
from __future__ import annotations

import logging
import os
import signal
import sys
import threading
import time

from django.db import DatabaseError, connection
from django.utils import timezone

logger = logging.getLogger(__name__)

HEARTBEAT_INTERVAL_S = float(os.environ.get("ARBITER_HEARTBEAT_INTERVAL", "5"))


class Phase:
    """What a running job is doing, as its page and ``--wait`` line say it (``Job.phase``)."""

    TRAINING = "training"
    EVALUATING = "evaluating"
    FINISHING = "finishing training"
    SAVING = "saving checkpoint"
    REGISTERING = "registering checkpoint"


class Reporter:
    """Reports one job's progress; ``stop_requested()`` is checked between batches.

    A runner that stops early because of it sets ``halted``; the job then ends as cancelled. A
    request that arrives after the last unit of work leaves the job succeeded.
    """

    def __init__(self, job_id: int):
        self.job_id = job_id
        self.halted = False
        self._stop_event = threading.Event()
        self._signalled = False
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        if threading.current_thread() is threading.main_thread():
            signal.signal(signal.SIGTERM, self._on_sigterm)
        self._thread = threading.Thread(target=self._beat, name="heartbeat", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop_event.set()
        if self._thread is not None:
            self._thread.join(timeout=HEARTBEAT_INTERVAL_S + 5)

    def _on_sigterm(self, signum, frame) -> None:
        self._signalled = True

    def _beat(self) -> None:
        """Write the heartbeat until stopped. A failed write (database locked or restarting) is
        logged and retried at the next beat: a thread that died on one error would leave a working
        job looking dead, and the reaper would fail it."""
        try:
            while not self._stop_event.wait(HEARTBEAT_INTERVAL_S):
                try:
                    self._write_heartbeat()
                except DatabaseError as error:
                    logger.warning("job %s: heartbeat not recorded (%s); retrying", self.job_id, error)
                    connection.close()  # a fresh connection for the next beat
        finally:
            connection.close()

    def _write_heartbeat(self) -> None:
        from training.models import Job

        Job.objects.filter(pk=self.job_id).update(heartbeat_at=timezone.now())

    def stop_requested(self) -> bool:
        """True once SIGTERM arrived or an admin asked to cancel the job."""
        from training.models import Job

        if not self._signalled and Job.objects.filter(pk=self.job_id, cancel_requested=True).exists():
            self._signalled = True
        return self._signalled

    def progress(
        self, *, done: int, total: int, tokens_per_s: float | None = None, summary: dict | None = None,
        phase: str | None = None,
    ) -> None:
        """Record ``done`` of ``total`` units, throughput in tokens per second, a running summary,
        and (unless None) the phase (``Phase``)."""
        from training.models import Job

        fields = {"progress_done": done, "progress_total": total, "heartbeat_at": timezone.now()}
        if tokens_per_s is not None:
            fields["tokens_per_s"] = round(tokens_per_s, 2)
        if summary is not None:
            fields["summary"] = summary
        if phase is not None:
            fields["phase"] = phase
        Job.objects.filter(pk=self.job_id).update(**fields)

    def phase(self, phase: str) -> None:
        """Record what the job is doing now (``Phase``; "" for nothing to say), leaving its counts.
        Each phase after training is also a ``phase: <words>`` line in the run's log."""
        from training.models import Job

        Job.objects.filter(pk=self.job_id).update(phase=phase, heartbeat_at=timezone.now())
        if phase and phase not in (Phase.TRAINING, Phase.EVALUATING):  # those come and go all run long
            print(f"phase: {phase}", file=sys.stderr, flush=True)

    def warn(self, text: str) -> None:
        """Write ``warning: <text>`` to the run's log (the runner's stderr goes there), flushed now.
        Runners also put the same words in their summary's ``warnings`` list for the run page."""
        print(f"warning: {text}", file=sys.stderr, flush=True)

    def metric(self, *, step: int, values: dict[str, float], epoch: float | None = None) -> None:
        """Append one row of metrics (name -> number) logged at optimiser ``step``; pages draw
        curves from these rows while the run goes on. Non-finite numbers are stored as None."""
        import math

        from training.models import JobMetric

        clean = {
            str(name): (float(value) if math.isfinite(float(value)) else None)
            for name, value in values.items()
            if isinstance(value, (int, float)) and not isinstance(value, bool)
        }
        JobMetric.objects.create(job_id=self.job_id, step=int(step), epoch=epoch, values=clean)


class Stopwatch:
    """Wall-clock seconds since creation (``time.perf_counter``)."""

    def __init__(self) -> None:
        self.started = time.perf_counter()

    def elapsed(self) -> float:
        return time.perf_counter() - self.started

"""Streaming a TRL/transformers training run to its job row: progress, metric rows, cancel.

``RunReporting`` is a ``TrainerCallback`` any trainer takes (``RewardTrainer``, ``DPOTrainer``,
``SFTTrainer``, ``RLOOTrainer``, ``GRPOTrainer``). Metric names are whatever the trainer logs.
Under ``torchrun``/``accelerate launch`` every process runs it; only the main one writes.
"""
from __future__ import annotations

import logging
import sys
import time
import warnings as python_warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from transformers import TrainerCallback

from .progress import Phase, Reporter, Stopwatch

DATA_WARNING_LOGGERS = ("transformers", "trl", "datasets")  # libraries that tokenise or filter a run's rows
MAX_DATA_WARNINGS = 20
PROGRESS_INTERVAL_S = 0.5  # at most two progress writes per second
STOP_CHECK_INTERVAL_S = 0.5  # at most two cancel look-ups per second
END_OF_RUN_KEYS = ("train_runtime", "train_samples_per_second", "train_steps_per_second", "train_loss", "total_flos")
MIN_LOG_POINTS = 2  # fewer training logs than this and a run's loss curve is empty or a dot
LOG_POINTS_WANTED = 10  # when the user's logging_steps gives fewer than MIN_LOG_POINTS, log about this many


def logging_steps_for(logging_steps: int, max_steps: int) -> int:
    """The logging interval a run uses: the user's ``logging_steps``, unless over ``max_steps``
    optimiser steps it would log fewer than ``MIN_LOG_POINTS`` times; then every
    ``max(1, max_steps // LOG_POINTS_WANTED)`` steps (e.g. 20 steps with ``logging_steps=50``: every 2)."""
    if logging_steps >= 1 and max_steps // logging_steps >= MIN_LOG_POINTS:
        return logging_steps
    return max(1, max_steps // LOG_POINTS_WANTED)


def numeric_eval_values(metrics: dict[str, float]) -> dict[str, float]:
    """The default ``JobMetric`` row of an evaluation: every ``eval_*`` number the trainer reported."""
    return {
        key: value for key, value in metrics.items()
        if key.startswith("eval_") and isinstance(value, (int, float)) and not isinstance(value, bool)
    }


class RunReporting(TrainerCallback):
    """Streams a run to its job and turns a cancel request into ``control.should_training_stop``.

    - Phase (``Job.phase``): ``training``, ``evaluating`` while an evaluation runs, ``finishing
      training`` after the last step; the runner then says what it does next (``Phase``).
    - Progress: ``done`` = optimiser steps of ``total`` = ``state.max_steps``, written at most every
      ``progress_interval_s`` seconds (and at the last step), with tokens per second from TRL's
      ``num_tokens`` log (input tokens seen, all processes) over the time since ``on_train_begin``.
      Intervals default to this module's ``PROGRESS_INTERVAL_S``/``STOP_CHECK_INTERVAL_S``.
    - Logging: a run whose ``logging_steps`` would give fewer than ``MIN_LOG_POINTS`` training logs
      logs every ``max(1, max_steps // LOG_POINTS_WANTED)`` steps instead (``logging_steps_for``).
    - Metrics: one ``JobMetric`` row per training log (the trainer's keys less ``epoch``: ``loss``,
      ``learning_rate``, ``grad_norm``, TRL's ``rewards/...``, ``num_tokens``...) and one per
      evaluation (``eval_values(metrics)``; default: every ``eval_*`` number). The end-of-run
      totals (``train_runtime``...) are the runner's summary, not a row. Evaluations are also kept
      in ``evaluations`` (every process).
    - Cancel: the main process asks ``reporter.stop_requested()`` at most every
      ``stop_check_interval_s`` seconds after an optimiser step; with several processes the
      decision is broadcast from rank 0 (a collective at every step, so all processes stop at the
      same step and none waits in a gradient all-reduce for one that left). ``halted`` says it stopped.
    """

    def __init__(
        self,
        reporter: Reporter,
        *,
        is_main: bool,
        num_processes: int,
        eval_values: Callable[[dict[str, float]], dict[str, float]] = numeric_eval_values,
        progress_interval_s: float | None = None,
        stop_check_interval_s: float | None = None,
    ):
        self.reporter, self.is_main, self.num_processes = reporter, is_main, num_processes
        self.eval_values = eval_values
        # None: this module's PROGRESS_INTERVAL_S / STOP_CHECK_INTERVAL_S, read now (tests may patch them)
        self.progress_interval_s = PROGRESS_INTERVAL_S if progress_interval_s is None else progress_interval_s
        self.stop_check_interval_s = STOP_CHECK_INTERVAL_S if stop_check_interval_s is None else stop_check_interval_s
        self.halted = False
        self.evaluations: list[dict[str, float]] = []
        self.clock = Stopwatch()
        self._last_progress = float("-inf")
        self._last_stop_check = float("-inf")
        self._tokens: float | None = None
        self.logging_steps: int | None = None  # the interval the run logged at (set when training begins)

    def on_train_begin(self, args, state, control, **kwargs):
        """Start the clock, write step 0 of ``max_steps``, and log often enough for a curve:
        ``state.logging_steps`` (what transformers' ``DefaultFlowCallback`` reads) becomes
        ``logging_steps_for(...)``; every process makes the same change, as a log gathers the loss."""
        self.clock = Stopwatch()
        if args.logging_strategy == "steps" and state.max_steps > 0:
            wanted = logging_steps_for(int(state.logging_steps), int(state.max_steps))
            if wanted != state.logging_steps:
                if self.is_main:
                    print(
                        f"logging every {wanted} step{'s' if wanted != 1 else ''}: logging_steps {state.logging_steps} gives fewer than "
                        f"{MIN_LOG_POINTS} points over {state.max_steps} steps", file=sys.stderr, flush=True,
                    )
                state.logging_steps = wanted
        self.logging_steps = state.logging_steps
        if self.is_main:
            self.reporter.progress(done=state.global_step, total=state.max_steps, phase=Phase.TRAINING)

    def on_step_end(self, args, state, control, **kwargs):
        """Progress (throttled; always at the last step), the phase when it changes (``evaluating``
        when transformers' ``DefaultFlowCallback``, which runs first, asked for an evaluation now;
        ``finishing training`` after the last step), and the cancel check."""
        now = time.monotonic()
        last = state.global_step >= state.max_steps
        phase = Phase.EVALUATING if control.should_evaluate else Phase.FINISHING if last else None
        if self.is_main and (now - self._last_progress >= self.progress_interval_s or last or phase):
            self.progress(state, phase=phase)
            self._last_progress = now
        if self._stop_asked(now):
            self.halted = True
            control.should_training_stop = True

    def progress(self, state, *, phase: str | None = None) -> None:
        """Write ``state.global_step`` of ``state.max_steps``, the token rate now and (unless None)
        the phase (main process only)."""
        if not self.is_main:
            return
        elapsed = self.clock.elapsed()
        tokens_per_s = self._tokens / elapsed if self._tokens and elapsed > 0 else None
        self.reporter.progress(
            done=state.global_step, total=state.max_steps, tokens_per_s=tokens_per_s,
            **({"phase": phase} if phase is not None else {}),
        )

    def _stop_asked(self, now: float) -> bool:
        asked = False
        if self.is_main and now - self._last_stop_check >= self.stop_check_interval_s:
            self._last_stop_check = now
            asked = self.reporter.stop_requested()
        if self.num_processes > 1:
            from accelerate.utils import broadcast_object_list

            box = [asked]
            broadcast_object_list(box, from_process=0)
            asked = bool(box[0])
        return asked

    def on_log(self, args, state, control, logs=None, **kwargs):
        """One row per training log; evaluation logs are recorded by ``on_evaluate``, the end-of-run
        totals go to the summary."""
        if not logs or any(key.startswith("eval_") for key in logs) or "train_runtime" in logs:
            return
        if "num_tokens" in logs:
            self._tokens = logs["num_tokens"]
        if self.is_main:
            values = {key: value for key, value in logs.items() if key != "epoch"}
            self.reporter.metric(step=state.global_step, values=values, epoch=logs.get("epoch", state.epoch))

    def on_evaluate(self, args, state, control, metrics=None, **kwargs):
        values = self.eval_values(metrics or {})
        self.evaluations.append(values)
        if self.is_main:
            self.reporter.metric(step=state.global_step, values=values, epoch=state.epoch)
            self.reporter.phase(Phase.FINISHING if state.global_step >= state.max_steps else Phase.TRAINING)


class _Collect(logging.Handler):
    def __init__(self, into: list[str]):
        super().__init__(level=logging.WARNING)
        self.into = into

    def emit(self, record: logging.LogRecord) -> None:
        self.into.append(record.getMessage())


@contextmanager
def data_warnings(into: list[str]) -> Iterator[None]:
    """Collect what the libraries warn about while a runner prepares its data and builds its trainer.

    Appends to ``into`` (first line of each, de-duplicated, at most ``MAX_DATA_WARNINGS``): every
    ``logging`` record at WARNING or above from the ``DATA_WARNING_LOGGERS`` (a tokenizer's "sequence
    longer than the model's maximum", TRL's "prompt is not a prefix") and every ``warnings.warn``
    that is not a deprecation notice (those go to stderr, the run's log, only). The runner puts
    ``into`` in its summary's ``warnings``, which the run page shows, and writes each to its log.
    """
    caught: list[str] = []
    handler = _Collect(caught)
    loggers = [logging.getLogger(name) for name in DATA_WARNING_LOGGERS]
    for logger in loggers:
        logger.addHandler(handler)
    try:
        with python_warnings.catch_warnings(record=True) as records:
            python_warnings.simplefilter("always")
            yield
    finally:
        for logger in loggers:
            logger.removeHandler(handler)
    for record in records:  # deprecation notices go to the log only; the others the runner writes with the summary's
        if issubclass(record.category, (DeprecationWarning, PendingDeprecationWarning, FutureWarning)):
            print(f"warning: {record.message}", file=sys.stderr, flush=True)
        else:
            caught.append(str(record.message))
    for message in caught:
        line = message.strip().splitlines()[0] if message.strip() else ""
        if line and line not in into and len(into) < MAX_DATA_WARNINGS:
            into.append(line)

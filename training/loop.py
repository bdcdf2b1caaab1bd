"""The closed loop: votes -> snapshot -> reward model -> DPO or online RL -> new-vs-parent comparisons.

A round is a chain of ordinary jobs. ``loop_round_start`` freezes a snapshot and queues the
reward run; each time a job ends, ``job_finished`` (called by the supervisor) queues the next step:
the policy run (DPO on the snapshot, or RL against the new reward model), then a generation job
that puts the new checkpoint against its parent on eval-split prompts at raised priority (with
a regression gate set, first an evaluation against the parent on the gate's eval set, whose
refusal ends the round ``held_back``: ``training.evaluation.gate``). When
that job has written its comparisons the round succeeds and the loop's policy moves to the new
checkpoint. Any failure ends the round as failed with the step's readable error.

Every successful policy run (DPO, RL, SFT), in the loop or not, gets the same new-vs-parent
generation job (``policy_followup``), so its outputs come back to the annotators. The settings a
round reads live in ``training.loop_settings`` (re-exported here).
"""
from __future__ import annotations

import logging
from datetime import datetime
from typing import Any

from django.core.exceptions import ValidationError
from django.db import connection, transaction
from django.utils import timezone

from feedback import interface as feedback

from .loop_judge import loop_vote_kinds, round_judge_report, round_judging_queue
from .loop_settings import FOLLOWUP_DEFAULTS, loop_settings, no_policy_hint
from .loop_settings import loop_settings_errors, loop_settings_update  # noqa: F401 (re-exported: the loop's interface)
from .models import (
    Checkpoint,
    Job,
    JobKind,
    JobStatus,
    LoopMethod,
    LoopRound,
    LoopSettings,
    POLICY_KINDS,
    RoundStatus,
)

logger = logging.getLogger(__name__)

def loop_votes_pending(settings: LoopSettings | None = None) -> int:
    """Votes recorded since the last round started (or since the loop was switched on)."""
    settings = settings or loop_settings()
    return feedback.vote_count_after(vote_id=settings.last_vote_id, votes=loop_vote_kinds(settings))


# Read on every recorded vote (``loop_maybe_start``): one statement on the settings row, no ORM
# query building, so a switched-off loop costs each vote about 20 microseconds rather than the
# 0.6-0.9 ms of ``LoopSettings.objects.filter(...).first()`` (bench/annotate_load.py, issue 14).
_LOOP_ON_SQL = "SELECT votes_per_round, last_vote_id, judge_id FROM {table} WHERE id = 1 AND enabled = %s"


def _loop_on() -> tuple[int, int, str] | None:
    """``(votes_per_round, last_vote_id, whose votes count)`` when the loop is switched on, else
    None (one query; with a loop judge its AI votes count too: ``loop_judge.loop_vote_kinds``)."""
    with connection.cursor() as cursor:
        cursor.execute(_LOOP_ON_SQL.format(table=connection.ops.quote_name(LoopSettings._meta.db_table)), [True])
        row = cursor.fetchone()
    return (int(row[0]), int(row[1]), "both" if row[2] is not None else "human") if row else None


def loop_round_running() -> LoopRound | None:
    return LoopRound.objects.filter(status=RoundStatus.RUNNING).first()


def loop_round_start(*, trigger: str = "manual", triggered_at: datetime | None = None, created_by=None) -> LoopRound:
    """Start a round now: freeze a snapshot of the votes and queue the reward run.

    Raises:
        ValidationError: a round is already running, no policy is set, or the reward run is
            refused (e.g. the votes give no training or no held-out pairs); nothing is queued then.
    """
    with transaction.atomic():
        settings = LoopSettings.objects.select_for_update().get_or_create(pk=1)[0]
        running = loop_round_running()
        if running is not None:
            raise ValidationError({"loop": f"round {running.pk} is still running"})
        if settings.policy is None:
            raise ValidationError({"policy": f"the loop has no policy to start from. Choose one in its settings and save; {no_policy_hint()}."})
        last_vote_id = feedback.vote_last_id()
        from .services import reward_run_create

        reward_job = reward_run_create(
            config={**settings.reward_config, "base": settings.policy.name, "rules": dict(settings.rules)},
            created_by=created_by,
        )
        loop_round = LoopRound.objects.create(
            trigger=trigger, method=settings.method, triggered_at=triggered_at or timezone.now(),
            last_vote_id=last_vote_id, parent=settings.policy, snapshot_id=reward_job.snapshot_id,
            reward_job=reward_job,
        )
        settings.last_vote_id = last_vote_id
        settings.save(update_fields=["last_vote_id", "updated_at"])
    return loop_round


def loop_maybe_start(*, triggered_at: datetime | None = None) -> LoopRound | None:
    """Start a round if the loop is on, enough new votes arrived and no round is running.

    A refused start (say the votes give no held-out pairs yet) is logged and retried on the next
    vote; it never fails the vote that triggered it.
    """
    on = _loop_on()
    if on is None:
        return None
    votes_per_round, last_vote_id, kinds = on
    if loop_round_running() is not None:
        return None
    # Counted only up to votes_per_round: the count reads at most that many index entries.
    if feedback.vote_count_after(vote_id=last_vote_id, at_most=votes_per_round, votes=kinds) < votes_per_round:
        return None
    try:
        return loop_round_start(trigger="votes", triggered_at=triggered_at)
    except ValidationError as error:
        logger.warning("loop: a round could not start: %s", error)
        return None


def on_vote_recorded(sender, *, vote_id: int, created_at: datetime, **kwargs) -> None:
    """Receiver of ``feedback.signals.vote_recorded``: the vote that completes a batch of
    ``votes_per_round`` starts a round (its time is the round's ``triggered_at``). The vote is
    already stored: whatever goes wrong here is logged, never passed on to the annotator."""
    try:
        loop_maybe_start(triggered_at=created_at)
    except Exception:  # noqa: BLE001 - a loop problem must not fail a vote
        logger.exception("loop: checking for a round after vote %s failed", vote_id)


def policy_followup(*, job: Job, overrides: dict[str, Any] | None = None) -> Job | None:
    """For a successful policy run: queue generation of its checkpoint against its parent on
    eval-split prompts at raised priority (``FOLLOWUP_DEFAULTS``; ``overrides`` change them).

    Returns the generation job, or None when there is nothing to compare (no output, no parent)
    or no prompt matches; the reason is recorded in the run's summary as ``followup``.
    """
    output = job.output
    if output is None or output.parent is None:
        return None
    settings = {**FOLLOWUP_DEFAULTS, **(overrides or {})}
    config = {"checkpoints": [output.name, output.parent.name], "strategy": "head_to_head", **settings}
    from .services import generation_job_create

    try:
        generation = generation_job_create(config=config, created_by=job.created_by)
        note = f"generation job {generation.pk}: {output.name} against {output.parent.name} on {generation.progress_total} prompts"
    except ValidationError as error:
        generation, note = None, "no new-vs-parent comparisons: " + "; ".join(
            f"{key}: {' '.join(messages)}" for key, messages in error.message_dict.items()
        )
    Job.objects.filter(pk=job.pk).update(summary={**job.summary, "followup": note})
    return generation


def job_finished(*, job_id: int) -> None:
    """After any job ends: queue what follows it (a policy run's new-vs-parent comparisons, the
    loop's next step). Called by the supervisor; errors here are logged, never raised, so the
    finished job's own outcome stands."""
    try:
        with transaction.atomic():
            _job_finished(Job.objects.get(pk=job_id))
    except Exception:  # noqa: BLE001 - the job itself is done; a follow-up problem must not hide that
        logger.exception("follow-up of job %s failed", job_id)


def _job_finished(job: Job) -> None:
    if job.kind == JobKind.JUDGING:
        if job.status == JobStatus.SUCCEEDED and LoopRound.objects.filter(judging_job=job).exists():
            transaction.on_commit(lambda: loop_maybe_start())  # the judge's votes may complete the next batch
        return
    from .evaluation.flow import evaluation_job_finished_guarded

    ended = evaluation_job_finished_guarded(job=job)  # an evaluation's next step (scoring, report)
    if ended is not None:
        _gate_decide(ended)
    loop_round = (
        LoopRound.objects.select_for_update()
        .filter(status=RoundStatus.RUNNING)
        .filter(**{_round_field(job): job})
        .first()
        if _round_field(job)
        else None
    )
    if job.status != JobStatus.SUCCEEDED:
        if loop_round is not None:
            status = RoundStatus.CANCELLED if job.status == JobStatus.CANCELLED else RoundStatus.FAILED
            _round_end(loop_round, status, error=f"{job.get_kind_display()} job {job.pk} {job.status}: {job.error}".strip(": "))
        return
    gated = loop_round is not None and job.kind in POLICY_KINDS and loop_settings().gate_eval_set_id is not None
    if loop_round is None:
        if job.kind in POLICY_KINDS:  # a run outside the loop: its new-vs-parent comparisons as ever
            policy_followup(job=job, overrides=_round_generation_overrides())
        return
    if job.kind == JobKind.REWARD:
        _round_policy_queue(loop_round, reward=job)
    elif job.kind in POLICY_KINDS:
        loop_round.checkpoint = job.output
        if gated:
            _gate_queue(loop_round, policy=job)
            return
        loop_round.save(update_fields=["checkpoint"])
        _round_followup(loop_round)
    elif job.kind == JobKind.GENERATION:
        _round_end(loop_round, RoundStatus.SUCCEEDED)
        LoopSettings.objects.filter(pk=1).update(policy=loop_round.checkpoint)
        round_judging_queue(loop_round, generation=job, settings=loop_settings())


def _round_generation_overrides() -> dict[str, Any]:
    """A round's new-vs-parent generation settings: the loop's, into the loop's campaign."""
    settings = loop_settings()
    return {**settings.generation_config, "campaign_id": settings.campaign_id}


def _gate_queue(loop_round: LoopRound, *, policy: Job) -> None:
    """The regression gate: evaluate the round's new checkpoint against its parent on the gate's
    eval set, scored by the round's reward model (``training.evaluation.gate``)."""
    from .evaluation.gate import gate_evaluation_create

    settings = loop_settings()
    max_new_tokens = settings.generation_config.get("max_new_tokens", FOLLOWUP_DEFAULTS["max_new_tokens"])
    if policy.output is None or loop_round.reward_job is None or loop_round.reward_job.output is None:
        _round_end(loop_round, RoundStatus.FAILED, error="the regression gate needs the round's checkpoint and reward model")
        return
    try:
        run = gate_evaluation_create(
            eval_set_id=settings.gate_eval_set_id, checkpoint=policy.output.name, parent=loop_round.parent.name,
            reward_model=loop_round.reward_job.output.name, generation={"max_new_tokens": max_new_tokens},
        )
    except ValidationError as error:
        loop_round.save(update_fields=["checkpoint"])
        _round_end(loop_round, RoundStatus.FAILED, error=f"the regression gate's evaluation was refused: {'; '.join(error.messages)}")
        return
    loop_round.evaluation = run
    loop_round.gate = {"margin": settings.gate_margin, "eval_set": run.eval_set_label}
    loop_round.save(update_fields=["checkpoint", "evaluation", "gate"])


def _gate_decide(run) -> None:
    """The gate's evaluation ended: a round waiting on it goes on to its new-vs-parent comparisons
    (passed) or ends ``held_back`` with the reason, the loop's policy left where it was (refused)."""
    from .evaluation.gate import gate_verdict, gate_win_rate

    loop_round = LoopRound.objects.select_for_update().filter(status=RoundStatus.RUNNING, evaluation=run).first()
    if loop_round is None:
        return
    if run.status != "succeeded":
        status = RoundStatus.CANCELLED if run.status == "cancelled" else RoundStatus.FAILED
        _round_end(loop_round, status, error=f"the regression gate's evaluation {run.pk} {run.status}: {run.error}")
        return
    verdict = gate_verdict(gate_win_rate(run), margin=loop_round.gate.get("margin", loop_settings().gate_margin))
    loop_round.gate = {**loop_round.gate, **verdict}
    loop_round.save(update_fields=["gate"])
    if not verdict["passed"]:
        _round_end(loop_round, RoundStatus.HELD_BACK, error=f"held back by the regression gate: {verdict['reason']}")
        return
    _round_followup(loop_round)


def _round_followup(loop_round: LoopRound) -> None:
    """Queue the round's new-vs-parent generation, or, when the loop generates through model
    servers (``backend: "server"``) and the new checkpoint has none yet, wait for one: the round
    stays running with ``waiting_for`` saying what to do, and ``round_server_ready`` goes on once
    the checkpoint is given a server. Ends the round failed when nothing can be queued."""
    checkpoint = loop_round.checkpoint
    overrides = _round_generation_overrides()
    if overrides.get("backend") == "server" and checkpoint is not None and checkpoint.server_id is None:
        loop_round.waiting_for = (
            f"a model server for {checkpoint.name}: serve its weights ({checkpoint.weights_dir or checkpoint.hub_id}) on an "
            "OpenAI-compatible server, then name that server on the checkpoint's page (API: POST /api/checkpoints/"
            f"{checkpoint.pk}/server/); the round's new-vs-parent generation starts then")
        loop_round.save(update_fields=["waiting_for"])
        Job.objects.filter(pk=loop_round.policy_job_id).update(
            summary={**loop_round.policy_job.summary, "followup": f"waiting for {loop_round.waiting_for}"})
        return
    followup = policy_followup(job=loop_round.policy_job, overrides=overrides)
    if followup is None:
        loop_round.waiting_for = ""
        loop_round.save(update_fields=["waiting_for"])
        _round_end(loop_round, RoundStatus.FAILED, error=Job.objects.get(pk=loop_round.policy_job_id).summary.get("followup", "no comparisons"))
        return
    loop_round.generation_job, loop_round.waiting_for = followup, ""
    loop_round.save(update_fields=["generation_job", "waiting_for"])


def round_server_ready(*, checkpoint: Checkpoint) -> LoopRound | None:
    """A checkpoint was given a model server: a running round waiting for it queues its
    new-vs-parent generation now (``_round_followup``). Returns that round, or None."""
    with transaction.atomic():
        loop_round = (LoopRound.objects.select_for_update()
                      .filter(status=RoundStatus.RUNNING, checkpoint=checkpoint, generation_job__isnull=True)
                      .exclude(waiting_for="").first())
        if loop_round is None or checkpoint.server_id is None:
            return None
        _round_followup(loop_round)
    return loop_round


def _round_field(job: Job) -> str | None:
    return {JobKind.REWARD: "reward_job", JobKind.GENERATION: "generation_job"}.get(
        job.kind, "policy_job" if job.kind in POLICY_KINDS else None
    )


def _round_policy_queue(loop_round: LoopRound, *, reward: Job) -> None:
    from .services import dpo_run_create, rl_run_create

    settings = loop_settings()
    base = {"base": loop_round.parent.name, "snapshot_id": loop_round.snapshot_id}
    try:
        if loop_round.method == LoopMethod.RL:
            policy_job = rl_run_create(config={**settings.policy_config, **base, "reward_model": reward.output.name})
        else:
            policy_job = dpo_run_create(config={**settings.policy_config, **base})
    except ValidationError as error:
        _round_end(loop_round, RoundStatus.FAILED, error=f"the policy run was refused: {error}")
        return
    loop_round.policy_job = policy_job
    loop_round.save(update_fields=["policy_job"])


def _round_end(loop_round: LoopRound, status: str, *, error: str = "") -> None:
    loop_round.status, loop_round.error, loop_round.finished_at = status, error[:10_000], timezone.now()
    loop_round.save(update_fields=["status", "error", "finished_at"])


def round_report(loop_round: LoopRound) -> dict[str, Any]:
    """What a round did, for pages and ``manage.py loop``: votes used, reward-model held-out
    accuracy, the policy run's final metrics, and the new checkpoint (ratings are added by the
    caller from the leaderboard)."""
    snapshot = feedback.snapshot_get(snapshot_id=loop_round.snapshot_id) if loop_round.snapshot_id else None
    reward, policy = loop_round.reward_job, loop_round.policy_job
    policy_summary = policy.summary if policy else {}
    return {
        "round": loop_round.pk,
        "status": loop_round.status,
        "method": loop_round.method,
        "votes_used": snapshot.vote_count if snapshot else None,
        "train_pairs": snapshot.train_rows if snapshot else None,
        "eval_pairs": snapshot.eval_rows if snapshot else None,
        "reward_accuracy": (reward.summary or {}).get("eval_accuracy") if reward else None,
        "policy_metrics": {k: v for k, v in policy_summary.items() if isinstance(v, (int, float)) and not isinstance(v, bool)},
        "parent": loop_round.parent.name if loop_round.parent else None,
        "checkpoint": loop_round.checkpoint.name if loop_round.checkpoint else None,
        "comparisons": (loop_round.generation_job.summary or {}).get("paired") if loop_round.generation_job else None,
        "judge": round_judge_report(loop_round),
        "gate": dict(loop_round.gate or {}),
        "evaluation": loop_round.evaluation_id,
        "error": loop_round.error,
    }

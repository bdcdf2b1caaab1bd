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

from .config import DEFAULT_STOP_STRINGS, ConfigError, GenerationConfig, RewardConfig, ScoringConfig, stop_strings_problem
from .policy_config import DPOConfig, RLConfig, SFTConfig
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
    stop_strings: list[str] | None = None,
) -> Checkpoint:
    """Register a checkpoint whose files are already complete.

    ``weights_dir`` is relative to ``ARBITER_DATA_DIR`` and must hold ``config.json`` plus
    ``*.safetensors`` (or ``adapter_config.json`` for an adapter). ``run`` is the training run
    that produced it (its lineage: base, dataset snapshot, config); a run registers at most one.
    A run's checkpoint gets a model card (``training.model_card``, ``README.md`` in its folder).
    ``stop_strings`` are the role markers its replies end at (``Checkpoint.stop_strings``); None
    means its parent's (a model trained from one writes the same transcripts), or the defaults
    (``training.config.DEFAULT_STOP_STRINGS``) without a parent.
    Raises:
        ValidationError: a taken or empty name, both or neither of weights_dir/hub_id, missing
            files, unusable stop strings.
    """
    if not name or len(name) > 200:
        raise ValidationError({"name": "must be 1-200 characters"})
    if stop_strings is None:
        stop_strings = list(parent.stop_strings) if parent is not None else list(DEFAULT_STOP_STRINGS)
    problem = stop_strings_problem(stop_strings)
    if problem:
        raise ValidationError({"stop_strings": problem})
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
        checkpoint = Checkpoint.objects.create(
            name=name, kind=kind, weights_dir=weights_dir, hub_id=hub_id, parent=parent,
            is_adapter=is_adapter, metadata=metadata or {}, run=run, stop_strings=list(stop_strings),
        )
    if run is not None:
        from .model_card import model_card_write

        model_card_write(checkpoint)  # README.md in its folder (Hugging Face model card format)
    return checkpoint


def _enqueue(job: Job) -> None:
    from .tasks import job_execute

    result = job_execute.enqueue(job.pk)
    Job.objects.filter(pk=job.pk).update(task_id=str(result.id))


def generation_job_create(*, config: dict[str, Any], created_by=None) -> Job:
    """Validate a generation config against the registry and the prompts, then queue the job.

    Raises:
        ValidationError: any bad setting (see ``GenerationConfig``), an unknown checkpoint, a
            reward model where a policy is needed, a checkpoint without a server for
            ``backend: "server"``, a campaign that is missing or closed, an eval set that does not
            exist, or a prompt selection that matches nothing.
    """
    parsed = _parse(GenerationConfig, config)
    found = {c.name: c for c in Checkpoint.objects.filter(name__in=parsed.checkpoints)}
    for name in parsed.checkpoints:
        if name not in found:
            raise ValidationError({"checkpoints": f"no checkpoint named {name!r}"})
        if found[name].kind != CheckpointKind.POLICY:
            raise ValidationError({"checkpoints": f"{name!r} is a {found[name].kind} checkpoint; generation needs a policy"})
        if parsed.backend == "server" and found[name].server_id is None:
            raise ValidationError({"checkpoints": (
                f"{name!r} names no model server; the server backend needs one for each checkpoint "
                "(set it on the checkpoint, or use the transformers backend)")})
    if parsed.campaign_id is not None:
        try:
            feedback.campaign_check(campaign_id=parsed.campaign_id)
        except ValueError as error:
            raise ValidationError({"campaign_id": str(error)}) from None
    if parsed.eval_set_id is not None:
        try:  # the eval set's prompt rows (made once); the job records their ids
            eval_prompts = [ref.prompt_id for ref in feedback.eval_set_prompts(eval_set_id=parsed.eval_set_id)]
        except LookupError as error:
            raise ValidationError({"eval_set_id": str(error)}) from None
        wanted = set(parsed.prompt_ids or eval_prompts)
        parsed.prompt_ids = [pk for pk in dict.fromkeys(eval_prompts) if pk in wanted]
        if not parsed.prompt_ids:
            raise ValidationError({"prompt_ids": "none of these prompts is in the eval set"})
    prompts = feedback.prompts_select(
        ids=parsed.prompt_ids, tag=parsed.tag or None, split=parsed.split or None,
        max_open_comparisons=parsed.max_open_comparisons, limit=parsed.limit,
        include_eval_sets=parsed.eval_set_id is not None,
    )
    if not prompts:
        raise ValidationError({"prompts": "the prompt selection matches no prompts"})
    with transaction.atomic():
        job = Job.objects.create(
            kind=JobKind.GENERATION, config=parsed.as_dict(), created_by=created_by, progress_total=len(prompts)
        )
        transaction.on_commit(lambda: _enqueue(job))
    return job


def _parse(config_class, config: dict[str, Any]):
    try:
        return config_class.from_dict(dict(config))
    except ConfigError as error:
        raise ValidationError(error.errors) from None


def _checkpoint_of_kind(name: str, kind: str, *, field: str, purpose: str) -> Checkpoint:
    checkpoint = Checkpoint.objects.filter(name=name).first()
    if checkpoint is None:
        raise ValidationError({field: f"no checkpoint named {name!r}"})
    if checkpoint.kind != kind:
        raise ValidationError({field: f"{name!r} is a {checkpoint.get_kind_display()} checkpoint; {purpose} needs a {CheckpointKind(kind).label}"})
    return checkpoint


def _snapshot_for(parsed, *, kind: str, created_by, policy_override: str | None = None) -> tuple["feedback.SnapshotRef", bool]:
    """The run's snapshot and whether it was built now: ``parsed.snapshot_id`` (of the right
    kind, its files intact), or a new one from ``parsed.rules`` (then recorded on ``parsed``;
    feedback enforces the data-use policies for training, ``policy_override`` justifying an exception)."""
    if parsed.snapshot_id is not None:
        try:
            snapshot = feedback.snapshot_get(snapshot_id=parsed.snapshot_id)
        except LookupError:
            raise ValidationError({"snapshot_id": f"no snapshot {parsed.snapshot_id}"}) from None
        if snapshot.kind != kind:
            raise ValidationError({"snapshot_id": f"snapshot {snapshot.id} holds {snapshot.kind} rows; this run needs {kind} rows"})
        if not feedback.snapshot_verify(snapshot_id=snapshot.id):
            raise ValidationError({"snapshot_id": f"snapshot {snapshot.id}'s files are missing or no longer match its hash; build a new one"})
        feedback.snapshot_policy_recheck(snapshot_id=snapshot.id, policy_override=policy_override, created_by=created_by)
        return snapshot, False
    if kind == "sft":
        snapshot = feedback.sft_snapshot_create(rules=parsed.rules, created_by=created_by, policy_override=policy_override)
    else:
        snapshot = feedback.snapshot_create(rules=parsed.rules, created_by=created_by, policy_override=policy_override)
    parsed.snapshot_id, parsed.rules = snapshot.id, {}  # the snapshot now fixes the rules
    return snapshot, True


def _output_name_check(parsed) -> None:
    """The output name must be free: no checkpoint has it and no queued or running run claims it."""
    name = parsed.output_name
    if not name:
        return
    if Checkpoint.objects.filter(name=name).exists():
        raise ValidationError({"output_name": f"a checkpoint named {name!r} exists"})
    claimed = Job.objects.filter(status__in=[JobStatus.QUEUED, JobStatus.RUNNING], config__output_name=name).first()
    if claimed is not None:
        raise ValidationError({"output_name": f"{claimed.get_kind_display()} run {claimed.pk} will register {name!r}"})


def justification_check(justification: str | None) -> str:
    """A run's justification, stripped.

    Raises:
        ValidationError: ``{"justification": ...}`` when ``ARBITER_RUN_JUSTIFICATION_REQUIRED`` is on
            and it is shorter than 20 characters, or when it is over 5,000 characters.
    """
    text = (justification or "").strip()
    if getattr(settings, "ARBITER_RUN_JUSTIFICATION_REQUIRED", False) and len(text) < 20:
        raise ValidationError({"justification": (
            "say why this run is warranted (20+ characters): why prompting or retrieval is not enough, "
            "which data, and who maintains the model")})
    if len(text) > 5000:
        raise ValidationError({"justification": "at most 5,000 characters"})
    return text


def _run_create(
    kind: str, parsed, *, snapshot_kind: str, created_by, check=None, policy_override: str | None = None,
    justification: str | None = None,
) -> Job:
    """Freeze (or check) the run's snapshot and queue the run, in one transaction: a run refused
    by ``check(snapshot)`` leaves no snapshot row and no snapshot folder behind. The launch is
    written to the audit trail (``feedback.interface.audit_record``)."""
    justification = justification_check(justification)
    with transaction.atomic():
        snapshot, built = _snapshot_for(parsed, kind=snapshot_kind, created_by=created_by, policy_override=policy_override)
        try:
            if check is not None:
                check(snapshot)
            job = Job.objects.create(kind=kind, config=parsed.as_dict(), created_by=created_by, snapshot_id=snapshot.id,
                                     justification=justification)
            feedback.audit_record(action="run.launch", user=created_by, object_type="job", object_id=job.pk,
                                  details={"kind": kind, "snapshot_id": snapshot.id, "snapshot_built": built,
                                           "justification": justification})
        except BaseException:
            if built:  # the rollback drops the snapshot's rows; its folder goes here
                feedback.snapshot_files_discard(snapshot=snapshot)
            raise
        transaction.on_commit(lambda: _enqueue(job))
    return job


def reward_run_create(
    *, config: dict[str, Any], created_by=None, policy_override: str | None = None, justification: str | None = None,
) -> Job:
    """Validate a reward-model run, freeze its dataset snapshot, and queue it.

    The snapshot is ``config["snapshot_id"]`` or, when that is absent, a new one built from the
    current votes with ``config["rules"]`` (stored on the run as ``snapshot_id``), so the run's
    exact votes are fixed before it is queued.
    Raises:
        ValidationError: a bad setting (see ``RewardConfig``), an unknown base, a reward model
            given as the base, an output name that is taken, an unknown snapshot, bad aggregation
            rules, or votes that give no training pairs (``snapshot``, saying why in words) or no
            held-out (eval) pairs (``rules.eval_fraction`` for a hash split, else ``snapshot_id``).
    """
    parsed = _parse(RewardConfig, config)
    _checkpoint_of_kind(parsed.base, CheckpointKind.POLICY, field="base", purpose="a reward model's base")
    _output_name_check(parsed)
    hash_split = parsed.rules.get("split_by") == "hash"
    eval_fraction = parsed.rules.get("eval_fraction", 0.1)

    def held_out(snapshot) -> None:
        if snapshot.eval_rows:
            return
        no_eval = "the snapshot has no eval pairs, so held-out accuracy cannot be measured"
        if hash_split:  # the one setting to change: keyed by it, so a form shows it beside that field
            raise ValidationError({"rules.eval_fraction": (
                f"{no_eval}: at an eval fraction of {eval_fraction:g} all {snapshot.train_rows} pairs fell in "
                "train; raise it"
            )})
        raise ValidationError({"snapshot_id": (
            f"{no_eval}: mark some prompts as eval, or split by a hash of the prompt (rules split_by=hash)"
        )})

    return _run_create(JobKind.REWARD, parsed, snapshot_kind="preference", created_by=created_by, check=held_out, policy_override=policy_override,
                       justification=justification)


def _policy_base(parsed) -> Checkpoint:
    base = _checkpoint_of_kind(parsed.base, CheckpointKind.POLICY, field="base", purpose="policy training")
    if base.is_adapter:
        raise ValidationError({"base": f"{base.name!r} is a LoRA adapter; train from a full checkpoint (its merged form)"})
    return base


def dpo_run_create(
    *, config: dict[str, Any], created_by=None, policy_override: str | None = None, justification: str | None = None,
) -> Job:
    """Validate a DPO run (TRL ``DPOTrainer``), freeze its preference snapshot, and queue it.

    Raises:
        ValidationError: a bad setting (see ``DPOConfig``, e.g. beta <= 0), a reward model or an
            adapter as the base, a taken output name, an unknown or non-preference snapshot, or
            votes that give no training pairs.
    """
    parsed = _parse(DPOConfig, config)
    _policy_base(parsed)
    _output_name_check(parsed)
    return _run_create(JobKind.DPO, parsed, snapshot_kind="preference", created_by=created_by, policy_override=policy_override,
                       justification=justification)


def rl_run_create(
    *, config: dict[str, Any], created_by=None, policy_override: str | None = None, justification: str | None = None,
) -> Job:
    """Validate an online-RL run (TRL ``RLOOTrainer``, or ``GRPOTrainer``) against a reward
    checkpoint on the train prompts of a preference snapshot, and queue it.

    Raises:
        ValidationError: a bad setting (see ``RLConfig``), a reward model as the base, a policy as
            the reward model, a taken output name, an unknown snapshot, or no train prompts.
    """
    parsed = _parse(RLConfig, config)
    _policy_base(parsed)
    _checkpoint_of_kind(parsed.reward_model, CheckpointKind.REWARD, field="reward_model", purpose="online RL")
    _output_name_check(parsed)
    return _run_create(JobKind.RL, parsed, snapshot_kind="preference", created_by=created_by, policy_override=policy_override,
                       justification=justification)


def sft_run_create(
    *, config: dict[str, Any], created_by=None, policy_override: str | None = None, justification: str | None = None,
) -> Job:
    """Validate an SFT run (TRL ``SFTTrainer``) on a snapshot of demonstrations, and queue it.

    Raises:
        ValidationError: a bad setting (see ``SFTConfig``), a reward model as the base, a taken
            output name, an unknown or non-SFT snapshot, or no demonstrations.
    """
    parsed = _parse(SFTConfig, config)
    _policy_base(parsed)
    _output_name_check(parsed)
    return _run_create(JobKind.SFT, parsed, snapshot_kind="sft", created_by=created_by, policy_override=policy_override,
                       justification=justification)


def scoring_job_create(*, config: dict[str, Any], created_by=None) -> Job:
    """Validate a scoring job (a reward model scores completions) and queue it.

    Raises:
        ValidationError: a bad setting (see ``ScoringConfig``), an unknown checkpoint, a policy
            given where a reward model is needed, or no completions to score.
    """
    parsed = _parse(ScoringConfig, config)
    _checkpoint_of_kind(parsed.reward_model, CheckpointKind.REWARD, field="reward_model", purpose="scoring")
    items = feedback.completions_to_score(
        reward_model=parsed.reward_model, scope=parsed.scope, only_unscored=parsed.only_unscored, limit=parsed.limit,
        completion_ids=parsed.completion_ids,
    )
    if parsed.completion_ids is not None and not items:
        raise ValidationError({"completion_ids": "no completions to score (none left unscored by this model, or all empty)"})
    if not items:
        raise ValidationError({"scope": f"no completions to score ({parsed.scope} comparisons"
                               + (", not yet scored by this model" if parsed.only_unscored else "") + ")"})
    with transaction.atomic():
        job = Job.objects.create(
            kind=JobKind.SCORING, config=parsed.as_dict(), created_by=created_by, progress_total=len(items)
        )
        transaction.on_commit(lambda: _enqueue(job))
    return job


# One create service per job kind; each takes ``config=`` and ``created_by=`` and raises ValidationError.
# Training runs (``RUN_KINDS``) also take ``policy_override=`` (an admin's justification for data its
# policy refuses) and ``justification=`` (why the run is warranted; see ``justification_check``).
JOB_CREATORS = {
    JobKind.GENERATION: generation_job_create,
    JobKind.REWARD: reward_run_create,
    JobKind.SCORING: scoring_job_create,
    JobKind.DPO: dpo_run_create,
    JobKind.RL: rl_run_create,
    JobKind.SFT: sft_run_create,
}
RUN_KINDS = (JobKind.REWARD, JobKind.DPO, JobKind.RL, JobKind.SFT)


def _cai_job_create(*, config: dict[str, Any], created_by=None) -> Job:
    from .constitutional.services import cai_job_create  # it builds on this module

    return cai_job_create(config=config, created_by=created_by)


JOB_CREATORS[JobKind.CAI] = _cai_job_create


def judging_job_create(*, config: dict[str, Any], created_by=None) -> Job:
    """``training.judges.services.judging_job_create`` (an AI judge labels comparisons)."""
    from .judges.services import judging_job_create as create

    return create(config=config, created_by=created_by)


JOB_CREATORS[JobKind.JUDGING] = judging_job_create


def job_cancel(*, job: Job, queued_only: bool = False) -> Job:
    """Ask a job to stop. A queued job is cancelled at once; a running one stops at its next
    batch boundary (its supervisor also signals the runner process), unless ``queued_only``, which
    leaves a job that has started alone. Finished jobs are left as they are. Returns the job as it
    is now (its ``status`` says what happened)."""
    with transaction.atomic():
        job = Job.objects.select_for_update().get(pk=job.pk)
        if job.status == JobStatus.QUEUED:
            job.status, job.finished_at, job.cancel_requested = JobStatus.CANCELLED, timezone.now(), True
            job.save(update_fields=["status", "finished_at", "cancel_requested"])
            transaction.on_commit(lambda: _finished(job.pk))  # a loop round waiting on it ends too
        elif job.status == JobStatus.RUNNING and not queued_only:
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
    shown (pages and API). A round of the loop waiting on a reaped job ends with it.
    """
    now = now or timezone.now()
    cutoff = now - timedelta(seconds=timeout_s)
    stale = Job.objects.filter(status=JobStatus.RUNNING, heartbeat_at__lt=cutoff)
    stale_ids = list(stale.values_list("pk", flat=True))
    if not stale_ids:
        return 0
    reaped = Job.objects.filter(pk__in=stale_ids, status=JobStatus.RUNNING).update(
        status=JobStatus.FAILED,
        finished_at=now,
        error=f"The job's process stopped reporting (no heartbeat for over {timeout_s} s): it died or its worker was stopped.",
    )
    for job_id in stale_ids:
        _finished(job_id)
    return reaped


def _finished(job_id: int) -> None:
    from .loop import job_finished

    job_finished(job_id=job_id)


CEILING_KEY = "agreement_ceiling"


def reward_ceiling_ensure(*, job: Job) -> Job:
    """Store the human agreement ceiling on a finished reward run's summary, once.

    The reward runner records it when it writes the summary (on the eval pairs it kept); a run
    recorded before that gets it here on first view, over all of its snapshot's eval comparisons
    (``feedback.interface.agreement_ceiling``: frozen votes, so the figure never moves). Any other
    job, one without a summary or a snapshot, or one that has it already, is returned as it is.
    """
    summary = job.summary or {}
    if job.kind != JobKind.REWARD or not job.is_finished or not summary or CEILING_KEY in summary or not job.snapshot_id:
        return job
    ceiling = feedback.agreement_ceiling(snapshot_id=job.snapshot_id)
    with transaction.atomic():
        locked = Job.objects.select_for_update().get(pk=job.pk)
        if CEILING_KEY not in (locked.summary or {}):
            locked.summary = {**(locked.summary or {}), CEILING_KEY: ceiling}
            locked.save(update_fields=["summary"])
    job.summary = locked.summary
    return job

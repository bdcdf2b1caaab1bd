"""Checkpoints (the model registry) and jobs (generation now; training runs next).

A checkpoint row exists only once its files are complete: importers and runners write to a
temporary directory, flush, rename, and only then register the row.
"""
from __future__ import annotations

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models
from django.db.models import Q

from .config import DEFAULT_STOP_STRINGS, stop_strings_problem


def default_stop_strings() -> list[str]:
    """A new checkpoint's stop strings: ``training.config.DEFAULT_STOP_STRINGS`` (HH-RLHF's role markers)."""
    return list(DEFAULT_STOP_STRINGS)


def stop_strings_validate(value) -> None:
    """Field validator: ``training.config.stop_strings_problem`` as a ValidationError."""
    problem = stop_strings_problem(value)
    if problem:
        raise ValidationError(f"Stop strings {problem}.")


class CheckpointKind(models.TextChoices):
    POLICY = "policy", "policy"
    REWARD = "reward", "reward model"


class Checkpoint(models.Model):
    """A model the platform can sample from or score with.

    ``name`` is stable and unique: completions carry it as their ``model_name``. Weights live in
    ``weights_dir`` (relative to ``ARBITER_DATA_DIR``, a safetensors directory) or on a hub
    (``hub_id``), never both. ``server``: the model server that serves it, if any.
    """

    name = models.CharField(max_length=200, unique=True)
    kind = models.CharField(max_length=10, choices=CheckpointKind.choices, default=CheckpointKind.POLICY)
    parent = models.ForeignKey("self", null=True, blank=True, on_delete=models.PROTECT, related_name="children")
    weights_dir = models.CharField(max_length=500, blank=True, default="")
    hub_id = models.CharField(max_length=200, blank=True, default="")
    is_adapter = models.BooleanField(default=False)
    run = models.OneToOneField(
        "Job", null=True, blank=True, on_delete=models.PROTECT, related_name="output_checkpoint",
        help_text="The training run that produced this checkpoint (empty for imports).",
    )
    metadata = models.JSONField(default=dict, blank=True)
    stop_strings = models.JSONField(
        default=default_stop_strings, blank=True, validators=[stop_strings_validate],
        help_text=(
            "Role markers at which a reply ends: generation stops there and the reply is cut before the first one "
            '(flagged "truncated at role marker"). A JSON list, e.g. ["\\n\\nHuman:", "\\n\\nAssistant:"]; '
            "[] for none."
        ),
    )
    server = models.ForeignKey(
        "training.ModelServer", null=True, blank=True, on_delete=models.PROTECT, related_name="checkpoints",
        help_text="The OpenAI-compatible server that serves this checkpoint (generation with backend \"server\").",
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.CheckConstraint(condition=~Q(name=""), name="checkpoint_name_set"),
            models.CheckConstraint(condition=Q(kind__in=CheckpointKind.values), name="checkpoint_kind_valid"),
            models.CheckConstraint(
                condition=(Q(weights_dir="") & ~Q(hub_id="")) | (~Q(weights_dir="") & Q(hub_id="")),
                name="checkpoint_one_location",
            ),
        ]
        permissions = [("run_jobs", "Can launch and cancel generation and training jobs")]

    def __str__(self) -> str:
        return self.name

    @property
    def location(self) -> str:
        """The weights' directory (absolute) or hub id, for loading with ``from_pretrained``."""
        if self.weights_dir:
            return str(settings.ARBITER_DATA_DIR / self.weights_dir)
        return self.hub_id


class JobKind(models.TextChoices):
    GENERATION = "generation", "generation"
    SCORING = "scoring", "scoring"
    REWARD = "reward", "reward model training"
    DPO = "dpo", "DPO"
    RL = "rl", "online RL (RLOO/GRPO)"
    SFT = "sft", "SFT"
    CAI = "cai", "Constitutional AI critique-revise"
    JUDGING = "judging", "AI judging"


# Kinds that train a model: they take a dataset snapshot and register an output checkpoint.
TRAINING_KINDS = (JobKind.REWARD, JobKind.DPO, JobKind.RL, JobKind.SFT)
# Training kinds whose output is a policy (its outputs go back to the annotators).
POLICY_KINDS = (JobKind.DPO, JobKind.RL, JobKind.SFT)


class JobStatus(models.TextChoices):
    QUEUED = "queued", "queued"
    RUNNING = "running", "running"
    SUCCEEDED = "succeeded", "succeeded"
    FAILED = "failed", "failed"
    CANCELLED = "cancelled", "cancelled"


FINISHED = (JobStatus.SUCCEEDED, JobStatus.FAILED, JobStatus.CANCELLED)


class Job(models.Model):
    """One unit of background work and everything an admin needs to follow it.

    The queue backend only carries the id; status, progress, heartbeat and errors live here.
    ``progress_done``/``progress_total`` count the job's own units (prompts for generation);
    ``phase`` says what a running job is doing (``training.runners.progress.Phase``), cleared when it succeeds.
    """

    kind = models.CharField(max_length=20, choices=JobKind.choices)
    status = models.CharField(max_length=10, choices=JobStatus.choices, default=JobStatus.QUEUED)
    config = models.JSONField(default=dict)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL)
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    heartbeat_at = models.DateTimeField(null=True, blank=True)
    progress_done = models.PositiveIntegerField(default=0)
    progress_total = models.PositiveIntegerField(default=0)
    tokens_per_s = models.FloatField(null=True, blank=True)
    phase = models.CharField(
        max_length=100, blank=True, default="",
        help_text="What a running job is doing now, beside its counts: training, evaluating, saving checkpoint, ...",
    )
    summary = models.JSONField(default=dict, blank=True)
    error = models.TextField(blank=True, default="")
    traceback = models.TextField(blank=True, default="")
    cancel_requested = models.BooleanField(default=False)
    pid = models.PositiveIntegerField(null=True, blank=True)
    task_id = models.CharField(max_length=64, blank=True, default="")
    snapshot = models.ForeignKey(
        "feedback.DatasetSnapshot", null=True, blank=True, on_delete=models.PROTECT, related_name="+",
        help_text="The preference dataset a training run used.",
    )
    justification = models.TextField(
        blank=True, default="",
        help_text="Why this run is warranted (why prompting or retrieval is not enough, which data, expected maintenance); "
        "required when ARBITER_RUN_JUSTIFICATION_REQUIRED is on. Copied into the model card.",
    )

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.CheckConstraint(condition=Q(status__in=JobStatus.values), name="job_status_valid"),
            models.CheckConstraint(condition=Q(kind__in=JobKind.values), name="job_kind_valid"),
        ]
        indexes = [models.Index(fields=["status", "heartbeat_at"], name="job_reaper_lookup")]

    def __str__(self) -> str:
        return f"{self.kind} job {self.pk} ({self.status})"

    @property
    def is_finished(self) -> bool:
        return self.status in FINISHED

    @property
    def percent(self) -> int:
        return int(100 * self.progress_done / self.progress_total) if self.progress_total else 0

    @property
    def is_training(self) -> bool:
        return self.kind in TRAINING_KINDS

    @property
    def output(self) -> "Checkpoint | None":
        """The checkpoint this run registered, or None."""
        try:
            return self.output_checkpoint
        except Checkpoint.DoesNotExist:
            return None


class JobMetric(models.Model):
    """Metrics a run logged at one optimiser step (``values``: name -> number, e.g. ``loss``,
    ``eval_accuracy``, ``learning_rate``), kept in order so pages can draw curves while it runs."""

    job = models.ForeignKey(Job, on_delete=models.CASCADE, related_name="metrics")
    step = models.PositiveIntegerField()
    epoch = models.FloatField(null=True, blank=True)
    values = models.JSONField(default=dict)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["step", "id"]
        indexes = [models.Index(fields=["job", "step"], name="job_metric_by_step")]

    def __str__(self) -> str:
        return f"job {self.job_id} step {self.step}"


class LoopMethod(models.TextChoices):
    DPO = "dpo", "DPO on the votes"
    RL = "rl", "online RL against the new reward model"


class LoopSettings(models.Model):
    """The closed loop's settings (one row, pk 1): after every ``votes_per_round`` new votes,
    rebuild the snapshot, retrain the reward model, then run DPO or online RL from ``policy``,
    and put the new policy against its parent into the queue."""

    enabled = models.BooleanField(default=False)
    votes_per_round = models.PositiveIntegerField(default=100)
    method = models.CharField(max_length=8, choices=LoopMethod.choices, default=LoopMethod.DPO)
    policy = models.ForeignKey(
        Checkpoint, null=True, blank=True, on_delete=models.SET_NULL, related_name="+",
        help_text="The policy the next round starts from; each successful round moves it to its output.",
    )
    rules = models.JSONField(default=dict, blank=True, help_text="Aggregation rules for each round's snapshot.")
    reward_config = models.JSONField(default=dict, blank=True, help_text="RewardConfig settings for each round.")
    policy_config = models.JSONField(default=dict, blank=True, help_text="DPO or RL settings for each round.")
    generation_config = models.JSONField(default=dict, blank=True, help_text="Settings of the new-vs-parent generation.")
    campaign = models.ForeignKey(
        "feedback.Campaign", null=True, blank=True, on_delete=models.SET_NULL, related_name="+",
        help_text="The campaign the new-vs-parent comparisons go to (empty: the Default campaign).",
    )
    last_vote_id = models.PositiveBigIntegerField(default=0, help_text="Votes after this id count towards the next round.")
    # RLAIF in the loop (issue 16): a judge labels each round's new-vs-parent comparisons (people
    # still get them), and its votes count toward the next round (training/loop_judge.py).
    judge = models.ForeignKey(
        "training.Judge", null=True, blank=True, on_delete=models.SET_NULL, related_name="+",
        help_text="An AI judge that labels each round's new-vs-parent comparisons; its votes count toward the next round.",
    )
    gate_eval_set_id = models.PositiveIntegerField(
        null=True, blank=True,
        help_text="Regression gate: promote a round's checkpoint only if it is not worse than its parent on this eval set.",
    )
    gate_margin = models.FloatField(
        default=0.05, help_text="The gate passes when the reward-model win rate against the parent is >= 0.5 - margin.",
    )
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.CheckConstraint(condition=Q(pk=1), name="loop_settings_singleton"),
            models.CheckConstraint(condition=Q(votes_per_round__gte=1), name="loop_votes_per_round_positive"),
        ]

    def __str__(self) -> str:
        return f"loop ({'on' if self.enabled else 'off'}, every {self.votes_per_round} votes, {self.method})"


class RoundStatus(models.TextChoices):
    RUNNING = "running", "running"
    SUCCEEDED = "succeeded", "succeeded"
    FAILED = "failed", "failed"
    CANCELLED = "cancelled", "cancelled"
    HELD_BACK = "held_back", "held back by the gate"


class LoopRound(models.Model):
    """One turn of the loop: snapshot -> reward run -> policy run -> (with a regression gate: an
    evaluation of the new checkpoint against its parent, ``evaluation``/``gate``) -> new-vs-parent
    generation. A checkpoint the gate refuses ends the round ``held_back``: kept and shown with
    the gate's reason, but the loop's policy does not move to it."""

    status = models.CharField(max_length=10, choices=RoundStatus.choices, default=RoundStatus.RUNNING)
    trigger = models.CharField(max_length=20, default="votes", help_text="votes, manual or command")
    method = models.CharField(max_length=8, choices=LoopMethod.choices)
    triggered_at = models.DateTimeField(help_text="When the vote (or request) that started the round was recorded.")
    finished_at = models.DateTimeField(null=True, blank=True)
    last_vote_id = models.PositiveBigIntegerField(default=0)
    parent = models.ForeignKey(Checkpoint, null=True, on_delete=models.PROTECT, related_name="+")
    snapshot = models.ForeignKey("feedback.DatasetSnapshot", null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    reward_job = models.ForeignKey(Job, null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    policy_job = models.ForeignKey(Job, null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    generation_job = models.ForeignKey(Job, null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    checkpoint = models.ForeignKey(Checkpoint, null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    judging_job = models.ForeignKey(
        Job, null=True, blank=True, on_delete=models.PROTECT, related_name="+",
        help_text="The loop judge's labelling of this round's comparisons (after the round's own steps).",
    )
    evaluation = models.ForeignKey(
        "training.EvaluationRun", null=True, blank=True, on_delete=models.PROTECT, related_name="+",
        help_text="The regression gate's evaluation: the new checkpoint against its parent.",
    )
    gate = models.JSONField(default=dict, blank=True, help_text="The gate's verdict: passed, win_rate, threshold, reason.")
    waiting_for = models.CharField(
        max_length=500, blank=True, default="",
        help_text="What a running round waits for before its next step (a model server for its new checkpoint).",
    )
    error = models.TextField(blank=True, default="")

    class Meta:
        ordering = ["-id"]
        constraints = [models.CheckConstraint(condition=Q(status__in=RoundStatus.values), name="loop_round_status_valid")]

    def __str__(self) -> str:
        return f"round {self.pk} ({self.status})"
from training.evaluation.models import EvaluationRun  # noqa: E402,F401  (evaluations live in their own package)


# AI judges (issue 16) live in their own package; importing them here registers them with the app.
from .judges.models import CallStatus, Constitution, Judge, JudgeCall, JudgeKind, JudgeVerdict  # noqa: E402,F401
from .backends.models import ModelServer  # noqa: E402,F401  (generation backends, issue 19)

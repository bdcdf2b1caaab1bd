"""An evaluation run: one or more candidate checkpoints against a baseline on one eval set, with
its generation settings recorded, the generation job that writes their completions, the scoring
job in which a reward model scores them, and the report computed from the scores."""
from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q


class EvaluationStatus(models.TextChoices):
    GENERATING = "generating", "generating"
    SCORING = "scoring", "scoring"
    SUCCEEDED = "succeeded", "succeeded"
    FAILED = "failed", "failed"
    CANCELLED = "cancelled", "cancelled"


EVALUATION_FINISHED = (EvaluationStatus.SUCCEEDED, EvaluationStatus.FAILED, EvaluationStatus.CANCELLED)


class EvaluationRun(models.Model):
    """Candidates (``candidates``: checkpoint names) against ``baseline`` (a checkpoint name) on
    the eval set ``eval_set_id`` (``feedback.interface.eval_set_get``).

    Steps: ``generation_job`` writes one completion per checkpoint and prompt (``GenerationConfig``
    strategy ``each``; ``generation`` holds its sampling settings), then ``scoring_job`` has
    ``reward_model`` score them, then the report is computed into ``summary``
    (``training.evaluation.report``). ``status`` says which step it is in; a failed step fails the
    run with a readable ``error`` and keeps what earlier steps wrote. ``tie_band``: a candidate
    ties a prompt when |score difference| <= this (reward-model units). ``campaign_id``: the blind
    human campaign made from it, if any (its votes join the report when read).
    """

    eval_set_id = models.PositiveIntegerField(help_text="feedback's EvalSet id (read through feedback.interface)")
    eval_set_label = models.CharField(max_length=120, help_text="name and version at creation, for lists")
    baseline = models.CharField(max_length=200)
    candidates = models.JSONField(default=list)
    reward_model = models.CharField(max_length=200, blank=True, default="")
    tie_band = models.FloatField(default=0.0, help_text="|score difference| at or under this is a tie (reward units)")
    generation = models.JSONField(default=dict, blank=True)
    generation_job = models.ForeignKey("training.Job", null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    scoring_job = models.ForeignKey("training.Job", null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    status = models.CharField(max_length=10, choices=EvaluationStatus.choices, default=EvaluationStatus.GENERATING)
    error = models.TextField(blank=True, default="")
    summary = models.JSONField(default=dict, blank=True, help_text="the report (training.evaluation.report)")
    campaign_id = models.PositiveIntegerField(null=True, blank=True, help_text="the blind human campaign made from it")
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-id"]
        constraints = [
            models.CheckConstraint(condition=Q(status__in=EvaluationStatus.values), name="evaluation_status_valid"),
            models.CheckConstraint(condition=Q(tie_band__gte=0), name="evaluation_tie_band_not_negative"),
        ]

    def __str__(self) -> str:
        return f"evaluation {self.pk}: {', '.join(self.candidates)} vs {self.baseline} on {self.eval_set_label}"

    @property
    def is_finished(self) -> bool:
        return self.status in EVALUATION_FINISHED

    @property
    def current_job(self):
        """The job of the step now running (generation, then scoring), or None when finished."""
        if self.is_finished:
            return None
        return self.scoring_job if self.status == EvaluationStatus.SCORING else self.generation_job

    @property
    def progress(self) -> dict:
        """``{"step": "generating"|"scoring"|..., "done": int, "total": int, "unit": str}`` from the
        current step's job (prompts while generating, completions while scoring)."""
        job = self.current_job
        unit = "completion" if self.status == EvaluationStatus.SCORING else "prompt"
        if job is None:
            return {"step": self.status, "done": 0, "total": 0, "unit": unit}
        return {"step": self.status, "done": job.progress_done, "total": job.progress_total, "unit": unit}

"""An evaluation run: one or more candidate checkpoints against a baseline on one eval set, with
its generation settings recorded, and the generation job that writes their completions."""
from __future__ import annotations

from django.conf import settings
from django.db import models


class EvaluationRun(models.Model):
    """Candidates (``candidates``: checkpoint names) against ``baseline`` (a checkpoint name) on
    the eval set ``eval_set_id`` (``feedback.interface.eval_set_get``). ``generation`` holds the
    sampling settings as given (recorded); ``generation_job`` writes one completion per checkpoint
    and prompt (``GenerationConfig`` strategy ``each``); its status is the run's status until the
    scoring steps exist. ``summary`` is for the report (item 2 onwards)."""

    eval_set_id = models.PositiveIntegerField(help_text="feedback's EvalSet id (read through feedback.interface)")
    eval_set_label = models.CharField(max_length=120, help_text="name and version at creation, for lists")
    baseline = models.CharField(max_length=200)
    candidates = models.JSONField(default=list)
    generation = models.JSONField(default=dict, blank=True)
    generation_job = models.ForeignKey("training.Job", null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    summary = models.JSONField(default=dict, blank=True)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-id"]

    def __str__(self) -> str:
        return f"evaluation {self.pk}: {', '.join(self.candidates)} vs {self.baseline} on {self.eval_set_label}"

    @property
    def status(self) -> str:
        """The generation job's status (``queued`` until it exists)."""
        return self.generation_job.status if self.generation_job_id else "queued"

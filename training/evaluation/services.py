"""Creating an evaluation run: checked before anything is queued, then one generation job
(strategy ``each``) writes the baseline's and every candidate's completion of each eval-set prompt."""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from django.core.exceptions import ValidationError
from django.db import transaction

from feedback import interface as feedback

from ..models import Checkpoint, CheckpointKind
from ..services import generation_job_create
from .models import EvaluationRun

# Sampling an evaluation records and may change; prompts, strategy and checkpoints are the run's.
GENERATION_SETTINGS = ("max_new_tokens", "temperature", "top_p", "batch_size", "seed", "limit")
GENERATION_DEFAULTS = {"temperature": 0.0, "max_new_tokens": 256}  # greedy: the same checkpoint answers the same


def evaluation_run_create(
    *, eval_set_id: int, baseline: str, candidates: Sequence[str], generation: Mapping[str, Any] | None = None,
    created_by=None,
) -> EvaluationRun:
    """Check and queue an evaluation of ``candidates`` against ``baseline`` on an eval set.

    Args:
        eval_set_id: the eval set (``feedback.interface.eval_set_get``).
        baseline: a policy checkpoint's name. candidates: 1 to 7 other policy checkpoints' names.
        generation: sampling settings (``GENERATION_SETTINGS``; defaults greedy, 256 new tokens),
            validated as ``GenerationConfig``'s and recorded on the run and the job.
    Returns:
        The run, with its generation job queued (on commit).
    Raises:
        ValidationError: by field, before anything is queued: ``eval_set_id`` (no such set, or it
            is empty), ``candidates`` (none, repeated, or the baseline among them: a checkpoint
            is not evaluated against itself), ``baseline``/``candidates`` (unknown or not a
            policy), ``generation`` (an unknown setting) or a sampling setting's own message.
    """
    errors: dict[str, str] = {}
    try:
        eval_set = feedback.eval_set_get(eval_set_id=eval_set_id)
    except LookupError as error:
        raise ValidationError({"eval_set_id": str(error)}) from None
    if not eval_set.item_count:
        errors["eval_set_id"] = f"eval set {eval_set.name!r} v{eval_set.version} is empty"
    names = list(candidates or [])
    if not names:
        errors["candidates"] = "name at least one candidate checkpoint"
    elif baseline in names:
        errors["candidates"] = f"{baseline!r} is the baseline: a checkpoint is not evaluated against itself"
    elif len(set(names)) != len(names):
        errors["candidates"] = "a candidate is named twice"
    settings = dict(generation or {})
    unknown = sorted(set(settings) - set(GENERATION_SETTINGS))
    if unknown:
        errors["generation"] = f"unknown setting(s): {', '.join(unknown)}; expected {', '.join(GENERATION_SETTINGS)}"
    known = {c.name: c.kind for c in Checkpoint.objects.filter(name__in=[baseline, *names])}
    for field, wanted in (("baseline", [baseline]), ("candidates", names)):
        for name in wanted:
            if name not in known:
                errors.setdefault(field, f"no checkpoint named {name!r}")
            elif known[name] != CheckpointKind.POLICY:
                errors.setdefault(field, f"{name!r} is a {known[name]} checkpoint; an evaluation needs policies")
    if errors:
        raise ValidationError(errors)
    recorded = {**GENERATION_DEFAULTS, **settings}
    with transaction.atomic():
        job = generation_job_create(
            config={**recorded, "checkpoints": [baseline, *names], "strategy": "each", "eval_set_id": eval_set.id},
            created_by=created_by,
        )
        return EvaluationRun.objects.create(
            eval_set_id=eval_set.id, eval_set_label=f"{eval_set.name} v{eval_set.version}", baseline=baseline,
            candidates=names, generation=recorded, generation_job=job, created_by=created_by,
        )

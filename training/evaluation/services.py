"""Creating an evaluation run: checked before anything is queued, then one generation job
(strategy ``each``) writes the baseline's and every candidate's completion of each eval-set prompt;
``training.evaluation.flow`` takes it on from there (scoring, report)."""
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
    *, eval_set_id: int, baseline: str, candidates: Sequence[str], reward_model: str, tie_band: float = 0.0,
    generation: Mapping[str, Any] | None = None, created_by=None,
) -> EvaluationRun:
    """Check and queue an evaluation of ``candidates`` against ``baseline`` on an eval set.

    Args:
        eval_set_id: the eval set (``feedback.interface.eval_set_get``).
        baseline: a policy checkpoint's name. candidates: 1 to 7 other policy checkpoints' names.
        reward_model: the reward checkpoint that scores every completion once they are written
            (``training.evaluation.flow``). tie_band: a prompt is a tie when the two scores
            differ by at most this (reward units, 0 to 100).
        generation: sampling settings (``GENERATION_SETTINGS``; defaults greedy, 256 new tokens),
            validated as ``GenerationConfig``'s and recorded on the run and the job.
    Returns:
        The run, with its generation job queued (on commit).
    Raises:
        ValidationError: by field, before anything is queued: ``eval_set_id`` (no such set, or it
            is empty), ``candidates`` (none, repeated, or the baseline among them: a checkpoint
            is not evaluated against itself), ``baseline``/``candidates`` (unknown or not a
            policy), ``reward_model`` (unknown or not a reward model), ``tie_band`` (not a number
            from 0 to 100), ``generation`` (an unknown setting) or a sampling setting's own message.
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
    if isinstance(tie_band, bool) or not isinstance(tie_band, (int, float)) or not 0 <= tie_band <= 100:
        errors["tie_band"] = "must be a number from 0 to 100 (reward-model units)"
    known = {c.name: c.kind for c in Checkpoint.objects.filter(name__in=[baseline, *names, reward_model or ""])}
    if not reward_model:
        errors["reward_model"] = "name the reward model that scores the completions"
    elif reward_model not in known:
        errors["reward_model"] = f"no checkpoint named {reward_model!r}"
    elif known[reward_model] != CheckpointKind.REWARD:
        errors["reward_model"] = f"{reward_model!r} is a policy; the completions are scored by a reward model"
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
            candidates=names, reward_model=reward_model, tie_band=float(tie_band), generation=recorded,
            generation_job=job, created_by=created_by,
        )


MAX_CAMPAIGN_SAMPLE = 5000


def evaluation_campaign_create(*, run: EvaluationRun, sample_size: int = 50, seed: int = 0, created_by=None) -> EvaluationRun:
    """Turn a sample of the run's eval-set prompts into a new, active, blind human campaign of
    candidate-vs-baseline comparisons of the completions already generated (sides drawn at random
    by ``feedback.interface.human_campaign_create``; pool: the annotators group). The report then
    shows the human win rate from its votes (``selectors.evaluation_report``).

    ``sample_size`` prompts (all when fewer) are drawn with ``random.Random(seed)``; each gives one
    comparison per candidate.
    Returns: the run, with ``campaign_id`` set.
    Raises:
        ValidationError: ``campaign`` (the run has one already, or its generations are not all
            written yet), ``sample_size`` (not 1 to 5000), ``comparisons`` (no pair to ask).
    """
    import random

    if run.campaign_id:
        raise ValidationError({"campaign": f"evaluation {run.pk} has a human campaign already (id {run.campaign_id})"})
    if run.generation_job is None or run.generation_job.status != "succeeded":
        raise ValidationError({"campaign": "the evaluation's completions are not all written yet: wait for its generation"})
    if isinstance(sample_size, bool) or not isinstance(sample_size, int) or not 1 <= sample_size <= MAX_CAMPAIGN_SAMPLE:
        raise ValidationError({"sample_size": f"must be an integer from 1 to {MAX_CAMPAIGN_SAMPLE}"})
    rows = feedback.evaluation_completions(job_id=run.generation_job_id,
                                           prompt_ids=run.generation_job.config.get("prompt_ids"))
    written: dict[tuple[int, str], int] = {(c.prompt_id, c.model_name): c.completion_id for c in rows}
    prompts = sorted({prompt for prompt, _ in written})
    sample = sorted(random.Random(seed).sample(prompts, min(sample_size, len(prompts))))
    pairs = [(p, written[(p, name)], written[(p, run.baseline)]) for p in sample for name in run.candidates
             if (p, name) in written and (p, run.baseline) in written]
    with transaction.atomic():
        campaign_id, made = feedback.human_campaign_create(
            name=f"Evaluation {run.pk}: {', '.join(run.candidates)} vs {run.baseline}"[:200], pairs=pairs,
            description=(f"Blind comparisons from evaluation {run.pk} on {run.eval_set_label}: "
                         f"{len(sample)} sampled prompts, each candidate against {run.baseline}."),
            created_by=created_by, rng=random.Random(seed + 1),
        )
        run.campaign_id = campaign_id
        run.save(update_fields=["campaign_id"])
    return run

"""An evaluation run's steps after creation: generation -> scoring -> report.

``evaluation_job_finished`` is called for every finished job (from ``training.loop.job_finished``,
which the supervisor, cancel and the reaper call): when the job is an evaluation's generation job
it queues the scoring job (the reward model scores every candidate's and the baseline's
completion, and those of each candidate's parent and imported base where they exist on the same
eval set); when it is the scoring job it computes the report (``training.evaluation.report``).
A step that fails or is cancelled ends the run with a readable reason; completions already
written stay (they are ordinary rows).
"""
from __future__ import annotations

import logging
from typing import Any

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from feedback import interface as feedback

from ..models import Checkpoint, Job, JobStatus
from .models import EvaluationRun, EvaluationStatus
from .report import Answer, PromptInfo, report_build

logger = logging.getLogger(__name__)


def _end(run: EvaluationRun, status: str, *, error: str = "", summary: dict | None = None) -> None:
    run.status, run.error, run.finished_at = status, error[:10_000], timezone.now()
    fields = ["status", "error", "finished_at"]
    if summary is not None:
        run.summary = summary
        fields.append("summary")
    run.save(update_fields=fields)


def references_of(names: list[str]) -> dict[str, list[tuple[str, str]]]:
    """candidate -> ``[("parent", name), ("base", name)]``: its parent checkpoint and the imported
    base at the root of its lineage (left out when it is the parent, or there is none)."""
    out: dict[str, list[tuple[str, str]]] = {}
    for checkpoint in Checkpoint.objects.filter(name__in=names).select_related("parent"):
        refs, node, seen = [], checkpoint.parent, set()
        if node is not None:
            refs.append(("parent", node.name))
            while node.parent_id is not None and node.pk not in seen:
                seen.add(node.pk)
                node = Checkpoint.objects.only("id", "name", "parent_id").get(pk=node.parent_id)
            if node.name != refs[0][1]:
                refs.append(("base", node.name))
        out[checkpoint.name] = refs
    return out


def _outside_models(run: EvaluationRun) -> list[str]:
    inside = {run.baseline, *run.candidates}
    return sorted({name for refs in references_of(run.candidates).values() for _, name in refs} - inside)


def _job_prompts(run: EvaluationRun) -> list[int] | None:
    """The prompt ids the run's generation job was given (recorded in its config)."""
    return run.generation_job.config.get("prompt_ids") if run.generation_job_id else None


def _prompt_ids(run: EvaluationRun) -> list[int]:
    return list(dict.fromkeys(ref.prompt_id for ref in feedback.eval_set_prompts(eval_set_id=run.eval_set_id)))


def scoring_queue(run: EvaluationRun) -> Job | None:
    """Queue the scoring of the run's completions (and its reference models') not yet scored by
    its reward model; None when every one is scored already (or empty). Raises ValidationError
    for any other refusal of the scoring job."""
    from ..services import scoring_job_create

    written = feedback.evaluation_completions(job_id=run.generation_job_id, prompt_ids=_job_prompts(run))
    ids = [c.completion_id for c in written if not c.is_empty]
    outside = _outside_models(run)
    if outside:
        ids += [c.completion_id for c in feedback.eval_set_completions(
            eval_set_id=run.eval_set_id, model_names=outside, prompt_ids=_prompt_ids(run)) if not c.is_empty]
    try:
        return scoring_job_create(config={"reward_model": run.reward_model, "completion_ids": sorted(set(ids))},
                                  created_by=run.created_by)
    except ValidationError as error:
        if "completion_ids" in getattr(error, "error_dict", {}):
            return None
        raise


def report_compute(run: EvaluationRun) -> dict[str, Any]:
    """The run's report from its stored completions and its reward model's scores."""
    refs = feedback.eval_set_prompts(eval_set_id=run.eval_set_id)
    prompts, seen = [], set()
    for ref in refs:
        if ref.prompt_id not in seen:
            seen.add(ref.prompt_id)
            user = [m["content"] for m in ref.messages if m.get("role") == "user"]
            prompts.append(PromptInfo(ref.prompt_id, ref.category, user[-1] if user else ""))
    answers: dict[str, dict[int, Answer]] = {}

    def add(rows) -> None:
        for c in rows:
            answers.setdefault(c.model_name, {})[c.prompt_id] = Answer(c.completion_id, c.text, c.score, c.is_empty)

    add(feedback.evaluation_completions(job_id=run.generation_job_id, reward_model=run.reward_model,
                                        prompt_ids=_job_prompts(run)))
    inside = {run.baseline, *run.candidates}
    outside_rows = []
    outside = _outside_models(run)
    if outside:
        outside_rows = feedback.eval_set_completions(eval_set_id=run.eval_set_id, model_names=outside,
                                                     prompt_ids=list(seen), reward_model=run.reward_model)
        add(outside_rows)
    jobs: dict[str, set[int]] = {}
    for row in outside_rows:
        if row.job_id:
            jobs.setdefault(row.model_name, set()).add(row.job_id)
    references = {
        name: [(role, ref, "this run" if ref in inside else
                "earlier evaluation (generation job " + ", ".join(map(str, sorted(jobs.get(ref, ())))) + ")")
               for role, ref in pairs]
        for name, pairs in references_of(run.candidates).items()
    }
    return report_build(prompts=prompts, answers=answers, baseline=run.baseline, candidates=run.candidates,
                        references=references, tie_band=run.tie_band, reward_model=run.reward_model)


def _step_error(job: Job, run: EvaluationRun) -> str:
    """Why the run ended with ``job``, in words, saying what is kept."""
    written = (len(feedback.evaluation_completions(job_id=run.generation_job_id, prompt_ids=_job_prompts(run)))
               if run.generation_job_id else 0)
    kept = f"the {written} generations already written are kept"
    if job.status == JobStatus.CANCELLED:
        return f"the {job.kind} job {job.pk} was cancelled; {kept}"
    detail = f": {job.error}" if job.error else ""
    if job.kind == "scoring":
        return f"the reward model {run.reward_model!r} failed while scoring (scoring job {job.pk}){detail}; {kept}"
    return f"the generation job {job.pk} failed{detail}; {kept}"


def evaluation_job_finished(*, job: Job) -> EvaluationRun | None:
    """Advance the evaluation run whose generation or scoring job ``job`` is, if any.

    Returns the run when it has just ended (succeeded, failed or cancelled), else None. Runs in
    the caller's transaction (the run's row is locked).
    """
    if job.kind not in ("generation", "scoring"):
        return None
    run = (EvaluationRun.objects.select_for_update()
           .filter(status__in=[EvaluationStatus.GENERATING, EvaluationStatus.SCORING])
           .filter(**({"generation_job": job} if job.kind == "generation" else {"scoring_job": job})).first())
    if run is None:
        return None
    if job.status != JobStatus.SUCCEEDED:
        status = EvaluationStatus.CANCELLED if job.status == JobStatus.CANCELLED else EvaluationStatus.FAILED
        _end(run, status, error=_step_error(job, run))
        return run
    if job.kind == "generation":
        try:
            scoring = scoring_queue(run)
        except ValidationError as error:
            _end(run, EvaluationStatus.FAILED, error=f"the scoring job was refused: {'; '.join(error.messages)}")
            return run
        if scoring is not None:
            run.status, run.scoring_job = EvaluationStatus.SCORING, scoring
            run.save(update_fields=["status", "scoring_job"])
            return None
    try:
        with transaction.atomic():  # a savepoint: a failed read leaves the run's row writable
            summary = report_compute(run)
    except Exception as error:  # noqa: BLE001 - the run must end with a reason, whatever went wrong
        logger.exception("evaluation %s: the report failed", run.pk)
        _end(run, EvaluationStatus.FAILED, error=f"the report could not be computed: {error}")
        return run
    _end(run, EvaluationStatus.SUCCEEDED, summary=summary)
    return run


def evaluation_job_finished_guarded(*, job: Job) -> EvaluationRun | None:
    """``evaluation_job_finished`` in a savepoint; when it raises, the run ends failed with the
    error in words (never left ``generating`` or ``scoring`` for ever) and is returned."""
    try:
        with transaction.atomic():
            return evaluation_job_finished(job=job)
    except Exception as error:  # noqa: BLE001 - the run must end with a reason, whatever went wrong
        logger.exception("evaluation follow-up of job %s failed", job.pk)
        field = "generation_job" if job.kind == "generation" else "scoring_job"
        run = (EvaluationRun.objects.filter(status__in=[EvaluationStatus.GENERATING, EvaluationStatus.SCORING])
               .filter(**{field: job}).first())
        if run is not None:
            _end(run, EvaluationStatus.FAILED,
                 error=f"the step after {job.kind} job {job.pk} failed: {type(error).__name__}: {error}")
        return run


def evaluation_cancel(*, run: EvaluationRun) -> EvaluationRun:
    """Cancel the run's current job (its end then cancels the run, keeping what was written)."""
    from ..services import job_cancel

    job = run.current_job
    if job is not None:
        job_cancel(job=job)
    run.refresh_from_db()
    return run

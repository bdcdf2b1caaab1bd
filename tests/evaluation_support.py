"""Evaluation runs without models: an eval set, checkpoints, completions written as the
generation job writes them, and reward scores stubbed in (``feedback.interface.scores_record``)."""
from __future__ import annotations

import json

from django.utils import timezone

from feedback import interface
from feedback.evalsets.services import eval_set_import
from training.evaluation.services import evaluation_run_create
from training.models import Checkpoint, CheckpointKind, Job, JobStatus


def eval_set(tmp_path, rows, name="prod"):
    """Import ``rows`` (``(prompt, category)``) as an eval set; returns the EvalSet."""
    path = tmp_path / f"{name}.jsonl"
    path.write_text("".join(json.dumps({"prompt": q, "category": c}) + "\n" for q, c in rows), encoding="utf-8")
    return eval_set_import(path=path, name=name).eval_set


def checkpoints(*names, parent_of=None):
    """Policy checkpoints by name (``parent_of``: {child: parent}), and a reward model ``rm``."""
    made = {}
    for name in names:
        parent = made.get((parent_of or {}).get(name))
        made[name] = Checkpoint.objects.create(name=name, hub_id=f"x/{name}", parent=parent)
    made["rm"] = Checkpoint.objects.create(name="rm", hub_id="x/rm", kind=CheckpointKind.REWARD)
    return made


def write(job_or_id, eval_set_id, texts):
    """Store completions as the generation job does: ``texts`` is {(prompt_id, model): text}."""
    job_id = job_or_id if isinstance(job_or_id, int) else job_or_id.pk
    params = {"strategy": "each", "job": job_id, "eval_set_id": eval_set_id, "temperature": 0.0}
    ids = interface.completions_record(completions=[
        (prompt, interface.GeneratedText(model, text, params)) for (prompt, model), text in texts.items()])
    return dict(zip(texts, ids))


def finish(job, status=JobStatus.SUCCEEDED, error=""):
    """Mark ``job`` finished and run what the supervisor runs after it."""
    from training.loop import job_finished

    Job.objects.filter(pk=job.pk).update(status=status, error=error, finished_at=timezone.now())
    job_finished(job_id=job.pk)


def prompt_ids(eval_set_id):
    return [ref.prompt_id for ref in interface.eval_set_prompts(eval_set_id=eval_set_id)]


def run_with_scores(tmp_path, *, scores, rows=None, candidates=("cand",), baseline="base", tie_band=0.0,
                    texts=None, parent_of=None):
    """An evaluation carried to its report: ``scores`` is {model: [score per prompt]} and
    ``texts`` optionally {model: [text per prompt]} (default ``"<model> answer <i>"``)."""
    rows = rows or [(f"Question {i}?", "a" if i % 2 else "b") for i in range(len(next(iter(scores.values()))))]
    s = eval_set(tmp_path, rows)
    checkpoints(baseline, *candidates, parent_of=parent_of)
    run = evaluation_run_create(eval_set_id=s.pk, baseline=baseline, candidates=list(candidates),
                                reward_model="rm", tie_band=tie_band)
    prompts = prompt_ids(s.pk)
    written = write(run.generation_job, s.pk, {
        (p, m): (texts or {}).get(m, [f"{m} answer {i}" for i in range(len(prompts))])[i]
        for m in scores for i, p in enumerate(prompts)})
    finish(run.generation_job)
    run.refresh_from_db()
    interface.scores_record(reward_model="rm", scores=[
        (written[(p, m)], scores[m][i]) for m in scores for i, p in enumerate(prompts)
        if scores[m][i] is not None])
    finish(run.scoring_job)
    run.refresh_from_db()
    return run

"""Admin pages: the checkpoint registry, the generation launcher, and jobs with live progress.

Each view renders the full page or, for an htmx request, the named partial of the same template.
Live regions poll every 2 s and are answered with 286 (htmx: stop polling) once nothing shown is
queued or running. Every action also works as a plain form POST.
"""
from __future__ import annotations

import json

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from config.wording import counted
from feedback import interface as feedback

from . import selectors, services
from .charts import line_chart, metric_series
from .forms import GenerationForm, RewardForm, ScoringForm
from .models import CheckpointKind, Job, JobKind, JobStatus, LoopRound, RoundStatus
from .permissions import can_run_jobs
from .summary_rows import ceiling_line, summary_rows
from .supervisor import log_tail

LOSS_METRICS = ("loss", "eval_loss")
ACCURACY_PREFIX = "eval_accuracy"
STOP_POLLING = 286  # htmx: swap this answer in, then stop polling
JOB_CHANGED = "job-changed"  # htmx event a cancel sends; live regions refresh on it


def _require_run_jobs(request: HttpRequest) -> None:
    if not can_run_jobs(request.user):
        raise PermissionDenied("Only admins may see checkpoints and jobs.")


@login_required
@require_GET
def checkpoint_list(request: HttpRequest) -> HttpResponse:
    """Admins: every checkpoint with kind, parent, size, dtype, licence and chat template."""
    _require_run_jobs(request)
    page = Paginator(selectors.checkpoint_list(), 50).get_page(request.GET.get("page"))
    return render(request, "training/checkpoints.html", {"page": page})


@login_required
@require_GET
def checkpoint_detail(request: HttpRequest, pk: int) -> HttpResponse:
    """Admins: one checkpoint's metadata, location, lineage and how many completions it wrote; for a
    reward model, its run's held-out accuracy beside the human agreement ceiling (``ceiling_line``)."""
    _require_run_jobs(request)
    checkpoint = get_object_or_404(selectors.checkpoint_list(), pk=pk)
    run = services.reward_ceiling_ensure(job=checkpoint.run) if checkpoint.run else None
    context = {
        "ceiling": ceiling_line(run.summary or {}) if run and run.kind == JobKind.REWARD else None,
        "checkpoint": checkpoint,
        "children": checkpoint.children.order_by("name"),
        "completion_count": feedback.completion_count(model_name=checkpoint.name),
        "snapshot": feedback.snapshot_get(snapshot_id=checkpoint.run.snapshot_id) if checkpoint.run and checkpoint.run.snapshot_id else None,
        "lineage": selectors.lineage(checkpoint=checkpoint),
    }
    lineage_snapshots = [step["run"].snapshot_id for step in context["lineage"] if step["run"] and step["run"].snapshot_id]
    context["deleted_data_snapshots"] = sorted(feedback.snapshots_with_deleted_data(snapshot_ids=lineage_snapshots))
    if checkpoint.kind == CheckpointKind.POLICY:
        from .backends.models import ModelServer

        context["server_names"] = list(ModelServer.objects.values_list("name", flat=True))
        context["waiting_round"] = LoopRound.objects.filter(
            status=RoundStatus.RUNNING, checkpoint=checkpoint, generation_job__isnull=True).exclude(waiting_for="").first()
    return render(request, "training/checkpoint_detail.html", context)


@login_required
@require_http_methods(["GET", "POST"])
def generate(request: HttpRequest) -> HttpResponse:
    """Admins: launch a generation job. Errors show next to their fields (400) and nothing is queued."""
    _require_run_jobs(request)
    names = selectors.policy_checkpoint_names()
    campaigns = feedback.campaign_choices()
    if request.method == "GET":
        initial = {"checkpoint": request.GET["checkpoint"]} if request.GET.get("checkpoint") in names else {}
        form = GenerationForm(initial=initial, checkpoint_names=names, campaigns=campaigns)
        return render(request, "training/generate.html", {"form": form})
    form = GenerationForm(request.POST, checkpoint_names=names, campaigns=campaigns)
    if form.is_valid():
        try:
            job = services.generation_job_create(config=form.config(), created_by=request.user)
        except ValidationError as error:
            form.add_service_errors(error.message_dict if hasattr(error, "error_dict") else {"config": error.messages})
        else:
            messages.success(request, f"Generation job {job.pk} queued over {counted(job.progress_total, 'prompt')}.")
            return redirect("manage-job-detail", pk=job.pk)
    return render(request, "training/generate.html", {"form": form}, status=400)


@login_required
@require_GET
def job_list(request: HttpRequest) -> HttpResponse:
    """Admins: jobs, newest first, with live progress. Dead running jobs are reaped first.

    For an htmx poll of ``#job-table``: the table alone, 286 once no job on the page is active.
    """
    _require_run_jobs(request)
    services.jobs_reap()
    status = request.GET.get("status") if request.GET.get("status") in JobStatus.values else None
    page = Paginator(selectors.job_list(status=status), 50).get_page(request.GET.get("page"))
    active = selectors.jobs_any_active(page)
    context = {"page": page, "active": active, "status": status or "", "statuses": JobStatus.choices}
    if request.htmx and request.htmx.target == "job-table":
        return render(request, "training/jobs.html#table", context, status=200 if active else STOP_POLLING)
    return render(request, "training/jobs.html", context)


@login_required
@require_GET
def job_detail(request: HttpRequest, pk: int) -> HttpResponse:
    """Admins: one job's config, progress, summary, heartbeat, error, traceback and log tail.

    For an htmx poll of ``#job-live``: the live part alone, 286 once the job has finished.
    """
    _require_run_jobs(request)
    services.jobs_reap()
    job = services.reward_ceiling_ensure(job=get_object_or_404(selectors.job_list(), pk=pk))
    context = {"job": job, "log": log_tail(job.pk), **_job_tables(job), **_run_context(job)}
    if job.kind == JobKind.JUDGING:
        from .judges.selectors import judging_problem_calls

        context["judge_calls"] = judging_problem_calls(job=job)
    if request.htmx and request.htmx.target == "job-live":
        return render(request, "training/job_detail.html#live", context, status=STOP_POLLING if job.is_finished else 200)
    return render(request, "training/job_detail.html", context)


# Curves a run page draws, by kind: (title, metric names or a name prefix, fixed y range).
CHARTS = {
    "reward": [("Loss", LOSS_METRICS, None), ("Held-out pairwise accuracy", ACCURACY_PREFIX, (0.0, 1.0))],
    "dpo": [("Loss", LOSS_METRICS, None),
            ("Implicit reward accuracy", ("rewards/accuracies", "eval_rewards/accuracies"), (0.0, 1.0)),
            ("Implicit reward margin", ("rewards/margins", "eval_rewards/margins"), None)],
    "rl": [("Mean reward", ("reward",), None), ("KL to the reference", ("kl",), None),
           ("Completion length (tokens)", ("completion_length",), None)],
    "sft": [("Loss", LOSS_METRICS, None)],
}


def _run_context(job: Job) -> dict:
    """For a training run: its curves (``CHARTS``), dataset snapshot and output checkpoint."""
    if not job.is_training:
        return {}
    rows = [(m.step, m.values) for m in job.metrics.only("step", "values")]
    charts = []
    for title, names, y_range in CHARTS.get(job.kind, []):
        if isinstance(names, str):  # a prefix: the overall metric first, then its breakdowns
            names = sorted({n for _, values in rows for n in values if n.startswith(names)}, key=lambda n: (n != ACCURACY_PREFIX, n))
        charts.append(line_chart(title, metric_series(rows, names), y_range=y_range))
    snapshot = feedback.snapshot_get(snapshot_id=job.snapshot_id) if job.snapshot_id else None
    return {"charts": charts, "snapshot": snapshot, "output": job.output}


def _job_tables(job: Job) -> dict:
    """The job's summary (its kind's fields, formatted: ``summary_rows``), a reward run's held-out
    accuracy beside the human agreement ceiling (``ceiling_line``: ``(line, note)`` or None) and
    the config as rows."""
    config = [(key, json.dumps(value)) for key, value in job.config.items()]
    summary = job.summary or {}
    return {"summary_rows": summary_rows(job.kind, summary), "ceiling": ceiling_line(summary), "config_rows": config}


@login_required
@require_POST
def job_cancel(request: HttpRequest, pk: int) -> HttpResponse:
    """Admins: cancel a queued job, or ask a running one to stop at its next batch.

    htmx: 204 plus an ``HX-Trigger: job-changed`` event, on which the page's live region refreshes.
    Plain POST: back to ``next`` (a local URL) or the job's page, with a message.
    """
    _require_run_jobs(request)
    job = get_object_or_404(selectors.job_list(), pk=pk)
    was = job.status
    job = services.job_cancel(job=job)
    if request.htmx:
        return HttpResponse(status=204, headers={"HX-Trigger": JOB_CHANGED})
    if job.status == JobStatus.CANCELLED and was == JobStatus.QUEUED:
        messages.success(request, f"Job {job.pk} cancelled.")
    elif job.status == JobStatus.RUNNING:
        messages.success(request, f"Job {job.pk} will stop after its current batch.")
    else:
        messages.info(request, f"Job {job.pk} had already finished ({job.status}).")
    target = request.POST.get("next", "")
    if url_has_allowed_host_and_scheme(target, allowed_hosts={request.get_host()}, require_https=request.is_secure()):
        return redirect(target)
    return redirect("manage-job-detail", pk=job.pk)


@login_required
@require_http_methods(["GET", "POST"])
def train_reward(request: HttpRequest) -> HttpResponse:
    """Admins: launch a reward-model run (TRL RewardTrainer). Errors show next to their fields
    (400) and nothing is queued; on success, the run's live page."""
    _require_run_jobs(request)
    choices = {
        "checkpoint_names": selectors.policy_checkpoint_names(),
        "snapshots": [(ref.id, f"snapshot {ref.id}: {ref.train_rows} train / {ref.eval_rows} eval pairs, "
                               f"{ref.created_at:%Y-%m-%d %H:%M}") for ref in feedback.snapshots_recent(limit=50)],
        "annotators": feedback.annotator_choices(),
    }
    if request.method == "GET":
        initial = {"base": request.GET["base"]} if request.GET.get("base") in choices["checkpoint_names"] else {}
        return render(request, "training/train_reward.html", {"form": RewardForm(initial=initial, **choices)})
    form = RewardForm(request.POST, **choices)
    if form.is_valid():
        try:
            job = services.reward_run_create(config=form.config(), created_by=request.user, **form.governance())
        except ValidationError as error:
            form.add_service_errors(error.message_dict if hasattr(error, "error_dict") else {"config": error.messages})
        else:
            messages.success(request, f"Reward run {job.pk} queued on snapshot {job.snapshot_id}.")
            return redirect("manage-job-detail", pk=job.pk)
    return render(request, "training/train_reward.html", {"form": form}, status=400)


@login_required
@require_http_methods(["GET", "POST"])
def score(request: HttpRequest) -> HttpResponse:
    """Admins: launch a scoring job (a reward model scores completions; optionally re-prioritises the queue)."""
    _require_run_jobs(request)
    names = selectors.reward_checkpoint_names()
    if request.method == "GET":
        initial = {"reward_model": request.GET["reward_model"]} if request.GET.get("reward_model") in names else {}
        return render(request, "training/score.html", {"form": ScoringForm(initial=initial, reward_names=names)})
    form = ScoringForm(request.POST, reward_names=names)
    if form.is_valid():
        try:
            job = services.scoring_job_create(config=form.config(), created_by=request.user)
        except ValidationError as error:
            form.add_service_errors(error.message_dict if hasattr(error, "error_dict") else {"config": error.messages})
        else:
            messages.success(request, f"Scoring job {job.pk} queued over {counted(job.progress_total, 'completion')}.")
            return redirect("manage-job-detail", pk=job.pk)
    return render(request, "training/score.html", {"form": form}, status=400)


# --- leaderboard ---------------------------------------------------------------------------------


@login_required
@require_GET
def leaderboard(request: HttpRequest) -> HttpResponse:
    """Admins: Bradley-Terry ratings of the policy checkpoints by rank, with 95% intervals, vote
    counts and the win-rate matrix. ``?both_bad=exclude`` leaves both-bad votes out (default: ties);
    ``?models=external`` rates the external models (imported Arena battles) instead. Votes cast by
    someone who could see model names (admins) are left out, and counted on the page, unless
    ``?non_blind=include``. Votes on comparisons flagged as revealing which model wrote a
    response are left out, and counted, unless ``?identity_leak=include``. ``?votes=ai`` rates from
    AI judges' votes only, ``?votes=both&ai_weight=0.5`` from both with AI votes weighted (default:
    people's votes only); a bad choice is a 400 page saying why. ``?eval_set=ID`` (and
    ``&category=NAME``) rate from the votes on that eval set's prompts only; the length-controlled
    rating (``training.evaluation.style_control``) is shown beside the plain one."""
    _require_run_jobs(request)
    both_bad = "exclude" if request.GET.get("both_bad") == "exclude" else "tie"
    models = "external" if request.GET.get("models") == "external" else "checkpoints"
    include_non_blind = request.GET.get("non_blind") == "include"
    include_identity_leak = request.GET.get("identity_leak") == "include"
    votes, ai_weight, problem = _vote_choice(request)
    if problem:
        return render(request, "training/leaderboard.html", {"problem": problem, "votes": votes, "models": models,
                                                             "both_bad": both_bad}, status=400)
    eval_sets = feedback.eval_set_choices()
    eval_set_id = int(request.GET["eval_set"]) if request.GET.get("eval_set", "").isdigit() else None
    eval_set_id = eval_set_id if eval_set_id in {pk for pk, _ in eval_sets} else None
    category = request.GET.get("category") if eval_set_id is not None and "category" in request.GET else None
    if category == "*":
        category = None
    board = selectors.leaderboard_compute(both_bad=both_bad, models=models, include_non_blind=include_non_blind,
                                          include_identity_leak=include_identity_leak, votes=votes, ai_weight=ai_weight,
                                          eval_set_id=eval_set_id, category=category, length_controlled=True)
    ids = selectors.checkpoint_ids_by_name(names=board.models) if models == "checkpoints" else {}
    context = {
        "include_non_blind": include_non_blind,
        "include_identity_leak": include_identity_leak,
        "board": board,
        "rows": [{"row": row, "checkpoint_id": ids.get(row.model)} for row in board.rows],
        "matrix": _win_rate_matrix(board),
        "both_bad": both_bad,
        "models": models,
        "votes": votes,
        "ai_weight": ai_weight,
        "eval_sets": eval_sets,
        "eval_set_id": eval_set_id,
        "category": category,
        "categories": sorted(feedback.eval_set_get(eval_set_id=eval_set_id).categories) if eval_set_id else [],
        "lc": (board.length_controlled or {}).get("ratings", {}),
    }
    return render(request, "training/leaderboard.html", context)


def _vote_choice(request: HttpRequest) -> tuple[str, float, str]:
    """``(votes, ai_weight, problem)`` from ``?votes=`` and ``?ai_weight=``; ``problem`` is "" when
    they are good, else the field's message ("votes: ..." / "ai_weight: ...")."""
    from feedback.vote_origins import vote_choice_problems

    votes = request.GET.get("votes") or "human"
    text = request.GET.get("ai_weight", "").strip()
    try:
        ai_weight = float(text) if text else 1.0
    except ValueError:
        ai_weight = float("nan")
    problems = vote_choice_problems(votes, ai_weight, ai_weight_given=bool(text))
    return votes, ai_weight, "; ".join(f"{name}: {message}" for name, message in problems.items())


def _win_rate_matrix(board) -> list[dict]:
    """Rows in leaderboard order: ``{"model", "cells": [{"opponent", "win_rate", "votes"} | None (itself)]}``;
    a pair with no votes has ``win_rate`` None and ``votes`` 0."""
    models = board.models
    return [
        {
            "model": a,
            "cells": [
                None if a == b else {
                    "opponent": b,
                    "win_rate": board.win_rate[a].get(b),
                    "votes": board.pair_votes[a].get(b, 0),
                }
                for b in models
            ],
        }
        for a in models
    ]

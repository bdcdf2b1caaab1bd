"""Admin pages for AI judges: the judge list with a registration form, one judge's page, and the
launcher of a judging job (its progress and counts are on the job's own page).

Every form is a plain POST; errors show next to their fields (400) and nothing is saved. A
judge's page shows the NAME of its key variable, never a key.
"""
from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_GET, require_http_methods

from config.wording import counted
from feedback import interface as feedback
from training.selectors import policy_checkpoint_names, reward_checkpoint_names
from training.views import _require_run_jobs

from . import selectors, services
from .forms import JudgeForm, JudgingForm
from .prompt_templates import templates_available


def _judge_form(data=None) -> JudgeForm:
    return JudgeForm(data, checkpoints=policy_checkpoint_names() + reward_checkpoint_names(),
                     templates=templates_available(), constitutions=selectors.constitution_refs())


def _errors(form, error: ValidationError) -> None:
    form.add_service_errors(error.message_dict if hasattr(error, "error_dict") else {"config": error.messages})


@login_required
@require_http_methods(["GET", "POST"])
def judge_list(request: HttpRequest) -> HttpResponse:
    """Admins: every judge version and recent judging jobs; POST registers a judge (or its next version)."""
    _require_run_jobs(request)
    form = _judge_form(request.POST if request.method == "POST" else None)
    status = 200
    if request.method == "POST":
        status = 400
        if form.is_valid():
            try:
                judge, created = services.judge_save(**form.save_kwargs(), created_by=request.user)
            except ValidationError as error:
                _errors(form, error)
            else:
                messages.success(request, f"Judge {judge.ref} {'registered' if created else 'unchanged: no new version'}.")
                return redirect("manage-judge-detail", pk=judge.pk)
    context = {"judges": selectors.judge_list(), "jobs": selectors.judging_jobs(), "form": form}
    return render(request, "training/judges.html", context, status=status)


@login_required
@require_GET
def judge_detail(request: HttpRequest, pk: int) -> HttpResponse:
    """Admins: one judge version's settings, its judging jobs, and how far it agrees with people."""
    _require_run_jobs(request)
    judge = get_object_or_404(selectors.judge_list(), pk=pk)
    context = {"judge": judge, "jobs": selectors.judging_jobs(judge=judge),
               "versions": selectors.judge_list().filter(name=judge.name),
               "against_people": selectors.judge_against_people(judge=judge)}
    return render(request, "training/judge_detail.html", context)


@login_required
@require_http_methods(["GET", "POST"])
def judge_launch(request: HttpRequest) -> HttpResponse:
    """Admins: launch a judging job; on success, the job's live page."""
    _require_run_jobs(request)
    choices = {"judges": selectors.judge_refs(), "campaigns": feedback.campaign_choices()}
    if request.method == "GET":
        initial = {"judge": request.GET["judge"]} if request.GET.get("judge") in choices["judges"] else {}
        return render(request, "training/judge_launch.html", {"form": JudgingForm(initial=initial, **choices)})
    form = JudgingForm(request.POST, **choices)
    if form.is_valid():
        try:
            job = services.judging_job_create(config=form.config(), created_by=request.user)
        except ValidationError as error:
            _errors(form, error)
        else:
            messages.success(request, f"Judging job {job.pk} queued over {counted(job.progress_total, 'comparison')}.")
            return redirect("manage-job-detail", pk=job.pk)
    return render(request, "training/judge_launch.html", {"form": form}, status=400)

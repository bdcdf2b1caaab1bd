"""Admin pages for evaluations: the list with a launch form, one evaluation's report (live while
it runs), its JSON and CSV downloads, and the one-click blind human campaign.

Each view renders the full page or, for an htmx poll of ``#evaluation-live``, that partial (286
once the run has finished). Every action works as a plain form POST.
"""
from __future__ import annotations

import csv
import io
import json

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.core.paginator import Paginator
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from feedback import interface as feedback

from .. import selectors as training_selectors
from ..views import STOP_POLLING, _require_run_jobs
from . import flow, selectors, services
from .forms import CampaignForm, EvaluationForm


def _form(data=None) -> EvaluationForm:
    return EvaluationForm(data, eval_sets=feedback.eval_set_choices(),
                          policies=training_selectors.policy_checkpoint_names(),
                          reward_models=training_selectors.reward_checkpoint_names())


@login_required
@require_http_methods(["GET", "POST"])
def evaluation_list(request: HttpRequest) -> HttpResponse:
    """Admins: evaluations, newest first, and the form that launches one (refusals by field, 400)."""
    _require_run_jobs(request)
    form = _form(request.POST if request.method == "POST" else None)
    if request.method == "POST" and form.is_valid():
        try:
            run = services.evaluation_run_create(**form.service_arguments(), created_by=request.user)
        except ValidationError as error:
            form.add_service_errors(error.message_dict)
        else:
            messages.success(request, f"Evaluation {run.pk} queued: generation job {run.generation_job_id}.")
            return redirect("manage-evaluation-detail", pk=run.pk)
    page = Paginator(selectors.evaluation_list(), 50).get_page(request.GET.get("page"))
    status = 400 if request.method == "POST" else 200
    return render(request, "training/evaluations.html", {"page": page, "form": form}, status=status)


@login_required
@require_GET
def evaluation_detail(request: HttpRequest, pk: int) -> HttpResponse:
    """Admins: one evaluation's progress, then its report (overall and per category, win/tie/loss
    with intervals, length-controlled win rate, lengths, refusals, top wins and losses, parent and
    base, human and judge win rates)."""
    _require_run_jobs(request)
    run = get_object_or_404(selectors.evaluation_list(), pk=pk)
    context = {"run": run, "report": selectors.evaluation_report(run), "campaign_form": CampaignForm(),
               "campaign_name": feedback.campaign_name(campaign_id=run.campaign_id) if run.campaign_id else None}
    if request.htmx and request.htmx.target == "evaluation-live":
        return render(request, "training/evaluation_detail.html#live", context,
                      status=STOP_POLLING if run.is_finished else 200)
    return render(request, "training/evaluation_detail.html", context)


@login_required
@require_GET
def evaluation_download(request: HttpRequest, pk: int, fmt: str) -> HttpResponse:
    """Admins: the report as ``evaluation-<id>.json`` or ``evaluation-<id>.csv`` (one table,
    ``selectors.CSV_HEADER``)."""
    _require_run_jobs(request)
    if fmt not in ("json", "csv"):
        raise Http404("the report downloads as .json or .csv")
    run = get_object_or_404(selectors.evaluation_list(), pk=pk)
    report = selectors.evaluation_report(run)
    if fmt == "json":
        response = HttpResponse(json.dumps(report, indent=2), content_type="application/json")
    else:
        buffer = io.StringIO()
        csv.writer(buffer).writerows(selectors.report_csv_rows(report))
        response = HttpResponse(buffer.getvalue(), content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="evaluation-{run.pk}.{fmt}"'
    return response


@login_required
@require_POST
def evaluation_campaign(request: HttpRequest, pk: int) -> HttpResponse:
    """Admins: turn a sample of the eval set into a blind human campaign (one click)."""
    _require_run_jobs(request)
    run = get_object_or_404(selectors.evaluation_list(), pk=pk)
    form = CampaignForm(request.POST)
    if not form.is_valid():
        for errors in form.errors.values():
            for text in errors:
                messages.error(request, f"No campaign made: {text}")
        return redirect("manage-evaluation-detail", pk=run.pk)
    try:
        run = services.evaluation_campaign_create(run=run, sample_size=form.cleaned_data["sample_size"],
                                                  created_by=request.user)
    except ValidationError as error:
        for text in error.messages:
            messages.error(request, f"No campaign made: {text}")
    else:
        messages.success(request, f"Campaign {run.campaign_id} is open to the annotators.")
    return redirect("manage-evaluation-detail", pk=run.pk)


@login_required
@require_POST
def evaluation_cancel(request: HttpRequest, pk: int) -> HttpResponse:
    """Admins: stop the running step; the run ends cancelled, keeping the answers already written."""
    _require_run_jobs(request)
    run = flow.evaluation_cancel(run=get_object_or_404(selectors.evaluation_list(), pk=pk))
    messages.success(request, f"Evaluation {run.pk}: {'cancelled' if run.is_finished else 'stopping after its batch'}.")
    return redirect("manage-evaluation-detail", pk=run.pk)

"""``/manage/cai/``: launch a Constitutional AI critique-revise job from the browser."""
from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_http_methods

from config.wording import counted
from feedback import interface as feedback
from training import selectors
from training.judges.models import Constitution
from training.views import _require_run_jobs

from .forms import CaiForm
from .services import cai_job_create


@login_required
@require_http_methods(["GET", "POST"])
def cai_launch(request: HttpRequest) -> HttpResponse:
    """Admins: queue a critique-revise job; errors show next to their fields (400) and nothing is queued."""
    _require_run_jobs(request)
    choices = {"checkpoint_names": selectors.policy_checkpoint_names(),
               "constitutions": [c.ref for c in Constitution.objects.order_by("name", "-version")],
               "campaigns": feedback.campaign_choices()}
    if request.method == "GET":
        return render(request, "training/cai_launch.html", {"form": CaiForm(**choices)})
    form = CaiForm(request.POST, **choices)
    if form.is_valid():
        try:
            job = cai_job_create(config=form.config(), created_by=request.user)
        except ValidationError as error:
            form.add_service_errors(error.message_dict if hasattr(error, "error_dict") else {"config": error.messages})
        else:
            messages.success(request, f"Critique-revise job {job.pk} queued over {counted(job.progress_total, 'response')}.")
            return redirect("manage-job-detail", pk=job.pk)
    return render(request, "training/cai_launch.html", {"form": form}, status=400)

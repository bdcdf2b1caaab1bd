"""Admins' personal-data review page, ``/manage/governance/findings/``: the latest scan's progress
(polled with htmx while it runs; 286 once finished), a button to start a scan, and the findings
with filters (status, detector, row). Each finding's row can be marked clean or redacted (plain
form posts that redirect back; the redirect keeps the filters)."""
from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from config.proxy import client_ip_address

from . import scan as scan_services
from .forms import FindingFilterForm
from .scan_models import PersonalDataFinding, PersonalDataScan
from .views import require_admin

STOP_POLLING = 286
TEMPLATE = "feedback/governance_findings.html"


def findings_filtered(data) -> tuple[FindingFilterForm, object]:
    """The filter form (status ``open`` unless given) and the findings it selects."""
    data = data.copy()
    data.setdefault("status", "open")
    form = FindingFilterForm(data)
    findings = PersonalDataFinding.objects.all()
    if form.is_valid():
        for name in ("status", "detector", "row_kind"):
            if form.cleaned_data[name]:
                findings = findings.filter(**{name: form.cleaned_data[name]})
    return form, findings


@login_required
@require_GET
def manage_findings(request: HttpRequest) -> HttpResponse:
    """The review page; for htmx polling of the scan box, only that part."""
    require_admin(request)
    latest = PersonalDataScan.objects.first()
    if request.htmx and request.htmx.target == "pd-scan":
        return render(request, f"{TEMPLATE}#scan", {"scan": latest}, status=STOP_POLLING if latest is None or latest.finished else 200)
    form, findings = findings_filtered(request.GET)
    page = Paginator(findings, 100).get_page(request.GET.get("page"))
    query = request.GET.copy()
    query.pop("page", None)
    return render(request, TEMPLATE, {"form": form, "page": page, "scan": latest, "query": query.urlencode()})


@login_required
@require_POST
def manage_scan(request: HttpRequest) -> HttpResponse:
    """Queue a scan of every row."""
    require_admin(request)
    scan = scan_services.personal_data_scan_start(user=request.user)
    messages.success(request, f"Personal-data scan {scan.pk} queued.")
    return redirect("manage-findings")


@login_required
@require_http_methods(["POST"])
def manage_finding(request: HttpRequest, pk: int) -> HttpResponse:
    """``action=clean``: mark the finding's row clean; ``action=redact``: redact the row."""
    require_admin(request)
    finding = get_object_or_404(PersonalDataFinding, pk=pk)
    action = request.POST.get("action")
    kwargs = {"row_kind": finding.row_kind, "row_id": finding.row_id, "user": request.user,
              "remote_addr": client_ip_address(request)}
    try:
        if action == "clean":
            count = scan_services.row_mark_clean(**kwargs)
            messages.success(request, f"{finding.row_kind} {finding.row_id}: {count} findings marked clean.")
        elif action == "redact":
            count = scan_services.row_redact(**kwargs)
            messages.success(request, f"{finding.row_kind} {finding.row_id}: {count} findings redacted.")
        else:
            messages.error(request, "Choose an action: clean or redact.")
    except ValidationError as error:
        messages.error(request, " ".join(error.messages))
    back = request.POST.get("next", "")
    return redirect(reverse("manage-findings") + (f"?{back}" if back else ""))

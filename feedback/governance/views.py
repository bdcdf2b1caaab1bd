"""Admins' governance pages (thin: parse, call one service or selector, render):

- ``/manage/governance/policies/``: every data-use policy, and a form to add one;
  ``/manage/governance/policies/<id>/``: edit (POST) or delete (POST ``delete``) one.
- ``/manage/governance/audit/``: the audit trail with filters; ``?format=csv`` downloads it.
"""
from __future__ import annotations

import csv

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse, StreamingHttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_GET, require_http_methods

from config.proxy import client_ip_address
from feedback.roles import is_feedback_admin

from . import services
from .audit import audit_csv_rows, audit_events
from .forms import AuditFilterForm, DataPolicyForm
from .models import DataPolicy


def require_admin(request: HttpRequest) -> None:
    if not is_feedback_admin(request.user):
        raise PermissionDenied("Only admins may manage data governance.")


def _form_errors(form, error: ValidationError) -> None:
    for field, texts in error.message_dict.items():
        form.add_error(field if field in form.fields else None, texts)


def _policies_page(request: HttpRequest, form: DataPolicyForm, status: int = 200) -> HttpResponse:
    policies = DataPolicy.objects.select_related("import_job", "campaign", "updated_by")
    return render(request, "feedback/governance_policies.html", {"policies": policies, "form": form}, status=status)


@login_required
@require_http_methods(["GET", "POST"])
def manage_policies(request: HttpRequest) -> HttpResponse:
    """GET: the policies and the add form. POST: add one (400 with field errors on bad input)."""
    require_admin(request)
    if request.method == "GET":
        return _policies_page(request, DataPolicyForm())
    form = DataPolicyForm(request.POST)
    if form.is_valid():
        try:
            policy = services.data_policy_save(values=form.values(), user=request.user, remote_addr=client_ip_address(request))
        except ValidationError as error:
            _form_errors(form, error)
        else:
            messages.success(request, f"Policy for {policy.label} saved.")
            return redirect("manage-policies")
    return _policies_page(request, form, status=400)


@login_required
@require_http_methods(["GET", "POST"])
def manage_policy(request: HttpRequest, pk: int) -> HttpResponse:
    """GET: one policy's form. POST: save it, or delete it when ``delete`` is posted."""
    require_admin(request)
    policy = get_object_or_404(DataPolicy, pk=pk)
    if request.method == "POST" and "delete" in request.POST:
        label = policy.label
        services.data_policy_delete(policy=policy, user=request.user, remote_addr=client_ip_address(request))
        messages.success(request, f"Policy for {label} deleted.")
        return redirect("manage-policies")
    form = DataPolicyForm(request.POST or None, instance=DataPolicy.objects.get(pk=pk))
    if request.method == "POST":
        if form.is_valid():
            try:
                services.data_policy_save(values=form.values(), policy=policy, user=request.user,
                                          remote_addr=client_ip_address(request))
            except ValidationError as error:
                _form_errors(form, error)
            else:
                messages.success(request, f"Policy for {policy.label} saved.")
                return redirect("manage-policies")
        return render(request, "feedback/governance_policy.html", {"policy": policy, "form": form}, status=400)
    return render(request, "feedback/governance_policy.html", {"policy": policy, "form": form})


@login_required
@require_GET
def manage_audit(request: HttpRequest) -> HttpResponse:
    """The audit trail, newest first, filtered by the form's fields; ``format=csv``: all matching rows as CSV."""
    require_admin(request)
    form = AuditFilterForm(request.GET or None)
    filters = form.cleaned_data if form.is_valid() else {}
    events = audit_events(filters=filters)
    if request.GET.get("format") == "csv":
        class Echo:
            def write(self, value):
                return value

        writer = csv.writer(Echo())
        response = StreamingHttpResponse((writer.writerow(row) for row in audit_csv_rows(events)), content_type="text/csv")
        response["Content-Disposition"] = 'attachment; filename="audit.csv"'
        return response
    page = Paginator(events, 100).get_page(request.GET.get("page"))
    query = request.GET.copy()
    query.pop("page", None)
    return render(request, "feedback/governance_audit.html", {"form": form, "page": page, "query": query.urlencode()})

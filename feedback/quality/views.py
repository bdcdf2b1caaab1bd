"""Admins' page of the annotators' flags (items skipped with a reason): ``/manage/flags/``."""
from __future__ import annotations

from django import forms
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_GET

from feedback.models import Campaign, SkipReason
from feedback.roles import is_feedback_admin

from . import flags as flag_reads

PAGE_SIZE = 50


class FlagFilterForm(forms.Form):
    """The flags page's filters: a campaign and a reason (both optional)."""

    campaign = forms.ModelChoiceField(queryset=Campaign.objects.all(), required=False, empty_label="any campaign")
    reason = forms.ChoiceField(choices=[("", "any reason"), *SkipReason.choices], required=False)


@login_required
@require_GET
def manage_flags(request: HttpRequest) -> HttpResponse:
    """Admins: the items annotators flagged (skipped with a reason): counts per reason per campaign,
    then each flag with its reason, note, annotator, campaign and a link to the comparison; filtered
    by campaign and reason, 50 to a page. An htmx request for ``#flag-results`` gets that part only."""
    if not is_feedback_admin(request.user):
        raise PermissionDenied("Your account does not have this role.")
    form = FlagFilterForm(request.GET or None)
    valid = form.is_valid() or not request.GET
    filters = form.cleaned_data if form.is_bound and valid else {}
    flags = flag_reads.flag_list(filters=filters) if valid else flag_reads.flag_list().none()
    context = {
        "form": form,
        "reasons": SkipReason.choices,
        "counts": flag_reads.flag_counts(filters=filters) if valid else [],
        "page": Paginator(flags, PAGE_SIZE).get_page(request.GET.get("page")),
    }
    template = "feedback/manage_flags.html"
    if request.htmx and request.htmx.target == "flag-results":
        template += "#results"
    return render(request, template, context, status=200 if valid else 400)

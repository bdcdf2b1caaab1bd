"""Annotator pages of campaigns: the start page (their active campaigns with progress) and a
campaign's guidelines (read them, say so). Thin: parse, call one selector or service, render."""
from __future__ import annotations

from django import forms
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_GET, require_http_methods

from feedback.errors import NotInPool
from feedback.quality.selectors import annotator_quality
from feedback.roles import is_annotator
from feedback.views import _render_item, _require, annotate_urls

from .guidelines import guidelines_acknowledge, guidelines_latest
from .models import Campaign
from .pool import campaign_pool_has, campaigns_for_annotator


class AcknowledgeForm(forms.Form):
    """"I have read these": the version read, and where to go back to (this campaign's annotate
    page, the all-campaigns page, or the start page)."""

    version = forms.IntegerField(min_value=1, required=False)
    next = forms.ChoiceField(choices=[("campaign", "campaign"), ("all", "all"), ("start", "start")], required=False)


@login_required
@require_GET
def campaign_start(request: HttpRequest) -> HttpResponse:
    """Annotators: their active campaigns, highest priority first, each with their votes in it,
    what is still open to them, the campaign's votes against its target, and a button to start; with
    "Your quality" from the stored reports (their own row only: ``quality.selectors.annotator_quality``)."""
    _require(request, is_annotator)
    cards = campaigns_for_annotator(user=request.user)
    quality = annotator_quality(user=request.user, campaigns=[card.campaign for card in cards])
    return render(request, "feedback/campaign_start.html", {"cards": cards, "quality": quality})


@login_required
@require_http_methods(["GET", "POST"])
def campaign_guidelines(request: HttpRequest, slug: str) -> HttpResponse:
    """A campaign's latest guidelines (GET, the page without JavaScript) and "I have read these"
    (POST: stores the acknowledgement). An htmx post from the annotate page answers with the item,
    now votable; a plain post goes back to ``next``. 403 outside the campaign's pool."""
    _require(request, is_annotator)
    campaign = get_object_or_404(Campaign, slug=slug)
    if request.method == "GET":
        if not campaign_pool_has(campaign=campaign, user=request.user):
            raise PermissionDenied(f"You are not in the pool of campaign {campaign.name!r}.")
        guidelines = guidelines_latest(campaign=campaign, annotator=request.user)
        context = {"campaign": campaign, "guidelines": guidelines}
        return render(request, "feedback/campaign_guidelines.html", context)
    form = AcknowledgeForm(request.POST)
    data = form.cleaned_data if form.is_valid() else {}
    back = data.get("next") or "campaign"
    scope = campaign if back == "campaign" else None
    try:
        guidelines_acknowledge(campaign=campaign, annotator=request.user, number=data.get("version"))
    except NotInPool as refusal:
        raise PermissionDenied(str(refusal)) from None
    except ValidationError as error:
        if request.htmx:
            return _render_item(request, campaign=scope, status=400, error=" ".join(error.messages))
        messages.error(request, " ".join(error.messages))
        return redirect(annotate_urls(scope)["page"])
    if request.htmx:
        return _render_item(request, campaign=scope)
    messages.success(request, f"Thank you: the guidelines of {campaign.name} are marked as read.")
    return redirect("annotate-campaigns" if back == "start" else annotate_urls(scope)["page"])

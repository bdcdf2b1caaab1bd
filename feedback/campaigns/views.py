"""The admins' campaign pages. Thin: parse, call one service or selector, render.

- ``/manage/campaigns/``: every campaign with its status and progress.
- ``/manage/campaigns/new/``: the create form (a draft; then its page).
- ``/manage/campaigns/<id>/``: progress (votes against the target, per annotator, rate, time
  left), the settings form, the guidelines editor with a rendered preview and every version, the
  add-comparisons-by-rules form, and activate / pause / close (with why activation is refused).

Every action is a plain form POST (redirect after success, the page again with 400 and the
reasons on failure) and also works with htmx: then the answer is the page's ``campaign`` partial,
swapped in place, with the outcome in its notice line.
"""
from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_http_methods, require_POST

from config.wording import counted
from feedback.roles import is_feedback_admin

from . import selectors, services
from feedback.quality.gold import gold_accuracy, gold_items_count, gold_pauses
from feedback.quality.gold_services import pause_lift

from .forms import CampaignForm, GuidelinesForm, RulesForm
from .models import Campaign
from .progress import campaign_progress, campaigns_progress

LIST_TEMPLATE = "feedback/manage_campaigns.html"
FORM_TEMPLATE = "feedback/manage_campaign_form.html"
DETAIL_TEMPLATE = "feedback/manage_campaign_detail.html"


def _require_admin(request: HttpRequest) -> None:
    if not is_feedback_admin(request.user):
        raise PermissionDenied("Only admins may manage campaigns.")


@login_required
@require_http_methods(["GET"])
def manage_campaigns(request: HttpRequest) -> HttpResponse:
    """Admins: every campaign, highest priority first, with status, pool and progress."""
    _require_admin(request)
    campaigns = list(selectors.campaign_list())
    progress = campaigns_progress(campaigns=campaigns)
    rows = [(campaign, progress[campaign.pk]) for campaign in campaigns]
    return render(request, LIST_TEMPLATE, {"rows": rows})


@login_required
@require_http_methods(["GET", "POST"])
def manage_campaign_create(request: HttpRequest) -> HttpResponse:
    """Admins: create a draft campaign (errors next to their fields, 400, nothing saved)."""
    _require_admin(request)
    form = CampaignForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            campaign = services.campaign_create(values=form.values(), created_by=request.user)
        except ValidationError as error:
            form.add_service_errors(error.message_dict)
        else:
            messages.success(request, f"Campaign {campaign.name} created as a draft.")
            return redirect("manage-campaign-detail", pk=campaign.pk)
    return render(request, FORM_TEMPLATE, {"form": form}, status=400 if request.method == "POST" else 200)


def _detail_context(campaign: Campaign, **forms) -> dict:
    versions = list(selectors.guideline_versions(campaign=campaign))
    return {
        "campaign": campaign,
        "progress": campaign_progress(campaign=campaign),
        "pool_size": selectors.campaign_pool_size(campaign=campaign),
        "activation_problems": selectors.campaign_activation_problems(campaign=campaign),
        "versions": versions,
        "current": versions[0] if versions else None,
        "form": forms.get("form") or CampaignForm(campaign=campaign),
        "guidelines_form": forms.get("guidelines_form") or GuidelinesForm(initial={"text": versions[0].text if versions else ""}),
        "rules_form": forms.get("rules_form") or RulesForm(),
        "preview": forms.get("preview"),
        "notice": forms.get("notice", ""),
        "refusal": forms.get("refusal"),
        "gold_items": gold_items_count(campaign=campaign),
        "gold_accuracy": gold_accuracy(campaign=campaign),
        "gold_pauses": list(gold_pauses(campaign=campaign)),
    }


def _page(request: HttpRequest, campaign: Campaign, *, status: int = 200, **extra) -> HttpResponse:
    """The campaign's page, or its ``campaign`` partial for an htmx request."""
    template = f"{DETAIL_TEMPLATE}#campaign" if request.htmx else DETAIL_TEMPLATE
    return render(request, template, _detail_context(campaign, **extra), status=status)


def _answer(request: HttpRequest, campaign: Campaign, *, notice: str = "", status: int = 200, **forms) -> HttpResponse:
    """After an action: success without htmx redirects to the page (the notice as a message);
    otherwise the page (htmx: its ``campaign`` partial) with the notice or the errors."""
    if status == 200 and not request.htmx:
        messages.success(request, notice)
        return redirect("manage-campaign-detail", pk=campaign.pk)
    campaign.refresh_from_db()
    return _page(request, campaign, status=status, notice=notice, **forms)


@login_required
@require_http_methods(["GET", "POST"])
def manage_campaign_detail(request: HttpRequest, pk: int) -> HttpResponse:
    """Admins: the campaign's page (GET); POST saves its settings form."""
    _require_admin(request)
    campaign = get_object_or_404(Campaign, pk=pk)
    if request.method == "GET":
        return _page(request, campaign)
    form = CampaignForm(request.POST)
    if form.is_valid():
        try:
            services.campaign_update(campaign=campaign, values=form.values())
        except ValidationError as error:
            form.add_service_errors(error.message_dict)
        else:
            return _answer(request, campaign, notice="Settings saved.")
    return _answer(request, campaign, status=400, form=form, notice="Nothing was saved: fix the settings marked below.")


@login_required
@require_POST
def manage_campaign_guidelines(request: HttpRequest, pk: int) -> HttpResponse:
    """Admins: save the guidelines as a new version, or (button ``preview``) show the text rendered
    as annotators will see it, without saving."""
    _require_admin(request)
    campaign = get_object_or_404(Campaign, pk=pk)
    form = GuidelinesForm(request.POST)
    if not form.is_valid():
        return _answer(request, campaign, status=400, guidelines_form=form, notice="The guidelines were not saved.")
    text = form.cleaned_data["text"]
    if "preview" in request.POST:
        return _page(request, campaign, guidelines_form=form, preview=text, notice="Preview only: not saved.")
    try:
        version = services.guidelines_edit(campaign=campaign, text=text, created_by=request.user)
    except ValidationError as error:
        form.add_service_errors(error.message_dict)
        return _answer(request, campaign, status=400, guidelines_form=form, notice="The guidelines were not saved.")
    return _answer(request, campaign, notice=f"Guidelines version {version.number} is current.")


@login_required
@require_POST
def manage_campaign_comparisons(request: HttpRequest, pk: int) -> HttpResponse:
    """Admins: move the comparisons matching the rules form into the campaign."""
    _require_admin(request)
    campaign = get_object_or_404(Campaign, pk=pk)
    form = RulesForm(request.POST)
    if form.is_valid():
        try:
            moved = services.campaign_comparisons_add(campaign=campaign, rules=form.rules())
        except ValidationError as error:
            form.add_service_errors(error.message_dict)
        else:
            return _answer(request, campaign, notice=f"{counted(moved, 'comparison')} moved into this campaign.")
    return _answer(request, campaign, status=400, rules_form=form, notice="No comparison was moved.")


@login_required
@require_POST
def manage_campaign_lift_pause(request: HttpRequest, pk: int) -> HttpResponse:
    """Admins: lift the gold pause of the annotator named by ``username``: they are served the
    campaign again."""
    _require_admin(request)
    campaign = get_object_or_404(Campaign, pk=pk)
    username = request.POST.get("username", "")
    try:
        lifted = pause_lift(campaign=campaign, username=username, lifted_by=request.user)
    except ValidationError as error:
        reason = "; ".join(error.messages)
        return _answer(request, campaign, status=400, refusal=[reason], notice=f"No pause was lifted: {reason}.")
    if not lifted:
        reason = f"{username} is not paused here"
        return _answer(request, campaign, status=400, refusal=[reason], notice=f"No pause was lifted: {reason}.")
    return _answer(request, campaign, notice=f"{username} may annotate in this campaign again.")


ACTIONS = {
    "activate": (services.campaign_activate, "Campaign activated: its pool is served its comparisons."),
    "pause": (services.campaign_pause, "Campaign paused: nothing more is served until it is activated."),
    "close": (services.campaign_close, "Campaign closed"),
}


@login_required
@require_POST
def manage_campaign_status(request: HttpRequest, pk: int, action: str) -> HttpResponse:
    """Admins: activate, pause or close the campaign; a refusal says why (400)."""
    _require_admin(request)
    campaign = get_object_or_404(Campaign, pk=pk)
    service, notice = ACTIONS[action]
    try:
        outcome = service(campaign=campaign)
    except ValidationError as error:
        reasons = [message for messages_ in error.message_dict.values() for message in messages_]
        return _answer(request, campaign, status=400, refusal=reasons, notice=f"Not {action}d: " + "; ".join(reasons) + ".")
    if action == "close":
        notice = f"{notice}: {counted(outcome, 'live lease')} released."
    return _answer(request, campaign, notice=notice)

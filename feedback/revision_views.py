"""Browser pages for changing one's own votes: "Undo" on the annotate page and the history page
(recent votes, texts by the sides that annotator saw, revise or undo while the comparison is open).
Plain form posts (redirect after POST); an htmx undo from the annotate page swaps the item in."""
from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET, require_POST

from . import revisions, selectors
from .errors import FeedbackError
from .forms import VoteReviseForm, VoteUndoForm
from .roles import is_annotator
from .views import UNDONE_SESSION_KEY, _annotator_page, _campaign, _render_item, _require, annotate_urls

HISTORY_TEMPLATE = "feedback/vote_history.html"
SAID = {"left": "left is better", "right": "right is better", "tie": "tie", "both_bad": "both bad"}


@_annotator_page
@require_POST
def annotate_undo(request: HttpRequest, slug: str | None = None) -> HttpResponse:
    """Undo one of the annotator's own votes (``vote``); the item comes back with what the vote said.

    From the annotate page (``next`` empty or ``annotate``) an htmx post swaps the item in; a plain
    post keeps the vote's inputs in the session for the next page load and redirects. From the
    history page (``next=history``) it redirects back there. A refusal (closed comparison, not
    theirs) is shown as a message, with its HTTP status for htmx. An expired session answers an htmx
    undo in place (401, "log in again"), never with the login page swapped into the item.
    Posted from ``/annotate/<slug>/``, the page it goes back to is that campaign's.
    """
    campaign = _campaign(slug)
    form = VoteUndoForm(request.POST)
    to_history = form.data.get("next") == "history"
    back = "vote-history" if to_history else annotate_urls(campaign)["page"]
    if not form.is_valid():
        if request.htmx:
            return _render_item(request, campaign=campaign, status=400, error="Nothing to undo: the form named no vote.")
        messages.error(request, "Nothing to undo: the form named no vote.")
        return redirect(back)
    try:
        undone = revisions.vote_undo(annotator=request.user, vote_id=form.cleaned_data["vote"])
    except FeedbackError as error:
        if request.htmx and not to_history:
            return _render_item(request, campaign=campaign, status=error.status, error=str(error))
        messages.error(request, str(error))
        return redirect(back)
    said = SAID.get(undone.inputs["choice"], undone.inputs["choice"])
    if request.htmx and not to_history:
        return _render_item(request, campaign=campaign, kept=undone.inputs)
    messages.success(request, f"Vote undone (you had chosen {said}); the comparison is yours to vote on again.")
    if not to_history:
        request.session[UNDONE_SESSION_KEY] = undone.inputs
    return redirect(back)


@login_required
@require_GET
def vote_history(request: HttpRequest) -> HttpResponse:
    """The annotator's recent votes (``selectors.HISTORY_LENGTH``, newest first), each with the
    prompt and both texts on the sides they saw, what they chose, and, while the comparison is
    open, forms to revise or undo it."""
    _require(request, is_annotator)
    context = {"entries": selectors.vote_history(annotator=request.user), "said": SAID}
    return render(request, HISTORY_TEMPLATE, context)


@login_required
@require_POST
def vote_revise(request: HttpRequest, vote_id: int) -> HttpResponse:
    """Revise one of the annotator's own votes (choice, strength, reason) and go back to the history."""
    _require(request, is_annotator)
    form = VoteReviseForm(request.POST)
    if not form.is_valid():
        problems = " ".join(f"{field}: {' '.join(errs)}" for field, errs in form.errors.items())
        messages.error(request, f"The vote was not changed. {problems}")
        return redirect("vote-history")
    changes = dict(form.cleaned_data)
    if changes["choice"] in ("tie", "both_bad"):
        changes["strength"] = ""  # a tie or both-bad has no strength, whatever radio was left on
    try:
        _, change = revisions.vote_revise(annotator=request.user, vote_id=vote_id, changes=changes)
    except ValidationError as error:
        problems = " ".join(f"{field}: {' '.join(errs)}" for field, errs in error.message_dict.items())
        messages.error(request, f"The vote was not changed. {problems}")
        return redirect("vote-history")
    except FeedbackError as error:
        messages.error(request, str(error))
        return redirect("vote-history")
    messages.success(request, "Vote revised." if change else "Nothing changed.")
    return redirect("vote-history")

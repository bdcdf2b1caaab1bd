"""Browser pages: the annotator's comparison page, the admins' comparison list and preference import.

Each view renders the full page, or for an htmx request the named partial of the same
template; every action also works as a plain form POST.
"""
from __future__ import annotations

from functools import wraps

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.contrib.auth.views import redirect_to_login
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_POST

from . import import_jobs, imports, selectors, services
from .campaigns.guidelines import guidelines_latest
from .campaigns.pool import campaigns_in_pool
from .campaigns.questions import Questions
from .errors import FeedbackError, ItemChanged, NotInPool
from .forms import ComparisonFilterForm, PreferenceImportForm, SkipForm, VoteForm
from .jsonl import JSONLFormatError
from .models import Campaign, Choice, ImportJob, SkipReason, Vote
from .identity import selectors as identity_selectors
from .quality import flags as quality_flags
from .quality import gold_services
from .roles import is_annotator, is_feedback_admin
from .vote_wording import vote_difference

ANNOTATE_TEMPLATE = "feedback/annotate.html"
IMPORT_UPLOAD_MAX_BYTES = imports.UPLOAD_MAX_BYTES  # larger files: manage.py import_preferences


def _require(request: HttpRequest, check) -> None:
    if not check(request.user):
        raise PermissionDenied("Your account does not have this role.")


@login_required
def home(request: HttpRequest) -> HttpResponse:
    """Send admins to the comparison list and annotators to their queue, or, when they work in
    more than one active campaign, to their campaigns' start page to choose."""
    if is_feedback_admin(request.user):
        return redirect("manage-comparisons")
    if campaigns_in_pool(user=request.user)[:2].count() > 1:
        return redirect("annotate-campaigns")
    return redirect("annotate")


UNDONE_SESSION_KEY = "arbiter_undone_inputs"
KEPT_FIELDS = ("rationale", "demonstration", "strength", *Vote.ASPECTS)


ANNOTATE_ACTIONS = {"page": "", "vote": "-vote", "skip": "-skip", "undo": "-undo"}
# What an empty all-campaigns page would ask (it shows no form): every question, as before campaigns.
DEFAULT_QUESTIONS = Questions(True, tuple((n, f"More {n.removesuffix('ness')}") for n in Vote.ASPECTS), "optional", True)


def _campaign(slug: str | None) -> Campaign | None:
    """The campaign named by the URL's slug (404 when there is none), or None for the all-campaigns page."""
    return get_object_or_404(Campaign, slug=slug) if slug else None


def annotate_urls(campaign: Campaign | None) -> dict[str, str]:
    """Where the annotate page's forms post: the campaign's own addresses, or the all-campaigns ones."""
    if campaign is None:
        return {name: reverse(f"annotate{suffix}") for name, suffix in ANNOTATE_ACTIONS.items()}
    return {name: reverse(f"annotate-campaign{suffix}", args=[campaign.slug]) for name, suffix in ANNOTATE_ACTIONS.items()}


def _item_context(
    request: HttpRequest, *, campaign: Campaign | None = None, error: str = "", form_errors=None, kept: dict | None = None,
    gold_note: str = "",
) -> dict:
    """``kept``: what the annotator typed or picked in a vote that was not saved (``KEPT_FIELDS``),
    put back in the form so nothing they wrote is lost (the error says which comparison is shown).
    ``campaign``: claim inside that campaign only (raises ``NotInPool``); the page then shows its
    questions and guidelines even when nothing is left to judge. ``gold_note``: after a vote on a
    gold item of a campaign with ``gold_feedback``, how it compared with the expected answer."""
    assignment = services.assignment_claim(annotator=request.user, campaign=campaign)
    display = selectors.assignment_display(assignment=assignment) if assignment else None
    shown = display.campaign if display else campaign
    if display:
        questions, guidelines = display.questions, display.guidelines
    elif campaign is not None:
        questions = selectors.campaign_questions(campaign)
        guidelines = guidelines_latest(campaign=campaign, annotator=request.user)
    else:
        questions, guidelines = DEFAULT_QUESTIONS, None
    kept = kept or {}
    return {
        # Nothing to show on the all-campaigns page: is it because no active campaign takes them?
        # (one query, on the empty page only)
        "no_campaign": display is None and campaign is None and not campaigns_in_pool(user=request.user).exists(),
        "display": display,
        "campaign": shown,
        "scoped": campaign,
        "questions": questions,
        "guidelines": guidelines,
        "urls": annotate_urls(campaign),
        "last_vote": selectors.vote_last_undoable(annotator=request.user),
        "undone": kept.get("choice", ""),
        "progress": selectors.annotator_progress(annotator=request.user, campaign=campaign),
        "error": error,
        "gold_note": gold_note,
        "form_errors": form_errors or {},
        "kept": kept,
        "demonstration": kept.get("demonstration", ""),
        "lease_seconds": settings.ARBITER_LEASE_SECONDS,
        "skip_reasons": SkipReason.choices,
        "max_skip_note": services.MAX_SKIP_NOTE_CHARS,
    }


def _render_item(request: HttpRequest, status: int = 200, **kwargs) -> HttpResponse:
    """The annotate page (or its ``item`` partial for htmx). A campaign that serves this annotator
    nothing (not active, not in its pool) answers 403 with the reason: the whole page, or for htmx
    the reason said in place."""
    template = f"{ANNOTATE_TEMPLATE}#item" if request.htmx else ANNOTATE_TEMPLATE
    try:
        context = _item_context(request, **kwargs)
    except NotInPool as refusal:
        if request.htmx:
            return _refusal_in_place(request, status=refusal.status, message=str(refusal))
        raise PermissionDenied(str(refusal)) from None
    return render(request, template, context, status=status)


SESSION_EXPIRED = "Not saved: log in again."
ROLE_LOST = "Not saved: your account can no longer annotate."


def _refusal_in_place(request: HttpRequest, *, status: int, message: str, login_url: str = "") -> HttpResponse:
    """For an htmx request: ``message`` swapped into the item's ``#vote-refusal`` slot only, so the
    comparison and everything typed into its form stay on screen (annotate.js keeps a copy of the
    form in sessionStorage, which comes back after logging in)."""
    response = render(request, "feedback/_vote_refusal.html", {"message": message, "login_url": login_url}, status=status)
    response["HX-Retarget"] = "#vote-refusal"
    response["HX-Reswap"] = "innerHTML"
    return response


def _annotator_page(view):
    """``login_required`` and the annotator role for the annotator page and its actions.

    A visitor whose session expired is sent to the login page with ``next`` = the annotator page
    (never a POST-only action's URL, which would answer 405 after logging in); an htmx request gets,
    in place of the login page swapped into the item, 401 with "Not saved: log in again" and a link
    (a request from an account that lost the annotator role: 403, said the same way).
    """
    @wraps(view)
    def wrapped(request: HttpRequest, *args, **kwargs) -> HttpResponse:
        if not request.user.is_authenticated:
            slug = kwargs.get("slug")
            to_login = redirect_to_login(reverse("annotate-campaign", args=[slug]) if slug else reverse("annotate"))
            if request.htmx:
                return _refusal_in_place(request, status=401, message=SESSION_EXPIRED, login_url=to_login["Location"])
            return to_login
        if request.htmx and not is_annotator(request.user):
            return _refusal_in_place(request, status=403, message=ROLE_LOST)
        _require(request, is_annotator)
        return view(request, *args, **kwargs)

    return wrapped


@_annotator_page
@require_GET
def annotate(request: HttpRequest, slug: str | None = None) -> HttpResponse:
    """The annotator page: the current (or next) comparison, with the prompt and two responses.
    ``/annotate/``: from every active campaign whose pool holds the annotator, highest priority
    first; ``/annotate/<slug>/``: from that campaign only (403 with the reason when it is not
    active or the annotator is not in its pool)."""
    # An undo posted without htmx: what the vote said comes back in the form (feedback.revision_views).
    return _render_item(request, campaign=_campaign(slug), kept=request.session.pop(UNDONE_SESSION_KEY, None))


@_annotator_page
@require_POST
def annotate_vote(request: HttpRequest, slug: str | None = None) -> HttpResponse:
    """Store a vote for the item on screen (its token), then show the next comparison (htmx swap)
    or redirect to it (plain POST). A vote for an item no longer on screen is refused with 409; one
    that differs from the vote already stored on it says what differs. Every refusal (400, 403,
    409) puts back everything typed or picked (``KEPT_FIELDS``). Posted from ``/annotate/<slug>/``,
    the next comparison comes from that campaign."""
    campaign = _campaign(slug)
    form = VoteForm(request.POST)
    kept = {name: request.POST.get(name, "") for name in KEPT_FIELDS}
    if not form.is_valid():
        return _render_item(
            request, campaign=campaign, status=400, error="The vote was not saved.", form_errors=form.errors, kept=kept
        )
    data = form.cleaned_data
    try:
        vote, _ = services.vote_submit(
            annotator=request.user,
            item=data["item"],
            choice=data["choice"],
            strength=data["strength"],
            rationale=data["rationale"],
            aspects={aspect: data[aspect] for aspect in Vote.ASPECTS},
            ms_on_item=data["ms_on_item"],
            demonstration=data["demonstration"],
        )
    except ValidationError as error:
        return _render_item(
            request, campaign=campaign, status=400, error="The vote was not saved.", form_errors=error.message_dict,
            kept=kept,
        )
    except ItemChanged as error:  # a double click, a second tab, a page left open
        stored = selectors.vote_on_item(annotator=request.user, item=data["item"])
        if stored is not None:  # voted on already (another tab), differently: say how
            sent = {**kept, "choice": data["choice"]}
            message = (
                f"{vote_difference(stored, sent, Vote.ASPECTS)} Nothing was saved; to change that vote, use"
                " Your recent votes."
            )
        else:
            message = str(error)
        # What was typed and picked comes back, but it was meant for another comparison: say so.
        message += (
            " Your current comparison is shown, with what you typed and picked kept: check it fits this"
            " comparison before voting."
        )
        return _render_item(request, campaign=campaign, status=error.status, error=message, kept=kept)
    except FeedbackError as error:  # not assigned (403), lease expired, comparison retired
        return _render_item(
            request, campaign=campaign, status=error.status, error=f"{error} What you typed is kept.", kept=kept
        )
    # A gold item in a campaign with gold_feedback: say how the vote compared (on the next page).
    check = getattr(vote, "gold_check", None)
    gold_note = check.note() if check is not None else ""
    if request.htmx:
        return _render_item(request, campaign=campaign, gold_note=gold_note)
    messages.success(request, "Vote saved.")
    if gold_note:
        messages.info(request, gold_note, extra_tags="gold-note")
    return redirect(annotate_urls(campaign)["page"])


SKIP_KEPT_FIELDS = ("skip_reason", "skip_note")
_SKIP_FIELD_NAMES = {"skip_reason": "reason", "skip_note": "note"}  # the page's field names -> the service's


@_annotator_page
@require_POST
def annotate_skip(request: HttpRequest, slug: str | None = None) -> HttpResponse:
    """Skip the comparison on screen (its token); it is never served to this annotator again.
    Posted from ``/annotate/<slug>/``, the next comparison comes from that campaign.

    ``skip_reason`` (a ``SkipReason`` value) flags it for the admins, with ``skip_note`` (required
    for "other"). A bad reason or note is refused with 400 naming the field; the item stays on
    screen with everything typed kept and the reason chooser open.
    """
    campaign = _campaign(slug)
    form = SkipForm(request.POST)
    kept = {name: request.POST.get(name, "") for name in (*KEPT_FIELDS, *SKIP_KEPT_FIELDS)}
    if not form.is_valid():
        if "item" in form.errors:
            return _render_item(
                request, campaign=campaign, status=400, error="Nothing to skip: the form named no comparison."
            )
        errors = {_SKIP_FIELD_NAMES.get(field, field): messages for field, messages in form.errors.items()}
        return _render_item(request, campaign=campaign, status=400, error="Not skipped.", form_errors=errors, kept=kept)
    data = form.cleaned_data
    assignment = selectors.assignment_by_item(annotator=request.user, item=data["item"])
    try:
        if assignment is None:
            raise ItemChanged("Nothing to skip: that comparison is not one of yours.")
        services.assignment_skip(
            annotator=request.user, comparison_id=assignment.comparison_id,
            reason=data["skip_reason"], note=data["skip_note"],
        )
    except ValidationError as error:
        return _render_item(
            request, campaign=campaign, status=400, error="Not skipped.", form_errors=error.message_dict, kept=kept
        )
    except FeedbackError as error:
        return _render_item(request, campaign=campaign, status=error.status, error=str(error))
    if request.htmx:
        return _render_item(request, campaign=campaign)
    if data["skip_reason"]:
        messages.success(request, "Skipped and flagged for the admins.")
    return redirect(annotate_urls(campaign)["page"])


@login_required
@require_GET
def manage_comparisons(request: HttpRequest) -> HttpResponse:
    """Admins: every comparison with model names, status, vote counts (what its campaign counts:
    people's votes, plus AI votes where the campaign counts them, each shown) and reward margin;
    filters, an order (newest or least sure first) and pages."""
    _require(request, is_feedback_admin)
    form = ComparisonFilterForm(request.GET or None)
    filters = form.cleaned_data if form.is_valid() else {}
    queryset = selectors.comparisons_with_vote_origins(
        selectors.comparisons_with_reward_margin(selectors.comparison_list(user=request.user, filters=filters))
    )
    queryset = selectors.comparisons_order(queryset, order=filters.get("order", ""))
    page = Paginator(queryset, 50).get_page(request.GET.get("page"))
    template = "feedback/manage_comparisons.html"
    if request.htmx and request.htmx.target == "comparison-table":
        template += "#table"
    return render(request, template, {"form": form, "page": page})


@login_required
@require_GET
def manage_comparison_detail(request: HttpRequest, pk: int) -> HttpResponse:
    """Admins: one comparison with both completions, model names, gold answer, reward scores, the
    annotators' flags (skips with a reason), the identity patterns it matches, every vote, every change annotators made to their votes (undo, revise) and every demonstration
    (better response) written on it."""
    _require(request, is_feedback_admin)
    comparison = get_object_or_404(
        selectors.comparisons_with_vote_origins(
            selectors.comparisons_with_reward_margin(selectors.comparison_list(user=request.user))
        ), pk=pk,
    )
    votes = list(comparison.votes.select_related("annotator").order_by("created_at"))
    context = {
        "comparison": comparison,
        "votes": votes,
        "reward_scores": selectors.comparison_reward_scores(comparison=comparison),
        "demonstrations": selectors.comparison_demonstrations(comparison=comparison),
        "vote_changes": selectors.comparison_vote_changes(comparison=comparison),
        "flags": quality_flags.comparison_flags(comparison=comparison),
        "identity_patterns": identity_selectors.comparison_identity_patterns(comparison=comparison),
        "gold_choices": Choice.choices,
    }
    return render(request, "feedback/manage_comparison_detail.html", context)


@login_required
@require_POST
def manage_comparison_gold(request: HttpRequest, pk: int) -> HttpResponse:
    """Admins: set or clear the comparison's gold answer (``gold_choice``; ``""`` clears it). A plain
    post redirects to the comparison's page; htmx gets the form back with the outcome (400 on a bad value)."""
    _require(request, is_feedback_admin)
    comparison = get_object_or_404(selectors.comparison_list(user=request.user), pk=pk)
    try:
        comparison = gold_services.comparison_gold_set(comparison=comparison, gold_choice=request.POST.get("gold_choice", ""))
    except ValidationError as error:
        notice, status = "Not saved: gold answer " + "; ".join(error.messages), 400
    else:
        notice, status = f"Gold answer saved: {comparison.gold_choice or 'none'}.", 200
    if request.htmx:
        context = {"comparison": comparison, "gold_choices": Choice.choices, "gold_notice": notice, "gold_error": status != 200}
        return render(request, "feedback/manage_comparison_detail.html#gold", context, status=status)
    (messages.success if status == 200 else messages.error)(request, notice)
    return redirect("manage-comparison-detail", pk=comparison.pk)


@login_required
def manage_imports(request: HttpRequest) -> HttpResponse:
    """Admins: upload a preference file (TRL, HH-RLHF or Arena; up to ``IMPORT_UPLOAD_MAX_BYTES``)
    and import it inline (over ``ARBITER_IMPORT_INLINE_MAX_BYTES``: queued as a background job and
    redirected to its page), whole or not at all (rows that cannot be stored or are flagged fail the
    file unless "Skip refused rows" or, for flagged rows, "Import flagged rows" is ticked); shows
    the summary, or every problem with its line."""
    _require(request, is_feedback_admin)
    form = PreferenceImportForm(request.POST or None, request.FILES or None)
    context = {
        "form": form, "summary": None, "problems": None, "max_mb": IMPORT_UPLOAD_MAX_BYTES // (1024 * 1024),
        "inline_mb": round(import_jobs.inline_max_bytes() / (1024 * 1024), 1), "jobs": ImportJob.objects.all()[:10],
    }
    if request.method != "POST":
        return render(request, "feedback/manage_imports.html", context)
    if form.is_valid() and form.cleaned_data["file"].size > IMPORT_UPLOAD_MAX_BYTES:
        form.add_error("file", f"The file is over {context['max_mb']} MB; import it with manage.py import_preferences.")
    if form.is_valid():
        data = form.cleaned_data
        options = {
            "source": data["source"].strip() or None,
            "model_name": (data["model_name"].strip() or None) if data["format"] != "arena" else None,
            "split": data["split"] or None,
            "eval_fraction": 0.1 if data["eval_fraction"] is None else data["eval_fraction"],
            "skip_refused": data["skip_refused"],
            "allow_flagged": data["allow_flagged"],
        }
        if data["file"].size > import_jobs.inline_max_bytes():
            job = import_jobs.import_job_create(
                chunks=data["file"].chunks(), file_name=data["file"].name or "", format=data["format"],
                options=options, created_by=request.user,
            )
            return redirect("manage-import-job", pk=job.pk)
        try:
            context["summary"] = imports.preferences_import_upload(
                chunks=data["file"].chunks(), format=data["format"], **options
            )
        except JSONLFormatError as error:
            context["problems"] = str(error).splitlines()[1:]
            context["refused_only"] = isinstance(error, imports.RowsRefusedError)
            context["flagged"] = getattr(error, "flagged", None)
        except (OSError, ValueError) as error:
            form.add_error(None, str(error))
    failed = context["summary"] is None
    return render(request, "feedback/manage_imports.html", context, status=400 if failed else 200)


@login_required
def manage_import_job(request: HttpRequest, pk: int) -> HttpResponse:
    """Admins: a background import's status, then its summary or every problem (and the limit
    passed). The page polls while the job is queued or running; the poll answers 286 once it is done."""
    _require(request, is_feedback_admin)
    job = get_object_or_404(ImportJob, pk=pk)
    if request.htmx:
        response = render(request, "feedback/manage_import_job.html#job", {"job": job})
        response.status_code = 286 if job.finished else 200
        return response
    return render(request, "feedback/manage_import_job.html", {"job": job})

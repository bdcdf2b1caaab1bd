"""Admins' identity page, ``/manage/identity/``: the patterns (with how many comparisons each
flags), a form to add one, edit and (de)activate buttons, and the re-scan's progress (polled with
htmx; answered 286 once it has finished). Every action is a plain form post that redirects back,
or with htmx answers the page's ``patterns`` part (400 with field errors on bad input)."""
from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from feedback.roles import is_feedback_admin

from . import selectors, services
from .forms import IdentityPatternForm
from .models import IdentityPattern

STOP_POLLING = 286


def _require_admin(request: HttpRequest) -> None:
    if not is_feedback_admin(request.user):
        raise PermissionDenied("Your account does not have this role.")


def _context(form: IdentityPatternForm | None = None, **extra) -> dict:
    return {"patterns": selectors.pattern_list(), "scan": selectors.scan_latest(),
            "form": form or IdentityPatternForm(initial={"active": True}), **extra}


def _answer(request: HttpRequest, *, form=None, notice: str = "", status: int = 200) -> HttpResponse:
    if request.htmx:
        context = _context(form, notice=notice, failed=status != 200)
        return render(request, "feedback/manage_identity.html#patterns", context, status=status)
    if status != 200 and form is not None:
        return render(request, "feedback/manage_identity.html", _context(form, notice=notice, failed=True), status=status)
    (messages.success if status == 200 else messages.error)(request, notice)
    return redirect("manage-identity")


def _form_errors(form: IdentityPatternForm, error: ValidationError) -> None:
    for field, texts in error.message_dict.items():
        form.add_error(field if field in form.fields else None, texts)


@login_required
@require_http_methods(["GET", "POST"])
def manage_identity(request: HttpRequest) -> HttpResponse:
    """GET: the page. POST: add a pattern (``text``, ``kind``, ``scope``, ``note``, ``active``)."""
    _require_admin(request)
    if request.method == "GET":
        return render(request, "feedback/manage_identity.html", _context())
    form = IdentityPatternForm(request.POST)
    if form.is_valid():
        try:
            pattern = services.identity_pattern_create(values=form.cleaned_data, created_by=request.user)
        except ValidationError as error:
            _form_errors(form, error)
        else:
            return _answer(request, notice=f"Pattern {pattern.text!r} added; comparisons are being re-scanned.")
    return _answer(request, form=form, notice="Not added: see the field errors.", status=400)


@login_required
@require_POST
def manage_identity_pattern(request: HttpRequest, pk: int) -> HttpResponse:
    """Edit a pattern: the fields posted (``text``, ``kind``, ``scope``, ``note``; ``active`` as
    "true"/"false"). Deactivating un-flags at once; other changes queue a re-scan."""
    _require_admin(request)
    pattern = get_object_or_404(IdentityPattern, pk=pk)
    values = {name: request.POST[name] for name in ("text", "kind", "scope", "note") if name in request.POST}
    if "active" in request.POST:
        values["active"] = request.POST["active"] in ("true", "on", "1")
    try:
        pattern = services.identity_pattern_update(pattern=pattern, values=values, updated_by=request.user)
    except ValidationError as error:
        errors = {field: " ".join(texts) for field, texts in error.message_dict.items()}
        notice = f"Pattern {pk} not saved: " + "; ".join(f"{field}: {text}" for field, text in errors.items())
        if not request.htmx:
            messages.error(request, notice)
            return redirect("manage-identity")
        return _answer(request, notice=notice, status=400)
    state = "active" if pattern.active else "inactive"
    return _answer(request, notice=f"Pattern {pattern.text!r} saved ({state}).")


@login_required
@require_POST
def manage_identity_rescan(request: HttpRequest) -> HttpResponse:
    """Queue a re-scan of every comparison (one at a time: a waiting scan is reused)."""
    _require_admin(request)
    scan, queued = services.identity_rescan_request(reason="asked on the identity page", created_by=request.user)
    return _answer(request, notice=f"Re-scan {scan.pk} {'queued' if queued else 'already waiting'}.")


@login_required
@require_GET
def manage_identity_scan(request: HttpRequest) -> HttpResponse:
    """The latest re-scan's progress (the page's ``scan`` part); 286 once it has finished."""
    _require_admin(request)
    scan = selectors.scan_latest()
    response = render(request, "feedback/manage_identity.html#scan", {"scan": scan})
    if scan is None or scan.finished:
        response.status_code = STOP_POLLING
    return response

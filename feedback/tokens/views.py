"""The account page's API token section: see your token's prefix and expiry, make a new one (shown
once, on the answer to that post), or revoke it."""
from __future__ import annotations

from django import forms
from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_http_methods

from .selectors import api_token_of
from .services import api_token_issue, api_token_revoke

LIFETIMES = [("30", "30 days"), ("90", "90 days"), ("365", "one year"), ("", "never")]


class TokenForm(forms.Form):
    expires_in_days = forms.TypedChoiceField(
        choices=(), coerce=int, empty_value=None, required=False, label="Expires in"
    )

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        ceiling = settings.ARBITER_TOKEN_TTL_DAYS
        allowed = [(value, text) for value, text in LIFETIMES if ceiling is None or (value and int(value) <= ceiling)]
        if ceiling is not None and str(ceiling) not in dict(allowed):
            allowed.append((str(ceiling), f"{ceiling} days"))
        self.fields["expires_in_days"].choices = allowed
        self.fields["expires_in_days"].initial = str(ceiling) if ceiling is not None else "90"


@never_cache
@login_required
@require_http_methods(["GET", "POST"])
def account_token(request: HttpRequest) -> HttpResponse:
    """GET: the page. POST ``action=rotate`` (+ ``expires_in_days``): a new token, its key shown in
    this answer only. POST ``action=revoke``: delete the token, back to the page."""
    form = TokenForm(request.POST if request.method == "POST" else None)
    key = None
    status = 200
    if request.method == "POST" and request.POST.get("action") == "revoke":
        revoked = api_token_revoke(user=request.user)
        messages.success(request, "Token revoked." if revoked else "You had no token.")
        return redirect("account-token")
    if request.method == "POST":
        if form.is_valid():
            try:
                _, key = api_token_issue(user=request.user, expires_in_days=form.cleaned_data["expires_in_days"])
            except ValidationError as error:
                form.add_error(None, error.messages)
        if key is None:
            status = 400
    token = api_token_of(user=request.user)
    return render(request, "feedback/account_token.html", {"form": form, "token": token, "key": key}, status=status)

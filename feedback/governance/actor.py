"""Who is acting, for audit events raised by model signals (role changes, user deletions), which
see only the rows that changed and never the request.

``AuditActorMiddleware`` (after Django's ``AuthenticationMiddleware``) keeps the request in a
context variable while it is handled, so a handler can name the signed-in user (the Django admin,
the app's pages, the API: DRF puts a token's user on the request too) and the client's address.
Outside a request (``manage.py create_user``, a shell, a migration) there is none: such events
have no actor and say ``"via": "command line"``.
"""
from __future__ import annotations

from collections.abc import Callable
from contextvars import ContextVar
from dataclasses import dataclass

from django.http import HttpRequest, HttpResponse

_request: ContextVar[HttpRequest | None] = ContextVar("arbiter_audit_request", default=None)
COMMAND_LINE = "command line"
WEB = "web"


class AuditActorMiddleware:
    """Holds the request in ``_request`` while the view runs (reset afterwards, also on errors)."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        token = _request.set(request)
        try:
            return self.get_response(request)
        finally:
            _request.reset(token)


@dataclass(frozen=True)
class Actor:
    """``user`` (None: nobody signed in, or no request), ``request`` (None outside one) and
    ``via``: ``"web"`` or ``"command line"``."""

    user: object | None
    request: HttpRequest | None
    via: str


def current_actor() -> Actor:
    """Who is acting now: the signed-in user of the request being handled, or nobody on the command line."""
    request = _request.get()
    if request is None:
        return Actor(user=None, request=None, via=COMMAND_LINE)
    user = getattr(request, "user", None)
    return Actor(user=user if getattr(user, "is_authenticated", False) else None, request=request, via=WEB)

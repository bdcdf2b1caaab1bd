"""Request bodies over the size limit are refused before anything reads them.

Django reads a body lazily, the first time ``request.POST``, ``request.FILES`` or ``request.body``
is touched; for a form post that is ``CsrfViewMiddleware``, before the log-in or CSRF check has
answered, and file parts over ``FILE_UPLOAD_MAX_MEMORY_SIZE`` go to the temporary directory. This
middleware runs before that and decides from the declared ``Content-Length`` alone:

- over ``ARBITER_MAX_BODY_BYTES``: refused for everyone;
- over ``ARBITER_ANONYMOUS_MAX_BODY_BYTES``: refused unless the request comes from a signed-in
  user (a session, or a valid ``Authorization: Token`` header);
- no ``Content-Length`` but a ``Transfer-Encoding`` (a chunked body) under WSGI: refused with 411,
  since Django's WSGI request would otherwise read it as empty. Under ASGI, ``body_limit_asgi``
  below counts the chunks as they arrive and stops at the anonymous limit.

The answer is 413 (411) with a readable message: JSON ``{"detail": ...}`` under ``/api/``, a short
HTML page elsewhere. Put the same limits in front of the app (nginx ``client_max_body_size``) so
the proxy refuses first; see README, "Running at scale".
"""
from __future__ import annotations

from collections.abc import Awaitable, Callable
from html import escape

from django.conf import settings
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.template.defaultfilters import filesizeformat


def _declared_length(value: str | bytes | None) -> int | None:
    """The Content-Length as an int, or None when absent or not a non-negative number."""
    try:
        length = int(value) if value not in (None, "", b"") else None
    except ValueError:
        return None
    return length if length is None or length >= 0 else None


def _refusal(request: HttpRequest, status: int, message: str) -> HttpResponse:
    if request.path.startswith("/api/"):
        return JsonResponse({"detail": message}, status=status)
    title = "Request too large" if status == 413 else "Length required"
    page = f"<!doctype html><title>{title}</title><h1>{title}</h1><p>{escape(message)}</p>\n"
    return HttpResponse(page, status=status, content_type="text/html; charset=utf-8")


def _signed_in(request: HttpRequest) -> bool:
    """A session user, or a valid API token (looked up only for bodies over the anonymous limit)."""
    user = getattr(request, "user", None)
    if user is not None and user.is_authenticated:
        return True
    if getattr(request, "_force_auth_user", None) is not None:
        return True  # DRF's test client (force_authenticate); no HTTP request can set this attribute
    from rest_framework.exceptions import AuthenticationFailed

    from feedback.api.authentication import TokenAuthentication

    try:
        return TokenAuthentication().authenticate(request) is not None
    except AuthenticationFailed:
        return False


class RequestBodyLimitMiddleware:
    """Refuse request bodies over the limits from their declared length (see the module docstring).

    Place it after ``AuthenticationMiddleware`` (it asks whether the user is signed in); it answers
    before any view, and before ``CsrfViewMiddleware.process_view`` reads the form.
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        refusal = self.refusal(request)
        return refusal if refusal is not None else self.get_response(request)

    @staticmethod
    def refusal(request: HttpRequest) -> HttpResponse | None:
        """The 413 or 411 answer for ``request``, or None when its body may be read."""
        declared = _declared_length(request.META.get("CONTENT_LENGTH"))
        if declared is None:
            if request.META.get("HTTP_TRANSFER_ENCODING") and "wsgi.input" in request.META:
                message = "Send the request body with a Content-Length header (chunked bodies are not accepted)."
                return _refusal(request, 411, message)
            return None
        anonymous_limit = settings.ARBITER_ANONYMOUS_MAX_BODY_BYTES
        limit = settings.ARBITER_MAX_BODY_BYTES
        if declared <= anonymous_limit:
            return None
        size = filesizeformat(declared)
        if declared > limit:
            return _refusal(request, 413, f"The request body is {size}; at most {filesizeformat(limit)} is accepted.")
        if not _signed_in(request):
            return _refusal(
                request,
                413,
                f"The request body is {size}; at most {filesizeformat(anonymous_limit)} is accepted without "
                f"logging in (up to {filesizeformat(limit)} when logged in).",
            )
        return None


ASGIApp = Callable[[dict, Callable[[], Awaitable[dict]], Callable[[dict], Awaitable[None]]], Awaitable[None]]


def body_limit_asgi(app: ASGIApp) -> ASGIApp:
    """Wrap an ASGI app so that Django never spools a body past the limits.

    Django's ASGI handler reads the whole body into a temporary file before any middleware runs.
    This wrapper answers 413 before reading when the declared ``content-length`` is over
    ``ARBITER_MAX_BODY_BYTES``; a body without one (chunked) is counted as it arrives and cut off
    past ``ARBITER_ANONYMOUS_MAX_BODY_BYTES`` (413 as well). The anonymous limit for declared
    lengths is then ``RequestBodyLimitMiddleware``'s job, after the body is spooled (up to
    ``ARBITER_MAX_BODY_BYTES``): behind gunicorn's WSGI workers (README) nothing is spooled at all.
    """

    async def wrapped(scope, receive, send):
        if scope["type"] != "http":
            return await app(scope, receive, send)
        headers = dict(scope.get("headers") or [])
        declared = _declared_length(headers.get(b"content-length"))
        limit = settings.ARBITER_MAX_BODY_BYTES if declared is not None else settings.ARBITER_ANONYMOUS_MAX_BODY_BYTES
        api = scope.get("path", "").startswith("/api/")

        async def refuse(size_text: str) -> None:
            message = f"The request body is {size_text}; at most {filesizeformat(limit)} is accepted."
            if api:
                import json

                body, kind = json.dumps({"detail": message}).encode(), b"application/json"
            else:
                title = "Request too large"
                body = f"<!doctype html><title>{title}</title><h1>{title}</h1><p>{escape(message)}</p>\n".encode()
                kind = b"text/html; charset=utf-8"
            await send({"type": "http.response.start", "status": 413,
                        "headers": [(b"content-type", kind), (b"content-length", str(len(body)).encode())]})
            await send({"type": "http.response.body", "body": body})

        if declared is not None and declared > limit:
            return await refuse(filesizeformat(declared))
        received = 0
        too_large = False
        started = False

        async def counted_receive():
            nonlocal received, too_large
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    too_large = True
                    return {"type": "http.disconnect"}  # Django stops reading and answers nothing
            return message

        async def watched_send(message):
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        await app(scope, counted_receive, watched_send)
        if too_large and not started:
            await refuse(f"over {filesizeformat(limit)}")

    return wrapped

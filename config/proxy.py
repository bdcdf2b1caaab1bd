"""The client's address behind a TLS-terminating proxy, for login lockouts (django-axes).

Settings (read per request, so tests can change them):
    ARBITER_PROXY_HOPS  how many proxies you run in front of the web server, each appending the
                        address it received the request from to ``X-Forwarded-For`` (nginx:
                        ``proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;``).
                        0 (the default unless ``BEHIND_PROXY``): the header is ignored and the
                        connection's own address (``REMOTE_ADDR``) is the client.
"""
from __future__ import annotations

import ipaddress

from django.conf import settings
from django.http import HttpRequest


def client_ip_address(request: HttpRequest) -> str | None:
    """The address that sent ``request``, as django-axes' ``AXES_CLIENT_IP_CALLABLE``.

    With ``ARBITER_PROXY_HOPS = n > 0`` the client is the ``n``-th address from the right of
    ``X-Forwarded-For``: the last ``n`` entries were written by our own proxies, so anything a
    client puts in the header itself (a forged extra hop) sits further left and is never read.
    A header with fewer than ``n`` entries, or whose chosen entry is not an IP address, did not
    come through the configured proxies: the connection's address is used instead.
    """
    remote = request.META.get("REMOTE_ADDR")
    hops = int(getattr(settings, "ARBITER_PROXY_HOPS", 0) or 0)
    if hops <= 0:
        return remote
    forwarded = [part.strip() for part in request.META.get("HTTP_X_FORWARDED_FOR", "").split(",") if part.strip()]
    if len(forwarded) < hops:
        return remote
    candidate = forwarded[-hops]
    try:
        return str(ipaddress.ip_address(candidate))
    except ValueError:
        return remote

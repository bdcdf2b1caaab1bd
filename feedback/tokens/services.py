"""Issue and revoke API tokens. The key is returned once, by ``api_token_issue``; afterwards only
its prefix can be shown."""
from __future__ import annotations

import hashlib
import secrets
from datetime import timedelta

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from .models import PREFIX_LENGTH, ApiToken

DEFAULT = object()  # "the deployment's default lifetime" (ARBITER_TOKEN_TTL_DAYS)


def token_digest(key: str) -> str:
    """SHA-256 of ``key`` as 64 hex characters: what ``ApiToken.digest`` holds. A plain hash is
    enough for 160-bit random keys (no dictionary to try); it keeps each request to one lookup."""
    return hashlib.sha256(key.encode()).hexdigest()


def token_lifetime_days(expires_in_days: int | None | object) -> int | None:
    """The lifetime a new token gets: ``DEFAULT`` means ``ARBITER_TOKEN_TTL_DAYS`` (None: never
    expires). Raises ``ValidationError`` (field ``expires_in_days``) for a number outside 1-3650 or
    one longer than ``ARBITER_TOKEN_TTL_DAYS`` allows (which also rules out "never")."""
    ceiling = settings.ARBITER_TOKEN_TTL_DAYS
    days = ceiling if expires_in_days is DEFAULT else expires_in_days
    if days is not None and (isinstance(days, bool) or not isinstance(days, int) or not 1 <= days <= 3650):
        raise ValidationError(
            {"expires_in_days": "Give a whole number of days from 1 to 3650, or nothing for no expiry."}
        )
    if ceiling is not None and (days is None or days > ceiling):
        raise ValidationError({"expires_in_days": f"Tokens on this server expire within {ceiling} days."})
    return days


def api_token_issue(*, user, expires_in_days: int | None | object = DEFAULT) -> tuple[ApiToken, str]:
    """Make a new token for ``user``, replacing (so revoking) the one it had.

    Answers ``(token, key)``: ``key`` (40 hex characters) is the only time the full token exists
    outside the client; the row keeps its SHA-256 digest and first 8 characters. ``expires_in_days``:
    a lifetime in days, None for none, or ``DEFAULT`` for ``ARBITER_TOKEN_TTL_DAYS``; raises
    ``ValidationError`` as ``token_lifetime_days`` says.
    """
    days = token_lifetime_days(expires_in_days)
    key = secrets.token_hex(20)
    now = timezone.now()
    with transaction.atomic():
        # Lock the user row: two issues at once for one user then queue instead of colliding on
        # the one-token-per-user constraint.
        list(get_user_model()._default_manager.select_for_update().filter(pk=user.pk).values_list("pk", flat=True))
        ApiToken.objects.filter(user=user).delete()
        token = ApiToken.objects.create(
            user=user,
            prefix=key[:PREFIX_LENGTH],
            digest=token_digest(key),
            created=now,
            expires_at=now + timedelta(days=days) if days is not None else None,
        )
    return token, key


def api_token_revoke(*, user) -> bool:
    """Delete ``user``'s token; True when there was one."""
    with transaction.atomic():
        deleted, _ = ApiToken.objects.filter(user=user).delete()
    return bool(deleted)

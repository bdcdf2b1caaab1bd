"""Reads of API tokens."""
from __future__ import annotations

from .models import ApiToken


def api_token_of(*, user) -> ApiToken | None:
    """``user``'s token row (prefix, created, expires_at; never the key), or None."""
    return ApiToken.objects.filter(user_id=user.pk).first()

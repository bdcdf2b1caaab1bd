"""The ``Authorization: Token <key>`` check on every API request.

Kept apart from ``auth.py`` (token log-in views): DRF imports authentication classes while
``rest_framework.views`` is still loading, so this module must not import any view.
"""
from __future__ import annotations

from django.db import connections
from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from rest_framework import authentication, exceptions

from feedback.tokens.models import ApiToken
from feedback.tokens.services import token_digest


class TokenAuthentication(authentication.TokenAuthentication):
    """DRF's ``TokenAuthentication`` header and answers, against ``ApiToken`` rows, which hold the
    key's SHA-256 digest rather than the key. The user (and whether the token has expired) is read
    by one SQL query: the ORM's ``select_related`` lookup took about 15% of a gunicorn worker's
    time in ``bench/annotate_load.py``. ``request.auth`` is the ``ApiToken`` with ``id`` and
    ``user`` loaded.

    Errors (401): "Invalid token.", "Token expired." (with where to get a new one), "User
    inactive or deleted."
    """

    model = ApiToken

    def authenticate_credentials(self, key):
        user_model = ApiToken._meta.get_field("user").related_model
        db = user_model._default_manager.db
        now = connections[db].ops.adapt_datetimefield_value(timezone.now())
        query = user_model._default_manager.raw(_token_user_sql(), [now, token_digest(key)])
        user = next(iter(query), None)
        if user is None:
            raise exceptions.AuthenticationFailed(_("Invalid token."))
        if user.api_token_expired:
            raise exceptions.AuthenticationFailed(
                _("Token expired. Make a new one on your account page or with POST /api/auth/token/.")
            )
        if not user.is_active:
            raise exceptions.AuthenticationFailed(_("User inactive or deleted."))
        token = ApiToken.from_db(user._state.db, ["id", "user_id"], [user.api_token_pk, user.pk])
        token.user = user
        return user, token


def _token_user_sql() -> str:
    """``SELECT`` the user row of the token whose digest is the second ``%s``, with the token's id
    and whether it expired by the first ``%s`` (now)."""
    user_field = ApiToken._meta.get_field("user")
    user_meta = user_field.related_model._meta
    expires = ApiToken._meta.get_field("expires_at").column
    return (
        f"SELECT u.*, t.id AS api_token_pk, (t.{expires} IS NOT NULL AND t.{expires} <= %s) AS api_token_expired"
        f" FROM {user_meta.db_table} u INNER JOIN {ApiToken._meta.db_table} t"
        f" ON t.{user_field.column} = u.{user_meta.pk.column} WHERE t.digest = %s"
    )

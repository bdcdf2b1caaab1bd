"""The ``Authorization: Token <key>`` check on every API request.

Kept apart from ``auth.py`` (token log-in views): DRF imports authentication classes while
``rest_framework.views`` is still loading, so this module must not import any view.
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import cache

from django.db import connection
from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from rest_framework import authentication, exceptions

from feedback.tokens.models import ApiToken
from feedback.sql_rows import ModelColumns, model_columns
from feedback.tokens.services import token_digest


class TokenAuthentication(authentication.TokenAuthentication):
    """DRF's ``TokenAuthentication`` header and answers, against ``ApiToken`` rows, which hold the
    key's SHA-256 digest rather than the key. The user (and whether the token has expired) is read
    by one SQL query written once per process (``feedback.sql_rows``): the ORM's ``select_related``
    lookup took about 15% of a gunicorn worker's time in ``bench/annotate_load.py``, and a
    ``raw()`` query still about 8%. ``request.auth`` is the ``ApiToken`` with ``id`` and
    ``user`` loaded.

    Errors (401): "Invalid token.", "Token expired." (with where to get a new one), "User
    inactive or deleted."
    """

    model = ApiToken

    def authenticate_credentials(self, key):
        plan = _token_user_plan(connection.vendor)
        now = connection.ops.adapt_datetimefield_value(timezone.now())
        with connection.cursor() as cursor:
            cursor.execute(plan.sql, [now, token_digest(key)])
            row = cursor.fetchone()
        if row is None:
            raise exceptions.AuthenticationFailed(_("Invalid token."))
        user = plan.user.load(row[:plan.user.width])
        token_pk, expired = row[plan.user.width:]
        if expired:
            raise exceptions.AuthenticationFailed(
                _("Token expired. Make a new one on your account page or with POST /api/auth/token/.")
            )
        if not user.is_active:
            raise exceptions.AuthenticationFailed(_("User inactive or deleted."))
        token = ApiToken.from_db(connection.alias, ["id", "user_id"], [token_pk, user.pk])
        token.user = user
        return user, token


@dataclass(frozen=True)
class _TokenUserPlan:
    sql: str
    user: ModelColumns


@cache
def _token_user_plan(vendor: str) -> _TokenUserPlan:
    """``SELECT`` the user row of the token whose digest is the second ``%s``, then the token's id
    and whether it expired by the first ``%s`` (now)."""
    user_field = ApiToken._meta.get_field("user")
    user_meta = user_field.related_model._meta
    user = model_columns(user_field.related_model, "u")
    q = connection.ops.quote_name
    expires = q(ApiToken._meta.get_field("expires_at").column)
    sql = (
        f"SELECT {user.select}, t.id, (t.{expires} IS NOT NULL AND t.{expires} <= %s)"
        f" FROM {q(user_meta.db_table)} u INNER JOIN {q(ApiToken._meta.db_table)} t"
        f" ON t.{q(user_field.column)} = u.{q(user_meta.pk.column)} WHERE t.digest = %s"
    )
    return _TokenUserPlan(sql, user)

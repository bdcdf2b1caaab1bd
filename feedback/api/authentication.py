"""The ``Authorization: Token <key>`` check on every API request.

Kept apart from ``auth.py`` (token log-in views): DRF imports authentication classes while
``rest_framework.views`` is still loading, so this module must not import any view.
"""
from __future__ import annotations

from django.utils.translation import gettext_lazy as _
from rest_framework import authentication, exceptions


class TokenAuthentication(authentication.TokenAuthentication):
    """DRF's ``TokenAuthentication`` (same header, same answers), with the token's user read by one
    SQL query: the ORM's ``select_related`` lookup took about 15% of a gunicorn worker's time in
    ``bench/annotate_load.py``. The token comes back with ``key`` and ``user`` loaded (``created``
    is read on first use).
    """

    def authenticate_credentials(self, key):
        model = self.get_model()
        user_model = model._meta.get_field("user").related_model
        user = next(iter(user_model._default_manager.raw(_token_user_sql(model), [key])), None)
        if user is None:
            raise exceptions.AuthenticationFailed(_("Invalid token."))
        if not user.is_active:
            raise exceptions.AuthenticationFailed(_("User inactive or deleted."))
        token = model.from_db(user._state.db, [model._meta.pk.attname, "user_id"], [key, user.pk])
        token.user = user
        return user, token


def _token_user_sql(model) -> str:
    """``SELECT`` the user row of the token whose key is ``%s``."""
    user_field = model._meta.get_field("user")
    user_meta = user_field.related_model._meta
    return (
        f"SELECT u.* FROM {user_meta.db_table} u INNER JOIN {model._meta.db_table} t"
        f" ON t.{user_field.column} = u.{user_meta.pk.column} WHERE t.{model._meta.pk.column} = %s"
    )

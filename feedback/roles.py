"""Annotator and admin roles, as Django groups holding the feedback permissions.

- ``annotators``: ``feedback.annotate``: served comparisons assigned to them; never sees model names.
- ``admins``: ``feedback.annotate``, ``feedback.manage_feedback`` and every model permission of
  the feedback app (the Django admin too, with ``is_staff``).
Superusers hold every permission. ``PermissionBackend`` (in ``AUTHENTICATION_BACKENDS``) is Django's
``ModelBackend`` reading those permissions in one query.
"""
from __future__ import annotations

from functools import cache

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.backends import ModelBackend
from django.contrib.auth.models import Group, Permission
from django.contrib.contenttypes.models import ContentType
from django.core.exceptions import ValidationError
from django.db import connection, transaction

ANNOTATORS = "annotators"
ADMINS = "admins"
ROLES = {"annotator": ANNOTATORS, "admin": ADMINS}
ANNOTATE = "feedback.annotate"
MANAGE = "feedback.manage_feedback"


def is_annotator(user) -> bool:
    """True when the user may be served comparisons and vote."""
    return bool(user and user.is_authenticated and user.has_perm(ANNOTATE))


def is_feedback_admin(user) -> bool:
    """True when the user may see model names, every comparison and vote, and create data."""
    return bool(user and user.is_authenticated and user.has_perm(MANAGE))


class PermissionBackend(ModelBackend):
    """Django's ``ModelBackend``, reading a user's permissions (their own and their groups') in one
    query instead of two ORM queries: every API request checks a role, and building those two
    queries cost more than the rest of the permission check. Same answers, same per-request cache
    (``user._perm_cache``); superusers, inactive users and object permissions as in ``ModelBackend``.
    """

    def get_all_permissions(self, user_obj, obj=None):
        if not user_obj.is_active or user_obj.is_anonymous or obj is not None:
            return set()
        if user_obj.is_superuser:
            return super().get_all_permissions(user_obj, obj)
        if not hasattr(user_obj, "_perm_cache"):
            with connection.cursor() as cursor:
                cursor.execute(_permissions_sql(), [user_obj.pk, user_obj.pk])
                user_obj._perm_cache = {f"{app_label}.{codename}" for app_label, codename in cursor.fetchall()}
        return user_obj._perm_cache


@cache
def _permissions_sql() -> str:
    """``app_label, codename`` of the permissions held by user %s directly or through their groups."""
    user_perms = get_user_model()._meta.get_field("user_permissions")
    user_groups = get_user_model()._meta.get_field("groups")
    group_perms = Group._meta.get_field("permissions")
    return (
        f"SELECT ct.app_label, p.codename FROM {Permission._meta.db_table} p"
        f" INNER JOIN {ContentType._meta.db_table} ct ON ct.id = p.content_type_id"
        f" WHERE p.id IN (SELECT up.{user_perms.m2m_reverse_name()} FROM {user_perms.m2m_db_table()} up"
        f" WHERE up.{user_perms.m2m_column_name()} = %s)"
        f" OR p.id IN (SELECT gp.{group_perms.m2m_reverse_name()} FROM {group_perms.m2m_db_table()} gp"
        f" INNER JOIN {user_groups.m2m_db_table()} ug ON ug.{user_groups.m2m_reverse_name()} = gp.{group_perms.m2m_column_name()}"
        f" WHERE ug.{user_groups.m2m_column_name()} = %s)"
    )


def roles_ensure() -> dict[str, Group]:
    """Create (or repair) the two groups and their permissions; safe to run any number of times."""
    feedback_perms = Permission.objects.filter(content_type__app_label="feedback")
    annotate = feedback_perms.filter(codename="annotate").first()
    if annotate is None:  # called before the feedback app's permissions exist (early in migrate)
        return {}
    annotators, _ = Group.objects.get_or_create(name=ANNOTATORS)
    annotators.permissions.set([annotate])
    admins, _ = Group.objects.get_or_create(name=ADMINS)
    admins.permissions.set(Permission.objects.filter(content_type__app_label__in=settings.ARBITER_ADMIN_APPS))
    return {"annotator": annotators, "admin": admins}


def username_check(username: str) -> None:
    """Check ``username`` as Django's sign-up and admin forms do: the user model's username field
    validators (``UnicodeUsernameValidator``: letters, digits and ``@.+-_``; at most 150 characters).

    Raises:
        ValidationError: ``{"username": [messages]}`` for an empty or invalid name.
    """
    User = get_user_model()
    if not isinstance(username, str) or not username:
        raise ValidationError({"username": "a username is required"})
    try:
        User._meta.get_field(User.USERNAME_FIELD).run_validators(username)
    except ValidationError as error:
        raise ValidationError({"username": [f"{username!r}: {message}" for message in error.messages]}) from None


def user_create(*, username: str, password: str, role: str, email: str = "") -> object:
    """Create a user with one role (``annotator`` or ``admin``; admins are also ``is_staff``).

    The username is NFKC-normalised (as Django's forms do) and must pass ``username_check``.
    Raises:
        ValidationError: unknown role, an invalid or taken username, or a password Django's validators refuse.
    """
    from django.contrib.auth.password_validation import validate_password

    if role not in ROLES:
        raise ValidationError({"role": f"must be one of {', '.join(ROLES)}"})
    User = get_user_model()
    username = User.normalize_username(username)
    username_check(username)
    if User.objects.filter(username=username).exists():
        raise ValidationError({"username": f"{username!r} is taken"})
    user = User(username=username, email=email, is_staff=(role == "admin"))
    validate_password(password, user)
    with transaction.atomic():
        user.set_password(password)
        user.save()
        user.groups.add(roles_ensure()[role])
    return user

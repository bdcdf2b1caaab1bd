"""Annotator and admin roles, as Django groups holding the feedback permissions.

- ``annotators``: ``feedback.annotate``: served comparisons assigned to them; never sees model names.
- ``admins``: ``feedback.annotate``, ``feedback.manage_feedback`` and every model permission of
  the feedback app (the Django admin too, with ``is_staff``).
Superusers hold every permission.
"""
from __future__ import annotations

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group, Permission
from django.core.exceptions import ValidationError
from django.db import transaction

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


def roles_ensure() -> dict[str, Group]:
    """Create (or repair) the two groups and their permissions; safe to run any number of times."""
    feedback_perms = Permission.objects.filter(content_type__app_label="feedback")
    annotate = feedback_perms.get(codename="annotate")
    annotators, _ = Group.objects.get_or_create(name=ANNOTATORS)
    annotators.permissions.set([annotate])
    admins, _ = Group.objects.get_or_create(name=ADMINS)
    admins.permissions.set(list(feedback_perms) + list(Permission.objects.filter(content_type__app_label="authtoken")))
    return {"annotator": annotators, "admin": admins}


def user_create(*, username: str, password: str, role: str, email: str = "") -> object:
    """Create a user with one role (``annotator`` or ``admin``; admins are also ``is_staff``).

    Raises:
        ValidationError: unknown role, a taken username, or a password Django's validators refuse.
    """
    from django.contrib.auth.password_validation import validate_password

    if role not in ROLES:
        raise ValidationError({"role": f"must be one of {', '.join(ROLES)}"})
    User = get_user_model()
    if User.objects.filter(username=username).exists():
        raise ValidationError({"username": f"{username!r} is taken"})
    user = User(username=username, email=email, is_staff=(role == "admin"))
    validate_password(password, user)
    with transaction.atomic():
        user.set_password(password)
        user.save()
        user.groups.add(roles_ensure()[role])
    return user

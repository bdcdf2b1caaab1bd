"""Audit events for role changes and user deletions, wherever they happen (the Django admin,
``create_user``, a shell): a user's groups are its roles (``feedback.roles``)."""
from __future__ import annotations

from django.contrib.auth import get_user_model
from django.db.models.signals import m2m_changed, post_delete

from .audit import audit_record
from .models import AuditAction


def _groups_changed(sender, instance, action, pk_set, model, reverse, **kwargs):
    if action not in ("post_add", "post_remove", "post_clear"):
        return
    if reverse:  # a group's users changed: one event per user
        users = get_user_model().objects.filter(pk__in=pk_set or ())
        groups = [instance.name]
    else:
        users = [instance]
        groups = sorted(model.objects.filter(pk__in=pk_set or ()).values_list("name", flat=True))
    for user in users:
        audit_record(action=AuditAction.ROLE_CHANGE, object_type="user", object_id=user.pk,
                     details={"username": user.get_username(), "change": action.removeprefix("post_"), "groups": groups,
                              "roles_now": sorted(user.groups.values_list("name", flat=True))})


def _user_deleted(sender, instance, **kwargs):
    audit_record(action=AuditAction.DELETION, object_type="user", object_id=instance.pk,
                 details={"username": instance.get_username()})


def connect() -> None:
    """Connect the handlers (from ``FeedbackConfig.ready``)."""
    user_model = get_user_model()
    m2m_changed.connect(_groups_changed, sender=user_model.groups.through, dispatch_uid="governance_role_change")
    post_delete.connect(_user_deleted, sender=user_model, dispatch_uid="governance_user_deleted")

"""Audit events for role changes and user deletions, wherever they happen (the Django admin,
``create_user``, a shell): a user's groups are its roles (``feedback.roles``).

The actor is the signed-in user of the request being handled (``actor.current_actor``), with the
client's address; outside a request there is none and ``details["via"]`` says ``"command line"``.
"""
from __future__ import annotations

from django.contrib.auth import get_user_model
from django.db.models.signals import m2m_changed, post_delete

from .actor import current_actor
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
    actor = current_actor()
    for user in users:
        audit_record(action=AuditAction.ROLE_CHANGE, user=actor.user, request=actor.request, object_type="user", object_id=user.pk,
                     details={"username": user.get_username(), "change": action.removeprefix("post_"), "groups": groups,
                              "roles_now": sorted(user.groups.values_list("name", flat=True)), "via": actor.via})


def _user_deleted(sender, instance, **kwargs):
    actor = current_actor()
    audit_record(action=AuditAction.DELETION, user=actor.user, request=actor.request, object_type="user", object_id=instance.pk,
                 details={"username": instance.get_username(), "via": actor.via})


def connect() -> None:
    """Connect the handlers (from ``FeedbackConfig.ready``)."""
    user_model = get_user_model()
    m2m_changed.connect(_groups_changed, sender=user_model.groups.through, dispatch_uid="governance_role_change")
    post_delete.connect(_user_deleted, sender=user_model, dispatch_uid="governance_user_deleted")

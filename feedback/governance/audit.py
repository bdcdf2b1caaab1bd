"""Writing and reading the audit trail (``AuditEvent``, append-only)."""
from __future__ import annotations

from typing import Any

from django.db import models
from django.http import HttpRequest

from config.proxy import client_ip_address

from .models import AuditEvent


def _address(request: HttpRequest | None) -> str | None:
    if request is None:
        return None
    try:
        return client_ip_address(request)
    except Exception:  # an address we cannot read is left empty rather than failing the action
        return None


def audit_record(
    *, action: str, user=None, obj: models.Model | None = None, object_type: str = "", object_id: Any = "",
    details: dict[str, Any] | None = None, request: HttpRequest | None = None, remote_addr: str | None = None,
) -> AuditEvent:
    """Append one audit event.

    Args:
        action: an ``AuditAction`` value (``"export.create"``, ``"policy.update"``, ...).
        user: who did it (None: the system or a command line).
        obj: the object acted on (its model name and pk are recorded), or give ``object_type``/``object_id``.
        details: JSON-shaped facts (counts, the policy's terms, a justification).
        request: the request, for the client's address (``config.proxy.client_ip_address``);
            or give ``remote_addr``.
    Returns: the saved event.
    """
    if obj is not None:
        object_type, object_id = object_type or obj._meta.model_name, obj.pk
    if user is not None and not getattr(user, "is_authenticated", False):
        user = None
    return AuditEvent.objects.create(
        actor=user, actor_name=getattr(user, "username", "") if user else "", action=action,
        object_type=object_type, object_id="" if object_id in (None, "") else str(object_id),
        details=details or {}, remote_addr=remote_addr or _address(request),
    )


AUDIT_FILTERS = ("action", "actor", "object_type", "object_id", "date_from", "date_to")


def audit_events(*, filters: dict[str, Any] | None = None):
    """Audit events, newest first, narrowed by ``filters``: ``action``, ``actor`` (username),
    ``object_type``, ``object_id``, ``date_from``/``date_to`` (ISO dates, inclusive)."""
    filters = {k: v for k, v in (filters or {}).items() if k in AUDIT_FILTERS and v not in (None, "")}
    events = AuditEvent.objects.all()
    if "action" in filters:
        events = events.filter(action=filters["action"])
    if "actor" in filters:
        events = events.filter(actor_name=filters["actor"])
    if "object_type" in filters:
        events = events.filter(object_type=filters["object_type"])
    if "object_id" in filters:
        events = events.filter(object_id=str(filters["object_id"]))
    if "date_from" in filters:
        events = events.filter(at__date__gte=filters["date_from"])
    if "date_to" in filters:
        events = events.filter(at__date__lte=filters["date_to"])
    return events


CSV_COLUMNS = ("id", "at", "actor", "action", "object_type", "object_id", "remote_addr", "details")


def audit_csv_rows(events) -> Any:
    """Header then one row per event (``CSV_COLUMNS``; details as JSON), for ``csv.writer``."""
    import json

    yield CSV_COLUMNS
    for event in events.iterator(chunk_size=2000):
        yield (event.pk, event.at.isoformat(), event.actor_name, event.action, event.object_type, event.object_id,
               event.remote_addr or "", json.dumps(event.details, sort_keys=True))

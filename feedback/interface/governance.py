"""Governance: audit records and the policy re-check of a snapshot. Part of ``feedback.interface``."""
from __future__ import annotations

from collections.abc import Mapping
from typing import Any




def audit_record(*, action: str, user=None, object_type: str = "", object_id: Any = "", details: Mapping[str, Any] | None = None) -> None:
    """Append an event to the audit trail (``feedback.governance.audit.audit_record``), e.g.
    ``action="run.launch"``, ``object_type="job"``; ``details`` JSON-shaped."""
    from ..governance.audit import audit_record as record

    record(action=action, user=user, object_type=object_type, object_id=object_id, details=dict(details or {}))


def snapshot_policy_recheck(*, snapshot_id: int, policy_override: str | None = None, created_by=None) -> None:
    """Check an existing snapshot against the data-use policies in force now, before a training
    run reuses it (``feedback.governance.enforcement.snapshot_policy_recheck``).

    Raises:
        ValidationError: ``{"policy": [...]}`` naming the sources and row counts refused, or
            ``{"policy_override": ...}``.
    """
    from ..governance.enforcement import snapshot_policy_recheck as recheck

    recheck(snapshot_id=snapshot_id, override=policy_override, user=created_by)

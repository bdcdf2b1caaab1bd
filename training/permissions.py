"""Who may see checkpoints and launch or cancel jobs: holders of ``training.run_jobs`` (the admins group)."""
from __future__ import annotations

RUN_JOBS = "training.run_jobs"


def can_run_jobs(user) -> bool:
    """True when the user may see the checkpoint registry and launch, follow and cancel jobs."""
    return bool(user and user.is_authenticated and user.has_perm(RUN_JOBS))

from rest_framework.permissions import BasePermission

from training.permissions import can_run_jobs


class CanRunJobs(BasePermission):
    """May see checkpoints and launch, follow and cancel jobs (``training.run_jobs``)."""

    message = "Only admins may see checkpoints and jobs."

    def has_permission(self, request, view):
        return can_run_jobs(request.user)

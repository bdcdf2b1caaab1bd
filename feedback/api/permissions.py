from rest_framework.permissions import BasePermission

from feedback.roles import is_annotator, is_feedback_admin


class IsAnnotator(BasePermission):
    """May be served comparisons and vote (``feedback.annotate``)."""

    message = "Your account does not have the annotator role."

    def has_permission(self, request, view):
        return is_annotator(request.user)


class IsFeedbackAdmin(BasePermission):
    """May see everything and create data (``feedback.manage_feedback``)."""

    message = "Only admins may do this."

    def has_permission(self, request, view):
        return is_feedback_admin(request.user)

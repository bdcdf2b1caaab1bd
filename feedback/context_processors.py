"""Template context: the user's roles, so templates never test permissions by name."""
from .roles import is_annotator, is_feedback_admin


def roles(request):
    """``is_annotator`` and ``is_feedback_admin`` (booleans) for every template."""
    user = getattr(request, "user", None)
    return {"is_annotator": is_annotator(user), "is_feedback_admin": is_feedback_admin(user)}

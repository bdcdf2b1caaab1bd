"""Errors the feedback services raise. Views and the API map each to one HTTP status.

Validation problems use Django's ``ValidationError`` with a dict of field -> messages (HTTP 400).
"""
from __future__ import annotations


class FeedbackError(Exception):
    """Base class: ``status`` is the HTTP status the API answers with, ``str()`` a readable reason."""

    status = 400
    code = "invalid"


class NotAssigned(FeedbackError):
    """The caller holds no assignment for that comparison (or skipped it)."""

    status = 403
    code = "not_assigned"


class VoteConflict(FeedbackError):
    """The caller already voted on that comparison, differently."""

    status = 409
    code = "vote_conflict"

    def __init__(self, message: str, vote=None):
        super().__init__(message)
        self.vote = vote


class LeaseExpired(FeedbackError):
    """The caller's lease ran out and its slot went to another annotator."""

    status = 409
    code = "lease_expired"


class ComparisonClosed(FeedbackError):
    """The comparison was retired (or already has all its votes) and takes no more."""

    status = 409
    code = "comparison_closed"


class ItemChanged(FeedbackError):
    """The vote names an item that is no longer on the caller's screen (voted on, skipped, or never theirs)."""

    status = 409
    code = "item_changed"


class VoteNotFound(FeedbackError):
    """The caller has no vote with that id (another annotator's vote is not found either)."""

    status = 404
    code = "not_found"


class NotInPool(FeedbackError):
    """The campaign serves the caller nothing: it is not active (draft, paused, closed), or the
    caller is not in its pool (its annotators or one of its groups)."""

    status = 403
    code = "not_in_pool"


class GuidelinesUnread(FeedbackError):
    """The campaign's latest guidelines were not acknowledged by the caller: votes in it wait until they are."""

    status = 409
    code = "guidelines_unread"

    def __init__(self, message: str, campaign_slug: str = "", version: int | None = None):
        super().__init__(message)
        self.campaign_slug, self.version = campaign_slug, version


class AnnotatorPaused(NotInPool):
    """The caller's access to the campaign is paused: their accuracy on its gold items fell below
    the campaign's ``gold_min_accuracy`` (a ``CampaignAnnotatorPause``; an admin lifts it)."""

    code = "annotator_paused"


def annotator_paused_message(campaign_name: str) -> str:
    """What a paused annotator reads, on the page and from the API."""
    return (
        f"Your access to campaign {campaign_name!r} is paused: your answers on its check items fell below the"
        " accuracy it requires. Ask an admin to review your work and lift the pause."
    )

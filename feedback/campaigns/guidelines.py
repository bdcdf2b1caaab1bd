"""A campaign's guidelines as an annotator meets them: the latest version, whether they have
acknowledged it (read), and the acknowledgement itself.

Rule (enforced by ``feedback.services.vote_submit`` for the annotator page and the API alike): in a
campaign with guidelines, a vote waits until the annotator has acknowledged the latest version
(``GuidelinesUnread``, HTTP 409). A campaign without guidelines asks nothing.
"""
from __future__ import annotations

from dataclasses import dataclass

from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.db.models import Exists, OuterRef

from feedback.errors import NotInPool

from .models import Campaign, GuidelineAcknowledgement, GuidelineVersion
from .pool import campaign_pool_has


@dataclass(frozen=True)
class Guidelines:
    """The latest guidelines of a campaign for one annotator: ``number`` (1, 2, ...), the Markdown
    ``text``, and ``acknowledged`` (they said they read this version)."""

    campaign_slug: str
    campaign_name: str
    version_id: int
    number: int
    text: str
    acknowledged: bool


def guidelines_latest(*, campaign: Campaign, annotator) -> Guidelines | None:
    """The campaign's latest guidelines and whether ``annotator`` acknowledged them, or None when
    it has none. One query."""
    version = (
        GuidelineVersion.objects.filter(campaign=campaign)
        .annotate(acknowledged=Exists(
            GuidelineAcknowledgement.objects.filter(version=OuterRef("pk"), annotator=annotator.pk)
        ))
        .order_by("-number")
        .first()
    )
    if version is None:
        return None
    return Guidelines(campaign.slug, campaign.name, version.pk, version.number, version.text, version.acknowledged)


def guidelines_acknowledge(*, campaign: Campaign, annotator, number: int | None = None) -> GuidelineAcknowledgement:
    """Record that ``annotator`` read version ``number`` of the campaign's guidelines (default: the
    latest). Acknowledging twice is harmless: the stored acknowledgement is returned.

    Raises:
        NotInPool: the annotator is not in the campaign's pool.
        ValidationError: ``{"version": ...}`` when the campaign has no guidelines or no such version.
    """
    if not campaign_pool_has(campaign=campaign, user=annotator):
        raise NotInPool(f"You are not in the pool of campaign {campaign.name!r}.")
    versions = GuidelineVersion.objects.filter(campaign=campaign).order_by("-number")
    version = versions.first() if number is None else versions.filter(number=number).first()
    if version is None:
        missing = "has no guidelines" if number is None else f"has no guidelines version {number}"
        raise ValidationError({"version": f"campaign {campaign.name!r} {missing}"})
    try:
        with transaction.atomic():
            acknowledgement, _ = GuidelineAcknowledgement.objects.get_or_create(version=version, annotator=annotator)
    except IntegrityError:  # the same acknowledgement posted twice at once
        acknowledgement = GuidelineAcknowledgement.objects.get(version=version, annotator=annotator)
    return acknowledgement

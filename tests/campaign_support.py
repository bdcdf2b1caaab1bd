"""Campaigns for the annotator-side campaign tests: a campaign with its pool, comparisons in it, guidelines."""
from __future__ import annotations

from django.contrib.auth.models import Group

from feedback.models import Campaign, GuidelineVersion
from tests.factories import ComparisonFactory


def campaign_make(name: str, *, annotators=(), groups=(), status: str = "active", priority: int = 0,
                  comparisons: int = 0, **fields) -> Campaign:
    """A campaign named ``name`` (slug: its lower-case name) whose pool is ``annotators`` and
    ``groups`` (Group objects or names), holding ``comparisons`` new comparisons."""
    campaign = Campaign.objects.create(name=name, slug=name.lower(), status=status, priority=priority, **fields)
    campaign.annotators.add(*annotators)
    campaign.groups.add(*[g if isinstance(g, Group) else Group.objects.get_or_create(name=g)[0] for g in groups])
    for _ in range(comparisons):
        ComparisonFactory(campaign=campaign)
    return campaign


def guidelines_write(campaign: Campaign, text: str) -> GuidelineVersion:
    """A new guidelines version of ``campaign`` (number: one more than the latest)."""
    latest = campaign.guideline_versions.order_by("-number").first()
    return GuidelineVersion.objects.create(campaign=campaign, number=(latest.number + 1) if latest else 1, text=text)

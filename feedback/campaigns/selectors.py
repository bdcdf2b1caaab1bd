"""Reads about campaigns for the admin pages, the API and the command: lists, pool size, why a
campaign cannot be activated, its guidelines versions."""
from __future__ import annotations

from django.contrib.auth import get_user_model
from django.db.models import Count, Q, QuerySet

from .models import Campaign, CampaignStatus, GuidelineVersion


def campaign_list() -> QuerySet[Campaign]:
    """Every campaign, highest priority first, with ``comparison_total`` annotated."""
    return Campaign.objects.annotate(comparison_total=Count("comparisons")).order_by("-priority", "name")


def campaign_pool_size(*, campaign: Campaign) -> int:
    """How many active users are in the pool: named annotators plus members of its groups, each once."""
    return (
        get_user_model()
        .objects.filter(is_active=True)
        .filter(Q(campaigns=campaign) | Q(groups__campaigns=campaign))
        .distinct()
        .count()
    )


def campaign_activation_problems(*, campaign: Campaign) -> dict[str, str]:
    """Why ``campaign`` cannot be activated now, by field (``status``, ``pool``, ``comparisons``);
    empty when it can. Drafts with these problems can still be saved."""
    problems: dict[str, str] = {}
    if campaign.status == CampaignStatus.ACTIVE:
        problems["status"] = "the campaign is active already"
    elif campaign.status == CampaignStatus.CLOSED:
        problems["status"] = "the campaign is closed; closed campaigns stay closed"
    if campaign_pool_size(campaign=campaign) == 0:
        if campaign.groups.exists():
            problems["pool"] = "the pool is empty: its groups have no members; add annotators or a group with members"
        else:
            problems["pool"] = "the pool is empty: add annotators or a group"
    if not campaign.comparisons.exists():
        problems["comparisons"] = "the campaign has no comparisons: add some by rules"
    return problems


def guideline_versions(*, campaign: Campaign) -> QuerySet[GuidelineVersion]:
    """The campaign's guidelines versions, newest first, with ``created_by`` loaded."""
    return GuidelineVersion.objects.filter(campaign=campaign).select_related("created_by").order_by("-number")


def guidelines_current(*, campaign: Campaign) -> GuidelineVersion | None:
    """The campaign's latest guidelines version (None before any was written)."""
    return guideline_versions(campaign=campaign).first()

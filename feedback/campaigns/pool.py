"""Who works in which campaign (reads): a campaign's pool is its ``annotators`` plus the members of
its ``groups``; annotators are served only the comparisons of active campaigns whose pool holds them.

The claim (``feedback.services.assignment_claim``) reads the same rule in SQL (``pool_sql``), so
the annotator page and the API ask one question, the same way.
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import cache

from django.contrib.auth import get_user_model
from django.db.models import Count, Exists, IntegerField, OuterRef, Q, Subquery, Sum, Value
from django.db.models.functions import Coalesce

from feedback.models import Assignment, AssignmentStatus, Comparison, ComparisonStatus, Vote

from .models import Campaign, CampaignStatus, GuidelineAcknowledgement, GuidelineVersion

# Paths under /annotate/ that are not campaigns: a campaign with one of these slugs could not be reached
# at /annotate/<slug>/ (the campaign services should refuse them).
RESERVED_SLUGS = frozenset({"vote", "skip", "undo", "history", "guidelines", "campaigns", "next"})


@cache
def _pool_tables() -> dict[str, str]:
    user_groups = get_user_model()._meta.get_field("groups")
    return {
        "campaign": Campaign._meta.db_table,
        "pool_annotators": Campaign.annotators.through._meta.db_table,
        "pool_groups": Campaign.groups.through._meta.db_table,
        "user_groups": user_groups.m2m_db_table(),
        "user_groups_user": user_groups.m2m_column_name(),
        "user_groups_group": user_groups.m2m_reverse_name(),
    }


def pool_sql(campaign_column: str) -> str:
    """SQL that is true when the user ``%(annotator)s`` is in the pool of the campaign whose id is
    ``campaign_column`` (e.g. ``"k.id"``): named in its annotators, or a member of one of its groups.
    Two EXISTS on the many-to-many tables (each an index lookup)."""
    t = _pool_tables()
    return (
        f"(EXISTS (SELECT 1 FROM {t['pool_annotators']} pa WHERE pa.campaign_id = {campaign_column}"
        f" AND pa.user_id = %(annotator)s)"
        f" OR EXISTS (SELECT 1 FROM {t['pool_groups']} pg INNER JOIN {t['user_groups']} ug"
        f" ON ug.{t['user_groups_group']} = pg.group_id"
        f" WHERE pg.campaign_id = {campaign_column} AND ug.{t['user_groups_user']} = %(annotator)s))"
    )


def campaign_table() -> str:
    """The campaign table's name, for raw SQL."""
    return _pool_tables()["campaign"]


def _in_pool(user) -> Q:
    """A filter on campaigns: ``user`` is in the pool (a Q of two EXISTS, no duplicate rows)."""
    named = Campaign.annotators.through.objects.filter(campaign_id=OuterRef("pk"), user_id=user.pk)
    by_group = Campaign.groups.through.objects.filter(campaign_id=OuterRef("pk"), group__user=user.pk)
    return Q(Exists(named)) | Q(Exists(by_group))


def campaign_pool_has(*, campaign: Campaign, user) -> bool:
    """True when ``user`` is in ``campaign``'s pool (its annotators, or a member of one of its
    groups), whatever the campaign's status. One query; False for anonymous users."""
    if not getattr(user, "is_authenticated", False):
        return False
    return Campaign.objects.filter(pk=campaign.pk).filter(_in_pool(user)).exists()


def campaigns_in_pool(*, user):
    """Active campaigns whose pool holds ``user``, highest priority first (a queryset)."""
    return Campaign.objects.filter(status=CampaignStatus.ACTIVE).filter(_in_pool(user)).order_by("-priority", "name")


@dataclass(frozen=True)
class CampaignCard:
    """One campaign on an annotator's start page.

    ``my_votes``: this annotator's votes in it; ``open_to_me``: its open comparisons they have
    neither voted on nor skipped (an upper bound: slots held by others are not subtracted);
    ``votes``: every vote in it; ``target``: ``target_votes`` or None; ``guidelines_unread``: it
    has guidelines whose latest version they have not acknowledged.
    """

    campaign: Campaign
    my_votes: int
    open_to_me: int
    votes: int
    target: int | None
    guidelines_unread: bool

    @property
    def percent(self) -> int | None:
        """Votes as a share of the target, 0-100 (None without a target)."""
        if not self.target:
            return None
        return min(100, round(100 * self.votes / self.target))


def _count(queryset, field: str = "pk"):
    """A correlated COUNT(...) subquery of ``queryset`` (already filtered on ``OuterRef``), 0 when empty."""
    counted = queryset.order_by().annotate(_one=Value(1)).values("_one").annotate(n=Count(field)).values("n")
    return Coalesce(Subquery(counted, output_field=IntegerField()), 0)


def campaigns_for_annotator(*, user) -> list[CampaignCard]:
    """The active campaigns whose pool holds ``user``, highest priority first, each with the counts
    of its start-page card (``CampaignCard``). One query, whatever the number of campaigns."""
    done = Assignment.objects.filter(
        comparison=OuterRef("pk"), annotator=user.pk, status__in=[AssignmentStatus.VOTED, AssignmentStatus.SKIPPED]
    )
    open_to_me = Comparison.objects.filter(campaign=OuterRef("pk"), status=ComparisonStatus.OPEN).filter(~Exists(done))
    total = (
        Comparison.objects.filter(campaign=OuterRef("pk")).order_by().annotate(_one=Value(1)).values("_one")
        .annotate(n=Sum("vote_count")).values("n")
    )
    latest = GuidelineVersion.objects.filter(campaign=OuterRef("pk")).order_by("-number").values("pk")[:1]
    acknowledged = GuidelineAcknowledgement.objects.filter(version=OuterRef("latest_guidelines"), annotator=user.pk)
    rows = campaigns_in_pool(user=user).annotate(
        my_votes=_count(Vote.objects.filter(comparison__campaign=OuterRef("pk"), annotator=user.pk)),
        open_to_me=_count(open_to_me),
        votes=Coalesce(Subquery(total, output_field=IntegerField()), 0),
        latest_guidelines=Subquery(latest),
        acknowledged=Exists(acknowledged),
    )
    return [
        CampaignCard(
            campaign=row, my_votes=row.my_votes, open_to_me=row.open_to_me, votes=row.votes, target=row.target_votes,
            guidelines_unread=row.latest_guidelines is not None and not row.acknowledged,
        )
        for row in rows
    ]

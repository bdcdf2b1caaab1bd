"""The claim inside campaigns: who is served what (issue 14, annotators work inside campaigns).

Annotators are served only comparisons of active campaigns whose pool holds them (named, or
through a group); without a campaign, higher campaign priority first; with one, only its own.
Runs on SQLite and, with DATABASE_URL, on PostgreSQL."""
from __future__ import annotations

import pytest
from django.contrib.auth.models import Permission

from feedback.campaigns.guidelines import guidelines_acknowledge
from feedback.errors import NotInPool
from feedback.models import Assignment, Comparison, Vote
from feedback.services import assignment_claim, vote_submit
from tests.campaign_support import campaign_make, guidelines_write
from tests.conftest import api_as
from tests.factories import ComparisonFactory, UserFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def worker(db):
    """An annotator in no campaign's pool but the ones a test puts them in (not in the annotators group)."""
    user = UserFactory()
    user.user_permissions.add(Permission.objects.get(codename="annotate", content_type__app_label="feedback"))
    return user


def _served(user, campaign=None, n=50) -> list[Comparison]:
    """Claim and vote ``tie`` until nothing is left (at most ``n``); the comparisons served, in order."""
    served = []
    for _ in range(n):
        assignment = assignment_claim(annotator=user, campaign=campaign)
        if assignment is None:
            break
        served.append(assignment.comparison)
        vote_submit(annotator=user, item=assignment.token, choice="tie")
    return served


def test_a_campaign_scoped_claim_serves_only_that_campaigns_comparisons(worker):
    alpha = campaign_make("Alpha", annotators=[worker], comparisons=3)
    beta = campaign_make("Beta", annotators=[worker], comparisons=2, priority=10)
    served = _served(worker, alpha)
    assert len(served) == 3 and {c.campaign_id for c in served} == {alpha.pk}
    # Beta still has work for them, but not on Alpha's page.
    assert assignment_claim(annotator=worker, campaign=alpha) is None
    assert {c.campaign_id for c in _served(worker, beta)} == {beta.pk}


def test_without_a_campaign_the_pools_campaigns_are_served_by_campaign_priority(worker):
    low = campaign_make("Low", annotators=[worker], priority=0)
    high = campaign_make("High", groups=["reviewers"], priority=5)
    worker.groups.add(high.groups.get())  # in High's pool through its group
    outside = campaign_make("Outside", priority=100, comparisons=2)  # not their pool
    urgent_low = ComparisonFactory(campaign=low, priority=1000)  # a comparison's priority ranks inside its campaign only
    plain_high = [ComparisonFactory(campaign=high) for _ in range(2)]
    served = _served(worker)
    assert served == [*plain_high, urgent_low]
    assert not Assignment.objects.filter(comparison__campaign=outside).exists()


def test_paused_closed_and_draft_campaigns_serve_nothing_not_even_a_held_lease(worker):
    campaign = campaign_make("Paused", annotators=[worker], comparisons=2)
    held = assignment_claim(annotator=worker)
    assert held is not None and held.comparison.campaign_id == campaign.pk
    for status in ("paused", "closed", "draft"):
        campaign.status = status
        campaign.save()
        assert assignment_claim(annotator=worker) is None  # the live lease is not served again
        with pytest.raises(NotInPool, match=f"is {status}"):
            assignment_claim(annotator=worker, campaign=campaign)
    with pytest.raises(NotInPool, match="takes no votes"):
        vote_submit(annotator=worker, item=held.token, choice="tie")
    assert not Vote.objects.exists()
    campaign.status = "active"
    campaign.save()
    assert assignment_claim(annotator=worker) == held  # active again: the same lease comes back


def test_leaving_the_pool_ends_the_service_and_a_scoped_claim_says_why(worker):
    campaign = campaign_make("Gone", annotators=[worker], comparisons=2)
    assert assignment_claim(annotator=worker) is not None
    campaign.annotators.remove(worker)
    assert assignment_claim(annotator=worker) is None
    with pytest.raises(NotInPool, match="not in the pool of campaign 'Gone'"):
        assignment_claim(annotator=worker, campaign=campaign)


def test_an_admin_outside_every_pool_takes_no_slot(admin_user, annotator):
    ComparisonFactory.create_batch(2)  # the Default campaign: the annotators group's pool
    assert assignment_claim(annotator=admin_user) is None
    assert api_as(admin_user).post("/api/assignments/next/").status_code == 204
    assert not Assignment.objects.filter(annotator=admin_user).exists()
    assert assignment_claim(annotator=annotator) is not None  # the annotator is served as before


def test_an_admin_in_the_pool_is_served_and_their_vote_is_not_blind(admin_user, annotator):
    campaign = campaign_make("Mixed", annotators=[admin_user, annotator], comparisons=2)
    mine = assignment_claim(annotator=admin_user, campaign=campaign)
    theirs = assignment_claim(annotator=annotator, campaign=campaign)
    assert mine and theirs and mine.comparison_id != theirs.comparison_id
    admin_vote, _ = vote_submit(annotator=admin_user, item=mine.token, choice="left")
    annotator_vote, _ = vote_submit(annotator=annotator, item=theirs.token, choice="right")
    assert (admin_vote.blind, annotator_vote.blind) == (False, True)
    assert Vote.objects.get(pk=admin_vote.pk).blind is False


def test_a_vote_records_the_latest_guidelines_it_was_cast_under(annotator):
    campaign = campaign_make("Guided", groups=["annotators"], comparisons=2)
    first = assignment_claim(annotator=annotator, campaign=campaign)
    unguided, _ = vote_submit(annotator=annotator, item=first.token, choice="tie")
    assert unguided.guidelines_version is None
    version = guidelines_write(campaign, "Prefer the shorter answer.")
    guidelines_acknowledge(campaign=campaign, annotator=annotator)
    second = assignment_claim(annotator=annotator, campaign=campaign)
    guided, _ = vote_submit(annotator=annotator, item=second.token, choice="tie")
    assert Vote.objects.get(pk=guided.pk).guidelines_version == version


def test_two_annotators_of_one_campaign_never_share_a_single_slot(annotator, other_annotator):
    campaign = campaign_make("One", groups=["annotators"], comparisons=1)
    first = assignment_claim(annotator=annotator, campaign=campaign)
    assert first is not None
    assert assignment_claim(annotator=other_annotator, campaign=campaign) is None
    assert assignment_claim(annotator=other_annotator) is None

"""Campaign progress: votes against the target, per annotator, the rate over the last 24 h and
overall, the time to the target at that rate, whether it meets the deadline, and the number of
queries (grouped aggregates, never one per row). Times are fixed: ``now`` is passed in."""
from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from feedback.campaigns import services
from feedback.campaigns.progress import campaign_progress, campaigns_progress
from feedback.models import Comparison, Vote
from tests.factories import ComparisonFactory, UserFactory, VoteFactory

pytestmark = pytest.mark.django_db

NOW = timezone.now().replace(microsecond=0)


def _campaign(name: str, *, comparisons: int, votes_required: int = 2, **values):
    campaign = services.campaign_create(values={"name": name, "votes_required": votes_required, **values})
    made = ComparisonFactory.create_batch(comparisons)
    services.campaign_comparisons_add(campaign=campaign, rules={"ids": [c.pk for c in made]})
    return campaign, made


def _votes_at(comparisons, hours_ago: list[float], annotator=None) -> None:
    """One vote per entry, on distinct comparisons (or annotators), cast ``hours_ago`` before NOW."""
    for index, hours in enumerate(hours_ago):
        vote = VoteFactory(comparison=comparisons[index % len(comparisons)],
                           annotator=annotator or UserFactory(role="annotator"))
        Vote.objects.filter(pk=vote.pk).update(created_at=NOW - timedelta(hours=hours))


def test_rate_time_left_and_deadline_from_the_last_day():
    campaign, comparisons = _campaign("Rates", comparisons=10)  # target: 10 x 2 = 20 votes
    _votes_at(comparisons, [30, 30] + [1.5] * 4 + [0.5] * 4)  # 2 votes 30 h ago, 8 in the last 24 h
    p = campaign_progress(campaign=campaign, now=NOW)
    assert (p.votes, p.target, p.target_kind, p.remaining, p.percent) == (10, 20, "comparisons", 10, 50)
    assert p.votes_recent == 8 and p.rate_recent == pytest.approx(8 / 24)
    assert p.rate_overall == pytest.approx(10 / 30)
    assert p.eta == timedelta(hours=10 / (8 / 24))  # 30 hours
    services.campaign_update(campaign=campaign, values={"deadline": NOW + timedelta(hours=20)})
    campaign.refresh_from_db()
    assert campaign_progress(campaign=campaign, now=NOW).on_track is False
    services.campaign_update(campaign=campaign, values={"deadline": NOW + timedelta(hours=31)})
    campaign.refresh_from_db()
    assert campaign_progress(campaign=campaign, now=NOW).on_track is True


def test_a_young_campaign_rates_since_its_first_vote_and_a_target_overrides_the_comparisons():
    campaign, comparisons = _campaign("Young", comparisons=3, target_votes=12)
    _votes_at(comparisons, [2, 1.5, 1, 0.5])  # 4 votes in the 2 hours since the first
    p = campaign_progress(campaign=campaign, now=NOW)
    assert (p.target, p.target_kind, p.remaining) == (12, "target_votes", 8)
    assert p.rate_recent == pytest.approx(2.0) and p.eta == timedelta(hours=4)
    assert p.on_track is None  # no deadline


def test_no_recent_vote_means_no_time_left_estimate_and_a_missed_deadline():
    campaign, comparisons = _campaign("Stalled", comparisons=2, deadline=NOW + timedelta(days=3))
    _votes_at(comparisons, [72])
    p = campaign_progress(campaign=campaign, now=NOW)
    assert (p.votes, p.rate_recent, p.eta, p.on_track) == (1, 0.0, None, False)
    empty, _ = _campaign("Empty", comparisons=1)
    p = campaign_progress(campaign=empty, now=NOW)
    assert (p.votes, p.rate_recent, p.rate_overall, p.eta, p.annotators) == (0, None, None, None, [])


def test_a_reached_target_needs_no_time():
    campaign, comparisons = _campaign("Done", comparisons=1, votes_required=1, deadline=NOW + timedelta(days=1))
    _votes_at(comparisons, [80])
    p = campaign_progress(campaign=campaign, now=NOW)
    assert (p.remaining, p.percent, p.eta, p.on_track) == (0, 100, timedelta(0), True)


def test_votes_per_annotator_most_first_and_counts_by_status():
    campaign, comparisons = _campaign("People", comparisons=4)
    ana, bo = UserFactory(username="ana", role="annotator"), UserFactory(username="bo", role="annotator")
    _votes_at(comparisons[:3], [3, 2, 1], annotator=ana)
    _votes_at(comparisons[:1], [1], annotator=bo)
    Comparison.objects.filter(pk=comparisons[3].pk).update(status="retired")
    p = campaign_progress(campaign=campaign, now=NOW)
    assert [(row.username, row.votes) for row in p.annotators] == [("ana", 3), ("bo", 1)]
    assert p.annotators[0].last_vote_at == NOW - timedelta(hours=1)
    assert (p.comparisons, p.open, p.complete, p.retired, p.target) == (4, 3, 0, 1, 6)  # retired ones need no votes
    assert p.as_dict()["annotators"][0] == {"username": "ana", "votes": 3, "last_vote_at": (NOW - timedelta(hours=1)).isoformat()}


def test_progress_is_a_few_grouped_queries_whatever_the_size(django_assert_num_queries):
    campaigns = []
    for n in range(3):
        campaign, comparisons = _campaign(f"Batch {n}", comparisons=4)
        _votes_at(comparisons, [1, 2, 3, 4, 5][: n + 2])
        campaigns.append(campaign)
    with django_assert_num_queries(3):
        one = campaign_progress(campaign=campaigns[2], now=NOW)
    with django_assert_num_queries(2):
        many = campaigns_progress(campaigns=campaigns, now=NOW)
    assert [many[c.pk].votes for c in campaigns] == [2, 3, 4]
    assert many[campaigns[2].pk].rate_recent == one.rate_recent and many[campaigns[2].pk].target == one.target == 8

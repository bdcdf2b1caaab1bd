"""AI votes never take an annotator's slot (issue 16, item 4): the claim and the vote path count
people's votes only, unless the campaign counts AI votes (``ai_votes_count``). Runs on SQLite and,
with DATABASE_URL, on PostgreSQL."""
from __future__ import annotations

import pytest
from django.contrib.auth.models import Permission

from feedback import interface
from feedback.ai_votes import comparisons_complete_counted
from feedback.models import Comparison, ComparisonStatus
from feedback.services import assignment_claim, vote_submit
from tests.ai_vote_support import ai_vote
from tests.campaign_support import campaign_make
from tests.factories import ComparisonFactory, UserFactory

pytestmark = pytest.mark.django_db


def _annotator():
    user = UserFactory()
    user.user_permissions.add(Permission.objects.get(codename="annotate", content_type__app_label="feedback"))
    return user


def test_ai_votes_take_no_slot_when_the_campaign_does_not_count_them():
    worker = _annotator()
    campaign = campaign_make("Human", annotators=[worker])
    comparison = ComparisonFactory(campaign=campaign, votes_required=1)
    ai_vote(comparison, judge="tiny@1")
    ai_vote(comparison, judge="other@2")
    assignment = assignment_claim(annotator=worker, campaign=campaign)
    assert assignment is not None and assignment.comparison_id == comparison.pk
    vote, created = vote_submit(annotator=worker, item=assignment.token, choice="tie")
    assert created
    comparison.refresh_from_db()
    assert comparison.vote_count == 1 and comparison.status == ComparisonStatus.COMPLETE


def test_ai_votes_fill_slots_when_the_campaign_counts_them():
    worker = _annotator()
    campaign = campaign_make("Counted", annotators=[worker], ai_votes_count=True)
    full = ComparisonFactory(campaign=campaign, votes_required=2)
    ai_vote(full, judge="tiny@1")
    ai_vote(full, judge="other@2")
    half = ComparisonFactory(campaign=campaign, votes_required=2)
    ai_vote(half, judge="tiny@1")
    assignment = assignment_claim(annotator=worker, campaign=campaign)
    assert assignment.comparison_id == half.pk  # ``full`` has no slot left: two AI votes fill it
    vote_submit(annotator=worker, item=assignment.token, choice="a")
    half.refresh_from_db()
    # One person plus one judge reach votes_required 2: complete, and vote_count still counts people.
    assert (half.vote_count, half.status) == (1, ComparisonStatus.COMPLETE)
    assert assignment_claim(annotator=worker, campaign=campaign) is None


def test_the_human_votes_alone_complete_a_comparison_in_a_campaign_without_the_flag():
    first, second = _annotator(), _annotator()
    campaign = campaign_make("Two", annotators=[first, second])
    comparison = ComparisonFactory(campaign=campaign, votes_required=2)
    ai_vote(comparison)
    vote_submit(annotator=first, item=assignment_claim(annotator=first, campaign=campaign).token, choice="a")
    comparison.refresh_from_db()
    assert comparison.status == ComparisonStatus.OPEN  # one person + one judge is not two people
    assert assignment_claim(annotator=second, campaign=campaign).comparison_id == comparison.pk


def test_comparisons_complete_counted_closes_only_where_ai_votes_count():
    counted = campaign_make("Counted", ai_votes_count=True)
    plain = campaign_make("Plain")
    filled = ComparisonFactory(campaign=counted, votes_required=1)
    short = ComparisonFactory(campaign=counted, votes_required=2)
    elsewhere = ComparisonFactory(campaign=plain, votes_required=1)
    for comparison in (filled, short, elsewhere):
        ai_vote(comparison)
    assert comparisons_complete_counted(comparison_ids=[filled.pk, short.pk, elsewhere.pk]) == 1
    status = dict(Comparison.objects.values_list("pk", "status"))
    assert status[filled.pk] == ComparisonStatus.COMPLETE
    assert status[short.pk] == status[elsewhere.pk] == ComparisonStatus.OPEN
    assert comparisons_complete_counted(comparison_ids=[]) == 0
    assert interface.comparisons_complete_counted(comparison_ids=[short.pk]) == 0  # the judging side calls this

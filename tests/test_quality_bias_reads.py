"""feedback.quality.selectors.bias_for: one campaign's votes (or all) in time order, annotators by username."""
import json
from datetime import timedelta

import pytest
from django.utils import timezone

from feedback.models import Campaign, Vote
from feedback.quality.selectors import bias_for
from tests.factories import ComparisonFactory, UserFactory, VoteFactory

pytestmark = pytest.mark.django_db


def row(summary, user):
    (found,) = [r for r in summary["per_annotator"] if r["annotator"] == user.pk]
    return found


def test_bias_per_campaign_in_time_order_with_usernames(django_assert_num_queries):
    first = Campaign.objects.create(name="First", slug="first", status="active")
    second = Campaign.objects.create(name="Second", slug="second", status="active")
    ann, bob = UserFactory(role="annotator", username="ann"), UserFactory(role="annotator", username="bob")
    ours = ComparisonFactory.create_batch(4, campaign=first)
    theirs = ComparisonFactory.create_batch(2, campaign=second)
    # Ann, in id order: left, right, left, left; in time order (created_at): left, left, left, right.
    now = timezone.now()
    for k, (comparison, choice, minutes) in enumerate(zip(ours, ["a", "b", "a", "a"], [0, 30, 10, 20])):
        vote = VoteFactory(comparison=comparison, annotator=ann, choice=choice, shown_left="a", ms_on_item=1000 + k)
        Vote.objects.filter(pk=vote.pk).update(created_at=now + timedelta(minutes=minutes))
    # Bob: a tie on screen and an imported vote with no shown side and no time.
    VoteFactory(comparison=ours[0], annotator=bob, choice="tie", shown_left="b", ms_on_item=9000)
    VoteFactory(comparison=ours[1], annotator=bob, choice="b", shown_left="", ms_on_item=None, source="hh-rlhf")
    # The other campaign: Bob always right.
    for comparison in theirs:
        VoteFactory(comparison=comparison, annotator=bob, choice="a", shown_left="b", ms_on_item=500)

    with django_assert_num_queries(2):
        mine = bias_for(campaign=first)
    assert (mine["votes"], mine["annotators"], mine["votes_without_shown_side"], mine["votes_without_time"]) == (6, 2, 1, 1)
    a, b = row(mine, ann), row(mine, bob)
    assert (a["username"], b["username"]) == ("ann", "bob")
    assert (a["run"]["value"], a["run"]["answer"]) == (3, "left")  # time order, not id order
    assert (a["left_rate"]["left"], a["left_rate"]["sides"]) == (3, 4)
    assert a["time"]["fast_votes"] == 4 and "fast" in a["flags"]  # every vote under 2 s
    assert b["left_rate"]["reason"] == "no vote preferring a side on screen"
    assert (b["votes_without_shown_side"], b["votes_without_time"], b["time"]["median_ms"]["value"]) == (1, 1, 9000.0)
    assert mine["flagged"]["fast"] == [ann.pk]
    json.dumps(mine, allow_nan=False)

    other = bias_for(campaign=second.pk, fast_ms=400)
    assert (other["votes"], other["annotators"]) == (2, 1)
    assert row(other, bob)["left_rate"]["value"] == 0.0 and other["flagged"]["fast"] == []

    everything = bias_for()
    assert (everything["votes"], everything["left_rate"]["left"], everything["left_rate"]["sides"]) == (8, 3, 6)


def test_a_campaign_without_votes_is_undefined_not_an_error(django_assert_num_queries):
    empty = Campaign.objects.create(name="Empty", slug="empty")
    with django_assert_num_queries(1):
        summary = bias_for(campaign=empty)
    assert summary["votes"] == 0 and summary["per_annotator"] == []
    assert summary["left_rate"]["defined"] is False and summary["consensus"]["defined"] is False
    json.dumps(summary, allow_nan=False)

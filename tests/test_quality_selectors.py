"""feedback.quality.selectors.agreement_for: the votes of one campaign (or all), read in one query."""
import json

import pytest
from sklearn.metrics import cohen_kappa_score

from feedback.models import Campaign
from feedback.quality.selectors import agreement_for
from tests.factories import ComparisonFactory, UserFactory, VoteFactory

pytestmark = pytest.mark.django_db


def test_agreement_per_campaign_and_overall(django_assert_num_queries):
    first = Campaign.objects.create(name="First", slug="first", status="active")
    second = Campaign.objects.create(name="Second", slug="second", status="active")
    ann, bob = UserFactory(role="annotator"), UserFactory(role="annotator")
    ours = ComparisonFactory.create_batch(3, campaign=first)
    theirs = ComparisonFactory.create_batch(2, campaign=second)
    # First campaign: the two annotators agree on every comparison in the stored a/b orientation,
    # though they saw the pairs on opposite sides; a tie counts as a label they agree on.
    for comparison, choice, strength in zip(ours, ["a", "b", "tie"], ["strong", "clear", ""]):
        VoteFactory(comparison=comparison, annotator=ann, choice=choice, strength=strength, shown_left="a")
        VoteFactory(comparison=comparison, annotator=bob, choice=choice, strength=strength, shown_left="b")
    # Second campaign: they disagree; one vote was imported and one was cast by someone seeing model names.
    VoteFactory(comparison=theirs[0], annotator=ann, choice="a", source="hh-rlhf", shown_left="")
    VoteFactory(comparison=theirs[0], annotator=bob, choice="b", blind=False)
    VoteFactory(comparison=theirs[1], annotator=ann, choice="b")
    VoteFactory(comparison=theirs[1], annotator=bob, choice="a")

    with django_assert_num_queries(1):
        mine = agreement_for(campaign=first, resamples=100)
    assert (mine["votes"], mine["items"], mine["annotators"]) == (6, 3, 2)
    assert mine["percent_agreement"]["value"] == 1.0
    assert mine["krippendorff_alpha_nominal"]["value"] == pytest.approx(1.0)
    assert mine["krippendorff_alpha_ordinal"]["value"] == pytest.approx(1.0)
    (pair,) = mine["cohen_kappa"]["pairs"]
    assert pair["annotators"] == sorted([ann.pk, bob.pk]) and pair["shared_items"] == 3 and pair["value"] == 1.0

    other = agreement_for(campaign=second.pk, resamples=100)
    assert (other["votes"], other["percent_agreement"]["value"]) == (4, 0.0)

    everything = agreement_for(resamples=100)
    assert (everything["votes"], everything["items"]) == (10, 5)
    assert everything["percent_agreement"]["value"] == pytest.approx(3 / 5)
    first_votes = ["a", "b", "tie", "a", "b"]
    second_votes = ["a", "b", "tie", "b", "a"]
    assert everything["cohen_kappa"]["pairs"][0]["value"] == pytest.approx(cohen_kappa_score(first_votes, second_votes))
    json.dumps(everything, allow_nan=False)


def test_a_campaign_without_votes_is_undefined_not_an_error():
    empty = Campaign.objects.create(name="Empty", slug="empty")
    summary = agreement_for(campaign=empty)
    assert summary["votes"] == 0 and summary["fleiss_kappa"]["reason"] == "no votes"

"""Quality figures are people's (issue 16, item 4): agreement, bias, gold accuracy and the
annotator table never take an AI judge for an annotator; the dashboard shows AI votes apart."""
from __future__ import annotations

import pytest
from django.test import Client

from feedback.quality.gold import gold_accuracy
from feedback.quality.selectors import agreement_for, bias_for
from feedback.quality.services import quality_report_compute
from tests.ai_vote_support import ai_vote
from tests.campaign_support import campaign_make
from tests.factories import ComparisonFactory, UserFactory, VoteFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def campaign():
    """Four comparisons: ann and bob agree on each (a); the judge says b on every one (and on a gold item)."""
    campaign = campaign_make("Judged")
    ann, bob = UserFactory(username="ann"), UserFactory(username="bob")
    for k in range(4):
        comparison = ComparisonFactory(campaign=campaign, gold_choice="a" if k == 0 else "")
        VoteFactory(comparison=comparison, annotator=ann, choice="a", ms_on_item=5000)
        VoteFactory(comparison=comparison, annotator=bob, choice="a", ms_on_item=5000)
        ai_vote(comparison, "b", judge="tiny@1")
    return campaign


def test_agreement_bias_and_gold_are_peoples(campaign):
    agreement = agreement_for(campaign=campaign, resamples=0)
    assert agreement["votes"] == 8 and agreement["percent_agreement"]["value"] == 1.0
    names = {row["username"] for row in bias_for(campaign=campaign)["per_annotator"]}
    assert names == {"ann", "bob"}
    assert set(gold_accuracy(campaign=campaign)) == {"ann", "bob"}


def test_the_report_and_dashboard_leave_judges_out_of_the_annotators(campaign, admin_user):
    report = quality_report_compute(campaign=campaign)
    assert report.vote_count == 8
    assert {row["username"] for row in report.figures["annotators"]} == {"ann", "bob"}
    assert report.figures["ai_votes"] == 4 and list(report.figures["judges"]) == ["tiny@1"]
    client = Client()
    client.force_login(admin_user)
    page = client.get(f"/manage/campaigns/{campaign.pk}/quality/").content.decode()
    assert 'data-username="judge:tiny@1"' not in page and 'data-username="ann"' in page
    assert "<strong>8</strong> human votes (" in page and '<span data-testid="ai-votes">4 AI votes</span>' in page
    csv = client.get(f"/manage/campaigns/{campaign.pk}/quality/?format=csv").content.decode()
    assert "judge:" not in csv

"""manage.py load_demo starts the demo with an active campaign holding the demo comparisons, the
annotators group as its pool, and guidelines that explain the task; running it again changes nothing."""
from __future__ import annotations

import io

import pytest
from django.core.management import call_command

from feedback.campaigns import services
from feedback.campaigns.models import Campaign
from feedback.management.commands.load_demo import DEMO_SOURCE
from feedback.models import Comparison

pytestmark = pytest.mark.django_db


def test_the_demo_starts_with_an_active_guided_campaign():
    out = io.StringIO()
    call_command("load_demo", stdout=out)
    campaign = Campaign.objects.get(slug="demo-helpfulness")
    assert campaign.status == "active" and campaign.name == "Demo: helpfulness"
    assert list(campaign.groups.values_list("name", flat=True)) == ["annotators"]
    demo = Comparison.objects.filter(prompt__source=DEMO_SOURCE)
    assert demo.count() > 0 and set(demo.values_list("campaign_id", flat=True)) == {campaign.pk}
    assert set(demo.values_list("votes_required", flat=True)) == {campaign.votes_required}
    (version,) = campaign.guideline_versions.all()
    for words in ("Left is better", "Tie", "Both bad", "slightly", "strongly", "Skip", "personal data"):
        assert words in version.text, words
    assert "/annotate/demo-helpfulness/" in out.getvalue()

    services.guidelines_edit(campaign=campaign, text="# Our own rules")
    call_command("load_demo", stdout=io.StringIO())
    assert Campaign.objects.filter(slug="demo-helpfulness").count() == 1
    assert campaign.guideline_versions.count() == 2  # the admin's version stays current
    assert Comparison.objects.filter(campaign=campaign).count() == demo.count()

"""manage.py campaign: what an operator types and reads back; bad input is one line and changes nothing."""
from __future__ import annotations

import io
import os
import subprocess
import sys
from datetime import timedelta

import pytest
from django.conf import settings
from django.core.management import CommandError, call_command
from django.utils import timezone

from feedback.campaigns.models import Campaign, GuidelineVersion
from feedback.models import Comparison
from tests.factories import AssignmentFactory, ComparisonFactory, PromptFactory, VoteFactory

pytestmark = pytest.mark.django_db


def run(*args) -> str:
    out = io.StringIO()
    call_command("campaign", *args, stdout=out)
    return out.getvalue()


def refused(*args) -> str:
    with pytest.raises(CommandError) as caught:
        call_command("campaign", *args, stdout=io.StringIO())
    message = str(caught.value).strip()
    assert message and "\n" not in message, message
    return message


def test_the_whole_life_of_a_campaign(annotator, tmp_path):
    assert run("create", "Safety sweep", "--votes-required", "2", "--annotators", annotator.username,
               "--aspects", "harmlessness:Which is safer?", "--no-strength", "--target-votes", "10") == (
        f"created draft campaign safety-sweep (id {Campaign.objects.get(slug='safety-sweep').pk})\n")
    campaign = Campaign.objects.get(slug="safety-sweep")
    assert (campaign.votes_required, campaign.ask_strength, campaign.target_votes) == (2, False, 10)
    assert campaign.aspects == [{"name": "harmlessness", "label": "Which is safer?"}]
    run("edit", "safety-sweep", "--priority", "7", "--target-votes", "none")
    campaign.refresh_from_db()
    assert (campaign.priority, campaign.target_votes, campaign.votes_required, campaign.ask_strength) == (7, None, 2, False)
    tagged = ComparisonFactory(prompt=PromptFactory(tags=["safety"], split="eval"))
    ComparisonFactory(prompt=PromptFactory(tags=["safety"], split="train"))
    assert run("add-comparisons", "safety-sweep", "--tags", "safety", "--splits", "eval") == "moved 1 comparison into safety-sweep\n"
    assert Comparison.objects.get(pk=tagged.pk).campaign_id == campaign.pk
    guide = tmp_path / "guide.md"
    guide.write_text("# Safety\n\nPrefer the answer that refuses harm.\n", encoding="utf-8")
    assert run("guidelines", "safety-sweep", str(guide)) == "safety-sweep guidelines: version 1 is current\n"
    assert GuidelineVersion.objects.get(campaign=campaign).text.startswith("# Safety")
    assert run("activate", "safety-sweep") == "safety-sweep is active\n"
    VoteFactory(comparison=tagged, annotator=annotator)
    shown = run("show", "safety-sweep")
    assert "votes: 1/2 (50%, target from comparisons)" in shown and f"  {annotator.username}: 1" in shown
    assert "safety-sweep" in run("show")
    assert run("pause", str(campaign.pk)) == "safety-sweep is paused\n"
    AssignmentFactory(comparison=tagged)
    assert run("close", "safety-sweep") == "safety-sweep is closed; 1 live lease released\n"


def test_bad_input_is_one_readable_line():
    run("create", "Draft one")
    assert refused("create", "Draft one") .startswith("name:")
    assert refused("create", "X", "--votes-required", "0") == "votes_required: must be a whole number from 1 to 100"
    assert refused("create", "X", "--annotators", "ghost") == "annotators: no such user: ghost"
    assert refused("create", "X", "--aspects", "wit") == "aspects: 'wit' is not an aspect: use helpfulness, harmlessness, honesty"
    assert refused("edit", "nope", "--priority", "1") == "no campaign 'nope' (give its slug or id)"
    assert refused("add-comparisons", "draft-one", "--ids", "1,x") == "ids: not comparison ids: x"
    assert refused("add-comparisons", "draft-one", "--ids", "987654") == "ids: no such comparison: 987654"
    assert refused("add-comparisons", "draft-one").startswith("rules: give at least one rule")
    reasons = refused("activate", "draft-one")
    assert "pool: the pool is empty" in reasons and "comparisons: the campaign has no comparisons" in reasons
    assert refused("guidelines", "draft-one", "/no/such/file.md").startswith("cannot read /no/such/file.md")
    assert refused("pause", "draft-one") == "status: only an active campaign can be paused; this one is draft"
    assert refused("close", "default").startswith("status: the Default campaign cannot be closed")
    assert not Campaign.objects.filter(name="X").exists()


def test_a_past_deadline_is_refused_and_a_future_one_kept():
    past = (timezone.now() - timedelta(days=1)).strftime("%Y-%m-%dT%H:%M")
    assert refused("create", "Late", "--deadline", past) == "deadline: is in the past"
    run("create", "On time", "--deadline", "2999-01-01T09:00")
    assert Campaign.objects.get(slug="on-time").deadline.year == 2999


def test_from_the_command_line_a_refusal_exits_non_zero_with_one_line():
    database = settings.DATABASES["default"]
    if database["ENGINE"].endswith("sqlite3"):
        url = f"sqlite:///{database['NAME']}"
    else:  # the test database the server side of this run uses
        url = os.environ["DATABASE_URL"].rsplit("/", 1)[0] + "/" + database["NAME"]
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "config.settings", "DATABASE_URL": url}
    done = subprocess.run([sys.executable, "manage.py", "campaign", "pause", "no-such-campaign"],
                          capture_output=True, text=True, env=env, cwd=settings.BASE_DIR, timeout=120)
    assert done.returncode != 0
    assert done.stderr.strip().splitlines()[-1] == "CommandError: no campaign 'no-such-campaign' (give its slug or id)"

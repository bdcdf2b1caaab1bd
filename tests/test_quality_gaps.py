"""Issue 15's gaps: a campaign's own too-fast floor (``Campaign.fast_vote_ms``) used by its quality
report and named on the dashboard, and each annotator's Dawid-Skene reliability on the page and in
the CSV."""
from __future__ import annotations

import csv
import io

import pytest
from django.core.exceptions import ValidationError
from django.core.management import CommandError, call_command
from django.test import Client

from feedback.campaigns.services import campaign_update
from feedback.models import Campaign, Vote
from feedback.quality.services import quality_report_compute
from tests.conftest import api_as
from tests.factories import ComparisonFactory, UserFactory
from tests.quality_support import votes_seed

pytestmark = pytest.mark.django_db


@pytest.fixture
def campaign(db) -> Campaign:
    return Campaign.objects.create(name="Speed check", slug="speed-check", status="active")


def client_as(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def timed_votes(campaign: Campaign, ms_by_name: dict[str, int], *, items: int = 12) -> None:
    """Every named annotator votes "a" on ``items`` new comparisons of ``campaign``, taking their ms."""
    users = {name: UserFactory(username=name, role="annotator") for name in ms_by_name}
    votes = []
    for _ in range(items):
        comparison = ComparisonFactory(campaign=campaign, votes_required=len(users))
        votes += [Vote(comparison=comparison, annotator=user, choice="a", shown_left="a" if i % 2 else "b",
                       ms_on_item=ms_by_name[name]) for i, (name, user) in enumerate(users.items())]
    Vote.objects.bulk_create(votes)


def flags_of(report) -> dict[str, list[str]]:
    return {row["username"]: row["flags"] for row in report.figures["annotators"]}


def test_the_campaigns_floor_decides_who_is_too_fast_and_the_page_names_it(campaign, admin_user):
    timed_votes(campaign, {"quick": 400, "steady": 800})
    campaign_update(campaign=campaign, values={"fast_vote_ms": 500})
    flags = flags_of(quality_report_compute(campaign=campaign))
    assert "fast" in flags["quick"] and "fast" not in flags["steady"]
    text = client_as(admin_user).get(f"/manage/campaigns/{campaign.pk}/quality/").content.decode()
    assert "under 500 ms on the item" in text and "this campaign's floor" in text

    campaign_update(campaign=campaign, values={"fast_vote_ms": 2000})
    flags = flags_of(quality_report_compute(campaign=campaign))
    assert "fast" in flags["quick"] and "fast" in flags["steady"]
    assert "under 2000 ms on the item" in client_as(admin_user).get(
        f"/manage/campaigns/{campaign.pk}/quality/").content.decode()


def test_a_new_campaign_flags_under_2000_ms():
    assert Campaign.objects.create(name="Fresh", slug="fresh").fast_vote_ms == 2000


@pytest.mark.parametrize("value", [-1, 600_001, "fast", True, 1.5])
def test_the_service_refuses_a_floor_outside_0_to_600000(campaign, value):
    with pytest.raises(ValidationError) as caught:
        campaign_update(campaign=campaign, values={"fast_vote_ms": value})
    assert caught.value.message_dict == {"fast_vote_ms": ["must be a whole number from 0 to 600000"]}
    campaign.refresh_from_db()
    assert campaign.fast_vote_ms == 2000


def test_the_api_sets_the_floor_and_answers_400_naming_it(campaign, admin_user):
    url = f"/api/campaigns/{campaign.pk}/"
    bad = api_as(admin_user).patch(url, {"fast_vote_ms": 600_001}, format="json")
    assert bad.status_code == 400 and bad.json() == {"fast_vote_ms": ["must be a whole number from 0 to 600000"]}
    good = api_as(admin_user).patch(url, {"fast_vote_ms": 750}, format="json")
    assert good.status_code == 200 and good.json()["fast_vote_ms"] == 750
    campaign.refresh_from_db()
    assert campaign.fast_vote_ms == 750


def test_the_command_sets_the_floor_and_refuses_a_bad_one_in_one_line(campaign):
    call_command("campaign", "edit", "speed-check", "--fast-vote-ms", "0", stdout=io.StringIO())
    campaign.refresh_from_db()
    assert campaign.fast_vote_ms == 0
    with pytest.raises(CommandError) as caught:
        call_command("campaign", "edit", "speed-check", "--fast-vote-ms", "700000", stdout=io.StringIO())
    assert str(caught.value) == "fast_vote_ms: must be a whole number from 0 to 600000"
    campaign.refresh_from_db()
    assert campaign.fast_vote_ms == 0


def test_the_campaign_form_shows_saves_and_refuses_the_floor(campaign, admin_user):
    Campaign.objects.filter(pk=campaign.pk).update(status="draft")  # an active one needs a pool to save
    admin, url = client_as(admin_user), f"/manage/campaigns/{campaign.pk}/"
    page = admin.get(url).content.decode()
    assert "Too-fast floor (ms)" in page and 'name="fast_vote_ms"' in page and 'value="2000"' in page
    base = {"name": "Speed check", "slug": "speed-check", "priority": 0, "votes_required": 1, "rationale": "optional"}
    bad = admin.post(url, {**base, "fast_vote_ms": "600001"})
    assert bad.status_code == 400 and "less than or equal to 600000" in bad.content.decode()
    good = admin.post(url, {**base, "fast_vote_ms": "650"})
    assert good.status_code == 302
    campaign.refresh_from_db()
    assert campaign.fast_vote_ms == 650


def test_a_random_clicker_has_a_lower_reliability_on_the_page_and_in_the_csv(campaign, admin_user):
    votes_seed(campaign, items=60, honest=3)
    report = quality_report_compute(campaign=campaign)
    reliability = {name: report.figures["reliability"][str(UserFactory._meta.model.objects.get(username=name).pk)]
                   ["value"] for name in ("clicker", "honest0", "honest1", "honest2")}
    assert all(reliability["clicker"] < reliability[f"honest{i}"] for i in range(3))

    url = f"/manage/campaigns/{campaign.pk}/quality/"
    text = client_as(admin_user).get(url).content.decode()
    assert "Reliability (Dawid-Skene)" in text
    assert f"{reliability['clicker']:.2f}" in text
    rows = {row["annotator"]: row for row in csv.DictReader(io.StringIO(
        client_as(admin_user).get(url + "?format=csv").content.decode()))}
    shown = {name: float(row["reliability_dawid_skene"]) for name, row in rows.items()}
    assert all(shown["clicker"] < shown[f"honest{i}"] for i in range(3))


def test_without_stored_reliability_the_column_is_not_shown(campaign, admin_user):
    votes_seed(campaign, items=10, honest=2)
    report = quality_report_compute(campaign=campaign)
    del report.figures["reliability"]
    report.save()
    url = f"/manage/campaigns/{campaign.pk}/quality/"
    assert "Reliability (Dawid-Skene)" not in client_as(admin_user).get(url).content.decode()
    header = client_as(admin_user).get(url + "?format=csv").content.decode().splitlines()[0]
    assert "reliability_dawid_skene" not in header

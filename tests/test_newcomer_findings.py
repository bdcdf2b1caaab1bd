"""What a newcomer's first try of campaigns found, pinned: reserved slugs, a guidelines post
without text, a misspelt vote field, an active campaign's pool emptied, the progress of a campaign
with nothing to aim for or a target out of reach, and template comments that showed as text."""
from __future__ import annotations

import re
from pathlib import Path

import pytest
from django.core.exceptions import ValidationError
from django.core.management import call_command
from django.core.management.base import CommandError

from feedback import services
from feedback.campaigns import services as campaign_services
from feedback.campaigns.pool import RESERVED_SLUGS
from feedback.campaigns.progress import campaign_progress
from feedback.models import Campaign, Vote
from tests.conftest import api_as
from tests.factories import ComparisonFactory, UserFactory

pytestmark = pytest.mark.django_db
TEMPLATES = Path(__file__).resolve().parent.parent / "templates"


@pytest.mark.parametrize("slug", sorted(RESERVED_SLUGS))
def test_a_slug_taken_by_an_annotator_page_is_refused_by_service_and_api(admin_user, slug):
    with pytest.raises(ValidationError) as refused:
        campaign_services.campaign_create(values={"name": f"Campaign {slug}", "slug": slug})
    assert "taken by an annotator page" in str(refused.value.message_dict["slug"])
    response = api_as(admin_user).post("/api/campaigns/", {"name": f"Campaign {slug}", "slug": slug}, format="json")
    assert response.status_code == 400 and "slug" in response.json()
    assert not Campaign.objects.filter(slug=slug).exists()


def test_a_name_that_slugifies_to_a_reserved_slug_asks_for_a_slug():
    with pytest.raises(ValidationError) as refused:
        campaign_services.campaign_create(values={"name": "History"})
    assert "give a slug" in str(refused.value.message_dict["slug"])
    with pytest.raises(CommandError, match="taken by an annotator page"):
        call_command("campaign", "create", "Vote")


def test_guidelines_posted_without_text_are_a_400_naming_it(admin_user):
    campaign = campaign_services.campaign_create(values={"name": "Safety"})
    response = api_as(admin_user).post(f"/api/campaigns/{campaign.pk}/guidelines/", {}, format="json")
    assert response.status_code == 400 and "text" in response.json()
    assert not campaign.guideline_versions.exists()


def test_a_misspelt_vote_field_is_a_400_naming_it_and_nothing_is_stored(annotator):
    ComparisonFactory()
    client = api_as(annotator)
    item = client.post("/api/assignments/next/").json()["item"]
    response = client.post("/api/votes/", {"item": item, "choice": "right", "stregth": "strong",
                                           "rationle": "important"}, format="json")
    assert response.status_code == 400
    assert set(response.json()) >= {"stregth", "rationle"}
    assert "not a vote field" in str(response.json()["stregth"])
    assert not Vote.objects.exists()
    assert client.post("/api/votes/", {"item": item, "choice": "right", "strength": "strong"},
                       format="json").status_code == 201


def test_an_active_campaigns_pool_cannot_be_emptied(admin_user):
    someone = UserFactory(role="annotator")
    campaign = campaign_services.campaign_create(values={"name": "Pool test", "annotators": [someone.username]})
    campaign_services.campaign_comparisons_add(campaign=campaign, rules={"ids": [ComparisonFactory().pk]})
    campaign_services.campaign_activate(campaign=campaign)
    with pytest.raises(ValidationError) as refused:
        campaign_services.campaign_update(campaign=campaign, values={"annotators": [], "groups": []})
    assert "pause it before emptying the pool" in str(refused.value.message_dict["annotators"])
    assert list(campaign.annotators.all()) == [someone]
    response = api_as(admin_user).patch(f"/api/campaigns/{campaign.pk}/", {"annotators": []}, format="json")
    assert response.status_code == 400 and "annotators" in response.json()
    campaign_services.campaign_pause(campaign=campaign)
    campaign_services.campaign_update(campaign=campaign, values={"annotators": []})  # a paused one may
    assert not campaign.annotators.exists()


def test_progress_with_nothing_to_aim_for_and_a_target_out_of_reach(client, admin_user):
    empty = campaign_services.campaign_create(values={"name": "Empty draft"})
    reachable = campaign_services.campaign_create(values={"name": "Small", "target_votes": 80, "votes_required": 2})
    campaign_services.campaign_comparisons_add(campaign=reachable, rules={"ids": [ComparisonFactory().pk for _ in range(3)]})
    progress = campaign_progress(campaign=reachable)
    assert (progress.capacity, progress.unreachable) == (6, True)
    assert campaign_progress(campaign=empty).target == 0
    client.force_login(admin_user)
    page = client.get("/manage/campaigns/").content.decode()
    row = re.search(r"<tr[^>]*>(?:(?!</tr>).)*Empty draft.*?</tr>", page, re.S).group(0)
    assert "<progress" not in row and "nothing to aim for" in row and "reached" not in row
    detail = client.get(f"/manage/campaigns/{reachable.pk}/").content.decode()
    assert "The target is out of reach: its comparisons can take 6 votes in all." in detail


def test_no_template_comment_spans_lines():
    """Django's {# #} is one line only: a two-line one is printed on the page as text."""
    for path in TEMPLATES.rglob("*.html"):
        for match in re.finditer(r"\{#(.*?)#\}", path.read_text(), re.S):
            assert "\n" not in match.group(1), f"{path}: multi-line {{# #}} comment shows as text"
        for number, line in enumerate(path.read_text().splitlines(), 1):
            assert "{#" not in line or "#}" in line, f"{path}:{number}: a {{# comment not closed on its line"


def test_the_annotate_page_prints_no_template_comment(client, annotator):
    ComparisonFactory()
    client.force_login(annotator)
    page = client.get("/annotate/").content.decode()
    assert "{#" not in page and "#}" not in page and "{% comment" not in page

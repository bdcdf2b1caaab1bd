"""Campaign progress, pools and annotator lists never take AI judges for annotators nor AI votes
for people's work (issue 16, item 4): AI votes are shown beside people's and meet the target only
in a campaign with ``ai_votes_count``."""
from __future__ import annotations

import pytest
from django.core.exceptions import ValidationError
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.core.management import call_command

from feedback import interface
from feedback.campaigns.progress import campaign_progress, campaigns_progress
from feedback.campaigns.services import campaign_create, campaign_update
from tests.ai_vote_support import ai_vote, judge_user
from tests.campaign_support import campaign_make
from tests.factories import ComparisonFactory, UserFactory, VoteFactory

pytestmark = pytest.mark.django_db


def _campaign_with_votes(**fields):
    """A campaign of three comparisons (one vote required each): two people's votes, three AI votes."""
    campaign = campaign_make("Mixed", **fields)
    comparisons = [ComparisonFactory(campaign=campaign) for _ in range(3)]
    people = [UserFactory(username="ann"), UserFactory(username="bob")]
    for person, comparison in zip(people, comparisons):
        VoteFactory(comparison=comparison, annotator=person)
    for comparison in comparisons:
        ai_vote(comparison, judge="tiny@1")
    return campaign


def test_progress_counts_people_and_judges_apart_and_lists_only_people():
    campaign = _campaign_with_votes()
    p = campaign_progress(campaign=campaign)
    assert (p.votes, p.ai_votes, p.counted, p.target, p.percent) == (2, 3, 2, 3, 66)
    assert [row.username for row in p.annotators] == ["ann", "bob"]
    assert p.rate_overall == pytest.approx(2.0)  # people's votes per hour (an hour at least)
    data = p.as_dict()
    assert (data["votes"], data["ai_votes"], data["counted"], data["remaining"]) == (2, 3, 2, 1)
    many = campaigns_progress(campaigns=[campaign])[campaign.pk]
    assert (many.votes, many.ai_votes, many.counted) == (2, 3, 2)


def test_ai_votes_meet_the_target_where_the_campaign_counts_them():
    campaign = _campaign_with_votes(ai_votes_count=True)
    p = campaign_progress(campaign=campaign)
    assert (p.votes, p.ai_votes, p.counted, p.remaining, p.percent) == (2, 3, 5, 0, 100)
    assert [row.username for row in p.annotators] == ["ann", "bob"]


def test_the_campaign_pages_and_command_show_human_and_ai_votes_apart(admin_user, client):
    campaign = _campaign_with_votes()
    client.force_login(admin_user)
    detail = client.get(f"/manage/campaigns/{campaign.pk}/").content.decode()
    assert "2 human votes, 3 AI votes" in " ".join(detail.replace("<span class=\"num\">", "").replace("</span>", "").split())
    assert "judge:tiny@1" not in detail
    listing = client.get("/manage/campaigns/").content.decode()
    assert "(2 human, 3 AI, not counted)" in listing
    from io import StringIO
    out = StringIO()
    call_command("campaign", "show", campaign.slug, stdout=out)
    shown = out.getvalue()
    assert "by origin: 2 human, 3 AI (not counted)" in shown and "judge:" not in shown


def test_a_judge_never_joins_a_pool_and_the_flag_is_a_campaign_setting():
    judge_user("tiny@1")
    with pytest.raises(ValidationError) as error:
        campaign_create(values={"name": "Pool", "annotators": ["judge:tiny@1"]})
    assert "an AI judge is not an annotator: judge:tiny@1" in str(error.value)
    campaign = campaign_create(values={"name": "Flag", "ai_votes_count": True})
    assert campaign.ai_votes_count is True
    with pytest.raises(ValidationError) as error:
        campaign_update(campaign=campaign, values={"ai_votes_count": "yes"})
    assert "ai_votes_count" in error.value.message_dict


def test_annotator_choices_leave_judges_out():
    comparison = ComparisonFactory()
    VoteFactory(comparison=comparison, annotator=UserFactory(username="ann"))
    ai_vote(comparison)
    assert [name for _, name in interface.annotator_choices()] == ["ann"]


def test_the_comparison_page_and_the_vote_api_label_ai_votes(admin_user, client):
    from tests.conftest import api_as

    comparison = ComparisonFactory()
    VoteFactory(comparison=comparison, annotator=UserFactory(username="ann"))
    ai_vote(comparison, "b", judge="tiny@1", constitution="hhh@1")
    client.force_login(admin_user)
    page = client.get(f"/manage/comparisons/{comparison.pk}/").content.decode()
    assert page.count('data-testid="ai-vote"') == 1 and "constitution hhh@1" in page
    assert "(people's; and 1 AI vote, not counted)" in page
    votes = api_as(admin_user).get(f"/api/votes/?comparison={comparison.pk}").json()["results"]
    assert sorted((v["origin"], v["judge"]) for v in votes) == [("ai", "tiny@1"), ("human", "")]


def test_the_loops_new_vote_count_is_peoples_unless_asked():
    comparison = ComparisonFactory()
    VoteFactory(comparison=comparison, annotator=UserFactory())
    ai_vote(comparison)
    ai_vote(comparison, judge="other@2")
    assert interface.vote_count_after(vote_id=0) == 1
    assert interface.vote_count_after(vote_id=0, votes="both") == 3
    assert interface.vote_count_after(vote_id=0, votes="ai", at_most=1) == 1
    with pytest.raises(ValueError, match="votes: must be one of"):
        interface.vote_count_after(vote_id=0, votes="people")


def _voted(campaign, *, people: int, ai: int, required: int = 3):
    """A comparison of ``campaign`` needing ``required`` votes, with ``people`` people's and ``ai`` AI votes."""
    from feedback.models import Comparison

    comparison = ComparisonFactory(campaign=campaign, votes_required=required)
    for k in range(people):
        VoteFactory(comparison=comparison, annotator=UserFactory())
    for k in range(ai):
        ai_vote(comparison, judge=f"judge{k}@1")
    Comparison.objects.filter(pk=comparison.pk).update(vote_count=people)  # as the vote path keeps it
    return comparison


def _votes_cell(listing: str, comparison) -> str:
    row = listing.split(f'/manage/comparisons/{comparison.pk}/"')[1].split("</tr>")[0]
    return " ".join(row.split("<td>")[3].split("</td>")[0].replace('<span class="hint" data-testid="ai-vote-count">', "")
                    .replace("</span>", "").split())


def test_the_comparisons_list_counts_what_the_campaign_counts_as_the_comparison_page_does(
        admin_user, client, django_assert_max_num_queries):
    counting = campaign_make("Counting", ai_votes_count=True)
    people_only = campaign_make("People")
    mixed = _voted(counting, people=2, ai=1)
    lone = _voted(counting, people=1, ai=1, required=2)
    ignored = _voted(people_only, people=1, ai=2)
    human = _voted(counting, people=2, ai=0)
    client.force_login(admin_user)
    listing = client.get("/manage/comparisons/").content.decode()
    assert _votes_cell(listing, mixed) == "3/3 (2 people, 1 AI)"
    assert _votes_cell(listing, lone) == "2/2 (1 person, 1 AI)"
    assert _votes_cell(listing, ignored) == "1/3 (people's; and 2 AI votes, not counted)"
    assert _votes_cell(listing, human) == "2/3"
    detail = " ".join(client.get(f"/manage/comparisons/{mixed.pk}/").content.decode().split())
    assert '3 of 3 votes <span class="hint" data-testid="ai-vote-count">(2 people, 1 AI)</span>' in detail
    detail = " ".join(client.get(f"/manage/comparisons/{ignored.pk}/").content.decode().split())
    assert "1 of 3 votes" in detail and "(people's; and 2 AI votes, not counted)" in detail
    with CaptureQueriesContext(connection) as few:
        client.get("/manage/comparisons/")
    for k in range(20):  # more rows with AI votes, counted and not: the same queries for the page
        _voted(counting if k % 2 else people_only, people=k % 3, ai=1 + k % 2)
    with django_assert_max_num_queries(len(few.captured_queries)):
        listing = client.get("/manage/comparisons/").content.decode()
    assert listing.count('data-testid="ai-vote-count"') == 23

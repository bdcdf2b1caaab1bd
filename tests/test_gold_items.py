"""Gold items (issue 15 item 2): comparisons with a known answer mixed into a campaign's queue.

What an admin and an annotator would check: the share of gold items served, each gold item served
to an annotator at most once and to any number of annotators, the accuracy and its Wilson interval,
the pause below the threshold (and lifting it), the note after a gold vote in the sides the
annotator saw, the settings' validation and who may set a gold answer.
Runs on SQLite and, with DATABASE_URL, on PostgreSQL."""
from __future__ import annotations

import io
import math
import random

import pytest
from django.contrib.auth.models import Permission
from django.core.management import CommandError, call_command
from django.db import connection
from django.test.utils import CaptureQueriesContext
from statsmodels.stats.proportion import proportion_confint

from feedback.errors import AnnotatorPaused
from feedback.gold import GoldCheck, gold_accuracy_of, gold_draw, gold_pause_due
from feedback.models import Assignment, CampaignAnnotatorPause, Comparison, Vote
from feedback.quality.gold import gold_accuracy, gold_items_count
from feedback.services import assignment_claim, assignment_skip, vote_submit
from tests.campaign_support import campaign_make
from tests.conftest import api_as
from tests.factories import ComparisonFactory, UserFactory

pytestmark = pytest.mark.django_db
HTMX = {"HTTP_HX_REQUEST": "true"}


@pytest.fixture
def worker(db):
    """An annotator in no campaign's pool but the ones a test puts them in."""
    return _worker()


def _worker():
    user = UserFactory()
    user.user_permissions.add(Permission.objects.get(codename="annotate", content_type__app_label="feedback"))
    return user


def _gold(campaign, n: int, answer: str = "a", **fields) -> list[Comparison]:
    return [ComparisonFactory(campaign=campaign, gold_choice=answer, **fields) for _ in range(n)]


def _claim_and_vote(user, campaign, choice: str = "tie", rng=None):
    assignment = assignment_claim(annotator=user, campaign=campaign, rng=rng)
    if assignment is None:
        return None, None
    vote, _ = vote_submit(annotator=user, item=assignment.token, choice=choice)
    return assignment, vote


# --- the pure part ------------------------------------------------------------------------------
def _within_five_sd(count: int, n: int, rate: float) -> bool:
    mean, sd = n * rate, math.sqrt(n * rate * (1 - rate))
    return mean - 5 * sd <= count <= mean + 5 * sd


def test_gold_draw_over_2000_seeded_draws_is_within_binomial_bounds():
    for seed in (1, 2, 3):
        rng = random.Random(seed)
        drawn = sum(gold_draw(rng, 0.2) for _ in range(2000))
        assert _within_five_sd(drawn, 2000, 0.2), drawn
    rng = random.Random(0)
    assert not any(gold_draw(rng, 0.0) for _ in range(500))
    assert rng.random() == random.Random(0).random()  # rate 0 draws no random number
    assert all(gold_draw(rng, 1.0) for _ in range(50))


@pytest.mark.parametrize("votes, correct", [(10, 7), (1, 1), (20, 0), (3, 2), (250, 201)])
def test_accuracy_and_wilson_interval_are_statsmodels_values(votes, correct):
    figures = gold_accuracy_of(votes=votes, correct=correct)
    low, high = proportion_confint(correct, votes, alpha=0.05, method="wilson")
    assert (figures.votes, figures.correct, figures.accuracy) == (votes, correct, correct / votes)
    assert figures.low == pytest.approx(low, abs=1e-12) and figures.high == pytest.approx(high, abs=1e-12)
    assert figures.low <= figures.accuracy <= figures.high


def test_no_gold_votes_is_no_accuracy_and_bad_counts_are_refused():
    assert gold_accuracy_of(votes=0, correct=0).as_dict() == {
        "votes": 0, "correct": 0, "accuracy": None, "low": None, "high": None}
    with pytest.raises(ValueError):
        gold_accuracy_of(votes=3, correct=4)


def test_the_pause_rule_waits_for_min_votes_and_compares_the_accuracy():
    assert not gold_pause_due(votes=4, correct=0, min_accuracy=0.8, min_votes=5)
    assert gold_pause_due(votes=5, correct=3, min_accuracy=0.8, min_votes=5)
    assert not gold_pause_due(votes=5, correct=4, min_accuracy=0.8, min_votes=5)  # exactly at the threshold
    assert not gold_pause_due(votes=50, correct=0, min_accuracy=None, min_votes=5)


@pytest.mark.parametrize("choice, gold, shown_left, said", [
    ("a", "b", "a", "you chose left, the expected answer was right. That did not match."),
    ("a", "b", "b", "you chose right, the expected answer was left. That did not match."),
    ("b", "b", "b", "you chose left, the expected answer was left. You matched it."),
    ("tie", "tie", "a", "you chose tie, the expected answer was tie. You matched it."),
    ("both_bad", "tie", "a", "you chose both bad, the expected answer was tie. That did not match."),
])
def test_the_note_names_the_sides_the_annotator_saw(choice, gold, shown_left, said):
    assert GoldCheck(choice, gold, shown_left).note() == f"That was a check item: {said}"


# --- the claim ----------------------------------------------------------------------------------
def test_claims_serve_gold_items_at_the_campaigns_rate(worker):
    campaign = campaign_make("Mix", annotators=[worker], comparisons=300, gold_rate=0.2)
    gold_ids = {c.pk for c in _gold(campaign, 100)}
    rng = random.Random(15)
    served_gold = 0
    for _ in range(300):
        assignment = assignment_claim(annotator=worker, campaign=campaign, rng=rng)
        served_gold += assignment.comparison_id in gold_ids
        assignment_skip(annotator=worker, comparison_id=assignment.comparison_id)
    assert _within_five_sd(served_gold, 300, 0.2), served_gold
    assert 0 < served_gold < 100


def test_an_annotator_never_gets_the_same_gold_item_twice_and_every_annotator_gets_it(worker):
    campaign = campaign_make("Checks", annotators=[worker], comparisons=8, gold_rate=1.0)
    gold = _gold(campaign, 3)
    served = [a.comparison_id for a, _ in iter(lambda: _claim_and_vote(worker, campaign), (None, None))]
    # Rate 1: the three gold items first (each once), then the normal items; nothing once those are done.
    assert served[:3] == [c.pk for c in gold] and len(served) == 11 and len(set(served)) == 11
    other = _worker()
    campaign.annotators.add(other)
    assert assignment_claim(annotator=other, campaign=campaign, rng=random.Random(1)) is None  # no normal work left
    ComparisonFactory(campaign=campaign)
    assert assignment_claim(annotator=other, campaign=campaign).comparison_id == gold[0].pk


def test_gold_items_are_not_completed_by_votes_required(worker):
    campaign = campaign_make("Open", annotators=[worker], comparisons=5, gold_rate=1.0)
    (item,) = _gold(campaign, 1, votes_required=1)
    people = [worker, _worker(), _worker()]
    campaign.annotators.add(*people[1:])
    for person in people:
        assignment, _ = _claim_and_vote(person, campaign, choice="a")
        assert assignment.comparison_id == item.pk
    item.refresh_from_db()
    assert (item.status, item.vote_count) == ("open", 3)
    normal = Comparison.objects.filter(campaign=campaign, gold_choice="", vote_count=1)
    assert normal.count() == 0 or set(normal.values_list("status", flat=True)) == {"complete"}


def test_without_gold_items_only_normal_items_are_served_and_another_campaigns_gold_stays_there(worker):
    campaign = campaign_make("Plain", annotators=[worker], comparisons=4, gold_rate=0.5, priority=5)
    elsewhere = campaign_make("Elsewhere", annotators=[worker], comparisons=1, gold_rate=1.0)
    _gold(elsewhere, 2)
    with CaptureQueriesContext(connection) as captured:
        served = [_claim_and_vote(worker, None, rng=random.Random(n))[0].comparison_id for n in range(4)]
    assert sorted(served) == sorted(Comparison.objects.filter(campaign=campaign).values_list("pk", flat=True))
    gold_queries = [q["sql"] for q in captured.captured_queries if "gold_choice <> ''" in q["sql"]]
    assert len(gold_queries) <= 4  # at most one per claim, and only on a draw
    # Plain is done: Elsewhere serves its gold item (rate 1) before its normal one.
    assert _claim_and_vote(worker, None)[0].comparison.gold_choice == "a"


def test_gold_rate_0_never_serves_a_gold_draw_and_a_gold_answer_is_an_ordinary_item(worker):
    campaign = campaign_make("Zero", annotators=[worker], comparisons=2, gold_rate=0.0, gold_feedback=True,
                             gold_min_accuracy=0.9, gold_min_votes=1)
    (known,) = _gold(campaign, 1, answer="b")
    with CaptureQueriesContext(connection) as captured:
        votes = [v for _, v in iter(lambda: _claim_and_vote(worker, campaign, choice="a"), (None, None))]
    assert not [q for q in captured.captured_queries if "gold_choice <> ''" in q["sql"]]
    assert len(votes) == 3 and all(v.gold_check is None for v in votes)
    known.refresh_from_db()
    assert known.status == "complete"  # counted by votes_required like any other
    assert not CampaignAnnotatorPause.objects.exists()


# --- accuracy --------------------------------------------------------------------------------------
def test_gold_accuracy_per_annotator_scores_against_the_current_answer(worker):
    campaign = campaign_make("Score", annotators=[worker], comparisons=10, gold_rate=1.0)
    tie, a_item, both = _gold(campaign, 1, "tie") + _gold(campaign, 1, "a") + _gold(campaign, 1, "both_bad")
    answers = {tie.pk: "both_bad", a_item.pk: "a", both.pk: "both_bad"}  # a gold tie matches only a tie
    for _ in range(3):
        assignment = assignment_claim(annotator=worker, campaign=campaign)
        vote_submit(annotator=worker, item=assignment.token, choice=answers[assignment.comparison_id])
    figures = gold_accuracy(campaign=campaign)[worker.username]
    low, high = proportion_confint(2, 3, method="wilson")
    assert (figures.votes, figures.correct) == (2 + 1, 2)
    assert figures.low == pytest.approx(low) and figures.high == pytest.approx(high)
    admin = UserFactory(role="admin")
    response = api_as(admin).post(f"/api/comparisons/{tie.pk}/gold/", {"gold_choice": "both_bad"}, format="json")
    assert response.status_code == 200 and response.json()["gold_choice"] == "both_bad"
    assert gold_accuracy(campaign=campaign, annotator=worker)[worker.username].correct == 3  # re-scored
    assert gold_items_count(campaign=campaign) == 3
    body = api_as(admin).get(f"/api/campaigns/{campaign.pk}/gold/").json()
    assert body["gold_items"] == 3 and body["annotators"][worker.username]["accuracy"] == 1.0


# --- the pause ---------------------------------------------------------------------------------------
def _paused_worker(worker):
    campaign = campaign_make("Strict", annotators=[worker], comparisons=10, gold_rate=1.0,
                             gold_min_accuracy=0.5, gold_min_votes=3)
    _gold(campaign, 4, "a")
    for index in range(3):
        _, vote = _claim_and_vote(worker, campaign, choice="b")
        assert CampaignAnnotatorPause.objects.exists() == (index == 2)  # not before min votes
    return campaign


def test_below_the_threshold_the_annotator_is_paused_with_a_clear_403_on_page_and_api(worker, client):
    campaign = _paused_worker(worker)
    pause = CampaignAnnotatorPause.objects.get()
    assert (pause.annotator, pause.votes, pause.correct, pause.lifted_at) == (worker, 3, 0, None)
    with pytest.raises(AnnotatorPaused, match="is paused"):
        assignment_claim(annotator=worker, campaign=campaign)
    client.force_login(worker)
    page = client.get(f"/annotate/{campaign.slug}/")
    assert page.status_code == 403 and b"Your access to campaign" in page.content and b"is paused" in page.content
    answer = api_as(worker).post(f"/api/assignments/next/?campaign={campaign.slug}")
    assert answer.status_code == 403 and "is paused" in str(answer.json())
    assert api_as(worker).post("/api/assignments/next/").status_code == 403  # nothing else serves them


def test_a_paused_annotators_vote_on_a_held_lease_is_refused(worker):
    campaign = campaign_make("Held", annotators=[worker], comparisons=3, gold_rate=1.0,
                             gold_min_accuracy=0.5, gold_min_votes=1)
    _gold(campaign, 1, "a")
    gold_lease = assignment_claim(annotator=worker, campaign=campaign)
    CampaignAnnotatorPause.objects.create(campaign=campaign, annotator=worker)
    with pytest.raises(AnnotatorPaused, match="Nothing was saved"):
        vote_submit(annotator=worker, item=gold_lease.token, choice="a")
    assert not Vote.objects.exists()


def test_an_admin_sees_the_pause_on_the_campaign_page_and_lifts_it(worker, client):
    campaign = _paused_worker(worker)
    admin = UserFactory(role="admin")
    client.force_login(admin)
    page = client.get(f"/manage/campaigns/{campaign.pk}/")
    assert page.status_code == 200
    html = page.content.decode()
    assert "4 gold items" in html and worker.username in html and "Lift pause" in html and "0.00" in html
    lifted = client.post(f"/manage/campaigns/{campaign.pk}/lift-pause/", {"username": worker.username}, **HTMX)
    assert lifted.status_code == 200 and "may annotate in this campaign again" in lifted.content.decode()
    assert "No annotator is paused." in lifted.content.decode()
    assert assignment_claim(annotator=worker, campaign=campaign) is not None
    again = client.post(f"/manage/campaigns/{campaign.pk}/lift-pause/", {"username": worker.username})
    assert again.status_code == 400 and b"is not paused here" in again.content


def test_the_api_and_the_command_lift_a_pause(worker):
    campaign = _paused_worker(worker)
    admin = UserFactory(role="admin")
    assert api_as(worker).post(f"/api/campaigns/{campaign.pk}/lift-pause/", {"username": worker.username}).status_code == 403
    body = api_as(admin).get(f"/api/campaigns/{campaign.pk}/gold/").json()
    assert body["paused"] == [worker.username] and body["annotators"][worker.username]["correct"] == 0
    response = api_as(admin).post(f"/api/campaigns/{campaign.pk}/lift-pause/", {"username": worker.username}, format="json")
    assert response.status_code == 200 and response.json() == {"lifted": 1}
    CampaignAnnotatorPause.objects.create(campaign=campaign, annotator=worker)
    out = io.StringIO()
    call_command("campaign", "lift-pause", campaign.slug, worker.username, stdout=out)
    assert "may annotate in strict again" in out.getvalue()
    assert not CampaignAnnotatorPause.objects.filter(lifted_at__isnull=True).exists()


# --- the note -----------------------------------------------------------------------------------------
@pytest.mark.parametrize("htmx", [True, False])
def test_with_gold_feedback_the_next_page_says_what_was_expected_in_screen_sides(worker, client, htmx):
    campaign = campaign_make("Told", annotators=[worker], comparisons=3, gold_rate=1.0, gold_feedback=True)
    (item,) = _gold(campaign, 1, "a")
    client.force_login(worker)
    client.get(f"/annotate/{campaign.slug}/")
    assignment = Assignment.objects.get(annotator=worker)
    assert assignment.comparison_id == item.pk
    # The expected answer "a" is on the side the annotator saw it; they pick the other side.
    expected = "left" if assignment.shown_left == "a" else "right"
    chose = "right" if expected == "left" else "left"
    url = f"/annotate/{campaign.slug}/vote/"
    if htmx:
        response = client.post(url, {"item": assignment.token, "choice": chose}, **HTMX)
    else:
        response = client.post(url, {"item": assignment.token, "choice": chose}, follow=True)
    assert response.status_code == 200
    text = response.content.decode()
    assert f"That was a check item: you chose {chose}, the expected answer was {expected}. That did not match." in text
    following = client.get(f"/annotate/{campaign.slug}/").content.decode()
    assert "check item" not in following  # said once


def test_without_gold_feedback_nothing_is_said(worker, client):
    campaign = campaign_make("Quiet", annotators=[worker], comparisons=3, gold_rate=1.0)
    _gold(campaign, 1, "a")
    client.force_login(worker)
    client.get(f"/annotate/{campaign.slug}/")
    token = Assignment.objects.get(annotator=worker).token
    response = client.post(f"/annotate/{campaign.slug}/vote/", {"item": token, "choice": "left"}, **HTMX)
    assert response.status_code == 200 and "check item" not in response.content.decode()


def test_the_api_answer_to_a_vote_on_a_check_item_carries_the_note_and_others_do_not(worker):
    from tests.conftest import api_as

    told = campaign_make("Told API", annotators=[worker], comparisons=2, gold_rate=1.0, gold_feedback=True)
    _gold(told, 1, "a")
    api = api_as(worker)
    item = api.post(f"/api/assignments/next/?campaign={told.slug}").json()
    assignment = Assignment.objects.get(annotator=worker, token=item["item"])
    expected = "left" if assignment.shown_left == "a" else "right"
    answer = api.post("/api/votes/", {"item": item["item"], "choice": expected}, format="json")
    assert answer.status_code == 201
    assert answer.json()["gold"] == {
        "matched": True, "expected": expected,
        "note": f"That was a check item: you chose {expected}, the expected answer was {expected}. You matched it.",
    }
    ordinary = api.post(f"/api/assignments/next/?campaign={told.slug}").json()
    answer = api.post("/api/votes/", {"item": ordinary["item"], "choice": "tie"}, format="json")
    assert answer.status_code == 201 and "gold" not in answer.json()  # an ordinary item: nothing said of gold
    listed = api.get("/api/votes/").json()
    assert all("gold" not in vote for vote in listed["results"])  # said once, in the answer to the vote


# --- settings and permissions ----------------------------------------------------------------------
def test_the_settings_form_takes_and_refuses_gold_settings(client):
    admin = UserFactory(role="admin")
    campaign = campaign_make("Form", status="draft")
    client.force_login(admin)
    base = {"name": "Form", "slug": "form", "priority": 0, "votes_required": 1, "rationale": "optional",
            "gold_min_votes": 10}
    bad = client.post(f"/manage/campaigns/{campaign.pk}/", {**base, "gold_rate": "1.5", "gold_min_accuracy": "-0.1"})
    assert bad.status_code == 400
    html = bad.content.decode()
    assert "less than or equal to 1" in html and "greater than or equal to 0" in html
    good = client.post(f"/manage/campaigns/{campaign.pk}/", {**base, "gold_rate": "0.25", "gold_feedback": "on",
                                                             "gold_min_accuracy": "0.7", "gold_min_votes": "5"})
    assert good.status_code == 302
    campaign.refresh_from_db()
    assert (campaign.gold_rate, campaign.gold_feedback, campaign.gold_min_accuracy, campaign.gold_min_votes) == (0.25, True, 0.7, 5)


def test_the_api_refuses_out_of_range_gold_settings_with_field_messages():
    admin = UserFactory(role="admin")
    campaign = campaign_make("Api", status="draft")
    api = api_as(admin)
    bad = api.patch(f"/api/campaigns/{campaign.pk}/", {"gold_rate": 2, "gold_min_accuracy": -0.5, "gold_min_votes": 0},
                    format="json")
    assert bad.status_code == 400
    assert set(bad.json()) >= {"gold_rate", "gold_min_accuracy", "gold_min_votes"}, bad.json()
    good = api.patch(f"/api/campaigns/{campaign.pk}/", {"gold_rate": 0.1, "gold_feedback": True, "gold_min_accuracy": None},
                     format="json")
    assert good.status_code == 200
    assert (good.json()["gold_rate"], good.json()["gold_feedback"], good.json()["gold_min_accuracy"]) == (0.1, True, None)


def test_the_command_sets_and_refuses_gold_settings():
    campaign = campaign_make("Cli", status="draft")
    call_command("campaign", "edit", "cli", "--gold-rate", "0.3", "--gold-feedback", "--gold-min-accuracy", "0.6",
                 "--gold-min-votes", "4", stdout=io.StringIO())
    campaign.refresh_from_db()
    assert (campaign.gold_rate, campaign.gold_feedback, campaign.gold_min_accuracy, campaign.gold_min_votes) == (0.3, True, 0.6, 4)
    with pytest.raises(CommandError, match="gold_rate: must be a number from 0 to 1"):
        call_command("campaign", "edit", "cli", "--gold-rate", "1.5", stdout=io.StringIO())
    call_command("campaign", "edit", "cli", "--gold-min-accuracy", "none", stdout=io.StringIO())
    campaign.refresh_from_db()
    assert campaign.gold_min_accuracy is None and campaign.gold_rate == 0.3


def test_annotators_cannot_set_a_gold_answer_or_gold_settings(worker, client):
    campaign = campaign_make("Guarded", annotators=[worker], comparisons=1)
    item = Comparison.objects.get(campaign=campaign)
    api = api_as(worker)
    assert api.post(f"/api/comparisons/{item.pk}/gold/", {"gold_choice": "a"}, format="json").status_code == 403
    assert api.patch(f"/api/campaigns/{campaign.pk}/", {"gold_rate": 1}, format="json").status_code == 403
    client.force_login(worker)
    assert client.post(f"/manage/comparisons/{item.pk}/gold/", {"gold_choice": "a"}).status_code == 403
    assert client.post(f"/manage/campaigns/{campaign.pk}/lift-pause/", {"username": worker.username}).status_code == 403
    item.refresh_from_db()
    assert item.gold_choice == ""


def test_an_admin_sets_the_gold_answer_on_the_comparison_page(client):
    admin = UserFactory(role="admin")
    item = ComparisonFactory(status="complete", vote_count=1)
    client.force_login(admin)
    assert b'data-testid="gold-answer"' in client.get(f"/manage/comparisons/{item.pk}/").content
    saved = client.post(f"/manage/comparisons/{item.pk}/gold/", {"gold_choice": "tie"}, **HTMX)
    assert saved.status_code == 200 and b"Gold answer saved: tie." in saved.content
    item.refresh_from_db()
    assert (item.gold_choice, item.status) == ("tie", "open")  # reopened: a gold item stays open
    bad = client.post(f"/manage/comparisons/{item.pk}/gold/", {"gold_choice": "left"})
    assert bad.status_code == 302
    item.refresh_from_db()
    assert item.gold_choice == "tie"
    assert api_as(admin).post(f"/api/comparisons/{item.pk}/gold/", {"gold_choice": "left"}, format="json").status_code == 400


def test_imported_preferences_become_gold_answers_by_command():
    from tests.factories import VoteFactory

    campaign = campaign_make("Imported", status="draft")
    importer, other = UserFactory(), UserFactory()
    agreed = ComparisonFactory(campaign=campaign, status="complete", vote_count=1)
    VoteFactory(comparison=agreed, annotator=importer, choice="b", source="hh-rlhf")
    split = ComparisonFactory(campaign=campaign)
    VoteFactory(comparison=split, annotator=importer, choice="a", source="hh-rlhf")
    VoteFactory(comparison=split, annotator=other, choice="tie", source="hh-rlhf")
    by_annotator = ComparisonFactory(campaign=campaign)
    VoteFactory(comparison=by_annotator, annotator=other, choice="a", source="annotator")
    out = io.StringIO()
    call_command("campaign", "gold-from-imports", "imported", "hh-rlhf", stdout=out)
    assert "1 comparison of imported are gold items now" in out.getvalue()
    for item in (agreed, split, by_annotator):
        item.refresh_from_db()
    assert (agreed.gold_choice, agreed.status) == ("b", "open")
    assert split.gold_choice == by_annotator.gold_choice == ""
    with pytest.raises(CommandError, match="source"):
        call_command("campaign", "gold-from-imports", "imported", "annotator", stdout=io.StringIO())


def test_the_stored_quality_report_carries_gold_accuracy_per_annotator_for_the_dashboard(client, admin_user):
    """The dashboard's gold column (feedback.quality.report reads figures["gold"]) is filled from the
    campaign's gold votes when the report is computed: one right and one wrong gold answer give 0.5
    with its Wilson interval."""
    from feedback.quality.services import quality_report_compute
    from tests.factories import ComparisonFactory, UserFactory
    from feedback.models import Vote

    someone = UserFactory(role="annotator")
    right, wrong = ComparisonFactory(gold_choice="a"), ComparisonFactory(gold_choice="b")
    Vote.objects.create(comparison=right, annotator=someone, choice="a", shown_left="a")
    Vote.objects.create(comparison=wrong, annotator=someone, choice="a", shown_left="a")
    report = quality_report_compute(campaign=right.campaign_id)
    gold = report.figures["gold"][str(someone.pk)]
    assert (gold["n"], gold["correct"], gold["value"], gold["defined"]) == (2, 1, 0.5, True)
    assert 0 < gold["low"] < 0.5 < gold["high"] < 1
    client.force_login(admin_user)
    page = client.get(f"/manage/campaigns/{right.campaign_id}/quality/").content.decode()
    assert 'data-testid="gold"' in page and "0.50" in page


def test_the_items_left_count_leaves_out_gold_items_mixed_in_but_not_ordinary_ones(worker):
    from feedback.selectors import annotator_progress

    mixing = campaign_make("Mixing", annotators=[worker], comparisons=3, gold_rate=0.2)
    _gold(mixing, 4)
    plain = campaign_make("Plain gold", annotators=[worker], comparisons=1, gold_rate=0.0)
    _gold(plain, 2)  # gold_rate 0: a gold answer is an ordinary item, served and counted like one
    assert annotator_progress(annotator=worker, campaign=mixing)["remaining"] == 3
    assert annotator_progress(annotator=worker, campaign=plain)["remaining"] == 3
    assert annotator_progress(annotator=worker)["remaining"] == 6

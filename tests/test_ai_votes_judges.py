"""AI judges measured against people (issue 16, item 5): agreement with the human majority and
Cohen's kappa with bootstrap intervals, tie rate, overlap, position consistency and principles
from the judging job's records; degenerate cases are undefined with a reason, never NaN."""
from __future__ import annotations

import json

import pytest
from django.test import Client
from sklearn.metrics import cohen_kappa_score

from feedback import interface
from feedback.quality.judges import NO_ORDER_PAIRS, NO_OVERLAP, NO_VARIATION, human_majority, judge_agreement
from feedback.quality.services import quality_report_compute
from tests.ai_vote_support import ai_vote
from tests.campaign_support import campaign_make
from tests.factories import ComparisonFactory, UserFactory, VoteFactory


def _no_nan(value) -> None:
    json.dumps(value, allow_nan=False)  # raises on NaN or Infinity anywhere


# --- the pure figures -----------------------------------------------------------------------------
def test_human_majority_is_strict():
    votes = [(1, "a"), (1, "a"), (1, "b"), (2, "a"), (2, "b"), (3, "tie")]
    assert human_majority(votes) == ({1: "a", 3: "tie"}, 1)


def test_agreement_and_kappa_match_sklearn_with_intervals():
    majority = {c: ("a" if c % 3 else "b") for c in range(60)}
    judge = {c: (majority[c] if c % 5 else ("tie" if c % 2 else "b")) for c in range(60)}
    judge[100] = "tie"  # no human majority there: counts in votes and tie rate, not in the overlap
    result = judge_agreement(judge, majority, resamples=500, seed=1)
    overlap = sorted(majority)
    expected_kappa = cohen_kappa_score([judge[c] for c in overlap], [majority[c] for c in overlap])
    assert (result["votes"], result["overlap"]) == (61, 60)
    assert result["agreement"]["value"] == pytest.approx(sum(judge[c] == majority[c] for c in overlap) / 60)
    assert result["kappa"]["value"] == pytest.approx(expected_kappa)
    for figure in (result["agreement"], result["kappa"]):
        assert figure["defined"] and figure["low"] <= figure["value"] <= figure["high"] and figure["n"] == 60
    ties = sum(1 for choice in judge.values() if choice == "tie")
    assert result["tie_rate"]["value"] == pytest.approx(ties / 61)
    assert judge_agreement(judge, majority, resamples=500, seed=1) == result  # seeded
    _no_nan(result)


def test_degenerate_cases_are_undefined_with_a_reason():
    nothing = judge_agreement({}, {1: "a"})
    assert nothing["agreement"] == {"value": None, "defined": False, "reason": NO_OVERLAP, "n": 0}
    assert nothing["tie_rate"]["defined"] is False and nothing["votes"] == 0
    no_overlap = judge_agreement({2: "a"}, {1: "a"})
    assert no_overlap["overlap"] == 0 and no_overlap["kappa"]["reason"] == NO_OVERLAP
    same = judge_agreement({1: "a", 2: "a"}, {1: "a", 2: "a"})  # one label throughout: kappa undefined
    assert same["agreement"]["value"] == 1.0 and same["kappa"] == {"value": None, "defined": False,
                                                                   "reason": NO_VARIATION, "n": 2}
    consistency = judge_agreement({1: "a"}, {1: "a"}, order_verdicts=[])["position_consistency"]
    assert consistency["reason"] == NO_ORDER_PAIRS
    for result in (nothing, no_overlap, same):
        _no_nan(result)
    with pytest.raises(ValueError, match="unknown choice"):
        judge_agreement({1: "left"}, {1: "a"})


def test_position_consistency_and_principles_come_from_the_job_records():
    majority = {1: "a", 2: "b", 3: "a", 4: "b"}
    result = judge_agreement(
        {1: "a", 2: "b", 3: "tie", 4: "a"}, majority,
        order_verdicts=[("a", "a"), ("b", "b"), ("a", "b"), ("tie", "tie")],
        by_principle={"harmless": {1: "a", 2: "b", 3: "a", 4: "b"}, "honest": {1: "b"}},
        resamples=200,
    )
    consistency = result["position_consistency"]
    assert consistency["value"] == 0.75 and consistency["n"] == 4 and consistency["low"] <= 0.75 <= consistency["high"]
    assert result["principles"]["harmless"]["agreement"]["value"] == 1.0
    assert result["principles"]["honest"]["overlap"] == 1 and result["principles"]["honest"]["agreement"]["value"] == 0.0
    _no_nan(result)


# --- from the database, the interface and the dashboard ---------------------------------------------
@pytest.fixture
def judged(db):
    """Six comparisons with two people agreeing (a, a, a, b, b, b) and one with a split; ``tiny@1``
    matches the majority on four of six, ``other@2`` judges two."""
    campaign = campaign_make("Judged")
    ann, bob = UserFactory(username="ann"), UserFactory(username="bob")
    comparisons = []
    for choice in "aaabbb":
        comparison = ComparisonFactory(campaign=campaign)
        VoteFactory(comparison=comparison, annotator=ann, choice=choice)
        VoteFactory(comparison=comparison, annotator=bob, choice=choice)
        comparisons.append(comparison)
    split = ComparisonFactory(campaign=campaign)
    VoteFactory(comparison=split, annotator=ann, choice="a")
    VoteFactory(comparison=split, annotator=bob, choice="b")
    for comparison, choice in zip(comparisons + [split], ["a", "a", "b", "b", "b", "tie", "a"]):
        ai_vote(comparison, choice, judge="tiny@1")
    ai_vote(comparisons[0], "a", judge="other@2")
    ai_vote(comparisons[3], "b", judge="other@2")
    elsewhere = ComparisonFactory(campaign=campaign_make("Elsewhere"))
    VoteFactory(comparison=elsewhere, annotator=ann, choice="a")
    ai_vote(elsewhere, "a", judge="tiny@1")
    return campaign


def test_the_interface_measures_one_judge(judged):
    result = interface.judge_agreement(judge="tiny@1", campaign_id=judged.pk, resamples=200)
    assert (result["judge"], result["votes"], result["overlap"]) == ("tiny@1", 7, 6)
    assert result["agreement"]["value"] == pytest.approx(4 / 6)
    assert result["tie_rate"]["value"] == pytest.approx(1 / 7)
    everywhere = interface.judge_agreement(judge="tiny@1", resamples=0)
    assert (everywhere["votes"], everywhere["overlap"]) == (8, 7) and everywhere["agreement"]["low"] is None
    unknown = interface.judge_agreement(judge="nobody@0")
    assert unknown["votes"] == 0 and unknown["agreement"]["defined"] is False
    pure = interface.judge_agreement_of({1: "a"}, {1: "a"}, resamples=0)
    assert pure["agreement"]["value"] == 1.0


def test_the_dashboard_shows_judges_vs_humans(judged, admin_user):
    quality_report_compute(campaign=judged)
    quality_report_compute(campaign=None)
    client = Client()
    client.force_login(admin_user)
    for url in (f"/manage/campaigns/{judged.pk}/quality/", "/manage/quality/"):
        page = client.get(url).content.decode()
        assert "Judges vs humans" in page
        assert 'data-judge="tiny@1"' in page and 'data-judge="other@2"' in page
        assert 'data-username="judge:' not in page
    campaign_page = client.get(f"/manage/campaigns/{judged.pk}/quality/").content.decode()
    row = campaign_page[campaign_page.index('data-judge="tiny@1"'):]
    row = row[:row.index("</tr>")]
    assert "<td class=\"num\">7</td>" in row and "<td class=\"num\">6</td>" in row and "0.667" in row


def test_a_dashboard_without_judges_says_so(db, admin_user):
    campaign = campaign_make("People")
    VoteFactory(comparison=ComparisonFactory(campaign=campaign), annotator=UserFactory())
    quality_report_compute(campaign=campaign)
    client = Client()
    client.force_login(admin_user)
    page = client.get(f"/manage/campaigns/{campaign.pk}/quality/").content.decode()
    assert 'data-testid="no-judges"' in page and "AI vote" not in page.split("Judges vs humans")[0]

"""Evaluation pages, downloads, API and the one-click blind human campaign (issue 17), with
stubbed scores (tests.evaluation_support)."""
from __future__ import annotations

import csv
import io

import pytest
from django.test import Client

from feedback.models import Comparison, Vote
from feedback.campaigns.models import Campaign
from tests.evaluation_support import checkpoints, eval_set, run_with_scores
from tests.factories import UserFactory
from training.evaluation.models import EvaluationRun

pytestmark = pytest.mark.django_db

SCORES = {"base": [0.0] * 6, "cand": [2.0, 1.0, 0.5, 0.0, -0.5, 0.3]}


def client_as(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def test_report_page_shows_win_rates_categories_examples_and_downloads(tmp_path, admin_user):
    run = run_with_scores(tmp_path, scores=SCORES)
    page = client_as(admin_user).get(f"/manage/evaluations/{run.pk}/")
    html = page.content.decode()
    assert page.status_code == 200
    win = run.summary["candidates"][0]["vs_baseline"]["win_rate"]
    assert f"{win['value']:.3f}" in html and "4 / 1 / 1" in html and 'id="categories-1"' in html
    assert "Largest wins" in html and "margin 2.000" in html and "Make a blind human campaign" in html
    assert client_as(UserFactory(role="annotator")).get(f"/manage/evaluations/{run.pk}/").status_code == 403
    listing = client_as(admin_user).get("/manage/evaluations/").content.decode()
    assert f'id="evaluation-{run.pk}"' in listing and "succeeded" in listing
    data = client_as(admin_user).get(f"/manage/evaluations/{run.pk}/report.json").json()
    assert data["candidates"][0]["vs_baseline"]["win_rate"]["wins"] == 4 and data["candidates"][0]["human"] is None
    rows = list(csv.reader(io.StringIO(client_as(admin_user).get(f"/manage/evaluations/{run.pk}/report.csv").content.decode())))
    assert rows[0][:3] == ["candidate", "against", "scope"]
    assert rows[1][:7] == ["cand", "base", "overall", "6", "4", "1", "1"]
    assert {r[2] for r in rows[1:]} >= {"overall", "category:a", "category:b", "length-controlled"}


def test_the_page_form_refuses_the_baseline_as_candidate_with_field_messages(tmp_path, admin_user):
    s = eval_set(tmp_path, [("Q1", "")])
    checkpoints("base", "cand")
    response = client_as(admin_user).post("/manage/evaluations/", {
        "eval_set_id": s.pk, "baseline": "base", "candidates": ["base"], "reward_model": "rm", "tie_band": "0",
        "max_new_tokens": "16"})
    assert response.status_code == 400 and "is the baseline" in response.content.decode()
    assert not EvaluationRun.objects.exists()


def test_api_creates_lists_reports_and_cancels(tmp_path, admin_user, api, django_capture_on_commit_callbacks):
    s = eval_set(tmp_path, [("Q1", "x"), ("Q2", "y")])
    checkpoints("base", "cand")
    api.force_authenticate(admin_user)
    bad = api.post("/api/evaluations/", {"eval_set_id": s.pk, "baseline": "base", "candidates": ["base"],
                                         "reward_model": "rm"}, format="json")
    assert bad.status_code == 400 and "candidates" in bad.json() and not EvaluationRun.objects.exists()
    made = api.post("/api/evaluations/", {"eval_set_id": s.pk, "baseline": "base", "candidates": ["cand"],
                                          "reward_model": "rm", "tie_band": 0.1}, format="json")
    assert made.status_code == 201 and made.json()["status"] == "generating"
    assert made.json()["progress"] == {"step": "generating", "done": 0, "total": 2, "unit": "prompt"}
    assert api.get("/api/evaluations/").json()["results"][0]["id"] == made.json()["id"]
    report = api.get(f"/api/evaluations/{made.json()['id']}/report/").json()
    assert report["status"] == "generating" and "candidates" not in report
    with django_capture_on_commit_callbacks(execute=True):
        api.post(f"/api/evaluations/{made.json()['id']}/cancel/")  # a queued job stops at once
    cancelled = api.get(f"/api/evaluations/{made.json()['id']}/").json()
    assert cancelled["status"] == "cancelled" and "was cancelled" in cancelled["error"]


def test_api_report_and_csv_of_a_finished_run(tmp_path, admin_user, api):
    run = run_with_scores(tmp_path, scores=SCORES)
    api.force_authenticate(admin_user)
    report = api.get(f"/api/evaluations/{run.pk}/report/").json()
    assert report["candidates"][0]["vs_baseline"]["win_rate"]["n"] == 6 and report["candidates"][0]["human"] is None
    text = api.get(f"/api/evaluations/{run.pk}/report/csv/").content.decode()
    assert text.startswith("candidate,against,scope,n,wins,ties,losses,win_rate,low,high")


def test_one_call_makes_a_blind_campaign_whose_votes_join_the_report(tmp_path, admin_user, annotator, api):
    run = run_with_scores(tmp_path, scores=SCORES)
    api.force_authenticate(admin_user)
    answer = api.post(f"/api/evaluations/{run.pk}/campaign/", {"sample_size": 4, "seed": 1}, format="json")
    assert answer.status_code == 200
    run.refresh_from_db()
    campaign = Campaign.objects.get(pk=run.campaign_id)
    assert campaign.status == "active" and campaign.groups.filter(name="annotators").exists()
    comparisons = list(Comparison.objects.filter(campaign=campaign).select_related("completion_a", "completion_b"))
    assert len(comparisons) == 4
    assert all({c.completion_a.model_name, c.completion_b.model_name} == {"cand", "base"} for c in comparisons)
    again = api.post(f"/api/evaluations/{run.pk}/campaign/", {}, format="json")
    assert again.status_code == 400 and "campaign" in again.json()
    # Votes: the candidate chosen three times, the baseline once.
    for index, comparison in enumerate(comparisons):
        cand_side = "a" if comparison.completion_a.model_name == "cand" else "b"
        other = "b" if cand_side == "a" else "a"
        Vote.objects.create(comparison=comparison, annotator=annotator, choice=cand_side if index < 3 else other)
    human = api.get(f"/api/evaluations/{run.pk}/report/").json()["candidates"][0]["human"]
    assert (human["wins"], human["losses"], human["value"]) == (3, 1, 0.75) and human["low"] <= 0.75 <= human["high"]
    assert "Human" in client_as(admin_user).get(f"/manage/evaluations/{run.pk}/").content.decode()


def test_a_running_evaluation_page_polls_and_cancels_by_plain_post(tmp_path, admin_user, django_capture_on_commit_callbacks):
    from training.evaluation.services import evaluation_run_create

    s = eval_set(tmp_path, [("Q1", ""), ("Q2", "")])
    checkpoints("base", "cand")
    run = evaluation_run_create(eval_set_id=s.pk, baseline="base", candidates=["cand"], reward_model="rm")
    client = client_as(admin_user)
    html = client.get(f"/manage/evaluations/{run.pk}/").content.decode()
    assert 'hx-trigger="every 2s"' in html and "generating 0/2 prompts" in html
    poll = client.get(f"/manage/evaluations/{run.pk}/", HTTP_HX_REQUEST="true", HTTP_HX_TARGET="evaluation-live")
    assert poll.status_code == 200 and 'id="evaluation-live"' in poll.content.decode()
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(f"/manage/evaluations/{run.pk}/cancel/")
    assert response.status_code == 302
    run.refresh_from_db()
    assert run.status == "cancelled"
    poll = client.get(f"/manage/evaluations/{run.pk}/", HTTP_HX_REQUEST="true", HTTP_HX_TARGET="evaluation-live")
    assert poll.status_code == 286  # finished: htmx stops polling

"""Stored quality reports (feedback.quality: models, services, dashboard, API): the figures are
computed in the background and stored, pages and the API only read them, a recompute is queued at
most once per campaign, and annotators see their own figures only, where the campaign allows."""
from __future__ import annotations

import csv
import io
from unittest import mock

import pytest
from django.core.management import call_command
from django.test import Client
from django_tasks_db.models import DBTaskResult

from feedback.models import Campaign, QualityReport, Vote
from feedback.quality.services import quality_report_compute, quality_report_request
from tests.conftest import api_as
from tests.factories import ComparisonFactory, UserFactory, VoteFactory
from tests.quality_support import votes_seed

pytestmark = pytest.mark.django_db


@pytest.fixture
def campaign(db) -> Campaign:
    return Campaign.objects.create(name="Quality check", slug="quality-check", status="active")


@pytest.fixture
def seeded(campaign):
    return votes_seed(campaign, items=40, honest=3)


def client_as(user) -> Client:
    client = Client()
    if user is not None:
        client.force_login(user)
    return client


def _rows(report: QualityReport) -> dict[str, dict]:
    return {row["username"]: row for row in report.figures["annotators"]}


def test_compute_stores_the_figures_on_the_votes_counted(campaign, seeded):
    report = quality_report_compute(campaign=campaign)
    votes = Vote.objects.filter(comparison__campaign=campaign)
    assert report.status == "succeeded" and report.computed_at is not None
    assert report.vote_count == votes.count() == 40 * 6
    assert report.last_vote_id == votes.order_by("-id").first().pk
    rows = _rows(report)
    assert set(rows) == {"lefty", "speedy", "clicker", "honest0", "honest1", "honest2"}
    assert rows["lefty"]["left_rate"]["value"] == 1.0 and "left_bias" in rows["lefty"]["flags"]
    assert "fast" in rows["speedy"]["flags"] and rows["speedy"]["median_ms"]["value"] == 300
    assert rows["honest0"]["kappa_peers"]["defined"] and rows["honest0"]["kappa_peers"]["peers"] == 5
    assert report.figures["agreement"]["krippendorff_alpha_nominal"]["defined"]
    assert [p["votes"] for p in report.figures["over_time"]["points"]] and \
        sum(p["votes"] for p in report.figures["over_time"]["points"]) == 240


def test_recompute_replaces_the_stored_report(campaign, seeded):
    first = quality_report_compute(campaign=campaign)
    newcomer = UserFactory(username="newcomer", role="annotator")
    VoteFactory(comparison=ComparisonFactory(campaign=campaign), annotator=newcomer, choice="b")
    second = quality_report_compute(campaign=campaign)
    assert QualityReport.objects.filter(campaign=campaign).count() == 1
    assert second.pk == first.pk and second.vote_count == first.vote_count + 1
    assert "newcomer" in _rows(second) and second.last_vote_id > first.last_vote_id


def test_the_overall_report_counts_every_campaign(campaign, seeded):
    other = Campaign.objects.create(name="Other", slug="other", status="active")
    VoteFactory(comparison=ComparisonFactory(campaign=other))
    overall = quality_report_compute(campaign=None)
    assert overall.campaign is None and overall.vote_count == 241
    assert QualityReport.objects.count() == 1


def test_many_votes_and_looks_queue_one_recompute_per_campaign(campaign, seeded, admin_user,
                                                               django_capture_on_commit_callbacks):
    other = Campaign.objects.create(name="Other", slug="other", status="active")
    admin = client_as(admin_user)
    with django_capture_on_commit_callbacks(execute=True):
        for index in range(5):
            VoteFactory(comparison=ComparisonFactory(campaign=campaign))
            VoteFactory(comparison=ComparisonFactory(campaign=other))
            assert admin.get(f"/manage/campaigns/{campaign.pk}/quality/").status_code == 200
            assert admin.get(f"/manage/campaigns/{other.pk}/quality/").status_code == 200
            quality_report_request(campaign=campaign)
    tasks = DBTaskResult.objects.all()
    assert sorted(task.args_kwargs["args"][0] for task in tasks) == sorted([campaign.pk, other.pk])
    assert QualityReport.objects.get(campaign=campaign).status == "queued"


def test_the_page_reads_the_stored_report_and_never_computes(campaign, seeded, admin_user):
    quality_report_compute(campaign=campaign)
    refuse = mock.Mock(side_effect=AssertionError("computed during a request"))
    with mock.patch("feedback.quality.selectors.agreement_summary", refuse), \
            mock.patch("feedback.quality.report.agreement_summary", refuse), \
            mock.patch("feedback.quality.selectors.bias_summary", refuse):
        page = client_as(admin_user).get(f"/manage/campaigns/{campaign.pk}/quality/")
        csv_page = client_as(admin_user).get(f"/manage/campaigns/{campaign.pk}/quality/?format=csv")
        api = api_as(admin_user).get(f"/api/campaigns/{campaign.pk}/quality/")
    assert page.status_code == csv_page.status_code == api.status_code == 200
    text = page.content.decode()
    assert "on <strong>240</strong> votes" in text and "Recomputing" not in text
    assert refuse.call_count == 0
    assert text.count("<svg") >= 3 and "Left rate per annotator" in text and "Time on item" in text


def test_a_stale_report_says_recomputing_and_the_poll_stops_with_286_once_fresh(campaign, seeded, admin_user):
    admin = client_as(admin_user)
    url = f"/manage/campaigns/{campaign.pk}/quality/"
    poll = {"HTTP_HX_REQUEST": "true", "HTTP_HX_TARGET": "quality-report"}
    first = admin.get(url)
    assert "Not computed yet" in first.content.decode() and "Recomputing" in first.content.decode()
    assert admin.get(url, **poll).status_code == 200
    quality_report_compute(campaign=campaign)
    done = admin.get(url, **poll)
    assert done.status_code == 286 and "Recomputing" not in done.content.decode()
    assert 'id="quality-report"' in done.content.decode() and "<html" not in done.content.decode()


def test_undefined_figures_say_undefined_never_a_number(campaign, admin_user):
    lone = UserFactory(username="lone", role="annotator")
    for _ in range(3):
        VoteFactory(comparison=ComparisonFactory(campaign=campaign), annotator=lone, ms_on_item=5000)
    quality_report_compute(campaign=campaign)
    text = client_as(admin_user).get(f"/manage/campaigns/{campaign.pk}/quality/").content.decode()
    assert "undefined (a single rater)" in text
    assert "undefined (shares no item with another annotator)" in text


def _csv(response) -> list[dict[str, str]]:
    assert response["Content-Type"].startswith("text/csv")
    return list(csv.DictReader(io.StringIO(response.content.decode())))


def test_csv_has_one_row_per_annotator_with_the_tables_columns(campaign, seeded, admin_user):
    quality_report_compute(campaign=campaign)
    response = client_as(admin_user).get(f"/manage/campaigns/{campaign.pk}/quality/?format=csv&sort=-votes")
    rows = _csv(response)
    assert list(rows[0]) == ["annotator", "votes", "votes_per_hour", "median_ms", "kappa_vs_peers",
                             "agreement_with_consensus", "left_rate", "left_rate_low", "left_rate_high",
                             "left_p_holm", "flags", "reliability_dawid_skene"]
    by_name = {row["annotator"]: row for row in rows}
    assert set(by_name) == {"lefty", "speedy", "clicker", "honest0", "honest1", "honest2"}
    assert by_name["lefty"]["left_rate"] == "1.0000" and "left_bias" in by_name["lefty"]["flags"].split(";")
    assert by_name["speedy"]["median_ms"] == "300.0000" and "fast" in by_name["speedy"]["flags"].split(";")
    assert by_name["speedy"]["votes_per_hour"] == "12000.0000"  # 3,600,000 ms / 300 ms
    assert all(row["votes"] == "40" for row in rows)


def test_gold_column_appears_only_when_the_figures_hold_gold(campaign, seeded, admin_user):
    report = quality_report_compute(campaign=campaign)
    url = f"/manage/campaigns/{campaign.pk}/quality/"
    assert "Gold accuracy" not in client_as(admin_user).get(url).content.decode()
    lefty = UserFactory._meta.model.objects.get(username="lefty")
    report.figures["gold"] = {str(lefty.pk): {"value": 0.25, "defined": True, "n": 8}}
    report.save()
    text = client_as(admin_user).get(url).content.decode()
    assert "Gold accuracy" in text and "0.25" in text
    rows = _csv(client_as(admin_user).get(url + "?format=csv"))
    assert {row["annotator"]: row["gold_accuracy"] for row in rows}["lefty"] == "0.2500"


def _order(response) -> list[str]:
    text = response.content.decode()
    return [part.split('"', 1)[0] for part in text.split('data-testid="annotator-row" data-username="')[1:]]


def test_sorting_by_a_column_orders_the_rows(campaign, seeded, admin_user):
    quality_report_compute(campaign=campaign)
    admin = client_as(admin_user)
    url = f"/manage/campaigns/{campaign.pk}/quality/"
    by_name = _order(admin.get(url + "?sort=username"))
    assert by_name == sorted(by_name)
    fastest_first = _order(admin.get(url + "?sort=median_ms"))
    assert fastest_first[0] == "speedy"
    most_left = _order(admin.get(url + "?sort=-left_rate"))
    assert most_left[0] == "lefty"
    assert _order(admin.get(url + "?sort=nonsense")) == _order(admin.get(url))
    page = admin.get(url + "?sort=median_ms").content.decode()
    assert 'href="?sort=-median_ms"' in page and 'aria-sort="ascending"' in page


def test_api_answers_404_until_computed_then_the_stored_report(campaign, seeded, admin_user,
                                                              django_capture_on_commit_callbacks):
    api = api_as(admin_user)
    url = f"/api/campaigns/{campaign.pk}/quality/"
    missing = api.get(url)
    assert missing.status_code == 404 and "POST to this address" in missing.json()["detail"]
    with django_capture_on_commit_callbacks(execute=True):
        queued = api.post(url)
        again = api.post(url)
    assert queued.status_code == again.status_code == 202
    assert queued.json()["queued"] is True and again.json()["queued"] is False
    assert DBTaskResult.objects.count() == 1
    quality_report_compute(campaign=campaign)
    body = api.get(url).json()
    assert body["campaign"] == "quality-check" and body["vote_count"] == 240 and body["stale"] is False
    assert {row["username"] for row in body["figures"]["annotators"]} >= {"lefty", "speedy"}
    assert api.get("/api/quality/").status_code == 404
    assert api.get("/api/campaigns/999999/quality/").status_code == 404


def test_the_quality_report_command_recomputes_now(campaign, seeded, capsys):
    call_command("quality_report", "--campaign", "quality-check")
    assert "240 votes" in capsys.readouterr().out
    assert QualityReport.objects.get(campaign=campaign).vote_count == 240
    call_command("quality_report")
    assert QualityReport.objects.get(campaign__isnull=True).vote_count == 240


@pytest.mark.parametrize("who, page_status, api_status", [
    ("anonymous", 302, 401), ("annotator", 403, 403), ("admin", 200, 200),
])
def test_permissions_of_page_csv_and_api(campaign, seeded, who, page_status, api_status):
    quality_report_compute(campaign=campaign)
    quality_report_compute(campaign=None)
    user = {"anonymous": None, "annotator": UserFactory(role="annotator"), "admin": UserFactory(role="admin")}[who]
    for path in (f"/manage/campaigns/{campaign.pk}/quality/", "/manage/quality/"):
        assert client_as(user).get(path).status_code == page_status
        csv_response = client_as(user).get(path + "?format=csv")
        assert csv_response.status_code == page_status
        if page_status != 200:
            assert b"lefty" not in csv_response.content
    for path in (f"/api/campaigns/{campaign.pk}/quality/", "/api/quality/"):
        assert api_as(user).get(path).status_code == api_status
        assert api_as(user).post(path).status_code == (202 if api_status == 200 else api_status)


def test_links_from_the_campaign_pages(campaign, admin_user):
    admin = client_as(admin_user)
    assert f'href="/manage/campaigns/{campaign.pk}/quality/"' in admin.get(f"/manage/campaigns/{campaign.pk}/").content.decode()
    listing = admin.get("/manage/campaigns/").content.decode()
    assert 'href="/manage/quality/"' in listing and f'href="/manage/campaigns/{campaign.pk}/quality/"' in listing


def _panel(user) -> str:
    text = client_as(user).get("/campaigns/").content.decode()
    start = text.find('data-testid="your-quality"')
    return text[start:text.find("</p>", start)] if start >= 0 else ""


def test_annotators_see_their_own_figures_and_agreement_only_where_allowed(campaign, seeded):
    honest = seeded["honest0"]
    campaign.annotators.add(*seeded.values())
    assert _panel(honest) == ""  # no report yet
    quality_report_compute(campaign=campaign)
    panel = _panel(honest)
    row = _rows(QualityReport.objects.get(campaign=campaign))["honest0"]
    assert "40 votes" in panel and f"{row['median_ms']['value'] / 1000:.1f} s" in panel
    assert "agreement with the consensus" not in panel
    campaign.show_quality_to_annotators = True
    campaign.save()
    panel = _panel(honest)
    assert f"agreement with the consensus {row['consensus_agreement']['value']:.2f}" in panel
    page = client_as(honest).get("/campaigns/").content.decode()
    assert not any(name in page for name in ("lefty", "speedy", "clicker", "honest1", "honest2"))


def test_admins_turn_the_annotator_panel_on_in_the_form_and_the_api(campaign, admin_user):
    response = api_as(admin_user).patch(f"/api/campaigns/{campaign.pk}/", {"show_quality_to_annotators": True},
                                        format="json")
    assert response.status_code == 200 and response.json()["show_quality_to_annotators"] is True
    campaign.refresh_from_db()
    assert campaign.show_quality_to_annotators is True
    form = client_as(admin_user).get(f"/manage/campaigns/{campaign.pk}/").content.decode()
    assert "Show annotators their agreement with the consensus" in form


def test_a_failed_recompute_keeps_the_old_figures_and_is_not_retried_by_every_look(
        campaign, seeded, admin_user, django_capture_on_commit_callbacks):
    quality_report_compute(campaign=campaign)
    VoteFactory(comparison=ComparisonFactory(campaign=campaign))
    with mock.patch("feedback.quality.services.agreement_for", side_effect=RuntimeError("boom")), \
            pytest.raises(RuntimeError):
        quality_report_compute(campaign=campaign)
    report = QualityReport.objects.get(campaign=campaign)
    assert report.status == "failed" and "boom" in report.error and report.vote_count == 240
    report.queued_at = report.started_at
    report.save()
    admin = client_as(admin_user)
    url = f"/manage/campaigns/{campaign.pk}/quality/"
    with django_capture_on_commit_callbacks(execute=True):
        page = admin.get(url)
        poll = admin.get(url, HTTP_HX_REQUEST="true", HTTP_HX_TARGET="quality-report")
    assert "The last recompute failed" in page.content.decode() and "on <strong>240</strong>" in page.content.decode()
    assert poll.status_code == 286 and not DBTaskResult.objects.exists()
    with django_capture_on_commit_callbacks(execute=True):
        again = admin.post(url)  # "Recompute now", a plain form
    assert again.status_code == 302 and again["Location"] == url
    assert DBTaskResult.objects.count() == 1 and QualityReport.objects.get(campaign=campaign).status == "queued"


def test_the_campaign_command_turns_the_annotator_panel_on(campaign):
    call_command("campaign", "edit", "quality-check", "--show-quality")
    campaign.refresh_from_db()
    assert campaign.show_quality_to_annotators is True

"""The admins' campaign pages: who may see them, create, edit, guidelines (inert HTML), rules,
activate / pause / close as plain posts and with htmx, and the progress an admin reads."""
from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from feedback.campaigns import services
from feedback.campaigns.models import Campaign, GuidelineVersion
from tests.factories import AssignmentFactory, ComparisonFactory, UserFactory, VoteFactory

pytestmark = pytest.mark.django_db

HTMX = {"HTTP_HX_REQUEST": "true"}


@pytest.fixture
def campaign(db):
    return services.campaign_create(values={"name": "Tone check", "votes_required": 2})


@pytest.fixture
def as_admin(client, admin_user):
    client.force_login(admin_user)
    return client


def _paths(campaign):
    base = f"/manage/campaigns/{campaign.pk}/"
    return {
        "GET": ["/manage/campaigns/", "/manage/campaigns/new/", base],
        "POST": [base, base + "guidelines/", base + "comparisons/", base + "activate/", base + "pause/", base + "close/",
                 "/manage/campaigns/new/"],
    }


def test_anonymous_visitors_are_sent_to_log_in(client, campaign):
    for method, paths in _paths(campaign).items():
        for path in paths:
            response = client.get(path) if method == "GET" else client.post(path)
            assert response.status_code == 302 and response["Location"].startswith("/accounts/login/"), path


def test_annotators_are_refused(client, annotator, campaign):
    client.force_login(annotator)
    for method, paths in _paths(campaign).items():
        for path in paths:
            response = client.get(path) if method == "GET" else client.post(path, {"name": "x", "text": "x"})
            assert response.status_code == 403, path
    campaign.refresh_from_db()
    assert campaign.status == "draft" and not GuidelineVersion.objects.exists()


def test_the_list_shows_status_and_progress_and_the_nav_links_it(as_admin, campaign, annotator):
    comparison = ComparisonFactory()
    services.campaign_comparisons_add(campaign=campaign, rules={"ids": [comparison.pk]})
    VoteFactory(comparison=comparison, annotator=annotator)
    body = as_admin.get("/manage/campaigns/").content.decode()
    row = body[body.index(f'id="campaign-{campaign.pk}"'):]
    row = row[: row.index("</tr>")]
    assert "Tone check" in row and "draft" in row and "1 / 2" in row
    assert 'href="/manage/campaigns/"' in body


def test_create_page_makes_a_draft_and_shows_errors_by_field(as_admin, annotator):
    refused = as_admin.post("/manage/campaigns/new/", {"name": "", "votes_required": "1", "priority": "0", "rationale": "optional"})
    assert refused.status_code == 400 and "This field is required" in refused.content.decode()
    response = as_admin.post("/manage/campaigns/new/", {
        "name": "Medical answers", "votes_required": "3", "priority": "5", "rationale": "required",
        "annotators": [annotator.username], "ask_honesty": "on", "label_honesty": "Is every claim true?",
    })
    created = Campaign.objects.get(name="Medical answers")
    assert response.status_code == 302 and response["Location"] == f"/manage/campaigns/{created.pk}/"
    assert (created.status, created.votes_required, created.slug) == ("draft", 3, "medical-answers")
    assert created.aspects == [{"name": "honesty", "label": "Is every claim true?"}]
    assert list(created.annotators.all()) == [annotator]


def test_a_taken_name_is_shown_next_to_the_field(as_admin, campaign):
    response = as_admin.post("/manage/campaigns/new/", {"name": "Tone check", "votes_required": "1", "priority": "0", "rationale": "off"})
    assert response.status_code == 400
    assert "already exists" in response.content.decode()


def test_settings_are_saved_from_the_campaign_page(as_admin, campaign):
    page = as_admin.get(f"/manage/campaigns/{campaign.pk}/")
    assert page.status_code == 200 and 'value="Tone check"' in page.content.decode()
    response = as_admin.post(f"/manage/campaigns/{campaign.pk}/", {
        "name": "Tone check", "slug": "tone", "votes_required": "4", "priority": "1", "rationale": "off",
        "target_votes": "40",
    })
    assert response.status_code == 302
    campaign.refresh_from_db()
    assert (campaign.slug, campaign.votes_required, campaign.target_votes, campaign.rationale) == ("tone", 4, 40, "off")
    bad = as_admin.post(f"/manage/campaigns/{campaign.pk}/", {"name": "Tone check", "votes_required": "0", "priority": "1", "rationale": "off"}, **HTMX)
    assert bad.status_code == 400 and 'id="campaign"' in bad.content.decode() and "<html" not in bad.content.decode()


def test_guidelines_with_html_render_inert_in_preview_and_saved_version(as_admin, campaign):
    text = "# Rules\n\nPrefer **kind** answers.\n\n<script>alert('x')</script>\n<img src=x onerror=alert(1)>"
    preview = as_admin.post(f"/manage/campaigns/{campaign.pk}/guidelines/", {"text": text, "preview": "1"})
    assert preview.status_code == 200 and not GuidelineVersion.objects.exists()
    for response in (preview, as_admin.post(f"/manage/campaigns/{campaign.pk}/guidelines/", {"text": text, "save": "1"}, follow=True)):
        body = response.content.decode()
        shown = body[body.index('class="md guidelines"'):]
        shown = shown[: shown.index("</div>")]
        assert "<strong>kind</strong>" in shown
        assert "<script" not in shown and "<img" not in shown
    assert GuidelineVersion.objects.get(campaign=campaign).number == 1


def test_empty_guidelines_are_refused(as_admin, campaign):
    response = as_admin.post(f"/manage/campaigns/{campaign.pk}/guidelines/", {"text": "  ", "save": "1"})
    assert response.status_code == 400 and "the guidelines are empty" in response.content.decode()


def test_rules_form_moves_comparisons_and_names_missing_ids(as_admin, campaign):
    comparison = ComparisonFactory()
    refused = as_admin.post(f"/manage/campaigns/{campaign.pk}/comparisons/", {"ids": f"{comparison.pk}, 424242"})
    assert refused.status_code == 400 and "no such comparison: 424242" in refused.content.decode()
    moved = as_admin.post(f"/manage/campaigns/{campaign.pk}/comparisons/", {"ids": str(comparison.pk)}, follow=True)
    assert "1 comparison moved into this campaign." in moved.content.decode()
    comparison.refresh_from_db()
    assert comparison.campaign_id == campaign.pk and comparison.votes_required == 2


def test_activation_refused_shows_why_then_works_as_plain_post_and_htmx(as_admin, campaign, annotator):
    page = as_admin.get(f"/manage/campaigns/{campaign.pk}/").content.decode()
    assert "the pool is empty" in page and "the campaign has no comparisons" in page
    refused = as_admin.post(f"/manage/campaigns/{campaign.pk}/activate/", **HTMX)
    assert refused.status_code == 400 and "Not activated: " in refused.content.decode()
    services.campaign_update(campaign=campaign, values={"annotators": [annotator.username]})
    services.campaign_comparisons_add(campaign=campaign, rules={"ids": [ComparisonFactory().pk]})
    activated = as_admin.post(f"/manage/campaigns/{campaign.pk}/activate/")
    assert activated.status_code == 302
    campaign.refresh_from_db()
    assert campaign.status == "active"
    paused = as_admin.post(f"/manage/campaigns/{campaign.pk}/pause/", **HTMX)
    assert paused.status_code == 200 and "Campaign paused" in paused.content.decode()
    campaign.refresh_from_db()
    assert campaign.status == "paused"


def test_closing_says_how_many_leases_were_released(as_admin, campaign):
    comparison = ComparisonFactory()
    services.campaign_comparisons_add(campaign=campaign, rules={"ids": [comparison.pk]})
    AssignmentFactory(comparison=comparison)
    response = as_admin.post(f"/manage/campaigns/{campaign.pk}/close/", **HTMX)
    assert response.status_code == 200 and "1 live lease released" in response.content.decode()
    assert as_admin.post(f"/manage/campaigns/{campaign.pk}/close/").status_code == 400


def test_progress_shows_votes_per_annotator_rate_and_time_left(as_admin, campaign):
    comparisons = ComparisonFactory.create_batch(3)
    services.campaign_comparisons_add(campaign=campaign, rules={"ids": [c.pk for c in comparisons]})
    services.campaign_update(campaign=campaign, values={"target_votes": 6, "deadline": timezone.now() + timedelta(days=2)})
    ana, bo = UserFactory(username="ana", role="annotator"), UserFactory(username="bo", role="annotator")
    VoteFactory(comparison=comparisons[0], annotator=ana)
    VoteFactory(comparison=comparisons[1], annotator=ana)
    VoteFactory(comparison=comparisons[0], annotator=bo)
    body = as_admin.get(f"/manage/campaigns/{campaign.pk}/").content.decode()
    table = body[body.index('data-testid="annotator-votes"'):]
    assert table.index("<td>ana</td><td class=\"num\">2</td>") < table.index("<td>bo</td><td class=\"num\">1</td>")
    facts = body[body.index('data-testid="progress"'):]
    assert "<strong class=\"num\">3</strong> of <span class=\"num\">6</span>" in facts
    assert "3.0 votes/hour" in facts and "on track" in facts


def test_the_django_admin_lists_campaigns_with_read_only_guidelines(client, campaign):
    superuser = UserFactory(is_staff=True, is_superuser=True)
    client.force_login(superuser)
    services.guidelines_edit(campaign=campaign, text="Compare helpfulness.")
    assert "Tone check" in client.get("/admin/feedback/campaign/").content.decode()
    page = client.get(f"/admin/feedback/campaign/{campaign.pk}/change/").content.decode()
    assert "Compare helpfulness." in page and f"/manage/campaigns/{campaign.pk}/" in page
    assert 'name="guideline_versions-0-text"' not in page  # shown, never edited

"""Flag instead of skip (issue 14 item 6): a skip may carry a reason and a note, from the service,
the annotator page (plain form post and htmx) and the API; admins see the flags, counted per reason
per campaign, on /manage/flags/, /api/flags/ and the comparison's own page."""
from __future__ import annotations

import re

import pytest
from django.core.exceptions import ValidationError

from feedback import services
from feedback.errors import VoteConflict
from feedback.models import Assignment, AssignmentStatus, Campaign, SkipReason
from feedback.services import MAX_SKIP_NOTE_CHARS
from tests.conftest import api_as
from tests.factories import AssignmentFactory, ComparisonFactory, UserFactory

pytestmark = pytest.mark.django_db

HTMX = {"HTTP_HX_REQUEST": "true"}


def shown_item(response) -> str:
    return re.search(rb'name="item" value="([\w-]+)"', response.content).group(1).decode()


def lease(annotator, **comparison_fields) -> Assignment:
    return AssignmentFactory(annotator=annotator, comparison=ComparisonFactory(**comparison_fields))


# --- the service ----------------------------------------------------------------------------------
@pytest.mark.parametrize("reason", SkipReason.values)
def test_each_reason_is_stored_with_its_note(annotator, reason):
    assignment = lease(annotator)
    services.assignment_skip(
        annotator=annotator, comparison_id=assignment.comparison_id, reason=reason, note="  Says 'as GPT-4'.\r\n"
    )
    assignment.refresh_from_db()
    assert (assignment.status, assignment.skip_reason, assignment.skip_note) == ("skipped", reason, "Says 'as GPT-4'.")


def test_a_plain_skip_has_no_reason(annotator):
    assignment = lease(annotator)
    services.assignment_skip(annotator=annotator, comparison_id=assignment.comparison_id)
    assignment.refresh_from_db()
    assert (assignment.status, assignment.skip_reason, assignment.skip_note) == ("skipped", "", "")


@pytest.mark.parametrize(
    ("reason", "note", "field", "words"),
    [
        ("spam", "", "reason", "must be one of"),
        ("IDENTITY_LEAK", "", "reason", "must be one of"),
        (None, "", "reason", "must be one of"),
        ("other", "", "note", "required when the reason is other"),
        ("other", "   \n ", "note", "required when the reason is other"),
        ("other", "x" * (MAX_SKIP_NOTE_CHARS + 1), "note", f"at most {MAX_SKIP_NOTE_CHARS}"),
        ("broken", "bad\x00byte", "note", "NUL"),
        ("", "A note but no reason.", "reason", "choose a reason"),
    ],
)
def test_bad_reasons_and_notes_are_refused_and_nothing_changes(annotator, reason, note, field, words):
    assignment = lease(annotator)
    with pytest.raises(ValidationError) as refused:
        services.assignment_skip(annotator=annotator, comparison_id=assignment.comparison_id, reason=reason, note=note)
    assert words in " ".join(refused.value.message_dict[field])
    assignment.refresh_from_db()
    assert (assignment.status, assignment.skip_reason) == ("leased", "")


def test_the_longest_note_is_kept_whole(annotator):
    assignment = lease(annotator)
    note = "y" * MAX_SKIP_NOTE_CHARS
    services.assignment_skip(annotator=annotator, comparison_id=assignment.comparison_id, reason="other", note=note)
    assert Assignment.objects.get(pk=assignment.pk).skip_note == note


def test_a_voted_item_cannot_be_flagged(annotator):
    assignment = lease(annotator)
    services.vote_submit(annotator=annotator, item=assignment.token, choice="left")
    with pytest.raises(VoteConflict):
        services.assignment_skip(annotator=annotator, comparison_id=assignment.comparison_id, reason="broken")
    assert Assignment.objects.get(pk=assignment.pk).skip_reason == ""


# --- the annotator page ---------------------------------------------------------------------------
@pytest.fixture
def as_annotator(client, annotator):
    client.force_login(annotator)
    return client


def test_the_page_offers_every_reason(as_annotator):
    ComparisonFactory()
    page = as_annotator.get("/annotate/").content.decode()
    for value, label in SkipReason.choices:
        assert f'name="skip_reason" value="{value}"' in page
        assert label.capitalize() in page
    assert 'name="skip_note"' in page and f'maxlength="{MAX_SKIP_NOTE_CHARS}"' in page


@pytest.mark.parametrize("htmx", [False, True], ids=["plain form post", "htmx"])
def test_flagging_from_the_page_stores_the_reason_and_shows_the_next_item(as_annotator, annotator, htmx):
    first, second = ComparisonFactory(priority=2), ComparisonFactory(priority=1)
    item = shown_item(as_annotator.get("/annotate/"))
    response = as_annotator.post(
        "/annotate/skip/", {"item": item, "skip_reason": "identity_leak", "skip_note": "It signs as Claude."},
        **(HTMX if htmx else {}), follow=not htmx,
    )
    assert response.status_code == 200
    flagged = Assignment.objects.get(comparison=first, annotator=annotator)
    assert (flagged.status, flagged.skip_reason, flagged.skip_note) == ("skipped", "identity_leak", "It signs as Claude.")
    assert Assignment.objects.get(token=shown_item(response)).comparison == second
    if not htmx:
        assert "Skipped and flagged for the admins." in response.content.decode()


def test_other_without_a_note_is_refused_on_the_page_with_the_item_and_typing_kept(as_annotator, annotator):
    ComparisonFactory()
    item = shown_item(as_annotator.get("/annotate/"))
    response = as_annotator.post(
        "/annotate/skip/", {"item": item, "skip_reason": "other", "skip_note": "", "rationale": "Half written."}, **HTMX
    )
    assert response.status_code == 400
    page = response.content.decode()
    assert "Not skipped." in page and "note: say what is wrong" in page
    assert shown_item(response) == item  # the same item, still to judge
    assert "Half written." in page
    assert re.search(r'<details class="flag-menu"[^>]* open', page)  # the chooser stays open
    assert Assignment.objects.get(token=item).status == AssignmentStatus.LEASED


def test_an_overlong_note_is_refused_on_the_page(as_annotator):
    ComparisonFactory()
    item = shown_item(as_annotator.get("/annotate/"))
    response = as_annotator.post(
        "/annotate/skip/", {"item": item, "skip_reason": "broken", "skip_note": "z" * (MAX_SKIP_NOTE_CHARS + 1)}
    )
    assert response.status_code == 400
    assert f"at most {MAX_SKIP_NOTE_CHARS}" in response.content.decode()
    assert Assignment.objects.get(token=item).status == AssignmentStatus.LEASED


def test_an_unknown_reason_is_refused_on_the_page(as_annotator):
    ComparisonFactory()
    item = shown_item(as_annotator.get("/annotate/"))
    response = as_annotator.post("/annotate/skip/", {"item": item, "skip_reason": "boring"})
    assert response.status_code == 400 and "reason: must be one of" in response.content.decode()
    assert Assignment.objects.get(token=item).status == AssignmentStatus.LEASED


def test_a_plain_skip_from_the_page_still_works(as_annotator):
    ComparisonFactory()
    item = shown_item(as_annotator.get("/annotate/"))
    assert as_annotator.post("/annotate/skip/", {"item": item}).status_code == 302
    assert Assignment.objects.filter(token=item, status="skipped", skip_reason="").exists()


# --- the API --------------------------------------------------------------------------------------
def test_the_api_skip_takes_a_reason_and_note(annotator):
    assignment = lease(annotator)
    response = api_as(annotator).post(
        f"/api/comparisons/{assignment.comparison_id}/skip/", {"reason": "personal_data", "note": "A phone number."},
        format="json",
    )
    assert response.status_code == 200
    assert (response.json()["skip_reason"], response.json()["skip_note"]) == ("personal_data", "A phone number.")
    assert Assignment.objects.get(pk=assignment.pk).skip_reason == "personal_data"


@pytest.mark.parametrize(
    ("body", "field"),
    [({"reason": "other"}, "note"), ({"reason": "nope"}, "reason"), ({"reason": "other", "note": "n" * 501}, "note")],
)
def test_the_api_skip_refuses_bad_input_with_field_messages(annotator, body, field):
    assignment = lease(annotator)
    response = api_as(annotator).post(f"/api/comparisons/{assignment.comparison_id}/skip/", body, format="json")
    assert response.status_code == 400 and field in response.json(), response.json()
    assert Assignment.objects.get(pk=assignment.pk).status == AssignmentStatus.LEASED


def test_the_api_skip_without_a_body_is_a_plain_skip(annotator):
    assignment = lease(annotator)
    response = api_as(annotator).post(f"/api/comparisons/{assignment.comparison_id}/skip/")
    assert response.status_code == 200 and response.json()["skip_reason"] == ""


# --- what admins see ------------------------------------------------------------------------------
@pytest.fixture
def flagged(db):
    """Flags in two campaigns: Default has 2 identity leaks and 1 other; Safety has 1 personal data,
    1 broken; plus a plain skip (not a flag) in Default."""
    default = Campaign.objects.get(slug="default")
    safety = Campaign.objects.create(name="Safety review", slug="safety", status="active")
    raised = [
        (default, "identity_leak", ""), (default, "identity_leak", "Mentions its maker."), (default, "other", "Duplicate."),
        (safety, "personal_data", "An address."), (safety, "broken", ""), (default, "", ""),
    ]
    for campaign, reason, note in raised:
        assignment = lease(UserFactory(role="annotator"), campaign=campaign)
        services.assignment_skip(
            annotator=assignment.annotator, comparison_id=assignment.comparison_id, reason=reason, note=note
        )
    return {"default": default, "safety": safety}


def _count_rows(page: str) -> dict[str, list[str]]:
    table = re.search(r'data-testid="flag-counts">(.*?)</table>', page, re.S).group(1)
    rows = {}
    for row in re.findall(r"<tr><th scope=\"row\">(.*?)</tr>", table, re.S):
        name, rest = row.split("</th>", 1)
        rows[name] = re.findall(r'<td class="num">(\d+)</td>', rest)
    return rows


def test_the_flags_page_counts_per_reason_per_campaign(client, admin_user, flagged):
    client.force_login(admin_user)
    page = client.get("/manage/flags/").content.decode()
    header = re.search(r'data-testid="flag-counts">\s*<thead>(.*?)</thead>', page, re.S).group(1)
    assert re.findall(r"<th>(.*?)</th>", header) == [
        "Campaign", "Reveals which model wrote it", "Contains personal data", "Prompt is broken or unreadable", "Other",
        "All reasons",
    ]
    assert _count_rows(page) == {"Default": ["2", "0", "0", "1", "3"], "Safety review": ["0", "1", "1", "0", "2"]}
    listed = re.search(r'data-testid="flag-list">(.*?)</table>', page, re.S).group(1)
    assert listed.count("<tr>") == 1 + 5  # header + the five flags; the plain skip is not a flag
    assert "Mentions its maker." in listed and "An address." in listed
    comparison = Assignment.objects.get(skip_note="An address.").comparison_id
    assert f'href="/manage/comparisons/{comparison}/"' in listed


def test_the_flags_page_filters_by_campaign_and_reason(client, admin_user, flagged):
    client.force_login(admin_user)
    page = client.get("/manage/flags/", {"campaign": flagged["safety"].pk}).content.decode()
    assert _count_rows(page) == {"Safety review": ["0", "1", "1", "0", "2"]}
    assert "An address." in page and "Mentions its maker." not in page
    page = client.get("/manage/flags/", {"reason": "identity_leak"}).content.decode()
    assert _count_rows(page) == {"Default": ["2", "0", "0", "0", "2"]}
    listed = re.search(r'data-testid="flag-list">(.*?)</table>', page, re.S).group(1)
    assert listed.count("Reveals which model wrote it") == 2 and "Duplicate." not in listed
    partial = client.get("/manage/flags/", {"reason": "broken"}, HTTP_HX_REQUEST="true", HTTP_HX_TARGET="flag-results")
    assert partial.content.decode().lstrip().startswith('<div id="flag-results">')
    assert client.get("/manage/flags/", {"reason": "boring"}).status_code == 400


def test_the_comparison_page_shows_its_flags(client, admin_user, flagged):
    client.force_login(admin_user)
    assignment = Assignment.objects.get(skip_note="Mentions its maker.")
    page = client.get(f"/manage/comparisons/{assignment.comparison_id}/").content.decode()
    flags = re.search(r'data-testid="flags">(.*?)</div>', page, re.S).group(1)
    assert "Reveals which model wrote it" in flags and "Mentions its maker." in flags
    assert assignment.annotator.username in flags


@pytest.mark.parametrize(
    ("role", "page_status", "api_status"), [(None, 302, 401), ("annotator", 403, 403), ("admin", 200, 200)]
)
def test_who_may_see_the_flags(client, flagged, role, page_status, api_status):
    user = UserFactory(role=role) if role else None
    if user:
        client.force_login(user)
    page = client.get("/manage/flags/")
    assert page.status_code == page_status
    if page_status == 302:
        assert "/accounts/login/" in page["Location"]
    assert api_as(user).get("/api/flags/").status_code == api_status


def test_the_flags_api_lists_and_filters(admin_user, flagged):
    client = api_as(admin_user)
    assert len(client.get("/api/flags/").json()["results"]) == 5  # the plain skip is not a flag
    safety = client.get("/api/flags/", {"campaign": "safety"}).json()["results"]
    assert {(f["reason"], f["reason_label"], f["note"], f["campaign"]) for f in safety} == {
        ("personal_data", "contains personal data", "An address.", "safety"), ("broken", "prompt is broken or unreadable", "", "safety"),
    }
    assert [f["reason"] for f in client.get("/api/flags/", {"reason": "other"}).json()["results"]] == ["other"]
    assert client.get("/api/flags/", {"reason": "boring"}).status_code == 400
    assert client.get("/api/flags/", {"campaign": "nowhere"}).status_code == 400

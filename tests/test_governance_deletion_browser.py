"""The deletion page in a real browser (Chromium + Playwright, as tests/test_browser.py): an admin
asks to delete an unknown annotator (a readable error beside the field, nothing deleted), then a
real one (the counts first, then what was removed); the snapshot that held the votes says it
contains deleted data and offers a rebuild; a double click deletes once; a form sent after the
session ended deletes nothing."""
from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from feedback import snapshots
from feedback.governance.models import AuditEvent, SnapshotDeletedData
from feedback.models import Vote
from tests.factories import PASSWORD, ComparisonFactory, UserFactory, VoteFactory
from tests.browser_support import Tab
from training.models import Job

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]
PAGE = "/manage/governance/deletion/"


@pytest.fixture
def world(settings, tmp_path):
    """Three annotators ("leaver", "twice", "third") with two votes each, and a training run on a
    snapshot holding them."""
    settings.ARBITER_DATA_DIR = tmp_path
    comparisons = [ComparisonFactory() for _ in range(2)]
    for name in ("leaver", "twice", "third"):
        annotator = UserFactory(role="annotator", username=name)
        for comparison in comparisons:
            VoteFactory(comparison=comparison, annotator=annotator, choice="a", rationale=f"{name}'s reason")
    snapshot = snapshots.snapshot_create(rules={})
    job = Job.objects.create(kind="reward", snapshot=snapshot, status="succeeded")
    return {"admin": UserFactory(role="admin", username="chief"), "snapshot": snapshot, "job": job}


def log_in(tab: Tab, username: str) -> None:
    page = tab.page
    page.goto(f"/accounts/login/?next={PAGE}")
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    page.wait_for_url(re.compile(re.escape(PAGE) + "$"))


def preview(tab: Tab, username: str) -> None:
    page = tab.page
    page.get_by_label("Annotator (username)").fill(username)
    page.get_by_role("button", name="Preview").click()


def deletions() -> int:
    return AuditEvent.objects.filter(action="deletion").count()


def votes_of(username: str) -> int:
    return Vote.objects.filter(rationale=f"{username}'s reason").count()


def test_an_admin_deletes_an_annotator_after_seeing_the_counts_and_the_snapshot_offers_a_rebuild(tab, world):
    page = tab.page
    log_in(tab, "chief")
    preview(tab, "nobody")
    error = page.get_by_test_id("deletion-error")
    expect(error).to_have_text('no annotator named "nobody"')
    assert tab.errors == ["console: Failed to load resource: the server responded with a status of 400 (Bad Request)"]
    tab.errors.clear()  # the refusal is a 400, which the browser logs
    field = page.get_by_label("Annotator (username)")
    assert field.get_attribute("aria-invalid") == "true" and field.get_attribute("aria-describedby") == error.get_attribute("id")
    assert page.locator(".field", has=field).get_by_test_id("deletion-error").count() == 1  # beside the field
    assert page.get_by_test_id("deletion-confirm").count() == 0
    assert votes_of("leaver") == 2 and deletions() == 0

    preview(tab, "leaver")
    expect(page.get_by_test_id("deletion-plan")).to_contain_text('annotator "leaver": 0 prompts, 0 completions, 0 comparisons, 2 votes')
    expect(page.get_by_test_id("deletion-plan")).to_contain_text("1 snapshots marked")
    assert votes_of("leaver") == 2  # a preview deletes nothing
    page.get_by_test_id("deletion-confirm").click()
    expect(page.locator(".flash")).to_contain_text('Deleted annotator "leaver": 0 prompts, 0 completions, 0 comparisons, 2 votes')
    assert votes_of("leaver") == 0 and deletions() == 1

    page.goto(f"/manage/jobs/{world['job'].pk}/")
    expect(page.get_by_test_id("snapshot-deleted-data")).to_contain_text("Contains deleted data")
    page.get_by_test_id("snapshot-rebuild").click()
    expect(page.locator(".flash")).to_contain_text(f"Snapshot {world['snapshot'].pk} rebuilt as snapshot")
    assert SnapshotDeletedData.objects.get(snapshot=world["snapshot"]).rebuilt_as is not None
    tab.assert_no_errors()


def test_a_double_click_on_delete_deletes_once(tab, world):
    page = tab.page
    log_in(tab, "chief")
    preview(tab, "twice")
    page.get_by_test_id("deletion-confirm").dblclick()
    expect(page.locator(".flash")).to_contain_text('Deleted annotator "twice"')
    assert votes_of("twice") == 0 and deletions() == 1
    assert votes_of("leaver") == 2 and votes_of("third") == 2
    tab.assert_no_errors()


def test_two_confirmations_sent_at_once_delete_once(tab, world):
    """What a double click sends where the page's script does not stop it: the same form twice, at once."""
    page = tab.page
    log_in(tab, "chief")
    preview(tab, "twice")
    statuses = page.evaluate("""async () => {
        const form = document.querySelector("[data-testid=deletion-confirm]").form;
        const send = () => {
            const body = new FormData(form);
            body.append("delete", "1");
            return fetch(form.action, {method: "POST", body, credentials: "same-origin"}).then(r => r.status);
        };
        return Promise.all([send(), send()]);
    }""")
    assert sorted(statuses) == [200, 400]  # one deleted (and was redirected to the page), one was refused
    assert votes_of("twice") == 0 and deletions() == 1


def test_a_form_sent_after_the_session_ended_deletes_nothing(tab, world):
    page = tab.page
    log_in(tab, "chief")
    preview(tab, "third")
    expect(page.get_by_test_id("deletion-confirm")).to_be_visible()
    other = page.context.new_page()  # another tab of the same browser: log out there
    other.goto("/manage/governance/audit/")
    other.get_by_role("button", name="Log out").click()
    other.wait_for_url(re.compile(r"/accounts/login/|/$"))
    other.close()
    page.get_by_test_id("deletion-confirm").click()
    page.wait_for_url(re.compile(r"/accounts/login/\?next="))
    expect(page.get_by_label("Username")).to_be_visible()
    assert votes_of("third") == 2 and deletions() == 0
    tab.assert_no_errors()

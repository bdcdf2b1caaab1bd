"""Quality reports recomputed after new votes (feedback.quality.schedule): a human vote queues one
background recompute of the overall report and of its campaign's, debounced on the report rows
(one pending per scope, none within ARBITER_QUALITY_DEBOUNCE_SECONDS of the last computation), the
worker's task recomputes and clears the mark, and nothing that goes wrong there breaks voting."""
from __future__ import annotations

import io
from datetime import timedelta
from unittest import mock

import pytest
from django.core.management import call_command
from django.test import Client
from django.utils import timezone
from django_tasks_db.models import DBTaskResult

from feedback.models import Campaign, QualityReport, Vote
from feedback.quality.schedule import quality_report_schedule
from tests.campaign_support import campaign_make
from tests.conftest import api_as
from tests.factories import AssignmentFactory, ComparisonFactory, UserFactory, VoteFactory

TASK = "feedback.tasks.quality_report_execute"


@pytest.fixture
def campaign(annotator) -> Campaign:
    return campaign_make("Recomputed", annotators=[annotator])


def vote(user, campaign: Campaign, choice: str = "a") -> Vote:
    """``user`` votes on a new comparison of ``campaign`` through the API (201), on_commit hooks and all."""
    assignment = AssignmentFactory(annotator=user, comparison=ComparisonFactory(campaign=campaign))
    response = api_as(user).post("/api/votes/", {"item": assignment.token, "choice": choice}, format="json")
    assert response.status_code == 201, response.content
    return Vote.objects.get(comparison=assignment.comparison, annotator=user)


def queued_scopes() -> list:
    """The scopes (campaign id, None: overall) of the recompute tasks in the queue, sorted."""
    tasks = DBTaskResult.objects.filter(task_path=TASK)
    return sorted((t.args_kwargs["args"][0] for t in tasks), key=lambda scope: scope or 0)


def report(campaign: Campaign | None) -> QualityReport:
    return QualityReport.objects.get(campaign=campaign)


def run_worker() -> None:
    call_command("db_worker", batch=True, no_startup_delay=True, stdout=io.StringIO(), stderr=io.StringIO())


@pytest.mark.django_db
def test_a_vote_marks_the_overall_and_its_campaigns_report_pending_and_queues_one_task_each(
        annotator, campaign, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        vote(annotator, campaign)
    assert queued_scopes() == [None, campaign.pk]
    for scope in (None, campaign):
        row = report(scope)
        assert row.status == "queued" and row.pending and row.queued_at is not None
        assert row.task_id == str(DBTaskResult.objects.get(args_kwargs__args=[scope and scope.pk]).id)


@pytest.mark.django_db
def test_more_votes_while_pending_queue_nothing_more_and_another_campaign_queues_only_its_own(
        annotator, campaign, django_capture_on_commit_callbacks):
    other = campaign_make("Other", annotators=[annotator])
    with django_capture_on_commit_callbacks(execute=True):
        for _ in range(3):
            vote(annotator, campaign)
        vote(annotator, other)
        vote(annotator, other)
    assert queued_scopes() == [None, campaign.pk, other.pk]


@pytest.mark.django_db
def test_a_vote_within_the_debounce_of_the_last_computation_queues_nothing_after_it_one_does(
        annotator, campaign, settings, django_capture_on_commit_callbacks):
    settings.ARBITER_QUALITY_DEBOUNCE_SECONDS = 60
    now = timezone.now()
    for scope in (None, campaign):
        QualityReport.objects.create(campaign=scope, status="succeeded", computed_at=now - timedelta(seconds=30))
    with django_capture_on_commit_callbacks(execute=True):
        vote(annotator, campaign)
    assert queued_scopes() == [] and report(campaign).status == "succeeded"
    QualityReport.objects.filter(campaign=campaign).update(computed_at=now - timedelta(seconds=90))
    with django_capture_on_commit_callbacks(execute=True):
        vote(annotator, campaign)
    assert queued_scopes() == [campaign.pk] and report(None).status == "succeeded"


# The pending mark and the debounce, row by row: (status, minutes since queued, started, computed)
# -> due? The vote's SQL (vote_due_columns) and the scheduler's ORM filter must agree on each.
ROW_STATES = [
    pytest.param(None, id="no report yet"),
    pytest.param(("queued", 1, None, None), id="queued a minute ago"),
    pytest.param(("queued", 31, None, None), id="queued 31 minutes ago (worker lost)"),
    pytest.param(("running", 40, 2, None), id="running for 2 minutes"),
    pytest.param(("running", 40, 35, None), id="running for 35 minutes (worker lost)"),
    pytest.param(("succeeded", 10, 10, 0.5), id="computed 30 s ago"),
    pytest.param(("succeeded", 10, 10, 5), id="computed 5 minutes ago"),
    pytest.param(("failed", 1, 0.5, 60), id="failed 30 s ago"),
    pytest.param(("failed", 10, 5, 60), id="failed 5 minutes ago"),
]
DUE = {"no report yet", "queued 31 minutes ago (worker lost)", "running for 35 minutes (worker lost)",
       "computed 5 minutes ago", "failed 5 minutes ago"}


def _row_make(state, campaign) -> None:
    if state is None:
        return
    status, queued, started, computed = state
    now = timezone.now()
    minutes = lambda m: None if m is None else now - timedelta(minutes=m)  # noqa: E731
    QualityReport.objects.create(campaign=campaign, status=status, queued_at=minutes(queued),
                                 started_at=minutes(started), computed_at=minutes(computed))


@pytest.mark.django_db
@pytest.mark.parametrize("state", ROW_STATES)
def test_the_vote_and_the_scheduler_agree_on_when_a_report_is_due(
        state, request, annotator, campaign, settings, django_capture_on_commit_callbacks):
    settings.ARBITER_QUALITY_DEBOUNCE_SECONDS = 60
    due = request.node.callspec.id in DUE
    _row_make(state, campaign)
    QualityReport.objects.create(campaign=None, status="succeeded", computed_at=timezone.now())  # not due
    from feedback import vote_submit

    after_vote = mock.Mock(wraps=vote_submit.quality_reports_after_vote)
    with django_capture_on_commit_callbacks(execute=True), \
            mock.patch.object(vote_submit, "quality_reports_after_vote", after_vote):
        vote(annotator, campaign)
    # The vote's first statement found it due (or not): only then does the vote run anything for it.
    assert after_vote.call_args_list == ([mock.call(campaign_id=campaign.pk, overall=False, campaign=True)]
                                         if due else [])
    assert queued_scopes() == ([campaign.pk] if due else [])
    if due:
        assert report(campaign).status == "queued"
    # The scheduler's own check, on the same state: queues exactly when the vote did.
    QualityReport.objects.filter(campaign=campaign).delete()
    _row_make(state, campaign)
    with django_capture_on_commit_callbacks(execute=True):
        assert quality_report_schedule(campaign=campaign.pk) is due


@pytest.mark.django_db(transaction=True)  # the worker closes and reopens the connection
def test_the_task_recomputes_clears_the_mark_and_the_dashboard_shows_the_new_figures(annotator, campaign,
                                                                                    admin_user):
    peer = UserFactory(username="peer", role="annotator")
    campaign.annotators.add(peer)
    for user in (annotator, peer, annotator):
        vote(user, campaign, choice="b")
    assert queued_scopes() == [None, campaign.pk]
    run_worker()
    assert DBTaskResult.objects.filter(task_path=TASK, status="SUCCESSFUL").count() == 2
    for scope in (None, campaign):
        row = report(scope)
        assert row.status == "succeeded" and not row.pending and row.error == ""
        assert row.vote_count == 3 and row.last_vote_id == Vote.objects.order_by("-id").first().pk
    names = {r["username"]: r["votes"] for r in report(campaign).figures["annotators"]}
    assert names == {annotator.username: 2, "peer": 1}
    admin = Client()
    admin.force_login(admin_user)
    page = admin.get(f"/manage/campaigns/{campaign.pk}/quality/").content.decode()
    assert "on <strong>3</strong> votes" in page and "Recomputing" not in page
    assert 'data-username="peer"' in page
    overall = admin.get("/manage/quality/").content.decode()
    assert "on <strong>3</strong> votes" in overall and "Recomputing" not in overall
    # Just computed: the next vote is within the debounce and queues nothing.
    vote(peer, campaign)
    assert DBTaskResult.objects.filter(task_path=TASK, status="READY").count() == 0


@pytest.mark.django_db(transaction=True)
def test_a_failing_recompute_leaves_its_error_on_the_report_and_voting_goes_on(annotator, campaign, settings):
    vote(annotator, campaign)
    with mock.patch("feedback.quality.services.agreement_for", side_effect=ValueError("agreement exploded")):
        run_worker()
    for scope in (None, campaign):
        row = report(scope)
        assert row.status == "failed" and not row.pending
        assert "ValueError: agreement exploded" in row.error
    admin = Client()
    admin.force_login(UserFactory(role="admin"))
    page = admin.get(f"/manage/campaigns/{campaign.pk}/quality/").content.decode()
    assert "The last recompute failed: <code>ValueError: agreement exploded</code>" in page
    vote(annotator, campaign)  # voting is unaffected; within the debounce of the failed run: no retry yet
    assert DBTaskResult.objects.filter(task_path=TASK, status="READY").count() == 0
    settings.ARBITER_QUALITY_DEBOUNCE_SECONDS = 0
    vote(annotator, campaign)  # past it: one retry per scope
    assert DBTaskResult.objects.filter(task_path=TASK, status="READY").count() == 2
    run_worker()
    assert report(campaign).status == "succeeded" and report(campaign).error == ""
    assert report(campaign).vote_count == 3


@pytest.mark.django_db(transaction=True)
def test_a_queue_that_refuses_marks_the_report_failed_and_the_vote_stands(annotator, campaign):
    refusing = mock.Mock()
    refusing.enqueue.side_effect = RuntimeError("queue is down")
    with mock.patch("feedback.tasks.quality_report_execute", refusing):
        stored = vote(annotator, campaign)
    assert Vote.objects.filter(pk=stored.pk).exists()
    row = report(campaign)
    assert row.status == "failed" and "RuntimeError: queue is down" in row.error
    assert "Could not queue the recompute" in row.error


@pytest.mark.django_db(transaction=True)
def test_a_scheduler_that_raises_does_not_break_the_vote(annotator, campaign):
    with mock.patch("feedback.quality.schedule.quality_report_schedule", side_effect=RuntimeError("database gone")):
        stored = vote(annotator, campaign)
    assert Vote.objects.filter(pk=stored.pk).exists() and not QualityReport.objects.exists()


@pytest.mark.django_db
def test_votes_written_outside_the_vote_service_queue_nothing(campaign, django_capture_on_commit_callbacks):
    """Rows written directly (imports, fixtures) are not human votes through ``vote_submit``: no task;
    the dashboard's staleness check covers them."""
    with django_capture_on_commit_callbacks(execute=True):
        VoteFactory(comparison=ComparisonFactory(campaign=campaign))
    assert not DBTaskResult.objects.exists() and not QualityReport.objects.exists()

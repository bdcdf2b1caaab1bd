"""What one vote costs the database (issue 14: the vote path lost a quarter of its speed).

The figures are pinned so that a change which adds a query to every vote fails here; the loop's
per-vote check, the first suspect, is one raw statement on its settings row while the loop is off.
bench/annotate_load.py measures the same path for speed (server CPU per vote)."""
from __future__ import annotations

import json
from datetime import timedelta

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from feedback.models import Campaign, QualityReport, Vote
from feedback.tokens.services import api_token_issue
from tests.factories import AssignmentFactory, ComparisonFactory
from training import loop
from training.models import Checkpoint, LoopRound, LoopSettings

pytestmark = pytest.mark.django_db(transaction=True)  # on_commit listeners (the loop's check) run for real

# Each API vote: token user, permissions, BEGIN, the assignment row (locked), "already voted?",
# INSERT vote, UPDATE assignment, UPDATE comparison, COMMIT, the loop's check.
API_VOTE_QUERIES = 10


def _sql(captured) -> list[str]:
    return [q["sql"] for q in captured.captured_queries]


def _loop_queries(sql: list[str]) -> list[str]:
    return [q for q in sql if "training_" in q]


def _reports_fresh() -> None:
    """Every quality report (overall and each campaign's) computed just now: a vote is then within
    the recompute debounce, as most votes are, and costs nothing for the reports (the one that is
    due costs QUALITY_RECOMPUTE_QUERIES more, pinned below)."""
    now = timezone.now()
    for campaign in [None, *Campaign.objects.values_list("pk", flat=True)]:
        QualityReport.objects.update_or_create(campaign_id=campaign, defaults={"status": "succeeded", "computed_at": now})


def test_an_api_vote_costs_ten_queries_and_one_cheap_loop_check(annotator):
    _, key = api_token_issue(user=annotator)
    client = Client(HTTP_AUTHORIZATION=f"Token {key}")
    assignments = [AssignmentFactory(annotator=annotator) for _ in range(2)]
    _reports_fresh()
    counts = []
    for index, assignment in enumerate(assignments):
        body = {"item": assignment.token, "choice": "left", "strength": "clear", "ms_on_item": 4000}
        if index:  # by comparison id, as older clients send it: the same cost
            body = {"comparison": assignment.comparison_id, "choice": "a", "strength": "clear", "ms_on_item": 4000}
        with CaptureQueriesContext(connection) as captured:
            response = client.post("/api/votes/", json.dumps(body), content_type="application/json")
        assert response.status_code == 201, response.content
        sql = _sql(captured)
        counts.append(len(sql))
        # The loop is off: its check is one statement on the settings row, nothing on the votes.
        assert _loop_queries(sql) == [q for q in sql if q.startswith("SELECT votes_per_round, last_vote_id, judge_id FROM")]
        assert len(_loop_queries(sql)) == 1, sql
        assert len(sql) == len(set(sql)), "a query ran twice for one vote"
    assert counts == [API_VOTE_QUERIES, API_VOTE_QUERIES]
    assert Vote.objects.filter(annotator=annotator).count() == 2


def test_a_page_vote_costs_the_vote_and_the_next_item_and_no_more(annotator):
    client = Client()
    client.force_login(annotator)
    voted = AssignmentFactory(annotator=annotator)
    ComparisonFactory()  # what the page shows next
    _reports_fresh()
    with CaptureQueriesContext(connection) as captured:
        response = client.post(
            "/annotate/vote/", {"item": voted.token, "choice": "left", "strength": "clear", "ms_on_item": "4000"},
            HTTP_HX_REQUEST="true",
        )
    assert response.status_code == 200
    assert Vote.objects.filter(annotator=annotator, comparison=voted.comparison).exists()
    sql = _sql(captured)
    [check] = _loop_queries(sql)
    assert check.startswith("SELECT votes_per_round, last_vote_id, judge_id FROM"), check
    # Two transactions (the vote, the claim): SQLite says BEGIN IMMEDIATE, PostgreSQL BEGIN.
    statements = [q for q in sql if q not in ("BEGIN", "BEGIN IMMEDIATE", "COMMIT")]
    assert len(statements) == len(set(statements)), "a query ran twice for one vote"
    # PostgreSQL's claim locks the chosen candidate in a statement of its own (SKIP LOCKED).
    expected = PAGE_VOTE_QUERIES - 4 + (connection.vendor == "postgresql")
    assert len(statements) == expected, "\n".join(sql)


# session, user, permissions; the vote's 7 statements (BEGIN .. COMMIT); the loop's check; the
# next item's claim (BEGIN, a live lease?, candidates, INSERT, COMMIT) and display (comparison
# with prompt and completions); the progress line (voted and skipped in one query, remaining); the
# vote the Undo button would withdraw (with its comparison, one query).
PAGE_VOTE_QUERIES = 20


def test_with_the_loop_on_a_vote_counts_new_votes_only_up_to_the_batch(annotator, settings, tmp_path):
    settings.ARBITER_DATA_DIR = tmp_path
    smol = Checkpoint.objects.create(name="smol", hub_id="x/smol")
    LoopSettings.objects.create(pk=1, enabled=True, votes_per_round=3, policy=smol, last_vote_id=0)
    _, key = api_token_issue(user=annotator)
    client = Client(HTTP_AUTHORIZATION=f"Token {key}")
    assignment = AssignmentFactory(annotator=annotator)
    _reports_fresh()
    with CaptureQueriesContext(connection) as captured:
        response = client.post(
            "/api/votes/", json.dumps({"item": assignment.token, "choice": "left"}), content_type="application/json"
        )
    assert response.status_code == 201
    sql = _sql(captured)
    counting = [q for q in sql if "COUNT(" in q.upper() and "feedback_vote" in q]
    assert len(counting) == 1 and "LIMIT 3" in counting[0], counting  # bounded by votes_per_round
    assert not LoopRound.objects.exists()  # 1 vote of 3: no round yet
    assert loop.loop_votes_pending() == 1


def test_a_page_vote_inside_a_campaign_costs_one_query_more_the_campaign_by_its_slug(annotator):
    """``/annotate/<slug>/vote/``: the same statements as ``/annotate/vote/`` plus the campaign
    named by the URL. Its pool, status, questions and guidelines (acknowledged or not) ride in
    statements the vote and the claim run anyway."""
    from feedback.campaigns.guidelines import guidelines_acknowledge
    from tests.campaign_support import campaign_make, guidelines_write

    campaign = campaign_make("Costed", annotators=[annotator], comparisons=0, rationale="required")
    guidelines_write(campaign, "Say why.")
    guidelines_acknowledge(campaign=campaign, annotator=annotator)
    voted = AssignmentFactory(annotator=annotator, comparison=ComparisonFactory(campaign=campaign))
    ComparisonFactory(campaign=campaign)  # what the page shows next
    _reports_fresh()
    client = Client()
    client.force_login(annotator)
    with CaptureQueriesContext(connection) as captured:
        response = client.post(
            "/annotate/costed/vote/", {"item": voted.token, "choice": "left", "rationale": "Clearer.", "ms_on_item": "4000"},
            HTTP_HX_REQUEST="true",
        )
    assert response.status_code == 200, response.content
    assert Vote.objects.get(comparison=voted.comparison).guidelines_version.number == 1
    statements = [q for q in _sql(captured) if q not in ("BEGIN", "BEGIN IMMEDIATE", "COMMIT")]
    expected = PAGE_VOTE_QUERIES - 4 + 1 + (connection.vendor == "postgresql")
    assert len(statements) == expected, "\n".join(statements)


# A vote on a gold item (issue 15) in a campaign with a gold_min_accuracy costs one query more: the
# annotator's gold tally in the campaign, read to decide the pause. Only gold votes pay it (the
# pins above are unchanged); the gold answer and the campaign's gold settings ride in the vote's
# first statement. A gold vote in a campaign without a minimum accuracy costs the same as any vote.
GOLD_VOTE_EXTRA_QUERIES = 1


@pytest.mark.parametrize("min_accuracy, extra", [(0.5, GOLD_VOTE_EXTRA_QUERIES), (None, 0)])
def test_a_gold_vote_costs_the_tally_only_when_the_campaign_can_pause(annotator, min_accuracy, extra):
    from tests.campaign_support import campaign_make

    campaign = campaign_make("Gilded", annotators=[annotator], gold_rate=0.5, gold_min_accuracy=min_accuracy,
                             gold_min_votes=5)
    _, key = api_token_issue(user=annotator)
    client = Client(HTTP_AUTHORIZATION=f"Token {key}")
    assignment = AssignmentFactory(annotator=annotator, comparison=ComparisonFactory(campaign=campaign, gold_choice="a"))
    _reports_fresh()
    with CaptureQueriesContext(connection) as captured:
        response = client.post("/api/votes/", json.dumps({"item": assignment.token, "choice": "a"}),
                               content_type="application/json")
    assert response.status_code == 201, response.content
    assert len(_sql(captured)) == API_VOTE_QUERIES + extra, "\n".join(_sql(captured))


# A vote that finds a quality report due a recompute (none pending, none computed within
# ARBITER_QUALITY_DEBOUNCE_SECONDS; feedback.quality.schedule) pays, after its commit and for each
# such report: the conditional UPDATE that marks it queued, the task's INSERT and the task id on the
# report (plus BEGIN/COMMIT). Whether it is due rides in the vote's first statement, so the votes
# in between (all but about one a minute per report) pay nothing: the pins above hold for them.
QUALITY_RECOMPUTE_QUERIES = 3


def test_a_vote_that_finds_the_reports_due_pays_for_queueing_them_once(annotator):
    _, key = api_token_issue(user=annotator)
    client = Client(HTTP_AUTHORIZATION=f"Token {key}")
    assignments = [AssignmentFactory(annotator=annotator) for _ in range(2)]
    _reports_fresh()
    QualityReport.objects.update(computed_at=timezone.now() - timedelta(minutes=5))
    counts = []
    for assignment in assignments:
        with CaptureQueriesContext(connection) as captured:
            response = client.post("/api/votes/", json.dumps({"item": assignment.token, "choice": "a"}),
                                   content_type="application/json")
        assert response.status_code == 201, response.content
        counts.append(len(_sql(captured)))
    transactions = 2 * 2  # BEGIN and COMMIT around each report's UPDATE
    assert counts == [API_VOTE_QUERIES + 2 * QUALITY_RECOMPUTE_QUERIES + transactions, API_VOTE_QUERIES]
    assert set(QualityReport.objects.values_list("status", flat=True)) == {"queued"}

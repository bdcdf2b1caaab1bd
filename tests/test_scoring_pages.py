"""Reward scores on the admins' comparison pages: margins, per-model scores, "least sure first",
bounded queries, and never a score or margin on an annotator's page or API answer."""
from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from feedback import interface
from feedback.models import CompletionScore
from tests.conftest import api_as
from tests.factories import ComparisonFactory

pytestmark = pytest.mark.django_db

SECRET_RM = "rm-secret-checkpoint"
SECRET_SCORE = 7.654321


@pytest.fixture
def as_admin(client, admin_user):
    client.force_login(admin_user)
    return client


def score(comparison, reward_model: str, a: float | None, b: float | None, *, minutes_ago: int = 0) -> None:
    """Store ``reward_model``'s scores of the comparison's A and B sides, dated ``minutes_ago``."""
    rows = [(c.id, s) for c, s in ((comparison.completion_a, a), (comparison.completion_b, b)) if s is not None]
    interface.scores_record(reward_model=reward_model, scores=rows)
    CompletionScore.objects.filter(reward_model=reward_model, completion_id__in=[r[0] for r in rows]).update(
        created_at=timezone.now() - timedelta(minutes=minutes_ago)
    )


def listed(response) -> list[tuple[int, float | None, str | None]]:
    return [(c.id, c.reward_margin, c.margin_reward_model) for c in response.context["page"]]


# --- the list ---------------------------------------------------------------------------------


def test_the_list_shows_the_margin_of_the_latest_reward_model_that_scored_both(as_admin):
    comparison = ComparisonFactory()
    score(comparison, "rm-old", 2.0, 1.0, minutes_ago=30)
    score(comparison, "rm-new", -0.25, 0.5, minutes_ago=10)
    score(comparison, "rm-newest-one-side", 9.0, None, minutes_ago=1)  # scored A only: no margin
    unscored = ComparisonFactory()

    response = as_admin.get("/manage/comparisons/")

    assert response.status_code == 200
    assert listed(response) == [(unscored.id, None, None), (comparison.id, -0.75, "rm-new")]
    page = response.content.decode()
    assert '<span title="rm-new">-0.75</span>' in page
    assert "Reward margin" in page


def test_least_sure_first_orders_by_absolute_margin_and_puts_unscored_last(as_admin):
    sure = ComparisonFactory()
    score(sure, "rm", 3.0, 0.0)
    unscored_old, unsure = ComparisonFactory(), ComparisonFactory()
    score(unsure, "rm", 0.0, 0.1)
    middling = ComparisonFactory()
    score(middling, "rm", -1.0, 0.0)
    unscored_new = ComparisonFactory()

    response = as_admin.get("/manage/comparisons/", {"order": "least_sure"})

    assert [row[0] for row in listed(response)] == [unsure.id, middling.id, sure.id, unscored_new.id, unscored_old.id]
    assert 'value="least_sure" selected' in response.content.decode()
    newest_first = as_admin.get("/manage/comparisons/")
    assert [row[0] for row in listed(newest_first)] == [unscored_new.id, middling.id, unsure.id, unscored_old.id, sure.id]


def test_least_sure_first_combines_with_filters_and_an_unknown_order_is_ignored(as_admin):
    done = ComparisonFactory(status="complete")
    score(done, "rm", 0.0, 0.0)
    open_one = ComparisonFactory()
    score(open_one, "rm", 2.0, 0.0)
    response = as_admin.get("/manage/comparisons/", {"order": "least_sure", "status": "open"})
    assert [row[0] for row in listed(response)] == [open_one.id]
    assert [row[0] for row in listed(as_admin.get("/manage/comparisons/", {"order": "bogus"}))] == [open_one.id, done.id]


def test_the_list_takes_the_same_number_of_queries_for_3_or_30_scored_comparisons(as_admin):
    def queries() -> int:
        with CaptureQueriesContext(connection) as captured:
            assert as_admin.get("/manage/comparisons/", {"order": "least_sure"}).status_code == 200
        return len(captured)

    for _ in range(3):
        score(ComparisonFactory(), "rm", 1.0, 0.0)
    few = queries()
    for _ in range(27):
        score(ComparisonFactory(), "rm", 1.0, 0.0)
    assert queries() == few


# --- the detail page --------------------------------------------------------------------------


def test_the_detail_page_lists_every_reward_models_scores(as_admin):
    comparison = ComparisonFactory()
    score(comparison, "rm-old", 2.0, 1.5, minutes_ago=30)
    score(comparison, "rm-new", -0.25, 0.5, minutes_ago=10)
    score(comparison, "rm-a-only", 9.0, None, minutes_ago=20)

    response = as_admin.get(f"/manage/comparisons/{comparison.pk}/")

    assert response.status_code == 200
    rows = [(s.reward_model, s.score_a, s.score_b, s.margin) for s in response.context["reward_scores"]]
    assert rows == [("rm-new", -0.25, 0.5, -0.75), ("rm-a-only", 9.0, None, None), ("rm-old", 2.0, 1.5, 0.5)]
    page = response.content.decode()
    assert "Reward margin (A − B): <strong class=\"num\">-0.750</strong> by rm-new" in page
    assert "<td>rm-old</td>" in page and "<td class=\"num\">1.500</td>" in page


def test_the_detail_page_without_scores_says_so(as_admin):
    comparison = ComparisonFactory()
    page = as_admin.get(f"/manage/comparisons/{comparison.pk}/").content.decode()
    assert "No reward model has scored these completions." in page
    assert "Reward margin (A − B):" not in page


# --- annotators never see scores ----------------------------------------------------------------


def _assert_no_scores(text: str) -> None:
    assert SECRET_RM not in text
    assert "7.65" not in text and "-1.23" not in text
    assert "margin" not in text.lower() and "reward" not in text.lower()


def test_annotators_see_no_scores_or_margins_on_their_page_or_in_the_api(client, annotator):
    comparison = ComparisonFactory()
    score(comparison, SECRET_RM, SECRET_SCORE, 8.888321)  # margin -1.234

    client.force_login(annotator)
    page = client.get("/annotate/")
    assert page.status_code == 200 and page.context["display"].comparison.id == comparison.id
    _assert_no_scores(page.content.decode())
    assert client.get("/manage/comparisons/").status_code == 403
    assert client.get(f"/manage/comparisons/{comparison.pk}/").status_code == 403

    api = api_as(annotator)
    claimed = api.post("/api/assignments/next/")
    assert claimed.status_code == 200
    _assert_no_scores(claimed.content.decode())
    for path in ("/api/comparisons/", f"/api/comparisons/{comparison.pk}/", "/api/votes/"):
        response = api.get(path)
        assert response.status_code == 200
        _assert_no_scores(response.content.decode())

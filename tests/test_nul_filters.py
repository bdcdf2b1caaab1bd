"""A NUL character in a list filter is refused with 400 naming the parameter, on every database
(PostgreSQL cannot store or compare NUL, so an unchecked filter failed with a 500 there)."""
import pytest

from tests.conftest import api_as
from tests.factories import ComparisonFactory

pytestmark = pytest.mark.django_db

NUL = "bad\x00value"

API_FILTERS = [
    ("/api/prompts/", "split"), ("/api/prompts/", "source"), ("/api/prompts/", "tag"),
    ("/api/completions/", "model_name"), ("/api/completions/", "prompt"),
    ("/api/comparisons/", "model_name"), ("/api/comparisons/", "tag"), ("/api/comparisons/", "status"),
    ("/api/comparisons/", "created_after"), ("/api/votes/", "choice"), ("/api/votes/", "comparison"),
    ("/api/jobs/", "status"), ("/api/jobs/", "kind"), ("/api/checkpoints/", "kind"), ("/api/leaderboard/", "both_bad"),
]


@pytest.mark.parametrize(("url", "param"), API_FILTERS)
def test_a_nul_in_an_api_filter_is_a_400_naming_it(admin_user, url, param):
    ComparisonFactory()
    response = api_as(admin_user).get(url, {param: NUL})
    assert response.status_code == 400, (response.status_code, response.content[:300])
    assert param in response.json(), response.json()


def test_the_prompt_and_completion_filters_still_filter_and_refuse_nonsense(admin_user):
    comparison = ComparisonFactory()
    api = api_as(admin_user)
    listed = api.get("/api/completions/", {"model_name": comparison.completion_a.model_name}).json()["results"]
    assert [c["id"] for c in listed] == [comparison.completion_a.pk]
    assert api.get("/api/prompts/", {"split": "nonsense"}).status_code == 400
    assert api.get("/api/completions/", {"prompt": "x"}).status_code == 400


PAGES = [
    ("/manage/comparisons/", "model_name"), ("/manage/comparisons/", "status"), ("/manage/comparisons/", "tag"),
    ("/manage/jobs/", "status"), ("/manage/exports/", "page"), ("/manage/checkpoints/", "page"),
    ("/manage/leaderboard/", "reward_model"), ("/manage/generate/", "checkpoint"),
    ("/manage/train/reward/", "base"), ("/manage/score/", "reward_model"), ("/manage/loop/", "base"),
    ("/manage/train/policy/", "base"),
]


@pytest.mark.parametrize(("url", "param"), PAGES)
def test_a_nul_in_a_page_filter_is_never_a_server_error(client, admin_user, url, param):
    ComparisonFactory()
    client.force_login(admin_user)
    response = client.get(url, {param: NUL})
    assert response.status_code in (200, 400), (response.status_code, response.content[:300])

"""An unknown path under /api/ answers JSON, as the API's own 404s do; other unknown paths get the page."""
import pytest

from tests.conftest import api_as

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize("url", ["/api/nope/", "/api/prompts/99999/extra/", "/api/v2/votes/", "/api/comparisons/abc/"])
def test_an_unknown_api_path_answers_json(admin_user, url):
    response = api_as(admin_user).get(url, HTTP_ACCEPT="application/json")
    assert response.status_code == 404
    assert response["Content-Type"] == "application/json"
    assert response.json() == {"detail": "Not found."}


def test_an_unknown_api_path_answers_json_without_credentials(client):
    response = client.post("/api/nothing-here/", {"a": 1}, content_type="application/json")
    assert response.status_code == 404 and response.json() == {"detail": "Not found."}


def test_an_unknown_page_is_still_the_html_page(client, annotator):
    client.force_login(annotator)
    response = client.get("/no-such-page/")
    assert response.status_code == 404 and response["Content-Type"].startswith("text/html")

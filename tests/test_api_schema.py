"""What schema fuzzing found, pinned with the plain DRF client: bad paging parameters are 400s that
name the parameter, nullable and blank values are documented as such, list answers are documented
as lists (not pages) where they are lists, and every 409 the API gives is in the schema."""
from base64 import b64encode

import pytest

from feedback import services
from feedback.models import Assignment
from tests.conftest import api_as
from tests.factories import ComparisonFactory, VoteFactory
from training.models import Job, JobKind, JobMetric

pytestmark = pytest.mark.django_db


@pytest.fixture
def schema(api):
    response = api.get("/api/schema/", {"format": "json"})
    assert response.status_code == 200
    return response.json()


def _responses(schema, path, method):
    return schema["paths"][path][method]["responses"]


def _ref(response_doc) -> str:
    return response_doc["content"]["application/json"]["schema"]["$ref"].rsplit("/", 1)[-1]


# --- paging parameters ----------------------------------------------------------------------------
@pytest.mark.parametrize("value", ["0", "-1", "abc", "1001", "2.5", ""])
@pytest.mark.parametrize("path", ["/api/comparisons/", "/api/votes/", "/api/prompts/"])
def test_a_bad_page_size_is_a_400_naming_it(admin_user, path, value):
    ComparisonFactory.create_batch(2)
    response = api_as(admin_user).get(path, {"page_size": value})
    assert response.status_code == 400, response.content
    assert list(response.json()) == ["page_size"]
    assert "1 to 1000" in response.json()["page_size"][0]


def test_page_size_within_bounds_is_used(admin_user):
    ComparisonFactory.create_batch(3)
    client = api_as(admin_user)
    assert len(client.get("/api/comparisons/", {"page_size": "2"}).json()["results"]) == 2
    assert len(client.get("/api/comparisons/", {"page_size": "1000"}).json()["results"]) == 3


@pytest.mark.parametrize("cursor", ["not-base64!", b64encode(b"p=abc").decode()])
def test_a_bad_cursor_is_a_400_naming_it(admin_user, cursor):
    response = api_as(admin_user).get("/api/jobs/", {"cursor": cursor})
    assert response.status_code == 400
    assert list(response.json()) == ["cursor"]


def test_schema_bounds_page_size_and_documents_the_400(schema):
    parameters = {p["name"]: p for p in schema["paths"]["/api/comparisons/"]["get"]["parameters"]}
    assert parameters["page_size"]["schema"] == {"type": "integer", "minimum": 1, "maximum": 1000}
    assert "400" in _responses(schema, "/api/comparisons/", "get")


@pytest.mark.parametrize("query", ["status=", "status=dragon", "split=", "created_after=yesterday"])
def test_a_bad_or_empty_filter_is_a_400_naming_it(admin_user, query):
    response = api_as(admin_user).get(f"/api/comparisons/?{query}")
    assert response.status_code == 400
    assert list(response.json()) == [query.split("=")[0]]


def test_the_comparison_and_vote_filters_are_documented(schema):
    names = {p["name"] for p in schema["paths"]["/api/comparisons/"]["get"]["parameters"]}
    assert {"status", "split", "prompt", "model_name", "tag", "created_after", "created_before"} <= names
    names = {p["name"] for p in schema["paths"]["/api/votes/"]["get"]["parameters"]}
    assert {"comparison", "annotator", "choice"} <= names


# --- nullable and blank values --------------------------------------------------------------------
def test_a_job_without_a_snapshot_answers_null_and_the_schema_allows_it(admin_user, schema):
    job = Job.objects.create(kind=JobKind.GENERATION, config={"checkpoints": ["smol"]})
    assert api_as(admin_user).get(f"/api/jobs/{job.pk}/").json()["snapshot"] is None
    assert schema["components"]["schemas"]["Job"]["properties"]["snapshot"]["nullable"] is True


def test_a_vote_without_strength_answers_blank_and_the_schema_allows_it(admin_user):
    vote = VoteFactory()
    body = api_as(admin_user).get(f"/api/votes/{vote.pk}/").json()
    schema = api_as(admin_user).get("/api/schema/", {"format": "json"}).json()  # admins read votes as Vote
    assert body["strength"] == "" and body["helpfulness"] == ""
    components = schema["components"]["schemas"]
    for field in ("strength", "helpfulness", "harmlessness", "honesty"):
        allowed = [components[one["$ref"].rsplit("/", 1)[-1]]["enum"] for one in components["Vote"]["properties"][field]["oneOf"]]
        assert [""] in allowed, field


# --- lists and one-or-many ------------------------------------------------------------------------
def test_metrics_are_documented_as_the_plain_list_they_are(admin_user, schema):
    job = Job.objects.create(kind=JobKind.REWARD, config={})
    JobMetric.objects.create(job=job, step=1, values={"loss": 0.7})
    assert api_as(admin_user).get(f"/api/jobs/{job.pk}/metrics/").json()[0]["step"] == 1
    ok = _responses(schema, "/api/jobs/{id}/metrics/", "get")["200"]["content"]["application/json"]["schema"]
    assert ok["type"] == "array"
    assert "parameters" not in schema["paths"]["/api/jobs/{id}/metrics/"]["get"] or all(
        p["name"] == "id" for p in schema["paths"]["/api/jobs/{id}/metrics/"]["get"]["parameters"]
    )


def test_bulk_creates_are_documented_as_one_object_or_a_list(schema):
    for path in ("/api/prompts/", "/api/completions/", "/api/comparisons/"):
        created = schema["components"]["schemas"][_ref(_responses(schema, path, "post")["201"])]
        kinds = [("array" if one.get("type") == "array" else "object") for one in created["oneOf"]]
        assert sorted(kinds) == ["array", "object"], path
        assert not schema["paths"][path]["post"].get("parameters"), path  # no cursor or page_size on a POST


# --- 409s and other error answers -----------------------------------------------------------------
def test_skip_after_voting_is_a_409_and_documented(annotator, schema):
    ComparisonFactory()
    assignment = services.assignment_claim(annotator=annotator)
    services.vote_submit(annotator=annotator, comparison_id=assignment.comparison_id, choice="a")
    response = api_as(annotator).post(f"/api/comparisons/{assignment.comparison_id}/skip/")
    assert response.status_code == 409
    documented = _responses(schema, "/api/comparisons/{id}/skip/", "post")
    conflict = schema["components"]["schemas"][_ref(documented["409"])]
    codes = schema["components"]["schemas"][conflict["properties"]["code"]["$ref"].rsplit("/", 1)[-1]]["enum"]
    assert response.json()["code"] == "vote_conflict" and set(codes) == {
        "vote_conflict", "lease_expired", "comparison_closed", "item_changed"
    }
    assert set(conflict["required"]) <= set(response.json())


def test_a_different_vote_is_a_409_carrying_the_stored_vote_as_documented(annotator, schema):
    ComparisonFactory()
    client = api_as(annotator)
    comparison = client.post("/api/assignments/next/").json()["comparison"]
    assert client.post("/api/votes/", {"comparison": comparison, "choice": "a"}, format="json").status_code == 201
    response = client.post("/api/votes/", {"comparison": comparison, "choice": "b"}, format="json")
    assert response.status_code == 409
    conflict = schema["components"]["schemas"][_ref(_responses(schema, "/api/votes/", "post")["409"])]
    # The stored vote comes back in the voter's screen terms: "a" is whichever side was shown for it.
    shown_left = Assignment.objects.get(annotator=annotator).shown_left
    assert response.json()["code"] == "vote_conflict"
    assert response.json()["vote"]["choice"] == ("left" if shown_left == "a" else "right")
    assert set(response.json()) <= set(conflict["properties"])


def test_every_operation_documents_its_error_answers(schema):
    for path, operations in schema["paths"].items():
        for method, operation in operations.items():
            codes = set(operation["responses"])
            assert {"401", "403"} <= codes, (method, path)
            if "{" in path:
                assert "404" in codes, (method, path)
            if "requestBody" in operation:
                assert {"400", "415"} <= codes, (method, path)
    assert "429" in _responses(schema, "/api/auth/token/", "post")


def test_an_unknown_api_address_is_a_json_404(admin_user):
    for path in ("/api/jobs/abc/", "/api/nothing-here/"):
        response = api_as(admin_user).get(path)
        assert response.status_code == 404 and response.json() == {"detail": "Not found."}
        assert api_as(admin_user).post(path).status_code == 404
    assert api_as(admin_user).get("/api/votes").status_code == 301  # the slash is still added

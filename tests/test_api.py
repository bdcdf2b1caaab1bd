"""The REST API: every endpoint, who may call it, what annotators may see, pagination and filters."""
import re
from datetime import timedelta
from urllib.parse import urlsplit

import pytest
from django.templatetags.static import static
from django.utils import timezone
from feedback.tokens.models import ApiToken
from feedback.tokens.services import token_digest
from rest_framework.test import APIClient

from feedback import services
from feedback.models import Assignment, Comparison, Completion, Prompt, Vote
from tests.conftest import api_as
from tests.factories import PASSWORD, ComparisonFactory, CompletionFactory, PromptFactory, UserFactory

pytestmark = pytest.mark.django_db

SECRET_A, SECRET_B = "secret-model-alpha", "secret-model-beta"
NEW_PROMPT = {"messages": [{"role": "user", "content": "A new question?"}]}


def blind_comparison(**kwargs):
    """A comparison whose model names are distinctive strings a test can search responses for."""
    return ComparisonFactory(completion_a__model_name=SECRET_A, completion_b__model_name=SECRET_B, **kwargs)


@pytest.fixture
def world(annotator, other_annotator, admin_user):
    """What the permission matrix runs against.

    - ``leased``: votes_required=1, leased (live) to ``annotator``;
    - ``voted``: voted on by ``annotator`` (``vote``), now complete;
    - nothing else is open, so the other annotator and the admin get an empty queue.
    """
    voted = blind_comparison(gold_choice="a")
    assignment = services.assignment_claim(annotator=annotator)
    assert assignment.comparison_id == voted.pk
    vote, _ = services.vote_submit(annotator=annotator, comparison_id=voted.pk, choice="a", strength="clear")
    leased = blind_comparison(gold_choice="b")
    assert services.assignment_claim(annotator=annotator).comparison_id == leased.pk
    return {
        "users": {
            "anonymous": None,
            "annotator": annotator,
            "other_annotator": other_annotator,
            "admin": admin_user,
            "no_role": UserFactory(),
        },
        "ids": {
            "prompt": leased.prompt_id,
            "completion": leased.completion_a_id,
            "comparison": leased.pk,
            "voted_comparison": voted.pk,
            "vote": vote.pk,
        },
    }


ROLES = ["anonymous", "annotator", "other_annotator", "admin", "no_role"]


def expect(anonymous, annotator, other_annotator, admin, no_role):
    return dict(zip(ROLES, (anonymous, annotator, other_annotator, admin, no_role), strict=True))


INLINE_COMPARISON = {
    "prompt": {"messages": [{"role": "user", "content": "Which is better?"}]},
    "completion_a": {"model_name": "m1", "text": "this"},
    "completion_b": {"model_name": "m2", "text": "that"},
}

# (method, path, body, expected status by role)
MATRIX = [
    ("get", "/api/prompts/", None, expect(401, 403, 403, 200, 403)),
    ("post", "/api/prompts/", NEW_PROMPT, expect(401, 403, 403, 201, 403)),
    ("get", "/api/prompts/{prompt}/", None, expect(401, 403, 403, 200, 403)),
    ("put", "/api/prompts/{prompt}/", NEW_PROMPT, expect(401, 403, 403, 405, 403)),
    ("patch", "/api/prompts/{prompt}/", NEW_PROMPT, expect(401, 403, 403, 405, 403)),
    ("delete", "/api/prompts/{prompt}/", None, expect(401, 403, 403, 405, 403)),
    ("get", "/api/completions/", None, expect(401, 403, 403, 200, 403)),
    (
        "post",
        "/api/completions/",
        {"prompt": "{prompt}", "model_name": "m", "text": "new text"},
        expect(401, 403, 403, 201, 403),
    ),
    ("get", "/api/completions/{completion}/", None, expect(401, 403, 403, 200, 403)),
    ("put", "/api/completions/{completion}/", {"text": "x"}, expect(401, 403, 403, 405, 403)),
    ("delete", "/api/completions/{completion}/", None, expect(401, 403, 403, 405, 403)),
    ("get", "/api/comparisons/", None, expect(401, 200, 200, 200, 200)),
    ("post", "/api/comparisons/", INLINE_COMPARISON, expect(401, 403, 403, 201, 403)),
    ("get", "/api/comparisons/{comparison}/", None, expect(401, 200, 404, 200, 404)),
    ("put", "/api/comparisons/{comparison}/", {"priority": 5}, expect(401, 405, 405, 405, 405)),
    ("patch", "/api/comparisons/{comparison}/", {"priority": 5}, expect(401, 405, 405, 405, 405)),
    ("delete", "/api/comparisons/{comparison}/", None, expect(401, 405, 405, 405, 405)),
    ("post", "/api/comparisons/{comparison}/skip/", None, expect(401, 200, 403, 403, 403)),
    ("get", "/api/comparisons/{comparison}/skip/", None, expect(401, 405, 405, 405, 405)),
    ("post", "/api/assignments/next/", None, expect(401, 200, 204, 204, 403)),
    ("get", "/api/assignments/next/", None, expect(401, 405, 405, 405, 403)),
    ("get", "/api/votes/", None, expect(401, 200, 200, 200, 200)),
    ("post", "/api/votes/", {"comparison": "{comparison}", "choice": "a"}, expect(401, 201, 403, 403, 403)),
    ("get", "/api/votes/{vote}/", None, expect(401, 200, 404, 200, 404)),
    ("put", "/api/votes/{vote}/", {"choice": "b"}, expect(401, 405, 405, 405, 405)),
    # Undo and revise: only your own vote (404 for anyone else's, admins' too); this one's comparison is
    # complete, which an undo reopens (a retired one answers 409: tests/test_revisions_api.py).
    ("delete", "/api/votes/{vote}/", None, expect(401, 204, 404, 404, 403)),
    ("post", "/api/votes/{vote}/undo/", None, expect(401, 200, 404, 404, 403)),
    ("patch", "/api/votes/{vote}/", {"choice": "tie"}, expect(401, 200, 404, 404, 403)),
    ("get", "/api/schema/", None, expect(200, 200, 200, 200, 200)),
    ("get", "/api/docs/", None, expect(200, 200, 200, 200, 200)),
    ("get", "/api/docs/?script=", None, expect(200, 200, 200, 200, 200)),
    ("get", "/api/redoc/", None, expect(302, 302, 302, 302, 302)),
]


def fill(value, ids):
    """Put the world's ids into a path or body template ("{comparison}" -> 12, as an int in bodies)."""
    if isinstance(value, str):
        if value.startswith("{") and value.endswith("}") and value[1:-1] in ids:
            return ids[value[1:-1]]
        return value.format(**ids)
    if isinstance(value, dict):
        return {k: fill(v, ids) for k, v in value.items()}
    return value


@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize(
    ("method", "path", "body", "expected"), MATRIX, ids=[f"{m.upper()} {p}" for m, p, _, _ in MATRIX]
)
def test_permission_matrix(world, role, method, path, body, expected):
    client = api_as(world["users"][role])
    ids = world["ids"]
    kwargs = {"format": "json"} if body is not None else {}
    response = getattr(client, method)(fill(path, ids), fill(body, ids), **kwargs)
    assert response.status_code == expected[role], response.content[:500]


def test_the_skip_route_only_takes_numeric_ids(annotator):
    client = api_as(annotator)
    assert client.post("/api/comparisons/abc/skip/").status_code == 404
    assert client.get("/api/comparisons/abc/").status_code == 404


def test_session_login_needs_the_csrf_token_for_writes(annotator, comparisons):
    client = APIClient(enforce_csrf_checks=True)
    client.force_login(annotator)
    assert client.get("/api/comparisons/").status_code == 200
    refused = client.post("/api/assignments/next/")
    assert refused.status_code == 403
    assert "CSRF" in refused.json()["detail"]
    assert Assignment.objects.count() == 0


# --- token auth ----------------------------------------------------------------------------------
def test_token_auth_round_trip(annotator, comparisons):
    anonymous = APIClient()
    answer = anonymous.post("/api/auth/token/", {"username": annotator.username, "password": PASSWORD}, format="json")
    assert answer.status_code == 200
    token = answer.json()["token"]
    assert ApiToken.objects.get(user=annotator).digest == token_digest(token)  # stored hashed, never the key

    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {token}")
    served = client.post("/api/assignments/next/")
    assert served.status_code == 200
    assert Assignment.objects.get().annotator == annotator
    # logging in again gives a new token and retires the first
    again = anonymous.post("/api/auth/token/", {"username": annotator.username, "password": PASSWORD}, format="json")
    assert again.json()["token"] != token
    assert client.post("/api/assignments/next/").status_code == 401


def test_token_auth_refuses_a_wrong_password_and_a_bad_token(annotator):
    anonymous = APIClient()
    wrong = anonymous.post("/api/auth/token/", {"username": annotator.username, "password": "nope"}, format="json")
    assert wrong.status_code == 400
    assert "non_field_errors" in wrong.json()
    assert "token" not in wrong.json()
    assert ApiToken.objects.count() == 0
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION="Token not-a-real-token")
    assert client.get("/api/comparisons/").status_code == 401


# --- schema and docs -----------------------------------------------------------------------------
def test_openapi_schema_describes_every_endpoint(api):
    response = api.get("/api/schema/", {"format": "json"})
    assert response.status_code == 200
    schema = response.json()
    assert schema["info"]["title"] == "Arbiter API"
    for path in (
        "/api/prompts/",
        "/api/completions/",
        "/api/comparisons/",
        "/api/comparisons/{id}/",
        "/api/comparisons/{id}/skip/",
        "/api/assignments/next/",
        "/api/votes/",
        "/api/votes/{id}/",
        "/api/auth/token/",
    ):
        assert path in schema["paths"], path
    assert set(schema["paths"]["/api/votes/"]) >= {"get", "post"}
    assert "409" in schema["paths"]["/api/votes/"]["post"]["responses"]


def test_the_docs_page_has_no_inline_script_or_style_and_keeps_the_site_csp(api):
    """Swagger UI under ``script-src 'self'; style-src 'self'`` (tests/test_api_docs_browser.py
    checks that it renders): every script and stylesheet is a file from this origin, and the
    page's CSP is the site's, with no exception."""
    docs = api.get("/api/docs/")
    assert docs.status_code == 200
    page = docs.content.decode()
    scripts = re.findall(r"<script([^>]*)>(.*?)</script>", page, re.S)
    assert [body.strip() for _, body in scripts] == ["", "", ""]
    sources = [re.search(r'src="([^"]+)"', attributes).group(1) for attributes, _ in scripts]
    assert sources[:2] == [static("drf_spectacular_sidecar/swagger-ui-dist/swagger-ui-bundle.js"),
                           static("drf_spectacular_sidecar/swagger-ui-dist/swagger-ui-standalone-preset.js")]
    assert sources[2] == "/api/docs/?script="
    assert "<style" not in page and " style=" not in page
    policy = docs.headers["Content-Security-Policy"]
    assert "script-src 'self';" in policy + ";" and "style-src 'self';" in policy + ";"
    assert "unsafe" not in policy
    assert policy == api.get("/accounts/login/").headers["Content-Security-Policy"]

    script = api.get(sources[2])
    assert script.status_code == 200
    assert script["Content-Type"].startswith("application/javascript")
    assert b'url: "/api/schema/"' in script.content and b"SwaggerUIBundle(" in script.content


def test_redoc_redirects_to_the_swagger_page(api):
    response = api.get("/api/redoc/")
    assert (response.status_code, response["Location"]) == (302, "/api/docs/")


# --- what annotators may see ----------------------------------------------------------------------
def _assert_blind(response):
    body = response.content.decode()
    for secret in (SECRET_A, SECRET_B, "model_name", "gold_choice", "generation_params"):
        assert secret not in body, (secret, body[:500])


def test_annotators_never_see_model_names_or_gold_answers(annotator, other_annotator):
    first = blind_comparison(votes_required=2, gold_choice="a")
    second = blind_comparison(votes_required=2, gold_choice="tie")
    client = api_as(annotator)
    seen = []

    served = client.post("/api/assignments/next/")
    seen.append(served)
    assert served.json()["comparison"] == first.pk
    seen.append(client.post("/api/votes/", {"comparison": first.pk, "choice": "a"}, format="json"))
    seen.append(client.post("/api/votes/", {"comparison": first.pk, "choice": "a"}, format="json"))
    seen.append(client.post("/api/votes/", {"comparison": first.pk, "choice": "b"}, format="json"))  # 409 body
    seen.append(client.post("/api/assignments/next/"))
    seen.append(client.post(f"/api/comparisons/{second.pk}/skip/"))
    seen.append(client.get("/api/comparisons/"))
    seen.append(client.get(f"/api/comparisons/{first.pk}/"))
    seen.append(client.get(f"/api/comparisons/{second.pk}/"))
    seen.append(client.get("/api/votes/"))
    seen.append(client.get(f"/api/votes/{Vote.objects.get().pk}/"))
    seen.append(client.get("/api/comparisons/", {"status": "open"}))
    assert [r.status_code for r in seen] == [200, 201, 200, 409, 200, 200, 200, 200, 200, 200, 200, 200]
    for response in seen:
        _assert_blind(response)

    # the same comparison seen by an admin carries what annotators must not see
    admin_view = api_as(UserFactory(role="admin")).get(f"/api/comparisons/{first.pk}/").json()
    assert (admin_view["completion_a"]["model_name"], admin_view["completion_b"]["model_name"]) == (SECRET_A, SECRET_B)
    assert admin_view["gold_choice"] == "a"


def test_annotators_cannot_filter_by_model_name(annotator):
    """A model_name filter would tell an annotator which model wrote a response; it is ignored for them."""
    mine = blind_comparison(votes_required=2)
    services.assignment_claim(annotator=annotator)
    client = api_as(annotator)
    for name in (SECRET_A, "no-such-model"):
        listed = client.get("/api/comparisons/", {"model_name": name})
        assert listed.status_code == 200
        assert [c["id"] for c in listed.json()["results"]] == [mine.pk]


def test_annotators_only_see_comparisons_assigned_to_them(annotator, other_annotator):
    mine_voted, mine_skipped, theirs, unassigned = (ComparisonFactory(votes_required=1) for _ in range(4))
    Comparison.objects.filter(pk=unassigned.pk).update(priority=-1)
    assert services.assignment_claim(annotator=annotator).comparison_id == mine_voted.pk
    services.vote_submit(annotator=annotator, comparison_id=mine_voted.pk, choice="b")
    assert services.assignment_claim(annotator=annotator).comparison_id == mine_skipped.pk
    services.assignment_skip(annotator=annotator, comparison_id=mine_skipped.pk)
    # the annotator's skip freed mine_skipped; the other annotator takes it, then theirs
    served = [services.assignment_claim(annotator=other_annotator)]
    services.vote_submit(annotator=other_annotator, comparison_id=served[0].comparison_id, choice="a")
    served.append(services.assignment_claim(annotator=other_annotator))
    assert [a.comparison_id for a in served] == [mine_skipped.pk, theirs.pk]

    client = api_as(annotator)
    listed = client.get("/api/comparisons/").json()["results"]
    assert sorted(c["id"] for c in listed) == sorted([mine_voted.pk, mine_skipped.pk])
    assert client.get(f"/api/comparisons/{theirs.pk}/").status_code == 404
    assert client.get(f"/api/comparisons/{unassigned.pk}/").status_code == 404

    votes = client.get("/api/votes/").json()["results"]
    said = "left" if Assignment.objects.get(annotator=annotator, comparison=mine_voted).shown_left == "b" else "right"
    assert [(v["comparison"], v["annotator"], v["choice"]) for v in votes] == [(mine_voted.pk, annotator.username, said)]
    their_vote = Vote.objects.get(annotator=other_annotator)
    assert client.get(f"/api/votes/{their_vote.pk}/").status_code == 404
    # an annotator filter does not widen an annotator's view
    assert client.get("/api/votes/", {"annotator": other_annotator.pk}).json()["results"] == votes


# --- the assignment -> vote cycle ------------------------------------------------------------------
def test_next_assignment_body(annotator):
    comparison = ComparisonFactory(completion_a__text="Alpha text", completion_b__text="Beta text")
    response = api_as(annotator).post("/api/assignments/next/")
    assert response.status_code == 200
    body = response.json()
    assignment = Assignment.objects.get()
    assert body["item"] == assignment.token
    assert body["comparison"] == comparison.pk
    assert body["messages"] == comparison.prompt.messages
    texts = ("Alpha text", "Beta text") if assignment.shown_left == "a" else ("Beta text", "Alpha text")
    shown = ({"text": texts[0], "is_empty": False}, {"text": texts[1], "is_empty": False})
    assert (body["left"], body["right"]) == shown  # no ids, no a/b letters
    assert set(body) == {"item", "comparison", "expires_at", "messages", "left", "right", "campaign"}
    # The item's campaign and what it asks (the Default campaign: every question, no guidelines).
    assert body["campaign"]["slug"] == "default" and body["campaign"]["guidelines"] is None
    assert body["campaign"]["questions"]["rationale"] == "optional"


def test_next_assignment_is_204_when_nothing_is_left(annotator):
    response = api_as(annotator).post("/api/assignments/next/")
    assert response.status_code == 204
    assert response.content == b""


def test_vote_answers_201_then_200_then_409(annotator):
    comparison = ComparisonFactory(votes_required=2)
    client = api_as(annotator)
    client.post("/api/assignments/next/")
    payload = {
        "comparison": comparison.pk,
        "choice": "b",
        "strength": "strong",
        "rationale": "More accurate.",
        "helpfulness": "b",
        "honesty": "tie",
        "ms_on_item": 4200,
    }
    created = client.post("/api/votes/", payload, format="json")
    assert created.status_code == 201
    body = created.json()
    vote = Vote.objects.get()
    assert body["id"] == vote.pk
    # The answer is in screen terms (the side the annotator saw "b" on), without shown_left.
    b_side = "left" if Assignment.objects.get().shown_left == "b" else "right"
    assert (body["comparison"], body["annotator"], body["choice"], body["strength"]) == (
        comparison.pk, annotator.username, b_side, "strong"
    )
    assert (body["helpfulness"], body["harmlessness"], body["honesty"], body["ms_on_item"]) == (b_side, "", "tie", 4200)
    assert "shown_left" not in body and vote.choice == "b"

    same = client.post("/api/votes/", payload, format="json")
    assert (same.status_code, same.json()["id"]) == (200, vote.pk)

    different = client.post("/api/votes/", {**payload, "choice": "a"}, format="json")
    assert different.status_code == 409
    assert different.json()["code"] == "vote_conflict"
    assert different.json()["vote"]["choice"] == b_side
    assert Vote.objects.count() == 1


def test_vote_on_an_expired_lease_whose_slot_was_taken_is_409(annotator, other_annotator):
    comparison = ComparisonFactory()
    past = timezone.now() - timedelta(minutes=30)
    services.assignment_claim(annotator=annotator, now=past)
    services.assignment_claim(annotator=other_annotator)
    response = api_as(annotator).post("/api/votes/", {"comparison": comparison.pk, "choice": "a"}, format="json")
    assert response.status_code == 409
    assert response.json()["code"] == "lease_expired"
    assert Vote.objects.count() == 0


def test_vote_on_a_retired_comparison_is_409(annotator):
    comparison = ComparisonFactory()
    services.assignment_claim(annotator=annotator)
    services.comparison_retire(comparison=comparison)
    response = api_as(annotator).post("/api/votes/", {"comparison": comparison.pk, "choice": "a"}, format="json")
    assert (response.status_code, response.json()["code"]) == (409, "comparison_closed")


def test_vote_not_assigned_is_403_with_a_reason(annotator):
    comparison = ComparisonFactory()
    response = api_as(annotator).post("/api/votes/", {"comparison": comparison.pk, "choice": "a"}, format="json")
    assert response.status_code == 403
    assert response.json() == {"detail": f"Comparison {comparison.pk} is not assigned to you.", "code": "not_assigned"}


def test_skip_through_the_api(annotator):
    skipped, after = ComparisonFactory(), ComparisonFactory()
    client = api_as(annotator)
    assert client.post("/api/assignments/next/").json()["comparison"] == skipped.pk
    response = client.post(f"/api/comparisons/{skipped.pk}/skip/")
    assert response.status_code == 200
    body = response.json()
    assert (body["comparison"], body["status"]) == (skipped.pk, "skipped")
    assert body["finished_at"]
    assert client.post("/api/assignments/next/").json()["comparison"] == after.pk


# --- admin writes ---------------------------------------------------------------------------------
def test_admin_creates_prompts_one_or_many(admin_user):
    client = api_as(admin_user)
    one = client.post("/api/prompts/", {**NEW_PROMPT, "tags": ["t1"], "split": "eval", "source": "s"}, format="json")
    assert one.status_code == 201
    body = one.json()
    assert (body["messages"], body["tags"], body["split"], body["source"]) == (NEW_PROMPT["messages"], ["t1"], "eval", "s")
    many = client.post("/api/prompts/", [NEW_PROMPT, {"messages": [{"role": "user", "content": "Two"}]}], format="json")
    assert many.status_code == 201
    assert [p["messages"][0]["content"] for p in many.json()] == ["A new question?", "Two"]
    assert Prompt.objects.count() == 3


def test_admin_creates_completions_one_or_many(admin_user):
    prompt = PromptFactory()
    client = api_as(admin_user)
    response = client.post(
        "/api/completions/",
        [
            {"prompt": prompt.pk, "model_name": "m1", "text": "Hi", "generation_params": {"top_p": 0.9}},
            {"prompt": prompt.pk, "model_name": "m2", "text": " ", "is_truncated": True},
        ],
        format="json",
    )
    assert response.status_code == 201
    first, second = response.json()
    assert (first["model_name"], first["generation_params"], first["is_empty"]) == ("m1", {"top_p": 0.9}, False)
    assert (second["is_empty"], second["is_truncated"]) == (True, True)
    assert Completion.objects.filter(prompt=prompt).count() == 2


def test_admin_creates_comparisons_by_id_and_inline(admin_user):
    prompt = PromptFactory()
    a, b = CompletionFactory(prompt=prompt, text="x"), CompletionFactory(prompt=prompt, text="y")
    client = api_as(admin_user)
    by_id = client.post(
        "/api/comparisons/",
        {"completion_a": a.pk, "completion_b": b.pk, "votes_required": 3, "priority": 2, "gold_choice": "tie"},
        format="json",
    )
    assert by_id.status_code == 201, by_id.content
    body = by_id.json()
    assert (body["completion_a"]["id"], body["completion_b"]["id"]) == (a.pk, b.pk)
    assert (body["votes_required"], body["priority"], body["gold_choice"], body["status"]) == (3, 2, "tie", "open")

    inline = client.post("/api/comparisons/", INLINE_COMPARISON, format="json")
    assert inline.status_code == 201, inline.content
    body = inline.json()
    assert body["messages"] == INLINE_COMPARISON["prompt"]["messages"]
    assert (body["completion_a"]["model_name"], body["completion_b"]["text"]) == ("m1", "that")

    on_existing = client.post("/api/comparisons/", {**INLINE_COMPARISON, "prompt": prompt.pk}, format="json")
    assert on_existing.status_code == 201, on_existing.content
    assert on_existing.json()["prompt"] == prompt.pk
    assert Comparison.objects.count() == 3


def test_comparison_list_upload_is_all_or_nothing(admin_user):
    client = api_as(admin_user)
    before = (Prompt.objects.count(), Completion.objects.count(), Comparison.objects.count())
    second = {**INLINE_COMPARISON, "completion_b": {"model_name": "m2", "text": "this"}}  # same text as A
    response = client.post("/api/comparisons/", [INLINE_COMPARISON, second], format="json")
    assert response.status_code == 400
    assert list(response.json()) == ["1"]
    assert "completion_b" in response.json()["1"]
    assert (Prompt.objects.count(), Completion.objects.count(), Comparison.objects.count()) == before


def test_duplicate_comparison_is_400(admin_user):
    comparison = ComparisonFactory()
    client = api_as(admin_user)
    for a, b in ((comparison.completion_a_id, comparison.completion_b_id), (comparison.completion_b_id, comparison.completion_a_id)):
        response = client.post("/api/comparisons/", {"completion_a": a, "completion_b": b}, format="json")
        assert response.status_code == 400
        assert response.json() == {"completion_b": [f"this pair already exists as comparison {comparison.pk}"]}
    assert Comparison.objects.count() == 1


# --- pagination and filters -----------------------------------------------------------------------
def _all_pages(client, path, params):
    ids, pages, url = [], 0, path
    response = client.get(url, params)
    while True:
        assert response.status_code == 200
        body = response.json()
        ids += [item["id"] for item in body["results"]]
        pages += 1
        if not body["next"]:
            return ids, pages
        parts = urlsplit(body["next"])
        response = client.get(f"{parts.path}?{parts.query}")


def test_cursor_pagination_walks_every_comparison_once_newest_first(admin_user):
    made = ComparisonFactory.create_batch(7)
    client = api_as(admin_user)
    first = client.get("/api/comparisons/", {"page_size": 3}).json()
    assert len(first["results"]) == 3
    assert first["previous"] is None and first["next"]
    ids, pages = _all_pages(client, "/api/comparisons/", {"page_size": 3})
    assert ids == sorted((c.pk for c in made), reverse=True)
    assert pages == 3


def test_default_page_size_is_50(admin_user):
    ComparisonFactory.create_batch(51)
    body = api_as(admin_user).get("/api/comparisons/").json()
    assert len(body["results"]) == 50
    assert body["next"]


def test_vote_pagination(admin_user):
    comparison = ComparisonFactory(votes_required=5)
    for _ in range(5):
        user = UserFactory(role="annotator")
        services.assignment_claim(annotator=user)
        services.vote_submit(annotator=user, comparison_id=comparison.pk, choice="tie")
    ids, pages = _all_pages(api_as(admin_user), "/api/votes/", {"page_size": 2})
    assert ids == sorted(Vote.objects.values_list("id", flat=True), reverse=True)
    assert pages == 3


def _ids(response):
    assert response.status_code == 200, response.content
    return sorted(item["id"] for item in response.json()["results"])


def test_comparison_filters(admin_user):
    coding = PromptFactory(tags=["coding", "python"], split="train")
    maths = PromptFactory(tags=["maths"], split="eval")
    c1 = ComparisonFactory(prompt=coding, completion_a__model_name="llama", completion_b__model_name="qwen")
    c2 = ComparisonFactory(prompt=maths, completion_a__model_name="qwen", completion_b__model_name="mistral")
    c3 = ComparisonFactory(prompt=coding, completion_a__model_name="mistral", completion_b__model_name="phi")
    Comparison.objects.filter(pk=c3.pk).update(status="complete")
    Comparison.objects.filter(pk=c1.pk).update(created_at=timezone.now() - timedelta(days=2))
    client = api_as(admin_user)
    get = lambda **params: _ids(client.get("/api/comparisons/", params))  # noqa: E731
    assert get() == sorted([c1.pk, c2.pk, c3.pk])
    assert get(status="complete") == [c3.pk]
    assert get(status="open") == sorted([c1.pk, c2.pk])
    assert get(split="eval") == [c2.pk]
    assert get(prompt=coding.pk) == sorted([c1.pk, c3.pk])
    assert get(model_name="qwen") == sorted([c1.pk, c2.pk])  # either side
    assert get(model_name="phi") == [c3.pk]
    assert get(model_name="qwen", split="train") == [c1.pk]
    assert get(tag="coding") == sorted([c1.pk, c3.pk])
    assert get(tag="pyth") == []  # whole tags only
    assert get(tag="maths") == [c2.pk]
    yesterday = (timezone.now() - timedelta(days=1)).isoformat()
    assert get(created_before=yesterday) == [c1.pk]
    assert get(created_after=yesterday) == sorted([c2.pk, c3.pk])


@pytest.mark.parametrize(
    ("params", "field"),
    [({"status": "done"}, "status"), ({"split": "test"}, "split"), ({"prompt": "x"}, "prompt"),
     ({"created_after": "yesterday"}, "created_after")],
)
def test_bad_comparison_filter_is_400(admin_user, params, field):
    response = api_as(admin_user).get("/api/comparisons/", params)
    assert response.status_code == 400
    assert field in response.json()


def test_vote_filters(admin_user, annotator, other_annotator):
    comparisons = ComparisonFactory.create_batch(2, votes_required=2)
    for user, choices in ((annotator, ["a", "tie"]), (other_annotator, ["b", "tie"])):
        for choice in choices:
            assignment = services.assignment_claim(annotator=user)
            services.vote_submit(annotator=user, comparison_id=assignment.comparison_id, choice=choice)
    client = api_as(admin_user)
    get = lambda **params: _ids(client.get("/api/votes/", params))  # noqa: E731
    votes = Vote.objects
    assert get() == sorted(votes.values_list("id", flat=True))
    assert get(annotator=annotator.pk) == sorted(votes.filter(annotator=annotator).values_list("id", flat=True))
    assert get(choice="tie") == sorted(votes.filter(choice="tie").values_list("id", flat=True))
    assert get(comparison=comparisons[0].pk) == sorted(votes.filter(comparison=comparisons[0]).values_list("id", flat=True))
    assert len(get(choice="tie")) == 2
    assert client.get("/api/votes/", {"choice": "middle"}).status_code == 400
    # Annotators filter in screen terms: left/right, never a/b (which would tell the sides apart).
    mine = api_as(annotator)
    assert mine.get("/api/votes/", {"choice": "a"}).status_code == 400
    left = [v.pk for v in votes.filter(annotator=annotator) if v.choice in ("a", "b") and v.choice == v.shown_left]
    right = [v.pk for v in votes.filter(annotator=annotator) if v.choice in ("a", "b") and v.choice != v.shown_left]
    assert (_ids(mine.get("/api/votes/", {"choice": "left"})), _ids(mine.get("/api/votes/", {"choice": "right"}))) == (left, right)


def test_prompt_and_completion_filters(admin_user):
    p1 = PromptFactory(split="eval", source="hh", tags=["x"])
    p2 = PromptFactory(split="train", source="oasst", tags=["y"])
    c1 = CompletionFactory(prompt=p1, model_name="m1")
    c2 = CompletionFactory(prompt=p2, model_name="m2")
    client = api_as(admin_user)
    assert _ids(client.get("/api/prompts/", {"split": "eval"})) == [p1.pk]
    assert _ids(client.get("/api/prompts/", {"source": "oasst"})) == [p2.pk]
    assert _ids(client.get("/api/prompts/", {"tag": "y"})) == [p2.pk]
    assert _ids(client.get("/api/completions/", {"prompt": p1.pk})) == [c1.pk]
    assert _ids(client.get("/api/completions/", {"model_name": "m2"})) == [c2.pk]
    assert _ids(client.get("/api/completions/")) == sorted([c1.pk, c2.pk])

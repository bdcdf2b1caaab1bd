"""Hostile and unusual input: malformed bodies are a 400 naming the field and write nothing;
unusual but valid text (1 MB, emoji, right-to-left, one enormous word) is stored and read back exactly.
"""
import json

import pytest
from django.conf import settings

from feedback import services
from feedback.models import Assignment, Comparison, Completion, Prompt, Vote
from tests.conftest import api_as
from tests.factories import ComparisonFactory, CompletionFactory, PromptFactory

pytestmark = pytest.mark.django_db

USER_Q = [{"role": "user", "content": "Question?"}]

EMOJI = "Family 👩‍👩‍👧‍👦, coder 👩🏽‍💻, flag 🇺🇦, keycap 1️⃣, astral 𝔘𝔫𝔦𝔠𝔬𝔡𝔢 and a lone 🦊."
RTL = "مرحبا بالعالم — שלום עולם (mixed with English, digits 123, and \u202eoverride\u202c)."
LONG_WORD = "".join("abcdefghijklmnopqrstuvwxyz"[i % 26] for i in range(5000))
PADDED = "  leading and trailing spaces, tabs\t and newlines \n\n"


def one_megabyte_text():
    """1,000,000 characters of mixed Markdown, code, Unicode and whitespace."""
    chunk = "# Heading\n\nSome *text* with `code`, ünïcödé, 中文, عربى and 🙂.\n\n```python\nx = 1 < 2 > 0\n```\n"
    text = (chunk * (1_000_000 // len(chunk) + 1))[:1_000_000]
    assert len(text) == 1_000_000
    return text


@pytest.fixture
def admin_api(admin_user):
    return api_as(admin_user)


def counts():
    return {m.__name__: m.objects.count() for m in (Prompt, Completion, Comparison, Assignment, Vote)}


def find_field(errors, field):
    """True when ``field`` names an error anywhere in a (nested) DRF error body."""
    if isinstance(errors, dict):
        return field in errors or any(find_field(v, field) for v in errors.values())
    if isinstance(errors, list):
        return any(find_field(v, field) for v in errors)
    return isinstance(errors, str) and errors.startswith(f"{field}:")


def assert_refused(response, field, before):
    assert response.status_code == 400, response.content[:500]
    body = response.json()
    assert find_field(body, field), body
    assert counts() == before


# --- malformed bodies ----------------------------------------------------------------------------
ADMIN_POSTS = ["/api/prompts/", "/api/completions/", "/api/comparisons/"]


@pytest.mark.parametrize("path", [*ADMIN_POSTS, "/api/votes/"])
@pytest.mark.parametrize(
    "raw", ['{"messages": [', "{'single': 'quotes'}", "[1, 2,]", "NaN", '{"a": 1} trailing', "\xff\xfe"]
)
def test_malformed_json_is_a_400_parse_error(admin_api, path, raw):
    before = counts()
    response = admin_api.post(path, data=raw, content_type="application/json")
    assert response.status_code == 400
    assert response.json()["detail"].startswith("JSON parse error")
    assert counts() == before


@pytest.mark.parametrize("path", [*ADMIN_POSTS, "/api/votes/"])
def test_deeply_nested_json_is_a_400_not_a_crash(admin_api, path):
    before = counts()
    depth = 100_000
    response = admin_api.post(path, data="[" * depth + "]" * depth, content_type="application/json")
    assert response.status_code == 400
    assert "detail" in response.json()
    assert counts() == before


@pytest.mark.parametrize("path", ADMIN_POSTS)
@pytest.mark.parametrize(("raw", "message"), [('"text"', "expected an object"), ("42", "expected an object"),
                                              ("null", "expected an object"), ("[]", "the list is empty")])
def test_body_must_be_an_object_or_a_non_empty_list(admin_api, path, raw, message):
    before = counts()
    response = admin_api.post(path, data=raw, content_type="application/json")
    assert response.status_code == 400
    assert message in response.json()["non_field_errors"][0]
    assert counts() == before


def test_more_than_1000_items_is_refused(admin_api):
    response = admin_api.post("/api/prompts/", [{"messages": USER_Q}] * 1001, format="json")
    assert response.status_code == 400
    assert response.json() == {"non_field_errors": ["1001 items; at most 1000 per request"]}
    assert Prompt.objects.count() == 0


def test_exactly_1000_items_is_accepted(admin_api):
    response = admin_api.post("/api/prompts/", [{"messages": USER_Q}] * 1000, format="json")
    assert response.status_code == 201
    assert Prompt.objects.count() == 1000


def test_unsupported_content_type_is_415(admin_api):
    response = admin_api.post("/api/prompts/", data=json.dumps({"messages": USER_Q}), content_type="text/plain")
    assert response.status_code == 415
    assert Prompt.objects.count() == 0


def test_body_over_the_upload_limit_is_refused_before_parsing(admin_api):
    limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
    body = json.dumps({"messages": [{"role": "user", "content": "x" * limit}]})
    assert len(body) > limit
    response = admin_api.post("/api/prompts/", data=body, content_type="application/json")
    assert response.status_code == 400
    assert response.json() == {"detail": f"Request body is {len(body)} bytes; at most {limit} bytes are accepted."}
    assert Prompt.objects.count() == 0


def test_oversized_form_post_to_the_annotator_page_is_refused(client, annotator):
    comparison = ComparisonFactory()
    services.assignment_claim(annotator=annotator)
    client.force_login(annotator)
    big = "x" * (settings.DATA_UPLOAD_MAX_MEMORY_SIZE + 1)
    item = Assignment.objects.get(comparison=comparison).token
    response = client.post("/annotate/vote/", {"item": item, "choice": "left", "rationale": big})
    assert response.status_code == 400
    assert Vote.objects.count() == 0


# --- wrong types and values, per endpoint ----------------------------------------------------------
BAD_PROMPTS = [
    ({"messages": "Question?"}, "messages"),
    ({"messages": []}, "messages"),
    ({"messages": [{"role": "robot", "content": "hi"}]}, "role"),
    ({"messages": [{"role": "user", "content": None}]}, "content"),
    ({"messages": [{"role": "user", "content": "nul \x00 here"}]}, "content"),
    ({"messages": [{"role": "user", "content": "x" * 1_000_001}]}, "content"),
    ({"messages": [{"role": "user", "content": "q"}] * 201}, "messages"),
    ({"messages": [{"role": "user", "content": "q"}, {"role": "assistant", "content": "a"}]}, "messages"),
    ({"messages": [{"role": "user", "content": "   "}]}, "messages"),
    ({"messages": USER_Q, "tags": "a,b"}, "tags"),
    ({"messages": USER_Q, "tags": ["x" * 101]}, "tags"),
    ({"messages": USER_Q, "tags": [""]}, "tags"),
    ({"messages": USER_Q, "split": "test"}, "split"),
    ({"messages": USER_Q, "source": "s" * 101}, "source"),
    ({}, "messages"),
]


@pytest.mark.parametrize(("body", "field"), BAD_PROMPTS)
def test_bad_prompt_is_refused(admin_api, body, field):
    before = counts()
    assert_refused(admin_api.post("/api/prompts/", body, format="json"), field, before)


@pytest.mark.parametrize(("body", "field"), BAD_PROMPTS)
def test_one_bad_prompt_in_a_list_refuses_the_whole_list_and_names_its_index(admin_api, body, field):
    before = counts()
    response = admin_api.post("/api/prompts/", [{"messages": USER_Q}, body, {"messages": USER_Q}], format="json")
    assert_refused(response, field, before)
    assert list(response.json()) == ["1"]


def bad_completions(prompt_id):
    return [
        ({"prompt": 999_999, "model_name": "m", "text": "t"}, "prompt"),
        ({"prompt": "first", "model_name": "m", "text": "t"}, "prompt"),
        ({"model_name": "m", "text": "t"}, "prompt"),
        ({"prompt": prompt_id, "model_name": "", "text": "t"}, "model_name"),
        ({"prompt": prompt_id, "model_name": "   ", "text": "t"}, "model_name"),
        ({"prompt": prompt_id, "model_name": "m" * 201, "text": "t"}, "model_name"),
        ({"prompt": prompt_id, "model_name": "m", "text": None}, "text"),
        ({"prompt": prompt_id, "model_name": "m", "text": ["t"]}, "text"),
        ({"prompt": prompt_id, "model_name": "m", "text": "a\x00b"}, "text"),
        ({"prompt": prompt_id, "model_name": "m", "text": "x" * 2_000_001}, "text"),
        ({"prompt": prompt_id, "model_name": "m", "text": "t", "generation_params": [1, 2]}, "generation_params"),
        ({"prompt": prompt_id, "model_name": "m", "text": "t", "is_truncated": "maybe"}, "is_truncated"),
    ]


def test_bad_completions_are_refused(admin_api):
    prompt = PromptFactory()
    for body, field in bad_completions(prompt.pk):
        before = counts()
        assert_refused(admin_api.post("/api/completions/", body, format="json"), field, before)
        good = {"prompt": prompt.pk, "model_name": "m", "text": "fine"}
        response = admin_api.post("/api/completions/", [good, body], format="json")
        assert_refused(response, field, before)
        assert list(response.json()) == ["1"]


def bad_comparisons(a, b, prompt_id):
    inline = {"model_name": "m", "text": "t"}
    return [
        ({"completion_a": a, "completion_b": a}, "completion_b"),
        ({"completion_a": a, "completion_b": 999_999}, "completion_b"),
        ({"completion_a": str(a), "completion_b": str(b)}, "completion_a"),
        ({"completion_a": True, "completion_b": b}, "completion_a"),
        ({"completion_a": a, "completion_b": inline}, "completion_a"),
        ({"completion_b": b}, "completion_a"),
        ({"completion_a": a, "completion_b": b, "votes_required": 0}, "votes_required"),
        ({"completion_a": a, "completion_b": b, "votes_required": 101}, "votes_required"),
        ({"completion_a": a, "completion_b": b, "votes_required": "two"}, "votes_required"),
        ({"completion_a": a, "completion_b": b, "priority": 10**7}, "priority"),
        ({"completion_a": a, "completion_b": b, "gold_choice": "left"}, "gold_choice"),
        ({"completion_a": inline, "completion_b": {**inline, "text": "u"}}, "prompt"),
        ({"prompt": 999_999, "completion_a": inline, "completion_b": {**inline, "text": "u"}}, "prompt"),
        ({"prompt": "Question?", "completion_a": inline, "completion_b": {**inline, "text": "u"}}, "prompt"),
        ({"prompt": {"messages": []}, "completion_a": inline, "completion_b": {**inline, "text": "u"}}, "messages"),
        ({"prompt": prompt_id, "completion_a": {"text": "t"}, "completion_b": inline}, "model_name"),
        ({"prompt": prompt_id, "completion_a": inline, "completion_b": inline}, "completion_b"),
        ({"prompt": {"messages": [{"role": "assistant", "content": "a"}]}, "completion_a": inline,
          "completion_b": {**inline, "text": "u"}}, "prompt"),
    ]


def test_bad_comparisons_are_refused(admin_api):
    prompt = PromptFactory()
    a, b = CompletionFactory(prompt=prompt, text="x"), CompletionFactory(prompt=prompt, text="y")
    other_prompt_completion = CompletionFactory(text="z")
    cases = bad_comparisons(a.pk, b.pk, prompt.pk) + [
        ({"completion_a": a.pk, "completion_b": other_prompt_completion.pk}, "completion_b")
    ]
    for body, field in cases:
        before = counts()
        assert_refused(admin_api.post("/api/comparisons/", body, format="json"), field, before)


BAD_VOTES = [
    ({"comparison": "abc", "choice": "a"}, "comparison"),
    ({"comparison": 0, "choice": "a"}, "comparison"),
    ({"comparison": True, "choice": "a"}, "comparison"),
    ({"choice": "a"}, "item"),
    ({"item": "x" * 25, "choice": "left"}, "item"),
    ({"comparison": "{id}", "choice": "middle"}, "choice"),
    ({"comparison": "{id}", "choice": ["a"]}, "choice"),
    ({"comparison": "{id}"}, "choice"),
    ({"comparison": "{id}", "choice": "tie", "strength": "clear"}, "strength"),
    ({"comparison": "{id}", "choice": "both_bad", "strength": "strong"}, "strength"),
    ({"comparison": "{id}", "choice": "a", "strength": "very"}, "strength"),
    ({"comparison": "{id}", "choice": "a", "rationale": "x" * 10_001}, "rationale"),
    ({"comparison": "{id}", "choice": "a", "rationale": {"why": "?"}}, "rationale"),
    ({"comparison": "{id}", "choice": "a", "helpfulness": "centre"}, "helpfulness"),
    ({"comparison": "{id}", "choice": "a", "honesty": "both"}, "honesty"),
    ({"comparison": "{id}", "choice": "a", "ms_on_item": -5}, "ms_on_item"),
    ({"comparison": "{id}", "choice": "a", "ms_on_item": "soon"}, "ms_on_item"),
    ({"comparison": "{id}", "choice": "a", "ms_on_item": 24 * 3600 * 1000 + 1}, "ms_on_item"),
]


@pytest.mark.parametrize(("body", "field"), BAD_VOTES)
def test_bad_vote_is_refused_and_the_lease_is_untouched(annotator, body, field):
    comparison = ComparisonFactory()
    services.assignment_claim(annotator=annotator)
    body = {k: (comparison.pk if v == "{id}" else v) for k, v in body.items()}
    before = counts()
    assert_refused(api_as(annotator).post("/api/votes/", body, format="json"), field, before)
    assert Assignment.objects.get().status == "leased"
    comparison.refresh_from_db()
    assert comparison.vote_count == 0


@pytest.mark.parametrize("comparison_id", [2**63, 10**30])
def test_vote_or_skip_on_an_id_too_large_to_exist_is_refused_cleanly(annotator, comparison_id):
    ComparisonFactory()
    services.assignment_claim(annotator=annotator)
    client = api_as(annotator)
    before = counts()
    vote = client.post("/api/votes/", {"comparison": comparison_id, "choice": "a"}, format="json")
    assert (vote.status_code, vote.json()["code"]) == (403, "not_assigned")
    skip = client.post(f"/api/comparisons/{comparison_id}/skip/")
    assert (skip.status_code, skip.json()["code"]) == (403, "not_assigned")
    assert client.get(f"/api/comparisons/{comparison_id}/").status_code == 404
    assert counts() == before


@pytest.mark.parametrize(
    ("form", "status"),
    [
        ({"choice": "left"}, 400),
        ({"item": "x" * 25, "choice": "left"}, 400),
        ({"item": "{item}", "choice": "a"}, 400),  # the page votes in screen terms only
        ({"item": "{item}", "choice": "middle"}, 400),
        ({"item": "{item}"}, 400),
        ({"item": "{item}", "choice": "tie", "strength": "clear"}, 400),
        ({"item": "{item}", "choice": "left", "ms_on_item": "-1"}, 400),
        ({"item": "not-mine", "choice": "left"}, 409),
    ],
)
def test_bad_form_vote_on_the_page_writes_nothing(client, annotator, form, status):
    ComparisonFactory()
    services.assignment_claim(annotator=annotator)
    item = Assignment.objects.get().token
    client.force_login(annotator)
    before = counts()
    response = client.post("/annotate/vote/", {k: (item if v == "{item}" else v) for k, v in form.items()})
    assert response.status_code == status
    assert b'role="alert"' in response.content
    assert counts() == before


@pytest.mark.parametrize(("item", "status"), [("", 400), ("x" * 25, 400), ("abc", 409), (str(2**63), 409)])
def test_bad_form_skip_on_the_page_writes_nothing(client, annotator, item, status):
    ComparisonFactory()
    services.assignment_claim(annotator=annotator)
    client.force_login(annotator)
    response = client.post("/annotate/skip/", {"item": item})
    assert response.status_code == status
    assert b'role="alert"' in response.content
    assert Assignment.objects.get().status == "leased"


# --- unusual but valid text is stored and read back exactly -------------------------------------------
@pytest.mark.parametrize(
    "text",
    [one_megabyte_text(), EMOJI, RTL, LONG_WORD, PADDED, "", "<script>alert(1)</script>", "a\r\nb\u2028c\u00a0d"],
    ids=["1MB", "emoji", "rtl", "5000-char-word", "padded", "empty", "html", "line-separators"],
)
def test_completion_text_round_trips_exactly(admin_api, text):
    prompt = PromptFactory()
    created = admin_api.post(
        "/api/completions/", {"prompt": prompt.pk, "model_name": "m", "text": text}, format="json"
    )
    assert created.status_code == 201
    stored = Completion.objects.get()
    assert stored.text == text
    assert stored.is_empty is (not text.strip())
    read = admin_api.get(f"/api/completions/{stored.pk}/")
    assert read.json()["text"] == text


@pytest.mark.parametrize("content", [EMOJI, RTL, LONG_WORD, PADDED, "x" * 1_000_000], ids=["emoji", "rtl", "word", "padded", "1MB"])
def test_prompt_messages_round_trip_exactly(admin_api, content):
    messages = [{"role": "system", "content": content}, {"role": "user", "content": content}]
    created = admin_api.post("/api/prompts/", {"messages": messages, "tags": ["😀", "עברית"]}, format="json")
    assert created.status_code == 201
    stored = Prompt.objects.get()
    assert stored.messages == messages
    assert stored.tags == ["😀", "עברית"]
    read = admin_api.get(f"/api/prompts/{stored.pk}/").json()
    assert (read["messages"], read["tags"]) == (messages, ["😀", "עברית"])


def test_unusual_texts_reach_the_annotator_exactly(admin_api, annotator, client):
    texts = {"a": EMOJI + "\n\n" + LONG_WORD, "b": RTL}
    created = admin_api.post(
        "/api/comparisons/",
        {
            "prompt": {"messages": [{"role": "user", "content": RTL + " " + EMOJI}]},
            "completion_a": {"model_name": "m1", "text": texts["a"]},
            "completion_b": {"model_name": "m2", "text": texts["b"]},
        },
        format="json",
    )
    assert created.status_code == 201
    served = api_as(annotator).post("/api/assignments/next/").json()
    assert served["messages"][0]["content"] == RTL + " " + EMOJI
    shown_left = Assignment.objects.get().shown_left
    assert (served["left"]["text"], served["right"]["text"]) == (texts[shown_left], texts["b" if shown_left == "a" else "a"])

    client.force_login(annotator)
    page = client.get("/annotate/").content.decode()
    assert LONG_WORD in page
    assert "مرحبا بالعالم — שלום עולם" in page
    assert "👩‍👩‍👧‍👦" in page and "🇺🇦" in page


def test_vote_rationale_round_trips_exactly(annotator):
    comparison = ComparisonFactory()
    services.assignment_claim(annotator=annotator)
    rationale = (RTL + EMOJI + LONG_WORD)[:10_000]
    client = api_as(annotator)
    response = client.post("/api/votes/", {"comparison": comparison.pk, "choice": "a", "rationale": rationale}, format="json")
    assert response.status_code == 201
    assert Vote.objects.get().rationale == rationale
    assert client.get(f"/api/votes/{response.json()['id']}/").json()["rationale"] == rationale


BEYOND_ANY_ID = 2**64  # larger than the largest BigAutoField id: overflowed SQLite's INTEGER (a 500) before


@pytest.mark.parametrize("query, field", [
    (f"/api/comparisons/?prompt={BEYOND_ANY_ID}", "prompt"),
    (f"/api/completions/?prompt={BEYOND_ANY_ID}", "prompt"),
    (f"/api/votes/?comparison={BEYOND_ANY_ID}", "comparison"),
    (f"/api/votes/?annotator={BEYOND_ANY_ID}", "annotator"),
])
def test_an_id_filter_beyond_any_id_is_a_400_naming_it(admin_api, query, field):
    response = admin_api.get(query)
    assert response.status_code == 400
    assert field in response.json()


@pytest.mark.parametrize("body, field", [
    ({"completion_a": BEYOND_ANY_ID, "completion_b": 1}, "completion_a"),
    ({"completion_a": 1, "completion_b": -BEYOND_ANY_ID}, "completion_b"),
    ({"prompt": BEYOND_ANY_ID, "completion_a": {"model_name": "m", "text": "x"},
      "completion_b": {"model_name": "n", "text": "y"}}, "prompt"),
])
def test_a_comparison_naming_an_id_beyond_any_id_is_a_400_naming_it(admin_api, body, field):
    response = admin_api.post("/api/comparisons/", body, format="json")
    assert response.status_code == 400
    assert field in response.json()
    assert Comparison.objects.count() == 0

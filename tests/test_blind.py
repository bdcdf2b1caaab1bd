"""Blind means blind: nothing an annotator can read tells which stored completion (a/b) a side is,
or which model wrote it. Every annotator-facing payload is read: the annotate page (full and htmx
partials, data attributes and hidden inputs included) after each action, and every API response an
annotator can reach (every route without parameters, every route with an id of theirs, the POSTs).
"""
from __future__ import annotations

import difflib
import json
import re
from html.parser import HTMLParser

import pytest
from django.urls import URLResolver, get_resolver

from feedback.models import Assignment, IdentityMatch, IdentityPattern, Vote
from tests.conftest import api_as
from tests.factories import ComparisonFactory, CompletionFactory, PromptFactory

pytestmark = pytest.mark.django_db

HTMX = {"HTTP_HX_REQUEST": "true"}
NEW, PARENT = "policy-round-7-new", "policy-round-6-parent"
PARAMS = {"temperature": 0.7313, "top_p": 0.9171, "seed": 424242, "job": 918273, "checkpoint": "ckpt-round-7-step-64"}
COMPLETION_IDS = (7340021, 7340022, 7340023, 7340024, 7340025, 7340026)
# Anything that would name the model, its sampling settings or a stored side.
NEEDLES = [NEW, PARENT, "policy-round", "ckpt-round", "7313", "9171", "424242", "918273", *map(str, COMPLETION_IDS),
           "completion_a", "completion_b", "shown_left", "model_name", "generation_params", "gold",
           # Identity-leak flags and patterns (feedback.identity) are admins' only: the pattern below
           # holds "ckpt-round" too, so its text showing anywhere is caught above.
           "identity-leak", "identity_leak_annotator", "identity_matches", "reveals the model"]
STORED_SIDE_KEYS = {"completion", "completion_a", "completion_b", "shown_left", "model_name", "generation_params",
                    "identity_leak", "identity_leak_annotator", "identity_patterns", "identity_matches"}
SCREEN_VALUES = {"", "left", "right", "tie", "both_bad"}


@pytest.fixture
def comparisons():
    """Three generated-looking pairs (the new policy as A in one, as B in another), with odd ids."""
    ids = iter(COMPLETION_IDS)
    made = []
    for new_is_a in (True, False, True):
        prompt = PromptFactory()
        new = CompletionFactory(pk=next(ids), prompt=prompt, model_name=NEW, generation_params=PARAMS, text=f"New says {prompt.pk}.")
        old = CompletionFactory(pk=next(ids), prompt=prompt, model_name=PARENT, generation_params=PARAMS, text=f"Old says {prompt.pk}.")
        a, b = (new, old) if new_is_a else (old, new)
        made.append(ComparisonFactory(prompt=prompt, completion_a=a, completion_b=b, votes_required=2, gold_choice="a",
                                      identity_leak=True, identity_leak_annotator=True))
    pattern = IdentityPattern.objects.create(text="ckpt-round-7 says", scope=NEW)
    IdentityMatch.objects.bulk_create(IdentityMatch(comparison=comparison, pattern=pattern) for comparison in made)
    return made


class Attributes(HTMLParser):
    def __init__(self):
        super().__init__()
        self.attributes: list[tuple[str, str, str]] = []  # (tag, name, value)

    def handle_starttag(self, tag, attrs):
        self.attributes += [(tag, name, value or "") for name, value in attrs]


def assert_blind_html(body: bytes, where: str) -> None:
    text = body.decode()
    for needle in NEEDLES:
        assert needle not in text, f"{where}: {needle!r} in the page"
    parser = Attributes()
    parser.feed(text)
    for tag, name, value in parser.attributes:
        # A letter a/b as a value or data attribute would say which stored side a control stands for.
        if name == "value" or name.startswith("data-"):
            assert value not in ("a", "b", "A", "B"), f"{where}: <{tag} {name}={value!r}>"
        assert name not in ("data-comparison", "data-completion"), f"{where}: <{tag} {name}>"


def assert_blind_json(body, where: str) -> None:
    text = json.dumps(body)
    for needle in NEEDLES:
        assert needle not in text, f"{where}: {needle!r} in {text[:300]}"

    def walk(node):
        if isinstance(node, dict):
            for key, value in node.items():
                assert key not in STORED_SIDE_KEYS, f"{where}: key {key!r}"
                if key in ("choice", *Vote.ASPECTS):
                    assert value in SCREEN_VALUES, f"{where}: {key}={value!r}"
                walk(value)
        elif isinstance(node, list):
            for item in node:
                walk(item)

    walk(body)


def shown_item(response) -> str:
    return re.search(rb'name="item" value="([\w-]+)"', response.content).group(1).decode()


def test_the_annotate_page_and_its_partials_say_nothing_about_sides_or_models(client, annotator, comparisons):
    client.force_login(annotator)
    pages = {"full page": client.get("/annotate/"), "htmx poll": client.get("/annotate/", **HTMX)}
    item = shown_item(pages["full page"])
    pages["400 bad vote"] = client.post("/annotate/vote/", {"item": item, "choice": "a"}, **HTMX)
    pages["400 plain"] = client.post("/annotate/vote/", {"item": item, "choice": "tie", "strength": "clear"})
    pages["htmx vote"] = client.post("/annotate/vote/", {"item": item, "choice": "left", "helpfulness": "right"}, **HTMX)
    pages["409 stale item"] = client.post("/annotate/vote/", {"item": item, "choice": "right", "rationale": "x"}, **HTMX)
    pages["htmx skip"] = client.post("/annotate/skip/", {"item": shown_item(pages["htmx vote"])}, **HTMX)
    plain = client.post("/annotate/vote/", {"item": shown_item(pages["htmx skip"]), "choice": "right"}, follow=True)
    pages["after a plain vote"] = plain
    pages["empty queue"] = client.get("/annotate/")
    assert [response.status_code for response in pages.values()] == [200, 200, 400, 400, 200, 409, 200, 200, 200]
    assert b'data-testid="queue-empty"' in pages["empty queue"].content and Vote.objects.count() == 2
    for where, response in pages.items():
        assert_blind_html(response.content, where)


def _routes(patterns, prefix=""):
    for pattern in patterns:
        if isinstance(pattern, URLResolver):
            yield from _routes(pattern.url_patterns, prefix + str(pattern.pattern))
        else:
            yield prefix + str(pattern.pattern)


def _paths(comparison_id: int, vote_id: int):
    """Every route outside the Django admin as a path: ids filled in with the annotator's own."""
    for route in _routes(get_resolver().url_patterns):
        if route.startswith("admin/") or "format" in route:
            continue
        for value in {comparison_id, vote_id}:
            path = "/" + re.sub(r"<int:pk>|\(\?P<pk>[^)]*\)", str(value), route).replace("^", "").replace("$", "")
            if "<" not in path and "(" not in path and "?" not in path:
                yield path


def test_every_api_answer_an_annotator_can_reach_is_blind(annotator, comparisons):
    api = api_as(annotator)
    answers = {}
    served = api.post("/api/assignments/next/")
    answers["next"] = served
    body = served.json()
    assert set(body["left"]) == set(body["right"]) == {"text", "is_empty"}
    vote = {"item": body["item"], "choice": "left", "strength": "clear", "helpfulness": "right"}
    answers["vote 201"] = api.post("/api/votes/", vote, format="json")
    answers["vote 200"] = api.post("/api/votes/", vote, format="json")
    answers["vote 409"] = api.post("/api/votes/", {"comparison": body["comparison"], "choice": "right"}, format="json")
    answers["vote by a/b"] = api.post("/api/votes/", {"item": api.post("/api/assignments/next/").json()["item"], "choice": "a"}, format="json")
    skipped = api.post("/api/assignments/next/").json()["comparison"]
    answers["skip"] = api.post(f"/api/comparisons/{skipped}/skip/")
    answers["next 204"] = api.post("/api/assignments/next/")
    assert [answers[k].status_code for k in ("vote 201", "vote 200", "vote 409", "vote by a/b", "skip", "next 204")] == [
        201, 200, 409, 201, 200, 204]
    answers["votes filtered"] = api.get("/api/votes/", {"choice": "left"})
    my_vote = Vote.objects.filter(annotator=annotator).first()
    reached = []
    for path in _paths(body["comparison"], my_vote.pk):
        response = api.get(path)
        if response.status_code == 200 and response.get("Content-Type", "").startswith("application/json"):
            answers[f"GET {path}"] = response
            reached.append(path)
    assert {"/api/comparisons/", f"/api/comparisons/{body['comparison']}/", "/api/votes/", f"/api/votes/{my_vote.pk}/"} <= set(reached)
    assert "/api/completions/" not in reached and "/api/leaderboard/" not in reached
    for where, response in answers.items():
        if response.status_code != 204:
            assert_blind_json(response.json(), where)
    # What was stored is in a/b terms, mapped with the side this annotator was shown.
    first = Vote.objects.get(annotator=annotator, comparison_id=body["comparison"])
    assert first.choice == Assignment.objects.get(annotator=annotator, comparison_id=body["comparison"]).shown_left


# --- gold items look like any other item until the vote ----------------------------------------------
def _same_looking_pair(campaign, gold: str):
    prompt = PromptFactory(messages=[{"role": "user", "content": "Which is the capital of Peru?"}])
    a = CompletionFactory(prompt=prompt, model_name=NEW, text="Lima.")
    b = CompletionFactory(prompt=prompt, model_name=PARENT, text="Puno.")
    return ComparisonFactory(prompt=prompt, completion_a=a, completion_b=b, campaign=campaign, gold_choice=gold)


def _without_item_names(text: str, tokens: list[str]) -> str:
    """The page with the item's token, its short name and the side order taken out (which differs
    from item to item by design), so two items' pages can be compared."""
    for token in tokens:
        text = text.replace(token, "TOKEN")
    text = re.sub(r"Item <code>[^<]+</code>", "SHORT", text)
    text = re.sub(r"csrfmiddlewaretoken\" value=\"[^\"]+\"", "CSRF", text)
    text = re.sub(r'CSRFToken": "[^"]+"', "CSRF", text)
    text = re.sub(r"user\d+", "USER", text)
    return text.replace("Puno.", "TEXT").replace("Lima.", "TEXT")


def test_a_gold_item_looks_exactly_like_any_other_item_on_the_page_and_the_api(client, monkeypatch):
    from feedback import claims
    from tests.campaign_support import campaign_make
    from tests.factories import UserFactory

    first, second = UserFactory(role="annotator"), UserFactory(role="annotator")
    campaign = campaign_make("Checks", annotators=[first, second], gold_rate=1.0, gold_feedback=True,
                             gold_min_accuracy=0.5, gold_min_votes=1)
    gold, normal = _same_looking_pair(campaign, "a"), _same_looking_pair(campaign, "")
    pages, answers = {}, {}
    for user, draws_gold in ((first, True), (second, False)):
        monkeypatch.setattr(claims, "gold_draw", lambda rng, rate, draws=draws_gold: draws)
        client.force_login(user)
        pages[user] = client.get(f"/annotate/{campaign.slug}/")
        answers[user] = api_as(user).post(f"/api/assignments/next/?campaign={campaign.slug}")
    assert Assignment.objects.get(annotator=first).comparison == gold
    assert Assignment.objects.get(annotator=second).comparison == normal
    tokens = list(Assignment.objects.values_list("token", flat=True))
    for user in (first, second):
        assert_blind_html(pages[user].content, "gold or not: page")
        assert_blind_json(answers[user].json(), "gold or not: API")
    one = _without_item_names(pages[first].content.decode(), tokens).splitlines()
    two = _without_item_names(pages[second].content.decode(), tokens).splitlines()
    assert one == two, "\n".join(difflib.unified_diff(one, two, lineterm="", n=0))
    gold_answer, normal_answer = answers[first].json(), answers[second].json()
    assert set(gold_answer) == set(normal_answer)
    differ = ("item", "comparison", "left", "right", "item_short", "expires_at")  # per item by design
    assert {k: v for k, v in gold_answer.items() if k not in differ} == {
        k: v for k, v in normal_answer.items() if k not in differ}
    assert {side: set(gold_answer[side]) for side in ("left", "right")} == {
        side: set(normal_answer[side]) for side in ("left", "right")}

"""Pairs that carry no signal are never queued, one prompt is one row, and an empty response is
never shown as a blank panel nor written as an empty assistant message.

The rule is ``feedback.messages.response_key``: NFC, whitespace runs collapsed, ends stripped.
Every entry point here (services, the API, generation's pairing, snapshots, exports) uses it.
"""
from __future__ import annotations

import io
import re

import pytest
from django.core.exceptions import ValidationError
from django.core.management import call_command
from django.test import Client

from feedback import interface, services
from feedback.exports.services import export_request_check, export_write
from feedback.interface import CandidatePair, GeneratedText
from feedback.models import Comparison, Completion, Prompt, Vote
from feedback.preferences import AggregationRules, VoteRecord, build_preference_dataset
from tests.conftest import api_as
from tests.export_fixtures import jsonl_rows
from tests.factories import ComparisonFactory, CompletionFactory, PromptFactory, UserFactory, VoteFactory

pytestmark = pytest.mark.django_db

MESSAGES = [{"role": "user", "content": "Which colour is the sky?"}]
# The same words, in whitespace and Unicode composition only: "café" composed vs decomposed.
EQUIVALENT = ("It is blue,  café.\n", " It is\tblue, cafe\u0301.")


def inline(text_a="Blue.", text_b="Grey at night.", **prompt_fields) -> dict:
    return {
        "prompt": {"messages": MESSAGES, **prompt_fields},
        "completion_a": {"model_name": "m1", "text": text_a},
        "completion_b": {"model_name": "m2", "text": text_b},
    }


def counts() -> tuple[int, int, int]:
    return Prompt.objects.count(), Completion.objects.count(), Comparison.objects.count()


# --- equivalence at every entry point -------------------------------------------------------------


def test_services_refuse_texts_that_differ_only_in_whitespace_or_composition():
    prompt = PromptFactory()
    a = CompletionFactory(prompt=prompt, text=EQUIVALENT[0])
    b = CompletionFactory(prompt=prompt, text=EQUIVALENT[1])
    with pytest.raises(ValidationError) as caught:
        services.comparison_create(completion_a=a, completion_b=b)
    assert "same text as completion_a" in caught.value.message_dict["completion_b"][0]
    before = counts()
    with pytest.raises(ValidationError):
        services.comparison_create_inline(**inline(*EQUIVALENT))
    assert counts() == before
    # Case and punctuation count: these are a real pair.
    services.comparison_create(completion_a=a, completion_b=CompletionFactory(prompt=prompt, text="it is blue, café."))


def test_the_api_answers_400_naming_completion_b_and_writes_nothing():
    admin = UserFactory(role="admin")
    before = counts()
    response = api_as(admin).post("/api/comparisons/", inline(*EQUIVALENT), format="json")
    assert response.status_code == 400
    assert list(response.json()) == ["completion_b"]
    assert "nothing to compare" in response.json()["completion_b"][0]
    assert counts() == before


def test_generation_never_pairs_equivalent_texts():
    prompt = PromptFactory()
    params = {"temperature": 0.7}
    pairs = [
        CandidatePair(prompt.id, GeneratedText("m", EQUIVALENT[0], params, False), GeneratedText("m", EQUIVALENT[1], params, False)),
        CandidatePair(prompt.id, GeneratedText("m", "Yes.", params, False), GeneratedText("m", "No.", params, False)),
    ]
    summary = interface.pairs_record(pairs=pairs)
    assert (summary.paired, summary.skipped_identical) == (1, 1)
    (comparison,) = Comparison.objects.all()
    assert {comparison.completion_a.text, comparison.completion_b.text} == {"Yes.", "No."}


def _record(vote: Vote) -> VoteRecord:
    c = vote.comparison
    return VoteRecord(
        vote_id=vote.pk, comparison_id=c.pk, prompt_id=c.prompt_id, annotator_id=vote.annotator_id, prompt_messages=c.prompt.messages,
        text_a=c.completion_a.text, text_b=c.completion_b.text, choice=vote.choice, strength="",
        is_gold=False, split="train", prompt_key=c.prompt.messages_sha256, source="annotator",
    )


def test_snapshots_count_equivalent_texts_as_identical_and_an_empty_response_as_empty_response():
    # Stored before the rule (or by a path that bypasses the services): the builder still refuses them.
    equivalent = ComparisonFactory(completion_a__text=EQUIVALENT[0], completion_b__text=EQUIVALENT[1])
    empty = ComparisonFactory(completion_a__text="Blue.", completion_b__text="  \n", completion_b__is_empty=True)
    fine = ComparisonFactory(completion_a__text="Blue.", completion_b__text="Green.")
    votes = [VoteFactory(comparison=c, choice="a") for c in (equivalent, empty, fine)]
    dataset = build_preference_dataset([_record(v) for v in votes], AggregationRules())
    assert (dataset.counts["identical"], dataset.counts["empty_response"], dataset.counts["pairs_train"]) == (1, 1, 1)
    assert [row["comparison_id"] for row in dataset.train] == [fine.pk]


# --- empty responses: shown, exported --------------------------------------------------------------


def test_the_annotator_sees_an_explicit_empty_response_marker(client):
    annotator = UserFactory(role="annotator")
    ComparisonFactory(completion_a__text="Blue.", completion_b__text=" \n ", completion_b__is_empty=True)
    services.assignment_claim(annotator=annotator)
    client.force_login(annotator)
    page = client.get("/annotate/").content.decode()
    panels = dict(re.findall(r'data-testid="(left|right)-text">(.*?)</(?:div|p)>', page, re.S))
    assert sorted(panel.strip() for panel in panels.values()) == ["(empty response)", "<p dir=\"auto\">Blue."]
    served = api_as(annotator).post("/api/assignments/next/").json()
    assert sorted(side["is_empty"] for side in (served["left"], served["right"])) == [False, True]


def _vote_on(comparison, choice="a"):
    return VoteFactory(comparison=comparison, choice=choice)


@pytest.mark.parametrize("fmt", ["trl-preference", "trl-unpaired", "hh-rlhf", "arena"])
def test_no_export_writes_an_empty_response_and_the_summary_counts_it(fmt, tmp_path):
    _vote_on(ComparisonFactory(completion_a__text="Blue.", completion_b__text="", completion_b__is_empty=True))
    _vote_on(ComparisonFactory(completion_a__text="", completion_a__is_empty=True, completion_b__text="Red."), "both_bad")
    _vote_on(ComparisonFactory(completion_a__text="Blue.", completion_b__text="Green."))
    request = export_request_check(format=fmt, file_type="jsonl")
    path = tmp_path / "out.jsonl"
    result, summary = export_write(request=request, path=path)
    text = path.read_text()
    assert '"content": ""' not in text and '"completion": ""' not in text and "Assistant:\"" not in text
    assert result.rows == {"trl-preference": 1, "trl-unpaired": 2, "hh-rlhf": 1, "arena": 1}[fmt]
    assert summary["empty_response"] == (2 if fmt in ("trl-unpaired", "arena") else 1)


def test_the_command_summary_names_the_empty_responses(tmp_path, settings):
    settings.ARBITER_DATA_DIR = tmp_path
    _vote_on(ComparisonFactory(completion_a__text="Blue.", completion_b__text="", completion_b__is_empty=True))
    _vote_on(ComparisonFactory(completion_a__text="Blue.", completion_b__text="Green."))
    out = io.StringIO()
    call_command("export_preferences", "--format", "trl-preference", "--file-type", "jsonl",
                 "--output", str(tmp_path / "o.jsonl"), stdout=out, stderr=io.StringIO())
    assert out.getvalue().splitlines()[0] == "1 row from 2 votes on 2 comparisons (no row: empty_response=1)"
    assert [row["chosen"][0]["content"] for row in jsonl_rows(tmp_path / "o.jsonl")] == ["Blue."]


# --- one prompt, one row -------------------------------------------------------------------------


def test_the_same_messages_posted_twice_reuse_the_stored_prompt():
    api = api_as(UserFactory(role="admin"))
    first = api.post("/api/comparisons/", inline(tags=["sky"]), format="json")
    second = api.post("/api/comparisons/", inline("Blue.", "Black at night.", tags=["colour"]), format="json")
    assert first.status_code == second.status_code == 201, second.content
    assert first.json()["prompt"] == second.json()["prompt"]
    prompt = Prompt.objects.get()
    assert prompt.tags == ["sky", "colour"] and prompt.split == "train"
    assert Comparison.objects.filter(prompt=prompt).count() == 2


def test_the_same_pair_posted_again_is_400_and_writes_nothing():
    api = api_as(UserFactory(role="admin"))
    created = api.post("/api/comparisons/", inline(), format="json").json()
    before = counts()
    for again in (inline(), inline(" Grey at  night.", "Blue."), inline(tags=["more"])):
        response = api.post("/api/comparisons/", again, format="json")
        assert response.status_code == 400
        assert response.json() == {"completion_b": [f"this pair already exists as comparison {created['id']}"]}
    assert counts() == before and Prompt.objects.get().tags == []


def test_a_different_split_for_a_stored_prompt_is_refused():
    api = api_as(UserFactory(role="admin"))
    api.post("/api/comparisons/", inline(), format="json")
    response = api.post("/api/comparisons/", inline("Blue.", "Black.", split="eval"), format="json")
    assert response.status_code == 400
    assert "already prompt" in response.json()["prompt"][0] and response.json()["prompt"][0].startswith("split:")
    assert response.json()["prompt"][0].count("\n") == 0
    assert Comparison.objects.count() == 1


def test_an_export_holds_a_pair_posted_three_times_once(tmp_path):
    api = api_as(UserFactory(role="admin"))
    for _ in range(3):
        api.post("/api/comparisons/", inline(), format="json")
    (comparison,) = Comparison.objects.all()
    _vote_on(comparison)
    request = export_request_check(format="trl-preference", file_type="jsonl")
    result, _ = export_write(request=request, path=tmp_path / "o.jsonl")
    assert result.rows == 1


@pytest.mark.concurrency
@pytest.mark.django_db(transaction=True)
def test_identical_posts_at_once_give_one_prompt_and_one_comparison():
    from django.db import transaction

    from tests.test_concurrency import run_together

    def post(text_b):
        try:
            with transaction.atomic():
                return services.comparison_create_inline(**inline("Blue.", text_b)).prompt_id
        except ValidationError as error:
            return error.message_dict

    # Four identical posts and two with another pair of responses for the same messages.
    results = run_together(post, [("Grey.",)] * 4 + [("Black.",)] * 2)
    prompt = Prompt.objects.get()
    assert Comparison.objects.count() == 2 and Completion.objects.count() == 4
    assert results.count(prompt.pk) == 2
    refused = [r for r in results if r != prompt.pk]
    assert len(refused) == 4 and all(list(r) == ["completion_b"] for r in refused)


def test_the_exports_page_and_api_show_the_empty_response_count(tmp_path, settings):
    settings.ARBITER_DATA_DIR = tmp_path
    admin = UserFactory(role="admin")
    _vote_on(ComparisonFactory(completion_a__text="Blue.", completion_b__text="\t", completion_b__is_empty=True))
    api = api_as(admin)
    body = api.post("/api/exports/", {"format": "trl-unpaired", "file_type": "jsonl"}, format="json").json()
    assert (body["row_count"], body["counts"]["empty_response"]) == (0, 1)
    client = Client()
    client.force_login(admin)
    page = client.get("/manage/exports/").content.decode()
    assert "1 with an empty response left out" in page

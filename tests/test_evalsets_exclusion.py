"""Eval-set prompts never enter training: snapshots (preference and SFT) leave out comparisons and
demonstrations whose prompt matches an eval-set prompt exactly or as a near-duplicate, and count
them (``eval_set_excluded``, shown on the run page); the prompt selection for training data skips them."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
from django.core.exceptions import ValidationError
from django.test import Client

from feedback import interface
from feedback.evalsets.exclusion import eval_set_prompt_ids, prompt_keys_fill
from feedback.evalsets.models import PromptKey
from feedback.evalsets.services import eval_set_import
from feedback.models import Demonstration
from feedback.preferences import AggregationRules, VoteRecord, build_preference_dataset
from feedback.snapshots import no_pairs_reason
from tests.factories import ComparisonFactory, PromptFactory, VoteFactory

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def arbiter_data(settings, tmp_path) -> Path:
    settings.ARBITER_DATA_DIR = tmp_path
    return tmp_path


def user(text: str) -> list[dict[str, str]]:
    return [{"role": "user", "content": text}]


def eval_set(tmp_path: Path, *prompts: str, name: str = "prod"):
    path = tmp_path / f"{name}.jsonl"
    path.write_text("".join(json.dumps({"prompt": p}) + "\n" for p in prompts), encoding="utf-8")
    return eval_set_import(path=path, name=name).eval_set


def voted(text: str, annotator, choice: str = "a", **prompt_fields):
    comparison = ComparisonFactory(prompt=PromptFactory(messages=user(text), **prompt_fields))
    VoteFactory(comparison=comparison, annotator=annotator, choice=choice, strength="strong")
    return comparison


def test_snapshot_leaves_out_exact_and_near_duplicate_eval_prompts_and_counts_them(tmp_path, annotator):
    eval_set(tmp_path, "What is the capital of France?", "Explain TCP slow start.")
    kept = voted("Write a limerick about cats.", annotator)
    voted("What is the capital of France?", annotator)  # exact
    voted("  what is the CAPITAL of france ", annotator)  # near: case, whitespace, punctuation
    voted("Explain: TCP slow-start!", annotator, split="eval")  # near, on an eval-split prompt
    ref = interface.snapshot_create(rules={})
    assert ref.counts["eval_set_excluded"] == 3
    assert (ref.train_rows, ref.eval_rows) == (1, 0)
    rows = [json.loads(line) for line in ref.train_path.read_text(encoding="utf-8").splitlines()]
    assert [row["comparison_id"] for row in rows] == [kept.pk]
    assert ref.vote_count == 1
    assert ref.eval_set_note == "3 comparisons left out: their prompts are in an eval set"


def test_without_eval_sets_nothing_is_left_out(annotator):
    voted("What is the capital of France?", annotator)
    ref = interface.snapshot_create(rules={})
    assert ref.counts["eval_set_excluded"] == 0 and ref.train_rows == 1 and ref.eval_set_note == ""


def test_a_snapshot_whose_every_pair_is_an_eval_prompt_is_refused_saying_why(tmp_path, annotator):
    eval_set(tmp_path, "Only question")
    voted("only question?", annotator)
    with pytest.raises(ValidationError) as caught:
        interface.snapshot_create(rules={})
    assert "1 has its prompt in an eval set" in caught.value.message_dict["snapshot"][0]


def test_every_version_of_every_set_counts(tmp_path, annotator):
    eval_set(tmp_path, "first question")
    eval_set(tmp_path, "second question", name="prod")  # version 2 of the same name
    eval_set(tmp_path, "third question", name="other")
    for text in ("First question", "Second question", "Third question", "Fourth question"):
        voted(text, annotator)
    assert interface.snapshot_create(rules={}).counts["eval_set_excluded"] == 3


def test_sft_snapshot_leaves_out_demonstrations_and_strongly_chosen_responses(tmp_path, annotator):
    eval_set(tmp_path, "Summarise the report.")
    on_eval = voted("summarise the report", annotator)
    Demonstration.objects.create(prompt=on_eval.prompt, text="A summary.", source="import")
    elsewhere = voted("Tell me a joke.", annotator)
    Demonstration.objects.create(prompt=elsewhere.prompt, text="A joke.", source="import")
    ref = interface.sft_snapshot_create(rules={})
    assert ref.counts["eval_set_excluded"] == 2  # the demonstration and the strongly chosen response
    rows = [json.loads(line) for line in ref.train_path.read_text(encoding="utf-8").splitlines()]
    assert {row["prompt"][0]["content"] for row in rows} == {"Tell me a joke."}
    assert ref.eval_set_note == "2 rows left out: their prompts are in an eval set"


def test_prompt_keys_are_filled_once_and_the_match_is_by_key(tmp_path):
    inside = PromptFactory(messages=user("Is this in?"))
    twin = PromptFactory(messages=user("Is this in?"))  # same text, same key row
    outside = PromptFactory(messages=user("Is this out?"))
    assert eval_set_prompt_ids() == frozenset()  # no eval set: nothing is keyed or matched
    assert not PromptKey.objects.exists()
    eval_set(tmp_path, "is THIS in")
    assert eval_set_prompt_ids() == {inside.pk, twin.pk}
    assert PromptKey.objects.count() == 2 and prompt_keys_fill() == 0
    later = PromptFactory(messages=user("IS this in?!"))
    assert eval_set_prompt_ids() == {inside.pk, twin.pk, later.pk}
    assert outside.pk not in eval_set_prompt_ids()


def test_prompts_select_skips_eval_set_prompts_unless_asked(tmp_path):
    train = PromptFactory(messages=user("Plain training prompt"), tags=["t"])
    held = PromptFactory(messages=user("Held-out query"), tags=["t"])
    eval_set(tmp_path, "held out query")
    assert [p.id for p in interface.prompts_select()] == [train.pk]
    assert [p.id for p in interface.prompts_select(tag="t")] == [train.pk]
    assert [p.id for p in interface.prompts_select(ids=[held.pk])] == []
    assert [p.id for p in interface.prompts_select(include_eval_sets=True)] == [train.pk, held.pk]


def record(vote_id: int, comparison_id: int, *, in_eval_set: bool) -> VoteRecord:
    return VoteRecord(vote_id=vote_id, comparison_id=comparison_id, prompt_id=comparison_id,
                      prompt_messages=user(f"q{comparison_id}"), text_a="A", text_b="B", choice="a", strength="",
                      annotator_id=1, is_gold=False, split="train", prompt_key=f"k{comparison_id}", in_eval_set=in_eval_set)


def test_the_builder_counts_pairs_on_eval_set_prompts_instead_of_keeping_them():
    votes = [record(1, 1, in_eval_set=False), record(2, 2, in_eval_set=True), record(3, 3, in_eval_set=True)]
    dataset = build_preference_dataset(votes, AggregationRules())
    assert [row["comparison_id"] for row in dataset.train] == [1]
    assert dataset.counts["eval_set_excluded"] == 2 and dataset.counts["comparisons"] == 3
    assert dataset.vote_ids == [1]
    kept = build_preference_dataset(votes, AggregationRules(), leave_out_eval_set=False)
    assert len(kept.train) == 3 and kept.counts["eval_set_excluded"] == 0
    assert no_pairs_reason({"votes_seen": 1, "comparisons": 1, "eval_set_excluded": 1}, AggregationRules()) == (
        "of 1 comparison, 1 has its prompt in an eval set")


def test_the_run_page_shows_the_eval_set_count(tmp_path, annotator, admin_user):
    from training.models import Job, JobKind, JobStatus

    eval_set(tmp_path, "What is the capital of France?")
    voted("Write a limerick.", annotator)
    voted("what is the capital of france", annotator)
    ref = interface.snapshot_create(rules={})
    job = Job.objects.create(kind=JobKind.REWARD, status=JobStatus.SUCCEEDED, config={}, snapshot_id=ref.id)
    client = Client()
    client.force_login(admin_user)
    page = client.get(f"/manage/jobs/{job.pk}/").content.decode()
    assert 'data-testid="snapshot-eval-set">1 comparison left out: its prompt is in an eval set<' in page

"""feedback.interface: the prompts the training app may read and the completions it may write."""
import random

import pytest
from django.db import IntegrityError

from feedback import interface
from feedback.interface import CandidatePair, GeneratedText, PromptRef
from feedback.models import Comparison, ComparisonStatus, Completion
from tests.factories import ComparisonFactory, PromptFactory

pytestmark = pytest.mark.django_db


def ids(refs: list[PromptRef]) -> list[int]:
    return [ref.id for ref in refs]


# --- prompts_select ---------------------------------------------------------------------------


def test_all_prompts_oldest_first_with_their_messages():
    prompts = PromptFactory.create_batch(3)
    refs = interface.prompts_select()
    assert ids(refs) == [p.id for p in prompts]
    assert refs[0].messages == prompts[0].messages


def test_ids_select_those_prompts_only():
    prompts = PromptFactory.create_batch(4)
    wanted = [prompts[3].id, prompts[1].id, 999_999]
    assert ids(interface.prompts_select(ids=wanted)) == [prompts[1].id, prompts[3].id]


def test_tag_matches_whole_tags_only():
    tagged = PromptFactory(tags=["math", "easy"])
    PromptFactory(tags=["mathematics"])
    PromptFactory(tags=[])
    also = PromptFactory(tags=["math"])
    assert ids(interface.prompts_select(tag="math")) == [tagged.id, also.id]
    assert interface.prompts_select(tag="nothing-has-this") == []


def test_split_selects_train_or_eval():
    train = PromptFactory(split="train")
    evaluation = PromptFactory(split="eval")
    assert ids(interface.prompts_select(split="eval")) == [evaluation.id]
    assert ids(interface.prompts_select(split="train")) == [train.id]
    with pytest.raises(ValueError):
        interface.prompts_select(split="test")


def test_max_open_comparisons_selects_prompts_with_fewer_open_comparisons():
    none_open = PromptFactory()
    one_open = ComparisonFactory().prompt
    two_open = ComparisonFactory().prompt
    ComparisonFactory(prompt=two_open)
    one_open_one_done = ComparisonFactory().prompt
    ComparisonFactory(prompt=one_open_one_done, status=ComparisonStatus.COMPLETE)
    ComparisonFactory(prompt=one_open_one_done, status=ComparisonStatus.RETIRED)

    assert ids(interface.prompts_select(max_open_comparisons=1)) == [none_open.id]
    assert ids(interface.prompts_select(max_open_comparisons=2)) == [none_open.id, one_open.id, one_open_one_done.id]
    assert len(interface.prompts_select(max_open_comparisons=3)) == 4
    assert two_open.id not in ids(interface.prompts_select(max_open_comparisons=2))


def test_limit_takes_the_oldest():
    prompts = PromptFactory.create_batch(5)
    assert ids(interface.prompts_select(limit=2)) == [prompts[0].id, prompts[1].id]
    assert interface.prompts_select(limit=0) == []


def test_all_criteria_apply_together():
    match = [PromptFactory(tags=["t"], split="eval") for _ in range(3)]
    PromptFactory(tags=["t"], split="train")
    PromptFactory(tags=["u"], split="eval")
    ComparisonFactory(prompt=match[0])
    selected = interface.prompts_select(
        ids=[p.id for p in match], tag="t", split="eval", max_open_comparisons=1, limit=1
    )
    assert ids(selected) == [match[1].id]


# --- pairs_record -----------------------------------------------------------------------------


def generated(text: str, model: str = "model-x", truncated: bool = False, seed: int = 0) -> GeneratedText:
    return GeneratedText(model, text, {"temperature": 0.7, "top_p": 0.9, "max_new_tokens": 32, "seed": seed}, truncated)


class KeepOrder(random.Random):
    """A draw that always keeps a pair's first text as completion A."""

    def random(self) -> float:
        return 0.0


def test_pairs_become_open_comparisons_with_every_completion_stored():
    prompts = PromptFactory.create_batch(2)
    pairs = [
        CandidatePair(prompts[0].id, generated("Paris.", "model-a"), generated("It is Paris.", "model-b", truncated=True)),
        CandidatePair(prompts[1].id, generated("Four."), generated("2 + 2 = 4", seed=1)),
    ]
    summary = interface.pairs_record(pairs=pairs, votes_required=3, priority=5, rng=KeepOrder())

    assert summary.as_dict() == {"paired": 2, "completions": 4, "skipped_empty": 0, "skipped_identical": 0}
    comparison = Comparison.objects.get(prompt=prompts[0])
    assert (comparison.completion_a.text, comparison.completion_b.text) == ("Paris.", "It is Paris.")
    assert (comparison.completion_a.model_name, comparison.completion_b.model_name) == ("model-a", "model-b")
    assert comparison.completion_b.is_truncated and not comparison.completion_a.is_truncated
    assert comparison.completion_a.generation_params == {"temperature": 0.7, "top_p": 0.9, "max_new_tokens": 32, "seed": 0}
    assert (comparison.status, comparison.votes_required, comparison.priority) == (ComparisonStatus.OPEN, 3, 5)
    assert Comparison.objects.get(prompt=prompts[1]).completion_b.generation_params["seed"] == 1


def test_which_generated_text_becomes_a_is_drawn_per_pair_and_ids_do_not_tell():
    """A runner passes the new policy first; over 2,000 pairs it is completion A about half the
    time (binomial, n=2000, p=1/2: sd 22.4, bounds +-5 sd), and so is the lower completion id."""
    prompts = PromptFactory.create_batch(4)
    pairs = [
        CandidatePair(prompts[i % 4].id, generated(f"New {i}.", "policy-new"), generated(f"Old {i}.", "policy-parent"))
        for i in range(2000)
    ]
    assert interface.pairs_record(pairs=pairs, rng=random.Random(13)).paired == 2000
    rows = Comparison.objects.values_list("completion_a__model_name", "completion_a_id", "completion_b_id")
    new_is_a = sum(1 for name, _, _ in rows if name == "policy-new")
    assert 888 <= new_is_a <= 1112, new_is_a
    assert all(a_id < b_id for _, a_id, b_id in rows)  # so the lower id is the new policy's about half the time too
    # Without a seeded draw (the runners' call), both orders still occur.
    more = [CandidatePair(prompts[0].id, generated(f"N{i}.", "x-new"), generated(f"P{i}.", "x-parent")) for i in range(64)]
    interface.pairs_record(pairs=more)
    firsts = set(Comparison.objects.filter(completion_a__model_name__startswith="x-").values_list("completion_a__model_name", flat=True))
    assert firsts == {"x-new", "x-parent"}  # fails with probability 2 * 2**-64


def test_empty_and_identical_texts_are_stored_counted_and_never_paired():
    prompt = PromptFactory()
    pairs = [
        CandidatePair(prompt.id, generated(""), generated("Something.")),
        CandidatePair(prompt.id, generated("Something."), generated(" \n\t ")),
        CandidatePair(prompt.id, generated("Same answer."), generated("Same answer.\n")),
        CandidatePair(prompt.id, generated("One answer."), generated("Another answer.")),
    ]
    summary = interface.pairs_record(pairs=pairs)

    assert summary.as_dict() == {"paired": 1, "completions": 8, "skipped_empty": 2, "skipped_identical": 1}
    assert Completion.objects.filter(prompt=prompt).count() == 8
    assert Completion.objects.filter(prompt=prompt, is_empty=True).count() == 2
    (comparison,) = Comparison.objects.filter(prompt=prompt)
    assert {comparison.completion_a.text, comparison.completion_b.text} == {"One answer.", "Another answer."}
    for c in Comparison.objects.all():
        assert not c.completion_a.is_empty and not c.completion_b.is_empty
        assert c.completion_a.text.strip() != c.completion_b.text.strip()


def test_a_missing_prompt_writes_nothing():
    prompt = PromptFactory()
    pairs = [
        CandidatePair(prompt.id, generated("A."), generated("B.")),
        CandidatePair(prompt.id + 1000, generated("C."), generated("D.")),
    ]
    with pytest.raises(ValueError, match=str(prompt.id + 1000)):
        interface.pairs_record(pairs=pairs)
    assert Completion.objects.count() == 0 and Comparison.objects.count() == 0


def test_a_row_the_database_refuses_writes_nothing():
    prompt = PromptFactory()
    pairs = [
        CandidatePair(prompt.id, generated("A."), generated("B.")),
        CandidatePair(prompt.id, generated("C."), generated("D.", model="")),  # model_name must be set
    ]
    with pytest.raises(IntegrityError):
        interface.pairs_record(pairs=pairs)
    assert Completion.objects.count() == 0 and Comparison.objects.count() == 0


def test_votes_required_below_one_is_refused():
    prompt = PromptFactory()
    with pytest.raises(ValueError):
        interface.pairs_record(pairs=[CandidatePair(prompt.id, generated("A."), generated("B."))], votes_required=0)
    assert Completion.objects.count() == 0


def test_no_pairs_records_nothing():
    assert interface.pairs_record(pairs=[]).as_dict() == {"paired": 0, "completions": 0, "skipped_empty": 0, "skipped_identical": 0}

"""feedback.interface for reward scoring: what to score, storing scores, and reordering the queue by uncertainty."""
import math

import pytest

from feedback import interface
from feedback.interface import ScoringItem, uncertainty_priority
from feedback.models import Comparison, ComparisonStatus, CompletionScore
from tests.factories import ComparisonFactory, CompletionFactory

pytestmark = pytest.mark.django_db

RM = "rm-v1"


def completion_ids(items: list[ScoringItem]) -> list[int]:
    return [item.completion_id for item in items]


# --- completions_to_score ---------------------------------------------------------------------


def test_open_scope_lists_both_completions_of_open_comparisons_with_prompt_and_text():
    open_one = ComparisonFactory(prompt__messages=[{"role": "user", "content": "Capital of France?"}])
    ComparisonFactory(status=ComparisonStatus.COMPLETE)
    ComparisonFactory(status=ComparisonStatus.RETIRED)
    CompletionFactory()  # in no comparison

    items = interface.completions_to_score(reward_model=RM)

    assert completion_ids(items) == sorted([open_one.completion_a_id, open_one.completion_b_id])
    first = items[0]
    assert first.prompt_messages == [{"role": "user", "content": "Capital of France?"}]
    assert first.text == open_one.completion_a.text


def test_all_scope_lists_completions_of_every_comparison_once():
    comparisons = [
        ComparisonFactory(),
        ComparisonFactory(status=ComparisonStatus.COMPLETE),
        ComparisonFactory(status=ComparisonStatus.RETIRED),
    ]
    # One completion in two comparisons is listed once.
    shared = comparisons[0].completion_a
    ComparisonFactory(prompt=shared.prompt, completion_a=shared, status=ComparisonStatus.COMPLETE)
    CompletionFactory()  # in no comparison

    ids = completion_ids(interface.completions_to_score(reward_model=RM, scope="all"))
    expected = {c.completion_a_id for c in Comparison.objects.all()} | {c.completion_b_id for c in Comparison.objects.all()}
    assert ids == sorted(expected)
    assert len(ids) == 7


def test_empty_texts_are_never_listed():
    comparison = ComparisonFactory(completion_b__text="  \n", completion_b__is_empty=True)
    assert completion_ids(interface.completions_to_score(reward_model=RM)) == [comparison.completion_a_id]


def test_only_unscored_leaves_out_what_this_reward_model_scored_but_not_what_others_scored():
    comparison = ComparisonFactory()
    CompletionScore.objects.create(completion=comparison.completion_a, reward_model=RM, score=0.5)
    CompletionScore.objects.create(completion=comparison.completion_b, reward_model="other-rm", score=0.1)

    assert completion_ids(interface.completions_to_score(reward_model=RM)) == [comparison.completion_b_id]
    assert completion_ids(interface.completions_to_score(reward_model=RM, only_unscored=False)) == [
        comparison.completion_a_id,
        comparison.completion_b_id,
    ]


def test_limit_takes_the_lowest_ids():
    comparisons = ComparisonFactory.create_batch(3)
    items = interface.completions_to_score(reward_model=RM, limit=3)
    assert completion_ids(items) == [comparisons[0].completion_a_id, comparisons[0].completion_b_id, comparisons[1].completion_a_id]
    assert interface.completions_to_score(reward_model=RM, limit=0) == []


@pytest.mark.parametrize(
    "kwargs", [{"scope": "closed"}, {"reward_model": ""}, {"reward_model": "  "}, {"limit": -1}]
)
def test_bad_arguments_are_refused(kwargs):
    with pytest.raises(ValueError):
        interface.completions_to_score(**{"reward_model": RM, **kwargs})


# --- scores_record ----------------------------------------------------------------------------


def test_scores_are_inserted_then_replaced_per_reward_model():
    comparison = ComparisonFactory()
    a, b = comparison.completion_a_id, comparison.completion_b_id

    assert interface.scores_record(reward_model=RM, scores=[(a, 1.5), (b, -0.25)]) == 2
    assert interface.scores_record(reward_model="rm-v2", scores=[(a, 3)]) == 1
    assert interface.scores_record(reward_model=RM, scores=[(a, 2.0)]) == 1

    stored = {(s.completion_id, s.reward_model): s.score for s in CompletionScore.objects.all()}
    assert stored == {(a, RM): 2.0, (b, RM): -0.25, (a, "rm-v2"): 3.0}


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), "1.0", None, True])
def test_a_bad_score_writes_nothing(bad):
    comparison = ComparisonFactory()
    with pytest.raises(ValueError, match=str(comparison.completion_b_id)):
        interface.scores_record(reward_model=RM, scores=[(comparison.completion_a_id, 1.0), (comparison.completion_b_id, bad)])
    assert CompletionScore.objects.count() == 0


def test_a_missing_or_repeated_completion_writes_nothing():
    comparison = ComparisonFactory()
    a = comparison.completion_a_id
    with pytest.raises(ValueError, match="999999"):
        interface.scores_record(reward_model=RM, scores=[(a, 1.0), (999_999, 2.0)])
    with pytest.raises(ValueError, match="twice"):
        interface.scores_record(reward_model=RM, scores=[(a, 1.0), (a, 2.0)])
    with pytest.raises(ValueError):
        interface.scores_record(reward_model="", scores=[(a, 1.0)])
    assert CompletionScore.objects.count() == 0
    assert interface.scores_record(reward_model=RM, scores=[]) == 0


# --- comparisons_prioritize_uncertain ---------------------------------------------------------


@pytest.mark.parametrize(
    "margin, expected",
    [(0.0, 100), (1e-9, 100), (-1e-9, 100), (1.0, 54), (-1.0, 54), (2.0, 24), (10.0, 0), (-1e300, 0)],
)
def test_uncertainty_priority_is_100_at_a_coin_flip_and_0_when_sure(margin, expected):
    assert uncertainty_priority(margin) == expected


def test_uncertainty_priority_matches_the_sigmoid_formula():
    for margin in (-7.3, -2.0, -0.4, 0.0, 0.3, 1.1, 4.9):
        sigmoid = 1 / (1 + math.exp(-margin))
        assert uncertainty_priority(margin) == round(100 * (1 - abs(2 * sigmoid - 1)))


def _scored(score_a: float | None, score_b: float | None, *, reward_model: str = RM, **kwargs) -> Comparison:
    comparison = ComparisonFactory(**kwargs)
    for completion, score in ((comparison.completion_a, score_a), (comparison.completion_b, score_b)):
        if score is not None:
            CompletionScore.objects.create(completion=completion, reward_model=reward_model, score=score)
    return comparison


def test_least_sure_pairs_get_the_highest_priority_and_are_served_first():
    sure = _scored(4.0, 1.0)  # margin 3
    unsure = _scored(0.1, 0.0)  # margin 0.1
    middling = _scored(-1.0, 0.0)  # margin -1
    only_a = _scored(1.0, None, priority=7)
    other_model = _scored(0.0, 0.0, reward_model="other-rm", priority=8)
    done = _scored(0.0, 0.0, status=ComparisonStatus.COMPLETE, priority=9)

    assert interface.comparisons_prioritize_uncertain(reward_model=RM, base_priority=10) == 3

    priorities = dict(Comparison.objects.values_list("id", "priority"))
    assert priorities[unsure.id] == 10 + 95
    assert priorities[middling.id] == 10 + 54
    assert priorities[sure.id] == 10 + 9
    assert (priorities[only_a.id], priorities[other_model.id], priorities[done.id]) == (7, 8, 9)
    queue = list(Comparison.objects.filter(status=ComparisonStatus.OPEN).order_by("-priority").values_list("id", flat=True))
    assert queue[:3] == [unsure.id, middling.id, sure.id]


def test_prioritizing_again_changes_nothing_and_counts_the_same():
    comparison = _scored(0.0, 0.0)
    assert interface.comparisons_prioritize_uncertain(reward_model=RM) == 1
    assert interface.comparisons_prioritize_uncertain(reward_model=RM) == 1
    comparison.refresh_from_db()
    assert comparison.priority == 100
    assert interface.comparisons_prioritize_uncertain(reward_model="nobody") == 0


@pytest.mark.parametrize("base", [1_000_000, -1_000_001, 1.5, True])
def test_a_base_priority_out_of_range_is_refused(base):
    _scored(0.0, 0.0, priority=3)
    with pytest.raises(ValueError):
        interface.comparisons_prioritize_uncertain(reward_model=RM, base_priority=base)
    assert Comparison.objects.get().priority == 3

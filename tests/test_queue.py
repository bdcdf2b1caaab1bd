"""The pure part of the queue: ordering and picking among candidates (no database)."""
import itertools
import random
from datetime import datetime, timedelta, timezone

import pytest

from feedback.queue import Candidate, candidate_pick, queue_sort_key, side_draw

T0 = datetime(2025, 1, 1, tzinfo=timezone.utc)


def cand(cid, priority=0, age_s=0, votes_required=1, slots_taken=0):
    """A candidate created ``age_s`` seconds after T0 (a larger age_s is newer)."""
    return Candidate(cid, priority, T0 + timedelta(seconds=age_s), votes_required, slots_taken)


def order(candidates):
    return [c.comparison_id for c in sorted(candidates, key=queue_sort_key)]


def test_higher_priority_comes_first_even_when_newer():
    old_low = cand(1, priority=0, age_s=0)
    new_high = cand(2, priority=5, age_s=100)
    assert order([old_low, new_high]) == [2, 1]


def test_same_priority_oldest_first():
    assert order([cand(1, age_s=30), cand(2, age_s=10), cand(3, age_s=20)]) == [2, 3, 1]


def test_same_priority_and_age_lowest_id_first():
    assert order([cand(9), cand(3), cand(5)]) == [3, 5, 9]


def test_negative_priority_comes_after_default():
    assert order([cand(1, priority=-1, age_s=0), cand(2, priority=0, age_s=50)]) == [2, 1]


def test_order_does_not_depend_on_input_order():
    candidates = [
        cand(1, priority=1, age_s=5),
        cand(2, priority=1, age_s=1),
        cand(3, priority=2, age_s=9),
        cand(4, priority=0, age_s=0),
        cand(5, priority=1, age_s=1),
    ]
    expected = [3, 2, 5, 1, 4]
    for permutation in itertools.permutations(candidates):
        assert order(list(permutation)) == expected
        assert candidate_pick(list(permutation)).comparison_id == 3


def test_pick_skips_candidates_without_a_free_slot():
    full = cand(1, priority=10, votes_required=2, slots_taken=2)
    over = cand(2, priority=9, votes_required=1, slots_taken=3)
    free = cand(3, priority=0, votes_required=3, slots_taken=2)
    assert candidate_pick([full, over, free]) == free


def test_pick_returns_none_when_nothing_is_free_or_nothing_given():
    assert candidate_pick([]) is None
    assert candidate_pick([cand(1, slots_taken=1), cand(2, votes_required=2, slots_taken=2)]) is None


@pytest.mark.parametrize(("votes_required", "slots_taken", "free"), [(1, 0, True), (1, 1, False), (3, 2, True), (3, 3, False)])
def test_has_free_slot(votes_required, slots_taken, free):
    assert cand(1, votes_required=votes_required, slots_taken=slots_taken).has_free_slot is free


def test_side_draw_gives_a_or_b_and_both_happen():
    rng = random.Random(1234)
    draws = [side_draw(rng) for _ in range(400)]
    assert set(draws) == {"a", "b"}
    # Fair coin: with 400 draws, fewer than 120 of either side has probability < 1e-15.
    assert 120 < draws.count("a") < 280


def test_side_draw_is_reproducible_with_a_seeded_rng():
    one, two = random.Random(7), random.Random(7)
    assert [side_draw(one) for _ in range(50)] == [side_draw(two) for _ in range(50)]


def test_side_draw_without_an_rng_uses_the_module_random():
    assert {side_draw() for _ in range(200)} == {"a", "b"}

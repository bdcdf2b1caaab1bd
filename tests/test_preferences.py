"""feedback.preferences: votes -> TRL preference rows (no database)."""
from __future__ import annotations

import hashlib
import itertools
import json
import random
from dataclasses import replace

import pytest

from feedback.preferences import (
    COUNT_KEYS,
    AggregationRules,
    RulesError,
    VoteRecord,
    build_preference_dataset,
    counts_summary,
    hash_files,
    majority,
    row_line,
    rows_hash,
)

_vote_ids = itertools.count(1)


def prompt_of(prompt_id: int) -> list[dict[str, str]]:
    return [{"role": "user", "content": f"Question {prompt_id}?"}]


def key_of(prompt_id: int) -> str:
    return hashlib.sha256(json.dumps(prompt_of(prompt_id)).encode()).hexdigest()


def vote(
    comparison_id: int,
    choice: str,
    strength: str = "",
    *,
    annotator: int | None = None,
    prompt_id: int | None = None,
    text_a: str | None = None,
    text_b: str | None = None,
    split: str = "train",
    is_gold: bool = False,
    source: str = "annotator",
    vote_id: int | None = None,
) -> VoteRecord:
    """A vote on comparison ``comparison_id`` (prompt ``prompt_id``, default the same number)."""
    vote_id = vote_id if vote_id is not None else next(_vote_ids)
    prompt_id = prompt_id if prompt_id is not None else comparison_id
    return VoteRecord(
        vote_id=vote_id,
        comparison_id=comparison_id,
        prompt_id=prompt_id,
        prompt_messages=prompt_of(prompt_id),
        text_a=text_a if text_a is not None else f"A answer to {comparison_id}",
        text_b=text_b if text_b is not None else f"B answer to {comparison_id}",
        choice=choice,
        strength=strength,
        annotator_id=annotator if annotator is not None else vote_id,
        is_gold=is_gold,
        split=split,
        prompt_key=key_of(prompt_id),
        source=source,
    )


def build(votes, **rules):
    return build_preference_dataset(votes, AggregationRules(**rules))


def only_row(dataset) -> dict:
    assert len(dataset.train) == 1 and dataset.eval == [], (dataset.train, dataset.eval)
    return dataset.train[0]


def assert_counts_add_up(dataset) -> None:
    counts = dataset.counts
    assert set(counts) == set(COUNT_KEYS)
    left_out_keys = ("ties", "split_votes", "both_bad", "identical", "too_few_votes", "low_agreement")
    left_out = sum(counts[k] for k in left_out_keys)
    assert counts["comparisons"] == counts["pairs_train"] + counts["pairs_eval"] + left_out
    assert counts["pairs_train"] == len(dataset.train) and counts["pairs_eval"] == len(dataset.eval)


# --- aggregation --------------------------------------------------------------------------------


def test_unanimous_vote_gives_the_trl_conversational_row():
    dataset = build([vote(1, "b", "strong"), vote(1, "b", "strong")])
    assert only_row(dataset) == {
        "prompt": [{"role": "user", "content": "Question 1?"}],
        "chosen": [{"role": "assistant", "content": "B answer to 1"}],
        "rejected": [{"role": "assistant", "content": "A answer to 1"}],
        "margin": 1.0,
        "strength": "strong",
        "comparison_id": 1,
    }
    assert_counts_add_up(dataset)


def test_two_to_one_majority_wins_and_the_dissenter_is_still_a_used_vote():
    votes = [vote(1, "a", "clear"), vote(1, "a", "clear"), vote(1, "b", "strong")]
    dataset = build(votes)
    row = only_row(dataset)
    assert row["chosen"][0]["content"] == "A answer to 1"
    assert row["margin"] == pytest.approx(2 / 3)  # the dissenting "strong" does not raise it
    assert dataset.vote_ids == sorted(v.vote_id for v in votes)
    assert dataset.annotator_ids == sorted(v.annotator_id for v in votes)


@pytest.mark.parametrize(
    "choices",
    [("a", "b"), ("a", "a", "b", "b", "tie"), ("a", "tie"), ("both_bad", "b")],
    ids=["1-1", "2-2-1", "a-tie", "both_bad-b"],
)
def test_no_strict_majority_is_a_split_vote_whatever_the_order(choices):
    for order in itertools.permutations(choices):
        dataset = build([vote(1, c) for c in order])
        assert dataset.train == [] and dataset.counts["split_votes"] == 1
        assert dataset.vote_ids == []
        assert_counts_add_up(dataset)


def test_majority_helper():
    assert majority(["a", "a", "b"]) == "a"
    assert majority(["b", "a"]) is None
    assert majority(["tie", "tie", "a"]) == "tie"


def test_a_majority_tie_is_left_out_and_counted():
    dataset = build([vote(1, "tie"), vote(1, "tie"), vote(1, "a", "strong"), vote(2, "a")])
    assert [r["comparison_id"] for r in dataset.train] == [2]
    assert dataset.counts["ties"] == 1
    assert_counts_add_up(dataset)


def test_both_bad_is_left_out_and_counted():
    dataset = build([vote(1, "both_bad"), vote(2, "both_bad"), vote(2, "both_bad"), vote(2, "a")])
    assert dataset.train == [] and dataset.counts["both_bad"] == 2
    assert_counts_add_up(dataset)


# --- margins -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("strength", "margin"), [("strong", 1.0), ("clear", 2 / 3), ("slight", 1 / 3), ("", 0.0)]
)
def test_margin_per_strength_follows_llama2_small_margins(strength, margin):
    row = only_row(build([vote(1, "a", strength)]))
    assert row["margin"] == margin and isinstance(row["margin"], float)
    assert row["strength"] == strength


def test_margin_is_the_mean_over_votes_agreeing_with_the_winner():
    votes = [vote(1, "a", "strong"), vote(1, "a", "slight"), vote(1, "a", ""), vote(1, "b", "strong")]
    row = only_row(build(votes))
    assert row["margin"] == pytest.approx((1.0 + 1 / 3 + 0.0) / 3)


def test_row_strength_is_the_most_common_given_one_and_ties_go_to_the_weaker():
    two_clear = [vote(1, "a", "clear"), vote(1, "a", "clear"), vote(1, "a", "strong")]
    assert only_row(build(two_clear))["strength"] == "clear"
    assert only_row(build([vote(2, "b", "strong"), vote(2, "b", "slight")]))["strength"] == "slight"
    assert only_row(build([vote(3, "b", ""), vote(3, "b", "strong")]))["strength"] == "strong"


def test_without_margins_no_row_has_the_key():
    dataset = build([vote(1, "a", "strong"), vote(2, "b", "slight"), vote(3, "a")], include_margin=False)
    assert len(dataset.train) == 3
    assert all("margin" not in row for row in dataset.train)
    assert all("strength" in row and "comparison_id" in row for row in dataset.train)


def test_with_margins_every_row_has_a_float_margin():
    dataset = build([vote(1, "a", "strong"), vote(2, "b"), vote(3, "a", "clear", split="eval")])
    assert all(isinstance(row["margin"], float) for row in dataset.train + dataset.eval)


# --- identical texts ----------------------------------------------------------------------------


def test_identical_texts_after_strip_are_dropped_and_counted():
    dataset = build([vote(1, "a", text_a="Same answer.", text_b="  Same answer.\n"), vote(2, "a")])
    assert [r["comparison_id"] for r in dataset.train] == [2]
    assert dataset.counts["identical"] == 1
    assert_counts_add_up(dataset)


# --- exclusions -----------------------------------------------------------------------------------


def test_excluded_annotators_votes_are_not_counted():
    votes = [vote(1, "a", annotator=7), vote(1, "b", annotator=8), vote(1, "b", annotator=9), vote(2, "a", annotator=8)]
    dataset = build(votes, exclude_annotators=(8, 9))
    row = only_row(dataset)
    assert row["chosen"][0]["content"] == "A answer to 1"  # 1-0 once 8 and 9 are out
    assert dataset.counts["votes_excluded_annotator"] == 3
    assert dataset.counts["comparisons"] == 1  # comparison 2 has no counted vote left
    assert dataset.annotator_ids == [7]


def test_gold_comparisons_in_by_default_and_out_on_request():
    votes = [vote(1, "a", is_gold=True), vote(1, "a", is_gold=True), vote(2, "b")]
    assert [r["comparison_id"] for r in build(votes).train] == [1, 2]
    dataset = build(votes, include_gold=False)
    assert [r["comparison_id"] for r in dataset.train] == [2]
    assert dataset.counts["votes_excluded_gold"] == 2
    assert dataset.vote_ids == [votes[2].vote_id]


def test_sources_filter_votes_and_each_left_out_vote_is_counted_once():
    votes = [
        vote(1, "a", source="hh-rlhf"),
        vote(2, "b", source="annotator"),
        vote(3, "b", source="annotator", is_gold=True),
    ]
    dataset = build(votes, sources=("hh-rlhf",), include_gold=False)
    assert [r["comparison_id"] for r in dataset.train] == [1]
    assert dataset.counts["votes_excluded_source"] == 1
    assert dataset.counts["votes_excluded_gold"] == 1


def test_min_votes_leaves_out_thin_comparisons():
    votes = [vote(1, "a"), vote(1, "a"), vote(2, "b")]
    dataset = build(votes, min_votes=2)
    assert [r["comparison_id"] for r in dataset.train] == [1]
    assert dataset.counts["too_few_votes"] == 1
    assert_counts_add_up(dataset)


def test_min_votes_counts_only_counted_votes():
    votes = [vote(1, "a", annotator=1), vote(1, "a", annotator=2)]
    assert build(votes, min_votes=2, exclude_annotators=(2,)).counts["too_few_votes"] == 1


def test_min_agreement_leaves_out_weak_majorities():
    votes = [vote(1, "a"), vote(1, "a"), vote(1, "b"), vote(2, "b"), vote(2, "b"), vote(2, "b")]
    dataset = build(votes, min_agreement=0.7)
    assert [r["comparison_id"] for r in dataset.train] == [2]
    assert dataset.counts["low_agreement"] == 1
    # 2 of 3 is exactly enough at 2/3.
    assert len(build(votes, min_agreement=2 / 3).train) == 2
    assert_counts_add_up(dataset)


# --- splits ---------------------------------------------------------------------------------------


def prompt_keys(rows) -> set[str]:
    return {json.dumps(row["prompt"], sort_keys=True) for row in rows}


def many_votes(n_prompts: int = 60, comparisons_per_prompt: int = 3) -> list[VoteRecord]:
    votes = []
    for prompt_id in range(n_prompts):
        for k in range(comparisons_per_prompt):
            comparison_id = prompt_id * 10 + k
            split = "eval" if prompt_id % 4 == 0 else "train"
            votes.append(vote(comparison_id, "ab"[k % 2], "clear", prompt_id=prompt_id, split=split))
            votes.append(vote(comparison_id, "ab"[k % 2], "slight", prompt_id=prompt_id, split=split))
    return votes


def test_prompt_split_uses_the_stored_split_and_no_prompt_is_in_both():
    dataset = build(many_votes(), split_by="prompt")
    assert len(dataset.eval) == 15 * 3 and len(dataset.train) == 45 * 3
    assert prompt_keys(dataset.train).isdisjoint(prompt_keys(dataset.eval))
    assert all(int(row["prompt"][0]["content"].split()[1][:-1]) % 4 == 0 for row in dataset.eval)


def test_prompt_split_keeps_copies_of_an_eval_prompt_out_of_train():
    # Two prompt rows with the same messages, one stored as train and one as eval: both go to eval.
    votes = [vote(1, "a", prompt_id=5, split="train"), vote(2, "b", prompt_id=5, split="eval"), vote(3, "a")]
    dataset = build(votes)
    assert [r["comparison_id"] for r in dataset.eval] == [1, 2]
    assert [r["comparison_id"] for r in dataset.train] == [3]


def test_hash_split_is_prompt_disjoint_near_the_fraction_and_moved_by_the_salt():
    votes = many_votes(n_prompts=400, comparisons_per_prompt=2)
    dataset = build(votes, split_by="hash", eval_fraction=0.25)
    assert prompt_keys(dataset.train).isdisjoint(prompt_keys(dataset.eval))
    eval_prompts = len(prompt_keys(dataset.eval))
    assert 60 <= eval_prompts <= 140  # 100 expected of 400
    # The stored split field plays no part in hash mode.
    flipped = [replace(v, split="train") for v in votes]
    assert build(flipped, split_by="hash", eval_fraction=0.25).content_hash == dataset.content_hash
    salted = build(votes, split_by="hash", eval_fraction=0.25, split_salt="another draw")
    assert prompt_keys(salted.eval) != prompt_keys(dataset.eval)
    assert prompt_keys(salted.train).isdisjoint(prompt_keys(salted.eval))


def test_hash_split_follows_the_documented_formula():
    votes = many_votes(n_prompts=50, comparisons_per_prompt=1)
    dataset = build(votes, split_by="hash", eval_fraction=0.3, split_salt="s")
    for row in dataset.eval + dataset.train:
        key = hashlib.sha256(json.dumps(row["prompt"]).encode()).hexdigest()
        draw = int(hashlib.sha256(("s" + key).encode()).hexdigest()[:8], 16) / 2**32
        assert (row in dataset.eval) == (draw < 0.3)


def test_hash_split_with_fraction_zero_or_one():
    votes = many_votes(n_prompts=20, comparisons_per_prompt=1)
    assert build(votes, split_by="hash", eval_fraction=0.0).eval == []
    assert build(votes, split_by="hash", eval_fraction=1.0).train == []


# --- determinism and hash -------------------------------------------------------------------------


def test_shuffled_input_gives_the_same_rows_and_hash():
    votes = many_votes() + [vote(900, "a", "strong"), vote(900, "a", "slight"), vote(900, "a", "clear")]
    first = build(votes)
    for seed in range(5):
        shuffled = list(votes)
        random.Random(seed).shuffle(shuffled)
        again = build(iter(shuffled))
        assert again.content_hash == first.content_hash
        assert again.train == first.train and again.vote_ids == first.vote_ids
    assert [r["comparison_id"] for r in first.train] == sorted(r["comparison_id"] for r in first.train)


def test_hash_changes_when_a_vote_changes():
    votes = [vote(1, "a", "clear"), vote(2, "b", "clear")]
    base = build(votes).content_hash
    assert build([votes[0], replace(votes[1], strength="strong")]).content_hash != base
    assert build([votes[0], replace(votes[1], choice="a")]).content_hash != base
    assert build(votes, include_margin=False).content_hash != base


def test_hash_tells_train_from_eval_and_matches_the_file_bytes():
    row = only_row(build([vote(1, "a")]))
    assert rows_hash([row], []) != rows_hash([], [row])
    line = row_line(row).encode()
    assert hash_files([line[:5], line[5:]], []) == rows_hash([row], [])
    assert row_line(row).endswith("\n") and row_line(row).count("\n") == 1


def test_non_ascii_text_is_kept_as_text_in_the_canonical_line():
    row = only_row(build([vote(1, "b", text_b="Grüße, 世界")]))
    assert "Grüße, 世界" in row_line(row)


def test_a_vote_id_given_twice_is_an_error():
    with pytest.raises(ValueError, match="vote 5 is given twice"):
        build([vote(1, "a", vote_id=5), vote(2, "a", vote_id=5)])


def test_counts_summary_lists_the_non_zero_counts():
    dataset = build([vote(1, "a"), vote(2, "tie")])
    assert counts_summary(dataset.counts) == "votes_seen=2, comparisons=2, pairs_train=1, ties=1"
    assert counts_summary(dict.fromkeys(COUNT_KEYS, 0)) == "no votes"


# --- rules ----------------------------------------------------------------------------------------


def test_rules_from_dict_defaults_and_round_trip():
    assert AggregationRules.from_dict({}) == AggregationRules()
    rules = AggregationRules.from_dict(
        {"exclude_annotators": [3, 1, 3], "sources": ["hh-rlhf"], "min_agreement": 1, "split_by": "hash"}
    )
    assert rules.exclude_annotators == (1, 3) and rules.min_agreement == 1.0
    assert AggregationRules.from_dict(rules.as_dict()) == rules
    assert json.loads(json.dumps(rules.as_dict())) == rules.as_dict()


def test_rules_errors_name_every_bad_field_at_once():
    with pytest.raises(RulesError) as caught:
        AggregationRules.from_dict(
            {
                "min_votes": 0,
                "min_agreement": 1.5,
                "include_margin": "yes",
                "exclude_annotators": ["bob"],
                "split_by": "random",
                "eval_fraction": float("nan"),
                "sources": [""],
                "split_salt": 3,
                "include_ties": True,
            }
        )
    errors = caught.value.errors
    assert errors == {
        "min_votes": "must be a whole number of at least 1",
        "min_agreement": "must be a number from 0 to 1",
        "include_margin": "must be true or false",
        "exclude_annotators": "must be a list of annotator ids (integers)",
        "split_by": "must be one of prompt, hash",
        "eval_fraction": "must be a number from 0 to 1",
        "sources": "must be a list of non-empty source names",
        "split_salt": "must be a string of at most 200 characters",
        "include_ties": errors["include_ties"],
    }
    assert errors["include_ties"].startswith("unknown rule; expected one of include_margin,")
    assert isinstance(caught.value, ValueError) and "min_votes: must be" in str(caught.value)


@pytest.mark.parametrize("bad", [None, [], "min_votes=2"])
def test_rules_must_be_an_object(bad):
    with pytest.raises(RulesError) as caught:
        AggregationRules.from_dict(bad)
    assert list(caught.value.errors) == ["rules"]


def test_booleans_are_not_numbers_in_rules():
    with pytest.raises(RulesError) as caught:
        AggregationRules.from_dict({"min_votes": True, "exclude_annotators": [True], "min_agreement": 10**400})
    assert set(caught.value.errors) == {"min_votes", "exclude_annotators", "min_agreement"}

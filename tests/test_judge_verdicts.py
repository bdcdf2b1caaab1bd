"""From judge answers to verdicts: text parsing, order swap, principle majority, reward tie band."""
import pytest

from training.judges.verdicts import label_to_choice, majority, orders_combine, score_label, verdict_parse

WITH_TIE, NO_TIE = ("A", "B", "tie"), ("A", "B")


@pytest.mark.parametrize("text, expected", [
    ("A", "A"), (" **B**.", "B"), ("Tie", "tie"), ("Verdict: A", "A"),
    ("Response B is clearer.\n\nFinal answer: A", "A"),  # the last verdict line wins over a mention
    ("[[B]]", "B"), ("[[C]]", "tie"), ("Response A is better.", "A"),
    ("The winner is B.", "B"),
])
def test_text_answers_parse(text, expected):
    assert verdict_parse(text, WITH_TIE) == expected


@pytest.mark.parametrize("text", ["", "I cannot decide", "the answer is a tricky one", "Response A and Response B are fine", "a"])
def test_unclear_answers_give_no_verdict(text):
    assert verdict_parse(text, WITH_TIE) is None


def test_tie_is_no_verdict_when_the_template_has_no_tie():
    assert verdict_parse("tie", NO_TIE) is None


def test_labels_map_back_to_the_comparisons_sides():
    assert [label_to_choice(x, "ab") for x in ("A", "B", "tie", None)] == ["a", "b", "tie", None]
    assert [label_to_choice(x, "ba") for x in ("A", "B", "tie", None)] == ["b", "a", "tie", None]


def test_an_answer_that_flips_with_the_order_is_a_tie_and_inconsistent():
    always_a = (label_to_choice("A", "ab"), label_to_choice("A", "ba"))
    assert orders_combine(*always_a) == ("tie", True)
    assert orders_combine("a", "a") == ("a", False)
    assert orders_combine("tie", "tie") == ("tie", False)
    assert orders_combine("a", None) == (None, False)


def test_principles_aggregate_by_majority_with_ties_as_tie():
    assert majority(["a", "a", "b"]) == "a"
    assert majority(["a", "b", "tie"]) == "tie"
    assert majority(["b", None, "tie"]) == "b"
    assert majority([None, None]) is None


def test_reward_scores_give_a_label_with_a_tie_band():
    assert score_label(1.0, 0.5, 0.1) == "A"
    assert score_label(0.5, 1.0, 0.1) == "B"
    assert score_label(0.55, 0.5, 0.1) == "tie"

"""A job's summary as its page shows it: only its kind's fields, each formatted (pure code, no database)."""
import math

import pytest

from training.runners.reporting import logging_steps_for
from training.summary_rows import object_items, summary_rows, value_text


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (None, "—"), (True, "yes"), (False, "no"), (7, "7"), (12345, "12,345"), (1234567, "1,234,567"),
        (0.5945945945945946, "0.5946"), (12.5, "12.5"), (3.0, "3"), (5e-05, "5e-05"), (0.693147, "0.6931"),
        (123.456789, "123.5"), (1234.56, "1235"), (4096.0, "4,096"), (98765.4321, "98,765"), (math.nan, "nan"),
        ("polite-rm", "polite-rm"), ([1, 2.123456], "1, 2.123"), ({"train": 3, "eval": 0}, "train: 3, eval: 0"),
    ],
)
def test_values_are_formatted_for_reading(value, text):
    assert value_text(value) == text


def test_a_reward_run_shows_its_own_fields_formatted_and_no_generation_rows():
    summary = {
        "train_rows": 12345, "eval_rows": 0, "filtered_too_long": {"train": 3, "eval": 37}, "margin_used": True,
        "steps": 50, "epochs": 1.0, "eval_accuracy": 0.5945945945945946, "eval_accuracy_by_strength": {},
        "eval_accuracy_all": 0.5945945945945946, "eval_rows_all": 37, "train_loss": 0.6931471805599453,
        "samples_per_s": 41.26789, "checkpoint": "smol-rm-3", "cancelled": False, "seconds": 1234.56789,
        "eval_accuracy_note": "all 37 held-out pairs are longer than max_length 128", "warnings": ["all 37 ..."],
        "logging_steps": 5,
    }
    rows = {row.key: row for row in summary_rows("reward", summary)}
    assert list(rows) == [
        "train_rows", "eval_rows", "filtered_too_long", "margin_used", "steps", "epochs", "train_loss",
        "eval_accuracy", "eval_accuracy_by_strength", "eval_accuracy_all", "eval_rows_all", "samples_per_s",
        "checkpoint", "seconds", "logging_steps",  # an unknown key comes last, under its own name
    ]
    assert rows["train_rows"].text == "12,345" and rows["train_rows"].label == "training pairs"
    assert rows["filtered_too_long"].items == [("train", "3"), ("eval", "37")] and rows["filtered_too_long"].text == ""
    assert rows["eval_accuracy"].text == "0.5946" and rows["eval_accuracy"].note.startswith("all 37 held-out pairs")
    assert rows["eval_accuracy_by_strength"].text == "—"
    assert (rows["train_loss"].text, rows["samples_per_s"].text, rows["seconds"].text) == ("0.6931", "41.27", "1235")
    assert rows["margin_used"].text == "yes" and rows["logging_steps"].label == "logging steps"
    assert not {"paired", "completions", "scored", "cancelled", "warnings", "eval_accuracy_note"} & set(rows)


def test_pairwise_runs_show_fitting_counts_and_ties_in_a_fixed_order():
    summary = {
        "eval_tie_rate": 0.125, "filtered_identical": {"eval": 0, "train": 2}, "truncated_response": {"train": 1, "eval": 0},
        "truncated_prompt": {"train": 5, "eval": 1}, "eval_accuracy": 0.5, "train_rows": 18, "warnings": ["x"],
    }
    rows = summary_rows("reward", summary)
    assert [row.key for row in rows] == [
        "train_rows", "truncated_prompt", "truncated_response", "filtered_identical", "eval_accuracy", "eval_tie_rate",
    ]
    assert rows[3].label == "pairs left out: chosen and rejected identical after cutting"
    assert rows[3].items == [("train", "2"), ("eval", "0")] and rows[5].text == "0.125"
    dpo = summary_rows("dpo", {"truncated_prompt": {"train": 5, "eval": 1}, "eval_reward_accuracy": 0.75})
    assert [(row.key, row.label) for row in dpo] == [
        ("truncated_prompt", "pairs cut: the prompt's start"),
        ("eval_reward_accuracy", "held-out implicit reward accuracy (chosen higher)"),
    ]


def test_nested_objects_read_as_key_value_lists():
    rows = summary_rows("dpo", {"truncated": {"train": 1200, "eval": {"long": 2, "short": 0.25}}})
    assert rows[0].label == "pairs cut to max length"
    assert rows[0].items == [("train", "1,200"), ("eval / long", "2"), ("eval / short", "0.25")]


@pytest.mark.parametrize(("logging_steps", "max_steps", "used"), [
    (5, 100, 5),     # 20 points: the user's setting stands
    (2, 12, 2),
    (50, 100, 50),   # exactly two points
    (50, 20, 2),     # would log nothing: every max_steps // 10 steps
    (5, 2, 1),       # logging_steps > total steps: every step
    (10, 15, 1),     # one point only: every step (15 // 10 = 1)
    (500, 1000, 500),
    (800, 1000, 100),
])
def test_logging_is_often_enough_for_a_curve(logging_steps, max_steps, used):
    assert logging_steps_for(logging_steps, max_steps) == used


def test_object_keys_come_in_a_fixed_order_whatever_order_the_database_kept():
    # PostgreSQL's jsonb gives {"eval": .., "train": ..} back for {"train": .., "eval": ..}.
    assert object_items({"eval": 2, "train": 3}) == [("train", "3"), ("eval", "2")]
    assert [k for k, _ in object_items({"strong": 1.0, "slight": 0.5, "clear": 0.75})] == ["slight", "clear", "strong"]
    assert [k for k, _ in object_items({"zeta": 1, "alpha": 2, "eval": 3})] == ["eval", "alpha", "zeta"]

"""GenerationConfig: what a generation job may be asked to do, checked before it is queued (no database)."""
import json
import math

import pytest

from training.config import MAX_NEW_TOKENS_LIMIT, ConfigError, GenerationConfig


def errors_of(data) -> dict[str, str]:
    with pytest.raises(ConfigError) as caught:
        GenerationConfig.from_dict(data)
    return caught.value.errors


def test_minimal_config_takes_the_documented_defaults():
    config = GenerationConfig.from_dict({"checkpoints": ["policy-a"]})
    assert config.strategy == "two_samples"
    assert (config.max_new_tokens, config.temperature, config.top_p, config.batch_size) == (128, 0.8, 0.95, 8)
    assert config.prompt_ids is None and config.limit is None


def test_a_config_survives_the_json_round_trip_of_the_job_row():
    data = {
        "checkpoints": ["policy-a", "policy-b"], "strategy": "head_to_head", "prompt_ids": [3, 1], "tag": "math",
        "split": "eval", "max_open_comparisons": 2, "limit": 10, "max_new_tokens": 64, "temperature": 0,
        "top_p": 1, "batch_size": 4, "seed": 7, "votes_required": 3, "priority": -5, "campaign_id": 4, "extra": {"note": "x"},
        "backend": "server", "on_failure": "skip",
    }
    config = GenerationConfig.from_dict(data)
    stored = json.loads(json.dumps(config.as_dict()))
    assert stored == data
    assert GenerationConfig.from_dict(stored) == config


@pytest.mark.parametrize(
    "field, value",
    [
        ("checkpoints", "policy-a"),
        ("checkpoints", []),
        ("checkpoints", [""]),
        ("checkpoints", [3]),
        ("checkpoints", ["policy-a", "policy-b"]),  # two_samples takes one
        ("strategy", "best_of_n"),
        ("prompt_ids", []),
        ("prompt_ids", [0]),
        ("prompt_ids", ["1"]),
        ("prompt_ids", [True]),
        ("prompt_ids", 5),
        ("tag", 5),
        ("split", "test"),
        ("max_open_comparisons", 0),
        ("max_open_comparisons", 1.5),
        ("limit", 0),
        ("limit", -1),
        ("max_new_tokens", 0),
        ("max_new_tokens", 100_000),
        ("max_new_tokens", "64"),
        ("max_new_tokens", 64.0),
        ("max_new_tokens", True),
        ("temperature", -0.1),
        ("temperature", 2.5),
        ("temperature", "hot"),
        ("temperature", math.nan),
        ("top_p", 0),
        ("top_p", 1.5),
        ("top_p", math.inf),
        ("batch_size", 0),
        ("batch_size", 257),
        ("seed", -1),
        ("seed", 1.5),
        ("votes_required", 0),
        ("votes_required", 101),
        ("priority", 10**7),
        ("extra", ["not", "an", "object"]),
    ],
)
def test_each_bad_field_is_named_alone(field, value):
    errors = errors_of({"checkpoints": ["policy-a"], field: value})
    assert set(errors) == {field}
    assert errors[field].strip()


def test_every_problem_is_reported_at_once():
    errors = errors_of({"checkpoints": ["policy-a"], "max_new_tokens": 0, "top_p": 2, "batch_size": 0, "colour": "red"})
    assert set(errors) == {"max_new_tokens", "top_p", "batch_size", "colour"}


def test_unknown_settings_are_named():
    errors = errors_of({"checkpoints": ["policy-a"], "temprature": 0.5, "num_beams": 4})
    assert errors == {"num_beams": "unknown setting", "temprature": "unknown setting"}


def test_missing_checkpoints_is_named_with_the_other_problems():
    errors = errors_of({"max_new_tokens": 0})
    assert set(errors) == {"checkpoints", "max_new_tokens"}
    assert "required" in errors["checkpoints"]


def test_a_config_must_be_an_object():
    assert set(errors_of(["policy-a"])) == {"config"}


def test_two_samples_with_temperature_zero_is_refused():
    errors = errors_of({"checkpoints": ["policy-a"], "strategy": "two_samples", "temperature": 0})
    assert set(errors) == {"temperature"}
    assert "two_samples" in errors["temperature"]


def test_head_to_head_may_be_greedy():
    config = GenerationConfig.from_dict({"checkpoints": ["a", "b"], "strategy": "head_to_head", "temperature": 0})
    assert config.temperature == 0


@pytest.mark.parametrize("names", [["policy-a"], ["policy-a", "policy-a"], ["a", "b", "c"]])
def test_head_to_head_needs_two_different_checkpoints(names):
    errors = errors_of({"checkpoints": names, "strategy": "head_to_head"})
    assert set(errors) == {"checkpoints"}
    assert "two different" in errors["checkpoints"]


@pytest.mark.parametrize("tokens", [0, 100_000])
def test_max_new_tokens_out_of_range_names_the_limit(tokens):
    errors = errors_of({"checkpoints": ["policy-a"], "max_new_tokens": tokens})
    assert set(errors) == {"max_new_tokens"}
    assert str(MAX_NEW_TOKENS_LIMIT) in errors["max_new_tokens"]


@pytest.mark.parametrize("tokens", [1, MAX_NEW_TOKENS_LIMIT])
def test_max_new_tokens_bounds_are_allowed(tokens):
    assert GenerationConfig.from_dict({"checkpoints": ["policy-a"], "max_new_tokens": tokens}).max_new_tokens == tokens


def test_the_error_text_names_each_field():
    with pytest.raises(ConfigError) as caught:
        GenerationConfig.from_dict({"checkpoints": ["policy-a"], "seed": -1, "limit": 0})
    assert "seed:" in str(caught.value) and "limit:" in str(caught.value)

"""RewardConfig: the learning-rate schedule and memory settings are validated like every other field."""
import pytest

from training.config import ConfigError, RewardConfig


def test_the_defaults_use_micro_batches_of_four_pairs_a_cosine_schedule_and_160_tokens():
    config = RewardConfig.from_dict({"base": "smol"})
    assert (config.per_device_train_batch_size * config.gradient_accumulation_steps, config.max_length) == (8, 160)
    assert (config.lr_scheduler_type, config.warmup_ratio, config.activation_checkpointing) == ("cosine", 0.05, False)


@pytest.mark.parametrize(("field", "value", "message"), [
    ("lr_scheduler_type", "exponential", "must be one of linear, cosine, constant, constant_with_warmup"),
    ("warmup_ratio", 1.0, "must be a number in [0, 1)"),
    ("warmup_ratio", "0.1", "must be a number in [0, 1)"),
    ("activation_checkpointing", "yes", "must be true or false"),
])
def test_a_bad_schedule_or_memory_setting_is_named(field, value, message):
    with pytest.raises(ConfigError) as error:
        RewardConfig.from_dict({"base": "smol", field: value})
    assert error.value.errors == {field: message}

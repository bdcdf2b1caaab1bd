"""Bad input found by a QA attack, kept as regression tests: loop settings that are saved without complaint but make every round fail (often only
after the reward model, or the reward model and the policy, have been trained), and `manage.py loop`
writing data before it validates its settings. Each docstring says what used to happen."""
from __future__ import annotations

import io
import json

import pytest
from django.core.exceptions import ValidationError
from django.core.management import CommandError, call_command

from feedback.models import Comparison
from training import loop
from training.models import Checkpoint, LoopSettings

pytestmark = pytest.mark.django_db


@pytest.fixture
def smol(settings, tmp_path):
    settings.ARBITER_DATA_DIR = tmp_path
    return Checkpoint.objects.create(name="smol", hub_id="x/smol")


def save(**overrides):
    values = {"enabled": False, "votes_per_round": 10, "method": "dpo", "policy": "smol", **overrides}
    return loop.loop_settings_update(**values)


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        # checked only when a round starts (a vote-triggered start just logs a warning, every vote)
        ({"rules": {"eval_fraction": 2, "split_by": "x", "exclude_annotators": "3", "bogus": 1}}, "rules"),
        # checked only after the reward AND policy runs succeeded: the round then fails
        ({"generation_config": {"limit": "abc", "temperature": 99, "split": "nope", "batch_size": 0}}, "generation_config"),
        # DPO gets snapshot_id from the loop, so rules conflict: the round fails after the reward run
        ({"policy_config": {"rules": {"split_by": "hash"}}}, "policy_config"),
        # the loop sets the snapshot each round; this pins an old one (or an SFT one) instead
        ({"reward_config": {"snapshot_id": 1}}, "reward_config"),
        # a fixed name works for one round only; round 2 trains and then cannot register
        ({"reward_config": {"output_name": "loop-rm"}}, "reward_config"),
        ({"policy_config": {"output_name": "loop-policy"}}, "policy_config"),
        # the next round would start from an adapter, which DPO/RL refuse after the reward run
        ({"policy_config": {"save_adapter": True}}, "policy_config"),
    ],
)
def test_attack_loop_settings_that_break_every_round_are_refused_when_saved(smol, overrides, field):
    with pytest.raises(ValidationError) as caught:
        save(**overrides)
    assert any(key.split(".")[0] == field for key in caught.value.message_dict)
    stored = LoopSettings.objects.first()
    assert stored is None or getattr(stored, field) == {}


def test_attack_loop_policy_that_is_an_adapter_is_refused(smol):
    """Saved as the loop's policy; the round's DPO/RL step refuses an adapter base after the reward run."""
    Checkpoint.objects.create(name="smol-lora", hub_id="x/lora", parent=smol, is_adapter=True)
    with pytest.raises(ValidationError):
        save(policy="smol-lora")


def test_attack_loop_command_validates_settings_before_importing_bootstrap_data(smol, tmp_path):
    """`loop --bootstrap-hh-rlhf F --train beta=-1` imports F, then exits with the settings error."""
    path = tmp_path / "pairs.jsonl"
    path.write_text(json.dumps({
        "chosen": "\n\nHuman: Name a prime.\n\nAssistant: 7",
        "rejected": "\n\nHuman: Name a prime.\n\nAssistant: 9",
    }) + "\n")
    with pytest.raises(CommandError, match="beta"):
        call_command("loop", "--rounds", "1", "--policy", "smol", "--bootstrap-hh-rlhf", str(path), "--train", "beta=-1",
                     stdout=io.StringIO())
    assert not Comparison.objects.exists()

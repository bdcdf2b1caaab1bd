"""Bad input found by a QA attack, kept as regression tests: bad run settings that were accepted (and fail only in the runner, or as a 500), and
command-line dataset options that were silently dropped. Each docstring says what used to happen."""
from __future__ import annotations

import io

import pytest
from django.core.exceptions import ValidationError
from django.core.management import CommandError, call_command
from rest_framework.test import APIClient

from feedback.snapshots import snapshot_create
from tests.factories import ComparisonFactory, PromptFactory, VoteFactory
from training import services
from training.models import Checkpoint, CheckpointKind, Job

pytestmark = pytest.mark.django_db


@pytest.fixture
def world(settings, tmp_path, annotator, admin_user):
    settings.ARBITER_DATA_DIR = tmp_path
    smol = Checkpoint.objects.create(name="smol", hub_id="x/smol")
    Checkpoint.objects.create(name="smol-rm", hub_id="x/smol-rm", kind=CheckpointKind.REWARD, parent=smol)
    for index in range(8):
        comparison = ComparisonFactory(prompt=PromptFactory(split="eval" if index % 4 == 0 else "train"), status="complete", vote_count=1)
        VoteFactory(comparison=comparison, annotator=annotator, choice="a" if index % 2 else "b", strength="clear")
    snapshot = snapshot_create(rules={})
    client = APIClient(raise_request_exception=False)
    client.force_authenticate(admin_user)
    return {"snapshot": snapshot.pk, "admin": client, "annotator": annotator}


def configs(snapshot_id: int) -> dict[str, dict]:
    return {
        "reward": {"base": "smol", "snapshot_id": snapshot_id},
        "dpo": {"base": "smol", "snapshot_id": snapshot_id},
        "rl": {"base": "smol", "snapshot_id": snapshot_id, "reward_model": "smol-rm"},
    }


@pytest.mark.parametrize("kind", ["reward", "dpo", "rl"])
@pytest.mark.parametrize("seed", [2**32, 10**30])
def test_attack_seed_beyond_2_pow_32_is_refused_before_queueing(world, kind, seed):
    """transformers.set_seed (numpy) takes 0..2**32-1; a larger seed is queued and the run dies in the Trainer."""
    response = world["admin"].post("/api/jobs/", {"kind": kind, "config": {**configs(world["snapshot"])[kind], "seed": seed}}, format="json")
    assert response.status_code == 400 and "seed" in response.json(), response.status_code
    assert not Job.objects.exists()


@pytest.mark.parametrize(
    ("kind", "config", "field"),
    [
        ("scoring", {"reward_model": "smol-rm", "scope": "all", "limit": 2**63}, "limit"),
        ("generation", {"checkpoints": ["smol"], "limit": 2**63}, "limit"),
        ("generation", {"checkpoints": ["smol"], "prompt_ids": [2**63]}, "prompt_ids"),
    ],
)
def test_attack_huge_integers_are_a_400_not_a_500(world, kind, config, field):
    """On SQLite: IntegrityError 'datatype mismatch' / OverflowError out of the prompt or completion query."""
    response = world["admin"].post("/api/jobs/", {"kind": kind, "config": config}, format="json")
    assert response.status_code == 400, response.status_code
    assert not Job.objects.exists()


@pytest.mark.parametrize(
    "config",
    [
        {"base": "smol", "output_name": "rm\x00x"},
        {"base": "smol", "rules": {"split_by": "hash", "split_salt": "a\x00b"}},
    ],
)
def test_attack_nul_characters_are_refused(world, config):
    """Accepted on SQLite (the job is queued); on PostgreSQL a 500 (DataError: text cannot contain NUL)."""
    if "rules" not in config:
        config = {**config, "snapshot_id": world["snapshot"]}
    response = world["admin"].post("/api/jobs/", {"kind": "reward", "config": config}, format="json")
    assert response.status_code == 400, response.status_code
    assert not Job.objects.exists()


def test_attack_an_output_name_claimed_by_a_queued_run_is_refused(world):
    """Both runs are queued; the one that finishes second trains in full and then fails to register."""
    services.reward_run_create(config={**configs(world["snapshot"])["reward"], "output_name": "rm-v2"})
    with pytest.raises(ValidationError, match="output_name|rm-v2"):
        services.dpo_run_create(config={**configs(world["snapshot"])["dpo"], "output_name": "rm-v2"})
    assert Job.objects.count() == 1


@pytest.mark.parametrize(
    "options",
    [
        ["--rules", '{"split_by": "hash", "eval_fraction": 0.5}'],
        ["--split-by", "hash", "--eval-fraction", "0.5"],
        ["--no-gold"],
        ["--exclude-annotator", "nobody-by-this-name"],
    ],
)
def test_attack_train_with_snapshot_refuses_rule_options_it_would_ignore(world, options):
    """`train ... --snapshot ID` drops --rules/--split-by/--no-gold/--exclude-annotator without a word
    (even an unknown user name), where the service would say 'give rules or snapshot_id, not both'."""
    with pytest.raises(CommandError):
        call_command("train", "reward", "--base", "smol", "--snapshot", str(world["snapshot"]), *options, stdout=io.StringIO())
    assert not Job.objects.exists()

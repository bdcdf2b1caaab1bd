"""Bad input found by a QA attack, kept as regression tests: a refused run or loop round must leave no snapshot behind (no row, no folder), and a
run must not be queued on a snapshot whose files are gone. Each docstring says what used to happen."""
from __future__ import annotations

import shutil

import pytest
from django.core.exceptions import ValidationError
from rest_framework.test import APIClient

from feedback.models import DatasetSnapshot
from feedback.snapshots import snapshot_create, snapshot_root
from tests.factories import ComparisonFactory, PromptFactory, VoteFactory
from training import loop, services
from training.models import Checkpoint, Job

pytestmark = pytest.mark.django_db

NO_EVAL = {"split_by": "hash", "eval_fraction": 0.0}  # every prompt in train: a reward run is refused


@pytest.fixture
def world(settings, tmp_path, annotator):
    settings.ARBITER_DATA_DIR = tmp_path
    Checkpoint.objects.create(name="smol", hub_id="x/smol")
    for index in range(8):
        comparison = ComparisonFactory(prompt=PromptFactory(split="eval" if index % 4 == 0 else "train"), status="complete", vote_count=1)
        VoteFactory(comparison=comparison, annotator=annotator, choice="a" if index % 2 else "b", strength="clear")
    return tmp_path


def snapshot_folders() -> list[str]:
    root = snapshot_root()
    return sorted(p.name for p in root.iterdir() if not p.name.startswith(".")) if root.is_dir() else []


def test_attack_refused_reward_run_leaves_no_snapshot(world):
    """A reward run refused for having no eval pairs keeps the snapshot it froze (row and folder)."""
    with pytest.raises(ValidationError, match="no eval pairs"):
        services.reward_run_create(config={"base": "smol", "rules": NO_EVAL})
    assert DatasetSnapshot.objects.count() == 0
    assert snapshot_folders() == []
    assert not Job.objects.exists()


def test_attack_refused_loop_round_leaves_no_snapshot_folder_and_does_not_block_the_next_snapshot(world):
    """The round's transaction rolls the snapshot row back but its folder stays; on SQLite the id is
    then reused, so the next snapshot's rename fails with OSError (a 500 on every page that makes one)."""
    loop.loop_settings_update(enabled=False, votes_per_round=10, method="dpo", policy="smol", rules=NO_EVAL)
    with pytest.raises(ValidationError):
        loop.loop_round_start()
    assert DatasetSnapshot.objects.count() == 0
    snapshot = snapshot_create(rules={})  # OSError: [Errno 39] Directory not empty on SQLite
    assert snapshot_folders() == [snapshot.files_dir.split("/")[-1]]  # no orphan folder of the refused round either


@pytest.mark.django_db(transaction=True)
def test_attack_vote_after_a_refused_vote_triggered_round_is_not_a_500(settings, tmp_path, annotator):
    """With the loop on, a refused vote-triggered round leaves an orphan folder; the next vote that
    triggers a round gets a 500 (OSError out of the on-commit receiver) though the vote is stored."""
    settings.ARBITER_DATA_DIR = tmp_path
    Checkpoint.objects.create(name="smol", hub_id="x/smol")
    for index in range(4):
        ComparisonFactory(prompt=PromptFactory(split="train"), completion_a__text=f"a{index}", completion_b__text=f"b{index}")
    loop.loop_settings_update(enabled=True, votes_per_round=1, method="dpo", policy="smol", rules=NO_EVAL)
    client = APIClient(raise_request_exception=False)
    client.force_authenticate(annotator)
    for _ in range(2):
        claimed = client.post("/api/assignments/next/")
        assert claimed.status_code == 200
        response = client.post("/api/votes/", {"comparison": claimed.json()["comparison"], "choice": "a"}, format="json")
        assert response.status_code == 201, response.status_code
    assert snapshot_folders() == []


def test_attack_run_on_a_snapshot_whose_files_are_gone_is_refused(world):
    """snapshot_verify exists but no create service calls it: the run is queued and fails later."""
    snapshot = snapshot_create(rules={})
    shutil.rmtree(snapshot_root().parent / snapshot.files_dir)
    with pytest.raises(ValidationError):
        services.dpo_run_create(config={"base": "smol", "snapshot_id": snapshot.pk})
    assert not Job.objects.exists()

"""A TRL preference export is usable as it is: ``datasets.load_dataset`` reads the JSONL and Parquet
files, and TRL's ``DPOTrainer`` and ``RewardTrainer`` take a step on what it returns, unmodified,
with a tiny random Llama (SmolLM2's tokenizer and chat template) on the CPU."""
from __future__ import annotations

import math
from pathlib import Path

import pytest

from feedback.exports.services import export_create
from feedback.models import ExportStatus
from tests.export_fixtures import export_world

pytestmark = pytest.mark.django_db

LOADERS = {"jsonl": "json", "parquet": "parquet"}


@pytest.fixture
def exported(settings, tmp_path):
    """``{"jsonl": path, "parquet": path}`` of one TRL preference export of the export world, as run by the service."""
    settings.ARBITER_DATA_DIR = tmp_path / "data"
    export_world()
    paths = {}
    for file_type in LOADERS:
        export = export_create(format="trl-preference", file_type=file_type)
        assert export.status == ExportStatus.SUCCEEDED, export.error
        paths[file_type] = Path(settings.ARBITER_DATA_DIR) / export.file_path
    return paths


def load(paths: dict, file_type: str):
    from datasets import load_dataset

    return load_dataset(LOADERS[file_type], data_files=str(paths[file_type]), split="train")


def test_load_dataset_reads_jsonl_and_parquet_alike_in_trl_s_conversational_format(exported):
    from trl.data_utils import is_conversational

    from_json, from_parquet = load(exported, "jsonl"), load(exported, "parquet")
    assert from_json.column_names == from_parquet.column_names == ["prompt", "chosen", "rejected", "margin"]
    assert from_json.to_list() == from_parquet.to_list()
    assert len(from_json) == 3 and is_conversational(from_json[0])
    assert from_json[0]["chosen"] == [{"role": "assistant", "content": "Four."}]


def _tokenizer(model_dir: Path):
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    return tokenizer


def _common(tmp_path) -> dict:
    return dict(
        output_dir=str(tmp_path / "run"), use_cpu=True, report_to="none", save_strategy="no", disable_tqdm=True,
        per_device_train_batch_size=2, max_steps=1, logging_steps=1, learning_rate=1e-3, max_length=64,
        dataloader_num_workers=0, seed=0, activation_checkpointing=False,
    )


def _one_step_loss(trainer) -> float:
    trainer.train()
    assert trainer.state.global_step == 1
    losses = [entry["loss"] for entry in trainer.state.log_history if "loss" in entry]
    assert losses and all(math.isfinite(loss) for loss in losses)
    return losses[0]


@pytest.mark.parametrize("file_type", list(LOADERS))
def test_one_dpo_step_runs_on_the_export_unmodified(exported, model_store, tmp_path, file_type):
    import torch
    from trl import DPOConfig, DPOTrainer

    torch.manual_seed(0)
    trainer = DPOTrainer(
        model=str(model_store.tiny_source), args=DPOConfig(**_common(tmp_path)),
        train_dataset=load(exported, file_type), processing_class=_tokenizer(model_store.tiny_source),
    )
    assert _one_step_loss(trainer) == pytest.approx(math.log(2), abs=0.05)  # σ(0) at the first step: policy = reference


@pytest.mark.parametrize("file_type", list(LOADERS))
def test_one_reward_step_runs_on_the_export_unmodified(exported, model_store, tmp_path, file_type):
    import torch
    from trl import RewardConfig, RewardTrainer

    torch.manual_seed(0)
    trainer = RewardTrainer(
        model=str(model_store.tiny_source), args=RewardConfig(**_common(tmp_path)),
        train_dataset=load(exported, file_type), processing_class=_tokenizer(model_store.tiny_source),
    )
    assert "margin" in trainer.train_dataset.column_names  # TRL's reward loss subtracts it
    _one_step_loss(trainer)

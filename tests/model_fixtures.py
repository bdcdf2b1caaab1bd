"""Fixtures for the training tests: the bundled SmolLM2, tiny Llamas, and child-process settings.

Loaded for the whole suite through ``pytest_plugins`` in ``tests/conftest.py`` so the
session-scoped model store is built once per test process, whichever module asks first.

- ``model_store`` (session): a temporary ``ARBITER_DATA_DIR`` holding the bundled
  SmolLM2-135M-Instruct (imported with ``training.registry.model_import``; the float32 conversion is
  cached in ``ARBITER_MODEL_CACHE``, default ``var/model-cache``, so only a fresh machine pays the
  ~25 s dequantisation) and two tiny random Llamas (``tiny-x``, ``tiny-y``: hidden 32, 2 layers,
  2 heads) that use SmolLM2's real tokenizer and chat template, plus one more tiny Llama outside
  the data directory for import tests.
- ``data_dir``: points ``settings.ARBITER_DATA_DIR`` and the environment at that store.
- ``tiny_checkpoints``: registers ``tiny-x`` and ``tiny-y`` (the test needs database access).
- ``runner_env``: the environment child processes (runner, ``db_worker``, ``manage.py``) need to
  reach this test's database and data directory.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

import pytest

# Nothing is fetched from a model hub (set before anything imports huggingface_hub, which reads
# it once at import).
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

TINY_NAMES = ("tiny-x", "tiny-y")
SMOLLM2_NAME = "SmolLM2-135M-Instruct"


@dataclass(frozen=True)
class ModelStore:
    data_dir: Path
    smollm2_dir: str  # relative to data_dir
    smollm2_metadata: dict
    tiny_source: Path  # a tiny Hugging Face model directory outside the data directory


def tiny_llama_save(directory: Path, tokenizer, *, seed: int) -> None:
    """Save a random 2-layer Llama (hidden 32) with ``tokenizer`` to ``directory`` (safetensors).

    ``initializer_range`` 0.2 (not the default 0.02) gives logits with clear margins, so greedy
    decoding is stable under the small numerical differences that padding makes.
    """
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(seed)
    config = LlamaConfig(
        vocab_size=len(tokenizer), hidden_size=32, intermediate_size=64, num_hidden_layers=2,
        num_attention_heads=2, num_key_value_heads=2, max_position_embeddings=2048,
        bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id, initializer_range=0.2,
    )
    model = LlamaForCausalLM(config)
    model.save_pretrained(directory)
    tokenizer.save_pretrained(directory)


def pytest_collection_modifyitems(items):
    """Building ``model_store`` registers (then removes) a checkpoint, so a test that uses it needs
    the test database even when the test itself doesn't: pytest-django only creates the database
    when some selected test carries ``django_db``."""
    for item in items:
        if "model_store" in getattr(item, "fixturenames", ()) and item.get_closest_marker("django_db") is None:
            item.add_marker(pytest.mark.django_db)


@pytest.fixture(scope="session")
def model_store(django_db_setup, django_db_blocker, tmp_path_factory) -> ModelStore:
    from django.test import override_settings
    from transformers import AutoTokenizer

    from training.registry import model_import

    data_dir = tmp_path_factory.mktemp("arbiter-data")
    with override_settings(ARBITER_DATA_DIR=data_dir), django_db_blocker.unblock():
        checkpoint, _ = model_import()
        smollm2_dir, metadata = checkpoint.weights_dir, checkpoint.metadata
        checkpoint.delete()  # the files stay; each test registers the rows it needs
    tokenizer = AutoTokenizer.from_pretrained(data_dir / smollm2_dir)
    for seed, name in enumerate(TINY_NAMES):
        tiny_llama_save(data_dir / "checkpoints" / name, tokenizer, seed=seed)
    source = tmp_path_factory.mktemp("hf-models") / "tiny-source"
    tiny_llama_save(source, tokenizer, seed=len(TINY_NAMES))
    return ModelStore(data_dir=data_dir, smollm2_dir=smollm2_dir, smollm2_metadata=metadata, tiny_source=source)


@pytest.fixture
def data_dir(model_store, settings, monkeypatch) -> Path:
    settings.ARBITER_DATA_DIR = model_store.data_dir
    monkeypatch.setenv("ARBITER_DATA_DIR", str(model_store.data_dir))
    return model_store.data_dir


@pytest.fixture
def tiny_checkpoints(data_dir):
    """``{"tiny-x": Checkpoint, "tiny-y": Checkpoint}``, registered in the test's database."""
    from training.services import checkpoint_register

    return {name: checkpoint_register(name=name, weights_dir=f"checkpoints/{name}") for name in TINY_NAMES}


@pytest.fixture
def smollm2_checkpoint(data_dir, model_store):
    from training.services import checkpoint_register

    return checkpoint_register(name=SMOLLM2_NAME, weights_dir=model_store.smollm2_dir, metadata=model_store.smollm2_metadata)


def child_database_url() -> str:
    """A ``DATABASE_URL`` for the database this test process is using (the test database)."""
    from django.db import connection

    settings_dict = connection.settings_dict
    if connection.vendor == "sqlite":
        return "sqlite:///" + str(settings_dict["NAME"])
    if connection.vendor == "postgresql":
        auth = quote(settings_dict.get("USER") or "", safe="")
        if settings_dict.get("PASSWORD"):
            auth += ":" + quote(settings_dict["PASSWORD"], safe="")
        host = settings_dict.get("HOST") or "localhost"
        port = settings_dict.get("PORT") or 5432
        return f"postgres://{auth + '@' if auth else ''}{host}:{port}/{quote(settings_dict['NAME'], safe='')}"
    raise NotImplementedError(f"no DATABASE_URL for {connection.vendor}")


@pytest.fixture
def runner_env(monkeypatch, data_dir) -> dict[str, str]:
    """Point child processes at this test's database and data directory; returns the environment.

    Only transactional tests (``django_db(transaction=True)``) should start children: rows a
    child must see have to be committed. One torch thread per child: on a small shared CI machine
    two children (or a child and the test) each spinning two OpenMP threads on two cores slow
    generation down by an order of magnitude.
    """
    monkeypatch.setenv("DATABASE_URL", child_database_url())
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    monkeypatch.setenv("ARBITER_HEARTBEAT_INTERVAL", "0.5")
    return dict(os.environ)

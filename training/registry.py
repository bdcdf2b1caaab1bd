"""Importing models into the checkpoint registry (no torch at module level).

The bundled SmolLM2 is converted once into a machine-wide cache (``ARBITER_MODEL_CACHE``,
default ``var/model-cache``) and hard-linked (or copied) into the data directory, so a second
import, or a fresh database, costs seconds instead of a dequantisation.
"""
from __future__ import annotations

import fcntl
import json
import os
import re
import shutil
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from django.conf import settings
from django.db import transaction

from .config import stop_strings_problem
from .models import Checkpoint, CheckpointKind
from .services import checkpoint_register

METADATA_FILE = "arbiter-metadata.json"


def model_cache_dir() -> Path:
    """Machine-wide folder where the bundled model is converted once (``ARBITER_MODEL_CACHE``)."""
    return Path(os.environ.get("ARBITER_MODEL_CACHE", settings.VAR_DIR / "model-cache"))


def checkpoint_slug(name: str) -> str:
    """A directory name for a checkpoint name: lower case, ``[a-z0-9._-]`` only."""
    slug = re.sub(r"[^a-z0-9._-]+", "-", name.lower()).strip("-.")
    return slug or "checkpoint"


@contextmanager
def _cache_lock(cache: Path) -> Iterator[None]:
    """Hold an exclusive lock on the model cache, so two processes never build or replace one entry at once."""
    cache.mkdir(parents=True, exist_ok=True)
    with (cache / ".lock").open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _link_tree(source: Path, dest: Path) -> None:
    """Copy ``source`` to ``dest`` through a temporary sibling and a rename; files are hard-linked when possible."""
    tmp = dest.parent / f".tmp-{dest.name}-{uuid.uuid4().hex[:8]}"

    def link_or_copy(src, dst):
        try:
            os.link(src, dst)
        except OSError:
            shutil.copy2(src, dst)

    try:
        shutil.copytree(source, tmp, copy_function=link_or_copy)
        os.replace(tmp, dest)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _recorded_source(directory: Path) -> str | None:
    """The ``source`` an import recorded in ``directory`` (None when it recorded none)."""
    try:
        return json.loads((directory / METADATA_FILE).read_text()).get("source")
    except (OSError, ValueError, AttributeError):
        return None


def _same_source(recorded: str, *, path: Path | None, hf_id: str | None) -> bool:
    if path is not None:
        return recorded.startswith("path:") and Path(recorded[len("path:"):]).resolve() == Path(path).resolve()
    if hf_id is not None:
        return recorded == f"hub:{hf_id}"
    return recorded.startswith("gguf:")


def model_import(
    *, name: str | None = None, path: Path | None = None, hf_id: str | None = None, stop_strings: list[str] | None = None,
) -> tuple[Checkpoint, bool]:
    """Import a policy checkpoint and register it. Returns ``(checkpoint, created)``.

    With neither ``path`` nor ``hf_id``: the bundled SmolLM2-135M-Instruct (GGUF, dequantised to
    float32 once into the model cache, whatever ``name`` it is registered under). An existing
    checkpoint of the same name is returned at once (``created=False``). A complete directory
    already at the destination is registered as it is when it came from the same source.
    ``stop_strings``: the role markers its replies end at (None: the defaults; see
    ``checkpoint_register``); checked before anything is copied or converted.
    Raises:
        training.runners.model_import.ImportFailed: one readable line on any failure, including a
            destination directory that holds another model (two names with one slug), unusable
            stop strings, or stop strings other than those of the existing checkpoint of that name.
    """
    from .runners.model_import import SMOLLM2_NAME, ImportFailed, is_complete

    if path is not None and hf_id is not None:
        raise ImportFailed("give --path or --hf-id, not both")
    if stop_strings is not None and (problem := stop_strings_problem(stop_strings)):
        raise ImportFailed(f"--stop-strings {problem}")
    if name is None:
        name = SMOLLM2_NAME if path is None and hf_id is None else (Path(path).name if path else hf_id.split("/")[-1])
    existing = Checkpoint.objects.filter(name=name).first()
    if existing is not None:
        if stop_strings is not None and list(stop_strings) != list(existing.stop_strings):
            raise ImportFailed(
                f"{name!r} is already imported with stop strings {json.dumps(existing.stop_strings)}; "
                "change them on its admin page (or import under another --name)"
            )
        return existing, False

    data_dir = Path(settings.ARBITER_DATA_DIR) / "checkpoints"
    data_dir.mkdir(parents=True, exist_ok=True)
    dest = data_dir / checkpoint_slug(name)
    in_place = path is not None and Path(path).resolve() == dest.resolve()
    if dest.exists() and not is_complete(dest):
        if in_place:  # never delete the import's own source
            raise ImportFailed(f"{path} is not a complete model directory (config.json, *.safetensors and a tokenizer)")
        shutil.rmtree(dest)
    if dest.exists() and not in_place:
        # Two names can share a directory ("My Model", "my-model"): reuse it only for the same model.
        recorded = _recorded_source(dest)
        if recorded is not None and not _same_source(recorded, path=path, hf_id=hf_id):
            raise ImportFailed(f"{dest} already holds another model ({recorded}); choose another --name")
    if not dest.exists():
        if path is None and hf_id is None:
            cache = model_cache_dir()
            cached = cache / checkpoint_slug(SMOLLM2_NAME)  # one conversion, whatever the checkpoint is named
            with _cache_lock(cache):
                if not (is_complete(cached) and (cached / METADATA_FILE).is_file()):
                    from .runners.model_import import import_to, smollm2_gguf_path

                    shutil.rmtree(cached, ignore_errors=True)
                    meta = import_to(cached, gguf=smollm2_gguf_path())
                    (cached / METADATA_FILE).write_text(json.dumps(meta))
                _link_tree(cached, dest)
        else:
            from .runners.model_import import import_to

            meta = import_to(dest, path=path, hf_id=hf_id)
            (dest / METADATA_FILE).write_text(json.dumps(meta))
    meta_path = dest / METADATA_FILE
    meta = json.loads(meta_path.read_text()) if meta_path.exists() else {}
    with transaction.atomic():
        checkpoint = checkpoint_register(
            name=name, kind=CheckpointKind.POLICY, weights_dir=str(dest.relative_to(settings.ARBITER_DATA_DIR)),
            metadata=meta, stop_strings=stop_strings,
        )
    return checkpoint, True

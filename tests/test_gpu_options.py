"""GPU-only run options: validated when queued, refused with one readable line on a worker that
cannot run them (this CPU machine), and the shipped accelerate configs parse."""
from __future__ import annotations

from pathlib import Path

import pytest

from training.config import ConfigError
from training.policy_config import DPOConfig, RLConfig, SFTConfig

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.parametrize("config_class", [DPOConfig, SFTConfig])
def test_qlora_is_checked_before_anything_is_queued(config_class):
    def errors(**settings):
        with pytest.raises(ConfigError) as caught:
            config_class.from_dict({"base": "b", **settings})
        return caught.value.errors

    assert "set lora true" in errors(quantization="4bit", lora=False, save_adapter=False)["quantization"]
    assert "set save_adapter true" in errors(quantization="4bit", lora=True)["quantization"]
    assert "4bit" in errors(quantization="8bit")["quantization"]
    assert config_class.from_dict({"base": "b", "quantization": "4bit", "save_adapter": True}).quantization == "4bit"


def test_use_vllm_is_a_boolean_of_rl_runs_only():
    with pytest.raises(ConfigError) as caught:
        RLConfig.from_dict({"base": "b", "reward_model": "r", "use_vllm": "yes"})
    assert "vLLM" in caught.value.errors["use_vllm"]
    with pytest.raises(ConfigError) as caught:
        DPOConfig.from_dict({"base": "b", "use_vllm": True})
    assert caught.value.errors == {"use_vllm": "unknown setting"}


def _require(config, **options):
    from training.runners.gpu import gpu_options_require

    gpu_options_require(config, **{"installed": lambda package: True, "environ": {}, **options})


def test_gpu_only_options_are_refused_on_a_cpu_worker_with_one_readable_line():
    from training.runners.gpu import GpuOptionRefused

    qlora = DPOConfig.from_dict({"base": "b", "quantization": "4bit", "save_adapter": True})
    vllm = RLConfig.from_dict({"base": "b", "reward_model": "r", "use_vllm": True})
    with pytest.raises(GpuOptionRefused, match=r"^quantization 4bit \(QLoRA\) needs a CUDA GPU; this worker has none"):
        _require(qlora, cuda=False)
    with pytest.raises(GpuOptionRefused, match=r"^use_vllm \(vLLM generation\) needs a CUDA GPU"):
        _require(vllm, cuda=False)
    with pytest.raises(GpuOptionRefused, match="pip install bitsandbytes$"):
        _require(qlora, cuda=True, installed=lambda package: package != "bitsandbytes")
    with pytest.raises(GpuOptionRefused, match="pip install vllm$"):
        _require(vllm, cuda=True, installed=lambda package: package != "vllm")
    _require(qlora, cuda=True)  # a GPU worker with the package: nothing to refuse
    _require(DPOConfig.from_dict({"base": "b"}), cuda=False)  # no GPU-only option: runs anywhere
    with pytest.raises(GpuOptionRefused, match="ZeRO-3"):
        _require(DPOConfig.from_dict({"base": "b"}), cuda=True, environ={"ACCELERATE_DEEPSPEED_ZERO_STAGE": "3"})
    _require(DPOConfig.from_dict({"base": "b"}), cuda=True, environ={"ACCELERATE_DEEPSPEED_ZERO_STAGE": "2"})


def test_the_4bit_base_uses_the_qlora_recipe():
    import torch

    from training.runners.gpu import quantization_arguments

    assert quantization_arguments(DPOConfig.from_dict({"base": "b"})) == {}
    q = quantization_arguments(DPOConfig.from_dict({"base": "b", "quantization": "4bit", "save_adapter": True}))
    bnb = q["quantization_config"]
    assert (bnb.load_in_4bit, bnb.bnb_4bit_quant_type, bnb.bnb_4bit_use_double_quant) == (True, "nf4", True)
    assert bnb.bnb_4bit_compute_dtype == torch.bfloat16


@pytest.mark.parametrize("name, kind, stage", [
    ("single_gpu", "NO", None), ("multi_gpu", "MULTI_GPU", None), ("deepspeed_zero2", "DEEPSPEED", 2),
])
def test_the_shipped_accelerate_configs_parse(name, kind, stage):
    from accelerate.commands.config.config_args import load_config_from_file

    config = load_config_from_file(str(ROOT / "config" / "accelerate" / f"{name}.yaml"))
    assert config.distributed_type.value == kind and config.mixed_precision == "bf16" and not config.use_cpu
    assert (config.deepspeed_config or {}).get("zero_stage") == stage
    assert f"config/accelerate/{name}.yaml" in (ROOT / "config" / "accelerate" / f"{name}.yaml").read_text()

"""GPU-only run options: validated when queued, refused with one readable line on a worker that
cannot run them (this CPU machine), and the shipped accelerate configs parse."""
from __future__ import annotations

from pathlib import Path

import pytest

from training.config import ConfigError, RewardConfig
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

ZERO3 = {"ACCELERATE_DEEPSPEED_ZERO_STAGE": "3", "ACCELERATE_DEEPSPEED_ZERO3_SAVE_16BIT_MODEL": "true"}


@pytest.mark.parametrize("config", [
    RewardConfig.from_dict({"base": "b"}), RewardConfig.from_dict({"base": "b", "lora": True}),
    DPOConfig.from_dict({"base": "b"}), DPOConfig.from_dict({"base": "b", "lora": False}),
    SFTConfig.from_dict({"base": "b", "save_adapter": True}),
], ids=["reward", "reward-lora", "dpo-lora", "dpo-full", "sft-adapter"])
def test_zero3_runs_reward_dpo_and_sft_when_the_launch_gathers_16bit_weights(config):
    from training.runners.gpu import GpuOptionRefused

    _require(config, cuda=True, environ=ZERO3)
    _require(config, cuda=True, environ={"ACCELERATE_DEEPSPEED_ZERO_STAGE": "2"})
    with pytest.raises(GpuOptionRefused, match=r"^DeepSpeed ZeRO-3 without zero3_save_16bit_model: true .*deepspeed_zero3\.yaml$"):
        _require(config, cuda=True, environ={**ZERO3, "ACCELERATE_DEEPSPEED_ZERO3_SAVE_16BIT_MODEL": "false"})
    with pytest.raises(GpuOptionRefused, match="zero3_save_16bit_model"):
        _require(config, cuda=True, environ={"ACCELERATE_DEEPSPEED_ZERO_STAGE": "3"})


def test_zero3_refuses_online_rl_and_qlora_in_one_line_each():
    from training.runners.gpu import GpuOptionRefused

    for algorithm in ("rloo", "grpo"):
        with pytest.raises(GpuOptionRefused) as caught:
            _require(RLConfig.from_dict({"base": "b", "reward_model": "r", "algorithm": algorithm}), cuda=True, environ=ZERO3)
        assert str(caught.value).startswith("DeepSpeed ZeRO-3 cannot run online RL (RLOO/GRPO) runs: the reward model")
        assert "deepspeed_zero2.yaml" in str(caught.value) and "\n" not in str(caught.value)
    for qlora in (DPOConfig.from_dict({"base": "b", "quantization": "4bit", "save_adapter": True}),
                  RewardConfig.from_dict({"base": "b", "quantization": "4bit", "lora": True})):
        with pytest.raises(GpuOptionRefused, match=r"^quantization 4bit \(QLoRA\) does not run under DeepSpeed ZeRO-3"):
            _require(qlora, cuda=True, environ=ZERO3)
    _require(RLConfig.from_dict({"base": "b", "reward_model": "r"}), cuda=True, environ={"ACCELERATE_DEEPSPEED_ZERO_STAGE": "2"})


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
    ("deepspeed_zero3", "DEEPSPEED", 3),
])
def test_the_shipped_accelerate_configs_parse(name, kind, stage):
    from accelerate.commands.config.config_args import load_config_from_file

    config = load_config_from_file(str(ROOT / "config" / "accelerate" / f"{name}.yaml"))
    assert config.distributed_type.value == kind and config.mixed_precision == "bf16" and not config.use_cpu
    assert (config.deepspeed_config or {}).get("zero_stage") == stage
    if stage == 3:  # what the runners' gathering needs (a launch without it is refused)
        assert config.deepspeed_config["zero3_save_16bit_model"] is True
    assert f"config/accelerate/{name}.yaml" in (ROOT / "config" / "accelerate" / f"{name}.yaml").read_text()
    assert f"config/accelerate/{name}.yaml" in (ROOT / "README.md").read_text()  # documented with its command


def test_a_launch_with_the_shipped_zero3_config_runs_dpo_and_refuses_rl():
    """What ``accelerate launch --config_file config/accelerate/deepspeed_zero3.yaml`` puts in the
    runner's environment (accelerate's own launch code) is what ``gpu_options_require`` reads."""
    from accelerate.commands.launch import _validate_launch_command, launch_command_parser
    from accelerate.utils.launch import prepare_deepspeed_cmd_env

    from training.runners.gpu import GpuOptionRefused

    args = launch_command_parser().parse_args([
        "--config_file", str(ROOT / "config" / "accelerate" / "deepspeed_zero3.yaml"), "--num_processes", "2",
        "-m", "training.runner", "1",
    ])
    args, defaults, _ = _validate_launch_command(args)
    args.deepspeed_fields_from_accelerate_config = ",".join(defaults.deepspeed_config)  # as launch_command sets it
    _, environ = prepare_deepspeed_cmd_env(args)
    assert environ["ACCELERATE_DEEPSPEED_ZERO_STAGE"] == "3"
    _require(DPOConfig.from_dict({"base": "b"}), cuda=True, environ=environ)
    _require(RewardConfig.from_dict({"base": "b"}), cuda=True, environ=environ)
    with pytest.raises(GpuOptionRefused, match="online RL"):
        _require(RLConfig.from_dict({"base": "b", "reward_model": "r"}), cuda=True, environ=environ)


def test_loading_inside_zero3_loading_off_is_plain_and_zero3_comes_back_after():
    from types import SimpleNamespace

    from transformers.integrations.deepspeed import is_deepspeed_zero3_enabled, set_hf_deepspeed_config, unset_hf_deepspeed_config

    from training.runners.gathered import zero3_loading_off

    class Stage3:
        def is_zero3(self):
            return True

    kept = Stage3()
    set_hf_deepspeed_config(kept)
    try:
        assert is_deepspeed_zero3_enabled()
        with zero3_loading_off(SimpleNamespace(deepspeed_plugin=SimpleNamespace(dschf=kept))):
            assert not is_deepspeed_zero3_enabled()
        assert is_deepspeed_zero3_enabled()
    finally:
        unset_hf_deepspeed_config()

"""Writing a trained model that cannot be written as it is (DeepSpeed ZeRO-3 shards, a 4-bit base):
when the runners take that path, and what it writes. DeepSpeed is not installed here, so the
ZeRO-3 path is taken on CPU by forcing its reason: ``trainer.save_model``, the base loaded again,
the adapter applied. An SFT run written that way is the same model as one written directly."""
from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import pytest
import torch
from safetensors.torch import load_file

from training.models import Checkpoint
from training.runners import gathered
from training.runners.progress import Reporter

from .test_sft_runner import demo_snapshot, one_torch_thread, sft_job  # noqa: F401 - fixtures


def trainer_like(*, stage=None, peft=False, four_bit=False):
    model = SimpleNamespace(is_loaded_in_4bit=four_bit, **({"peft_config": {"default": None}} if peft else {}))
    plugin = SimpleNamespace(zero_stage=stage) if stage is not None else None
    return SimpleNamespace(model=model, args=SimpleNamespace(deepspeed_plugin=plugin))


def test_only_zero3_shards_and_a_4bit_base_to_be_merged_need_gathering():
    assert gathered.gathering_reason(trainer_like(stage=3, peft=True), merge=False) == gathered.ZERO3
    assert gathered.gathering_reason(trainer_like(stage=3), merge=True) == gathered.ZERO3
    assert gathered.gathering_reason(trainer_like(stage=2, peft=True), merge=True) is None
    assert gathered.gathering_reason(trainer_like(peft=True, four_bit=True), merge=True) == gathered.FOUR_BIT
    assert gathered.gathering_reason(trainer_like(peft=True, four_bit=True), merge=False) is None  # QLoRA adapter: as it is
    assert gathered.gathering_reason(trainer_like(peft=True), merge=True) is None
    plain = trainer_like()
    kwargs = dict(auto_class=None, base_location="", scratch="", merge=True)
    assert gathered.trained_model(plain, is_main=True, **kwargs) is plain.model
    assert gathered.trained_model(plain, is_main=False, **kwargs) is None


def weights(checkpoint: Checkpoint) -> dict[str, torch.Tensor]:
    return load_file(Path(checkpoint.location) / "model.safetensors")


@pytest.mark.django_db
def test_an_sft_run_written_through_the_gathering_path_is_the_model_written_directly(
    tiny_checkpoints, demo_snapshot, one_torch_thread, monkeypatch  # noqa: F811
):
    from training.runners.loading import checkpoint_policy_load
    from training.runners.sft import run_sft

    def run(name: str, **settings) -> Checkpoint:
        job = sft_job(demo_snapshot, max_steps=4, output_name=name, **settings)
        assert run_sft(job, Reporter(job.pk))["checkpoint"] == name
        return Checkpoint.objects.get(name=name)

    direct = run("direct")
    loaded = []
    real_load = gathered.saved_model_load
    monkeypatch.setattr(gathered, "gathering_reason", lambda trainer, merge: gathered.ZERO3)
    monkeypatch.setattr(gathered, "saved_model_load", lambda trainer, **kw: loaded.append(kw) or real_load(trainer, **kw))
    merged, adapter = run("gathered-merged"), run("gathered-adapter", save_adapter=True)

    assert [kw["base_location"] for kw in loaded] == [tiny_checkpoints["tiny-x"].location] * 2
    expected = weights(direct)
    assert not torch.equal(expected["model.layers.0.self_attn.q_proj.weight"],
                           load_file(Path(tiny_checkpoints["tiny-x"].location) / "model.safetensors")["model.layers.0.self_attn.q_proj.weight"])
    got = weights(merged)
    assert got.keys() == expected.keys()
    assert all(torch.allclose(got[key], expected[key], atol=1e-6) for key in expected)
    assert not merged.is_adapter and adapter.is_adapter and adapter.parent.name == "tiny-x"
    assert (Path(adapter.location) / "adapter_model.safetensors").is_file()
    over_parent = checkpoint_policy_load(adapter).model.state_dict()
    assert all(torch.allclose(over_parent[key], expected[key], atol=1e-6) for key in expected if key in over_parent)

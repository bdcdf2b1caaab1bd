"""The online-RL runner: TRL's RLOOTrainer/GRPOTrainer against a registered reward model.

The policy is the tiny Llama ``tiny-x`` (SmolLM2's tokenizer and chat template); at temperature 1
it samples almost uniformly from the 49k-token vocabulary. The reward model is a tiny
``LlamaForSequenceClassification`` built by hand so that what it wants is known and learnable: it
scores a conversation by the share of its tokens in a set A, where A is the half of the vocabulary
whose ``tiny-x`` output-layer rows point along one fixed direction. A policy that moves its hidden
state along that direction says more A tokens, so RLOO has something real to find in a few steps.
How it computes the share (one layer, the rest zero): each token's embedding is
``[s, 1, 0, ...]`` with ``s = +1`` for A and ``-1`` otherwise; queries and keys are zero, so
attention is a uniform average over the sequence; values carry ``s`` and the output projection
writes the average ``m`` into dimension 2, which the score head reads after the final RMSNorm:
reward = ``4m·sqrt(32) / sqrt(2 + 16m²)``, increasing in ``m``. It is registered as a reward
checkpoint and loaded by the runner like any other.

Most tests call ``run_rl`` in this process with a real ``Reporter``; one runs the whole job through
``job_supervise`` in a child process.
"""
from __future__ import annotations

from pathlib import Path

import pytest
import torch

from training.models import Checkpoint, CheckpointKind, Job, JobKind, JobMetric, JobStatus
from training.policy_config import RLConfig
from training.runners.progress import Reporter
from training.services import checkpoint_register
from training.supervisor import job_supervise

from .test_reward_runner import StopAfter, checkpoint_dirs, explain, one_torch_thread, snapshot_make, toy_rows  # noqa: F401

REWARD_NAME = "share-rm"
REWARD_DIR = "checkpoints/tiny-share-rm"


def share_reward_model_save(directory: Path, policy_dir: Path, *, seed: int = 7) -> None:
    """Save the hand-built reward model described in the module docstring (and the policy's tokenizer)."""
    from safetensors.torch import load_file
    from transformers import AutoTokenizer, LlamaConfig, LlamaForSequenceClassification

    tokenizer = AutoTokenizer.from_pretrained(policy_dir)
    output_rows = load_file(policy_dir / "model.safetensors")["lm_head.weight"]
    direction = torch.randn(output_rows.shape[1], generator=torch.Generator().manual_seed(seed))
    sign = torch.where(output_rows @ direction >= 0, 1.0, -1.0)
    config = LlamaConfig(
        vocab_size=len(tokenizer), hidden_size=32, intermediate_size=8, num_hidden_layers=1, num_attention_heads=2,
        num_key_value_heads=2, max_position_embeddings=2048, num_labels=1, bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id,
    )
    model = LlamaForSequenceClassification(config)
    with torch.no_grad():
        for parameter in model.parameters():
            parameter.zero_()
        layer = model.model.layers[0]
        model.model.embed_tokens.weight[:, 0] = sign
        model.model.embed_tokens.weight[:, 1] = 1.0
        for norm in (layer.input_layernorm, layer.post_attention_layernorm, model.model.norm):
            norm.weight.fill_(1.0)
        layer.self_attn.v_proj.weight[0, 0] = 1.0
        layer.self_attn.o_proj.weight[2, 0] = 1.0
        model.score.weight[0, 2] = 1.0
    model.save_pretrained(directory)
    tokenizer.save_pretrained(directory)


@pytest.fixture(scope="module")
def share_reward_dir(model_store) -> Path:
    directory = model_store.data_dir / REWARD_DIR
    if not directory.exists():
        share_reward_model_save(directory, model_store.data_dir / "checkpoints" / "tiny-x")
    return directory


@pytest.fixture
def share_rm(tiny_checkpoints, share_reward_dir) -> Checkpoint:
    return checkpoint_register(name=REWARD_NAME, kind=CheckpointKind.REWARD, weights_dir=REWARD_DIR)


@pytest.fixture
def prompt_snapshot(data_dir):
    """16 distinct train prompts (the held-out rows are never used by RL)."""
    return snapshot_make(data_dir, toy_rows(16), toy_rows(4, offset=100))


def rl_job(snapshot, **settings) -> Job:
    """A running RL job: RLOO with LoRA on tiny-x, 4 prompts x 4 completions of 8 tokens per step."""
    config = RLConfig.from_dict({
        "base": "tiny-x", "reward_model": REWARD_NAME, "snapshot_id": snapshot.pk, "num_generations": 4,
        "per_device_train_batch_size": 16, "max_completion_length": 8, "max_prompt_length": 96,
        "learning_rate": 3e-2, "lora_r": 8, "lora_alpha": 16, "lora_dropout": 0.0, "beta": 0.05,
        "max_steps": 12, "logging_steps": 1, "seed": 0, **settings,
    })
    return Job.objects.create(kind=JobKind.RL, config=config.as_dict(), snapshot=snapshot, status=JobStatus.RUNNING)


def sampled_rewards(location: str, prompts: list, reward_location: str, *, samples: int = 16, seed: int = 0) -> float:
    """Mean reward-model score of ``samples`` completions per prompt sampled at temperature 1 (8 new tokens),
    scored as the scoring job scores: what a user comparing the two checkpoints would measure."""
    from training.runners.loading import policy_load
    from training.runners.rewards import conversation_ids, reward_model_load, rewards_compute

    policy = policy_load("sampled", location)
    reward_model, reward_tokenizer = reward_model_load(reward_location)
    torch.manual_seed(seed)
    sequences = []
    for prompt in prompts:
        ids = policy.tokenizer.apply_chat_template(prompt, add_generation_prompt=True, return_tensors="pt", return_dict=True)
        with torch.inference_mode():
            out = policy.model.generate(
                **ids, do_sample=True, temperature=1.0, top_k=0, top_p=1.0, max_new_tokens=8,
                num_return_sequences=samples, eos_token_id=policy.eos_token_ids, pad_token_id=policy.tokenizer.pad_token_id,
            )
        for row in out[:, ids["input_ids"].shape[1]:]:
            text = policy.tokenizer.decode(row, skip_special_tokens=True)
            sequences.append(conversation_ids(reward_tokenizer, prompt, [{"role": "assistant", "content": text}]))
    scores = rewards_compute(reward_model, reward_tokenizer.pad_token_id, sequences, batch_size=64)
    return sum(scores) / len(scores)


# --- in process -------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_an_rloo_run_raises_the_reward_and_registers_a_policy_with_lineage(
    tiny_checkpoints, share_rm, prompt_snapshot, data_dir, one_torch_thread
):
    from training.runners.rl import REFERENCE_ADAPTER_DISABLED, run_rl

    job = rl_job(prompt_snapshot, output_name="share-policy")
    summary = run_rl(job, Reporter(job.pk))
    job.refresh_from_db()

    assert summary["algorithm"] == "rloo" and summary["steps"] == 12 and not summary["cancelled"]
    assert (summary["prompts"], summary["prompts_distinct"], summary["filtered_too_long"]) == (16, 16, 0)
    assert summary["reference_model"] == REFERENCE_ADAPTER_DISABLED
    assert summary["checkpoint"] == "share-policy" and summary["samples_per_s"] > 0
    assert (job.progress_done, job.progress_total) == (12, 12)

    # One metric row per step, under plain names.
    rows = list(JobMetric.objects.filter(job=job).order_by("step"))
    assert [m.step for m in rows] == list(range(1, 13))
    assert all({"reward", "reward_std", "kl", "completion_length", "entropy", "loss"} <= set(m.values) for m in rows)
    assert not any("/" in name for m in rows for name in m.values)
    assert rows[0].values["kl"] == pytest.approx(0.0, abs=1e-6)  # the first samples come from the base itself
    assert all(m.values["completion_length"] <= 8 for m in rows)
    # The mean reward went up over training, and the summary reports the first and last windows.
    rewards = [m.values["reward"] for m in rows]
    assert sum(rewards[-4:]) / 4 > sum(rewards[:4]) / 4 + 0.3, rewards
    assert (summary["reward_initial"], summary["reward_final"]) == (rewards[0], rewards[-1])
    assert summary["kl_final"] == rows[-1].values["kl"] > 0

    checkpoint = Checkpoint.objects.get(name="share-policy")
    assert checkpoint.kind == CheckpointKind.POLICY and not checkpoint.is_adapter
    assert checkpoint.parent == tiny_checkpoints["tiny-x"] and checkpoint.run == job and job.output == checkpoint
    meta = checkpoint.metadata
    assert (meta["algorithm"], meta["base"], meta["reward_model"], meta["snapshot_id"]) == (
        "rloo", "tiny-x", REWARD_NAME, prompt_snapshot.pk
    )
    assert meta["beta"] == 0.05 and meta["snapshot_hash"] == prompt_snapshot.content_hash
    assert meta["metrics"]["reward_final"] == rewards[-1] and meta["metrics"]["kl_final"] == summary["kl_final"]
    directory = Path(checkpoint.location)
    assert (directory / "config.json").is_file() and not (directory / "adapter_config.json").exists()
    assert not (data_dir / "runs" / str(job.pk)).exists()

    # What a user would check: fresh samples from the new checkpoint score higher than the base's.
    prompts = [row["prompt"] for row in toy_rows(4, offset=200)]  # prompts it never trained on
    before = sampled_rewards(tiny_checkpoints["tiny-x"].location, prompts, share_rm.location)
    after = sampled_rewards(checkpoint.location, prompts, share_rm.location)
    assert after > before + 0.3, (before, after)


@pytest.mark.django_db
def test_a_grpo_full_fine_tune_runs_against_a_frozen_reference_and_registers(
    tiny_checkpoints, share_rm, prompt_snapshot, data_dir, one_torch_thread
):
    from safetensors.torch import load_file

    from training.runners.rl import REFERENCE_FROZEN_COPY, run_rl

    job = rl_job(prompt_snapshot, algorithm="grpo", lora=False, learning_rate=1e-3, max_steps=3)
    summary = run_rl(job, Reporter(job.pk))
    assert summary["algorithm"] == "grpo" and summary["steps"] == 3
    assert summary["reference_model"] == REFERENCE_FROZEN_COPY
    rows = list(JobMetric.objects.filter(job=job).order_by("step"))
    assert [m.step for m in rows] == [1, 2, 3] and all({"reward", "kl", "completion_length"} <= set(m.values) for m in rows)
    assert rows[-1].values["kl"] > 0  # GRPO's k3 estimate is never negative; zero only before the first update

    checkpoint = Checkpoint.objects.get(run=job)
    assert checkpoint.name == f"tiny-x-grpo-{job.pk}" and checkpoint.parent.name == "tiny-x"
    assert checkpoint.metadata["algorithm"] == "grpo" and checkpoint.metadata["lora"] is False
    trained = load_file(Path(checkpoint.location) / "model.safetensors")
    base = load_file(data_dir / "checkpoints" / "tiny-x" / "model.safetensors")
    assert not torch.equal(trained["model.layers.0.self_attn.q_proj.weight"], base["model.layers.0.self_attn.q_proj.weight"])


@pytest.mark.django_db
def test_the_reward_trl_sees_is_the_score_the_reward_model_gives_the_conversation_as_it_was_trained(
    tiny_checkpoints, share_rm, prompt_snapshot, one_torch_thread, monkeypatch
):
    """RLOO's rewards come from ``RewardModelScore``; each must equal the scorer's (``rewards.py``) score
    of that prompt + completion, alone, from a fresh load: the conversation closed by the chat template
    exactly as ``RewardTrainer`` tokenised training pairs, no generation prompt, right padding."""
    from training.runners import rl
    from training.runners.rewards import conversation_ids, reward_model_load, rewards_compute

    seen = []
    original = rl.RewardModelScore.__call__

    def recording(self, prompts, completions, **kwargs):
        rewards = original(self, prompts, completions, **kwargs)
        seen.append((prompts, completions, rewards))
        return rewards

    monkeypatch.setattr(rl.RewardModelScore, "__call__", recording)
    job = rl_job(prompt_snapshot, max_steps=1)
    rl.run_rl(job, Reporter(job.pk))

    [(prompts, completions, rewards)] = seen
    assert len(prompts) == len(completions) == len(rewards) == 16
    model, tokenizer = reward_model_load(share_rm.location)
    for prompt, completion, reward in zip(prompts, completions, rewards):
        assert [message["role"] for message in completion] == ["assistant"]
        ids = conversation_ids(tokenizer, prompt, completion)
        rendered = tokenizer.decode(ids)
        assert rendered.endswith(completion[0]["content"] + "<|im_end|>\n")  # the turn closed, as in training
        assert rendered.startswith("<|im_start|>system\n") and prompt[-1]["content"] in rendered
        [alone] = rewards_compute(model, tokenizer.pad_token_id, [ids], batch_size=1)
        assert reward == pytest.approx(alone, abs=1e-4)
    assert len({round(r, 4) for r in rewards}) > 1  # the scores tell completions apart
    # The logged mean reward is the mean of exactly these scores (RLOO logs it before the KL penalty).
    logged = JobMetric.objects.get(job=job).values["reward"]
    assert logged == pytest.approx(sum(rewards) / len(rewards), abs=1e-5)


@pytest.mark.django_db
def test_a_cancelled_run_stops_early_and_registers_nothing_and_leaves_no_files(
    tiny_checkpoints, share_rm, prompt_snapshot, data_dir, one_torch_thread, monkeypatch
):
    from training.runners import reporting
    from training.runners.rl import run_rl

    monkeypatch.setattr(reporting, "STOP_CHECK_INTERVAL_S", 0)
    monkeypatch.setattr(reporting, "PROGRESS_INTERVAL_S", 0)
    before = checkpoint_dirs(data_dir)
    job = rl_job(prompt_snapshot, max_steps=200)
    reporter = StopAfter(job.pk, steps=2)
    summary = run_rl(job, reporter)
    assert reporter.halted and summary["cancelled"] and summary["checkpoint"] is None
    assert 2 <= summary["steps"] < 200
    assert not Checkpoint.objects.filter(run=job).exists() and Checkpoint.objects.filter(kind=CheckpointKind.POLICY).count() == 2
    assert checkpoint_dirs(data_dir) == before
    assert not (data_dir / "runs" / str(job.pk)).exists()


@pytest.mark.django_db
def test_a_crash_mid_run_propagates_and_registers_nothing_and_leaves_no_files(
    tiny_checkpoints, share_rm, prompt_snapshot, data_dir, one_torch_thread, monkeypatch
):
    from training.runners import rl

    calls = []
    original = rl.rewards_compute

    def failing(*args, **kwargs):
        calls.append(1)
        if len(calls) == 2:
            raise RuntimeError("reward model fell over")
        return original(*args, **kwargs)

    monkeypatch.setattr(rl, "rewards_compute", failing)
    before = checkpoint_dirs(data_dir)
    job = rl_job(prompt_snapshot, max_steps=5)
    with pytest.raises(RuntimeError, match="reward model fell over"):
        rl.run_rl(job, Reporter(job.pk))
    assert len(calls) == 2 and JobMetric.objects.filter(job=job).count() == 1  # it crashed in step 2
    assert not Checkpoint.objects.filter(run=job).exists()
    assert checkpoint_dirs(data_dir) == before
    assert not (data_dir / "runs" / str(job.pk)).exists()


@pytest.mark.django_db
def test_too_few_prompts_for_one_step_and_a_policy_as_reward_model_fail_readably(
    tiny_checkpoints, share_rm, data_dir, one_torch_thread
):
    from training.runners.rl import run_rl

    snapshot = snapshot_make(data_dir, toy_rows(3), toy_rows(1, offset=100))
    with pytest.raises(ValueError, match=r"3 usable prompts .* one step samples 4 prompts"):
        run_rl(rl_job(snapshot), Reporter(0))
    with pytest.raises(ValueError, match=r"'tiny-y' is a policy checkpoint; online RL needs a reward model"):
        run_rl(rl_job(snapshot, reward_model="tiny-y"), Reporter(0))


# --- pure parts --------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def smollm2_tokenizer(model_store):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(model_store.data_dir / "checkpoints" / "tiny-x")


def test_prompts_are_distinct_fit_the_length_limit_and_are_capped_by_a_seeded_sample_in_file_order(smollm2_tokenizer):
    from training.runners.rl import prompt_ids_length, prompts_choose

    def ask(text):
        return [{"role": "user", "content": text}]

    long = ask("word " * 200)
    rows = [{"prompt": ask(f"question {i % 10}")} for i in range(30)] + [{"prompt": long}]
    rows.insert(3, {"prompt": [{"content": "question 3", "role": "user"}]})  # same messages, other key order
    assert prompt_ids_length(smollm2_tokenizer, long) > 96 >= prompt_ids_length(smollm2_tokenizer, ask("question 1"))

    every = prompts_choose(rows, smollm2_tokenizer, max_prompt_length=96, max_prompts=None, seed=0)
    assert (every.distinct, every.too_long) == (11, 1)
    assert every.prompts == [ask(f"question {i}") for i in range(10)]

    capped = prompts_choose(rows, smollm2_tokenizer, max_prompt_length=96, max_prompts=4, seed=0)
    again = prompts_choose(rows, smollm2_tokenizer, max_prompt_length=96, max_prompts=4, seed=0)
    other = prompts_choose(rows, smollm2_tokenizer, max_prompt_length=96, max_prompts=4, seed=1)
    assert capped == again and len(capped.prompts) == 4 and capped.prompts != other.prompts
    order = [every.prompts.index(p) for p in capped.prompts]
    assert order == sorted(order)


def test_trl_log_names_become_plain_metric_names():
    from training.runners.rl import rl_metric_values

    logs = {
        "loss": 0.1, "reward": 2.0, "reward_std": 0.5, "kl": 0.01, "rewards/reward_model/mean": 2.0,
        "rewards/reward_model/std": 0.5, "completions/mean_length": 7.5, "completions/clipped_ratio": 0.75,
        "clip_ratio/region_mean": 0.0, "entropy": 10.1, "num_tokens": 400.0, "epoch": 1.0,
    }
    assert rl_metric_values(logs) == {
        "loss": 0.1, "reward": 2.0, "reward_std": 0.5, "kl": 0.01, "completion_length": 7.5,
        "completion_truncated_share": 0.75, "clip_ratio_region_mean": 0.0, "entropy": 10.1, "num_tokens": 400.0,
        "epoch": 1.0,
    }


def test_the_runner_registry_knows_rl():
    from training.runners import RUNNERS

    assert "rl" in RUNNERS


# --- a whole job (child process) -----------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_an_rl_run_in_a_child_process_succeeds_and_registers_an_adapter_over_its_base(
    tiny_checkpoints, share_rm, prompt_snapshot, data_dir, runner_env
):
    job = rl_job(prompt_snapshot, max_steps=2, save_adapter=True)
    Job.objects.filter(pk=job.pk).update(status=JobStatus.QUEUED)
    assert job_supervise(job_id=job.pk) == JobStatus.SUCCEEDED, explain(Job.objects.get(pk=job.pk))
    job.refresh_from_db()
    assert (job.progress_done, job.progress_total) == (2, 2) and job.tokens_per_s > 0
    assert job.summary["steps"] == 2 and job.summary["reward_final"] is not None
    checkpoint = job.output
    assert checkpoint.is_adapter and checkpoint.parent.name == "tiny-x" and checkpoint.run_id == job.pk
    assert checkpoint.metadata["reward_model"] == REWARD_NAME and checkpoint.metadata["adapter"] is True
    assert (Path(checkpoint.location) / "adapter_config.json").is_file()
    assert JobMetric.objects.filter(job=job, values__has_key="reward").count() == 2
    assert not (data_dir / "runs" / str(job.pk)).exists()


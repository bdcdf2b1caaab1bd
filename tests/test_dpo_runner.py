"""The DPO runner: TRL's DPOTrainer on a preference snapshot, a registered policy with lineage.

The toy preference is separable: a friendly reply is chosen over a curt one. What a user would
check is measured on the tiny Llama ``tiny-x`` itself: the log-probability margin of the chosen
reply over the rejected one on the training pairs, before (the base) and after (the checkpoint).
Most runs are in this process with a real ``Reporter``; one goes through ``job_supervise`` (the
worker's child process), and one runs as two processes (``torch.distributed.run``, gloo on CPU).
"""
from __future__ import annotations

import json
import shutil
import socket
import sys
import uuid
from pathlib import Path

import pytest
import torch

from training.models import Checkpoint, CheckpointKind, Job, JobKind, JobMetric, JobStatus
from training.policy_config import DPOConfig
from training.runners.progress import Reporter
from training.services import checkpoint_register
from training.supervisor import job_supervise

from .test_reward_runner import StopAfter, checkpoint_dirs, explain, snapshot_make

FRIENDLY = ["Sure, happy to help!", "Of course, gladly.", "Glad to help, here it is."]
CURT = ["No.", "Go away.", "Not my problem."]


def pair_rows(count: int, *, offset: int = 0, long_prompts: int = 0, long_replies: int = 0) -> list[dict]:
    """``count`` preference rows in the snapshot format: friendly chosen over curt. The first
    ``long_prompts`` rows have a prompt far over 96 tokens; the next ``long_replies`` a chosen
    reply that takes prompt + reply over 96 tokens."""
    rows = []
    for i in range(offset, offset + count):
        question = f"Fix item {i}?"
        chosen = FRIENDLY[i % len(FRIENDLY)]
        if i < offset + long_prompts:
            question = "Please read all of this first. " * 20 + question
        elif i < offset + long_prompts + long_replies:
            chosen = "Sure, happy to help, and here is every single detail you could ever want. " * 6
        rows.append({
            "prompt": [{"role": "user", "content": question}],
            "chosen": [{"role": "assistant", "content": chosen}],
            "rejected": [{"role": "assistant", "content": CURT[i % len(CURT)]}],
            "margin": 1.0, "strength": "clear", "comparison_id": 5000 + i,
        })
    return rows


def dpo_job(snapshot, **settings) -> Job:
    config = DPOConfig.from_dict({
        "base": "tiny-x", "snapshot_id": snapshot.pk, "learning_rate": 5e-3, "max_steps": 6,
        "per_device_train_batch_size": 4, "per_device_eval_batch_size": 4, "max_length": 96,
        "eval_steps": 3, "logging_steps": 2, "seed": 3, **settings,
    })
    return Job.objects.create(kind=JobKind.DPO, config=config.as_dict(), snapshot=snapshot, status=JobStatus.RUNNING)


@pytest.fixture(scope="module")
def one_torch_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture
def pair_snapshot(data_dir):
    return snapshot_make(data_dir, pair_rows(16), pair_rows(4, offset=100))


def load_causal_lm(location: str):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    return AutoModelForCausalLM.from_pretrained(location, dtype=torch.float32).eval(), AutoTokenizer.from_pretrained(location)


def reply_logp(model, tokenizer, prompt: list[dict], reply: list[dict]) -> float:
    """log π(reply | prompt) in nats: the reply's tokens after the chat-templated prompt, summed."""
    prompt_text = tokenizer.apply_chat_template(prompt, add_generation_prompt=True, tokenize=False)
    full_text = tokenizer.apply_chat_template(prompt + reply, tokenize=False)
    prompt_ids = tokenizer(prompt_text, add_special_tokens=False).input_ids
    ids = tokenizer(full_text, add_special_tokens=False).input_ids
    assert ids[: len(prompt_ids)] == prompt_ids
    with torch.inference_mode():
        logits = model(torch.tensor([ids])).logits[0, :-1].float()
    logps = torch.log_softmax(logits, dim=-1).gather(1, torch.tensor(ids[1:]).unsqueeze(1)).squeeze(1)
    return float(logps[len(prompt_ids) - 1:].sum())


def preference_margins(location: str, rows: list[dict], *, policy=None) -> list[float]:
    """Per pair: log π(chosen | prompt) - log π(rejected | prompt), with the model at ``location``
    (or an already loaded ``policy``: ``(model, tokenizer)``)."""
    model, tokenizer = policy or load_causal_lm(location)
    return [
        reply_logp(model, tokenizer, row["prompt"], row["chosen"]) - reply_logp(model, tokenizer, row["prompt"], row["rejected"])
        for row in rows
    ]


def greedy_reply(checkpoint: Checkpoint) -> tuple[str, object]:
    from training.runners.generation import sample_batch
    from training.runners.loading import checkpoint_policy_load

    policy = checkpoint_policy_load(checkpoint)
    [[sample]] = sample_batch(
        policy, [[{"role": "user", "content": "Fix item 3?"}]], max_new_tokens=8, temperature=0, top_p=1.0, seed=0
    )
    assert sample.new_tokens > 0
    return sample.text, policy


# --- in process -----------------------------------------------------------------------------------


@pytest.mark.django_db
def test_a_lora_dpo_run_registers_a_merged_policy_that_prefers_the_chosen_replies_and_the_adapter_form_matches_it(
    tiny_checkpoints, pair_snapshot, data_dir, one_torch_thread
):
    from safetensors.torch import load_file

    from training.runners.dpo import REFERENCE_ADAPTER_DISABLED, run_dpo

    base = tiny_checkpoints["tiny-x"]
    train = pair_rows(16)
    before = preference_margins(base.location, train)

    job = dpo_job(pair_snapshot, output_name="friendly-dpo")
    summary = run_dpo(job, Reporter(job.pk))
    job.refresh_from_db()
    assert summary["checkpoint"] == "friendly-dpo" and not summary["cancelled"]
    assert (summary["train_rows"], summary["eval_rows"], summary["steps"]) == (16, 4, 6)
    zero = {"train": 0, "eval": 0}
    assert summary["truncated_prompt"] == summary["truncated_response"] == summary["filtered_identical"] == zero
    assert "warnings" not in summary
    assert summary["reference_model"] == REFERENCE_ADAPTER_DISABLED
    assert summary["eval_reward_accuracy"] == 1.0 and summary["eval_reward_margin"] > 0
    assert summary["eval_reward_tie_rate"] == 0.0
    assert summary["train_loss"] > 0 and summary["samples_per_s"] > 0 and summary["seconds"] > 0
    assert (job.progress_done, job.progress_total) == (6, 6)

    checkpoint = Checkpoint.objects.get(name="friendly-dpo")
    assert checkpoint.kind == CheckpointKind.POLICY and not checkpoint.is_adapter
    assert checkpoint.parent == base and checkpoint.run == job and job.output == checkpoint
    meta = checkpoint.metadata
    assert (meta["method"], meta["base"], meta["beta"], meta["loss_type"]) == ("dpo", "tiny-x", 0.1, "sigmoid")
    assert (meta["snapshot_id"], meta["snapshot_hash"]) == (pair_snapshot.pk, pair_snapshot.content_hash)
    assert meta["metrics"]["eval_reward_accuracy"] == 1.0 and meta["adapter"] is False
    assert meta["metrics"]["eval_reward_tie_rate"] == 0.0

    # The user-visible effect: on every training pair the chosen reply gained on the rejected one.
    after = preference_margins(checkpoint.location, train)
    assert all(a > b for a, b in zip(after, before)), (before, after)
    assert sum(after) / len(after) > sum(before) / len(before) + 5.0, (before, after)

    # A plain causal-LM checkpoint, LoRA merged into the attention and MLP weights.
    directory = Path(checkpoint.location)
    assert directory.parent == data_dir / "checkpoints" and not directory.name.startswith(".")
    config = json.loads((directory / "config.json").read_text())
    assert config["architectures"] == ["LlamaForCausalLM"] and config["pad_token_id"] is not None
    assert "quantization_config" not in config and not (directory / "adapter_config.json").exists()
    weights = load_file(directory / "model.safetensors")
    assert not any("lora" in key or "base_layer" in key for key in weights)
    base_weights = load_file(Path(base.location) / "model.safetensors")
    assert not torch.equal(weights["model.layers.0.self_attn.q_proj.weight"], base_weights["model.layers.0.self_attn.q_proj.weight"])
    assert torch.equal(weights["model.embed_tokens.weight"], base_weights["model.embed_tokens.weight"])
    assert not (data_dir / "runs" / str(job.pk)).exists()

    # Metric rows: TRL's DPO statistics at each logging step, the evaluation's at steps 3 and 6.
    rows = list(JobMetric.objects.filter(job=job).order_by("pk"))
    train_rows = [m for m in rows if "loss" in m.values]
    eval_rows = [m for m in rows if "eval_loss" in m.values]
    assert [m.step for m in train_rows] == [2, 4, 6] and [m.step for m in eval_rows] == [3, 6]
    assert all({"rewards/accuracies", "rewards/margins", "logps/chosen", "learning_rate"} <= set(m.values) for m in train_rows)
    assert all({"eval_rewards/accuracies", "eval_rewards/margins"} <= set(m.values) for m in eval_rows)
    assert eval_rows[-1].values["eval_rewards/accuracies"] == 1.0  # TRL's, a mean of per-batch means
    # Ours, over pairs after training, ties apart: one more row at the last step.
    [held_out] = [m for m in rows if "eval_reward_tie_rate" in m.values]
    assert held_out.step == 6 and held_out.values == {"eval_reward_accuracy": 1.0, "eval_reward_tie_rate": 0.0, "eval_n": 4}

    # The same run saved as an adapter: two files over the parent, the same model once loaded.
    adapter_job = dpo_job(pair_snapshot, output_name="friendly-dpo-adapter", save_adapter=True)
    adapter_summary = run_dpo(adapter_job, Reporter(adapter_job.pk))
    adapter = Checkpoint.objects.get(name=adapter_summary["checkpoint"])
    assert adapter.is_adapter and adapter.parent == base and adapter.run == adapter_job
    assert adapter.metadata["adapter"] is True
    adapter_dir = Path(adapter.location)
    assert {"adapter_config.json", "adapter_model.safetensors"} <= {p.name for p in adapter_dir.iterdir()}
    assert not (adapter_dir / "model.safetensors").exists()
    assert json.loads((adapter_dir / "adapter_config.json").read_text())["base_model_name_or_path"] == base.location
    assert (adapter_dir / "adapter_model.safetensors").stat().st_size < (directory / "model.safetensors").stat().st_size / 4

    merged_text, merged = greedy_reply(checkpoint)
    adapter_text, from_adapter = greedy_reply(adapter)
    assert adapter_text == merged_text
    ids = merged.tokenizer("<|im_start|>user\nFix item 3?<|im_end|>", return_tensors="pt").input_ids
    with torch.inference_mode():
        torch.testing.assert_close(from_adapter.model(ids).logits, merged.model(ids).logits, atol=1e-4, rtol=1e-4)
    adapter_margins = preference_margins("", train, policy=(from_adapter.model, from_adapter.tokenizer))
    assert adapter_margins == pytest.approx(after, abs=1e-3)


@pytest.mark.django_db
def test_a_full_fine_tune_uses_a_frozen_reference_and_counts_what_fitting_cut_and_left_out(
    tiny_checkpoints, data_dir, one_torch_thread
):
    from training.runners.dpo import REFERENCE_FROZEN_COPY, run_dpo

    train = pair_rows(18, long_prompts=2, long_replies=2)
    # Two replies that differ only after max_length: the same tokens once cut, so no signal.
    long = "Sure, happy to help, and here is every single detail you could ever want. " * 8
    same = {**train[-1], "chosen": [{"role": "assistant", "content": long + "Kind."}],
            "rejected": [{"role": "assistant", "content": long + "Rude."}]}
    snapshot = snapshot_make(data_dir, train + [same], pair_rows(5, offset=100, long_prompts=1))
    before = preference_margins(tiny_checkpoints["tiny-x"].location, train[2:])
    job = dpo_job(snapshot, lora=False, learning_rate=1e-3, max_steps=4, eval_steps=4)
    summary = run_dpo(job, Reporter(job.pk))

    # Every pair is used but the identical one: long prompts lost their start, long replies their
    # end (and, for room, their prompt's start too); TRL dropped and cut nothing itself.
    assert summary["truncated_prompt"] == {"train": 5, "eval": 1}
    assert summary["truncated_response"] == {"train": 3, "eval": 0}
    assert summary["filtered_identical"] == {"train": 1, "eval": 0}
    assert summary["warnings"] == [
        "1 of 19 training pairs left out: chosen and rejected are the same tokens after cutting to max_length "
        "(no preference signal); raise max_length to keep them"
    ]
    assert (summary["train_rows"], summary["eval_rows"]) == (18, 5)
    assert summary["reference_model"] == REFERENCE_FROZEN_COPY
    checkpoint = Checkpoint.objects.get(run=job)
    assert checkpoint.name == f"tiny-x-dpo-{job.pk}" and checkpoint.metadata["lora"] is False
    assert checkpoint.metadata["reference_model"] == REFERENCE_FROZEN_COPY
    after = preference_margins(checkpoint.location, train[2:])
    assert sum(after) / len(after) > sum(before) / len(before) + 5.0, (before, after)


@pytest.mark.django_db
def test_a_cancelled_dpo_run_stops_early_and_leaves_no_checkpoint_and_no_files(
    tiny_checkpoints, pair_snapshot, data_dir, one_torch_thread, monkeypatch
):
    from training.runners import reporting
    from training.runners.dpo import run_dpo

    monkeypatch.setattr(reporting, "STOP_CHECK_INTERVAL_S", 0)
    monkeypatch.setattr(reporting, "PROGRESS_INTERVAL_S", 0)
    before = checkpoint_dirs(data_dir)
    job = dpo_job(pair_snapshot, max_steps=200, eval_steps=1000)
    reporter = StopAfter(job.pk, steps=2)
    summary = run_dpo(job, reporter)
    assert reporter.halted and summary["cancelled"] and summary["checkpoint"] is None and summary["steps"] == 2
    job.refresh_from_db()
    assert (job.progress_done, job.progress_total) == (2, 200)
    assert not Checkpoint.objects.filter(run=job).exists() and Checkpoint.objects.count() == 2
    assert checkpoint_dirs(data_dir) == before
    assert not (data_dir / "runs" / str(job.pk)).exists()


class CrashAtFirstLog(Reporter):
    def metric(self, **fields) -> None:
        raise RuntimeError("disk full while logging")


@pytest.mark.django_db
def test_a_dpo_run_that_crashes_mid_training_registers_nothing_and_leaves_no_files(
    tiny_checkpoints, pair_snapshot, data_dir, one_torch_thread
):
    from training.runners.dpo import run_dpo

    before = checkpoint_dirs(data_dir)
    job = dpo_job(pair_snapshot)
    with pytest.raises(RuntimeError, match="disk full"):
        run_dpo(job, CrashAtFirstLog(job.pk))
    assert not Checkpoint.objects.filter(run=job).exists()
    assert checkpoint_dirs(data_dir) == before
    assert not (data_dir / "runs" / str(job.pk)).exists()


@pytest.mark.django_db
def test_a_qlora_dpo_run_on_this_cpu_worker_is_refused_in_one_line_before_any_model_loads(
    tiny_checkpoints, pair_snapshot, data_dir, one_torch_thread
):
    from training.runners.dpo import run_dpo
    from training.runners.gpu import GpuOptionRefused

    assert not torch.cuda.is_available()
    before = checkpoint_dirs(data_dir)
    job = dpo_job(pair_snapshot, quantization="4bit", save_adapter=True)
    with pytest.raises(GpuOptionRefused, match=r"^quantization 4bit \(QLoRA\) needs a CUDA GPU; this worker has none"):
        run_dpo(job, CrashAtFirstLog(job.pk))
    assert checkpoint_dirs(data_dir) == before and not (data_dir / "runs" / str(job.pk)).exists()


@pytest.mark.django_db
def test_a_dpo_run_refuses_an_sft_snapshot_and_a_template_that_breaks_the_prefix_rule(
    tiny_checkpoints, data_dir, one_torch_thread
):
    from transformers import AutoTokenizer

    from training.runners.pair_tokens import ChatTemplatePrefixError
    from training.runners.dpo import run_dpo

    sft = snapshot_make(data_dir, [{"prompt": [], "completion": []}], [])
    sft.kind = "sft"
    sft.save()
    with pytest.raises(ValueError, match="holds sft rows; DPO needs preference pairs"):
        run_dpo(dpo_job(sft), Reporter(0))

    folder = data_dir / "checkpoints" / f"odd-dpo-{uuid.uuid4().hex[:8]}"
    shutil.copytree(data_dir / "checkpoints" / "tiny-x", folder)
    tokenizer = AutoTokenizer.from_pretrained(folder)
    tokenizer.chat_template = (  # the generation prompt's header differs from an assistant message's
        "{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n{% endfor %}"
        "{% if add_generation_prompt %}<|im_start|>assistant thinking\n{% endif %}"
    )
    tokenizer.save_pretrained(folder)
    checkpoint_register(name="odd-dpo", weights_dir=str(folder.relative_to(data_dir)))
    job = dpo_job(snapshot_make(data_dir, pair_rows(4), []), base="odd-dpo")
    with pytest.raises(ChatTemplatePrefixError, match=r"^the chat template of checkpoint 'odd-dpo' renders a prompt"):
        run_dpo(job, Reporter(job.pk))
    assert not (data_dir / "runs" / str(job.pk)).exists()
    shutil.rmtree(folder)


def test_held_out_pairs_whose_implicit_rewards_are_equal_count_as_ties_not_wrong(tiny_checkpoints, one_torch_thread):
    """Before any training the policy is its reference: every implicit reward is 0, so every pair
    is a tie (TRL's ``chosen > rejected`` would call them all wrong)."""
    from types import SimpleNamespace

    from transformers import AutoModelForCausalLM, AutoTokenizer

    from training.runners.dpo_heldout import implicit_reward_outcomes
    from training.runners.pair_tokens import pairs_prepare

    location = tiny_checkpoints["tiny-x"].location
    tokenizer = AutoTokenizer.from_pretrained(location)
    pairs, _ = pairs_prepare(tokenizer, pair_rows(5), max_length=96, checkpoint="tiny-x")
    policy, reference = (AutoModelForCausalLM.from_pretrained(location) for _ in range(2))
    trainer = SimpleNamespace(model=policy, ref_model=reference)
    outcome = implicit_reward_outcomes(trainer, pairs, beta=0.1, pad_token_id=tokenizer.pad_token_id, batch_size=4)
    assert outcome == {"accuracy": 0.0, "tie_rate": 1.0, "n": 5}
    with torch.no_grad():  # a policy that moved: no ties left, and the figures sum to at most 1
        policy.lm_head.weight.add_(0.05 * torch.randn_like(policy.lm_head.weight))
    moved = implicit_reward_outcomes(trainer, pairs, beta=0.1, pad_token_id=tokenizer.pad_token_id, batch_size=4)
    assert moved["tie_rate"] == 0.0 and moved["n"] == 5


def test_the_runner_registry_knows_dpo_and_sft():
    from training.runners import RUNNERS

    assert {"dpo", "sft", "reward", "generation", "scoring"} <= set(RUNNERS)


# --- whole jobs (child processes) -----------------------------------------------------------------


def queued_dpo_job(snapshot, **settings) -> Job:
    job = dpo_job(snapshot, **settings)
    Job.objects.filter(pk=job.pk).update(status=JobStatus.QUEUED)
    return job


@pytest.mark.django_db(transaction=True)
def test_a_dpo_run_in_a_child_process_succeeds_and_registers_its_policy(tiny_checkpoints, pair_snapshot, runner_env):
    job = queued_dpo_job(pair_snapshot, max_steps=4, eval_steps=4)
    assert job_supervise(job_id=job.pk) == JobStatus.SUCCEEDED, explain(Job.objects.get(pk=job.pk))
    job.refresh_from_db()
    assert job.summary["checkpoint"] == f"tiny-x-dpo-{job.pk}" and job.summary["eval_reward_accuracy"] == 1.0
    assert (job.progress_done, job.progress_total) == (4, 4) and job.tokens_per_s > 0
    checkpoint = job.output
    assert checkpoint.kind == CheckpointKind.POLICY and checkpoint.parent.name == "tiny-x"
    assert checkpoint.metadata["method"] == "dpo" and checkpoint.metadata["snapshot_id"] == pair_snapshot.pk


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.mark.django_db(transaction=True)
def test_a_dpo_run_on_two_processes_trains_on_both_and_registers_one_checkpoint_from_the_main_one(
    tiny_checkpoints, pair_snapshot, data_dir, runner_env, monkeypatch
):
    """``torchrun --nproc_per_node 2 -m training.runner JOB_ID`` on CPU (gloo), through the supervisor."""
    launcher = (
        f"{sys.executable} -m torch.distributed.run --nnodes 1 --nproc_per_node 2 "
        f"--master_addr 127.0.0.1 --master_port {free_port()}"
    )
    monkeypatch.setenv("ARBITER_RUNNER_LAUNCHER", launcher)
    before = checkpoint_dirs(data_dir)
    job = queued_dpo_job(pair_snapshot, max_steps=4, eval_steps=2, logging_steps=1)
    assert job_supervise(job_id=job.pk) == JobStatus.SUCCEEDED, explain(Job.objects.get(pk=job.pk))
    job.refresh_from_db()

    # Data parallel: each step took 4 pairs on each process, so 4 steps went twice through the 16 pairs
    # (one process would have gone through once).
    assert job.summary["steps"] == 4 and job.summary["epochs"] == 2.0, job.summary
    assert job.summary["train_rows"] == 16 and job.summary["eval_reward_accuracy"] is not None
    assert (job.progress_done, job.progress_total) == (4, 4)
    # One checkpoint, one folder, no temporary folders; the metric rows were written once.
    assert Checkpoint.objects.filter(run=job).count() == 1 and Checkpoint.objects.count() == 3
    checkpoint = job.output
    assert checkpoint_dirs(data_dir) - before == {Path(checkpoint.location).name}
    assert not [p for p in (data_dir / "checkpoints").iterdir() if p.name.startswith(".tmp")]
    assert not (data_dir / "runs" / str(job.pk)).exists()
    metrics = list(JobMetric.objects.filter(job=job))
    train_steps = sorted(m.step for m in metrics if "loss" in m.values)
    eval_steps = sorted(m.step for m in metrics if "eval_loss" in m.values)
    assert (train_steps, eval_steps) == ([1, 2, 3, 4], [2, 4])

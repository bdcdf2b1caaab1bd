#!/usr/bin/env python
"""Reward-training overhead: the platform's reward run against a bare TRL ``RewardTrainer`` script.

    .venv/bin/python bench/train_overhead.py                        # SmolLM2-135M, 128 pairs, max length 128, batch 8
    .venv/bin/python bench/train_overhead.py --model tiny --train-pairs 256   # a tiny Llama: the overhead shows more
    .venv/bin/python bench/train_overhead.py --parts rloo --rloo-steps 8      # only the RLOO row
    .venv/bin/python bench/train_overhead.py --parts dpo --model tiny --dpo-train-pairs 32   # only the DPO row

One run sets up a fresh store in a temporary ``ARBITER_VAR_DIR`` under ``var/`` (removed afterwards
unless ``--keep``): a new SQLite database (migrated), human preferences from the shared HH-RLHF sample
(``../shared/data/hh-rlhf-harmless-base-sample.jsonl.gz``) imported with ``manage.py import_hh_rlhf``
(``--import-train`` pairs into the train split, the next ``--import-eval`` into eval), and the base:
the bundled SmolLM2-135M-Instruct (``training.registry.model_import``; the float32 conversion is
cached in ``ARBITER_MODEL_CACHE``) or, with ``--model tiny``, a random 2-layer Llama (hidden 32)
with SmolLM2's tokenizer. ``reward_run_create`` then freezes the votes into a dataset snapshot.

Both sides train on the same snapshot rows (its ``train.jsonl`` and ``eval.jsonl``), from the same
base, with the same settings: ``max_steps`` = ``--train-pairs`` / ``--batch-size`` (so both see the
same ``--train-pairs`` pairs after TRL's length filter and its seeded shuffle), ``--max-length``,
learning rate, seed, evaluation every ``--eval-steps`` steps, logging every ``--logging-steps``,
float32, no gradient checkpointing, margins as the snapshot has them.

- platform: the real path. ``job_supervise`` runs ``python -m training.runner JOB_ID`` in a child
  process (the same as the worker): ``run_reward`` reads the snapshot, trains with TRL's
  ``RewardTrainer`` plus our callbacks (progress, metrics rows, cancel checks, accuracy by strength),
  saves the merged checkpoint and registers it. A small helper process runs the supervisor so its
  ``RUSAGE_CHILDREN`` peak RSS is the runner's alone.
- bare: this file in a child process (``--bare-worker``): what a competent user would write with TRL
  and these settings: load the JSONL files, keep prompt/chosen/rejected(/margin), ``RewardTrainer``,
  ``train()``, ``save_model``. No database.

Figures per side: samples/s = TRL's ``train_samples_per_second`` (preference pairs per second over
``train()``, which includes the evaluations during training; the 0.95 floor applies here), the
whole child's wall time (Python start, imports, data, model load, training, saving; for the platform
also the supervisor), and peak RSS of the training process (``ru_maxrss``). Noise: as in
``bench/generate.py``, each run records the share of CPUs other processes kept busy; a noisy run is
run again once (``--retry-noisy``) and medians prefer quiet runs.

RLOO row (``--parts`` has ``rloo``; keys prefixed ``rloo_``): online RL against a reward model.
The reward model is the base with a new random one-output score head, registered as kind reward
(the row measures overhead, not learning). The prompts are chosen once with the runner's own
``training.runners.rl.prompts_choose`` (distinct train prompts of the snapshot that fit
``--rloo-max-prompt-length``, at most ``--rloo-prompts``, seeded) and both sides train on them:

- platform: an ``rl`` job (``rl_run_create``, ``algorithm="rloo"``) through ``job_supervise`` in a
  child process: ``run_rl`` with TRL's ``RLOOTrainer``, our reward function
  (``RewardModelScore``: the scorer's tokenisation), LoRA (the platform's defaults), metric rows,
  cancel checks, the merged checkpoint written and registered.
- bare: ``--bare-rloo-worker``: ``RLOOTrainer`` with the reward checkpoint passed as a model plus
  its tokenizer (TRL's own reward-model path), the same LoRA, ``--rloo-steps`` steps of
  ``--rloo-batch-size`` completions (``--rloo-generations`` per prompt, up to
  ``--rloo-completion-length`` tokens), beta, learning rate, seed, float32; ``save_model``.

Samples/s for RLOO is completions per second over ``train()`` (TRL's ``train_samples_per_second``:
sampling, reward scoring, reference and policy passes, updates); the 0.95 floor applies there too.

DPO row (``--parts`` has ``dpo``; keys prefixed ``dpo_``): TRL ``DPOTrainer`` on the same snapshot
files. platform: a ``dpo`` job (``dpo_run_create``) through ``job_supervise`` in a child process:
``run_dpo`` with LoRA (the platform's defaults; the reference model is the adapter-disabled base),
metric rows, cancel checks, the merged checkpoint written and registered. bare:
``--bare-dpo-worker``: ``DPOTrainer`` with the same LoRA, ``--dpo-train-pairs`` / ``--dpo-batch-size``
steps, ``--dpo-max-length``, beta, learning rate, seed, float32, evaluation every
``--dpo-eval-steps`` (default: once, at the end) on the eval file; ``save_model``. Samples/s is
preference pairs per second over ``train()``; the 0.95 floor applies there too.

The last line is one JSON object. Exit status 1 when a run fails or the sides trained on different
numbers of pairs; the floor is reported (``floor_met``), not enforced.
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(Path(__file__).resolve().parent))
from generate import NOISY, cpu_snapshot, loadavg, others_share, wait_for_quiet  # noqa: E402

FLOOR = 0.95
HH_RLHF = ROOT.parent / "shared" / "data" / "hh-rlhf-harmless-base-sample.jsonl.gz"
TINY_NAME = "tiny-bench"


def peak_rss_mb(who) -> float:
    """Peak resident set size in MiB (``ru_maxrss`` is KiB on Linux)."""
    return resource.getrusage(who).ru_maxrss / 1024


# --- bare TRL script (child process) ------------------------------------------------------------

def bare_worker(spec_path: str, out_path: str) -> None:
    """Train a reward model with TRL alone on the spec's files; write figures as JSON."""
    started = time.perf_counter()
    import torch
    from datasets import Dataset
    from transformers import AutoTokenizer
    from trl import RewardConfig, RewardTrainer

    spec = json.loads(Path(spec_path).read_text())

    def load(path):
        rows = [json.loads(line) for line in Path(path).read_text().splitlines() if line.strip()]
        columns = ["prompt", "chosen", "rejected"] + (["margin"] if spec["use_margin"] and "margin" in rows[0] else [])
        return Dataset.from_list([{c: row[c] for c in columns} for row in rows])

    train, held_out = load(spec["train_path"]), load(spec["eval_path"])
    tokenizer = AutoTokenizer.from_pretrained(spec["location"])
    with tempfile.TemporaryDirectory() as output_dir:
        args = RewardConfig(
            output_dir=output_dir, report_to="none", save_strategy="no", disable_tqdm=True,
            learning_rate=spec["learning_rate"], max_steps=spec["max_steps"],
            per_device_train_batch_size=spec["batch_size"], per_device_eval_batch_size=spec["eval_batch_size"],
            max_length=spec["max_length"], eval_strategy="steps", eval_steps=spec["eval_steps"],
            logging_steps=spec["logging_steps"], seed=spec["seed"],
            bf16=False, activation_checkpointing=False, dataloader_pin_memory=False,
        )
        trainer = RewardTrainer(model=spec["location"], args=args, train_dataset=train, eval_dataset=held_out,
                                processing_class=tokenizer)
        result = trainer.train()
        trainer.save_model(str(Path(output_dir) / "model"))
        evals = [entry for entry in trainer.state.log_history if "eval_accuracy" in entry]
    Path(out_path).write_text(json.dumps({
        "samples_per_s": result.metrics["train_samples_per_second"], "train_s": result.metrics["train_runtime"],
        "steps": trainer.state.global_step, "train_rows": len(trainer.train_dataset),
        "eval_rows": len(trainer.eval_dataset), "eval_accuracy": evals[-1]["eval_accuracy"] if evals else None,
        "worker_s": time.perf_counter() - started, "peak_rss_mb": peak_rss_mb(resource.RUSAGE_SELF),
        "threads": torch.get_num_threads(),
    }))


def run_bare(spec_path: Path, workdir: Path) -> dict:
    out = workdir / f"bare-{time.monotonic_ns()}.json"
    log = out.with_suffix(".log")
    started = time.perf_counter()
    with log.open("wb") as handle:
        done = subprocess.run([sys.executable, str(Path(__file__).resolve()), "--bare-worker", str(spec_path), str(out)],
                              cwd=ROOT, stdout=handle, stderr=subprocess.STDOUT)
    if done.returncode:
        raise SystemExit(f"bare run failed ({done.returncode}):\n{log.read_text()[-3000:]}")
    result = json.loads(out.read_text())
    result["total_s"] = time.perf_counter() - started
    return result


# --- platform run (job_supervise in a helper process) -------------------------------------------

def platform_worker(job_id: str, out_path: str) -> None:
    """Run one queued job through the supervisor; record the runner child's peak RSS."""
    import django

    django.setup()
    from training.supervisor import job_supervise

    status = job_supervise(job_id=int(job_id))
    Path(out_path).write_text(json.dumps({"status": status, "peak_rss_mb": peak_rss_mb(resource.RUSAGE_CHILDREN)}))


def run_platform(config: dict, workdir: Path) -> dict:
    from training.models import Job
    from training.services import reward_run_create
    from training.supervisor import log_tail

    job = reward_run_create(config=config)
    out = workdir / f"platform-{job.pk}.json"
    started = time.perf_counter()
    subprocess.run([sys.executable, str(Path(__file__).resolve()), "--platform-worker", str(job.pk), str(out)],
                   check=True, cwd=ROOT)
    total = time.perf_counter() - started
    helper = json.loads(out.read_text())
    job = Job.objects.get(pk=job.pk)
    if job.status != "succeeded":
        raise SystemExit(f"platform job {job.pk} {job.status}: {job.error}\n{log_tail(job.pk)}")
    summary = job.summary
    return {
        "samples_per_s": summary["samples_per_s"], "steps": summary["steps"], "train_rows": summary["train_rows"],
        "eval_rows": summary["eval_rows"], "eval_accuracy": summary["eval_accuracy"], "total_s": total,
        "run_s": summary["seconds"], "peak_rss_mb": helper["peak_rss_mb"], "job": job.pk,
        "truncated_prompt": summary["truncated_prompt"], "filtered_identical": summary["filtered_identical"],
        "metric_rows": job.metrics.count(),
    }


# --- RLOO: platform RL run against a bare TRL RLOOTrainer script ------------------------------

RLOO_REWARD_NAME = "bench-rm"


def bare_rloo_worker(spec_path: str, out_path: str) -> None:
    """Train with TRL's RLOOTrainer alone on the spec's prompts and reward model; write figures as JSON.

    What a competent user would write: the prompts as a conversational prompt-only dataset, the
    reward checkpoint passed to TRL as a model with its tokenizer (TRL's own reward-model path),
    the same LoRA and trainer settings, ``train()``, ``save_model``. No database.
    """
    started = time.perf_counter()
    import torch
    from datasets import Dataset
    from peft import LoraConfig
    from transformers import AutoModelForSequenceClassification, AutoTokenizer
    from trl import RLOOConfig, RLOOTrainer

    spec = json.loads(Path(spec_path).read_text())
    tokenizer = AutoTokenizer.from_pretrained(spec["location"], padding_side="left")
    reward_model = AutoModelForSequenceClassification.from_pretrained(spec["reward_location"], dtype=torch.float32)
    reward_tokenizer = AutoTokenizer.from_pretrained(spec["reward_location"])
    with tempfile.TemporaryDirectory() as output_dir:
        args = RLOOConfig(
            output_dir=output_dir, report_to="none", save_strategy="no", disable_tqdm=True,
            learning_rate=spec["learning_rate"], max_steps=spec["max_steps"],
            per_device_train_batch_size=spec["batch_size"], num_generations=spec["num_generations"],
            max_completion_length=spec["max_completion_length"], temperature=1.0, beta=spec["beta"],
            logging_steps=spec["logging_steps"], seed=spec["seed"], disable_dropout=spec["lora_dropout"] == 0,
            bf16=False, activation_checkpointing=False, dataloader_pin_memory=False,
            model_init_kwargs={"dtype": "float32"},
        )
        trainer = RLOOTrainer(
            model=spec["location"], reward_funcs=reward_model, reward_processing_classes=reward_tokenizer, args=args,
            train_dataset=Dataset.from_list([{"prompt": prompt} for prompt in spec["prompts"]]),
            processing_class=tokenizer,
            peft_config=LoraConfig(task_type="CAUSAL_LM", r=spec["lora_r"], lora_alpha=spec["lora_alpha"],
                                   lora_dropout=spec["lora_dropout"], target_modules="all-linear"),
        )
        result = trainer.train()
        trainer.save_model(str(Path(output_dir) / "model"))
        rewards = [entry["reward"] for entry in trainer.state.log_history if "reward" in entry]
    Path(out_path).write_text(json.dumps({
        "samples_per_s": result.metrics["train_samples_per_second"], "train_s": result.metrics["train_runtime"],
        "steps": trainer.state.global_step, "prompts": len(spec["prompts"]),
        "reward_final": rewards[-1] if rewards else None,
        "worker_s": time.perf_counter() - started, "peak_rss_mb": peak_rss_mb(resource.RUSAGE_SELF),
        "threads": torch.get_num_threads(),
    }))


def run_bare_rloo(spec_path: Path, workdir: Path) -> dict:
    out = workdir / f"bare-rloo-{time.monotonic_ns()}.json"
    log = out.with_suffix(".log")
    started = time.perf_counter()
    with log.open("wb") as handle:
        done = subprocess.run(
            [sys.executable, str(Path(__file__).resolve()), "--bare-rloo-worker", str(spec_path), str(out)],
            cwd=ROOT, stdout=handle, stderr=subprocess.STDOUT,
        )
    if done.returncode:
        raise SystemExit(f"bare RLOO run failed ({done.returncode}):\n{log.read_text()[-3000:]}")
    result = json.loads(out.read_text())
    result["total_s"] = time.perf_counter() - started
    return result


def run_platform_rloo(config: dict, workdir: Path) -> dict:
    from training.models import Job
    from training.services import rl_run_create
    from training.supervisor import log_tail

    job = rl_run_create(config=config)
    out = workdir / f"platform-{job.pk}.json"
    started = time.perf_counter()
    subprocess.run([sys.executable, str(Path(__file__).resolve()), "--platform-worker", str(job.pk), str(out)],
                   check=True, cwd=ROOT)
    total = time.perf_counter() - started
    helper = json.loads(out.read_text())
    job = Job.objects.get(pk=job.pk)
    if job.status != "succeeded":
        raise SystemExit(f"platform RL job {job.pk} {job.status}: {job.error}\n{log_tail(job.pk)}")
    summary = job.summary
    return {
        "samples_per_s": summary["samples_per_s"], "steps": summary["steps"], "prompts": summary["prompts"],
        "reward_final": summary["reward_final"], "total_s": total, "run_s": summary["seconds"],
        "peak_rss_mb": helper["peak_rss_mb"], "job": job.pk, "metric_rows": job.metrics.count(),
    }


def rloo_reward_register(location: str) -> tuple[str, str]:
    """A reward checkpoint for the RLOO row: the base with a new random one-output score head
    (transformers' ``AutoModelForSequenceClassification``), registered as kind reward. The bench
    measures overhead, not learning, so an untrained head is enough; both sides use it."""
    from django.conf import settings
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    from training.models import CheckpointKind
    from training.services import checkpoint_register

    tokenizer = AutoTokenizer.from_pretrained(location)
    model = AutoModelForSequenceClassification.from_pretrained(location, num_labels=1)
    model.config.pad_token_id = tokenizer.pad_token_id
    directory = Path(settings.ARBITER_DATA_DIR) / "checkpoints" / RLOO_REWARD_NAME
    model.save_pretrained(directory)
    tokenizer.save_pretrained(directory)
    checkpoint = checkpoint_register(name=RLOO_REWARD_NAME, kind=CheckpointKind.REWARD,
                                     weights_dir=f"checkpoints/{RLOO_REWARD_NAME}", parent=None)
    return checkpoint.name, checkpoint.location


def bench_rloo(args, workdir: Path, name: str, location: str, snapshot) -> tuple[dict, list[str]]:
    """The RLOO row: platform ``rl`` job (child process) against ``bare_rloo_worker`` on the same
    prompts (chosen by the runner's own ``prompts_choose``), base, reward model and settings.
    Returns the ``rloo_``-prefixed JSON keys and any problems."""
    from transformers import AutoTokenizer

    from training.policy_config import RLConfig
    from training.runners.rl import prompts_choose
    from training.runners.snapshot_rows import rows_read

    reward_name, reward_location = rloo_reward_register(location)
    steps, batch = args.rloo_steps, args.rloo_batch_size
    config = {
        "base": name, "reward_model": reward_name, "snapshot_id": snapshot.id, "algorithm": "rloo",
        "max_steps": steps, "per_device_train_batch_size": batch, "num_generations": args.rloo_generations,
        "max_completion_length": args.rloo_completion_length, "max_prompt_length": args.rloo_max_prompt_length,
        "max_prompts": args.rloo_prompts, "learning_rate": args.rloo_learning_rate, "beta": args.rloo_beta,
        "logging_steps": args.logging_steps, "seed": args.seed,
    }
    defaults = RLConfig.from_dict(config)  # the platform's LoRA settings, for the bare side too
    choice = prompts_choose(
        rows_read(Path(snapshot.train_path)), AutoTokenizer.from_pretrained(location),
        max_prompt_length=args.rloo_max_prompt_length, max_prompts=args.rloo_prompts, seed=args.seed,
    )
    spec_path = workdir / "bare-rloo-spec.json"
    spec_path.write_text(json.dumps({
        "location": location, "reward_location": reward_location, "prompts": choice.prompts,
        "learning_rate": args.rloo_learning_rate, "max_steps": steps, "batch_size": batch,
        "num_generations": args.rloo_generations, "max_completion_length": args.rloo_completion_length,
        "beta": args.rloo_beta, "logging_steps": args.logging_steps, "seed": args.seed,
        "lora_r": defaults.lora_r, "lora_alpha": defaults.lora_alpha, "lora_dropout": defaults.lora_dropout,
    }))
    print(f"RLOO: {len(choice.prompts)} prompts ({choice.distinct} distinct, {choice.too_long} too long); "
          f"{steps} steps of {batch} completions ({args.rloo_generations} per prompt, up to "
          f"{args.rloo_completion_length} tokens)", flush=True)
    runs: dict[str, list[dict]] = {"platform": [], "bare": []}
    for repeat in range(args.repeats):
        for side in (("platform", "bare") if repeat % 2 == 0 else ("bare", "platform")):
            for _attempt in range(1 + args.retry_noisy):
                wait_for_quiet(args.quiet_wait)
                before = cpu_snapshot()
                result = run_platform_rloo(config, workdir) if side == "platform" else run_bare_rloo(spec_path, workdir)
                result["others"] = others_share(before, cpu_snapshot())
                runs[side].append(result)
                noisy = result["others"] >= NOISY
                print(f"  RLOO repeat {repeat + 1} {side:8}: {result['samples_per_s']:7.2f} completions/s in train(), "
                      f"{result['total_s']:6.1f} s total, peak RSS {result['peak_rss_mb']:7.0f} MiB, final reward "
                      f"{result['reward_final']}; other processes used {result['others']:.0%} of the CPUs"
                      f"{' (noisy)' if noisy else ''}, loadavg {loadavg()}", flush=True)
                if not noisy:
                    break

    def kept(side):
        quiet = [r for r in runs[side] if r["others"] < NOISY]
        return quiet or [min(runs[side], key=lambda r: r["others"])]

    def med(side, key):
        return statistics.median(r[key] for r in kept(side))

    platform_run, bare_run = runs["platform"][-1], runs["bare"][-1]
    problems = []
    if (platform_run["steps"], platform_run["prompts"]) != (bare_run["steps"], bare_run["prompts"]):
        problems.append(f"RLOO: platform ran {platform_run['steps']} steps on {platform_run['prompts']} prompts, "
                        f"bare {bare_run['steps']} on {bare_run['prompts']}")
    ratio = med("platform", "samples_per_s") / med("bare", "samples_per_s")
    e2e_ratio = med("bare", "total_s") / med("platform", "total_s")
    rss_ratio = med("platform", "peak_rss_mb") / med("bare", "peak_rss_mb")
    others = max(r["others"] for side in runs for r in kept(side))
    print(f"\nRLOO platform/bare completions/s: {ratio:.3f} (floor {FLOOR}: {'met' if ratio >= FLOOR else 'NOT met'}); "
          f"end to end (bare s / platform s): {e2e_ratio:.3f}; peak RSS platform/bare: {rss_ratio:.3f}; "
          f"other processes took up to {others:.0%} of the CPUs" + (" -- figures are noisy" if others >= NOISY else ""))
    return {
        "rloo_platform_samples_per_s": round(med("platform", "samples_per_s"), 3),
        "rloo_bare_samples_per_s": round(med("bare", "samples_per_s"), 3), "rloo_ratio": round(ratio, 3),
        "rloo_floor": FLOOR, "rloo_floor_met": ratio >= FLOOR,
        "rloo_platform_total_s": round(med("platform", "total_s"), 1), "rloo_bare_total_s": round(med("bare", "total_s"), 1),
        "rloo_e2e_ratio": round(e2e_ratio, 3), "rloo_platform_peak_rss_mb": round(med("platform", "peak_rss_mb")),
        "rloo_bare_peak_rss_mb": round(med("bare", "peak_rss_mb")), "rloo_rss_ratio": round(rss_ratio, 3),
        "rloo_platform_reward_final": platform_run["reward_final"], "rloo_bare_reward_final": bare_run["reward_final"],
        "rloo_platform_metric_rows": platform_run["metric_rows"], "rloo_prompts": len(choice.prompts),
        "rloo_steps": steps, "rloo_batch_size": batch, "rloo_num_generations": args.rloo_generations,
        "rloo_max_completion_length": args.rloo_completion_length, "rloo_threads": bare_run["threads"],
        "rloo_others_cpu_share_max": round(others, 3),
    }, problems


# --- DPO: platform DPO run against a bare TRL DPOTrainer script --------------------------------

def bare_dpo_worker(spec_path: str, out_path: str) -> None:
    """Train with TRL's DPOTrainer alone on the spec's snapshot files; write figures as JSON.

    What a competent user would write: load the JSONL files, keep prompt/chosen/rejected,
    ``DPOTrainer`` with the same LoRA (the reference is then the adapter-disabled base) and trainer
    settings, ``train()``, ``save_model``. No database.
    """
    started = time.perf_counter()
    import torch
    from datasets import Dataset
    from peft import LoraConfig
    from transformers import AutoTokenizer
    from trl import DPOConfig, DPOTrainer

    spec = json.loads(Path(spec_path).read_text())

    def load(path):
        rows = [json.loads(line) for line in Path(path).read_text().splitlines() if line.strip()]
        return Dataset.from_list([{c: row[c] for c in ("prompt", "chosen", "rejected")} for row in rows])

    tokenizer = AutoTokenizer.from_pretrained(spec["location"])
    with tempfile.TemporaryDirectory() as output_dir:
        args = DPOConfig(
            output_dir=output_dir, report_to="none", save_strategy="no", disable_tqdm=True,
            learning_rate=spec["learning_rate"], max_steps=spec["max_steps"], beta=spec["beta"],
            per_device_train_batch_size=spec["batch_size"], per_device_eval_batch_size=spec["eval_batch_size"],
            max_length=spec["max_length"], eval_strategy="steps", eval_steps=spec["eval_steps"],
            logging_steps=spec["logging_steps"], seed=spec["seed"], disable_dropout=spec["lora_dropout"] == 0,
            bf16=False, activation_checkpointing=False, dataloader_pin_memory=False,
            model_init_kwargs={"dtype": "float32"},
        )
        trainer = DPOTrainer(
            model=spec["location"], args=args, train_dataset=load(spec["train_path"]),
            eval_dataset=load(spec["eval_path"]), processing_class=tokenizer,
            peft_config=LoraConfig(task_type="CAUSAL_LM", r=spec["lora_r"], lora_alpha=spec["lora_alpha"],
                                   lora_dropout=spec["lora_dropout"], target_modules="all-linear"),
        )
        result = trainer.train()
        trainer.save_model(str(Path(output_dir) / "model"))
        evals = [entry for entry in trainer.state.log_history if "eval_rewards/accuracies" in entry]
    Path(out_path).write_text(json.dumps({
        "samples_per_s": result.metrics["train_samples_per_second"], "train_s": result.metrics["train_runtime"],
        "steps": trainer.state.global_step, "train_rows": len(trainer.train_dataset),
        "eval_rows": len(trainer.eval_dataset),
        "eval_reward_accuracy": evals[-1]["eval_rewards/accuracies"] if evals else None,
        "worker_s": time.perf_counter() - started, "peak_rss_mb": peak_rss_mb(resource.RUSAGE_SELF),
        "threads": torch.get_num_threads(),
    }))


def run_bare_dpo(spec_path: Path, workdir: Path) -> dict:
    out = workdir / f"bare-dpo-{time.monotonic_ns()}.json"
    log = out.with_suffix(".log")
    started = time.perf_counter()
    with log.open("wb") as handle:
        done = subprocess.run(
            [sys.executable, str(Path(__file__).resolve()), "--bare-dpo-worker", str(spec_path), str(out)],
            cwd=ROOT, stdout=handle, stderr=subprocess.STDOUT,
        )
    if done.returncode:
        raise SystemExit(f"bare DPO run failed ({done.returncode}):\n{log.read_text()[-3000:]}")
    result = json.loads(out.read_text())
    result["total_s"] = time.perf_counter() - started
    return result


def run_platform_dpo(config: dict, workdir: Path) -> dict:
    from training.models import Job
    from training.services import dpo_run_create
    from training.supervisor import log_tail

    job = dpo_run_create(config=config)
    out = workdir / f"platform-{job.pk}.json"
    started = time.perf_counter()
    subprocess.run([sys.executable, str(Path(__file__).resolve()), "--platform-worker", str(job.pk), str(out)],
                   check=True, cwd=ROOT)
    total = time.perf_counter() - started
    helper = json.loads(out.read_text())
    job = Job.objects.get(pk=job.pk)
    if job.status != "succeeded":
        raise SystemExit(f"platform DPO job {job.pk} {job.status}: {job.error}\n{log_tail(job.pk)}")
    summary = job.summary
    return {
        "samples_per_s": summary["samples_per_s"], "steps": summary["steps"], "train_rows": summary["train_rows"],
        "eval_rows": summary["eval_rows"], "eval_reward_accuracy": summary["eval_reward_accuracy"], "total_s": total,
        "run_s": summary["seconds"], "peak_rss_mb": helper["peak_rss_mb"], "job": job.pk,
        "filtered": summary["filtered_prompt_too_long"], "truncated": summary["truncated"],
        "metric_rows": job.metrics.count(),
    }


def bench_dpo(args, workdir: Path, name: str, location: str, snapshot) -> tuple[dict, list[str]]:
    """The DPO row: a platform ``dpo`` job (``dpo_run_create``, child process: ``run_dpo`` with TRL's
    ``DPOTrainer``, our callbacks, the merged checkpoint written and registered) against
    ``bare_dpo_worker`` on the same snapshot files, base and settings (LoRA as the platform's
    defaults). Returns the ``dpo_``-prefixed JSON keys and any problems."""
    from training.policy_config import DPOConfig

    steps = args.dpo_train_pairs // args.dpo_batch_size
    eval_steps = args.dpo_eval_steps or steps
    config = {
        "base": name, "snapshot_id": snapshot.id, "max_steps": steps, "max_length": args.dpo_max_length,
        "per_device_train_batch_size": args.dpo_batch_size, "per_device_eval_batch_size": args.dpo_batch_size,
        "learning_rate": args.dpo_learning_rate, "beta": args.dpo_beta, "eval_steps": eval_steps,
        "logging_steps": args.logging_steps, "seed": args.seed,
    }
    defaults = DPOConfig.from_dict(config)  # the platform's LoRA settings, for the bare side too
    spec_path = workdir / "bare-dpo-spec.json"
    spec_path.write_text(json.dumps({
        "location": location, "train_path": str(snapshot.train_path), "eval_path": str(snapshot.eval_path),
        "learning_rate": args.dpo_learning_rate, "beta": args.dpo_beta, "max_steps": steps,
        "batch_size": args.dpo_batch_size, "eval_batch_size": args.dpo_batch_size, "max_length": args.dpo_max_length,
        "eval_steps": eval_steps, "logging_steps": args.logging_steps, "seed": args.seed,
        "lora_r": defaults.lora_r, "lora_alpha": defaults.lora_alpha, "lora_dropout": defaults.lora_dropout,
    }))
    print(f"DPO: {args.dpo_train_pairs} pairs ({steps} steps of {args.dpo_batch_size}), max length "
          f"{args.dpo_max_length}, beta {args.dpo_beta}, LoRA r={defaults.lora_r}, eval every {eval_steps} steps",
          flush=True)
    runs: dict[str, list[dict]] = {"platform": [], "bare": []}
    for repeat in range(args.repeats):
        for side in (("platform", "bare") if repeat % 2 == 0 else ("bare", "platform")):
            for _attempt in range(1 + args.retry_noisy):
                wait_for_quiet(args.quiet_wait)
                before = cpu_snapshot()
                result = run_platform_dpo(config, workdir) if side == "platform" else run_bare_dpo(spec_path, workdir)
                result["others"] = others_share(before, cpu_snapshot())
                runs[side].append(result)
                noisy = result["others"] >= NOISY
                print(f"  DPO repeat {repeat + 1} {side:8}: {result['samples_per_s']:7.2f} pairs/s in train(), "
                      f"{result['total_s']:6.1f} s total, peak RSS {result['peak_rss_mb']:7.0f} MiB, eval reward "
                      f"accuracy {result['eval_reward_accuracy']}; other processes used {result['others']:.0%} of "
                      f"the CPUs{' (noisy)' if noisy else ''}, loadavg {loadavg()}", flush=True)
                if not noisy:
                    break

    def kept(side):
        quiet = [r for r in runs[side] if r["others"] < NOISY]
        return quiet or [min(runs[side], key=lambda r: r["others"])]

    def med(side, key):
        return statistics.median(r[key] for r in kept(side))

    platform_run, bare_run = runs["platform"][-1], runs["bare"][-1]
    problems = []
    if (platform_run["steps"], platform_run["train_rows"]) != (bare_run["steps"], bare_run["train_rows"]):
        problems.append(f"DPO: platform trained {platform_run['steps']} steps on {platform_run['train_rows']} pairs, "
                        f"bare {bare_run['steps']} on {bare_run['train_rows']}")
    ratio = med("platform", "samples_per_s") / med("bare", "samples_per_s")
    e2e_ratio = med("bare", "total_s") / med("platform", "total_s")
    rss_ratio = med("platform", "peak_rss_mb") / med("bare", "peak_rss_mb")
    others = max(r["others"] for side in runs for r in kept(side))
    print(f"\nDPO platform/bare pairs/s: {ratio:.3f} (floor {FLOOR}: {'met' if ratio >= FLOOR else 'NOT met'}); "
          f"end to end (bare s / platform s): {e2e_ratio:.3f}; peak RSS platform/bare: {rss_ratio:.3f}; "
          f"other processes took up to {others:.0%} of the CPUs" + (" -- figures are noisy" if others >= NOISY else ""))
    return {
        "dpo_platform_samples_per_s": round(med("platform", "samples_per_s"), 3),
        "dpo_bare_samples_per_s": round(med("bare", "samples_per_s"), 3), "dpo_ratio": round(ratio, 3),
        "dpo_floor": FLOOR, "dpo_floor_met": ratio >= FLOOR,
        "dpo_platform_total_s": round(med("platform", "total_s"), 1), "dpo_bare_total_s": round(med("bare", "total_s"), 1),
        "dpo_e2e_ratio": round(e2e_ratio, 3), "dpo_platform_peak_rss_mb": round(med("platform", "peak_rss_mb")),
        "dpo_bare_peak_rss_mb": round(med("bare", "peak_rss_mb")), "dpo_rss_ratio": round(rss_ratio, 3),
        "dpo_platform_eval_reward_accuracy": platform_run["eval_reward_accuracy"],
        "dpo_bare_eval_reward_accuracy": bare_run["eval_reward_accuracy"],
        "dpo_platform_metric_rows": platform_run["metric_rows"], "dpo_pairs_trained": steps * args.dpo_batch_size,
        "dpo_usable_train_pairs": platform_run["train_rows"],
        "dpo_eval_rows": platform_run["eval_rows"], "dpo_filtered": platform_run["filtered"],
        "dpo_truncated": platform_run["truncated"], "dpo_steps": steps, "dpo_batch_size": args.dpo_batch_size,
        "dpo_max_length": args.dpo_max_length, "dpo_beta": args.dpo_beta, "dpo_eval_steps": eval_steps,
        "dpo_threads": bare_run["threads"], "dpo_others_cpu_share_max": round(others, 3),
    }, problems


# --- setup -------------------------------------------------------------------------------------

def setup_store(args) -> tuple[str, str]:
    """Migrate, import the pairs, bring in the base. Returns (checkpoint name, its location)."""
    import django
    from django.core.management import call_command

    django.setup()
    call_command("migrate", verbosity=0)
    out = open(os.devnull, "w")
    call_command("import_hh_rlhf", str(HH_RLHF), "--split", "train", "--limit", str(args.import_train), stdout=out)
    call_command("import_hh_rlhf", str(HH_RLHF), "--split", "eval", "--offset", str(args.import_train),
                 "--limit", str(args.import_eval), stdout=out)
    from training.registry import model_import
    from training.runners.model_import import ImportFailed

    if args.model == "tiny":
        from django.conf import settings
        from transformers import AutoTokenizer

        from tests.model_fixtures import tiny_llama_save
        from training.services import checkpoint_register

        smollm2, _ = model_import()
        directory = Path(settings.ARBITER_DATA_DIR) / "checkpoints" / TINY_NAME
        tiny_llama_save(directory, AutoTokenizer.from_pretrained(smollm2.location), seed=0)
        checkpoint = checkpoint_register(name=TINY_NAME, weights_dir=f"checkpoints/{TINY_NAME}")
        return checkpoint.name, checkpoint.location
    started = time.perf_counter()
    try:
        checkpoint, _ = model_import()
    except ImportFailed:  # another process filled the shared model cache at the same moment: use theirs
        checkpoint, _ = model_import()
    print(f"model imported in {time.perf_counter() - started:.1f} s: {checkpoint.location}", flush=True)
    return checkpoint.name, checkpoint.location


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", choices=["smollm2", "tiny"], default="smollm2")
    parser.add_argument("--train-pairs", type=int, default=128, help="pairs trained on (max_steps = this / batch size)")
    parser.add_argument("--import-train", type=int, default=600,
                        help="HH-RLHF pairs imported into train (more than --train-pairs: TRL drops the long ones)")
    parser.add_argument("--import-eval", type=int, default=100, help="HH-RLHF pairs imported into eval")
    parser.add_argument("--max-length", type=int, default=128)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--eval-batch-size", type=int, default=16)
    parser.add_argument("--eval-steps", type=int, default=8)
    parser.add_argument("--logging-steps", type=int, default=2)
    parser.add_argument("--learning-rate", type=float, default=1e-5)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--quiet-wait", type=float, default=0, metavar="SECONDS",
                        help="before each run, wait up to this long for other processes to go quiet (default 0)")
    parser.add_argument("--retry-noisy", type=int, default=1, metavar="N",
                        help="run a side again, up to N times, when other processes took 10%% or more of the CPUs")
    parser.add_argument("--keep", action="store_true", help="keep the temporary directory")
    parser.add_argument("--parts", default="reward,rloo,dpo", help="rows to run, comma-separated: reward, rloo, dpo")
    parser.add_argument("--rloo-steps", type=int, default=8, help="RLOO optimiser steps")
    parser.add_argument("--rloo-batch-size", type=int, default=8, help="completions per RLOO step")
    parser.add_argument("--rloo-generations", type=int, default=4, help="completions per prompt")
    parser.add_argument("--rloo-completion-length", type=int, default=32, help="max new tokens per completion")
    parser.add_argument("--rloo-max-prompt-length", type=int, default=256)
    parser.add_argument("--rloo-prompts", type=int, default=64, help="at most this many distinct train prompts")
    parser.add_argument("--rloo-learning-rate", type=float, default=1e-5)
    parser.add_argument("--rloo-beta", type=float, default=0.05)
    parser.add_argument("--bare-rloo-worker", nargs=2, metavar=("SPEC", "OUT"), help=argparse.SUPPRESS)
    parser.add_argument("--dpo-train-pairs", type=int, default=64, help="DPO pairs trained on (steps = this / batch)")
    parser.add_argument("--dpo-batch-size", type=int, default=4)
    parser.add_argument("--dpo-max-length", type=int, default=128, help="DPO prompt + response tokens")
    parser.add_argument("--dpo-learning-rate", type=float, default=5e-5)
    parser.add_argument("--dpo-beta", type=float, default=0.1)
    parser.add_argument("--dpo-eval-steps", type=int, default=0, help="DPO evaluation interval (0: once, at the end)")
    parser.add_argument("--bare-dpo-worker", nargs=2, metavar=("SPEC", "OUT"), help=argparse.SUPPRESS)
    parser.add_argument("--bare-worker", nargs=2, metavar=("SPEC", "OUT"), help=argparse.SUPPRESS)
    parser.add_argument("--platform-worker", nargs=2, metavar=("JOB_ID", "OUT"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.bare_worker:
        bare_worker(*args.bare_worker)
        return 0
    if args.bare_rloo_worker:
        sys.path.insert(0, str(ROOT))
        bare_rloo_worker(*args.bare_rloo_worker)
        return 0
    if args.bare_dpo_worker:
        bare_dpo_worker(*args.bare_dpo_worker)
        return 0
    args.parts = {part.strip() for part in args.parts.split(",") if part.strip()}
    if not args.parts or args.parts - {"reward", "rloo", "dpo"}:
        parser.error("--parts takes reward, rloo and/or dpo")
    if args.platform_worker:
        sys.path.insert(0, str(ROOT))
        platform_worker(*args.platform_worker)
        return 0
    if args.train_pairs % args.batch_size or min(args.train_pairs, args.repeats, args.eval_steps) < 1:
        parser.error("--train-pairs must be a positive multiple of --batch-size; --repeats, --eval-steps positive")
    if not HH_RLHF.is_file():
        parser.error(f"{HH_RLHF} is missing (the shared test data lives next to the repository)")

    load_start = loadavg()
    (ROOT / "var").mkdir(exist_ok=True)
    workdir = Path(tempfile.mkdtemp(prefix="bench-train-", dir=ROOT / "var"))  # same disk as the cache: hard links
    os.environ.update({
        "ARBITER_VAR_DIR": str(workdir), "ARBITER_DATA_DIR": str(workdir / "data"),
        "DATABASE_URL": f"sqlite:///{workdir / 'arbiter.sqlite3'}",
        "ARBITER_MODEL_CACHE": os.environ.get("ARBITER_MODEL_CACHE", str(ROOT / "var" / "model-cache")),
        "DJANGO_SETTINGS_MODULE": "config.settings", "SECRET_KEY": "bench-train-not-secret", "DEBUG": "0",
        "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false",
    })
    os.environ.pop("ARBITER_RUNNER_LAUNCHER", None)
    sys.path.insert(0, str(ROOT))
    try:
        return bench(args, workdir, load_start)
    finally:
        if args.keep:
            print(f"kept {workdir}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)


def bench(args, workdir: Path, load_start: str) -> int:
    name, location = setup_store(args)
    max_steps = args.train_pairs // args.batch_size
    config = {
        "base": name, "rules": {"sources": ["hh-rlhf"]}, "max_steps": max_steps, "max_length": args.max_length,
        "per_device_train_batch_size": args.batch_size, "per_device_eval_batch_size": args.eval_batch_size,
        "learning_rate": args.learning_rate, "eval_steps": args.eval_steps, "logging_steps": args.logging_steps,
        "seed": args.seed,
        # the bare script's schedule and memory settings (transformers' defaults), not the platform's
        "lr_scheduler_type": "linear", "warmup_ratio": 0.0, "activation_checkpointing": False,
    }
    from feedback import interface

    snapshot = interface.snapshot_create(rules={"sources": ["hh-rlhf"]})
    config["snapshot_id"] = snapshot.id
    del config["rules"]
    print(f"snapshot {snapshot.id}: {snapshot.train_rows} train and {snapshot.eval_rows} eval pairs", flush=True)
    result: dict = {"model": name, "cpus": os.cpu_count(), "loadavg_start": load_start}
    problems: list[str] = []
    if "reward" in args.parts:
        part, part_problems = bench_reward(args, workdir, load_start, name, location, snapshot, config, max_steps)
        result.update(part)
        problems += part_problems
    if "rloo" in args.parts:
        part, part_problems = bench_rloo(args, workdir, name, location, snapshot)
        result.update(part)
        problems += part_problems
    if "dpo" in args.parts:
        if args.dpo_train_pairs % args.dpo_batch_size or args.dpo_train_pairs < 1:
            raise SystemExit("--dpo-train-pairs must be a positive multiple of --dpo-batch-size")
        part, part_problems = bench_dpo(args, workdir, name, location, snapshot)
        result.update(part)
        problems += part_problems
    result["loadavg_end"] = loadavg()
    for problem in problems:
        print(f"PROBLEM: {problem}")
    print(json.dumps(result))
    return 1 if problems else 0


def bench_reward(args, workdir: Path, load_start: str, name: str, location: str, snapshot, config: dict,
                 max_steps: int) -> tuple[dict, list[str]]:
    """The reward row: platform reward run against ``bare_worker``; returns its JSON keys and problems."""
    spec_path = workdir / "bare-spec.json"
    spec_path.write_text(json.dumps({
        "location": location, "train_path": str(snapshot.train_path), "eval_path": str(snapshot.eval_path),
        "use_margin": True, "learning_rate": args.learning_rate, "max_steps": max_steps, "batch_size": args.batch_size,
        "eval_batch_size": args.eval_batch_size, "max_length": args.max_length, "eval_steps": args.eval_steps,
        "logging_steps": args.logging_steps, "seed": args.seed,
    }))
    runs: dict[str, list[dict]] = {"platform": [], "bare": []}
    for repeat in range(args.repeats):
        for side in (("platform", "bare") if repeat % 2 == 0 else ("bare", "platform")):
            for _attempt in range(1 + args.retry_noisy):
                wait_for_quiet(args.quiet_wait)
                before = cpu_snapshot()
                result = run_platform(config, workdir) if side == "platform" else run_bare(spec_path, workdir)
                result["others"] = others_share(before, cpu_snapshot())
                runs[side].append(result)
                noisy = result["others"] >= NOISY
                print(f"  repeat {repeat + 1} {side:8}: {result['samples_per_s']:7.2f} pairs/s in train(), "
                      f"{result['total_s']:6.1f} s total, peak RSS {result['peak_rss_mb']:7.0f} MiB, "
                      f"eval accuracy {result['eval_accuracy']}; other processes used {result['others']:.0%} "
                      f"of the CPUs{' (noisy)' if noisy else ''}, loadavg {loadavg()}", flush=True)
                if not noisy:
                    break

    def kept(side):
        """The runs a figure is taken from: the quiet ones (others < NOISY), else the least noisy one."""
        quiet = [r for r in runs[side] if r["others"] < NOISY]
        return quiet or [min(runs[side], key=lambda r: r["others"])]

    def med(side, key):
        return statistics.median(r[key] for r in kept(side))

    platform_run, bare_run = runs["platform"][-1], runs["bare"][-1]
    problems = []
    if (platform_run["steps"], platform_run["train_rows"]) != (bare_run["steps"], bare_run["train_rows"]):
        problems.append(f"platform trained {platform_run['steps']} steps on {platform_run['train_rows']} usable pairs, "
                        f"bare {bare_run['steps']} on {bare_run['train_rows']}")
    if platform_run["train_rows"] < args.train_pairs:
        problems.append(f"only {platform_run['train_rows']} imported pairs fit max_length {args.max_length}; "
                        f"raise --import-train")
    ratio = med("platform", "samples_per_s") / med("bare", "samples_per_s")
    e2e_ratio = med("bare", "total_s") / med("platform", "total_s")
    rss_ratio = med("platform", "peak_rss_mb") / med("bare", "peak_rss_mb")
    load_end = loadavg()
    others = max(r["others"] for side in runs for r in kept(side))
    print(f"\nbase {name}; {args.train_pairs} pairs ({max_steps} steps of {args.batch_size}), max length "
          f"{args.max_length}, eval every {args.eval_steps} steps on {platform_run['eval_rows']} held-out pairs, "
          f"logging every {args.logging_steps}; torch threads: {bare_run['threads']}; repeats={args.repeats} (medians)")
    header = f"{'side':9}{'pairs/s':>9}{'total s':>9}{'peak RSS MiB':>14}{'eval acc':>10}{'others':>8}"
    print(header)
    print("-" * len(header))
    for side in ("platform", "bare"):
        accuracy = runs[side][-1]["eval_accuracy"]
        print(f"{side:9}{med(side, 'samples_per_s'):>9.2f}{med(side, 'total_s'):>9.1f}{med(side, 'peak_rss_mb'):>14.0f}"
              f"{accuracy if accuracy is None else round(accuracy, 3)!s:>10}{max(r['others'] for r in kept(side)):>8.0%}")
    print("pairs/s: TRL's train_samples_per_second (train(), including its evaluations); total s: the whole child "
          "process (platform: the supervisor, runner start, data, load, train, save, register); peak RSS: the process "
          "that trained\n(eval accuracy: platform = over pairs, bare = TRL's mean of batch means)")
    print(f"\nplatform/bare pairs/s: {ratio:.3f} (floor {FLOOR}: {'met' if ratio >= FLOOR else 'NOT met'}); end to end "
          f"(bare s / platform s): {e2e_ratio:.3f}; peak RSS platform/bare: {rss_ratio:.3f}")
    print(f"load average: {load_start} at start, {load_end} at end ({os.cpu_count()} CPUs); other processes took up to "
          f"{others:.0%} of the CPUs during a counted run" + (" -- figures are noisy" if others >= NOISY else ""))
    result = {
        "platform_samples_per_s": round(med("platform", "samples_per_s"), 3),
        "bare_samples_per_s": round(med("bare", "samples_per_s"), 3), "ratio": round(ratio, 3), "floor": FLOOR,
        "floor_met": ratio >= FLOOR, "platform_total_s": round(med("platform", "total_s"), 1),
        "bare_total_s": round(med("bare", "total_s"), 1), "e2e_ratio": round(e2e_ratio, 3),
        "platform_peak_rss_mb": round(med("platform", "peak_rss_mb")), "bare_peak_rss_mb": round(med("bare", "peak_rss_mb")),
        "rss_ratio": round(rss_ratio, 3), "platform_eval_accuracy": platform_run["eval_accuracy"],
        "bare_eval_accuracy": bare_run["eval_accuracy"], "platform_metric_rows": platform_run["metric_rows"],
        "model": name, "train_pairs": args.train_pairs, "steps": max_steps, "max_length": args.max_length,
        "batch_size": args.batch_size, "eval_rows": platform_run["eval_rows"], "eval_steps": args.eval_steps,
        "logging_steps": args.logging_steps, "truncated_prompt": platform_run["truncated_prompt"],
        "filtered_identical": platform_run["filtered_identical"],
        "repeats": args.repeats, "threads": bare_run["threads"], "loadavg_start": load_start, "loadavg_end": load_end,
        "others_cpu_share_max": round(others, 3), "cpus": os.cpu_count(), "problems": problems,
    }
    return result, problems


if __name__ == "__main__":
    sys.exit(main())

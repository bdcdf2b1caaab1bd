#!/usr/bin/env python
"""Device check (issue 19): the platform's training runs and generation on a GPU against bare TRL
and transformers, with the issue's floors. Ends with one JSON line.

    make gpu-wheels                                   # here: wheels + SmolLM2's config and tokenizer into bench/.gpu
    bash bench/gpu_check.sh                           # on the GPU machine (carry bench/.gpu)
    .venv/bin/python bench/gpu_check.py --smoke       # on CPU: a tiny Llama, 2 steps, tiny batches

One run sets up a fresh store in a temporary folder (a migrated SQLite database, the data folder),
writes the base (``--model-dir``: SmolLM2-135M-Instruct's config and tokenizer; its weights too
when the folder has them, else random weights of that architecture, which cost the same to train
and run; ``--smoke``: a 2-layer Llama with that tokenizer), registers it, and imports synthetic
preference rows (``feedback.imports.preferences_import``, TRL format). Then, each section the
platform's way and the bare way on the same rows, base and settings (steps fixed, same batch size):

- ``reward``: a reward run (full fine-tune) through ``training.runner.main`` (the job's entry point,
  in this process, on a job created by ``reward_run_create``, whose snapshot every later run uses)
  against ``gpu_bare.reward`` (TRL ``RewardTrainer`` on the snapshot's files).
- ``dpo_lora``, ``dpo_full``: DPO runs (LoRA; full fine-tune with a frozen reference) against
  ``gpu_bare.dpo``.
- ``rloo``: an RLOO run against the reward checkpoint the ``reward`` section registered, on the
  prompts the runner's own ``prompts_choose`` picks, against ``gpu_bare.rloo``.
- ``generation_batch_1``, ``generation_batch_32``: a generation job (strategy ``each``, greedy)
  against ``gpu_bare.generate``; the texts must be identical.

Figures: samples/s is TRL's ``train_samples_per_second`` (pairs, or completions for RLOO, per
second over ``train()``); tokens/s is new tokens per second over the generation loop, the model
already loaded (the platform's job summary ``tokens_per_s``, which includes its database writes).
Peak GPU memory: ``torch.cuda.max_memory_allocated`` during the side, less what was allocated
before it (MiB; None on CPU). Floors (issue 19): platform/bare at least 0.95 for training and 0.9
for generation; reported per section and in ``floors_met``, not enforced. Sides alternate which
goes first from one section to the next; CUDA is warmed up before the first. Exit status 1 when a
section fails (its error is in the JSON) or the sides did different work, 2 without CUDA and
without ``--smoke``.
"""
from __future__ import annotations

import argparse
import gc
import json
import os
import shutil
import sys
import tempfile
import time
import traceback
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))
import gpu_bare  # noqa: E402

BASE = "gpu-check-base"
TRAIN_FLOOR, GENERATION_FLOOR = 0.95, 0.9
MODEL_DIR = ROOT / "bench" / ".gpu" / "smollm2"
NO_CUDA = ("no CUDA device: bench/gpu_check.py measures the platform on a GPU (run bench/gpu_check.sh on a GPU "
           "machine), or pass --smoke for the short CPU run that checks the script itself")
SIZES = {  # GPU, --smoke
    "steps": (40, 2), "rloo_steps": (8, 2), "batch_size": (16, 2), "dpo_batch_size": (8, 2), "rloo_batch_size": (16, 4),
    "max_length": (256, 160), "completion_length": (64, 8), "new_tokens": (128, 8), "batch_1_prompts": (8, 2),
    "batch_32_prompts": (64, 32), "train_rows": (320, 32), "eval_rows": (32, 4), "sentences": (5, 1),
}
POLITE = ("Thank you for asking. ", "Here is a careful answer, step by step. ", "First, check that it is plugged in. ",
          "Then restart it and wait a minute. ", "If it still fails, write down the error and contact support. ")


# --- the store --------------------------------------------------------------------------------------

def store_setup(workdir: Path) -> None:
    """A fresh SQLite database and data folder under ``workdir``, migrated; Django set up."""
    os.environ.update({
        "DATABASE_URL": f"sqlite:///{workdir / 'arbiter.sqlite3'}", "ARBITER_DATA_DIR": str(workdir / "data"),
        "ARBITER_VAR_DIR": str(workdir), "DJANGO_SETTINGS_MODULE": "config.settings", "SECRET_KEY": "gpu-check-not-secret",
        "DEBUG": "0", "HTTPS": "0", "HF_HUB_OFFLINE": "1", "HF_HUB_DISABLE_TELEMETRY": "1", "TOKENIZERS_PARALLELISM": "false",
    })
    os.environ.pop("ARBITER_RUNNER_LAUNCHER", None)
    import django
    from django.core.management import call_command

    django.setup()
    call_command("migrate", verbosity=0)


def base_write(model_dir: Path, data_dir: Path, *, smoke: bool) -> str:
    """Write the base under ``data_dir/checkpoints`` and register it; returns what it is, in words."""
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer, LlamaConfig, LlamaForCausalLM

    from training.services import checkpoint_register

    dest = data_dir / "checkpoints" / BASE
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    torch.manual_seed(0)
    if smoke:
        model = LlamaForCausalLM(LlamaConfig(
            vocab_size=len(tokenizer), hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=2,
            num_key_value_heads=2, max_position_embeddings=2048, bos_token_id=tokenizer.bos_token_id,
            eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id, initializer_range=0.2,
        ))
        words = f"tiny Llama (2 layers, hidden 32), random weights, {model_dir.name}'s tokenizer"
    elif any(model_dir.glob("*.safetensors")):
        model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32)
        words = f"{model_dir.name} ({sum(p.numel() for p in model.parameters()) / 1e6:.0f}M parameters)"
    else:
        model = AutoModelForCausalLM.from_config(AutoConfig.from_pretrained(model_dir), dtype=torch.float32)
        words = (f"{model_dir.name}'s architecture and tokenizer, random weights "
                 f"({sum(p.numel() for p in model.parameters()) / 1e6:.0f}M parameters)")
    model.save_pretrained(dest)
    tokenizer.save_pretrained(dest)
    checkpoint_register(name=BASE, weights_dir=f"checkpoints/{BASE}")
    return words


def preference_rows(count: int, offset: int = 0, *, sentences: int = 5) -> list[dict]:
    """Synthetic TRL preference rows: a polite answer of 1 to ``sentences`` sentences chosen over a curt one."""
    result = []
    for i in range(offset, offset + count):
        polite = "".join(POLITE[(i + k) % len(POLITE)] for k in range(1 + i % sentences))
        result.append({
            "prompt": [{"role": "user", "content": f"Question {i}: my device number {i * 7} stopped working. What do I do?"}],
            "chosen": [{"role": "assistant", "content": polite}],
            "rejected": [{"role": "assistant", "content": ["No idea.", "Buy a new one.", "Not my problem."][i % 3]}],
        })
    return result


def rows_import(workdir: Path, sizes: dict) -> None:
    """Import the synthetic rows as the platform imports a TRL preference file (one vote each)."""
    from feedback.imports import preferences_import

    for split, count, offset in (("train", sizes["train_rows"], 0), ("eval", sizes["eval_rows"], 100_000)):
        rows = preference_rows(count, offset, sentences=sizes["sentences"])
        path = workdir / f"rows-{split}.jsonl"
        path.write_text("".join(json.dumps(row) + "\n" for row in rows))
        preferences_import(path=path, format="trl", split=split)


# --- measuring ------------------------------------------------------------------------------------------

def measured(work, cuda: bool) -> tuple[object, float | None, float]:
    """``(work(), peak GPU MiB above what was allocated before, seconds)``; memory None on CPU."""
    import torch

    gc.collect()
    before = 0
    if cuda:
        torch.cuda.empty_cache()
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
        before = torch.cuda.memory_allocated()
    started = time.perf_counter()
    result = work()
    if cuda:
        torch.cuda.synchronize()
    seconds = time.perf_counter() - started
    peak = (torch.cuda.max_memory_allocated() - before) / 2**20 if cuda else None
    gc.collect()
    return result, (round(peak, 1) if peak is not None else None), round(seconds, 2)


def job_run(create, config: dict):
    """Create a run with its service and run it through the job's entry point (``training.runner.main``)."""
    from django.utils import timezone

    from training.models import Job, JobStatus
    from training.runner import main

    job = create(config=config)
    Job.objects.filter(pk=job.pk).update(status=JobStatus.RUNNING, started_at=timezone.now(), heartbeat_at=timezone.now())
    main(["training.runner", str(job.pk)])
    job.refresh_from_db()
    if job.status != JobStatus.SUCCEEDED:
        raise RuntimeError(f"job {job.pk} {job.status}: {job.error}")
    return job


def training_section(platform, bare, *, cuda: bool, bare_first: bool) -> dict:
    """Run both sides of a training section; ``platform()`` returns the job, ``bare()`` its figures."""
    sides = {}
    for side in (("bare", "platform") if bare_first else ("platform", "bare")):
        if side == "platform":
            job, peak, seconds = measured(platform, cuda)
            summary = job.summary
            rows = summary.get("train_rows", summary.get("prompts"))
            sides[side] = {"samples_per_s": summary["samples_per_s"], "steps": summary["steps"], "train_rows": rows,
                           "peak_gpu_mib": peak, "seconds": seconds, "job": job.pk, "checkpoint": summary["checkpoint"]}
        else:
            figures, peak, seconds = measured(bare, cuda)
            sides[side] = {**{k: figures[k] for k in ("samples_per_s", "steps", "train_rows")},
                           "peak_gpu_mib": peak, "seconds": seconds}
    return ratio_of(sides, "samples_per_s", TRAIN_FLOOR, same=("steps", "train_rows"))


def ratio_of(sides: dict, key: str, floor: float, *, same: tuple[str, ...]) -> dict:
    platform, bare = sides["platform"], sides["bare"]
    ratio = platform[key] / bare[key] if platform[key] and bare[key] else None
    section = {**sides, "ratio": round(ratio, 3) if ratio else None, "floor": floor,
               "floor_met": bool(ratio and ratio >= floor)}
    different = [name for name in same if platform.get(name) != bare.get(name)]
    if different:
        section["error"] = f"the sides did different work: {', '.join(f'{n} {platform.get(n)} vs {bare.get(n)}' for n in different)}"
    return section


# --- sections ------------------------------------------------------------------------------------------

def sections_run(sizes: dict, cuda: bool, data_dir: Path) -> dict:
    from feedback.models import Completion, Prompt
    from training import services
    from training.models import Checkpoint
    from training.policy_config import DPOConfig, RLConfig
    from training.runners.policy_training import run_tokenizer
    from training.runners.rl import prompts_choose
    from training.runners.snapshot_rows import rows_read, snapshot_files

    location = Checkpoint.objects.get(name=BASE).location
    steps, batch, length = sizes["steps"], sizes["batch_size"], sizes["max_length"]
    common = {"base": BASE, "max_steps": steps, "logging_steps": max(1, steps // 4), "seed": 0}
    state: dict = {}
    results: dict = {}

    def bare_spec(**extra) -> dict:
        snapshot = snapshot_files(state["snapshot"])
        return {"location": location, "train_path": str(snapshot.train_path), "eval_path": str(snapshot.eval_path),
                "cuda": cuda, "seed": 0, "logging_steps": max(1, extra.get("steps", steps) // 4), "steps": steps, **extra}

    def reward_platform():
        job = job_run(services.reward_run_create, {
            **common, "rules": {}, "per_device_train_batch_size": batch, "gradient_accumulation_steps": 1,
            "per_device_eval_batch_size": batch, "max_length": length, "eval_steps": steps, "learning_rate": 1e-5,
        })
        state["snapshot"], state["reward"] = job.snapshot_id, job.summary["checkpoint"]
        return job

    results["reward"] = training_section(
        reward_platform, lambda: gpu_bare.reward(bare_spec(batch_size=batch, max_length=length, learning_rate=1e-5)),
        cuda=cuda, bare_first=False,
    )
    for name, lora, bare_first in (("dpo_lora", True, True), ("dpo_full", False, False)):
        dpo_batch = sizes["dpo_batch_size"]
        config = {**common, "snapshot_id": state["snapshot"], "lora": lora, "per_device_train_batch_size": dpo_batch,
                  "per_device_eval_batch_size": dpo_batch, "max_length": length, "eval_steps": steps, "learning_rate": 5e-6}
        parsed = DPOConfig.from_dict(config)  # the platform's LoRA settings, for the bare side too
        lora_spec = {"r": parsed.lora_r, "lora_alpha": parsed.lora_alpha, "lora_dropout": parsed.lora_dropout}
        results[name] = training_section(
            lambda config=config: job_run(services.dpo_run_create, config),
            lambda lora=lora, lora_spec=lora_spec, dpo_batch=dpo_batch: gpu_bare.dpo(bare_spec(
                batch_size=dpo_batch, max_length=length, learning_rate=5e-6, beta=0.1, lora=lora_spec if lora else None)),
            cuda=cuda, bare_first=bare_first,
        )

    rl_steps, rl_batch = sizes["rloo_steps"], sizes["rloo_batch_size"]
    rl = RLConfig.from_dict({
        **common, "max_steps": rl_steps, "logging_steps": max(1, rl_steps // 4), "reward_model": state["reward"],
        "snapshot_id": state["snapshot"], "algorithm": "rloo", "per_device_train_batch_size": rl_batch,
        "num_generations": 4, "max_completion_length": sizes["completion_length"], "max_prompt_length": 128,
    })
    choice = prompts_choose(rows_read(snapshot_files(state["snapshot"]).train_path), run_tokenizer(location),
                            max_prompt_length=rl.max_prompt_length, max_prompts=rl.max_prompts, seed=rl.seed)
    results["rloo"] = training_section(
        lambda: job_run(services.rl_run_create, {k: v for k, v in rl.as_dict().items() if k != "rules"}),
        lambda: gpu_bare.rloo(bare_spec(
            steps=rl_steps, batch_size=rl_batch, learning_rate=rl.learning_rate, beta=rl.beta,
            num_generations=rl.num_generations, max_completion_length=rl.max_completion_length, prompts=choice.prompts,
            reward_location=Checkpoint.objects.get(name=state["reward"]).location,
            lora={"r": rl.lora_r, "lora_alpha": rl.lora_alpha, "lora_dropout": rl.lora_dropout})),
        cuda=cuda, bare_first=True,
    )

    prompts = list(Prompt.objects.order_by("id").values_list("id", "messages"))
    for size, count_key, bare_first in ((1, "batch_1_prompts", False), (32, "batch_32_prompts", True)):
        chosen = prompts[:sizes[count_key]]
        sides = {}
        for side in (("bare", "platform") if bare_first else ("platform", "bare")):
            if side == "platform":
                last = Completion.objects.order_by("-id").values_list("id", flat=True).first() or 0
                job, peak, seconds = measured(lambda: job_run(services.generation_job_create, {
                    "checkpoints": [BASE], "strategy": "each", "temperature": 0, "max_new_tokens": sizes["new_tokens"],
                    "batch_size": size, "prompt_ids": [pk for pk, _ in chosen],
                }), cuda)
                texts = list(Completion.objects.filter(id__gt=last).order_by("id").values_list("text", flat=True))
                sides[side] = {"tokens_per_s": job.summary["tokens_per_s"], "new_tokens": job.summary["new_tokens"],
                               "prompts": job.summary["prompts"], "peak_gpu_mib": peak, "seconds": seconds, "texts": texts}
            else:
                figures, peak, seconds = measured(lambda: gpu_bare.generate({
                    "location": location, "cuda": cuda, "batch_size": size, "max_new_tokens": sizes["new_tokens"],
                    "conversations": [messages for _, messages in chosen]}), cuda)
                sides[side] = {"tokens_per_s": round(figures["tokens_per_s"], 2), "new_tokens": figures["new_tokens"],
                               "prompts": len(chosen), "peak_gpu_mib": peak, "seconds": seconds, "texts": figures["texts"]}
        identical = sides["platform"].pop("texts") == sides["bare"].pop("texts")
        section = ratio_of(sides, "tokens_per_s", GENERATION_FLOOR, same=("prompts",))
        section["identical_texts"] = identical
        results[f"generation_batch_{size}"] = section
    return results


def warm_up(cuda: bool) -> None:
    """CUDA context, cuBLAS and a bf16 matrix product, before anything is timed."""
    if cuda:
        import torch

        x = torch.randn(1024, 1024, device="cuda", dtype=torch.bfloat16)
        (x @ x).sum().item()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--smoke", action="store_true", help="CPU or GPU: a tiny Llama, 2 steps, tiny batches")
    parser.add_argument("--model-dir", type=Path, default=MODEL_DIR,
                        help="a Hugging Face folder with the tokenizer and config (weights optional); default bench/.gpu/smollm2")
    parser.add_argument("--keep", action="store_true", help="keep the temporary folder")
    args = parser.parse_args(argv)
    import torch

    cuda = torch.cuda.is_available()
    if not cuda and not args.smoke:
        print(NO_CUDA, file=sys.stderr)
        return 2
    if not (args.model_dir / "tokenizer_config.json").is_file():
        print(f"no model files in {args.model_dir}: run `make gpu-wheels` first, or give --model-dir", file=sys.stderr)
        return 2
    sizes = {key: pair[1] if args.smoke else pair[0] for key, pair in SIZES.items()}
    if not cuda:
        torch.set_num_threads(1)  # a CPU smoke run: one thread suffers least from busy neighbours
    started = time.perf_counter()
    workdir = Path(tempfile.mkdtemp(prefix="gpu-check-"))
    report: dict = {"check": "gpu", "smoke": args.smoke, "device": torch.cuda.get_device_name(0) if cuda else "cpu"}
    failures: list[str] = []
    try:
        store_setup(workdir)
        import peft
        import transformers
        import trl

        report.update({"torch": torch.__version__, "transformers": transformers.__version__, "trl": trl.__version__,
                       "peft": peft.__version__, "dtype": "bfloat16" if cuda and torch.cuda.is_bf16_supported() else "float32"})
        report["model"] = base_write(args.model_dir, workdir / "data", smoke=args.smoke)
        rows_import(workdir, sizes)
        warm_up(cuda)
        report["sizes"] = sizes
        report.update(sections_run(sizes, cuda, workdir / "data"))
    except Exception as error:  # noqa: BLE001 - one line in the JSON, the traceback above it
        traceback.print_exc()
        failures.append(f"{type(error).__name__}: {error}".splitlines()[0])
    finally:
        if not args.keep:
            shutil.rmtree(workdir, ignore_errors=True)
    sections = [name for name, value in report.items() if isinstance(value, dict) and "ratio" in value]
    failures += [f"{name}: {report[name]['error']}" for name in sections if "error" in report[name]]
    report["sections_run"] = sections
    report["floors_met"] = bool(sections) and all(report[name]["floor_met"] for name in sections)
    report["failures"] = failures
    report["seconds"] = round(time.perf_counter() - started, 1)
    for name in sections:
        section = report[name]
        print(f"{name:20} platform/bare {section['ratio']} (floor {section['floor']}: "
              f"{'met' if section['floor_met'] else 'NOT met'})", file=sys.stderr)
    print(json.dumps(report), flush=True)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())

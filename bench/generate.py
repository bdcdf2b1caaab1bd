#!/usr/bin/env python
"""Generation throughput: the platform's generation job against a bare transformers ``generate`` loop.

    .venv/bin/python bench/generate.py                                  # 32 prompts, 64 new tokens, batch 8 vs 1
    .venv/bin/python bench/generate.py --prompts 16 --max-new-tokens 32 --repeats 3
    .venv/bin/python bench/generate.py --backend openai [--concurrency 8 --delay-ms 50 ...]

``--backend openai`` benches generation through an OpenAI-compatible server instead: the
platform's job (backend ``server``) against a bare httpx loop at the same concurrency, both
against a local fake server with a fixed answer delay; see ``bench/generate_openai.py`` for its
options and figures. The rest of this docstring is about the default, ``--backend transformers``.

One run sets up a fresh store in a temporary ``ARBITER_VAR_DIR`` under ``var/`` (removed afterwards
unless ``--keep``): a new SQLite database (migrated), the demo prompts (``manage.py load_demo``,
topped up with variants when ``--prompts`` asks for more than the 40 it holds) and the bundled
SmolLM2-135M-Instruct, imported with ``training.registry.model_import`` (the float32 conversion is
cached in ``ARBITER_MODEL_CACHE``, default ``var/model-cache``, and hard-linked in).

Both sides do the same work: the first ``--prompts`` prompts in id order, ``two_samples`` (two
sampled replies per prompt, one ``generate`` call per batch with ``num_return_sequences=2``),
the same ``--max-new-tokens``, ``--temperature``, ``--top-p``, ``--seed`` (batch ``i`` seeded
with ``seed + i``) and batch size.

- platform: ``generation_job_create`` then ``job_supervise``, which runs ``python -m
  training.runner JOB_ID`` in a child process (import torch, load the checkpoint, generate, store
  completions and comparisons batch by batch, report progress).
- bare: this file in a child process (``--bare-worker``) doing what a competent user would: the
  chat template, left padding, one batched ``model.generate`` per batch, decode; no database.

Tokens counted, on both sides: generated tokens up to (not including) the first end-of-turn token.
Two figures per side:

- steady-state tokens/s (like for like; the 0.9 floor applies here): platform = the job summary's
  ``tokens_per_s`` (clock starts after the model is loaded, and includes the database writes);
  bare = the same span around its generate loop (tokenise, generate, decode).
- end-to-end tokens/s: new tokens / wall seconds of the whole child process (Python start,
  imports, model load, generation; for the platform also job creation and the supervisor).

``identical`` checks the two sides produced the same texts (same seeds, same batches: they
should). The batching gain is steady-state tokens/s at ``--batch-size`` over batch size 1, per
side; to bound the run, the batch size 1 runs use the first ``--gain-prompts`` prompts (default
8; batch size 1 costs about the same per token whichever prompts it gets). Each setting runs
``--repeats`` times, platform and bare alternating (order flipped every repeat); medians are
reported, over the quiet runs of a setting when it has any (see ``others``). Default settings
take about 3 minutes on an idle 2-core machine (SmolLM2 in float32 on CPU: about 105 tokens/s at
batch 8, 29 at batch 1); longer when noisy runs are retried.

CPU figures on a shared machine are noisy. Besides the load average before and after, each run
records the share of all CPUs that *other* processes kept busy meanwhile (``others``: busy time
from /proc/stat less this process and its children). At 10 % or more (``NOISY``) the figures say
more about the neighbours than about the code: torch's two OpenMP threads slow down several-fold
when a neighbour takes a core. Such a run is run again (``--retry-noisy``, default once) and left
out of the medians when a quiet run of the same setting exists (else the least noisy run counts,
and the output says the figures are noisy). ``--quiet-wait S`` waits up to S seconds before each
run for a quiet spell.

The last line is one JSON object. Exit status 1 when a job fails or the two sides disagree on
the work done; the 0.9 floor is reported (``floor_met``), not enforced.
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
FLOOR = 0.9
NOISY = 0.1  # a run during which other processes kept more than this share of the CPUs busy


def cpu_snapshot() -> tuple[float, float, float]:
    """(seconds all CPUs were busy, CPU seconds of this process and its waited-for children, clock)."""
    try:
        values = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:9]]
        busy = (sum(values) - values[3] - values[4]) / os.sysconf("SC_CLK_TCK")  # less idle and iowait
    except (OSError, ValueError):
        busy = float("nan")
    own = sum(getattr(resource.getrusage(who), f) for who in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN)
              for f in ("ru_utime", "ru_stime"))
    return busy, own, time.perf_counter()


def others_share(before, after) -> float:
    """Share of all CPUs that other processes kept busy between two snapshots (0 on an idle machine)."""
    wall = after[2] - before[2]
    others = (after[0] - before[0]) - (after[1] - before[1])
    return max(0.0, others / (wall * (os.cpu_count() or 1))) if wall > 0 else 0.0


def wait_for_quiet(limit_s: float, threshold: float = NOISY) -> None:
    """Wait (at most ``limit_s`` seconds) until other processes use under ``threshold`` of the CPUs for 2 s."""
    deadline = time.monotonic() + limit_s
    while time.monotonic() < deadline:
        before = cpu_snapshot()
        time.sleep(2)
        if others_share(before, cpu_snapshot()) < threshold:
            return


def loadavg() -> str:
    try:
        return " ".join(Path("/proc/loadavg").read_text().split()[:3])
    except OSError:
        return "n/a"


# --- bare transformers loop (child process) ----------------------------------------------------

def bare_worker(spec_path: str, out_path: str, batch_size: int) -> None:
    """Load the model with plain transformers and generate the spec's prompts; write figures as JSON."""
    started = time.perf_counter()
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from transformers.utils import logging as transformers_logging

    transformers_logging.disable_progress_bar()
    spec = json.loads(Path(spec_path).read_text())
    location = spec["location"]
    tokenizer = AutoTokenizer.from_pretrained(location, padding_side="left")
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    model = AutoModelForCausalLM.from_pretrained(location, dtype=torch.float32).eval()
    # End of turn: the tokenizer's EOS, the model's generation EOS and <|im_end|> (ChatML).
    stops = {tokenizer.eos_token_id}
    generation_eos = model.generation_config.eos_token_id
    stops.update(generation_eos if isinstance(generation_eos, list) else [generation_eos])
    stops.add(tokenizer.convert_tokens_to_ids("<|im_end|>"))
    stops = sorted(s for s in stops if s is not None)
    loaded = time.perf_counter()

    conversations = spec["conversations"]
    sampling = {"do_sample": True, "temperature": spec["temperature"], "top_p": spec["top_p"]}
    texts, new_tokens = [], 0
    for index, start in enumerate(range(0, len(conversations), batch_size)):
        batch = conversations[start:start + batch_size]
        prompts = [tokenizer.apply_chat_template(c, tokenize=False, add_generation_prompt=True) for c in batch]
        encoded = tokenizer(prompts, return_tensors="pt", padding=True, add_special_tokens=False)
        torch.manual_seed(spec["seed"] + index)
        with torch.inference_mode():
            output = model.generate(
                **encoded, max_new_tokens=spec["max_new_tokens"], num_return_sequences=2,
                pad_token_id=tokenizer.pad_token_id, eos_token_id=stops, **sampling,
            )
        for row in output[:, encoded["input_ids"].shape[1]:].tolist():
            end = next((i for i, token in enumerate(row) if token in stops), len(row))
            new_tokens += end
            texts.append(tokenizer.decode(row[:end], skip_special_tokens=True))
    finished = time.perf_counter()
    Path(out_path).write_text(json.dumps({
        "imports_and_load_s": loaded - started, "seconds": finished - loaded, "new_tokens": new_tokens,
        "tokens_per_s": new_tokens / (finished - loaded), "texts": texts, "threads": torch.get_num_threads(),
    }))


def run_bare(spec_path: Path, batch_size: int, workdir: Path) -> dict:
    out = workdir / f"bare-{batch_size}-{time.monotonic_ns()}.json"
    started = time.perf_counter()
    subprocess.run(
        [sys.executable, str(Path(__file__).resolve()), "--bare-worker", str(spec_path), str(out),
         "--batch-size", str(batch_size)],
        check=True, cwd=ROOT,
    )
    result = json.loads(out.read_text())
    result["total_s"] = time.perf_counter() - started
    result["load_s"] = result["total_s"] - result["seconds"]  # as for the platform: everything but the generate loop
    return result


# --- platform job (through generation_job_create + job_supervise) ------------------------------

def run_platform(config: dict) -> dict:
    from feedback.models import Completion
    from training.services import generation_job_create
    from training.supervisor import job_supervise, log_tail

    last_id = Completion.objects.order_by("-id").values_list("id", flat=True).first() or 0
    started = time.perf_counter()
    job = generation_job_create(config=config)
    status = job_supervise(job_id=job.pk)
    total = time.perf_counter() - started
    job.refresh_from_db()
    if status != "succeeded":
        raise SystemExit(f"platform job {job.pk} {status}: {job.error}\n{log_tail(job.pk)}")
    summary = job.summary
    texts = list(Completion.objects.filter(id__gt=last_id).order_by("id").values_list("text", flat=True))
    return {
        "total_s": total, "seconds": summary["seconds"], "new_tokens": summary["new_tokens"],
        "tokens_per_s": summary["tokens_per_s"], "load_s": total - summary["seconds"], "texts": texts,
    }


# --- setup -------------------------------------------------------------------------------------

def setup_store(prompt_count: int) -> tuple[str, list[int], list[list[dict]]]:
    """Migrate, load prompts, import the model. Returns (checkpoint name, prompt ids, conversations)."""
    import django
    from django.core.management import call_command

    django.setup()
    call_command("migrate", verbosity=0)
    call_command("load_demo", stdout=open(os.devnull, "w"))
    from feedback.models import Prompt
    from feedback.services import prompt_create_bulk
    from training.registry import model_import
    from training.runners.model_import import ImportFailed

    demo = list(Prompt.objects.order_by("id").values_list("messages", flat=True))
    extra, variant = [], 2
    while len(demo) + len(extra) < prompt_count:
        for messages in demo:
            if len(demo) + len(extra) >= prompt_count:
                break
            changed = [dict(m) for m in messages]
            changed[-1]["content"] += f" (variant {variant})"
            extra.append({"messages": changed, "source": "bench-generate"})
        variant += 1
    if extra:
        prompt_create_bulk(prompts=extra)
    prompts = list(Prompt.objects.order_by("id").values_list("id", "messages")[:prompt_count])
    started = time.perf_counter()
    try:
        checkpoint, _ = model_import()
    except ImportFailed:  # another process filled the shared model cache at the same moment: use theirs
        checkpoint, _ = model_import()
    print(f"model imported in {time.perf_counter() - started:.1f} s: {checkpoint.location}", flush=True)
    return checkpoint.name, [p[0] for p in prompts], [p[1] for p in prompts]


def main() -> int:
    backend = argparse.ArgumentParser(add_help=False)
    backend.add_argument("--backend", choices=("transformers", "openai"), default="transformers")
    chosen, rest = backend.parse_known_args()
    if chosen.backend == "openai":
        sys.path.insert(0, str(Path(__file__).resolve().parent))
        from generate_openai import main as openai_main

        return openai_main(rest)
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--backend", choices=("transformers", "openai"), default="transformers",
                        help="openai: through an OpenAI-compatible server (bench/generate_openai.py)")
    parser.add_argument("--prompts", type=int, default=32)
    parser.add_argument("--max-new-tokens", type=int, default=64)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--gain-prompts", type=int, default=8,
                        help="the batch size 1 runs (for the batching gain) use the first N prompts; default 8")
    parser.add_argument("--temperature", type=float, default=0.8)
    parser.add_argument("--top-p", type=float, default=0.95)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--no-batching-gain", action="store_true", help="skip the batch size 1 runs")
    parser.add_argument("--quiet-wait", type=float, default=0, metavar="SECONDS",
                        help="before each run, wait up to this long for other processes to go quiet (default 0)")
    parser.add_argument("--retry-noisy", type=int, default=1, metavar="N",
                        help="run a setting again, up to N times, when other processes took 10%% or more of the CPUs "
                             "during it (default 1)")
    parser.add_argument("--keep", action="store_true", help="keep the temporary directory")
    parser.add_argument("--bare-worker", nargs=2, metavar=("SPEC", "OUT"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.bare_worker:
        bare_worker(*args.bare_worker, args.batch_size)
        return 0
    if min(args.prompts, args.max_new_tokens, args.batch_size, args.repeats, args.gain_prompts) < 1 or args.retry_noisy < 0:
        parser.error("--prompts, --max-new-tokens, --batch-size, --repeats, --gain-prompts must be positive; --retry-noisy >= 0")

    load_start = loadavg()
    (ROOT / "var").mkdir(exist_ok=True)
    workdir = Path(tempfile.mkdtemp(prefix="bench-generate-", dir=ROOT / "var"))  # same disk as the cache: hard links
    os.environ.update({
        "ARBITER_VAR_DIR": str(workdir), "ARBITER_DATA_DIR": str(workdir / "data"),
        "DATABASE_URL": f"sqlite:///{workdir / 'arbiter.sqlite3'}",
        "ARBITER_MODEL_CACHE": os.environ.get("ARBITER_MODEL_CACHE", str(ROOT / "var" / "model-cache")),
        "DJANGO_SETTINGS_MODULE": "config.settings", "SECRET_KEY": "bench-generate-not-secret", "DEBUG": "0",
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
    name, prompt_ids, conversations = setup_store(args.prompts)
    from training.models import Checkpoint

    location = Checkpoint.objects.get(name=name).location
    sizes = [args.batch_size] if args.no_batching_gain or args.batch_size == 1 else [args.batch_size, 1]
    counts = {size: args.prompts if size == args.batch_size else min(args.gain_prompts, args.prompts) for size in sizes}
    specs = {}
    for size in sizes:
        specs[size] = workdir / f"bare-spec-{size}.json"
        specs[size].write_text(json.dumps({
            "location": location, "conversations": conversations[:counts[size]], "max_new_tokens": args.max_new_tokens,
            "temperature": args.temperature, "top_p": args.top_p, "seed": args.seed,
        }))
    runs: dict[tuple[str, int], list[dict]] = {}
    for repeat in range(args.repeats):
        for size in sizes:
            order = ("platform", "bare") if repeat % 2 == 0 else ("bare", "platform")
            for side in order:
                for attempt in range(1 + args.retry_noisy):
                    wait_for_quiet(args.quiet_wait)
                    before = cpu_snapshot()
                    if side == "platform":
                        result = run_platform({
                            "checkpoints": [name], "strategy": "two_samples", "prompt_ids": prompt_ids[:counts[size]],
                            "max_new_tokens": args.max_new_tokens, "temperature": args.temperature,
                            "top_p": args.top_p, "batch_size": size, "seed": args.seed,
                        })
                    else:
                        result = run_bare(specs[size], size, workdir)
                    result["others"] = others_share(before, cpu_snapshot())
                    runs.setdefault((side, size), []).append(result)
                    noisy = result["others"] >= NOISY
                    print(f"  repeat {repeat + 1} {side:8} batch {size:3}: {result['tokens_per_s']:8.1f} tok/s steady, "
                          f"{result['new_tokens']} tokens, {result['total_s']:.1f} s total; other processes used "
                          f"{result['others']:.0%} of the CPUs{' (noisy)' if noisy else ''}, loadavg {loadavg()}",
                          flush=True)
                    if not noisy:
                        break

    def kept(side, size):
        """The runs a figure is taken from: the quiet ones (others < NOISY), else the least noisy one."""
        quiet = [r for r in runs[(side, size)] if r["others"] < NOISY]
        return quiet or [min(runs[(side, size)], key=lambda r: r["others"])]

    def med(side, size, key):
        return statistics.median(r[key] for r in kept(side, size))

    problems = []
    subset = f", first {counts[1]} at batch 1" if 1 in counts and args.batch_size != 1 else ""
    print(f"\nprompts: {args.prompts} at batch {args.batch_size}{subset}; 2 samples each; "
          f"max_new_tokens={args.max_new_tokens}, temperature={args.temperature}, top_p={args.top_p}, "
          f"seed={args.seed}; repeats={args.repeats} (medians); torch threads: {runs[('bare', sizes[0])][0]['threads']}")
    header = (f"{'side':9}{'batch':>6}{'prompts':>8}{'steady tok/s':>14}{'e2e tok/s':>11}{'total s':>9}{'load+start s':>14}"
              f"{'gen s':>8}{'tokens':>8}{'identical':>11}{'others':>8}")
    print(header)
    print("-" * len(header))
    for size in sizes:
        platform_run, bare_run = runs[("platform", size)][0], runs[("bare", size)][0]
        same = sum(a == b for a, b in zip(platform_run["texts"], bare_run["texts"]))
        identical = f"{same}/{max(len(platform_run['texts']), len(bare_run['texts']))}"
        if len(platform_run["texts"]) != len(bare_run["texts"]):
            problems.append(f"batch {size}: {len(platform_run['texts'])} platform completions, "
                            f"{len(bare_run['texts'])} bare")
        if platform_run["new_tokens"] != bare_run["new_tokens"]:
            problems.append(f"batch {size}: platform generated {platform_run['new_tokens']} tokens, "
                            f"bare {bare_run['new_tokens']}")
        for side in ("platform", "bare"):
            tokens = runs[(side, size)][0]["new_tokens"]
            print(f"{side:9}{size:>6}{counts[size]:>8}{med(side, size, 'tokens_per_s'):>14.1f}"
                  f"{tokens / med(side, size, 'total_s'):>11.1f}{med(side, size, 'total_s'):>9.1f}"
                  f"{med(side, size, 'load_s'):>14.1f}{med(side, size, 'seconds'):>8.1f}"
                  f"{tokens:>8}{identical:>11}{max(r['others'] for r in kept(side, size)):>8.0%}")
    print("steady tok/s: generated tokens (up to end of turn) / seconds after the model is loaded (platform: the job "
          "summary's tokens_per_s)\ne2e tok/s: the same tokens / total s, the whole child process (platform: also job "
          "creation and the supervisor)\nothers: the most CPU that other processes took during a counted run, as a "
          "share of all CPUs")
    size = args.batch_size
    platform, bare = med("platform", size, "tokens_per_s"), med("bare", size, "tokens_per_s")
    platform_e2e = runs[("platform", size)][0]["new_tokens"] / med("platform", size, "total_s")
    bare_e2e = runs[("bare", size)][0]["new_tokens"] / med("bare", size, "total_s")
    ratio = platform / bare
    load_end = loadavg()
    others = max(r["others"] for key in runs for r in kept(*key))
    dropped = sum(len(runs[key]) - len(kept(*key)) for key in runs)
    print(f"\nsteady state (like for like) platform/bare at batch {size}: {ratio:.3f} (floor {FLOOR}: "
          f"{'met' if ratio >= FLOOR else 'NOT met'}); end to end incl. process start and model load: "
          f"{platform_e2e / bare_e2e:.3f}")
    print(f"load average: {load_start} at start, {load_end} at end ({os.cpu_count()} CPUs); other processes took up to "
          f"{others:.0%} of the CPUs during a counted run" + (" -- figures are noisy" if others >= NOISY else "")
          + (f"; {dropped} noisy run(s) left out" if dropped else ""))
    result = {
        "platform_tokens_per_s": round(platform, 2), "bare_tokens_per_s": round(bare, 2), "ratio": round(ratio, 3),
        "floor": FLOOR, "floor_met": ratio >= FLOOR,
        "platform_e2e_tokens_per_s": round(platform_e2e, 2), "bare_e2e_tokens_per_s": round(bare_e2e, 2),
        "e2e_ratio": round(platform_e2e / bare_e2e, 3),
        "platform_total_s": round(med("platform", size, "total_s"), 2),
        "bare_total_s": round(med("bare", size, "total_s"), 2),
        "platform_load_s": round(med("platform", size, "load_s"), 2), "bare_load_s": round(med("bare", size, "load_s"), 2),
        "new_tokens": runs[("platform", size)][0]["new_tokens"],
        "same_tokens": runs[("platform", size)][0]["new_tokens"] == runs[("bare", size)][0]["new_tokens"],
    }
    if 1 in sizes and size != 1:
        result["batching_gain_platform"] = round(platform / med("platform", 1, "tokens_per_s"), 2)
        result["batching_gain_bare"] = round(bare / med("bare", 1, "tokens_per_s"), 2)
        result["platform_tokens_per_s_batch1"] = round(med("platform", 1, "tokens_per_s"), 2)
        result["bare_tokens_per_s_batch1"] = round(med("bare", 1, "tokens_per_s"), 2)
        result["ratio_batch1"] = round(med("platform", 1, "tokens_per_s") / med("bare", 1, "tokens_per_s"), 3)
        result["gain_prompts"] = counts[1]
    result.update({
        "prompts": args.prompts, "samples_per_prompt": 2, "max_new_tokens": args.max_new_tokens, "batch_size": size,
        "temperature": args.temperature, "top_p": args.top_p, "seed": args.seed, "repeats": args.repeats,
        "loadavg_start": load_start, "loadavg_end": load_end, "others_cpu_share_max": round(others, 3),
        "noisy_runs_dropped": dropped,
        "cpus": os.cpu_count(), "problems": problems,
    })
    for problem in problems:
        print(f"PROBLEM: {problem}")
    print(json.dumps(result))
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())

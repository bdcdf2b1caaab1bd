#!/usr/bin/env python
"""Reward-model learning quality: the platform's reward run with its default settings against a
bare TRL ``RewardTrainer`` script with TRL's defaults, on the same HH-RLHF rows.

    .venv/bin/python bench/reward_accuracy.py                               # 1,400 train / 200 eval pairs (hours on 2 CPUs)
    .venv/bin/python bench/reward_accuracy.py --train-limit 64 --eval-limit 32 --max-steps 4   # a few minutes
    .venv/bin/python bench/reward_accuracy.py --train my-train.jsonl --eval my-eval.jsonl --skip-bare
    .venv/bin/python bench/reward_accuracy.py --model tiny --train-limit 64 --eval-limit 32   # the pipeline, in a minute
    .venv/bin/python bench/reward_accuracy.py --skip-bare --threads 1 --keep                  # one thread: two benches side by side
    .venv/bin/python bench/reward_accuracy.py --score-only var/kept/data/checkpoints/X ...    # score saved reward models only

Data: by default the shared sample (``../shared/data/hh-rlhf-harmless-base-sample.jsonl.gz``): its
first 1,400 pairs train, its last 200 evaluate. ``--train FILE``/``--eval FILE`` take other HH-RLHF
files; ``--train-limit``/``--eval-limit`` keep the first N of each. One run sets up a fresh store
in a temporary ``ARBITER_VAR_DIR`` under ``var/`` (removed unless ``--keep``): a new SQLite
database, the pairs imported with ``manage.py import_hh_rlhf`` (train pairs into the train split,
eval pairs into eval), the bundled SmolLM2-135M-Instruct as the base, and one dataset snapshot.

- platform: ``reward_run_create`` with only ``base`` and ``snapshot_id`` (every other setting is the
  platform's default; ``--max-steps`` caps a short trial), run by ``job_supervise`` in a helper
  process, exactly as the worker runs it (``python -m training.runner JOB_ID``).
- bare: ``--bare-worker`` in a child process: the snapshot's ``train.jsonl`` rows (prompt, chosen,
  rejected, margin), ``RewardTrainer(model=path, args=RewardConfig(output_dir=...))`` with TRL's
  defaults (learning rate 1e-4, 3 epochs, batch 8, max length 1024 with its length filter,
  gradient checkpointing) except ``bf16=False`` (float32, as a CPU run needs) and ``--max-steps``;
  ``save_model``.

Held-out figures are measured the same way for both saved models, here, on *every* eval pair of
the snapshot (no length filter): each side of a pair is the prompt + response as training
tokenises it, fitted to ``--eval-max-length`` tokens (the prompt's start cut first, then the
responses' end: ``training.runners.pair_tokens``) and scored alone (``rewards.rewards_compute``).
``accuracy`` = pairs with chosen > rejected (strict), ``tie_rate`` = pairs with equal scores
(identical pairs always tie). Per side: wall time of the whole child, CPU time (user + system of
the process that trained), peak RSS (``ru_maxrss``), pairs trained on, steps.

``--threads N`` gives every process (runner, bare script, scoring) N compute threads
(``OMP_NUM_THREADS``/``MKL_NUM_THREADS``; default: torch's, one per CPU). With one thread each, two
benches can run side by side on a 2-CPU machine and still compare CPU time fairly (no thread
spinning while the other waits). ``--score-only DIR ...`` trains nothing: it builds the same store
and snapshot and scores the saved reward models at DIR on the same held-out pairs (for a model
another version of the platform trained, to compare it on exactly these pairs).

The last line is one JSON object. Exit status 1 when a run fails.
"""
from __future__ import annotations

import argparse
import gzip
import io
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
HH_RLHF = ROOT.parent / "shared" / "data" / "hh-rlhf-harmless-base-sample.jsonl.gz"
DEFAULT_TRAIN, DEFAULT_EVAL = 1400, 200  # the shared sample's first 1,400 pairs train, its last 200 evaluate
TINY_NAME = "tiny-bench"
FLOOR_POINTS = 2.0  # platform accuracy at least this many points above the bare script's (issue 12, item 8)


def usage(who) -> dict:
    """Peak RSS (MiB) and CPU seconds (user + system) of ``who`` (``RUSAGE_SELF``/``RUSAGE_CHILDREN``)."""
    used = resource.getrusage(who)
    return {"peak_rss_mb": used.ru_maxrss / 1024, "cpu_s": used.ru_utime + used.ru_stime}


def hh_lines(path: Path) -> list[str]:
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rt", encoding="utf-8") as handle:
        return [line for line in handle if line.strip()]


# --- bare TRL script (child process) ------------------------------------------------------------

def bare_worker(spec_path: str, out_path: str) -> None:
    """Train a reward model with TRL's defaults on the spec's rows; save it; write figures as JSON."""
    started = time.perf_counter()
    from datasets import Dataset
    from transformers import AutoTokenizer
    from trl import RewardConfig, RewardTrainer

    spec = json.loads(Path(spec_path).read_text())
    rows = [json.loads(line) for line in Path(spec["train_path"]).read_text().splitlines() if line.strip()]
    columns = ["prompt", "chosen", "rejected"] + (["margin"] if rows and "margin" in rows[0] else [])
    train = Dataset.from_list([{c: row[c] for c in columns} for row in rows])
    tokenizer = AutoTokenizer.from_pretrained(spec["location"])
    extra = {"max_steps": spec["max_steps"]} if spec["max_steps"] else {}
    args = RewardConfig(output_dir=spec["output_dir"], report_to="none", save_strategy="no", bf16=False, **extra)
    trainer = RewardTrainer(model=spec["location"], args=args, train_dataset=train, processing_class=tokenizer)
    trainer.train()
    trainer.save_model(spec["output_dir"])
    tokenizer.save_pretrained(spec["output_dir"])
    Path(out_path).write_text(json.dumps({
        "train_rows": len(trainer.train_dataset), "steps": trainer.state.global_step,
        "worker_s": time.perf_counter() - started, **usage(resource.RUSAGE_SELF),
    }))


def run_bare(spec: dict, workdir: Path) -> dict:
    spec_path, out = workdir / "bare-spec.json", workdir / "bare.json"
    spec_path.write_text(json.dumps(spec))
    log = workdir / "bare.log"
    started = time.perf_counter()
    with log.open("wb") as handle:
        done = subprocess.run([sys.executable, str(Path(__file__).resolve()), "--bare-worker", str(spec_path), str(out)],
                              cwd=ROOT, stdout=handle, stderr=subprocess.STDOUT)
    if done.returncode:
        raise SystemExit(f"bare run failed ({done.returncode}):\n{log.read_text()[-3000:]}")
    return {**json.loads(out.read_text()), "wall_s": time.perf_counter() - started, "location": spec["output_dir"]}


# --- platform run (job_supervise in a helper process) -------------------------------------------

def platform_worker(job_id: str, out_path: str) -> None:
    """Run one queued job through the supervisor; record the runner child's peak RSS and CPU time."""
    import django

    django.setup()
    from training.supervisor import job_supervise

    status = job_supervise(job_id=int(job_id))
    Path(out_path).write_text(json.dumps({"status": status, **usage(resource.RUSAGE_CHILDREN)}))


def run_platform(config: dict, workdir: Path) -> dict:
    from training.models import Checkpoint, Job
    from training.services import reward_run_create
    from training.supervisor import log_tail

    job = reward_run_create(config=config)
    out = workdir / f"platform-{job.pk}.json"
    started = time.perf_counter()
    subprocess.run([sys.executable, str(Path(__file__).resolve()), "--platform-worker", str(job.pk), str(out)],
                   check=True, cwd=ROOT)
    wall = time.perf_counter() - started
    helper = json.loads(out.read_text())
    job = Job.objects.get(pk=job.pk)
    if job.status != "succeeded":
        raise SystemExit(f"platform job {job.pk} {job.status}: {job.error}\n{log_tail(job.pk)}")
    summary = job.summary
    return {
        "train_rows": summary["train_rows"], "steps": summary["steps"], "wall_s": wall,
        "peak_rss_mb": helper["peak_rss_mb"], "cpu_s": helper["cpu_s"],
        "run_eval_accuracy": summary["eval_accuracy"], "run_eval_tie_rate": summary["eval_tie_rate"],
        "truncated_prompt": summary["truncated_prompt"], "truncated_response": summary["truncated_response"],
        "filtered_identical": summary["filtered_identical"], "settings": job.config,
        "location": Checkpoint.objects.get(name=summary["checkpoint"]).location,
    }


# --- held-out figures, the same for both sides ---------------------------------------------------

def heldout_figures(location: str, rows: list[dict], *, max_length: int, batch_size: int = 8) -> dict:
    """Accuracy (strict wins) and tie rate of the reward model at ``location`` over every row."""
    from training.runners.pair_tokens import pair_fit, pair_outcomes, pair_tokenize
    from training.runners.rewards import reward_model_load, rewards_compute

    model, tokenizer = reward_model_load(location)
    sequences = []
    for row in rows:
        pair, _, _ = pair_fit(pair_tokenize(tokenizer, row["prompt"], row["chosen"], row["rejected"],
                                            checkpoint=location), max_length)
        sequences += [pair.chosen_sequence, pair.rejected_sequence]
    scores = rewards_compute(model, tokenizer.pad_token_id, sequences, batch_size=batch_size)
    outcome = pair_outcomes([scores[i:i + 2] for i in range(0, len(scores), 2)])
    return {"accuracy": round(outcome["accuracy"], 4), "tie_rate": round(outcome["tie_rate"], 4), "eval_pairs": outcome["n"]}


# --- setup and main -----------------------------------------------------------------------------

def setup_store(train_file: Path, eval_file: Path, model: str) -> tuple[str, str]:
    """Migrate, import the pairs (train, eval), bring in the base (the bundled SmolLM2, or with
    ``model="tiny"`` a random 2-layer Llama with its tokenizer, to try the bench out in seconds).
    Returns (checkpoint name, location)."""
    import django
    from django.core.management import call_command

    django.setup()
    call_command("migrate", verbosity=0)
    for path, split in ((train_file, "train"), (eval_file, "eval")):
        # A pair the importer cannot keep faithfully (e.g. one diverging before its last turn) is
        # left out, as the platform's default snapshot would leave it out; the count is printed.
        out = io.StringIO()
        call_command("import_hh_rlhf", str(path), "--split", split, "--skip-refused", stdout=out)
        print(f"import {split}: {out.getvalue().strip()}", flush=True)
    from training.registry import model_import
    from training.runners.model_import import ImportFailed

    try:
        checkpoint, _ = model_import()
    except ImportFailed:  # another process filled the shared model cache at the same moment: use theirs
        checkpoint, _ = model_import()
    if model == "tiny":
        from django.conf import settings
        from transformers import AutoTokenizer

        from tests.model_fixtures import tiny_llama_save
        from training.services import checkpoint_register

        directory = Path(settings.ARBITER_DATA_DIR) / "checkpoints" / TINY_NAME
        tiny_llama_save(directory, AutoTokenizer.from_pretrained(checkpoint.location), seed=0)
        checkpoint = checkpoint_register(name=TINY_NAME, weights_dir=f"checkpoints/{TINY_NAME}")
    return checkpoint.name, checkpoint.location


def data_files(args, workdir: Path) -> tuple[Path, Path]:
    """The train and eval HH-RLHF files this run imports (limits applied), written under ``workdir``."""
    if args.train or args.eval:
        if not (args.train and args.eval):
            raise SystemExit("give both --train FILE and --eval FILE")
        train_lines, eval_lines = hh_lines(Path(args.train)), hh_lines(Path(args.eval))
    else:
        lines = hh_lines(HH_RLHF)
        train_lines, eval_lines = lines[:DEFAULT_TRAIN], lines[DEFAULT_TRAIN:DEFAULT_TRAIN + DEFAULT_EVAL]
    train_lines = train_lines[:args.train_limit] if args.train_limit else train_lines
    eval_lines = eval_lines[:args.eval_limit] if args.eval_limit else eval_lines
    paths = workdir / "train.jsonl", workdir / "eval.jsonl"
    for path, lines in zip(paths, (train_lines, eval_lines)):
        path.write_text("".join(line if line.endswith("\n") else line + "\n" for line in lines))
    return paths


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--train", help="HH-RLHF file to train on (default: the shared sample's first 1,400 pairs)")
    parser.add_argument("--eval", help="HH-RLHF file to evaluate on (default: the shared sample's last 200 pairs)")
    parser.add_argument("--train-limit", type=int, default=0, help="keep the first N training pairs (0: all)")
    parser.add_argument("--eval-limit", type=int, default=0, help="keep the first N eval pairs (0: all)")
    parser.add_argument("--max-steps", type=int, default=0, help="cap both sides' optimiser steps (0: their defaults)")
    parser.add_argument("--eval-max-length", type=int, default=1024,
                        help="tokens per side when scoring held-out pairs (default 1024, TRL's max_length)")
    parser.add_argument("--skip-bare", action="store_true", help="run the platform side only")
    parser.add_argument("--model", choices=["smollm2", "tiny"], default="smollm2",
                        help="the base: the bundled SmolLM2-135M-Instruct, or a random tiny Llama to try the bench out")
    parser.add_argument("--keep", action="store_true", help="keep the temporary directory")
    parser.add_argument("--threads", type=int, default=0, help="compute threads per process (0: torch's default)")
    parser.add_argument("--score-only", nargs="+", metavar="DIR", help="train nothing: score these saved reward models")
    parser.add_argument("--bare-worker", nargs=2, metavar=("SPEC", "OUT"), help=argparse.SUPPRESS)
    parser.add_argument("--platform-worker", nargs=2, metavar=("JOB_ID", "OUT"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.bare_worker:
        bare_worker(*args.bare_worker)
        return 0
    if args.platform_worker:
        sys.path.insert(0, str(ROOT))
        platform_worker(*args.platform_worker)
        return 0
    if min(args.train_limit, args.eval_limit, args.max_steps, args.threads) < 0 or args.eval_max_length < 16:
        parser.error("limits, --max-steps and --threads must be 0 or more; --eval-max-length at least 16")
    missing = [d for d in args.score_only or [] if not (Path(d) / "config.json").is_file()]
    if missing:
        parser.error(f"no saved model (config.json) in {', '.join(missing)}")
    if not (args.train or HH_RLHF.is_file()):
        parser.error(f"{HH_RLHF} is missing (the shared test data lives next to the repository)")

    (ROOT / "var").mkdir(exist_ok=True)
    workdir = Path(tempfile.mkdtemp(prefix="bench-reward-accuracy-", dir=ROOT / "var"))
    os.environ.update({
        "ARBITER_VAR_DIR": str(workdir), "ARBITER_DATA_DIR": str(workdir / "data"),
        "DATABASE_URL": f"sqlite:///{workdir / 'arbiter.sqlite3'}",
        "ARBITER_MODEL_CACHE": os.environ.get("ARBITER_MODEL_CACHE", str(ROOT / "var" / "model-cache")),
        "DJANGO_SETTINGS_MODULE": "config.settings", "SECRET_KEY": "bench-not-secret", "DEBUG": "0",
        "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false",
    })
    os.environ.pop("ARBITER_RUNNER_LAUNCHER", None)
    if args.threads:  # before torch is imported here; inherited by every child
        os.environ.update({"OMP_NUM_THREADS": str(args.threads), "MKL_NUM_THREADS": str(args.threads)})
    sys.path.insert(0, str(ROOT))
    try:
        return bench(args, workdir)
    finally:
        if args.keep:
            print(f"kept {workdir}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)


def bench(args, workdir: Path) -> int:
    train_file, eval_file = data_files(args, workdir)
    name, location = setup_store(train_file, eval_file, args.model)
    from feedback import interface
    from training.runners.snapshot_rows import rows_read

    snapshot = interface.snapshot_create(rules={"sources": ["hh-rlhf"]})
    eval_rows = rows_read(Path(snapshot.eval_path))
    print(f"snapshot {snapshot.id}: {snapshot.train_rows} train and {snapshot.eval_rows} eval pairs", flush=True)
    config = {"base": name, "snapshot_id": snapshot.id, **({"max_steps": args.max_steps} if args.max_steps else {})}
    result: dict = {"model": name, "cpus": os.cpu_count(), "threads": args.threads or None, "train_pairs": snapshot.train_rows,
                    "eval_pairs": len(eval_rows), "max_steps": args.max_steps or None, "eval_max_length": args.eval_max_length}
    if args.score_only:
        result["scored"] = {d: heldout_figures(str(Path(d).resolve()), eval_rows, max_length=args.eval_max_length)
                            for d in args.score_only}
        print(json.dumps(result))
        return 0
    platform = run_platform(config, workdir)
    platform.update(heldout_figures(platform.pop("location"), eval_rows, max_length=args.eval_max_length))
    result["platform"] = platform
    print(f"platform: {json.dumps(platform)}", flush=True)
    if not args.skip_bare:
        bare = run_bare({"location": location, "train_path": str(snapshot.train_path),
                         "output_dir": str(workdir / "bare-model"), "max_steps": args.max_steps}, workdir)
        bare.update(heldout_figures(bare.pop("location"), eval_rows, max_length=args.eval_max_length))
        result["bare"] = bare
        print(f"bare: {json.dumps(bare)}", flush=True)
        points = 100 * (platform["accuracy"] - bare["accuracy"])
        result["accuracy_points_over_bare"] = round(points, 2)
        result["accuracy_floor_met"] = points >= FLOOR_POINTS
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())

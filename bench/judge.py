#!/usr/bin/env python
"""AI judges: endpoint throughput and local SmolLM2 judging against bare client loops, and the
SmolLM2 judge's agreement with the human labels of the shared HH-RLHF sample.

    .venv/bin/python bench/judge.py                          # 100 HH-RLHF pairs, 200 endpoint pairs (a few minutes)
    .venv/bin/python bench/judge.py --pairs 40 --endpoint-pairs 100 --skip-local

One run sets up a fresh store in a temporary ``ARBITER_VAR_DIR`` under ``var/`` (removed unless
``--keep``): a new SQLite database, the first ``--pairs`` pairs of the shared sample
(``../shared/data/hh-rlhf-harmless-base-sample.jsonl.gz``) imported with ``import_hh_rlhf`` (each
a comparison with the human's vote), and the bundled SmolLM2-135M-Instruct (``model_import``; the
float32 conversion is cached in ``ARBITER_MODEL_CACHE``, default ``var/model-cache``).

1. Endpoint: a fake OpenAI-compatible server (``tests/judge_server.py``) answers every request
   after ``--delay`` seconds. platform = a judging job (``run_judging``, in this process: prompts
   rendered, calls through ``ChatClient`` with ``--concurrency`` at once, verdicts, calls, votes
   and progress committed per batch) over ``--endpoint-pairs`` comparisons, both orders; bare = a
   ``ThreadPoolExecutor(--concurrency)`` of ``httpx.Client.post`` over the same request bodies,
   answers decoded with ``json()``, nothing stored. Figure: calls/s, floor 0.9.

Speed runs alternate sides ``--repeats`` times (order flipped each repeat) and the best run of
each side counts: the 2-core machines these run on are shared, and the noise is one-sided.
2. Local: a ``local_lm`` judge on SmolLM2 (template ``pairwise@1``) judges the first
   ``--speed-pairs`` pairs in both orders. platform = the job's judging seconds (after the model is loaded; forward passes,
   verdicts and database writes); bare = the same rendered prompts through the chat template,
   longest first, left-padded batches of the same size, one ``model(...)`` forward pass per batch
   with ``logits_to_keep=1``, nothing stored. Figure: prompts/s, floor 0.9. Also CPU seconds
   (``time.process_time``, best of the repeats) of the judge's batched scoring alone
   (``LocalLmBackend.answer``) against the bare loop on the same prompts: steadier than wall time.
3. Agreement: one more job over the ``--pairs`` pairs; the SmolLM2 judge's votes against the human votes (ties
   count as disagreement; a 135M judge may be near chance), its position consistency (share of
   comparisons whose choice did not flip with the order) and tie rate.

The last line is one JSON object.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
HH_RLHF = ROOT.parent / "shared" / "data" / "hh-rlhf-harmless-base-sample.jsonl.gz"
FLOOR = 0.9


def setup(var_dir: Path, pairs: int) -> None:
    os.environ.update({"ARBITER_VAR_DIR": str(var_dir), "DJANGO_SETTINGS_MODULE": "config.settings", "HF_HUB_OFFLINE": "1"})
    os.environ.setdefault("ARBITER_MODEL_CACHE", str(ROOT / "var" / "model-cache"))
    os.environ.pop("DATABASE_URL", None)
    sys.path.insert(0, str(ROOT))
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    call_command("import_hh_rlhf", str(HH_RLHF), "--limit", str(pairs), "--skip-refused", stdout=open(os.devnull, "w"))


def job_run(judge, ids: list[int], batch_size: int) -> dict:
    from training.judges.services import judging_job_create
    from training.runners.judging import run_judging
    from training.runners.progress import Reporter

    job = judging_job_create(config={"judge": judge.ref, "comparison_ids": ids, "batch_size": batch_size, "only_unjudged": False})
    return run_judging(job, Reporter(job.pk))


def endpoint_bench(ids: list[int], delay: float, concurrency: int, batch_size: int, repeats: int) -> dict:
    import httpx

    from feedback import interface as feedback
    from tests.judge_server import FakeChatServer
    from training.judges.prompt_templates import template_load
    from training.judges.services import judge_save
    from training.runners.judging import requests_build

    template = template_load("pairwise@1")
    items = feedback.comparisons_for_judging(campaign_id=None, ids=ids, limit=None)
    bodies = [{"model": "answer:A", "messages": r.messages, "max_tokens": 16, "temperature": 0.0}
              for item in items for r in requests_build(item, template, [None])]
    platform, bare = [], []
    with FakeChatServer(delay_s=delay) as server:
        options = {"max_concurrency": concurrency, "timeout_s": 30.0, "max_retries": 0}
        judge, _ = judge_save(name="bench-endpoint", kind="openai", base_url=server.base_url, model_name="answer:A", options=options)
        url = server.base_url + "/chat/completions"
        limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
        for repeat in range(repeats):
            for side in (("platform", "bare") if repeat % 2 == 0 else ("bare", "platform")):
                if side == "platform":
                    summary = job_run(judge, ids, batch_size)
                    platform.append(summary["calls"] / summary["seconds"])
                    continue
                with httpx.Client(timeout=30.0, limits=limits) as client, ThreadPoolExecutor(concurrency) as pool:
                    started = time.perf_counter()
                    answers = list(pool.map(lambda body: client.post(url, json=body).json()["choices"][0]["message"]["content"], bodies))
                    bare.append(len(answers) / (time.perf_counter() - started))
    return {"calls": len(bodies), "delay_s": delay, "concurrency": concurrency, "batch_size": batch_size, "repeats": repeats,
            "platform_calls_per_s": round(max(platform), 1), "bare_calls_per_s": round(max(bare), 1),
            "platform_runs": [round(x, 1) for x in platform], "bare_runs": [round(x, 1) for x in bare],
            "ideal_calls_per_s": round(concurrency / delay, 1), "ratio": round(max(platform) / max(bare), 3)}


def bare_forward(location: str, texts: list[str], batch_size: int, clock=time.perf_counter) -> float:
    """Seconds (of ``clock``) for the bare loop: chat template, longest first, left-padded batches,
    one forward pass each."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(location, padding_side="left")
    model = AutoModelForCausalLM.from_pretrained(location, dtype=torch.float32).eval()
    started = clock()
    chats = [tokenizer.apply_chat_template([{"role": "user", "content": t}], tokenize=False, add_generation_prompt=True) for t in texts]
    chats.sort(key=lambda chat: -len(tokenizer(chat, add_special_tokens=False)["input_ids"]))
    labels = [tokenizer.encode(s, add_special_tokens=False)[0] for s in ("A", "B")]
    for start in range(0, len(chats), batch_size):
        batch = tokenizer(chats[start:start + batch_size], return_tensors="pt", padding=True, add_special_tokens=False)
        with torch.inference_mode():
            logits = model(**batch, logits_to_keep=1).logits[:, -1, :]
        torch.softmax(logits.float(), -1)[:, labels].tolist()
    return clock() - started


def _order_averaged(judge) -> dict[int, str]:
    """Per comparison, the choice from label probabilities averaged over both orders (a check on
    whether the model knows anything beyond its position bias; votes never use it):
    ``P_ab(A) + P_ba(B)`` against ``P_ab(B) + P_ba(A)``."""
    from training.judges.models import JudgeCall

    lean: dict[int, float] = {}
    for cid, order, raw in JudgeCall.objects.filter(judge=judge, status="ok").values_list("comparison_id", "order", "raw_output"):
        p = json.loads(raw)["probabilities"]
        lean[cid] = lean.get(cid, 0.0) + (p["A"] - p["B"]) * (1 if order == "ab" else -1)
    return {cid: "a" if value > 0 else "b" if value < 0 else "tie" for cid, value in lean.items()}


def local_bench(ids: list[int], speed_ids: list[int], batch_size: int, job_batch_size: int, repeats: int) -> dict:
    from feedback import interface as feedback
    from feedback.models import Vote, VoteOrigin
    from training.judges.models import JudgeVerdict
    from training.judges.prompt_templates import template_load
    from training.judges.services import judge_save
    from training.registry import model_import
    from training.runners.judging import requests_build

    checkpoint, _ = model_import()
    judge, _ = judge_save(name="smollm2", kind="local_lm", checkpoint=checkpoint.name,
                          options={"batch_size": batch_size, "label_mass_min": 0.0})
    template = template_load("pairwise@1")
    items = feedback.comparisons_for_judging(campaign_id=None, ids=speed_ids, limit=None)
    texts = [r.messages[0]["content"] for item in items for r in requests_build(item, template, [None])]
    platform, bare = [], []
    for repeat in range(repeats):
        for side in (("platform", "bare") if repeat % 2 == 0 else ("bare", "platform")):
            if side == "platform":
                summary = job_run(judge, speed_ids, job_batch_size)
                platform.append(summary["calls"] / summary["seconds"])
            else:
                bare.append(len(texts) / bare_forward(checkpoint.location, texts, batch_size))
    # CPU seconds of the same work (steadier than wall time on a shared machine): the judge's
    # batched scoring alone (``LocalLmBackend.answer``, no database) against the bare loop.
    from training.runners.judge_local import LocalLmBackend
    from training.judges.config import JudgeOptions

    backend = LocalLmBackend(checkpoint=checkpoint, options=JudgeOptions.from_dict(judge.options), template=template)
    requests = [r for item in items for r in requests_build(item, template, [None])]
    cpu_platform, cpu_bare = [], []
    for repeat in range(repeats):
        started = time.process_time()
        backend.answer(requests)
        cpu_platform.append(time.process_time() - started)
        cpu_bare.append(bare_forward(checkpoint.location, texts, batch_size, clock=time.process_time))
    JudgeVerdict.objects.filter(judge=judge).delete()
    summary = job_run(judge, ids, job_batch_size)  # the agreement run
    human = dict(Vote.objects.filter(origin=VoteOrigin.HUMAN, comparison_id__in=ids).values_list("comparison_id", "choice"))
    verdicts = list(JudgeVerdict.objects.filter(judge=judge).values_list("comparison_id", "choice", "choice_ab", "choice_ba"))
    n = len(verdicts)
    averaged = _order_averaged(judge)
    return {
        "speed_pairs": len(speed_ids), "prompts": len(texts), "batch_size": batch_size, "job_batch_size": job_batch_size,
        "repeats": repeats, "platform_prompts_per_s": round(max(platform), 3), "bare_prompts_per_s": round(max(bare), 3),
        "platform_runs": [round(x, 3) for x in platform], "bare_runs": [round(x, 3) for x in bare],
        "ratio": round(max(platform) / max(bare), 3),
        "platform_cpu_s": round(min(cpu_platform), 2), "bare_cpu_s": round(min(cpu_bare), 2),
        "cpu_ratio": round(min(cpu_bare) / min(cpu_platform), 3),
        "pairs": n, "agreement_run_prompts_per_s": round(summary["calls"] / summary["seconds"], 3),
        "agreement": round(sum(c == human.get(cid) for cid, c, _, _ in verdicts) / n, 3),
        "agreement_shown_a_first": round(sum(ab == human.get(cid) for cid, _, ab, _ in verdicts) / n, 3),
        "agreement_shown_b_first": round(sum(ba == human.get(cid) for cid, _, _, ba in verdicts) / n, 3),
        "agreement_order_averaged": round(sum(averaged.get(cid) == human.get(cid) for cid, *_ in verdicts) / n, 3),
        "position_consistency": round(1 - summary["inconsistent"] / n, 3),
        "tie_rate": round(summary["ties"] / n, 3),
        "chose_first_shown": round(sum((ab == "a") + (ba == "b") for _, _, ab, ba in verdicts) / (2 * n), 3),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pairs", type=int, default=100, help="HH-RLHF pairs the SmolLM2 judge judges (both orders)")
    parser.add_argument("--endpoint-pairs", type=int, default=200, help="comparisons judged through the fake endpoint")
    parser.add_argument("--delay", type=float, default=0.05, help="the fake endpoint's answer delay, seconds")
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--endpoint-batch-size", type=int, default=8, help="comparisons per committed batch (the job default)")
    parser.add_argument("--batch-size", type=int, default=8, help="prompts per forward pass (local judge and bare loop)")
    parser.add_argument("--speed-pairs", type=int, default=16, help="pairs of the like-for-like local speed runs")
    parser.add_argument("--repeats", type=int, default=3, help="speed runs per side, alternating; the best of each counts")
    parser.add_argument("--local-job-batch-size", type=int, default=32, help="comparisons per committed batch of the local job")
    parser.add_argument("--skip-local", action="store_true")
    parser.add_argument("--keep", action="store_true")
    args = parser.parse_args()
    if not HH_RLHF.is_file():
        print(f"error: {HH_RLHF} is absent", file=sys.stderr)
        return 1
    var_dir = Path(tempfile.mkdtemp(prefix="bench-judge-", dir=ROOT / "var"))
    try:
        setup(var_dir, max(args.pairs, args.endpoint_pairs))
        from feedback.models import Comparison

        all_ids = list(Comparison.objects.order_by("id").values_list("id", flat=True))
        result = {"endpoint": endpoint_bench(all_ids[:args.endpoint_pairs], args.delay, args.concurrency, args.endpoint_batch_size,
                                             args.repeats)}
        e = result["endpoint"]
        print(f"endpoint: {e['calls']} calls at concurrency {e['concurrency']}, {e['delay_s']} s each: platform "
              f"{e['platform_calls_per_s']} calls/s, bare httpx {e['bare_calls_per_s']} calls/s (ideal {e['ideal_calls_per_s']}), "
              f"ratio {e['ratio']} (floor {FLOOR})")
        if not args.skip_local:
            import torch

            result["local"] = local_bench(all_ids[:args.pairs], all_ids[:args.speed_pairs], args.batch_size,
                                          args.local_job_batch_size, args.repeats)
            result["local"]["torch_threads"] = torch.get_num_threads()
            lo = result["local"]
            print(f"local SmolLM2 judge: {lo['prompts']} prompts, batch {lo['batch_size']}: platform {lo['platform_prompts_per_s']} "
                  f"prompts/s, bare forward {lo['bare_prompts_per_s']} prompts/s, ratio {lo['ratio']} (floor {FLOOR}); CPU seconds "
                  f"for the same prompts: judge scoring {lo['platform_cpu_s']}, bare {lo['bare_cpu_s']}, ratio {lo['cpu_ratio']}")
            print(f"SmolLM2 vs HH-RLHF humans on {lo['pairs']} pairs: agreement {lo['agreement']} (ties count as disagreement), "
                  f"order-averaged probabilities {lo['agreement_order_averaged']}, shown-a-first {lo['agreement_shown_a_first']}, shown-b-first {lo['agreement_shown_b_first']}, "
                  f"position consistency {lo['position_consistency']}, tie rate {lo['tie_rate']}, "
                  f"chose the first-shown response {lo['chose_first_shown']}")
        result["floors_met"] = all(part["ratio"] >= FLOOR for key, part in result.items() if isinstance(part, dict))
        print(json.dumps(result))
        return 0
    finally:
        if not args.keep:
            shutil.rmtree(var_dir, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())

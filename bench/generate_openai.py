#!/usr/bin/env python
"""Generation through an OpenAI-compatible server: the platform's generation job against a bare httpx loop.

    .venv/bin/python bench/generate.py --backend openai                       # 128 prompts, 8 at once, 50 ms answers
    .venv/bin/python bench/generate.py --backend openai --concurrency 32 --prompts 512 --repeats 3 --stream

(``bench/generate.py --backend openai`` runs this file's ``main``.) A fake OpenAI-compatible server
(``tests/judge_server.py``) runs in its own process and answers every chat completion after a
fixed delay (``--delay-ms``, default 50): the server's speed is fixed, so what is measured is how
well each side keeps ``--concurrency`` requests in flight. Both sides send the same requests: two
per prompt (``two_samples``), the same messages, sampling settings, seeds and stop strings.

- platform: ``generation_job_create`` (backend ``server``, a ``ModelServer`` with
  ``max_concurrency`` = ``--concurrency``) then ``job_supervise``: a child process runs the job
  (clients, calls queued ahead, completions and comparisons written batch by batch with progress).
- bare: a child process with one ``httpx.Client`` and a thread pool of ``--concurrency`` workers
  posting the same bodies and parsing the answers; no database. (The ``openai`` package is not
  installed here; its client is httpx underneath.)

Figures per side: steady calls/s (platform: the job summary's ``calls_per_s``, whose clock starts
once the clients are open and includes every database write; bare: the same span around its
loop), end-to-end calls/s (over the whole child process, Python start included), and the mean
number of requests in flight at the server over the steady span (its request-seconds / seconds;
the ideal is ``--concurrency``). Medians over ``--repeats``, sides alternating. The floor (0.9 of
bare, steady) is reported (``floor_met``), not enforced; exit status 1 when a job fails or the two
sides' answers differ. The last line is one JSON object.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
FLOOR = 0.9
SERVE = ("import sys; sys.path.insert(0, sys.argv[2]); from tests.judge_server import FakeChatServer; "
         "s = FakeChatServer(delay_s=float(sys.argv[1])); print(s.base_url, flush=True); sys.stdin.read(); s.stop()")


def bare_worker(spec_path: str, out_path: str) -> None:
    """Post the spec's bodies with ``concurrency`` threads over one httpx client; write figures as JSON."""
    from concurrent.futures import ThreadPoolExecutor

    spec = json.loads(Path(spec_path).read_text())
    concurrency = spec["concurrency"]
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    with httpx.Client(timeout=30, limits=limits) as client, ThreadPoolExecutor(concurrency) as pool:
        def call(body: dict) -> str:
            if body.get("stream"):
                with client.stream("POST", spec["url"], json=body) as response:
                    response.raise_for_status()
                    parts = []
                    for line in response.iter_lines():
                        if line.startswith("data:") and line[5:].strip() != "[DONE]":
                            chunk = json.loads(line[5:])
                            if chunk.get("choices"):
                                parts.append(chunk["choices"][0]["delta"].get("content") or "")
                    return "".join(parts)
            response = client.post(spec["url"], json=body)
            response.raise_for_status()
            return response.json()["choices"][0]["message"]["content"]

        started = time.perf_counter()
        texts = list(pool.map(call, spec["bodies"]))
        seconds = time.perf_counter() - started
    Path(out_path).write_text(json.dumps({"seconds": seconds, "calls": len(texts), "texts": texts}))


def server_stats(base_url: str) -> dict:
    return httpx.get(base_url.rsplit("/v1", 1)[0] + "/stats").json()


def run_bare(spec_path: Path, workdir: Path, base_url: str) -> dict:
    out = workdir / f"bare-{time.monotonic_ns()}.json"
    before, started = server_stats(base_url), time.perf_counter()
    subprocess.run([sys.executable, str(Path(__file__).resolve()), "--bare-worker", str(spec_path), str(out)], check=True, cwd=ROOT)
    total = time.perf_counter() - started
    result = json.loads(out.read_text())
    busy = server_stats(base_url)["busy_s"] - before["busy_s"]
    return {"calls_per_s": result["calls"] / result["seconds"], "e2e_calls_per_s": result["calls"] / total, "total_s": total,
            "seconds": result["seconds"], "calls": result["calls"], "in_flight": busy / result["seconds"], "texts": sorted(result["texts"])}


def run_platform(config: dict, base_url: str) -> dict:
    from feedback.models import Completion
    from training.services import generation_job_create
    from training.supervisor import job_supervise, log_tail

    last_id = Completion.objects.order_by("-id").values_list("id", flat=True).first() or 0
    before, started = server_stats(base_url), time.perf_counter()
    job = generation_job_create(config=config)
    status = job_supervise(job_id=job.pk)
    total = time.perf_counter() - started
    job.refresh_from_db()
    if status != "succeeded":
        raise SystemExit(f"platform job {job.pk} {status}: {job.error}\n{log_tail(job.pk)}")
    summary = job.summary
    busy = server_stats(base_url)["busy_s"] - before["busy_s"]
    texts = sorted(Completion.objects.filter(id__gt=last_id).values_list("text", flat=True))
    return {"calls_per_s": summary["calls_per_s"], "e2e_calls_per_s": summary["calls"] / total, "total_s": total,
            "seconds": summary["seconds"], "calls": summary["calls"], "in_flight": busy / summary["seconds"], "texts": texts,
            "failed_calls": summary["failed_calls"]}


def setup(args, base_url: str) -> tuple[dict, list[dict]]:
    """Migrate, add prompts, register the server and a checkpoint it serves. Returns (job config, request bodies)."""
    import django
    from django.core.management import call_command

    django.setup()
    call_command("migrate", verbosity=0)
    from feedback.models import Prompt
    from feedback.services import prompt_create_bulk
    from training.backends.services import checkpoint_server_set, model_server_save
    from training.config import GenerationConfig
    from training.runners.generation_server import batch_calls
    from training.services import checkpoint_register

    prompt_create_bulk(prompts=[{"messages": [{"role": "user", "content": f"Write one line about topic {i}."}],
                                 "source": "bench-generate-openai"} for i in range(args.prompts)])
    prompts = list(Prompt.objects.order_by("id")[:args.prompts])
    server = model_server_save(name="fake", base_url=base_url, model_name="gen", max_concurrency=args.concurrency,
                               timeout_s=30.0, max_retries=2, stream=args.stream)
    checkpoint = checkpoint_server_set(checkpoint=checkpoint_register(name="served", hub_id="org/served"), server=server)
    config = {"checkpoints": [checkpoint.name], "strategy": "two_samples", "backend": "server", "prompt_ids": [p.pk for p in prompts],
              "batch_size": args.batch_size, "max_new_tokens": 64, "temperature": 0.8, "top_p": 0.95, "seed": 0}
    parsed = GenerationConfig.from_dict(config)
    bodies = []
    for index, start in enumerate(range(0, len(prompts), args.batch_size)):
        batch = prompts[start:start + args.batch_size]
        for call in batch_calls(parsed, {checkpoint.name: checkpoint}, len(batch), parsed.seed + index):
            body = {"model": "gen", "messages": batch[call.row].messages, **call.sampling}
            if args.stream:
                body.update(stream=True, stream_options={"include_usage": True})
            bodies.append(body)
    return config, bodies


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0], prog="bench/generate.py --backend openai")
    parser.add_argument("--prompts", type=int, default=128)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--delay-ms", type=float, default=50.0, help="the fake server's answer delay (default 50)")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--stream", action="store_true", help="streamed answers (server-sent events) on both sides")
    parser.add_argument("--keep", action="store_true", help="keep the temporary directory")
    parser.add_argument("--bare-worker", nargs=2, metavar=("SPEC", "OUT"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.bare_worker:
        bare_worker(*args.bare_worker)
        return 0
    if min(args.prompts, args.concurrency, args.batch_size, args.repeats) < 1 or args.delay_ms < 0:
        parser.error("--prompts, --concurrency, --batch-size, --repeats must be positive; --delay-ms >= 0")
    (ROOT / "var").mkdir(exist_ok=True)
    workdir = Path(tempfile.mkdtemp(prefix="bench-generate-openai-", dir=ROOT / "var"))
    os.environ.update({
        "ARBITER_VAR_DIR": str(workdir), "ARBITER_DATA_DIR": str(workdir / "data"),
        "DATABASE_URL": os.environ.get("BENCH_DATABASE_URL", f"sqlite:///{workdir / 'arbiter.sqlite3'}"),
        "DJANGO_SETTINGS_MODULE": "config.settings", "SECRET_KEY": "bench-generate-not-secret", "DEBUG": "0",
    })
    os.environ.pop("ARBITER_RUNNER_LAUNCHER", None)
    sys.path.insert(0, str(ROOT))
    server = subprocess.Popen([sys.executable, "-c", SERVE, str(args.delay_ms / 1000), str(ROOT)],
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        base_url = server.stdout.readline().strip()
        return bench(args, workdir, base_url)
    finally:
        server.stdin.close()
        server.wait(timeout=10)
        if args.keep:
            print(f"kept {workdir}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)


def bench(args, workdir: Path, base_url: str) -> int:
    config, bodies = setup(args, base_url)
    spec = workdir / "bare-spec.json"
    spec.write_text(json.dumps({"url": base_url + "/chat/completions", "bodies": bodies, "concurrency": args.concurrency}))
    runs: dict[str, list[dict]] = {"platform": [], "bare": []}
    for repeat in range(args.repeats):
        for side in (("platform", "bare") if repeat % 2 == 0 else ("bare", "platform")):
            result = run_platform(config, base_url) if side == "platform" else run_bare(spec, workdir, base_url)
            runs[side].append(result)
            print(f"  repeat {repeat + 1} {side:8}: {result['calls_per_s']:7.1f} calls/s steady, {result['e2e_calls_per_s']:7.1f} "
                  f"end to end, {result['in_flight']:.2f} in flight on average, {result['calls']} calls, {result['total_s']:.2f} s total",
                  flush=True)

    def med(side: str, key: str) -> float:
        return statistics.median(r[key] for r in runs[side])

    ideal = args.concurrency / (args.delay_ms / 1000) if args.delay_ms else float("inf")
    problems = []
    if runs["platform"][0]["texts"] != runs["bare"][0]["texts"]:
        problems.append("the platform's completions differ from the bare loop's answers")
    if any(r.get("failed_calls") for r in runs["platform"]):
        problems.append("the platform job had failed calls")
    ratio, e2e_ratio = med("platform", "calls_per_s") / med("bare", "calls_per_s"), med("platform", "e2e_calls_per_s") / med("bare", "e2e_calls_per_s")
    print(f"\n{args.prompts} prompts x 2 samples = {len(bodies)} calls; concurrency {args.concurrency}; batch {args.batch_size}; "
          f"server delay {args.delay_ms:g} ms (ideal {ideal:.0f} calls/s); {'streamed' if args.stream else 'not streamed'}; "
          f"medians of {args.repeats}")
    print(f"{'side':9}{'steady calls/s':>16}{'e2e calls/s':>13}{'in flight':>11}{'total s':>9}")
    for side in ("platform", "bare"):
        print(f"{side:9}{med(side, 'calls_per_s'):>16.1f}{med(side, 'e2e_calls_per_s'):>13.1f}{med(side, 'in_flight'):>11.2f}"
              f"{med(side, 'total_s'):>9.2f}")
    print(f"\nsteady platform/bare: {ratio:.3f} (floor {FLOOR}: {'met' if ratio >= FLOOR else 'NOT met'}); end to end "
          f"(incl. process start): {e2e_ratio:.3f}; same answers: {not problems}")
    for problem in problems:
        print(f"PROBLEM: {problem}")
    print(json.dumps({
        "backend": "openai", "platform_calls_per_s": round(med("platform", "calls_per_s"), 1),
        "bare_calls_per_s": round(med("bare", "calls_per_s"), 1), "ratio": round(ratio, 3), "floor": FLOOR, "floor_met": ratio >= FLOOR,
        "platform_e2e_calls_per_s": round(med("platform", "e2e_calls_per_s"), 1),
        "bare_e2e_calls_per_s": round(med("bare", "e2e_calls_per_s"), 1), "e2e_ratio": round(e2e_ratio, 3),
        "platform_in_flight": round(med("platform", "in_flight"), 2), "bare_in_flight": round(med("bare", "in_flight"), 2),
        "ideal_calls_per_s": round(ideal, 1), "calls": len(bodies), "prompts": args.prompts, "concurrency": args.concurrency,
        "batch_size": args.batch_size, "delay_ms": args.delay_ms, "stream": args.stream, "repeats": args.repeats,
        "cpus": os.cpu_count(), "problems": problems,
    }))
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())

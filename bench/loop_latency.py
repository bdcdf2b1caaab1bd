"""Loop latency: from the vote that triggers a round to the new checkpoint's comparisons being served.

    .venv/bin/python bench/loop_latency.py                    # SmolLM2-135M on CPU, a 100-pair round
    .venv/bin/python bench/loop_latency.py --model tiny       # a tiny Llama: the platform's own latency

A fresh SQLite database and data directory; ``--pairs`` HH-RLHF pairs from the shared sample are
the round's votes (20% of prompts held out by hash). The loop is switched on with one vote per
round, a real ``manage.py db_worker`` runs the jobs as in production, and an annotator casts the
vote that triggers the round. A second annotator then asks for work every ``--poll`` seconds until
the queue serves them a comparison of the new checkpoint against its parent. Prints the latency,
each step's time (reward run, DPO run, generation, and the waits between them), and ends with one
JSON line of the figures.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
HH_RLHF = ROOT.parent / "shared" / "data" / "hh-rlhf-harmless-base-sample.jsonl.gz"
sys.path.insert(0, str(ROOT))


def setup(args, workdir: Path) -> str:
    """Migrate, import the pairs and the model; returns the policy checkpoint's name."""
    import django
    from django.core.management import call_command

    django.setup()
    call_command("migrate", verbosity=0)
    call_command("import_hh_rlhf", str(HH_RLHF), "--limit", str(args.pairs), "--eval-fraction", "0.2",
                 stdout=open(os.devnull, "w"))
    from training.registry import model_import

    smollm2, _ = model_import()
    if args.model == "smollm2":
        return smollm2.name
    from django.conf import settings
    from transformers import AutoTokenizer

    from tests.model_fixtures import tiny_llama_save
    from training.services import checkpoint_register

    directory = Path(settings.ARBITER_DATA_DIR) / "checkpoints" / "tiny-loop"
    tiny_llama_save(directory, AutoTokenizer.from_pretrained(smollm2.location), seed=0)
    return checkpoint_register(name="tiny-loop", weights_dir="checkpoints/tiny-loop").name


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", choices=["smollm2", "tiny"], default="smollm2")
    parser.add_argument("--pairs", type=int, default=100, help="HH-RLHF pairs in the round's snapshot")
    parser.add_argument("--max-length", type=int, default=128, help="tokens, reward and DPO runs")
    parser.add_argument("--epochs", type=float, default=1.0, help="reward and DPO epochs over the pairs that fit")
    parser.add_argument("--prompts", type=int, default=8, help="eval prompts in the new-vs-parent generation")
    parser.add_argument("--max-new-tokens", type=int, default=48)
    parser.add_argument("--poll", type=float, default=1.0, help="seconds between the annotator's requests")
    parser.add_argument("--timeout", type=float, default=3600)
    args = parser.parse_args()

    workdir = Path(tempfile.mkdtemp(prefix="arbiter-loop-bench-"))
    env = {
        **os.environ, "DEBUG": "0", "SECRET_KEY": "bench", "HTTPS": "0", "ARBITER_PLAIN_STATIC": "1",
        "DATABASE_URL": f"sqlite:///{workdir / 'db.sqlite3'}", "ARBITER_DATA_DIR": str(workdir / "data"),
        "DJANGO_SETTINGS_MODULE": "config.settings", "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false",
    }
    os.environ.update(env)
    policy = setup(args, workdir)

    from django.db import transaction

    from feedback.models import Comparison, Completion, Prompt
    from feedback.services import assignment_claim, vote_submit
    from tests.factories import UserFactory
    from training import loop
    from training.models import LoopRound, RoundStatus

    shared = {"max_length": args.max_length, "num_train_epochs": args.epochs}
    loop.loop_settings_update(
        enabled=True, votes_per_round=1, method="dpo", policy=policy, rules={},
        reward_config={**shared, "eval_steps": 1_000_000}, policy_config={**shared, "eval_steps": 1_000_000},
        generation_config={"limit": args.prompts, "max_new_tokens": args.max_new_tokens},
    )
    voter, waiter = UserFactory(role="annotator"), UserFactory(role="annotator")
    prompt = Prompt.objects.filter(split="train").first()
    with transaction.atomic():
        a = Completion.objects.create(prompt=prompt, model_name="seed", text="A careful, kind answer.")
        b = Completion.objects.create(prompt=prompt, model_name="seed", text="No.")
        Comparison.objects.create(prompt=prompt, completion_a=a, completion_b=b)

    worker = subprocess.Popen([sys.executable, "manage.py", "db_worker"], cwd=ROOT, env=env,
                              stdout=open(workdir / "worker.log", "wb"), stderr=subprocess.STDOUT)
    try:
        assignment = assignment_claim(annotator=voter)
        vote, _ = vote_submit(annotator=voter, comparison_id=assignment.comparison_id, choice="a", strength="strong")
        voted_at = time.perf_counter()
        served = None
        while time.perf_counter() - voted_at < args.timeout:
            loop_round = LoopRound.objects.order_by("-id").first()
            if loop_round is not None and loop_round.status not in (RoundStatus.RUNNING, RoundStatus.SUCCEEDED):
                print(f"round failed: {loop_round.error}", file=sys.stderr)
                return 1
            if loop_round is not None and loop_round.checkpoint_id:
                claimed = assignment_claim(annotator=waiter)
                names = {claimed.comparison.completion_a.model_name, claimed.comparison.completion_b.model_name} if claimed else set()
                if loop_round.checkpoint.name in names:
                    served = time.perf_counter()
                    break
            time.sleep(args.poll)
        if served is None:
            print("timed out before the new comparisons were served", file=sys.stderr)
            return 1
    finally:
        worker.terminate()
        worker.wait(timeout=30)

    loop_round = LoopRound.objects.select_related("reward_job", "policy_job", "generation_job", "snapshot").get(pk=loop_round.pk)
    steps = {name: job for name, job in (("reward", loop_round.reward_job), ("dpo", loop_round.policy_job),
                                         ("generation", loop_round.generation_job))}

    def seconds(job, field_from, field_to) -> float | None:
        start, end = getattr(job, field_from), getattr(job, field_to)
        return round((end - start).total_seconds(), 1) if start and end else None

    figures = {
        "model": args.model, "pairs": loop_round.snapshot.train_rows + loop_round.snapshot.eval_rows,
        "train_pairs": loop_round.snapshot.train_rows, "eval_pairs": loop_round.snapshot.eval_rows,
        "loop_latency_s": round(served - voted_at, 1),
        **{f"{name}_s": seconds(job, "started_at", "finished_at") for name, job in steps.items()},
        **{f"{name}_queue_wait_s": seconds(job, "created_at", "started_at") for name, job in steps.items()},
        "comparisons": (loop_round.generation_job.summary or {}).get("paired"),
        "reward_accuracy": (loop_round.reward_job.summary or {}).get("eval_accuracy"),
        "max_length": args.max_length, "prompts": args.prompts, "max_new_tokens": args.max_new_tokens,
        "cpus": os.cpu_count(), "loadavg_end": " ".join(f"{v:.2f}" for v in os.getloadavg()),
    }
    print(f"vote -> new comparisons served: {figures['loop_latency_s']} s "
          f"(reward {figures['reward_s']} s, DPO {figures['dpo_s']} s, generation {figures['generation_s']} s)")
    print(json.dumps(figures))
    return 0


if __name__ == "__main__":
    sys.exit(main())

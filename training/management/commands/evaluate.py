"""manage.py evaluate --eval-set ID --baseline NAME --candidate NAME [--candidate ...] --reward-model NAME
[--tie-band X] [--set max_new_tokens=64 ...] [--wait]

Queues an evaluation (refused with one readable line, nothing queued, when e.g. the baseline is a
candidate or the eval set is empty). With ``--wait`` it runs the generation and then the scoring
job in this process's children, with a live progress line each, and prints the report's figures.
"""
from __future__ import annotations

import time

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError

from ._launch import ProgressLine, one_line, parse_setting


def figure(f: dict | None) -> str:
    """``0.667 [0.500, 0.833]`` or ``undefined (reason)``."""
    if not f:
        return "—"
    if not f.get("defined"):
        return f"undefined ({f.get('reason')})"
    return f"{f['value']:.3f} [{f['low']:.3f}, {f['high']:.3f}]"


class Command(BaseCommand):
    help = "Evaluate candidate checkpoints against a baseline on an eval set, scored by a reward model."

    def add_arguments(self, parser):
        parser.add_argument("--eval-set", type=int, required=True, help="eval set id")
        parser.add_argument("--baseline", required=True, help="baseline policy checkpoint")
        parser.add_argument("--candidate", action="append", default=[], help="a candidate checkpoint (repeat)")
        parser.add_argument("--reward-model", required=True, help="reward checkpoint that scores the answers")
        parser.add_argument("--tie-band", type=float, default=0.0, help="tie when |score difference| <= this")
        parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                            help="a generation setting: max_new_tokens, temperature, top_p, batch_size, seed, limit")
        parser.add_argument("--wait", action="store_true", help="run its jobs here and print the report")

    def handle(self, *args, **o):
        from training.evaluation.services import evaluation_run_create

        generation = dict(parse_setting(text) for text in o["set"])
        try:
            run = evaluation_run_create(eval_set_id=o["eval_set"], baseline=o["baseline"], candidates=o["candidate"],
                                        reward_model=o["reward_model"], tie_band=o["tie_band"], generation=generation)
        except ValidationError as error:
            raise CommandError(one_line(error)) from None
        self.stdout.write(f"queued evaluation {run.pk}: {', '.join(run.candidates)} vs {run.baseline} on "
                          f"{run.eval_set_label} ({run.generation_job.progress_total} prompts)")
        if o["wait"]:
            self.follow(run)

    def follow(self, run) -> None:
        """Run the evaluation's jobs one after another here, each with a progress line, then print it."""
        from training.supervisor import job_supervise

        started = time.monotonic()
        ran: set[int] = set()
        while True:
            run.refresh_from_db()
            job = run.current_job
            if job is None or job.pk in ran:
                break
            ran.add(job.pk)
            progress = ProgressLine(self.stdout, unit="completion" if job.kind == "scoring" else "prompt",
                                    prefix=f"  {run.status} ")
            try:
                job_supervise(job_id=job.pk, on_progress=progress.follow(job.pk))
            finally:
                progress.clear()
        run.refresh_from_db()
        self.stdout.write(f"evaluation {run.pk} {run.status} in {time.monotonic() - started:.1f} s")
        if run.status != "succeeded":
            raise CommandError(run.error or f"evaluation {run.pk} {run.status}")
        self.report(run.summary)

    def report(self, summary: dict) -> None:
        baseline = summary["baseline"]
        for row in summary["candidates"]:
            vs = row["vs_baseline"]
            win = vs["win_rate"]
            self.stdout.write(
                f"{row['name']} vs {baseline['name']}: win rate {figure(win)} "
                f"(win/tie/loss {win['wins']}/{win['ties']}/{win['losses']} on {win['n']} prompts), "
                f"length-controlled {figure(vs['length_controlled'])}, "
                f"mean length {row['lengths']['mean'] or 0:.0f} vs {baseline['lengths']['mean'] or 0:.0f} {summary['length_unit']}, "
                f"refusals {row['refusals']['count']}/{row['refusals']['n']}")
            for category, f in vs["by_category"].items():
                self.stdout.write(f"  category {category or '(none)'}: {figure(f)}")
            for ref in row["references"]:
                self.stdout.write(f"  against {ref['role']} {ref['name']}: {figure(ref['win_rate'])}")

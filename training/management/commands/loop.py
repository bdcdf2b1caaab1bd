"""manage.py loop --rounds N [--bootstrap-hh-rlhf FILE] [--method dpo|rl] [--policy NAME] ...

Runs rounds of the closed loop here, headless (for demos and CI): each round freezes a snapshot of
the votes, trains the reward model, runs DPO or online RL, registers the new checkpoint and queues
its new-vs-parent comparisons, then prints a round report.
"""
from __future__ import annotations

import json
import time

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError

from ._launch import ProgressLine, one_line, parse_setting, progress_unit

POLL_S = 1.0


class Command(BaseCommand):
    help = "Run N rounds of the loop in this process (snapshot -> reward model -> DPO/RL -> new comparisons) and print a report per round."

    def add_arguments(self, parser):
        parser.add_argument("--rounds", type=int, default=1)
        parser.add_argument("--bootstrap-hh-rlhf", metavar="FILE", help="import these human preferences first (HH-RLHF JSONL, gz or not)")
        parser.add_argument("--bootstrap-limit", type=int, help="import at most this many pairs")
        parser.add_argument("--method", choices=["dpo", "rl"], help="default: the loop's setting (dpo)")
        parser.add_argument("--policy", help="the policy to start from (default: the loop's current policy)")
        parser.add_argument("--rules", help="snapshot rules as JSON (default: the loop's)")
        parser.add_argument("--reward", action="append", default=[], metavar="KEY=VALUE", help="a reward-run setting (repeatable)")
        parser.add_argument("--train", action="append", default=[], metavar="KEY=VALUE", help="a DPO/RL setting (repeatable)")
        parser.add_argument("--generate", action="append", default=[], metavar="KEY=VALUE",
                            help="a new-vs-parent generation setting, e.g. limit=10 (repeatable)")

    def handle(self, *args, **o):
        from training import loop
        from training.models import LoopRound, RoundStatus

        if o["rounds"] < 1:
            raise CommandError("--rounds must be at least 1")
        settings = loop.loop_settings()
        try:
            rules = json.loads(o["rules"]) if o["rules"] else settings.rules
        except json.JSONDecodeError as error:
            raise CommandError(f"--rules is not JSON: {error}") from None
        values = {
            "enabled": settings.enabled, "votes_per_round": settings.votes_per_round,
            "method": o["method"] or settings.method,
            "policy": o["policy"] or (settings.policy.name if settings.policy else None),
            "rules": rules,
            "reward_config": {**settings.reward_config, **dict(parse_setting(t) for t in o["reward"])},
            "policy_config": {**settings.policy_config, **dict(parse_setting(t) for t in o["train"])},
            "generation_config": {**settings.generation_config, **dict(parse_setting(t) for t in o["generate"])},
            "campaign": settings.campaign_id,
        }
        if not values["policy"]:
            raise CommandError(f"the loop has no policy to start from: give --policy NAME ({loop.no_policy_hint()})")
        errors = loop.loop_settings_errors(**values)  # before anything is imported or saved
        if errors:
            raise CommandError("; ".join(f"{key}: {message}" for key, message in errors.items()))
        if o["bootstrap_hh_rlhf"]:
            self._bootstrap(o["bootstrap_hh_rlhf"], o["bootstrap_limit"])
        try:
            loop.loop_settings_update(**values)
        except ValidationError as error:
            raise CommandError(one_line(error)) from None
        failed = 0
        for number in range(1, o["rounds"] + 1):
            try:
                loop_round = loop.loop_round_start(trigger="command")
            except ValidationError as error:
                raise CommandError(f"round {number}: {one_line(error)}") from None
            self.stdout.write(f"round {number}/{o['rounds']} (#{loop_round.pk}) from {loop_round.parent.name}: "
                              f"snapshot {loop_round.snapshot_id}, reward run {loop_round.reward_job_id}")
            self._drive(loop_round)
            loop_round = LoopRound.objects.get(pk=loop_round.pk)
            self._report(loop_round)
            if loop_round.status != RoundStatus.SUCCEEDED:
                failed += 1
                break
        if failed and loop_round.status == RoundStatus.RUNNING and loop_round.waiting_for:
            raise CommandError(f"round {loop_round.pk} is waiting for {loop_round.waiting_for}")
        if failed:
            raise CommandError(f"round {loop_round.pk} {loop_round.status}: {loop_round.error}")

    def _bootstrap(self, path: str, limit: int | None) -> None:
        from feedback.hh_rlhf import HHRLHFFormatError
        from feedback.imports import hh_rlhf_import

        try:
            summary = hh_rlhf_import(path=path, limit=limit, skip_refused=True)  # flagged pairs left out, counted
        except (HHRLHFFormatError, OSError, ValueError) as error:
            lines = [line.strip() for line in str(error).splitlines() if line.strip()]
            raise CommandError(f"--bootstrap-hh-rlhf: {'; '.join(lines[:4])}") from None
        self.stdout.write(
            f"bootstrap: {summary.imported} HH-RLHF pairs imported, {summary.already_present} already present"
            + (f", {summary.refused} flagged left out" if summary.refused else "")
        )

    def _drive(self, loop_round) -> None:
        """Run each step's job here as soon as the round queues it (a worker may take one first:
        then wait for it), showing its progress and then printing its outcome."""
        from training.models import Job, LoopRound, RoundStatus
        from training.supervisor import job_supervise

        done: set[int] = set()
        while True:
            loop_round = LoopRound.objects.select_related("reward_job", "policy_job", "generation_job").get(pk=loop_round.pk)
            if loop_round.status != RoundStatus.RUNNING:
                return
            pending = [job for job in (loop_round.reward_job, loop_round.policy_job, loop_round.generation_job)
                       if job is not None and job.pk not in done]
            if not pending and loop_round.waiting_for:
                return  # it goes on when the new checkpoint is given a model server: said by the caller
            if not pending:
                time.sleep(POLL_S)
                continue
            job = pending[0]
            started = time.monotonic()
            name = f"{job.get_kind_display()} job {job.pk}"
            progress = ProgressLine(self.stdout, unit=progress_unit(job.kind), prefix=f"  {name}: ")
            progress.start()
            try:
                status = job_supervise(job_id=job.pk, on_progress=progress.follow(job.pk))
                while status in ("queued", "running"):  # a worker took it first
                    time.sleep(POLL_S)
                    row = Job.objects.values_list("status", "progress_done", "progress_total", "phase").get(pk=job.pk)
                    status = row[0]
                    progress.update(row[1], row[2], row[3] if status == "running" else "")
            finally:
                progress.clear()
            job.refresh_from_db()
            self.stdout.write(f"  {name} {status} in {time.monotonic() - started:.0f} s" + (f": {job.error}" if job.error else ""))
            done.add(job.pk)

    def _report(self, loop_round) -> None:
        from training import loop, selectors

        report = loop.round_report(loop_round)
        board = selectors.leaderboard_compute(rounds=100)
        ratings = {row.model: row for row in board.rows}
        new, parent = ratings.get(report["checkpoint"]), ratings.get(report["parent"])
        if new and parent:
            votes = board.pair_votes.get(new.model, {}).get(parent.model, 0)
            rating = f"{new.rating - parent.rating:+.0f} vs {parent.model} ({votes} head-to-head votes)"
        else:
            rating = "not yet rated: annotators have not voted on its comparisons"
        accuracy = report["reward_accuracy"]
        metrics = ", ".join(f"{k} {v:.4g}" for k, v in report["policy_metrics"].items()) or "—"
        self.stdout.write(
            f"round #{report['round']} {report['status']}: votes used {report['votes_used']} "
            f"({report['train_pairs']} train / {report['eval_pairs']} eval pairs); reward model held-out accuracy "
            f"{'—' if accuracy is None else f'{accuracy:.3f}'}; policy: {metrics}; new checkpoint "
            f"{report['checkpoint'] or '—'} with {report['comparisons'] or 0} new-vs-parent comparisons queued; rating {rating}"
        )

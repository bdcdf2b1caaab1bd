"""manage.py score --reward-model NAME [--scope open|all] [--rescore] [--prioritize-uncertain] [--wait]"""
from __future__ import annotations

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError

from config.wording import counted
from training.config import SCORING_SCOPES, ScoringConfig

from ._launch import one_line, wait_for


class Command(BaseCommand):
    help = "Queue a scoring job: a reward model scores completions; --wait runs it here."

    def add_arguments(self, parser):
        d = ScoringConfig(reward_model="")
        parser.add_argument("--reward-model", required=True, help="reward checkpoint name")
        parser.add_argument("--scope", choices=SCORING_SCOPES, default=d.scope,
                            help="completions of open comparisons, or of all comparisons")
        parser.add_argument("--rescore", action="store_true", help="score completions this model already scored")
        parser.add_argument("--prioritize-uncertain", action="store_true",
                            help="then serve the pairs the reward model is least sure about first")
        parser.add_argument("--batch-size", type=int, default=d.batch_size)
        parser.add_argument("--max-length", type=int, default=d.max_length)
        parser.add_argument("--limit", type=int)
        parser.add_argument("--wait", action="store_true", help="run the job in this process's child and wait for it")

    def handle(self, *args, **o):
        from training.services import scoring_job_create

        config = {
            "reward_model": o["reward_model"], "scope": o["scope"], "only_unscored": not o["rescore"],
            "prioritize_uncertain": o["prioritize_uncertain"], "batch_size": o["batch_size"],
            "max_length": o["max_length"], "limit": o["limit"],
        }
        try:
            job = scoring_job_create(config=config)
        except ValidationError as error:
            raise CommandError(one_line(error)) from None
        self.stdout.write(f"queued scoring job {job.pk} over {counted(job.progress_total, 'completion')}")
        if o["wait"]:
            wait_for(self, job)

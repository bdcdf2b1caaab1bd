"""manage.py cai --reviser NAME --constitution NAME[@VERSION] [options] [--wait]"""
from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError

from config.wording import counted
from training.constitutional.config import CaiConfig
from training.constitutional.prompts import DEFAULT_TEMPLATE

from ._launch import one_line, wait_for


class Command(BaseCommand):
    help = ("Queue a Constitutional AI critique-revise job: the reviser critiques stored responses against the "
            "constitution's principles and revises them (demonstrations for SFT, revision-over-original pairs "
            "with AI votes); --wait runs it here.")

    def add_arguments(self, parser):
        d = CaiConfig(reviser="", constitution="")
        parser.add_argument("--reviser", required=True, help="policy checkpoint that critiques and revises")
        parser.add_argument("--constitution", required=True, help='constitution "name@version" or a name (latest)')
        parser.add_argument("--responses-of", default="", help="model whose responses are revised (default: the reviser)")
        parser.add_argument("--principle", action="append", dest="principles",
                            help="a principle (question); repeat; only for a constitution outside the registry")
        parser.add_argument("--template", default=DEFAULT_TEMPLATE)
        parser.add_argument("--split", choices=["train", "eval"])
        parser.add_argument("--limit", type=int)
        parser.add_argument("--max-new-tokens", type=int, default=d.max_new_tokens)
        parser.add_argument("--temperature", type=float, default=d.temperature)
        parser.add_argument("--top-p", type=float, default=d.top_p)
        parser.add_argument("--batch-size", type=int, default=d.batch_size)
        parser.add_argument("--seed", type=int, default=d.seed)
        parser.add_argument("--no-pairs", action="store_true", help="store demonstrations only")
        parser.add_argument("--no-demonstrations", action="store_true", help="store pairs only")
        parser.add_argument("--campaign", type=int, dest="campaign_id", help="campaign id for the pairs (default: Default)")
        parser.add_argument("--votes-required", type=int, default=d.votes_required)
        parser.add_argument("--priority", type=int, default=d.priority)
        parser.add_argument("--wait", action="store_true", help="run the job in this process's child and wait for it")

    def handle(self, *args, **o):
        from training.constitutional.services import cai_job_create

        config = {
            "reviser": o["reviser"], "constitution": o["constitution"], "responses_of": o["responses_of"],
            "principles": o["principles"] or [], "template": o["template"], "split": o["split"], "limit": o["limit"],
            "max_new_tokens": o["max_new_tokens"], "temperature": o["temperature"], "top_p": o["top_p"],
            "batch_size": o["batch_size"], "seed": o["seed"], "pairs": not o["no_pairs"],
            "demonstrations": not o["no_demonstrations"], "campaign_id": o["campaign_id"],
            "votes_required": o["votes_required"], "priority": o["priority"],
        }
        try:
            job = cai_job_create(config=config)
        except ValidationError as error:
            raise CommandError(one_line(error)) from None
        self.stdout.write(f"queued critique-revise job {job.pk} over {counted(job.progress_total, 'response')}")
        if o["wait"]:
            wait_for(self, job)

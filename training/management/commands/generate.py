"""manage.py generate --checkpoint NAME [--checkpoint NAME2] [options] [--wait]"""
from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError

from config.wording import counted
from training.config import GenerationConfig

from ._launch import one_line, wait_for


class Command(BaseCommand):
    help = "Queue a generation job (sample completions and pair them into comparisons); --wait runs it here."

    def add_arguments(self, parser):
        d = GenerationConfig(checkpoints=[])
        parser.add_argument("--checkpoint", action="append", required=True, dest="checkpoints",
                            help="policy checkpoint name; twice for head_to_head")
        parser.add_argument("--strategy", choices=["two_samples", "head_to_head"], default=None)
        parser.add_argument("--prompt-id", type=int, action="append", dest="prompt_ids")
        parser.add_argument("--tag")
        parser.add_argument("--split", choices=["train", "eval"])
        parser.add_argument("--max-open-comparisons", type=int, help="only prompts with fewer open comparisons")
        parser.add_argument("--limit", type=int)
        parser.add_argument("--max-new-tokens", type=int, default=d.max_new_tokens)
        parser.add_argument("--temperature", type=float, default=d.temperature)
        parser.add_argument("--top-p", type=float, default=d.top_p)
        parser.add_argument("--batch-size", type=int, default=d.batch_size)
        parser.add_argument("--seed", type=int, default=d.seed)
        parser.add_argument("--votes-required", type=int, default=d.votes_required)
        parser.add_argument("--priority", type=int, default=d.priority)
        parser.add_argument("--campaign", type=int, dest="campaign_id",
                            help="id of the campaign the comparisons go to (default: the Default campaign)")
        parser.add_argument("--backend", choices=["transformers", "server"], default=d.backend,
                            help="server: each checkpoint's model server answers (it must name one)")
        parser.add_argument("--on-failure", choices=["fail", "skip"], default=d.on_failure,
                            help="when a server call fails: fail the job, or skip the prompt")
        parser.add_argument("--wait", action="store_true", help="run the job in this process's child and wait for it")

    def handle(self, *args, **o):
        from training.services import generation_job_create

        strategy = o["strategy"] or ("head_to_head" if len(o["checkpoints"]) == 2 else "two_samples")
        config = {
            "checkpoints": o["checkpoints"], "strategy": strategy, "prompt_ids": o["prompt_ids"], "tag": o["tag"],
            "split": o["split"], "max_open_comparisons": o["max_open_comparisons"], "limit": o["limit"],
            "max_new_tokens": o["max_new_tokens"], "temperature": o["temperature"], "top_p": o["top_p"],
            "batch_size": o["batch_size"], "seed": o["seed"], "votes_required": o["votes_required"],
            "priority": o["priority"], "campaign_id": o["campaign_id"], "backend": o["backend"],
            "on_failure": o["on_failure"],
        }
        try:
            job = generation_job_create(config=config)
        except ValidationError as error:
            raise CommandError(one_line(error)) from None
        self.stdout.write(f"queued generation job {job.pk} over {counted(job.progress_total, 'prompt')}")
        if o["wait"]:
            wait_for(self, job)

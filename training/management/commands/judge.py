"""AI judges from the command line.

    manage.py judge list
    manage.py judge register NAME --kind openai --base-url URL --model MODEL [--key-env VAR] [--template pairwise@1]
                              [--constitution hhh] [--set timeout_s=10 ...]
    manage.py judge register NAME --kind local_lm --checkpoint NAME [--template ...] [--set label_mass_min=0]
    manage.py judge register NAME --kind reward_model --checkpoint NAME [--set tie_band=0.2]
    manage.py judge run NAME[@VERSION] (--campaign ID | --ids 1,2,3) [--limit N] [--batch-size N] [--rejudge] [--wait]

Bad input exits non-zero with one readable line (``field: message; ...``).
"""
from __future__ import annotations

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError

from config.wording import counted

from ._launch import one_line, parse_setting, wait_for


def _ids(text: str) -> list[int]:
    parts = [p for p in text.replace(",", " ").split() if p]
    if not parts or not all(p.isdigit() and int(p) > 0 for p in parts):
        raise CommandError(f"--ids takes comparison ids separated by commas, got {text!r}")
    return [int(p) for p in parts]


class Command(BaseCommand):
    help = "Register AI judges, list them, and queue judging jobs (--wait runs one here)."

    def add_arguments(self, parser):
        sub = parser.add_subparsers(dest="action", required=True, metavar="{list,register,run}")
        sub.add_parser("list", help="every judge version")
        register = sub.add_parser("register", help="register a judge, or its next version when settings changed")
        register.add_argument("name")
        register.add_argument("--kind", required=True, choices=["local_lm", "reward_model", "openai"])
        register.add_argument("--checkpoint", default="")
        register.add_argument("--base-url", default="")
        register.add_argument("--model", default="", help="the endpoint's model name")
        register.add_argument("--key-env", default="", help="NAME of the environment variable holding the key")
        register.add_argument("--template", default="")
        register.add_argument("--constitution", default="")
        register.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="a judge option (repeatable)")
        run = sub.add_parser("run", help="queue a judging job")
        run.add_argument("judge", help="NAME (latest version) or NAME@VERSION")
        run.add_argument("--campaign", type=int, help="judge this campaign's open comparisons")
        run.add_argument("--ids", type=_ids, help="judge these comparisons (comma-separated ids)")
        run.add_argument("--limit", type=int)
        run.add_argument("--batch-size", type=int, default=8)
        run.add_argument("--rejudge", action="store_true", help="also comparisons this judge version already voted on")
        run.add_argument("--wait", action="store_true", help="run the job in this process's child and wait for it")

    def handle(self, *args, **o):
        try:
            getattr(self, f"_{o['action']}")(o)
        except ValidationError as error:
            raise CommandError(one_line(error)) from None

    def _list(self, o) -> None:
        from training.judges.selectors import judge_list

        for judge in judge_list():
            what = judge.checkpoint.name if judge.checkpoint else f"{judge.model_name} at {judge.base_url}"
            extra = f" · {judge.constitution.ref}" if judge.constitution else ""
            self.stdout.write(f"{judge.ref}\t{judge.kind}\t{what}\t{judge.template or '-'}{extra}")

    def _register(self, o) -> None:
        from training.judges.services import judge_save

        options = dict(parse_setting(text) for text in o["set"])
        judge, created = judge_save(
            name=o["name"], kind=o["kind"], checkpoint=o["checkpoint"], base_url=o["base_url"], model_name=o["model"],
            api_key_env=o["key_env"], template=o["template"], constitution=o["constitution"], options=options,
        )
        self.stdout.write(f"{'registered' if created else 'unchanged (no new version)'}: {judge.ref}")

    def _run(self, o) -> None:
        from training.judges.services import judging_job_create

        config = {"judge": o["judge"], "batch_size": o["batch_size"], "only_unjudged": not o["rejudge"]}
        for key, value in (("campaign_id", o["campaign"]), ("comparison_ids", o["ids"]), ("limit", o["limit"])):
            if value is not None:
                config[key] = value
        job = judging_job_create(config=config)
        self.stdout.write(f"queued judging job {job.pk} ({job.config['judge']}) over {counted(job.progress_total, 'comparison')}")
        if o["wait"]:
            wait_for(self, job)

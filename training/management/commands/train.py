"""manage.py train reward --base NAME [--snapshot ID | rule options] [training options] [--wait]"""
from __future__ import annotations

import json

from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError

from training.config import RewardConfig

from ._launch import one_line, parse_setting, wait_for

KINDS = ("reward",)


class Command(BaseCommand):
    help = (
        "Queue a training run. reward: train a reward model (TRL RewardTrainer) on a dataset snapshot "
        "of the votes; --wait runs it here and prints its result."
    )

    def add_arguments(self, parser):
        d = RewardConfig(base="")
        parser.add_argument("kind", choices=KINDS)
        parser.add_argument("--base", required=True, help="policy checkpoint to start from")
        parser.add_argument("--snapshot", type=int, dest="snapshot_id", help="use this dataset snapshot")
        parser.add_argument("--rules", default="{}", help="aggregation rules for a new snapshot, as JSON")
        parser.add_argument("--exclude-annotator", action="append", default=[], metavar="USERNAME",
                            help="leave this annotator's votes out of a new snapshot (repeatable)")
        parser.add_argument("--no-gold", action="store_true", help="leave gold items out of a new snapshot")
        parser.add_argument("--split-by", choices=["prompt", "hash"], help="how prompts go to train/eval")
        parser.add_argument("--eval-fraction", type=float, help="with --split-by hash")
        parser.add_argument("--output-name", help="name of the new reward checkpoint")
        parser.add_argument("--lora", action="store_true", help="train LoRA adapters (merged on save)")
        parser.add_argument("--learning-rate", type=float, default=d.learning_rate)
        parser.add_argument("--epochs", type=float, default=d.num_train_epochs, dest="num_train_epochs")
        parser.add_argument("--max-steps", type=int)
        parser.add_argument("--batch-size", type=int, default=d.per_device_train_batch_size)
        parser.add_argument("--max-length", type=int, default=d.max_length)
        parser.add_argument("--eval-steps", type=int, default=d.eval_steps)
        parser.add_argument("--seed", type=int, default=d.seed)
        parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                            help="any other RewardConfig setting (value parsed as JSON when it can be)")
        parser.add_argument("--wait", action="store_true", help="run the job in this process's child and wait for it")

    def handle(self, *args, **o):
        from training.services import reward_run_create

        try:
            rules = json.loads(o["rules"])
        except json.JSONDecodeError as error:
            raise CommandError(f"--rules is not JSON: {error}") from None
        if not isinstance(rules, dict):
            raise CommandError("--rules must be a JSON object")
        if o["exclude_annotator"]:
            users = dict(get_user_model().objects.filter(username__in=o["exclude_annotator"]).values_list("username", "id"))
            unknown = [name for name in o["exclude_annotator"] if name not in users]
            if unknown:
                raise CommandError(f"--exclude-annotator: no user named {', '.join(map(repr, unknown))}")
            rules["exclude_annotators"] = sorted(users.values())
        if o["no_gold"]:
            rules["include_gold"] = False
        for flag in ("split_by", "eval_fraction"):
            if o[flag] is not None:
                rules[flag] = o[flag]
        config = {
            "base": o["base"], "lora": o["lora"], "learning_rate": o["learning_rate"],
            "num_train_epochs": o["num_train_epochs"], "max_steps": o["max_steps"],
            "per_device_train_batch_size": o["batch_size"], "max_length": o["max_length"],
            "eval_steps": o["eval_steps"], "seed": o["seed"],
        }
        if o["snapshot_id"] is not None:
            config["snapshot_id"] = o["snapshot_id"]
        if rules:
            config["rules"] = rules
        if o["output_name"]:
            config["output_name"] = o["output_name"]
        config.update(parse_setting(text) for text in o["set"])
        try:
            job = reward_run_create(config=config)
        except ValidationError as error:
            raise CommandError(one_line(error)) from None
        self.stdout.write(
            f"queued reward run {job.pk} on snapshot {job.snapshot_id} "
            f"({job.snapshot.train_rows} train / {job.snapshot.eval_rows} eval pairs)"
        )
        if o["wait"]:
            wait_for(self, job)

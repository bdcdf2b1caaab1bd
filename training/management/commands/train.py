"""manage.py train reward|dpo|rl|sft --base NAME [--snapshot ID | rule options] [training options] [--wait]"""
from __future__ import annotations

import argparse
import json

from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError

from ._launch import one_line, parse_setting, wait_for

KINDS = ("reward", "dpo", "rl", "sft")
# Flags that map straight onto config fields; unset flags leave the kind's own defaults.
FLAGS = {
    "output_name": "output_name", "lora": "lora", "learning_rate": "learning_rate",
    "num_train_epochs": "num_train_epochs", "max_steps": "max_steps", "batch_size": "per_device_train_batch_size",
    "max_length": "max_length", "eval_steps": "eval_steps", "seed": "seed", "beta": "beta",
    "reward_model": "reward_model", "algorithm": "algorithm", "save_adapter": "save_adapter",
}


class Command(BaseCommand):
    help = (
        "Queue a training run and (with --wait) run it here. reward: a reward model (TRL RewardTrainer); "
        "dpo: DPO on the votes (DPOTrainer); rl: online RL against a reward model (RLOOTrainer, or GRPOTrainer "
        "with --algorithm grpo; TRL no longer ships PPO); sft: SFT on demonstrations (SFTTrainer). The dataset "
        "is --snapshot ID or a new snapshot of the current votes/demonstrations."
    )

    def add_arguments(self, parser):
        parser.add_argument("kind", choices=KINDS)
        parser.add_argument("--base", required=True, help="policy checkpoint to start from (also the reference model)")
        parser.add_argument("--snapshot", type=int, dest="snapshot_id", help="use this dataset snapshot")
        parser.add_argument("--rules", default="{}", help="rules for a new snapshot, as JSON")
        parser.add_argument("--exclude-annotator", action="append", default=[], metavar="USERNAME",
                            help="leave this annotator's votes out of a new snapshot (repeatable)")
        parser.add_argument("--no-gold", action="store_true", help="leave gold items out of a new snapshot")
        parser.add_argument("--split-by", choices=["prompt", "hash"], help="how prompts go to train/eval")
        parser.add_argument("--eval-fraction", type=float, help="with --split-by hash")
        parser.add_argument("--output-name", help="name of the new checkpoint")
        parser.add_argument("--reward-model", help="rl: the reward checkpoint that scores completions")
        parser.add_argument("--algorithm", choices=["rloo", "grpo"], help="rl: RLOO (default) or GRPO")
        parser.add_argument("--beta", type=float, help="dpo: implicit KL strength (0.1); rl: KL coefficient (0.05)")
        parser.add_argument("--lora", action=argparse.BooleanOptionalAction, default=None,
                            help="train LoRA adapters (default: on for dpo/rl/sft, off for reward)")
        parser.add_argument("--save-adapter", action="store_true", default=None, help="dpo/rl/sft: save the adapter, not a merged model")
        parser.add_argument("--learning-rate", type=float)
        parser.add_argument("--epochs", type=float, dest="num_train_epochs")
        parser.add_argument("--max-steps", type=int)
        parser.add_argument("--batch-size", type=int)
        parser.add_argument("--max-length", type=int)
        parser.add_argument("--eval-steps", type=int)
        parser.add_argument("--seed", type=int)
        parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                            help="any other setting of the kind's config (value parsed as JSON when it can be)")
        parser.add_argument("--wait", action="store_true", help="run the job in this process's child and wait for it")
        parser.add_argument("--policy-override", default=None, metavar="JUSTIFICATION",
                            help="train on data its data-use policy refuses, for this written reason (20+ characters)")
        parser.add_argument("--justification", default=None,
                            help="why this run is warranted (required when ARBITER_RUN_JUSTIFICATION_REQUIRED is on)")

    def handle(self, *args, **o):
        from training import services

        create = {"reward": services.reward_run_create, "dpo": services.dpo_run_create,
                  "rl": services.rl_run_create, "sft": services.sft_run_create}[o["kind"]]
        config = {"base": o["base"], **self._dataset(o)}
        config.update({field: o[flag] for flag, field in FLAGS.items() if o[flag] is not None})
        config.update(parse_setting(text) for text in o["set"])
        try:
            job = create(config=config, policy_override=o["policy_override"], justification=o["justification"])
        except ValidationError as error:
            raise CommandError(one_line(error)) from None
        self.stdout.write(
            f"queued {o['kind']} run {job.pk} on snapshot {job.snapshot_id} "
            f"({job.snapshot.train_rows} train / {job.snapshot.eval_rows} eval rows)"
        )
        if o["wait"]:
            wait_for(self, job)

    def _dataset(self, o) -> dict:
        if o["snapshot_id"] is not None:
            given = [flag for flag, value in (("--rules", o["rules"] != "{}"), ("--exclude-annotator", o["exclude_annotator"]),
                     ("--no-gold", o["no_gold"]), ("--split-by", o["split_by"]), ("--eval-fraction", o["eval_fraction"] is not None))
                     if value]
            if given:
                raise CommandError(f"{', '.join(given)} only shape a new snapshot; --snapshot {o['snapshot_id']} is fixed")
            return {"snapshot_id": o["snapshot_id"]}
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
        return {"rules": rules} if rules else {}

"""manage.py snapshot_create [--kind preference|sft] [--rules JSON] [--exclude-annotator USERNAME ...] [--no-gold]
[--no-margin] [--no-strongly-chosen] [--votes human|ai|both [--ai-weight W]]"""
import json

from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError

from feedback.demonstrations import sft_counts_summary
from feedback.models import SnapshotKind
from feedback.preferences import counts_summary
from feedback.snapshots import sft_snapshot_create, snapshot_create
from feedback.vote_origins import VOTE_ORIGINS, vote_choice_words


class Command(BaseCommand):
    help = (
        "Freeze a dataset as a snapshot (rows on disk, votes and demonstrations recorded): the preference "
        "dataset built from every vote (--kind preference, the default), or the SFT dataset built from every "
        "demonstration and strongly chosen response (--kind sft)."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--kind",
            choices=SnapshotKind.values,
            default=SnapshotKind.PREFERENCE,
            help="preference: prompt/chosen/rejected rows; sft: prompt/completion rows (default preference).",
        )
        parser.add_argument(
            "--rules",
            default="{}",
            help='Rules as a JSON object: aggregation rules for preference, e.g. \'{"min_votes": 2, "split_by": "hash"}\', '
            'SFT rules for sft, e.g. \'{"strong_margin": 0.5}\'.',
        )
        parser.add_argument(
            "--exclude-annotator",
            dest="exclude_annotators",
            metavar="USERNAME",
            nargs="+",
            action="extend",
            default=[],
            help="Leave out this annotator's votes (repeatable).",
        )
        parser.add_argument("--no-gold", action="store_true", help="Leave out votes on gold comparisons.")
        parser.add_argument(
            "--votes", choices=VOTE_ORIGINS, default=None,
            help="Whose votes (preference only): human (people's, the default), ai (AI judges' only) or both.",
        )
        parser.add_argument(
            "--ai-weight", type=float, default=None,
            help="With --votes both: the weight of an AI vote in each comparison's tally, 0-1 (a person's weighs 1).",
        )
        parser.add_argument("--no-margin", action="store_true", help="Rows carry no margin column (preference only).")
        parser.add_argument(
            "--no-strongly-chosen", action="store_true", help="Demonstrations only, no strongly chosen responses (sft only)."
        )

    def handle(self, *args, kind, rules, exclude_annotators, no_gold, no_margin, no_strongly_chosen, **options):
        sft = kind == SnapshotKind.SFT
        if sft and (options.get("votes") or options.get("ai_weight") is not None):
            raise CommandError("--votes and --ai-weight are for preference snapshots; SFT rows come from people")
        if sft and no_margin:
            raise CommandError("--no-margin is for preference snapshots; SFT rows have no margin")
        if not sft and no_strongly_chosen:
            raise CommandError("--no-strongly-chosen is for SFT snapshots (--kind sft)")
        try:
            parsed = json.loads(rules)
        except json.JSONDecodeError as error:
            raise CommandError(f"--rules is not valid JSON: {error}") from None
        if not isinstance(parsed, dict):
            raise CommandError("--rules must be a JSON object of rule names to values")
        if exclude_annotators:
            users = dict(
                get_user_model().objects.filter(username__in=exclude_annotators).values_list("username", "id")
            )
            missing = sorted(set(exclude_annotators) - set(users))
            if missing:
                raise CommandError(f"no such annotator: {', '.join(missing)}")
            listed = parsed.get("exclude_annotators", [])
            if not isinstance(listed, list):
                raise CommandError("rules: exclude_annotators: must be a list of annotator ids (integers)")
            parsed["exclude_annotators"] = listed + [users[name] for name in exclude_annotators]
        if no_gold:
            parsed["include_gold"] = False
        if no_margin:
            parsed["include_margin"] = False
        if no_strongly_chosen:
            parsed["include_strongly_chosen"] = False
        if options.get("votes"):
            parsed["votes"] = options["votes"]
        if options.get("ai_weight") is not None:
            parsed["ai_weight"] = options["ai_weight"]
        try:
            snapshot = (sft_snapshot_create if sft else snapshot_create)(rules=parsed)
        except ValidationError as error:
            lines = [f"{field}: {message}" for field, messages in error.message_dict.items() for message in messages]
            raise CommandError("; ".join(lines)) from None
        self.stdout.write(
            f"{'SFT ' if sft else ''}snapshot {snapshot.pk}: {snapshot.train_rows} train rows, "
            f"{snapshot.eval_rows} eval rows, {snapshot.annotator_count} annotators, hash {snapshot.content_hash}"
        )
        self.stdout.write(f"files: {snapshot.files_dir}")
        self.stdout.write(f"counts: {(sft_counts_summary if sft else counts_summary)(snapshot.counts)}")
        if not sft and snapshot.rules.get("votes"):  # not people's votes only: say so
            self.stdout.write(f"votes: {vote_choice_words(snapshot.rules)}")

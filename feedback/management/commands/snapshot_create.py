"""manage.py snapshot_create [--rules JSON] [--exclude-annotator USERNAME ...] [--no-gold] [--no-margin]"""
import json

from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError

from feedback.preferences import counts_summary
from feedback.snapshots import snapshot_create


class Command(BaseCommand):
    help = "Freeze the preference dataset built from every vote as a dataset snapshot (rows on disk, votes recorded)."

    def add_arguments(self, parser):
        parser.add_argument(
            "--rules",
            default="{}",
            help='Aggregation rules as a JSON object, e.g. \'{"min_votes": 2, "split_by": "hash"}\'.',
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
        parser.add_argument("--no-margin", action="store_true", help="Rows carry no margin column.")

    def handle(self, *args, rules, exclude_annotators, no_gold, no_margin, **options):
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
        try:
            snapshot = snapshot_create(rules=parsed)
        except ValidationError as error:
            lines = [f"{field}: {message}" for field, messages in error.message_dict.items() for message in messages]
            raise CommandError("; ".join(lines)) from None
        self.stdout.write(
            f"snapshot {snapshot.pk}: {snapshot.train_rows} train rows, {snapshot.eval_rows} eval rows, "
            f"{snapshot.annotator_count} annotators, hash {snapshot.content_hash}"
        )
        self.stdout.write(f"files: {snapshot.files_dir}")
        self.stdout.write(f"counts: {counts_summary(snapshot.counts)}")

"""manage.py delete_data --annotator USERNAME | --source NAME [--dry-run]

Deletes one annotator's data or one source's data (``feedback.governance.deletion``) and prints the
counts; an unknown annotator or source is one readable line and a non-zero exit.
"""
from django.core.management.base import BaseCommand, CommandError

from feedback.governance.deletion import (
    DeletionTargetUnknown,
    annotator_deletion_plan,
    deletion_apply,
    source_deletion_plan,
)


class Command(BaseCommand):
    help = "Delete one annotator's votes, rationales, demonstrations and history, or one prompt source's data."

    def add_arguments(self, parser):
        target = parser.add_mutually_exclusive_group(required=True)
        target.add_argument("--annotator", metavar="USERNAME")
        target.add_argument("--source", metavar="NAME", help="A Prompt.source value.")
        parser.add_argument("--dry-run", action="store_true", help="Print what would be deleted; change nothing.")

    def handle(self, *args, annotator=None, source=None, dry_run=False, **options):
        try:
            plan = annotator_deletion_plan(username=annotator) if annotator is not None else source_deletion_plan(source=source)
        except DeletionTargetUnknown as error:
            raise CommandError(str(error)) from None
        if dry_run:
            self.stdout.write(f"dry run, nothing deleted: would delete {plan.summary()}")
            return
        try:
            deletion_apply(plan=plan, kind="annotator" if annotator is not None else "source")
        except DeletionTargetUnknown as error:  # deleted by another run between the plan and now
            raise CommandError(str(error)) from None
        self.stdout.write(f"deleted {plan.summary()}")

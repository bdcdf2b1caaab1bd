"""manage.py retention_enforce [--dry-run]

Applies each data-use policy's retention period to the prompts, completions, votes and
demonstrations it governs (``feedback.governance.retention``), printing one line a policy:
``source "x": deleted 1 prompts, 2 completions, 1 comparisons, 3 votes, ...``. Safe to run from
cron: a second run finds nothing and says so. Eval-set prompts are kept (and counted).
"""
from django.core.management.base import BaseCommand

from feedback.governance.retention import retention_enforce


class Command(BaseCommand):
    help = ("Delete prompts, completions, votes and demonstrations older than their data-use policy's retention period "
            "(with everything on them), and report per policy.")

    def add_arguments(self, parser):
        parser.add_argument("--dry-run", action="store_true", help="Print what would be deleted; change nothing.")

    def handle(self, *args, dry_run=False, **options):
        result = retention_enforce(dry_run=dry_run)
        if dry_run:
            self.stdout.write("dry run, nothing deleted")
        for line in result.lines():
            self.stdout.write(line)

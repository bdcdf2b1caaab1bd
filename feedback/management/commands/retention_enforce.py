"""manage.py retention_enforce [--dry-run]

Applies each data-use policy's retention period (``feedback.governance.retention``); safe to run
from cron: a second run finds nothing and says so.
"""
from django.core.management.base import BaseCommand

from feedback.governance.retention import retention_enforce


class Command(BaseCommand):
    help = "Delete votes and demonstrations older than their data-use policy's retention period, and report per policy."

    def add_arguments(self, parser):
        parser.add_argument("--dry-run", action="store_true", help="Print what would be deleted; change nothing.")

    def handle(self, *args, dry_run=False, **options):
        result = retention_enforce(dry_run=dry_run)
        if dry_run:
            self.stdout.write("dry run, nothing deleted")
        for line in result.lines():
            self.stdout.write(line)

"""manage.py personal_data_scan

Scans every prompt, completion, vote rationale and demonstration for personal data now, in this
process (``feedback.governance.scan.personal_data_scan_run``; the review page queues the same scan
for the worker), and prints the counts and whether person names were scanned
(``ARBITER_NAME_MODEL``): ``names scanned with spaCy model ...`` or ``names not scanned: <why>``.
"""
from django.core.management.base import BaseCommand, CommandError

from feedback.governance.scan import personal_data_scan_run


class Command(BaseCommand):
    help = "Scan every row for personal data now and print the findings count and whether names were scanned."

    def handle(self, *args, **options):
        try:
            scan = personal_data_scan_run()
        except Exception as error:  # the scan row keeps the traceback
            raise CommandError(f"personal-data scan failed: {str(error).strip().splitlines()[-1:] or type(error).__name__}") from None
        self.stdout.write(f"personal-data scan {scan.pk}: {scan.scanned} rows scanned, {scan.found} findings")
        self.stdout.write(scan.names)

"""manage.py quality_report [--campaign SLUG]

Recompute a stored quality report now, in this process (``quality_report_compute``), and print
what was stored: the overall report (every vote) by default, or one campaign's (by slug or id).

    manage.py quality_report
    manage.py quality_report --campaign safety-sweep
"""
from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError

from feedback.campaigns.models import Campaign
from feedback.quality.services import quality_report_compute


class Command(BaseCommand):
    help = "Recompute and store a quality report now: all votes, or one campaign's (--campaign SLUG)."

    def add_arguments(self, parser) -> None:
        parser.add_argument("--campaign", help="the campaign's slug or id (default: every vote)")

    def handle(self, *args, campaign: str | None = None, **options) -> None:
        scope = None
        if campaign:
            scope = Campaign.objects.filter(slug=campaign).first() or (
                Campaign.objects.filter(pk=int(campaign)).first() if campaign.isdigit() else None)
            if scope is None:
                raise CommandError(f"no campaign {campaign!r}")
        report = quality_report_compute(campaign=scope)
        flagged = sum(1 for row in report.figures["annotators"] if row["flags"])
        self.stdout.write(f"quality report of {scope.slug if scope else 'all votes'}: {report.vote_count} votes, "
                          f"{len(report.figures['annotators'])} annotators, {flagged} flagged")

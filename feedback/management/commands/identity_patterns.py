"""manage.py identity_patterns list|add|deactivate|rescan

The identity patterns (``feedback.identity``): words and regexes that tell which model wrote a
response. ``add`` and ``deactivate`` go through the services (a bad regex is refused with the
reason); ``rescan`` re-scans every comparison now, in this process, printing what changed.

    manage.py identity_patterns list [--all]
    manage.py identity_patterns add "I'm Claude" [--kind word|regex] [--scope MODEL] [--note TEXT]
    manage.py identity_patterns deactivate ID
    manage.py identity_patterns rescan
"""
from __future__ import annotations

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError

from feedback.identity import selectors, services
from feedback.identity.models import IdentityPattern


class Command(BaseCommand):
    help = "List, add or deactivate identity patterns, or re-scan every comparison for identity leaks."

    def add_arguments(self, parser) -> None:
        sub = parser.add_subparsers(dest="action", required=True)
        listing = sub.add_parser("list", help="the patterns, with how many comparisons each flags")
        listing.add_argument("--all", action="store_true", help="inactive patterns too")
        add = sub.add_parser("add", help="add a pattern (re-scans every comparison)")
        add.add_argument("text")
        add.add_argument("--kind", default="word", help="word (whole words, any case) or regex")
        add.add_argument("--scope", default="", help="a model name: only its completions (default: every completion)")
        add.add_argument("--note", default="")
        off = sub.add_parser("deactivate", help="stop using a pattern (un-flags what it alone flagged)")
        off.add_argument("id", type=int)
        sub.add_parser("rescan", help="re-scan every comparison now, in this process")

    def handle(self, *args, action: str, **options) -> None:
        if action == "list":
            rows = selectors.pattern_list(active=None if options["all"] else True)
            for pattern in rows:
                state = "active" if pattern.active else "inactive"
                self.stdout.write(f"{pattern.pk}\t{pattern.kind}\t{pattern.scope or '*'}\t{state}\t"
                                  f"{pattern.flagged} flagged\t{pattern.text}")
            self.stdout.write(f"{len(rows)} pattern{'s' if len(rows) != 1 else ''}")
        elif action == "add":
            try:
                pattern = services.identity_pattern_create(
                    values={"text": options["text"], "kind": options["kind"], "scope": options["scope"],
                            "note": options["note"]})
            except ValidationError as error:
                raise CommandError("; ".join(f"{field}: {' '.join(texts)}" for field, texts in error.message_dict.items()))
            self.stdout.write(f"added pattern {pattern.pk}: {pattern.text} (a re-scan is queued; run 'rescan' to do it now)")
        elif action == "deactivate":
            pattern = IdentityPattern.objects.filter(pk=options["id"]).first()
            if pattern is None:
                raise CommandError(f"no pattern {options['id']}")
            services.identity_pattern_deactivate(pattern=pattern)
            self.stdout.write(f"deactivated pattern {pattern.pk}: {pattern.text}")
        else:
            scan = services.identity_rescan_run()
            self.stdout.write(f"re-scanned {scan.scanned} comparisons: {scan.flagged} newly flagged, "
                              f"{scan.unflagged} un-flagged")

"""manage.py import_hh_rlhf PATH [--split train|eval] [--eval-fraction F] [--offset N] [--limit N]
[--skip-refused] [--allow-flagged]"""
from django.core.management.base import BaseCommand, CommandError

from feedback.hh_rlhf import HHRLHFFormatError
from feedback.imports import hh_rlhf_import
from feedback.models import Split


class Command(BaseCommand):
    help = (
        "Import Anthropic HH-RLHF pairs ({chosen, rejected} JSON lines, plain or gzip) as complete comparisons "
        "with the human's preference as one vote. Re-importing a pair adds nothing; a file with a bad line imports nothing, "
        "and so does one with a flagged pair (transcripts that differ before the last turn, a response that is a strict "
        "prefix of the other) unless --skip-refused or --allow-flagged."
    )

    def add_arguments(self, parser):
        parser.add_argument("path", help="An HH-RLHF .jsonl or .jsonl.gz file.")
        parser.add_argument("--split", choices=Split.values, help="Put every new prompt in this split (default: by prompt hash).")
        parser.add_argument(
            "--eval-fraction", type=float, default=0.1, help="Share of new prompts put in eval when --split is not given (default 0.1)."
        )
        parser.add_argument("--offset", type=int, default=0, help="Pairs to pass over first (default 0).")
        parser.add_argument("--limit", type=int, default=None, help="Import at most this many pairs after the offset.")
        parser.add_argument("--skip-refused", action="store_true", help="Leave flagged pairs out, listing them, and import the rest.")
        parser.add_argument(
            "--allow-flagged", action="store_true",
            help="Import flagged pairs and mark their comparisons (snapshots and exports leave them out unless include_flagged).",
        )

    def handle(self, *args, path, split, eval_fraction, offset, limit, skip_refused, allow_flagged, **options):
        try:
            summary = hh_rlhf_import(
                path=path, split=split, eval_fraction=eval_fraction, offset=offset, limit=limit,
                skip_refused=skip_refused, allow_flagged=allow_flagged,
            )
        except HHRLHFFormatError as error:
            raise CommandError(str(error)) from None
        except OSError as error:
            raise CommandError(f"cannot read {path}: {error.strerror or error}") from None
        except ValueError as error:
            raise CommandError(str(error)) from None
        s = summary
        self.stdout.write(
            f"{s.lines} pairs read: {s.imported} imported, {s.already_present} already present, "
            f"{s.identical_responses} with identical responses (skipped), {s.duplicate_lines} duplicate lines"
        )
        self.stdout.write(f"{s.diverged_before_last_turn} differ before the last turn")
        self.stdout.write(f"prompts: {s.prompts_created} created, {s.prompts_reused} reused")
        if s.refused:
            self.stdout.write(f"{s.refused} flagged pairs left out: lines {', '.join(str(n) for n, _ in s.refusals[:20])}")
        if s.flagged:
            self.stdout.write(f"{s.flagged} imported with flags (left out of snapshots and exports unless include_flagged)")

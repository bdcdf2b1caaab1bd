"""manage.py export_preferences --format F --file-type T [filters] [--plain-text] [--no-margin] [--real-usernames]
[--include-eval-set-prompts] [--output PATH]"""
import sys
import time
from pathlib import Path

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError

from config.wording import counted
from feedback.exports.filters import GOLD, SPLITS
from feedback.exports.formats import FILE_TYPES, FORMATS
from feedback.exports.services import export_create, export_request_check, export_workers, export_write
from feedback.exports.stream import vote_last_id, votes_matching
from feedback.models import ExportStatus


def _one_line(error: ValidationError) -> str:
    if hasattr(error, "error_dict"):
        return "; ".join(f"{field}: {' '.join(messages)}" for field, messages in error.message_dict.items())
    return "; ".join(error.messages)


class Command(BaseCommand):
    help = (
        "Export preference data (TRL preference or unpaired/KTO, raw votes, HH-RLHF, Arena battles) as JSONL, "
        "Parquet, a Hugging Face datasets folder or CSV (raw votes), streaming the votes in constant memory. "
        "Runs here, synchronously, with a progress line. Without --output the export is recorded and its file "
        "kept under ARBITER_DATA_DIR/exports (downloadable from the Exports page); with --output the file is "
        "written there instead (temporary name, then rename) and nothing is recorded."
    )

    def add_arguments(self, parser):
        parser.add_argument("--format", required=True, help=f"One of: {', '.join(FORMATS)}.")
        parser.add_argument("--file-type", required=True, help=f"One of: {', '.join(FILE_TYPES)} (csv: raw-votes only).")
        parser.add_argument("--date-from", help="Votes created on or after this ISO date or date-time (UTC).")
        parser.add_argument("--date-to", help="Votes created up to this ISO date (inclusive) or before this date-time.")
        parser.add_argument("--annotator", dest="annotators", metavar="USERNAME", action="append", default=[],
                            help="Only this annotator's votes (repeatable).")
        parser.add_argument("--exclude-annotator", dest="exclude_annotators", metavar="USERNAME", action="append",
                            default=[], help="Leave out this annotator's votes (repeatable).")
        parser.add_argument("--model-name", dest="model_names", metavar="NAME", action="append", default=[],
                            help="Only comparisons with a completion by this model (repeatable).")
        parser.add_argument("--tag", dest="tags", metavar="TAG", action="append", default=[],
                            help="Only comparisons whose prompt has this tag (repeatable: any of them).")
        parser.add_argument("--split", dest="splits", choices=SPLITS, action="append", default=[],
                            help="Only prompts of this split (repeatable; default both).")
        parser.add_argument("--min-agreement", type=float, help="0-1: leave out comparisons whose votes agree less.")
        parser.add_argument("--gold", choices=GOLD, help="Gold items: include (default), exclude or only.")
        parser.add_argument("--include-flagged", action="store_true",
                            help="Also export comparisons imported with flags (left out and counted by default).")
        parser.add_argument("--votes", choices=("human", "ai", "both"),
                            help="Whose votes: human (people's, the default), ai (AI judges' only) or both.")
        parser.add_argument("--ai-weight", type=float,
                            help="With --votes both: an AI vote's weight in each comparison's tally, 0-1 (default 1).")
        parser.add_argument("--plain-text", action="store_true", help="TRL formats: plain text instead of message lists.")
        parser.add_argument("--no-margin", action="store_true", help="trl-preference: no margin column.")
        parser.add_argument("--real-usernames", action="store_true",
                            help="raw-votes, arena: write usernames instead of per-export pseudonyms.")
        parser.add_argument("--include-eval-set-prompts", action="store_true",
                            help="Formats with texts: keep comparisons whose prompt is in an eval set or a near-duplicate "
                                 "of one (left out and counted as eval_set_excluded by default; for analysis exports).")
        parser.add_argument("--output", help="Write the file (folder for hf-dataset) here; it must not exist yet.")

    def _progress(self, votes: int, rows: int) -> None:
        elapsed = time.monotonic() - self.started
        self.stderr.write(f"\r{counted(votes, 'vote')} read, {counted(rows, 'row')} written, {elapsed:.1f} s", ending="")
        self.stderr.flush()

    def handle(self, *args, format, file_type, output, plain_text, no_margin, real_usernames, include_flagged,
               include_eval_set_prompts, **options):
        filters = {name: options[name] for name in ("annotators", "exclude_annotators", "model_names", "tags", "splits")
                   if options[name]}
        if include_flagged:
            filters["include_flagged"] = True
        for name in ("date_from", "date_to", "min_agreement", "gold", "votes", "ai_weight"):
            if options[name] is not None:
                filters[name] = options[name]
        export_options = {}
        if plain_text:
            export_options["conversational"] = False
        if no_margin:
            export_options["include_margin"] = False
        if real_usernames:
            export_options["real_usernames"] = True
        if include_eval_set_prompts:
            export_options["include_eval_set_prompts"] = True
        self.started = time.monotonic()
        try:
            if output is None:
                export = export_create(format=format, file_type=file_type, filters=filters, options=export_options,
                                       mode="inline", progress=self._progress)
            else:
                path = Path(output)
                if path.exists():
                    raise CommandError(f"{path} already exists; choose a new path")
                request = export_request_check(format=format, file_type=file_type, filters=filters, options=export_options)
                max_vote_id = vote_last_id()
                votes = votes_matching(filters=request.filters, max_vote_id=max_vote_id).count()
                result, counts = export_write(request=request, path=path, max_vote_id=max_vote_id,
                                              progress=self._progress, workers=export_workers(votes), votes_total=votes)
        except ValidationError as error:
            raise CommandError(_one_line(error)) from None
        except OSError as error:
            raise CommandError(f"cannot write {output or 'the export'}: {error.strerror or error}") from None
        self.stderr.write("")
        if output is None:
            if export.status != ExportStatus.SUCCEEDED:
                raise CommandError(f"export {export.pk} failed: {export.error}")
            from feedback.exports.selectors import export_file

            rows, digest, where, counts = export.row_count, export.checksum, export_file(export=export), export.counts
        else:
            rows, digest, where = result.rows, result.checksum, path.resolve()
        skipped = ", ".join(f"{k}={v}" for k, v in sorted(counts.items()) if k not in ("votes_read", "comparisons") and v)
        self.stdout.write(f"{counted(rows, 'row')} from {counted(counts['votes_read'], 'vote')} on "
                          f"{counted(counts['comparisons'], 'comparison')}"
                          + (f" (no row: {skipped})" if skipped else ""))
        if counts.get("eval_set_excluded"):
            from feedback.evalsets.exclusion import eval_set_note

            self.stdout.write(f"{eval_set_note(counts['eval_set_excluded'])} (--include-eval-set-prompts keeps them)")
        self.stdout.write(f"sha256 {digest}")
        self.stdout.write(f"path {where}")
        sys.stdout.flush()

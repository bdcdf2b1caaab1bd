"""manage.py import_preferences FILE --format trl|hh-rlhf|arena [--source NAME] [--model-name NAME]
[--split train|eval] [--eval-fraction F] [--offset N] [--limit N] [--skip-refused] [--allow-flagged]"""
from django.core.management.base import BaseCommand, CommandError

from feedback.imports import DEFAULT_SOURCE, PREFERENCE_FORMATS, preferences_import
from feedback.jsonl import JSONLFormatError
from feedback.models import Split


class Command(BaseCommand):
    help = (
        "Import preference pairs as complete comparisons with one vote each: TRL preference rows "
        "(prompt/chosen/rejected, text or messages, explicit or implicit prompt), HH-RLHF transcripts, or "
        "Chatbot-Arena battles (model_a/model_b/winner/conversation_a/conversation_b). JSON lines (plain or gzip) "
        "or Parquet. Re-importing a row adds nothing; a file with a bad row, a row that cannot be stored (a multi-message "
        "response) or a flagged row (an optional column on some rows only, a response that is a strict prefix of the "
        "other, transcripts that differ before the last turn) imports nothing unless --skip-refused or --allow-flagged."
    )

    def add_arguments(self, parser):
        parser.add_argument("path", help="The file (.jsonl, .jsonl.gz or .parquet; told by its content).")
        parser.add_argument("--format", required=True, help=f"One of: {', '.join(PREFERENCE_FORMATS)}.")
        parser.add_argument(
            "--source",
            help="Name of the new prompts, the votes and the system user who casts them "
            f"(default per format: {', '.join(f'{k}: {v}' for k, v in DEFAULT_SOURCE.items())}).",
        )
        parser.add_argument(
            "--model-name", help="Model name of both completions (trl, hh-rlhf; default: the source). Arena rows name their models."
        )
        parser.add_argument("--split", choices=Split.values, help="Put every new prompt in this split (default: by prompt hash).")
        parser.add_argument(
            "--eval-fraction", type=float, default=0.1, help="Share of new prompts put in eval when --split is not given (default 0.1)."
        )
        parser.add_argument("--offset", type=int, default=0, help="Rows to pass over first (default 0).")
        parser.add_argument("--limit", type=int, default=None, help="Import at most this many rows after the offset.")
        parser.add_argument(
            "--skip-refused", action="store_true",
            help="Import the other rows when some are valid but cannot be stored (multi-message responses, Arena battles "
            "whose sides differ before the last turn) or are flagged, listing the skipped ones. Default: such a row fails "
            "the whole file.",
        )
        parser.add_argument(
            "--allow-flagged", action="store_true",
            help="Import flagged rows (margin or another optional column missing while other rows have it, a response "
            "that is a strict prefix of the other, HH-RLHF transcripts that differ before the last turn) and mark their "
            "comparisons; snapshots and exports leave marked comparisons out unless include_flagged.",
        )

    def handle(self, *args, path, format, source, model_name, split, eval_fraction, offset, limit, skip_refused, allow_flagged,
               **options):
        try:
            summary = preferences_import(
                path=path, format=format, source=source, model_name=model_name,
                split=split, eval_fraction=eval_fraction, offset=offset, limit=limit, skip_refused=skip_refused,
                allow_flagged=allow_flagged,
            )
        except JSONLFormatError as error:
            raise CommandError(str(error)) from None
        except OSError as error:
            raise CommandError(f"cannot read {path}: {error.strerror or error}") from None
        except ValueError as error:
            raise CommandError(str(error)) from None
        for line in summary.report():
            self.stdout.write(line)

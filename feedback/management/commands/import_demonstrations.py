"""manage.py import_demonstrations PATH [--source NAME] [--split train|eval] [--eval-fraction F]"""
from django.core.management.base import BaseCommand, CommandError

from feedback.imports import DEMONSTRATION_IMPORT_SOURCE, demonstrations_import
from feedback.models import Split
from feedback.prompt_completion import DemonstrationFileError


class Command(BaseCommand):
    help = (
        "Import demonstrations (prompt, ideal response) for supervised fine-tuning from JSON lines of TRL's "
        "prompt-completion format ({prompt, completion} as text or messages, or {messages} ending in an "
        "assistant turn), plain or gzip. Re-importing a row adds nothing; a file with a bad line imports nothing."
    )

    def add_arguments(self, parser):
        parser.add_argument("path", help="A .jsonl or .jsonl.gz file.")
        parser.add_argument(
            "--source",
            default=DEMONSTRATION_IMPORT_SOURCE,
            help=f"Source name of the demonstrations and of new prompts (default {DEMONSTRATION_IMPORT_SOURCE!r}).",
        )
        parser.add_argument("--split", choices=Split.values, help="Put every new prompt in this split (default: by prompt hash).")
        parser.add_argument(
            "--eval-fraction", type=float, default=0.1, help="Share of new prompts put in eval when --split is not given (default 0.1)."
        )

    def handle(self, *args, path, source, split, eval_fraction, **options):
        try:
            summary = demonstrations_import(path=path, source=source, split=split, eval_fraction=eval_fraction)
        except DemonstrationFileError as error:
            raise CommandError(str(error)) from None
        except OSError as error:
            raise CommandError(f"cannot read {path}: {error.strerror or error}") from None
        except ValueError as error:
            raise CommandError(str(error)) from None
        s = summary
        self.stdout.write(
            f"{s.lines} demonstrations read: {s.imported} imported, {s.already_present} already present, "
            f"{s.duplicate_lines} duplicate lines"
        )
        self.stdout.write(f"prompts: {s.prompts_created} created, {s.prompts_reused} reused")

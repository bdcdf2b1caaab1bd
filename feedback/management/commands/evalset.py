"""manage.py evalset import FILE --name NAME [--format jsonl|csv]  |  manage.py evalset list

Import a file of real queries as a new version of an eval set (whole or not at all), or list the
eval sets. A bad file exits non-zero with one line naming the line number and field."""
from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError

from feedback.evalsets.files import FORMATS, EvalSetFileError
from feedback.evalsets.models import EvalSet
from feedback.evalsets.services import eval_set_import
from feedback.import_limits import ImportLimitError


def _one_line(error: Exception) -> str:
    if isinstance(error, EvalSetFileError) and not isinstance(error, ImportLimitError):
        return error.first_line()
    if isinstance(error, ImportLimitError):
        where = f"line {error.number}: " if error.number else ""
        return f"{error.path}: {where}{error.problems[0][1]}"
    if isinstance(error, ValidationError):
        return "; ".join(f"--{field}: {' '.join(texts)}" for field, texts in error.message_dict.items())
    return str(error).splitlines()[0]


class Command(BaseCommand):
    help = "Import a JSONL or CSV file of real queries as a named, versioned, frozen eval set, or list eval sets."

    def add_arguments(self, parser):
        commands = parser.add_subparsers(dest="action", required=True, metavar="import|list")
        importing = commands.add_parser("import", help="Import FILE as a new version of eval set NAME.")
        importing.add_argument("file", metavar="FILE", help="JSON lines (.jsonl, .jsonl.gz) or CSV with a prompt column.")
        importing.add_argument("--name", required=True, help="The eval set's name; the same content again gives the same version.")
        importing.add_argument("--format", choices=FORMATS, default=None, help="Default: told by the file's name or content.")
        commands.add_parser("list", help="List eval sets: name, version, prompts, duplicates merged, content hash.")

    def handle(self, *args, action, **options):
        if action == "list":
            for s in EvalSet.objects.order_by("name", "version"):
                self.stdout.write(f"{s.pk}\t{s.name}\tv{s.version}\t{s.item_count} prompts\t"
                                  f"{s.duplicates_merged} merged\t{s.content_hash}")
            return
        try:
            result = eval_set_import(path=options["file"], name=options["name"], format=options["format"])
        except (EvalSetFileError, ValidationError, ValueError, OSError) as error:
            if isinstance(error, OSError):
                raise CommandError(f"{options['file']}: cannot read the file ({error.strerror or error})") from None
            raise CommandError(_one_line(error)) from None
        for line in result.report():
            self.stdout.write(line)

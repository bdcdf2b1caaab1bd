"""manage.py import_model [--path DIR | --hf-id ID] [--name NAME] [--stop-strings JSON]"""
import json
from pathlib import Path

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError


class Command(BaseCommand):
    help = (
        "Import a causal LM as a policy checkpoint. With no arguments: the bundled SmolLM2-135M-Instruct "
        "(cached; a second call is instant). Models are loaded with trust_remote_code=False: one that needs its own "
        "Python code is refused, and pickled weights are read only by torch's weights-only loader."
    )

    def add_arguments(self, parser):
        source = parser.add_mutually_exclusive_group()
        source.add_argument("--path", type=Path, help="a local Hugging Face model directory")
        source.add_argument("--hf-id", help="a model id on the Hugging Face hub (needs network access)")
        parser.add_argument("--name", help="checkpoint name (default: the model's name)")
        parser.add_argument(
            "--stop-strings", metavar="JSON",
            help=(
                "role markers its replies end at, as a JSON list (escapes such as \\n work), e.g. "
                "'[\"\\n\\nHuman:\", \"\\n\\nAssistant:\"]' (the default); '[]' for none"
            ),
        )

    def handle(self, *args, path, hf_id, name, stop_strings=None, **options):
        from training.registry import model_import
        from training.runners.model_import import ImportFailed

        if stop_strings is not None:
            try:
                stop_strings = json.loads(stop_strings)
            except ValueError as error:
                raise CommandError(f"--stop-strings is not JSON ({error}); give a list such as '[\"\\n\\nHuman:\"]'") from None
        try:
            checkpoint, created = model_import(name=name, path=path, hf_id=hf_id, stop_strings=stop_strings)
        except ImportFailed as error:
            raise CommandError(str(error)) from None
        except ValidationError as error:
            raise CommandError("; ".join(error.messages)) from None
        verb = "imported" if created else "already imported"
        self.stdout.write(f"{verb}: {checkpoint.name} ({checkpoint.location})")

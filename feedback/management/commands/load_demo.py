"""manage.py load_demo: demo accounts and the project's own sample comparisons (idempotent)."""
import json
from pathlib import Path

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand
from django.db import transaction

from feedback import services
from feedback.models import Prompt
from feedback.roles import roles_ensure

DEMO_FILE = Path(__file__).resolve().parents[2] / "demo" / "comparisons.json"
DEMO_USERS = [("admin", "admin"), ("annotator1", "annotator"), ("annotator2", "annotator")]
DEMO_PASSWORD = "arbiter-demo"
DEMO_SOURCE = "arbiter-demo"


class Command(BaseCommand):
    help = "Create demo logins and load the bundled sample prompts and responses (safe to run twice)."

    def add_arguments(self, parser):
        parser.add_argument("--file", type=Path, default=DEMO_FILE)
        parser.add_argument("--votes-required", type=int, default=2)

    def handle(self, *args, file, votes_required, **options):
        groups = roles_ensure()
        User = get_user_model()
        for username, role in DEMO_USERS:
            user, created = User.objects.get_or_create(username=username, defaults={"is_staff": role == "admin"})
            if created:
                user.set_password(DEMO_PASSWORD)
                user.save()
            user.groups.add(groups[role])
        if Prompt.objects.filter(source=DEMO_SOURCE).exists():
            self.stdout.write("demo comparisons already loaded")
            return
        items = json.loads(file.read_text(encoding="utf-8"))
        with transaction.atomic():
            for item in items:
                services.comparison_create_inline(
                    prompt={
                        "messages": item["messages"],
                        "source": DEMO_SOURCE,
                        "tags": item.get("tags", []),
                        "split": item.get("split", "train"),
                    },
                    completion_a={"model_name": item["a"]["model"], "text": item["a"]["text"]},
                    completion_b={"model_name": item["b"]["model"], "text": item["b"]["text"]},
                    votes_required=votes_required,
                )
        self.stdout.write(f"loaded {len(items)} demo comparisons")

"""manage.py load_demo: demo accounts, the project's own sample comparisons and the demo campaign
that holds them (active, the annotators group as its pool, guidelines v1 from demo/guidelines.md),
and the demo source's data-use policy (every use allowed, reviewed clean). Safe to run twice."""
import json
from pathlib import Path

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand
from django.db import transaction

from feedback import services
from feedback.campaigns import services as campaigns
from feedback.campaigns.models import Campaign, CampaignStatus
from feedback.models import Prompt
from feedback.roles import roles_ensure

DEMO_FILE = Path(__file__).resolve().parents[2] / "demo" / "comparisons.json"
DEMO_USERS = [("admin", "admin"), ("annotator1", "annotator"), ("annotator2", "annotator")]
DEMO_PASSWORD = "arbiter-demo"
DEMO_SOURCE = "arbiter-demo"
DEMO_GUIDELINES = DEMO_FILE.parent / "guidelines.md"
DEMO_CAMPAIGN = {
    "name": "Demo: helpfulness",
    "slug": "demo-helpfulness",
    "description": "The bundled sample prompts: which of two responses helps more?",
    "priority": 10,
    "groups": ["annotators"],
}


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
        else:
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
        self._campaign(votes_required)
        self._policy()

    def _policy(self) -> None:
        """The demo source's data-use policy: every use allowed, reviewed clean (created once;
        an admin's later changes stay)."""
        from feedback.governance.models import DataPolicy, ReviewStatus

        DataPolicy.objects.get_or_create(source=DEMO_SOURCE, scope="source", defaults={
            "basis": "bundled sample data written for the demo", "review_status": ReviewStatus.REVIEWED_CLEAN,
        })

    def _campaign(self, votes_required: int) -> None:
        """The demo campaign: created once, holding the demo comparisons, guided and active."""
        campaign = Campaign.objects.filter(slug=DEMO_CAMPAIGN["slug"]).first()
        if campaign is None:
            admin = get_user_model().objects.filter(username="admin").first()
            campaign = campaigns.campaign_create(
                values={**DEMO_CAMPAIGN, "votes_required": votes_required}, created_by=admin
            )
        if not campaign.guideline_versions.exists():  # an admin's later versions stay current
            campaigns.guidelines_edit(campaign=campaign, text=DEMO_GUIDELINES.read_text(encoding="utf-8"))
        if campaign.status != CampaignStatus.CLOSED:
            campaigns.campaign_comparisons_add(campaign=campaign, rules={"sources": [DEMO_SOURCE]})
        if campaign.status == CampaignStatus.DRAFT:
            campaigns.campaign_activate(campaign=campaign)
        self.stdout.write(f"demo campaign {campaign.slug}: /annotate/{campaign.slug}/")

"""Campaign, its versioned guidelines and the annotators' acknowledgements of them."""
from __future__ import annotations

from django.conf import settings
from django.contrib.auth.models import Group
from django.db import models
from django.db.models import Q

DEFAULT_CAMPAIGN_SLUG = "default"
# The three aspect columns every vote has; a campaign names and labels the ones it asks.
BUILTIN_ASPECTS = ("helpfulness", "harmlessness", "honesty")


# What the annotator reads for each aspect unless the campaign words it otherwise.
ASPECT_LABELS = {"helpfulness": "More helpful", "harmlessness": "More harmless", "honesty": "More honest"}


def aspect_label_default(name: str) -> str:
    """The default question for aspect ``name`` ("More helpful"); an unknown name, capitalised."""
    return ASPECT_LABELS.get(name, str(name).capitalize())


def default_aspects() -> list[dict[str, str]]:
    """The questions asked before campaigns existed: the three built-in aspects with their labels."""
    return [{"name": name, "label": aspect_label_default(name)} for name in BUILTIN_ASPECTS]


class CampaignStatus(models.TextChoices):
    DRAFT = "draft", "draft"
    ACTIVE = "active", "active"
    PAUSED = "paused", "paused"
    CLOSED = "closed", "closed"


class RationaleMode(models.TextChoices):
    OFF = "off", "not asked"
    OPTIONAL = "optional", "optional"
    REQUIRED = "required", "required"


class Campaign(models.Model):
    """One annotation effort: what is judged (its comparisons), by whom (its pool), how (guidelines
    and questions) and how much (votes per comparison, target, deadline).

    Annotators are served only the comparisons of active campaigns whose pool holds them (a user in
    ``annotators`` or in one of ``groups``). ``rules`` records how comparisons were selected
    (``sources``, ``tags``, ``splits``, ``model_names``, ``ids``), for the record and for re-applying.
    ``aspects``: ``[{"name": <one of BUILTIN_ASPECTS>, "label": "What the annotator reads"}, ...]``,
    the aspect questions asked, in order; ``[]`` asks none.
    """

    name = models.CharField(max_length=200, unique=True)
    slug = models.SlugField(max_length=80, unique=True, help_text="The campaign's name in its URL: /annotate/<slug>/.")
    description = models.TextField(blank=True, default="")
    status = models.CharField(max_length=10, choices=CampaignStatus.choices, default=CampaignStatus.DRAFT)
    priority = models.IntegerField(default=0, help_text="Higher is listed and served first.")
    votes_required = models.PositiveSmallIntegerField(
        default=1, help_text="Votes each comparison added to the campaign needs."
    )
    target_votes = models.PositiveIntegerField(null=True, blank=True, help_text="Votes the campaign aims for.")
    deadline = models.DateTimeField(null=True, blank=True)
    ask_strength = models.BooleanField(default=True)
    aspects = models.JSONField(default=default_aspects, blank=True)
    rationale = models.CharField(max_length=10, choices=RationaleMode.choices, default=RationaleMode.OPTIONAL)
    ask_demonstration = models.BooleanField(default=True, help_text='Show the "write a better response" box.')
    show_quality_to_annotators = models.BooleanField(
        default=False, help_text="Annotators see their agreement with the consensus on their campaigns page.")
    rules = models.JSONField(default=dict, blank=True)
    # Gold items (comparisons with a ``gold_choice``): feedback/gold.py, feedback/quality/gold.py.
    gold_rate = models.FloatField(
        default=0.0, help_text="Share of served items that are gold items, when one is left for the annotator (0-1)."
    )
    gold_feedback = models.BooleanField(
        default=False, help_text="After a vote on a gold item, tell the annotator whether it matched the expected answer."
    )
    gold_min_accuracy = models.FloatField(
        null=True, blank=True,
        help_text="Pause an annotator whose gold accuracy falls below this (0-1; empty: never).",
    )
    gold_min_votes = models.PositiveIntegerField(
        default=10, help_text="Gold votes an annotator casts before gold_min_accuracy applies."
    )
    # The quality report's speed floor: feedback/quality/bias.py's ``fast_ms`` (services.quality_report_compute).
    fast_vote_ms = models.PositiveIntegerField(
        default=2000, help_text="Votes faster than this many ms on the item are flagged as too fast."
    )
    ai_votes_count = models.BooleanField(
        default=False, help_text="AI judges' votes count toward votes required (off: only people's votes do)."
    )
    annotators = models.ManyToManyField(settings.AUTH_USER_MODEL, blank=True, related_name="campaigns")
    groups = models.ManyToManyField(Group, blank=True, related_name="campaigns")
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.CheckConstraint(condition=Q(status__in=CampaignStatus.values), name="campaign_status_valid"),
            models.CheckConstraint(condition=Q(rationale__in=RationaleMode.values), name="campaign_rationale_valid"),
            models.CheckConstraint(condition=Q(votes_required__gte=1), name="campaign_votes_required_positive"),
            models.CheckConstraint(condition=Q(gold_rate__gte=0, gold_rate__lte=1), name="campaign_gold_rate_range"),
            models.CheckConstraint(
                condition=Q(gold_min_accuracy__isnull=True) | Q(gold_min_accuracy__gte=0, gold_min_accuracy__lte=1),
                name="campaign_gold_min_accuracy_range",
            ),
        ]
        ordering = ["-priority", "name"]

    def __str__(self) -> str:
        return self.name

    @property
    def is_active(self) -> bool:
        return self.status == CampaignStatus.ACTIVE


class GuidelineVersion(models.Model):
    """One version of a campaign's guidelines (Markdown). Editing the guidelines adds a version;
    none is ever changed, so a vote's ``guidelines_version`` says what the annotator had read."""

    campaign = models.ForeignKey(Campaign, on_delete=models.CASCADE, related_name="guideline_versions")
    number = models.PositiveIntegerField()
    text = models.TextField(blank=True, default="")
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["campaign", "number"], name="guideline_version_unique"),
        ]
        ordering = ["campaign", "-number"]

    def __str__(self) -> str:
        return f"{self.campaign} guidelines v{self.number}"


class GuidelineAcknowledgement(models.Model):
    """An annotator said they read a guidelines version (stored once per annotator and version)."""

    version = models.ForeignKey(GuidelineVersion, on_delete=models.CASCADE, related_name="acknowledgements")
    annotator = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["version", "annotator"], name="guideline_ack_unique"),
        ]


class CampaignAnnotatorPause(models.Model):
    """An annotator's access to one campaign, paused because their gold accuracy fell below the
    campaign's ``gold_min_accuracy``. While ``lifted_at`` is empty the campaign serves them nothing
    and takes no vote from them; an admin lifts it (``feedback.quality.gold_services.pause_lift``).
    ``votes``/``correct``: their gold votes and matches when it was paused (for the record)."""

    campaign = models.ForeignKey(Campaign, on_delete=models.CASCADE, related_name="annotator_pauses")
    annotator = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    votes = models.PositiveIntegerField(default=0)
    correct = models.PositiveIntegerField(default=0)
    reason = models.CharField(max_length=500, blank=True, default="")
    created_at = models.DateTimeField(auto_now_add=True)
    lifted_at = models.DateTimeField(null=True, blank=True)
    lifted_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["campaign", "annotator"], condition=Q(lifted_at__isnull=True), name="campaign_pause_one_open"
            ),
        ]
        ordering = ["-created_at"]

    @property
    def is_open(self) -> bool:
        return self.lifted_at is None


DEFAULT_CAMPAIGN_NAME = "Default"
DEFAULT_CAMPAIGN_DESCRIPTION = "Comparisons that belong to no other campaign. Every annotator is in its pool."


def default_campaign_id() -> int:
    """The id of the "Default" campaign (slug ``default``), created active with the ``annotators``
    group as its pool when missing. The default of ``Comparison.campaign``: a comparison created
    without a campaign lands here. One indexed SELECT when it exists.
    """
    found = Campaign.objects.filter(slug=DEFAULT_CAMPAIGN_SLUG).values_list("id", flat=True).first()
    if found is not None:
        return found
    from django.db import transaction

    from feedback.roles import roles_ensure

    with transaction.atomic():
        campaign, created = Campaign.objects.get_or_create(
            slug=DEFAULT_CAMPAIGN_SLUG,
            defaults={"name": DEFAULT_CAMPAIGN_NAME, "description": DEFAULT_CAMPAIGN_DESCRIPTION,
                      "status": CampaignStatus.ACTIVE},
        )
        if created:
            campaign.groups.add(roles_ensure()["annotator"])
    return campaign.pk

"""REST API for campaigns (admins only). Thin: serializers check shapes, the services the rules.

- ``GET/POST /api/campaigns/``: list (a plain list, highest priority first) / create a draft.
- ``GET/PUT/PATCH /api/campaigns/{id}/``: one campaign / change the settings given.
- ``GET/POST /api/campaigns/{id}/guidelines/``: its versions (newest first) / add a version.
- ``POST /api/campaigns/{id}/comparisons/``: move comparisons in by rules; ``{"moved": n, "rules": {...}}``.
- ``POST /api/campaigns/{id}/activate/``, ``pause/``, ``close/`` (close answers ``released`` leases too).
- ``GET /api/campaigns/{id}/progress/``: votes against the target, per annotator, rate, time left.
- ``GET /api/campaigns/{id}/gold/``: gold items, per-annotator gold accuracy (Wilson interval), who is paused.
- ``POST /api/campaigns/{id}/lift-pause/`` ``{"username": ...}``: lift an annotator's gold pause.

Bad input is a 400 with field messages; an unknown field is one of them (``"colour": ["not a
campaign setting"]``), so a typo never passes silently.
"""
from __future__ import annotations

from django.db.models import Max
from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import mixins, serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.response import Response

from feedback.api.permissions import IsFeedbackAdmin
from feedback.quality.gold import gold_accuracy, gold_items_count, gold_pauses
from feedback.quality.gold_services import pause_lift

from . import selectors, services
from .models import BUILTIN_ASPECTS, Campaign, GuidelineVersion, RationaleMode
from .progress import campaign_progress


class AspectSerializer(serializers.Serializer):
    name = serializers.ChoiceField(choices=BUILTIN_ASPECTS)
    label = serializers.CharField(max_length=200)


class CampaignSerializer(serializers.ModelSerializer):
    annotators = serializers.SlugRelatedField(slug_field="username", many=True, read_only=True)
    groups = serializers.SlugRelatedField(slug_field="name", many=True, read_only=True)
    created_by = serializers.SlugRelatedField(slug_field="username", read_only=True, allow_null=True)
    aspects = AspectSerializer(many=True, read_only=True)
    guidelines_version = serializers.IntegerField(read_only=True, allow_null=True, help_text="the current guidelines version's number")

    class Meta:
        model = Campaign
        fields = [
            "id", "name", "slug", "description", "status", "priority", "votes_required", "target_votes", "deadline",
            "ask_strength", "aspects", "rationale", "ask_demonstration", "show_quality_to_annotators", "rules", "annotators", "groups",
            "guidelines_version", "created_by", "created_at", "updated_at",
            "gold_rate", "gold_feedback", "gold_min_accuracy", "gold_min_votes", "fast_vote_ms", "ai_votes_count",
        ]
        read_only_fields = fields


class CampaignWriteSerializer(serializers.Serializer):
    """Shapes only: ``campaign_create``/``campaign_update`` check ranges, names and the pool."""

    name = serializers.CharField(max_length=200, required=False)
    slug = serializers.CharField(max_length=80, required=False, allow_blank=True)
    description = serializers.CharField(required=False, allow_blank=True, max_length=10_000)
    priority = serializers.IntegerField(required=False)
    votes_required = serializers.IntegerField(required=False)
    target_votes = serializers.IntegerField(required=False, allow_null=True)
    deadline = serializers.DateTimeField(required=False, allow_null=True)
    ask_strength = serializers.BooleanField(required=False)
    aspects = AspectSerializer(many=True, required=False)
    rationale = serializers.ChoiceField(choices=RationaleMode.choices, required=False)
    ask_demonstration = serializers.BooleanField(required=False)
    show_quality_to_annotators = serializers.BooleanField(required=False)
    gold_rate = serializers.FloatField(required=False, help_text="share of served items that are gold items, 0-1")
    gold_feedback = serializers.BooleanField(required=False)
    gold_min_accuracy = serializers.FloatField(required=False, allow_null=True, help_text="0-1; null: never pause")
    gold_min_votes = serializers.IntegerField(required=False)
    fast_vote_ms = serializers.IntegerField(required=False, help_text="0-600000; faster votes are flagged as too fast")
    ai_votes_count = serializers.BooleanField(required=False, help_text="AI judges' votes count toward votes_required")
    annotators = serializers.ListField(child=serializers.CharField(max_length=150), required=False, max_length=10_000,
                                       help_text="usernames")
    groups = serializers.ListField(child=serializers.CharField(max_length=150), required=False, max_length=1_000,
                                   help_text="group names")


class GuidelineVersionSerializer(serializers.ModelSerializer):
    created_by = serializers.SlugRelatedField(slug_field="username", read_only=True, allow_null=True)

    class Meta:
        model = GuidelineVersion
        fields = ["number", "text", "created_by", "created_at"]
        read_only_fields = ["number", "created_by", "created_at"]
        # Required (a body without it is a 400 naming it); an empty text is the service's to refuse.
        extra_kwargs = {"text": {"required": True, "allow_blank": True}}


class RulesSerializer(serializers.Serializer):
    """Every given rule applies; a list matches any of its values."""

    sources = serializers.ListField(child=serializers.CharField(max_length=100), required=False)
    tags = serializers.ListField(child=serializers.CharField(max_length=100), required=False)
    splits = serializers.ListField(child=serializers.ChoiceField(choices=["train", "eval"]), required=False)
    model_names = serializers.ListField(child=serializers.CharField(max_length=200), required=False)
    ids = serializers.ListField(child=serializers.IntegerField(min_value=1), required=False)


class AnnotatorVotesSerializer(serializers.Serializer):
    username = serializers.CharField()
    votes = serializers.IntegerField()
    last_vote_at = serializers.DateTimeField(allow_null=True)


class ProgressSerializer(serializers.Serializer):
    """``CampaignProgress.as_dict()``: rates in votes per hour, ``eta_seconds`` to the target."""

    campaign_id = serializers.IntegerField()
    votes = serializers.IntegerField()
    target = serializers.IntegerField()
    target_kind = serializers.ChoiceField(choices=["target_votes", "comparisons"])
    remaining = serializers.IntegerField()
    percent = serializers.IntegerField()
    comparisons = serializers.IntegerField()
    open = serializers.IntegerField()
    complete = serializers.IntegerField()
    retired = serializers.IntegerField()
    first_vote_at = serializers.DateTimeField(allow_null=True)
    last_vote_at = serializers.DateTimeField(allow_null=True)
    votes_recent = serializers.IntegerField(help_text="votes in the last 24 hours")
    rate_recent = serializers.FloatField(allow_null=True)
    rate_overall = serializers.FloatField(allow_null=True)
    eta_seconds = serializers.IntegerField(allow_null=True)
    deadline = serializers.DateTimeField(allow_null=True)
    on_track = serializers.BooleanField(allow_null=True)
    annotators = AnnotatorVotesSerializer(many=True)


def _values(serializer_class, request, *, partial: bool) -> dict:
    """The request's fields checked for shape; fields the serializer does not know are passed on
    for the service to refuse by name."""
    if not isinstance(request.data, dict):
        raise serializers.ValidationError({"non_field_errors": ["expected an object"]})
    shape = serializer_class(data=request.data, partial=partial)
    shape.is_valid(raise_exception=True)
    unknown = {key: request.data[key] for key in request.data if key not in shape.fields}
    return {**unknown, **shape.validated_data}


class CampaignViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    """Annotation campaigns (admins only)."""

    serializer_class = CampaignSerializer
    permission_classes = [IsFeedbackAdmin]
    pagination_class = None
    lookup_value_regex = "[0-9]+"

    def get_queryset(self):
        return (
            Campaign.objects.prefetch_related("annotators", "groups").select_related("created_by")
            .annotate(guidelines_version=Max("guideline_versions__number")).order_by("-priority", "name")
        )

    def _answer(self, campaign: Campaign, code: int = status.HTTP_200_OK) -> Response:
        campaign = self.get_queryset().get(pk=campaign.pk)
        return Response(CampaignSerializer(campaign, context={"request": self.request}).data, status=code)

    @extend_schema(request=CampaignWriteSerializer, responses={201: CampaignSerializer})
    def create(self, request):
        values = _values(CampaignWriteSerializer, request, partial=False)
        campaign = services.campaign_create(values=values, created_by=request.user)
        return self._answer(campaign, status.HTTP_201_CREATED)

    @extend_schema(request=CampaignWriteSerializer, responses={200: CampaignSerializer})
    def update(self, request, pk=None):
        campaign = services.campaign_update(campaign=self.get_object(), values=_values(CampaignWriteSerializer, request, partial=True))
        return self._answer(campaign)

    @extend_schema(request=CampaignWriteSerializer, responses={200: CampaignSerializer})
    def partial_update(self, request, pk=None):
        return self.update(request, pk=pk)

    @extend_schema(methods=["GET"], request=None, responses={200: GuidelineVersionSerializer(many=True)})
    @extend_schema(methods=["POST"], request=GuidelineVersionSerializer, responses={201: GuidelineVersionSerializer})
    @action(detail=True, methods=["get", "post"], pagination_class=None)
    def guidelines(self, request, pk=None):
        """GET: every guidelines version, newest first. POST ``{"text": markdown}``: a new version
        (201; text equal to the current version's adds none and answers it with 200)."""
        campaign = self.get_object()
        if request.method == "GET":
            return Response(GuidelineVersionSerializer(selectors.guideline_versions(campaign=campaign), many=True).data)
        shape = GuidelineVersionSerializer(data=request.data)
        shape.is_valid(raise_exception=True)
        before = selectors.guidelines_current(campaign=campaign)
        version = services.guidelines_edit(campaign=campaign, text=shape.validated_data["text"], created_by=request.user)
        code = status.HTTP_200_OK if before is not None and before.pk == version.pk else status.HTTP_201_CREATED
        return Response(GuidelineVersionSerializer(version).data, status=code)

    @extend_schema(
        request=RulesSerializer,
        responses={200: inline_serializer("ComparisonsMoved", {"moved": serializers.IntegerField(), "rules": serializers.DictField()})},
    )
    @action(detail=True, methods=["post"])
    def comparisons(self, request, pk=None):
        """Move the comparisons matching the rules into the campaign; how many moved."""
        campaign = self.get_object()
        rules = _values(RulesSerializer, request, partial=False)
        moved = services.campaign_comparisons_add(campaign=campaign, rules=rules)
        campaign.refresh_from_db()
        return Response({"moved": moved, "rules": campaign.rules})

    @extend_schema(request=None, responses={200: CampaignSerializer})
    @action(detail=True, methods=["post"])
    def activate(self, request, pk=None):
        """Serve the campaign to its pool; 400 saying why not (``status``, ``pool``, ``comparisons``)."""
        return self._answer(services.campaign_activate(campaign=self.get_object()))

    @extend_schema(request=None, responses={200: CampaignSerializer})
    @action(detail=True, methods=["post"])
    def pause(self, request, pk=None):
        """Stop serving an active campaign."""
        return self._answer(services.campaign_pause(campaign=self.get_object()))

    @extend_schema(
        request=None,
        responses={200: inline_serializer("CampaignClosed", {"released": serializers.IntegerField(), "campaign": CampaignSerializer()})},
    )
    @action(detail=True, methods=["post"])
    def close(self, request, pk=None):
        """Close the campaign for good; its live leases are released (``released``: how many)."""
        campaign = self.get_object()
        released = services.campaign_close(campaign=campaign)
        return Response({"released": released, "campaign": self._answer(campaign).data})

    @extend_schema(
        responses={200: inline_serializer("GoldFigures", {
            "gold_items": serializers.IntegerField(),
            "annotators": serializers.DictField(help_text="username -> {votes, correct, accuracy, low, high} (Wilson 95%)"),
            "paused": serializers.ListField(child=serializers.CharField(), help_text="usernames paused for gold accuracy"),
        })}
    )
    @action(detail=True, methods=["get"])
    def gold(self, request, pk=None):
        """Gold items: how many, each annotator's gold accuracy with its Wilson interval, who is paused."""
        campaign = self.get_object()
        return Response({
            "gold_items": gold_items_count(campaign=campaign),
            "annotators": {name: figures.as_dict() for name, figures in gold_accuracy(campaign=campaign).items()},
            "paused": [pause.annotator.username for pause in gold_pauses(campaign=campaign)],
        })

    @extend_schema(
        request=inline_serializer("LiftPause", {"username": serializers.CharField()}),
        responses={200: inline_serializer("PauseLifted", {"lifted": serializers.IntegerField()})},
    )
    @action(detail=True, methods=["post"], url_path="lift-pause")
    def lift_pause(self, request, pk=None):
        """Give an annotator paused for gold accuracy their access back (``lifted``: 1, or 0 when
        they were not paused)."""
        campaign = self.get_object()
        username = request.data.get("username") if isinstance(request.data, dict) else None
        if not isinstance(username, str) or not username:
            raise serializers.ValidationError({"username": ["name the annotator"]})
        return Response({"lifted": pause_lift(campaign=campaign, username=username, lifted_by=request.user)})

    @extend_schema(responses={200: ProgressSerializer})
    @action(detail=True, methods=["get"])
    def progress(self, request, pk=None):
        """Votes against the target, votes per annotator, the rate and the time left."""
        return Response(campaign_progress(campaign=self.get_object()).as_dict())

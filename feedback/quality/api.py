"""``GET /api/flags/`` (admins): the items annotators flagged, i.e. skipped with a reason."""
from __future__ import annotations

from drf_spectacular.utils import extend_schema
from rest_framework import mixins, serializers, viewsets

from feedback.api.permissions import IsFeedbackAdmin
from feedback.models import Assignment, Campaign, SkipReason

from . import flags as flag_reads


class FlagSerializer(serializers.ModelSerializer):
    """One flag: the comparison, why (``reason`` code and ``reason_label``), the note, who and where."""

    reason = serializers.CharField(source="skip_reason")
    reason_label = serializers.CharField(source="get_skip_reason_display")
    note = serializers.CharField(source="skip_note")
    annotator = serializers.CharField(source="annotator.get_username")
    campaign = serializers.SlugRelatedField(source="comparison.campaign", slug_field="slug", read_only=True)
    flagged_at = serializers.DateTimeField(source="finished_at")

    class Meta:
        model = Assignment
        fields = ["id", "comparison", "reason", "reason_label", "note", "annotator", "campaign", "flagged_at"]
        read_only_fields = fields


class FlagFilter(serializers.Serializer):
    """Query parameters of the flag list: ``campaign`` (its slug) and ``reason``."""

    campaign = serializers.SlugRelatedField(queryset=Campaign.objects.all(), slug_field="slug", required=False)
    reason = serializers.ChoiceField(choices=SkipReason.choices, required=False)


class FlagViewSet(mixins.ListModelMixin, viewsets.GenericViewSet):
    """Flags (admins): items skipped with a reason, newest first; filter by ``campaign`` slug and ``reason``."""

    serializer_class = FlagSerializer
    permission_classes = [IsFeedbackAdmin]
    queryset = Assignment.objects.none()  # for the schema; get_queryset reads the flags

    def get_queryset(self):
        filters = FlagFilter(data=self.request.query_params.dict())
        filters.is_valid(raise_exception=True)
        return flag_reads.flag_list(filters=filters.validated_data)

    @extend_schema(parameters=[FlagFilter])
    def list(self, request, *args, **kwargs):
        return super().list(request, *args, **kwargs)

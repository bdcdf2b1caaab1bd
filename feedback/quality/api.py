"""Admins' quality API: ``GET /api/flags/`` (the items annotators flagged, i.e. skipped with a
reason) and the stored quality reports, ``/api/quality/`` and ``/api/campaigns/<id>/quality/``."""
from __future__ import annotations

from typing import Any

from django.shortcuts import get_object_or_404
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import mixins, serializers, status, viewsets
from rest_framework.response import Response
from rest_framework.views import APIView

from feedback.api.permissions import IsFeedbackAdmin
from feedback.api.schema import ErrorSerializer
from feedback.models import Assignment, Campaign, QualityReport, QualityReportStatus, SkipReason

from . import flags as flag_reads
from . import selectors
from .services import quality_report_request


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


class QualityReportSerializer(serializers.Serializer):
    """A stored quality report: when and on how many votes it was computed, whether a newer vote
    exists (``stale``), the state of its recompute (``status``: queued, running, succeeded,
    failed) and ``figures`` (``feedback.quality.report.report_figures``: ``agreement``, ``bias``,
    ``annotators``, ``over_time``, and ``gold`` when gold items are scored)."""

    campaign = serializers.CharField(allow_null=True, help_text="the campaign's slug; null: every vote")
    status = serializers.ChoiceField(choices=QualityReportStatus.choices)
    error = serializers.CharField(allow_blank=True)
    computed_at = serializers.DateTimeField(allow_null=True)
    vote_count = serializers.IntegerField()
    last_vote_id = serializers.IntegerField(allow_null=True)
    stale = serializers.BooleanField(help_text="a vote newer than the figures exists")
    queued = serializers.BooleanField(required=False, help_text="POST: a recompute was queued by this request")
    figures = serializers.DictField()


def _report_data(report: QualityReport, *, stale: bool, **extra: Any) -> dict[str, Any]:
    return {"campaign": report.campaign.slug if report.campaign_id else None, "status": report.status,
            "error": report.error, "computed_at": report.computed_at, "vote_count": report.vote_count,
            "last_vote_id": report.last_vote_id, "stale": stale, "figures": report.figures, **extra}


class QualityReportView(APIView):
    """The stored quality report of a campaign (``/api/campaigns/<id>/quality/``) or of every vote
    (``/api/quality/``), admins only. GET never computes: 404 until a report has been computed.
    POST queues a background recompute (202), unless one is already queued or running."""

    permission_classes = [IsFeedbackAdmin]

    def _scope(self, pk: int | None) -> Campaign | None:
        return get_object_or_404(Campaign, pk=pk) if pk is not None else None

    @extend_schema(responses={200: QualityReportSerializer,
                              404: OpenApiResponse(ErrorSerializer, description="no such campaign, or no report computed yet")})
    def get(self, request, pk: int | None = None):
        campaign = self._scope(pk)
        report = selectors.quality_report_get(campaign=campaign)
        if report is None or not report.computed:
            where = f"campaign {campaign.slug!r}" if campaign else "all votes"
            state = f" (a recompute is {report.status})" if report is not None else ""
            return Response({"detail": f"No quality report of {where} has been computed yet{state}; "
                                       "POST to this address to compute one."}, status=status.HTTP_404_NOT_FOUND)
        stale = selectors.quality_report_is_stale(report, selectors.newest_vote_id(campaign=campaign))
        return Response(QualityReportSerializer(_report_data(report, stale=stale)).data)

    @extend_schema(request=None, responses={202: QualityReportSerializer})
    def post(self, request, pk: int | None = None):
        campaign = self._scope(pk)
        report, queued = quality_report_request(campaign=campaign)
        stale = selectors.quality_report_is_stale(report, selectors.newest_vote_id(campaign=campaign))
        return Response(QualityReportSerializer(_report_data(report, stale=stale, queued=queued)).data,
                        status=status.HTTP_202_ACCEPTED)

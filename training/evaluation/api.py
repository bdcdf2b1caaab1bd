"""Admins' evaluation API: ``GET/POST /api/evaluations/`` (list newest first; create: 201, or 400
with messages by field and nothing queued), ``GET /api/evaluations/<id>/`` (status, progress,
error), ``GET /api/evaluations/<id>/report/`` (the report as JSON, human and judge win rates
computed on read), ``GET /api/evaluations/<id>/report/csv/`` (one table as CSV) and
``POST /api/evaluations/<id>/campaign/`` (a blind human campaign from a sample of the eval set),
``POST /api/evaluations/<id>/cancel/`` (stop the running step)."""
from __future__ import annotations

import csv
import io

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiResponse, extend_schema
from django.http import HttpResponse
from rest_framework import mixins, serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.response import Response

from feedback.api.schema import BAD_REQUEST

from ..api.permissions import CanRunJobs
from . import selectors, services
from .models import EvaluationRun


class EvaluationSerializer(serializers.ModelSerializer):
    """An evaluation run: who against whom on what, its step (``status``), ``progress`` (``{"step",
    "done", "total", "unit"}``), ``error``, its jobs and campaign."""

    progress = serializers.JSONField(read_only=True)
    created_by = serializers.CharField(source="created_by.get_username", read_only=True, allow_null=True, default=None)

    class Meta:
        model = EvaluationRun
        fields = ["id", "eval_set_id", "eval_set_label", "baseline", "candidates", "reward_model", "tie_band",
                  "generation", "status", "progress", "error", "generation_job", "scoring_job", "campaign_id",
                  "created_by", "created_at", "finished_at"]
        read_only_fields = fields


class EvaluationCreateSerializer(serializers.Serializer):
    eval_set_id = serializers.IntegerField(help_text="the eval set (GET /api/eval-sets/)")
    baseline = serializers.CharField(max_length=200, help_text="a policy checkpoint's name")
    candidates = serializers.ListField(child=serializers.CharField(max_length=200), help_text="1 to 7 policy checkpoints")
    reward_model = serializers.CharField(max_length=200, help_text="the reward checkpoint that scores the answers")
    tie_band = serializers.FloatField(required=False, default=0.0, help_text="tie when |score difference| <= this")
    generation = serializers.DictField(required=False, default=dict,
                                       help_text="max_new_tokens, temperature, top_p, batch_size, seed, limit")


class CampaignCreateSerializer(serializers.Serializer):
    sample_size = serializers.IntegerField(required=False, default=50, help_text="prompts to sample (1 to 5000)")
    seed = serializers.IntegerField(required=False, default=0, help_text="the sample's random seed")


class EvaluationViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    """Evaluation runs (admins only)."""

    serializer_class = EvaluationSerializer
    permission_classes = [CanRunJobs]
    lookup_value_regex = "[0-9]+"

    def get_queryset(self):
        return selectors.evaluation_list()

    @extend_schema(request=EvaluationCreateSerializer, responses={
        201: EvaluationSerializer,
        400: OpenApiResponse(BAD_REQUEST, description="messages by field; nothing is queued"),
    })
    def create(self, request):
        serializer = EvaluationCreateSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        run = services.evaluation_run_create(**serializer.validated_data, created_by=request.user)
        return Response(EvaluationSerializer(run).data, status=status.HTTP_201_CREATED)

    @extend_schema(responses={200: OpenApiTypes.OBJECT})
    @action(detail=True, methods=["get"])
    def report(self, request, pk=None):
        """The report (``training.evaluation.report``), with human and judge win rates from the
        campaign's votes; only the run's identity and status before the scores are in."""
        return Response(selectors.evaluation_report(self.get_object()))

    @extend_schema(responses={(200, "text/csv"): OpenApiTypes.STR})
    @action(detail=True, methods=["get"], url_path="report/csv")
    def report_csv(self, request, pk=None):
        """The report as one CSV table (``candidate, against, scope, n, wins, ties, losses,
        win_rate, low, high``)."""
        run = self.get_object()
        buffer = io.StringIO()
        csv.writer(buffer).writerows(selectors.report_csv_rows(selectors.evaluation_report(run)))
        response = HttpResponse(buffer.getvalue(), content_type="text/csv; charset=utf-8")
        response["Content-Disposition"] = f'attachment; filename="evaluation-{run.pk}.csv"'
        return response

    @extend_schema(request=None, responses={200: EvaluationSerializer})
    @action(detail=True, methods=["post"])
    def cancel(self, request, pk=None):
        """Cancel the running step's job; the run then ends cancelled, keeping what was written."""
        from .flow import evaluation_cancel

        return Response(EvaluationSerializer(evaluation_cancel(run=self.get_object())).data)

    @extend_schema(request=CampaignCreateSerializer, responses={
        200: EvaluationSerializer, 400: OpenApiResponse(BAD_REQUEST, description="messages by field"),
    })
    @action(detail=True, methods=["post"])
    def campaign(self, request, pk=None):
        """Turn a sample of the eval set into a new, active, blind human campaign of
        candidate-vs-baseline comparisons; its votes join the report."""
        serializer = CampaignCreateSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        run = services.evaluation_campaign_create(run=self.get_object(), **serializer.validated_data,
                                                  created_by=request.user)
        return Response(EvaluationSerializer(run).data)

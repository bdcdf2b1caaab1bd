"""REST API for AI judges: list, read and register judges (a changed judge is a new version),
and launch a judging job for one (its status is ``/api/jobs/{id}/``). Admins only
(``training.run_jobs``); service ``ValidationError``s become 400 with field messages.
The key variable's NAME is shown; a key never is."""
from __future__ import annotations

from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import mixins, serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.response import Response

from feedback.api.schema import BAD_REQUEST
from training.api.permissions import CanRunJobs
from training.api.serializers import JobSerializer

from . import selectors, services
from .models import Judge, JudgeKind


class JudgeSerializer(serializers.ModelSerializer):
    ref = serializers.CharField(read_only=True, help_text='"name@version", as its AI votes record it')
    checkpoint = serializers.CharField(source="checkpoint.name", read_only=True, allow_null=True)
    constitution = serializers.CharField(source="constitution.ref", read_only=True, allow_null=True)

    class Meta:
        model = Judge
        fields = ["id", "ref", "name", "version", "kind", "checkpoint", "base_url", "model_name", "api_key_env",
                  "template", "constitution", "options", "created_at"]
        read_only_fields = fields


class JudgeCreateSerializer(serializers.Serializer):
    name = serializers.CharField(max_length=100)
    kind = serializers.ChoiceField(choices=JudgeKind.choices)
    checkpoint = serializers.CharField(required=False, default="", allow_blank=True)
    base_url = serializers.CharField(required=False, default="", allow_blank=True, max_length=500)
    model_name = serializers.CharField(required=False, default="", allow_blank=True, max_length=200)
    api_key_env = serializers.CharField(required=False, default="", allow_blank=True, max_length=100,
                                        help_text="the NAME of the worker's environment variable holding the key")
    template = serializers.CharField(required=False, default="", allow_blank=True, help_text='e.g. "pairwise@1"')
    constitution = serializers.CharField(required=False, default="", allow_blank=True, help_text='e.g. "hhh" or "hhh@1"')
    options = serializers.DictField(required=False, default=dict)


class JudgingLaunchSerializer(serializers.Serializer):
    campaign_id = serializers.IntegerField(required=False, allow_null=True, default=None)
    comparison_ids = serializers.ListField(child=serializers.IntegerField(), required=False, allow_null=True, default=None)
    limit = serializers.IntegerField(required=False, allow_null=True, default=None)
    batch_size = serializers.IntegerField(required=False, default=8)
    only_unjudged = serializers.BooleanField(required=False, default=True)


BAD = OpenApiResponse(BAD_REQUEST, description="An object mapping each bad field to its messages; nothing is saved or queued.")


class JudgeViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    """Registered AI judges, every version. POST registers one: version 1, the next version when
    its settings changed (201), or the latest version when nothing changed (200)."""

    serializer_class = JudgeSerializer
    permission_classes = [CanRunJobs]
    lookup_value_regex = "[0-9]+"

    def get_queryset(self):
        return selectors.judge_list()

    @extend_schema(request=JudgeCreateSerializer, responses={201: JudgeSerializer, 200: JudgeSerializer, 400: BAD})
    def create(self, request):
        serializer = JudgeCreateSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        judge, created = services.judge_save(**serializer.validated_data, created_by=request.user)
        return Response(JudgeSerializer(judge).data, status=status.HTTP_201_CREATED if created else status.HTTP_200_OK)

    @extend_schema(request=JudgingLaunchSerializer, responses={201: JobSerializer, 400: BAD})
    @action(detail=True, methods=["post"])
    def jobs(self, request, pk=None):
        """Queue a judging job with this judge version over a campaign's open comparisons or comparison ids."""
        judge = self.get_object()
        serializer = JudgingLaunchSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        config = {k: v for k, v in serializer.validated_data.items() if v is not None}
        job = services.judging_job_create(config={**config, "judge": judge.ref}, created_by=request.user)
        return Response(JobSerializer(job).data, status=status.HTTP_201_CREATED)

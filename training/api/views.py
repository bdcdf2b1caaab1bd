"""REST API views for checkpoints and jobs: parse, call one service or selector, answer.

Admins only (``training.run_jobs``). Service ``ValidationError``s become 400 with field messages
(``feedback.api.errors.exception_handler``). Job lists and details reap dead jobs first.
"""
from __future__ import annotations

from django.core.exceptions import ValidationError
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import mixins, status, viewsets
from rest_framework.decorators import action
from rest_framework.response import Response
from rest_framework.views import APIView

from feedback.api.schema import BAD_REQUEST
from training import selectors, services
from training.backends.models import ModelServer
from training.backends.services import checkpoint_server_set
from .permissions import CanRunJobs
from .serializers import (
    CheckpointFilter,
    CheckpointSerializer,
    CheckpointServerSerializer,
    JobCreateSerializer,
    JobFilter,
    JobMetricSerializer,
    JobSerializer,
    LeaderboardQuery,
    LeaderboardSerializer,
)



def _filters(serializer_class, request) -> dict:
    """The query's filters checked by ``serializer_class``: 400 naming each bad one.

    A plain dict, not the ``QueryDict``: DRF reads an empty form value as "not given", so ``?status=``
    would pass unchecked and match everything; here it is refused like any value outside the choices.
    """
    serializer = serializer_class(data=request.query_params.dict())
    serializer.is_valid(raise_exception=True)
    return serializer.validated_data


class CheckpointViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    """The checkpoint registry: policies and reward models, with metadata, location and lineage."""

    serializer_class = CheckpointSerializer
    permission_classes = [CanRunJobs]
    lookup_value_regex = "[0-9]+"

    def get_queryset(self):
        qs = selectors.checkpoint_list().prefetch_related("children")
        kind = _filters(CheckpointFilter, self.request).get("kind") if self.action == "list" else None
        return qs.filter(kind=kind) if kind else qs

    @extend_schema(parameters=[CheckpointFilter])
    def list(self, request, *args, **kwargs):
        return super().list(request, *args, **kwargs)

    @extend_schema(request=CheckpointServerSerializer, responses={
        200: CheckpointSerializer, 400: OpenApiResponse(BAD_REQUEST, description="No such server, or a reward model.")})
    @action(detail=True, methods=["post"])
    def server(self, request, pk=None):
        """Name the model server that serves this checkpoint (null: none; generation then runs in process)."""
        checkpoint = self.get_object()
        serializer = CheckpointServerSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        name = serializer.validated_data["server"]
        server = None
        if name:
            server = ModelServer.objects.filter(name=name).first()
            if server is None:
                raise ValidationError({"server": f"no model server named {name!r}"})
        checkpoint = checkpoint_server_set(checkpoint=checkpoint, server=server)
        return Response(CheckpointSerializer(selectors.checkpoint_list().prefetch_related("children").get(pk=checkpoint.pk)).data)


class JobViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    """Background jobs with their status, progress, heartbeat, summary and errors.

    POST queues a job after validating its config (400 with field messages, and nothing queued,
    when a setting is bad); ``cancel`` stops a queued job at once and a running one after its batch.
    """

    serializer_class = JobSerializer
    permission_classes = [CanRunJobs]
    lookup_value_regex = "[0-9]+"

    def get_queryset(self):
        filters = _filters(JobFilter, self.request) if self.action == "list" else {}
        return selectors.job_list(**filters)

    @extend_schema(parameters=[JobFilter])
    def list(self, request, *args, **kwargs):
        services.jobs_reap()
        return super().list(request, *args, **kwargs)

    def retrieve(self, request, *args, **kwargs):
        """One job; a finished reward run's summary gains its ``agreement_ceiling`` on first read
        when the runner did not record it (``services.reward_ceiling_ensure``)."""
        services.jobs_reap()
        job = services.reward_ceiling_ensure(job=self.get_object())
        return Response(self.get_serializer(job).data)

    @extend_schema(
        request=JobCreateSerializer,
        responses={
            201: JobSerializer,
            400: OpenApiResponse(
                BAD_REQUEST, description="A bad kind or setting: an object mapping each field to its messages; nothing is queued."
            ),
        },
    )
    def create(self, request):
        serializer = JobCreateSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        extra = {}
        if data["kind"] in services.RUN_KINDS:
            extra = {"policy_override": data.get("policy_override"), "justification": data.get("justification")}
        job = services.JOB_CREATORS[data["kind"]](config=data["config"], created_by=request.user, **extra)
        return Response(JobSerializer(job).data, status=status.HTTP_201_CREATED)

    @extend_schema(request=None, responses={200: JobSerializer})
    @action(detail=True, methods=["post"])
    def cancel(self, request, pk=None):
        """Cancel a queued job, or ask a running one to stop after its current batch; a finished job is left as it is."""
        job = services.job_cancel(job=self.get_object())
        return Response(JobSerializer(job).data)

    @extend_schema(responses={200: JobMetricSerializer(many=True)})
    @action(detail=True, methods=["get"], pagination_class=None)  # one list, not pages (and not documented as pages)
    def metrics(self, request, pk=None):
        """A training run's logged metrics in step order (loss, learning rate, held-out accuracy overall and by strength)."""
        job = self.get_object()
        return Response(JobMetricSerializer(job.metrics.all(), many=True).data)


class LeaderboardView(APIView):
    """Bradley-Terry ratings of the policy checkpoints (or, ``?models=external``, of the external
    models such as imported Chatbot Arena ones) from head-to-head votes: ratings with
    bootstrap 95% intervals, ranks (overlapping intervals share one), counts, the win-rate matrix
    and votes per pair (see ``training.ratings``)."""

    permission_classes = [CanRunJobs]

    @extend_schema(parameters=[LeaderboardQuery], responses={200: LeaderboardSerializer})
    def get(self, request):
        query = _filters(LeaderboardQuery, request)
        try:
            board = selectors.leaderboard_compute(
                both_bad=query["both_bad"], models=query["models"], include_non_blind=query["non_blind"] == "include",
                include_identity_leak=query["identity_leak"] == "include", votes=query["votes"],
                ai_weight=query.get("ai_weight", 1.0), eval_set_id=query.get("eval_set"),
                category=query.get("category") if "eval_set" in query else None, length_controlled=True,
            )
        except LookupError as error:
            raise ValidationError({"eval_set": [str(error)]}) from None
        ids = selectors.checkpoint_ids_by_name(names=board.models) if query["models"] == "checkpoints" else {}
        data = board.as_dict()
        for row in data["models"]:
            row["checkpoint_id"] = ids.get(row["model"])
        return Response(data)

"""REST API for model servers (``/api/servers/``): list, read, create, change. Admins only
(``training.run_jobs``); service ``ValidationError``s become 400 with field messages. The key
variable's NAME is shown; a key never is (the API never sees one)."""
from __future__ import annotations

from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import mixins, serializers, status, viewsets
from rest_framework.response import Response

from feedback.api.schema import BAD_REQUEST
from training.api.permissions import CanRunJobs

from . import selectors, services
from .models import ModelServer


class ModelServerSerializer(serializers.ModelSerializer):
    checkpoints = serializers.SlugRelatedField(many=True, read_only=True, slug_field="name",
                                               help_text="names of the checkpoints this server serves")

    class Meta:
        model = ModelServer
        fields = ["id", "name", "base_url", "model_name", "api_key_env", "max_concurrency", "timeout_s", "max_retries",
                  "backoff_s", "stream", "checkpoints", "created_at", "updated_at"]
        read_only_fields = fields


class ModelServerWriteSerializer(serializers.Serializer):
    """Shape only; ``model_server_save`` checks the values."""

    name = serializers.CharField(max_length=100)
    base_url = serializers.CharField(max_length=500, help_text="e.g. http://127.0.0.1:8000/v1")
    model_name = serializers.CharField(max_length=200, help_text="the served model's name")
    api_key_env = serializers.CharField(required=False, allow_blank=True, max_length=100,
                                        help_text="the NAME of the worker's environment variable holding the key")
    max_concurrency = serializers.IntegerField(required=False)
    timeout_s = serializers.FloatField(required=False)
    max_retries = serializers.IntegerField(required=False)
    backoff_s = serializers.FloatField(required=False)
    stream = serializers.BooleanField(required=False)


BAD = OpenApiResponse(BAD_REQUEST, description="An object mapping each bad field to its messages; nothing is saved.")


class ModelServerViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    """OpenAI-compatible servers that generation jobs (``backend: "server"``) send requests to;
    a checkpoint names its server (``POST /api/checkpoints/{id}/server/``)."""

    serializer_class = ModelServerSerializer
    permission_classes = [CanRunJobs]
    lookup_value_regex = "[0-9]+"

    def get_queryset(self):
        return selectors.model_server_list().prefetch_related("checkpoints")

    @extend_schema(request=ModelServerWriteSerializer, responses={201: ModelServerSerializer, 400: BAD})
    def create(self, request):
        serializer = ModelServerWriteSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        server = services.model_server_save(**serializer.validated_data)
        return Response(ModelServerSerializer(server).data, status=status.HTTP_201_CREATED)

    @extend_schema(request=ModelServerWriteSerializer, responses={200: ModelServerSerializer, 400: BAD})
    def update(self, request, pk=None):
        return self._change(request, partial=False)

    @extend_schema(request=ModelServerWriteSerializer, responses={200: ModelServerSerializer, 400: BAD})
    def partial_update(self, request, pk=None):
        return self._change(request, partial=True)

    def _change(self, request, *, partial: bool) -> Response:
        server = self.get_object()
        serializer = ModelServerWriteSerializer(data=request.data, partial=partial)
        serializer.is_valid(raise_exception=True)
        server = services.model_server_save(server=server, **serializer.validated_data)
        return Response(ModelServerSerializer(selectors.model_server_list().get(pk=server.pk)).data)

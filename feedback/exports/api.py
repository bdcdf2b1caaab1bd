"""REST API for exports (admins only): create, list, one, download. Thin: parse, call a service, answer.

- ``POST /api/exports/`` ``{"format", "file_type", "filters": {...}, "options": {...}}``: 201 with the
  finished export when it ran inline, 202 with the queued one otherwise; 400 with field messages
  (``format``, ``file_type``, ``filters``, a filter's name, ``options``) and nothing recorded.
- ``GET /api/exports/`` and ``GET /api/exports/{id}/``: status, progress, row count, checksum, and
  ``counts``: the comparisons that gave no row, by reason (``eval_set_excluded``: on eval-set
  prompts, left out unless ``"options": {"include_eval_set_prompts": true}``).
- ``GET /api/exports/{id}/download/``: the file (404 until it has succeeded).
"""
from __future__ import annotations

import json

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import mixins, serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.renderers import BaseRenderer, JSONRenderer
from rest_framework.response import Response
from rest_framework.reverse import reverse

from config.proxy import client_ip_address
from feedback.api.permissions import IsFeedbackAdmin
from feedback.models import Export, ExportStatus

from . import selectors, services
from .views import export_file_response


class ExportCreateSerializer(serializers.Serializer):
    """Shapes only; the export service checks names and values."""

    format = serializers.CharField(max_length=50)
    file_type = serializers.CharField(max_length=50)
    filters = serializers.DictField(required=False, default=dict)
    options = serializers.DictField(required=False, default=dict)
    policy_override = serializers.CharField(
        required=False, allow_blank=True, max_length=5000,
        help_text="An admin's written justification (20+ characters) for exporting data its data-use policy refuses.",
    )


class ExportSerializer(serializers.ModelSerializer):
    created_by = serializers.SlugRelatedField(slug_field="username", read_only=True)
    download_url = serializers.SerializerMethodField()
    percent = serializers.IntegerField(read_only=True)

    class Meta:
        model = Export
        fields = [
            "id", "format", "file_type", "filters", "options", "status", "inline", "vote_id_max", "votes_total",
            "votes_read", "progress_rows", "percent", "row_count", "counts", "checksum", "size_bytes", "error",
            "created_by", "created_at", "started_at", "finished_at", "download_url",
        ]
        read_only_fields = fields

    def get_download_url(self, export: Export) -> str | None:
        if export.status != ExportStatus.SUCCEEDED:
            return None
        return reverse("export-download", args=[export.pk], request=self.context.get("request"))


class FileRenderer(BaseRenderer):
    """Lets a download be asked for with any ``Accept``; error bodies are still JSON."""

    media_type = "application/octet-stream"
    format = "file"
    charset = None

    def render(self, data, accepted_media_type=None, renderer_context=None):
        return data if isinstance(data, bytes) else json.dumps(data).encode("utf-8")


class ExportViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    """Dataset exports (admins only)."""

    serializer_class = ExportSerializer
    permission_classes = [IsFeedbackAdmin]
    lookup_value_regex = "[0-9]+"

    def get_queryset(self):
        return selectors.export_list()

    @extend_schema(request=ExportCreateSerializer, responses={201: ExportSerializer, 202: ExportSerializer})
    def create(self, request):
        shape = ExportCreateSerializer(data=request.data)
        shape.is_valid(raise_exception=True)
        export = services.export_create(**shape.validated_data, created_by=request.user, remote_addr=client_ip_address(request))
        code = status.HTTP_202_ACCEPTED if export.status == ExportStatus.QUEUED else status.HTTP_201_CREATED
        return Response(ExportSerializer(export, context={"request": request}).data, status=code)

    @extend_schema(responses={(200, "application/octet-stream"): OpenApiTypes.BINARY, 404: OpenApiResponse(description="No file yet")})
    @action(detail=True, methods=["get"], renderer_classes=[JSONRenderer, FileRenderer])
    def download(self, request, pk=None):
        """The export's file (``hf-dataset``: a zip of the folder); header ``X-Checksum-SHA256``."""
        return export_file_response(self.get_object(), request=request)

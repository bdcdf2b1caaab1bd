"""Admins' eval-set API: ``GET /api/eval-sets/`` (list, newest first), ``POST /api/eval-sets/``
(upload a JSONL or CSV file as a new version, multipart: ``file``, ``name``, optional ``format``),
``GET /api/eval-sets/<id>/`` (one version, with its other versions) and
``GET /api/eval-sets/<id>/items/`` (its prompts, paged). Bad input is a 400 with messages by field:
``file`` lists the file's problems by line, ``limit`` names an import limit the file passed."""
from __future__ import annotations

from django.core.exceptions import ValidationError as DjangoValidationError
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import mixins, serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.parsers import FormParser, MultiPartParser
from rest_framework.response import Response

from feedback.api.pagination import IdCursorPagination
from feedback.api.permissions import IsFeedbackAdmin
from feedback.import_limits import ImportLimitError
from feedback.imports import UPLOAD_MAX_BYTES
from feedback.jsonl import JSONLFormatError

from . import services
from .files import FORMATS
from .models import EvalSet, EvalSetItem


class EvalSetSerializer(serializers.ModelSerializer):
    """One version of an eval set: counts, categories (``{category: prompts}``, ``""`` for none), hash."""

    created_by = serializers.CharField(source="created_by.get_username", read_only=True, allow_null=True, default=None)

    class Meta:
        model = EvalSet
        fields = ["id", "name", "version", "content_hash", "item_count", "lines_read", "duplicates_merged",
                  "categories", "source_format", "file_name", "created_by", "created_at"]
        read_only_fields = fields


class EvalSetDetailSerializer(EvalSetSerializer):
    versions = serializers.SerializerMethodField(help_text="every version of this name: [{id, version, content_hash, item_count}]")

    class Meta(EvalSetSerializer.Meta):
        fields = EvalSetSerializer.Meta.fields + ["versions"]
        read_only_fields = fields

    def get_versions(self, eval_set) -> list[dict]:
        return list(EvalSet.objects.filter(name=eval_set.name).order_by("version")
                    .values("id", "version", "content_hash", "item_count"))


class EvalSetItemSerializer(serializers.ModelSerializer):
    class Meta:
        model = EvalSetItem
        fields = ["id", "position", "messages", "category", "tags", "reference", "line", "duplicates"]
        read_only_fields = fields


class EvalSetUploadSerializer(serializers.Serializer):
    file = serializers.FileField(help_text="JSON lines (messages or prompt per line) or CSV with a prompt column.")
    name = serializers.CharField(max_length=services.MAX_NAME_CHARS, help_text="the eval set's name")
    format = serializers.ChoiceField(choices=FORMATS, required=False, allow_blank=True,
                                     help_text="default: told by the file's name or content")

    def validate_file(self, upload):
        if upload.size > UPLOAD_MAX_BYTES:
            raise serializers.ValidationError(
                f"The file is over {UPLOAD_MAX_BYTES // (1024 * 1024)} MB; import it with manage.py evalset import.")
        return upload


class _ItemPagination(IdCursorPagination):
    ordering = "position"  # unique within one set: file order


class EvalSetViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    """Eval sets (admins only). Sets are frozen: there is no change or delete."""

    permission_classes = [IsFeedbackAdmin]
    queryset = EvalSet.objects.select_related("created_by").order_by("-id")
    pagination_class = IdCursorPagination

    def get_serializer_class(self):
        return EvalSetDetailSerializer if self.action == "retrieve" else EvalSetSerializer

    def get_parsers(self):
        if getattr(self, "action", None) == "create" or (self.request and self.request.method == "POST"):
            return [MultiPartParser(), FormParser()]
        return super().get_parsers()

    @extend_schema(
        request={"multipart/form-data": EvalSetUploadSerializer},
        responses={
            201: OpenApiResponse(description="A new version: id, name, version, created, content_hash, item_count, "
                                             "lines_read, duplicates_merged, categories, ignored_fields, report."),
            200: OpenApiResponse(description="The same name already holds this content: that version (created false)."),
            400: OpenApiResponse(description="Nothing stored: messages by field; the file's problems by line under "
                                             "'file', an import limit under 'limit'."),
        },
    )
    def create(self, request):
        form = EvalSetUploadSerializer(data=request.data)
        form.is_valid(raise_exception=True)
        data = form.validated_data
        try:
            result = services.eval_set_import_upload(
                chunks=data["file"].chunks(), name=data["name"], file_name=data["file"].name or "",
                format=data.get("format") or None, created_by=request.user,
            )
        except DjangoValidationError as error:
            return Response(error.message_dict, status=status.HTTP_400_BAD_REQUEST)
        except JSONLFormatError as error:
            body = {"file": str(error).splitlines()[1:] or [str(error)]}
            if isinstance(error, ImportLimitError):
                body["limit"] = error.as_dict()
            return Response(body, status=status.HTTP_400_BAD_REQUEST)
        except (OSError, ValueError) as error:
            return Response({"file": [str(error)]}, status=status.HTTP_400_BAD_REQUEST)
        return Response(result.as_dict(), status=status.HTTP_201_CREATED if result.created else status.HTTP_200_OK)

    @extend_schema(responses={200: EvalSetItemSerializer(many=True)})
    @action(detail=True, methods=["get"])
    def items(self, request, pk=None):
        """The set's prompts in file order (paged by ``position``)."""
        eval_set = self.get_object()
        paginator = _ItemPagination()
        page = paginator.paginate_queryset(EvalSetItem.objects.filter(eval_set=eval_set), request, view=self)
        return paginator.get_paginated_response(EvalSetItemSerializer(page, many=True).data)

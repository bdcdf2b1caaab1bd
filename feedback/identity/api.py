"""Admins' identity-pattern API: ``/api/identity-patterns/`` (list, create, read, change, delete)
and ``/api/identity-patterns/rescan/`` (GET the latest re-scan, POST to queue one). Bad input is a
400 with a message per field (a regex that does not compile or is refused says why, under ``text``)."""
from __future__ import annotations

from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import mixins, serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.response import Response

from feedback.api.permissions import IsFeedbackAdmin
from feedback.api.schema import ErrorSerializer

from . import selectors, services
from .matcher import MAX_PATTERN_CHARS
from .models import IdentityPattern, IdentityScan, PatternKind


class IdentityPatternSerializer(serializers.ModelSerializer):
    """A pattern, with ``flagged``: how many comparisons it matches now."""

    flagged = serializers.IntegerField(read_only=True, help_text="comparisons whose responses match it now")
    created_by = serializers.CharField(source="created_by.get_username", read_only=True, allow_null=True, default=None)

    class Meta:
        model = IdentityPattern
        fields = ["id", "text", "kind", "scope", "active", "note", "flagged", "created_by", "created_at", "updated_at"]
        read_only_fields = fields


class IdentityPatternWriteSerializer(serializers.Serializer):
    """The fields a client may set; the service checks the text (regex safety) and uniqueness."""

    text = serializers.CharField(max_length=MAX_PATTERN_CHARS, trim_whitespace=True,
                                 help_text="a word or phrase (kind word) or a regular expression (kind regex)")
    kind = serializers.ChoiceField(choices=PatternKind.choices, default=PatternKind.WORD)
    scope = serializers.CharField(max_length=200, allow_blank=True, default="",
                                  help_text="a model name: only its completions; empty: every completion")
    active = serializers.BooleanField(default=True)
    note = serializers.CharField(max_length=2000, allow_blank=True, default="")


class IdentityScanSerializer(serializers.ModelSerializer):
    """A re-scan of every comparison: its state and progress (``scanned`` of ``total``), and what it changed."""

    percent = serializers.IntegerField(read_only=True)
    queued = serializers.BooleanField(read_only=True, required=False, help_text="POST: queued by this request")

    class Meta:
        model = IdentityScan
        fields = ["id", "reason", "status", "total", "scanned", "percent", "flagged", "unflagged", "error",
                  "created_at", "started_at", "finished_at", "queued"]
        read_only_fields = fields


def _values(request, *, partial: bool) -> dict:
    if not isinstance(request.data, dict):
        raise serializers.ValidationError({"non_field_errors": ["expected an object"]})
    shape = IdentityPatternWriteSerializer(data=request.data, partial=partial)
    shape.is_valid(raise_exception=True)
    unknown = {key: request.data[key] for key in request.data if key not in shape.fields}
    return {**unknown, **shape.validated_data}


class IdentityPatternViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    """Identity patterns (admins only): words and regexes that tell which model wrote a response.
    Adding or changing an active pattern queues a re-scan of every comparison; deactivating (or
    deleting) one un-flags the comparisons it alone flagged, at once."""

    serializer_class = IdentityPatternSerializer
    permission_classes = [IsFeedbackAdmin]
    pagination_class = None
    lookup_value_regex = "[0-9]+"

    def get_queryset(self):
        return selectors.pattern_list()

    def _answer(self, pattern: IdentityPattern, code: int = status.HTTP_200_OK) -> Response:
        return Response(IdentityPatternSerializer(self.get_queryset().get(pk=pattern.pk)).data, status=code)

    @extend_schema(request=IdentityPatternWriteSerializer, responses={201: IdentityPatternSerializer})
    def create(self, request):
        pattern = services.identity_pattern_create(values=_values(request, partial=False), created_by=request.user)
        return self._answer(pattern, status.HTTP_201_CREATED)

    @extend_schema(request=IdentityPatternWriteSerializer, responses={200: IdentityPatternSerializer})
    def update(self, request, pk=None):
        pattern = services.identity_pattern_update(
            pattern=self.get_object(), values=_values(request, partial=True), updated_by=request.user
        )
        return self._answer(pattern)

    @extend_schema(request=IdentityPatternWriteSerializer, responses={200: IdentityPatternSerializer})
    def partial_update(self, request, pk=None):
        return self.update(request, pk=pk)

    @extend_schema(request=None, responses={204: None})
    def destroy(self, request, pk=None):
        services.identity_pattern_delete(pattern=self.get_object())
        return Response(status=status.HTTP_204_NO_CONTENT)

    @extend_schema(methods=["GET"], request=None, responses={
        200: IdentityScanSerializer, 404: OpenApiResponse(ErrorSerializer, description="no re-scan has run yet")})
    @extend_schema(methods=["POST"], request=None, responses={202: IdentityScanSerializer})
    @action(detail=False, methods=["get", "post"])
    def rescan(self, request):
        """GET: the latest re-scan (404 when none ran). POST: queue a re-scan of every comparison
        (202; a scan already waiting is reused: ``queued`` false)."""
        if request.method == "POST":
            scan, queued = services.identity_rescan_request(reason="asked through the API", created_by=request.user)
            data = IdentityScanSerializer(scan).data | {"queued": queued}
            return Response(data, status=status.HTTP_202_ACCEPTED)
        scan = selectors.scan_latest()
        if scan is None:
            return Response({"detail": "No re-scan has run yet; POST here to queue one."}, status=status.HTTP_404_NOT_FOUND)
        return Response(IdentityScanSerializer(scan).data)

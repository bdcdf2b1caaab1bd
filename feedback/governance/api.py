"""Admins' governance API:

- ``/api/governance/policies/``: data-use policies (list, create, read, change, delete; every
  change audited). Bad input is a 400 with messages by field.
- ``/api/governance/findings/``: personal-data findings (read; ``resolve`` marks a row clean or redacts it).
- ``/api/governance/audit/``: the audit trail, read-only, newest first; filters ``action``,
  ``actor``, ``object_type``, ``object_id``, ``date_from``, ``date_to`` as query parameters.
"""
from __future__ import annotations

from django.core.exceptions import ValidationError as DjangoValidationError
from drf_spectacular.utils import extend_schema
from rest_framework import mixins, serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import ValidationError
from rest_framework.response import Response

from config.proxy import client_ip_address
from feedback.api.permissions import IsFeedbackAdmin

from . import scan, services
from .audit import audit_events
from .models import AuditEvent, DataPolicy, PersonalDataFinding


class DataPolicySerializer(serializers.ModelSerializer):
    label = serializers.CharField(read_only=True)
    allowed_uses = serializers.ListField(child=serializers.CharField(), read_only=True)

    class Meta:
        model = DataPolicy
        fields = ["id", "label", *services.POLICY_FIELDS, "allowed_uses", "updated_by", "created_at", "updated_at"]
        read_only_fields = ["updated_by", "created_at", "updated_at"]
        validators = []  # uniqueness is the service's (one message by field)


class DataPolicyViewSet(viewsets.ModelViewSet):
    permission_classes = [IsFeedbackAdmin]
    serializer_class = DataPolicySerializer
    queryset = DataPolicy.objects.all()

    def _save(self, request, policy=None, partial=False):
        shape = DataPolicySerializer(instance=policy, data=request.data, partial=partial)
        shape.is_valid(raise_exception=True)
        try:
            saved = services.data_policy_save(values=dict(shape.validated_data), policy=policy, user=request.user,
                                              remote_addr=client_ip_address(request))
        except DjangoValidationError as error:
            raise ValidationError(error.message_dict) from None
        return DataPolicySerializer(saved).data

    def create(self, request, *args, **kwargs):
        return Response(self._save(request), status=status.HTTP_201_CREATED)

    def update(self, request, *args, partial=False, **kwargs):
        return Response(self._save(request, self.get_object(), partial=partial))

    def destroy(self, request, *args, **kwargs):
        services.data_policy_delete(policy=self.get_object(), user=request.user, remote_addr=client_ip_address(request))
        return Response(status=status.HTTP_204_NO_CONTENT)


class AuditEventSerializer(serializers.ModelSerializer):
    class Meta:
        model = AuditEvent
        fields = ["id", "at", "actor", "actor_name", "action", "object_type", "object_id", "details", "remote_addr"]
        read_only_fields = fields


class AuditEventViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    permission_classes = [IsFeedbackAdmin]
    serializer_class = AuditEventSerializer

    def get_queryset(self):
        return audit_events(filters=self.request.query_params.dict())


class FindingSerializer(serializers.ModelSerializer):
    class Meta:
        model = PersonalDataFinding
        fields = ["id", "scan", "row_kind", "row_id", "field", "detector", "start", "end", "excerpt", "status",
                  "resolved_by", "resolved_at", "created_at"]
        read_only_fields = fields


class FindingActionSerializer(serializers.Serializer):
    action = serializers.ChoiceField(choices=["clean", "redact"], help_text="clean: mark the finding's row clean; redact: redact it")


class FindingViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    """``/api/governance/findings/`` (filters ``status``, ``detector``, ``row_kind``);
    ``POST /api/governance/findings/{id}/resolve/`` with ``{"action": "clean" | "redact"}``."""

    permission_classes = [IsFeedbackAdmin]
    serializer_class = FindingSerializer

    def get_queryset(self):
        findings = PersonalDataFinding.objects.all()
        for name in ("status", "detector", "row_kind"):
            if self.request.query_params.get(name):
                findings = findings.filter(**{name: self.request.query_params[name]})
        return findings

    @extend_schema(request=FindingActionSerializer, responses={200: FindingSerializer})
    @action(detail=True, methods=["post"])
    def resolve(self, request, pk=None):
        finding = self.get_object()
        shape = FindingActionSerializer(data=request.data)
        shape.is_valid(raise_exception=True)
        act = scan.row_mark_clean if shape.validated_data["action"] == "clean" else scan.row_redact
        try:
            act(row_kind=finding.row_kind, row_id=finding.row_id, user=request.user, remote_addr=client_ip_address(request))
        except DjangoValidationError as error:
            raise ValidationError(error.message_dict) from None
        finding.refresh_from_db()
        return Response(FindingSerializer(finding).data)

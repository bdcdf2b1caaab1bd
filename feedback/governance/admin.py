"""Django admin for governance: policies (saved through the services, so every change is audited),
findings and scans (read-only), and the audit trail (view only: no add, change or delete)."""
from __future__ import annotations

from django.contrib import admin

from . import services
from .models import AuditEvent, DataPolicy, PersonalDataFinding, PersonalDataScan, SnapshotPolicy


@admin.register(DataPolicy)
class DataPolicyAdmin(admin.ModelAdmin):
    list_display = ["id", "label", "allow_annotation", "allow_evaluation", "allow_training", "review_status",
                    "review_required", "retention_days", "updated_at"]
    list_filter = ["scope", "review_status", "review_required", "allow_training"]
    fields = list(services.POLICY_FIELDS)
    raw_id_fields = ["import_job", "campaign"]

    def save_model(self, request, obj, form, change):
        values = {name: form.cleaned_data[name] for name in services.POLICY_FIELDS if name in form.cleaned_data}
        policy = obj if change else None
        if change:
            obj.refresh_from_db()
        services.data_policy_save(values=values, policy=policy, user=request.user, remote_addr=request.META.get("REMOTE_ADDR"))

    def delete_model(self, request, obj):
        services.data_policy_delete(policy=obj, user=request.user, remote_addr=request.META.get("REMOTE_ADDR"))

    def delete_queryset(self, request, queryset):
        for policy in queryset:
            self.delete_model(request, policy)


class ReadOnlyAdmin(admin.ModelAdmin):
    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(AuditEvent)
class AuditEventAdmin(ReadOnlyAdmin):
    list_display = ["id", "at", "actor_name", "action", "object_type", "object_id", "remote_addr"]
    list_filter = ["action", "object_type"]
    search_fields = ["actor_name", "object_id"]


@admin.register(PersonalDataFinding)
class PersonalDataFindingAdmin(ReadOnlyAdmin):
    list_display = ["id", "row_kind", "row_id", "field", "detector", "start", "end", "excerpt", "status"]
    list_filter = ["status", "detector", "row_kind"]


@admin.register(PersonalDataScan)
class PersonalDataScanAdmin(ReadOnlyAdmin):
    list_display = ["id", "status", "scanned", "total", "found", "names", "created_at", "finished_at"]


@admin.register(SnapshotPolicy)
class SnapshotPolicyAdmin(ReadOnlyAdmin):
    list_display = ["snapshot", "override_by", "created_at"]

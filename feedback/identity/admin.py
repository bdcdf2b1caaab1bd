"""Django admin for identity patterns and re-scans. Edits here go through the services, so a
changed pattern is re-scanned and a deactivated one un-flags its comparisons."""
from __future__ import annotations

from django import forms
from django.contrib import admin
from django.core.exceptions import ValidationError

from . import services
from .models import IdentityPattern, IdentityScan


class IdentityPatternAdminForm(forms.ModelForm):
    """Refuses what the services refuse (a bad or unsafe regex), as field errors."""

    class Meta:
        model = IdentityPattern
        fields = list(services.FIELDS)

    def clean(self):
        cleaned = super().clean()
        values = {name: cleaned[name] for name in services.FIELDS if name in cleaned}
        try:
            services.identity_pattern_check(values=values, pattern=self.instance if self.instance.pk else None)
        except ValidationError as error:
            for field, texts in error.message_dict.items():
                self.add_error(field if field in self.fields else None, texts)
        return cleaned


@admin.register(IdentityPattern)
class IdentityPatternAdmin(admin.ModelAdmin):
    form = IdentityPatternAdminForm
    list_display = ["id", "text", "kind", "scope", "active", "created_by", "created_at"]
    list_filter = ["active", "kind"]
    search_fields = ["text", "scope", "note"]
    readonly_fields = ["created_by", "created_at", "updated_at"]

    def save_model(self, request, obj, form, change):
        values = {name: getattr(obj, name) for name in services.FIELDS}
        if change:
            saved = services.identity_pattern_update(pattern=IdentityPattern.objects.get(pk=obj.pk), values=values,
                                                     updated_by=request.user)
        else:
            saved = services.identity_pattern_create(values=values, created_by=request.user)
        obj.pk = saved.pk

    def delete_model(self, request, obj):
        services.identity_pattern_delete(pattern=obj)

    def delete_queryset(self, request, queryset):
        for pattern in queryset:
            services.identity_pattern_delete(pattern=pattern)


@admin.register(IdentityScan)
class IdentityScanAdmin(admin.ModelAdmin):
    list_display = ["id", "status", "scanned", "total", "flagged", "unflagged", "created_at", "finished_at"]
    list_filter = ["status"]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

"""Django admin for eval sets: view only. A set is frozen (no change), is imported through
``feedback.evalsets.services`` (the eval sets page, the API or ``manage.py evalset import``), and
is never deleted here: deleting one would let its prompts back into training."""
from __future__ import annotations

from django.contrib import admin

from .models import EvalSet, EvalSetItem


class _ViewOnly:
    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(EvalSet)
class EvalSetAdmin(_ViewOnly, admin.ModelAdmin):
    list_display = ["id", "name", "version", "item_count", "duplicates_merged", "content_hash", "created_at"]
    list_filter = ["name"]
    search_fields = ["name", "content_hash"]
    readonly_fields = [f.name for f in EvalSet._meta.fields]


@admin.register(EvalSetItem)
class EvalSetItemAdmin(_ViewOnly, admin.ModelAdmin):
    list_display = ["id", "eval_set", "position", "category", "line"]
    list_filter = ["eval_set"]  # a set's prompts: filter by it (an inline would render them all)
    search_fields = ["messages", "category"]
    readonly_fields = [f.name for f in EvalSetItem._meta.fields]

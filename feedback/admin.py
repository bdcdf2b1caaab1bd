from django.contrib import admin

from .models import Assignment, Comparison, Completion, Demonstration, Prompt, Vote, VoteChange


@admin.register(Prompt)
class PromptAdmin(admin.ModelAdmin):
    list_display = ["id", "__str__", "source", "split", "created_at"]
    list_filter = ["split", "source"]
    search_fields = ["messages"]
    readonly_fields = ["messages_sha256", "created_at"]


@admin.register(Completion)
class CompletionAdmin(admin.ModelAdmin):
    list_display = ["id", "prompt", "model_name", "is_truncated", "truncated_at_role_marker", "is_empty", "created_at"]
    list_filter = ["model_name", "is_truncated", "truncated_at_role_marker", "is_empty"]
    raw_id_fields = ["prompt"]


@admin.register(Comparison)
class ComparisonAdmin(admin.ModelAdmin):
    list_display = ["id", "prompt", "status", "votes_required", "vote_count", "priority", "gold_choice", "created_at"]
    list_filter = ["status", "gold_choice", "identity_leak"]
    raw_id_fields = ["prompt", "completion_a", "completion_b"]
    readonly_fields = ["vote_count", "created_at"]


@admin.register(Vote)
class VoteAdmin(admin.ModelAdmin):
    list_display = ["id", "comparison", "annotator", "choice", "strength", "shown_left", "ms_on_item", "created_at"]
    list_filter = ["choice", "strength", "source"]
    raw_id_fields = ["comparison", "annotator"]


@admin.register(VoteChange)
class VoteChangeAdmin(admin.ModelAdmin):
    """The audit trail of annotators' undos and revisions: read-only."""

    list_display = ["id", "at", "annotator", "action", "vote_ref", "comparison"]
    list_filter = ["action"]
    search_fields = ["annotator__username"]
    raw_id_fields = ["vote", "comparison", "annotator"]
    readonly_fields = ["vote", "vote_ref", "comparison", "annotator", "at", "action", "before", "after"]

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False


@admin.register(Assignment)
class AssignmentAdmin(admin.ModelAdmin):
    list_display = ["id", "comparison", "annotator", "status", "shown_left", "leased_at", "expires_at"]
    list_filter = ["status"]
    raw_id_fields = ["comparison", "annotator"]


@admin.register(Demonstration)
class DemonstrationAdmin(admin.ModelAdmin):
    list_display = ["id", "prompt", "source", "annotator", "comparison", "created_at"]
    list_filter = ["source"]
    raw_id_fields = ["prompt", "annotator", "comparison"]
    readonly_fields = ["external_id", "created_at"]

from .tokens.admin import ApiTokenAdmin  # noqa: E402,F401  (registers ApiToken)
from .campaigns.admin import CampaignAdmin  # noqa: E402,F401  (registers Campaign)
from .identity import admin as identity_admin  # noqa: E402,F401  (registers identity patterns)
from .evalsets.admin import EvalSetAdmin  # noqa: E402,F401  (registers EvalSet, view only)
from .governance import admin as governance_admin  # noqa: E402,F401  (registers policies, findings, audit events)

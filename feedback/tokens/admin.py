"""API tokens in the Django admin: listed by user and prefix, revoked by deleting; never added,
edited or read in full here (the key is not stored)."""
from django.contrib import admin

from .models import ApiToken


@admin.register(ApiToken)
class ApiTokenAdmin(admin.ModelAdmin):
    list_display = ["user", "prefix_shown", "created", "expires_at"]
    search_fields = ["user__username", "prefix"]
    list_filter = ["expires_at"]
    fields = ["user", "prefix_shown", "created", "expires_at"]
    readonly_fields = fields
    actions = ["revoke"]

    @admin.display(description="token")
    def prefix_shown(self, token: ApiToken) -> str:
        return f"{token.prefix}…"

    @admin.action(description="Revoke selected tokens", permissions=["delete"])
    def revoke(self, request, queryset) -> None:
        count, _ = queryset.delete()
        self.message_user(request, f"Revoked {count} token{'s' if count != 1 else ''}.")

    def get_actions(self, request):
        actions = super().get_actions(request)
        actions.pop("delete_selected", None)  # "Revoke" says what deleting a token does
        return actions

    def has_add_permission(self, request) -> bool:
        return False  # users make their own, and see the key once (account page, API, rotate_token)

    def has_change_permission(self, request, obj=None) -> bool:
        return False

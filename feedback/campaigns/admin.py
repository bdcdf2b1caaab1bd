"""Django admin for campaigns: settings and pool editable; status changes and guidelines go through
the campaign page (``/manage/campaigns/<id>/``) so their rules hold, so here they are read-only."""
from django.contrib import admin
from django.urls import reverse
from django.utils.html import format_html

from .models import Campaign, GuidelineVersion


class GuidelineVersionInline(admin.TabularInline):
    model = GuidelineVersion
    fields = ["number", "text", "created_by", "created_at"]
    readonly_fields = fields
    extra = 0
    can_delete = False
    show_change_link = False

    def has_add_permission(self, request, obj=None) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False


@admin.register(Campaign)
class CampaignAdmin(admin.ModelAdmin):
    list_display = ["name", "slug", "status", "priority", "votes_required", "target_votes", "deadline", "campaign_page"]
    list_filter = ["status"]
    search_fields = ["name", "slug", "description"]
    readonly_fields = ["status", "rules", "created_by", "created_at", "updated_at", "campaign_page"]
    filter_horizontal = ["annotators", "groups"]
    prepopulated_fields = {"slug": ["name"]}
    inlines = [GuidelineVersionInline]

    @admin.display(description="Campaign page")
    def campaign_page(self, campaign: Campaign) -> str:
        """A link to the campaign's admin page (progress, guidelines, status changes)."""
        if campaign.pk is None:
            return "—"
        return format_html('<a href="{}">progress, guidelines, activate / pause / close</a>',
                           reverse("manage-campaign-detail", args=[campaign.pk]))

    def has_delete_permission(self, request, obj=None) -> bool:
        # Comparisons point at their campaign (PROTECT), and votes at its guidelines: close it instead.
        return False

    def save_model(self, request, obj, form, change) -> None:
        if not change and obj.created_by_id is None:
            obj.created_by = request.user
        super().save_model(request, obj, form, change)

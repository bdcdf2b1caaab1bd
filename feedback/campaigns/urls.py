from django.urls import path

from . import views

urlpatterns = [
    path("manage/campaigns/", views.manage_campaigns, name="manage-campaigns"),
    path("manage/campaigns/new/", views.manage_campaign_create, name="manage-campaign-create"),
    path("manage/campaigns/<int:pk>/", views.manage_campaign_detail, name="manage-campaign-detail"),
    path("manage/campaigns/<int:pk>/guidelines/", views.manage_campaign_guidelines, name="manage-campaign-guidelines"),
    path("manage/campaigns/<int:pk>/comparisons/", views.manage_campaign_comparisons, name="manage-campaign-comparisons"),
    path("manage/campaigns/<int:pk>/lift-pause/", views.manage_campaign_lift_pause, name="manage-campaign-lift-pause"),
    *[
        path(f"manage/campaigns/<int:pk>/{action}/", views.manage_campaign_status, {"action": action},
             name=f"manage-campaign-{action}")
        for action in views.ACTIONS
    ],
]

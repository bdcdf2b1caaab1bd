from django.urls import path

from . import deletion_views, review_views, views

urlpatterns = [
    path("manage/governance/policies/", views.manage_policies, name="manage-policies"),
    path("manage/governance/policies/<int:pk>/", views.manage_policy, name="manage-policy"),
    path("manage/governance/deletion/", deletion_views.manage_deletion, name="manage-deletion"),
    path("manage/governance/snapshots/<int:pk>/rebuild/", deletion_views.manage_snapshot_rebuild, name="manage-snapshot-rebuild"),
    path("manage/governance/audit/", views.manage_audit, name="manage-audit"),
    path("manage/governance/findings/", review_views.manage_findings, name="manage-findings"),
    path("manage/governance/findings/scan/", review_views.manage_scan, name="manage-scan"),
    path("manage/governance/findings/<int:pk>/", review_views.manage_finding, name="manage-finding"),
]

from django.urls import include, path

from . import revision_views, views
from .quality.dashboard import manage_quality
from .quality.views import manage_flags
from .identity import views as identity_views
from .campaigns import annotator_views as campaign_views
from .evalsets import views as evalset_views
from .tokens.views import account_token

urlpatterns = [
    path("", views.home, name="home"),
    path("annotate/", views.annotate, name="annotate"),
    path("annotate/vote/", views.annotate_vote, name="annotate-vote"),
    path("annotate/skip/", views.annotate_skip, name="annotate-skip"),
    path("annotate/undo/", revision_views.annotate_undo, name="annotate-undo"),
    path("annotate/history/", revision_views.vote_history, name="vote-history"),
    path("annotate/history/<int:vote_id>/", revision_views.vote_revise, name="vote-revise"),
    # One campaign's queue (after the fixed paths above: feedback.campaigns.pool.RESERVED_SLUGS).
    path("annotate/<slug:slug>/", views.annotate, name="annotate-campaign"),
    path("annotate/<slug:slug>/vote/", views.annotate_vote, name="annotate-campaign-vote"),
    path("annotate/<slug:slug>/skip/", views.annotate_skip, name="annotate-campaign-skip"),
    path("annotate/<slug:slug>/undo/", revision_views.annotate_undo, name="annotate-campaign-undo"),
    path("annotate/<slug:slug>/guidelines/", campaign_views.campaign_guidelines, name="campaign-guidelines"),
    path("campaigns/", campaign_views.campaign_start, name="annotate-campaigns"),
    path("manage/comparisons/", views.manage_comparisons, name="manage-comparisons"),
    path("manage/comparisons/<int:pk>/", views.manage_comparison_detail, name="manage-comparison-detail"),
    path("manage/comparisons/<int:pk>/gold/", views.manage_comparison_gold, name="manage-comparison-gold"),
    path("", include("feedback.exports.urls")),
    path("manage/flags/", manage_flags, name="manage-flags"),
    path("manage/identity/", identity_views.manage_identity, name="manage-identity"),
    path("manage/identity/rescan/", identity_views.manage_identity_rescan, name="manage-identity-rescan"),
    path("manage/identity/scan/", identity_views.manage_identity_scan, name="manage-identity-scan"),
    path("manage/identity/<int:pk>/", identity_views.manage_identity_pattern, name="manage-identity-pattern"),
    path("manage/quality/", manage_quality, name="manage-quality"),
    path("manage/campaigns/<int:pk>/quality/", manage_quality, name="manage-campaign-quality"),
    path("", include("feedback.campaigns.urls")),
    path("manage/imports/", views.manage_imports, name="manage-imports"),
    path("manage/imports/jobs/<int:pk>/", views.manage_import_job, name="manage-import-job"),
    path("manage/evalsets/", evalset_views.manage_evalsets, name="manage-evalsets"),
    path("manage/evalsets/<int:pk>/", evalset_views.manage_evalset_detail, name="manage-evalset-detail"),
    path("account/token/", account_token, name="account-token"),
    path("", include("feedback.governance.urls")),
]
